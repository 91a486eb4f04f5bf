//! The write rules of design.md §5 as pure functions: what to do with a product read from Pixlpay given what the table
//! holds. Every writer (full sync, product worker, external sync) decides here, then writes conditionally on the
//! version it decided against, re-deciding if that version moved.

use super::item::ProductItem;

/// What a change is called in events and audit items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Created,
    Updated,
    Deleted,
    Restored,
}

impl Change {
    /// The EventBridge `detail-type`.
    pub fn detail_type(self) -> &'static str {
        match self {
            Self::Created => "ProductCreated",
            Self::Updated => "ProductUpdated",
            Self::Deleted => "ProductDeleted",
            Self::Restored => "ProductRestored",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Write(Change),
    /// Same content hash: no write, no event (rule 3).
    Unchanged,
    /// The table holds a newer state than this read, or a deletion confirmed after it (rule 2).
    Stale,
}

/// A product as just read from Pixlpay: its `updated_at`, when it was read, and its hash.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    pub updated_at_us: i64,
    pub fetched_at_us: i64,
    pub content_hash: &'a str,
}

/// Decides an upsert. Reads are ordered by (`updated_at`, read time): Pixlpay stamps whole seconds, so two states of
/// one product can share an `updated_at`, and then the later read is the newer truth.
pub fn decide_upsert(stored: Option<&ProductItem>, seen: Observed<'_>) -> Decision {
    let Some(stored) = stored else {
        return Decision::Write(Change::Created);
    };
    let newer_or_same_read =
        (seen.updated_at_us, seen.fetched_at_us) >= (stored.pixlpay_updated_at_us, stored.fetched_at_us);
    if stored.deleted {
        // Revive only on evidence of life after the deletion: a newer product state, or a read made after the 404
        // that confirmed the deletion. A page read before a confirmed deletion must not bring the product back.
        let deleted_at_us = stored.deleted_at.map(super::item::micros).unwrap_or(i64::MIN);
        let alive_after_delete =
            seen.updated_at_us > stored.pixlpay_updated_at_us || seen.fetched_at_us > deleted_at_us;
        return if alive_after_delete {
            Decision::Write(Change::Restored)
        } else {
            Decision::Stale
        };
    }
    if stored.content_hash == seen.content_hash {
        return Decision::Unchanged;
    }
    if newer_or_same_read {
        Decision::Write(Change::Updated)
    } else {
        Decision::Stale
    }
}

/// Decides a soft delete after Pixlpay answered 404 at `confirmed_at_us`. A state stored from a read made after that
/// 404 (a webhook that raced us) wins.
pub fn decide_delete(stored: &ProductItem, confirmed_at_us: i64) -> Decision {
    if stored.deleted {
        Decision::Unchanged
    } else if stored.fetched_at_us > confirmed_at_us {
        Decision::Stale
    } else {
        Decision::Write(Change::Deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::product::Product;
    use crate::sync::item::WriteSource;
    use proptest::prelude::*;
    use serde_json::json;
    use time::OffsetDateTime;

    const SECOND: i64 = 1_000_000;

    fn stored(updated_s: i64, fetched_s: i64, hash: &str) -> ProductItem {
        let product = Product::from_json(json!({
            "id": 1, "name": "A", "price": "1.00",
            "updated_at": crate::timestamp::format(OffsetDateTime::from_unix_timestamp(updated_s).unwrap())
        }))
        .unwrap();
        let fetched = OffsetDateTime::from_unix_timestamp(fetched_s).unwrap();
        ProductItem::new(&product, hash.into(), WriteSource::FullSync, fetched, fetched, None)
    }

    fn seen(updated_s: i64, fetched_s: i64, hash: &str) -> Observed<'_> {
        Observed {
            updated_at_us: updated_s * SECOND,
            fetched_at_us: fetched_s * SECOND,
            content_hash: hash,
        }
    }

    #[test]
    fn a_new_product_is_created() {
        assert_eq!(decide_upsert(None, seen(10, 20, "h")), Decision::Write(Change::Created));
    }

    #[test]
    fn the_same_hash_writes_nothing() {
        assert_eq!(
            decide_upsert(Some(&stored(10, 20, "h")), seen(10, 30, "h")),
            Decision::Unchanged
        );
    }

    #[test]
    fn older_never_overwrites_newer() {
        // The webhook stored updated_at 20; the full sync read the product when it was at 10.
        assert_eq!(
            decide_upsert(Some(&stored(20, 25, "new")), seen(10, 30, "old")),
            Decision::Stale
        );
        assert_eq!(
            decide_upsert(Some(&stored(10, 25, "old")), seen(20, 26, "new")),
            Decision::Write(Change::Updated)
        );
    }

    #[test]
    fn within_one_second_the_later_read_wins() {
        let item = stored(10, 25, "first");
        assert_eq!(
            decide_upsert(Some(&item), seen(10, 26, "second")),
            Decision::Write(Change::Updated)
        );
        assert_eq!(
            decide_upsert(Some(&item), seen(10, 24, "earlier read")),
            Decision::Stale
        );
    }

    #[test]
    fn a_deleted_product_is_restored_only_on_evidence_of_life() {
        let mut item = stored(10, 20, "h");
        item = item.soft_deleted(WriteSource::FullSync, OffsetDateTime::from_unix_timestamp(30).unwrap());
        // Read before the 404 that deleted it, same state: stays deleted.
        assert_eq!(decide_upsert(Some(&item), seen(10, 25, "h")), Decision::Stale);
        // Read after the deletion, or a newer state: it is back.
        assert_eq!(
            decide_upsert(Some(&item), seen(10, 31, "h")),
            Decision::Write(Change::Restored)
        );
        assert_eq!(
            decide_upsert(Some(&item), seen(11, 25, "h2")),
            Decision::Write(Change::Restored)
        );
    }

    #[test]
    fn a_delete_loses_to_a_read_made_after_the_404() {
        let item = stored(10, 40, "h");
        assert_eq!(decide_delete(&item, 35 * SECOND), Decision::Stale);
        assert_eq!(decide_delete(&item, 45 * SECOND), Decision::Write(Change::Deleted));
        let deleted = item.soft_deleted(WriteSource::Webhook, OffsetDateTime::from_unix_timestamp(50).unwrap());
        assert_eq!(decide_delete(&deleted, 60 * SECOND), Decision::Unchanged);
    }

    proptest! {
        /// Whatever order two reads of one product arrive in, applying both leaves the newer one stored.
        #[test]
        fn any_order_of_two_reads_ends_with_the_newer(
            u1 in 0i64..100, f1 in 0i64..100, u2 in 0i64..100, f2 in 0i64..100,
        ) {
            prop_assume!((u1, f1) != (u2, f2));
            let reads = [(u1, f1, format!("h{u1}-{f1}")), (u2, f2, format!("h{u2}-{f2}"))];
            let newest = reads.iter().max_by_key(|(u, f, _)| (*u, *f)).unwrap().2.clone();
            for order in [[0usize, 1], [1, 0]] {
                let mut table: Option<ProductItem> = None;
                for i in order {
                    let (u, f, h) = &reads[i];
                    if let Decision::Write(_) = decide_upsert(table.as_ref(), seen(*u, *f, h)) {
                        table = Some(stored(*u, *f, h));
                    }
                }
                prop_assert_eq!(&table.unwrap().content_hash, &newest);
            }
        }
    }
}
