//! The status Lambda (HTTP API `GET /status`, `/status/runs`, `/status/products/{id}`, IAM-authorised): load config,
//! build clients once, serve requests.

use lambda_http::{Error, Request, run, service_fn};
use pixlpay_sync::aws::SyncAdapters;
use pixlpay_sync::config::{Env, StatusSettings};
use pixlpay_sync::handlers::status::StatusHandler;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let env = Env(|name: &str| std::env::var(name).ok());
    let queues = StatusSettings::from_env(&env)?;
    let adapters = SyncAdapters::from_env(&env).await?;
    let handler = StatusHandler {
        sqs: aws_sdk_sqs::Client::new(&adapters.aws),
        work_queue_url: queues.work_queue_url,
        dead_letter_queue_url: queues.dead_letter_queue_url,
        state: adapters.state,
        products: adapters.store,
        catalog: adapters.catalog,
    };
    run(service_fn(|request: Request| {
        let handler = &handler;
        async move { Ok::<_, Error>(handler.handle_http(request).await) }
    }))
    .await
}
