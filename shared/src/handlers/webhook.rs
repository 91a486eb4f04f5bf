//! The webhook function: verify, parse, de-duplicate, enqueue, answer within milliseconds.
//!
//! | answer | when |
//! |---|---|
//! | 413 | body over the limit (256 KiB), before anything else is read |
//! | 401 | signature missing, malformed, or matching no configured secret |
//! | 400 | verified, but not JSON, not an object, or a product event without a valid `data.product_id` |
//! | 200 `ignored` | verified and well-formed, but not a product event (or older than the optional maximum age) |
//! | 200 `duplicate` | a delivery already accepted with the same payload |
//! | 200 `queued` | the work is on the queue |
//! | 409 | the same delivery is being queued by a concurrent request right now (Pixlpay retries later) |
//! | 503 | the delivery log or the queue failed: nothing is recorded as accepted, so Pixlpay's retry is processed |

use std::time::Duration;

use http::HeaderMap;
use serde_json::json;
use time::OffsetDateTime;

use super::Reply;
use crate::ingest::{Claim, DeliveryClaim, DeliveryLog, WebhookSeen, WorkMessage, WorkQueue, delivery_key, sha256_hex};
use crate::sync::{ErrorRecord, HealthLog, WriteContext, WriteSource};
use crate::webhook::{
    EVENT_HEADERS, ProductEvent, WebhookEvent, WebhookSecrets, first_header, parse_envelope, verify_request,
};

/// The largest body accepted. Pixlpay's product events are a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub secrets: WebhookSecrets,
    pub max_body_bytes: usize,
    /// How long a delivery id is remembered. Pixlpay's last retry comes about 36 minutes after the first attempt.
    pub dedup_ttl: Duration,
    /// How long a claim blocks a concurrent copy of the same delivery before another request may take over.
    pub claim_lease: Duration,
    /// Refuse events whose signed `created_at` is older than this (replay protection); off by default.
    pub max_event_age: Option<Duration>,
}

impl WebhookConfig {
    pub fn new(secrets: WebhookSecrets) -> Self {
        Self {
            secrets,
            max_body_bytes: MAX_BODY_BYTES,
            dedup_ttl: Duration::from_secs(7 * 24 * 3600),
            claim_lease: Duration::from_secs(30),
            max_event_age: None,
        }
    }
}

pub struct WebhookHandler<D, Q> {
    pub deliveries: D,
    pub queue: Q,
    pub config: WebhookConfig,
}

impl<D: DeliveryLog + HealthLog, Q: WorkQueue> WebhookHandler<D, Q> {
    /// Answers one delivery: raw body bytes and headers as received.
    pub async fn handle(&self, headers: &HeaderMap, body: &[u8]) -> Reply {
        let reply = self.answer(headers, body).await;
        let text = |field: &str| reply.body.get(field).and_then(|v| v.as_str());
        let outcome = text("status").or_else(|| text("error")).unwrap_or("");
        tracing::info!(
            status = reply.status,
            outcome,
            delivery_id = text("delivery_id"),
            product_id = reply.body.get("product_id").and_then(|v| v.as_u64()),
            bytes = body.len(),
            "webhook answered"
        );
        reply
    }

    async fn answer(&self, headers: &HeaderMap, body: &[u8]) -> Reply {
        let limit = self.config.max_body_bytes;
        if body.len() > limit {
            return Reply::error(
                413,
                "payload_too_large",
                format!("body is {} bytes; the limit is {limit}", body.len()),
            );
        }
        match verify_request(&self.config.secrets, headers, body) {
            Ok(0) => {}
            Ok(index) => tracing::info!(secret = index + 1, "signature matched an older webhook secret"),
            Err(e) => return Reply::error(401, "invalid_signature", e),
        }
        let event = match parse_envelope(body, headers) {
            Ok(event) => event,
            Err(e) => return Reply::error(400, "invalid_payload", e),
        };
        let now = OffsetDateTime::now_utc();
        let event = match event {
            WebhookEvent::Product(event) => event,
            WebhookEvent::Other { event, delivery_id } => {
                self.record(now, &event, delivery_id.clone(), None, "ignored").await;
                return Reply::ok(json!({"status": "ignored", "event": event, "delivery_id": delivery_id,
                    "reason": "not a product event"}));
            }
        };
        if let Some(reply) = self.too_old(&event, now) {
            return reply;
        }
        self.enqueue_once(&event, body, headers, now).await
    }

    fn too_old(&self, event: &ProductEvent, now: OffsetDateTime) -> Option<Reply> {
        let max_age = self.config.max_event_age?;
        let Some(created_at) = event.created_at else {
            return Some(Reply::error(
                400,
                "invalid_payload",
                "`created_at` (or `timestamp`) is required while a maximum event age is enforced",
            ));
        };
        let age = now - created_at;
        (age > max_age).then(|| {
            Reply::ok(json!({"status": "ignored", "delivery_id": event.delivery_id,
                "product_id": event.product_id,
                "reason": format!("event is {}s old; the maximum age is {}s", age.whole_seconds(), max_age.as_secs())}))
        })
    }

    async fn enqueue_once(&self, event: &ProductEvent, body: &[u8], headers: &HeaderMap, now: OffsetDateTime) -> Reply {
        let event_name = event.kind.as_str();
        let payload_hash = sha256_hex(body);
        let claim = DeliveryClaim {
            key: delivery_key(event.delivery_id.as_deref(), &payload_hash),
            payload_hash,
            token: format!("{:016x}", rand::random::<u64>()),
            event: event_name.to_owned(),
            product_id: event.product_id,
            now,
            lease: self.config.claim_lease,
            ttl: self.config.dedup_ttl,
        };
        let ids = json!({"delivery_id": event.delivery_id, "product_id": event.product_id, "event": event_name});
        let with_ids = |status: &str| {
            let mut body = ids.clone();
            body["status"] = json!(status);
            Reply::ok(body)
        };
        if let Some(header_event) = header_event(headers).filter(|h| *h != event_name) {
            // The signed body decides; a header that disagrees is worth knowing about, not a reason to refuse.
            tracing::warn!(
                header_event,
                body_event = event_name,
                "event header disagrees with the signed body"
            );
        }
        match self.deliveries.claim(&claim).await {
            Ok(Claim::Claimed) => {}
            Ok(Claim::Duplicate) => {
                self.record(
                    now,
                    event_name,
                    event.delivery_id.clone(),
                    Some(event.product_id),
                    "duplicate",
                )
                .await;
                return with_ids("duplicate");
            }
            Ok(Claim::InFlight) => {
                return Reply::error(
                    409,
                    "delivery_in_progress",
                    "this delivery is being queued by another request; retry later",
                );
            }
            Err(e) => {
                tracing::error!(error = %e, key = claim.key, "delivery log unavailable");
                self.record_error(event, format!("delivery log unavailable, Pixlpay will retry: {e}"))
                    .await;
                return Reply::error(503, "unavailable", "the delivery log is unavailable; retry later");
            }
        }
        // Marked before it is queued, so the worker can never finish the work before the mark exists.
        let queued = match self.deliveries.note_pending(event.product_id, event_name).await {
            Ok(seq) => {
                let message = WorkMessage {
                    seq,
                    ..WorkMessage::from(event)
                };
                self.queue
                    .enqueue(&message, Duration::ZERO)
                    .await
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        if let Err(error) = queued {
            tracing::error!(error, key = claim.key, "queueing failed; releasing the claim");
            if let Err(e) = self.deliveries.release(&claim).await {
                // The claim's lease runs out by itself; Pixlpay's first retry comes a minute later.
                tracing::warn!(error = %e, key = claim.key, "releasing the claim failed");
            }
            self.record_error(event, format!("queueing failed, Pixlpay will retry: {error}"))
                .await;
            return Reply::error(503, "unavailable", "the work queue is unavailable; retry later");
        }
        // The work is queued: from here on the delivery is accepted whatever happens to the bookkeeping. A failed
        // confirm only means a retry of this delivery is queued once more, which the worker absorbs.
        let (confirmed, _) = tokio::join!(
            self.deliveries.confirm(&claim),
            self.record(
                now,
                event_name,
                event.delivery_id.clone(),
                Some(event.product_id),
                "queued"
            )
        );
        if let Err(e) = confirmed {
            tracing::warn!(error = %e, key = claim.key, "confirming the delivery failed after enqueueing");
        }
        with_ids("queued")
    }

    /// Best effort: status figures never decide an answer.
    async fn record(
        &self,
        now: OffsetDateTime,
        event: &str,
        delivery_id: Option<String>,
        product_id: Option<u64>,
        outcome: &str,
    ) {
        let seen = WebhookSeen {
            received_at: now,
            event: event.to_owned(),
            delivery_id,
            product_id,
            outcome: outcome.to_owned(),
        };
        if let Err(e) = self.deliveries.record_webhook(&seen).await {
            tracing::warn!(error = %e, "recording the last webhook failed");
        }
    }

    /// Best effort, like `record`: lists the failure among the status's recent errors.
    async fn record_error(&self, event: &ProductEvent, reason: String) {
        let context = WriteContext {
            run_id: None,
            delivery_id: event.delivery_id.clone(),
        };
        let error = ErrorRecord::new(WriteSource::Webhook, &context, Some(event.product_id), reason);
        if let Err(e) = self.deliveries.record_errors(&[error]).await {
            tracing::warn!(error = %e, "recording the error failed");
        }
    }

    /// The Lambda (API Gateway HTTP API) entry point: the same answers, as an HTTP response with a JSON body.
    pub async fn handle_http(&self, request: lambda_http::Request) -> lambda_http::Response<lambda_http::Body> {
        let reply = if request.method() != http::Method::POST {
            Reply::error(405, "method_not_allowed", "webhooks are delivered with POST")
        } else {
            self.handle(request.headers(), request.body().as_ref()).await
        };
        reply.into_http()
    }
}

fn header_event(headers: &HeaderMap) -> Option<&str> {
    first_header(headers, &EVENT_HEADERS).and_then(|raw| std::str::from_utf8(raw).ok())
}
