//! Every way a Pixlpay call can fail, each its own case, so callers decide by type: retry later, record against a
//! product, or stop the run.

use std::collections::BTreeMap;

use crate::product::InvalidProduct;

#[derive(Debug, thiserror::Error)]
pub enum PixlpayError {
    #[error("unauthorized (401): {message} (the API token is missing, invalid, revoked or expired)")]
    Unauthorized { message: String },
    #[error("forbidden (403): {message}")]
    Forbidden { message: String },
    #[error("not found (404): {message}")]
    NotFound { message: String },
    #[error("bad request (400): {message}")]
    BadRequest { message: String },
    #[error("validation failed (422): {message} {errors:?}")]
    Validation {
        message: String,
        errors: BTreeMap<String, Vec<String>>,
    },
    #[error("unexpected status {status}: {message}")]
    UnexpectedStatus { status: u16, message: String },
    #[error("still rate limited (429) after waiting out {waits} refusals")]
    RateLimited { waits: u32 },
    #[error("server error {status} after {attempts} attempts")]
    Server { status: u16, attempts: u32 },
    #[error("request timed out after {attempts} attempts")]
    Timeout { attempts: u32 },
    #[error("could not reach Pixlpay after {attempts} attempts: {detail}")]
    Transport { attempts: u32, detail: String },
    #[error("malformed response after {attempts} attempts: {detail}")]
    MalformedResponse { attempts: u32, detail: String },
    #[error(transparent)]
    InvalidProduct(#[from] InvalidProduct),
    #[error("product writes are disabled (set PIXLPAY_WRITES_ENABLED=true once Pixlpay's write endpoints are live)")]
    WritesDisabled,
}

impl PixlpayError {
    /// A later attempt may succeed: the failure was Pixlpay's load or the network, not the request.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. }
                | Self::Server { .. }
                | Self::Timeout { .. }
                | Self::Transport { .. }
                | Self::MalformedResponse { .. }
        )
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    /// A short stable name for metrics, logs and status records.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unauthorized { .. } => "unauthorized",
            Self::Forbidden { .. } => "forbidden",
            Self::NotFound { .. } => "not_found",
            Self::BadRequest { .. } => "bad_request",
            Self::Validation { .. } => "validation",
            Self::UnexpectedStatus { .. } => "unexpected_status",
            Self::RateLimited { .. } => "rate_limited",
            Self::Server { .. } => "server_error",
            Self::Timeout { .. } => "timeout",
            Self::Transport { .. } => "transport",
            Self::MalformedResponse { .. } => "malformed_response",
            Self::InvalidProduct(_) => "invalid_product",
            Self::WritesDisabled => "writes_disabled",
        }
    }
}
