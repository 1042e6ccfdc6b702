//! Support platforms' webhooks: `POST /hooks/{tenant}/{platform}` for Zendesk, Intercom,
//! Freshdesk, Chatwoot and the generic Standard Webhooks hook.
//!
//! Checked in this order: the tenant and its configuration of the platform (404), the
//! platform's proof of origin (401 when missing or unreadable, 403 when wrong or too old), the
//! payload (422). Nothing is stored before all three pass; then the delivery is one
//! transaction. Events the gateway does not act on are answered 202 and counted, not stored.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use channels::chat::{self, HookRequest, Platform, Rejection};
use channels::model::PlatformEvent;
use serde_json::json;

use super::{count, no_hook_here, tenant};
use crate::http::input::RawBody;
use crate::http::problem::ApiError;
use crate::http::AppState;
use crate::ingest::platforms::{Delivered, Enrichment, PlatformDelivery};
use crate::ingest::{sha256_hex, Received};
use crate::store::channel_configs;
use crate::store::tenants::Tenant;

pub fn router() -> Router<AppState> {
    Router::new().route("/hooks/{tenant}/{platform}", post(receive))
}

fn platform_named(name: &str) -> Result<&'static Platform, ApiError> {
    chat::platform(name).ok_or_else(|| {
        let names: Vec<&str> = chat::names().collect();
        ApiError::NotFound(format!(
            "no platform `{name}`; one of: {}",
            names.join(", ")
        ))
    })
}

/// The metric label of a delivery: what it carried.
fn kind_label(events: &[PlatformEvent]) -> &'static str {
    if events
        .iter()
        .any(|e| matches!(e, PlatformEvent::PlatformRating(_)))
    {
        "rating"
    } else {
        "ticket_closed"
    }
}

fn rejected(platform: &Platform, tenant: &Tenant, rejection: Rejection) -> ApiError {
    count(platform.name, "webhook", "rejected");
    tracing::warn!(tenant = %tenant.slug, platform = platform.name, reason = %rejection, "webhook not verified");
    match rejection {
        Rejection::Missing(_) | Rejection::Malformed(_) => {
            ApiError::Unverified(rejection.to_string())
        }
        Rejection::Mismatch(_) | Rejection::Stale(_) => ApiError::Forbidden(rejection.to_string()),
    }
}

async fn receive(
    State(state): State<AppState>,
    Path((slug, name)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let platform = platform_named(&name)?;
    let tenant = tenant(&state, &slug).await?;
    let creds = channel_configs::credentials(&state.db, tenant.id, platform.name)
        .await
        .map_err(|e| state.db_error(e))?
        .ok_or_else(no_hook_here)?;
    let request = HookRequest {
        headers: &headers,
        query: uri.query(),
        body: &body,
        now: chrono::Utc::now(),
    };
    (platform.verify)(&request, &creds).map_err(|r| rejected(platform, &tenant, r))?;
    let region = &state.config.tenant_defaults.region;
    let mut parsed = (platform.parse)(&request, &creds, region).map_err(|e| {
        count(platform.name, "webhook", "rejected");
        ApiError::from(e)
    })?;
    parsed.sanitize(request.now);
    let raw_kind = format!("{}.{}", platform.name, parsed.kind);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let signed_sha256 = platform.signed.of(&request).map(|bytes| sha256_hex(&bytes));
    let delivery_ref = parsed.delivery_ref.clone();
    let delivery = PlatformDelivery {
        platform,
        delivery_ref: delivery_ref.as_deref(),
        signed_sha256: signed_sha256.as_deref(),
        events: &[],
        received: Received {
            kind: &raw_kind,
            content_type,
            body: &body,
        },
        replay_of: None,
    };
    if let (false, Some(u)) = (parsed.events.is_empty(), &parsed.unreadable) {
        // Acted on, but part of it could not be read (a translated rating beside a readable
        // status): the operator still hears of it.
        count_unreadable(&tenant, platform.name, u);
    }
    if parsed.events.is_empty() {
        if let Some(unreadable) = &parsed.unreadable {
            return keep_unreadable(&state, &tenant, &delivery, unreadable, &parsed.kind).await;
        }
        count(platform.name, "ignored", "ignored");
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({"status": "ignored", "event": parsed.kind})),
        )
            .into_response());
    }

    apply(&state, &tenant, &creds, &mut parsed, delivery).await
}

/// A delivery the gateway could not read (a status label in a language it does not know) is
/// kept as a raw event with the reason, counted by value, and logged, so the operator can
/// replay it (`POST /v1/raw-events/{id}/replay`) once the mapping is fixed.
async fn keep_unreadable(
    state: &AppState,
    tenant: &Tenant,
    delivery: &PlatformDelivery<'_>,
    unreadable: &chat::Unreadable,
    kind: &str,
) -> Result<Response, ApiError> {
    let platform = delivery.platform;
    let reason = json!({"status": "unreadable", "event": kind, "field": unreadable.field,
                        "value": unreadable.value});
    let stored = state
        .ingest
        .keep_unreadable(tenant, delivery, &reason)
        .await
        .map_err(|e| state.ingest_error(e))?;
    if !stored {
        count(platform.name, "unreadable", "duplicate");
        return Ok(Json(json!({"status": "duplicate", "event": kind})).into_response());
    }
    count(platform.name, "unreadable", "kept");
    count_unreadable(tenant, platform.name, unreadable);
    Ok((StatusCode::ACCEPTED, Json(reason)).into_response())
}

/// Counts and logs a value the gateway could not read (a label, not personal data).
fn count_unreadable(tenant: &Tenant, platform: &'static str, unreadable: &chat::Unreadable) {
    metrics::counter!(
        "webhook_unreadable_total",
        "provider" => platform,
        "field" => unreadable.field,
        "value" => unreadable.value.clone(),
    )
    .increment(1);
    tracing::warn!(tenant = %tenant.slug, platform, field = unreadable.field,
        value = %unreadable.value, "a value the gateway cannot read");
}

/// Hands a verified, parsed delivery to ingest and answers for it. Shared by live deliveries
/// and the operator's replays.
pub async fn apply(
    state: &AppState,
    tenant: &Tenant,
    creds: &chat::Credentials,
    parsed: &mut chat::Parsed,
    delivery: PlatformDelivery<'_>,
) -> Result<Response, ApiError> {
    let platform = delivery.platform;
    let enrichment = Enrichment {
        http: &state.http,
        api_base_url: state.config.providers.api_base_url(platform.name),
        region: &state.config.tenant_defaults.region,
        timeout: Duration::from_millis(state.config.dispatch.provider_timeout_ms),
    };
    let delivered = state
        .ingest
        .platform_delivery(tenant, creds, &enrichment, &mut parsed.events, delivery)
        .await
        .map_err(|e| state.ingest_error(e))?;
    let kind = kind_label(&parsed.events);
    match delivered {
        Delivered::Duplicate => {
            count(platform.name, kind, "duplicate");
            Ok(Json(json!({"status": "duplicate", "event": parsed.kind})).into_response())
        }
        // The answer says no more than that: what failed, and how, is the operator's to read
        // in the log.
        Delivered::LookupUnavailable(_) => Err(ApiError::UpstreamUnavailable {
            detail: format!(
                "the requester could not be looked up at {} now; deliver again later",
                platform.name
            ),
            retry_after_secs: state.config.http.retry_after_seconds,
        }),
        Delivered::Applied(outcome) => {
            let status = if outcome.duplicate {
                "duplicate"
            } else {
                "accepted"
            };
            count(platform.name, kind, status);
            Ok(Json(json!({
                "status": status,
                "event": parsed.kind,
                "ratings": outcome.ratings,
                "invitations": outcome.invitations,
                "unreachable": outcome.unreachable,
            }))
            .into_response())
        }
    }
}
