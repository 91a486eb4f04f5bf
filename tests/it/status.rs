//! The status API after a scripted sequence on real parts (simulator, MiniStack, the webhook pipeline): a full sync
//! with an invalid product, webhooks that update and delete, a webhook whose work fails into the DLQ, a silent change
//! in Pixlpay. Every figure of `GET /status` is checked against what happened, then the per-product history, the
//! live diff, the runs, and the answers to bad requests.

mod common;

use std::time::Duration;

use common::client;
use common::flow::{FAST, Pipeline, fixture, full_sync, pipeline, queue_depth, wait_until};
use http::Method;
use pixlpay_sim::Faults;
use pixlpay_sync::handlers::status::StatusHandler;
use pixlpay_sync::pixlpay::PixlpayClient;
use serde_json::{Value, json};

fn status_handler(p: &Pipeline) -> StatusHandler<PixlpayClient> {
    StatusHandler {
        state: p.aws.sync_state(),
        products: p.aws.product_store(),
        sqs: p.aws.sqs.clone(),
        work_queue_url: p.queue_url.clone(),
        dead_letter_queue_url: p.dlq_url.clone(),
        catalog: client(&p.sim, FAST),
    }
}

async fn get(handler: &StatusHandler<PixlpayClient>, path: &str, query: Option<&str>) -> (u16, Value) {
    let reply = handler.handle(&Method::GET, path, query).await;
    (reply.status, reply.body)
}

/// `(product_id, reason)` of each listed out-of-sync product, sorted.
fn out_of_sync(status: &Value) -> Vec<(u64, String)> {
    let mut listed: Vec<_> = status["out_of_sync"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["product_id"].as_u64().unwrap(),
                m["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    listed.sort();
    listed
}

/// `(action, source)` of a product's history, newest first.
fn history(product: &Value) -> Vec<(String, String)> {
    product["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["source"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn after_a_scripted_sequence_every_status_figure_equals_what_happened() {
    let p = pipeline("st-seq", 12).await;
    let control = p.sim.control();
    let status = status_handler(&p);

    // 1. Product 12 is invalid in Pixlpay; the full sync stores the other 11 and marks 12.
    control.update_product(12, json!({"price": "free"}), true).await;
    let first = full_sync(&p, "first").await;
    assert_eq!((first.counts.created, first.counts.invalid), (11, 1));

    // 2. Webhooks: 2 is updated, 3 deleted; the worker applies both and clears their marks.
    let poller = p.poll();
    control.update_product(2, json!({"price": "7.25"}), false).await;
    control.delete_product(3, false).await;
    p.settle().await;
    let (_, after_webhooks) = get(&status, "/status", None).await;
    assert_eq!(
        out_of_sync(&after_webhooks),
        [(12, "invalid".into())],
        "{after_webhooks:#}"
    );

    // 3. Pixlpay fails every read while 5 changes: its work is retried, then dead-lettered (3 receives).
    control
        .set_faults(&Faults {
            fail_next: 10_000,
            error_statuses: vec![500],
            ..Faults::default()
        })
        .await;
    control.update_product(5, json!({"price": "3.10"}), false).await;
    wait_until("the failed work in the DLQ", Duration::from_secs(40), || async {
        queue_depth(&p.aws, &p.dlq_url).await == 1
    })
    .await;
    poller.stop().await;
    control.set_faults(&Faults::default()).await;

    // 4. A silent change: no webhook, so only a live read can see it.
    control.update_product(6, json!({"price": "9.99"}), true).await;

    let (code, s) = get(&status, "/status", None).await;
    assert_eq!(code, 200, "{s:#}");
    assert_eq!(
        s["products"],
        json!({"active": 10, "deleted": 1, "in_sync": 10, "out_of_sync": 2, "in_sync_exact": true}),
        "11 stored (10 active, 3 deleted), 5 stored but out of sync, 12 never stored: {s:#}"
    );
    assert_eq!(out_of_sync(&s), [(5, "webhook_failed".into()), (12, "invalid".into())]);
    assert_eq!(s["in_sync"], json!(false));
    let last = &s["last_full_sync"];
    assert_eq!(last["run_id"], json!(first.run_id));
    assert_eq!(last["status"], json!("completed"));
    assert_eq!(
        (last["counts"]["created"].as_u64(), last["counts"]["invalid"].as_u64()),
        (Some(11), Some(1))
    );
    assert_eq!(last["corrected"], json!(11));
    assert_eq!(
        (
            &s["last_webhook"]["product_id"],
            &s["last_webhook"]["event"],
            &s["last_webhook"]["outcome"]
        ),
        (&json!(5), &json!("product.updated"), &json!("queued"))
    );
    assert_eq!(s["webhooks"]["queued"], json!(3), "{s:#}");
    assert_eq!(s["queues"]["work"], json!({"visible": 0, "in_flight": 0, "delayed": 0}));
    assert_eq!(s["queues"]["dead_letter"]["visible"], json!(1));
    assert_eq!(s["pending_pushes"], json!(0));
    // Errors, newest first: each of the 3 failed attempts on 5, then the invalid product from the full sync.
    let errors = s["recent_errors"].as_array().unwrap();
    let summary: Vec<_> = errors
        .iter()
        .map(|e| (e["product_id"].as_u64().unwrap(), e["source"].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [(5, "webhook"), (5, "webhook"), (5, "webhook"), (12, "full_sync")],
        "{s:#}"
    );
    assert!(errors[0]["reason"].as_str().unwrap().contains("500"), "{}", errors[0]);
    assert!(errors[3]["reason"].as_str().unwrap().contains("price"), "{}", errors[3]);
    assert_eq!(errors[3]["run_id"], json!(first.run_id));
    assert!(errors[0]["delivery_id"].is_string());

    // Per product: the stored item and its history in order, newest first.
    let (code, two) = get(&status, "/status/products/2", Some("live=true")).await;
    assert_eq!(code, 200, "{two:#}");
    assert_eq!(two["stored"]["price"], json!("7.25"));
    assert_eq!(two["out_of_sync"], Value::Null);
    assert_eq!(
        history(&two),
        [
            ("updated".into(), "webhook".into()),
            ("created".into(), "full_sync".into())
        ]
    );
    assert!(
        history(&two).len() == 2
            && two["history"][0]["changed_fields"]
                .as_array()
                .unwrap()
                .contains(&json!("price"))
    );
    assert_eq!(two["live"]["in_sync"], json!(true), "{:#}", two["live"]);
    let (_, three) = get(&status, "/status/products/pixlpay_3", Some("live=true")).await;
    assert_eq!(
        history(&three),
        [
            ("deleted".into(), "webhook".into()),
            ("created".into(), "full_sync".into())
        ]
    );
    assert_eq!(
        (&three["live"]["product"], &three["live"]["in_sync"]),
        (&Value::Null, &json!(true))
    );
    let (_, five) = get(&status, "/status/products/5", None).await;
    assert_eq!(five["out_of_sync"]["reason"], json!("webhook_failed"));
    assert!(five.get("live").is_none(), "no live read unless asked");
    // The silent change: the stored item looks fine until compared with Pixlpay.
    let (_, six) = get(&status, "/status/products/6", Some("live=true")).await;
    assert_eq!(six["live"]["in_sync"], json!(false));
    let price = six["live"]["differences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["field"] == "price")
        .unwrap_or_else(|| panic!("price not named: {:#}", six["live"]));
    assert_eq!(price["live"], json!("9.99"));
    assert_ne!(price["stored"], json!("9.99"));

    // Runs: the one full sync, with its figures.
    let (_, runs) = get(&status, "/status/runs", Some("limit=5")).await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1);
    assert_eq!(runs["runs"][0]["run_id"], json!(first.run_id));
    assert_eq!(runs["runs"][0]["counts"]["created"], json!(11));

    // 5. Pixlpay answers again: the next full sync stores 5 (and the silent change), clearing 5's mark; 12 stays
    //    invalid without being listed as a new error.
    let second = full_sync(&p, "second").await;
    assert_eq!(second.counts.updated, 2);
    let (_, s) = get(&status, "/status", None).await;
    assert_eq!(
        s["products"],
        json!({"active": 10, "deleted": 1, "in_sync": 11, "out_of_sync": 1, "in_sync_exact": true})
    );
    assert_eq!(out_of_sync(&s), [(12, "invalid".into())]);
    assert_eq!(s["recent_errors"].as_array().unwrap().len(), 4);
    assert_eq!(s["last_full_sync"]["run_id"], json!(second.run_id));
    assert_eq!(s["last_full_sync"]["corrected"], json!(2));
    let (_, runs) = get(&status, "/status/runs", None).await;
    let ids: Vec<_> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].clone())
        .collect();
    assert_eq!(ids, [json!(second.run_id), json!(first.run_id)], "newest first");
}

#[tokio::test]
async fn unknown_and_malformed_requests_get_their_error_and_read_nothing_more() {
    let p = pipeline("st-bad", 2).await;
    let status = status_handler(&p);
    full_sync(&p, "a").await;
    for (path, query, code, error) in [
        ("/status/products/999", None, 404, "unknown_product"),
        ("/status/products/999", Some("live=true"), 404, "unknown_product"),
        ("/status/products/abc", None, 400, "invalid_product_id"),
        ("/status/products/0", None, 400, "invalid_product_id"),
        ("/status/products/-1", None, 400, "invalid_product_id"),
        ("/status/products/1", Some("live=yes"), 400, "invalid_query"),
        ("/status/runs", Some("limit=1000"), 400, "invalid_query"),
        ("/status/nothing", None, 404, "not_found"),
    ] {
        let (got, body) = get(&status, path, query).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (code, Some(error)),
            "{path}?{query:?}: {body}"
        );
        assert!(!body["reason"].as_str().unwrap().is_empty());
    }
    let reply = status.handle(&Method::DELETE, "/status/products/1", None).await;
    assert_eq!(reply.status, 405);
    // None of it changed anything: the product is as the full sync left it, with one history entry.
    let (_, one) = get(&status, "/status/products/1", None).await;
    assert_eq!(one["history"].as_array().unwrap().len(), 1);
    assert_eq!(one["stored"]["version"], json!(1));
}

/// `events/status-*.json` are API Gateway HTTP API events for each route, decoded by lambda_http as in Lambda
/// (`cargo lambda invoke status --data-file ...`).
#[tokio::test]
async fn the_status_fixtures_drive_the_function_entry_point() {
    let p = pipeline("st-fixtures", 3).await;
    let status = status_handler(&p);
    full_sync(&p, "a").await;
    for (name, expected) in [
        ("status-health.json", 200),
        ("status-runs.json", 200),
        ("status-product.json", 200),
        ("status-product-live.json", 200),
        ("status-product-bad-id.json", 400),
    ] {
        let request = lambda_http::request::from_str(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let response = status.handle_http(request).await;
        let code = response.status().as_u16();
        let body: Value = match response.body() {
            lambda_http::Body::Text(text) => serde_json::from_str(text).unwrap(),
            other => panic!("{name}: unexpected body {other:?}"),
        };
        assert_eq!(code, expected, "{name}: {body:#}");
        match name {
            "status-health.json" => assert_eq!(body["products"]["active"], json!(3)),
            "status-runs.json" => assert_eq!(body["runs"].as_array().unwrap().len(), 1),
            "status-product.json" => assert_eq!(body["product_id"], json!(1)),
            "status-product-live.json" => assert_eq!(body["live"]["in_sync"], json!(true), "{body:#}"),
            _ => assert_eq!(body["error"], json!("invalid_product_id")),
        }
    }
}
