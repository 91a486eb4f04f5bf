//! The one write path every function shares: decide (pure), write conditionally on the version decided against,
//! re-read and decide again when another writer moved it, and hand back the change events to publish.

use futures_util::StreamExt;
use futures_util::stream;
use time::OffsetDateTime;

use super::audit::{AuditAction, AuditEntry};
use super::decide::{Change, Decision, Observed, decide_delete, decide_upsert};
use super::events::{ChangeEvent, WriteContext};
use super::health::CountDelta;
use super::item::{ProductItem, WriteSource, micros};
use super::ports::{ProductStore, StoreError};
use crate::product::{Product, ProductId};

/// Which Pixlpay response a product came from. The docs show `delivery_servers` (and, in the guide dialect, `sku`
/// and `is_featured`) only on `GET /products/{id}` (pixlpay-api.md §4.3), so a list read cannot know them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    List,
    Single,
}

/// The item attributes only a single read can fill (`delivery_servers`, `sku`, `is_featured`), each with whether
/// `item` holds a value for it.
pub fn single_view_fields(item: &ProductItem) -> [(&'static str, bool); 3] {
    [
        ("delivery_servers", !item.delivery_servers.is_empty()),
        ("sku", item.sku.is_some()),
        ("is_featured", item.is_featured.is_some()),
    ]
}

/// A list read keeps the single-view fields the table already holds: otherwise every full sync would "change"
/// every product a webhook stored, and the next webhook would change it back.
fn with_single_view_fields(product: &Product, stored: Option<&ProductItem>) -> Product {
    let mut product = product.clone();
    if let Some(stored) = stored {
        if product.delivery_servers.is_empty() {
            product.delivery_servers = stored.delivery_servers.clone();
        }
        product.sku = product.sku.or_else(|| stored.sku.clone());
        product.is_featured = product.is_featured.or(stored.is_featured);
    }
    product
}

/// What an upsert of one read would do against the stored item: the product as it would be stored (a list read
/// merged with the stored single-view fields), its hash, and the decision. The writer and the dry run both use it,
/// so a dry run reports exactly what a run would write.
pub struct UpsertPlan {
    pub product: Product,
    pub hash: String,
    pub decision: Decision,
}

pub fn plan_upsert(read: &Product, stored: Option<&ProductItem>, fetched_at: OffsetDateTime, view: View) -> UpsertPlan {
    let product = match view {
        View::List => with_single_view_fields(read, stored),
        View::Single => read.clone(),
    };
    let hash = product.content_hash();
    let observed = Observed {
        updated_at_us: micros(product.updated_at),
        fetched_at_us: micros(fetched_at),
        content_hash: &hash,
    };
    let decision = decide_upsert(stored, observed);
    UpsertPlan {
        product,
        hash,
        decision,
    }
}

/// How often one product is re-read and re-decided after losing a conditional write before giving up.
const MAX_CONFLICT_RETRIES: u32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Written(Change),
    Unchanged,
    Stale,
}

/// What a batch of writes did, for run records, worker results and events.
#[derive(Debug, Default)]
pub struct WriteReport {
    pub events: Vec<ChangeEvent>,
    pub unchanged: u64,
    pub stale: u64,
    /// Conditional writes that succeeded (items written).
    pub writes: u64,
    /// One entry per write and per refused (stale) read, for the audit trail.
    pub audit: Vec<AuditEntry>,
}

/// What one product's write did.
type Written = (WriteOutcome, Option<ChangeEvent>, Option<AuditEntry>);

impl WriteReport {
    fn add(&mut self, (outcome, event, audit): Written) {
        match outcome {
            WriteOutcome::Written(_) => self.writes += 1,
            WriteOutcome::Unchanged => self.unchanged += 1,
            WriteOutcome::Stale => self.stale += 1,
        }
        self.events.extend(event);
        self.audit.extend(audit);
    }

    pub fn count(&self, change: Change) -> u64 {
        self.events.iter().filter(|e| e.change == change).count() as u64
    }
}

pub struct ProductWriter<'s, S> {
    store: &'s S,
    source: WriteSource,
    context: WriteContext,
}

impl<'s, S: ProductStore> ProductWriter<'s, S> {
    pub fn new(store: &'s S, source: WriteSource, context: WriteContext) -> Self {
        Self { store, source, context }
    }

    pub fn context(&self) -> &WriteContext {
        &self.context
    }

    /// Upserts products read from Pixlpay by requests that started at `fetched_at`, `concurrency` at a time. One read
    /// of the table for the whole batch; a product whose conditional write loses is re-read alone.
    pub async fn upsert_all(
        &self,
        products: &[Product],
        fetched_at: OffsetDateTime,
        concurrency: usize,
        view: View,
    ) -> Result<WriteReport, StoreError> {
        let ids: Vec<ProductId> = products.iter().map(|p| p.id).collect();
        let mut stored = self.store.get_many(&ids).await?;
        let results: Vec<_> = stream::iter(products)
            .map(|product| {
                let current = stored.remove(&product.id);
                self.upsert(product, current, fetched_at, view)
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        let mut report = WriteReport::default();
        for result in results {
            report.add(result?);
        }
        Ok(report)
    }

    async fn upsert(
        &self,
        read: &Product,
        mut current: Option<ProductItem>,
        fetched_at: OffsetDateTime,
        view: View,
    ) -> Result<Written, StoreError> {
        for _ in 0..=MAX_CONFLICT_RETRIES {
            let UpsertPlan {
                product,
                hash,
                decision,
            } = plan_upsert(read, current.as_ref(), fetched_at, view);
            let product = &product;
            let change = match decision {
                Decision::Write(change) => change,
                Decision::Unchanged => return Ok((WriteOutcome::Unchanged, None, None)),
                Decision::Stale => {
                    tracing::info!(
                        product_id = product.id,
                        outcome = "stale",
                        source = self.source.as_str(),
                        run_id = self.context.run_id,
                        delivery_id = self.context.delivery_id,
                        "stored state is newer than this read; not written"
                    );
                    let mut audit = AuditEntry::new(
                        AuditAction::Stale,
                        product.id,
                        self.source,
                        &self.context,
                        current.as_ref(),
                        None,
                    )
                    .with_reason(format!(
                        "read with updated_at {} is older than the stored state",
                        crate::timestamp::format(product.updated_at)
                    ));
                    audit.new_hash = Some(hash);
                    return Ok((WriteOutcome::Stale, None, Some(audit)));
                }
            };
            let expected = current.as_ref().map(|c| c.version);
            let now = OffsetDateTime::now_utc();
            let item = ProductItem::new(product, hash.clone(), self.source, fetched_at, now, expected);
            let counts = CountDelta::between(current.as_ref(), &item);
            if self.store.put_if_version(&item, expected, counts).await? {
                tracing::info!(product_id = product.id, outcome = ?change, source = self.source.as_str(),
                    run_id = self.context.run_id, delivery_id = self.context.delivery_id, "product written");
                let audit = AuditEntry::new(
                    change.into(),
                    product.id,
                    self.source,
                    &self.context,
                    current.as_ref(),
                    Some(&item),
                );
                let event = ChangeEvent::new(change, item, current.as_ref(), &self.context);
                return Ok((WriteOutcome::Written(change), Some(event), Some(audit)));
            }
            current = self.store.get_many(&[product.id]).await?.remove(&product.id);
        }
        Err(StoreError::Backend {
            operation: "conditional put",
            message: format!("product {} kept changing under {MAX_CONFLICT_RETRIES} retries", read.id),
        })
    }

    /// Soft-deletes `id` after Pixlpay answered 404 at `confirmed_at`. Nothing to do when the product is not stored
    /// or already deleted; a state read after the 404 wins.
    pub async fn soft_delete(&self, id: ProductId, confirmed_at: OffsetDateTime) -> Result<WriteReport, StoreError> {
        let mut report = WriteReport::default();
        for _ in 0..=MAX_CONFLICT_RETRIES {
            let Some(current) = self.store.get_many(&[id]).await?.remove(&id) else {
                report.add((WriteOutcome::Unchanged, None, None));
                return Ok(report);
            };
            match decide_delete(&current, micros(confirmed_at)) {
                Decision::Write(change) => {
                    let item = current.soft_deleted(self.source, OffsetDateTime::now_utc());
                    let counts = CountDelta::between(Some(&current), &item);
                    if self.store.put_if_version(&item, Some(current.version), counts).await? {
                        tracing::info!(
                            product_id = id,
                            outcome = "deleted",
                            source = self.source.as_str(),
                            run_id = self.context.run_id,
                            delivery_id = self.context.delivery_id,
                            "product soft-deleted"
                        );
                        let audit = AuditEntry::new(
                            change.into(),
                            id,
                            self.source,
                            &self.context,
                            Some(&current),
                            Some(&item),
                        )
                        .with_reason("Pixlpay answered 404");
                        let event = ChangeEvent::new(change, item, Some(&current), &self.context);
                        report.add((WriteOutcome::Written(change), Some(event), Some(audit)));
                        return Ok(report);
                    }
                }
                Decision::Unchanged => {
                    report.add((WriteOutcome::Unchanged, None, None));
                    return Ok(report);
                }
                Decision::Stale => {
                    let audit =
                        AuditEntry::new(AuditAction::Stale, id, self.source, &self.context, Some(&current), None)
                            .with_reason("a read requested after the 404 shows the product alive");
                    report.add((WriteOutcome::Stale, None, Some(audit)));
                    return Ok(report);
                }
            }
        }
        Err(StoreError::Backend {
            operation: "conditional put",
            message: format!("product {id} kept changing"),
        })
    }
}
