//! The simulator's product catalog: deterministic seeding, changes that bump `updated_at`, the documented list
//! filters and sorts, and rendering in either documented dialect (pixlpay-api.md §4.3).

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use time::{Duration, OffsetDateTime, macros::datetime};

use pixlpay_sync::timestamp;

const CATEGORIES: [(u64, &str, &str); 5] = [
    (1, "Ranks", "ranks"),
    (2, "Currency", "currency"),
    (3, "Kits", "kits"),
    (4, "Cosmetics", "cosmetics"),
    (5, "Boosts", "boosts"),
];
const TYPES: [&str; 3] = ["digital", "subscription", "physical"];
const SERVERS: [(u64, &str); 3] = [(1, "Main Server"), (2, "Creative"), (3, "Survival")];

/// Which documented shape products are served in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// The API reference (`slug`, `compare_price`, `stock`, `category.slug`, `images[{url,is_primary}]`,
    /// `delivery_servers` on the single view).
    #[default]
    Api,
    /// The guides (`compare_at_price`, `stock_quantity`, `sku`, `is_featured`, `images[].id`, no slugs).
    Guide,
    /// Even ids in the API dialect, odd ids in the guide dialect, on the same page.
    Mixed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SimProduct {
    pub id: u64,
    pub name: String,
    pub description: String,
    pub price: Decimal,
    pub compare_price: Option<Decimal>,
    pub product_type: String,
    pub is_active: bool,
    pub is_featured: bool,
    pub stock: Option<i64>,
    pub category: Option<u64>,
    pub image_count: u8,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// Raw values set through the control API that win over the typed fields when rendered, so a test can serve
    /// exactly the malformed product it needs.
    pub overrides: Map<String, Value>,
}

fn slugify(name: &str) -> String {
    name.to_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

impl SimProduct {
    /// Product `id` of a catalog seeded with `seed`: the same inputs always give the same product.
    pub fn seeded(id: u64, seed: u64) -> Self {
        let mix = id
            .wrapping_mul(6364136223846793005)
            .wrapping_add(seed.wrapping_mul(1442695040888963407));
        let h = mix ^ (mix >> 29);
        let cents = 99 + (h % 9_900) as i64; // 0.99 .. 99.98
        let created_at = datetime!(2025-01-01 00:00 UTC) + Duration::minutes(id as i64);
        Self {
            id,
            name: format!("Product {id}"),
            description: format!("Seeded product number {id}."),
            price: Decimal::new(cents, 2),
            compare_price: h.is_multiple_of(4).then(|| Decimal::new(cents + 500, 2)),
            product_type: TYPES[(h % 3) as usize].into(),
            is_active: !h.is_multiple_of(10),
            is_featured: h.is_multiple_of(7),
            stock: (h % 3 == 2).then_some((h % 500) as i64),
            category: (h % 6 != 5).then_some(1 + h % 5),
            image_count: (h % 3) as u8,
            created_at,
            updated_at: created_at + Duration::hours((h % 100) as i64),
            overrides: Map::new(),
        }
    }

    /// Renders the product as Pixlpay would. `single` is the `GET /products/{id}` view, which carries fields the list
    /// items do not (pixlpay-api.md §4.3: `delivery_servers`, and in the guide `sku`/`is_featured`).
    pub fn render(&self, dialect: Dialect, single: bool, extra_fields: bool) -> Value {
        let guide = match dialect {
            Dialect::Api => false,
            Dialect::Guide => true,
            Dialect::Mixed => self.id % 2 == 1,
        };
        let money = |d: Decimal| Value::String(d.to_string());
        let mut p = Map::new();
        p.insert("id".into(), json!(self.id));
        p.insert("name".into(), json!(self.name));
        if !guide {
            p.insert("slug".into(), json!(slugify(&self.name)));
        }
        p.insert("description".into(), json!(self.description));
        p.insert("price".into(), money(self.price));
        let compare = self.compare_price.map(money).unwrap_or(Value::Null);
        p.insert(if guide { "compare_at_price" } else { "compare_price" }.into(), compare);
        p.insert("type".into(), json!(self.product_type));
        p.insert("is_active".into(), json!(self.is_active));
        p.insert(if guide { "stock_quantity" } else { "stock" }.into(), json!(self.stock));
        if guide && single {
            p.insert("sku".into(), json!(format!("SKU-{:05}", self.id)));
            p.insert("is_featured".into(), json!(self.is_featured));
        }
        let category = self.category.and_then(|c| CATEGORIES.iter().find(|(id, ..)| *id == c));
        p.insert(
            "category".into(),
            match category {
                None => Value::Null,
                Some((id, name, _)) if guide => json!({"id": id, "name": name}),
                Some((id, name, slug)) => json!({"id": id, "name": name, "slug": slug}),
            },
        );
        let images: Vec<Value> = (0..self.image_count)
            .map(|i| {
                let url = format!("https://cdn.pixlpay.net/products/{}-{i}.png", slugify(&self.name));
                let primary = i + 1 == self.image_count; // primary last, so "primary first" is really tested
                if guide {
                    json!({"id": self.id * 10 + u64::from(i), "url": url, "is_primary": primary})
                } else {
                    json!({"url": url, "is_primary": primary})
                }
            })
            .collect();
        p.insert("images".into(), Value::Array(images));
        if !guide && single {
            let servers: Vec<Value> = SERVERS
                .iter()
                .take(1 + (self.id % 3) as usize)
                .map(|(id, name)| json!({"id": id, "name": name}))
                .collect();
            p.insert("delivery_servers".into(), Value::Array(servers));
        }
        p.insert("created_at".into(), json!(timestamp::format(self.created_at)));
        p.insert("updated_at".into(), json!(timestamp::format(self.updated_at)));
        if extra_fields {
            p.insert("x_sim_future_field".into(), json!({"nested": [1, 2, 3], "id": self.id}));
        }
        for (k, v) in &self.overrides {
            p.insert(k.clone(), v.clone());
        }
        Value::Object(p)
    }

    /// Applies a change from the control API. Known fields with the right type update the product; anything else
    /// (an unknown field, or a known one with a wrong value) becomes a raw override served as is.
    pub fn apply(&mut self, changes: &Map<String, Value>) {
        for (key, value) in changes {
            let applied = match (key.as_str(), value) {
                ("name", Value::String(s)) if !s.is_empty() => {
                    self.name = s.clone();
                    true
                }
                ("description", Value::String(s)) => {
                    self.description = s.clone();
                    true
                }
                ("price", Value::String(s)) => s.parse().map(|d| self.price = d).is_ok(),
                ("compare_price", Value::String(s)) => s.parse().map(|d| self.compare_price = Some(d)).is_ok(),
                ("compare_price", Value::Null) => {
                    self.compare_price = None;
                    true
                }
                ("type", Value::String(s)) if TYPES.contains(&s.as_str()) => {
                    self.product_type = s.clone();
                    true
                }
                ("is_active", Value::Bool(b)) => {
                    self.is_active = *b;
                    true
                }
                ("stock", Value::Null) => {
                    self.stock = None;
                    true
                }
                ("stock", Value::Number(n)) if n.is_i64() => {
                    self.stock = n.as_i64();
                    true
                }
                _ => false,
            };
            if applied {
                self.overrides.remove(key);
            } else {
                self.overrides.insert(key.clone(), value.clone());
            }
        }
    }

    fn category_slug(&self) -> Option<&'static str> {
        let c = self.category?;
        CATEGORIES.iter().find(|(id, ..)| *id == c).map(|(_, _, slug)| *slug)
    }
}

/// The store's products plus the clock that stamps changes.
#[derive(Debug, Default)]
pub struct Catalog {
    pub products: BTreeMap<u64, SimProduct>,
    pub next_id: u64,
}

impl Catalog {
    pub fn seeded(count: u64, seed: u64) -> Self {
        let products = (1..=count).map(|id| (id, SimProduct::seeded(id, seed))).collect();
        Self {
            products,
            next_id: count + 1,
        }
    }

    /// A change's `updated_at`: now at Pixlpay's second precision, and always at least a second after the previous
    /// value, so two changes in one second still order (a burst may run the clock a little ahead).
    fn stamp(previous: Option<OffsetDateTime>) -> OffsetDateTime {
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).expect("0 ns is valid");
        match previous {
            Some(prev) if prev + Duration::seconds(1) > now => prev + Duration::seconds(1),
            _ => now,
        }
    }

    pub fn create(&mut self, fields: &Map<String, Value>) -> &SimProduct {
        let id = self.next_id.max(1);
        self.next_id = id + 1;
        // Never earlier than the newest product, so created_at order stays id order.
        let newest = self.products.values().next_back().map(|p| p.created_at);
        let now = Self::stamp(newest.map(|t| t - Duration::seconds(1)));
        let mut product = SimProduct::seeded(id, 0);
        product.created_at = now;
        product.updated_at = now;
        product.apply(fields);
        self.products.insert(id, product);
        &self.products[&id]
    }

    pub fn update(&mut self, id: u64, fields: &Map<String, Value>) -> Option<&SimProduct> {
        let product = self.products.get_mut(&id)?;
        product.apply(fields);
        product.updated_at = Self::stamp(Some(product.updated_at));
        Some(product)
    }

    /// Every product matching the list filters, sorted as asked (ties broken by id).
    pub fn query(&self, q: &ListQuery) -> Vec<&SimProduct> {
        let search = q.search.as_ref().map(|s| s.to_lowercase());
        let mut found: Vec<&SimProduct> = self
            .products
            .values()
            .filter(|p| q.product_type.as_ref().is_none_or(|t| &p.product_type == t))
            .filter(|p| q.is_active.is_none_or(|a| p.is_active == a))
            .filter(|p| {
                q.category_slug
                    .as_ref()
                    .is_none_or(|s| p.category_slug() == Some(s.as_str()))
            })
            .filter(|p| q.category_id.is_none_or(|c| p.category == Some(c)))
            .filter(|p| {
                search.as_ref().is_none_or(|s| {
                    p.name.to_lowercase().contains(s.as_str()) || p.description.to_lowercase().contains(s.as_str())
                })
            })
            .collect();
        // Already in id order; sort_by is stable and linear on sorted input.
        match q.sort {
            SortField::CreatedAt => found.sort_by_key(|p| p.created_at),
            SortField::Name => found.sort_by(|a, b| a.name.cmp(&b.name)),
            SortField::Price => found.sort_by_key(|p| p.price),
            SortField::Id => {}
        }
        if q.descending {
            found.reverse();
        }
        found
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    Id,
    CreatedAt,
    Name,
    Price,
}

#[derive(Debug, Clone)]
pub struct ListQuery {
    pub product_type: Option<String>,
    pub is_active: Option<bool>,
    pub category_slug: Option<String>,
    pub category_id: Option<u64>,
    pub search: Option<String>,
    pub sort: SortField,
    pub descending: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use pixlpay_sync::Product;

    #[test]
    fn seeding_is_deterministic_and_every_rendering_validates() {
        assert_eq!(SimProduct::seeded(42, 7), SimProduct::seeded(42, 7));
        assert_ne!(SimProduct::seeded(42, 7).price, SimProduct::seeded(42, 8).price);
        let catalog = Catalog::seeded(300, 1);
        for dialect in [Dialect::Api, Dialect::Guide, Dialect::Mixed] {
            for p in catalog.products.values() {
                for single in [false, true] {
                    let parsed = Product::from_json(p.render(dialect, single, true)).unwrap();
                    assert_eq!(parsed.price, p.price);
                    assert_eq!(parsed.compare_price, p.compare_price);
                    assert_eq!(parsed.stock, p.stock);
                }
            }
        }
    }

    #[test]
    fn updates_always_move_updated_at_forward() {
        let mut catalog = Catalog::seeded(1, 1);
        let mut last = catalog.products[&1].updated_at;
        for i in 0..5 {
            let fields = json!({"name": format!("n{i}")});
            let updated = catalog.update(1, fields.as_object().unwrap()).unwrap().updated_at;
            assert!(updated > last);
            last = updated;
        }
    }
}
