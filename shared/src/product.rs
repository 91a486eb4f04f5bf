//! The Pixlpay product, as the sync keeps it.
//!
//! Pixlpay's docs describe the product in two dialects (pixlpay-api.md §4.3): `compare_price` or `compare_at_price`,
//! `stock` or `stock_quantity`, categories with or without a slug, images with or without an id. [`Product::from_json`]
//! accepts both, keeps every field it does not know in [`Product::extra`], and validates the fields the sync relies on,
//! so one malformed product is an [`InvalidProduct`] for that product alone, never a failed page.
//!
//! Serialised (for storage and events) a product always uses the API-reference spelling, prices as exact decimal
//! strings and timestamps as RFC 3339 in UTC.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::timestamp;

/// Pixlpay's product id: a positive integer.
pub type ProductId = u64;

/// The largest id accepted: ids are stored as DynamoDB numbers and travel through systems with signed 64-bit ints.
pub const MAX_PRODUCT_ID: u64 = i64::MAX as u64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    pub url: String,
    #[serde(default)]
    pub is_primary: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryServer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A validated Pixlpay product. `id`, `name`, `price` and `updated_at` are required: without them a product cannot
/// be shown, sold or ordered against newer writes (design.md §5 rule 2). Everything else is optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub id: ProductId,
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
    /// `None` is Pixlpay's `null`: stock not tracked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stock: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<Image>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delivery_servers: Vec<DeliveryServer>,
    #[serde(default, with = "timestamp::option", skip_serializing_if = "Option::is_none")]
    pub created_at: Option<OffsetDateTime>,
    #[serde(with = "timestamp::required")]
    pub updated_at: OffsetDateTime,
    /// Fields Pixlpay sent that this version does not know: kept, stored and hashed, never dropped.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// Why a product from Pixlpay was rejected. Names the product (when its id was readable) and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid product{}: field `{field}` {reason}", id.map(|id| format!(" {id}")).unwrap_or_default())]
pub struct InvalidProduct {
    pub id: Option<ProductId>,
    pub field: String,
    pub reason: String,
}

/// Why a value is not a product id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProductIdError {
    #[error("must be a JSON integer, not {0}")]
    NotAnInteger(&'static str),
    #[error("must be positive")]
    NotPositive,
    #[error("must be at most {MAX_PRODUCT_ID}")]
    TooLarge,
}

/// Reads a product id from JSON: a positive integer no larger than [`MAX_PRODUCT_ID`]. Strings are refused: the docs
/// show ids as integers everywhere, and a quoted id is a sign of a different producer.
pub fn product_id_from_json(value: &Value) -> Result<ProductId, ProductIdError> {
    match value {
        Value::Number(n) => {
            if let Some(id) = n.as_u64() {
                match id {
                    0 => Err(ProductIdError::NotPositive),
                    id if id > MAX_PRODUCT_ID => Err(ProductIdError::TooLarge),
                    id => Ok(id),
                }
            } else if n.as_i64().is_some() {
                Err(ProductIdError::NotPositive)
            } else if n.as_f64().is_some_and(|f| f.fract() == 0.0 && f > 0.0) {
                Err(ProductIdError::TooLarge)
            } else {
                Err(ProductIdError::NotAnInteger("a fraction"))
            }
        }
        other => Err(ProductIdError::NotAnInteger(json_kind(other))),
    }
}

pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses a decimal from a JSON string (the documented form, `"9.99"`) or a JSON number. A number is read through its
/// shortest decimal representation, which is exact for every price a shop would set.
fn decimal_from_json(value: &Value) -> Result<Decimal, String> {
    let text = match value {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        other => return Err(format!("must be a decimal string, not {}", json_kind(other))),
    };
    let parsed: Decimal = text
        .parse()
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|_| format!("is not a decimal: {text:?}"))?;
    if parsed.is_sign_negative() && !parsed.is_zero() {
        return Err(format!("must not be negative: {text:?}"));
    }
    Ok(parsed)
}

/// Field-by-field reader over one product object, so every error names its field and product.
struct Fields {
    id: Option<ProductId>,
    map: Map<String, Value>,
}

impl Fields {
    fn invalid(&self, field: &str, reason: impl Into<String>) -> InvalidProduct {
        InvalidProduct {
            id: self.id,
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    /// Removes `field` (or, when absent or null, its documented alias) from the map. `null` counts as absent.
    fn take(&mut self, field: &str, alias: Option<&str>) -> Option<(String, Value)> {
        let mut found = None;
        for name in std::iter::once(field).chain(alias) {
            if let Some(value) = self.map.remove(name)
                && found.is_none()
                && !value.is_null()
            {
                found = Some((name.to_owned(), value));
            }
        }
        found
    }

    fn string(&mut self, field: &str) -> Result<Option<String>, InvalidProduct> {
        match self.take(field, None) {
            None => Ok(None),
            Some((_, Value::String(s))) => Ok(Some(s)),
            Some((name, other)) => Err(self.invalid(&name, format!("must be a string, not {}", json_kind(&other)))),
        }
    }

    fn boolean(&mut self, field: &str) -> Result<Option<bool>, InvalidProduct> {
        match self.take(field, None) {
            None => Ok(None),
            Some((_, Value::Bool(b))) => Ok(Some(b)),
            // Laravel APIs sometimes serialise booleans as 0/1.
            Some((_, Value::Number(n))) if n.as_u64() == Some(0) => Ok(Some(false)),
            Some((_, Value::Number(n))) if n.as_u64() == Some(1) => Ok(Some(true)),
            Some((name, other)) => Err(self.invalid(&name, format!("must be a boolean, not {}", json_kind(&other)))),
        }
    }

    fn decimal(&mut self, field: &str, alias: Option<&str>) -> Result<Option<Decimal>, InvalidProduct> {
        match self.take(field, alias) {
            None => Ok(None),
            Some((name, value)) => decimal_from_json(&value)
                .map(Some)
                .map_err(|reason| self.invalid(&name, reason)),
        }
    }

    fn stock(&mut self) -> Result<Option<i64>, InvalidProduct> {
        match self.take("stock", Some("stock_quantity")) {
            None => Ok(None),
            Some((_, Value::Number(n))) if n.as_i64().is_some() => Ok(n.as_i64()),
            Some((name, Value::String(s))) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| self.invalid(&name, format!("is not an integer: {s:?}"))),
            Some((name, other)) => Err(self.invalid(&name, format!("must be an integer, not {}", json_kind(&other)))),
        }
    }

    fn timestamp(&mut self, field: &str) -> Result<Option<OffsetDateTime>, InvalidProduct> {
        match self.take(field, None) {
            None => Ok(None),
            Some((name, Value::String(s))) => timestamp::parse(&s).map(Some).map_err(|e| self.invalid(&name, e)),
            Some((name, other)) => {
                Err(self.invalid(&name, format!("must be an RFC 3339 string, not {}", json_kind(&other))))
            }
        }
    }

    fn object<T: serde::de::DeserializeOwned>(&mut self, field: &str) -> Result<Option<T>, InvalidProduct> {
        match self.take(field, None) {
            None => Ok(None),
            Some((name, value)) => serde_json::from_value(value)
                .map(Some)
                .map_err(|e| self.invalid(&name, format!("is malformed: {e}"))),
        }
    }
}

impl Product {
    /// Validates one product object from Pixlpay, in either documented dialect.
    pub fn from_json(value: Value) -> Result<Product, InvalidProduct> {
        let Value::Object(map) = value else {
            return Err(InvalidProduct {
                id: None,
                field: "(product)".into(),
                reason: format!("must be an object, not {}", json_kind(&value)),
            });
        };
        let mut f = Fields { id: None, map };
        let id = match f.take("id", None) {
            None => return Err(f.invalid("id", "is missing")),
            Some((_, value)) => product_id_from_json(&value).map_err(|e| f.invalid("id", e.to_string()))?,
        };
        f.id = Some(id);
        let name = f.string("name")?.ok_or_else(|| f.invalid("name", "is missing"))?;
        if name.trim().is_empty() {
            return Err(f.invalid("name", "is empty"));
        }
        let price = f
            .decimal("price", None)?
            .ok_or_else(|| f.invalid("price", "is missing"))?;
        let updated_at = f
            .timestamp("updated_at")?
            .ok_or_else(|| f.invalid("updated_at", "is missing"))?;
        Ok(Product {
            id,
            name,
            slug: f.string("slug")?,
            description: f.string("description")?,
            price,
            compare_price: f.decimal("compare_price", Some("compare_at_price"))?,
            product_type: f.string("type")?,
            is_active: f.boolean("is_active")?,
            is_featured: f.boolean("is_featured")?,
            stock: f.stock()?,
            sku: f.string("sku")?,
            category: f.object("category")?,
            images: f.object("images")?.unwrap_or_default(),
            delivery_servers: f.object("delivery_servers")?.unwrap_or_default(),
            created_at: f.timestamp("created_at")?,
            updated_at,
            extra: f.map.into_iter().collect(),
        })
    }

    /// `pixlpay_<id>`, the key the seed guide gives external systems.
    pub fn external_id(&self) -> String {
        external_id(self.id)
    }

    /// The primary image's URL, else the first image's.
    pub fn image_url(&self) -> Option<&str> {
        self.images
            .iter()
            .find(|i| i.is_primary)
            .or(self.images.first())
            .map(|i| i.url.as_str())
    }

    /// SHA-256 (hex) of the product's canonical JSON (sorted keys, API-reference spelling). Equal hashes mean nothing
    /// Pixlpay reports has changed, including fields this version does not know.
    pub fn content_hash(&self) -> String {
        // serde_json's Map is ordered by key (no preserve_order feature), so to_value gives a canonical form.
        let canonical = serde_json::to_value(self).expect("a product always serialises");
        hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
    }
}

pub fn external_id(id: ProductId) -> String {
    format!("pixlpay_{id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn api_dialect() -> Value {
        json!({
            "id": 1, "name": "VIP Rank", "slug": "vip-rank", "description": "Get VIP status",
            "price": "9.99", "compare_price": "14.99", "type": "digital", "is_active": true, "stock": null,
            "category": {"id": 1, "name": "Ranks", "slug": "ranks"},
            "images": [{"url": "https://cdn.pixlpay.net/a.png", "is_primary": false},
                       {"url": "https://cdn.pixlpay.net/b.png", "is_primary": true}],
            "delivery_servers": [{"id": 1, "name": "Main Server"}],
            "created_at": "2025-01-15T10:30:00Z", "updated_at": "2025-01-15T10:30:00Z"
        })
    }

    #[test]
    fn reads_the_api_reference_dialect() {
        let p = Product::from_json(api_dialect()).unwrap();
        assert_eq!(p.id, 1);
        assert_eq!(p.price.to_string(), "9.99");
        assert_eq!(p.compare_price.unwrap().to_string(), "14.99");
        assert_eq!(p.stock, None);
        assert_eq!(p.image_url(), Some("https://cdn.pixlpay.net/b.png"));
        assert_eq!(p.category.as_ref().unwrap().slug.as_deref(), Some("ranks"));
        assert!(p.extra.is_empty(), "{:?}", p.extra);
    }

    #[test]
    fn reads_the_guide_dialect_with_microsecond_timestamps() {
        let p = Product::from_json(json!({
            "id": 2, "name": "Coins", "price": "4.50", "compare_at_price": "5.00", "stock_quantity": 12,
            "sku": "C-1", "is_featured": false, "category": {"id": 3, "name": "Currency"},
            "images": [{"id": 9, "url": "https://cdn.pixlpay.net/c.png", "is_primary": true}],
            "created_at": "2025-01-20T14:30:00.000000Z", "updated_at": "2025-01-20T14:30:00.123456Z"
        }))
        .unwrap();
        assert_eq!(p.compare_price.unwrap().to_string(), "5.00");
        assert_eq!(p.stock, Some(12));
        assert_eq!(p.updated_at.microsecond(), 123_456);
        // Stored in the canonical spelling, price exact.
        let out = serde_json::to_value(&p).unwrap();
        assert_eq!(out["compare_price"], "5.00");
        assert_eq!(out["stock"], 12);
        assert_eq!(out["price"], "4.50");
        assert_eq!(out["updated_at"], "2025-01-20T14:30:00.123456Z");
    }

    #[test]
    fn keeps_unknown_fields_and_hashes_them() {
        let mut value = api_dialect();
        value["variants"] = json!([{"id": 7}]);
        let with_extra = Product::from_json(value).unwrap();
        assert_eq!(with_extra.extra["variants"], json!([{"id": 7}]));
        let plain = Product::from_json(api_dialect()).unwrap();
        assert_ne!(with_extra.content_hash(), plain.content_hash());
        // Round trip through the canonical form keeps everything, hash included.
        let back: Product = serde_json::from_value(serde_json::to_value(&with_extra).unwrap()).unwrap();
        assert_eq!(back, with_extra);
        assert_eq!(back.content_hash(), with_extra.content_hash());
    }

    #[test]
    fn null_category_and_empty_images_are_fine() {
        let mut value = api_dialect();
        value["category"] = Value::Null;
        value["images"] = json!([]);
        let p = Product::from_json(value).unwrap();
        assert_eq!(p.category, None);
        assert_eq!(p.image_url(), None);
    }

    #[test]
    fn hash_ignores_dialect_but_not_content() {
        let api = Product::from_json(api_dialect()).unwrap();
        let mut guide = api_dialect();
        let cp = guide.as_object_mut().unwrap().remove("compare_price").unwrap();
        guide["compare_at_price"] = cp;
        assert_eq!(Product::from_json(guide).unwrap().content_hash(), api.content_hash());
        let mut changed = api_dialect();
        changed["price"] = json!("9.98");
        assert_ne!(Product::from_json(changed).unwrap().content_hash(), api.content_hash());
    }

    #[test]
    fn each_invalid_field_is_named() {
        let cases: Vec<(&str, Value, &str)> = vec![
            ("id", json!("1"), "id"),
            ("id", json!(-4), "id"),
            ("id", json!(0), "id"),
            ("id", json!(1.5), "id"),
            ("id", json!(18446744073709551615u64), "id"),
            ("name", json!(""), "name"),
            ("name", json!(5), "name"),
            ("price", json!("abc"), "price"),
            ("price", json!("-1.00"), "price"),
            ("price", json!(true), "price"),
            ("price", Value::Null, "price"),
            ("updated_at", json!("yesterday"), "updated_at"),
            ("updated_at", json!("2025-01-15 10:30:00"), "updated_at"),
            ("created_at", json!(12), "created_at"),
            ("stock", json!("many"), "stock"),
            ("is_active", json!("yes"), "is_active"),
            ("images", json!([{"is_primary": true}]), "images"),
            ("category", json!("ranks"), "category"),
        ];
        for (field, bad, named) in cases {
            let mut value = api_dialect();
            value[field] = bad.clone();
            let err = Product::from_json(value).expect_err(&format!("{field}={bad} should be invalid"));
            assert_eq!(err.field, named, "{field}={bad}: {err}");
        }
        let mut no_updated = api_dialect();
        no_updated.as_object_mut().unwrap().remove("updated_at");
        let err = Product::from_json(no_updated).unwrap_err();
        assert_eq!((err.id, err.field.as_str()), (Some(1), "updated_at"));
        assert!(Product::from_json(json!([1])).is_err());
    }

    #[test]
    fn numeric_prices_are_read_exactly() {
        let mut value = api_dialect();
        value["price"] = json!(19.99);
        assert_eq!(Product::from_json(value).unwrap().price.to_string(), "19.99");
    }
}
