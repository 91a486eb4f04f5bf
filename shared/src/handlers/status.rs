//! The status function (HTTP API, IAM-authorised):
//!
//! | route | answer |
//! |---|---|
//! | `GET /status` | the sync's health ([`StatusReport`]): a few items and two queue reads, whatever the catalog size |
//! | `GET /status/runs[?limit=N]` | the newest full-sync runs with their figures (N from 1 to 100, default 20) |
//! | `GET /status/products/{id}[?live=true]` | the stored item, why it is out of sync, its newest 50 audit entries; with `live=true` Pixlpay's product and a field-by-field diff |
//!
//! Errors are JSON `{error, reason}`: 400 for a malformed id or query, 404 for an unknown route or a product the
//! table does not hold, 405 for anything but GET, 502 when Pixlpay cannot be read for `live`, 503 when the table or
//! a queue cannot be read.

use http::Method;
use serde_json::json;
use time::OffsetDateTime;

use super::Reply;
use crate::aws::{DynamoProductStore, DynamoSyncState, queue_depth};
use crate::pixlpay::PixlpayError;
use crate::product::ProductId;
use crate::status::{LiveComparison, MarkerSample, ProductStatus, Queues, StatusRecord, StatusReport};
use crate::sync::{Catalog, ProductStore, StoreError};

/// Audit entries listed per product.
pub const HISTORY_LIMIT: i32 = 50;
/// Recent errors listed by `GET /status`.
pub const ERRORS_LIMIT: i32 = 20;
/// Out-of-sync markers read one by one to tell stored products from the others; past this, `in_sync` is a bound.
pub const MARKERS_READ: i32 = 100;
const RUNS_DEFAULT: i32 = 20;
const RUNS_MAX: i32 = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Status,
    Runs { limit: i32 },
    Product { id: ProductId, live: bool },
}

impl Route {
    /// The route for a request; an error reply for anything else. Matches from the `status` segment on, so a stage
    /// name in front of the path does not matter.
    pub fn parse(method: &Method, path: &str, query: Option<&str>) -> Result<Self, Reply> {
        if method != Method::GET {
            return Err(Reply::error(
                405,
                "method_not_allowed",
                "the status API answers GET only",
            ));
        }
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        // The last `status` segment that a route follows: a prefix (a stage, a local function URL such as
        // `/lambda-url/status/...`) may contain the word too.
        let is_route = |rest: &[&str]| matches!(rest, [] | ["runs"] | ["products", _]);
        let rest = match (0..segments.len())
            .rev()
            .find(|&at| segments[at] == "status" && is_route(&segments[at + 1..]))
        {
            Some(at) => &segments[at + 1..],
            None => return Err(not_found(path)),
        };
        let params = Query::parse(query)?;
        match rest {
            [] => {
                params.only(&[])?;
                Ok(Self::Status)
            }
            ["runs"] => {
                params.only(&["limit"])?;
                let limit = match params.get("limit") {
                    None => RUNS_DEFAULT,
                    Some(raw) => raw.parse().ok().filter(|n| (1..=RUNS_MAX).contains(n)).ok_or_else(|| {
                        Reply::error(
                            400,
                            "invalid_query",
                            format!("limit must be from 1 to {RUNS_MAX}, not {raw:?}"),
                        )
                    })?,
                };
                Ok(Self::Runs { limit })
            }
            ["products", id] => {
                params.only(&["live"])?;
                let live = match params.get("live") {
                    None | Some("false") | Some("0") => false,
                    Some("true") | Some("1") => true,
                    Some(other) => {
                        return Err(Reply::error(
                            400,
                            "invalid_query",
                            format!("live must be true or false, not {other:?}"),
                        ));
                    }
                };
                Ok(Self::Product {
                    id: parse_product_id(id)?,
                    live,
                })
            }
            _ => Err(not_found(path)),
        }
    }
}

fn not_found(path: &str) -> Reply {
    Reply::error(
        404,
        "not_found",
        format!("no route {path:?}; try /status, /status/runs or /status/products/{{id}}"),
    )
}

/// A Pixlpay product id, or the external id external systems use (`pixlpay_<id>`).
pub fn parse_product_id(raw: &str) -> Result<ProductId, Reply> {
    let digits = raw.strip_prefix("pixlpay_").unwrap_or(raw);
    digits
        .parse::<ProductId>()
        .ok()
        .filter(|id| *id > 0 && digits.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            Reply::error(
                400,
                "invalid_product_id",
                format!("{raw:?} is not a product id (a positive integer, or pixlpay_<id>)"),
            )
        })
}

/// A query string's parameters, percent-decoding left out: none of the values it takes needs it.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: Option<&str>) -> Result<Self, Reply> {
        let mut pairs = Vec::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            if pairs.iter().any(|(n, _)| n == name) {
                return Err(Reply::error(400, "invalid_query", format!("{name} is given twice")));
            }
            pairs.push((name.to_owned(), value.to_owned()));
        }
        Ok(Self(pairs))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn only(&self, allowed: &[&str]) -> Result<(), Reply> {
        match self.0.iter().find(|(n, _)| !allowed.contains(&n.as_str())) {
            None => Ok(()),
            Some((name, _)) => Err(Reply::error(
                400,
                "invalid_query",
                format!("unknown parameter {name:?} (this route takes: {})", allowed.join(", ")),
            )),
        }
    }
}

pub struct StatusHandler<C> {
    pub state: DynamoSyncState,
    pub products: DynamoProductStore,
    pub sqs: aws_sdk_sqs::Client,
    pub work_queue_url: String,
    pub dead_letter_queue_url: String,
    /// For `live=true` only.
    pub catalog: C,
}

fn unavailable(error: impl std::fmt::Display) -> Reply {
    tracing::error!(error = %error, "status read failed");
    Reply::error(503, "unavailable", format!("could not read the sync state: {error}"))
}

impl<C: Catalog> StatusHandler<C> {
    pub async fn handle(&self, method: &Method, path: &str, query: Option<&str>) -> Reply {
        let reply = match Route::parse(method, path, query) {
            Ok(route) => self.answer(route).await.unwrap_or_else(|reply| reply),
            Err(reply) => reply,
        };
        tracing::info!(
            status = reply.status,
            path,
            outcome = reply.body.get("error").and_then(|e| e.as_str()),
            "status answered"
        );
        reply
    }

    async fn answer(&self, route: Route) -> Result<Reply, Reply> {
        match route {
            Route::Status => self.status().await,
            Route::Runs { limit } => {
                let runs = self.state.recent_runs(limit).await.map_err(unavailable)?;
                Ok(Reply::ok(json!({ "runs": runs })))
            }
            Route::Product { id, live } => self.product(id, live).await,
        }
    }

    async fn status(&self) -> Result<Reply, Reply> {
        let (record, markers, errors, work, dead_letter) = tokio::join!(
            self.state.status(),
            self.state.first_out_of_sync(MARKERS_READ + 1),
            self.state.recent_errors(ERRORS_LIMIT),
            queue_depth(&self.sqs, &self.work_queue_url),
            queue_depth(&self.sqs, &self.dead_letter_queue_url),
        );
        let record: StatusRecord = serde_json::from_value(record.map_err(unavailable)?)
            .map_err(|e| unavailable(StoreError::Malformed(e.to_string())))?;
        let mut markers = markers.map_err(unavailable)?;
        let complete = markers.len() <= MARKERS_READ as usize;
        markers.truncate(MARKERS_READ as usize);
        let ids: Vec<ProductId> = markers.iter().map(|m| m.product_id).collect();
        let stored = self.products.get_many(&ids).await.map_err(unavailable)?.len();
        let sample = MarkerSample {
            markers,
            stored,
            complete,
        };
        let queues = Queues {
            work: work.map_err(unavailable)?,
            dead_letter: dead_letter.map_err(unavailable)?,
        };
        let report = StatusReport::assemble(
            &record,
            &sample,
            queues,
            errors.map_err(unavailable)?,
            OffsetDateTime::now_utc(),
        );
        Ok(Reply::ok(serde_json::to_value(report).expect("reports serialise")))
    }

    async fn product(&self, id: ProductId, live: bool) -> Result<Reply, Reply> {
        let (stored, marker, history) = tokio::join!(
            self.products.get(id),
            self.state.out_of_sync_marker(id),
            self.state.audit_entries(id, HISTORY_LIMIT),
        );
        let Some(stored) = stored.map_err(unavailable)? else {
            return Err(Reply::error(
                404,
                "unknown_product",
                format!("product {id} is not in the products table"),
            ));
        };
        let live = if live {
            let fetched_at = OffsetDateTime::now_utc();
            let product = match self.catalog.product(id).await {
                Ok(product) => Some(product),
                Err(PixlpayError::NotFound { .. }) => None,
                Err(e) => {
                    return Err(Reply::error(
                        502,
                        "pixlpay_unavailable",
                        format!("reading product {id} from Pixlpay failed: {e}"),
                    ));
                }
            };
            Some(LiveComparison::compare(&stored, product, fetched_at))
        } else {
            None
        };
        let status = ProductStatus {
            product_id: id,
            stored,
            out_of_sync: marker.map_err(unavailable)?,
            history: history.map_err(unavailable)?,
            live,
        };
        Ok(Reply::ok(serde_json::to_value(status).expect("statuses serialise")))
    }

    /// The Lambda (API Gateway HTTP API) entry point.
    pub async fn handle_http(&self, request: lambda_http::Request) -> lambda_http::Response<lambda_http::Body> {
        let uri = request.uri();
        self.handle(request.method(), uri.path(), uri.query()).await.into_http()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(method: Method, path: &str, query: Option<&str>) -> Result<Route, (u16, String)> {
        Route::parse(&method, path, query).map_err(|r| (r.status, r.body["error"].as_str().unwrap().to_owned()))
    }

    #[test]
    fn routes_and_their_parameters() {
        let get = |path: &str, query| parse(Method::GET, path, query);
        assert_eq!(get("/status", None), Ok(Route::Status));
        assert_eq!(get("/prod/status/", None), Ok(Route::Status), "a stage prefix is fine");
        assert_eq!(
            get("/lambda-url/status/status/runs", None),
            Ok(Route::Runs { limit: 20 })
        );
        assert_eq!(get("/status/runs", None), Ok(Route::Runs { limit: 20 }));
        assert_eq!(get("/status/runs", Some("limit=5")), Ok(Route::Runs { limit: 5 }));
        assert_eq!(
            get("/status/products/42", None),
            Ok(Route::Product { id: 42, live: false })
        );
        assert_eq!(
            get("/status/products/pixlpay_42", Some("live=true")),
            Ok(Route::Product { id: 42, live: true })
        );
    }

    #[test]
    fn bad_requests_are_refused_with_the_reason() {
        let get = |path: &str, query| parse(Method::GET, path, query).unwrap_err();
        for bad_id in [
            "abc",
            "0",
            "-3",
            "4.5",
            "+7",
            "99999999999999999999999",
            "pixlpay_",
            "pixlpay_x",
        ] {
            let path = format!("/status/products/{bad_id}");
            assert_eq!(get(&path, None), (400, "invalid_product_id".into()), "{bad_id}");
        }
        assert_eq!(get("/status/products/4", Some("live=maybe")).0, 400);
        assert_eq!(get("/status/products/4", Some("verbose=1")).0, 400);
        assert_eq!(get("/status/products/4", Some("live=true&live=false")).0, 400);
        assert_eq!(get("/status/runs", Some("limit=0")).0, 400);
        assert_eq!(get("/status/runs", Some("limit=101")).0, 400);
        assert_eq!(get("/status", Some("x=1")).0, 400);
        assert_eq!(get("/status/products", None), (404, "not_found".into()));
        assert_eq!(get("/status/products/4/more", None).0, 404);
        assert_eq!(get("/elsewhere", None).0, 404);
        assert_eq!(
            parse(Method::POST, "/status", None).unwrap_err(),
            (405, "method_not_allowed".into())
        );
    }
}
