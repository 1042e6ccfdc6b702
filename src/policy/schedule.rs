//! Scheduling: gathers the decisions' inputs, decides, and writes the invitations and the
//! decision log entries, for a group of triggers at a time.
//!
//! A group reads what all its decisions need in a few statements (the contacts found or
//! created in one look-up and locked in one statement, their identities, their invitations
//! and the tickets' invitations in one each), decides each trigger in memory in arrival order,
//! and writes the invitations and decisions with one statement each. Race-free: a trigger sees
//! the invitations that earlier triggers of its group decided, as it would see them after their
//! commit; across transactions, the contact rows are locked first (PostgreSQL; SQLite has one
//! writer), so simultaneous groups for one contact are decided one after another. A partial
//! unique index guards one live invitation per (survey, ticket) across contacts and replicas;
//! a group that loses that race is decided again and the trigger suppressed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use channels::model::ContactRef;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, TransactionTrait};
use serde_json::json;
use uuid::Uuid;

use super::decision::{self, Decision};
use super::{Policy, PolicyDefaults};
use crate::lifecycle;
use crate::store::batch::Route;
use crate::store::entities::invitation;
use crate::store::group::{SetCommit, SetWork, WorkFuture};
use crate::store::invitations::{
    self, HistoryWanted, InvitationView, NewDecision, NewInvitation, Past, PastRow,
};
use crate::store::surveys::Survey;
use crate::store::{self, batch, contacts, Db};
use channels::vocabulary::{Channel, DecisionOutcome, IdentityStatus, InvitationStatus};

/// A request to ask a contact: from the API, a support platform's webhook, a phone system.
#[derive(Debug, Clone, Default)]
pub struct SendRequest {
    pub contact: ContactRef,
    pub ticket_ref: Option<String>,
    pub agent_ref: Option<String>,
    pub team_ref: Option<String>,
    pub language: Option<String>,
    /// The contact is on the tenant's web site now and the widget asks: the survey is shown
    /// there at once (no send delay, no quiet hours: nobody is woken) or not at all, under the
    /// same fatigue rules as every other channel.
    pub in_widget: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("contact {0} does not exist")]
    UnknownContact(Uuid),
    #[error("a send request names no contact")]
    NoContact,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// One trigger: a request to ask for a survey.
pub struct Trigger<'a> {
    pub tenant_id: Uuid,
    pub survey: &'a Survey,
    pub request: &'a SendRequest,
}

/// A trigger as the API's writer queues it.
pub struct OwnedTrigger {
    pub tenant_id: Uuid,
    pub survey: Survey,
    pub request: SendRequest,
}

/// Decides triggers against the fatigue rules and writes what it decided.
pub struct Scheduler {
    pub defaults: PolicyDefaults,
    pub tenant_time_zone: Tz,
    /// Where the invitations' events are queued.
    pub routes: Arc<[Route]>,
}

/// Triggers from the API, decided and written a group at a time.
#[derive(Clone)]
pub struct Triggers {
    writer: SetCommit<Scheduler>,
}

impl Triggers {
    pub fn start(db: &Db, scheduler: Arc<Scheduler>, writers: usize, max_group: usize) -> Self {
        Triggers {
            writer: SetCommit::start(db.write.clone(), scheduler, writers, max_group),
        }
    }

    pub async fn schedule(
        &self,
        tenant_id: Uuid,
        survey: &Survey,
        request: &SendRequest,
    ) -> Result<InvitationView, ScheduleError> {
        self.writer
            .run(OwnedTrigger {
                tenant_id,
                survey: survey.clone(),
                request: request.clone(),
            })
            .await?
    }
}

impl SetWork for Scheduler {
    type Request = OwnedTrigger;
    type Answer = Result<InvitationView, ScheduleError>;
    const KIND: &'static str = "triggers";

    fn apply<'t>(
        &'t self,
        txn: &'t DatabaseTransaction,
        requests: &'t [&'t OwnedTrigger],
    ) -> WorkFuture<'t, Vec<Self::Answer>> {
        Box::pin(async move {
            let triggers: Vec<Trigger> = requests
                .iter()
                .map(|t| Trigger {
                    tenant_id: t.tenant_id,
                    survey: &t.survey,
                    request: &t.request,
                })
                .collect();
            self.schedule_all_in(txn, &triggers).await
        })
    }
}

/// What a decision wrote, before it is borrowed into the insert statements.
struct Settled {
    trigger: usize,
    tenant_id: Uuid,
    contact_id: Uuid,
    invitation_id: Uuid,
    one_per_ticket: bool,
    status: InvitationStatus,
    reason: Option<&'static str>,
    detail: Option<String>,
    channel: Option<String>,
    send_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    outcome: DecisionOutcome,
    language: String,
    inputs: serde_json::Value,
}

impl Scheduler {
    /// Decides and writes `triggers` within `conn`, in a savepoint of the caller's transaction
    /// (so that a webhook's raw event and the surveys it starts commit together): one result per
    /// trigger, in order. An error is the group's; a trigger's own problem (an unknown contact)
    /// is its result.
    pub async fn schedule_all_in<C: TransactionTrait<Transaction = DatabaseTransaction>>(
        &self,
        conn: &C,
        triggers: &[Trigger<'_>],
    ) -> Result<Vec<Result<InvitationView, ScheduleError>>, DbErr> {
        match self.schedule_once(conn, triggers).await {
            Err(e) if store::is_unique_violation(&e) => {
                // Another transaction's trigger took a ticket between our read and our write;
                // deciding again sees its invitation.
                self.schedule_once(conn, triggers).await
            }
            other => other,
        }
    }

    async fn schedule_once<C: TransactionTrait<Transaction = DatabaseTransaction>>(
        &self,
        conn: &C,
        triggers: &[Trigger<'_>],
    ) -> Result<Vec<Result<InvitationView, ScheduleError>>, DbErr> {
        let txn = conn.begin().await?;
        match self.decide_and_write(&txn, triggers).await {
            Ok(views) => {
                txn.commit().await?;
                Ok(views)
            }
            Err(e) => {
                // Explicitly, so a savepoint is rolled back before the caller's transaction
                // goes on (PostgreSQL refuses every statement after a failed one until then).
                let _ = txn.rollback().await;
                Err(e)
            }
        }
    }

    /// A trigger whose contact has no address nor id at all: there is no one to ask and no
    /// contact to keep an invitation for, so only the decision log records it.
    pub async fn record_unreachable<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant_id: Uuid,
        survey: &Survey,
        req: &SendRequest,
    ) -> Result<(), DbErr> {
        let detail = "the trigger carries no address of the contact";
        invitations::insert_decisions(
            conn,
            vec![NewDecision {
                tenant_id,
                contact_id: None,
                survey_key: &survey.key,
                invitation_id: None,
                outcome: DecisionOutcome::Suppressed,
                rule: Some(decision::Rule::NoChannel.as_str()),
                detail: Some(detail),
                inputs: json!({
                    "channels": survey.channels,
                    "reachable": [],
                    "ticket_ref": req.ticket_ref,
                }),
            }],
            store::now(),
        )
        .await?;
        metrics::counter!("invitations_decided_total", "outcome" => "suppressed", "rule" => "no_channel")
            .increment(1);
        Ok(())
    }

    async fn decide_and_write(
        &self,
        txn: &DatabaseTransaction,
        triggers: &[Trigger<'_>],
    ) -> Result<Vec<Result<InvitationView, ScheduleError>>, DbErr> {
        let now = store::now();
        let mut results: Vec<Option<Result<InvitationView, ScheduleError>>> =
            triggers.iter().map(|_| None).collect();

        // A contact named by id must be one of the tenant's.
        let named: Vec<(Uuid, Uuid)> = triggers
            .iter()
            .filter_map(|t| t.request.contact.id.map(|id| (t.tenant_id, id)))
            .collect();
        let known = batch::existing(txn, batch::Owned::Contacts, &named).await?;
        for (t, result) in triggers.iter().zip(results.iter_mut()) {
            if t.request.contact.is_empty() {
                *result = Some(Err(ScheduleError::NoContact));
            } else if let Some(id) = t.request.contact.id {
                if !known.contains(&(t.tenant_id, id)) {
                    *result = Some(Err(ScheduleError::UnknownContact(id)));
                }
            }
        }
        let live: Vec<usize> = (0..triggers.len())
            .filter(|&i| results[i].is_none())
            .collect();
        if live.is_empty() {
            return Ok(results.into_iter().flatten().collect());
        }

        // The contacts, found or created (identities the request adds are attached), locked,
        // and read with their identities.
        let wanted: Vec<(Uuid, &ContactRef)> = live
            .iter()
            .map(|&i| (triggers[i].tenant_id, &triggers[i].request.contact))
            .collect();
        let resolved = contacts::resolve_contacts(txn, &wanted, now).await?;
        let mut contact_of: HashMap<usize, Uuid> = HashMap::new();
        for (&i, id) in live.iter().zip(resolved) {
            let id =
                id.ok_or_else(|| DbErr::Custom("a trigger's contact was not resolved".into()))?;
            contact_of.insert(i, id);
        }
        let ids: Vec<Uuid> = contact_of.values().copied().collect();
        invitations::lock_contacts(txn, &ids).await?;
        let pairs: Vec<(Uuid, Uuid)> = live
            .iter()
            .map(|&i| (triggers[i].tenant_id, contact_of[&i]))
            .collect();
        let found = contacts::get_many(txn, &pairs).await?;

        // Everything the decisions look at: each contact's invitations since the earliest time
        // one of its triggers looks back to, and each ticket's invitations.
        let policies: HashMap<usize, Policy> = live
            .iter()
            .map(|&i| {
                let survey = triggers[i].survey;
                (
                    i,
                    Policy::resolve(&self.defaults, survey.metric, &survey.policy),
                )
            })
            .collect();
        let mut wanted = HistoryWanted::default();
        let mut since_of: HashMap<(Uuid, Uuid), DateTime<Utc>> = HashMap::new();
        let mut tickets = HashSet::new();
        for &i in &live {
            let t = &triggers[i];
            let since = decision::history_since(&policies[&i], now);
            since_of
                .entry((t.tenant_id, contact_of[&i]))
                .and_modify(|s| *s = (*s).min(since))
                .or_insert(since);
            if let Some(ticket) = &t.request.ticket_ref {
                if tickets.insert((t.tenant_id, t.survey.key.clone(), ticket.clone())) {
                    wanted
                        .tickets
                        .push((t.tenant_id, t.survey.key.clone(), ticket.clone()));
                }
            }
        }
        wanted.contacts = since_of
            .iter()
            .map(|(&(tenant, contact), &since)| (tenant, contact, since))
            .collect();
        wanted.contacts.sort_unstable();
        let mut history = invitations::history(txn, &wanted).await?;

        // Each trigger in turn, seeing what the earlier ones decided.
        let mut settled = Vec::with_capacity(live.len());
        for &i in &live {
            let t = &triggers[i];
            let contact_id = contact_of[&i];
            let Some(contact) = found.get(&contact_id) else {
                // Erased between the look-up and the lock.
                results[i] = Some(Err(ScheduleError::UnknownContact(contact_id)));
                continue;
            };
            let policy = &policies[&i];
            let since = decision::history_since(policy, now);
            let ticket = t.request.ticket_ref.as_deref();
            let survey_ticket = ticket.map(|ticket| (t.survey.key.as_str(), ticket));
            let past: Vec<Past> = history
                .iter()
                .filter(|r| r.concerns(t.tenant_id, contact_id, since, survey_ticket))
                .map(|r| r.past.clone())
                .collect();
            let one = self.settle(i, t, contact, policy, &past, now);
            history.push(PastRow {
                id: one.invitation_id,
                tenant_id: t.tenant_id,
                contact_id,
                created_at: now,
                past: Past {
                    survey_key: t.survey.key.clone(),
                    metric: t.survey.metric,
                    ticket_ref: t.request.ticket_ref.clone(),
                    status: one.status,
                    at: one.send_at.unwrap_or(now),
                },
            });
            settled.push(one);
        }

        let new: Vec<NewInvitation> = settled
            .iter()
            .map(|s| {
                let t = &triggers[s.trigger];
                NewInvitation {
                    id: s.invitation_id,
                    tenant_id: s.tenant_id,
                    survey_key: &t.survey.key,
                    metric: t.survey.metric,
                    contact_id: s.contact_id,
                    channel: s.channel.as_deref(),
                    ticket_ref: t.request.ticket_ref.as_deref(),
                    one_per_ticket: s.one_per_ticket,
                    agent_ref: t.request.agent_ref.as_deref(),
                    team_ref: t.request.team_ref.as_deref(),
                    language: Some(&s.language),
                    status: s.status,
                    reason: s.reason,
                    detail: s.detail.as_deref(),
                    send_at: s.send_at,
                    expires_at: s.expires_at,
                }
            })
            .collect();
        let mut rows = lifecycle::create_all(txn, &self.routes, &new, now).await?;
        let mut shown: Vec<&mut invitation::Model> = settled
            .iter()
            .zip(rows.iter_mut())
            .filter(|(s, _)| s.outcome == DecisionOutcome::Shown)
            .map(|(_, row)| row)
            .collect();
        lifecycle::shown_in_widget(txn, &self.routes, &mut shown, now).await?;
        let decisions = settled
            .iter_mut()
            .map(|s| NewDecision {
                tenant_id: s.tenant_id,
                contact_id: Some(s.contact_id),
                survey_key: &triggers[s.trigger].survey.key,
                invitation_id: Some(s.invitation_id),
                outcome: s.outcome,
                rule: s.reason,
                detail: s.detail.as_deref(),
                inputs: std::mem::take(&mut s.inputs),
            })
            .collect();
        invitations::insert_decisions(txn, decisions, now).await?;
        for (s, row) in settled.iter().zip(rows) {
            metrics::counter!("invitations_decided_total", "outcome" => s.outcome.as_str(), "rule" => s.reason.unwrap_or("none"))
                .increment(1);
            results[s.trigger] = Some(Ok(row.into()));
        }
        Ok(results.into_iter().flatten().collect())
    }

    /// Decides one trigger against its contact and history: the invitation and the decision
    /// log entry to write.
    fn settle(
        &self,
        trigger: usize,
        t: &Trigger<'_>,
        contact: &contacts::ContactView,
        policy: &Policy,
        history: &[Past],
        now: DateTime<Utc>,
    ) -> Settled {
        let (survey, req) = (t.survey, t.request);
        let time_zone = contact
            .time_zone
            .as_deref()
            .and_then(|z| z.parse::<Tz>().ok())
            .unwrap_or(self.tenant_time_zone);
        // In the widget the visitor is reached where they are, only there, and at once.
        let widget_only = [Channel::Widget.as_str().to_owned()];
        let at_once;
        let (reachable, channels, policy): (Vec<String>, &[String], &Policy) = if req.in_widget {
            at_once = Policy {
                send_delay_minutes: 0,
                quiet_hours: None,
                ..policy.clone()
            };
            (widget_only.to_vec(), &widget_only, &at_once)
        } else {
            let reachable = contact
                .identities
                .iter()
                .filter(|i| i.status == IdentityStatus::Valid.as_str())
                .filter_map(|i| Channel::reaching(&i.kind).map(|c| c.as_str().to_owned()))
                .collect();
            (reachable, &survey.channels, policy)
        };
        let ticket = req.ticket_ref.as_deref();
        let facts = decision::Contact {
            id: contact.id,
            reachable,
            opt_outs: contact.opt_outs.clone(),
            time_zone,
        };
        let decided = decision::decide(
            &facts,
            history,
            &decision::Survey {
                key: &survey.key,
                metric: survey.metric,
                channels,
                policy,
            },
            &decision::Trigger {
                ticket_ref: ticket,
                now,
            },
        );

        let language = req
            .language
            .clone()
            .or_else(|| contact.locale.clone())
            .unwrap_or_else(|| survey.default_language.clone());
        let mut inputs = json!({
            "now": now,
            "policy": policy,
            "channels": channels,
            "reachable": facts.reachable,
            "opt_outs": facts.opt_outs,
            "time_zone": time_zone.name(),
            "ticket_ref": ticket,
            "history": history.iter().map(|p| json!({
                "survey": p.survey_key, "metric": p.metric, "ticket_ref": p.ticket_ref,
                "status": p.status, "at": p.at,
            })).collect::<Vec<_>>(),
        });
        let (status, reason, detail, channel, send_at, expires_at, outcome) = match &decided {
            Decision::Schedule {
                channel,
                send_at,
                deferred_from,
            } => {
                let window =
                    decision::reply_window(policy, channel, &self.defaults.reply_window_hours);
                inputs["deferred_from"] = json!(deferred_from);
                let deferred = deferred_from.map(|from| {
                    format!(
                        "{} falls in quiet hours ({}) in {}",
                        from.with_timezone(&time_zone).format("%H:%M"),
                        policy
                            .quiet_hours
                            .map(|q| q.to_string())
                            .unwrap_or_default(),
                        time_zone.name()
                    )
                });
                (
                    InvitationStatus::Scheduled,
                    deferred.as_ref().map(|_| "quiet_hours"),
                    deferred,
                    Some(channel.as_str()),
                    Some(*send_at),
                    Some(decision::later(*send_at, window)),
                    if deferred_from.is_some() {
                        DecisionOutcome::Deferred
                    } else if req.in_widget {
                        DecisionOutcome::Shown
                    } else {
                        DecisionOutcome::Scheduled
                    },
                )
            }
            Decision::Suppress { rule, detail } => (
                InvitationStatus::Suppressed,
                Some(rule.as_str()),
                Some(detail.clone()),
                None,
                None,
                None,
                DecisionOutcome::Suppressed,
            ),
        };
        Settled {
            trigger,
            tenant_id: t.tenant_id,
            contact_id: contact.id,
            invitation_id: channels::model::new_id(),
            one_per_ticket: policy.one_per_ticket,
            status,
            reason,
            detail,
            channel: channel.map(str::to_owned),
            send_at,
            expires_at,
            outcome,
            language,
            inputs,
        }
    }
}
