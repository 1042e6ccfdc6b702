//! `GET /v1/raw-events?outcome=unreadable` and `POST /v1/raw-events/{id}/replay`: platform
//! deliveries the gateway verified but could not read (a status label translated into the
//! requester's language), kept with the reason, and applied again once the tenant's mapping
//! reads them.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use channels::chat::{self, HookRequest};
use channels::vocabulary::RawOutcome;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::auth::TenantAuth;
use super::feedback::parse_query;
use super::hooks::platforms::apply;
use super::input::page_limit;
use super::problem::ApiError;
use super::AppState;
use crate::ingest::platforms::PlatformDelivery;
use crate::ingest::Received;
use crate::store::{channel_configs, raw_events};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/raw-events", get(list))
        .route("/v1/raw-events/{id}/replay", post(replay))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    outcome: Option<String>,
    limit: Option<u64>,
}

async fn list(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    uri: axum::http::Uri,
) -> Result<Json<Value>, ApiError> {
    let q: ListQuery = parse_query(uri.query())?;
    let outcome = q
        .outcome
        .as_deref()
        .map_or(Some(RawOutcome::Unreadable), RawOutcome::parse);
    let Some(outcome @ (RawOutcome::Unreadable | RawOutcome::Replayed)) = outcome else {
        return Err(ApiError::BadRequest {
            kind: "invalid-query",
            detail: "outcome: unreadable or replayed".into(),
        });
    };
    let limit = page_limit(q.limit, 50)?;
    let rows = raw_events::with_outcome(&state.db.read, tenant.id, outcome.as_str(), limit)
        .await
        .map_err(|e| state.db_error(e))?;
    let items: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            json!({
                "id": r.id,
                "provider": r.provider,
                "kind": r.kind,
                "outcome": r.outcome,
                "reason": r.response_body.as_deref().and_then(|b| serde_json::from_str::<Value>(b).ok()),
                "received_at": r.received_at,
            })
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}

/// Reads the stored delivery again with the tenant's current settings and applies it. Its
/// origin was proven when it arrived; the signature is not checked again.
async fn replay(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound(format!("no kept delivery {id}"));
    let uuid = Uuid::parse_str(&id).map_err(|_| not_found())?;
    let raw = raw_events::find(&state.db.read, tenant.id, uuid)
        .await
        .map_err(|e| state.db_error(e))?
        .ok_or_else(not_found)?;
    if raw.outcome != RawOutcome::Unreadable.as_str() {
        return Err(ApiError::Conflict {
            kind: "not-replayable",
            detail: format!(
                "delivery {id} is `{}`, not waiting for a replay",
                raw.outcome
            ),
        });
    }
    let platform = chat::platform(&raw.provider).ok_or_else(not_found)?;
    let creds = channel_configs::credentials(&state.db, tenant.id, platform.name)
        .await
        .map_err(|e| state.db_error(e))?
        .ok_or_else(|| ApiError::Conflict {
            kind: "not-replayable",
            detail: format!("{} is no longer configured", platform.name),
        })?;
    let headers = HeaderMap::new();
    let request = HookRequest {
        headers: &headers,
        query: None,
        body: raw.payload.as_bytes(),
        now: raw.received_at,
    };
    let region = &state.config.tenant_defaults.region;
    let mut parsed = (platform.parse)(&request, &creds, region).map_err(ApiError::from)?;
    parsed.sanitize(raw.received_at);
    if let (true, Some(u)) = (parsed.events.is_empty(), &parsed.unreadable) {
        return Err(ApiError::validation(
            u.field,
            format!(
                "`{}` still cannot be read; fix the field mapping first",
                u.value
            ),
        ));
    }
    if parsed.events.is_empty() {
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({"status": "ignored", "event": parsed.kind})),
        )
            .into_response());
    }
    let delivery = PlatformDelivery {
        platform,
        delivery_ref: raw.provider_ref.as_deref(),
        signed_sha256: None,
        events: &[],
        received: Received {
            kind: &raw.kind,
            content_type: raw.content_type.as_deref(),
            body: raw.payload.as_bytes(),
        },
        replay_of: Some(raw.id),
    };
    apply(&state, &tenant, &creds, &mut parsed, delivery).await
}
