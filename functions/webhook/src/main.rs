//! The webhook Lambda (HTTP API `POST /webhooks/pixlpay`): load config, resolve the secrets once, serve requests.

use aws_config::BehaviorVersion;
use lambda_http::{Error, Request, run, service_fn};
use pixlpay_sync::aws::{DynamoSyncState, SqsWorkQueue};
use pixlpay_sync::config::{Env, WebhookSettings};
use pixlpay_sync::handlers::webhook::WebhookHandler;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let env = Env(|name: &str| std::env::var(name).ok());
    let settings = WebhookSettings::from_env(&env)?;
    let aws = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let config = settings.config(&aws_sdk_ssm::Client::new(&aws)).await?;
    let handler = WebhookHandler {
        deliveries: DynamoSyncState::new(aws_sdk_dynamodb::Client::new(&aws), &settings.state_table),
        queue: SqsWorkQueue::new(aws_sdk_sqs::Client::new(&aws), &settings.queue_url),
        config,
    };
    run(service_fn(|request: Request| {
        let handler = &handler;
        async move { Ok::<_, Error>(handler.handle_http(request).await) }
    }))
    .await
}
