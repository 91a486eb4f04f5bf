//! Creates the two tables as the SAM template defines them, for local emulators, tests and the demo.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TimeToLiveSpecification,
};

use super::backend_error;
use crate::sync::StoreError;

fn attribute(name: &str, kind: ScalarAttributeType) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .expect("name and type are set")
}

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .expect("name and type are set")
}

/// Products table: `product_id` (N) partition key, on demand.
pub async fn create_products_table(client: &Client, name: &str) -> Result<(), StoreError> {
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("product_id", ScalarAttributeType::N))
        .key_schema(key("product_id", KeyType::Hash))
        .send()
        .await
        .map_err(|e| backend_error("CreateTable", e))?;
    Ok(())
}

/// Sync-state table: `pk`/`sk` (S), on demand, TTL on `expires_at`.
pub async fn create_state_table(client: &Client, name: &str) -> Result<(), StoreError> {
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk", ScalarAttributeType::S))
        .attribute_definitions(attribute("sk", ScalarAttributeType::S))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .send()
        .await
        .map_err(|e| backend_error("CreateTable", e))?;
    let ttl = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name("expires_at")
        .build()
        .expect("set");
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(ttl)
        .send()
        .await
        .map_err(|e| backend_error("UpdateTimeToLive", e))?;
    Ok(())
}
