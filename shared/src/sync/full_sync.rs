//! The full sync: page through the whole catalog at the rate limit, write only what changed, checkpoint each page so
//! a stopped run resumes, then find deletions by mark-and-sweep, each confirmed by a 404 and bounded by the guard.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use time::OffsetDateTime;
use tokio::time::Instant;

use super::audit::{AuditAction, AuditEntry};
use super::decide::{Change, Decision};
use super::events::WriteContext;
use super::health::{ErrorRecord, HealthLog, OutOfSync, OutOfSyncReason};
use super::item::WriteSource;
use super::ports::{AuditLog, Catalog, EventPublisher, ProductStore, PublishError, StoreError, SyncState};
use super::run::{RunRecord, RunStatus, new_run_id};
use super::writer::{ProductWriter, View, WriteReport, plan_upsert};
use crate::pixlpay::{MAX_PER_PAGE, PageWalker, PixlpayError};
use crate::product::ProductId;

#[derive(Debug, Clone)]
pub struct FullSyncConfig {
    pub per_page: u32,
    /// Page requests in flight at once. The client's pacer still spaces them: this hides latency, nothing more.
    pub page_concurrency: usize,
    /// Conditional writes in flight at once within a page.
    pub write_concurrency: usize,
    /// Deletion guard: a run that would delete more than this share of the stored active products deletes nothing.
    pub delete_guard_share: f64,
    /// ...unless it would delete at most this many (so a 20-product shop can still lose one).
    pub delete_guard_min: usize,
}

impl Default for FullSyncConfig {
    fn default() -> Self {
        Self {
            per_page: MAX_PER_PAGE,
            page_concurrency: 4,
            write_concurrency: 16,
            delete_guard_share: 0.10,
            delete_guard_min: 5,
        }
    }
}

/// One invocation's instructions.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub trigger: String,
    /// Who holds the lock (the Lambda request id); the lock expires at `lock_expires_at_unix`.
    pub lock_owner: String,
    pub lock_expires_at_unix: i64,
    /// Stop taking new pages at this instant (the Lambda deadline less a margin) and pause.
    pub deadline: Instant,
    /// Pause after this many pages in this invocation (tests and operators who want short invocations).
    pub max_pages: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RunOutcome {
    Completed {
        run: Box<RunRecord>,
    },
    /// Stopped before the end; the next invocation resumes from `run.next_page`.
    Paused {
        run: Box<RunRecord>,
    },
    /// Another invocation holds the lock: this one did nothing.
    Busy,
}

/// What a dry run found, without writing anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DryRunReport {
    pub seen: u64,
    pub would_create: u64,
    pub would_update: u64,
    pub would_restore: u64,
    pub unchanged: u64,
    pub stale: u64,
    pub invalid: u64,
    /// Stored active products the scan did not see: each would be confirmed with a GET before any delete.
    pub delete_candidates: Vec<ProductId>,
    pub deletion_would_be_refused: bool,
    /// The first changes it would make, by product: `{"42": "updated"}`.
    pub sample: BTreeMap<ProductId, Change>,
    pub api_requests: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("pixlpay: {0}")]
    Pixlpay(#[from] PixlpayError),
    #[error("dynamodb: {0}")]
    Store(#[from] StoreError),
    #[error("eventbridge: {0}")]
    Publish(#[from] PublishError),
}

pub struct FullSync<C, S, T, E> {
    pub catalog: C,
    pub store: S,
    pub state: T,
    pub events: E,
    pub config: FullSyncConfig,
}

/// The out-of-sync markers a run found when it started, by product. A run clears those of the products it stores
/// (a marker set after the run started has a newer sequence and stays) and re-marks what it cannot store.
type Markers = HashMap<ProductId, OutOfSync>;

impl<C: Catalog, S: ProductStore, T: SyncState + AuditLog + HealthLog, E: EventPublisher> FullSync<C, S, T, E> {
    /// Runs (or resumes) the full sync under the lock. Errors leave the run paused at its last checkpoint.
    pub async fn run(&self, options: &RunOptions) -> Result<RunOutcome, SyncError> {
        if !self
            .state
            .acquire_lock(&options.lock_owner, options.lock_expires_at_unix)
            .await?
        {
            tracing::info!(outcome = "busy", "another full sync holds the lock; nothing to do");
            return Ok(RunOutcome::Busy);
        }
        let result = self.run_locked(options).await;
        if let Err(e) = self.state.release_lock(&options.lock_owner).await {
            tracing::warn!(error = %e, "could not release the full-sync lock; it expires by itself");
        }
        result
    }

    async fn run_locked(&self, options: &RunOptions) -> Result<RunOutcome, SyncError> {
        let started = Instant::now();
        let stats_before = self.catalog.stats();
        let (mut run, mut seen) = match self.state.unfinished_run().await? {
            Some(mut run) => {
                let seen = self.state.seen_ids(&run.run_id).await?;
                run.invocations += 1;
                run.status = RunStatus::Running;
                tracing::info!(run_id = run.run_id, next_page = run.next_page, "resuming full sync");
                (run, seen)
            }
            None => {
                let now = OffsetDateTime::now_utc();
                let run = RunRecord::new(new_run_id(now), &options.trigger, now);
                tracing::info!(run_id = run.run_id, trigger = options.trigger, "starting full sync");
                (run, HashSet::new())
            }
        };
        self.state.save_run(&run).await?;
        let markers: Markers = self
            .state
            .out_of_sync()
            .await?
            .into_iter()
            // A pending push waits for Pixlpay to take the external value; reading Pixlpay does not settle it.
            .filter(|m| m.reason != OutOfSyncReason::PushPending)
            .map(|m| (m.product_id, m))
            .collect();
        let result = self.scan(&mut run, &mut seen, &markers, options, started).await;
        run.duration_ms += started.elapsed().as_millis() as u64;
        run.counts.add_client_stats(&self.catalog.stats().since(&stats_before));
        match result {
            Ok(true) => {
                run.status = RunStatus::Completed;
                run.ended_at = Some(OffsetDateTime::now_utc());
                self.state.save_run(&run).await?;
                self.state.record_full_sync(&run).await?;
                tracing::info!(run_id = run.run_id, outcome = "completed", counts = ?run.counts, "full sync completed");
                Ok(RunOutcome::Completed { run: Box::new(run) })
            }
            Ok(false) => {
                run.status = RunStatus::Paused;
                self.state.save_run(&run).await?;
                tracing::info!(
                    run_id = run.run_id,
                    outcome = "paused",
                    next_page = run.next_page,
                    "full sync paused"
                );
                Ok(RunOutcome::Paused { run: Box::new(run) })
            }
            Err(error) => {
                run.status = RunStatus::Paused;
                run.note_error(error.to_string());
                let context = WriteContext {
                    run_id: Some(run.run_id.clone()),
                    delivery_id: None,
                };
                let record = ErrorRecord::new(
                    WriteSource::FullSync,
                    &context,
                    None,
                    format!("full sync stopped: {error}"),
                );
                if let Err(e) = self.state.record_errors(&[record]).await {
                    tracing::warn!(error = %e, "could not record the error");
                }
                if let Err(save) = self.state.save_run(&run).await {
                    tracing::error!(error = %save, "could not record the failed run");
                }
                tracing::error!(run_id = run.run_id, outcome = "failed", error = %error, "full sync stopped");
                Err(error)
            }
        }
    }

    /// Pages, then the sweep. `Ok(false)`: paused before the end.
    async fn scan(
        &self,
        run: &mut RunRecord,
        seen: &mut HashSet<ProductId>,
        markers: &Markers,
        options: &RunOptions,
        started: Instant,
    ) -> Result<bool, SyncError> {
        let context = WriteContext {
            run_id: Some(run.run_id.clone()),
            delivery_id: None,
        };
        let writer = ProductWriter::new(&self.store, WriteSource::FullSync, context.clone());
        let mut walker = PageWalker::new(
            self.catalog.clone(),
            self.config.per_page,
            self.config.page_concurrency,
            run.next_page,
        );
        let mut pages_this_invocation = 0;
        loop {
            // Every invocation does at least one page, so a run always moves forward, however late it started.
            let out_of_time = pages_this_invocation > 0 && Instant::now() >= options.deadline;
            if out_of_time || options.max_pages.is_some_and(|max| pages_this_invocation >= max) {
                return Ok(false);
            }
            let Some(page) = walker.next().await else { break };
            let page = page?;
            let report = writer
                .upsert_all(
                    &page.products,
                    page.requested_at,
                    self.config.write_concurrency,
                    View::List,
                )
                .await?;
            self.publish(run, &report).await?;
            let mut ids: Vec<ProductId> = page.products.iter().map(|p| p.id).collect();
            self.clear_markers(&ids, markers).await?;
            let mut invalid_audit = Vec::new();
            let mut problems = Vec::new();
            for invalid in &page.invalid {
                // An invalid product still exists in Pixlpay: it must not be swept as deleted.
                ids.extend(invalid.id);
                tracing::warn!(product_id = invalid.id, run_id = run.run_id, outcome = "invalid", reason = %invalid, "invalid product skipped");
                run.note_invalid(invalid.to_string());
                if let Some(id) = invalid.id {
                    invalid_audit.push(
                        AuditEntry::new(AuditAction::Invalid, id, WriteSource::FullSync, &context, None, None)
                            .with_reason(invalid.to_string()),
                    );
                    problems.push((id, OutOfSyncReason::Invalid, invalid.to_string()));
                }
            }
            self.state.append(&invalid_audit).await?;
            self.mark_out_of_sync(&problems, markers, &context).await?;
            add_report(run, &report);
            run.counts.seen += ids.len() as u64;
            seen.extend(&ids);
            run.next_page = page.page + 1;
            run.last_page = page.last_page;
            run.pages += 1;
            self.state.checkpoint(run, page.page, &ids).await?;
            pages_this_invocation += 1;
            tracing::debug!(
                run_id = run.run_id,
                page = page.page,
                last_page = page.last_page,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "page done"
            );
        }
        self.sweep(run, seen, markers, &writer).await?;
        Ok(true)
    }

    /// Mark and sweep: stored active products this run never saw are candidates; each is confirmed with
    /// `GET /products/{id}` (404 deletes, 200 upserts), unless there are so many that the guard refuses them all.
    async fn sweep(
        &self,
        run: &mut RunRecord,
        seen: &HashSet<ProductId>,
        markers: &Markers,
        writer: &ProductWriter<'_, S>,
    ) -> Result<(), SyncError> {
        let context = writer.context().clone();
        let active = self.store.active_ids().await?;
        let mut candidates: Vec<ProductId> = active.difference(seen).copied().collect();
        candidates.sort_unstable();
        run.counts.delete_candidates = candidates.len() as u64;
        if let Some(reason) = self.guard_refuses(candidates.len(), active.len()) {
            // Every refused candidate stays out of sync (missing from Pixlpay, still active here); the guard trip
            // itself is one error, not one per product.
            for id in &candidates {
                self.state
                    .note_out_of_sync(*id, OutOfSyncReason::MissingFromPixlpay, &reason)
                    .await?;
            }
            let record = ErrorRecord::new(WriteSource::FullSync, &context, None, reason.clone());
            self.state.record_errors(&[record]).await?;
            tracing::warn!(
                run_id = run.run_id,
                outcome = "deletion_refused",
                candidates = candidates.len(),
                reason,
                "deletion guard tripped"
            );
            run.deletion_refused = Some(reason);
            return Ok(());
        }
        let mut problems = Vec::new();
        for id in candidates {
            let requested_at = OffsetDateTime::now_utc();
            match self.catalog.product(id).await {
                Ok(product) => {
                    // Page shifting hid it from the scan: it lives.
                    run.counts.delete_candidates_alive += 1;
                    let report = writer
                        .upsert_all(std::slice::from_ref(&product), requested_at, 1, View::Single)
                        .await?;
                    self.publish(run, &report).await?;
                    add_report(run, &report);
                    self.clear_markers(&[id], markers).await?;
                }
                Err(e) if e.is_not_found() => {
                    let report = writer.soft_delete(id, OffsetDateTime::now_utc()).await?;
                    self.publish(run, &report).await?;
                    run.counts.deleted += report.count(Change::Deleted);
                    run.counts.dynamodb_writes += report.writes;
                    self.clear_markers(&[id], markers).await?;
                }
                Err(PixlpayError::InvalidProduct(invalid)) => {
                    run.note_invalid(invalid.to_string());
                    problems.push((id, OutOfSyncReason::Invalid, invalid.to_string()));
                }
                // A candidate that cannot be confirmed stays: the next run asks again.
                Err(e) => {
                    let reason = format!("confirming product {id}: {e}");
                    run.note_error(reason.clone());
                    problems.push((id, OutOfSyncReason::MissingFromPixlpay, reason));
                }
            }
        }
        self.mark_out_of_sync(&problems, markers, &context).await?;
        Ok(())
    }

    /// Clears the markers (found at the start of the run) of products this run has just stored or confirmed.
    async fn clear_markers(&self, ids: &[ProductId], markers: &Markers) -> Result<(), SyncError> {
        for id in ids {
            if let Some(marker) = markers.get(id) {
                self.state.clear_out_of_sync(*id, marker.seq).await?;
            }
        }
        Ok(())
    }

    /// Marks products the run could not bring in line. Each becomes a recent error only when it was not already out
    /// of sync for the same reason, so a product that stays invalid does not fill the error list run after run.
    async fn mark_out_of_sync(
        &self,
        problems: &[(ProductId, OutOfSyncReason, String)],
        markers: &Markers,
        context: &WriteContext,
    ) -> Result<(), SyncError> {
        let mut errors = Vec::new();
        for (id, reason, detail) in problems {
            self.state.note_out_of_sync(*id, *reason, detail).await?;
            if markers.get(id).is_none_or(|m| m.reason != *reason) {
                errors.push(ErrorRecord::new(
                    WriteSource::FullSync,
                    context,
                    Some(*id),
                    detail.clone(),
                ));
            }
        }
        self.state.record_errors(&errors).await?;
        Ok(())
    }

    fn guard_refuses(&self, candidates: usize, active: usize) -> Option<String> {
        let allowed = ((active as f64) * self.config.delete_guard_share).floor() as usize;
        let allowed = allowed.max(self.config.delete_guard_min);
        (candidates > allowed).then(|| {
            format!(
                "{candidates} of {active} stored products are missing from Pixlpay's catalog, more than the {:.0}% guard \
                 allows ({allowed}); nothing was deleted",
                self.config.delete_guard_share * 100.0
            )
        })
    }

    /// Appends the report's audit entries, then publishes its events.
    async fn publish(&self, run: &mut RunRecord, report: &WriteReport) -> Result<(), SyncError> {
        self.state.append(&report.audit).await?;
        if !report.events.is_empty() {
            self.events.publish(&report.events).await?;
            run.counts.events_published += report.events.len() as u64;
        }
        Ok(())
    }

    /// Walks the catalog and decides every product without writing, publishing or taking the lock.
    pub async fn dry_run(&self) -> Result<DryRunReport, SyncError> {
        const SAMPLE: usize = 50;
        let stats_before = self.catalog.stats();
        let mut report = DryRunReport::default();
        let mut seen = HashSet::new();
        let mut walker = PageWalker::new(
            self.catalog.clone(),
            self.config.per_page,
            self.config.page_concurrency,
            1,
        );
        while let Some(page) = walker.next().await {
            let page = page?;
            let ids: Vec<ProductId> = page.products.iter().map(|p| p.id).collect();
            let stored = self.store.get_many(&ids).await?;
            for product in &page.products {
                match plan_upsert(product, stored.get(&product.id), page.requested_at, View::List).decision {
                    Decision::Write(change) => {
                        match change {
                            Change::Created => report.would_create += 1,
                            Change::Updated => report.would_update += 1,
                            Change::Restored => report.would_restore += 1,
                            Change::Deleted => {}
                        }
                        if report.sample.len() < SAMPLE {
                            report.sample.insert(product.id, change);
                        }
                    }
                    Decision::Unchanged => report.unchanged += 1,
                    Decision::Stale => report.stale += 1,
                }
            }
            seen.extend(ids);
            seen.extend(page.invalid.iter().filter_map(|i| i.id));
            report.seen += (page.products.len() + page.invalid.len()) as u64;
            report.invalid += page.invalid.len() as u64;
        }
        let active = self.store.active_ids().await?;
        report.delete_candidates = active.difference(&seen).copied().collect();
        report.delete_candidates.sort_unstable();
        report.deletion_would_be_refused = self
            .guard_refuses(report.delete_candidates.len(), active.len())
            .is_some();
        report.api_requests = self.catalog.stats().since(&stats_before).requests;
        Ok(report)
    }
}

fn add_report(run: &mut RunRecord, report: &WriteReport) {
    run.counts.created += report.count(Change::Created);
    run.counts.updated += report.count(Change::Updated);
    run.counts.restored += report.count(Change::Restored);
    run.counts.unchanged += report.unchanged;
    run.counts.stale += report.stale;
    run.counts.dynamodb_writes += report.writes;
}
