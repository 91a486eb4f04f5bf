//! The Pixlpay REST client: typed products, pacing at the token's rate, retries that know which failures pass.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode, header};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use url::Url;

use super::error::PixlpayError;
use super::rate_limit::RateLimiter;
use super::retry::RetryPolicy;
use super::stats::{ClientStats, ClientStatsSnapshot};
use crate::product::{InvalidProduct, Product, ProductId};
use crate::secret::Secret;

/// Pixlpay's documented maximum page size.
pub const MAX_PER_PAGE: u32 = 100;
const API_PATH: &str = "api/external/v1/";

#[derive(Clone)]
pub struct PixlpayConfig {
    /// Ends in `/api/external/v1/`; see [`PixlpayConfig::new`].
    pub base_url: Url,
    pub token: Secret,
    pub requests_per_minute: u32,
    /// For the whole exchange, body included: a hanging request is cut off and retried.
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    /// Pixlpay's product write endpoints are announced, not live (pixlpay-api.md §5).
    pub writes_enabled: bool,
}

impl fmt::Debug for PixlpayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PixlpayConfig")
            .field("base_url", &self.base_url.as_str())
            .field("token", &self.token)
            .field("requests_per_minute", &self.requests_per_minute)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .field("writes_enabled", &self.writes_enabled)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Pixlpay store URL {url:?}: {reason}")]
pub struct InvalidStoreUrl {
    pub url: String,
    pub reason: String,
}

impl PixlpayConfig {
    /// `store_url` is the store's URL (`https://mystore.pixlpay.net`, as the JS examples use) or the API base
    /// (`https://mystore.pixlpay.net/api/external/v1`, as the Python example builds); both end up at the API base.
    /// Defaults: 60 requests/minute (Pixlpay's default per token), 10 s timeout, writes disabled.
    pub fn new(store_url: &str, token: Secret) -> Result<Self, InvalidStoreUrl> {
        Ok(Self {
            base_url: api_base_url(store_url)?,
            token,
            requests_per_minute: 60,
            request_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            writes_enabled: false,
        })
    }
}

fn api_base_url(store_url: &str) -> Result<Url, InvalidStoreUrl> {
    let invalid = |reason: &str| InvalidStoreUrl {
        url: store_url.to_owned(),
        reason: reason.to_owned(),
    };
    let mut url = Url::parse(store_url.trim()).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("scheme must be https (or http for a local simulator)"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    url.set_query(None);
    url.set_fragment(None);
    let path = url.path().trim_end_matches('/').to_owned();
    let base = if path.ends_with("/api/external/v1") {
        format!("{path}/")
    } else {
        format!("{path}/{API_PATH}")
    };
    url.set_path(&base);
    Ok(url)
}

/// `meta` of a paginated list. All four keys are documented; some examples show only two, so each is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct PageMeta {
    pub current_page: Option<u32>,
    pub last_page: Option<u32>,
    pub per_page: Option<u32>,
    pub total: Option<u64>,
}

/// One page of the catalog: the products that validated, and those that did not, each with its reason.
#[derive(Debug, Clone)]
pub struct ProductPage {
    pub page: u32,
    /// `meta.last_page`; else derived from `meta.total`; else, for a full page, "at least the next one".
    pub last_page: u32,
    pub total: Option<u64>,
    pub products: Vec<Product>,
    pub invalid: Vec<InvalidProduct>,
    /// When the request for this page was first made: the page shows Pixlpay as it was at this time or later.
    pub requested_at: OffsetDateTime,
}

impl ProductPage {
    pub fn is_last(&self) -> bool {
        self.page >= self.last_page
    }
}

/// The fields an external system may change (pixlpay-api.md §5: the announced write endpoints).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub price: Option<Decimal>,
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub compare_price: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stock: Option<i64>,
}

/// Cheap to clone: clones share the HTTP connection pool, the pacer and the counters.
#[derive(Clone)]
pub struct PixlpayClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: PixlpayConfig,
    limiter: RateLimiter,
    stats: ClientStats,
}

impl fmt::Debug for PixlpayClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PixlpayClient")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// What one HTTP exchange produced, before the retry loop decides on it.
enum Attempt {
    Done(Value),
    Fatal(PixlpayError),
    RateLimited(Option<Duration>),
    Transient(PixlpayError),
}

impl PixlpayClient {
    pub fn new(config: PixlpayConfig) -> Result<Self, PixlpayError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("pixlpay-sync/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.request_timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| PixlpayError::Transport {
                attempts: 0,
                detail: e.to_string(),
            })?;
        let limiter = RateLimiter::per_minute(config.requests_per_minute);
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                config,
                limiter,
                stats: ClientStats::default(),
            }),
        })
    }

    pub fn config(&self) -> &PixlpayConfig {
        &self.inner.config
    }

    /// Requests, 429s, retries and errors since this client was built.
    pub fn stats(&self) -> ClientStatsSnapshot {
        self.inner.stats.snapshot()
    }

    /// One page of the catalog, oldest first (`created_at` ascending, in both documented spellings of the sort
    /// parameters, so a product created during a scan lands on the last page instead of shifting earlier ones).
    pub async fn list_products(&self, page: u32, per_page: u32) -> Result<ProductPage, PixlpayError> {
        let page = page.max(1);
        let per_page = per_page.clamp(1, MAX_PER_PAGE);
        let query = [
            ("page", page.to_string()),
            ("per_page", per_page.to_string()),
            ("sort", "created_at".into()),
            ("order", "asc".into()),
            ("sort_by", "created_at".into()),
            ("sort_order", "asc".into()),
        ];
        let requested_at = OffsetDateTime::now_utc();
        let body = self.send(Method::GET, "products", &query, None).await?;
        parse_page(body, page, per_page, requested_at)
            .map_err(|detail| PixlpayError::MalformedResponse { attempts: 1, detail })
    }

    /// One product. A 404 is [`PixlpayError::NotFound`]; a product that fails validation is
    /// [`PixlpayError::InvalidProduct`].
    pub async fn get_product(&self, id: ProductId) -> Result<Product, PixlpayError> {
        let body = self.send(Method::GET, &format!("products/{id}"), &[], None).await?;
        product_from_envelope(body)
    }

    /// `PUT /products/{id}`: refused without a request unless writes are enabled in config.
    pub async fn update_product(&self, id: ProductId, changes: &ProductChanges) -> Result<Product, PixlpayError> {
        if !self.inner.config.writes_enabled {
            return Err(PixlpayError::WritesDisabled);
        }
        let body = serde_json::to_value(changes).expect("product changes always serialise");
        let response = self
            .send(Method::PUT, &format!("products/{id}"), &[], Some(&body))
            .await?;
        product_from_envelope(response)
    }

    /// Walks the whole catalog with up to `concurrency` page requests in flight (still paced as one client).
    pub fn pages(&self, per_page: u32, concurrency: usize) -> super::PageWalker<PixlpayClient> {
        super::PageWalker::new(self.clone(), per_page, concurrency, 1)
    }

    /// The retry loop: pacing before every attempt, 429s waited out (holding back every caller), transient failures
    /// retried with backoff up to the policy's bound, everything else returned at once.
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, PixlpayError> {
        let inner = &*self.inner;
        let url = inner
            .config
            .base_url
            .join(path)
            .expect("API paths are relative and valid");
        let policy = &inner.config.retry;
        let (mut failures, mut rate_limit_waits) = (0u32, 0u32);
        loop {
            inner.limiter.acquire().await;
            match self.attempt(method.clone(), url.clone(), query, body).await {
                Attempt::Done(value) => return Ok(value),
                Attempt::Fatal(error) => {
                    inner.stats.error();
                    return Err(error);
                }
                Attempt::RateLimited(wait) => {
                    rate_limit_waits += 1;
                    if rate_limit_waits > policy.max_rate_limit_waits {
                        let error = PixlpayError::RateLimited {
                            waits: rate_limit_waits - 1,
                        };
                        inner.stats.error();
                        return Err(error);
                    }
                    let wait = wait.unwrap_or_else(|| policy.backoff(rate_limit_waits));
                    tracing::warn!(
                        path,
                        wait_ms = wait.as_millis() as u64,
                        "pixlpay rate limited (429), waiting"
                    );
                    inner.limiter.hold_for(wait);
                }
                Attempt::Transient(error) => {
                    failures += 1;
                    if failures > policy.max_retries {
                        let error = with_attempts(error, failures);
                        inner.stats.error();
                        return Err(error);
                    }
                    inner.stats.retry();
                    let wait = policy.backoff(failures);
                    tracing::warn!(path, error = %error, retry = failures, wait_ms = wait.as_millis() as u64,
                        "pixlpay request failed, retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn attempt(&self, method: Method, url: Url, query: &[(&str, String)], body: Option<&Value>) -> Attempt {
        let inner = &*self.inner;
        inner.stats.request();
        let mut request = inner
            .http
            .request(method, url)
            .timeout(inner.config.request_timeout)
            .bearer_auth(inner.config.token.expose())
            .header(header::ACCEPT, "application/json")
            .query(query);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return transport_failure(&e),
        };
        let status = response.status();
        let retry_after = retry_after_header(response.headers());
        if let Some(remaining) = header_u64(response.headers(), "x-ratelimit-remaining") {
            inner.stats.remaining(remaining);
        }
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(e) => return transport_failure(&e),
        };
        let json: Option<Value> = serde_json::from_slice(&bytes).ok();
        let message = || {
            json.as_ref()
                .and_then(|j| j.get("message").and_then(Value::as_str))
                .map(str::to_owned)
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_owned())
        };
        match status {
            s if s.is_success() => match json {
                Some(value) => Attempt::Done(value),
                None => Attempt::Transient(PixlpayError::MalformedResponse {
                    attempts: 1,
                    detail: format!("{} bytes of {status} body are not JSON", bytes.len()),
                }),
            },
            StatusCode::TOO_MANY_REQUESTS => {
                inner.stats.rate_limited();
                let body_wait = json
                    .as_ref()
                    .and_then(|j| j.get("retry_after"))
                    .and_then(seconds_from_json);
                Attempt::RateLimited(retry_after.or(body_wait))
            }
            StatusCode::UNAUTHORIZED => Attempt::Fatal(PixlpayError::Unauthorized { message: message() }),
            StatusCode::FORBIDDEN => Attempt::Fatal(PixlpayError::Forbidden { message: message() }),
            StatusCode::NOT_FOUND => Attempt::Fatal(PixlpayError::NotFound { message: message() }),
            StatusCode::BAD_REQUEST => Attempt::Fatal(PixlpayError::BadRequest { message: message() }),
            StatusCode::UNPROCESSABLE_ENTITY => {
                let errors = json
                    .as_ref()
                    .and_then(|j| j.get("errors"))
                    .and_then(|e| serde_json::from_value::<BTreeMap<String, Vec<String>>>(e.clone()).ok())
                    .unwrap_or_default();
                Attempt::Fatal(PixlpayError::Validation {
                    message: message(),
                    errors,
                })
            }
            s if s.is_server_error() => {
                inner.stats.server_error();
                Attempt::Transient(PixlpayError::Server {
                    status: s.as_u16(),
                    attempts: 1,
                })
            }
            s => Attempt::Fatal(PixlpayError::UnexpectedStatus {
                status: s.as_u16(),
                message: message(),
            }),
        }
    }
}

fn transport_failure(error: &reqwest::Error) -> Attempt {
    if error.is_timeout() {
        Attempt::Transient(PixlpayError::Timeout { attempts: 1 })
    } else {
        // The whole chain: reqwest's top-level message alone ("error sending request") hides the cause.
        let detail = error_chain(error);
        Attempt::Transient(PixlpayError::Transport { attempts: 1, detail })
    }
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn with_attempts(error: PixlpayError, attempts: u32) -> PixlpayError {
    match error {
        PixlpayError::Server { status, .. } => PixlpayError::Server { status, attempts },
        PixlpayError::Timeout { .. } => PixlpayError::Timeout { attempts },
        PixlpayError::Transport { detail, .. } => PixlpayError::Transport { attempts, detail },
        PixlpayError::MalformedResponse { detail, .. } => PixlpayError::MalformedResponse { attempts, detail },
        other => other,
    }
}

/// `Retry-After` in seconds (the form Laravel sends), or as an HTTP date.
fn retry_after_header(headers: &header::HeaderMap) -> Option<Duration> {
    let text = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)));
    }
    let when = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc2822).ok()?;
    let wait = when - time::OffsetDateTime::now_utc();
    Some(
        Duration::try_from(wait)
            .unwrap_or(Duration::ZERO)
            .min(Duration::from_secs(3600)),
    )
}

fn seconds_from_json(value: &Value) -> Option<Duration> {
    let secs = value.as_f64().or_else(|| value.as_str()?.trim().parse().ok())?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

fn header_u64(headers: &header::HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn product_from_envelope(mut body: Value) -> Result<Product, PixlpayError> {
    match body.get_mut("data").map(Value::take) {
        Some(data @ Value::Object(_)) => Ok(Product::from_json(data)?),
        _ => Err(PixlpayError::MalformedResponse {
            attempts: 1,
            detail: "`data` is not a product object".into(),
        }),
    }
}

fn parse_page(mut body: Value, page: u32, per_page: u32, requested_at: OffsetDateTime) -> Result<ProductPage, String> {
    let Some(Value::Array(items)) = body.get_mut("data").map(Value::take) else {
        return Err("`data` is not an array".into());
    };
    let meta: PageMeta = match body.get_mut("meta").map(Value::take) {
        None | Some(Value::Null) => PageMeta::default(),
        Some(meta) => serde_json::from_value(meta).map_err(|e| format!("`meta` is malformed: {e}"))?,
    };
    let last_page = meta
        .last_page
        .or_else(|| {
            meta.total
                .map(|total| total.div_ceil(u64::from(per_page)).max(1).min(u64::from(u32::MAX)) as u32)
        })
        .unwrap_or(if items.len() < per_page as usize {
            page
        } else {
            page + 1
        });
    let (mut products, mut invalid) = (Vec::with_capacity(items.len()), Vec::new());
    for item in items {
        match Product::from_json(item) {
            Ok(product) => products.push(product),
            Err(error) => invalid.push(error),
        }
    }
    Ok(ProductPage {
        page,
        last_page,
        total: meta.total,
        products,
        invalid,
        requested_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn store_urls_in_either_documented_form_reach_the_api_base() {
        for (given, expected) in [
            (
                "https://mystore.pixlpay.net",
                "https://mystore.pixlpay.net/api/external/v1/",
            ),
            (
                "https://mystore.pixlpay.net/",
                "https://mystore.pixlpay.net/api/external/v1/",
            ),
            (
                "https://mystore.pixlpay.net/api/external/v1",
                "https://mystore.pixlpay.net/api/external/v1/",
            ),
            (
                "http://127.0.0.1:8080/api/external/v1/?x=1",
                "http://127.0.0.1:8080/api/external/v1/",
            ),
        ] {
            assert_eq!(api_base_url(given).unwrap().as_str(), expected, "{given}");
        }
        for bad in ["", "mystore.pixlpay.net", "ftp://mystore.pixlpay.net", "https://"] {
            assert!(api_base_url(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn config_debug_redacts_the_token() {
        let config = PixlpayConfig::new(
            "https://s.pixlpay.net",
            Secret::new("sk_live_abcdefghijklmnopqrstuvwxyz0123456789"),
        )
        .unwrap();
        let client = PixlpayClient::new(config).unwrap();
        let printed = format!("{client:?}");
        assert!(!printed.contains("sk_live_abc"), "{printed}");
        assert!(printed.contains("<redacted>"), "{printed}");
    }

    #[test]
    fn last_page_comes_from_meta_else_total_else_a_short_page() {
        let product = json!({"id": 1, "name": "A", "price": "1.00", "updated_at": "2025-01-01T00:00:00Z"});
        let page = |meta: Value, n: usize| json!({"success": true, "data": vec![product.clone(); n], "meta": meta});
        assert_eq!(
            parse_page(page(json!({"last_page": 7}), 2), 1, 2, OffsetDateTime::UNIX_EPOCH)
                .unwrap()
                .last_page,
            7
        );
        assert_eq!(
            parse_page(
                page(json!({"current_page": 1, "total": 5}), 2),
                1,
                2,
                OffsetDateTime::UNIX_EPOCH
            )
            .unwrap()
            .last_page,
            3
        );
        assert_eq!(
            parse_page(page(json!({"total": 0}), 0), 1, 2, OffsetDateTime::UNIX_EPOCH)
                .unwrap()
                .last_page,
            1
        );
        assert_eq!(
            parse_page(page(Value::Null, 2), 4, 2, OffsetDateTime::UNIX_EPOCH)
                .unwrap()
                .last_page,
            5
        );
        assert_eq!(
            parse_page(page(Value::Null, 1), 4, 2, OffsetDateTime::UNIX_EPOCH)
                .unwrap()
                .last_page,
            4
        );
        assert!(parse_page(json!({"success": true, "data": {}}), 1, 2, OffsetDateTime::UNIX_EPOCH).is_err());
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = header::HeaderMap::new();
        h.insert(header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after_header(&h), Some(Duration::from_secs(7)));
        h.insert(header::RETRY_AFTER, "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after_header(&h), Some(Duration::ZERO));
        h.insert(header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after_header(&h), None);
        assert_eq!(seconds_from_json(&json!(3)), Some(Duration::from_secs(3)));
        assert_eq!(seconds_from_json(&json!("2")), Some(Duration::from_secs(2)));
        assert_eq!(seconds_from_json(&json!(-1)), None);
    }
}
