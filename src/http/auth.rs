//! Bearer authentication: tenant API keys for `/v1`, the configured admin token for `/admin`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use subtle::ConstantTimeEq;

use super::problem::ApiError;
use super::AppState;
use crate::store::tenants::{self, Tenant};

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The tenant whose API key the request carries.
pub struct TenantAuth(pub Tenant);

impl FromRequestParts<AppState> for TenantAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = bearer(parts).ok_or(ApiError::Unauthorized(
            "send the tenant API key as `Authorization: Bearer <key>`",
        ))?;
        let key_hash = tenants::hash_key(key);
        let tenant = match tenants::cached_by_key(&state.db, &key_hash) {
            Some(tenant) => tenant,
            None => {
                // Unknown keys are throttled per client before they cost a database look-up;
                // a key that authenticated lately is not a guess.
                let guess = !tenants::recently_valid(&state.db, &key_hash);
                if let (true, Some(ConnectInfo(peer))) =
                    (guess, parts.extensions.get::<ConnectInfo<SocketAddr>>())
                {
                    let ip = state.limits.client_ip(peer.ip(), &parts.headers);
                    state.limits.check_key_lookup(ip)?;
                }
                tenants::authenticate(&state.db, key, &key_hash)
                    .await
                    .map_err(|e| state.db_error(e))?
                    .ok_or(ApiError::Unauthorized("unknown or revoked API key"))?
            }
        };
        tracing::Span::current().record("tenant", tenant.slug.as_str());
        state.limits.check_tenant(tenant.id)?;
        Ok(TenantAuth(tenant))
    }
}

/// A request carrying the admin token.
pub struct AdminAuth;

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let configured = state.config.admin_token.as_bytes();
        if configured.is_empty() {
            return Err(ApiError::Forbidden(
                "the admin API is disabled: set FEEDBACK_ADMIN_TOKEN".into(),
            ));
        }
        let given = bearer(parts).ok_or(ApiError::Unauthorized(
            "send the admin token as `Authorization: Bearer <token>`",
        ))?;
        // Constant-time: the comparison must not tell how many leading bytes were right.
        if bool::from(given.as_bytes().ct_eq(configured)) {
            Ok(AdminAuth)
        } else {
            Err(ApiError::Unauthorized("wrong admin token"))
        }
    }
}
