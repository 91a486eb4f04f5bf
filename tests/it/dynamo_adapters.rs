//! The DynamoDB adapters against two independent emulators, MiniStack (`AWS_ENDPOINT_URL`) and moto server
//! (`MOTO_ENDPOINT_URL`): every behaviour the engine relies on must hold on both.

use std::collections::HashSet;

use pixlpay_sim::local_aws::{sdk_config, unique_name};
use pixlpay_sync::aws::{DynamoProductStore, DynamoSyncState, create_products_table, create_state_table};
use pixlpay_sync::product::Product;
use pixlpay_sync::sync::{
    AuditAction, AuditEntry, AuditLog, CountDelta, ErrorRecord, HealthLog, OutOfSyncReason, ProductItem, ProductStore,
    RunRecord, RunStatus, SyncState, WriteContext, WriteSource,
};
use serde_json::json;
use time::OffsetDateTime;

fn endpoints() -> Vec<(&'static str, String)> {
    let ministack = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (MiniStack) is not set: run ./dev test");
    let moto = std::env::var("MOTO_ENDPOINT_URL").expect("MOTO_ENDPOINT_URL (moto server) is not set: run ./dev test");
    vec![("ministack", ministack), ("moto", moto)]
}

async fn tables(endpoint: &str) -> (DynamoProductStore, DynamoSyncState) {
    let config = sdk_config(Some(endpoint)).await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let (products, state) = (unique_name("adapter-products"), unique_name("adapter-state"));
    create_products_table(&client, &products).await.unwrap();
    create_state_table(&client, &state).await.unwrap();
    (
        DynamoProductStore::new(client.clone(), products, &state),
        DynamoSyncState::new(client, state),
    )
}

fn item(id: u64, price: &str, previous_version: Option<u64>) -> ProductItem {
    let product = Product::from_json(json!({
        "id": id, "name": format!("P{id}"), "price": price, "updated_at": "2025-03-01T10:00:00.5Z",
        "compare_price": null, "images": [{"url": "https://cdn.pixlpay.net/x.png", "is_primary": true}],
        "unknown_field": {"kept": [1, 2]}
    }))
    .unwrap();
    let now = OffsetDateTime::now_utc();
    ProductItem::new(
        &product,
        product.content_hash(),
        WriteSource::FullSync,
        now,
        now,
        previous_version,
    )
}

#[tokio::test]
async fn conditional_puts_allow_exactly_one_writer_per_version() {
    for (name, endpoint) in endpoints() {
        let (store, state) = tables(&endpoint).await;
        let first = item(1, "9.990", None);
        let created = CountDelta::between(None, &first);
        assert!(
            store.put_if_version(&first, None, created).await.unwrap(),
            "{name}: create"
        );
        assert!(
            !store.put_if_version(&first, None, created).await.unwrap(),
            "{name}: a second create must lose"
        );
        let second = item(1, "10.00", Some(1));
        assert!(
            store
                .put_if_version(&second, Some(1), CountDelta::default())
                .await
                .unwrap(),
            "{name}: update from version 1"
        );
        assert!(
            !store
                .put_if_version(&item(1, "11.00", Some(1)), Some(1), CountDelta::default())
                .await
                .unwrap(),
            "{name}: stale version must lose"
        );
        let status = state.status().await.unwrap();
        assert_eq!(
            (&status["active_products"], &status["deleted_products"]),
            (&json!(1), &json!(0)),
            "{name}: the losing create moved no count: {status}"
        );
        let stored = store.get(1).await.unwrap().unwrap();
        assert_eq!(stored, second, "{name}: the item round-trips exactly");
        assert_eq!(stored.price.to_string(), "10.00", "{name}");
        assert_eq!(stored.extra["unknown_field"], json!({"kept": [1, 2]}), "{name}");
    }
}

#[tokio::test]
async fn batch_reads_cover_more_than_one_batch_and_skip_missing_ids() {
    for (name, endpoint) in endpoints() {
        let (store, _) = tables(&endpoint).await;
        for id in 1..=230 {
            let new = item(id, "1.00", None);
            store
                .put_if_version(&new, None, CountDelta::between(None, &new))
                .await
                .unwrap();
        }
        let mut ids: Vec<u64> = (1..=250).collect();
        ids.push(7); // duplicates are fine
        let found = store.get_many(&ids).await.unwrap();
        assert_eq!(found.len(), 230, "{name}");
        assert!(found.contains_key(&230) && !found.contains_key(&231), "{name}");
    }
}

#[tokio::test]
async fn active_ids_leave_out_soft_deleted_products() {
    for (name, endpoint) in endpoints() {
        let (store, state) = tables(&endpoint).await;
        for id in 1..=5 {
            let new = item(id, "1.00", None);
            store
                .put_if_version(&new, None, CountDelta::between(None, &new))
                .await
                .unwrap();
        }
        let stored = store.get(3).await.unwrap().unwrap();
        let gone = stored.soft_deleted(WriteSource::FullSync, OffsetDateTime::now_utc());
        let delta = CountDelta::between(Some(&stored), &gone);
        assert!(store.put_if_version(&gone, Some(1), delta).await.unwrap());
        assert_eq!(store.active_ids().await.unwrap(), HashSet::from([1, 2, 4, 5]), "{name}");
        let status = state.status().await.unwrap();
        assert_eq!(
            (&status["active_products"], &status["deleted_products"]),
            (&json!(4), &json!(1)),
            "{name}: counts moved with the writes: {status}"
        );
    }
}

#[tokio::test]
async fn the_lock_admits_one_owner_until_it_expires() {
    for (name, endpoint) in endpoints() {
        let (_, state) = tables(&endpoint).await;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        assert!(state.acquire_lock("a", now + 60).await.unwrap(), "{name}");
        assert!(
            state.acquire_lock("a", now + 60).await.unwrap(),
            "{name}: the owner may renew"
        );
        assert!(
            !state.acquire_lock("b", now + 60).await.unwrap(),
            "{name}: a second owner must wait"
        );
        state.release_lock("b").await.unwrap(); // not b's: no effect
        assert!(!state.acquire_lock("b", now + 60).await.unwrap(), "{name}");
        state.release_lock("a").await.unwrap();
        assert!(state.acquire_lock("b", now - 1).await.unwrap(), "{name}: released");
        assert!(
            state.acquire_lock("c", now + 60).await.unwrap(),
            "{name}: b's lock had expired"
        );
    }
}

#[tokio::test]
async fn checkpoints_and_the_unfinished_run_pointer_survive_between_invocations() {
    for (name, endpoint) in endpoints() {
        let (_, state) = tables(&endpoint).await;
        assert!(state.unfinished_run().await.unwrap().is_none(), "{name}");
        let mut run = RunRecord::new("fs-20260101T000000Z-000001".into(), "test", OffsetDateTime::now_utc());
        state.save_run(&run).await.unwrap();
        run.next_page = 2;
        state.checkpoint(&run, 1, &[1, 2, 3]).await.unwrap();
        run.next_page = 3;
        state.checkpoint(&run, 2, &[4, 5]).await.unwrap();
        let resumed = state.unfinished_run().await.unwrap().expect("unfinished run found");
        assert_eq!(
            (resumed.run_id.as_str(), resumed.next_page),
            (run.run_id.as_str(), 3),
            "{name}"
        );
        assert_eq!(
            state.seen_ids(&run.run_id).await.unwrap(),
            HashSet::from([1, 2, 3, 4, 5]),
            "{name}"
        );
        run.status = RunStatus::Completed;
        state.save_run(&run).await.unwrap();
        state.record_full_sync(&run).await.unwrap();
        assert!(
            state.unfinished_run().await.unwrap().is_none(),
            "{name}: a completed run is not resumed"
        );
        assert_eq!(
            state.status().await.unwrap()["last_full_sync"]["run_id"],
            run.run_id.as_str(),
            "{name}"
        );
    }
}

#[tokio::test]
async fn audit_entries_come_back_newest_first_per_product_past_one_batch() {
    for (name, endpoint) in endpoints() {
        let (_, state) = tables(&endpoint).await;
        let context = WriteContext {
            run_id: Some("fs-1".into()),
            delivery_id: None,
        };
        let old = item(1, "1.00", None);
        let new = item(1, "2.00", Some(1));
        let base = OffsetDateTime::now_utc();
        // 30 entries for product 1 (more than one BatchWriteItem), one for product 2.
        let mut entries: Vec<AuditEntry> = (0..30)
            .map(|n| {
                let mut e = AuditEntry::new(
                    AuditAction::Updated,
                    1,
                    WriteSource::FullSync,
                    &context,
                    Some(&old),
                    Some(&new),
                );
                e.at = base + time::Duration::milliseconds(n);
                e
            })
            .collect();
        entries.push(AuditEntry::new(
            AuditAction::Created,
            2,
            WriteSource::Webhook,
            &context,
            None,
            Some(&new),
        ));
        state.append(&entries).await.unwrap();
        let got = state.audit_entries(1, 50).await.unwrap();
        assert_eq!(got.len(), 30, "{name}");
        assert!(got.windows(2).all(|w| w[0].at > w[1].at), "{name}: newest first");
        assert_eq!(got[0], entries[29], "{name}: round trip");
        assert_eq!(got[0].changed_fields, ["price"], "{name}");
        assert_eq!(state.audit_entries(1, 5).await.unwrap().len(), 5, "{name}");
        assert_eq!(
            state.audit_entries(2, 50).await.unwrap()[0].action,
            AuditAction::Created,
            "{name}"
        );
        assert!(state.audit_entries(3, 50).await.unwrap().is_empty(), "{name}");
    }
}

#[tokio::test]
async fn out_of_sync_markers_are_counted_as_they_come_and_go_and_errors_read_newest_first() {
    for (name, endpoint) in endpoints() {
        let (_, state) = tables(&endpoint).await;
        let count = |status: serde_json::Value| status["out_of_sync_products"].as_i64().unwrap_or(0);
        assert_eq!(state.note_pending(7, "product.updated").await.unwrap(), 1, "{name}");
        assert_eq!(state.note_pending(7, "product.updated").await.unwrap(), 2, "{name}");
        state
            .note_out_of_sync(8, OutOfSyncReason::Invalid, "price is not a number")
            .await
            .unwrap();
        // A failure on 7 keeps its sequence; a second mark of 8 does not count it twice.
        state
            .note_out_of_sync(7, OutOfSyncReason::WebhookFailed, "500")
            .await
            .unwrap();
        state
            .note_out_of_sync(8, OutOfSyncReason::Invalid, "still")
            .await
            .unwrap();
        assert_eq!(count(state.status().await.unwrap()), 2, "{name}");
        let marker = state.out_of_sync_marker(7).await.unwrap().unwrap();
        assert_eq!(
            (marker.reason, marker.seq),
            (OutOfSyncReason::WebhookFailed, 2),
            "{name}"
        );
        let mut all: Vec<_> = state
            .out_of_sync()
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.product_id)
            .collect();
        all.sort_unstable();
        assert_eq!(all, [7, 8], "{name}");
        assert!(
            !state.clear_out_of_sync(7, 1).await.unwrap(),
            "{name}: newer work is queued"
        );
        assert!(state.clear_out_of_sync(7, 2).await.unwrap(), "{name}");
        assert!(!state.clear_out_of_sync(7, 2).await.unwrap(), "{name}: already cleared");
        assert!(state.clear_out_of_sync(8, 0).await.unwrap(), "{name}");
        assert_eq!(count(state.status().await.unwrap()), 0, "{name}");
        assert!(state.out_of_sync_marker(7).await.unwrap().is_none(), "{name}");

        let context = WriteContext {
            run_id: Some("run-1".into()),
            delivery_id: None,
        };
        // Distinct times: two records of the same microsecond have no order to check.
        let start = OffsetDateTime::now_utc();
        let errors: Vec<ErrorRecord> = (0..30)
            .map(|i| ErrorRecord {
                at: start + time::Duration::milliseconds(i as i64),
                ..ErrorRecord::new(WriteSource::FullSync, &context, Some(i), format!("error {i}"))
            })
            .collect();
        state.record_errors(&errors).await.unwrap();
        let recent = state.recent_errors(20).await.unwrap();
        assert_eq!(recent.len(), 20, "{name}");
        assert_eq!(recent[0].reason, "error 29", "{name}: newest first");
        assert_eq!(recent[19].reason, "error 10", "{name}");
    }
}
