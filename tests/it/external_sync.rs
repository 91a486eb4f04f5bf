//! Bidirectional sync on real parts: external changes handled by the external-sync entry point against the
//! simulator (its `PUT /products/{id}` served when writes are enabled) and MiniStack, with the webhook pipeline
//! running so the write's own webhook comes back through the worker.

mod common;

use std::time::Duration;

use common::client_config;
use common::flow::{FAST, Pipeline, fixture, full_sync, pipeline};
use pixlpay_sim::Settings;
use pixlpay_sync::aws::{DynamoProductStore, DynamoSyncState, EventBridgePublisher, SqsRejects};
use pixlpay_sync::handlers::external_sync::{ExternalOutcome, ExternalSync, ExternalSyncConfig};
use pixlpay_sync::pixlpay::PixlpayClient;
use pixlpay_sync::sync::{ConflictPolicy, EXTERNAL_CHANGE, ORIGIN};
use rust_decimal::Decimal;
use serde_json::{Value, json};

type Sync = ExternalSync<PixlpayClient, DynamoProductStore, DynamoSyncState, EventBridgePublisher>;

const PUT: &str = "PUT /products/{id}";

async fn enable_writes(p: &Pipeline) {
    p.sim
        .control()
        .set_settings(&Settings {
            writes_enabled: true,
            ..Settings::default()
        })
        .await;
}

fn external_sync(p: &Pipeline, rejects_url: &str, policy: ConflictPolicy, writes_enabled: bool) -> Sync {
    let mut config = client_config(&p.sim, FAST);
    config.writes_enabled = writes_enabled;
    ExternalSync {
        catalog: PixlpayClient::new(config).unwrap(),
        store: p.aws.product_store(),
        state: p.aws.sync_state(),
        events: p.aws.publisher(),
        rejects: SqsRejects::new(p.aws.sqs.clone(), rejects_url),
        config: ExternalSyncConfig { policy, writes_enabled },
    }
}

fn change(id: u64, updated_at: &str, changes: Value) -> Value {
    json!({"detail-type": EXTERNAL_CHANGE, "source": "erp", "detail": {
        "product_id": id, "origin": "erp", "updated_at": updated_at, "changes": changes, "change_id": format!("erp-{id}")
    }})
}

async fn rejects_queue(p: &Pipeline) -> String {
    p.aws.work_queue(30, 3).await.1
}

async fn live_updated_at(p: &Pipeline, id: u64) -> String {
    let mut config = client_config(&p.sim, FAST);
    config.writes_enabled = false;
    let product = PixlpayClient::new(config).unwrap().get_product(id).await.unwrap();
    pixlpay_sync::timestamp::format(product.updated_at)
}

fn variant(outcome: &ExternalOutcome) -> &'static str {
    match outcome {
        ExternalOutcome::Rejected { .. } => "rejected",
        ExternalOutcome::Ignored => "ignored",
        ExternalOutcome::InLine { .. } => "in_line",
        ExternalOutcome::Pushed { .. } => "pushed",
        ExternalOutcome::PendingPush { .. } => "pending_push",
        ExternalOutcome::PixlpayStands { .. } => "pixlpay_stands",
    }
}

#[tokio::test]
async fn each_policy_decides_newer_older_and_equal_timestamps_against_pixlpay() {
    let p = pipeline("ext-policy", 9).await;
    full_sync(&p, "seed").await;
    p.aws
        .drain_events(9, Duration::from_millis(300), Duration::from_secs(10))
        .await;
    enable_writes(&p).await;
    let rejects = rejects_queue(&p).await;
    let cases = [
        (ConflictPolicy::LastWriterWins, "newer", "pushed"),
        (ConflictPolicy::LastWriterWins, "older", "pixlpay_stands"),
        (ConflictPolicy::LastWriterWins, "equal", "pixlpay_stands"),
        (ConflictPolicy::PixlpayWins, "newer", "pixlpay_stands"),
        (ConflictPolicy::PixlpayWins, "older", "pixlpay_stands"),
        (ConflictPolicy::PixlpayWins, "equal", "pixlpay_stands"),
        (ConflictPolicy::ExternalWins, "newer", "pushed"),
        (ConflictPolicy::ExternalWins, "older", "pushed"),
        (ConflictPolicy::ExternalWins, "equal", "pushed"),
    ];
    for (n, (policy, when, expected)) in cases.into_iter().enumerate() {
        let id = n as u64 + 1;
        let live_at = live_updated_at(&p, id).await;
        let at = match when {
            "newer" => "2030-01-01T00:00:00Z".to_owned(),
            "older" => "2020-01-01T00:00:00Z".to_owned(),
            _ => live_at,
        };
        let puts_before = p.sim.control().count(PUT, 200).await;
        let sync = external_sync(&p, &rejects, policy, true);
        let outcome = sync.handle(&change(id, &at, json!({"price": "123.45"}))).await.unwrap();
        assert_eq!(variant(&outcome), expected, "{policy:?} {when}: {outcome:?}");
        let puts = p.sim.control().count(PUT, 200).await - puts_before;
        let price = p.aws.product_store().get(id).await.unwrap().map(|i| i.price);
        if expected == "pushed" {
            assert_eq!(puts, 1, "{policy:?} {when}");
            assert_eq!(
                price,
                Some("123.45".parse().unwrap()),
                "{policy:?} {when}: stored from Pixlpay's answer"
            );
        } else {
            assert_eq!(puts, 0, "{policy:?} {when}");
        }
    }
    // Every Pixlpay-stands case told the external side which value stands.
    let events = p
        .aws
        .drain_events(14, Duration::from_millis(500), Duration::from_secs(10))
        .await;
    let conflicts: Vec<&Value> = events
        .iter()
        .filter(|e| e["detail-type"] == "ProductConflictResolved")
        .collect();
    assert_eq!(conflicts.len(), 5, "{events:#?}");
    assert_eq!(conflicts[0]["detail"]["standing"][0]["field"], json!("price"));
    assert_eq!(conflicts[0]["detail"]["standing"][0]["external"], json!("123.45"));
    assert_eq!(conflicts[0]["detail"]["external_origin"], json!("erp"));
    let updates = events.iter().filter(|e| e["detail-type"] == "ProductUpdated").count();
    assert_eq!(updates, 4, "one change event per push");
}

#[tokio::test]
async fn with_writes_disabled_a_winning_change_is_kept_as_a_pending_push_and_pixlpay_is_untouched() {
    let p = pipeline("ext-pending", 3).await;
    let rejects = rejects_queue(&p).await;
    let sync = external_sync(&p, &rejects, ConflictPolicy::ExternalWins, false);
    let outcome = sync
        .handle(&change(2, "2030-01-01T00:00:00Z", json!({"price": "9.95"})))
        .await
        .unwrap();
    assert_eq!(variant(&outcome), "pending_push", "{outcome:?}");
    // A second change for the same product merges into the same pending push.
    sync.handle(&change(2, "2030-01-01T00:00:01Z", json!({"stock": 4})))
        .await
        .unwrap();
    let stats = p.sim.control().stats().await;
    assert!(stats["routes"][PUT].is_null(), "no write reached Pixlpay: {stats}");
    let state = p.aws.sync_state();
    let push = state.pending_push(2).await.unwrap().expect("pending push kept");
    assert_eq!(push.changes.price, Some("9.95".parse::<Decimal>().unwrap()));
    assert_eq!(push.changes.stock, Some(4));
    assert_eq!(push.origin, "erp");
    let status = state.status().await.unwrap();
    assert_eq!(status["pending_pushes"], json!(1), "{status}");
    let marker = state.out_of_sync_marker(2).await.unwrap().unwrap();
    assert_eq!(marker.reason, pixlpay_sync::sync::OutOfSyncReason::PushPending);
    let history = state.audit_entries(2, 10).await.unwrap();
    assert_eq!(history.len(), 2);
    assert!(
        history
            .iter()
            .all(|e| e.action == pixlpay_sync::sync::AuditAction::PushPending)
    );
}

#[tokio::test]
async fn a_malformed_event_goes_to_the_rejects_queue_with_its_reason_and_changes_nothing() {
    let p = pipeline("ext-bad", 2).await;
    enable_writes(&p).await;
    let rejects = rejects_queue(&p).await;
    let sync = external_sync(&p, &rejects, ConflictPolicy::ExternalWins, true);
    for (bad, reason) in [
        (
            change(1, "2030-01-01T00:00:00Z", json!({"price": 19.99})),
            "decimal string",
        ),
        (change(1, "yesterday", json!({"price": "1.00"})), "RFC 3339"),
        (
            change(999, "2030-01-01T00:00:00Z", json!({"price": "1.00"})),
            "does not exist",
        ),
        (
            json!({"detail-type": EXTERNAL_CHANGE, "detail": {"origin": "erp"}}),
            "product_id",
        ),
    ] {
        let outcome = sync.handle(&bad).await.unwrap();
        assert!(
            matches!(&outcome, ExternalOutcome::Rejected { reason: r } if r.contains(reason)),
            "{outcome:?}"
        );
    }
    let messages = p.aws.take_messages(&rejects).await;
    assert_eq!(messages.len(), 4);
    let first: Value = serde_json::from_str(&messages[0]).unwrap();
    assert!(first["reason"].as_str().unwrap().contains("decimal string"), "{first}");
    assert_eq!(first["event"]["detail"]["product_id"], json!(1));
    assert!(p.sim.control().stats().await["routes"][PUT].is_null());
    assert!(p.aws.sync_state().audit_entries(1, 5).await.unwrap().is_empty());
}

#[tokio::test]
async fn one_external_change_makes_one_pixlpay_write_and_nothing_ping_pongs() {
    let p = pipeline("ext-loop", 3).await;
    full_sync(&p, "seed").await;
    p.aws
        .drain_events(3, Duration::from_millis(300), Duration::from_secs(10))
        .await;
    enable_writes(&p).await;
    let rejects = rejects_queue(&p).await;
    let sync = external_sync(&p, &rejects, ConflictPolicy::LastWriterWins, true);
    let poller = p.poll();
    let outcome = sync
        .handle(&change(
            3,
            "2030-01-01T00:00:00Z",
            json!({"price": "19.990", "name": "Crate of 20"}),
        ))
        .await
        .unwrap();
    assert_eq!(variant(&outcome), "pushed", "{outcome:?}");
    // The write's own webhook comes back through the webhook function, the queue and the worker.
    p.settle().await;
    poller.stop().await;
    assert_eq!(p.sim.control().count(PUT, 200).await, 1, "exactly one Pixlpay write");
    let events = p
        .aws
        .drain_events(1, Duration::from_secs(2), Duration::from_secs(10))
        .await;
    assert_eq!(
        events.len(),
        1,
        "one change event, nothing after the webhook settled: {events:#?}"
    );
    let detail = &events[0]["detail"];
    assert_eq!(
        (&detail["change"], &detail["source"], &detail["origin"]),
        (&json!("updated"), &json!("external"), &json!(ORIGIN))
    );
    // The price arrived as an exact decimal and stays one, in the table and on the bus.
    let stored = p.aws.product_store().get(3).await.unwrap().unwrap();
    assert_eq!(stored.price, "19.990".parse::<Decimal>().unwrap());
    assert!(detail["product"]["price"].is_string());
    // Our own event fed back to the function (a rule that matched too much) is ignored.
    let echo = json!({"detail-type": EXTERNAL_CHANGE, "detail": detail});
    assert_eq!(variant(&sync.handle(&echo).await.unwrap()), "ignored");
    assert_eq!(p.sim.control().count(PUT, 200).await, 1);
    // The table and Pixlpay agree, and nothing is left out of sync.
    let status = p.aws.sync_state().status().await.unwrap();
    assert_eq!(status["out_of_sync_products"].as_i64().unwrap_or(0), 0, "{status}");
}

/// `events/external-change.json` is the EventBridge event an external system publishes.
#[tokio::test]
async fn the_external_change_fixture_drives_the_handler() {
    let p = pipeline("ext-fixture", 2).await;
    enable_writes(&p).await;
    let rejects = rejects_queue(&p).await;
    let sync = external_sync(&p, &rejects, ConflictPolicy::LastWriterWins, true);
    let event: Value = serde_json::from_str(&fixture("external-change.json")).unwrap();
    let outcome = sync.handle(&event).await.unwrap();
    assert_eq!(variant(&outcome), "pushed", "{outcome:?}");
}
