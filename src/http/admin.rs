//! Admin API: tenants.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

use super::auth::AdminAuth;
use super::json::JsonBody;
use super::problem::ApiError;
use super::AppState;
use crate::store::tenants::{self, CreateTenantError, CreatedTenant};

pub fn router() -> Router<AppState> {
    Router::new().route("/admin/v1/tenants", post(create_tenant))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTenant {
    slug: String,
}

async fn create_tenant(
    _: AdminAuth,
    State(state): State<AppState>,
    body: JsonBody<CreateTenant>,
) -> Result<(StatusCode, Json<CreatedTenant>), ApiError> {
    match tenants::create(&state.db, &body.value.slug).await {
        Ok(created) => {
            tracing::info!(tenant = %created.slug, "tenant created");
            Ok((StatusCode::CREATED, Json(created)))
        }
        Err(CreateTenantError::InvalidSlug(msg)) => Err(ApiError::validation("slug", msg)),
        Err(e @ CreateTenantError::Exists(_)) => Err(ApiError::Conflict {
            kind: "tenant-exists",
            detail: e.to_string(),
        }),
        Err(CreateTenantError::Db(e)) => Err(state.db_error(e)),
    }
}
