//! A tenant's HTTP endpoints for its events: `PUT /v1/sinks/{name}` (answered with the signing
//! secret `whsec_…` on creation only), `GET /v1/sinks`, `GET` and `DELETE /v1/sinks/{name}`,
//! `POST /v1/sinks/{name}/rotate-secret` (the old secret signs beside the new one for 24 h),
//! `POST /v1/sinks/{name}/test` (a `ping`, sent at once) and `GET /v1/sinks/{name}/attempts`.
//!
//! An endpoint's URL passes the outbound guard when it is set: `https`, on a public address;
//! plain `http` and private addresses only where `outbound.allow_private_networks` opens them.
//! Deliveries are checked again when they are made.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::TenantAuth;
use super::json::JsonBody;
use super::problem::ApiError;
use super::AppState;
use crate::events::{Event, ALL_TYPES};
use crate::forward::endpoints::Deliveries;
use crate::forward::webhook;
use crate::store::endpoints::{self, Endpoint, EndpointInput};

/// How long a rotated secret keeps signing beside the new one.
const ROTATION_OVERLAP_HOURS: i64 = 24;
/// Endpoints per tenant: each event is queued once per endpoint.
const MAX_ENDPOINTS: usize = 20;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/sinks", get(list))
        .route("/v1/sinks/{name}", get(show).put(put).delete(remove))
        .route("/v1/sinks/{name}/rotate-secret", post(rotate))
        .route("/v1/sinks/{name}/test", post(test))
        .route("/v1/sinks/{name}/attempts", get(attempts))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SinkBody {
    kind: Option<String>,
    url: Option<String>,
    #[serde(default)]
    event_types: Vec<String>,
    #[serde(default)]
    include_personal_data: bool,
}

fn view(endpoint: &Endpoint) -> Value {
    json!({
        "name": endpoint.name,
        "kind": "http",
        "url": endpoint.url,
        "event_types": endpoint.event_types,
        "include_personal_data": endpoint.include_personal_data,
        "disabled_at": endpoint.disabled_at,
        "disabled_reason": endpoint.disabled_reason,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
    })
}

fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::validation(
            "name",
            "1 to 64 letters, digits, - and _",
        ))
    }
}

async fn find(state: &AppState, tenant_id: uuid::Uuid, name: &str) -> Result<Endpoint, ApiError> {
    endpoints::get(&state.db, tenant_id, name)
        .await
        .map_err(|e| state.db_error(e))?
        .ok_or_else(|| ApiError::NotFound(format!("no sink `{name}`")))
}

async fn put(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: JsonBody<SinkBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_name(&name)?;
    let body = body.value;
    match body.kind.as_deref() {
        Some("http") => {}
        Some("nats") => {
            return Err(ApiError::validation(
                "kind",
                "NATS streams are the operator's ([[sinks]] in the configuration); tenants add \
                 http endpoints",
            ))
        }
        _ => return Err(ApiError::validation("kind", "\"http\"")),
    }
    let url = body
        .url
        .as_deref()
        .ok_or_else(|| ApiError::validation("url", "required"))?;
    super::input::check_webhook_url(&state, "url", url).await?;
    if let Some(unknown) = body
        .event_types
        .iter()
        .find(|t| !ALL_TYPES.contains(&t.as_str()))
    {
        return Err(ApiError::validation(
            "event_types",
            format!("`{unknown}` is not one of {}", ALL_TYPES.join(", ")),
        ));
    }
    let existing = endpoints::list(&state.db, tenant.id)
        .await
        .map_err(|e| state.db_error(e))?;
    if existing.len() >= MAX_ENDPOINTS && !existing.iter().any(|e| e.name == name) {
        return Err(ApiError::validation(
            "name",
            format!("a tenant has at most {MAX_ENDPOINTS} sinks"),
        ));
    }
    let secret = webhook::new_secret();
    let input = EndpointInput {
        url,
        event_types: &body.event_types,
        include_personal_data: body.include_personal_data,
    };
    let (endpoint, created) = endpoints::put(&state.db, tenant.id, &name, &input, &secret)
        .await
        .map_err(|e| state.db_error(e))?;
    state.db.caches.endpoint_tenants.add(tenant.id);
    let mut shown = view(&endpoint);
    if created {
        // The one time it is shown.
        shown["secret"] = json!(secret);
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(shown)))
}

async fn list(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let all = endpoints::list(&state.db, tenant.id)
        .await
        .map_err(|e| state.db_error(e))?;
    Ok(Json(
        json!({"items": all.iter().map(view).collect::<Vec<_>>()}),
    ))
}

async fn show(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(view(&find(&state, tenant.id, &name).await?)))
}

async fn remove(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if endpoints::delete(&state.db, tenant.id, &name)
        .await
        .map_err(|e| state.db_error(e))?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no sink `{name}`")))
    }
}

async fn rotate(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    find(&state, tenant.id, &name).await?;
    let secret = webhook::new_secret();
    let until = chrono::Utc::now() + chrono::Duration::hours(ROTATION_OVERLAP_HOURS);
    endpoints::rotate(&state.db, tenant.id, &name, &secret, until)
        .await
        .map_err(|e| state.db_error(e))?;
    Ok(Json(
        json!({"name": name, "secret": secret, "previous_secret_valid_until": until}),
    ))
}

/// Sends a `ping` event at once and answers with what the endpoint did.
async fn test(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let endpoint = find(&state, tenant.id, &name).await?;
    let ping = Event {
        id: channels::model::new_id(),
        event_type: "ping".into(),
        tenant_id: tenant.id,
        aggregate_id: endpoint.id,
        created_at: chrono::Utc::now(),
        data: json!({"sink": name}),
    };
    let deliveries = Deliveries::new(state.db.clone(), state.http.clone());
    let result = deliveries.attempt(&endpoint, &ping).await;
    let recorded = endpoints::attempts(&state.db, endpoint.id, 1)
        .await
        .map_err(|e| state.db_error(e))?;
    Ok(Json(json!({
        "event_id": ping.id,
        "delivered": result.is_ok(),
        "attempt": recorded.first(),
        "error": result.err().map(|e| e.message),
    })))
}

async fn attempts(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let endpoint = find(&state, tenant.id, &name).await?;
    let items = endpoints::attempts(&state.db, endpoint.id, 100)
        .await
        .map_err(|e| state.db_error(e))?;
    Ok(Json(json!({"items": items})))
}
