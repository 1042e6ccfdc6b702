//! Provider credentials and options per tenant: `PUT /v1/channels/{provider}` and
//! `GET /v1/channels/{provider}`. Secrets go in and are never shown again: GET answers the
//! settings and which secrets are set.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use channels::chat;
use channels::model::InvalidValue;
use channels::sms::twilio;
use serde_json::{json, Value};

use super::auth::TenantAuth;
use super::json::JsonBody;
use super::problem::{ApiError, FieldError};
use super::AppState;
use crate::store::channel_configs;

/// Providers that can be configured besides the support platforms.
pub const PROVIDERS: &[&str] = &[twilio::PROVIDER];

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/channels/{provider}", get(show).put(put))
}

fn known(provider: &str) -> Result<(), ApiError> {
    if PROVIDERS.contains(&provider) || chat::platform(provider).is_some() {
        Ok(())
    } else {
        let names: Vec<&str> = PROVIDERS.iter().copied().chain(chat::names()).collect();
        Err(ApiError::NotFound(format!(
            "no provider `{provider}`; one of: {}",
            names.join(", ")
        )))
    }
}

fn invalid(errors: Vec<InvalidValue>) -> ApiError {
    ApiError::Validation(
        errors
            .into_iter()
            .map(|e| FieldError {
                field: e.field.to_owned(),
                message: e.message,
            })
            .collect(),
    )
}

/// What the API shows of a stored configuration: settings, and the names of the secrets.
fn view(provider: &str, settings: Value, secrets: &Value) -> Value {
    let secrets_set: Vec<&String> = secrets
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    json!({"provider": provider, "settings": settings, "secrets_set": secrets_set})
}

async fn put(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(provider): Path<String>,
    body: JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    known(&provider)?;
    let (settings, secrets) = match provider.as_str() {
        twilio::PROVIDER => {
            let body: twilio::ConfigBody = super::json::parse(&body.raw)?;
            let config = body
                .validate(&state.config.tenant_defaults.region)
                .map_err(invalid)?;
            let settings =
                serde_json::to_value(&config.settings).map_err(|_| ApiError::Internal)?;
            (settings, json!({"auth_token": config.auth_token}))
        }
        name => {
            let platform = chat::platform(name).expect("checked by known()");
            let creds = (platform.configure)(&body.value).map_err(invalid)?;
            let secrets = serde_json::to_value(&creds.secrets).map_err(|_| ApiError::Internal)?;
            (creds.settings, secrets)
        }
    };
    channel_configs::put(
        &state.db,
        tenant.id,
        &provider,
        settings.clone(),
        secrets.clone(),
    )
    .await
    .map_err(|e| state.db_error(e))?;
    tracing::info!(tenant = %tenant.slug, provider, "channel configured");
    Ok(Json(view(&provider, settings, &secrets)))
}

async fn show(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(provider): Path<String>,
) -> Result<Json<Value>, ApiError> {
    known(&provider)?;
    let stored = channel_configs::get(&state.db, tenant.id, &provider)
        .await
        .map_err(|e| state.db_error(e))?
        .ok_or_else(|| ApiError::NotFound(format!("{provider} is not configured")))?;
    Ok(Json(view(&provider, stored.settings, &stored.secrets)))
}
