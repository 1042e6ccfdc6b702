//! The web widget's sites on the tenant API: `PUT /v1/sites/{key}` (created with a public site
//! key and a secret shown only in that answer; later PUTs change the settings, never the
//! keys), `GET /v1/sites/{key}`, `GET /v1/sites`, `DELETE /v1/sites/{key}`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use channels::vocabulary::Channel;
use channels::widget::{SiteSettings, LANGUAGES};
use serde_json::{json, Value};

use super::auth::TenantAuth;
use super::json::JsonBody;
use super::problem::{ApiError, FieldError};
use super::AppState;
use crate::store::sites::{self, Site};
use crate::store::{self, surveys};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/sites", get(list_sites))
        .route(
            "/v1/sites/{key}",
            get(show_site).put(put_site).delete(delete_site),
        )
        .route("/v1/sites/{key}/rotate-secret", post(rotate_secret))
}

/// How long a rotated secret keeps verifying beside the new one (as for sinks' secrets).
const ROTATION_OVERLAP_HOURS: i64 = 24;

fn check_key(key: &str) -> Result<(), ApiError> {
    let ok = !key.is_empty()
        && key.len() <= 64
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ApiError::validation(
            "key",
            "1 to 64 letters, digits and - _ .",
        ))
    }
}

/// A site as the API shows it, with the snippet that embeds it.
fn site_view(state: &AppState, site: &Site) -> Value {
    let script = super::widget::script_url(&state.config.public_url);
    json!({
        "key": site.key,
        "site_key": site.site_key,
        "allowed_origins": site.settings.allowed_origins,
        "survey": site.settings.survey,
        "display": site.settings.display,
        "theme": site.settings.theme,
        "languages": site.settings.languages,
        "script_url": script,
        "embed": format!(
            "<script async src=\"{script}\" data-site=\"{}\"></script>",
            site.site_key
        ),
        "created_at": site.created_at,
        "updated_at": site.updated_at,
    })
}

async fn put_site(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(key): Path<String>,
    body: JsonBody<SiteSettings>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_key(&key)?;
    let mut settings = body.value;
    let mut problems: Vec<FieldError> = settings
        .problems()
        .into_iter()
        .map(|(field, message)| FieldError { field, message })
        .collect();
    // The survey must exist, ask in the widget, have a scale, and speak the site's languages.
    let survey = surveys::get(&state.db, tenant.id, &settings.survey)
        .await
        .map_err(|e| state.db_error(e))?;
    let mut survey_problem = |message: String| {
        problems.push(FieldError {
            field: "survey".into(),
            message,
        })
    };
    match &survey {
        None => survey_problem(format!("no survey `{}`", settings.survey)),
        Some(s) if !s.asks_on(Channel::Widget) => survey_problem(format!(
            "the survey `{}` does not ask in the widget: add \"widget\" to its channels",
            s.key
        )),
        Some(s) if s.metric.numeric_scale().is_none() => {
            survey_problem("the widget shows a scale: NPS, CSAT or CES".into())
        }
        Some(s) if settings.languages.is_empty() => {
            // The survey's default language first, then its others the widget speaks.
            let mut offered: Vec<String> = Vec::new();
            for l in std::iter::once(&s.default_language).chain(s.question.keys()) {
                if LANGUAGES.contains(&l.as_str()) && !offered.contains(l) {
                    offered.push(l.clone());
                }
            }
            if offered.is_empty() {
                problems.push(FieldError {
                    field: "languages".into(),
                    message: format!(
                        "the survey asks in none of the widget's languages ({})",
                        LANGUAGES.join(", ")
                    ),
                });
            }
            settings.languages = offered;
        }
        Some(s) => {
            for (i, language) in settings.languages.iter().enumerate() {
                if !s.question.contains_key(language) {
                    problems.push(FieldError {
                        field: format!("languages[{i}]"),
                        message: format!("the survey has no question in `{language}`"),
                    });
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let (site, created) = sites::put(&state.db, tenant.id, &key, &settings, store::now())
        .await
        .map_err(|e| state.db_error(e))?;
    let mut view = site_view(&state, &site);
    if created {
        // Shown once: the site's backend signs visitors' ids with it.
        view["secret"] = json!(site.secret);
        tracing::info!(site = %site.key, "widget site created");
        Ok((StatusCode::CREATED, Json(view)))
    } else {
        Ok((StatusCode::OK, Json(view)))
    }
}

async fn show_site(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    sites::get(&state.db.read, tenant.id, &key)
        .await
        .map_err(|e| state.db_error(e))?
        .map(|site| Json(site_view(&state, &site)))
        .ok_or_else(|| ApiError::NotFound(format!("no site `{key}`")))
}

async fn list_sites(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let items: Vec<Value> = sites::list(&state.db.read, tenant.id)
        .await
        .map_err(|e| state.db_error(e))?
        .iter()
        .map(|site| site_view(&state, site))
        .collect();
    Ok(Json(json!({ "items": items })))
}

/// A new secret, shown in this answer only; the previous one keeps verifying visitors' user
/// hashes and the impressions it signed for 24 hours, so the site's backend can switch.
async fn rotate_secret(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let now = store::now();
    let until = now + chrono::Duration::hours(ROTATION_OVERLAP_HOURS);
    let site = sites::rotate_secret(&state.db, tenant.id, &key, until, now)
        .await
        .map_err(|e| state.db_error(e))?
        .ok_or_else(|| ApiError::NotFound(format!("no site `{key}`")))?;
    tracing::info!(site = %site.key, "widget site secret rotated");
    let mut view = site_view(&state, &site);
    view["secret"] = json!(site.secret);
    view["previous_secret_valid_until"] = json!(until);
    Ok(Json(view))
}

async fn delete_site(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<StatusCode, ApiError> {
    if sites::delete(&state.db, tenant.id, &key)
        .await
        .map_err(|e| state.db_error(e))?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no site `{key}`")))
    }
}
