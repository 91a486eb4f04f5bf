//! The Products table item: what external systems read. Documented Pixlpay fields are top-level attributes (price an
//! exact decimal string), unknown ones live under `extra` (so a new Pixlpay field can never collide with ours), and
//! the sync's own bookkeeping sits beside them.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::product::{Category, DeliveryServer, Image, Product, ProductId, external_id};
use crate::timestamp;

/// Which path wrote an item last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteSource {
    FullSync,
    Webhook,
    External,
}

impl WriteSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FullSync => "full_sync",
            Self::Webhook => "webhook",
            Self::External => "external",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductItem {
    pub product_id: ProductId,
    pub external_id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(with = "rust_decimal::serde::str")]
    pub price: Decimal,
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub compare_price: Option<Decimal>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub product_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_featured: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stock: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
    /// The primary image's URL, else the first image's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<Image>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delivery_servers: Vec<DeliveryServer>,
    #[serde(default, with = "timestamp::option", skip_serializing_if = "Option::is_none")]
    pub pixlpay_created_at: Option<OffsetDateTime>,
    #[serde(with = "timestamp::required")]
    pub pixlpay_updated_at: OffsetDateTime,
    /// `pixlpay_updated_at` in microseconds: RFC 3339 strings with different fraction digits do not sort as text,
    /// so conditions and comparisons use this number.
    pub pixlpay_updated_at_us: i64,
    /// When this state was read from Pixlpay (µs). Breaks ties between two reads with the same `updated_at` (Pixlpay
    /// stamps seconds): the later read wins.
    pub fetched_at_us: i64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Value>,
    pub content_hash: String,
    #[serde(with = "timestamp::required")]
    pub synced_at: OffsetDateTime,
    pub source: WriteSource,
    /// Incremented by every write; each write is conditional on the version it read.
    pub version: u64,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default, with = "timestamp::option", skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<OffsetDateTime>,
}

pub fn micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000) as i64
}

impl ProductItem {
    /// The item for `product` as read at `fetched_at`, one version past `previous`.
    pub fn new(
        product: &Product,
        content_hash: String,
        source: WriteSource,
        fetched_at: OffsetDateTime,
        now: OffsetDateTime,
        previous_version: Option<u64>,
    ) -> Self {
        Self {
            product_id: product.id,
            external_id: external_id(product.id),
            name: product.name.clone(),
            slug: product.slug.clone(),
            description: product.description.clone(),
            price: product.price,
            compare_price: product.compare_price,
            product_type: product.product_type.clone(),
            is_active: product.is_active,
            is_featured: product.is_featured,
            stock: product.stock,
            sku: product.sku.clone(),
            category: product.category.clone(),
            image_url: product.image_url().map(str::to_owned),
            images: product.images.clone(),
            delivery_servers: product.delivery_servers.clone(),
            pixlpay_created_at: product.created_at,
            pixlpay_updated_at: product.updated_at,
            pixlpay_updated_at_us: micros(product.updated_at),
            fetched_at_us: micros(fetched_at),
            extra: product.extra.clone(),
            content_hash,
            synced_at: now,
            source,
            version: previous_version.map_or(1, |v| v + 1),
            deleted: false,
            deleted_at: None,
        }
    }

    /// The Pixlpay product this item holds (for events, diffs and hashing).
    pub fn to_product(&self) -> Product {
        Product {
            id: self.product_id,
            name: self.name.clone(),
            slug: self.slug.clone(),
            description: self.description.clone(),
            price: self.price,
            compare_price: self.compare_price,
            product_type: self.product_type.clone(),
            is_active: self.is_active,
            is_featured: self.is_featured,
            stock: self.stock,
            sku: self.sku.clone(),
            category: self.category.clone(),
            images: self.images.clone(),
            delivery_servers: self.delivery_servers.clone(),
            created_at: self.pixlpay_created_at,
            updated_at: self.pixlpay_updated_at,
            extra: self.extra.clone(),
        }
    }

    /// This item soft-deleted at `now`, one version on.
    pub fn soft_deleted(&self, source: WriteSource, now: OffsetDateTime) -> Self {
        Self {
            deleted: true,
            deleted_at: Some(now),
            synced_at: now,
            source,
            version: self.version + 1,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_item_round_trips_through_dynamodb_attributes_exactly() {
        let product = Product::from_json(json!({
            "id": 12, "name": "VIP", "price": "9.990", "compare_price": "14.99", "stock": 3, "type": "digital",
            "category": null, "images": [{"url": "https://cdn.pixlpay.net/a.png", "is_primary": true}],
            "updated_at": "2025-01-20T14:30:00.123456Z", "created_at": "2025-01-01T00:00:00Z",
            "variants": [{"id": 1, "price": "1.50"}], "weight": 1.25
        }))
        .unwrap();
        let now = OffsetDateTime::now_utc();
        let item = ProductItem::new(
            &product,
            product.content_hash(),
            WriteSource::FullSync,
            now,
            now,
            Some(4),
        );
        let attributes: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
            serde_dynamo::to_item(&item).unwrap();
        assert_eq!(
            attributes["price"].as_s().unwrap(),
            "9.990",
            "price stays an exact decimal string"
        );
        assert_eq!(attributes["external_id"].as_s().unwrap(), "pixlpay_12");
        assert_eq!(attributes["version"].as_n().unwrap(), "5");
        let back: ProductItem = serde_dynamo::from_item(attributes).unwrap();
        assert_eq!(back, item);
        assert_eq!(back.to_product(), product);
        assert_eq!(back.to_product().content_hash(), item.content_hash);
    }
}
