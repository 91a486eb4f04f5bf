//! The external-sync Lambda (EventBridge rule on `ExternalProductChanged`): load config, build clients once, handle
//! events. A returned error makes Lambda retry the event, then hand it to the function's dead-letter queue.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use pixlpay_sync::aws::{SqsRejects, SyncAdapters};
use pixlpay_sync::config::{Env, ExternalSyncSettings};
use pixlpay_sync::handlers::external_sync::{ExternalSync, ExternalSyncConfig};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = Env(|name: &str| std::env::var(name).ok());
    let settings = ExternalSyncSettings::from_env(&env)?;
    let adapters = SyncAdapters::from_env(&env).await?;
    let sync = ExternalSync {
        rejects: SqsRejects::new(aws_sdk_sqs::Client::new(&adapters.aws), &settings.rejects_queue_url),
        config: ExternalSyncConfig {
            policy: settings.policy,
            writes_enabled: adapters.pixlpay.writes_enabled,
        },
        catalog: adapters.catalog,
        store: adapters.store,
        state: adapters.state,
        events: adapters.events,
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
