//! The webhook envelope in all its documented shapes (pixlpay-api.md §8.3):
//! `{id, event_type, created_at, data}` (V2/V3), `{id, event, timestamp, data}` (V1), and V1 without `id`.
//! The event name and time are read only from the signed body; the delivery id may come from a header when the body
//! has none, since it only serves de-duplication.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::{DELIVERY_ID_HEADERS, first_header};
use crate::product::{ProductId, ProductIdError, json_kind, product_id_from_json};
use crate::timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProductEventKind {
    #[serde(rename = "product.created")]
    Created,
    #[serde(rename = "product.updated")]
    Updated,
    #[serde(rename = "product.deleted")]
    Deleted,
}

impl ProductEventKind {
    pub fn from_event_name(name: &str) -> Option<Self> {
        match name {
            "product.created" => Some(Self::Created),
            "product.updated" => Some(Self::Updated),
            "product.deleted" => Some(Self::Deleted),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "product.created",
            Self::Updated => "product.updated",
            Self::Deleted => "product.deleted",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductEvent {
    pub kind: ProductEventKind,
    pub product_id: ProductId,
    /// Body `id`, else the delivery-id header; `None` when neither is present.
    pub delivery_id: Option<String>,
    pub created_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookEvent {
    Product(ProductEvent),
    /// A well-formed event this bundle does not handle (orders, subscriptions, the dashboard's test event).
    Other {
        event: String,
        delivery_id: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("body is empty")]
    Empty,
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error("body must be a JSON object, not {0}")]
    NotAnObject(&'static str),
    #[error("`event_type` (or `event`) is missing")]
    MissingEvent,
    #[error("`event_type` must be a non-empty string, not {0}")]
    InvalidEvent(&'static str),
    #[error("`created_at` (or `timestamp`) {0}")]
    InvalidCreatedAt(String),
    #[error("`id` must be a string or an integer, not {0}")]
    InvalidId(&'static str),
    #[error("`data` must be an object for a product event")]
    MissingData,
    #[error("`data.product_id` is missing")]
    MissingProductId,
    #[error("`data.product_id` {0}")]
    InvalidProductId(ProductIdError),
}

/// Parses a verified webhook body. Call only after the signature checked out.
pub fn parse_envelope(body: &[u8], headers: &http::HeaderMap) -> Result<WebhookEvent, EnvelopeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(EnvelopeError::Empty);
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| EnvelopeError::NotJson(e.to_string()))?;
    let Value::Object(mut envelope) = value else {
        return Err(EnvelopeError::NotAnObject(json_kind(&value)));
    };
    let event = match take_either(&mut envelope, "event_type", "event") {
        None => return Err(EnvelopeError::MissingEvent),
        Some(Value::String(s)) if !s.trim().is_empty() => s,
        Some(other) => return Err(EnvelopeError::InvalidEvent(json_kind(&other))),
    };
    let created_at = match take_either(&mut envelope, "created_at", "timestamp") {
        None => None,
        Some(Value::String(s)) => Some(timestamp::parse(&s).map_err(EnvelopeError::InvalidCreatedAt)?),
        Some(other) => {
            return Err(EnvelopeError::InvalidCreatedAt(format!(
                "must be a string, not {}",
                json_kind(&other)
            )));
        }
    };
    let delivery_id = match envelope.remove("id") {
        None | Some(Value::Null) => header_delivery_id(headers),
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s),
        Some(Value::String(_)) => header_delivery_id(headers),
        Some(Value::Number(n)) if n.is_u64() => Some(n.to_string()),
        Some(other) => return Err(EnvelopeError::InvalidId(json_kind(&other))),
    };
    let Some(kind) = ProductEventKind::from_event_name(&event) else {
        return Ok(WebhookEvent::Other { event, delivery_id });
    };
    let Some(Value::Object(data)) = envelope.get("data") else {
        return Err(EnvelopeError::MissingData);
    };
    // `data.product_id` per the Inventory Sync guide; `data.id` when Pixlpay sends the product itself.
    let id_value = data
        .get("product_id")
        .or_else(|| data.get("id"))
        .ok_or(EnvelopeError::MissingProductId)?;
    let product_id = product_id_from_json(id_value).map_err(EnvelopeError::InvalidProductId)?;
    Ok(WebhookEvent::Product(ProductEvent {
        kind,
        product_id,
        delivery_id,
        created_at,
    }))
}

/// Takes `primary`, else `alias`; a `null` counts as absent.
fn take_either(map: &mut Map<String, Value>, primary: &str, alias: &str) -> Option<Value> {
    [primary, alias]
        .into_iter()
        .filter_map(|k| map.remove(k))
        .find(|v| !v.is_null())
}

fn header_delivery_id(headers: &http::HeaderMap) -> Option<String> {
    first_header(headers, &DELIVERY_ID_HEADERS)
        .and_then(|raw| std::str::from_utf8(raw).ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};
    use serde_json::json;

    fn parse(body: Value) -> Result<WebhookEvent, EnvelopeError> {
        parse_envelope(body.to_string().as_bytes(), &HeaderMap::new())
    }

    fn product(event: WebhookEvent) -> ProductEvent {
        match event {
            WebhookEvent::Product(p) => p,
            other => panic!("expected a product event, got {other:?}"),
        }
    }

    #[test]
    fn reads_v3_with_microseconds() {
        let e = product(
            parse(json!({"id": "wh_del_abc123", "event_type": "product.updated",
                         "created_at": "2025-01-20T14:30:00.000000Z", "data": {"product_id": 42}}))
            .unwrap(),
        );
        assert_eq!(e.kind, ProductEventKind::Updated);
        assert_eq!(e.product_id, 42);
        assert_eq!(e.delivery_id.as_deref(), Some("wh_del_abc123"));
        assert_eq!(e.created_at.unwrap(), timestamp::parse("2025-01-20T14:30:00Z").unwrap());
    }

    #[test]
    fn reads_v1_event_and_timestamp() {
        let e = product(
            parse(
                json!({"id": "evt_abc123", "event": "product.deleted", "timestamp": "2025-01-20T12:00:00Z",
                         "data": {"product_id": 7}}),
            )
            .unwrap(),
        );
        assert_eq!((e.kind, e.product_id), (ProductEventKind::Deleted, 7));
    }

    #[test]
    fn without_body_id_takes_either_delivery_header() {
        let body = json!({"event": "product.created", "data": {"id": 3}}).to_string();
        for name in DELIVERY_ID_HEADERS {
            let mut headers = HeaderMap::new();
            headers.insert(name, HeaderValue::from_static("12345"));
            let e = product(parse_envelope(body.as_bytes(), &headers).unwrap());
            assert_eq!(e.delivery_id.as_deref(), Some("12345"), "{name}");
            assert_eq!(e.product_id, 3);
        }
        assert_eq!(
            product(parse_envelope(body.as_bytes(), &HeaderMap::new()).unwrap()).delivery_id,
            None
        );
    }

    #[test]
    fn other_events_are_reported_not_rejected() {
        assert_eq!(
            parse(json!({"id": "wh_1", "event_type": "order.paid", "data": {"id": 5}})).unwrap(),
            WebhookEvent::Other {
                event: "order.paid".into(),
                delivery_id: Some("wh_1".into())
            }
        );
    }

    #[test]
    fn bad_envelopes_say_what_is_wrong() {
        let h = HeaderMap::new();
        assert_eq!(parse_envelope(b"", &h), Err(EnvelopeError::Empty));
        assert!(matches!(
            parse_envelope(b"{\"event_type\":", &h),
            Err(EnvelopeError::NotJson(_))
        ));
        assert_eq!(parse(json!([1, 2])), Err(EnvelopeError::NotAnObject("an array")));
        assert_eq!(
            parse(json!({"data": {"product_id": 1}})),
            Err(EnvelopeError::MissingEvent)
        );
        assert_eq!(
            parse(json!({"event_type": 5})),
            Err(EnvelopeError::InvalidEvent("a number"))
        );
        assert_eq!(
            parse(json!({"event_type": "product.updated"})),
            Err(EnvelopeError::MissingData)
        );
        assert_eq!(
            parse(json!({"event_type": "product.updated", "data": {}})),
            Err(EnvelopeError::MissingProductId)
        );
        for (bad, why) in [
            (json!("42"), ProductIdError::NotAnInteger("a string")),
            (json!(-1), ProductIdError::NotPositive),
            (json!(1e30), ProductIdError::TooLarge),
            (json!(18446744073709551615u64), ProductIdError::TooLarge),
        ] {
            assert_eq!(
                parse(json!({"event_type": "product.updated", "data": {"product_id": bad}})),
                Err(EnvelopeError::InvalidProductId(why))
            );
        }
        assert!(matches!(
            parse(json!({"event_type": "product.updated", "created_at": "soon", "data": {"product_id": 1}})),
            Err(EnvelopeError::InvalidCreatedAt(_))
        ));
    }
}
