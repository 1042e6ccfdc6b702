//! The closed loop: a detractor's answer opens an alert for the employee responsible, in the
//! transaction that stores the answer; the owner is notified at once through the outbox; the
//! follow-up is due by a deadline, after which the alert escalates once; its effect on the
//! customer's next answer is measured.
//!
//! - [`rule`]: the pure decisions (does an answer open an alert, how severe, when due);
//! - [`open`](on_answers): the shell ingest calls with the answers a transaction wrote;
//! - the owner's and the sweeper's changes ([`acknowledge`], [`resolve`], [`reassign`],
//!   [`escalate_overdue`]), each a conditional update with its event in one transaction;
//! - [`notify`]: the outbox destinations that e-mail and message the owner.

pub mod notify;
pub mod rule;
pub mod stats;
pub mod sweep;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, TransactionTrait, Value};
use serde_json::{json, Value as Json};
use uuid::Uuid;

use crate::events::FEEDBACK_UPDATED;
use crate::events::{Event, ALERT_ACKNOWLEDGED, ALERT_OPENED, ALERT_RESOLVED, FEEDBACK_CREATED};
use crate::store::alerts::{self as rows, Alert, Change, Owner};
use crate::store::batch::{self, Route};
use crate::store::cache::Caches;
use crate::store::Db;
use rule::{Rule, Severity};

/// What time it is for the closed loop: deadlines, overdue checks, acknowledgements. A test
/// advances it instead of sleeping for a day.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        crate::store::now()
    }
}

/// Outbox destinations of the owners' notifications, one row per channel, so that a chat
/// webhook that fails is tried again without e-mailing the owner a second time.
pub const NOTIFY_EMAIL: &str = "notify:email";
pub const NOTIFY_SLACK: &str = "notify:slack";
pub const NOTIFY_TEAMS: &str = "notify:teams";

/// A notification to an alert's new owner. Queued for the notification destinations only: it
/// is not one of the events forwarded to sinks.
pub const ALERT_REASSIGNED: &str = "alert.reassigned";

/// How an owner's action ended.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("no alert {0}")]
    NotFound(Uuid),
    /// The alert's status does not allow the action (a resolved alert is not acknowledged).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(&'static str, String),
    #[error(transparent)]
    Storage(#[from] DbErr),
}

/// An answer as the alert rules read it, from the `feedback.*` event that carries it.
struct Answer<'a> {
    event: &'a Event,
    created: bool,
    feedback_id: Uuid,
    contact_id: Option<Uuid>,
    invitation_id: Option<Uuid>,
    occurred_at: DateTime<Utc>,
}

impl<'a> Answer<'a> {
    fn read(event: &'a Event) -> Option<Answer<'a>> {
        let created = match event.event_type.as_str() {
            FEEDBACK_CREATED => true,
            FEEDBACK_UPDATED => false,
            _ => return None,
        };
        let data = &event.data;
        let uuid = |field: &str| data[field].as_str().and_then(|s| Uuid::parse_str(s).ok());
        // An answer without a score opens nothing, but an update to one may close an alert.
        if created && data["score"].is_null() {
            return None;
        }
        Some(Answer {
            event,
            created,
            feedback_id: event.aggregate_id,
            contact_id: uuid("contact_id"),
            invitation_id: uuid("invitation_id"),
            occurred_at: data["occurred_at"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(event.created_at),
        })
    }

    fn text(&self, field: &str) -> Option<&'a str> {
        self.event.data[field].as_str()
    }

    fn score(&self) -> Option<i16> {
        self.event.data["score"].as_i64().map(|s| s as i16)
    }

    fn rule_view(&self, survey: Option<&'a str>) -> rule::Answer<'a> {
        rule::Answer {
            metric: self.text("metric").unwrap_or(""),
            score: self.score(),
            scale: self.text("scale"),
            channel: self.text("channel").unwrap_or(""),
            team_ref: self.text("team_ref"),
            comment: self.text("comment"),
            survey,
        }
    }
}

/// A tenant's rules, with the default rule if the tenant has not replaced it. A stored rule
/// that no longer parses is skipped (and logged), never fatal to the answer being stored.
fn parsed(tenant: Uuid, stored: &[rows::StoredRule]) -> Vec<(String, Rule)> {
    let mut rules = Vec::with_capacity(stored.len() + 1);
    for (key, json) in stored {
        match serde_json::from_value::<Rule>(json.clone()) {
            Ok(rule) => rules.push((key.clone(), rule)),
            Err(e) => tracing::warn!(%tenant, key, error = %e, "an alert rule does not parse"),
        }
    }
    rule::effective(rules)
}

/// What the closed loop knows of each tenant: its rules, and whether it has owners.
struct Setup {
    rules: Vec<(String, Rule)>,
    has_owners: bool,
}

/// The [`Setup`] of these tenants, from the cache (read through `conn` when not cached).
async fn setups<C: ConnectionTrait>(
    conn: &C,
    caches: &Caches,
    tenant_ids: &[Uuid],
) -> Result<HashMap<Uuid, Setup>, DbErr> {
    let mut found = HashMap::with_capacity(tenant_ids.len());
    for &tenant in tenant_ids {
        let stored = caches
            .alert_setup
            .get_or_load(
                tenant,
                || async { rows::setup_of(conn, tenant).await.map(Arc::new) },
                |_| true,
            )
            .await?;
        found.insert(
            tenant,
            Setup {
                rules: parsed(tenant, &stored.rules),
                has_owners: stored.has_owners,
            },
        );
    }
    Ok(found)
}

/// One tenant's rules as stored now, the default rule included (what the rules API shows).
pub async fn rules_of<C: ConnectionTrait>(
    conn: &C,
    tenant: Uuid,
) -> Result<Vec<(String, Rule)>, DbErr> {
    let stored: Vec<rows::StoredRule> = rows::rules_of(conn, &[tenant])
        .await?
        .into_iter()
        .map(|(_, rule)| rule)
        .collect();
    Ok(parsed(tenant, &stored))
}

/// The most severe verdict of a tenant's rules on an answer, with the rule that gave it.
fn verdict<'r>(
    rules: &'r [(String, Rule)],
    answer: &rule::Answer<'_>,
) -> Option<(Severity, &'r str, &'r Rule)> {
    let mut best: Option<(Severity, &str, &Rule)> = None;
    for (key, rule) in rules {
        if let Some(severity) = rule.evaluate(answer) {
            if best.is_none_or(|(b, _, _)| severity > b) {
                best = Some((severity, key, rule));
            }
        }
    }
    best
}

/// Opens, raises or closes the alerts of the answers whose `feedback.*` events a transaction
/// is about to queue, in that transaction: an alert exists exactly when its answer does.
///
/// A new answer that a rule matches opens an alert (one per answer: the unique key on the
/// answer keeps a second replica's from being stored). A changed answer with an alert raises
/// its severity when it got worse, or closes it as `self_resolved` when it no longer matches
/// and nobody had acknowledged it; one without an alert opens one if it now matches.
pub async fn on_answers<C: ConnectionTrait>(
    conn: &C,
    caches: &Caches,
    routes: &[Route],
    events: &[Event],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    // An answer written twice in one transaction (a rating created, then changed, in one
    // group) is judged once, as it ends up.
    let mut answers: Vec<Answer> = Vec::new();
    let mut seen: HashMap<Uuid, usize> = HashMap::new();
    for answer in events.iter().filter_map(Answer::read) {
        match seen.get(&answer.feedback_id) {
            Some(&i) => {
                let created = answers[i].created || answer.created;
                answers[i] = Answer { created, ..answer };
            }
            None => {
                seen.insert(answer.feedback_id, answers.len());
                answers.push(answer);
            }
        }
    }
    if answers.is_empty() {
        return Ok(());
    }
    let mut tenants: Vec<Uuid> = answers.iter().map(|a| a.event.tenant_id).collect();
    tenants.sort();
    tenants.dedup();
    let setups = setups(conn, caches, &tenants).await?;
    let surveys: HashMap<Uuid, String> = if setups
        .values()
        .flat_map(|s| &s.rules)
        .any(|(_, r)| !r.surveys.is_empty())
    {
        let invitations: Vec<Uuid> = answers.iter().filter_map(|a| a.invitation_id).collect();
        rows::survey_keys(conn, &invitations)
            .await?
            .into_iter()
            .collect()
    } else {
        HashMap::new()
    };
    let updated: Vec<Uuid> = answers
        .iter()
        .filter(|a| !a.created)
        .map(|a| a.feedback_id)
        .collect();
    let existing: HashMap<Uuid, Alert> = rows::of_answers(conn, &updated)
        .await?
        .into_iter()
        .map(|a| (a.feedback_id, a))
        .collect();

    let mut to_open = Vec::new();
    let mut reopened = Vec::new();
    let mut closed = Vec::new();
    for answer in &answers {
        let survey = answer
            .invitation_id
            .and_then(|i| surveys.get(&i))
            .map(String::as_str);
        let tenant_rules = setups
            .get(&answer.event.tenant_id)
            .map(|s| s.rules.as_slice())
            .unwrap_or(&[]);
        let found = verdict(tenant_rules, &answer.rule_view(survey));
        match (existing.get(&answer.feedback_id), found) {
            (None, Some((severity, key, rule))) => to_open.push((answer, severity, key, rule)),
            (None, None) => {}
            // Unhappy again after a better answer had closed it: the same alert, open again
            // with a new deadline, and its owner told again.
            (Some(alert), Some((severity, _, rule))) if alert.status == rows::SELF_RESOLVED => {
                let severity =
                    Severity::parse(&alert.severity).map_or(severity, |old| old.max(severity));
                let due = rule.due_at(now);
                let change = Change {
                    from: &[rows::SELF_RESOLVED],
                    set: vec![
                        ("status = ?", rows::OPEN.into()),
                        ("resolved_at = ?", Value::ChronoDateTimeUtc(None)),
                        ("severity = ?", severity.as_str().into()),
                        ("score = ?", answer.score().into()),
                        ("due_at = ?", due.into()),
                        ("escalate_at = ?", Some(due).into()),
                        ("escalated_at = ?", Value::ChronoDateTimeUtc(None)),
                    ],
                };
                if let Some(alert) =
                    rows::change(conn, alert.tenant_id, alert.id, change, now).await?
                {
                    reopened.push((alert, answer, rule));
                }
            }
            (Some(alert), None) if alert.status == rows::OPEN => {
                let change = Change {
                    from: &[rows::OPEN],
                    set: vec![
                        ("status = ?", rows::SELF_RESOLVED.into()),
                        ("resolved_at = ?", now.into()),
                        ("escalate_at = ?", Value::ChronoDateTimeUtc(None)),
                        ("score = ?", answer.score().into()),
                    ],
                };
                if let Some(alert) =
                    rows::change(conn, alert.tenant_id, alert.id, change, now).await?
                {
                    closed.push(event(ALERT_RESOLVED, &alert, json!({}), now));
                }
            }
            (Some(alert), verdict) => {
                let raised = verdict
                    .map(|(s, _, _)| s)
                    .filter(|s| Severity::parse(&alert.severity).is_some_and(|old| *s > old));
                let mut set = vec![("score = ?", Value::from(answer.score()))];
                if let Some(severity) = raised {
                    set.push(("severity = ?", severity.as_str().into()));
                }
                let change = Change {
                    from: &[rows::OPEN, rows::ACKNOWLEDGED],
                    set,
                };
                rows::change(conn, alert.tenant_id, alert.id, change, now).await?;
            }
        }
    }
    batch::enqueue(conn, &closed, routes).await?;
    if to_open.is_empty() && reopened.is_empty() {
        return Ok(());
    }

    // Owners: the answer's agent, else its team, as the directory knows them; else the
    // tenant's default owner. Tenants without a directory need no look-up.
    let has_owners = |tenant: &Uuid| setups.get(tenant).is_some_and(|s| s.has_owners);
    let mut refs: Vec<(Uuid, &str)> = Vec::new();
    for (answer, ..) in to_open
        .iter()
        .filter(|(a, ..)| has_owners(&a.event.tenant_id))
    {
        for field in ["agent_ref", "team_ref"] {
            if let Some(r) = answer.text(field) {
                refs.push((answer.event.tenant_id, r));
            }
        }
    }
    for (alert, ..) in reopened.iter().filter(|(a, ..)| has_owners(&a.tenant_id)) {
        if let Some(owner) = &alert.owner_ref {
            refs.push((alert.tenant_id, owner));
        }
    }
    refs.sort_unstable();
    refs.dedup();
    let opening_tenants: Vec<Uuid> = {
        let mut t: Vec<Uuid> = to_open
            .iter()
            .map(|(a, ..)| a.event.tenant_id)
            .filter(has_owners)
            .collect();
        t.sort();
        t.dedup();
        t
    };
    let directory = Directory(rows::directory(conn, &refs, &opening_tenants).await?);
    let mut alerts = Vec::with_capacity(to_open.len());
    let mut details = Vec::with_capacity(to_open.len());
    for (answer, severity, key, rule) in &to_open {
        let tenant = answer.event.tenant_id;
        let (agent, team) = (answer.text("agent_ref"), answer.text("team_ref"));
        let owner = directory
            .find(tenant, agent)
            .or_else(|| directory.find(tenant, team))
            .or_else(|| directory.default_of(tenant));
        let owner_ref = owner
            .map(|o| o.reference.clone())
            .or_else(|| agent.or(team).map(str::to_owned));
        alerts.push(Alert {
            id: channels::model::new_id(),
            tenant_id: tenant,
            feedback_id: answer.feedback_id,
            rule_key: (*key).to_owned(),
            status: rows::OPEN.into(),
            severity: severity.as_str().into(),
            owner_ref,
            agent_ref: agent.map(str::to_owned),
            team_ref: team.map(str::to_owned),
            contact_id: answer.contact_id,
            metric: answer.text("metric").unwrap_or("").to_owned(),
            score: answer.score(),
            scale: answer.text("scale").map(str::to_owned),
            answered_at: answer.occurred_at,
            opened_at: now,
            due_at: rule.due_at(now),
            acknowledged_at: None,
            resolved_at: None,
            outcome: None,
            note: None,
            escalated_at: None,
            updated_at: now,
        });
        details.push((answer, *rule, owner));
    }
    let inserted = rows::insert(conn, &alerts).await?;
    let opened_event = |alert: &Alert, answer: &Answer, rule: &Rule| {
        let extra = answer_details(
            answer.text("channel"),
            answer.text("comment"),
            answer.text("ticket_ref"),
            rule.ticket_link(answer.text("ticket_ref")),
        );
        event(ALERT_OPENED, alert, extra, now)
    };
    let mut opened = Vec::new();
    let mut owners = Vec::new();
    for (alert, (answer, rule, owner)) in alerts.iter().zip(details) {
        if inserted.contains(&alert.id) {
            opened.push(opened_event(alert, answer, rule));
            owners.push(owner);
        }
    }
    for (alert, answer, rule) in &reopened {
        opened.push(opened_event(alert, answer, rule));
        owners.push(directory.find(alert.tenant_id, alert.owner_ref.as_deref()));
    }
    batch::enqueue(conn, &opened, routes).await?;
    let notices: Vec<(&Event, &str)> = opened
        .iter()
        .zip(owners)
        .flat_map(|(e, owner)| notifications(e, owner))
        .collect();
    batch::enqueue_to(conn, &notices).await?;
    Ok(())
}

/// The owners a transaction looked up.
struct Directory(Vec<Owner>);

impl Directory {
    fn find(&self, tenant: Uuid, reference: Option<&str>) -> Option<&Owner> {
        let reference = reference?;
        self.0
            .iter()
            .find(|o| o.tenant_id == tenant && o.reference == reference)
    }

    fn default_of(&self, tenant: Uuid) -> Option<&Owner> {
        self.0
            .iter()
            .find(|o| o.tenant_id == tenant && o.is_default)
    }
}

/// What an alert's event and notifications carry of its answer beyond the alert itself.
fn answer_details(
    channel: Option<&str>,
    comment: Option<&str>,
    ticket_ref: Option<&str>,
    ticket_url: Option<String>,
) -> Json {
    json!({
        "channel": channel,
        "comment": comment,
        "ticket_ref": ticket_ref,
        "ticket_url": ticket_url,
    })
}

/// [`answer_details`] of a stored alert: its answer, and the ticket link of its rule (the
/// tenant's rules from the cache, so a sweep of many alerts reads them once).
async fn details_of<C: ConnectionTrait>(
    conn: &C,
    caches: &Caches,
    alert: &Alert,
) -> Result<Json, DbErr> {
    let Some(answer) =
        crate::store::feedback::get(conn, alert.tenant_id, alert.feedback_id).await?
    else {
        return Ok(json!({}));
    };
    let setups = setups(conn, caches, &[alert.tenant_id]).await?;
    let ticket_url = setups
        .get(&alert.tenant_id)
        .and_then(|s| s.rules.iter().find(|(key, _)| *key == alert.rule_key))
        .and_then(|(_, rule)| rule.ticket_link(answer.ticket_ref.as_deref()));
    Ok(answer_details(
        Some(&answer.channel),
        answer.comment.as_deref(),
        answer.ticket_ref.as_deref(),
        ticket_url,
    ))
}

/// An alert as the API shows it and its events carry it.
pub fn view(alert: &Alert) -> Json {
    json!({
        "id": alert.id,
        "status": alert.status,
        "severity": alert.severity,
        "owner": alert.owner_ref,
        "rule": alert.rule_key,
        "due_at": alert.due_at,
        "opened_at": alert.opened_at,
        "acknowledged_at": alert.acknowledged_at,
        "resolved_at": alert.resolved_at,
        "outcome": alert.outcome,
        "note": alert.note,
        "escalated_at": alert.escalated_at,
        "answer": {
            "feedback_id": alert.feedback_id,
            "metric": alert.metric,
            "score": alert.score,
            "answered_at": alert.answered_at,
        },
        "contact_id": alert.contact_id,
        "agent_ref": alert.agent_ref,
        "team_ref": alert.team_ref,
    })
}

/// The event of an alert's change: the alert as [`view`] shows it, with `extra` fields.
fn event(kind: &str, alert: &Alert, extra: Json, now: DateTime<Utc>) -> Event {
    let mut data = view(alert);
    if let (Some(data), Json::Object(extra)) = (data.as_object_mut(), extra) {
        data.extend(extra);
    }
    Event {
        id: channels::model::new_id(),
        event_type: kind.to_owned(),
        tenant_id: alert.tenant_id,
        aggregate_id: alert.id,
        created_at: now,
        data,
    }
}

/// The notification rows of `event` for `recipient`: one per channel the owner has.
fn notifications<'e>(
    event: &'e Event,
    recipient: Option<&Owner>,
) -> Vec<(&'e Event, &'static str)> {
    let Some(owner) = recipient else {
        return Vec::new();
    };
    [
        (owner.email.is_some(), NOTIFY_EMAIL),
        (owner.slack_webhook_url.is_some(), NOTIFY_SLACK),
        (owner.teams_webhook_url.is_some(), NOTIFY_TEAMS),
    ]
    .into_iter()
    .filter(|(has, _)| *has)
    .map(|(_, destination)| (event, destination))
    .collect()
}

/// Why an action cannot be taken on an alert in `status`.
fn refused(action: &str, alert: &Alert) -> ActionError {
    ActionError::Conflict(format!(
        "the alert is {}: it cannot be {action}",
        alert.status.replace('_', "-")
    ))
}

async fn current(db: &Db, tenant_id: Uuid, id: Uuid) -> Result<Alert, ActionError> {
    rows::get(&db.write, tenant_id, id)
        .await?
        .ok_or(ActionError::NotFound(id))
}

/// The owner took the alert on. Acknowledging it again changes nothing.
pub async fn acknowledge(
    db: &Db,
    tenant_id: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Alert, ActionError> {
    let txn = db.write.begin().await?;
    let change = Change {
        from: &[rows::OPEN],
        set: vec![
            ("status = ?", rows::ACKNOWLEDGED.into()),
            ("acknowledged_at = ?", now.into()),
        ],
    };
    let Some(alert) = rows::change(&txn, tenant_id, id, change, now).await? else {
        drop(txn);
        let alert = current(db, tenant_id, id).await?;
        return match alert.status.as_str() {
            rows::ACKNOWLEDGED => Ok(alert),
            _ => Err(refused("acknowledged", &alert)),
        };
    };
    batch::enqueue(
        &txn,
        &[event(ALERT_ACKNOWLEDGED, &alert, json!({}), now)],
        db.routes(),
    )
    .await?;
    txn.commit().await?;
    metrics::histogram!("alert_time_to_acknowledge_seconds")
        .record((now - alert.opened_at).num_milliseconds().max(0) as f64 / 1000.0);
    Ok(alert)
}

/// How a follow-up ended.
pub const OUTCOMES: [&str; 3] = ["contacted", "unreachable", "no_action"];

/// The follow-up is done: `outcome` is one of [`OUTCOMES`].
pub async fn resolve(
    db: &Db,
    tenant_id: Uuid,
    id: Uuid,
    outcome: &str,
    note: Option<String>,
    now: DateTime<Utc>,
) -> Result<Alert, ActionError> {
    if !OUTCOMES.contains(&outcome) {
        return Err(ActionError::Invalid(
            "outcome",
            format!("one of {}", OUTCOMES.join(", ")),
        ));
    }
    let txn = db.write.begin().await?;
    let change = Change {
        from: &[rows::OPEN, rows::ACKNOWLEDGED],
        set: vec![
            ("status = ?", rows::RESOLVED.into()),
            ("resolved_at = ?", now.into()),
            ("acknowledged_at = COALESCE(acknowledged_at, ?)", now.into()),
            ("outcome = ?", outcome.into()),
            ("note = ?", note.into()),
            ("escalate_at = ?", Value::ChronoDateTimeUtc(None)),
        ],
    };
    let Some(alert) = rows::change(&txn, tenant_id, id, change, now).await? else {
        drop(txn);
        return Err(refused("resolved", &current(db, tenant_id, id).await?));
    };
    batch::enqueue(
        &txn,
        &[event(ALERT_RESOLVED, &alert, json!({}), now)],
        db.routes(),
    )
    .await?;
    txn.commit().await?;
    Ok(alert)
}

/// Gives an unresolved alert to another owner of the directory, who is notified.
pub async fn reassign(
    db: &Db,
    tenant_id: Uuid,
    id: Uuid,
    owner_ref: &str,
    now: DateTime<Utc>,
) -> Result<Alert, ActionError> {
    let txn = db.write.begin().await?;
    let owner = rows::directory(&txn, &[(tenant_id, owner_ref)], &[])
        .await?
        .pop()
        .ok_or_else(|| {
            ActionError::Invalid("owner", format!("no owner `{owner_ref}` in the directory"))
        })?;
    let change = Change {
        from: &[rows::OPEN, rows::ACKNOWLEDGED],
        set: vec![("owner_ref = ?", owner_ref.into())],
    };
    let Some(alert) = rows::change(&txn, tenant_id, id, change, now).await? else {
        drop(txn);
        return Err(refused("reassigned", &current(db, tenant_id, id).await?));
    };
    let extra = details_of(&txn, &db.caches, &alert).await?;
    let notice = event(ALERT_REASSIGNED, &alert, extra, now);
    batch::enqueue_to(&txn, &notifications(&notice, Some(&owner))).await?;
    txn.commit().await?;
    Ok(alert)
}

/// Escalates the alerts whose follow-up was due by `now` (each once, whichever replica sweeps
/// first): `alert.overdue` to the sinks, and a notification to the escalation contact (the
/// team's, else the owner's, `escalate_to`; else the tenant's default owner when that is not
/// the owner). How many escalated.
pub async fn escalate_overdue(db: &Db, now: DateTime<Utc>) -> Result<usize, DbErr> {
    let mut total = 0;
    loop {
        let txn = db.write.begin().await?;
        let due = rows::take_overdue(&txn, now, 100).await?;
        if due.is_empty() {
            return Ok(total);
        }
        let mut refs: Vec<(Uuid, &str)> = Vec::new();
        for alert in &due {
            for r in [&alert.team_ref, &alert.owner_ref].into_iter().flatten() {
                refs.push((alert.tenant_id, r));
            }
        }
        refs.sort_unstable();
        refs.dedup();
        let tenants: HashSet<Uuid> = due.iter().map(|a| a.tenant_id).collect();
        let tenants: Vec<Uuid> = tenants.into_iter().collect();
        let first = Directory(rows::directory(&txn, &refs, &tenants).await?);
        let targets: Vec<Option<String>> = due
            .iter()
            .map(|alert| {
                let named = [&alert.team_ref, &alert.owner_ref]
                    .into_iter()
                    .find_map(|r| {
                        first
                            .find(alert.tenant_id, r.as_deref())?
                            .escalate_to
                            .clone()
                    });
                named.or_else(|| {
                    first
                        .default_of(alert.tenant_id)
                        .map(|o| o.reference.clone())
                        .filter(|d| Some(d) != alert.owner_ref.as_ref())
                })
            })
            .collect();
        let target_refs: Vec<(Uuid, &str)> = due
            .iter()
            .zip(&targets)
            .filter_map(|(a, t)| Some((a.tenant_id, t.as_deref()?)))
            .collect();
        let contacts = Directory(rows::directory(&txn, &target_refs, &[]).await?);
        let mut events = Vec::with_capacity(due.len());
        let mut recipients = Vec::with_capacity(due.len());
        for (alert, target) in due.iter().zip(&targets) {
            let mut extra = details_of(&txn, &db.caches, alert).await?;
            extra["escalated_to"] = json!(target);
            events.push(event(crate::events::ALERT_OVERDUE, alert, extra, now));
            recipients.push(contacts.find(alert.tenant_id, target.as_deref()).cloned());
        }
        batch::enqueue(&txn, &events, db.routes()).await?;
        let notices: Vec<(&Event, &str)> = events
            .iter()
            .zip(&recipients)
            .flat_map(|(e, r)| notifications(e, r.as_ref()))
            .collect();
        batch::enqueue_to(&txn, &notices).await?;
        txn.commit().await?;
        total += due.len();
    }
}
