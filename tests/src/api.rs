//! Pixlpay's external API as documented: `/api/external/v1/products[/{id}]`, the webhooks API, and (when enabled)
//! the announced `PUT /products/{id}`. Every request passes the guard: counting, injected latency and hangs, Bearer
//! auth, the per-token sliding window, injected errors, truncated bodies.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{Map, Value, json};

use crate::catalog::{ListQuery, SortField};
use crate::delivery;
use crate::state::{Admission, InjectedFault, KNOWN_EVENTS, SimState, TokenInfo, Webhook};

/// Where the API is mounted; route names in the stats leave it out ("GET /products/{id}").
pub const API_PREFIX: &str = "/api/external/v1";

pub fn router(state: SimState) -> Router {
    Router::new()
        .route("/products", get(list_products))
        .route("/products/{id}", get(get_product).put(put_product))
        .route("/webhooks", get(list_webhooks).post(create_webhook))
        .route(
            "/webhooks/{id}",
            get(get_webhook).put(update_webhook).delete(delete_webhook),
        )
        .route("/webhooks/{id}/test", post(test_webhook))
        .route_layer(middleware::from_fn_with_state(state.clone(), guard))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "Not Found",
                "The requested endpoint does not exist",
            )
        })
        .with_state(state)
}

pub fn error(status: StatusCode, error: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"success": false, "error": error, "message": message})),
    )
        .into_response()
}

fn validation(errors: Value) -> Response {
    let body = json!({"success": false, "error": "VALIDATION_ERROR", "message": "The given data was invalid", "errors": errors});
    (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
}

fn forbidden(scope: &str) -> Response {
    error(
        StatusCode::FORBIDDEN,
        "Forbidden",
        &format!("Token does not have the required scope: {scope}"),
    )
}

fn ok(data: Value) -> Response {
    Json(json!({"success": true, "data": data})).into_response()
}

async fn guard(State(state): State<SimState>, mut request: Request, next: Next) -> Response {
    let route = format!(
        "{} {}",
        request.method(),
        request
            .extensions()
            .get::<MatchedPath>()
            .map(|p| p.as_str().trim_start_matches(API_PREFIX))
            .unwrap_or("?")
    );
    let response = guarded(&state, &mut request).await;
    let response = match response {
        Err(refusal) => refusal,
        Ok(admitted) => {
            let response = next.run(request).await;
            let mut response = truncate_if_asked(&state, response).await;
            let h = response.headers_mut();
            h.insert("x-ratelimit-limit", HeaderValue::from(admitted.0));
            h.insert("x-ratelimit-remaining", HeaderValue::from(admitted.1));
            response
        }
    };
    state.lock().count(&route, response.status().as_u16());
    response
}

/// Everything before the handler. `Ok((limit, remaining))` admits the request; `Err` is the answer instead.
async fn guarded(state: &SimState, request: &mut Request) -> Result<(u64, u64), Response> {
    let (latency, hang) = {
        let mut inner = state.lock();
        let hang = (inner.faults.hang_next > 0).then(|| {
            inner.faults.hang_next -= 1;
            inner.faults.hang_ms
        });
        (inner.faults.latency_ms, hang)
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    if let Some(ms) = hang {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let token = bearer(request.headers());
    let mut inner = state.lock();
    let Some(info) = token.as_ref().and_then(|t| inner.tokens.get(t)).cloned() else {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Invalid or missing API token",
        ));
    };
    let token = token.expect("checked above");
    let (limit, remaining) = match inner.admit(&token, info.rpm) {
        Admission::Refused {
            limit,
            retry_after_secs,
            reset_unix,
        } => {
            return Err(too_many(limit, retry_after_secs, Some(reset_unix), true, true));
        }
        Admission::Allowed { limit, remaining } => (limit, remaining),
    };
    match inner.draw_fault() {
        Some(InjectedFault::RateLimited) => {
            let f = &inner.faults;
            return Err(too_many(
                limit,
                f.retry_after_secs,
                None,
                f.retry_after_header,
                f.retry_after_body,
            ));
        }
        Some(InjectedFault::Status(status)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let reason = status.canonical_reason().unwrap_or("Server Error");
            return Err(error(status, reason, "Injected fault"));
        }
        None => {}
    }
    drop(inner);
    request.extensions_mut().insert(info);
    Ok((limit, remaining))
}

fn too_many(limit: u64, retry_after: u64, reset: Option<i64>, in_header: bool, in_body: bool) -> Response {
    let mut body =
        json!({"success": false, "error": "Too Many Requests", "message": "Rate limit exceeded. Please slow down."});
    if in_body {
        body["retry_after"] = json!(retry_after);
    }
    let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    let h = response.headers_mut();
    h.insert("x-ratelimit-limit", HeaderValue::from(limit));
    h.insert("x-ratelimit-remaining", HeaderValue::from(0));
    if in_header {
        h.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        let reset = reset.unwrap_or_else(|| time::OffsetDateTime::now_utc().unix_timestamp() + retry_after as i64);
        h.insert("x-ratelimit-reset", HeaderValue::from(reset));
    }
    response
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?.trim();
    (!token.is_empty()).then(|| token.to_owned())
}

async fn truncate_if_asked(state: &SimState, response: Response) -> Response {
    let truncate = {
        let mut inner = state.lock();
        let go = response.status().is_success() && inner.faults.truncate_next > 0;
        if go {
            inner.faults.truncate_next -= 1;
        }
        go
    };
    if !truncate {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = to_bytes(body, usize::MAX).await.unwrap_or_default();
    let cut = bytes.slice(..bytes.len() / 2);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(cut.len()));
    Response::from_parts(parts, Body::from(cut))
}

/// Reads an integer query parameter the way Laravel validates one.
fn int_param(q: &HashMap<String, String>, name: &str, default: u64, errors: &mut Map<String, Value>) -> u64 {
    match q.get(name) {
        None => default,
        Some(text) => match text.trim().parse::<u64>() {
            Ok(n) if n >= 1 => n,
            _ => {
                errors.insert(
                    name.into(),
                    json!([format!("The {name} must be an integer of at least 1.")]),
                );
                default
            }
        },
    }
}

fn bool_param(q: &HashMap<String, String>, name: &str, errors: &mut Map<String, Value>) -> Option<bool> {
    match q.get(name).map(|s| s.trim()) {
        None => None,
        Some("true" | "1") => Some(true),
        Some("false" | "0") => Some(false),
        Some(_) => {
            errors.insert(name.into(), json!([format!("The {name} field must be true or false.")]));
            None
        }
    }
}

async fn list_products(
    State(state): State<SimState>,
    Extension(token): Extension<TokenInfo>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !token.allows("products:read") {
        return forbidden("products:read");
    }
    let mut errors = Map::new();
    let page = int_param(&q, "page", 1, &mut errors);
    let mut per_page = int_param(&q, "per_page", 15, &mut errors);
    // Both documented spellings of sorting and of the category filter (pixlpay-api.md §3, §4.2).
    let sort = match q.get("sort").or(q.get("sort_by")).map(String::as_str) {
        None => SortField::Id,
        Some("created_at") => SortField::CreatedAt,
        Some("name") => SortField::Name,
        Some("price") => SortField::Price,
        Some(_) => {
            errors.insert("sort".into(), json!(["The selected sort is invalid."]));
            SortField::Id
        }
    };
    let descending = match q.get("order").or(q.get("sort_order")).map(String::as_str) {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => {
            errors.insert("order".into(), json!(["The selected order is invalid."]));
            false
        }
    };
    let product_type = q.get("type").cloned();
    if let Some(t) = &product_type
        && !["digital", "subscription", "physical"].contains(&t.as_str())
    {
        errors.insert("type".into(), json!(["The selected type is invalid."]));
    }
    let is_active = bool_param(&q, "is_active", &mut errors);
    let category_id = q
        .contains_key("category_id")
        .then(|| int_param(&q, "category_id", 0, &mut errors));
    let settings_reject = state.lock().settings.reject_oversized_pages;
    if per_page > 100 {
        if settings_reject {
            errors.insert("per_page".into(), json!(["The per page may not be greater than 100."]));
        }
        per_page = 100;
    }
    if !errors.is_empty() {
        return validation(Value::Object(errors));
    }
    let query = ListQuery {
        product_type,
        is_active,
        category_slug: q.get("category").cloned(),
        category_id,
        search: q.get("search").cloned().filter(|s| !s.is_empty()),
        sort,
        descending,
    };
    let inner = state.lock();
    let found = inner.catalog.query(&query);
    let total = found.len() as u64;
    let last_page = total.div_ceil(per_page).max(1);
    let start = ((page - 1).saturating_mul(per_page)) as usize;
    let (dialect, extra) = (inner.settings.dialect, inner.settings.extra_fields);
    let data: Vec<Value> = found
        .iter()
        .skip(start)
        .take(per_page as usize)
        .map(|p| p.render(dialect, false, extra))
        .collect();
    let body = json!({
        "success": true,
        "data": data,
        "meta": {"current_page": page, "last_page": last_page, "per_page": per_page, "total": total},
    });
    Json(body).into_response()
}

fn parse_id(raw: &str) -> Option<u64> {
    raw.parse::<u64>().ok().filter(|id| *id >= 1)
}

async fn get_product(
    State(state): State<SimState>,
    Extension(token): Extension<TokenInfo>,
    Path(id): Path<String>,
) -> Response {
    if !token.allows("products:read") {
        return forbidden("products:read");
    }
    let inner = state.lock();
    match parse_id(&id).and_then(|id| inner.catalog.products.get(&id)) {
        Some(p) => ok(p.render(inner.settings.dialect, true, inner.settings.extra_fields)),
        None => error(StatusCode::NOT_FOUND, "Not Found", "Product not found"),
    }
}

/// The announced write endpoint (pixlpay-api.md §5), served only when writes are enabled. Validates like Laravel,
/// bumps `updated_at` and sends `product.updated` like any other change.
async fn put_product(
    State(state): State<SimState>,
    Extension(token): Extension<TokenInfo>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if !state.lock().settings.writes_enabled {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method Not Allowed",
            "Product write endpoints are not available",
        );
    }
    if !token.allows("products:write") {
        return forbidden("products:write");
    }
    let Ok(Value::Object(changes)) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "Bad Request",
            "The request body must be a JSON object",
        );
    };
    let errors = validate_product_changes(&changes);
    if !errors.is_empty() {
        return validation(Value::Object(errors));
    }
    let mut inner = state.lock();
    let Some(id) = parse_id(&id).filter(|id| inner.catalog.products.contains_key(id)) else {
        return error(StatusCode::NOT_FOUND, "Not Found", "Product not found");
    };
    let product = inner.catalog.update(id, &changes).expect("exists").clone();
    let pending = inner.prepare_deliveries("product.updated", Some(&product));
    let rendered = product.render(inner.settings.dialect, true, inner.settings.extra_fields);
    drop(inner);
    delivery::dispatch(&state, pending);
    Json(json!({"success": true, "message": "Product updated successfully", "data": rendered})).into_response()
}

fn validate_product_changes(changes: &Map<String, Value>) -> Map<String, Value> {
    let mut errors = Map::new();
    let decimal_ok = |v: &Value| {
        v.as_str()
            .and_then(|s| s.parse::<rust_decimal::Decimal>().ok())
            .is_some_and(|d| !d.is_sign_negative())
    };
    for (key, value) in changes {
        let problem = match key.as_str() {
            "name" => value
                .as_str()
                .is_none_or(|s| s.trim().is_empty())
                .then_some("The name must be a non-empty string."),
            "description" => (!value.is_string()).then_some("The description must be a string."),
            "price" => (!decimal_ok(value)).then_some("The price must be a non-negative decimal string."),
            "compare_price" => {
                (!(value.is_null() || decimal_ok(value))).then_some("The compare price must be a decimal string.")
            }
            "is_active" => (!value.is_boolean()).then_some("The is active field must be true or false."),
            "stock" => (!(value.is_null() || value.is_i64())).then_some("The stock must be an integer."),
            _ => Some("This field cannot be changed."),
        };
        if let Some(message) = problem {
            errors.insert(key.clone(), json!([message]));
        }
    }
    if changes.is_empty() {
        errors.insert("body".into(), json!(["At least one field is required."]));
    }
    errors
}

async fn list_webhooks(State(state): State<SimState>, Extension(token): Extension<TokenInfo>) -> Response {
    if !token.allows("webhooks:read") {
        return forbidden("webhooks:read");
    }
    let inner = state.lock();
    ok(json!(inner.webhooks.values().collect::<Vec<_>>()))
}

/// Validates a webhook's `url` and `events` (each optional when `partial`), as the 422 examples in the docs show.
fn validate_webhook(body: &Map<String, Value>, partial: bool, allow_http: bool) -> Map<String, Value> {
    let mut errors = Map::new();
    match body.get("url") {
        None if partial => {}
        None => {
            errors.insert("url".into(), json!(["The url field is required."]));
        }
        Some(url) => {
            let parsed = url.as_str().and_then(|u| url::Url::parse(u).ok());
            let scheme_ok = parsed
                .as_ref()
                .is_some_and(|u| u.scheme() == "https" || (allow_http && u.scheme() == "http"));
            if !scheme_ok {
                errors.insert("url".into(), json!(["The url must be a valid URL."]));
            }
        }
    }
    match body.get("events") {
        None if partial => {}
        Some(Value::Array(events)) if !events.is_empty() => {
            for (i, e) in events.iter().enumerate() {
                if !e.as_str().is_some_and(|e| KNOWN_EVENTS.contains(&e)) {
                    errors.insert(
                        format!("events.{i}"),
                        json!([format!("The selected events.{i} is invalid.")]),
                    );
                }
            }
        }
        _ => {
            errors.insert("events".into(), json!(["The events field is required."]));
        }
    }
    if let Some(active) = body.get("is_active")
        && !active.is_boolean()
    {
        errors.insert(
            "is_active".into(),
            json!(["The is active field must be true or false."]),
        );
    }
    errors
}

fn json_object(body: &[u8]) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "Bad Request",
            "The request body must be a JSON object",
        )),
    }
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|e| e.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

async fn create_webhook(
    State(state): State<SimState>,
    Extension(token): Extension<TokenInfo>,
    body: axum::body::Bytes,
) -> Response {
    if !token.allows("webhooks:write") {
        return forbidden("webhooks:write");
    }
    let body = match json_object(&body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let mut inner = state.lock();
    let errors = validate_webhook(&body, false, inner.settings.allow_http_webhooks);
    if !errors.is_empty() {
        return validation(Value::Object(errors));
    }
    let id = inner.next_webhook_id;
    inner.next_webhook_id += 1;
    let webhook = Webhook {
        id,
        url: body["url"].as_str().expect("validated").to_owned(),
        events: string_list(body.get("events")),
        is_active: true,
        secret: inner.random_token("whsec_", 32),
        created_at: pixlpay_sync::timestamp::format(
            time::OffsetDateTime::now_utc().replace_nanosecond(0).expect("valid"),
        ),
    };
    inner.webhooks.insert(id, webhook.clone());
    // The secret is shown once, here.
    let mut data = serde_json::to_value(&webhook).expect("serialises");
    data["secret"] = json!(webhook.secret);
    let body = json!({"success": true, "message": "Webhook created successfully", "data": data});
    (StatusCode::CREATED, Json(body)).into_response()
}

async fn get_webhook(
    State(state): State<SimState>,
    Extension(token): Extension<TokenInfo>,
    Path(id): Path<String>,
) -> Response {
    if !token.allows("webhooks:read") {
        return forbidden("webhooks:read");
    }
    let inner = state.lock();
    match parse_id(&id).and_then(|id| inner.webhooks.get(&id)) {
        Some(w) => ok(json!(w)),
        None => error(StatusCode::NOT_FOUND, "Not Found", "Webhook not found"),
    }
}

async fn update_webhook(
    State(state): State<SimState>,
    Extension(token): Extension<TokenInfo>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if !token.allows("webhooks:write") {
        return forbidden("webhooks:write");
    }
    let body = match json_object(&body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let mut inner = state.lock();
    let errors = validate_webhook(&body, true, inner.settings.allow_http_webhooks);
    if !errors.is_empty() {
        return validation(Value::Object(errors));
    }
    let Some(webhook) = parse_id(&id).and_then(|id| inner.webhooks.get_mut(&id)) else {
        return error(StatusCode::NOT_FOUND, "Not Found", "Webhook not found");
    };
    if let Some(url) = body.get("url").and_then(Value::as_str) {
        webhook.url = url.to_owned();
    }
    if body.contains_key("events") {
        webhook.events = string_list(body.get("events"));
    }
    if let Some(active) = body.get("is_active").and_then(Value::as_bool) {
        webhook.is_active = active;
    }
    Json(json!({"success": true, "message": "Webhook updated successfully", "data": webhook})).into_response()
}

async fn delete_webhook(
    State(state): State<SimState>,
    Extension(token): Extension<TokenInfo>,
    Path(id): Path<String>,
) -> Response {
    if !token.allows("webhooks:write") {
        return forbidden("webhooks:write");
    }
    let mut inner = state.lock();
    match parse_id(&id).and_then(|id| inner.webhooks.remove(&id)) {
        Some(_) => Json(json!({"success": true, "message": "Webhook deleted successfully"})).into_response(),
        None => error(StatusCode::NOT_FOUND, "Not Found", "Webhook not found"),
    }
}

/// The dashboard's Test button as an API call: a signed `webhook.test` event to this webhook alone.
async fn test_webhook(
    State(state): State<SimState>,
    Extension(token): Extension<TokenInfo>,
    Path(id): Path<String>,
) -> Response {
    if !token.allows("webhooks:write") {
        return forbidden("webhooks:write");
    }
    let mut inner = state.lock();
    let Some(webhook) = parse_id(&id).and_then(|id| inner.webhooks.get(&id)).cloned() else {
        return error(StatusCode::NOT_FOUND, "Not Found", "Webhook not found");
    };
    let pending = inner.build_delivery(webhook, "webhook.test", None);
    drop(inner);
    delivery::dispatch(&state, vec![pending]);
    Json(json!({"success": true, "message": "Test webhook sent"})).into_response()
}
