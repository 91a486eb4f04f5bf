//! The change events every interested system receives on EventBridge (`source` configurable, default
//! `pixlpay-sync`; `detail-type` ProductCreated / ProductUpdated / ProductDeleted / ProductRestored).

use serde::{Deserialize, Serialize};

use super::decide::Change;
use super::item::{ProductItem, WriteSource};
use crate::product::ProductId;

/// The `origin` this bundle stamps on what it publishes, so its own events are never taken for external changes.
pub const ORIGIN: &str = "pixlpay-sync";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeEvent {
    pub change: Change,
    pub product_id: ProductId,
    pub external_id: String,
    /// The product as now stored (for `deleted`, the last state, with `deleted: true`).
    pub product: ProductItem,
    /// `None` for a product seen for the first time.
    pub previous_content_hash: Option<String>,
    pub source: WriteSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
    pub origin: String,
}

/// Which run or delivery caused a write: carried into events (and logs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteContext {
    pub run_id: Option<String>,
    pub delivery_id: Option<String>,
}

impl ChangeEvent {
    pub fn new(change: Change, item: ProductItem, previous: Option<&ProductItem>, context: &WriteContext) -> Self {
        Self {
            change,
            product_id: item.product_id,
            external_id: item.external_id.clone(),
            previous_content_hash: previous.map(|p| p.content_hash.clone()),
            source: item.source,
            product: item,
            run_id: context.run_id.clone(),
            delivery_id: context.delivery_id.clone(),
            origin: ORIGIN.to_owned(),
        }
    }
}
