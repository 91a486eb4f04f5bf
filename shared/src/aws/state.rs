//! The sync-state table (`pk`, `sk` strings; TTL on `expires_at`): the run lock, run records and their page
//! checkpoints, the status record.
//!
//! | pk | sk | what |
//! |---|---|---|
//! | `LOCK` | `full_sync` | owner, expires_at: one run at a time |
//! | `RUN` | run id (sorts by start) | the run record |
//! | `RUN_ACTIVE` | `full_sync` | run id of the unfinished run to resume |
//! | `RUNPAGE#<run id>` | page, zero-padded | ids seen on that page (TTL) |
//! | `STATUS` | `STATUS` | last full sync summary, last webhook, counters (see `health.rs`, `deliveries.rs`) |
//!
//! Webhook delivery records, the audit trail, out-of-sync markers and recent errors live in the same table
//! (`deliveries.rs`, `audit.rs`, `health.rs`).

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, PutRequest, TransactWriteItem, WriteRequest};
use time::OffsetDateTime;

use super::{Item, backend_error, conditional, from_item, to_item, transaction};
use crate::product::ProductId;
use crate::sync::{RunRecord, RunStatus, StoreError, SyncState};

/// BatchWriteItem's limit.
const BATCH_WRITE_MAX: usize = 25;

/// A sort key that orders items by time: microseconds since the epoch, zero-padded, then a random suffix so two
/// items of the same microsecond both stay.
pub(super) fn time_sort_key(at: OffsetDateTime) -> String {
    format!("{:020}#{:08x}", crate::sync::micros(at), rand::random::<u32>())
}

/// Checkpoints outlive any run by far, then expire.
const CHECKPOINT_TTL_SECS: i64 = 14 * 24 * 3600;

/// The status record's partition and sort key.
pub(super) const STATUS_KEY: &str = "STATUS";

/// How long audit entries are kept unless configured.
pub const DEFAULT_AUDIT_TTL: std::time::Duration = std::time::Duration::from_secs(90 * 24 * 3600);

#[derive(Clone, Debug)]
pub struct DynamoSyncState {
    client: Client,
    table: String,
    audit_ttl: std::time::Duration,
}

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn key(pk: impl Into<String>, sk: impl Into<String>) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

impl DynamoSyncState {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            audit_ttl: DEFAULT_AUDIT_TTL,
        }
    }

    /// Keeps audit entries this long (DynamoDB TTL).
    pub fn with_audit_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.audit_ttl = ttl;
        self
    }

    pub(super) fn audit_ttl(&self) -> std::time::Duration {
        self.audit_ttl
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub(super) fn client(&self) -> &Client {
        &self.client
    }

    async fn put(&self, mut item: HashMap<String, AttributeValue>, pk: &str, sk: &str) -> Result<(), StoreError> {
        item.extend(key(pk, sk));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| backend_error("PutItem", e))?;
        Ok(())
    }

    pub(super) async fn get(&self, pk: &str, sk: &str) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend_error("GetItem", e))?;
        Ok(output.item)
    }

    pub async fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.get("RUN", run_id).await?.map(from_item).transpose()
    }

    /// Writes `items` with BatchWriteItem (25 at a time), retrying what comes back unprocessed.
    pub(super) async fn batch_put(&self, items: Vec<HashMap<String, AttributeValue>>) -> Result<(), StoreError> {
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            let mut pending: Vec<WriteRequest> = items
                .by_ref()
                .take(BATCH_WRITE_MAX)
                .map(|item| {
                    let put = PutRequest::builder().set_item(Some(item)).build().expect("item is set");
                    WriteRequest::builder().put_request(put).build()
                })
                .collect();
            for attempt in 0..6u32 {
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|e| backend_error("BatchWriteItem", e))?;
                pending = output
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
            }
            if !pending.is_empty() {
                return Err(StoreError::Backend {
                    operation: "BatchWriteItem",
                    message: format!("{} items left unprocessed", pending.len()),
                });
            }
        }
        Ok(())
    }

    /// Creates `item` unless an item with its key exists, and adds one to the status record's `counter`, in one
    /// transaction: `false` (nothing written) when the item already existed.
    pub(super) async fn insert_counted(&self, item: Item, counter: &str) -> Result<bool, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| backend_error("TransactWriteItems", e))?;
        let items = vec![
            TransactWriteItem::builder().put(put).build(),
            self.count_change(counter, 1)?,
        ];
        transaction(&self.client, items).await
    }

    /// Deletes the item at `(pk, sk)` if it exists and `also` holds (an expression over one placeholder and its
    /// value), and subtracts one from the status record's `counter`, in one transaction: `false` (nothing written)
    /// when the item is gone or the condition failed.
    pub(super) async fn delete_counted(
        &self,
        (pk, sk): (&str, &str),
        also: Option<(&str, &str, AttributeValue)>,
        counter: &str,
    ) -> Result<bool, StoreError> {
        let delete = Delete::builder().table_name(&self.table).set_key(Some(key(pk, sk)));
        let delete = match also {
            None => delete.condition_expression("attribute_exists(pk)"),
            Some((expression, placeholder, value)) => delete
                .condition_expression(format!("attribute_exists(pk) AND ({expression})"))
                .expression_attribute_values(placeholder, value),
        };
        let delete = delete.build().map_err(|e| backend_error("TransactWriteItems", e))?;
        let items = vec![
            TransactWriteItem::builder().delete(delete).build(),
            self.count_change(counter, -1)?,
        ];
        transaction(&self.client, items).await
    }

    /// The status record's `attribute` moved by `delta`, as one item of a transaction.
    fn count_change(&self, attribute: &str, delta: i64) -> Result<TransactWriteItem, StoreError> {
        let update = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(STATUS_KEY, STATUS_KEY)))
            .update_expression("ADD #count :delta")
            .expression_attribute_names("#count", attribute)
            .expression_attribute_values(":delta", AttributeValue::N(delta.to_string()))
            .build()
            .map_err(|e| backend_error("TransactWriteItems", e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Every item under `pk`, read consistently page by page and handed to `visit` one at a time (so a long
    /// partition is never held whole).
    pub(super) async fn for_each_under(
        &self,
        pk: &str,
        mut visit: impl FnMut(Item) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk))
            .consistent_read(true)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| backend_error("Query", e))?;
            for item in page.items.unwrap_or_default() {
                visit(item)?;
            }
        }
        Ok(())
    }

    /// Up to `limit` items under `pk`, highest sort key (newest) first: one query.
    pub(super) async fn newest<T: serde::de::DeserializeOwned>(
        &self,
        pk: &str,
        limit: i32,
    ) -> Result<Vec<T>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk))
            .scan_index_forward(false)
            .limit(limit)
            .send()
            .await
            .map_err(|e| backend_error("Query", e))?;
        output.items.unwrap_or_default().into_iter().map(from_item).collect()
    }

    /// The most recent runs, newest first.
    pub async fn recent_runs(&self, limit: i32) -> Result<Vec<RunRecord>, StoreError> {
        self.newest("RUN", limit).await
    }

    /// The status record as JSON (empty object before anything was recorded).
    pub async fn status(&self) -> Result<serde_json::Value, StoreError> {
        match self.get(STATUS_KEY, STATUS_KEY).await? {
            None => Ok(serde_json::json!({})),
            Some(item) => from_item(item),
        }
    }
}

impl SyncState for DynamoSyncState {
    async fn acquire_lock(&self, owner: &str, expires_at_unix: i64) -> Result<bool, StoreError> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let mut item = key("LOCK", "full_sync");
        item.insert("owner".into(), s(owner));
        item.insert("expires_at".into(), AttributeValue::N(expires_at_unix.to_string()));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now OR #owner = :owner")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await;
        conditional("PutItem", result)
    }

    async fn release_lock(&self, owner: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key("LOCK", "full_sync")))
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await;
        // Not deleted: it expired and was taken by someone else meanwhile, so it was not ours to release.
        conditional("DeleteItem", result)?;
        Ok(())
    }

    async fn unfinished_run(&self) -> Result<Option<RunRecord>, StoreError> {
        let Some(pointer) = self.get("RUN_ACTIVE", "full_sync").await? else {
            return Ok(None);
        };
        let run_id = pointer
            .get("run_id")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        Ok(self
            .run(&run_id)
            .await?
            .filter(|run| run.status != RunStatus::Completed))
    }

    async fn save_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        let item = to_item(run)?;
        self.put(item, "RUN", &run.run_id).await?;
        if run.status == RunStatus::Completed {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key("RUN_ACTIVE", "full_sync")))
                .send()
                .await
                .map_err(|e| backend_error("DeleteItem", e))?;
        } else {
            let pointer = HashMap::from([("run_id".to_owned(), s(&run.run_id))]);
            self.put(pointer, "RUN_ACTIVE", "full_sync").await?;
        }
        Ok(())
    }

    async fn checkpoint(&self, run: &RunRecord, page: u32, ids: &[ProductId]) -> Result<(), StoreError> {
        let expires = OffsetDateTime::now_utc().unix_timestamp() + CHECKPOINT_TTL_SECS;
        let item = HashMap::from([
            (
                "ids".to_owned(),
                AttributeValue::L(ids.iter().map(|id| AttributeValue::N(id.to_string())).collect()),
            ),
            ("expires_at".to_owned(), AttributeValue::N(expires.to_string())),
        ]);
        self.put(item, &format!("RUNPAGE#{}", run.run_id), &format!("{page:06}"))
            .await?;
        let record = to_item(run)?;
        self.put(record, "RUN", &run.run_id).await
    }

    async fn seen_ids(&self, run_id: &str) -> Result<HashSet<ProductId>, StoreError> {
        let mut seen = HashSet::new();
        self.for_each_under(&format!("RUNPAGE#{run_id}"), |item| {
            let ids = item.get("ids").and_then(|v| v.as_l().ok()).cloned().unwrap_or_default();
            seen.extend(ids.iter().filter_map(|v| v.as_n().ok()?.parse::<ProductId>().ok()));
            Ok(())
        })
        .await?;
        Ok(seen)
    }

    async fn record_full_sync(&self, run: &RunRecord) -> Result<(), StoreError> {
        let summary: AttributeValue =
            serde_dynamo::to_attribute_value(run).map_err(|e| StoreError::Malformed(e.to_string()))?;
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(STATUS_KEY, STATUS_KEY)))
            .update_expression("SET last_full_sync = :run")
            .expression_attribute_values(":run", summary)
            .send()
            .await
            .map_err(|e| backend_error("UpdateItem", e))?;
        Ok(())
    }
}
