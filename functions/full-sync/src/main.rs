//! The full-sync Lambda: load config (failing start-up on a bad setting), build clients once, serve invocations.

use std::time::{Duration, UNIX_EPOCH};

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use pixlpay_sync::aws::SyncAdapters;
use pixlpay_sync::config::{Env, full_sync_config};
use pixlpay_sync::handlers::full_sync::handle;
use pixlpay_sync::sync::FullSync;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = Env(|name: &str| std::env::var(name).ok());
    let config = full_sync_config(&env)?;
    let adapters = SyncAdapters::from_env(&env).await?;
    let sync = FullSync {
        catalog: adapters.catalog,
        store: adapters.store,
        state: adapters.state,
        events: adapters.events,
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
