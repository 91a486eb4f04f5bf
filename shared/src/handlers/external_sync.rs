//! The external-sync function (EventBridge rule on `ExternalProductChanged`): validate, read Pixlpay's live product,
//! decide each field under the policy, then write the winning fields to Pixlpay (writes enabled) or keep them as a
//! pending push (writes disabled), and tell the external side which of Pixlpay's values stand.
//!
//! | outcome | when |
//! |---|---|
//! | `rejected` | the event is malformed, or names a product Pixlpay does not have: sent to the rejects queue with the reason |
//! | `ignored` | published by this bundle itself (origin `pixlpay-sync`): never an external change |
//! | `in_line` | every field already equals Pixlpay's |
//! | `pushed` | the winning fields were written to Pixlpay and the result stored (one write, one change event) |
//! | `pending_push` | the winning fields wait for Pixlpay writes to be enabled; Pixlpay is untouched |
//! | `pixlpay_stands` | Pixlpay's values won every differing field (`ProductConflictResolved` published) |
//!
//! A failure to read or write (Pixlpay, DynamoDB, EventBridge) is returned as an error: Lambda retries the event,
//! then its dead-letter queue keeps it.

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::aws::SqsRejects;
use crate::pixlpay::PixlpayError;
use crate::sync::{
    AuditAction, AuditEntry, AuditLog, Catalog, CatalogWrites, ConflictPolicy, ConflictResolved, EventPublisher,
    ExternalChange, HealthLog, Inbound, OutOfSyncReason, PendingPush, ProductStore, ProductWriter, PushLog, SyncError,
    View, WriteContext, WriteSource, parse_external_event, resolve,
};

#[derive(Debug, Clone, Copy)]
pub struct ExternalSyncConfig {
    pub policy: ConflictPolicy,
    /// Whether winning fields are written to Pixlpay (its write endpoints are announced, not live).
    pub writes_enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ExternalOutcome {
    Rejected {
        reason: String,
    },
    Ignored,
    InLine {
        product_id: u64,
    },
    Pushed {
        product_id: u64,
        fields: Vec<String>,
        standing: Vec<String>,
    },
    PendingPush {
        product_id: u64,
        fields: Vec<String>,
        standing: Vec<String>,
    },
    PixlpayStands {
        product_id: u64,
        standing: Vec<String>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ExternalSyncError {
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error("sending the rejected event to its queue failed: {0}")]
    Reject(String),
}

impl From<PixlpayError> for ExternalSyncError {
    fn from(e: PixlpayError) -> Self {
        Self::Sync(SyncError::Pixlpay(e))
    }
}

impl From<crate::sync::StoreError> for ExternalSyncError {
    fn from(e: crate::sync::StoreError) -> Self {
        Self::Sync(SyncError::Store(e))
    }
}

impl From<crate::sync::PublishError> for ExternalSyncError {
    fn from(e: crate::sync::PublishError) -> Self {
        Self::Sync(SyncError::Publish(e))
    }
}

pub struct ExternalSync<C, S, T, E> {
    pub catalog: C,
    pub store: S,
    pub state: T,
    pub events: E,
    pub rejects: SqsRejects,
    pub config: ExternalSyncConfig,
}

impl<C, S, T, E> ExternalSync<C, S, T, E>
where
    C: Catalog + CatalogWrites,
    S: ProductStore,
    T: AuditLog + HealthLog + PushLog,
    E: EventPublisher,
{
    pub async fn handle(&self, event: &Value) -> Result<ExternalOutcome, ExternalSyncError> {
        let outcome = match parse_external_event(event) {
            Ok(Inbound::OwnEcho) => Ok(ExternalOutcome::Ignored),
            Ok(Inbound::Change(change)) => self.apply(event, &change).await,
            Err(invalid) => self.reject(event, &invalid.0).await,
        };
        match &outcome {
            Ok(o) => tracing::info!(outcome = ?o, "external change handled"),
            Err(e) => tracing::error!(error = %e, "external change failed; retried by Lambda"),
        }
        outcome
    }

    async fn reject(&self, event: &Value, reason: &str) -> Result<ExternalOutcome, ExternalSyncError> {
        self.rejects
            .reject(event, reason)
            .await
            .map_err(|e| ExternalSyncError::Reject(e.0))?;
        Ok(ExternalOutcome::Rejected {
            reason: reason.to_owned(),
        })
    }

    async fn apply(&self, event: &Value, change: &ExternalChange) -> Result<ExternalOutcome, ExternalSyncError> {
        let id = change.product_id;
        let live = match self.catalog.product(id).await {
            Ok(live) => live,
            Err(PixlpayError::NotFound { .. }) => {
                return self
                    .reject(event, &format!("product {id} does not exist in Pixlpay"))
                    .await;
            }
            Err(e) => return Err(e.into()),
        };
        let resolution = resolve(change, &live, self.config.policy);
        let context = WriteContext {
            run_id: None,
            delivery_id: Some(
                change
                    .change_id
                    .clone()
                    .unwrap_or_else(|| format!("external:{}", change.origin)),
            ),
        };
        let standing: Vec<String> = resolution.standing().map(|c| c.field.clone()).collect();
        let fields: Vec<String> = resolution
            .conflicts
            .iter()
            .filter(|c| c.winner == crate::sync::Side::External)
            .map(|c| c.field.clone())
            .collect();
        if resolution.conflicts.is_empty() {
            return Ok(ExternalOutcome::InLine { product_id: id });
        }
        if !standing.is_empty() {
            let audit = AuditEntry::new(AuditAction::Conflict, id, WriteSource::External, &context, None, None)
                .with_reason(format!(
                    "{:?}: Pixlpay's {} stand against {}'s change",
                    self.config.policy,
                    standing.join(", "),
                    change.origin
                ));
            self.state.append(&[audit]).await?;
            self.events
                .publish_conflict(&ConflictResolved::new(change, &live, self.config.policy, &resolution))
                .await?;
        }
        if !resolution.pushes() {
            return Ok(ExternalOutcome::PixlpayStands {
                product_id: id,
                standing,
            });
        }
        if !self.config.writes_enabled {
            let push = PendingPush {
                product_id: id,
                changes: resolution.push.clone(),
                origin: change.origin.clone(),
                change_id: change.change_id.clone(),
                external_updated_at: change.updated_at,
            };
            self.state.record_pending_push(&push).await?;
            self.state
                .note_out_of_sync(
                    id,
                    OutOfSyncReason::PushPending,
                    &format!("pending push of {}", fields.join(", ")),
                )
                .await?;
            let audit = AuditEntry::new(
                AuditAction::PushPending,
                id,
                WriteSource::External,
                &context,
                None,
                None,
            )
            .with_reason(format!(
                "{} from {} wait for Pixlpay writes to be enabled",
                fields.join(", "),
                change.origin
            ));
            self.state.append(&[audit]).await?;
            return Ok(ExternalOutcome::PendingPush {
                product_id: id,
                fields,
                standing,
            });
        }
        let requested_at = OffsetDateTime::now_utc();
        let written = self.catalog.update(id, &resolution.push).await?;
        // Stored from Pixlpay's answer at once, so the webhook this write triggers finds the table already equal and
        // publishes nothing: one external change, one Pixlpay write, one change event.
        let writer = ProductWriter::new(&self.store, WriteSource::External, context);
        let report = writer
            .upsert_all(std::slice::from_ref(&written), requested_at, 1, View::Single)
            .await?;
        self.state.append(&report.audit).await?;
        if !report.events.is_empty() {
            self.events.publish(&report.events).await?;
        }
        self.state.clear_pending_push(id).await?;
        Ok(ExternalOutcome::Pushed {
            product_id: id,
            fields,
            standing,
        })
    }
}
