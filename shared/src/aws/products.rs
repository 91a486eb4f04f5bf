//! The Products table in DynamoDB: batched consistent reads, writes conditional on the version read, and the scan
//! of active ids that mark-and-sweep needs. A write that creates, deletes or restores a product moves the active and
//! deleted counts on the sync-state table's status record in the same transaction, so the counts never drift.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem, Update};

use super::state::{STATUS_KEY, key};
use super::{backend_error, conditional, from_item, to_item, transaction};
use crate::product::ProductId;
use crate::sync::{CountDelta, ProductItem, ProductStore, StoreError};

/// BatchGetItem's limit.
const BATCH_GET_MAX: usize = 100;

#[derive(Clone, Debug)]
pub struct DynamoProductStore {
    client: Client,
    table: String,
    /// The sync-state table, whose status record holds the product counts.
    state_table: String,
}

impl DynamoProductStore {
    pub fn new(client: Client, table: impl Into<String>, state_table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            state_table: state_table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn key(id: ProductId) -> HashMap<String, AttributeValue> {
        HashMap::from([("product_id".to_owned(), AttributeValue::N(id.to_string()))])
    }

    pub async fn get(&self, id: ProductId) -> Result<Option<ProductItem>, StoreError> {
        Ok(self.get_many(&[id]).await?.remove(&id))
    }
}

impl ProductStore for DynamoProductStore {
    async fn get_many(&self, ids: &[ProductId]) -> Result<HashMap<ProductId, ProductItem>, StoreError> {
        let mut found = HashMap::with_capacity(ids.len());
        let unique: Vec<ProductId> = ids.iter().copied().collect::<HashSet<_>>().into_iter().collect();
        for chunk in unique.chunks(BATCH_GET_MAX) {
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.iter().map(|id| Self::key(*id)).collect()))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| backend_error("BatchGetItem", e))?,
            );
            let mut attempt = 0u32;
            while let Some(keys) = request.take() {
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, keys)
                    .send()
                    .await
                    .map_err(|e| backend_error("BatchGetItem", e))?;
                for item in output
                    .responses
                    .unwrap_or_default()
                    .remove(&self.table)
                    .unwrap_or_default()
                {
                    let item: ProductItem = from_item(item)?;
                    found.insert(item.product_id, item);
                }
                // Throttled keys come back unprocessed: ask again after a short, growing pause.
                request = output
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .filter(|k| !k.keys.is_empty());
                if request.is_some() {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt.min(20)))).await;
                }
            }
        }
        Ok(found)
    }

    async fn put_if_version(
        &self,
        item: &ProductItem,
        expected_version: Option<u64>,
        counts: CountDelta,
    ) -> Result<bool, StoreError> {
        let attributes = to_item(item)?;
        let (condition, expected) = match expected_version {
            None => ("attribute_not_exists(product_id)", None),
            Some(v) => ("#version = :expected", Some(AttributeValue::N(v.to_string()))),
        };
        if counts.is_zero() {
            let request = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(attributes))
                .condition_expression(condition);
            let request = match expected {
                None => request,
                Some(v) => request
                    .expression_attribute_names("#version", "version")
                    .expression_attribute_values(":expected", v),
            };
            return conditional("PutItem", request.send().await);
        }
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(attributes))
            .condition_expression(condition);
        let put = match expected {
            None => put,
            Some(v) => put
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":expected", v),
        };
        let count = Update::builder()
            .table_name(&self.state_table)
            .set_key(Some(key(STATUS_KEY, STATUS_KEY)))
            .update_expression("ADD active_products :active, deleted_products :deleted")
            .expression_attribute_values(":active", AttributeValue::N(counts.active.to_string()))
            .expression_attribute_values(":deleted", AttributeValue::N(counts.deleted.to_string()));
        let items = vec![
            TransactWriteItem::builder()
                .put(put.build().map_err(|e| backend_error("TransactWriteItems", e))?)
                .build(),
            TransactWriteItem::builder()
                .update(count.build().map_err(|e| backend_error("TransactWriteItems", e))?)
                .build(),
        ];
        transaction(&self.client, items).await
    }

    async fn active_ids(&self) -> Result<HashSet<ProductId>, StoreError> {
        let mut ids = HashSet::new();
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .projection_expression("product_id")
            .filter_expression("attribute_not_exists(#deleted) OR #deleted = :no")
            .expression_attribute_names("#deleted", "deleted")
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| backend_error("Scan", e))?;
            for item in page.items.unwrap_or_default() {
                let id = item
                    .get("product_id")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| StoreError::Malformed("item without a numeric product_id".into()))?;
                ids.insert(id);
            }
        }
        Ok(ids)
    }
}
