//! Support platforms: one verified webhook delivery — its raw event, the ratings it carries and
//! the surveys a closed ticket starts — commits all or nothing, in the group commit of the
//! deliveries that arrived at the same time (`store::group`).
//!
//! Idempotency rests on unique keys: the delivery's id on the raw event (a redelivery changes
//! nothing), the platform's rating id on the record (a changed rating updates it and emits
//! `feedback.updated`, it is not a second answer), and the scheduler's one-per-ticket guard
//! (closed, re-opened and closed again asks once). Two deliveries racing on one rating meet the
//! record's unique key; the loser is applied again and finds the winner's record.

use std::sync::Arc;
use std::time::Duration;

use crate::store::cache::Caches;

use channels::chat::{self, Credentials, LookupError, Platform};
use channels::model::{Feedback, PlatformEvent, PlatformRating};
use channels::outbound::Outbound;
use channels::vocabulary::RatingChange;
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseTransaction, DbErr, TransactionTrait};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::{Ingest, IngestError, OwnedReceived, Received};
use crate::events::Event;
use crate::policy::schedule::{ScheduleError, Scheduler, SendRequest, Trigger};
use crate::store::batch::Route;
use crate::store::group::{SetWork, WorkFuture};
use crate::store::invitations::InvitationView;
use crate::store::surveys::Survey;
use crate::store::tenants::Tenant;
use crate::store::{self, raw_events, surveys};

/// A verified delivery from a platform.
pub struct PlatformDelivery<'a> {
    pub platform: &'static Platform,
    /// The platform's id of the delivery; `None` where it sends none.
    pub delivery_ref: Option<&'a str>,
    /// Digest of the signed content (signature timestamp and body): a replay is stored once
    /// even under a new delivery id.
    pub signed_sha256: Option<&'a str>,
    pub events: &'a [PlatformEvent],
    pub received: Received<'a>,
    /// A stored delivery applied again (an operator's replay of one kept as unreadable): its
    /// raw event exists and is claimed instead of inserted.
    pub replay_of: Option<Uuid>,
}

/// A delivery as its group runs it (and runs it again, alone, if the group fails).
pub(super) struct DeliveryRequest {
    tenant_id: Uuid,
    surveys: Vec<Survey>,
    platform: &'static Platform,
    delivery_ref: Option<String>,
    signed_sha256: Option<String>,
    events: Vec<PlatformEvent>,
    received: OwnedReceived,
    replay_of: Option<Uuid>,
}

/// What became of a platform rating.
#[derive(Debug, Clone, Serialize)]
pub struct RatingOutcome {
    pub feedback_id: Uuid,
    pub outcome: RatingChange,
}

/// What a delivery did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PlatformOutcome {
    /// The delivery was stored before; nothing was written.
    pub duplicate: bool,
    pub ratings: Vec<RatingOutcome>,
    /// One per survey a closed ticket triggered, scheduled or suppressed.
    pub invitations: Vec<InvitationView>,
    /// Surveys suppressed (`no_channel`) because the ticket names no contact at all.
    pub unreachable: Vec<String>,
}

/// Where a delivery's requester may be looked up: the guarded client, the operator's API base
/// URL for the platform, the region national numbers are read in, and how long to wait.
pub struct Enrichment<'a> {
    pub http: &'a Outbound,
    pub api_base_url: &'a str,
    pub region: &'a str,
    pub timeout: Duration,
}

/// What became of a parsed delivery.
pub enum Delivered {
    /// Seen before (the same delivery id, or the same signed content): nothing was done.
    Duplicate,
    /// The requester could not be looked up now; the platform should deliver again later.
    LookupUnavailable(LookupError),
    /// Applied, or found stored by a copy that committed first (`duplicate` in the outcome).
    Applied(PlatformOutcome),
}

impl Ingest {
    /// Keeps a verified delivery the gateway could not read, with the reason, for the operator
    /// to replay once its mapping is fixed. `false`: stored before (a redelivery).
    pub async fn keep_unreadable(
        &self,
        tenant: &Tenant,
        delivery: &PlatformDelivery<'_>,
        reason: &serde_json::Value,
    ) -> Result<bool, IngestError> {
        let now = store::now();
        let txn = self.db.write.begin().await.map_err(IngestError::from)?;
        let Some(raw_id) = super::insert_raw(
            &txn,
            tenant.id,
            delivery.platform.name,
            delivery.delivery_ref,
            delivery.signed_sha256,
            &delivery.received,
            now,
        )
        .await?
        else {
            txn.rollback().await?;
            return Ok(false);
        };
        raw_events::mark_unreadable(&txn, raw_id, reason).await?;
        txn.commit().await?;
        Ok(true)
    }

    /// Applies a verified, parsed delivery, for a live webhook and for an operator's replay:
    /// answers a redelivery or replay without work, completes a requester named only by id
    /// through the platform's look-up (when its table entry has one), selects the surveys a
    /// closed ticket on this platform starts, and applies it all in one transaction.
    pub async fn platform_delivery(
        &self,
        tenant: &Tenant,
        creds: &Credentials,
        enrichment: &Enrichment<'_>,
        events: &mut [PlatformEvent],
        delivery: PlatformDelivery<'_>,
    ) -> Result<Delivered, IngestError> {
        let platform = delivery.platform;
        // A redelivery or a replay is answered without a look-up at the platform or a writer's
        // time; the unique keys on the raw event still decide when two copies arrive at once.
        if delivery.replay_of.is_none()
            && raw_events::delivered_before(
                &self.db.read,
                tenant.id,
                platform.name,
                delivery.delivery_ref,
                delivery.signed_sha256,
            )
            .await?
        {
            return Ok(Delivered::Duplicate);
        }
        let mut closes_ticket = false;
        for event in events.iter_mut() {
            let PlatformEvent::TicketClosed(ticket) = event else {
                continue;
            };
            closes_ticket = true;
            let found = chat::complete_requester(
                platform,
                enrichment.http,
                enrichment.api_base_url,
                creds,
                ticket,
                enrichment.region,
                enrichment.timeout,
            )
            .await;
            match found {
                Ok(_) => {}
                // Platforms deliver a webhook again after a 5xx: the look-up is retried then.
                Err(e) if e.is_transient() => {
                    tracing::warn!(tenant = %tenant.slug, platform = platform.name, error = %e, "requester look-up failed; asking for a redelivery");
                    return Ok(Delivered::LookupUnavailable(e));
                }
                // A deleted user or a revoked token: the ticket is kept, its survey suppressed.
                Err(e) => {
                    tracing::warn!(tenant = %tenant.slug, platform = platform.name, error = %e, "requester look-up failed");
                }
            }
        }
        let triggered: Vec<Survey> = if closes_ticket {
            surveys::list(&self.db, tenant.id)
                .await?
                .into_iter()
                .filter(|s| s.triggered_by_ticket_from(platform.name))
                .collect()
        } else {
            Vec::new()
        };
        let delivery = PlatformDelivery {
            events: &*events,
            ..delivery
        };
        let outcome = self.platform_events(tenant, &triggered, &delivery).await?;
        Ok(Delivered::Applied(outcome))
    }

    /// Applies a verified delivery. `surveys`: the tenant's surveys a closed ticket on this
    /// platform starts.
    pub async fn platform_events(
        &self,
        tenant: &Tenant,
        surveys: &[Survey],
        delivery: &PlatformDelivery<'_>,
    ) -> Result<PlatformOutcome, IngestError> {
        let request = Arc::new(DeliveryRequest {
            tenant_id: tenant.id,
            surveys: surveys.to_vec(),
            platform: delivery.platform,
            delivery_ref: delivery.delivery_ref.map(str::to_owned),
            signed_sha256: delivery.signed_sha256.map(str::to_owned),
            events: delivery.events.to_vec(),
            received: OwnedReceived::from(&delivery.received),
            replay_of: delivery.replay_of,
        });
        let apply = || self.deliveries.run(request.clone());
        let result = match apply().await {
            // Another delivery of the same rating committed first; applied again, this one
            // finds its record.
            Err(e) if store::is_unique_violation(&e) => apply().await,
            other => other,
        };
        if result.as_ref().is_ok_and(|o| !o.ratings.is_empty()) {
            self.wake_relay();
        }
        Ok(result?)
    }
}

/// Platform deliveries, applied a group at a time: each delivery's raw event and ratings in
/// turn, then the surveys that all the group's closed tickets start, decided and written
/// together by the scheduler, then the group's outbox events in one statement.
pub(super) struct Deliveries {
    pub sinks: Arc<[Route]>,
    pub caches: Arc<Caches>,
    pub scheduler: Arc<Scheduler>,
}

impl SetWork for Deliveries {
    type Request = Arc<DeliveryRequest>;
    type Answer = PlatformOutcome;
    const KIND: &'static str = "platform_deliveries";

    fn apply<'t>(
        &'t self,
        txn: &'t DatabaseTransaction,
        requests: &'t [&'t Arc<DeliveryRequest>],
    ) -> WorkFuture<'t, Vec<PlatformOutcome>> {
        Box::pin(self.apply_group(txn, requests))
    }
}

impl Deliveries {
    async fn apply_group(
        &self,
        txn: &DatabaseTransaction,
        requests: &[&Arc<DeliveryRequest>],
    ) -> Result<Vec<PlatformOutcome>, DbErr> {
        let now = store::now();
        let mut outcomes: Vec<PlatformOutcome> = Vec::with_capacity(requests.len());
        let mut events = Vec::new();
        // (delivery, survey, request) for every survey a closed ticket of the group starts.
        let mut asks: Vec<(usize, &Survey, SendRequest)> = Vec::new();
        for (k, request) in requests.iter().enumerate() {
            let mut outcome = PlatformOutcome::default();
            if !store_raw(txn, request, now).await? {
                outcome.duplicate = true;
                outcomes.push(outcome);
                continue;
            }
            for event in &request.events {
                match event {
                    PlatformEvent::PlatformRating(rating) => {
                        let (tenant_id, platform) = (request.tenant_id, request.platform);
                        let applied =
                            apply_rating(txn, tenant_id, platform, rating, now, &mut events)
                                .await?;
                        outcome.ratings.push(applied);
                    }
                    PlatformEvent::TicketClosed(ticket) => {
                        let ask = SendRequest {
                            contact: ticket.requester.clone(),
                            ticket_ref: Some(ticket.ticket_ref.clone()),
                            agent_ref: ticket.assignee_ref.clone(),
                            team_ref: ticket.team_ref.clone(),
                            language: None,
                            in_widget: false,
                        };
                        for survey in &request.surveys {
                            if ask.contact.is_empty() {
                                self.scheduler
                                    .record_unreachable(txn, request.tenant_id, survey, &ask)
                                    .await?;
                                outcome.unreachable.push(survey.key.clone());
                            } else {
                                asks.push((k, survey, ask.clone()));
                            }
                        }
                    }
                }
            }
            outcomes.push(outcome);
        }
        let triggers: Vec<Trigger> = asks
            .iter()
            .map(|(k, survey, request)| Trigger {
                tenant_id: requests[*k].tenant_id,
                survey,
                request,
            })
            .collect();
        let decided = self.scheduler.schedule_all_in(txn, &triggers).await?;
        for ((k, _, _), result) in asks.iter().zip(decided) {
            match result {
                Ok(view) => outcomes[*k].invitations.push(view),
                Err(ScheduleError::Db(e)) => return Err(e),
                // A platform never names our contact ids, and an empty contact was recorded as
                // unreachable above.
                Err(e) => return Err(DbErr::RecordNotFound(e.to_string())),
            }
        }
        let out = super::Outputs {
            sinks: &self.sinks,
            caches: &self.caches,
        };
        super::queue_answers(txn, out, &events, now).await?;
        Ok(outcomes)
    }
}

/// Stores the delivery's raw event, or claims the stored one it replays; `false` when it was
/// stored before (a redelivery), and nothing is to be applied.
async fn store_raw(
    txn: &DatabaseTransaction,
    request: &DeliveryRequest,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let tenant_id = request.tenant_id;
    let stored = match request.replay_of {
        Some(raw_id) => raw_events::claim_unreadable(txn, tenant_id, raw_id)
            .await?
            .then_some(raw_id),
        None => {
            super::insert_raw(
                txn,
                tenant_id,
                request.platform.name,
                request.delivery_ref.as_deref(),
                request.signed_sha256.as_deref(),
                &request.received.borrow(),
                now,
            )
            .await?
        }
    };
    Ok(stored.is_some())
}

async fn apply_rating(
    txn: &DatabaseTransaction,
    tenant_id: Uuid,
    platform: &Platform,
    rating: &PlatformRating,
    now: DateTime<Utc>,
    events: &mut Vec<Event>,
) -> Result<RatingOutcome, DbErr> {
    let metadata = json!({
        "platform_rating": rating.raw_value,
        "reason": rating.reason,
    });
    let existing =
        store::feedback::find_by_provider_ref(txn, tenant_id, platform.name, &rating.rating_ref)
            .await?;
    if let Some(mut record) = existing {
        let changed = record.score != Some(rating.score.value())
            || record.scale != Some(rating.score.scale())
            || record.comment != rating.comment
            || record.metadata != metadata;
        if !changed {
            return Ok(RatingOutcome {
                feedback_id: record.id,
                outcome: RatingChange::Unchanged,
            });
        }
        record.metric = rating.score.metric();
        record.score = Some(rating.score.value());
        record.scale = Some(rating.score.scale());
        record.comment = rating.comment.clone();
        record.metadata = metadata;
        super::update_record(txn, &record, events, now).await?;
        return Ok(RatingOutcome {
            feedback_id: record.id,
            outcome: RatingChange::Updated,
        });
    }
    let contact_id = if rating.requester.is_empty() {
        None
    } else {
        crate::store::contacts::resolve_contacts(txn, &[(tenant_id, &rating.requester)], now)
            .await?
            .into_iter()
            .next()
            .flatten()
    };
    let record = Feedback {
        id: channels::model::new_id(),
        tenant_id,
        channel: platform.channel.to_owned(),
        provider: platform.name.to_owned(),
        provider_ref: Some(rating.rating_ref.clone()),
        contact_id,
        invitation_id: None,
        metric: rating.score.metric(),
        score: Some(rating.score.value()),
        scale: Some(rating.score.scale()),
        comment: rating.comment.clone(),
        language: rating.requester.locale.clone(),
        ticket_ref: rating.ticket_ref.clone(),
        agent_ref: rating.agent_ref.clone(),
        team_ref: rating.team_ref.clone(),
        occurred_at: store::to_db_precision(rating.rated_at),
        received_at: now,
        metadata,
    };
    super::insert_record(txn, &record, events, now).await?;
    Ok(RatingOutcome {
        feedback_id: record.id,
        outcome: RatingChange::Created,
    })
}
