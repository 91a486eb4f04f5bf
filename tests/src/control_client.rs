//! A typed client for the simulator's `/_sim/` control API, used by tests, benchmarks and the demo.

use serde_json::{Value, json};

use crate::state::{Faults, Settings};

#[derive(Clone, Debug)]
pub struct SimControl {
    base: String,
    http: reqwest::Client,
}

/// Panics with the response body: control calls failing means the test setup is wrong.
async fn expect_ok(response: reqwest::Result<reqwest::Response>, what: &str) -> Value {
    let response = response.unwrap_or_else(|e| panic!("simulator {what}: {e}"));
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "simulator {what}: {status} {body}");
    body
}

impl SimControl {
    pub fn new(store_url: &str) -> Self {
        Self {
            base: format!("{}/_sim", store_url.trim_end_matches('/')),
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn seed(&self, count: u64, seed: u64) {
        expect_ok(
            self.http
                .post(self.url("/seed"))
                .json(&json!({"count": count, "seed": seed}))
                .send()
                .await,
            "seed",
        )
        .await;
    }

    pub async fn products(&self) -> Vec<Value> {
        let body = expect_ok(self.http.get(self.url("/products")).send().await, "products").await;
        body["data"].as_array().cloned().unwrap_or_default()
    }

    pub async fn create_product(&self, fields: Value, silent: bool) -> Value {
        let url = self.url(&format!("/products?silent={silent}"));
        expect_ok(self.http.post(url).json(&fields).send().await, "create product").await
    }

    pub async fn update_product(&self, id: u64, fields: Value, silent: bool) -> Value {
        let url = self.url(&format!("/products/{id}?silent={silent}"));
        expect_ok(self.http.patch(url).json(&fields).send().await, "update product").await
    }

    pub async fn delete_product(&self, id: u64, silent: bool) {
        let url = self.url(&format!("/products/{id}?silent={silent}"));
        expect_ok(self.http.delete(url).send().await, "delete product").await;
    }

    /// Requests by route and status, e.g. `stats()["routes"]["GET /products"]["200"]`.
    pub async fn stats(&self) -> Value {
        expect_ok(self.http.get(self.url("/stats")).send().await, "stats").await
    }

    /// How many requests to `route` ("GET /products") were answered with `status`.
    pub async fn count(&self, route: &str, status: u16) -> u64 {
        self.stats().await["routes"][route][status.to_string()]
            .as_u64()
            .unwrap_or(0)
    }

    pub async fn reset_stats(&self) {
        expect_ok(self.http.post(self.url("/stats/reset")).send().await, "reset stats").await;
    }

    pub async fn set_faults(&self, faults: &Faults) {
        expect_ok(self.http.put(self.url("/faults")).json(faults).send().await, "faults").await;
    }

    pub async fn set_settings(&self, settings: &Settings) {
        expect_ok(
            self.http.put(self.url("/settings")).json(settings).send().await,
            "settings",
        )
        .await;
    }

    pub async fn add_token(&self, token: &str, scopes: &[&str], rpm: u32) {
        let body = json!({"token": token, "scopes": scopes, "rpm": rpm});
        expect_ok(self.http.post(self.url("/tokens")).json(&body).send().await, "token").await;
    }

    pub async fn deliveries(&self) -> Vec<Value> {
        let body = expect_ok(self.http.get(self.url("/deliveries")).send().await, "deliveries").await;
        body["data"].as_array().cloned().unwrap_or_default()
    }

    /// Registers `url` for the three product events through Pixlpay's webhooks API (default token), as a merchant
    /// would; returns the signing secret, which the API shows only at creation.
    pub async fn register_product_webhook(&self, url: &str) -> String {
        let store_url = self.base.trim_end_matches("/_sim");
        let body = json!({"url": url, "events": ["product.created", "product.updated", "product.deleted"]});
        let created = expect_ok(
            self.http
                .post(format!("{store_url}/api/external/v1/webhooks"))
                .bearer_auth(crate::state::SimConfig::default().token)
                .json(&body)
                .send()
                .await,
            "register webhook",
        )
        .await;
        created["data"]["secret"]
            .as_str()
            .expect("a secret at creation")
            .to_owned()
    }

    pub async fn flush_webhooks(&self) -> u64 {
        let body = expect_ok(self.http.post(self.url("/webhooks/flush")).send().await, "flush").await;
        body["flushed"].as_u64().unwrap_or(0)
    }
}
