//! Surveys: `PUT /v1/surveys/{key}`, `GET /v1/surveys`, `GET /v1/surveys/{key}`, and the manual
//! trigger `POST /v1/surveys/{key}/send`.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use channels::model::Metric;
use channels::vocabulary::Channel;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::TenantAuth;
use super::input::{bounded, contact_ref, ContactBody, MAX_REF};
use super::json::JsonBody;
use super::problem::{ApiError, FieldError};
use super::AppState;
use crate::policy::schedule::{ScheduleError, SendRequest};
use crate::policy::PolicyOverrides;
use crate::store::invitations::InvitationView;
use crate::store::surveys::{self, Survey, SurveyDefinition};
use channels::vocabulary::check_slug;

/// Channels a survey can be sent on.
/// What starts a survey: the API (manual), or a support platform's "ticket closed" webhook.
pub const TRIGGERS: &[&str] = &["manual", "ticket_closed", "call_ended"];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/surveys", get(list))
        .route("/v1/surveys/{key}", get(show).put(put))
        .route("/v1/surveys/{key}/send", post(send))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SurveyBody {
    metric: String,
    question: BTreeMap<String, String>,
    #[serde(default)]
    default_language: Option<String>,
    channels: Vec<String>,
    #[serde(default)]
    trigger: Option<String>,
    #[serde(default)]
    sources: Option<Vec<String>>,
    #[serde(default)]
    policy: PolicyOverrides,
}

fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary = parts.next().unwrap_or("");
    (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_lowercase())
        && parts.all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn validate(body: SurveyBody) -> Result<SurveyDefinition, ApiError> {
    let mut errors = Vec::new();
    let mut err = |field: &str, message: String| {
        errors.push(FieldError {
            field: field.to_owned(),
            message,
        })
    };
    let metric = match body.metric.parse::<Metric>() {
        Ok(Metric::Text) => {
            err("metric", "a survey asks for nps, csat or ces".into());
            None
        }
        Ok(m) => Some(m),
        Err(e) => {
            err("metric", e.message);
            None
        }
    };
    if body.question.is_empty() {
        err(
            "question",
            "give the question in at least one language".into(),
        );
    }
    for (lang, text) in &body.question {
        if !is_language_tag(lang) {
            err(
                &format!("question.{lang}"),
                "not a language code such as \"da\" or \"en\"".into(),
            );
        }
        if text.trim().is_empty() {
            err(&format!("question.{lang}"), "is empty".into());
        } else if text.chars().count() > 1000 {
            err(
                &format!("question.{lang}"),
                "longer than 1000 characters".into(),
            );
        }
    }
    let default_language = body.default_language.unwrap_or_else(|| {
        if body.question.contains_key("en") {
            "en".into()
        } else {
            body.question.keys().next().cloned().unwrap_or_default()
        }
    });
    if !body.question.is_empty() && !body.question.contains_key(&default_language) {
        err(
            "default_language",
            format!("no question in `{default_language}`"),
        );
    }
    if body.channels.is_empty() {
        err(
            "channels",
            format!("name at least one of {}", sending_channels()),
        );
    }
    for (i, c) in body.channels.iter().enumerate() {
        if !Channel::parse(c).is_some_and(Channel::can_ask) {
            err(
                &format!("channels[{i}]"),
                format!(
                    "unknown channel `{c}`; expected one of {}",
                    sending_channels()
                ),
            );
        } else if body.channels[..i].contains(c) {
            err(&format!("channels[{i}]"), format!("`{c}` is named twice"));
        }
    }
    let trigger = body.trigger.unwrap_or_else(|| "manual".into());
    if !TRIGGERS.contains(&trigger.as_str()) {
        err(
            "trigger",
            format!("expected one of {}", TRIGGERS.join(", ")),
        );
    }
    if let Some(sources) = &body.sources {
        if trigger != "ticket_closed" {
            err(
                "sources",
                "only a survey with \"trigger\": \"ticket_closed\" has sources".into(),
            );
        }
        if sources.is_empty() {
            err(
                "sources",
                "name at least one platform, or leave sources out for all".into(),
            );
        }
        for (i, s) in sources.iter().enumerate() {
            if channels::chat::platform(s).is_none() {
                err(
                    &format!("sources[{i}]"),
                    format!(
                        "unknown platform `{s}`; expected one of {}",
                        channels::chat::names().collect::<Vec<_>>().join(", ")
                    ),
                );
            }
        }
    }
    if let Err((field, message)) = body.policy.validate() {
        err(field, message);
    }
    match metric {
        Some(metric) if errors.is_empty() => Ok(SurveyDefinition {
            metric,
            question: body.question,
            default_language,
            channels: body.channels,
            trigger,
            sources: body.sources,
            policy: body.policy,
        }),
        _ => Err(ApiError::Validation(errors)),
    }
}

async fn put(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(key): Path<String>,
    body: JsonBody<SurveyBody>,
) -> Result<(StatusCode, Json<Survey>), ApiError> {
    check_slug(&key).map_err(|m| ApiError::validation("key", m))?;
    let def = validate(body.value)?;
    let (survey, created) = surveys::put(&state.db, tenant.id, &key, def)
        .await
        .map_err(|e| state.db_error(e))?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(survey)))
}

async fn find(state: &AppState, tenant_id: uuid::Uuid, key: &str) -> Result<Survey, ApiError> {
    surveys::get(&state.db, tenant_id, key)
        .await
        .map_err(|e| state.db_error(e))?
        .ok_or_else(|| ApiError::NotFound(format!("no survey `{key}`")))
}

async fn show(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<Survey>, ApiError> {
    find(&state, tenant.id, &key).await.map(Json)
}

async fn list(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let items = surveys::list(&state.db, tenant.id)
        .await
        .map_err(|e| state.db_error(e))?;
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendBody {
    contact: ContactBody,
    #[serde(default)]
    ticket_ref: Option<String>,
    #[serde(default)]
    agent_ref: Option<String>,
    #[serde(default)]
    team_ref: Option<String>,
    #[serde(default)]
    language: Option<String>,
}

async fn send(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(key): Path<String>,
    body: JsonBody<SendBody>,
) -> Result<(StatusCode, Json<InvitationView>), ApiError> {
    let survey = find(&state, tenant.id, &key).await?;
    let b = body.value;
    let contact = contact_ref(b.contact, &state.config.tenant_defaults.region)?;
    if contact.is_empty() {
        return Err(ApiError::validation(
            "contact",
            "give the contact's phone, email, external_id or id",
        ));
    }
    if let Some(lang) = &b.language {
        if !is_language_tag(lang) {
            return Err(ApiError::validation(
                "language",
                "not a language code such as \"da\"",
            ));
        }
    }
    let req = SendRequest {
        contact,
        ticket_ref: bounded("ticket_ref", b.ticket_ref, MAX_REF)?,
        agent_ref: bounded("agent_ref", b.agent_ref, MAX_REF)?,
        team_ref: bounded("team_ref", b.team_ref, MAX_REF)?,
        language: b.language,
        in_widget: false,
    };
    match state.scheduler.schedule(tenant.id, &survey, &req).await {
        Ok(invitation) => {
            tracing::info!(invitation = %invitation.id, status = %invitation.status, reason = ?invitation.reason, "survey trigger decided");
            Ok((StatusCode::ACCEPTED, Json(invitation)))
        }
        Err(ScheduleError::UnknownContact(id)) => Err(ApiError::validation(
            "contact.id",
            format!("contact {id} does not exist"),
        )),
        // Refused above already; kept for the type's sake.
        Err(ScheduleError::NoContact) => Err(ApiError::validation(
            "contact",
            "give the contact's phone, email, external_id or id",
        )),
        Err(ScheduleError::Db(e)) => Err(state.db_error(e)),
    }
}

/// The channels a survey can be sent on, for error messages.
fn sending_channels() -> String {
    Channel::asking()
        .map(Channel::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_tags() {
        for ok in ["da", "en", "de", "nb", "pt-br", "zh-hant"] {
            assert!(is_language_tag(ok), "{ok}");
        }
        for bad in ["", "d", "DA", "danish", "da_DK", "en-"] {
            assert!(!is_language_tag(bad), "{bad}");
        }
    }
}
