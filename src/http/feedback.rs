//! Generic ingest and the feedback list: `POST /v1/feedback`, `GET /v1/feedback`,
//! `GET /v1/feedback/{id}`.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use channels::model::{Feedback, FeedbackInput, InvalidValue, Metric, Score, TicketRefs};
use channels::vocabulary::Channel;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::auth::TenantAuth;
use super::input::{
    bounded, contact_ref, decode_cursor, encode_cursor, page_limit, ContactBody, MAX_REF,
};
use super::json::JsonBody;
use super::problem::ApiError;
use super::AppState;
use crate::ingest::{Accepted, Received};
use crate::store::feedback::{self as rows, ListFilter};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/feedback", get(list).post(create))
        .route("/v1/feedback/{id}", get(show))
}

const MAX_TEXT: usize = 10_000;
const IDEMPOTENCY_KEY: &str = "idempotency-key";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Submission {
    metric: String,
    /// A number on the metric's scale, or "good" / "bad" for CSAT from platforms.
    #[serde(default)]
    score: Option<serde_json::Value>,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default = "default_channel")]
    channel: String,
    #[serde(default)]
    contact: Option<ContactBody>,
    #[serde(default)]
    occurred_at: Option<DateTime<Utc>>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    ticket_ref: Option<String>,
    #[serde(default)]
    agent_ref: Option<String>,
    #[serde(default)]
    team_ref: Option<String>,
    #[serde(default)]
    invitation_id: Option<Uuid>,
    #[serde(default)]
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

fn default_channel() -> String {
    "api".into()
}

fn parse_score(
    metric: Metric,
    score: Option<serde_json::Value>,
) -> Result<Option<Score>, InvalidValue> {
    use serde_json::Value;
    match score {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(v) => Score::new(metric, v).map(Some),
            None => Err(InvalidValue::new("score", "must be a whole number")),
        },
        Some(Value::String(s))
            if metric == Metric::Csat && matches!(s.as_str(), "good" | "bad") =>
        {
            Ok(Some(Score::csat_good_bad(s == "good")))
        }
        Some(_) => Err(InvalidValue::new(
            "score",
            "must be a whole number (or \"good\" / \"bad\" for csat)",
        )),
    }
}

fn to_input(
    s: Submission,
    idempotency_key: Option<String>,
    region: &str,
) -> Result<FeedbackInput, InvalidValue> {
    let metric: Metric = s.metric.parse()?;
    if Channel::parse(&s.channel).is_none() {
        return Err(InvalidValue::new(
            "channel",
            format!(
                "unknown channel `{}`; expected one of {}",
                s.channel,
                Channel::list()
            ),
        ));
    }
    let now = Utc::now();
    let occurred_at = s.occurred_at.unwrap_or(now);
    if !channels::sanitize::is_plausible_time(occurred_at, now) {
        return Err(InvalidValue::new(
            "occurred_at",
            "must lie between 2000-01-01 and one day from now",
        ));
    }
    Ok(FeedbackInput {
        channel: s.channel,
        provider: "api".into(),
        provider_ref: idempotency_key,
        contact: contact_ref(s.contact.unwrap_or_default(), region)?,
        invitation_id: s.invitation_id,
        metric,
        score: parse_score(metric, s.score)?,
        comment: bounded("comment", s.comment, MAX_TEXT)?,
        language: bounded("language", s.language, 35)?,
        tickets: TicketRefs {
            ticket_ref: bounded("ticket_ref", s.ticket_ref, MAX_REF)?,
            agent_ref: bounded("agent_ref", s.agent_ref, MAX_REF)?,
            team_ref: bounded("team_ref", s.team_ref, MAX_REF)?,
        },
        occurred_at,
        metadata: serde_json::Value::Object(s.metadata.unwrap_or_default()),
    })
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::validation(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            )
        })?;
    Ok(Some(key.to_owned()))
}

async fn create(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: JsonBody<Submission>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let input = to_input(body.value, key, &state.config.tenant_defaults.region)?;
    let received = Received {
        kind: "feedback",
        content_type: headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        body: &body.raw,
    };
    let channel = input.channel.clone();
    match state.ingest.submit(tenant.id, received, input).await {
        Ok(Accepted::Created(record)) => {
            tracing::info!(feedback = %record.id, %channel, "feedback accepted");
            Ok(with_location(StatusCode::CREATED, record))
        }
        Ok(Accepted::Replayed(record)) => Ok(with_location(StatusCode::OK, record)),
        Err(e) => Err(state.ingest_error(e)),
    }
}

fn with_location(status: StatusCode, record: Feedback) -> Response {
    let location = format!("/v1/feedback/{}", record.id);
    let mut response = (status, Json(record)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

async fn show(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Feedback>, ApiError> {
    let not_found = || ApiError::NotFound(format!("no feedback {id}"));
    let uuid = Uuid::parse_str(&id).map_err(|_| not_found())?;
    rows::get(&state.db.read, tenant.id, uuid)
        .await
        .map_err(|e| state.db_error(e))?
        .map(Json)
        .ok_or_else(not_found)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    metric: Option<String>,
    channel: Option<String>,
    contact: Option<Uuid>,
    ticket_ref: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    cursor: Option<String>,
    limit: Option<u64>,
}

#[derive(Serialize)]
struct Page {
    items: Vec<Feedback>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    next_cursor: Option<String>,
}

/// Query strings are parsed here so that a bad one is a problem+json answer naming the field.
pub fn parse_query<T: serde::de::DeserializeOwned>(query: Option<&str>) -> Result<T, ApiError> {
    let query = query.unwrap_or("");
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if value.chars().any(channels::sanitize::is_forbidden_control) {
            return Err(ApiError::BadRequest {
                kind: "invalid-query",
                detail: format!(
                    "{}: contains a control character",
                    channels::sanitize::clean_text(&name)
                ),
            });
        }
    }
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        ApiError::BadRequest {
            kind: "invalid-query",
            detail: format!("{field}: {}", e.into_inner()),
        }
    })
}

async fn list(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    uri: axum::http::Uri,
) -> Result<Json<Page>, ApiError> {
    let q: ListQuery = parse_query(uri.query())?;
    let limit = page_limit(q.limit, 50)?;
    let before_id = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let metric = q
        .metric
        .as_deref()
        .map(str::parse::<Metric>)
        .transpose()
        .map_err(|e| ApiError::BadRequest {
            kind: "invalid-query",
            detail: e.to_string(),
        })?;
    let filter = ListFilter {
        metric,
        channel: q.channel,
        contact_id: q.contact,
        ticket_ref: q.ticket_ref,
        from: q.from.map(channels::sanitize::storable),
        to: q.to.map(channels::sanitize::storable),
        before_id,
        limit: limit + 1,
    };
    let mut items = rows::list(&state.db.read, tenant.id, &filter)
        .await
        .map_err(|e| state.db_error(e))?;
    let next_cursor = if items.len() as u64 > limit {
        items.truncate(limit as usize);
        items.last().map(|f| encode_cursor(f.id))
    } else {
        None
    };
    Ok(Json(Page { items, next_cursor }))
}
