//! The closed loop's API:
//!
//! - `GET /v1/alert-rules`, `GET`, `PUT`, `DELETE /v1/alert-rules/{key}`: which answers open
//!   alerts (the `default` rule applies until the tenant puts its own under that key; deleting
//!   it brings the built-in one back);
//! - `GET /v1/owners`, `GET`, `PUT`, `DELETE /v1/owners/{ref}`: the directory that turns the
//!   `agent_ref` and `team_ref` of answers into people to notify;
//! - `GET /v1/alerts` (filters `status`, `owner`, `severity`, `overdue`), `GET
//!   /v1/alerts/{id}`, `POST /v1/alerts/{id}/acknowledge`, `…/resolve`, `…/reassign`;
//! - `GET /v1/alerts/stats?from=&to=&group_by=owner|team|severity`;
//! - `GET /a/{token}` (a page with a button; changes nothing, as link scanners fetch it) and
//!   `POST /a/{token}` (acknowledges): the link in an owner's notification.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use channels::email::links::{self, Purpose};
use channels::email::render::escape;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::auth::TenantAuth;
use super::feedback::parse_query;
use super::input::{check_webhook_url, decode_cursor, encode_cursor, page_limit};
use super::json::JsonBody;
use super::problem::ApiError;
use super::AppState;
use crate::alerts::rule::{self, Rule, DEFAULT_KEY, MAX_RULES};
use crate::alerts::stats::{self, GroupBy};
use crate::alerts::{self, ActionError};
use crate::store::alerts::{self as rows, Alert, ListFilter, Owner};
use crate::store::{self, contacts, feedback, invitations, tenants};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/alert-rules", get(list_rules))
        .route(
            "/v1/alert-rules/{key}",
            get(show_rule).put(put_rule).delete(delete_rule),
        )
        .route("/v1/owners", get(list_owners))
        .route(
            "/v1/owners/{reference}",
            get(show_owner).put(put_owner).delete(delete_owner),
        )
        .route("/v1/alerts", get(list_alerts))
        .route("/v1/alerts/stats", get(alert_stats))
        .route("/v1/alerts/{id}", get(show_alert))
        .route("/v1/alerts/{id}/acknowledge", post(acknowledge))
        .route("/v1/alerts/{id}/resolve", post(resolve))
        .route("/v1/alerts/{id}/reassign", post(reassign))
}

/// The public acknowledge link (rate-limited per client address with the e-mail links).
pub fn link_router() -> Router<AppState> {
    Router::new().route(
        "/a/{token}",
        get(show_acknowledge_page).post(acknowledge_by_link),
    )
}

/// Keys of rules and refs of owners: what platforms send as ids, e-mail addresses included.
fn check_key(field: &str, key: &str) -> Result<(), ApiError> {
    let ok = !key.is_empty()
        && key.len() <= 128
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:@+".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ApiError::validation(
            field,
            "1 to 128 letters, digits and - _ . : @ +",
        ))
    }
}

// Rules.

fn rule_view(key: &str, rule: &Rule) -> Value {
    let mut view = serde_json::to_value(rule).unwrap_or_else(|_| json!({}));
    view["key"] = json!(key);
    view
}

async fn rules(state: &AppState, tenant_id: Uuid) -> Result<Vec<(String, Rule)>, ApiError> {
    alerts::rules_of(&state.db.read, tenant_id)
        .await
        .map_err(|e| state.db_error(e))
}

async fn list_rules(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let items: Vec<Value> = rules(&state, tenant.id)
        .await?
        .iter()
        .map(|(key, rule)| rule_view(key, rule))
        .collect();
    Ok(Json(json!({ "items": items })))
}

async fn show_rule(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    rules(&state, tenant.id)
        .await?
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(k, rule)| Json(rule_view(k, rule)))
        .ok_or_else(|| ApiError::NotFound(format!("no alert rule `{key}`")))
}

async fn put_rule(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(key): Path<String>,
    body: JsonBody<Rule>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_key("key", &key)?;
    let mut rule = body.value;
    if let Some(hours) = &mut rule.business_hours {
        hours
            .time_zone
            .get_or_insert_with(|| state.config.tenant_defaults.time_zone.clone());
    }
    rule.validate()
        .map_err(|(field, message)| ApiError::validation(field, message))?;
    let existing = rules(&state, tenant.id).await?;
    let is_new = !existing.iter().any(|(k, _)| *k == key);
    if is_new && existing.len() >= MAX_RULES {
        return Err(ApiError::validation(
            "key",
            format!("at most {MAX_RULES} alert rules per tenant"),
        ));
    }
    let stored = serde_json::to_value(&rule).map_err(|_| ApiError::Internal)?;
    rows::put_rule(&state.db.write, tenant.id, &key, stored, store::now())
        .await
        .map_err(|e| state.db_error(e))?;
    state.db.caches.alert_setup.invalidate(&tenant.id);
    let status = if is_new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(rule_view(&key, &rule))))
}

async fn delete_rule(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<StatusCode, ApiError> {
    let deleted = rows::delete_rule(&state.db.write, tenant.id, &key)
        .await
        .map_err(|e| state.db_error(e))?;
    state.db.caches.alert_setup.invalidate(&tenant.id);
    match deleted {
        true => Ok(StatusCode::NO_CONTENT),
        false if key == DEFAULT_KEY => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::NotFound(format!("no alert rule `{key}`"))),
    }
}

// Owners.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OwnerBody {
    name: Option<String>,
    email: Option<String>,
    slack_webhook_url: Option<String>,
    teams_webhook_url: Option<String>,
    time_zone: Option<String>,
    escalate_to: Option<String>,
    #[serde(default)]
    default: bool,
}

/// A chat webhook's URL is its credential: shown as its host only.
fn webhook_shown(url: &Option<String>) -> Value {
    match url.as_deref().and_then(|u| url::Url::parse(u).ok()) {
        Some(u) => json!(format!("{}://{}/…", u.scheme(), u.host_str().unwrap_or(""))),
        None => Value::Null,
    }
}

fn owner_view(owner: &Owner) -> Value {
    json!({
        "ref": owner.reference,
        "name": owner.name,
        "email": owner.email,
        "slack_webhook_url": webhook_shown(&owner.slack_webhook_url),
        "teams_webhook_url": webhook_shown(&owner.teams_webhook_url),
        "time_zone": owner.time_zone,
        "escalate_to": owner.escalate_to,
        "default": owner.is_default,
        "created_at": owner.created_at,
        "updated_at": owner.updated_at,
    })
}

/// The tenant's owner under `reference`, if there is one.
async fn owner_of(
    state: &AppState,
    tenant_id: Uuid,
    reference: &str,
) -> Result<Option<Owner>, ApiError> {
    Ok(
        rows::directory(&state.db.read, &[(tenant_id, reference)], &[])
            .await
            .map_err(|e| state.db_error(e))?
            .pop(),
    )
}

async fn find_owner(state: &AppState, tenant_id: Uuid, reference: &str) -> Result<Owner, ApiError> {
    owner_of(state, tenant_id, reference)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no owner `{reference}`")))
}

async fn list_owners(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let owners = rows::owners(&state.db.read, tenant.id)
        .await
        .map_err(|e| state.db_error(e))?;
    let items: Vec<Value> = owners.iter().map(owner_view).collect();
    Ok(Json(json!({ "items": items })))
}

async fn show_owner(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(reference): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(owner_view(
        &find_owner(&state, tenant.id, &reference).await?,
    )))
}

async fn put_owner(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(reference): Path<String>,
    body: JsonBody<OwnerBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_key("ref", &reference)?;
    let b = body.value;
    let email = match b.email.as_deref() {
        Some(e) => Some(
            channels::model::Email::parse(e)
                .map_err(|e| ApiError::validation("email", e.message))?
                .as_str()
                .to_owned(),
        ),
        None => None,
    };
    for (field, url) in [
        ("slack_webhook_url", &b.slack_webhook_url),
        ("teams_webhook_url", &b.teams_webhook_url),
    ] {
        if let Some(url) = url {
            check_webhook_url(&state, field, url).await?;
        }
    }
    if let Some(zone) = &b.time_zone {
        zone.parse::<chrono_tz::Tz>()
            .map_err(|_| ApiError::validation("time_zone", "an IANA time zone"))?;
    }
    if let Some(to) = &b.escalate_to {
        check_key("escalate_to", to)?;
    }
    if let Some(name) = &b.name {
        if name.chars().count() > 200 {
            return Err(ApiError::validation("name", "at most 200 characters"));
        }
    }
    let now = store::now();
    let existing = owner_of(&state, tenant.id, &reference).await?;
    let owner = Owner {
        tenant_id: tenant.id,
        reference: reference.clone(),
        name: b.name,
        email,
        slack_webhook_url: b.slack_webhook_url,
        teams_webhook_url: b.teams_webhook_url,
        time_zone: b.time_zone,
        escalate_to: b.escalate_to,
        is_default: b.default,
        created_at: existing.as_ref().map_or(now, |o| o.created_at),
        updated_at: now,
    };
    let txn = sea_orm::TransactionTrait::begin(&state.db.write)
        .await
        .map_err(|e| state.db_error(e))?;
    rows::put_owner(&txn, &owner)
        .await
        .map_err(|e| state.db_error(e))?;
    txn.commit().await.map_err(|e| state.db_error(e))?;
    state.db.caches.alert_setup.invalidate(&tenant.id);
    let status = if existing.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(owner_view(&owner))))
}

async fn delete_owner(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(reference): Path<String>,
) -> Result<StatusCode, ApiError> {
    let deleted = rows::delete_owner(&state.db.write, tenant.id, &reference)
        .await
        .map_err(|e| state.db_error(e))?;
    state.db.caches.alert_setup.invalidate(&tenant.id);
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no owner `{reference}`")))
    }
}

// Alerts.

fn alert_view(alert: &Alert, now: DateTime<Utc>) -> Value {
    let mut view = alerts::view(alert);
    view["overdue"] = json!(alert.is_unresolved() && alert.due_at < now);
    view
}

fn alert_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::NotFound(format!("no alert {id}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertQuery {
    status: Option<String>,
    owner: Option<String>,
    severity: Option<String>,
    overdue: Option<bool>,
    limit: Option<u64>,
    cursor: Option<String>,
}

async fn list_alerts(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q: AlertQuery = parse_query(query.as_deref())?;
    if let Some(status) = &q.status {
        if !rows::STATUSES.contains(&status.as_str()) {
            return Err(ApiError::validation(
                "status",
                format!("one of {}", rows::STATUSES.join(", ")),
            ));
        }
    }
    if let Some(severity) = &q.severity {
        if rule::Severity::parse(severity).is_none() {
            return Err(ApiError::validation("severity", "urgent or normal"));
        }
    }
    let now = state.clock.now();
    let limit = page_limit(q.limit, 50)?;
    let filter = ListFilter {
        status: q.status,
        owner: q.owner,
        severity: q.severity,
        overdue_at: q.overdue.unwrap_or(false).then_some(now),
        before_id: q.cursor.as_deref().map(decode_cursor).transpose()?,
        limit,
    };
    let found = rows::list(&state.db.read, tenant.id, &filter)
        .await
        .map_err(|e| state.db_error(e))?;
    let next = (found.len() as u64 == limit)
        .then(|| found.last().map(|a| encode_cursor(a.id)))
        .flatten();
    let items: Vec<Value> = found.iter().map(|a| alert_view(a, now)).collect();
    Ok(Json(json!({ "items": items, "next_cursor": next })))
}

async fn show_alert(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let db = |e| state.db_error(e);
    let alert = rows::get(&state.db.read, tenant.id, alert_id(&id)?)
        .await
        .map_err(db)?
        .ok_or_else(|| ApiError::NotFound(format!("no alert {id}")))?;
    let mut view = alert_view(&alert, state.clock.now());
    let answer = feedback::get(&state.db.read, tenant.id, alert.feedback_id)
        .await
        .map_err(db)?;
    let ticket_url = rules(&state, tenant.id)
        .await?
        .iter()
        .find(|(k, _)| *k == alert.rule_key)
        .and_then(|(_, r)| r.ticket_link(answer.as_ref().and_then(|a| a.ticket_ref.as_deref())));
    view["ticket"] = json!({
        "ref": answer.as_ref().and_then(|a| a.ticket_ref.clone()),
        "url": ticket_url,
    });
    if let Some(contact_id) = alert.contact_id {
        let recent = feedback::list(
            &state.db.read,
            tenant.id,
            &feedback::ListFilter {
                contact_id: Some(contact_id),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .map_err(db)?;
        let asked = invitations::list(
            &state.db.read,
            tenant.id,
            &invitations::ListFilter {
                status: None,
                contact_id: Some(contact_id),
                survey_key: None,
                before_id: None,
                limit: 10,
            },
        )
        .await
        .map_err(db)?;
        let contact = contacts::get(&state.db.read, tenant.id, contact_id)
            .await
            .map_err(db)?;
        view["contact"] = json!({
            "id": contact_id,
            "identities": contact.map(|c| c.identities),
            "recent_answers": recent,
            "recent_invitations": asked,
        });
    }
    view["answer"] = json!(answer);
    Ok(Json(view))
}

fn action_error(state: &AppState, e: ActionError) -> ApiError {
    match e {
        ActionError::NotFound(id) => ApiError::NotFound(format!("no alert {id}")),
        ActionError::Conflict(detail) => ApiError::Conflict {
            kind: "alert-status",
            detail,
        },
        ActionError::Invalid(field, message) => ApiError::validation(field, message),
        ActionError::Storage(e) => state.db_error(e),
    }
}

/// Wakes the relay so an action's event and notifications go out now.
fn acted(state: &AppState, alert: Alert) -> Json<Value> {
    state.ingest.wake_relay();
    Json(alert_view(&alert, state.clock.now()))
}

async fn acknowledge(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let alert = alerts::acknowledge(&state.db, tenant.id, alert_id(&id)?, state.clock.now())
        .await
        .map_err(|e| action_error(&state, e))?;
    Ok(acted(&state, alert))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResolveBody {
    outcome: String,
    note: Option<String>,
}

async fn resolve(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: JsonBody<ResolveBody>,
) -> Result<Json<Value>, ApiError> {
    let b = body.value;
    if b.note.as_ref().is_some_and(|n| n.chars().count() > 4000) {
        return Err(ApiError::validation("note", "at most 4000 characters"));
    }
    let note = b
        .note
        .map(|n| channels::sanitize::clean_text(&n).into_owned());
    let alert = alerts::resolve(
        &state.db,
        tenant.id,
        alert_id(&id)?,
        &b.outcome,
        note,
        state.clock.now(),
    )
    .await
    .map_err(|e| action_error(&state, e))?;
    Ok(acted(&state, alert))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReassignBody {
    owner: String,
}

async fn reassign(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: JsonBody<ReassignBody>,
) -> Result<Json<Value>, ApiError> {
    let alert = alerts::reassign(
        &state.db,
        tenant.id,
        alert_id(&id)?,
        &body.value.owner,
        state.clock.now(),
    )
    .await
    .map_err(|e| action_error(&state, e))?;
    Ok(acted(&state, alert))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsQuery {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    group_by: Option<String>,
}

/// Alerts one statistics request reads at most.
const MAX_MEASURED: u64 = 100_000;

async fn alert_stats(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q: StatsQuery = parse_query(query.as_deref())?;
    let to = q.to.unwrap_or_else(|| state.clock.now());
    let from = q.from.unwrap_or(to - Duration::days(30));
    if from >= to {
        return Err(ApiError::validation("from", "before `to`"));
    }
    let group_by = match q.group_by.as_deref() {
        None => None,
        Some(g) => Some(
            GroupBy::parse(g)
                .ok_or_else(|| ApiError::validation("group_by", "owner, team or severity"))?,
        ),
    };
    let measured = rows::opened_between(&state.db.read, tenant.id, from, to, MAX_MEASURED)
        .await
        .map_err(|e| state.db_error(e))?;
    let (groups, total) = stats::measure(&measured, group_by);
    Ok(Json(json!({
        "from": from,
        "to": to,
        "group_by": q.group_by,
        "groups": groups,
        "total": total,
        "truncated": measured.len() as u64 == MAX_MEASURED,
    })))
}

// The acknowledge link.

/// The alert a link's token names, once its signature is checked with its tenant's key.
async fn linked_alert(state: &AppState, token: &str) -> Result<Option<Alert>, sea_orm::DbErr> {
    let Ok(read) = links::read(token) else {
        return Ok(None);
    };
    if read.purpose != Purpose::Acknowledge {
        return Ok(None);
    }
    let Some(tenant_id) = rows::tenant_of(&state.db.read, read.invitation).await? else {
        return Ok(None);
    };
    let Some(key) = tenants::link_key(&state.db, tenant_id).await? else {
        return Ok(None);
    };
    if read.verify(&key, None).is_err() {
        return Ok(None);
    }
    rows::get(&state.db.read, tenant_id, read.invitation).await
}

fn link_page(status: StatusCode, title: &str, body: &str) -> Response {
    super::links::page(
        status,
        channels::email::texts::for_language("en"),
        title,
        &format!("<h1>{}</h1>{body}", escape(title)),
    )
}

fn unavailable_page(e: sea_orm::DbErr) -> Response {
    tracing::warn!(error = %e, "an acknowledge link could not be followed");
    link_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Please try again",
        "<p>The alert cannot be reached right now.</p>",
    )
}

fn unknown_link() -> Response {
    link_page(
        StatusCode::NOT_FOUND,
        "This link does not work",
        "<p>It may have been copied incompletely.</p>",
    )
}

fn summary(alert: &Alert) -> String {
    format!(
        "<p>{} {}: {} alert, owned by {}, due {}.</p>",
        escape(&alert.metric.to_uppercase()),
        alert.score.map(|s| s.to_string()).unwrap_or_default(),
        escape(&alert.severity),
        escape(alert.owner_ref.as_deref().unwrap_or("nobody")),
        alert.due_at.format("%Y-%m-%d %H:%M UTC"),
    )
}

async fn show_acknowledge_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    _headers: HeaderMap,
) -> Response {
    match linked_alert(&state, &token).await {
        Err(e) => unavailable_page(e),
        Ok(None) => unknown_link(),
        Ok(Some(alert)) if alert.status == rows::OPEN => link_page(
            StatusCode::OK,
            "Acknowledge this alert?",
            &format!(
                "{}<form method=\"post\"><button type=\"submit\">Acknowledge</button></form>",
                summary(&alert)
            ),
        ),
        Ok(Some(alert)) => link_page(
            StatusCode::OK,
            &format!("This alert is {}", alert.status.replace('_', " ")),
            &summary(&alert),
        ),
    }
}

async fn acknowledge_by_link(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let alert = match linked_alert(&state, &token).await {
        Err(e) => return unavailable_page(e),
        Ok(None) => return unknown_link(),
        Ok(Some(alert)) => alert,
    };
    match alerts::acknowledge(&state.db, alert.tenant_id, alert.id, state.clock.now()).await {
        Ok(alert) => {
            state.ingest.wake_relay();
            link_page(StatusCode::OK, "Acknowledged", &summary(&alert))
        }
        Err(ActionError::Storage(e)) => unavailable_page(e),
        Err(_) => link_page(
            StatusCode::CONFLICT,
            &format!("This alert is {}", alert.status.replace('_', " ")),
            &summary(&alert),
        ),
    }
}
