//! `pixlpay-demo`: the steps of `./dev demo`, each printing what happens, against a running `pixlpay-sim` and
//! MiniStack. The functions themselves run under `cargo lambda watch`; `./dev demo` invokes them between steps.
//!
//! - `client`: the client walking a catalog through injected 5xx and 429s, and signed webhooks verified by the
//!   shared code;
//! - `setup ENV_FILE`: create the tables, bus and an event queue in MiniStack, write the function's settings;
//! - `change`: change the store (silently: the full sync, not a webhook, must find these);
//! - `live`: change the store with webhooks (Pixlpay delivers them to the webhook function's URL);
//! - `pump ENV_FILE`: Lambda's SQS trigger for the worker: hand queued work to `product-worker` through the runtime
//!   emulator of `cargo lambda watch` until the queue stays empty;
//! - `external ENV_FILE`: an external system publishes a change on the bus; the rule's delivery goes to
//!   `external-sync`;
//! - `table ENV_FILE`: the Products table, the last run and the events on the bus;
//! - `status`: `GET /status` and a few products' histories and live diffs from the `status` function's local URL.

use std::time::{Duration, Instant};

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use pixlpay_sim::local_aws::{LocalAws, sdk_config, take_messages};
use pixlpay_sim::pipeline::{PollerSettings, receive_batch};
use pixlpay_sim::{Faults, LOCAL_WEBHOOK_SECRET, Settings, SimControl};
use pixlpay_sync::Secret;
use pixlpay_sync::aws::{DynamoProductStore, DynamoSyncState};
use pixlpay_sync::pixlpay::{PixlpayClient, PixlpayConfig};
use pixlpay_sync::sync::ProductStore;
use pixlpay_sync::webhook::{WebhookEvent, WebhookSecrets, parse_envelope, verify_request};
use serde_json::{Value, json};
use tokio::sync::mpsc;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() -> Result {
    let args: Vec<String> = std::env::args().collect();
    match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("client"), _) => client_and_webhooks().await,
        (Some("setup"), Some(env_file)) => setup(env_file).await,
        (Some("change"), _) => change().await,
        (Some("live"), _) => live().await,
        (Some("pump"), Some(env_file)) => pump(env_file).await,
        (Some("external"), Some(env_file)) => external(env_file).await,
        (Some("table"), Some(env_file)) => table(env_file).await,
        (Some("status"), check) => status(check.is_some_and(|c| c == "--check")).await,
        _ => Err(
            "usage: pixlpay-demo client | setup ENV_FILE | change | live | pump ENV_FILE | external ENV_FILE \
             | table ENV_FILE | status [--check]"
                .into(),
        ),
    }
}

/// Where `cargo lambda watch` serves the webhook function as a function URL.
const WEBHOOK_FUNCTION_URL: &str = "http://127.0.0.1:9000/lambda-url/webhook/webhooks/pixlpay";
/// The runtime emulator's invoke API (the one `cargo lambda invoke` uses).
const WORKER_INVOKE_URL: &str = "http://127.0.0.1:9000/2015-03-31/functions/product-worker/invocations";

async fn setup(env_file: &str) -> Result {
    let aws = LocalAws::new("demo").await;
    let (work_queue, work_dlq) = aws.work_queue(30, 3).await;
    // A queue of its own for refused external changes (its DLQ half is unused here).
    let (_, external_rejects) = aws.work_queue(30, 3).await;
    // The template's external-change rule, with a queue as its target in place of the function: `external` hands
    // what it delivers to `external-sync`, as Lambda's EventBridge trigger would.
    let external_deliveries = aws
        .queue_behind_rule(
            "demo-external",
            json!({"source": [EXTERNAL_SOURCE], "detail-type": ["ExternalProductChanged"]}),
        )
        .await;
    let store_url = env("PIXLPAY_STORE_URL", "http://127.0.0.1:8480");
    // Register the webhook function's local URL with Pixlpay; it answers with the signing secret. The function
    // accepts that secret and the local one the fixtures in events/ are signed with (as during a rotation).
    let secret = SimControl::new(&store_url)
        .register_product_webhook(WEBHOOK_FUNCTION_URL)
        .await;
    let secrets = format!("{secret},{LOCAL_WEBHOOK_SECRET}");
    // The simulator serves the announced PUT /products/{id}, so the external change can show the whole loop.
    let control = SimControl::new(&store_url);
    control
        .set_settings(&Settings {
            writes_enabled: true,
            ..Settings::default()
        })
        .await;
    let settings = [
        ("WEBHOOK_SECRETS", secrets.as_str()),
        ("WORK_QUEUE_URL", &work_queue),
        ("WORK_DLQ_URL", &work_dlq),
        ("PIXLPAY_STORE_URL", store_url.as_str()),
        ("PIXLPAY_API_TOKEN", "sk_test_simulator"),
        ("PIXLPAY_RPM", "600"),
        ("PIXLPAY_WRITES_ENABLED", "true"),
        ("EXTERNAL_REJECTS_QUEUE_URL", &external_rejects),
        ("PRODUCTS_TABLE", &aws.products_table),
        ("SYNC_STATE_TABLE", &aws.state_table),
        ("EVENT_BUS_NAME", &aws.bus),
        ("DEMO_QUEUE_URL", &aws.queue_url),
        ("DEMO_EXTERNAL_DELIVERY_QUEUE_URL", &external_deliveries),
        ("AWS_ENDPOINT_URL", &env("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("RUST_LOG", "warn"),
    ];
    let text: String = settings.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(env_file, text)?;
    println!(
        "   created tables {} and {}, bus {} with a queue behind it",
        aws.products_table, aws.state_table, aws.bus
    );
    println!(
        "   created the product work queue and its DLQ, the external-change rejects queue, and the external-change"
    );
    println!("   rule ({EXTERNAL_SOURCE} / ExternalProductChanged) with a delivery queue behind it");
    println!("   enabled the simulator's product writes (PUT /products/{{id}}) and PIXLPAY_WRITES_ENABLED");
    println!("   registered the webhook function's URL {WEBHOOK_FUNCTION_URL} with Pixlpay");
    println!("   function settings written to {env_file}");
    Ok(())
}

/// The ERP of `events/external-change.json`.
const EXTERNAL_SOURCE: &str = "erp.inventory";
const EXTERNAL_SYNC_INVOKE_URL: &str = "http://127.0.0.1:9000/2015-03-31/functions/external-sync/invocations";

/// An external system publishes the change of `events/external-change.json` on the bus; the rule delivers it and
/// the event, exactly as delivered, goes to `external-sync`.
async fn external(env_file: &str) -> Result {
    let vars = read_env_file(env_file)?;
    let config = sdk_config(vars.get("AWS_ENDPOINT_URL").map(String::as_str)).await;
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string("events/external-change.json")?)?;
    let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .event_bus_name(&vars["EVENT_BUS_NAME"])
        .source(EXTERNAL_SOURCE)
        .detail_type("ExternalProductChanged")
        .detail(fixture["detail"].to_string())
        .build();
    let put = aws_sdk_eventbridge::Client::new(&config)
        .put_events()
        .entries(entry)
        .send()
        .await?;
    if put.failed_entry_count() > 0 {
        return Err(format!("PutEvents refused the external change: {put:?}").into());
    }
    println!(
        "   {EXTERNAL_SOURCE} published ExternalProductChanged: {}",
        fixture["detail"]
    );
    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue_url = &vars["DEMO_EXTERNAL_DELIVERY_QUEUE_URL"];
    let started = Instant::now();
    let delivered = loop {
        if let Some(body) = take_messages(&sqs, queue_url).await.into_iter().next() {
            break body;
        }
        if started.elapsed() > Duration::from_secs(15) {
            return Err("the external-change rule delivered nothing within 15 s".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let event: Value = serde_json::from_str(&delivered)?;
    println!(
        "   the rule delivered event {} ({} from {}); external-sync answers:",
        event["id"], event["detail-type"], event["source"]
    );
    let answer = reqwest::Client::new()
        .post(EXTERNAL_SYNC_INVOKE_URL)
        .json(&event)
        .send()
        .await?
        .text()
        .await?;
    println!("   {answer}");
    Ok(())
}

async fn live() -> Result {
    let sim = SimControl::new(&env("PIXLPAY_STORE_URL", "http://127.0.0.1:8480"));
    sim.update_product(5, json!({"price": "3.33"}), false).await;
    for n in 1..=10 {
        sim.update_product(12, json!({"price": format!("12.{n:02}")}), false)
            .await;
    }
    sim.delete_product(6, false).await;
    println!("   changed product 5, changed product 12 ten times, deleted 6 (webhooks sent)");
    Ok(())
}

fn read_env_file(env_file: &str) -> Result<std::collections::HashMap<String, String>> {
    Ok(std::fs::read_to_string(env_file)?
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect())
}

async fn pump(env_file: &str) -> Result {
    let vars = read_env_file(env_file)?;
    let config = sdk_config(vars.get("AWS_ENDPOINT_URL").map(String::as_str)).await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue_url = &vars["WORK_QUEUE_URL"];
    let settings = PollerSettings {
        batching_window: Duration::from_secs(1),
        ..PollerSettings::default()
    };
    let http = reqwest::Client::new();
    let (mut batches, mut messages, mut idle) = (0, 0, 0);
    // Until the queue stayed empty for three long polls in a row.
    while idle < 3 {
        let records = receive_batch(&sqs, queue_url, settings).await;
        if records.is_empty() {
            idle += 1;
            continue;
        }
        idle = 0;
        let mut event = SqsEvent::default();
        event.records = records;
        let response: SqsBatchResponse = http.post(WORKER_INVOKE_URL).json(&event).send().await?.json().await?;
        let failed: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        batches += 1;
        messages += event.records.len();
        for record in &event.records {
            if !failed.contains(&record.message_id.as_deref().unwrap_or_default()) {
                let handle = record.receipt_handle.clone().unwrap_or_default();
                sqs.delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await?;
            }
        }
        println!(
            "   batch {batches}: {} messages, {} reported failed",
            event.records.len(),
            failed.len()
        );
    }
    println!("   the worker took {messages} messages in {batches} batches; the queue is empty");
    Ok(())
}

async fn change() -> Result {
    let sim = SimControl::new(&env("PIXLPAY_STORE_URL", "http://127.0.0.1:8480"));
    sim.update_product(3, json!({"price": "7.77"}), true).await;
    sim.update_product(30, json!({"name": "Renamed in the dashboard"}), true)
        .await;
    sim.delete_product(40, true).await;
    let created = sim
        .create_product(json!({"name": "Spring Bundle", "price": "24.50"}), true)
        .await;
    println!(
        "   changed products 3 and 30, deleted 40, created {} (no webhooks sent)",
        created["id"]
    );
    Ok(())
}

async fn table(env_file: &str) -> Result {
    let vars = read_env_file(env_file)?;
    let config = sdk_config(vars.get("AWS_ENDPOINT_URL").map(String::as_str)).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let store = DynamoProductStore::new(dynamodb.clone(), &vars["PRODUCTS_TABLE"], &vars["SYNC_STATE_TABLE"]);
    let state = DynamoSyncState::new(dynamodb, &vars["SYNC_STATE_TABLE"]);
    let active = store.active_ids().await?;
    let sample_ids = [1, 3, 5, 6, 12, 30, 40];
    let sample = store.get_many(&sample_ids).await?;
    println!("   Products table: {} active products", active.len());
    for id in sample_ids {
        if let Some(item) = sample.get(&id) {
            println!(
                "     {}: {:?} price {} deleted={} version={} source={}",
                item.external_id,
                item.name,
                item.price,
                item.deleted,
                item.version,
                item.source.as_str()
            );
        }
    }
    if let Some(run) = state.recent_runs(1).await?.into_iter().next() {
        let c = &run.counts;
        println!(
            "   last run {} ({:?}): {} pages, {} seen, {} created, {} updated, {} unchanged, {} deleted, {} API requests, {} items written, {} events",
            run.run_id,
            run.status,
            run.pages,
            c.seen,
            c.created,
            c.updated,
            c.unchanged,
            c.deleted,
            c.api_requests,
            c.dynamodb_writes,
            c.events_published
        );
    }
    if let Some(webhook) = state.status().await?.get("last_webhook") {
        println!("   last webhook: {webhook}");
    }
    let sqs = aws_sdk_sqs::Client::new(&config);
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for body in take_messages(&sqs, &vars["DEMO_QUEUE_URL"]).await {
        let event: Value = serde_json::from_str(&body)?;
        *kinds
            .entry(event["detail-type"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    println!("   events received on the bus since the last look: {kinds:?}");
    Ok(())
}

/// The status function's routes, as `cargo lambda watch` serves them locally (in AWS: the HTTP API, IAM-signed).
const STATUS_URL: &str = "http://127.0.0.1:9000/lambda-url/status/status";

/// Prints the status; with `check`, fails unless the whole flow settled: in sync, queues empty, no errors, and
/// product 1 carrying the external change (pushed to Pixlpay, stored once, not echoed by its webhook).
async fn status(check: bool) -> Result {
    let http = reqwest::Client::new();
    let get = |path: &str| {
        let request = http.get(format!("{STATUS_URL}{path}"));
        async move {
            let response = request.send().await?;
            let code = response.status().as_u16();
            let body: Value = response.json().await?;
            Ok::<_, Box<dyn std::error::Error>>((code, body))
        }
    };
    let (code, s) = get("").await?;
    println!("   GET /status -> {code}");
    println!("     in sync: {}   products: {}", s["in_sync"], s["products"]);
    let last = &s["last_full_sync"];
    println!(
        "     last full sync {} ({}), corrected {}, counts created {} updated {} deleted {} invalid {}",
        last["run_id"],
        last["status"],
        last["corrected"],
        last["counts"]["created"],
        last["counts"]["updated"],
        last["counts"]["deleted"],
        last["counts"]["invalid"]
    );
    println!("     last webhook: {}", s["last_webhook"]);
    println!("     webhooks: {}   queues: {}", s["webhooks"], s["queues"]);
    println!(
        "     out of sync: {}   recent errors: {}",
        s["out_of_sync"],
        s["recent_errors"].as_array().map_or(0, Vec::len)
    );
    for id in [1, 3, 6, 12] {
        let (code, p) = get(&format!("/products/{id}?live=true")).await?;
        println!(
            "   GET /status/products/{id}?live=true -> {code}: live in sync {}",
            p["live"]["in_sync"]
        );
        for entry in p["history"].as_array().into_iter().flatten() {
            println!(
                "     {} {:<8} by {:<9} fields {}",
                entry["at"].as_str().unwrap_or(""),
                entry["action"].as_str().unwrap_or(""),
                entry["source"].as_str().unwrap_or(""),
                entry["changed_fields"]
            );
        }
    }
    let (code, bad) = get("/products/abc").await?;
    println!("   GET /status/products/abc -> {code}: {bad}");
    if check {
        let (_, one) = get("/products/1").await?;
        let actions: Vec<(&str, &str)> = one["history"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| (e["action"].as_str().unwrap_or(""), e["source"].as_str().unwrap_or("")))
            .collect();
        let problems: Vec<String> = [
            (s["in_sync"] != json!(true), format!("not in sync: {s}")),
            (
                s["recent_errors"].as_array().is_none_or(|e| !e.is_empty()),
                "errors were recorded".into(),
            ),
            (
                one["stored"]["price"] != json!("14.99") && one["stored"]["price"] != json!("14.990"),
                format!("product 1 does not hold the external price: {}", one["stored"]["price"]),
            ),
            (
                actions.first() != Some(&("updated", "external")),
                format!("product 1's newest entry is not the external update: {actions:?}"),
            ),
            (code != 400, "a bad id was not refused".into()),
        ]
        .into_iter()
        .filter_map(|(failed, why)| failed.then_some(why))
        .collect();
        if !problems.is_empty() {
            return Err(format!("demo check failed:\n  {}", problems.join("\n  ")).into());
        }
        println!("   check: in sync, queues empty, no errors, the external change stored once and not echoed");
    }
    Ok(())
}

async fn client_and_webhooks() -> Result {
    let store_url = env("PIXLPAY_STORE_URL", "http://127.0.0.1:8480");
    let token = Secret::new(env("PIXLPAY_API_TOKEN", "sk_test_simulator"));
    let rpm: u32 = env("PIXLPAY_RPM", "60").parse()?;
    let sim = SimControl::new(&store_url);

    // The demo's own catalog (`./dev test` runs it smaller); the sample products it shows go up to id 40.
    let catalog: u64 = env("DEMO_PRODUCTS", "250").parse()?;
    if catalog < 41 {
        return Err(
            format!("DEMO_PRODUCTS={catalog}: the demo changes products up to id 40, so it needs at least 41").into(),
        );
    }
    println!("== 1. A catalog of {catalog} products, 10% of requests failing with 5xx and a burst of three 429s");
    sim.seed(catalog, 42).await;
    sim.reset_stats().await;
    sim.set_faults(&Faults {
        error_rate: 0.1,
        rate_limit_next: 3,
        ..Faults::default()
    })
    .await;
    let mut config = PixlpayConfig::new(&store_url, token.clone())?;
    config.requests_per_minute = rpm;
    let client = PixlpayClient::new(config)?;
    println!("   client: {client:?}");
    let started = Instant::now();
    let mut walker = client.pages(100, 2);
    let (mut products, mut invalid) = (0, 0);
    while let Some(page) = walker.next().await {
        let page = page?;
        println!(
            "   page {}/{}: {} products",
            page.page,
            page.last_page,
            page.products.len()
        );
        products += page.products.len();
        invalid += page.invalid.len();
    }
    sim.set_faults(&Faults::default()).await;
    let stats = client.stats();
    println!(
        "   read {products} products ({invalid} invalid) in {:.1?}: {} requests, {} answered 429, {} retried after 5xx",
        started.elapsed(),
        stats.requests,
        stats.rate_limited,
        stats.retries
    );
    println!("   simulator saw: {}", sim.stats().await["routes"]);

    println!("== 2. Signed webhooks, verified with the shared verification code");
    let (tx, mut rx) = mpsc::unbounded_channel::<(HeaderMap, Bytes)>();
    let app = axum::Router::new()
        .route(
            "/webhooks/pixlpay",
            post(|State(tx): State<mpsc::UnboundedSender<(HeaderMap, Bytes)>>, headers: HeaderMap, body: Bytes| async move {
                let _ = tx.send((headers, body));
                StatusCode::OK
            }),
        )
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook_url = format!("http://{}/webhooks/pixlpay", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let secret = &sim.register_product_webhook(&hook_url).await;
    println!("   registered {hook_url} (secret shown once: {}…)", &secret[..10]);
    let secrets = WebhookSecrets::parse_list(secret)?;
    sim.update_product(7, json!({"price": "4.99"}), false).await;
    sim.create_product(json!({"name": "Winter Bundle", "price": "19.99"}), false)
        .await;
    sim.delete_product(9, false).await;
    for _ in 0..3 {
        let (headers, body) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await?
            .ok_or("receiver closed")?;
        let verified = verify_request(&secrets, &headers, &body);
        let event = parse_envelope(&body, &headers)?;
        let summary = match event {
            WebhookEvent::Product(e) => format!("{} product {}", e.kind.as_str(), e.product_id),
            WebhookEvent::Other { event, .. } => event,
        };
        println!(
            "   received {summary}: signature {}",
            if verified.is_ok() { "valid" } else { "INVALID" }
        );
        verified?;
    }
    let forged = verify_request(&secrets, &HeaderMap::new(), b"{}");
    println!(
        "   an unsigned request: {}",
        forged
            .map(|_| "accepted".to_owned())
            .unwrap_or_else(|e| format!("refused ({e})"))
    );
    println!("== done");
    Ok(())
}
