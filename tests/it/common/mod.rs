//! Helpers shared by the integration tests: a simulator per test, a client tuned for tests, a webhook receiver.
#![allow(dead_code)] // each test binary uses its own subset

pub mod flow;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use pixlpay_sim::{SimConfig, Simulator};
use pixlpay_sync::Secret;
use pixlpay_sync::pixlpay::{PixlpayClient, PixlpayConfig, RetryPolicy};
use serde_json::{Value, json};

pub const TOKEN: &str = "sk_test_simulator";

/// A simulator of its own on a free port, seeded with `products`, at `rpm` over a minute.
pub async fn simulator(products: u64, rpm: u32) -> Simulator {
    simulator_with(SimConfig {
        products,
        rpm,
        webhook_time_scale: 0.001,
        ..SimConfig::default()
    })
    .await
}

pub async fn simulator_with(config: SimConfig) -> Simulator {
    Simulator::start(config).await.expect("simulator starts")
}

/// A client with short backoffs, so retry tests take milliseconds, not minutes.
pub fn client_config(sim: &Simulator, rpm: u32) -> PixlpayConfig {
    let mut config = PixlpayConfig::new(&sim.store_url(), Secret::new(TOKEN)).expect("valid URL");
    config.requests_per_minute = rpm;
    config.request_timeout = Duration::from_secs(5);
    config.retry = RetryPolicy {
        max_retries: 4,
        max_rate_limit_waits: 10,
        base_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
    };
    config
}

pub fn client(sim: &Simulator, rpm: u32) -> PixlpayClient {
    PixlpayClient::new(client_config(sim, rpm)).expect("client builds")
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A local webhook endpoint that records every request and answers with scripted statuses (then 200).
#[derive(Clone, Default)]
pub struct Receiver {
    pub received: Arc<Mutex<Vec<Received>>>,
    pub script: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    /// Serves on a free loopback port; returns the receiver and its URL.
    pub async fn start() -> (Self, String) {
        let receiver = Receiver::default();
        let app = axum::Router::new()
            .route("/hook", post(record))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, url)
    }

    pub fn answer_next(&self, statuses: &[u16]) {
        self.script.lock().unwrap().extend(statuses);
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived (at most 10 s).
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..1000 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("expected {n} webhook requests, got {}", self.received().len());
    }
}

async fn record(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    receiver.received.lock().unwrap().push(Received { headers, body });
    let status = receiver.script.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(status).unwrap()
}

/// Raw API call with the default token: (status, headers, body).
pub async fn api(
    sim: &Simulator,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let url = format!("{}/api/external/v1/{path}", sim.store_url());
    let mut request = reqwest::Client::new()
        .request(method.parse().unwrap(), url)
        .bearer_auth(TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    (status, headers, response.json().await.unwrap_or(Value::Null))
}

/// Registers a webhook through the API and returns (id, secret).
pub async fn register(sim: &Simulator, url: &str, events: &[&str]) -> (u64, String) {
    let (status, _, body) = api(sim, "POST", "webhooks", Some(json!({"url": url, "events": events}))).await;
    assert_eq!(status, 201, "{body}");
    (
        body["data"]["id"].as_u64().unwrap(),
        body["data"]["secret"].as_str().unwrap().to_owned(),
    )
}
