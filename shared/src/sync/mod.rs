//! The sync itself: pure decisions, the shared write path, the full-sync engine, and the ports they need.

mod audit;
mod decide;
mod events;
mod external;
mod full_sync;
mod health;
mod item;
mod ports;
mod run;
mod worker;
mod writer;

#[cfg(test)]
pub(crate) mod fakes;
#[cfg(test)]
mod health_tests;
#[cfg(test)]
mod worker_tests;

pub use audit::{AuditAction, AuditEntry, FieldDifference, changed_fields, field_differences};
pub use decide::{Change, Decision, Observed, decide_delete, decide_upsert};
pub use events::{ChangeEvent, ORIGIN, WriteContext};
pub use external::{
    CONFLICT_RESOLVED, ConflictPolicy, ConflictResolved, EXTERNAL_CHANGE, ExternalChange, FieldConflict, Inbound,
    InvalidExternalChange, PendingPush, PushLog, Resolution, Side, WRITABLE_FIELDS, parse_external_event, resolve,
};
pub use full_sync::{DryRunReport, FullSync, FullSyncConfig, RunOptions, RunOutcome, SyncError};
pub use health::{CountDelta, ErrorRecord, HealthLog, OutOfSync, OutOfSyncReason};
pub use item::{ProductItem, WriteSource, micros};
pub use ports::{AuditLog, Catalog, CatalogWrites, EventPublisher, ProductStore, PublishError, StoreError, SyncState};
pub use run::{MAX_REASONS, RunCounts, RunRecord, RunStatus, new_run_id};
pub use worker::{BatchOutcome, ProductWorker, QueuedMessage, WorkerConfig};
pub use writer::{ProductWriter, UpsertPlan, View, WriteOutcome, WriteReport, plan_upsert, single_view_fields};
