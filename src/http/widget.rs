//! The web widget's public side:
//!
//! - `GET /widget.js`: one dependency-free script for every site, with its content hash in the
//!   URL the API gives out (`?v=…`: cached for a year, immutable); without it, five minutes and
//!   an ETag. `Cross-Origin-Resource-Policy: cross-origin`, so any page may embed it.
//! - `GET /w/{site_key}/eligibility`: whether to show the widget to this visitor on this page
//!   now, and, if so, an impression to answer under and the words to show. An identified
//!   visitor (a valid `user_hash`) is decided by the same policy engine as SMS and e-mail, and
//!   the decision is logged on the contact.
//! - `POST /w/{site_key}/feedback`: the answer, under its impression.
//!
//! Both answer only the site's allowed origins: CORS for browsers, and the same check on the
//! `Origin` header for everyone else (a request from another origin, or with none, is 403).
//! Written here rather than with tower-http's CORS layer because the allow-list is per site,
//! read from the database by the handler that finds the site.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use channels::email::texts;
use channels::model::{ContactRef, Email, FeedbackInput, Identity, Score, TicketRefs};
use channels::vocabulary::Channel;
use channels::widget::token::{self, Audience};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::feedback::parse_query;
use super::json::JsonBody;
use super::problem::ApiError;
use super::AppState;
use crate::ingest::links::{AnswerSource, LinkAnswer};
use crate::ingest::{Accepted, Received};
use crate::policy::decision;
use crate::policy::schedule::SendRequest;
use crate::store;
use crate::store::sites::{self, Site};
use crate::store::surveys::{self, Survey};

/// The provider name widget answers and their raw events carry.
pub const PROVIDER: &str = "widget";
/// The longest comment kept.
const MAX_COMMENT_CHARS: usize = 2000;
const MAX_ID_CHARS: usize = 256;

static SOURCE: &str = include_str!("../../assets/widget.js");

/// The script, its content hash and its gzip form, made once.
struct Script {
    version: String,
    gzip: Vec<u8>,
}

static SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    use std::io::Write;
    let digest = Sha256::digest(SOURCE.as_bytes());
    let version: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let gzip = encoder
        .write_all(SOURCE.as_bytes())
        .and_then(|_| encoder.finish())
        .unwrap_or_default();
    Script { version, gzip }
});

/// The script's URL with its content hash, as an embed snippet names it.
pub fn script_url(public_url: &str) -> String {
    format!("{public_url}/widget.js?v={}", SCRIPT.version)
}

/// What a replica remembers of identified visitors who may not be shown the survey now (by
/// tenant, site and visitor identity), so that a visitor's every page view neither decides
/// again nor logs another decision. Bounded in size and time.
#[derive(Clone)]
pub struct DecisionMemory(moka::sync::Cache<(Uuid, String, String), Arc<str>>);

impl DecisionMemory {
    pub fn new(ttl: Duration) -> Self {
        DecisionMemory(
            moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl.max(Duration::from_millis(1)))
                .build(),
        )
    }
}

pub fn router(state: &AppState) -> Router<AppState> {
    let public = Router::new()
        .route(
            "/w/{site_key}/eligibility",
            get(eligibility).options(preflight),
        )
        .route(
            "/w/{site_key}/feedback",
            axum::routing::post(answer).options(preflight),
        )
        .layer(DefaultBodyLimit::max(state.config.widget.body_limit_bytes))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            super::limits::per_client_ip_on_widget,
        ));
    Router::new().route("/widget.js", get(script)).merge(public)
}

async fn script(RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    let versioned = query
        .as_deref()
        .and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "v"))
        .is_some_and(|(_, v)| v == SCRIPT.version);
    let etag = format!("\"{}\"", SCRIPT.version);
    let cache = if versioned {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|e| e.split(';').next().unwrap_or("").trim() == "gzip")
        });
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else if gzip {
        let mut r = SCRIPT.gzip.clone().into_response();
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        SOURCE.into_response()
    };
    let h = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
        (header::CACHE_CONTROL, cache),
        (header::VARY, "Accept-Encoding"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("cross-origin"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    response
}

/// A site found, and the request's origin allowed by it.
struct Visit {
    site: Arc<Site>,
    origin: HeaderValue,
}

/// The site a request names, when its `Origin` is one of the site's, within the site's rate.
async fn visit(state: &AppState, site_key: &str, headers: &HeaderMap) -> Result<Visit, Response> {
    let site = sites::by_site_key(&state.db, site_key)
        .await
        .map_err(|e| state.db_error(e).into_response())?
        .ok_or_else(|| ApiError::NotFound("no such site".into()).into_response())?;
    let origin = headers
        .get(header::ORIGIN)
        .filter(|o| o.to_str().is_ok_and(|o| site.settings.allows_origin(o)))
        .cloned()
        .ok_or_else(|| {
            metrics::counter!("widget_requests_refused_total", "reason" => "origin").increment(1);
            ApiError::Forbidden("this origin may not use the site's widget".into()).into_response()
        })?;
    let visit = Visit { site, origin };
    state
        .limits
        .check_widget_site(&visit.site.site_key)
        .map_err(|e| visit.allow(e.into_response()))?;
    Ok(visit)
}

impl Visit {
    /// `response`, readable by the allowed origin's scripts.
    fn allow(&self, mut response: Response) -> Response {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, self.origin.clone());
        h.append(header::VARY, HeaderValue::from_static("Origin"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// The CORS preflight of a widget request (its JSON body makes the browser ask first).
async fn preflight(
    State(state): State<AppState>,
    Path(site_key): Path<String>,
    headers: HeaderMap,
) -> Response {
    let visit = match visit(&state, &site_key, &headers).await {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let asked = headers
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|m| m.to_str().ok())
        .and_then(|m| m.parse::<Method>().ok());
    if !matches!(asked, Some(Method::GET) | Some(Method::POST)) {
        return visit.allow(
            ApiError::Forbidden("the widget's endpoints take GET and POST".into()).into_response(),
        );
    }
    let mut response = visit.allow(StatusCode::NO_CONTENT.into_response());
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    response
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EligibilityQuery {
    /// The page's path (`location.pathname`).
    #[serde(default)]
    path: Option<String>,
    /// The visitor's languages, comma-separated (`navigator.languages`, or `data-lang`).
    #[serde(default)]
    lang: Option<String>,
    /// The browser's visitor id (only when the site lets the widget remember visitors).
    #[serde(default)]
    visitor: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    user_hash: Option<String>,
    /// `FeedbackWidget.show()`: the page asks now, so the placement rules (path, delay, share)
    /// do not apply; the fatigue rules do.
    #[serde(default)]
    force: Option<bool>,
}

/// Who the visitor is, when the site's backend proved it.
enum Visitor {
    Identified(Identity),
    Anonymous,
}

/// `user_hash` signs `user_id` (or, with no user id, the e-mail address), as the site's
/// backend computed it with the site's secret; anything else is an anonymous visitor. An
/// e-mail address beside a user id is not signed and is never used to find a contact.
fn visitor_of(site: &Site, q: &EligibilityQuery) -> Visitor {
    let signed = q.user_id.as_deref().or(q.email.as_deref());
    let (Some(value), Some(hash)) = (signed.map(str::trim), q.user_hash.as_deref()) else {
        return Visitor::Anonymous;
    };
    if value.is_empty() || value.len() > MAX_ID_CHARS {
        return Visitor::Anonymous;
    }
    let now = Utc::now();
    let verified = site
        .secrets(now)
        .any(|secret| token::verify_user_hash(secret.as_bytes(), value, hash.trim()));
    if !verified {
        metrics::counter!("widget_requests_refused_total", "reason" => "user_hash").increment(1);
        tracing::info!(site = %site.key, "a widget visitor's user hash does not verify; treated as anonymous");
        return Visitor::Anonymous;
    }
    match (&q.user_id, &q.email) {
        (Some(_), _) => Visitor::Identified(Identity::External(value.to_owned())),
        (None, Some(_)) => match Email::parse(value) {
            Ok(email) => Visitor::Identified(Identity::Email(email)),
            Err(_) => Visitor::Anonymous,
        },
        (None, None) => Visitor::Anonymous,
    }
}

fn not_shown(reason: &str) -> Value {
    json!({ "show": false, "reason": reason })
}

async fn eligibility(
    State(state): State<AppState>,
    Path(site_key): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let visit = match visit(&state, &site_key, &headers).await {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let answer = decide(&state, &visit.site, query.as_deref()).await;
    visit.allow(match answer {
        Ok(body) => Json(body).into_response(),
        Err(e) => e.into_response(),
    })
}

async fn decide(state: &AppState, site: &Site, query: Option<&str>) -> Result<Value, ApiError> {
    let q: EligibilityQuery = parse_query(query)?;
    let settings = &site.settings;
    let forced = q.force.unwrap_or(false);
    let survey = widget_survey(state, site).await?;
    let Some(survey) = survey else {
        return Ok(not_shown("survey_unavailable"));
    };
    if !forced && !settings.shows_on(q.path.as_deref().unwrap_or("/")) {
        return Ok(not_shown("path"));
    }
    let visitor = visitor_of(site, &q);
    if !forced && settings.display.share < 1.0 {
        let who = match (&visitor, &q.visitor) {
            (Visitor::Identified(identity), _) => Some(identity.value().to_owned()),
            (Visitor::Anonymous, Some(v)) if !v.is_empty() && v.len() <= MAX_ID_CHARS => {
                Some(v.clone())
            }
            _ => None,
        };
        let period = decision::sample_period(Utc::now());
        let draw = match who {
            Some(who) => decision::draw(&[&site.site_key, &who, &period]),
            // Nobody to remember: a fresh draw per page view.
            None => rand::random::<f64>(),
        };
        if draw >= settings.display.share {
            return Ok(not_shown("share"));
        }
    }
    let languages = q.lang.as_deref().unwrap_or("");
    let language = settings
        .language_for(languages.split(',').filter(|l| !l.trim().is_empty()))
        .to_owned();
    let impression = match visitor {
        Visitor::Anonymous => {
            metrics::counter!("widget_impressions_total", "visitor" => "anonymous").increment(1);
            token::sign_impression(
                site.secret.as_bytes(),
                channels::model::new_id(),
                Audience::Anonymous,
            )
        }
        Visitor::Identified(identity) => {
            let remembered = (
                site.tenant_id,
                site.site_key.clone(),
                format!("{}:{}", identity.kind(), identity.value()),
            );
            if let Some(reason) = state.widget_memory.0.get(&remembered) {
                return Ok(not_shown(&reason));
            }
            let request = SendRequest {
                contact: ContactRef {
                    identities: vec![identity],
                    ..ContactRef::default()
                },
                language: Some(language.clone()),
                in_widget: true,
                ..SendRequest::default()
            };
            let invitation = state
                .scheduler
                .schedule(site.tenant_id, &survey, &request)
                .await
                .map_err(|e| match e {
                    crate::policy::schedule::ScheduleError::Db(e) => state.db_error(e),
                    other => {
                        tracing::error!(error = %other, "a widget visitor could not be decided");
                        ApiError::Internal
                    }
                })?;
            if invitation.status != channels::vocabulary::InvitationStatus::Sent.as_str() {
                let reason: Arc<str> = invitation.reason.as_deref().unwrap_or("suppressed").into();
                state.widget_memory.0.insert(remembered, reason.clone());
                return Ok(not_shown(&reason));
            }
            metrics::counter!("widget_impressions_total", "visitor" => "identified").increment(1);
            token::sign_impression(site.secret.as_bytes(), invitation.id, Audience::Contact)
        }
    };
    let words = texts::for_language(&language);
    let (low, high) = survey
        .metric
        .numeric_scale()
        .map(|s| s.range())
        .unwrap_or((0, 10));
    let (low_label, high_label) = words.ends(survey.metric);
    let display = &settings.display;
    Ok(json!({
        "show": true,
        "impression": impression,
        "metric": survey.metric,
        "low": low,
        "high": high,
        "language": language,
        "texts": {
            "title": words.widget_title,
            "question": survey.question_in(Some(&language)).1,
            "low": low_label,
            "high": high_label,
            "comment": words.comment_label,
            "send": words.send,
            "thank_you": words.thank_you,
            "close": words.close,
            "pick": words.widget_pick,
            "error": words.widget_error,
        },
        "delay_ms": if forced { 0 } else { u64::from(display.delay_seconds) * 1000 },
        "min_answer_ms": state.config.widget.min_answer_ms,
        "rest_days": display.rest_days,
        "remember_visitor": display.remember_visitor,
        "theme": settings.theme,
    }))
}

/// The site's survey, if it still asks in the widget.
async fn widget_survey(state: &AppState, site: &Site) -> Result<Option<Survey>, ApiError> {
    Ok(
        surveys::get(&state.db, site.tenant_id, &site.settings.survey)
            .await
            .map_err(|e| state.db_error(e))?
            .filter(|s| s.asks_on(Channel::Widget))
            .filter(|s| s.metric.numeric_scale().is_some()),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WidgetAnswer {
    impression: String,
    score: i64,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    page: Option<String>,
    /// The language the widget was shown in.
    #[serde(default)]
    language: Option<String>,
    /// The honeypot: a field people never see and scripts fill in.
    #[serde(default)]
    website: Option<String>,
}

async fn answer(
    State(state): State<AppState>,
    Path(site_key): Path<String>,
    headers: HeaderMap,
    body: Result<JsonBody<WidgetAnswer>, ApiError>,
) -> Response {
    let visit = match visit(&state, &site_key, &headers).await {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let outcome = match body {
        Ok(body) => record(&state, &visit.site, body).await,
        Err(e) => Err(e),
    };
    let label = match &outcome {
        Ok((StatusCode::CREATED, _)) => "recorded",
        Ok((StatusCode::ACCEPTED, _)) => "discarded",
        Ok(_) => "repeated",
        Err(_) => "refused",
    };
    metrics::counter!("widget_answers_total", "outcome" => label).increment(1);
    visit.allow(match outcome {
        Ok((status, body)) => (status, Json(body)).into_response(),
        Err(e) => e.into_response(),
    })
}

async fn record(
    state: &AppState,
    site: &Site,
    body: JsonBody<WidgetAnswer>,
) -> Result<(StatusCode, Value), ApiError> {
    let answer = &body.value;
    if answer.website.as_deref().is_some_and(|w| !w.is_empty()) {
        // Answered as if taken, so a script learns nothing; nothing is stored.
        tracing::info!(site = %site.key, "a widget answer filled the honeypot; discarded");
        return Ok((StatusCode::ACCEPTED, json!({"status": "accepted"})));
    }
    let now = Utc::now();
    let impression = site
        .secrets(now)
        .find_map(|secret| token::read_impression(secret.as_bytes(), &answer.impression).ok())
        .ok_or_else(|| ApiError::validation("impression", "not an impression of this site"))?;
    let age = now - impression.issued_at;
    let cfg = &state.config.widget;
    if age < chrono::Duration::milliseconds(cfg.min_answer_ms as i64) {
        return Err(ApiError::validation(
            "impression",
            "answered too soon after the widget was shown",
        ));
    }
    if age > chrono::Duration::hours(i64::from(cfg.impression_max_age_hours)) {
        return Err(ApiError::validation(
            "impression",
            "the widget was shown too long ago; show it again",
        ));
    }
    let comment = answer
        .comment
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| c.chars().take(MAX_COMMENT_CHARS).collect::<String>());
    let page = answer
        .page
        .as_deref()
        .map(|p| p.chars().take(200).collect::<String>());
    let metadata = json!({"via": "widget", "site": site.key, "page": page});
    let received = Received {
        kind: "widget.answer",
        content_type: Some("application/json"),
        body: &body.raw,
    };
    match impression.audience {
        Audience::Contact => {
            let source = AnswerSource {
                channel: Channel::Widget,
                provider: PROVIDER,
                metadata,
            };
            let score = i16::try_from(answer.score)
                .map_err(|_| ApiError::validation("score", "not on the survey's scale"))?;
            match state
                .ingest
                .answer_invitation(
                    source,
                    site.tenant_id,
                    impression.id,
                    score,
                    comment,
                    received,
                )
                .await
                .map_err(|e| state.ingest_error(e))?
            {
                LinkAnswer::Recorded {
                    feedback_id,
                    updated,
                } => Ok((
                    if updated {
                        StatusCode::OK
                    } else {
                        StatusCode::CREATED
                    },
                    json!({"status": "recorded", "feedback_id": feedback_id}),
                )),
                LinkAnswer::Closed => Err(ApiError::Conflict {
                    kind: "closed",
                    detail: "this survey no longer takes answers".into(),
                }),
                LinkAnswer::OffScale => {
                    Err(ApiError::validation("score", "not on the survey's scale"))
                }
            }
        }
        Audience::Anonymous => {
            let survey = widget_survey(state, site)
                .await?
                .ok_or_else(|| ApiError::Conflict {
                    kind: "closed",
                    detail: "this survey no longer takes answers".into(),
                })?;
            let score = Score::new(survey.metric, answer.score)
                .map_err(|_| ApiError::validation("score", "not on the survey's scale"))?;
            let input = FeedbackInput {
                channel: Channel::Widget.as_str().to_owned(),
                provider: PROVIDER.to_owned(),
                provider_ref: Some(impression.id.to_string()),
                contact: ContactRef::default(),
                invitation_id: None,
                metric: survey.metric,
                score: Some(score),
                comment,
                language: answer
                    .language
                    .clone()
                    .filter(|l| site.settings.languages.contains(l)),
                tickets: TicketRefs::default(),
                occurred_at: store::now(),
                metadata,
            };
            match state
                .ingest
                .submit(site.tenant_id, received, input)
                .await
                .map_err(|e| match e {
                    crate::ingest::IngestError::Conflict(_) => ApiError::Conflict {
                        kind: "already-answered",
                        detail: "this impression was answered already, differently".into(),
                    },
                    other => state.ingest_error(other),
                })? {
                Accepted::Created(f) => Ok((
                    StatusCode::CREATED,
                    json!({"status": "recorded", "feedback_id": f.id}),
                )),
                Accepted::Replayed(f) => Ok((
                    StatusCode::OK,
                    json!({"status": "recorded", "feedback_id": f.id}),
                )),
            }
        }
    }
}
