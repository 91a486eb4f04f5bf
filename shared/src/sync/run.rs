//! The record of one full-sync run: what it did, how far it got (so the next invocation can resume), what it cost.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::pixlpay::ClientStatsSnapshot;
use crate::timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// An invocation is working on it.
    Running,
    /// Stopped before the end (deadline, or an error after retries); the next invocation resumes it.
    Paused,
    Completed,
}

/// Counts of what a run did. Every product seen on a page lands in exactly one of created, updated, restored,
/// unchanged, stale or invalid.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunCounts {
    pub seen: u64,
    pub created: u64,
    pub updated: u64,
    pub restored: u64,
    pub unchanged: u64,
    /// Reads older than what the table already held (a webhook stored something newer).
    pub stale: u64,
    pub invalid: u64,
    pub deleted: u64,
    /// Stored active products the scan did not see.
    pub delete_candidates: u64,
    /// Candidates that `GET /products/{id}` showed alive (page shifting hid them).
    pub delete_candidates_alive: u64,
    pub api_requests: u64,
    pub rate_limited: u64,
    pub retries: u64,
    /// Product items written (the Products table only).
    pub dynamodb_writes: u64,
    pub events_published: u64,
}

impl RunCounts {
    pub fn add_client_stats(&mut self, delta: &ClientStatsSnapshot) {
        self.api_requests += delta.requests;
        self.rate_limited += delta.rate_limited;
        self.retries += delta.retries;
    }
}

/// At most this many invalid-product reasons and errors are kept on a run record (DynamoDB's 400 KB item limit).
pub const MAX_REASONS: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    /// `schedule`, `manual`, ...: what started the run.
    pub trigger: String,
    pub status: RunStatus,
    #[serde(with = "timestamp::required")]
    pub started_at: OffsetDateTime,
    #[serde(default, with = "timestamp::option", skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<OffsetDateTime>,
    /// The first page not yet written: where a resumed run starts.
    pub next_page: u32,
    #[serde(default)]
    pub last_page: u32,
    #[serde(default)]
    pub pages: u32,
    /// Invocations that worked on this run (more than one after a pause).
    pub invocations: u32,
    pub counts: RunCounts,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invalid_reasons: Vec<String>,
    /// Why deletions were skipped (the deletion guard tripped), if they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_refused: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Wall time of the invocations that worked on the run, added up.
    #[serde(default)]
    pub duration_ms: u64,
}

impl RunRecord {
    pub fn new(run_id: String, trigger: &str, now: OffsetDateTime) -> Self {
        Self {
            run_id,
            trigger: trigger.to_owned(),
            status: RunStatus::Running,
            started_at: now,
            ended_at: None,
            next_page: 1,
            last_page: 0,
            pages: 0,
            invocations: 1,
            counts: RunCounts::default(),
            invalid_reasons: Vec::new(),
            deletion_refused: None,
            errors: Vec::new(),
            duration_ms: 0,
        }
    }

    pub fn note_invalid(&mut self, reason: String) {
        self.counts.invalid += 1;
        if self.invalid_reasons.len() < MAX_REASONS {
            self.invalid_reasons.push(reason);
        }
    }

    pub fn note_error(&mut self, error: String) {
        if self.errors.len() < MAX_REASONS {
            self.errors.push(error);
        }
    }
}

/// A run id that sorts by start time: `fs-20261204T162252.041Z-1a2b3c`. Milliseconds, because runs of a small
/// catalog (a dry run, then the real one) start within the same second, and "the newest run" is the highest key.
pub fn new_run_id(now: OffsetDateTime) -> String {
    let stamp = now
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second].[subsecond digits:3]Z"
        ))
        .expect("formats");
    format!("fs-{stamp}-{:06x}", rand::random::<u32>() & 0xff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;
    use time::macros::datetime;

    #[test]
    fn run_ids_sort_by_start_time_even_within_one_second() {
        let first = datetime!(2026-12-04 16:22:52.041 UTC);
        for _ in 0..50 {
            let earlier = new_run_id(first);
            let later = new_run_id(first + Duration::milliseconds(1));
            assert!(earlier < later, "{earlier} should sort before {later}");
        }
        assert!(new_run_id(first).starts_with("fs-20261204T162252.041Z-"));
    }
}
