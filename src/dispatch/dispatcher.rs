//! The dispatcher worker: claims due invitations with a lease and settles each as sent,
//! rescheduled (paced or retried), cancelled (opted out, no address) or failed.

use std::sync::Arc;
use std::time::Duration;

use channels::vocabulary::{Channel, DecisionOutcome, IdentityStatus};
use chrono::Utc;
use futures::StreamExt;
use rand::Rng;
use sea_orm::DbErr;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::pacer::{Pacer, Slot};
use super::{AddressVerdict, OutboundMessage, Senders};
use crate::config::DispatchConfig;
use crate::lifecycle::{self, Claim};
use crate::retry::backoff;
use crate::store::entities::invitation;
use crate::store::invitations::{self, NewDecision};
use crate::store::{contacts, surveys, Db};

#[derive(Clone)]
pub struct Dispatcher {
    db: Db,
    senders: Senders,
    pacer: Arc<Pacer>,
    cfg: DispatchConfig,
    worker: String,
    wake: Arc<Notify>,
}

/// How one invitation was settled, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    Paced,
    Retry,
    Cancelled,
    Failed,
    /// The claim was lost to another worker; nothing was changed.
    Lost,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::Paced => "paced",
            Outcome::Retry => "retry",
            Outcome::Cancelled => "cancelled",
            Outcome::Failed => "failed",
            Outcome::Lost => "lost",
        }
    }
}

impl Dispatcher {
    pub fn new(db: Db, senders: Senders, cfg: DispatchConfig, wake: Arc<Notify>) -> Self {
        Dispatcher {
            db,
            senders,
            pacer: Arc::new(Pacer::default()),
            cfg,
            worker: format!("dispatch-{}", channels::model::new_id()),
            wake,
        }
    }

    /// One round: expire open invitations past their reply window, claim due ones and settle
    /// them, several at a time. Returns the outcomes.
    pub async fn run_once(&self) -> Result<Vec<Outcome>, DbErr> {
        let now = Utc::now();
        lifecycle::expire_open(&self.db, now).await?;
        let lease = chrono::Duration::seconds(self.cfg.lease_seconds as i64);
        let due =
            invitations::claim_due(&self.db, &self.worker, now, lease, self.cfg.batch_size).await?;
        let outcomes: Vec<Result<Outcome, DbErr>> = futures::stream::iter(due)
            .map(|row| self.dispatch(row))
            .buffer_unordered(self.cfg.concurrency.max(1))
            .collect()
            .await;
        let outcomes = outcomes.into_iter().collect::<Result<Vec<_>, _>>()?;
        for o in &outcomes {
            metrics::counter!("invitations_dispatched_total", "outcome" => o.as_str()).increment(1);
        }
        Ok(outcomes)
    }

    async fn dispatch(&self, row: invitation::Model) -> Result<Outcome, DbErr> {
        let now = Utc::now();
        let channel = row.channel.clone().unwrap_or_default();
        let Some(contact) = contacts::get(&self.db.read, row.tenant_id, row.contact_id).await?
        else {
            return self
                .cancel(&row, "no_contact", "the contact was erased")
                .await;
        };
        // Opt-out is checked again here: it may have come after the invitation was scheduled.
        if contact.opt_outs.iter().any(|o| o == "all" || *o == channel) {
            return self
                .cancel(
                    &row,
                    "opt_out",
                    &format!("the contact opted out of {channel}"),
                )
                .await;
        }
        let kind = Channel::parse(&channel)
            .and_then(Channel::address_kind)
            .unwrap_or_default();
        let Some(address) = contact
            .identities
            .iter()
            .find(|i| i.kind == kind && i.status == IdentityStatus::Valid.as_str())
            .map(|i| i.value.clone())
        else {
            return self
                .cancel(
                    &row,
                    "no_channel",
                    &format!("no valid address for {channel}"),
                )
                .await;
        };
        let Some(survey) = surveys::get(&self.db, row.tenant_id, &row.survey_key).await? else {
            return self
                .cancel(&row, "no_survey", "the survey no longer exists")
                .await;
        };
        let Some(sender) = self.senders.get(&channel).cloned() else {
            return self
                .retry(
                    &row,
                    &format!("no sender is configured for {channel}"),
                    None,
                )
                .await;
        };
        let attempts = row.attempts + 1;
        let pace = match sender.pace(row.tenant_id).await {
            Ok(pace) => pace,
            Err(e) => {
                return self
                    .refused(&row, &channel, kind, &address, attempts, e)
                    .await
            }
        };
        if let Slot::Later(at) = self.pacer.reserve(&pace.key, row.id, pace.per_second, now) {
            let (send_at, expires_at) = postponed(&row, at);
            let held = self.claim(&row).postpone(send_at, expires_at, None).await?;
            return Ok(held_or_lost(held, Outcome::Paced));
        }
        self.pacer.until_ready(&pace.key, pace.per_second).await;

        let (language, body) = survey.question_in(row.language.as_deref());
        let message = OutboundMessage {
            invitation_id: row.id,
            tenant_id: row.tenant_id,
            channel: channel.clone(),
            to: address.clone(),
            language: language.to_owned(),
            body: body.to_owned(),
            metric: survey.metric,
        };
        match sender.send(&message).await {
            Ok(receipt) => {
                let sent_at = crate::store::now();
                // Scheduling set expires_at one reply window after send_at, and every
                // postponement moves both, so their distance is the survey's reply window.
                let window = row
                    .expires_at
                    .zip(row.send_at)
                    .map(|(e, s)| e - s)
                    .unwrap_or_else(|| chrono::Duration::hours(72));
                let held = self
                    .claim(&row)
                    .mark_sent(&lifecycle::Sent {
                        at: sent_at,
                        expires_at: sent_at + window,
                        provider_ref: &receipt.provider_ref,
                        sender: receipt.sender.as_deref(),
                        address: &address,
                        message: &message.body,
                        attempts,
                    })
                    .await?;
                Ok(held_or_lost(held, Outcome::Sent))
            }
            Err(e) => {
                self.refused(&row, &channel, kind, &address, attempts, e)
                    .await
            }
        }
    }

    /// Settles a provider's refusal: opts the contact out or marks the address invalid when
    /// the provider says so, then retries a transient error or fails a permanent one.
    async fn refused(
        &self,
        row: &invitation::Model,
        channel: &str,
        kind: &str,
        address: &str,
        attempts: i32,
        e: super::SendError,
    ) -> Result<Outcome, DbErr> {
        let error = match &e.code {
            Some(code) => format!("{code}: {}", e.message),
            None => e.message.clone(),
        };
        match e.verdict {
            Some(AddressVerdict::OptedOut) => {
                // The opt-out cancels the contact's other scheduled invitations; this one, which
                // it leaves to its claimant, is cancelled through the claim (and logged).
                crate::policy::opt_out::set(&self.db, row.tenant_id, row.contact_id, channel, true)
                    .await?;
                return self.cancel(row, "opt_out", &error).await;
            }
            Some(AddressVerdict::Invalid) => {
                contacts::mark_identity_invalid(&self.db.write, row.tenant_id, kind, address)
                    .await?;
            }
            None => {}
        }
        if e.retryable {
            self.retry(row, &error, e.retry_after).await
        } else {
            self.fail(row, attempts, &error).await
        }
    }

    /// This worker's hold on a claimed row, through which the lifecycle moves it.
    fn claim<'a>(&'a self, row: &'a invitation::Model) -> Claim<'a> {
        Claim {
            db: &self.db,
            worker: &self.worker,
            invitation: row,
        }
    }

    async fn fail(
        &self,
        row: &invitation::Model,
        attempts: i32,
        error: &str,
    ) -> Result<Outcome, DbErr> {
        tracing::warn!(invitation = %row.id, channel = ?row.channel, error, "invitation failed");
        let held = self.claim(row).fail(attempts, error).await?;
        Ok(held_or_lost(held, Outcome::Failed))
    }

    async fn retry(
        &self,
        row: &invitation::Model,
        error: &str,
        retry_after: Option<Duration>,
    ) -> Result<Outcome, DbErr> {
        let attempts = row.attempts + 1;
        if attempts >= self.cfg.max_attempts {
            return self.fail(row, attempts, error).await;
        }
        let wait = retry_after.unwrap_or_else(|| {
            backoff(
                attempts,
                self.cfg.backoff_base_ms,
                self.cfg.backoff_max_ms,
                rand::rng().random::<f64>(),
            )
        });
        let next = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
        let (send_at, expires_at) = postponed(row, next);
        let held = self
            .claim(row)
            .postpone(send_at, expires_at, Some((attempts, error)))
            .await?;
        Ok(held_or_lost(held, Outcome::Retry))
    }

    async fn cancel(
        &self,
        row: &invitation::Model,
        reason: &str,
        detail: &str,
    ) -> Result<Outcome, DbErr> {
        let outcome = held_or_lost(
            self.claim(row).cancel(reason, detail).await?,
            Outcome::Cancelled,
        );
        let settled = outcome == Outcome::Cancelled;
        if settled {
            invitations::insert_decisions(
                &self.db.write,
                vec![NewDecision {
                    tenant_id: row.tenant_id,
                    contact_id: Some(row.contact_id),
                    survey_key: &row.survey_key,
                    invitation_id: Some(row.id),
                    outcome: DecisionOutcome::Cancelled,
                    rule: Some(reason),
                    detail: Some(detail),
                    inputs: serde_json::json!({"at": "send time", "channel": row.channel}),
                }],
                crate::store::now(),
            )
            .await?;
        }
        Ok(outcome)
    }

    /// Rounds until nothing is due. For tests.
    pub async fn drain(&self) -> Result<Vec<Outcome>, DbErr> {
        let mut all = Vec::new();
        loop {
            let round = self.run_once().await?;
            if round.is_empty() {
                return Ok(all);
            }
            all.extend(round);
        }
    }

    /// Runs until `shutdown` fires: a round at each poll interval or when woken.
    pub async fn run(self, shutdown: CancellationToken) {
        let poll = Duration::from_millis(self.cfg.poll_interval_ms);
        loop {
            if let Err(e) = self.run_once().await {
                tracing::warn!(error = %e, "dispatch round failed");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }
}

/// The send time and expiry of an invitation moved to `at`, keeping its reply window: the
/// expiry moves by the same amount, so a paced or retried message still gets the full window.
fn postponed(
    row: &invitation::Model,
    at: chrono::DateTime<Utc>,
) -> (chrono::DateTime<Utc>, Option<chrono::DateTime<Utc>>) {
    let expires_at = match (row.expires_at, row.send_at) {
        (Some(expires), Some(send)) => Some(expires + (at - send)),
        (expires, _) => expires,
    };
    (at, expires_at)
}

/// `outcome` when the transition happened under this worker's claim, else Lost.
fn held_or_lost(held: bool, outcome: Outcome) -> Outcome {
    if held {
        outcome
    } else {
        Outcome::Lost
    }
}
