//! Provider credentials and options per tenant: `PUT /v1/channels/{provider}` and
//! `GET /v1/channels/{provider}`. Secrets go in and are never shown again: GET answers the
//! settings and which secrets are set.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use channels::chat::{self, Credentials};
use channels::messaging;
use channels::model::InvalidValue;
use serde_json::{json, Value};

use super::auth::TenantAuth;
use super::json::JsonBody;
use super::problem::{ApiError, FieldError};
use super::AppState;
use crate::store::channel_configs;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/channels/{provider}", get(show).put(put))
}

/// Checks a configuration body with the provider's own rules: a messaging provider (numbers
/// read in the gateway's default region) or a support platform.
fn configure(
    provider: &str,
    body: &Value,
    region: &str,
) -> Option<Result<Credentials, Vec<InvalidValue>>> {
    if provider == ::channels::email::NAME {
        Some(::channels::email::configure(body))
    } else if let Some(p) = messaging::provider(provider) {
        Some((p.configure)(body, region))
    } else {
        chat::platform(provider).map(|p| (p.configure)(body))
    }
}

fn known(provider: &str) -> Result<(), ApiError> {
    if provider == ::channels::email::NAME
        || messaging::provider(provider).is_some()
        || chat::platform(provider).is_some()
    {
        Ok(())
    } else {
        let names: Vec<&str> = std::iter::once(::channels::email::NAME)
            .chain(messaging::PROVIDERS.iter().map(|p| p.name))
            .chain(chat::names())
            .collect();
        Err(ApiError::NotFound(format!(
            "no provider `{provider}`; one of: {}",
            names.join(", ")
        )))
    }
}

/// A DKIM key that the signer cannot read is refused now rather than failing every send.
fn check_dkim_key(creds: &Credentials) -> Result<(), ApiError> {
    let settings = ::channels::email::EmailSettings::of(creds)
        .map_err(|e| ApiError::validation(e.field, e.message))?;
    let (Some(dkim), Some(key)) = (
        settings.dkim,
        creds.secret(::channels::email::DKIM_PRIVATE_KEY),
    ) else {
        return Ok(());
    };
    crate::dispatch::email::dkim_config(&dkim, key.expose())
        .map(|_| ())
        .map_err(|message| ApiError::validation("dkim.private_key", message))
}

/// Plain-text SMTP goes only to servers on private networks, which a gateway that does not
/// call those (`outbound.allow_private_networks` off) never reaches: refused now. Where it does
/// call them, the address is checked when a message is sent.
fn check_plain_smtp(creds: &Credentials, allow_private_networks: bool) -> Result<(), ApiError> {
    let plain = ::channels::email::EmailSettings::of(creds)
        .ok()
        .and_then(|s| s.smtp)
        .is_some_and(|smtp| smtp.tls == ::channels::email::SmtpTls::None);
    if plain && !allow_private_networks {
        return Err(ApiError::validation(
            "smtp.tls",
            "\"none\" (plain text) is allowed only for servers on a private network, which this gateway does not call; use \"starttls\" or \"implicit\"",
        ));
    }
    Ok(())
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
    let creds = configure(&provider, &body.value, &state.config.tenant_defaults.region)
        .expect("checked by known()")
        .map_err(invalid)?;
    if provider == ::channels::email::NAME {
        check_dkim_key(&creds)?;
        check_plain_smtp(&creds, state.config.outbound.allow_private_networks)?;
    }
    let secrets = serde_json::to_value(&creds.secrets).map_err(|_| ApiError::Internal)?;
    let settings = creds.settings;
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
