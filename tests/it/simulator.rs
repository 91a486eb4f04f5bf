//! The simulator's fidelity to pixlpay-api.md, and its webhooks checked with the shared verification code: the
//! behaviour every later test relies on.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Receiver, api, register, simulator, simulator_with};
use pixlpay_sim::state::{EnvelopeVariant, HeaderFamily, Settings};
use pixlpay_sim::{Faults, SimConfig};
use pixlpay_sync::Secret;
use pixlpay_sync::webhook::{
    ProductEventKind, SignatureError, WebhookEvent, WebhookSecrets, parse_envelope, verify_request, verify_signature,
};
use serde_json::{Value, json};

fn ids(body: &Value) -> Vec<u64> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn lists_filter_and_sort_in_both_documented_dialects() {
    let sim = simulator(200, 100_000).await;
    let (_, _, all) = api(&sim, "GET", "products?per_page=100&page=2", None).await;
    assert_eq!(
        all["meta"],
        json!({"current_page": 2, "last_page": 2, "per_page": 100, "total": 200})
    );
    let (_, _, default_page) = api(&sim, "GET", "products", None).await;
    assert_eq!(
        default_page["data"].as_array().unwrap().len(),
        15,
        "default per_page is 15"
    );

    for query in ["sort=price&order=desc", "sort_by=price&sort_order=desc"] {
        let (status, _, body) = api(&sim, "GET", &format!("products?per_page=100&{query}"), None).await;
        assert_eq!(status, 200);
        let prices: Vec<rust_decimal::Decimal> = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["price"].as_str().unwrap().parse().unwrap())
            .collect();
        assert!(
            prices.windows(2).all(|w| w[0] >= w[1]),
            "{query}: not sorted by price desc"
        );
    }
    let (_, _, active_digital) = api(&sim, "GET", "products?per_page=100&type=digital&is_active=true", None).await;
    assert!(
        active_digital["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["type"] == "digital" && p["is_active"] == true)
    );
    let (_, _, by_slug) = api(&sim, "GET", "products?per_page=100&category=ranks", None).await;
    let (_, _, by_id) = api(&sim, "GET", "products?per_page=100&category_id=1", None).await;
    assert_eq!(ids(&by_slug), ids(&by_id));
    assert!(!ids(&by_slug).is_empty());
    let (_, _, found) = api(&sim, "GET", "products?search=product%2017", None).await;
    assert_eq!(ids(&found)[0], 17);
    for bad in [
        "sort=colour",
        "order=sideways",
        "per_page=0",
        "page=abc",
        "type=food",
        "is_active=maybe",
    ] {
        let (status, _, body) = api(&sim, "GET", &format!("products?{bad}"), None).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (422, Some("VALIDATION_ERROR")),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn oversized_pages_are_clamped_or_refused_as_configured() {
    let sim = simulator(150, 100_000).await;
    let (_, _, clamped) = api(&sim, "GET", "products?per_page=500", None).await;
    assert_eq!(clamped["meta"]["per_page"], 100);
    sim.control()
        .set_settings(&Settings {
            reject_oversized_pages: true,
            ..Settings::default()
        })
        .await;
    let (status, _, refused) = api(&sim, "GET", "products?per_page=500", None).await;
    assert_eq!(status, 422);
    assert!(refused["errors"]["per_page"].is_array());
}

#[tokio::test]
async fn responses_carry_rate_limit_headers_and_429s_say_when_to_come_back() {
    let sim = simulator_with(SimConfig {
        products: 3,
        rpm: 3,
        ..SimConfig::default()
    })
    .await;
    for remaining in [2, 1, 0] {
        let (status, headers, _) = api(&sim, "GET", "products/1", None).await;
        assert_eq!(status, 200);
        assert_eq!(headers["x-ratelimit-limit"], "3");
        assert_eq!(headers["x-ratelimit-remaining"], remaining.to_string().as_str());
    }
    let (status, headers, body) = api(&sim, "GET", "products/1", None).await;
    assert_eq!(status, 429);
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_eq!(body["retry_after"], retry_after);
    assert!(headers.contains_key("x-ratelimit-reset"));
    assert_eq!(body["success"], false);
}

#[tokio::test]
async fn errors_use_the_documented_envelope() {
    let sim = simulator(3, 100_000).await;
    let (status, _, body) = api(&sim, "GET", "products/999", None).await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"success": false, "error": "Not Found", "message": "Product not found"})
        )
    );
    let response = reqwest::get(format!("{}/api/external/v1/products", sim.store_url()))
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let (status, _, body) = api(&sim, "PUT", "products/1", Some(json!({"price": "1.00"}))).await;
    assert_eq!(status, 405, "writes are off by default: {body}");
}

#[tokio::test]
async fn a_catalog_of_100000_products_is_served_page_by_page() {
    let sim = simulator(0, 100_000).await;
    sim.control().seed(100_000, 9).await;
    let (_, _, last) = api(
        &sim,
        "GET",
        "products?per_page=100&page=1000&sort=created_at&order=asc",
        None,
    )
    .await;
    assert_eq!(last["meta"]["last_page"], 1000);
    assert_eq!(ids(&last), (99_901..=100_000).collect::<Vec<_>>());
    let (_, _, cheapest) = api(&sim, "GET", "products?per_page=5&sort=price&order=asc", None).await;
    assert_eq!(cheapest["data"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn the_webhooks_api_creates_lists_updates_tests_and_deletes() {
    let sim = simulator(3, 100_000).await;
    let (receiver, url) = Receiver::start().await;
    let (id, secret) = register(&sim, &url, &["product.updated"]).await;
    assert!(secret.starts_with("whsec_") && secret.len() > 20, "{secret}");
    let (_, _, listed) = api(&sim, "GET", "webhooks", None).await;
    assert_eq!(listed["data"][0]["url"], url.as_str());
    assert!(
        listed["data"][0].get("secret").is_none(),
        "the secret is shown only at creation"
    );
    assert!(listed.get("meta").is_none());
    let (_, _, one) = api(&sim, "GET", &format!("webhooks/{id}"), None).await;
    assert!(one["data"].get("secret").is_none());

    let (status, _, bad) = api(
        &sim,
        "POST",
        "webhooks",
        Some(json!({"url": "not a url", "events": ["product.sold"]})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(bad["errors"]["url"][0], "The url must be a valid URL.");
    assert_eq!(bad["errors"]["events.0"][0], "The selected events.0 is invalid.");

    let (status, _, _) = api(&sim, "POST", &format!("webhooks/{id}/test"), None).await;
    assert_eq!(status, 200);
    let got = receiver.wait_for(1).await;
    let secrets = WebhookSecrets::parse_list(&secret).unwrap();
    verify_request(&secrets, &got[0].headers, &got[0].body).expect("test delivery is signed");

    let (status, _, _) = api(
        &sim,
        "PUT",
        &format!("webhooks/{id}"),
        Some(json!({"is_active": false})),
    )
    .await;
    assert_eq!(status, 200);
    sim.control().update_product(1, json!({"name": "Quiet"}), false).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.received().len(), 1, "an inactive webhook got a delivery");
    let (status, _, deleted) = api(&sim, "DELETE", &format!("webhooks/{id}"), None).await;
    assert_eq!(
        (status, deleted["message"].as_str()),
        (200, Some("Webhook deleted successfully"))
    );
    let (status, _, _) = api(&sim, "GET", &format!("webhooks/{id}"), None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn deliveries_in_every_documented_shape_verify_and_parse() {
    let sim = simulator(5, 100_000).await;
    let (receiver, url) = Receiver::start().await;
    let (_, secret) = register(&sim, &url, &["product.created", "product.updated", "product.deleted"]).await;
    let secrets = WebhookSecrets::parse_list(&secret).unwrap();
    let mut expected = 0;
    for family in [HeaderFamily::Pixlpay, HeaderFamily::Webhook] {
        for envelope in [EnvelopeVariant::V3, EnvelopeVariant::V1, EnvelopeVariant::V1b] {
            sim.control()
                .set_settings(&Settings {
                    header_family: family,
                    envelope,
                    ..Settings::default()
                })
                .await;
            sim.control()
                .update_product(2, json!({"name": format!("{family:?} {envelope:?}")}), false)
                .await;
            expected += 1;
            let got = receiver.wait_for(expected).await;
            let delivery = &got[expected - 1];
            let sig_header = match family {
                HeaderFamily::Pixlpay => "x-pixlpay-signature",
                HeaderFamily::Webhook => "x-webhook-signature",
            };
            assert!(delivery.headers.contains_key(sig_header), "{family:?}");
            assert_eq!(delivery.headers["user-agent"], "Prism-Webhooks/1.0");
            verify_request(&secrets, &delivery.headers, &delivery.body).expect("signature verifies");
            match parse_envelope(&delivery.body, &delivery.headers).expect("envelope parses") {
                WebhookEvent::Product(e) => {
                    assert_eq!(
                        (e.kind, e.product_id),
                        (ProductEventKind::Updated, 2),
                        "{family:?} {envelope:?}"
                    );
                    assert!(e.delivery_id.is_some(), "{family:?} {envelope:?}: no delivery id");
                    assert!(e.created_at.is_some());
                }
                other => panic!("{other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn signatures_hold_only_for_the_exact_body_and_a_known_secret() {
    let sim = simulator(5, 100_000).await;
    let (receiver, url) = Receiver::start().await;
    let (_, old_secret) = register(&sim, &url, &["product.updated"]).await;
    let (_, new_secret) = register(&sim, &url, &["product.updated"]).await;
    sim.control().update_product(3, json!({"price": "3.33"}), false).await;
    let got = receiver.wait_for(2).await;
    // Rotation: the receiver that knows both secrets accepts both deliveries, and says which secret matched.
    let both = WebhookSecrets::parse_list(&format!("{new_secret},{old_secret}")).unwrap();
    let mut matched: Vec<usize> = got
        .iter()
        .map(|d| verify_request(&both, &d.headers, &d.body).unwrap())
        .collect();
    matched.sort();
    assert_eq!(matched, vec![0, 1]);
    // Once the old secret is retired, its delivery is refused.
    let only_new = WebhookSecrets::parse_list(&new_secret).unwrap();
    let results: Vec<_> = got
        .iter()
        .map(|d| verify_request(&only_new, &d.headers, &d.body))
        .collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(results.contains(&Err(SignatureError::Mismatch)));

    let delivery = got
        .iter()
        .find(|d| verify_request(&only_new, &d.headers, &d.body).is_ok())
        .unwrap();
    let signature = delivery.headers["x-pixlpay-signature"].as_bytes();
    assert_eq!(
        verify_signature(&only_new, signature.to_ascii_uppercase().as_slice(), &delivery.body),
        Ok(0)
    );
    let mut tampered = delivery.body.to_vec();
    let at = tampered.iter().position(|b| *b == b'3').unwrap();
    tampered[at] = b'4';
    assert_eq!(
        verify_signature(&only_new, signature, &tampered),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_signature(&only_new, &signature[..40], &delivery.body),
        Err(SignatureError::Malformed("not 64 hex characters"))
    );
    let wrong = WebhookSecrets::new(vec![Secret::new("whsec_somebody_else")]).unwrap();
    assert_eq!(
        verify_signature(&wrong, signature, &delivery.body),
        Err(SignatureError::Mismatch)
    );
}

#[tokio::test]
async fn failed_deliveries_follow_the_1_5_30_minute_schedule_then_stop() {
    // Time scale 0.001: the schedule's 60 s, 300 s and 1800 s become 60 ms, 300 ms and 1.8 s.
    let sim = simulator(5, 100_000).await;
    let (receiver, url) = Receiver::start().await;
    register(&sim, &url, &["product.updated"]).await;

    receiver.answer_next(&[500, 503]);
    let started = Instant::now();
    sim.control()
        .update_product(1, json!({"name": "Third time lucky"}), false)
        .await;
    let got = receiver.wait_for(3).await;
    assert!(
        started.elapsed() >= Duration::from_millis(360),
        "retries came too soon: {:?}",
        started.elapsed()
    );
    let ids: Vec<_> = got.iter().map(|d| d.headers["x-pixlpay-delivery-id"].clone()).collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "a retry keeps its delivery id");

    receiver.answer_next(&[500, 500, 500, 500]);
    sim.control()
        .update_product(2, json!({"name": "Never lands"}), false)
        .await;
    receiver.wait_for(7).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = sim.control().deliveries().await;
    let dropped = log.iter().find(|d| d["product_id"] == 2).unwrap();
    assert_eq!(
        (dropped["attempts"].as_array().unwrap().len(), &dropped["delivered"]),
        (4, &json!(false))
    );
    assert_eq!(receiver.received().len(), 7, "a fifth attempt was made");
}

#[tokio::test]
async fn deliveries_can_be_duplicated_and_reordered_on_demand() {
    let sim = simulator(5, 100_000).await;
    let (receiver, url) = Receiver::start().await;
    register(&sim, &url, &["product.updated", "product.deleted"]).await;

    sim.control()
        .set_faults(&Faults {
            duplicate_webhooks: true,
            ..Faults::default()
        })
        .await;
    sim.control().update_product(1, json!({"name": "Twice"}), false).await;
    let got = receiver.wait_for(2).await;
    assert_eq!(
        got[0].body, got[1].body,
        "a duplicate is byte for byte the same delivery"
    );

    sim.control()
        .set_faults(&Faults {
            reorder_webhooks: true,
            ..Faults::default()
        })
        .await;
    sim.control().update_product(4, json!({"name": "Going"}), false).await;
    sim.control().delete_product(4, false).await;
    assert_eq!(sim.control().flush_webhooks().await, 2);
    let got = receiver.wait_for(4).await;
    let events: Vec<String> = got[2..]
        .iter()
        .map(|d| match parse_envelope(&d.body, &d.headers).unwrap() {
            WebhookEvent::Product(e) => e.kind.as_str().to_owned(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(events, ["product.deleted", "product.updated"]);
}

#[tokio::test]
async fn silent_changes_send_no_webhook() {
    let sim = simulator(5, 100_000).await;
    let (receiver, url) = Receiver::start().await;
    register(&sim, &url, &["product.updated"]).await;
    sim.control().update_product(1, json!({"name": "Hush"}), true).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn the_pixlpay_sim_binary_serves_the_api() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pixlpay-sim"))
        .args(["--port", "0", "--products", "12", "--token", "sk_test_cli"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("pixlpay-sim starts");
    // It prints one line once it listens; reading it blocks this test's thread only briefly.
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("prints its URL")
        .to_owned();
    let response = reqwest::Client::new()
        .get(format!("{url}/api/external/v1/products?per_page=100"))
        .bearer_auth("sk_test_cli")
        .send()
        .await;
    child.kill().unwrap();
    child.wait().unwrap();
    let body: Value = response.unwrap().json().await.unwrap();
    assert_eq!(body["meta"]["total"], 12);
}
