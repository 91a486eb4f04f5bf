//! The simulator's state: catalog, tokens and their rate-limit windows, registered webhooks, behaviour settings,
//! injected faults and request counters. One mutex; no lock is held across an await.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::{Catalog, Dialect};
use crate::delivery::DeliveryLog;

/// Every event name any page of Pixlpay's docs lists (pixlpay-api.md §8.7): a webhook may subscribe to any of them.
pub const KNOWN_EVENTS: [&str; 24] = [
    "order.created",
    "order.paid",
    "order.completed",
    "order.refunded",
    "order.received",
    "payment.failed",
    "subscription.created",
    "subscription.renewed",
    "subscription.cancelled",
    "subscription.payment_failed",
    "customer.created",
    "customer.updated",
    "delivery.completed",
    "delivery.failed",
    "ticket.created",
    "ticket.reply",
    "dispute.created",
    "dispute.resolved",
    "product.created",
    "product.updated",
    "product.deleted",
    "inventory.low",
    "payout.completed",
    "webhook.test",
];

pub const FULL_ACCESS: &str = "full_access";

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub port: u16,
    pub products: u64,
    pub seed: u64,
    /// Default token and its requests per minute.
    pub token: String,
    pub rpm: u32,
    /// Length of the sliding rate-limit window. Pixlpay's is a minute; tests shrink it (the limit per window shrinks
    /// with it) so pacing can be shown in seconds instead of minutes.
    pub rate_window: Duration,
    /// Real seconds per documented second of the webhook retry schedule (1, 5, 30 minutes).
    pub webhook_time_scale: f64,
    pub settings: Settings,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            port: 0,
            products: 0,
            seed: 1,
            token: "sk_test_simulator".into(),
            rpm: 60,
            rate_window: Duration::from_secs(60),
            webhook_time_scale: 1.0,
            settings: Settings::default(),
        }
    }
}

/// Behaviour the docs leave open or describe in several ways; switchable at run time through `/_sim/settings`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub writes_enabled: bool,
    pub dialect: Dialect,
    /// Add a field no doc mentions to every product, to show clients keep unknown fields.
    pub extra_fields: bool,
    /// `pixlpay` (`X-Pixlpay-*`) or `webhook` (`X-Webhook-*`) header names on deliveries.
    pub header_family: HeaderFamily,
    /// `v3` `{id: wh_del_…, event_type, created_at (µs)}`, `v1` `{id: evt_…, event, timestamp}`, `v1b` as v1 without id.
    pub envelope: EnvelopeVariant,
    /// Add the whole product to product events' `data`, beside `product_id`.
    pub webhook_full_data: bool,
    /// `per_page` above 100: clamp to 100 (default) or answer 422.
    pub reject_oversized_pages: bool,
    /// Allow `http://` webhook URLs (local receivers); Pixlpay itself requires https.
    pub allow_http_webhooks: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            writes_enabled: false,
            dialect: Dialect::Api,
            extra_fields: false,
            header_family: HeaderFamily::Pixlpay,
            envelope: EnvelopeVariant::V3,
            webhook_full_data: false,
            reject_oversized_pages: false,
            allow_http_webhooks: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeaderFamily {
    Pixlpay,
    Webhook,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvelopeVariant {
    V3,
    V1,
    V1b,
}

/// Faults to inject into the REST API (`/_sim/faults`). Counters (`*_next`) apply to that many upcoming requests.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Share (0..1) of requests answered with one of `error_statuses`.
    pub error_rate: f64,
    pub error_statuses: Vec<u16>,
    /// The next N requests fail with the first of `error_statuses`.
    pub fail_next: u32,
    /// The next N requests get 429 regardless of the window.
    pub rate_limit_next: u32,
    /// What an injected 429 says: `Retry-After` header and/or body `retry_after`, in seconds.
    pub retry_after_header: bool,
    pub retry_after_body: bool,
    pub retry_after_secs: u64,
    /// Added to every request.
    pub latency_ms: u64,
    /// The next N requests hang for `hang_ms` before answering.
    pub hang_next: u32,
    pub hang_ms: u64,
    /// The next N successful responses are cut in half.
    pub truncate_next: u32,
    /// Each webhook delivery is sent twice (same id, same body).
    pub duplicate_webhooks: bool,
    /// Deliveries are held until `POST /_sim/webhooks/flush`, then sent newest first.
    pub reorder_webhooks: bool,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            error_rate: 0.0,
            error_statuses: vec![500, 502, 503],
            fail_next: 0,
            rate_limit_next: 0,
            retry_after_header: true,
            retry_after_body: true,
            retry_after_secs: 1,
            latency_ms: 0,
            hang_next: 0,
            hang_ms: 3_600_000,
            truncate_next: 0,
            duplicate_webhooks: false,
            reorder_webhooks: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenInfo {
    pub scopes: Vec<String>,
    pub rpm: u32,
}

impl TokenInfo {
    pub fn allows(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope || s == FULL_ACCESS)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Webhook {
    pub id: u64,
    pub url: String,
    pub events: Vec<String>,
    pub is_active: bool,
    #[serde(skip)]
    pub secret: String,
    pub created_at: String,
}

/// A delivery held back by `reorder_webhooks`.
#[derive(Debug, Clone)]
pub struct PendingDelivery {
    pub webhook: Webhook,
    pub event: String,
    pub body: Vec<u8>,
    pub delivery_id: String,
}

pub struct Inner {
    pub config: SimConfig,
    pub settings: Settings,
    pub catalog: Catalog,
    pub tokens: HashMap<String, TokenInfo>,
    pub windows: HashMap<String, VecDeque<Instant>>,
    pub webhooks: BTreeMap<u64, Webhook>,
    pub next_webhook_id: u64,
    pub faults: Faults,
    pub rng: StdRng,
    /// Requests by route ("GET /products/{id}") and status.
    pub stats: BTreeMap<String, BTreeMap<u16, u64>>,
    pub deliveries: Vec<DeliveryLog>,
    pub held: Vec<PendingDelivery>,
}

#[derive(Clone)]
pub struct SimState {
    inner: Arc<Mutex<Inner>>,
    pub http: reqwest::Client,
}

/// What the rate limiter decided for one request.
pub enum Admission {
    Allowed {
        limit: u64,
        remaining: u64,
    },
    Refused {
        limit: u64,
        retry_after_secs: u64,
        reset_unix: i64,
    },
}

impl SimState {
    pub fn new(config: SimConfig) -> Self {
        let mut tokens = HashMap::new();
        tokens.insert(
            config.token.clone(),
            TokenInfo {
                scopes: vec![FULL_ACCESS.into()],
                rpm: config.rpm,
            },
        );
        let inner = Inner {
            settings: config.settings.clone(),
            catalog: Catalog::seeded(config.products, config.seed),
            tokens,
            windows: HashMap::new(),
            webhooks: BTreeMap::new(),
            next_webhook_id: 1,
            faults: Faults::default(),
            rng: StdRng::seed_from_u64(config.seed),
            stats: BTreeMap::new(),
            deliveries: Vec::new(),
            held: Vec::new(),
            config,
        };
        let http = reqwest::Client::builder().build().expect("a plain HTTP client builds");
        Self {
            inner: Arc::new(Mutex::new(inner)),
            http,
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Inner {
    /// Sliding-window admission for `token`: at most `rpm * window / 60 s` requests in any window. Refused requests
    /// do not count, as with Laravel's throttle.
    pub fn admit(&mut self, token: &str, rpm: u32) -> Admission {
        let window = self.config.rate_window;
        let limit = ((u64::from(rpm) * window.as_millis() as u64) / 60_000).max(1);
        let now = Instant::now();
        let log = self.windows.entry(token.to_owned()).or_default();
        while log.front().is_some_and(|t| now.duration_since(*t) >= window) {
            log.pop_front();
        }
        if log.len() as u64 >= limit {
            let oldest = *log.front().expect("a full window has entries");
            let free_in = window.saturating_sub(now.duration_since(oldest));
            let retry_after_secs = free_in.as_secs() + u64::from(free_in.subsec_nanos() > 0);
            let reset_unix = time::OffsetDateTime::now_utc().unix_timestamp() + retry_after_secs as i64;
            return Admission::Refused {
                limit,
                retry_after_secs: retry_after_secs.max(1),
                reset_unix,
            };
        }
        log.push_back(now);
        Admission::Allowed {
            limit,
            remaining: limit - log.len() as u64,
        }
    }

    pub fn count(&mut self, route: &str, status: u16) {
        *self
            .stats
            .entry(route.to_owned())
            .or_default()
            .entry(status)
            .or_default() += 1;
    }

    /// Decides whether this request gets an injected fault (counters first, then the random error rate).
    pub fn draw_fault(&mut self) -> Option<InjectedFault> {
        let f = &mut self.faults;
        if f.rate_limit_next > 0 {
            f.rate_limit_next -= 1;
            return Some(InjectedFault::RateLimited);
        }
        let first_status = f.error_statuses.first().copied().unwrap_or(500);
        if f.fail_next > 0 {
            f.fail_next -= 1;
            return Some(InjectedFault::Status(first_status));
        }
        if f.error_rate > 0.0 && !f.error_statuses.is_empty() && self.rng.random_bool(f.error_rate.clamp(0.0, 1.0)) {
            let i = self.rng.random_range(0..self.faults.error_statuses.len());
            return Some(InjectedFault::Status(self.faults.error_statuses[i]));
        }
        None
    }

    pub fn random_token(&mut self, prefix: &str, len: usize) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let tail: String = (0..len)
            .map(|_| ALPHABET[self.rng.random_range(0..ALPHABET.len())] as char)
            .collect();
        format!("{prefix}{tail}")
    }

    /// Snapshot of the stats as JSON: `{"GET /products": {"200": 10, "429": 1}, ...}`.
    pub fn stats_json(&self) -> Value {
        let routes: serde_json::Map<String, Value> = self
            .stats
            .iter()
            .map(|(route, by_status)| {
                let counts = by_status
                    .iter()
                    .map(|(s, n)| (s.to_string(), Value::from(*n)))
                    .collect();
                (route.clone(), Value::Object(counts))
            })
            .collect();
        let total: u64 = self.stats.values().flat_map(|m| m.values()).sum();
        serde_json::json!({"total": total, "routes": routes})
    }
}

pub enum InjectedFault {
    RateLimited,
    Status(u16),
}
