//! The full-sync Lambda: load config (failing start-up on a bad setting), build clients once, serve invocations.

use std::time::{Duration, UNIX_EPOCH};

use aws_config::BehaviorVersion;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use pixlpay_sync::aws::{DynamoProductStore, DynamoSyncState, EventBridgePublisher};
use pixlpay_sync::config::{Env, PixlpaySettings, StorageSettings, full_sync_config};
use pixlpay_sync::handlers::full_sync::handle;
use pixlpay_sync::pixlpay::PixlpayClient;
use pixlpay_sync::sync::FullSync;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = Env(|name: &str| std::env::var(name).ok());
    let pixlpay = PixlpaySettings::from_env(&env)?;
    let storage = StorageSettings::from_env(&env)?;
    let config = full_sync_config(&env)?;
    let aws = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let token = pixlpay.token.resolve(&aws_sdk_ssm::Client::new(&aws)).await?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let sync = FullSync {
        catalog: PixlpayClient::new(pixlpay.client_config(token))?,
        store: DynamoProductStore::new(dynamodb.clone(), &storage.products_table, &storage.state_table),
        state: DynamoSyncState::new(dynamodb, &storage.state_table).with_audit_ttl(storage.audit_ttl),
        events: EventBridgePublisher::new(
            aws_sdk_eventbridge::Client::new(&aws),
            &storage.event_bus,
            &storage.event_source,
        ),
        config,
    };
    run(service_fn(|event: LambdaEvent<Value>| {
        let sync = &sync;
        async move {
            let deadline = UNIX_EPOCH + Duration::from_millis(event.context.deadline);
            Ok::<Value, Error>(handle(sync, &event.payload, &event.context.request_id, deadline).await?)
        }
    }))
    .await
}
