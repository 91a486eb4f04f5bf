//! The real-time path's figures for `pixlpay-bench`: the webhook handler's own latency (in process, AWS calls
//! replaced by in-memory ports, against the bare HMAC check as baseline), and a burst of changes end to end
//! (simulator -> webhook endpoint -> SQS -> worker -> DynamoDB, against one lone change as baseline).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pixlpay_sim::SimControl;
use pixlpay_sim::local_aws::LocalAws;
use pixlpay_sim::pipeline::{PollerSettings, SqsPoller, bind_webhook, serve_webhook};
use pixlpay_sync::aws::SqsWorkQueue;
use pixlpay_sync::handlers::webhook::{WebhookConfig, WebhookHandler};
use pixlpay_sync::ingest::{Claim, DeliveryClaim, DeliveryLog, QueueError, WebhookSeen, WorkMessage, WorkQueue};
use pixlpay_sync::pixlpay::PixlpayClient;
use pixlpay_sync::product::ProductId;
use pixlpay_sync::sync::{ErrorRecord, HealthLog, OutOfSync, OutOfSyncReason, ProductWorker, StoreError, WorkerConfig};
use pixlpay_sync::webhook::{WebhookSecrets, sign, verify_request};
use pixlpay_sync::{Secret, timestamp};
use rust_decimal::Decimal;
use serde_json::json;

#[derive(Default)]
struct MemoryDeliveries(Mutex<HashMap<String, bool>>);

impl DeliveryLog for MemoryDeliveries {
    async fn claim(&self, claim: &DeliveryClaim) -> Result<Claim, StoreError> {
        let mut records = self.0.lock().unwrap();
        Ok(match records.get(&claim.key) {
            Some(true) => Claim::Duplicate,
            Some(false) => Claim::InFlight,
            None => {
                records.insert(claim.key.clone(), false);
                Claim::Claimed
            }
        })
    }
    async fn confirm(&self, claim: &DeliveryClaim) -> Result<(), StoreError> {
        self.0.lock().unwrap().insert(claim.key.clone(), true);
        Ok(())
    }
    async fn release(&self, claim: &DeliveryClaim) -> Result<(), StoreError> {
        self.0.lock().unwrap().remove(&claim.key);
        Ok(())
    }
    async fn record_webhook(&self, _: &WebhookSeen) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Out-of-sync marks as sequence numbers per product: the handler's bookkeeping without a network in the way.
impl HealthLog for MemoryDeliveries {
    async fn note_pending(&self, id: ProductId, _: &str) -> Result<u64, StoreError> {
        let mut records = self.0.lock().unwrap();
        let seq = records.entry(format!("marker:{id}")).or_insert(false);
        Ok(u64::from(std::mem::replace(seq, true)) + 1)
    }
    async fn note_out_of_sync(&self, _: ProductId, _: OutOfSyncReason, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    async fn clear_out_of_sync(&self, _: ProductId, _: u64) -> Result<bool, StoreError> {
        Ok(true)
    }
    async fn out_of_sync(&self) -> Result<Vec<OutOfSync>, StoreError> {
        Ok(Vec::new())
    }
    async fn record_errors(&self, _: &[ErrorRecord]) -> Result<(), StoreError> {
        Ok(())
    }
}

#[derive(Default)]
struct MemoryQueue(Mutex<Vec<WorkMessage>>);

impl WorkQueue for MemoryQueue {
    async fn enqueue(&self, message: &WorkMessage, _: Duration) -> Result<(), QueueError> {
        self.0.lock().unwrap().push(message.clone());
        Ok(())
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// How long the handler took for each request, each answered with `status`.
async fn time_each(
    handler: &WebhookHandler<MemoryDeliveries, MemoryQueue>,
    requests: &[(http::HeaderMap, Vec<u8>)],
    status: &str,
) -> Vec<Duration> {
    let mut times = Vec::with_capacity(requests.len());
    for (headers, body) in requests {
        let started = Instant::now();
        let reply = handler.handle(headers, body).await;
        times.push(started.elapsed());
        assert_eq!(reply.body["status"], status);
    }
    times
}

/// p50/p99 of the handler against the bare signature check, over `n` distinct signed deliveries.
pub async fn handler_latency(n: usize) {
    let secret = "whsec_bench_secret";
    let secrets = WebhookSecrets::parse_list(secret).unwrap();
    let requests: Vec<(http::HeaderMap, Vec<u8>)> = (0..n)
        .map(|i| {
            let body = json!({"id": format!("wh_del_{i:08}"), "event_type": "product.updated",
                "created_at": timestamp::format(time::OffsetDateTime::now_utc()),
                "data": {"product_id": 1 + i % 1000}})
            .to_string()
            .into_bytes();
            let mut headers = http::HeaderMap::new();
            headers.insert(
                "x-pixlpay-signature",
                sign(&Secret::new(secret), &body).parse().unwrap(),
            );
            (headers, body)
        })
        .collect();
    let mut verify = Vec::with_capacity(n);
    for (headers, body) in &requests {
        let started = Instant::now();
        verify_request(&secrets, headers, body).expect("signed");
        verify.push(started.elapsed());
    }
    let handler = WebhookHandler {
        deliveries: MemoryDeliveries::default(),
        queue: MemoryQueue::default(),
        config: WebhookConfig::new(secrets),
    };
    let mut handle = time_each(&handler, &requests, "queued").await;
    // A second pass: every delivery is now a duplicate.
    let mut duplicate = time_each(&handler, &requests, "duplicate").await;
    for v in [&mut verify, &mut handle, &mut duplicate] {
        v.sort();
    }
    let base = (percentile(&verify, 0.5), percentile(&verify, 0.99));
    println!("\nwebhook handler, in process ({n} signed deliveries; AWS calls replaced by in-memory ports)\n");
    println!(
        "| {:<40} | {:>8} | {:>8} | {:>9} | {:>9} |",
        "step", "p50 µs", "p99 µs", "p50 / base", "p99 / base"
    );
    println!("|{:-<42}|{:->10}|{:->10}|{:->12}|{:->12}|", "", "", "", "", "");
    for (name, v) in [
        ("baseline: HMAC-SHA256 verify only", &verify),
        ("handler: new delivery (queued)", &handle),
        ("handler: repeat delivery (duplicate)", &duplicate),
    ] {
        let (p50, p99) = (percentile(v, 0.5), percentile(v, 0.99));
        println!(
            "| {:<40} | {:>8.1} | {:>8.1} | {:>10.2} | {:>10.2} |",
            name,
            micros(p50),
            micros(p99),
            micros(p50) / micros(base.0),
            micros(p99) / micros(base.1)
        );
    }
}

/// `changes` updates spread over `products` products, delivered as webhooks, until the table holds every final
/// price; against one lone change measured first.
pub async fn end_to_end(url: &str, rpm: u32, products: u64, changes: u64) {
    let control = SimControl::new(url);
    let aws = LocalAws::new("bench-wh").await;
    let (queue_url, _) = aws.work_queue(60, 5).await;
    let (listener, hook_url) = bind_webhook().await;
    let secret = control.register_product_webhook(&hook_url).await;
    serve_webhook(
        listener,
        Arc::new(WebhookHandler {
            deliveries: aws.sync_state(),
            queue: SqsWorkQueue::new(aws.sqs.clone(), &queue_url),
            config: WebhookConfig::new(WebhookSecrets::parse_list(&secret).unwrap()),
        }),
    );
    let mut config = pixlpay_sync::pixlpay::PixlpayConfig::new(url, Secret::new("sk_test_simulator")).unwrap();
    config.requests_per_minute = rpm;
    let worker = Arc::new(ProductWorker {
        catalog: PixlpayClient::new(config).unwrap(),
        store: aws.product_store(),
        events: aws.publisher(),
        queue: SqsWorkQueue::new(aws.sqs.clone(), &queue_url),
        state: aws.sync_state(),
        config: WorkerConfig::default(),
    });
    let poller = SqsPoller::start(aws.sqs.clone(), queue_url.clone(), worker, PollerSettings::default());
    let store = aws.product_store();
    let wait_for = async |expected: &HashMap<u64, Decimal>| {
        loop {
            let mut done = true;
            for (id, price) in expected {
                if store.get(*id).await.unwrap().map(|i| i.price) != Some(*price) {
                    done = false;
                    break;
                }
            }
            if done {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };

    control.reset_stats().await;
    let started = Instant::now();
    control.update_product(1, json!({"price": "0.50"}), false).await;
    wait_for(&HashMap::from([(1, "0.50".parse().unwrap())])).await;
    let single = started.elapsed();
    let single_gets = control.count("GET /products/{id}", 200).await;

    control.reset_stats().await;
    let mut last = HashMap::new();
    let started = Instant::now();
    for n in 0..changes {
        let id = 1 + n % products;
        let price: Decimal = format!("{}.{:02}", 100 + n / products, n % 100).parse().unwrap();
        control
            .update_product(id, json!({"price": price.to_string()}), false)
            .await;
        last.insert(id, price);
    }
    let sent = started.elapsed();
    wait_for(&last).await;
    let drained = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    poller.stop().await;
    let gets = control.count("GET /products/{id}", 200).await;

    println!("\nwebhooks end to end (simulator -> webhook endpoint -> SQS -> worker -> DynamoDB, MiniStack)\n");
    println!(
        "| {:<48} | {:>8} | {:>10} | {:>6} | {:>9} |",
        "phase", "wall s", "/ 1 change", "GETs", "GETs/chg"
    );
    println!("|{:-<50}|{:->10}|{:->12}|{:->8}|{:->11}|", "", "", "", "", "");
    println!(
        "| {:<48} | {:>8.2} | {:>10.2} | {:>6} | {:>9.3} |",
        "baseline: 1 change, until in the table",
        single.as_secs_f64(),
        1.0,
        single_gets,
        single_gets as f64
    );
    println!(
        "| {:<48} | {:>8.2} | {:>10.2} | {:>6} | {:>9.3} |",
        format!(
            "{changes} changes over {products} products (sent in {:.1} s)",
            sent.as_secs_f64()
        ),
        drained.as_secs_f64(),
        drained.as_secs_f64() / single.as_secs_f64(),
        gets,
        gets as f64 / changes as f64
    );
}
