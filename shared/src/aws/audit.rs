//! The audit trail in the sync-state table: `pk = AUDIT#<product id>`, `sk = <µs since epoch, 20 digits>#<random>`
//! (sorts by time), TTL `expires_at` (90 days unless configured).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::state::{DynamoSyncState, s, time_sort_key};
use super::to_item;
use crate::product::ProductId;
use crate::sync::{AuditEntry, AuditLog, StoreError};

fn audit_pk(product_id: ProductId) -> String {
    format!("AUDIT#{product_id}")
}

impl DynamoSyncState {
    /// The newest `limit` audit entries of a product, newest first.
    pub async fn audit_entries(&self, product_id: ProductId, limit: i32) -> Result<Vec<AuditEntry>, StoreError> {
        self.newest(&audit_pk(product_id), limit).await
    }
}

impl AuditLog for DynamoSyncState {
    async fn append(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        let mut items = Vec::with_capacity(entries.len());
        for entry in entries {
            let mut item: HashMap<String, AttributeValue> = to_item(entry)?;
            let expires = entry.at.unix_timestamp() + self.audit_ttl().as_secs() as i64;
            item.insert("pk".into(), s(audit_pk(entry.product_id)));
            item.insert("sk".into(), s(time_sort_key(entry.at)));
            item.insert("expires_at".into(), AttributeValue::N(expires.to_string()));
            items.push(item);
        }
        self.batch_put(items).await
    }
}
