//! What each Lambda does with its event, free of the Lambda runtime types so it is tested by calling it directly.
//! The mains in `functions/` only load config, build clients and hand events here.

pub mod external_sync;
pub mod full_sync;
pub mod product_worker;
pub mod status;
pub mod webhook;

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

/// An HTTP answer: status and JSON body. Every error body is `{"error": <code>, "reason": <what to do about it>}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn error(status: u16, error: &str, reason: impl std::fmt::Display) -> Self {
        Self {
            status,
            body: json!({"error": error, "reason": reason.to_string()}),
        }
    }

    pub fn ok(body: Value) -> Self {
        Self { status: 200, body }
    }

    /// As the HTTP API (Lambda) response.
    pub fn into_http(self) -> lambda_http::Response<lambda_http::Body> {
        lambda_http::Response::builder()
            .status(self.status)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(lambda_http::Body::Text(self.body.to_string()))
            .expect("status codes used here are valid")
    }
}

/// The time assumed left when the invocation's deadline is unusable: Lambda's maximum timeout.
pub const UNKNOWN_DEADLINE: Duration = Duration::from_secs(900);

/// Time left before the invocation's `deadline`. Lambda always gives a future deadline; local emulators (cargo
/// lambda watch) may not, and then Lambda's longest timeout is assumed rather than stopping before any work.
pub fn time_left(deadline: SystemTime) -> Duration {
    match deadline.duration_since(SystemTime::now()) {
        Ok(remaining) if !remaining.is_zero() => remaining,
        _ => {
            tracing::warn!("invocation deadline missing or past; assuming {UNKNOWN_DEADLINE:?}");
            UNKNOWN_DEADLINE
        }
    }
}
