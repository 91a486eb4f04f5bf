//! Sync health in the sync-state table (see `crate::sync::HealthLog` for what "out of sync" means).
//!
//! | pk | sk | what |
//! |---|---|---|
//! | `OUT_OF_SYNC` | product id | reason, detail, since, updated_at, seq |
//! | `ERROR` | `<µs since epoch, 20 digits>#<random>` | an [`ErrorRecord`], TTL 30 days |
//! | `STATUS` | `STATUS` | `out_of_sync_products`, moved in the same transaction as a marker comes or goes |

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use time::OffsetDateTime;

use super::state::{DynamoSyncState, key, s, time_sort_key};
use super::{conditional, from_item, to_item};
use crate::product::ProductId;
use crate::sync::{ErrorRecord, HealthLog, OutOfSync, OutOfSyncReason, StoreError};

const MARKERS: &str = "OUT_OF_SYNC";
const ERRORS: &str = "ERROR";
const ERROR_TTL_SECS: i64 = 30 * 24 * 3600;
/// A marker appearing and vanishing between our two steps is rare; this many rounds settles it.
const MARK_ATTEMPTS: usize = 5;

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

impl DynamoSyncState {
    /// The newest `limit` error records, newest first.
    pub async fn recent_errors(&self, limit: i32) -> Result<Vec<ErrorRecord>, StoreError> {
        self.newest(ERRORS, limit).await
    }

    /// Up to `limit` markers (one query): what the status lists and counts as stored or not.
    pub async fn first_out_of_sync(&self, limit: i32) -> Result<Vec<OutOfSync>, StoreError> {
        self.newest(MARKERS, limit).await
    }

    /// The marker of one product, if it is out of sync.
    pub async fn out_of_sync_marker(&self, id: ProductId) -> Result<Option<OutOfSync>, StoreError> {
        self.get(MARKERS, &id.to_string()).await?.map(from_item).transpose()
    }

    /// Sets the marker's reason (and bumps its sequence if `bump`), creating it and counting it if there is none.
    /// Returns the marker's sequence number.
    async fn mark(&self, id: ProductId, reason: OutOfSyncReason, detail: &str, bump: bool) -> Result<u64, StoreError> {
        let reason_value = s(serde_json::to_value(reason)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .expect("a reason serialises as a string"));
        for _ in 0..MARK_ATTEMPTS {
            let now = s(crate::timestamp::format(OffsetDateTime::now_utc()));
            let expression = if bump {
                "SET reason = :reason, detail = :detail, updated_at = :now ADD seq :one"
            } else {
                "SET reason = :reason, detail = :detail, updated_at = :now"
            };
            let request = self
                .client()
                .update_item()
                .table_name(self.table())
                .set_key(Some(key(MARKERS, id.to_string())))
                .update_expression(expression)
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":reason", reason_value.clone())
                .expression_attribute_values(":detail", s(detail))
                .expression_attribute_values(":now", now.clone())
                .return_values(ReturnValue::AllNew);
            let request = if bump {
                request.expression_attribute_values(":one", n(1))
            } else {
                request
            };
            match request.send().await {
                Ok(output) => {
                    let seq = output
                        .attributes
                        .and_then(|a| a.get("seq").and_then(|v| v.as_n().ok()?.parse().ok()))
                        .unwrap_or(0);
                    return Ok(seq);
                }
                // Only "no marker yet" goes on to create one; any other failure is returned.
                Err(e) => {
                    conditional("UpdateItem", Err::<(), _>(e))?;
                }
            }
            // No marker yet: create it and count it, unless another writer just did (then update theirs).
            let seq = u64::from(bump);
            let mut item = key(MARKERS, id.to_string());
            item.insert("product_id".into(), n(id));
            item.insert("reason".into(), reason_value.clone());
            item.insert("detail".into(), s(detail));
            item.insert("since".into(), now.clone());
            item.insert("updated_at".into(), now);
            item.insert("seq".into(), n(seq));
            if self.insert_counted(item, "out_of_sync_products").await? {
                return Ok(seq);
            }
        }
        Err(StoreError::Backend {
            operation: "mark out of sync",
            message: format!("the marker of product {id} kept changing"),
        })
    }
}

impl HealthLog for DynamoSyncState {
    async fn note_pending(&self, id: ProductId, detail: &str) -> Result<u64, StoreError> {
        self.mark(id, OutOfSyncReason::WebhookPending, detail, true).await
    }

    async fn note_out_of_sync(&self, id: ProductId, reason: OutOfSyncReason, detail: &str) -> Result<(), StoreError> {
        self.mark(id, reason, detail, false).await.map(|_| ())
    }

    async fn clear_out_of_sync(&self, id: ProductId, up_to_seq: u64) -> Result<bool, StoreError> {
        let also = ("attribute_not_exists(seq) OR seq <= :seq", ":seq", n(up_to_seq));
        self.delete_counted((MARKERS, &id.to_string()), Some(also), "out_of_sync_products")
            .await
    }

    async fn out_of_sync(&self) -> Result<Vec<OutOfSync>, StoreError> {
        let mut markers = Vec::new();
        self.for_each_under(MARKERS, |item| {
            markers.push(from_item(item)?);
            Ok(())
        })
        .await?;
        Ok(markers)
    }

    async fn record_errors(&self, errors: &[ErrorRecord]) -> Result<(), StoreError> {
        let mut items = Vec::with_capacity(errors.len());
        for error in errors {
            let mut item = to_item(error)?;
            item.extend(key(ERRORS, time_sort_key(error.at)));
            item.insert("expires_at".into(), n(error.at.unix_timestamp() + ERROR_TTL_SECS));
            items.push(item);
        }
        self.batch_put(items).await
    }
}
