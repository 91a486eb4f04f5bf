//! Adapters at the edge: the ports of [`crate::sync`] implemented on DynamoDB and EventBridge, secrets from SSM,
//! and table creation for local runs (in AWS the SAM template creates the tables).

mod adapters;
mod audit;
mod deliveries;
mod eventbridge;
mod health;
mod products;
mod provision;
mod pushes;
mod secrets;
mod sqs;
mod state;

pub use adapters::SyncAdapters;
pub use eventbridge::EventBridgePublisher;
pub use products::DynamoProductStore;
pub use provision::{create_products_table, create_state_table};
pub use secrets::{SecretSource, SecretSourceError};
pub use sqs::{SqsRejects, SqsWorkQueue, queue_depth};
pub use state::{DEFAULT_AUDIT_TTL, DynamoSyncState};

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Serialize, de::DeserializeOwned};

use crate::sync::StoreError;

type Item = HashMap<String, AttributeValue>;

/// A DynamoDB item as `T`; a mismatch is a malformed stored item.
pub(crate) fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Malformed(e.to_string()))
}

/// `value` as DynamoDB attributes.
pub(crate) fn to_item<T: Serialize>(value: &T) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::Malformed(e.to_string()))
}

/// A conditional write's outcome: `Ok(true)` when it was applied, `Ok(false)` when only its condition failed
/// (another writer got there first), the error otherwise.
pub(crate) fn conditional<T, E, R>(
    operation: &'static str,
    result: Result<T, aws_sdk_dynamodb::error::SdkError<E, R>>,
) -> Result<bool, StoreError>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(backend_error(operation, e)),
    }
}

/// Runs a transaction whose first item carries the condition that matters: `Ok(false)` when the transaction was
/// cancelled only because a condition failed, as [`conditional`] does for single writes.
pub(crate) async fn transaction(
    client: &aws_sdk_dynamodb::Client,
    items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
) -> Result<bool, StoreError> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    match client
        .transact_write_items()
        .set_transact_items(Some(items))
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) => {
            if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) = e.as_service_error() {
                let reasons = cancelled.cancellation_reasons();
                let only_conditions = reasons
                    .iter()
                    .all(|r| matches!(r.code(), None | Some("None") | Some("ConditionalCheckFailed")));
                if only_conditions && reasons.iter().any(|r| r.code() == Some("ConditionalCheckFailed")) {
                    return Ok(false);
                }
            }
            Err(backend_error("TransactWriteItems", e))
        }
    }
}

/// An SDK error as a `StoreError`, with the whole context (service code and message), which `Display` alone hides.
pub(crate) fn backend_error(operation: &'static str, error: impl std::error::Error) -> StoreError {
    StoreError::Backend {
        operation,
        message: aws_sdk_dynamodb::error::DisplayErrorContext(error).to_string(),
    }
}
