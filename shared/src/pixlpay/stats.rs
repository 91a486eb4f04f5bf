//! Counters of what the client did, for run records, the status API and the benchmarks.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

#[derive(Debug, Default)]
pub(super) struct ClientStats {
    requests: AtomicU64,
    rate_limited: AtomicU64,
    retries: AtomicU64,
    server_errors: AtomicU64,
    errors: AtomicU64,
    /// `X-RateLimit-Remaining` of the latest response that had it; `u64::MAX` until one did.
    remaining: AtomicU64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ClientStatsSnapshot {
    /// HTTP requests sent, retries included.
    pub requests: u64,
    /// 429 answers received.
    pub rate_limited: u64,
    /// Retries after a 5xx, a timeout, a connection error or a malformed body.
    pub retries: u64,
    pub server_errors: u64,
    /// Calls that ended in an error returned to the caller.
    pub errors: u64,
    pub rate_limit_remaining: Option<u64>,
}

impl ClientStats {
    pub(super) fn request(&self) {
        self.requests.fetch_add(1, Relaxed);
    }
    pub(super) fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Relaxed);
    }
    pub(super) fn retry(&self) {
        self.retries.fetch_add(1, Relaxed);
    }
    pub(super) fn server_error(&self) {
        self.server_errors.fetch_add(1, Relaxed);
    }
    pub(super) fn error(&self) {
        self.errors.fetch_add(1, Relaxed);
    }
    pub(super) fn remaining(&self, remaining: u64) {
        self.remaining.store(remaining, Relaxed);
    }

    pub(super) fn snapshot(&self) -> ClientStatsSnapshot {
        let remaining = self.remaining.load(Relaxed);
        ClientStatsSnapshot {
            requests: self.requests.load(Relaxed),
            rate_limited: self.rate_limited.load(Relaxed),
            retries: self.retries.load(Relaxed),
            server_errors: self.server_errors.load(Relaxed),
            errors: self.errors.load(Relaxed),
            rate_limit_remaining: (remaining != u64::MAX && self.requests.load(Relaxed) > 0).then_some(remaining),
        }
    }
}

impl ClientStatsSnapshot {
    /// What happened between `earlier` and `self`, for a run that shares a long-lived client.
    pub fn since(&self, earlier: &ClientStatsSnapshot) -> ClientStatsSnapshot {
        ClientStatsSnapshot {
            requests: self.requests - earlier.requests,
            rate_limited: self.rate_limited - earlier.rate_limited,
            retries: self.retries - earlier.retries,
            server_errors: self.server_errors - earlier.server_errors,
            errors: self.errors - earlier.errors,
            rate_limit_remaining: self.rate_limit_remaining,
        }
    }
}
