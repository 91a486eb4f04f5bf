//! Change events to EventBridge: PutEvents in batches of 10 (its limit), failed entries retried with backoff.

use std::time::Duration;

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use crate::sync::{CONFLICT_RESOLVED, ChangeEvent, ConflictResolved, EventPublisher, PublishError};

const BATCH: usize = 10;
const ATTEMPTS: u32 = 5;

#[derive(Clone, Debug)]
pub struct EventBridgePublisher {
    client: Client,
    bus: String,
    source: String,
}

impl EventBridgePublisher {
    pub fn new(client: Client, bus: impl Into<String>, source: impl Into<String>) -> Self {
        Self {
            client,
            bus: bus.into(),
            source: source.into(),
        }
    }

    fn entry(&self, event: &ChangeEvent) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(&self.source)
            .detail_type(event.change.detail_type())
            .detail(serde_json::to_string(event).expect("events always serialise"))
            .resources(format!("pixlpay:product/{}", event.product_id))
            .build()
    }
}

impl EventPublisher for EventBridgePublisher {
    async fn publish(&self, events: &[ChangeEvent]) -> Result<(), PublishError> {
        self.put(events.iter().map(|e| self.entry(e)).collect()).await
    }

    async fn publish_conflict(&self, event: &ConflictResolved) -> Result<(), PublishError> {
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(&self.source)
            .detail_type(CONFLICT_RESOLVED)
            .detail(serde_json::to_string(event).expect("events always serialise"))
            .resources(format!("pixlpay:product/{}", event.product_id))
            .build();
        self.put(vec![entry]).await
    }
}

impl EventBridgePublisher {
    /// PutEvents in batches, retrying the entries that failed.
    async fn put(&self, entries: Vec<PutEventsRequestEntry>) -> Result<(), PublishError> {
        let total = entries.len();
        for batch in entries.chunks(BATCH) {
            let mut pending: Vec<PutEventsRequestEntry> = batch.to_vec();
            let mut last_error = String::new();
            for attempt in 1..=ATTEMPTS {
                let result = self.client.put_events().set_entries(Some(pending.clone())).send().await;
                match result {
                    Ok(output) if output.failed_entry_count == 0 => {
                        pending.clear();
                        break;
                    }
                    Ok(output) => {
                        // Entries answer in request order; keep only those that failed.
                        let results = output.entries.unwrap_or_default();
                        let failed: Vec<PutEventsRequestEntry> = pending
                            .iter()
                            .zip(&results)
                            .filter(|(_, r)| r.error_code.is_some())
                            .map(|(e, _)| e.clone())
                            .collect();
                        last_error = results.iter().find_map(|r| r.error_message.clone()).unwrap_or_default();
                        pending = if failed.is_empty() { pending } else { failed };
                    }
                    Err(e) => last_error = aws_sdk_eventbridge::error::DisplayErrorContext(e).to_string(),
                }
                tracing::warn!(
                    attempt,
                    failed = pending.len(),
                    error = last_error,
                    "PutEvents incomplete, retrying"
                );
                tokio::time::sleep(Duration::from_millis(100 * 2u64.pow(attempt))).await;
            }
            if !pending.is_empty() {
                return Err(PublishError {
                    failed: pending.len(),
                    total,
                    message: last_error,
                });
            }
        }
        Ok(())
    }
}
