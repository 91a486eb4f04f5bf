//! Changes from external systems (`ExternalProductChanged` on the bus): parsed and validated here, then decided field
//! by field against Pixlpay's live product under a configurable policy. Pure: the external-sync handler reads,
//! writes and publishes around it.

use std::future::Future;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::events::ORIGIN;
use super::ports::StoreError;
use crate::pixlpay::ProductChanges;
use crate::product::{Product, ProductId};
use crate::timestamp;

/// The `detail-type` external systems publish.
pub const EXTERNAL_CHANGE: &str = "ExternalProductChanged";
/// The `detail-type` published when Pixlpay's value stands against an external change.
pub const CONFLICT_RESOLVED: &str = "ProductConflictResolved";

/// Who wins a field both sides changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictPolicy {
    /// The newer `updated_at` wins; on a tie Pixlpay's value stands (it is the catalog's source of truth, and its
    /// whole-second stamps cannot order two changes within one second).
    LastWriterWins,
    PixlpayWins,
    ExternalWins,
}

impl FromStr for ConflictPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "last_writer_wins" => Ok(Self::LastWriterWins),
            "pixlpay_wins" => Ok(Self::PixlpayWins),
            "external_wins" => Ok(Self::ExternalWins),
            other => Err(format!(
                "{other:?} is not a policy (last_writer_wins, pixlpay_wins, external_wins)"
            )),
        }
    }
}

/// A validated external change.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalChange {
    pub product_id: ProductId,
    pub changes: ProductChanges,
    pub updated_at: OffsetDateTime,
    pub origin: String,
    /// The external system's id for this change, if it sends one (carried into the audit trail and events).
    pub change_id: Option<String>,
}

/// What an inbound event is.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    Change(ExternalChange),
    /// Published by this bundle itself: never taken for an external change (no echo loops).
    OwnEcho,
}

/// Why an event was refused (it goes to the dead-letter queue with this reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidExternalChange(pub String);

fn invalid(reason: impl Into<String>) -> InvalidExternalChange {
    InvalidExternalChange(reason.into())
}

/// The fields an external system may change, as Pixlpay's (announced) write endpoint accepts them.
pub const WRITABLE_FIELDS: [&str; 6] = ["name", "description", "price", "compare_price", "is_active", "stock"];

/// Parses an EventBridge event (`detail-type`, `detail`) into an external change.
pub fn parse_external_event(event: &Value) -> Result<Inbound, InvalidExternalChange> {
    let detail_type = event.get("detail-type").and_then(Value::as_str);
    if detail_type != Some(EXTERNAL_CHANGE) {
        return Err(invalid(format!(
            "detail-type must be {EXTERNAL_CHANGE:?}, not {detail_type:?}"
        )));
    }
    let detail = event
        .get("detail")
        .and_then(Value::as_object)
        .ok_or_else(|| invalid("detail must be an object"))?;
    let origin = match detail.get("origin") {
        Some(Value::String(o)) if !o.trim().is_empty() => o.clone(),
        _ => {
            return Err(invalid(
                "detail.origin must be a non-empty string naming the system that changed it",
            ));
        }
    };
    if origin == ORIGIN {
        return Ok(Inbound::OwnEcho);
    }
    let product_id = product_id(detail)?;
    let updated_at = match detail.get("updated_at") {
        Some(Value::String(raw)) => {
            timestamp::parse(raw).map_err(|e| invalid(format!("detail.updated_at is not an RFC 3339 time: {e}")))?
        }
        _ => return Err(invalid("detail.updated_at (RFC 3339) is required")),
    };
    let changes = match detail.get("changes") {
        Some(Value::Object(fields)) => changes(fields)?,
        _ => return Err(invalid("detail.changes must be an object of changed fields")),
    };
    let change_id = match detail.get("change_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if !id.is_empty() => Some(id.clone()),
        Some(_) => return Err(invalid("detail.change_id must be a non-empty string")),
    };
    Ok(Inbound::Change(ExternalChange {
        product_id,
        changes,
        updated_at,
        origin,
        change_id,
    }))
}

fn product_id(detail: &Map<String, Value>) -> Result<ProductId, InvalidExternalChange> {
    let by_id = match detail.get("product_id") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|id| *id > 0)
                .ok_or_else(|| invalid("detail.product_id must be a positive integer"))?,
        ),
    };
    let by_external = match detail.get("external_id") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_str()
                .and_then(|s| s.strip_prefix("pixlpay_"))
                .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|digits| digits.parse::<ProductId>().ok())
                .filter(|id| *id > 0)
                .ok_or_else(|| invalid("detail.external_id must look like pixlpay_<id>"))?,
        ),
    };
    match (by_id, by_external) {
        (Some(a), Some(b)) if a != b => Err(invalid(format!(
            "detail.product_id {a} and detail.external_id pixlpay_{b} disagree"
        ))),
        (Some(id), _) | (None, Some(id)) => Ok(id),
        (None, None) => Err(invalid("detail.product_id or detail.external_id is required")),
    }
}

fn decimal(field: &str, value: &Value, nullable: bool) -> Result<Option<Decimal>, InvalidExternalChange> {
    match value {
        Value::Null if nullable => Ok(None),
        // A JSON number has already been through a float by the time anyone reads it: refuse it.
        Value::String(raw) => raw
            .parse::<Decimal>()
            .ok()
            .filter(|d| !d.is_sign_negative())
            .map(Some)
            .ok_or_else(|| invalid(format!("{field} must be a non-negative decimal string, not {raw:?}"))),
        _ => Err(invalid(format!(
            "{field} must be a decimal string such as \"19.99\" (numbers lose precision)"
        ))),
    }
}

fn changes(fields: &Map<String, Value>) -> Result<ProductChanges, InvalidExternalChange> {
    let mut changes = ProductChanges::default();
    for (name, value) in fields {
        let field = format!("detail.changes.{name}");
        match name.as_str() {
            "name" => match value.as_str().map(str::trim) {
                Some(n) if !n.is_empty() => changes.name = Some(n.to_owned()),
                _ => return Err(invalid(format!("{field} must be a non-empty string"))),
            },
            "description" => {
                changes.description = Some(
                    value
                        .as_str()
                        .ok_or_else(|| invalid(format!("{field} must be a string")))?
                        .to_owned(),
                )
            }
            "price" => changes.price = decimal(&field, value, false)?,
            "compare_price" => {
                changes.compare_price = decimal(&field, value, true)?;
                if changes.compare_price.is_none() {
                    return Err(invalid(format!(
                        "{field}: clearing the compare price is not supported by Pixlpay's write endpoint"
                    )));
                }
            }
            "is_active" => {
                changes.is_active = Some(
                    value
                        .as_bool()
                        .ok_or_else(|| invalid(format!("{field} must be true or false")))?,
                )
            }
            "stock" => {
                changes.stock = Some(
                    value
                        .as_i64()
                        .ok_or_else(|| invalid(format!("{field} must be an integer")))?,
                )
            }
            other => {
                return Err(invalid(format!(
                    "detail.changes.{other} cannot be changed (writable: {})",
                    WRITABLE_FIELDS.join(", ")
                )));
            }
        }
    }
    if fields.is_empty() {
        return Err(invalid("detail.changes is empty"));
    }
    Ok(changes)
}

/// Which side's value stands for a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    External,
    Pixlpay,
}

/// A field both sides hold different values for, and who won it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldConflict {
    pub field: String,
    pub external: Value,
    pub pixlpay: Value,
    pub winner: Side,
}

/// The decision for one external change.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    /// The fields to write to Pixlpay (those the external side won); empty when nothing is to be written.
    pub push: ProductChanges,
    /// Every field that differed, with its winner.
    pub conflicts: Vec<FieldConflict>,
}

impl Resolution {
    pub fn pushes(&self) -> bool {
        self.push != ProductChanges::default()
    }

    /// Fields where Pixlpay's value stands against the external one.
    pub fn standing(&self) -> impl Iterator<Item = &FieldConflict> {
        self.conflicts.iter().filter(|c| c.winner == Side::Pixlpay)
    }
}

/// Decides each changed field against Pixlpay's live product. A field already equal needs nothing.
pub fn resolve(change: &ExternalChange, live: &Product, policy: ConflictPolicy) -> Resolution {
    let winner = match policy {
        ConflictPolicy::ExternalWins => Side::External,
        ConflictPolicy::PixlpayWins => Side::Pixlpay,
        ConflictPolicy::LastWriterWins if change.updated_at > live.updated_at => Side::External,
        ConflictPolicy::LastWriterWins => Side::Pixlpay,
    };
    let wanted = serde_json::to_value(&change.changes).expect("changes serialise");
    let current = serde_json::to_value(ProductChanges {
        name: Some(live.name.clone()),
        description: Some(live.description.clone().unwrap_or_default()),
        price: Some(live.price),
        compare_price: live.compare_price,
        is_active: live.is_active,
        stock: live.stock,
    })
    .expect("changes serialise");
    let mut push = Map::new();
    let mut conflicts = Vec::new();
    for (field, external) in wanted.as_object().expect("an object") {
        let pixlpay = current.get(field).cloned().unwrap_or(Value::Null);
        if same(field, external, &pixlpay) {
            continue;
        }
        if winner == Side::External {
            push.insert(field.clone(), external.clone());
        }
        conflicts.push(FieldConflict {
            field: field.clone(),
            external: external.clone(),
            pixlpay,
            winner,
        });
    }
    Resolution {
        push: serde_json::from_value(Value::Object(push)).expect("a subset of valid changes"),
        conflicts,
    }
}

/// Equal values; prices compare as decimals, so "5.0" equals "5.00".
fn same(field: &str, a: &Value, b: &Value) -> bool {
    if field.ends_with("price") {
        let parse = |v: &Value| v.as_str().and_then(|s| s.parse::<Decimal>().ok());
        return parse(a) == parse(b);
    }
    a == b
}

/// An external change that won but could not be written because Pixlpay writes are disabled: kept until it can be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingPush {
    pub product_id: ProductId,
    /// Merged over every pending change for the product: a later change's fields replace earlier ones.
    pub changes: ProductChanges,
    pub origin: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_id: Option<String>,
    #[serde(with = "timestamp::required")]
    pub external_updated_at: OffsetDateTime,
}

/// Where pending pushes are kept (the sync-state table), counted as they come and go.
pub trait PushLog: Send + Sync {
    /// Records (or merges into) the product's pending push.
    fn record_pending_push(&self, push: &PendingPush) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Removes it once Pixlpay has the values (or they lost). `Ok(true)` when there was one.
    fn clear_pending_push(&self, id: ProductId) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// `ProductConflictResolved`: tells the external system which values stand.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConflictResolved {
    pub product_id: ProductId,
    pub external_id: String,
    /// The external system whose change lost (some or all of its fields).
    pub external_origin: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_id: Option<String>,
    pub policy: ConflictPolicy,
    #[serde(with = "timestamp::required")]
    pub external_updated_at: OffsetDateTime,
    #[serde(with = "timestamp::required")]
    pub pixlpay_updated_at: OffsetDateTime,
    /// The fields where Pixlpay's value stands, with both values.
    pub standing: Vec<FieldConflict>,
    pub origin: String,
}

impl ConflictResolved {
    pub fn new(change: &ExternalChange, live: &Product, policy: ConflictPolicy, resolution: &Resolution) -> Self {
        Self {
            product_id: change.product_id,
            external_id: format!("pixlpay_{}", change.product_id),
            external_origin: change.origin.clone(),
            change_id: change.change_id.clone(),
            policy,
            external_updated_at: change.updated_at,
            pixlpay_updated_at: live.updated_at,
            standing: resolution.standing().cloned().collect(),
            origin: ORIGIN.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(detail: Value) -> Value {
        json!({"detail-type": EXTERNAL_CHANGE, "source": "erp", "detail": detail})
    }

    fn change(updated_at: &str, changes: Value) -> ExternalChange {
        match parse_external_event(&event(json!({
            "product_id": 5, "origin": "erp", "updated_at": updated_at, "changes": changes
        })))
        .unwrap()
        {
            Inbound::Change(c) => c,
            other => panic!("{other:?}"),
        }
    }

    fn live(updated_at: &str) -> Product {
        Product::from_json(json!({"id": 5, "name": "Crate", "price": "4.99", "is_active": true,
            "updated_at": updated_at}))
        .unwrap()
    }

    #[test]
    fn a_valid_event_parses_with_an_exact_price_and_either_id() {
        let c = change(
            "2026-12-04T10:00:00.25Z",
            json!({"price": "19.990", "name": " Big crate "}),
        );
        assert_eq!(c.changes.price.unwrap().to_string(), "19.990", "the scale survives");
        assert_eq!(c.changes.name.as_deref(), Some("Big crate"));
        let by_external = parse_external_event(&event(json!({"external_id": "pixlpay_5", "origin": "erp",
            "updated_at": "2026-12-04T10:00:00Z", "changes": {"stock": 3}, "change_id": "erp-77"})))
        .unwrap();
        assert!(
            matches!(by_external, Inbound::Change(ref c) if c.product_id == 5 && c.change_id.as_deref() == Some("erp-77"))
        );
        let echo = parse_external_event(&event(json!({"origin": ORIGIN}))).unwrap();
        assert_eq!(echo, Inbound::OwnEcho);
    }

    #[test]
    fn a_bad_event_is_refused_with_the_reason() {
        let ok = json!({"product_id": 5, "origin": "erp", "updated_at": "2026-12-04T10:00:00Z",
            "changes": {"price": "1.00"}});
        let with = |key: &str, value: Value| {
            let mut detail = ok.clone();
            detail[key] = value;
            event(detail)
        };
        let without = |key: &str| {
            let mut detail = ok.clone();
            detail.as_object_mut().unwrap().remove(key);
            event(detail)
        };
        let cases = [
            (json!({"detail-type": "Other", "detail": ok.clone()}), "detail-type"),
            (
                json!({"detail-type": EXTERNAL_CHANGE, "detail": "x"}),
                "detail must be an object",
            ),
            (without("origin"), "origin"),
            (with("origin", json!("  ")), "origin"),
            (without("product_id"), "product_id or detail.external_id"),
            (with("product_id", json!(0)), "positive integer"),
            (with("product_id", json!("5")), "positive integer"),
            (with("external_id", json!("pixlpay_6")), "disagree"),
            (with("external_id", json!("sku-5")), "pixlpay_<id>"),
            (without("updated_at"), "updated_at"),
            (with("updated_at", json!("yesterday")), "RFC 3339"),
            (with("changes", json!({})), "empty"),
            (with("changes", json!([])), "object"),
            (with("changes", json!({"price": 19.99})), "decimal string"),
            (with("changes", json!({"price": "-1"})), "non-negative"),
            (with("changes", json!({"price": "abc"})), "non-negative decimal"),
            (with("changes", json!({"name": ""})), "non-empty"),
            (with("changes", json!({"stock": "3"})), "integer"),
            (with("changes", json!({"is_active": "yes"})), "true or false"),
            (with("changes", json!({"compare_price": null})), "clearing"),
            (with("changes", json!({"slug": "x"})), "cannot be changed"),
            (with("change_id", json!(7)), "change_id"),
        ];
        for (bad, expected) in cases {
            let error = parse_external_event(&bad).unwrap_err();
            assert!(error.0.contains(expected), "{bad}: {error}");
        }
    }

    #[test]
    fn each_policy_decides_newer_older_and_equal_timestamps() {
        use ConflictPolicy::*;
        let at = "2026-12-04T10:00:00Z";
        let (older, newer) = ("2026-12-04T09:00:00Z", "2026-12-04T11:00:00Z");
        for (policy, external_at, external_wins) in [
            (LastWriterWins, newer, true),
            (LastWriterWins, older, false),
            (LastWriterWins, at, false),
            (PixlpayWins, newer, false),
            (PixlpayWins, older, false),
            (PixlpayWins, at, false),
            (ExternalWins, newer, true),
            (ExternalWins, older, true),
            (ExternalWins, at, true),
        ] {
            let c = change(external_at, json!({"price": "5.49", "name": "Crate"}));
            let r = resolve(&c, &live(at), policy);
            assert_eq!(
                r.conflicts.len(),
                1,
                "{policy:?} {external_at}: the equal name is no conflict"
            );
            assert_eq!(r.pushes(), external_wins, "{policy:?} {external_at}");
            let winner = if external_wins { Side::External } else { Side::Pixlpay };
            assert_eq!(
                r.conflicts[0],
                FieldConflict {
                    field: "price".into(),
                    external: json!("5.49"),
                    pixlpay: json!("4.99"),
                    winner
                }
            );
            if external_wins {
                assert_eq!(r.push.price.unwrap().to_string(), "5.49");
                assert_eq!(r.push.name, None, "only what differs is written");
            }
            assert_eq!(r.standing().count(), usize::from(!external_wins));
        }
        // Already in line: nothing to push and no conflict, whatever the policy; "4.990" equals "4.99".
        let same = change(newer, json!({"price": "4.990"}));
        let r = resolve(&same, &live(at), ExternalWins);
        assert!(!r.pushes() && r.conflicts.is_empty());
        assert_eq!("last_writer_wins".parse::<ConflictPolicy>(), Ok(LastWriterWins));
        assert!("newest".parse::<ConflictPolicy>().is_err());
    }
}
