//! The product worker: a batch of queued product events, coalesced per product, each product read once from Pixlpay
//! and written through the same conditional path as the full sync.
//!
//! Every event kind is handled the same way, because the event only says *that* something happened: `GET
//! /products/{id}`; 200 upserts (for `product.deleted` too: the product lives), 404 soft-deletes (the confirmation
//! rule 4 asks for). Ordering therefore does not matter, and neither do duplicates.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::time::Instant;

use super::audit::{AuditAction, AuditEntry};
use super::events::WriteContext;
use super::health::{ErrorRecord, HealthLog, OutOfSyncReason};
use super::item::{ProductItem, WriteSource, micros};
use super::ports::{AuditLog, Catalog, EventPublisher, ProductStore};
use super::writer::{ProductWriter, View, WriteReport};
use crate::ingest::{WorkMessage, WorkQueue};
use crate::pixlpay::PixlpayError;
use crate::product::ProductId;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Products processed at once within a batch (their GETs still share the client's pacing).
    pub concurrency: usize,
    /// A product stored from a single read that started at least this long after an event's `created_at` already
    /// reflects that event, so the GET is skipped. Covers clock skew between Pixlpay and AWS.
    pub skip_margin: Duration,
    /// How long a product is put back on the queue when Pixlpay keeps answering 429.
    pub rate_limit_delay: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 4,
            skip_margin: Duration::from_secs(5),
            rate_limit_delay: Duration::from_secs(60),
        }
    }
}

/// One SQS message as the worker sees it.
#[derive(Debug, Clone)]
pub struct QueuedMessage {
    pub message_id: String,
    pub body: String,
    pub receive_count: u32,
}

/// What a batch did. `failed` holds the message ids to report back (SQS retries only those).
#[derive(Debug, Default, Serialize)]
pub struct BatchOutcome {
    pub failed: Vec<String>,
    pub malformed: usize,
    pub products: usize,
    /// Products read from Pixlpay (one GET each, whatever the number of messages).
    pub fetched: usize,
    /// Products whose stored state was read after every event in the batch: no GET needed.
    pub skipped: usize,
    /// Products put back on the queue for later (rate limited, or out of time).
    pub deferred: usize,
    pub written: u64,
    pub unchanged: u64,
    pub stale: u64,
    pub events_published: usize,
}

/// How one product's messages ended.
enum ProductResult {
    Done(WriteReport),
    Skipped,
    Defer(Duration),
    /// Retried by SQS; an invalid product also leaves an audit entry.
    Failed(Failure),
}

struct Failure {
    reason: String,
    /// Pixlpay serves the product but it fails validation (recorded as such, and in the audit trail).
    invalid: Option<AuditEntry>,
}

pub struct ProductWorker<C, S, E, Q, A> {
    pub catalog: C,
    pub store: S,
    pub events: E,
    pub queue: Q,
    /// The sync-state table: audit trail and health.
    pub state: A,
    pub config: WorkerConfig,
}

/// One product's messages, merged.
struct ProductWork {
    product_id: ProductId,
    message_ids: Vec<String>,
    messages: Vec<WorkMessage>,
}

impl ProductWork {
    /// The newest event time, if every message has one (a message without `created_at` could be about anything).
    fn newest_event(&self) -> Option<OffsetDateTime> {
        self.messages
            .iter()
            .map(|m| m.created_at)
            .collect::<Option<Vec<_>>>()?
            .into_iter()
            .max()
    }

    fn context(&self) -> WriteContext {
        let ids: Vec<&str> = self.messages.iter().filter_map(|m| m.delivery_id.as_deref()).collect();
        WriteContext {
            run_id: None,
            delivery_id: (!ids.is_empty()).then(|| ids.join(",")),
        }
    }

    /// The single message that stands for all of them when the product is put back on the queue.
    fn merged(&self) -> WorkMessage {
        let last = self.messages.last().expect("a group has at least one message");
        WorkMessage {
            product_id: self.product_id,
            event: last.event,
            delivery_id: last.delivery_id.clone(),
            created_at: self.newest_event(),
            deferrals: self.messages.iter().map(|m| m.deferrals).max().unwrap_or(0) + 1,
            seq: self.seq(),
        }
    }

    /// The newest marker sequence among the messages: finishing them clears the marker up to it.
    fn seq(&self) -> u64 {
        self.messages.iter().map(|m| m.seq).max().unwrap_or(0)
    }
}

impl<C, S, E, Q, A> ProductWorker<C, S, E, Q, A>
where
    C: Catalog,
    S: ProductStore,
    E: EventPublisher,
    Q: WorkQueue,
    A: AuditLog + HealthLog,
{
    /// Processes one batch. Work not started by `deadline` is put back on the queue rather than failed.
    pub async fn process(&self, messages: &[QueuedMessage], deadline: Instant) -> BatchOutcome {
        let mut outcome = BatchOutcome::default();
        let mut groups: BTreeMap<ProductId, ProductWork> = BTreeMap::new();
        for message in messages {
            match serde_json::from_str::<WorkMessage>(&message.body) {
                Ok(work) => {
                    let group = groups.entry(work.product_id).or_insert_with(|| ProductWork {
                        product_id: work.product_id,
                        message_ids: Vec::new(),
                        messages: Vec::new(),
                    });
                    group.message_ids.push(message.message_id.clone());
                    group.messages.push(work);
                }
                Err(e) => {
                    // Retrying cannot fix it; reported as failed so it ends in the DLQ where someone looks.
                    tracing::error!(message_id = message.message_id, receive_count = message.receive_count,
                        error = %e, outcome = "malformed", "malformed work message");
                    outcome.malformed += 1;
                    outcome.failed.push(message.message_id.clone());
                }
            }
        }
        outcome.products = groups.len();
        let ids: Vec<ProductId> = groups.keys().copied().collect();
        let stored = match self.store.get_many(&ids).await {
            Ok(stored) => stored,
            Err(e) => {
                tracing::error!(error = %e, "reading stored products failed; the whole batch is retried");
                outcome.failed.extend(groups.into_values().flat_map(|g| g.message_ids));
                return outcome;
            }
        };
        let results: Vec<(ProductWork, ProductResult)> = stream::iter(groups.into_values())
            .map(|work| async {
                let result = self.process_product(&work, &stored, deadline).await;
                (work, result)
            })
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        let mut published: Vec<(Vec<String>, WriteReport)> = Vec::new();
        let mut finished = Vec::new();
        let mut failures = Vec::new();
        for (work, result) in results {
            match result {
                ProductResult::Done(report) => {
                    outcome.fetched += 1;
                    outcome.written += report.writes;
                    outcome.unchanged += report.unchanged;
                    outcome.stale += report.stale;
                    published.push((work.message_ids.clone(), report));
                    finished.push(work);
                }
                ProductResult::Skipped => {
                    outcome.skipped += 1;
                    finished.push(work);
                }
                ProductResult::Defer(delay) => {
                    let message = work.merged();
                    match self.queue.enqueue(&message, delay).await {
                        Ok(()) => {
                            tracing::info!(
                                product_id = work.product_id,
                                delay_s = delay.as_secs(),
                                deferrals = message.deferrals,
                                outcome = "deferred",
                                "product put back on the queue"
                            );
                            outcome.deferred += 1;
                        }
                        Err(e) => {
                            tracing::warn!(product_id = work.product_id, error = %e, "deferring failed; retried by SQS");
                            outcome.failed.extend(work.message_ids);
                        }
                    }
                }
                ProductResult::Failed(failure) => {
                    tracing::error!(
                        product_id = work.product_id,
                        reason = failure.reason,
                        outcome = "failed",
                        messages = work.message_ids.len(),
                        "product not processed; its messages are retried"
                    );
                    outcome.failed.extend(work.message_ids.iter().cloned());
                    failures.push((work, failure));
                }
            }
        }
        let failed_audit = failures.iter().filter_map(|(_, f)| f.invalid.clone()).collect();
        self.publish(published, failed_audit, &mut outcome).await;
        self.settle_health(finished, failures, &mut outcome).await;
        outcome
    }

    /// Clears the out-of-sync marker of every product whose work is done (unless newer work is queued), and marks
    /// the failed ones with their reason, also listed among the recent errors. A finished product whose marker
    /// cannot be cleared is reported failed, so the retry clears it.
    async fn settle_health(
        &self,
        finished: Vec<ProductWork>,
        failures: Vec<(ProductWork, Failure)>,
        outcome: &mut BatchOutcome,
    ) {
        for work in finished {
            if work.message_ids.iter().any(|id| outcome.failed.contains(id)) {
                continue;
            }
            if let Err(e) = self.state.clear_out_of_sync(work.product_id, work.seq()).await {
                tracing::error!(product_id = work.product_id, error = %e, "clearing the out-of-sync marker failed");
                outcome.failed.extend(work.message_ids);
            }
        }
        let mut errors = Vec::with_capacity(failures.len());
        for (work, failure) in failures {
            let reason = if failure.invalid.is_some() {
                OutOfSyncReason::Invalid
            } else {
                OutOfSyncReason::WebhookFailed
            };
            if let Err(e) = self
                .state
                .note_out_of_sync(work.product_id, reason, &failure.reason)
                .await
            {
                tracing::warn!(product_id = work.product_id, error = %e, "marking the product out of sync failed");
            }
            errors.push(ErrorRecord::new(
                WriteSource::Webhook,
                &work.context(),
                Some(work.product_id),
                failure.reason,
            ));
        }
        if let Err(e) = self.state.record_errors(&errors).await {
            tracing::warn!(error = %e, "recording errors failed");
        }
    }

    /// Appends the audit entries, then publishes the events. A failure of either reports the messages behind them.
    async fn publish(
        &self,
        published: Vec<(Vec<String>, WriteReport)>,
        mut audit: Vec<AuditEntry>,
        outcome: &mut BatchOutcome,
    ) {
        audit.extend(published.iter().flat_map(|(_, r)| r.audit.iter().cloned()));
        if let Err(e) = self.state.append(&audit).await {
            tracing::error!(error = %e, "appending audit entries failed");
            for (ids, report) in &published {
                if !report.audit.is_empty() {
                    outcome.failed.extend(ids.iter().cloned());
                }
            }
        }
        let events: Vec<_> = published.iter().flat_map(|(_, r)| r.events.iter().cloned()).collect();
        if events.is_empty() {
            return;
        }
        match self.events.publish(&events).await {
            Ok(()) => outcome.events_published = events.len(),
            Err(e) => {
                // The writes stand; the messages are retried so the failure is visible (and ends in the DLQ if it
                // persists). A retry finds the product unchanged and publishes nothing more.
                tracing::error!(error = %e, "publishing change events failed");
                for (ids, report) in published {
                    if !report.events.is_empty() {
                        let new: Vec<String> = ids.into_iter().filter(|id| !outcome.failed.contains(id)).collect();
                        outcome.failed.extend(new);
                    }
                }
            }
        }
    }

    async fn process_product(
        &self,
        work: &ProductWork,
        stored: &HashMap<ProductId, ProductItem>,
        deadline: Instant,
    ) -> ProductResult {
        let id = work.product_id;
        if self.already_reflected(work, stored.get(&id)) {
            tracing::info!(
                product_id = id,
                outcome = "skipped",
                "stored state was read after these events"
            );
            return ProductResult::Skipped;
        }
        let Some(time_left) = deadline.checked_duration_since(Instant::now()).filter(|t| !t.is_zero()) else {
            return ProductResult::Defer(Duration::ZERO);
        };
        match tokio::time::timeout(time_left, self.fetch_and_write(work)).await {
            Ok(result) => result,
            Err(_) => ProductResult::Defer(Duration::ZERO),
        }
    }

    /// Whether the stored item came from a single read that started after the newest event (plus the skew margin).
    /// Only webhook-sourced items count: a list read lacks the single-view fields an event may be about.
    fn already_reflected(&self, work: &ProductWork, stored: Option<&ProductItem>) -> bool {
        let (Some(stored), Some(newest)) = (stored, work.newest_event()) else {
            return false;
        };
        stored.source == WriteSource::Webhook
            && !stored.deleted
            && stored.fetched_at_us >= micros(newest + self.config.skip_margin)
    }

    async fn fetch_and_write(&self, work: &ProductWork) -> ProductResult {
        let id = work.product_id;
        let writer = ProductWriter::new(&self.store, WriteSource::Webhook, work.context());
        let requested_at = OffsetDateTime::now_utc();
        let written = match self.catalog.product(id).await {
            Ok(product) => {
                writer
                    .upsert_all(std::slice::from_ref(&product), requested_at, 1, View::Single)
                    .await
            }
            Err(PixlpayError::NotFound { .. }) => writer.soft_delete(id, requested_at).await,
            Err(PixlpayError::RateLimited { .. }) => return ProductResult::Defer(self.config.rate_limit_delay),
            Err(PixlpayError::InvalidProduct(invalid)) => {
                let audit = AuditEntry::new(
                    AuditAction::Invalid,
                    id,
                    WriteSource::Webhook,
                    &work.context(),
                    None,
                    None,
                )
                .with_reason(invalid.to_string());
                return ProductResult::Failed(Failure {
                    reason: format!("product {id} is invalid: {invalid}"),
                    invalid: Some(audit),
                });
            }
            Err(e) => {
                return ProductResult::Failed(Failure {
                    reason: format!("reading product {id} from Pixlpay: {e}"),
                    invalid: None,
                });
            }
        };
        match written {
            Ok(report) => ProductResult::Done(report),
            Err(e) => ProductResult::Failed(Failure {
                reason: format!("writing product {id}: {e}"),
                invalid: None,
            }),
        }
    }
}
