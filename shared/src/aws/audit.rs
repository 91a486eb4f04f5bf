//! The audit trail in the sync-state table: `pk = AUDIT#<product id>`, `sk = <µs since epoch, 20 digits>#<random>`
//! (sorts by time), TTL `expires_at` (90 days unless configured).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};

use super::state::{DynamoSyncState, s};
use super::{backend_error, to_item};
use crate::product::ProductId;
use crate::sync::{AuditEntry, AuditLog, StoreError, micros};

/// BatchWriteItem's limit.
const BATCH: usize = 25;

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
        for batch in entries.chunks(BATCH) {
            let mut requests = Vec::with_capacity(batch.len());
            for entry in batch {
                let mut item: HashMap<String, AttributeValue> = to_item(entry)?;
                let expires = entry.at.unix_timestamp() + self.audit_ttl().as_secs() as i64;
                item.insert("pk".into(), s(audit_pk(entry.product_id)));
                item.insert(
                    "sk".into(),
                    s(format!("{:020}#{:08x}", micros(entry.at), rand::random::<u32>())),
                );
                item.insert("expires_at".into(), AttributeValue::N(expires.to_string()));
                let put = PutRequest::builder().set_item(Some(item)).build().expect("item is set");
                requests.push(WriteRequest::builder().put_request(put).build());
            }
            let mut pending = requests;
            for attempt in 0..6u32 {
                let output = self
                    .client()
                    .batch_write_item()
                    .request_items(self.table(), pending)
                    .send()
                    .await
                    .map_err(|e| backend_error("BatchWriteItem", e))?;
                pending = output
                    .unprocessed_items
                    .and_then(|mut u| u.remove(self.table()))
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
            }
            if !pending.is_empty() {
                return Err(StoreError::Backend {
                    operation: "BatchWriteItem",
                    message: format!("{} audit entries left unprocessed", pending.len()),
                });
            }
        }
        Ok(())
    }
}
