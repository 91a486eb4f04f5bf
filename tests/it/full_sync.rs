//! The full sync end to end: the Pixlpay simulator over HTTP, DynamoDB and EventBridge in MiniStack, change events
//! read back from an SQS queue behind a rule on the bus.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, SystemTime};

use common::{client, simulator};
use pixlpay_sim::local_aws::LocalAws;
use pixlpay_sim::{Faults, Simulator};
use pixlpay_sync::aws::{DynamoProductStore, DynamoSyncState, EventBridgePublisher};
use pixlpay_sync::handlers::full_sync::{FullSyncHandlerError, handle};
use pixlpay_sync::pixlpay::{ClientStatsSnapshot, PixlpayClient, PixlpayError, ProductPage};
use pixlpay_sync::product::{Product, ProductId};
use pixlpay_sync::sync::{
    AuditAction, AuditLog, Catalog, FullSync, FullSyncConfig, ProductWriter, RunOptions, RunOutcome, RunRecord,
    RunStatus, SyncState, View, WriteContext, WriteSource,
};
use serde_json::{Value, json};
use time::OffsetDateTime;

const FAST: u32 = 100_000;

type Sync<C = PixlpayClient> = FullSync<C, DynamoProductStore, DynamoSyncState, EventBridgePublisher>;

fn full_sync<C: Catalog>(catalog: C, aws: &LocalAws, per_page: u32) -> Sync<C> {
    FullSync {
        catalog,
        store: aws.product_store(),
        state: aws.sync_state(),
        events: aws.publisher(),
        config: FullSyncConfig {
            per_page,
            ..FullSyncConfig::default()
        },
    }
}

fn options(owner: &str, max_pages: Option<u32>) -> RunOptions {
    RunOptions {
        trigger: "test".into(),
        lock_owner: owner.into(),
        lock_expires_at_unix: OffsetDateTime::now_utc().unix_timestamp() + 120,
        deadline: tokio::time::Instant::now() + Duration::from_secs(120),
        max_pages,
    }
}

async fn completed<C: Catalog>(sync: &Sync<C>, owner: &str) -> RunRecord {
    match sync.run(&options(owner, None)).await.expect("run succeeds") {
        RunOutcome::Completed { run } => *run,
        other => panic!("expected a completed run, got {other:?}"),
    }
}

/// The fields a list read carries (the single view adds delivery servers), for comparing the table to the truth.
fn list_fields(mut product: Product) -> Product {
    product.delivery_servers.clear();
    product.sku = None;
    product.is_featured = None;
    product
}

async fn assert_table_equals_truth(sim: &Simulator, aws: &LocalAws) {
    let truth: BTreeMap<ProductId, Product> = sim
        .control()
        .products()
        .await
        .into_iter()
        .map(|p| Product::from_json(p).unwrap())
        .map(|p| (p.id, list_fields(p)))
        .collect();
    let items = aws.products().await;
    let live: BTreeMap<ProductId, Product> = items
        .values()
        .filter(|i| !i.deleted)
        .map(|i| (i.product_id, list_fields(i.to_product())))
        .collect();
    assert_eq!(live.len(), truth.len(), "live items vs products in Pixlpay");
    for (id, want) in &truth {
        assert_eq!(live.get(id), Some(want), "product {id} differs");
    }
    for item in items.values().filter(|i| i.deleted) {
        assert!(
            !truth.contains_key(&item.product_id),
            "product {} is live but soft-deleted",
            item.product_id
        );
    }
}

fn detail_types(events: &[Value]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for e in events {
        *counts.entry(e["detail-type"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    counts
}

#[tokio::test]
async fn a_first_sync_writes_and_announces_every_product_and_a_second_writes_nothing() {
    let sim = simulator(1000, FAST).await;
    let aws = LocalAws::new("fs-first").await;
    let sync = full_sync(client(&sim, FAST), &aws, 100);

    let first = completed(&sync, "a").await;
    assert_eq!(
        (
            first.counts.created,
            first.counts.dynamodb_writes,
            first.counts.events_published
        ),
        (1000, 1000, 1000)
    );
    assert_eq!((first.pages, first.counts.api_requests), (10, 10));
    let events = aws
        .drain_events(1000, Duration::from_secs(1), Duration::from_secs(30))
        .await;
    assert_eq!(events.len(), 1000);
    assert_eq!(
        detail_types(&events),
        BTreeMap::from([("ProductCreated".to_owned(), 1000)])
    );
    let ids: HashSet<u64> = events
        .iter()
        .map(|e| e["detail"]["product_id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), 1000);
    let sample = &events[0]["detail"];
    assert_eq!(sample["origin"], "pixlpay-sync");
    assert_eq!(sample["run_id"], first.run_id.as_str());
    assert!(
        sample["product"]["price"].is_string(),
        "price travels as an exact decimal string"
    );
    assert_table_equals_truth(&sim, &aws).await;

    let second = completed(&sync, "b").await;
    assert_eq!(
        (
            second.counts.unchanged,
            second.counts.dynamodb_writes,
            second.counts.events_published
        ),
        (1000, 0, 0)
    );
    assert!(
        aws.drain_events(0, Duration::from_secs(2), Duration::from_secs(5))
            .await
            .is_empty()
    );

    // The run is recorded, and the status record names it.
    let recorded = aws.sync_state().run(&second.run_id).await.unwrap().unwrap();
    assert_eq!(
        (recorded.status, recorded.counts.unchanged),
        (RunStatus::Completed, 1000)
    );
    assert_eq!(
        aws.sync_state().status().await.unwrap()["last_full_sync"]["run_id"],
        second.run_id.as_str()
    );
    assert_eq!(aws.sync_state().recent_runs(5).await.unwrap()[0].run_id, second.run_id);
}

#[tokio::test]
async fn exactly_the_changed_products_are_written_and_the_table_equals_pixlpay() {
    let sim = simulator(1000, FAST).await;
    let aws = LocalAws::new("fs-changes").await;
    let sync = full_sync(client(&sim, FAST), &aws, 100);
    completed(&sync, "a").await;
    aws.drain_events(1000, Duration::from_millis(500), Duration::from_secs(30))
        .await;

    let control = sim.control();
    for id in (10..=370).step_by(10).take(37) {
        control
            .update_product(id, json!({"price": format!("{}.25", id % 90)}), true)
            .await;
    }
    for id in [3, 333, 500, 777, 1000] {
        control.delete_product(id, true).await;
    }
    for n in 0..3 {
        control
            .create_product(json!({"name": format!("New {n}"), "price": "5.00"}), true)
            .await;
    }
    let run = completed(&sync, "b").await;
    let c = &run.counts;
    assert_eq!((c.updated, c.deleted, c.created, c.restored), (37, 5, 3, 0));
    assert_eq!(
        (c.dynamodb_writes, c.events_published, c.delete_candidates),
        (45, 45, 5)
    );
    let events = aws
        .drain_events(45, Duration::from_secs(1), Duration::from_secs(30))
        .await;
    assert_eq!(
        detail_types(&events),
        BTreeMap::from([
            ("ProductCreated".into(), 3),
            ("ProductDeleted".into(), 5),
            ("ProductUpdated".into(), 37)
        ])
    );
    let updated = events.iter().find(|e| e["detail-type"] == "ProductUpdated").unwrap();
    assert!(updated["detail"]["previous_content_hash"].is_string());
    assert_ne!(
        updated["detail"]["previous_content_hash"],
        updated["detail"]["product"]["content_hash"]
    );
    assert_table_equals_truth(&sim, &aws).await;
    let items = aws.products().await;
    assert!(items[&333].deleted && items[&333].deleted_at.is_some());

    // A deleted product that comes back is restored.
    control.create_product(json!({"name": "Back"}), true).await; // id 1004, unrelated
    let restored = {
        let mut state = sim.state.lock();
        let mut product = pixlpay_sim::catalog::SimProduct::seeded(333, 1);
        product.updated_at = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        state.catalog.products.insert(333, product);
        333
    };
    let run = completed(&sync, "c").await;
    assert_eq!((run.counts.restored, run.counts.created), (1, 1));
    assert!(!aws.products().await[&restored].deleted);
}

#[tokio::test]
async fn page_shifting_during_a_run_never_deletes_a_live_product() {
    let sim = simulator(1000, FAST).await;
    let aws = LocalAws::new("fs-shift").await;
    let sync = full_sync(client(&sim, FAST), &aws, 100);
    completed(&sync, "a").await;

    // A run reads pages 1-3, then product 50 (page 1) is deleted: every later product moves up one place, so
    // product 301 slides from page 4 onto page 3, which this run has already read.
    assert!(matches!(
        sync.run(&options("b", Some(3))).await.unwrap(),
        RunOutcome::Paused { .. }
    ));
    sim.control().delete_product(50, true).await;
    let run = completed(&sync, "c").await;
    // 50 was read before it went, so this run saw it; 301 was never read, so it is the one candidate, and the
    // confirming GET finds it alive.
    assert_eq!(
        (
            run.counts.delete_candidates,
            run.counts.delete_candidates_alive,
            run.counts.deleted
        ),
        (1, 1, 0),
        "{run:?}"
    );
    assert!(
        !aws.products().await[&301].deleted,
        "a live product hidden by page shifting was deleted"
    );
    // The next run misses 50 and deletes it; 301 stays.
    let next = completed(&sync, "d").await;
    assert_eq!((next.counts.delete_candidates, next.counts.deleted), (1, 1));
    let items = aws.products().await;
    assert!(items[&50].deleted && !items[&301].deleted);
    assert_table_equals_truth(&sim, &aws).await;
}

/// A catalog that serves pages read earlier: a full sync whose reads are older than what a webhook stored since.
#[derive(Clone)]
struct EarlierPages {
    pages: std::sync::Arc<Vec<ProductPage>>,
    live: PixlpayClient,
}

impl Catalog for EarlierPages {
    async fn page(&self, page: u32, _per_page: u32) -> Result<ProductPage, PixlpayError> {
        Ok(self.pages[(page - 1) as usize].clone())
    }
    async fn product(&self, id: ProductId) -> Result<Product, PixlpayError> {
        self.live.get_product(id).await
    }
    fn stats(&self) -> ClientStatsSnapshot {
        self.live.stats()
    }
}

#[tokio::test]
async fn a_newer_state_from_a_webhook_is_never_overwritten_by_an_older_full_sync_read() {
    let sim = simulator(250, FAST).await;
    let aws = LocalAws::new("fs-race").await;
    let live = client(&sim, FAST);
    completed(&full_sync(live.clone(), &aws, 100), "a").await;

    // The full sync reads the catalog...
    let mut earlier = Vec::new();
    for page in 1..=3 {
        earlier.push(live.list_products(page, 100).await.unwrap());
    }
    // ...meanwhile product 42 changes and its webhook stores the new state...
    sim.control().update_product(42, json!({"price": "42.42"}), true).await;
    let fetched_at = OffsetDateTime::now_utc();
    let newer = live.get_product(42).await.unwrap();
    let store = aws.product_store();
    let writer = ProductWriter::new(&store, WriteSource::Webhook, WriteContext::default());
    let report = writer.upsert_all(&[newer], fetched_at, 1, View::Single).await.unwrap();
    assert_eq!(report.writes, 1);
    // The worker appends the writer's audit entries; so does this stand-in.
    aws.sync_state().append(&report.audit).await.unwrap();
    // ...then the full sync writes what it read.
    let stale_sync = full_sync(
        EarlierPages {
            pages: std::sync::Arc::new(earlier),
            live: live.clone(),
        },
        &aws,
        100,
    );
    let run = completed(&stale_sync, "b").await;
    assert_eq!((run.counts.stale, run.counts.dynamodb_writes), (1, 0));
    let item = store.get(42).await.unwrap().unwrap();
    assert_eq!(
        (item.price.to_string().as_str(), item.source),
        ("42.42", WriteSource::Webhook)
    );
    // The audit trail says why: created by the first run, updated by the webhook, the older read refused.
    let audit = aws.sync_state().audit_entries(42, 50).await.unwrap();
    let steps: Vec<_> = audit.iter().map(|e| (e.action, e.source)).collect();
    assert_eq!(
        steps,
        [
            (AuditAction::Stale, WriteSource::FullSync),
            (AuditAction::Updated, WriteSource::Webhook),
            (AuditAction::Created, WriteSource::FullSync),
        ]
    );
    assert_eq!(audit[0].run_id.as_deref(), Some(run.run_id.as_str()));
    assert_eq!(audit[0].old_hash.as_ref(), Some(&item.content_hash));
    assert_eq!(
        audit[1].changed_fields,
        ["delivery_servers", "pixlpay_updated_at", "price"]
    );
}

#[tokio::test]
async fn a_run_stopped_after_page_k_resumes_at_k_plus_1_and_ends_like_an_uninterrupted_run() {
    async fn prepared(prefix: &str) -> (Simulator, LocalAws, Sync) {
        let sim = simulator(600, FAST).await;
        let aws = LocalAws::new(prefix).await;
        let sync = full_sync(client(&sim, FAST), &aws, 100);
        completed(&sync, "seed").await;
        for id in [5, 150, 420] {
            sim.control().update_product(id, json!({"price": "1.11"}), true).await;
        }
        sim.control().delete_product(77, true).await;
        sim.control().create_product(json!({"name": "Fresh"}), true).await;
        (sim, aws, sync)
    }
    let (sim_a, aws_a, sync_a) = prepared("fs-whole").await;
    let whole = completed(&sync_a, "whole").await;

    let (sim_b, aws_b, sync_b) = prepared("fs-resumed").await;
    // Invocation 1 stops after page 2 (its deadline, as far as it knows).
    let paused = match sync_b.run(&options("first", Some(2))).await.unwrap() {
        RunOutcome::Paused { run } => *run,
        other => panic!("{other:?}"),
    };
    assert_eq!((paused.next_page, paused.pages), (3, 2));
    // Invocation 2 crashes mid-page: the lock it took stays until it expires.
    sim_b
        .control()
        .set_faults(&Faults {
            latency_ms: 400,
            ..Faults::default()
        })
        .await;
    let crash_owner = options("crashing", None);
    let crashing = {
        let mut o = crash_owner.clone();
        o.lock_expires_at_unix = OffsetDateTime::now_utc().unix_timestamp() + 2;
        o
    };
    // Dropping the run's future mid-page is what a killed Lambda looks like from outside: no cleanup runs.
    let killed = tokio::time::timeout(Duration::from_millis(600), sync_b.run(&crashing)).await;
    assert!(killed.is_err(), "the run finished before it could be killed");
    sim_b.control().set_faults(&Faults::default()).await;
    assert_eq!(
        sync_b.run(&options("too-early", None)).await.unwrap(),
        RunOutcome::Busy,
        "the lock still holds"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let resumed = completed(&sync_b, "after-expiry").await;
    assert_eq!(resumed.run_id, paused.run_id);
    assert!(resumed.invocations >= 3, "{}", resumed.invocations);
    let c = (&whole.counts, &resumed.counts);
    assert_eq!(
        (c.0.updated, c.0.deleted, c.0.created),
        (c.1.updated, c.1.deleted, c.1.created)
    );

    // Both tables equal their own simulator's catalog (the two simulators stamped their changes at different
    // instants, so the items' timestamps differ, not their shape).
    assert_table_equals_truth(&sim_a, &aws_a).await;
    assert_table_equals_truth(&sim_b, &aws_b).await;
    let deleted = |items: std::collections::HashMap<u64, pixlpay_sync::sync::ProductItem>| -> Vec<u64> {
        let mut ids: Vec<u64> = items.values().filter(|i| i.deleted).map(|i| i.product_id).collect();
        ids.sort();
        ids
    };
    assert_eq!(deleted(aws_a.products().await), deleted(aws_b.products().await));
}

#[tokio::test]
async fn the_deletion_guard_refuses_to_empty_the_table_when_pixlpay_serves_an_empty_catalog() {
    let sim = simulator(300, FAST).await;
    let aws = LocalAws::new("fs-guard").await;
    let sync = full_sync(client(&sim, FAST), &aws, 100);
    completed(&sync, "a").await;
    aws.drain_events(300, Duration::from_millis(500), Duration::from_secs(30))
        .await;
    sim.control().seed(0, 1).await;
    let run = completed(&sync, "b").await;
    assert_eq!(
        (
            run.counts.deleted,
            run.counts.delete_candidates,
            run.counts.dynamodb_writes
        ),
        (0, 300, 0)
    );
    let reason = run.deletion_refused.expect("the guard tripped");
    assert!(reason.contains("300 of 300") && reason.contains("10%"), "{reason}");
    assert_eq!(aws.products().await.values().filter(|i| !i.deleted).count(), 300);
    assert!(
        aws.drain_events(0, Duration::from_secs(1), Duration::from_secs(3))
            .await
            .is_empty()
    );
    let recorded = aws.sync_state().run(&run.run_id).await.unwrap().unwrap();
    assert_eq!(recorded.deletion_refused.as_deref(), Some(reason.as_str()));
}

#[tokio::test]
async fn rate_limits_and_server_errors_slow_the_run_and_an_invalid_product_is_recorded_and_skipped() {
    let sim = simulator(500, FAST).await;
    let aws = LocalAws::new("fs-faults").await;
    sim.control().update_product(123, json!({"price": "free"}), true).await;
    sim.control()
        .set_faults(&Faults {
            error_rate: 0.25,
            rate_limit_next: 3,
            retry_after_secs: 1,
            ..Faults::default()
        })
        .await;
    let sync = full_sync(client(&sim, FAST), &aws, 50);
    let run = completed(&sync, "a").await;
    assert_eq!((run.counts.created, run.counts.invalid, run.counts.seen), (499, 1, 500));
    assert!(
        run.counts.rate_limited >= 3 && run.counts.retries >= 1,
        "{:?}",
        run.counts
    );
    assert!(
        run.invalid_reasons[0].contains("123") && run.invalid_reasons[0].contains("price"),
        "{:?}",
        run.invalid_reasons
    );
    let items = aws.products().await;
    assert!(!items.contains_key(&123), "an invalid product was written");
    assert_eq!(items.len(), 499);
    // Once it is fixed, the next run picks it up; it was never swept as deleted meanwhile.
    sim.control().set_faults(&Faults::default()).await;
    sim.control().update_product(123, json!({"price": "1.23"}), true).await;
    let run = completed(&sync, "b").await;
    assert_eq!((run.counts.created, run.counts.deleted, run.counts.invalid), (1, 0, 0));
    let audit = aws.sync_state().audit_entries(123, 50).await.unwrap();
    let steps: Vec<_> = audit.iter().map(|e| e.action).collect();
    assert_eq!(steps, [AuditAction::Created, AuditAction::Invalid]);
    assert!(
        audit[1].reason.as_deref().is_some_and(|r| r.contains("price")),
        "{:?}",
        audit[1]
    );
}

#[tokio::test]
async fn a_dry_run_reports_the_changes_and_writes_nothing() {
    let sim = simulator(120, FAST).await;
    let aws = LocalAws::new("fs-dry").await;
    let sync = full_sync(client(&sim, FAST), &aws, 100);
    completed(&sync, "a").await;
    aws.drain_events(120, Duration::from_millis(500), Duration::from_secs(30))
        .await;
    sim.control().update_product(7, json!({"name": "Renamed"}), true).await;
    sim.control().delete_product(8, true).await;
    let deadline = SystemTime::now() + Duration::from_secs(60);
    let answer = handle(&sync, &json!({"dry_run": true}), "dry", deadline).await.unwrap();
    assert_eq!(answer["status"], "dry_run");
    let report = &answer["report"];
    assert_eq!(
        (report["would_update"].as_u64(), report["unchanged"].as_u64()),
        (Some(1), Some(118))
    );
    assert_eq!(report["delete_candidates"], json!([8]));
    assert_eq!(report["sample"]["7"], "updated");
    assert_eq!(aws.products().await[&7].name, "Product 7", "a dry run wrote");
    assert!(
        aws.drain_events(0, Duration::from_secs(1), Duration::from_secs(3))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_bad_invocation_payload_is_refused_and_changes_nothing() {
    let sim = simulator(20, FAST).await;
    let aws = LocalAws::new("fs-bad").await;
    let sync = full_sync(client(&sim, FAST), &aws, 100);
    let deadline = SystemTime::now() + Duration::from_secs(60);
    for bad in [
        json!({"dry_run": "yes"}),
        json!({"unknown": 1}),
        json!([]),
        json!({"max_pages": 0}),
    ] {
        let err = handle(&sync, &bad, "bad", deadline).await.unwrap_err();
        assert!(matches!(err, FullSyncHandlerError::InvalidRequest(_)), "{bad}: {err}");
    }
    assert!(aws.products().await.is_empty());
    assert_eq!(
        sim.control().stats().await["total"],
        0,
        "a refused invocation called Pixlpay"
    );
    assert!(aws.sync_state().unfinished_run().await.unwrap().is_none());
    // A scheduler event with the template's Input runs the sync.
    let answer = handle(&sync, &json!({"trigger": "schedule"}), "ok", deadline)
        .await
        .unwrap();
    assert_eq!(answer["status"], "completed");
    assert_eq!(answer["run"]["trigger"], "schedule");
    assert_eq!(aws.products().await.len(), 20);
}

/// Every `events/full-sync-*.json` fixture drives the handler: the scheduler's Input and a classic scheduled rule
/// event run the sync, the dry-run fixture reports without writing.
#[tokio::test]
async fn every_full_sync_fixture_in_events_drives_the_handler() {
    let sim = simulator(30, FAST).await;
    let aws = LocalAws::new("fs-fixtures").await;
    let sync = full_sync(client(&sim, FAST), &aws, 100);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let mut fixtures: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("full-sync-"))
        .collect();
    fixtures.sort();
    assert_eq!(fixtures.len(), 3, "{fixtures:?}");
    for path in fixtures {
        let payload: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let deadline = SystemTime::now() + Duration::from_secs(60);
        let answer = handle(&sync, &payload, "fixture", deadline).await.unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let expected = if name.contains("dry-run") {
            "dry_run"
        } else {
            "completed"
        };
        assert_eq!(answer["status"], expected, "{name}: {answer}");
        if expected == "completed" {
            assert_eq!(answer["run"]["trigger"], "schedule", "{name}");
        }
    }
    assert_eq!(aws.products().await.len(), 30);
}

/// No fixture in `events/` goes untested: each is named by a test in `tests/it/` (the `full-sync-*` ones are all
/// driven by the test above, through its prefix).
#[test]
fn every_fixture_in_events_is_driven_by_a_test() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources: String = std::fs::read_dir(root.join("it"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let untested: Vec<String> = std::fs::read_dir(root.join("../events"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with("full-sync-") && !sources.contains(&format!("\"{name}\"")))
        .collect();
    assert!(untested.is_empty(), "fixtures no test drives: {untested:?}");
}
