//! The product-worker function: an SQS batch in, the ids of the messages to retry out (`ReportBatchItemFailures`).

use std::time::{Duration, SystemTime};

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use tokio::time::Instant;

use super::time_left;
use crate::ingest::WorkQueue;
use crate::sync::{
    AuditLog, BatchOutcome, Catalog, EventPublisher, HealthLog, ProductStore, ProductWorker, QueuedMessage,
};

/// Stop starting products this long before the Lambda deadline (a quarter of the time left, at most 10 s).
fn margin(remaining: Duration) -> Duration {
    (remaining / 4).min(Duration::from_secs(10))
}

/// The SQS records as the worker sees them. A record without a body is kept (with an empty body) so it is reported
/// as malformed rather than silently acknowledged.
pub fn queued_messages(event: &SqsEvent) -> Vec<QueuedMessage> {
    event
        .records
        .iter()
        .map(|record| QueuedMessage {
            message_id: record.message_id.clone().unwrap_or_default(),
            body: record.body.clone().unwrap_or_default(),
            receive_count: record
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|n| n.parse().ok())
                .unwrap_or(1),
        })
        .collect()
}

pub fn batch_response(outcome: &BatchOutcome) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = outcome
        .failed
        .iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id.clone();
            failure
        })
        .collect();
    response
}

pub async fn handle<C, S, E, Q, A>(
    worker: &ProductWorker<C, S, E, Q, A>,
    event: &SqsEvent,
    deadline: SystemTime,
) -> SqsBatchResponse
where
    C: Catalog,
    S: ProductStore,
    E: EventPublisher,
    Q: WorkQueue,
    A: AuditLog + HealthLog,
{
    let remaining = time_left(deadline);
    let messages = queued_messages(event);
    let outcome = worker
        .process(&messages, Instant::now() + remaining.saturating_sub(margin(remaining)))
        .await;
    tracing::info!(
        messages = messages.len(),
        products = outcome.products,
        fetched = outcome.fetched,
        skipped = outcome.skipped,
        deferred = outcome.deferred,
        written = outcome.written,
        failed = outcome.failed.len(),
        "batch done"
    );
    batch_response(&outcome)
}
