//! Pending pushes in the sync-state table: `PUSH/<product id>`, one per product, its fields merged by `SET` so a
//! later change adds to an earlier one; `pending_pushes` on the status record moves in the same transaction as an
//! item is created or deleted.

use aws_sdk_dynamodb::types::AttributeValue;

use super::state::{DynamoSyncState, key, s};
use super::{conditional, from_item, to_item};
use crate::product::ProductId;
use crate::sync::{PendingPush, PushLog, StoreError};

const PUSHES: &str = "PUSH";
const ATTEMPTS: usize = 5;

impl DynamoSyncState {
    /// The product's pending push, if any.
    pub async fn pending_push(&self, id: ProductId) -> Result<Option<PendingPush>, StoreError> {
        let Some(mut item) = self.get(PUSHES, &id.to_string()).await? else {
            return Ok(None);
        };
        // The changed fields are stored flat (so `SET` merges them); fold them back into `changes`.
        let fields = ["name", "description", "price", "compare_price", "is_active", "stock"];
        let changes: std::collections::HashMap<String, AttributeValue> = fields
            .iter()
            .filter_map(|f| item.remove(*f).map(|v| ((*f).to_owned(), v)))
            .collect();
        item.insert("changes".into(), AttributeValue::M(changes));
        from_item(item).map(Some)
    }
}

impl PushLog for DynamoSyncState {
    async fn record_pending_push(&self, push: &PendingPush) -> Result<(), StoreError> {
        let mut attributes = to_item(&push.changes)?;
        attributes.insert("origin".into(), s(&push.origin));
        attributes.insert(
            "external_updated_at".into(),
            s(crate::timestamp::format(push.external_updated_at)),
        );
        attributes.insert("product_id".into(), AttributeValue::N(push.product_id.to_string()));
        if let Some(id) = &push.change_id {
            attributes.insert("change_id".into(), s(id));
        }
        for _ in 0..ATTEMPTS {
            // Merge into an existing push: SET each attribute.
            let names: Vec<String> = attributes.keys().cloned().collect();
            let expression = names
                .iter()
                .enumerate()
                .map(|(i, _)| format!("#a{i} = :v{i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut request = self
                .client()
                .update_item()
                .table_name(self.table())
                .set_key(Some(key(PUSHES, push.product_id.to_string())))
                .update_expression(format!("SET {expression}"))
                .condition_expression("attribute_exists(pk)");
            for (i, name) in names.iter().enumerate() {
                request = request
                    .expression_attribute_names(format!("#a{i}"), name)
                    .expression_attribute_values(format!(":v{i}"), attributes[name].clone());
            }
            if conditional("UpdateItem", request.send().await)? {
                return Ok(());
            }
            let mut item = attributes.clone();
            item.extend(key(PUSHES, push.product_id.to_string()));
            if self.insert_counted(item, "pending_pushes").await? {
                return Ok(());
            }
        }
        Err(StoreError::Backend {
            operation: "record pending push",
            message: format!("the pending push of product {} kept changing", push.product_id),
        })
    }

    async fn clear_pending_push(&self, id: ProductId) -> Result<bool, StoreError> {
        self.delete_counted((PUSHES, &id.to_string()), None, "pending_pushes")
            .await
    }
}
