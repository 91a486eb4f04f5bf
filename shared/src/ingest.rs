//! Between the webhook function and the product worker: the work message on the queue, and the ports the webhook
//! function is written against (the delivery log that de-duplicates, the queue, the status record).

use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::product::ProductId;
use crate::sync::StoreError;
use crate::timestamp;
use crate::webhook::{ProductEvent, ProductEventKind};

/// One product event to process, as the webhook function enqueues it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkMessage {
    pub product_id: ProductId,
    pub event: ProductEventKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
    /// When Pixlpay created the event (signed body), if the envelope says.
    #[serde(default, with = "timestamp::option", skip_serializing_if = "Option::is_none")]
    pub created_at: Option<OffsetDateTime>,
    /// How many times the worker put this message back because Pixlpay was rate limiting (not a failure).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deferrals: u32,
    /// The product's out-of-sync marker sequence when this was queued: finishing it clears the marker unless newer
    /// work bumped it since (`crate::sync::HealthLog`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seq: u64,
}

fn is_zero<N: Default + PartialEq>(n: &N) -> bool {
    *n == N::default()
}

impl From<&ProductEvent> for WorkMessage {
    fn from(event: &ProductEvent) -> Self {
        Self {
            product_id: event.product_id,
            event: event.kind,
            delivery_id: event.delivery_id.clone(),
            created_at: event.created_at,
            deferrals: 0,
            seq: 0,
        }
    }
}

/// Lowercase hex SHA-256: the payload hash of a delivery record, and the de-duplication key of a delivery that has
/// no id at all.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The de-duplication key of a delivery: body `id`, else the delivery-id header (both already folded into
/// `delivery_id` by the envelope parser), else the body's SHA-256 (`payload_hash`, from [`sha256_hex`], which the
/// delivery record keeps anyway). Prefixed so an id can never equal a hash.
pub fn delivery_key(delivery_id: Option<&str>, payload_hash: &str) -> String {
    match delivery_id {
        Some(id) => format!("id:{id}"),
        None => format!("sha256:{payload_hash}"),
    }
}

/// A claim on a delivery while its work is being enqueued.
#[derive(Debug, Clone)]
pub struct DeliveryClaim {
    pub key: String,
    pub payload_hash: String,
    /// Unique per request, so only the claimant confirms or releases.
    pub token: String,
    pub event: String,
    pub product_id: ProductId,
    pub now: OffsetDateTime,
    /// Another request for the same key waits this long before it may take over an unconfirmed claim.
    pub lease: Duration,
    /// The record expires (DynamoDB TTL) this long after `now`.
    pub ttl: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Ours: enqueue, then confirm.
    Claimed,
    /// Accepted before with the same payload.
    Duplicate,
    /// Another request holds an unexpired claim and has not confirmed yet.
    InFlight,
}

/// The delivery records (sync-state table), with the status record's webhook figures.
pub trait DeliveryLog: Send + Sync {
    /// Claims `claim.key` unless it was accepted with the same payload hash or is claimed by a live lease.
    fn claim(&self, claim: &DeliveryClaim) -> impl Future<Output = Result<Claim, StoreError>> + Send;
    /// Marks the claimed delivery accepted: its work is on the queue.
    fn confirm(&self, claim: &DeliveryClaim) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Drops an unconfirmed claim so Pixlpay's retry is processed at once.
    fn release(&self, claim: &DeliveryClaim) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Sets "last webhook" on the status record and counts the outcome.
    fn record_webhook(&self, seen: &WebhookSeen) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A verified delivery, as the status record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSeen {
    #[serde(with = "timestamp::required")]
    pub received_at: OffsetDateTime,
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<ProductId>,
    /// `queued`, `duplicate` or `ignored`.
    pub outcome: String,
}

#[derive(Debug, thiserror::Error)]
#[error("enqueue failed: {0}")]
pub struct QueueError(pub String);

/// The product work queue (SQS).
pub trait WorkQueue: Send + Sync {
    /// Puts `message` on the queue, visible after `delay` (at most 15 minutes).
    fn enqueue(&self, message: &WorkMessage, delay: Duration) -> impl Future<Output = Result<(), QueueError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_prefer_the_delivery_id_and_never_collide_with_hashes() {
        assert_eq!(delivery_key(Some("wh_del_1"), &sha256_hex(b"{}")), "id:wh_del_1");
        let hashed = delivery_key(None, &sha256_hex(b"{}"));
        assert_eq!(
            hashed,
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_ne!(delivery_key(None, &sha256_hex(b"{} ")), hashed);
    }

    #[test]
    fn work_messages_round_trip_and_refuse_unknown_shapes() {
        let message = WorkMessage {
            product_id: 7,
            event: ProductEventKind::Deleted,
            delivery_id: Some("wh_1".into()),
            created_at: Some(timestamp::parse("2025-01-20T14:30:00.5Z").unwrap()),
            deferrals: 0,
            seq: 3,
        };
        let text = serde_json::to_string(&message).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            json!({"product_id": 7, "event": "product.deleted", "delivery_id": "wh_1",
                   "created_at": "2025-01-20T14:30:00.5Z", "seq": 3})
        );
        assert_eq!(serde_json::from_str::<WorkMessage>(&text).unwrap(), message);
        for bad in [
            json!({"product_id": "7", "event": "product.deleted"}),
            json!({"product_id": 7, "event": "order.paid"}),
            json!({"product_id": 7}),
            json!({"product_id": 7, "event": "product.updated", "surprise": 1}),
        ] {
            assert!(serde_json::from_value::<WorkMessage>(bad.clone()).is_err(), "{bad}");
        }
    }
}
