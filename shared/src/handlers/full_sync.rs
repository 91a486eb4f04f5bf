//! The full-sync function: an EventBridge Scheduler invocation (payload: the schedule's Input, e.g.
//! `{"trigger": "schedule"}`), a classic scheduled rule event, or a manual `{"dry_run": true}` / `{"max_pages": 3}`.

use std::time::{Duration, SystemTime};

use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::time::Instant;

use super::time_left;
use crate::sync::{
    AuditLog, Catalog, EventPublisher, FullSync, HealthLog, ProductStore, RunOptions, SyncError, SyncState,
};

/// Stop taking pages this long before the Lambda deadline, to checkpoint and answer in time: 30 s, or a quarter of
/// the time left when the function's timeout is short (a local 30 s timeout still gets 22 s of work).
pub fn deadline_margin(remaining: Duration) -> Duration {
    (remaining / 4).min(Duration::from_secs(30))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FullSyncRequest {
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub trigger: Option<String>,
    /// Pause after this many pages (short invocations on purpose).
    #[serde(default)]
    pub max_pages: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum FullSyncHandlerError {
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error(transparent)]
    Sync(#[from] SyncError),
}

/// Reads the invocation payload. A scheduled-rule event (`detail-type: Scheduled Event`) and an empty payload mean a
/// scheduled run; anything else must be a [`FullSyncRequest`] and is refused, with the reason, before any work.
pub fn parse_request(payload: &Value) -> Result<FullSyncRequest, FullSyncHandlerError> {
    match payload {
        Value::Null => Ok(FullSyncRequest {
            trigger: Some("schedule".into()),
            ..Default::default()
        }),
        Value::Object(map) if map.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event") => {
            Ok(FullSyncRequest {
                trigger: Some("schedule".into()),
                ..Default::default()
            })
        }
        Value::Object(_) => {
            let request: FullSyncRequest = serde_json::from_value(payload.clone())
                .map_err(|e| FullSyncHandlerError::InvalidRequest(e.to_string()))?;
            if request.max_pages == Some(0) {
                return Err(FullSyncHandlerError::InvalidRequest(
                    "max_pages must be at least 1".into(),
                ));
            }
            Ok(request)
        }
        other => Err(FullSyncHandlerError::InvalidRequest(format!(
            "expected a JSON object, got {other}"
        ))),
    }
}

/// Runs one invocation. `deadline` is the Lambda's; `request_id` owns the run lock until it.
pub async fn handle<C, S, T, E>(
    sync: &FullSync<C, S, T, E>,
    payload: &Value,
    request_id: &str,
    deadline: SystemTime,
) -> Result<Value, FullSyncHandlerError>
where
    C: Catalog,
    S: ProductStore,
    T: SyncState + AuditLog + HealthLog,
    E: EventPublisher,
{
    let request = parse_request(payload)?;
    if request.dry_run {
        let report = sync.dry_run().await?;
        return Ok(json!({"status": "dry_run", "report": report}));
    }
    let remaining = time_left(deadline);
    let options = RunOptions {
        trigger: request.trigger.unwrap_or_else(|| "manual".into()),
        lock_owner: request_id.to_owned(),
        lock_expires_at_unix: OffsetDateTime::now_utc().unix_timestamp() + remaining.as_secs() as i64 + 1,
        deadline: Instant::now() + remaining.saturating_sub(deadline_margin(remaining)),
        max_pages: request.max_pages,
    };
    let outcome = sync.run(&options).await?;
    Ok(serde_json::to_value(outcome).expect("outcomes serialise"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_margin_leaves_most_of_a_short_timeout_for_work() {
        assert_eq!(deadline_margin(Duration::from_secs(900)), Duration::from_secs(30));
        assert_eq!(deadline_margin(Duration::from_secs(30)), Duration::from_millis(7500));
    }

    #[test]
    fn schedules_and_manual_requests_parse_and_bad_ones_are_refused() {
        assert_eq!(
            parse_request(&Value::Null).unwrap().trigger.as_deref(),
            Some("schedule")
        );
        let rule = json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
        assert_eq!(parse_request(&rule).unwrap().trigger.as_deref(), Some("schedule"));
        assert!(parse_request(&json!({"dry_run": true})).unwrap().dry_run);
        assert_eq!(
            parse_request(&json!({"trigger": "schedule"}))
                .unwrap()
                .trigger
                .as_deref(),
            Some("schedule")
        );
        for bad in [
            json!({"dry_run": "yes"}),
            json!({"dryrun": true}),
            json!([1]),
            json!("go"),
            json!({"max_pages": 0}),
        ] {
            assert!(
                matches!(parse_request(&bad), Err(FullSyncHandlerError::InvalidRequest(_))),
                "{bad} accepted"
            );
        }
    }
}
