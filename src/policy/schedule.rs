//! Scheduling: gathers the decision's inputs, decides, and writes the invitation and the
//! decision log entry in one transaction.
//!
//! Race-free: the transaction locks the contact row first (PostgreSQL; SQLite has one writer),
//! so simultaneous triggers for one contact are decided one after another, each seeing the
//! invitations the earlier ones wrote. A partial unique index guards one live invitation per
//! (survey, ticket) across contacts and replicas; a trigger that loses that race is decided
//! again and suppressed.

use std::sync::Arc;

use channels::model::ContactRef;
use chrono_tz::Tz;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, TransactionTrait};
use serde_json::json;
use uuid::Uuid;

use super::decision::{self, Decision};
use super::{Policy, PolicyDefaults};
use crate::lifecycle;
use crate::store::group::GroupCommit;
use crate::store::invitations::{self, InvitationView, NewDecision, NewInvitation};
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
}

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("contact {0} does not exist")]
    UnknownContact(Uuid),
    #[error(transparent)]
    Db(#[from] DbErr),
}

pub struct Scheduler {
    pub db: Db,
    /// Triggers from the API are decided and written in the group commit of whatever requests
    /// are waiting (`store::group`), one after the other.
    pub group: GroupCommit,
    pub defaults: PolicyDefaults,
    pub tenant_time_zone: Tz,
}

impl Scheduler {
    pub async fn schedule(
        self: &Arc<Self>,
        tenant_id: Uuid,
        survey: &Survey,
        req: &SendRequest,
    ) -> Result<InvitationView, ScheduleError> {
        let request = Arc::new((self.clone(), survey.clone(), req.clone()));
        let decided = self
            .group
            .run(move |txn| {
                let request = request.clone();
                Box::pin(async move {
                    let (scheduler, survey, req) = &*request;
                    match scheduler.schedule_in(txn, tenant_id, survey, req).await {
                        // A failed statement fails the group, whose requests then run alone.
                        Err(ScheduleError::Db(e)) => Err(e),
                        // An answer for this request alone; the group goes on.
                        decided => Ok(decided),
                    }
                })
            })
            .await?;
        decided
    }

    /// Schedules within `conn`: a transaction of its own on a connection, or a savepoint in
    /// the caller's transaction, so that a webhook's raw event and the surveys it starts
    /// commit together.
    pub async fn schedule_in<C: TransactionTrait<Transaction = DatabaseTransaction>>(
        &self,
        conn: &C,
        tenant_id: Uuid,
        survey: &Survey,
        req: &SendRequest,
    ) -> Result<InvitationView, ScheduleError> {
        match self.schedule_once(conn, tenant_id, survey, req).await {
            Err(ScheduleError::Db(e)) if store::is_unique_violation(&e) => {
                // Another contact's trigger took the ticket between our read and our write;
                // deciding again sees its invitation.
                self.schedule_once(conn, tenant_id, survey, req).await
            }
            other => other,
        }
    }

    async fn schedule_once<C: TransactionTrait<Transaction = DatabaseTransaction>>(
        &self,
        conn: &C,
        tenant_id: Uuid,
        survey: &Survey,
        req: &SendRequest,
    ) -> Result<InvitationView, ScheduleError> {
        let txn = conn.begin().await?;
        match self.decide_and_write(&txn, tenant_id, survey, req).await {
            Ok(view) => {
                txn.commit().await?;
                Ok(view)
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
        invitations::insert_decision(
            conn,
            NewDecision {
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
            },
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
        tenant_id: Uuid,
        survey: &Survey,
        req: &SendRequest,
    ) -> Result<InvitationView, ScheduleError> {
        let now = store::now();
        let contact_id = match req.contact.id {
            Some(id) => {
                if batch::existing(txn, batch::Owned::Contacts, &[(tenant_id, id)])
                    .await?
                    .is_empty()
                {
                    return Err(ScheduleError::UnknownContact(id));
                }
                crate::store::contacts::resolve_contacts(txn, &[(tenant_id, &req.contact)], now)
                    .await?;
                id
            }
            None => {
                crate::store::contacts::resolve_contacts(txn, &[(tenant_id, &req.contact)], now)
                    .await?
                    .into_iter()
                    .flatten()
                    .next()
                    .ok_or_else(|| DbErr::Custom("a send request names no contact".into()))?
            }
        };
        invitations::lock_contact(txn, contact_id).await?;
        let contact = contacts::get(txn, tenant_id, contact_id)
            .await?
            .ok_or(ScheduleError::UnknownContact(contact_id))?;
        let time_zone = contact
            .time_zone
            .as_deref()
            .and_then(|z| z.parse::<Tz>().ok())
            .unwrap_or(self.tenant_time_zone);
        let reachable: Vec<String> = contact
            .identities
            .iter()
            .filter(|i| i.status == IdentityStatus::Valid.as_str())
            .filter_map(|i| Channel::reaching(&i.kind).map(|c| c.as_str().to_owned()))
            .collect();
        let policy = Policy::resolve(&self.defaults, survey.metric, &survey.policy);
        let ticket = req.ticket_ref.as_deref();
        let history = invitations::history(
            txn,
            tenant_id,
            contact_id,
            decision::history_since(&policy, now),
            ticket.map(|t| (survey.key.as_str(), t)),
        )
        .await?;
        let facts = decision::Contact {
            id: contact_id,
            reachable,
            opt_outs: contact.opt_outs.clone(),
            time_zone,
        };
        let decided = decision::decide(
            &facts,
            &history,
            &decision::Survey {
                key: &survey.key,
                metric: survey.metric,
                channels: &survey.channels,
                policy: &policy,
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
            "channels": survey.channels,
            "reachable": facts.reachable,
            "opt_outs": facts.opt_outs,
            "time_zone": time_zone.name(),
            "ticket_ref": ticket,
            "history": history.iter().map(|p| json!({
                "survey": p.survey_key, "metric": p.metric, "ticket_ref": p.ticket_ref,
                "status": p.status, "at": p.at,
            })).collect::<Vec<_>>(),
        });
        let invitation_id = channels::model::new_id();
        let (status, reason, detail, channel, send_at, expires_at, outcome) = match &decided {
            Decision::Schedule {
                channel,
                send_at,
                deferred_from,
            } => {
                let window =
                    decision::reply_window(&policy, channel, &self.defaults.reply_window_hours);
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
        let row = lifecycle::create(
            txn,
            &NewInvitation {
                id: invitation_id,
                tenant_id,
                survey_key: &survey.key,
                metric: survey.metric,
                contact_id,
                channel,
                ticket_ref: ticket,
                one_per_ticket: policy.one_per_ticket,
                agent_ref: req.agent_ref.as_deref(),
                team_ref: req.team_ref.as_deref(),
                language: Some(&language),
                status,
                reason,
                detail: detail.as_deref(),
                send_at,
                expires_at,
            },
            now,
        )
        .await?;
        invitations::insert_decision(
            txn,
            NewDecision {
                tenant_id,
                contact_id: Some(contact_id),
                survey_key: &survey.key,
                invitation_id: Some(invitation_id),
                outcome,
                rule: reason,
                detail: detail.as_deref(),
                inputs,
            },
            now,
        )
        .await?;
        metrics::counter!("invitations_decided_total", "outcome" => outcome.as_str(), "rule" => reason.unwrap_or("none"))
            .increment(1);
        Ok(row.into())
    }
}
