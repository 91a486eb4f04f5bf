//! Adapters at the edge: the ports of [`crate::sync`] implemented on DynamoDB and EventBridge, secrets from SSM,
//! and table creation for local runs (in AWS the SAM template creates the tables).

mod eventbridge;
mod products;
mod provision;
mod secrets;
mod state;

pub use eventbridge::EventBridgePublisher;
pub use products::DynamoProductStore;
pub use provision::{create_products_table, create_state_table};
pub use secrets::{SecretSource, SecretSourceError};
pub use state::DynamoSyncState;

use crate::sync::StoreError;

/// An SDK error as a `StoreError`, with the whole context (service code and message), which `Display` alone hides.
pub(crate) fn backend_error(operation: &'static str, error: impl std::error::Error) -> StoreError {
    StoreError::Backend {
        operation,
        message: aws_sdk_dynamodb::error::DisplayErrorContext(error).to_string(),
    }
}
