//! `GET /v1/dead-letters` and `POST /v1/dead-letters/{id}/replay`: events a sink refused until
//! their attempts ran out, and putting them back in the queue.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde_json::{json, Value};
use uuid::Uuid;

use super::auth::TenantAuth;
use super::problem::ApiError;
use super::AppState;
use crate::store::outbox;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/dead-letters", get(list))
        .route("/v1/dead-letters/{id}/replay", post(replay))
}

async fn list(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let rows = outbox::dead_letters(&state.db, tenant.id, 500)
        .await
        .map_err(|e| state.db_error(e))?;
    let items: Vec<Value> = rows
        .into_iter()
        .map(|d| {
            json!({
                "id": d.id,
                "event_id": d.event_id,
                "event_type": d.event_type,
                "sink": d.sink,
                "aggregate_id": d.aggregate_id,
                "attempts": d.attempts,
                "last_error": d.last_error,
                "created_at": d.created_at,
                "failed_at": d.failed_at,
                "replayed_at": d.replayed_at,
            })
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}

async fn replay(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let not_found = || ApiError::NotFound(format!("no dead letter {id} waiting for replay"));
    let uuid = Uuid::parse_str(&id).map_err(|_| not_found())?;
    let replayed = outbox::replay_dead_letter(&state.db, tenant.id, uuid, Utc::now())
        .await
        .map_err(|e| state.db_error(e))?;
    if !replayed {
        return Err(not_found());
    }
    state.ingest.wake_relay();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": uuid, "status": "queued"})),
    ))
}
