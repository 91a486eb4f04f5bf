//! The product-worker Lambda (SQS, `ReportBatchItemFailures`): load config, build clients once, serve batches.

use std::time::{Duration, UNIX_EPOCH};

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use pixlpay_sync::aws::{SqsWorkQueue, SyncAdapters};
use pixlpay_sync::config::{Env, worker_config};
use pixlpay_sync::handlers::product_worker::handle;
use pixlpay_sync::sync::ProductWorker;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = Env(|name: &str| std::env::var(name).ok());
    let queue_url = env.required("WORK_QUEUE_URL")?;
    let config = worker_config(&env)?;
    let adapters = SyncAdapters::from_env(&env).await?;
    let worker = ProductWorker {
        queue: SqsWorkQueue::new(aws_sdk_sqs::Client::new(&adapters.aws), queue_url),
        catalog: adapters.catalog,
        store: adapters.store,
        state: adapters.state,
        events: adapters.events,
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
