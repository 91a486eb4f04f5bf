//! In-memory ports for unit tests of the engine's logic. The adapters themselves are tested against MiniStack and
//! moto, never against these.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::json;
use time::OffsetDateTime;

use super::audit::AuditEntry;
use super::events::ChangeEvent;
use super::full_sync::{FullSync, FullSyncConfig, RunOptions, RunOutcome};
use super::health::{CountDelta, ErrorRecord, HealthLog, OutOfSync, OutOfSyncReason};
use super::item::ProductItem;
use super::ports::{AuditLog, Catalog, EventPublisher, ProductStore, PublishError, StoreError, SyncState};
use super::run::{RunRecord, RunStatus};
use crate::pixlpay::{ClientStatsSnapshot, PixlpayError, ProductPage};
use crate::product::{Product, ProductId};

pub fn product(id: ProductId, price: &str, updated_s: i64) -> Product {
    let updated = OffsetDateTime::from_unix_timestamp(1_700_000_000 + updated_s).unwrap();
    Product::from_json(
        json!({"id": id, "name": format!("P{id}"), "price": price, "updated_at": crate::timestamp::format(updated)}),
    )
    .unwrap()
}

/// How the fake catalog refuses a product read.
#[derive(Clone, Copy, Debug)]
pub enum Refusal {
    RateLimited,
    ServerError,
}

#[derive(Clone, Default)]
pub struct FakeCatalog {
    pub products: Arc<Mutex<BTreeMap<ProductId, Product>>>,
    pub requests: Arc<Mutex<u64>>,
    pub refusals: Arc<Mutex<HashMap<ProductId, Refusal>>>,
}

impl FakeCatalog {
    pub fn with(count: u64) -> Self {
        let catalog = Self::default();
        for id in 1..=count {
            catalog.put(product(id, "1.00", 0));
        }
        catalog
    }
    pub fn put(&self, p: Product) {
        self.products.lock().unwrap().insert(p.id, p);
    }
    pub fn remove(&self, id: ProductId) {
        self.products.lock().unwrap().remove(&id);
    }
}

impl Catalog for FakeCatalog {
    async fn page(&self, page: u32, per_page: u32) -> Result<ProductPage, PixlpayError> {
        *self.requests.lock().unwrap() += 1;
        let all: Vec<Product> = self.products.lock().unwrap().values().cloned().collect();
        let last_page = (all.len() as u32).div_ceil(per_page).max(1);
        let products = all
            .into_iter()
            .skip(((page - 1) * per_page) as usize)
            .take(per_page as usize)
            .collect();
        Ok(ProductPage {
            page,
            last_page,
            total: None,
            products,
            invalid: vec![],
            requested_at: OffsetDateTime::now_utc(),
        })
    }
    async fn product(&self, id: ProductId) -> Result<Product, PixlpayError> {
        *self.requests.lock().unwrap() += 1;
        match self.refusals.lock().unwrap().get(&id) {
            Some(Refusal::RateLimited) => return Err(PixlpayError::RateLimited { waits: 3 }),
            Some(Refusal::ServerError) => {
                return Err(PixlpayError::Server {
                    status: 500,
                    attempts: 4,
                });
            }
            None => {}
        }
        self.products
            .lock()
            .unwrap()
            .get(&id)
            .cloned()
            .ok_or(PixlpayError::NotFound {
                message: "Product not found".into(),
            })
    }
    fn stats(&self) -> ClientStatsSnapshot {
        ClientStatsSnapshot {
            requests: *self.requests.lock().unwrap(),
            ..Default::default()
        }
    }
}

#[derive(Default)]
pub struct MemoryStore {
    pub items: Mutex<HashMap<ProductId, ProductItem>>,
    pub puts: Mutex<u64>,
    /// The running total of the count deltas written, as the status record would hold it.
    pub counts: Mutex<CountDelta>,
}

impl ProductStore for MemoryStore {
    async fn get_many(&self, ids: &[ProductId]) -> Result<HashMap<ProductId, ProductItem>, StoreError> {
        let items = self.items.lock().unwrap();
        Ok(ids
            .iter()
            .filter_map(|id| items.get(id).map(|i| (*id, i.clone())))
            .collect())
    }
    async fn put_if_version(
        &self,
        item: &ProductItem,
        expected: Option<u64>,
        delta: CountDelta,
    ) -> Result<bool, StoreError> {
        let mut items = self.items.lock().unwrap();
        if items.get(&item.product_id).map(|i| i.version) != expected {
            return Ok(false);
        }
        *self.puts.lock().unwrap() += 1;
        let mut counts = self.counts.lock().unwrap();
        counts.active += delta.active;
        counts.deleted += delta.deleted;
        items.insert(item.product_id, item.clone());
        Ok(true)
    }
    async fn active_ids(&self) -> Result<HashSet<ProductId>, StoreError> {
        Ok(self
            .items
            .lock()
            .unwrap()
            .values()
            .filter(|i| !i.deleted)
            .map(|i| i.product_id)
            .collect())
    }
}

#[derive(Default)]
pub struct MemoryAudit {
    pub entries: Mutex<Vec<AuditEntry>>,
}

impl AuditLog for MemoryAudit {
    async fn append(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        self.entries.lock().unwrap().extend_from_slice(entries);
        Ok(())
    }
}

impl AuditLog for MemoryState {
    async fn append(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        self.audit.append(entries).await
    }
}

#[derive(Default)]
pub struct MemoryState {
    pub audit: MemoryAudit,
    pub markers: Mutex<BTreeMap<ProductId, OutOfSync>>,
    pub errors: Mutex<Vec<ErrorRecord>>,
    pub lock: Mutex<Option<(String, i64)>>,
    pub runs: Mutex<BTreeMap<String, RunRecord>>,
    pub pages: Mutex<HashMap<String, HashSet<ProductId>>>,
    pub last_full_sync: Mutex<Option<RunRecord>>,
}

impl SyncState for MemoryState {
    async fn acquire_lock(&self, owner: &str, expires: i64) -> Result<bool, StoreError> {
        let mut lock = self.lock.lock().unwrap();
        let now = OffsetDateTime::now_utc().unix_timestamp();
        if lock.as_ref().is_some_and(|(o, e)| o != owner && *e > now) {
            return Ok(false);
        }
        *lock = Some((owner.into(), expires));
        Ok(true)
    }
    async fn release_lock(&self, owner: &str) -> Result<(), StoreError> {
        let mut lock = self.lock.lock().unwrap();
        if lock.as_ref().is_some_and(|(o, _)| o == owner) {
            *lock = None;
        }
        Ok(())
    }
    async fn unfinished_run(&self) -> Result<Option<RunRecord>, StoreError> {
        Ok(self
            .runs
            .lock()
            .unwrap()
            .values()
            .find(|r| r.status != RunStatus::Completed)
            .cloned())
    }
    async fn save_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        self.runs.lock().unwrap().insert(run.run_id.clone(), run.clone());
        Ok(())
    }
    async fn checkpoint(&self, run: &RunRecord, _page: u32, ids: &[ProductId]) -> Result<(), StoreError> {
        self.pages
            .lock()
            .unwrap()
            .entry(run.run_id.clone())
            .or_default()
            .extend(ids);
        self.save_run(run).await
    }
    async fn seen_ids(&self, run_id: &str) -> Result<HashSet<ProductId>, StoreError> {
        Ok(self.pages.lock().unwrap().get(run_id).cloned().unwrap_or_default())
    }
    async fn record_full_sync(&self, run: &RunRecord) -> Result<(), StoreError> {
        *self.last_full_sync.lock().unwrap() = Some(run.clone());
        Ok(())
    }
}

impl MemoryState {
    fn mark(&self, id: ProductId, reason: OutOfSyncReason, detail: &str, bump: bool) -> u64 {
        let now = OffsetDateTime::now_utc();
        let mut markers = self.markers.lock().unwrap();
        let marker = markers.entry(id).or_insert_with(|| OutOfSync {
            product_id: id,
            reason,
            detail: String::new(),
            since: now,
            updated_at: now,
            seq: 0,
        });
        marker.reason = reason;
        marker.detail = detail.to_owned();
        marker.updated_at = now;
        marker.seq += u64::from(bump);
        marker.seq
    }
}

impl HealthLog for MemoryState {
    async fn note_pending(&self, id: ProductId, detail: &str) -> Result<u64, StoreError> {
        Ok(self.mark(id, OutOfSyncReason::WebhookPending, detail, true))
    }
    async fn note_out_of_sync(&self, id: ProductId, reason: OutOfSyncReason, detail: &str) -> Result<(), StoreError> {
        self.mark(id, reason, detail, false);
        Ok(())
    }
    async fn clear_out_of_sync(&self, id: ProductId, up_to_seq: u64) -> Result<bool, StoreError> {
        let mut markers = self.markers.lock().unwrap();
        let clear = markers.get(&id).is_some_and(|m| m.seq <= up_to_seq);
        if clear {
            markers.remove(&id);
        }
        Ok(clear)
    }
    async fn out_of_sync(&self) -> Result<Vec<OutOfSync>, StoreError> {
        Ok(self.markers.lock().unwrap().values().cloned().collect())
    }
    async fn record_errors(&self, errors: &[ErrorRecord]) -> Result<(), StoreError> {
        self.errors.lock().unwrap().extend_from_slice(errors);
        Ok(())
    }
}

#[derive(Default)]
pub struct MemoryEvents {
    pub published: Mutex<Vec<ChangeEvent>>,
    pub conflicts: Mutex<Vec<super::external::ConflictResolved>>,
}

impl EventPublisher for MemoryEvents {
    async fn publish(&self, events: &[ChangeEvent]) -> Result<(), PublishError> {
        self.published.lock().unwrap().extend_from_slice(events);
        Ok(())
    }
    async fn publish_conflict(&self, event: &super::external::ConflictResolved) -> Result<(), PublishError> {
        self.conflicts.lock().unwrap().push(event.clone());
        Ok(())
    }
}

pub type MemorySync = FullSync<FakeCatalog, MemoryStore, MemoryState, MemoryEvents>;

pub fn memory_sync(catalog: FakeCatalog, per_page: u32) -> MemorySync {
    FullSync {
        catalog,
        store: MemoryStore::default(),
        state: MemoryState::default(),
        events: MemoryEvents::default(),
        config: FullSyncConfig {
            per_page,
            ..FullSyncConfig::default()
        },
    }
}

pub fn options(owner: &str) -> RunOptions {
    RunOptions {
        trigger: "test".into(),
        lock_owner: owner.into(),
        lock_expires_at_unix: OffsetDateTime::now_utc().unix_timestamp() + 60,
        deadline: tokio::time::Instant::now() + std::time::Duration::from_secs(60),
        max_pages: None,
    }
}

pub fn completed(outcome: RunOutcome) -> RunRecord {
    match outcome {
        RunOutcome::Completed { run } => *run,
        other => panic!("expected a completed run, got {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::Change;

    #[tokio::test]
    async fn a_first_sync_creates_everything_and_a_second_writes_nothing() {
        let sync = memory_sync(FakeCatalog::with(25), 10);
        let first = completed(sync.run(&options("a")).await.unwrap());
        assert_eq!(
            (first.counts.created, first.counts.dynamodb_writes, first.pages),
            (25, 25, 3)
        );
        assert_eq!(sync.events.published.lock().unwrap().len(), 25);
        let second = completed(sync.run(&options("b")).await.unwrap());
        assert_eq!(
            (
                second.counts.unchanged,
                second.counts.dynamodb_writes,
                second.counts.events_published
            ),
            (25, 0, 0)
        );
        assert_eq!(
            sync.events.published.lock().unwrap().len(),
            25,
            "an unchanged sync published events"
        );
    }

    #[tokio::test]
    async fn changes_are_written_and_deletions_confirmed() {
        let catalog = FakeCatalog::with(30);
        let sync = memory_sync(catalog.clone(), 10);
        completed(sync.run(&options("a")).await.unwrap());
        catalog.put(product(4, "2.00", 10));
        catalog.remove(7);
        catalog.put(product(31, "3.00", 10));
        let run = completed(sync.run(&options("b")).await.unwrap());
        assert_eq!(
            (
                run.counts.updated,
                run.counts.deleted,
                run.counts.created,
                run.counts.unchanged
            ),
            (1, 1, 1, 28)
        );
        let items = sync.store.items.lock().unwrap();
        assert!(items[&7].deleted && items[&7].deleted_at.is_some());
        assert_eq!(items[&4].price.to_string(), "2.00");
        let kinds: Vec<Change> = sync.events.published.lock().unwrap()[30..]
            .iter()
            .map(|e| e.change)
            .collect();
        assert_eq!(kinds.len(), 3);
        assert!(
            kinds.contains(&Change::Deleted) && kinds.contains(&Change::Updated) && kinds.contains(&Change::Created)
        );
    }

    #[tokio::test]
    async fn an_empty_catalog_trips_the_deletion_guard() {
        let catalog = FakeCatalog::with(100);
        let sync = memory_sync(catalog.clone(), 50);
        completed(sync.run(&options("a")).await.unwrap());
        catalog.products.lock().unwrap().clear();
        let run = completed(sync.run(&options("b")).await.unwrap());
        assert_eq!((run.counts.deleted, run.counts.delete_candidates), (0, 100));
        assert!(
            run.deletion_refused.as_deref().unwrap().contains("100 of 100"),
            "{:?}",
            run.deletion_refused
        );
        assert_eq!(sync.store.active_ids().await.unwrap().len(), 100);
    }

    #[tokio::test]
    async fn a_paused_run_resumes_where_it_stopped_and_ends_like_an_uninterrupted_one() {
        let catalog = FakeCatalog::with(45);
        let sync = memory_sync(catalog.clone(), 10);
        completed(sync.run(&options("a")).await.unwrap());
        catalog.remove(3);
        catalog.put(product(44, "9.99", 50));
        let mut short = options("b");
        short.max_pages = Some(2);
        let paused = match sync.run(&short).await.unwrap() {
            RunOutcome::Paused { run } => *run,
            other => panic!("{other:?}"),
        };
        assert_eq!(paused.next_page, 3);
        let resumed = completed(sync.run(&options("c")).await.unwrap());
        assert_eq!(resumed.run_id, paused.run_id);
        assert_eq!(
            (resumed.invocations, resumed.counts.deleted, resumed.counts.updated),
            (2, 1, 1)
        );
        // Page 3 onward was read once: after 1 pause, the scan did not restart from page 1.
        assert_eq!(resumed.pages, 5);
    }

    #[tokio::test]
    async fn an_invocation_past_its_deadline_still_moves_the_run_one_page() {
        let sync = memory_sync(FakeCatalog::with(30), 10);
        let mut late = options("late");
        late.deadline = tokio::time::Instant::now();
        let paused = match sync.run(&late).await.unwrap() {
            RunOutcome::Paused { run } => *run,
            other => panic!("{other:?}"),
        };
        assert_eq!((paused.pages, paused.next_page), (1, 2));
    }

    #[tokio::test]
    async fn a_dry_run_and_a_run_agree_when_a_webhook_stored_single_view_fields() {
        use crate::product::DeliveryServer;
        use crate::sync::{ProductWriter, View, WriteContext, WriteSource};
        let sync = memory_sync(FakeCatalog::with(12), 10);
        completed(sync.run(&options("a")).await.unwrap());
        // A webhook stored product 5 from the single view, which carries delivery servers the list does not.
        let mut single = product(5, "1.00", 0);
        single.delivery_servers = vec![DeliveryServer {
            id: Some(1),
            name: Some("Main".into()),
        }];
        let writer = ProductWriter::new(&sync.store, WriteSource::Webhook, WriteContext::default());
        let fetched = OffsetDateTime::now_utc();
        assert_eq!(
            writer
                .upsert_all(&[single], fetched, 1, View::Single)
                .await
                .unwrap()
                .writes,
            1
        );
        let report = sync.dry_run().await.unwrap();
        assert_eq!((report.would_update, report.unchanged), (0, 12), "{report:?}");
        let run = completed(sync.run(&options("b")).await.unwrap());
        assert_eq!((run.counts.updated, run.counts.dynamodb_writes), (0, 0));
        assert_eq!(
            sync.store.items.lock().unwrap()[&5].delivery_servers.len(),
            1,
            "a list read dropped them"
        );
    }

    #[tokio::test]
    async fn a_second_invocation_while_one_holds_the_lock_does_nothing() {
        let sync = memory_sync(FakeCatalog::with(5), 10);
        *sync.state.lock.lock().unwrap() = Some(("other".into(), OffsetDateTime::now_utc().unix_timestamp() + 60));
        assert_eq!(sync.run(&options("me")).await.unwrap(), RunOutcome::Busy);
        assert!(sync.store.items.lock().unwrap().is_empty());
    }
}
