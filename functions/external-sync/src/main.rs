//! The external-sync Lambda (EventBridge rule on `ExternalProductChanged`): load config, build clients once, handle
//! events. A returned error makes Lambda retry the event, then hand it to the function's dead-letter queue.

use aws_config::BehaviorVersion;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use pixlpay_sync::aws::{DynamoProductStore, DynamoSyncState, EventBridgePublisher, SqsRejects};
use pixlpay_sync::config::{Env, ExternalSyncSettings, PixlpaySettings, StorageSettings};
use pixlpay_sync::handlers::external_sync::{ExternalSync, ExternalSyncConfig};
use pixlpay_sync::pixlpay::PixlpayClient;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = Env(|name: &str| std::env::var(name).ok());
    let pixlpay = PixlpaySettings::from_env(&env)?;
    let storage = StorageSettings::from_env(&env)?;
    let settings = ExternalSyncSettings::from_env(&env)?;
    let aws = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let token = pixlpay.token.resolve(&aws_sdk_ssm::Client::new(&aws)).await?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let sync = ExternalSync {
        catalog: PixlpayClient::new(pixlpay.client_config(token))?,
        store: DynamoProductStore::new(dynamodb.clone(), &storage.products_table, &storage.state_table),
        state: DynamoSyncState::new(dynamodb, &storage.state_table).with_audit_ttl(storage.audit_ttl),
        events: EventBridgePublisher::new(
            aws_sdk_eventbridge::Client::new(&aws),
            &storage.event_bus,
            &storage.event_source,
        ),
        rejects: SqsRejects::new(aws_sdk_sqs::Client::new(&aws), &settings.rejects_queue_url),
        config: ExternalSyncConfig {
            policy: settings.policy,
            writes_enabled: pixlpay.writes_enabled,
        },
    };
    run(service_fn(|event: LambdaEvent<Value>| {
        let sync = &sync;
        async move {
            let outcome = sync.handle(&event.payload).await?;
            Ok::<Value, Error>(serde_json::to_value(outcome)?)
        }
    }))
    .await
}
