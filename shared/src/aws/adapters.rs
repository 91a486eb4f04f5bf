//! What every function that reads Pixlpay and writes the tables starts from, built once per cold start.

use aws_config::{BehaviorVersion, SdkConfig};

use super::{DynamoProductStore, DynamoSyncState, EventBridgePublisher};
use crate::config::{Env, PixlpaySettings, StorageSettings};
use crate::pixlpay::PixlpayClient;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The Pixlpay client and the product, sync-state and event adapters, over one AWS configuration.
pub struct SyncAdapters {
    pub aws: SdkConfig,
    pub pixlpay: PixlpaySettings,
    pub catalog: PixlpayClient,
    pub store: DynamoProductStore,
    pub state: DynamoSyncState,
    pub events: EventBridgePublisher,
}

impl SyncAdapters {
    /// Reads the Pixlpay and storage settings (a bad one fails start-up, before any AWS call), resolves the API
    /// token (from SSM when configured so) and builds the clients.
    pub async fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, BoxError> {
        let pixlpay = PixlpaySettings::from_env(env)?;
        let storage = StorageSettings::from_env(env)?;
        let aws = aws_config::load_defaults(BehaviorVersion::latest()).await;
        let token = pixlpay.token.resolve(&aws_sdk_ssm::Client::new(&aws)).await?;
        let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
        Ok(Self {
            catalog: PixlpayClient::new(pixlpay.client_config(token))?,
            store: DynamoProductStore::new(dynamodb.clone(), &storage.products_table, &storage.state_table),
            state: DynamoSyncState::new(dynamodb, &storage.state_table).with_audit_ttl(storage.audit_ttl),
            events: EventBridgePublisher::new(
                aws_sdk_eventbridge::Client::new(&aws),
                &storage.event_bus,
                &storage.event_source,
            ),
            aws,
            pixlpay,
        })
    }
}
