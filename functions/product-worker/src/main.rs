//! The product-worker Lambda (SQS, `ReportBatchItemFailures`): load config, build clients once, serve batches.

use std::time::{Duration, UNIX_EPOCH};

use aws_config::BehaviorVersion;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use pixlpay_sync::aws::{DynamoProductStore, DynamoSyncState, EventBridgePublisher, SqsWorkQueue};
use pixlpay_sync::config::{Env, PixlpaySettings, StorageSettings, worker_config};
use pixlpay_sync::handlers::product_worker::handle;
use pixlpay_sync::pixlpay::PixlpayClient;
use pixlpay_sync::sync::ProductWorker;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = Env(|name: &str| std::env::var(name).ok());
    let pixlpay = PixlpaySettings::from_env(&env)?;
    let storage = StorageSettings::from_env(&env)?;
    let queue_url = env.required("WORK_QUEUE_URL")?;
    let config = worker_config(&env)?;
    let aws = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let token = pixlpay.token.resolve(&aws_sdk_ssm::Client::new(&aws)).await?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let worker = ProductWorker {
        catalog: PixlpayClient::new(pixlpay.client_config(token))?,
        store: DynamoProductStore::new(dynamodb.clone(), &storage.products_table, &storage.state_table),
        events: EventBridgePublisher::new(
            aws_sdk_eventbridge::Client::new(&aws),
            &storage.event_bus,
            &storage.event_source,
        ),
        queue: SqsWorkQueue::new(aws_sdk_sqs::Client::new(&aws), queue_url),
        state: DynamoSyncState::new(dynamodb, &storage.state_table).with_audit_ttl(storage.audit_ttl),
        config,
    };
    run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let worker = &worker;
        async move {
            let deadline = UNIX_EPOCH + Duration::from_millis(event.context.deadline);
            Ok::<SqsBatchResponse, Error>(handle(worker, &event.payload, deadline).await)
        }
    }))
    .await
}
