//! `pixlpay-demo`: drives the local flow against a running `pixlpay-sim` (see `./dev demo`) and prints what happens.
//!
//! Today it shows the foundation: the client walking a catalog through injected 5xx and 429s at the token's rate,
//! and signed webhooks verified by the same code the webhook function uses. Later stages add the functions.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use pixlpay_sim::{Faults, SimControl};
use pixlpay_sync::Secret;
use pixlpay_sync::pixlpay::{PixlpayClient, PixlpayConfig};
use pixlpay_sync::webhook::{WebhookEvent, WebhookSecrets, parse_envelope, verify_request};
use serde_json::{Value, json};
use tokio::sync::mpsc;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store_url = env("PIXLPAY_STORE_URL", "http://127.0.0.1:8480");
    let token = Secret::new(env("PIXLPAY_API_TOKEN", "sk_test_simulator"));
    let rpm: u32 = env("PIXLPAY_RPM", "60").parse()?;
    let sim = SimControl::new(&store_url);

    println!("== 1. A catalog of 250 products, 10% of requests failing with 5xx and a burst of three 429s");
    sim.seed(250, 42).await;
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
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{store_url}/api/external/v1/webhooks"))
        .bearer_auth(token.expose())
        .json(&json!({"url": hook_url, "events": ["product.created", "product.updated", "product.deleted"]}))
        .send()
        .await?
        .json()
        .await?;
    let secret = created["data"]["secret"]
        .as_str()
        .ok_or("no secret in the webhook creation response")?;
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
