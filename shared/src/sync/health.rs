//! Sync health, kept by the writers so `GET /status` reads a handful of items whatever the catalog size:
//! which products are out of sync and why (one marker per product, counted atomically as markers come and go),
//! how many products are active and deleted (counted atomically with the writes that change it), and recent errors.
//!
//! A product is **out of sync** while the sync knows the table may not match Pixlpay for it:
//! - webhook work for it is queued and not yet applied ([`OutOfSyncReason::WebhookPending`]), or failed
//!   ([`OutOfSyncReason::WebhookFailed`]: SQS retries it, then the DLQ keeps it);
//! - the last full sync found it different or missing and could not bring the table in line: Pixlpay serves it but it
//!   fails validation ([`OutOfSyncReason::Invalid`]), or it is missing from Pixlpay's catalog but was not deleted (the
//!   deletion guard refused, or the 404 could not be confirmed: [`OutOfSyncReason::MissingFromPixlpay`]);
//! - an external change waits to be pushed to Pixlpay ([`OutOfSyncReason::PushPending`]).
//!
//! It is in sync otherwise. A marker goes when the work behind it succeeds: the worker applies the product, or a later
//! full sync reads and stores it. Markers carry a sequence number that every new webhook bumps, so finishing older
//! work never clears a marker that newer, still-queued work set.

use std::future::Future;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::events::WriteContext;
use super::item::{ProductItem, WriteSource};
use super::ports::StoreError;
use crate::product::ProductId;
use crate::timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutOfSyncReason {
    WebhookPending,
    WebhookFailed,
    Invalid,
    MissingFromPixlpay,
    PushPending,
}

/// One out-of-sync marker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutOfSync {
    pub product_id: ProductId,
    pub reason: OutOfSyncReason,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// When the product went out of sync (kept across later marks).
    #[serde(with = "timestamp::required")]
    pub since: OffsetDateTime,
    /// The latest mark.
    #[serde(with = "timestamp::required")]
    pub updated_at: OffsetDateTime,
    /// Bumped by every webhook for the product; work carries the value it was queued with.
    #[serde(default)]
    pub seq: u64,
}

/// How a write moves the active and deleted product counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CountDelta {
    pub active: i64,
    pub deleted: i64,
}

impl CountDelta {
    /// The change in counts when `after` replaces `before` (`None`: a new product).
    pub fn between(before: Option<&ProductItem>, after: &ProductItem) -> Self {
        let count = |item: Option<&ProductItem>| match item {
            None => (0, 0),
            Some(i) if i.deleted => (0, 1),
            Some(_) => (1, 0),
        };
        let (active_before, deleted_before) = count(before);
        let (active_after, deleted_after) = count(Some(after));
        Self {
            active: active_after - active_before,
            deleted: deleted_after - deleted_before,
        }
    }

    pub fn is_zero(self) -> bool {
        self == Self::default()
    }
}

/// One entry of the recent-errors list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorRecord {
    #[serde(with = "timestamp::required")]
    pub at: OffsetDateTime,
    pub source: WriteSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<ProductId>,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
}

impl ErrorRecord {
    pub fn new(
        source: WriteSource,
        context: &WriteContext,
        product_id: Option<ProductId>,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            at: OffsetDateTime::now_utc(),
            source,
            product_id,
            reason: reason.into(),
            run_id: context.run_id.clone(),
            delivery_id: context.delivery_id.clone(),
        }
    }
}

/// Where the writers keep health (the sync-state table).
pub trait HealthLog: Send + Sync {
    /// Marks webhook work for `id` as queued and returns the marker's new sequence number, which the work carries.
    fn note_pending(&self, id: ProductId, detail: &str) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Marks `id` out of sync for `reason` without moving its sequence number.
    fn note_out_of_sync(
        &self,
        id: ProductId,
        reason: OutOfSyncReason,
        detail: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Removes the marker of `id` unless newer work bumped it past `up_to_seq`. `Ok(true)` when one was removed.
    fn clear_out_of_sync(&self, id: ProductId, up_to_seq: u64)
    -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Every marker (one query over the markers alone: bounded by how many products are out of sync).
    fn out_of_sync(&self) -> impl Future<Output = Result<Vec<OutOfSync>, StoreError>> + Send;
    fn record_errors(&self, errors: &[ErrorRecord]) -> impl Future<Output = Result<(), StoreError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::fakes::product;

    fn item(deleted: bool) -> ProductItem {
        let p = product(1, "1.00", 0);
        let now = OffsetDateTime::now_utc();
        let mut item = ProductItem::new(&p, p.content_hash(), WriteSource::FullSync, now, now, None);
        item.deleted = deleted;
        item
    }

    #[test]
    fn counts_move_only_when_a_product_appears_disappears_or_returns() {
        let (active, deleted) = (item(false), item(true));
        let delta = |a, d| CountDelta { active: a, deleted: d };
        assert_eq!(CountDelta::between(None, &active), delta(1, 0));
        assert_eq!(CountDelta::between(Some(&active), &active), delta(0, 0));
        assert_eq!(CountDelta::between(Some(&active), &deleted), delta(-1, 1));
        assert_eq!(CountDelta::between(Some(&deleted), &active), delta(1, -1));
        assert_eq!(CountDelta::between(Some(&deleted), &deleted), delta(0, 0));
        assert!(CountDelta::between(Some(&active), &active).is_zero());
    }
}
