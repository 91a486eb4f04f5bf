//! Real-time sync end to end: the Pixlpay simulator delivers signed webhooks over HTTP to the webhook function's
//! entry point, which de-duplicates in DynamoDB and enqueues on SQS (MiniStack); the worker, fed by a local stand-in
//! for Lambda's SQS trigger, reads Pixlpay and writes DynamoDB; change events are read back from the bus.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::flow::{FAST, fixture, handler, pipeline, queue_depth, wait_until, worker};
use common::{client, simulator};
use pixlpay_sim::local_aws::LocalAws;
use pixlpay_sim::pipeline::{PollerSettings, bind_webhook, invoke, receive_batch, serve_webhook};
use pixlpay_sim::{Faults, LOCAL_WEBHOOK_SECRET};
use pixlpay_sync::Secret;
use pixlpay_sync::aws::SqsWorkQueue;
use pixlpay_sync::ingest::{WorkMessage, WorkQueue};
use pixlpay_sync::sync::{AuditAction, FullSync, FullSyncConfig, RunOptions, RunOutcome, WriteSource};
use pixlpay_sync::webhook::{ProductEventKind, sign};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use time::OffsetDateTime;

/// POSTs `body` with `headers` to the webhook endpoint: (status, JSON body).
async fn post(url: &str, headers: &[(&str, String)], body: Vec<u8>) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(url).body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn signed(secret: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    vec![("x-pixlpay-signature", sign(&Secret::new(secret), body))]
}

/// The same signature as a header map, for calling the handler directly.
fn signed_headers(secret: &str, body: &[u8]) -> http::HeaderMap {
    signed(secret, body)
        .into_iter()
        .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
        .collect()
}

/// Takes every work message on the queue.
async fn queued_work(aws: &LocalAws, queue_url: &str) -> Vec<WorkMessage> {
    aws.take_messages(queue_url)
        .await
        .iter()
        .map(|b| serde_json::from_str(b).expect("a work message"))
        .collect()
}

fn event(id: &str, kind: &str, product_id: Value) -> Vec<u8> {
    json!({"id": id, "event_type": kind, "created_at": "2026-12-04T10:00:00.000000Z",
           "data": {"product_id": product_id}})
    .to_string()
    .into_bytes()
}

/// The endpoint alone (no simulator): the given secrets, a real queue.
async fn endpoint(prefix: &str, secrets: &str) -> (LocalAws, String, String) {
    let aws = LocalAws::new(prefix).await;
    let (queue_url, _) = aws.work_queue(30, 3).await;
    let (listener, url) = bind_webhook().await;
    serve_webhook(listener, Arc::new(handler(&aws, &queue_url, secrets)));
    (aws, queue_url, url)
}

#[tokio::test]
async fn a_change_in_pixlpay_is_in_the_table_and_on_the_bus_within_seconds() {
    let p = pipeline("wh-e2e", 5).await;
    let poller = p.poll();
    let control = p.sim.control();

    let started = Instant::now();
    control.update_product(3, json!({"price": "12.34"}), false).await;
    wait_until("product 3 in the table", Duration::from_secs(10), || async {
        p.price(3).await == Some(("12.34".parse().unwrap(), false))
    })
    .await;
    let latency = started.elapsed();
    assert!(latency < Duration::from_secs(10), "took {latency:?}");
    let events = p
        .aws
        .drain_events(1, Duration::from_millis(500), Duration::from_secs(10))
        .await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["detail-type"], "ProductCreated");
    assert_eq!(events[0]["detail"]["product_id"], 3);
    assert_eq!(events[0]["detail"]["source"], "webhook");
    let item = p.aws.product_store().get(3).await.unwrap().unwrap();
    assert!(
        !item.delivery_servers.is_empty(),
        "a webhook write carries the single view's fields"
    );

    // Pixlpay sends every delivery twice: one write, one event.
    control
        .set_faults(&Faults {
            duplicate_webhooks: true,
            ..Faults::default()
        })
        .await;
    control.update_product(3, json!({"price": "15.00"}), false).await;
    p.settle().await;
    assert_eq!(p.price(3).await, Some(("15.00".parse().unwrap(), false)));
    let events = p
        .aws
        .drain_events(1, Duration::from_millis(800), Duration::from_secs(10))
        .await;
    assert_eq!(events.len(), 1, "a duplicated delivery publishes once: {events:?}");
    assert_eq!(events[0]["detail-type"], "ProductUpdated");

    // A deletion: soft-deleted, announced.
    control.delete_product(3, false).await;
    p.settle().await;
    assert_eq!(p.price(3).await, Some(("15.00".parse().unwrap(), true)));
    let events = p
        .aws
        .drain_events(1, Duration::from_millis(500), Duration::from_secs(10))
        .await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["detail-type"], "ProductDeleted");

    // The product's audit trail, newest first: each write, its source, the delivery behind it, what changed.
    let audit = p.aws.sync_state().audit_entries(3, 50).await.unwrap();
    let actions: Vec<_> = audit.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [AuditAction::Deleted, AuditAction::Updated, AuditAction::Created]
    );
    assert!(
        audit
            .iter()
            .all(|e| e.source == WriteSource::Webhook && e.delivery_id.is_some())
    );
    assert_eq!(audit[1].changed_fields, ["pixlpay_updated_at", "price"]);
    assert_eq!(audit[0].changed_fields, ["deleted", "deleted_at"]);
    assert_eq!(audit[1].new_hash, audit[0].old_hash);

    let status = p.aws.sync_state().status().await.unwrap();
    assert_eq!(status["last_webhook"]["event"], "product.deleted");
    assert_eq!(status["last_webhook"]["product_id"], 3);
    assert_eq!(status["webhooks_queued"], 3, "{status}");
    assert_eq!(
        status["webhooks_duplicate"], 2,
        "the update's and the delete's copies: {status}"
    );
    assert_eq!(queue_depth(&p.aws, &p.dlq_url).await, 0);
    poller.stop().await;
}

#[tokio::test]
async fn bad_requests_get_their_answer_and_change_nothing() {
    let (aws, queue_url, url) = endpoint("wh-bad", "whsec_current,whsec_previous").await;
    let good = event("wh_del_1", "product.updated", json!(42));
    let good_signature = sign(&Secret::new("whsec_current"), &good);
    let sig = |value: &str| vec![("x-pixlpay-signature", value.to_owned())];
    let with_current = |body: &[u8]| signed("whsec_current", body);
    let big = |n: usize| {
        let mut body = br#"{"id":"wh_big","event_type":"product.updated","data":{"product_id":1},"pad":""#.to_vec();
        body.resize(n - 2, b'x');
        body.extend_from_slice(b"\"}");
        body
    };
    // (what, headers, body, expected status, expected error code)
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("no signature header", vec![], good.clone(), 401, "invalid_signature"),
        ("empty signature", sig(""), good.clone(), 401, "invalid_signature"),
        (
            "wrong signature",
            sig(&"ab".repeat(32)),
            good.clone(),
            401,
            "invalid_signature",
        ),
        (
            "signed by a retired secret",
            signed("whsec_retired", &good),
            good.clone(),
            401,
            "invalid_signature",
        ),
        (
            "truncated signature",
            sig(&good_signature[..63]),
            good.clone(),
            401,
            "invalid_signature",
        ),
        (
            "signature one byte short",
            sig(&good_signature[..62]),
            good.clone(),
            401,
            "invalid_signature",
        ),
        (
            "non-hex signature",
            sig(&"zz".repeat(32)),
            good.clone(),
            401,
            "invalid_signature",
        ),
        (
            "sha256= prefix",
            sig(&format!("sha256={good_signature}")),
            good.clone(),
            401,
            "invalid_signature",
        ),
        (
            "signature of another body",
            sig(&good_signature),
            event("wh_del_1", "product.updated", json!(43)),
            401,
            "invalid_signature",
        ),
        (
            "body re-serialised after signing",
            sig(&good_signature),
            serde_json::to_vec_pretty(&serde_json::from_slice::<Value>(&good).unwrap()).unwrap(),
            401,
            "invalid_signature",
        ),
        ("empty body", with_current(b""), vec![], 400, "invalid_payload"),
        (
            "not JSON",
            with_current(b"product.updated 42"),
            b"product.updated 42".to_vec(),
            400,
            "invalid_payload",
        ),
        (
            "truncated JSON",
            with_current(&good[..20]),
            good[..20].to_vec(),
            400,
            "invalid_payload",
        ),
        (
            "a JSON array",
            with_current(b"[1,2]"),
            b"[1,2]".to_vec(),
            400,
            "invalid_payload",
        ),
        (
            "a JSON string",
            with_current(b"\"x\""),
            b"\"x\"".to_vec(),
            400,
            "invalid_payload",
        ),
        (
            "missing event",
            with_current(br#"{"id":"a","data":{"product_id":1}}"#),
            br#"{"id":"a","data":{"product_id":1}}"#.to_vec(),
            400,
            "invalid_payload",
        ),
        (
            "event not a string",
            with_current(br#"{"event_type":7,"data":{"product_id":1}}"#),
            br#"{"event_type":7,"data":{"product_id":1}}"#.to_vec(),
            400,
            "invalid_payload",
        ),
        (
            "missing data",
            with_current(br#"{"event_type":"product.updated"}"#),
            br#"{"event_type":"product.updated"}"#.to_vec(),
            400,
            "invalid_payload",
        ),
        (
            "null product_id",
            with_current(&event("a", "product.updated", Value::Null)),
            event("a", "product.updated", Value::Null),
            400,
            "invalid_payload",
        ),
        (
            "missing product_id",
            with_current(br#"{"event_type":"product.updated","data":{}}"#),
            br#"{"event_type":"product.updated","data":{}}"#.to_vec(),
            400,
            "invalid_payload",
        ),
        (
            "product_id as a string",
            with_current(&event("a", "product.updated", json!("42"))),
            event("a", "product.updated", json!("42")),
            400,
            "invalid_payload",
        ),
        (
            "negative product_id",
            with_current(&event("a", "product.updated", json!(-42))),
            event("a", "product.updated", json!(-42)),
            400,
            "invalid_payload",
        ),
        (
            "huge product_id",
            with_current(&event("a", "product.updated", json!(u64::MAX))),
            event("a", "product.updated", json!(u64::MAX)),
            400,
            "invalid_payload",
        ),
        (
            "fractional product_id",
            with_current(&event("a", "product.updated", json!(4.5))),
            event("a", "product.updated", json!(4.5)),
            400,
            "invalid_payload",
        ),
        (
            "created_at not RFC 3339",
            with_current(br#"{"event_type":"product.updated","created_at":"yesterday","data":{"product_id":1}}"#),
            br#"{"event_type":"product.updated","created_at":"yesterday","data":{"product_id":1}}"#.to_vec(),
            400,
            "invalid_payload",
        ),
        (
            "1 MiB body, signed",
            with_current(&big(1 << 20)),
            big(1 << 20),
            413,
            "payload_too_large",
        ),
        (
            "256 KiB + 1 byte, unsigned",
            vec![],
            big(256 * 1024 + 1),
            413,
            "payload_too_large",
        ),
    ];
    assert!(cases.len() >= 20);
    for (name, headers, body, status, error) in cases {
        let (got, answer) = post(&url, &headers, body).await;
        assert_eq!(got, status, "{name}: {answer}");
        assert_eq!(answer["error"], error, "{name}: {answer}");
        assert!(
            answer["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{name}: a reason is given: {answer}"
        );
    }
    let (got, answer) = {
        let response = reqwest::Client::new().get(&url).send().await.unwrap();
        (response.status().as_u16(), response.json::<Value>().await.unwrap())
    };
    assert_eq!((got, answer["error"].as_str()), (405, Some("method_not_allowed")));

    assert!(aws.take_messages(&queue_url).await.is_empty(), "nothing enqueued");
    assert!(aws.state_items().await.is_empty(), "nothing recorded");

    // The right signature in uppercase hex, in the other header family, and one by the previous secret: accepted.
    let upper = vec![("x-webhook-signature", good_signature.to_uppercase())];
    let (got, answer) = post(&url, &upper, good.clone()).await;
    assert_eq!((got, answer["status"].as_str()), (200, Some("queued")), "{answer}");
    let rotated = event("wh_del_2", "product.updated", json!(42));
    let (got, _) = post(&url, &signed("whsec_previous", &rotated), rotated).await;
    assert_eq!(got, 200);
    let queued = queued_work(&aws, &queue_url).await;
    assert_eq!(queued.len(), 2);
    assert_eq!((queued[0].product_id, queued[0].event), (42, ProductEventKind::Updated));
}

#[tokio::test]
async fn events_that_are_not_about_products_are_ignored_and_enqueue_nothing() {
    let (aws, queue_url, url) = endpoint("wh-ignored", "whsec_current").await;
    for body in [
        json!({"id": "wh_o1", "event_type": "order.paid", "data": {"id": 5}}),
        json!({"event": "customer.created", "timestamp": "2026-12-04T10:00:00Z", "data": {}}),
        json!({"id": "wh_t", "event_type": "webhook.test", "data": {}}),
    ] {
        let body = body.to_string().into_bytes();
        let (got, answer) = post(&url, &signed("whsec_current", &body), body).await;
        assert_eq!((got, answer["status"].as_str()), (200, Some("ignored")), "{answer}");
    }
    assert!(aws.take_messages(&queue_url).await.is_empty());
    assert_eq!(aws.sync_state().status().await.unwrap()["webhooks_ignored"], 3);
}

#[tokio::test]
async fn the_same_delivery_is_queued_once_even_when_copies_race() {
    let (aws, queue_url, url) = endpoint("wh-dup", "whsec_current").await;
    let body = event("wh_del_dup", "product.updated", json!(7));
    let headers = signed("whsec_current", &body);
    let (_, first) = post(&url, &headers, body.clone()).await;
    let (_, second) = post(&url, &headers, body.clone()).await;
    assert_eq!(
        (first["status"].as_str(), second["status"].as_str()),
        (Some("queued"), Some("duplicate"))
    );

    // The same id with another payload is new work (whether Pixlpay reuses ids is undocumented).
    let changed = event("wh_del_dup", "product.deleted", json!(7));
    let (_, answer) = post(&url, &signed("whsec_current", &changed), changed).await;
    assert_eq!(answer["status"], "queued");

    // No id in body or headers (guide dialect): the body hash is the key; a delivery-id header is used when present.
    let v1b = json!({"event": "product.created", "timestamp": "2026-12-04T10:00:00Z", "data": {"product_id": 8}})
        .to_string()
        .into_bytes();
    let (_, a) = post(&url, &signed("whsec_current", &v1b), v1b.clone()).await;
    let (_, b) = post(&url, &signed("whsec_current", &v1b), v1b.clone()).await;
    assert_eq!(
        (a["status"].as_str(), b["status"].as_str()),
        (Some("queued"), Some("duplicate"))
    );
    let mut with_header = signed("whsec_current", &v1b);
    with_header.push(("x-webhook-id", "12345".into()));
    let (_, c) = post(&url, &with_header, v1b.clone()).await;
    let (_, d) = post(&url, &with_header, v1b).await;
    assert_eq!(
        (c["status"].as_str(), d["status"].as_str()),
        (Some("queued"), Some("duplicate"))
    );

    // Eight copies at once: exactly one is queued; the others are duplicates or told to retry (409).
    let racing = event("wh_del_race", "product.updated", json!(9));
    let headers = signed("whsec_current", &racing);
    let answers = futures_util::future::join_all((0..8).map(|_| post(&url, &headers, racing.clone()))).await;
    let queued = answers
        .iter()
        .filter(|(s, a)| *s == 200 && a["status"] == "queued")
        .count();
    assert_eq!(queued, 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|(s, a)| (*s == 200 && a["status"] != "ignored") || *s == 409),
        "{answers:?}"
    );
    assert_eq!(
        aws.take_messages(&queue_url).await.len(),
        5,
        "7, 7 again changed, 8, 8 by header, 9"
    );
}

#[tokio::test]
async fn when_enqueueing_fails_the_answer_is_503_and_the_retry_is_processed() {
    let aws = LocalAws::new("wh-503").await;
    let (queue_url, _) = aws.work_queue(30, 3).await;
    let missing_queue = format!("{}-does-not-exist", queue_url);
    let broken = handler(&aws, &missing_queue, "whsec_current");
    let body = event("wh_del_retry", "product.updated", json!(11));
    let headers = signed_headers("whsec_current", &body);
    let reply = broken.handle(&headers, &body).await;
    assert_eq!(reply.status, 503, "{:?}", reply.body);
    assert_eq!(reply.body["error"], "unavailable");
    let items = aws.state_items().await;
    let pks: Vec<&str> = items.iter().filter_map(|i| i["pk"].as_str()).collect();
    assert!(
        !pks.iter().any(|pk| pk.starts_with("DELIVERY#")),
        "the claim was released: {pks:?}"
    );
    // The failure is listed for the status, and the product counts as out of sync until the retry's work is done.
    let errors = aws.sync_state().recent_errors(5).await.unwrap();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].reason.contains("queueing failed"), "{errors:?}");
    assert_eq!(errors[0].delivery_id.as_deref(), Some("wh_del_retry"));
    let marker = aws.sync_state().out_of_sync_marker(11).await.unwrap().expect("marked");
    assert_eq!(marker.reason, pixlpay_sync::sync::OutOfSyncReason::WebhookPending);

    // Pixlpay retries a minute later; the queue is back.
    let working = handler(&aws, &queue_url, "whsec_current");
    let reply = working.handle(&headers, &body).await;
    assert_eq!(
        reply.body["status"], "queued",
        "the retry is processed, not taken for a duplicate"
    );
    assert_eq!(aws.take_messages(&queue_url).await.len(), 1);
    assert_eq!(
        aws.sync_state()
            .delivery_state("id:wh_del_retry")
            .await
            .unwrap()
            .as_deref(),
        Some("accepted")
    );
}

#[tokio::test]
async fn an_optional_maximum_age_refuses_old_events() {
    let aws = LocalAws::new("wh-age").await;
    let (queue_url, _) = aws.work_queue(30, 3).await;
    let mut aged = handler(&aws, &queue_url, "whsec_current");
    aged.config.max_event_age = Some(Duration::from_secs(3600));
    let headers = |body: &[u8]| signed_headers("whsec_current", body);
    let old = event("wh_old", "product.updated", json!(1));
    let reply = aged.handle(&headers(&old), &old).await;
    assert_eq!(
        (reply.status, reply.body["status"].as_str()),
        (200, Some("ignored")),
        "{:?}",
        reply.body
    );
    let undated = br#"{"id":"wh_undated","event_type":"product.updated","data":{"product_id":1}}"#;
    assert_eq!(aged.handle(&headers(undated), undated).await.status, 400);
    let now = pixlpay_sync::timestamp::format(OffsetDateTime::now_utc());
    let fresh = json!({"id": "wh_fresh", "event_type": "product.updated", "created_at": now,
                       "data": {"product_id": 1}})
    .to_string();
    let reply = aged.handle(&headers(fresh.as_bytes()), fresh.as_bytes()).await;
    assert_eq!(reply.body["status"], "queued");
    assert_eq!(aws.take_messages(&queue_url).await.len(), 1);
}

#[tokio::test]
async fn fifty_updates_in_a_burst_cost_far_fewer_than_fifty_reads() {
    let p = pipeline("wh-burst", 3).await;
    let control = p.sim.control();
    control.reset_stats().await;
    let poller = p.poll();
    for n in 1..=50 {
        control
            .update_product(1, json!({"price": format!("{n}.00")}), false)
            .await;
    }
    p.settle().await;
    wait_until("the last price stored", Duration::from_secs(10), || async {
        p.price(1).await == Some(("50.00".parse().unwrap(), false))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    poller.stop().await;
    let gets = control.count("GET /products/{id}", 200).await;
    assert!(gets <= 10, "50 webhooks cost {gets} GETs");
    let events = p
        .aws
        .drain_events(1, Duration::from_millis(500), Duration::from_secs(10))
        .await;
    assert!(events.len() as u64 <= gets, "{} events for {gets} reads", events.len());
}

#[tokio::test]
async fn updated_and_deleted_delivered_in_reverse_order_end_deleted() {
    let p = pipeline("wh-reverse", 3).await;
    let poller = p.poll();
    let control = p.sim.control();
    control.update_product(2, json!({"price": "2.50"}), false).await;
    control.update_product(1, json!({"price": "1.50"}), false).await;
    p.settle().await;
    assert_eq!(p.price(2).await, Some(("2.50".parse().unwrap(), false)));

    control
        .set_faults(&Faults {
            reorder_webhooks: true,
            ..Faults::default()
        })
        .await;
    control.update_product(2, json!({"price": "7.77"}), false).await;
    control.delete_product(2, false).await;
    control.update_product(1, json!({"price": "5.00"}), false).await;
    control.update_product(1, json!({"price": "6.00"}), false).await;
    assert_eq!(control.flush_webhooks().await, 4, "delivered newest first");
    p.settle().await;
    assert_eq!(
        p.price(2).await,
        Some(("2.50".parse().unwrap(), true)),
        "deleted stays deleted"
    );
    assert_eq!(
        p.price(1).await,
        Some(("6.00".parse().unwrap(), false)),
        "the newest update wins"
    );
    poller.stop().await;
}

#[tokio::test]
async fn a_webhook_racing_a_full_sync_ends_with_the_newest_state() {
    let p = pipeline("wh-race", 300).await;
    let control = p.sim.control();
    // Slow pages, so the updates below land while the sync is reading.
    control
        .set_faults(&Faults {
            latency_ms: 40,
            ..Faults::default()
        })
        .await;
    let poller = p.poll();
    let sync = FullSync {
        catalog: client(&p.sim, FAST),
        store: p.aws.product_store(),
        state: p.aws.sync_state(),
        events: p.aws.publisher(),
        config: FullSyncConfig {
            per_page: 20,
            page_concurrency: 2,
            ..FullSyncConfig::default()
        },
    };
    let options = RunOptions {
        trigger: "test".into(),
        lock_owner: "race".into(),
        lock_expires_at_unix: OffsetDateTime::now_utc().unix_timestamp() + 120,
        deadline: tokio::time::Instant::now() + Duration::from_secs(120),
        max_pages: None,
    };
    let updates = async {
        for round in 1..=3 {
            for id in [3u64, 70, 150, 220, 299] {
                let price = format!("{}.{round:02}", id + 1000);
                control.update_product(id, json!({"price": price}), false).await;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    };
    let (outcome, ()) = tokio::join!(sync.run(&options), updates);
    assert!(matches!(outcome.unwrap(), RunOutcome::Completed { .. }));
    p.settle().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    poller.stop().await;

    let truth = control.products().await;
    let items = p.aws.products().await;
    assert_eq!(items.len(), truth.len());
    for product in truth {
        let id = product["id"].as_u64().unwrap();
        let item = &items[&id];
        let price: Decimal = product["price"].as_str().unwrap().parse().unwrap();
        assert_eq!(item.price, price, "product {id}");
        assert!(!item.deleted);
        let updated = pixlpay_sync::timestamp::parse(product["updated_at"].as_str().unwrap()).unwrap();
        assert_eq!(item.pixlpay_updated_at, updated, "product {id}");
    }
}

#[tokio::test]
async fn a_failing_message_is_retried_alone_and_a_poison_message_ends_in_the_dlq() {
    let sim = simulator(3, FAST).await;
    let aws = LocalAws::new("wh-poison").await;
    let (queue_url, dlq_url) = aws.work_queue(1, 2).await;
    let worker = worker(&sim, &aws, &queue_url);
    let queue = SqsWorkQueue::new(aws.sqs.clone(), &queue_url);
    for id in [1, 2] {
        let message = WorkMessage {
            product_id: id,
            event: ProductEventKind::Updated,
            delivery_id: Some(format!("wh_{id}")),
            created_at: None,
            deferrals: 0,
            seq: 0,
        };
        queue.enqueue(&message, Duration::ZERO).await.unwrap();
    }
    aws.sqs
        .send_message()
        .queue_url(&queue_url)
        .message_body("{\"product_id\": \"not a number\"}")
        .send()
        .await
        .unwrap();
    let settings = PollerSettings {
        batching_window: Duration::from_millis(300),
        ..PollerSettings::default()
    };
    let batch = receive_batch(&aws.sqs, &queue_url, settings).await;
    assert_eq!(batch.len(), 3);
    let poison_id = batch
        .iter()
        .find(|r| r.body.as_deref().unwrap_or("").contains("not a number"))
        .and_then(|r| r.message_id.clone())
        .unwrap();
    let failed = invoke(&aws.sqs, &queue_url, &worker, batch, Duration::from_secs(30)).await;
    assert_eq!(
        failed,
        std::slice::from_ref(&poison_id),
        "only the poison message is reported"
    );
    let items = aws.products().await;
    assert!(items.contains_key(&1) && items.contains_key(&2));

    // After the visibility timeout only the poison message comes back; after its last receive it is in the DLQ.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let again = receive_batch(&aws.sqs, &queue_url, settings).await;
    let ids: Vec<_> = again.iter().filter_map(|r| r.message_id.clone()).collect();
    assert_eq!(ids, [poison_id]);
    assert_eq!(
        again[0].attributes.get("ApproximateReceiveCount").map(String::as_str),
        Some("2")
    );
    invoke(&aws.sqs, &queue_url, &worker, again, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(receive_batch(&aws.sqs, &queue_url, settings).await.is_empty());
    let dead = aws.take_messages(&dlq_url).await;
    assert_eq!(dead, ["{\"product_id\": \"not a number\"}"]);
}

/// The `events/webhook-*.json` fixtures are API Gateway HTTP API events, decoded by lambda_http exactly as in Lambda
/// (`cargo lambda invoke webhook --data-file ...`), and verify with the local secret.
#[tokio::test]
async fn the_webhook_fixtures_drive_the_function_entry_point() {
    let aws = LocalAws::new("wh-fixture").await;
    let (queue_url, _) = aws.work_queue(30, 3).await;
    let handler = handler(&aws, &queue_url, LOCAL_WEBHOOK_SECRET);
    for (name, status, outcome) in [
        ("webhook-product-updated.json", 200, "queued"),
        ("webhook-product-updated.json", 200, "duplicate"),
        ("webhook-product-deleted-v1.json", 200, "queued"),
        ("webhook-bad-signature.json", 401, "invalid_signature"),
    ] {
        let request = lambda_http::request::from_str(&fixture(name)).expect("an API Gateway HTTP API event");
        let response = handler.handle_http(request).await;
        assert_eq!(response.status().as_u16(), status, "{name}");
        let body: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
        let got = body.get("status").or_else(|| body.get("error")).unwrap();
        assert_eq!(got, outcome, "{name}: {body}");
    }
    let queued = queued_work(&aws, &queue_url).await;
    let kinds: Vec<_> = queued.iter().map(|m| (m.product_id, m.event)).collect();
    assert_eq!(kinds, [(1, ProductEventKind::Updated), (2, ProductEventKind::Deleted)]);
    assert_eq!(
        queued[1].delivery_id.as_deref(),
        Some("12345"),
        "V1 without id: the X-Webhook-ID header"
    );
}

/// `events/product-worker-batch.json` is an SQS event as Lambda delivers it: two events for product 1 (one read),
/// a delete for product 2 that Pixlpay still serves (so it is stored, not deleted).
#[tokio::test]
async fn the_worker_fixture_drives_the_function_entry_point() {
    let sim = simulator(3, FAST).await;
    let aws = LocalAws::new("wk-fixture").await;
    let (queue_url, _) = aws.work_queue(30, 3).await;
    let worker = worker(&sim, &aws, &queue_url);
    sim.control().reset_stats().await;
    let event: aws_lambda_events::sqs::SqsEvent =
        serde_json::from_str(&fixture("product-worker-batch.json")).expect("an SQS event");
    let deadline = std::time::SystemTime::now() + Duration::from_secs(30);
    let response = pixlpay_sync::handlers::product_worker::handle(&worker, &event, deadline).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        sim.control().count("GET /products/{id}", 200).await,
        2,
        "one read per product"
    );
    let items = aws.products().await;
    assert!(!items[&1].deleted && !items[&2].deleted);
    assert_eq!(items[&1].source, pixlpay_sync::sync::WriteSource::Webhook);
}
