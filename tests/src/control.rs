//! `/_sim/`: the control API tests and the demo use to play the store owner (change products, which sends signed
//! webhooks), read the truth, count requests and inject faults. Not part of Pixlpay; no auth, no rate limit.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::api::error;
use crate::catalog::Catalog;
use crate::delivery;
use crate::state::{Faults, Settings, SimState, TokenInfo};

pub fn router(state: SimState) -> Router {
    Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/seed", post(seed))
        .route("/products", get(all_products).post(create_product))
        .route(
            "/products/{id}",
            get(one_product).patch(update_product).delete(delete_product),
        )
        .route("/stats", get(stats))
        .route("/stats/reset", post(reset_stats))
        .route("/faults", get(get_faults).put(put_faults))
        .route("/settings", get(get_settings).put(put_settings))
        .route("/tokens", post(create_token))
        .route("/deliveries", get(deliveries))
        .route("/webhooks/flush", post(flush))
        .with_state(state)
}

#[derive(Deserialize)]
struct SilentQuery {
    /// Change the product without sending a webhook: a webhook Pixlpay never sent.
    #[serde(default)]
    silent: bool,
}

fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "Bad Request", message)
}

fn object(body: &Bytes) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ if body.is_empty() => Ok(Map::new()),
        _ => Err(bad_request("body must be a JSON object")),
    }
}

#[derive(Deserialize)]
struct SeedRequest {
    count: u64,
    #[serde(default = "one")]
    seed: u64,
}

fn one() -> u64 {
    1
}

/// Replaces the catalog with `count` deterministic products, without webhooks.
async fn seed(State(state): State<SimState>, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<SeedRequest>(&body) else {
        return bad_request("expected {\"count\": N, \"seed\": S}");
    };
    if request.count > 1_000_000 {
        return bad_request("count may be at most 1000000");
    }
    state.lock().catalog = Catalog::seeded(request.count, request.seed);
    Json(json!({"seeded": request.count})).into_response()
}

/// The truth: every product in the single-product view of the API dialect, in id order.
async fn all_products(State(state): State<SimState>) -> Response {
    let inner = state.lock();
    let data: Vec<Value> = inner
        .catalog
        .products
        .values()
        .map(|p| p.render(inner.settings.dialect, true, inner.settings.extra_fields))
        .collect();
    Json(json!({"count": data.len(), "data": data})).into_response()
}

async fn one_product(State(state): State<SimState>, Path(id): Path<u64>) -> Response {
    let inner = state.lock();
    match inner.catalog.products.get(&id) {
        Some(p) => Json(p.render(inner.settings.dialect, true, inner.settings.extra_fields)).into_response(),
        None => error(StatusCode::NOT_FOUND, "Not Found", "Product not found"),
    }
}

async fn create_product(State(state): State<SimState>, Query(q): Query<SilentQuery>, body: Bytes) -> Response {
    let fields = match object(&body) {
        Ok(fields) => fields,
        Err(response) => return response,
    };
    let mut inner = state.lock();
    let product = inner.catalog.create(&fields).clone();
    let pending = if q.silent {
        Vec::new()
    } else {
        inner.prepare_deliveries("product.created", Some(&product))
    };
    let rendered = product.render(inner.settings.dialect, true, inner.settings.extra_fields);
    drop(inner);
    delivery::dispatch(&state, pending);
    (StatusCode::CREATED, Json(rendered)).into_response()
}

/// Changes fields (bumping `updated_at`); a field with a value Pixlpay would never send is served as is, to make a
/// product invalid on purpose.
async fn update_product(
    State(state): State<SimState>,
    Path(id): Path<u64>,
    Query(q): Query<SilentQuery>,
    body: Bytes,
) -> Response {
    let fields = match object(&body) {
        Ok(fields) => fields,
        Err(response) => return response,
    };
    let mut inner = state.lock();
    let Some(product) = inner.catalog.update(id, &fields).cloned() else {
        return error(StatusCode::NOT_FOUND, "Not Found", "Product not found");
    };
    let pending = if q.silent {
        Vec::new()
    } else {
        inner.prepare_deliveries("product.updated", Some(&product))
    };
    let rendered = product.render(inner.settings.dialect, true, inner.settings.extra_fields);
    drop(inner);
    delivery::dispatch(&state, pending);
    Json(rendered).into_response()
}

async fn delete_product(State(state): State<SimState>, Path(id): Path<u64>, Query(q): Query<SilentQuery>) -> Response {
    let mut inner = state.lock();
    let Some(product) = inner.catalog.products.remove(&id) else {
        return error(StatusCode::NOT_FOUND, "Not Found", "Product not found");
    };
    let pending = if q.silent {
        Vec::new()
    } else {
        inner.prepare_deliveries("product.deleted", Some(&product))
    };
    drop(inner);
    delivery::dispatch(&state, pending);
    Json(json!({"deleted": id})).into_response()
}

async fn stats(State(state): State<SimState>) -> Response {
    Json(state.lock().stats_json()).into_response()
}

async fn reset_stats(State(state): State<SimState>) -> Response {
    state.lock().stats.clear();
    Json(json!({"reset": true})).into_response()
}

async fn get_faults(State(state): State<SimState>) -> Response {
    Json(json!(state.lock().faults)).into_response()
}

/// Replaces the faults; fields left out take their defaults (no fault).
async fn put_faults(State(state): State<SimState>, body: Bytes) -> Response {
    match serde_json::from_slice::<Faults>(&body) {
        Ok(faults) if (0.0..=1.0).contains(&faults.error_rate) => {
            state.lock().faults = faults.clone();
            Json(json!(faults)).into_response()
        }
        Ok(_) => bad_request("error_rate must be between 0 and 1"),
        Err(e) => bad_request(&format!("invalid faults: {e}")),
    }
}

async fn get_settings(State(state): State<SimState>) -> Response {
    Json(json!(state.lock().settings)).into_response()
}

/// Replaces the settings; fields left out take their defaults.
async fn put_settings(State(state): State<SimState>, body: Bytes) -> Response {
    match serde_json::from_slice::<Settings>(&body) {
        Ok(settings) => {
            state.lock().settings = settings.clone();
            Json(json!(settings)).into_response()
        }
        Err(e) => bad_request(&format!("invalid settings: {e}")),
    }
}

#[derive(Deserialize)]
struct TokenRequest {
    token: String,
    scopes: Vec<String>,
    rpm: Option<u32>,
}

/// Adds (or replaces) an API token with the given scopes and rate limit (1-1000 per minute, as Pixlpay allows).
async fn create_token(State(state): State<SimState>, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<TokenRequest>(&body) else {
        return bad_request("expected {\"token\": T, \"scopes\": [..], \"rpm\": N}");
    };
    let mut inner = state.lock();
    let rpm = request.rpm.unwrap_or(inner.config.rpm);
    if request.token.trim().is_empty() || !(1..=1000).contains(&rpm) {
        return bad_request("token must be non-empty and rpm between 1 and 1000");
    }
    inner.tokens.insert(
        request.token.clone(),
        TokenInfo {
            scopes: request.scopes,
            rpm,
        },
    );
    (StatusCode::CREATED, Json(json!({"token": request.token, "rpm": rpm}))).into_response()
}

async fn deliveries(State(state): State<SimState>) -> Response {
    Json(json!({"data": state.lock().deliveries})).into_response()
}

async fn flush(State(state): State<SimState>) -> Response {
    let sent = delivery::flush(&state).await;
    Json(json!({"flushed": sent})).into_response()
}
