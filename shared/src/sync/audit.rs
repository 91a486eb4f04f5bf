//! The audit trail: one entry per thing the sync did to a product (or refused to do), so "why does the table say
//! this?" always has an answer. Entries are built by the writer (and the full sync for invalid products) and
//! appended by the caller through [`AuditLog`](super::AuditLog).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::decide::Change;
use super::events::WriteContext;
use super::item::{ProductItem, WriteSource};
use crate::product::ProductId;
use crate::timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    Created,
    Updated,
    Deleted,
    Restored,
    /// A read older than the stored state: the write was refused (rule 2).
    Stale,
    /// Pixlpay served the product but it failed validation; nothing was written.
    Invalid,
    /// Two sides changed the product; see `reason` for how it was resolved.
    Conflict,
    /// An external change won but Pixlpay writes are disabled: kept as a pending push, nothing changed in Pixlpay.
    PushPending,
}

impl From<Change> for AuditAction {
    fn from(change: Change) -> Self {
        match change {
            Change::Created => Self::Created,
            Change::Updated => Self::Updated,
            Change::Deleted => Self::Deleted,
            Change::Restored => Self::Restored,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub product_id: ProductId,
    #[serde(with = "timestamp::required")]
    pub at: OffsetDateTime,
    pub action: AuditAction,
    pub source: WriteSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_hash: Option<String>,
    /// Product fields whose stored value changed (for `stale`: those the refused read would have changed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed_fields: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl AuditEntry {
    pub fn new(
        action: AuditAction,
        product_id: ProductId,
        source: WriteSource,
        context: &WriteContext,
        old: Option<&ProductItem>,
        new: Option<&ProductItem>,
    ) -> Self {
        Self {
            product_id,
            at: OffsetDateTime::now_utc(),
            action,
            source,
            run_id: context.run_id.clone(),
            delivery_id: context.delivery_id.clone(),
            old_hash: old.map(|i| i.content_hash.clone()),
            new_hash: new.map(|i| i.content_hash.clone()),
            changed_fields: new.map(|n| changed_fields(old, n)).unwrap_or_default(),
            reason: None,
        }
    }

    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

/// The sync's own bookkeeping, which changes on every write and says nothing about the product.
const BOOKKEEPING: [&str; 7] = [
    "version",
    "synced_at",
    "fetched_at_us",
    "source",
    "content_hash",
    "pixlpay_updated_at_us",
    "external_id",
];

/// The product attributes that differ between `old` and `new` (all of them for a first write), by item attribute
/// name, sorted. Unknown Pixlpay fields are reported as `extra.<name>`.
pub fn changed_fields(old: Option<&ProductItem>, new: &ProductItem) -> Vec<String> {
    field_differences(old, new).into_iter().map(|d| d.field).collect()
}

/// One product attribute that differs between two items, with both values (`null` where absent).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldDifference {
    pub field: String,
    pub before: Value,
    pub after: Value,
}

/// What [`changed_fields`] names, with the values on each side.
pub fn field_differences(old: Option<&ProductItem>, new: &ProductItem) -> Vec<FieldDifference> {
    let as_map = |item: &ProductItem| match serde_json::to_value(item).expect("items serialise") {
        Value::Object(map) => map,
        _ => unreachable!("an item is an object"),
    };
    let new_map = as_map(new);
    let old_map = old.map(as_map).unwrap_or_default();
    let names: BTreeSet<&String> = new_map.keys().chain(old_map.keys()).collect();
    let difference = |field: String, before: Option<&Value>, after: Option<&Value>| FieldDifference {
        field,
        before: before.cloned().unwrap_or(Value::Null),
        after: after.cloned().unwrap_or(Value::Null),
    };
    let mut changed = Vec::new();
    for name in names {
        if BOOKKEEPING.contains(&name.as_str()) {
            continue;
        }
        let (before, after) = (old_map.get(name), new_map.get(name));
        if name == "extra" {
            let empty = serde_json::Map::new();
            let before = before.and_then(Value::as_object).unwrap_or(&empty);
            let after = after.and_then(Value::as_object).unwrap_or(&empty);
            let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
            changed.extend(
                keys.into_iter()
                    .filter(|k| before.get(*k) != after.get(*k))
                    .map(|k| difference(format!("extra.{k}"), before.get(k), after.get(k))),
            );
        } else if before != after {
            changed.push(difference(name.clone(), before, after));
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::fakes::product;
    use serde_json::json;

    fn item(price: &str, updated_s: i64) -> ProductItem {
        let p = product(1, price, updated_s);
        let now = OffsetDateTime::now_utc();
        ProductItem::new(&p, p.content_hash(), WriteSource::FullSync, now, now, None)
    }

    #[test]
    fn names_only_the_product_fields_that_changed() {
        let old = item("1.00", 0);
        let new = item("2.50", 10);
        assert_eq!(changed_fields(Some(&old), &new), ["pixlpay_updated_at", "price"]);
        assert!(changed_fields(Some(&old), &old).is_empty());
        let mut deleted = old.clone();
        deleted.deleted = true;
        deleted.version += 1;
        assert_eq!(changed_fields(Some(&old), &deleted), ["deleted"]);
        let mut extra = old.clone();
        extra.extra.insert("badge".into(), Value::from("new"));
        assert_eq!(changed_fields(Some(&old), &extra), ["extra.badge"]);
        let price = &field_differences(Some(&old), &new)[1];
        assert_eq!(
            (price.field.as_str(), &price.before, &price.after),
            ("price", &json!("1.00"), &json!("2.50"))
        );
        let first = changed_fields(None, &old);
        assert!(first.contains(&"name".to_owned()) && first.contains(&"price".to_owned()));
        assert!(!first.contains(&"version".to_owned()));
    }
}
