//! The full sync's part in sync health, on in-memory ports: product counts moved with the writes, markers cleared
//! for what a run stores and set for what it cannot, and an error listed once, not once per run.

use super::fakes::{FakeCatalog, Refusal, completed, memory_sync, options, product};
use super::{CountDelta, HealthLog, OutOfSyncReason};

#[tokio::test]
async fn the_counts_follow_creations_deletions_and_restores() {
    let catalog = FakeCatalog::with(30);
    let sync = memory_sync(catalog.clone(), 10);
    completed(sync.run(&options("a")).await.unwrap());
    let counts = || *sync.store.counts.lock().unwrap();
    assert_eq!(counts(), CountDelta { active: 30, deleted: 0 });
    catalog.remove(4);
    catalog.remove(9);
    catalog.put(product(31, "1.00", 5));
    completed(sync.run(&options("b")).await.unwrap());
    assert_eq!(counts(), CountDelta { active: 29, deleted: 2 });
    catalog.put(product(4, "1.50", 20));
    completed(sync.run(&options("c")).await.unwrap());
    assert_eq!(counts(), CountDelta { active: 30, deleted: 1 });
    let items = sync.store.items.lock().unwrap();
    let active = items.values().filter(|i| !i.deleted).count() as i64;
    assert_eq!(
        (active, items.len() as i64 - active),
        (30, 1),
        "the counts equal the table"
    );
}

#[tokio::test]
async fn a_run_clears_what_it_stores_and_marks_what_it_cannot() {
    let catalog = FakeCatalog::with(30);
    let sync = memory_sync(catalog.clone(), 10);
    completed(sync.run(&options("a")).await.unwrap());
    let state = &sync.state;
    state
        .note_out_of_sync(3, OutOfSyncReason::WebhookFailed, "500")
        .await
        .unwrap();
    state.note_pending(5, "product.updated").await.unwrap();
    state
        .note_out_of_sync(6, OutOfSyncReason::PushPending, "price")
        .await
        .unwrap();
    // Product 7 disappears from the pages, and its confirming GET fails: it cannot be called deleted.
    catalog.remove(7);
    catalog.refusals.lock().unwrap().insert(7, Refusal::ServerError);
    completed(sync.run(&options("b")).await.unwrap());
    let reasons = || {
        state
            .markers
            .lock()
            .unwrap()
            .iter()
            .map(|(id, m)| (*id, m.reason))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        reasons(),
        [
            (6, OutOfSyncReason::PushPending),
            (7, OutOfSyncReason::MissingFromPixlpay)
        ],
        "3 and 5 were stored by the run; a pending push is not Pixlpay's to settle"
    );
    let errors = state.errors.lock().unwrap().clone();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].product_id, Some(7));
    assert!(errors[0].run_id.is_some());
    // The same problem next run: still marked, not listed again.
    completed(sync.run(&options("c")).await.unwrap());
    assert_eq!(reasons().len(), 2);
    assert_eq!(state.errors.lock().unwrap().len(), 1);
    // Pixlpay answers again: the 404 is confirmed, the product deleted, the marker gone.
    catalog.refusals.lock().unwrap().clear();
    completed(sync.run(&options("d")).await.unwrap());
    assert_eq!(reasons(), [(6, OutOfSyncReason::PushPending)]);
    assert!(sync.store.items.lock().unwrap()[&7].deleted);
}

#[tokio::test]
async fn a_refused_deletion_leaves_every_candidate_out_of_sync_with_one_error() {
    let catalog = FakeCatalog::with(30);
    let sync = memory_sync(catalog.clone(), 10);
    completed(sync.run(&options("a")).await.unwrap());
    for id in 1..=20 {
        catalog.remove(id);
    }
    let run = completed(sync.run(&options("b")).await.unwrap());
    assert!(run.deletion_refused.is_some());
    let markers = sync.state.markers.lock().unwrap().clone();
    assert_eq!(markers.len(), 20);
    assert!(
        markers
            .values()
            .all(|m| m.reason == OutOfSyncReason::MissingFromPixlpay)
    );
    let errors = sync.state.errors.lock().unwrap().clone();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].product_id, None);
}
