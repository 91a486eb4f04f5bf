//! Webhook delivery records and the status record's webhook figures, in the sync-state table.
//!
//! | pk | sk | what |
//! |---|---|---|
//! | `DELIVERY#id:<delivery id>` or `DELIVERY#sha256:<body hash>` | `DELIVERY` | state (`pending`/`accepted`), payload hash, claim token and lease, TTL |
//! | `STATUS` | `STATUS` | `last_webhook`, and `webhooks_<outcome>` counters (atomic `ADD`) |

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::state::{DynamoSyncState, key, s};
use super::{backend_error, conditional};
use crate::ingest::{Claim, DeliveryClaim, DeliveryLog, WebhookSeen};
use crate::sync::StoreError;

const PENDING: &str = "pending";
const ACCEPTED: &str = "accepted";

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn delivery_key(claim: &DeliveryClaim) -> HashMap<String, AttributeValue> {
    key(format!("DELIVERY#{}", claim.key), "DELIVERY")
}

impl DynamoSyncState {
    /// The delivery record's state (`pending`/`accepted`) for a de-duplication key, for tests and status.
    pub async fn delivery_state(&self, dedup_key: &str) -> Result<Option<String>, StoreError> {
        let item = self.get(&format!("DELIVERY#{dedup_key}"), "DELIVERY").await?;
        Ok(item.and_then(|i| i.get("state").and_then(|v| v.as_s().ok()).cloned()))
    }
}

impl DeliveryLog for DynamoSyncState {
    async fn claim(&self, claim: &DeliveryClaim) -> Result<Claim, StoreError> {
        let now = claim.now.unix_timestamp();
        let mut item = delivery_key(claim);
        item.extend([
            ("state".to_owned(), s(PENDING)),
            ("payload_hash".to_owned(), s(&claim.payload_hash)),
            ("claim_token".to_owned(), s(&claim.token)),
            ("lease_until".to_owned(), n(now + claim.lease.as_secs() as i64)),
            ("event".to_owned(), s(&claim.event)),
            ("product_id".to_owned(), n(claim.product_id)),
            ("received_at".to_owned(), s(crate::timestamp::format(claim.now))),
            ("expires_at".to_owned(), n(now + claim.ttl.as_secs() as i64)),
        ]);
        let result = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            // New; or an abandoned claim; or the same id accepted with a different payload (then it is new work).
            .condition_expression(
                "attribute_not_exists(pk) OR (#state = :pending AND lease_until < :now) \
                 OR (#state = :accepted AND payload_hash <> :hash)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":pending", s(PENDING))
            .expression_attribute_values(":accepted", s(ACCEPTED))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":hash", s(&claim.payload_hash))
            .send()
            .await;
        if conditional("PutItem", result)? {
            return Ok(Claim::Claimed);
        }
        let state = self.delivery_state(&claim.key).await?;
        Ok(if state.as_deref() == Some(ACCEPTED) {
            Claim::Duplicate
        } else {
            Claim::InFlight
        })
    }

    async fn confirm(&self, claim: &DeliveryClaim) -> Result<(), StoreError> {
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(delivery_key(claim)))
            .update_expression("SET #state = :accepted, accepted_at = :at REMOVE lease_until")
            .condition_expression("claim_token = :token")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":accepted", s(ACCEPTED))
            .expression_attribute_values(":at", s(crate::timestamp::format(time::OffsetDateTime::now_utc())))
            .expression_attribute_values(":token", s(&claim.token))
            .send()
            .await;
        // Not applied: our lease ran out and another request took the delivery over; it confirms its own claim.
        conditional("UpdateItem", result)?;
        Ok(())
    }

    async fn release(&self, claim: &DeliveryClaim) -> Result<(), StoreError> {
        let result = self
            .client()
            .delete_item()
            .table_name(self.table())
            .set_key(Some(delivery_key(claim)))
            .condition_expression("#state = :pending AND claim_token = :token")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":pending", s(PENDING))
            .expression_attribute_values(":token", s(&claim.token))
            .send()
            .await;
        // Not applied: already confirmed, or taken over after our lease ran out.
        conditional("DeleteItem", result)?;
        Ok(())
    }

    async fn record_webhook(&self, seen: &WebhookSeen) -> Result<(), StoreError> {
        let value = serde_dynamo::to_attribute_value(seen).map_err(|e| StoreError::Malformed(e.to_string()))?;
        self.client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key("STATUS", "STATUS")))
            .update_expression("SET last_webhook = :seen ADD #count :one")
            .expression_attribute_names("#count", format!("webhooks_{}", seen.outcome))
            .expression_attribute_values(":seen", value)
            .expression_attribute_values(":one", n(1))
            .send()
            .await
            .map_err(|e| backend_error("UpdateItem", e))?;
        Ok(())
    }
}
