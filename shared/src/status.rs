//! What `GET /status` and `GET /status/products/{id}` answer, assembled from a handful of reads (see
//! `handlers::status`). Pure: the figures come in, the report goes out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::ingest::WebhookSeen;
use crate::product::{Product, ProductId};
use crate::sync::{
    AuditEntry, ErrorRecord, OutOfSync, ProductItem, RunRecord, RunStatus, WriteSource, field_differences,
    single_view_fields,
};
use crate::timestamp;

/// The status record (`STATUS`/`STATUS` in the sync-state table) as the writers keep it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct StatusRecord {
    pub last_full_sync: Option<RunRecord>,
    pub last_webhook: Option<WebhookSeen>,
    pub active_products: i64,
    pub deleted_products: i64,
    pub out_of_sync_products: i64,
    pub pending_pushes: i64,
    /// Every other attribute; the `webhooks_<outcome>` counters among them.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

impl StatusRecord {
    /// `webhooks_<outcome>` counters, by outcome.
    pub fn webhook_counts(&self) -> BTreeMap<String, u64> {
        self.other
            .iter()
            .filter_map(|(name, value)| Some((name.strip_prefix("webhooks_")?.to_owned(), value.as_u64()?)))
            .collect()
    }
}

/// Messages in an SQS queue, as SQS approximates them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueDepth {
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
}

impl QueueDepth {
    pub fn total(&self) -> u64 {
        self.visible + self.in_flight + self.delayed
    }
}

/// The out-of-sync markers the status reads (up to a limit), and which of them are for products the table holds.
#[derive(Debug, Clone, Default)]
pub struct MarkerSample {
    pub markers: Vec<OutOfSync>,
    /// How many of `markers` belong to stored products.
    pub stored: usize,
    /// Whether `markers` holds every marker.
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProductFigures {
    pub active: i64,
    pub deleted: i64,
    /// Stored products (active or deleted) not out of sync.
    pub in_sync: i64,
    /// Products (stored or not) out of sync; see `sync::HealthLog` for the definition.
    pub out_of_sync: i64,
    /// `false` when more products are out of sync than the status reads one by one: `in_sync` is then a lower
    /// bound (every out-of-sync product counted as stored).
    pub in_sync_exact: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastFullSync {
    pub run_id: String,
    pub trigger: String,
    pub status: RunStatus,
    #[serde(with = "timestamp::required")]
    pub started_at: OffsetDateTime,
    #[serde(with = "timestamp::option")]
    pub ended_at: Option<OffsetDateTime>,
    pub duration_ms: u64,
    /// Products the run found different or missing and brought in line (created, updated, restored, deleted).
    pub corrected: u64,
    pub counts: crate::sync::RunCounts,
    pub deletion_refused: Option<String>,
    pub errors: Vec<String>,
}

impl From<&RunRecord> for LastFullSync {
    fn from(run: &RunRecord) -> Self {
        let c = &run.counts;
        Self {
            run_id: run.run_id.clone(),
            trigger: run.trigger.clone(),
            status: run.status,
            started_at: run.started_at,
            ended_at: run.ended_at,
            duration_ms: run.duration_ms,
            corrected: c.created + c.updated + c.restored + c.deleted,
            counts: c.clone(),
            deletion_refused: run.deletion_refused.clone(),
            errors: run.errors.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Queues {
    pub work: QueueDepth,
    pub dead_letter: QueueDepth,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusReport {
    #[serde(with = "timestamp::required")]
    pub generated_at: OffsetDateTime,
    /// Everything in line: a completed full sync, nothing out of sync, no work queued or dead-lettered, no pending
    /// pushes.
    pub in_sync: bool,
    pub products: ProductFigures,
    pub last_full_sync: Option<LastFullSync>,
    pub last_webhook: Option<WebhookSeen>,
    /// Verified webhooks by outcome (`queued`, `duplicate`, `ignored`).
    pub webhooks: BTreeMap<String, u64>,
    pub queues: Queues,
    pub pending_pushes: i64,
    /// Some of the products out of sync, with why.
    pub out_of_sync: Vec<OutOfSync>,
    /// Newest first.
    pub recent_errors: Vec<ErrorRecord>,
}

/// How many out-of-sync markers a report lists.
pub const LISTED_MARKERS: usize = 20;

impl StatusReport {
    pub fn assemble(
        record: &StatusRecord,
        sample: &MarkerSample,
        queues: Queues,
        recent_errors: Vec<ErrorRecord>,
        now: OffsetDateTime,
    ) -> Self {
        let stored = record.active_products + record.deleted_products;
        let stored_out_of_sync = if sample.complete {
            sample.stored as i64
        } else {
            record.out_of_sync_products
        };
        let products = ProductFigures {
            active: record.active_products,
            deleted: record.deleted_products,
            in_sync: (stored - stored_out_of_sync).max(0),
            out_of_sync: record.out_of_sync_products,
            in_sync_exact: sample.complete,
        };
        let full_sync_done = record
            .last_full_sync
            .as_ref()
            .is_some_and(|run| run.status == RunStatus::Completed);
        let in_sync = full_sync_done
            && products.out_of_sync == 0
            && queues.work.total() == 0
            && queues.dead_letter.total() == 0
            && record.pending_pushes == 0;
        Self {
            generated_at: now,
            in_sync,
            products,
            last_full_sync: record.last_full_sync.as_ref().map(LastFullSync::from),
            last_webhook: record.last_webhook.clone(),
            webhooks: record.webhook_counts(),
            queues,
            pending_pushes: record.pending_pushes,
            out_of_sync: sample.markers.iter().take(LISTED_MARKERS).cloned().collect(),
            recent_errors,
        }
    }
}

/// One product attribute that differs between the table and Pixlpay.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveDifference {
    pub field: String,
    pub stored: Value,
    pub live: Value,
}

/// The product as Pixlpay serves it now, against the table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveComparison {
    #[serde(with = "timestamp::required")]
    pub fetched_at: OffsetDateTime,
    /// `None`: Pixlpay answered 404.
    pub product: Option<Product>,
    pub in_sync: bool,
    pub differences: Vec<LiveDifference>,
    /// Fields Pixlpay only shows on a single read, which the table has never held because only list reads stored
    /// the product: not a difference the sync could have avoided, so not counted against `in_sync`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_compared: Vec<String>,
}

impl LiveComparison {
    /// Compares what the table holds with what Pixlpay served (`None`: 404) at `fetched_at`. The sync's own
    /// bookkeeping is not compared, nor single-view fields the table never held; a product Pixlpay no longer has is
    /// in sync only if the table has it deleted.
    pub fn compare(stored: &ProductItem, live: Option<Product>, fetched_at: OffsetDateTime) -> Self {
        let never_held: Vec<&str> = single_view_fields(stored)
            .into_iter()
            .filter(|(_, held)| !held)
            .map(|(name, _)| name)
            .collect();
        let mut not_compared = Vec::new();
        let differences = match &live {
            Some(product) => {
                let as_item = ProductItem::new(
                    product,
                    product.content_hash(),
                    WriteSource::FullSync,
                    fetched_at,
                    fetched_at,
                    None,
                );
                field_differences(Some(stored), &as_item)
                    .into_iter()
                    .filter(|d| {
                        let skip = never_held.contains(&d.field.as_str());
                        if skip {
                            not_compared.push(d.field.clone());
                        }
                        !skip
                    })
                    .map(|d| LiveDifference {
                        field: d.field,
                        stored: d.before,
                        live: d.after,
                    })
                    .collect()
            }
            None if stored.deleted => Vec::new(),
            None => vec![LiveDifference {
                field: "deleted".into(),
                stored: Value::Bool(false),
                live: Value::Bool(true),
            }],
        };
        Self {
            fetched_at,
            in_sync: differences.is_empty(),
            product: live,
            differences,
            not_compared,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProductStatus {
    pub product_id: ProductId,
    pub stored: ProductItem,
    /// Why the sync holds it out of sync, if it does.
    pub out_of_sync: Option<OutOfSync>,
    /// The newest audit entries, newest first.
    pub history: Vec<AuditEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveComparison>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::sync::OutOfSyncReason;

    fn item(price: &str, deleted: bool) -> ProductItem {
        let p = product(price);
        let now = OffsetDateTime::now_utc();
        let mut item = ProductItem::new(&p, p.content_hash(), WriteSource::Webhook, now, now, None);
        item.deleted = deleted;
        item
    }

    fn product(price: &str) -> Product {
        Product::from_json(json!({"id": 5, "name": "Crate", "price": price, "updated_at": "2026-01-01T00:00:00Z"}))
            .unwrap()
    }

    #[test]
    fn the_live_diff_names_each_changed_field_and_ignores_bookkeeping() {
        let now = OffsetDateTime::now_utc();
        let same = LiveComparison::compare(&item("4.99", false), Some(product("4.99")), now);
        assert!(same.in_sync && same.differences.is_empty(), "{same:?}");
        let changed = LiveComparison::compare(&item("4.99", false), Some(product("5.49")), now);
        assert!(!changed.in_sync);
        assert_eq!(
            changed.differences,
            [LiveDifference {
                field: "price".into(),
                stored: json!("4.99"),
                live: json!("5.49")
            }]
        );
        // A list read never learns the delivery servers: not held against the table until a single read stored them.
        let mut with_servers = product("4.99");
        with_servers.delivery_servers = serde_json::from_value(json!([{"id": 1, "name": "Main"}])).unwrap();
        let listed = LiveComparison::compare(&item("4.99", false), Some(with_servers.clone()), now);
        assert!(
            listed.in_sync && listed.not_compared == ["delivery_servers"],
            "{listed:?}"
        );
        let mut held = item("4.99", false);
        held.delivery_servers = serde_json::from_value(json!([{"id": 1, "name": "Old"}])).unwrap();
        let moved = LiveComparison::compare(&held, Some(with_servers), now);
        assert_eq!(moved.differences[0].field, "delivery_servers");
        // Gone from Pixlpay: in sync only if the table has it deleted.
        assert!(LiveComparison::compare(&item("4.99", true), None, now).in_sync);
        let missing = LiveComparison::compare(&item("4.99", false), None, now);
        assert_eq!(missing.differences[0].field, "deleted");
        // Deleted here, alive there.
        let revived = LiveComparison::compare(&item("4.99", true), Some(product("4.99")), now);
        assert_eq!(revived.differences[0].field, "deleted");
    }

    fn record(value: Value) -> StatusRecord {
        serde_json::from_value(value).unwrap()
    }

    fn marker(id: ProductId) -> OutOfSync {
        let now = OffsetDateTime::now_utc();
        OutOfSync {
            product_id: id,
            reason: OutOfSyncReason::Invalid,
            detail: String::new(),
            since: now,
            updated_at: now,
            seq: 0,
        }
    }

    #[test]
    fn figures_come_from_the_counters_and_only_stored_markers_reduce_in_sync() {
        let status = record(
            json!({"active_products": 9, "deleted_products": 1, "out_of_sync_products": 2,
            "webhooks_queued": 3, "webhooks_duplicate": 1, "other": "x"}),
        );
        let sample = MarkerSample {
            markers: vec![marker(4), marker(12)],
            stored: 1,
            complete: true,
        };
        let empty = Queues {
            work: QueueDepth::default(),
            dead_letter: QueueDepth::default(),
        };
        let report = StatusReport::assemble(&status, &sample, empty.clone(), vec![], OffsetDateTime::now_utc());
        assert_eq!(
            report.products,
            ProductFigures {
                active: 9,
                deleted: 1,
                in_sync: 9,
                out_of_sync: 2,
                in_sync_exact: true
            }
        );
        assert_eq!(
            report.webhooks,
            BTreeMap::from([("queued".into(), 3), ("duplicate".into(), 1)])
        );
        assert!(
            !report.in_sync,
            "products are out of sync and no full sync has completed"
        );
        // Too many markers to read them all: every out-of-sync product is assumed stored.
        let partial = MarkerSample {
            complete: false,
            ..sample
        };
        let report = StatusReport::assemble(&status, &partial, empty, vec![], OffsetDateTime::now_utc());
        assert_eq!((report.products.in_sync, report.products.in_sync_exact), (8, false));
    }
}
