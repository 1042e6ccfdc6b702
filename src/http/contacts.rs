//! Contacts and invitations: `GET /v1/contacts/{id}`, `GET /v1/contacts/{id}/decisions`,
//! `POST /v1/contacts/{id}/opt-out` and `/opt-in`, `GET /v1/invitations`. Together they answer
//! "why was this customer not asked?".

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use channels::vocabulary::{Channel, InvitationStatus};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::auth::TenantAuth;
use super::feedback::parse_query;
use super::input::{decode_cursor, encode_cursor, page_limit};
use super::json::JsonBody;
use super::problem::ApiError;
use super::AppState;
use crate::store::contacts::{self, ContactView};
use crate::store::invitations::{self, ListFilter};

/// Channels a contact can opt out of; "all" covers every one.
/// What a contact can opt out of: each sending channel, or `all`.
fn opt_out_channels() -> Vec<&'static str> {
    Channel::sending()
        .map(Channel::as_str)
        .chain(["all"])
        .collect()
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/contacts/{id}", get(show))
        .route("/v1/contacts/{id}/decisions", get(decisions))
        .route("/v1/contacts/{id}/opt-out", post(opt_out))
        .route("/v1/contacts/{id}/opt-in", post(opt_in))
        .route("/v1/invitations", get(list_invitations))
}

fn contact_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::NotFound(format!("no contact {id}")))
}

async fn find(state: &AppState, tenant_id: Uuid, id: &str) -> Result<ContactView, ApiError> {
    contacts::get(&state.db.read, tenant_id, contact_id(id)?)
        .await
        .map_err(|e| state.db_error(e))?
        .ok_or_else(|| ApiError::NotFound(format!("no contact {id}")))
}

async fn show(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ContactView>, ApiError> {
    find(&state, tenant.id, &id).await.map(Json)
}

async fn decisions(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let contact = find(&state, tenant.id, &id).await?;
    let items = invitations::decisions(&state.db.read, tenant.id, contact.id, 500)
        .await
        .map_err(|e| state.db_error(e))?;
    Ok(Json(json!({ "contact_id": contact.id, "items": items })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OptBody {
    channel: String,
}

async fn set_opt_out(
    state: &AppState,
    tenant_id: Uuid,
    id: &str,
    channel: &str,
    out: bool,
) -> Result<Json<ContactView>, ApiError> {
    if !opt_out_channels().contains(&channel) {
        return Err(ApiError::validation(
            "channel",
            format!("expected one of {}", opt_out_channels().join(", ")),
        ));
    }
    let uuid = contact_id(id)?;
    let found = crate::policy::opt_out::set(&state.db, tenant_id, uuid, channel, out)
        .await
        .map_err(|e| state.db_error(e))?;
    if !found {
        return Err(ApiError::NotFound(format!("no contact {id}")));
    }
    find(state, tenant_id, id).await.map(Json)
}

async fn opt_out(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: JsonBody<OptBody>,
) -> Result<Json<ContactView>, ApiError> {
    set_opt_out(&state, tenant.id, &id, &body.value.channel, true).await
}

async fn opt_in(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: JsonBody<OptBody>,
) -> Result<Json<ContactView>, ApiError> {
    set_opt_out(&state, tenant.id, &id, &body.value.channel, false).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InvitationQuery {
    status: Option<String>,
    contact: Option<Uuid>,
    survey: Option<String>,
    cursor: Option<String>,
    limit: Option<u64>,
}

async fn list_invitations(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    uri: axum::http::Uri,
) -> Result<Json<Value>, ApiError> {
    let q: InvitationQuery = parse_query(uri.query())?;
    let bad = |detail: String| ApiError::BadRequest {
        kind: "invalid-query",
        detail,
    };
    let status = q
        .status
        .as_deref()
        .map(|s| {
            InvitationStatus::parse(s).ok_or_else(|| {
                bad(format!(
                    "status: expected one of {}",
                    InvitationStatus::list()
                ))
            })
        })
        .transpose()?;
    let limit = page_limit(q.limit, 100)?;
    let before_id = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let filter = ListFilter {
        status,
        contact_id: q.contact,
        survey_key: q.survey,
        before_id,
        limit: limit + 1,
    };
    let mut items = invitations::list(&state.db.read, tenant.id, &filter)
        .await
        .map_err(|e| state.db_error(e))?;
    let next_cursor = if items.len() as u64 > limit {
        items.truncate(limit as usize);
        items.last().map(|i| encode_cursor(i.id))
    } else {
        None
    };
    Ok(Json(json!({ "items": items, "next_cursor": next_cursor })))
}
