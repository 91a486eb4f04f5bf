//! The sync engine's ports: small traits the engine is written against. Adapters implement them for Pixlpay,
//! DynamoDB and EventBridge; unit tests implement them in memory.

use std::collections::{HashMap, HashSet};
use std::future::Future;

use crate::pixlpay::{ClientStatsSnapshot, PixlpayClient, PixlpayError, ProductChanges, ProductPage};
use crate::product::{Product, ProductId};

use super::audit::AuditEntry;
use super::events::ChangeEvent;
use super::external::ConflictResolved;
use super::health::CountDelta;
use super::item::ProductItem;
use super::run::RunRecord;

/// Storage failures the engine can meet. A conflict is not here: conditional writes report it as `Ok(false)`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{operation} failed: {message}")]
    Backend { operation: &'static str, message: String },
    #[error("stored item is malformed: {0}")]
    Malformed(String),
}

#[derive(Debug, thiserror::Error)]
#[error("publishing {failed} of {total} events failed: {message}")]
pub struct PublishError {
    pub failed: usize,
    pub total: usize,
    pub message: String,
}

/// Pixlpay's catalog, read-only.
pub trait Catalog: Clone + Send + Sync + 'static {
    fn page(&self, page: u32, per_page: u32) -> impl Future<Output = Result<ProductPage, PixlpayError>> + Send;
    fn product(&self, id: ProductId) -> impl Future<Output = Result<Product, PixlpayError>> + Send;
    fn stats(&self) -> ClientStatsSnapshot;
}

impl Catalog for PixlpayClient {
    fn page(&self, page: u32, per_page: u32) -> impl Future<Output = Result<ProductPage, PixlpayError>> + Send {
        self.list_products(page, per_page)
    }
    fn product(&self, id: ProductId) -> impl Future<Output = Result<Product, PixlpayError>> + Send {
        self.get_product(id)
    }
    fn stats(&self) -> ClientStatsSnapshot {
        PixlpayClient::stats(self)
    }
}

/// Pixlpay's (announced) product write endpoint.
pub trait CatalogWrites: Send + Sync {
    fn update(
        &self,
        id: ProductId,
        changes: &ProductChanges,
    ) -> impl Future<Output = Result<Product, PixlpayError>> + Send;
}

impl CatalogWrites for PixlpayClient {
    fn update(
        &self,
        id: ProductId,
        changes: &ProductChanges,
    ) -> impl Future<Output = Result<Product, PixlpayError>> + Send {
        self.update_product(id, changes)
    }
}

/// The Products table.
pub trait ProductStore: Send + Sync {
    /// The stored items for `ids` (any number; batched by the adapter). Missing ids are absent from the map.
    fn get_many(
        &self,
        ids: &[ProductId],
    ) -> impl Future<Output = Result<HashMap<ProductId, ProductItem>, StoreError>> + Send;
    /// Writes `item` if the stored version is still `expected_version` (`None`: no item yet), moving the active and
    /// deleted product counts by `counts` in the same transaction. `Ok(false)` when another writer got there first;
    /// the caller re-reads and decides again.
    fn put_if_version(
        &self,
        item: &ProductItem,
        expected_version: Option<u64>,
        counts: CountDelta,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Ids of every product not soft-deleted.
    fn active_ids(&self) -> impl Future<Output = Result<HashSet<ProductId>, StoreError>> + Send;
}

/// The sync-state table, as far as the full sync uses it.
pub trait SyncState: Send + Sync {
    /// Takes the run lock until `expires_at_unix` unless another owner holds an unexpired one.
    fn acquire_lock(&self, owner: &str, expires_at_unix: i64) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn release_lock(&self, owner: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The unfinished run a new invocation should resume, if any.
    fn unfinished_run(&self) -> impl Future<Output = Result<Option<RunRecord>, StoreError>> + Send;
    /// Creates or replaces the run record (and marks it unfinished while its status says so).
    fn save_run(&self, run: &RunRecord) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Records page `page` of `run_id` as done with the ids it held, and the run's figures so far, in that order.
    fn checkpoint(
        &self,
        run: &RunRecord,
        page: u32,
        ids: &[ProductId],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Every id recorded by `checkpoint` for `run_id`.
    fn seen_ids(&self, run_id: &str) -> impl Future<Output = Result<HashSet<ProductId>, StoreError>> + Send;
    /// Sets the status record's "last full sync" to this run's summary.
    fn record_full_sync(&self, run: &RunRecord) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Where change events go (EventBridge).
pub trait EventPublisher: Send + Sync {
    fn publish(&self, events: &[ChangeEvent]) -> impl Future<Output = Result<(), PublishError>> + Send;
    /// `ProductConflictResolved`: Pixlpay's values stand against an external change.
    fn publish_conflict(&self, event: &ConflictResolved) -> impl Future<Output = Result<(), PublishError>> + Send;
}

/// The audit trail (sync-state table, with a TTL).
pub trait AuditLog: Send + Sync {
    fn append(&self, entries: &[AuditEntry]) -> impl Future<Output = Result<(), StoreError>> + Send;
}
