//! The worker's logic on in-memory ports: coalescing, the GET-then-decide rule for every event kind, failures
//! reported per product, rate limiting deferred instead of failed. The SQS/DynamoDB path is tested end to end in
//! `tests/it/webhook.rs`.

use std::sync::Mutex;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::Instant;

use super::fakes::{FakeCatalog, MemoryEvents, MemoryState, MemoryStore, Refusal};
use super::{AuditAction, Change, ProductWorker, QueuedMessage, WorkerConfig, WriteSource};
use crate::ingest::{QueueError, WorkMessage, WorkQueue};
use crate::webhook::ProductEventKind;

#[derive(Default)]
struct MemoryQueue {
    sent: Mutex<Vec<(WorkMessage, Duration)>>,
}

impl WorkQueue for MemoryQueue {
    async fn enqueue(&self, message: &WorkMessage, delay: Duration) -> Result<(), QueueError> {
        self.sent.lock().unwrap().push((message.clone(), delay));
        Ok(())
    }
}

type Worker = ProductWorker<FakeCatalog, MemoryStore, MemoryEvents, MemoryQueue, MemoryState>;

fn worker(catalog: FakeCatalog) -> Worker {
    ProductWorker {
        catalog,
        store: MemoryStore::default(),
        events: MemoryEvents::default(),
        queue: MemoryQueue::default(),
        state: MemoryState::default(),
        config: WorkerConfig::default(),
    }
}

fn message(n: u32, id: u64, kind: ProductEventKind, created_at: Option<OffsetDateTime>) -> QueuedMessage {
    let work = WorkMessage {
        product_id: id,
        event: kind,
        delivery_id: Some(format!("wh_{n}")),
        created_at,
        deferrals: 0,
        seq: 0,
    };
    QueuedMessage {
        message_id: format!("m{n}"),
        body: serde_json::to_string(&work).unwrap(),
        receive_count: 1,
    }
}

fn later() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

fn requests(worker: &Worker) -> u64 {
    *worker.catalog.requests.lock().unwrap()
}

#[tokio::test]
async fn many_messages_for_one_product_cost_one_read_and_one_event() {
    let w = worker(FakeCatalog::with(3));
    let batch: Vec<_> = (0..8).map(|n| message(n, 2, ProductEventKind::Updated, None)).collect();
    let outcome = w.process(&batch, later()).await;
    assert!(outcome.failed.is_empty(), "{outcome:?}");
    assert_eq!((outcome.products, outcome.fetched, requests(&w)), (1, 1, 1));
    let events = w.events.published.lock().unwrap().clone();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].change, Change::Created);
    // Every coalesced delivery is named, so the event traces back to all of them.
    assert_eq!(
        events[0].delivery_id.as_deref(),
        Some("wh_0,wh_1,wh_2,wh_3,wh_4,wh_5,wh_6,wh_7")
    );
    let audit = w.state.audit.entries.lock().unwrap().clone();
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (audit[0].action, audit[0].source),
        (AuditAction::Created, WriteSource::Webhook)
    );
    assert_eq!(audit[0].delivery_id, events[0].delivery_id);
    assert_eq!(audit[0].new_hash.as_ref(), Some(&events[0].product.content_hash));
    assert!(audit[0].changed_fields.contains(&"price".to_owned()));
}

#[tokio::test]
async fn a_delete_is_confirmed_by_a_404_and_a_live_product_survives_its_delete_event() {
    let catalog = FakeCatalog::with(2);
    let w = worker(catalog.clone());
    w.process(
        &[
            message(1, 1, ProductEventKind::Created, None),
            message(2, 2, ProductEventKind::Created, None),
        ],
        later(),
    )
    .await;
    catalog.remove(1);
    // product 1 is gone: deleted. product 2 got a delete event but Pixlpay still serves it: it stays.
    let outcome = w
        .process(
            &[
                message(3, 1, ProductEventKind::Deleted, None),
                message(4, 2, ProductEventKind::Deleted, None),
            ],
            later(),
        )
        .await;
    assert!(outcome.failed.is_empty());
    let items = w.store.items.lock().unwrap().clone();
    assert!(items[&1].deleted);
    assert!(!items[&2].deleted);
    // An `updated` that meets a 404 deletes too (the product was deleted after the event).
    catalog.remove(2);
    w.process(&[message(5, 2, ProductEventKind::Updated, None)], later())
        .await;
    assert!(w.store.items.lock().unwrap()[&2].deleted);
    let actions: Vec<_> = w
        .state
        .audit
        .entries
        .lock()
        .unwrap()
        .iter()
        .map(|e| (e.product_id, e.action))
        .collect();
    assert_eq!(
        actions,
        [
            (1, AuditAction::Created),
            (2, AuditAction::Created),
            (1, AuditAction::Deleted),
            (2, AuditAction::Deleted)
        ]
    );
}

#[tokio::test]
async fn a_failing_product_fails_only_its_own_messages_and_malformed_ones_alone() {
    let catalog = FakeCatalog::with(3);
    catalog.refusals.lock().unwrap().insert(2, Refusal::ServerError);
    let w = worker(catalog);
    let mut batch = vec![
        message(1, 1, ProductEventKind::Updated, None),
        message(2, 2, ProductEventKind::Updated, None),
        message(3, 2, ProductEventKind::Updated, None),
        message(4, 3, ProductEventKind::Updated, None),
    ];
    batch.push(QueuedMessage {
        message_id: "bad".into(),
        body: "{\"product_id\": \"x\"}".into(),
        receive_count: 1,
    });
    let mut outcome = w.process(&batch, later()).await;
    outcome.failed.sort();
    assert_eq!(outcome.failed, ["bad", "m2", "m3"]);
    assert_eq!(outcome.malformed, 1);
    let items = w.store.items.lock().unwrap().clone();
    assert!(items.contains_key(&1) && items.contains_key(&3) && !items.contains_key(&2));
}

#[tokio::test]
async fn rate_limiting_puts_the_product_back_instead_of_failing_it() {
    let catalog = FakeCatalog::with(2);
    catalog.refusals.lock().unwrap().insert(1, Refusal::RateLimited);
    let w = worker(catalog);
    let outcome = w
        .process(
            &[
                message(1, 1, ProductEventKind::Updated, None),
                message(2, 1, ProductEventKind::Updated, None),
            ],
            later(),
        )
        .await;
    assert!(outcome.failed.is_empty(), "a deferral is not a failure");
    assert_eq!(outcome.deferred, 1);
    let sent = w.queue.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "two messages for one product go back as one");
    assert_eq!(sent[0].0.product_id, 1);
    assert_eq!(sent[0].0.deferrals, 1);
    assert_eq!(sent[0].1, WorkerConfig::default().rate_limit_delay);
}

#[tokio::test]
async fn work_past_the_deadline_is_put_back_not_lost() {
    let w = worker(FakeCatalog::with(2));
    let outcome = w
        .process(
            &[message(1, 1, ProductEventKind::Updated, None)],
            Instant::now() - Duration::from_millis(1),
        )
        .await;
    assert!(outcome.failed.is_empty());
    assert_eq!((outcome.deferred, requests(&w)), (1, 0));
    assert_eq!(w.queue.sent.lock().unwrap()[0].1, Duration::ZERO);
}

#[tokio::test]
async fn an_event_older_than_the_stored_single_read_needs_no_read() {
    let w = worker(FakeCatalog::with(1));
    w.process(&[message(1, 1, ProductEventKind::Created, None)], later())
        .await;
    assert_eq!(requests(&w), 1);
    let long_ago = OffsetDateTime::now_utc() - Duration::from_secs(600);
    let outcome = w
        .process(&[message(2, 1, ProductEventKind::Updated, Some(long_ago))], later())
        .await;
    assert_eq!(
        (outcome.skipped, requests(&w)),
        (1, 1),
        "a late retry is absorbed without a GET"
    );
    // An event from just now (inside the skew margin) is read again, as is one without a time.
    let now = OffsetDateTime::now_utc();
    let outcome = w
        .process(&[message(3, 1, ProductEventKind::Updated, Some(now))], later())
        .await;
    assert_eq!((outcome.skipped, requests(&w)), (0, 2));
    w.process(&[message(4, 1, ProductEventKind::Updated, None)], later())
        .await;
    assert_eq!(requests(&w), 3);
}

#[tokio::test]
async fn the_same_message_twice_writes_once() {
    let w = worker(FakeCatalog::with(1));
    let m = message(1, 1, ProductEventKind::Updated, None);
    w.process(std::slice::from_ref(&m), later()).await;
    let second = w.process(&[m], later()).await;
    assert_eq!((second.written, second.unchanged), (0, 1));
    assert_eq!(w.events.published.lock().unwrap().len(), 1);
}

fn with_seq(mut queued: QueuedMessage, seq: u64) -> QueuedMessage {
    let mut work: WorkMessage = serde_json::from_str(&queued.body).unwrap();
    work.seq = seq;
    queued.body = serde_json::to_string(&work).unwrap();
    queued
}

#[tokio::test]
async fn finished_work_clears_the_out_of_sync_mark_unless_newer_work_is_queued() {
    use super::{HealthLog, OutOfSyncReason};
    let w = worker(FakeCatalog::with(2));
    let first = w.state.note_pending(1, "product.updated").await.unwrap();
    let second = w.state.note_pending(1, "product.updated").await.unwrap();
    assert_eq!((first, second), (1, 2));
    // The older message alone: a newer webhook is still queued, so product 1 stays out of sync.
    let outcome = w
        .process(
            &[with_seq(message(1, 1, ProductEventKind::Updated, None), first)],
            later(),
        )
        .await;
    assert!(outcome.failed.is_empty(), "{outcome:?}");
    assert_eq!(
        w.state.markers.lock().unwrap()[&1].reason,
        OutOfSyncReason::WebhookPending
    );
    w.process(
        &[with_seq(message(2, 1, ProductEventKind::Updated, None), second)],
        later(),
    )
    .await;
    assert!(w.state.markers.lock().unwrap().is_empty(), "the newest work is done");
    assert!(w.state.errors.lock().unwrap().is_empty());
}

#[tokio::test]
async fn failed_work_marks_the_product_and_lists_the_error_until_a_retry_succeeds() {
    use super::{HealthLog, OutOfSyncReason};
    let catalog = FakeCatalog::with(2);
    catalog.refusals.lock().unwrap().insert(2, Refusal::ServerError);
    let w = worker(catalog.clone());
    let seq = w.state.note_pending(2, "product.updated").await.unwrap();
    let queued = with_seq(message(1, 2, ProductEventKind::Updated, None), seq);
    let outcome = w.process(std::slice::from_ref(&queued), later()).await;
    assert_eq!(outcome.failed, ["m1"]);
    let marker = w.state.markers.lock().unwrap()[&2].clone();
    assert_eq!(
        (marker.reason, marker.seq),
        (OutOfSyncReason::WebhookFailed, seq),
        "a failure keeps the sequence"
    );
    assert!(marker.detail.contains("500"), "{}", marker.detail);
    let errors = w.state.errors.lock().unwrap().clone();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        (errors[0].product_id, errors[0].source, errors[0].delivery_id.as_deref()),
        (Some(2), WriteSource::Webhook, Some("wh_1"))
    );
    // SQS redelivers the same message; Pixlpay answers now.
    catalog.refusals.lock().unwrap().clear();
    let outcome = w.process(&[queued], later()).await;
    assert!(outcome.failed.is_empty(), "{outcome:?}");
    assert!(w.state.markers.lock().unwrap().is_empty());
}
