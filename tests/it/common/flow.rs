//! The real-time pipeline for tests: the Pixlpay simulator delivering signed webhooks over HTTP to the webhook
//! function's entry point, SQS (MiniStack) in between, and the worker behind a local stand-in for Lambda's SQS trigger.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pixlpay_sim::Simulator;
use pixlpay_sim::local_aws::LocalAws;
use pixlpay_sim::pipeline::{PollerSettings, SqsPoller, bind_webhook, serve_webhook};
use pixlpay_sync::aws::{DynamoProductStore, DynamoSyncState, EventBridgePublisher, SqsWorkQueue};
use pixlpay_sync::handlers::webhook::{WebhookConfig, WebhookHandler};
use pixlpay_sync::pixlpay::PixlpayClient;
use pixlpay_sync::sync::{FullSync, FullSyncConfig, ProductWorker, RunOptions, RunOutcome, RunRecord, WorkerConfig};
use pixlpay_sync::webhook::WebhookSecrets;
use rust_decimal::Decimal;
use serde_json::json;
use time::OffsetDateTime;

use super::{client, register, simulator};

pub const FAST: u32 = 100_000;
pub const PRODUCT_EVENTS: [&str; 3] = ["product.created", "product.updated", "product.deleted"];

pub type Handler = WebhookHandler<DynamoSyncState, SqsWorkQueue>;
pub type Worker = ProductWorker<PixlpayClient, DynamoProductStore, EventBridgePublisher, SqsWorkQueue, DynamoSyncState>;

/// Everything between Pixlpay and the table, each part real and local.
pub struct Pipeline {
    pub sim: Simulator,
    pub aws: LocalAws,
    pub queue_url: String,
    pub dlq_url: String,
    pub worker: Arc<Worker>,
}

pub fn handler(aws: &LocalAws, queue_url: &str, secrets: &str) -> Handler {
    WebhookHandler {
        deliveries: aws.sync_state(),
        queue: SqsWorkQueue::new(aws.sqs.clone(), queue_url),
        config: WebhookConfig::new(WebhookSecrets::parse_list(secrets).unwrap()),
    }
}

pub fn worker(sim: &Simulator, aws: &LocalAws, queue_url: &str) -> Worker {
    ProductWorker {
        catalog: client(sim, FAST),
        store: aws.product_store(),
        events: aws.publisher(),
        queue: SqsWorkQueue::new(aws.sqs.clone(), queue_url),
        state: aws.sync_state(),
        config: WorkerConfig::default(),
    }
}

/// A simulator with `products`, a webhook registered for product events, the webhook endpoint serving, and queues.
pub async fn pipeline(prefix: &str, products: u64) -> Pipeline {
    let sim = simulator(products, FAST).await;
    let aws = LocalAws::new(prefix).await;
    let (queue_url, dlq_url) = aws.work_queue(2, 3).await;
    let (listener, url) = bind_webhook().await;
    let (_, secret) = register(&sim, &url, &PRODUCT_EVENTS).await;
    serve_webhook(listener, Arc::new(handler(&aws, &queue_url, &secret)));
    let worker = Arc::new(worker(&sim, &aws, &queue_url));
    Pipeline {
        sim,
        aws,
        queue_url,
        dlq_url,
        worker,
    }
}

impl Pipeline {
    pub fn poll(&self) -> SqsPoller {
        SqsPoller::start(
            self.aws.sqs.clone(),
            self.queue_url.clone(),
            self.worker.clone(),
            PollerSettings::default(),
        )
    }

    /// Waits until every delivery the simulator made was answered 2xx, then until the work queue is empty and
    /// nothing is in flight.
    pub async fn settle(&self) {
        wait_until("all deliveries answered", Duration::from_secs(20), || async {
            let deliveries = self.sim.control().deliveries().await;
            deliveries.iter().all(|d| d["delivered"] == json!(true))
        })
        .await;
        wait_until("the work queue drained", Duration::from_secs(20), || async {
            queue_depth(&self.aws, &self.queue_url).await == 0
        })
        .await;
    }

    pub async fn price(&self, id: u64) -> Option<(Decimal, bool)> {
        self.aws
            .product_store()
            .get(id)
            .await
            .unwrap()
            .map(|item| (item.price, item.deleted))
    }
}

pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, check: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Visible plus in-flight messages.
pub async fn queue_depth(aws: &LocalAws, url: &str) -> u64 {
    let depth = pixlpay_sync::aws::queue_depth(&aws.sqs, url).await.unwrap();
    depth.visible + depth.in_flight
}

/// A fixture from `events/`.
pub fn fixture(name: &str) -> String {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// One complete full sync of the pipeline's simulator into its tables (5 products a page).
pub async fn full_sync(p: &Pipeline, owner: &str) -> RunRecord {
    let sync = FullSync {
        catalog: client(&p.sim, FAST),
        store: p.aws.product_store(),
        state: p.aws.sync_state(),
        events: p.aws.publisher(),
        config: FullSyncConfig {
            per_page: 5,
            ..FullSyncConfig::default()
        },
    };
    let options = RunOptions {
        trigger: "test".into(),
        lock_owner: owner.into(),
        lock_expires_at_unix: OffsetDateTime::now_utc().unix_timestamp() + 120,
        deadline: tokio::time::Instant::now() + Duration::from_secs(120),
        max_pages: None,
    };
    match sync.run(&options).await.unwrap() {
        RunOutcome::Completed { run } => *run,
        other => panic!("expected a completed run, got {other:?}"),
    }
}
