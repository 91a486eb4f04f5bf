//! The status Lambda (HTTP API `GET /status`, `/status/runs`, `/status/products/{id}`, IAM-authorised): load config,
//! build clients once, serve requests.

use aws_config::BehaviorVersion;
use lambda_http::{Error, Request, run, service_fn};
use pixlpay_sync::aws::{DynamoProductStore, DynamoSyncState};
use pixlpay_sync::config::{Env, PixlpaySettings, StatusSettings, StorageSettings};
use pixlpay_sync::handlers::status::StatusHandler;
use pixlpay_sync::pixlpay::PixlpayClient;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let env = Env(|name: &str| std::env::var(name).ok());
    let pixlpay = PixlpaySettings::from_env(&env)?;
    let storage = StorageSettings::from_env(&env)?;
    let queues = StatusSettings::from_env(&env)?;
    let aws = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let token = pixlpay.token.resolve(&aws_sdk_ssm::Client::new(&aws)).await?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let handler = StatusHandler {
        state: DynamoSyncState::new(dynamodb.clone(), &storage.state_table),
        products: DynamoProductStore::new(dynamodb, &storage.products_table, &storage.state_table),
        sqs: aws_sdk_sqs::Client::new(&aws),
        work_queue_url: queues.work_queue_url,
        dead_letter_queue_url: queues.dead_letter_queue_url,
        catalog: PixlpayClient::new(pixlpay.client_config(token))?,
    };
    run(service_fn(|request: Request| {
        let handler = &handler;
        async move { Ok::<_, Error>(handler.handle_http(request).await) }
    }))
    .await
}
