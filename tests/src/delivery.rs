//! Signed webhook delivery as Pixlpay documents it (pixlpay-api.md §8.2-§8.6): POST of a JSON body, HMAC-SHA256 hex of
//! the exact bytes in the signature header, 2xx within 30 s or it is retried after 1, 5 and 30 minutes (scaled by
//! `webhook_time_scale`), then dropped.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use pixlpay_sync::{Secret, timestamp, webhook};

use crate::catalog::SimProduct;
use crate::state::{EnvelopeVariant, HeaderFamily, Inner, PendingDelivery, SimState, Webhook};

/// Waits before each retry, in documented seconds.
pub const RETRY_SCHEDULE_SECS: [u64; 3] = [60, 300, 1800];
const DELIVERY_TIMEOUT_SECS: f64 = 30.0;

#[derive(Debug, Clone, Serialize)]
pub struct DeliveryLog {
    pub delivery_id: String,
    pub webhook_id: u64,
    pub url: String,
    pub event: String,
    pub product_id: Option<u64>,
    /// 1 for the original, 2 for the copy sent by the `duplicate_webhooks` fault.
    pub copy: u32,
    pub attempts: Vec<AttemptLog>,
    pub delivered: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttemptLog {
    pub at: String,
    pub status: Option<u16>,
    pub error: Option<String>,
}

impl Inner {
    /// Builds the signed deliveries of `event` for every active webhook subscribed to it. The caller sends them with
    /// [`dispatch`] after releasing the lock.
    pub fn prepare_deliveries(&mut self, event: &str, product: Option<&SimProduct>) -> Vec<PendingDelivery> {
        let subscribed: Vec<Webhook> = self
            .webhooks
            .values()
            .filter(|w| w.is_active && w.events.iter().any(|e| e == event))
            .cloned()
            .collect();
        subscribed
            .into_iter()
            .map(|webhook| self.build_delivery(webhook, event, product))
            .collect()
    }

    pub fn build_delivery(&mut self, webhook: Webhook, event: &str, product: Option<&SimProduct>) -> PendingDelivery {
        let now = OffsetDateTime::now_utc();
        let data = match product {
            Some(p) if self.settings.webhook_full_data => {
                json!({"product_id": p.id, "product": p.render(self.settings.dialect, true, self.settings.extra_fields)})
            }
            Some(p) => json!({"product_id": p.id}),
            None => json!({"message": "This is a test webhook from Pixlpay"}),
        };
        let (delivery_id, envelope) = match self.settings.envelope {
            EnvelopeVariant::V3 => {
                let id = self.random_token("wh_del_", 24);
                let micros = now.replace_nanosecond(now.microsecond() * 1000).expect("valid");
                let created = micros.format(time::macros::format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
                ));
                let created = created.unwrap_or_else(|_| timestamp::format(now));
                (
                    id.clone(),
                    json!({"id": id, "event_type": event, "created_at": created, "data": data}),
                )
            }
            EnvelopeVariant::V1 => {
                let id = self.random_token("evt_", 24);
                let ts = timestamp::format(now.replace_nanosecond(0).expect("valid"));
                (
                    id.clone(),
                    json!({"id": id, "event": event, "timestamp": ts, "data": data}),
                )
            }
            EnvelopeVariant::V1b => {
                // No id in the body: the delivery id travels only in the header.
                let id = self.rng_numeric_id();
                let ts = timestamp::format(now.replace_nanosecond(0).expect("valid"));
                (id, json!({"event": event, "timestamp": ts, "data": data}))
            }
        };
        let body = serde_json::to_vec(&envelope).expect("JSON always serialises");
        PendingDelivery {
            webhook,
            event: event.to_owned(),
            body,
            delivery_id,
        }
    }

    fn rng_numeric_id(&mut self) -> String {
        use rand::Rng;
        self.rng.random_range(10_000..100_000_000u64).to_string()
    }
}

/// Sends `pending` (held instead when `reorder_webhooks` is on; twice when `duplicate_webhooks` is on).
pub fn dispatch(state: &SimState, pending: Vec<PendingDelivery>) {
    let copies = {
        let mut inner = state.lock();
        if inner.faults.reorder_webhooks {
            inner.held.extend(pending);
            return;
        }
        if inner.faults.duplicate_webhooks { 2 } else { 1 }
    };
    for delivery in pending {
        for copy in 1..=copies {
            let (state, delivery) = (state.clone(), delivery.clone());
            tokio::spawn(async move { deliver(&state, delivery, copy).await });
        }
    }
}

/// Sends every held delivery, newest first, each first attempt finished before the next starts, so the receiver sees
/// them in exactly reversed order.
pub async fn flush(state: &SimState) -> usize {
    let held = std::mem::take(&mut state.lock().held);
    let count = held.len();
    for delivery in held.into_iter().rev() {
        let log = register(state, &delivery, 1);
        if !attempt(state, &delivery, log).await {
            let state = state.clone();
            tokio::spawn(async move { retry(&state, delivery, log).await });
        }
    }
    count
}

async fn deliver(state: &SimState, delivery: PendingDelivery, copy: u32) {
    let log = register(state, &delivery, copy);
    if !attempt(state, &delivery, log).await {
        retry(state, delivery, log).await;
    }
}

async fn retry(state: &SimState, delivery: PendingDelivery, log: usize) {
    let scale = state.lock().config.webhook_time_scale;
    for wait in RETRY_SCHEDULE_SECS {
        tokio::time::sleep(Duration::from_secs_f64(wait as f64 * scale)).await;
        if attempt(state, &delivery, log).await {
            return;
        }
    }
}

fn register(state: &SimState, delivery: &PendingDelivery, copy: u32) -> usize {
    let product_id = serde_json::from_slice::<Value>(&delivery.body)
        .ok()
        .and_then(|v| v.pointer("/data/product_id").and_then(Value::as_u64));
    let mut inner = state.lock();
    inner.deliveries.push(DeliveryLog {
        delivery_id: delivery.delivery_id.clone(),
        webhook_id: delivery.webhook.id,
        url: delivery.webhook.url.clone(),
        event: delivery.event.clone(),
        product_id,
        copy,
        attempts: Vec::new(),
        delivered: false,
    });
    inner.deliveries.len() - 1
}

/// One POST; true when the receiver answered 2xx in time.
async fn attempt(state: &SimState, delivery: &PendingDelivery, log: usize) -> bool {
    let (family, scale) = {
        let inner = state.lock();
        (inner.settings.header_family, inner.config.webhook_time_scale)
    };
    let [sig_header, event_header, id_header] = match family {
        HeaderFamily::Pixlpay => ["X-Pixlpay-Signature", "X-Pixlpay-Event", "X-Pixlpay-Delivery-Id"],
        HeaderFamily::Webhook => ["X-Webhook-Signature", "X-Webhook-Event", "X-Webhook-ID"],
    };
    let signature = webhook::sign(&Secret::new(delivery.webhook.secret.clone()), &delivery.body);
    let timeout = Duration::from_secs_f64((DELIVERY_TIMEOUT_SECS * scale).clamp(1.0, DELIVERY_TIMEOUT_SECS));
    let result = state
        .http
        .post(&delivery.webhook.url)
        .timeout(timeout)
        .header("Content-Type", "application/json")
        .header("User-Agent", "Prism-Webhooks/1.0")
        .header(sig_header, signature)
        .header(event_header, &delivery.event)
        .header(id_header, &delivery.delivery_id)
        .body(delivery.body.clone())
        .send()
        .await;
    let (status, error) = match result {
        Ok(response) => (Some(response.status().as_u16()), None),
        Err(e) => (
            None,
            Some(if e.is_timeout() {
                "timeout".to_owned()
            } else {
                e.to_string()
            }),
        ),
    };
    let ok = status.is_some_and(|s| (200..300).contains(&s));
    let mut inner = state.lock();
    let entry = &mut inner.deliveries[log];
    entry.attempts.push(AttemptLog {
        at: timestamp::format(OffsetDateTime::now_utc()),
        status,
        error,
    });
    entry.delivered |= ok;
    ok
}
