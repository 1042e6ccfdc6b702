//! Answers from the rating links of a survey e-mail. The HTTP edge has verified the link's
//! token; here the answer is recorded in the group commit, like every inbound path: the raw
//! event, the record (created, or updated by a second answer, as a second SMS score does), the
//! invitation marked answered, and the record's event in the outbox.

use std::sync::Arc;

use channels::model::{Feedback, Metric};
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseTransaction, DbErr};
use uuid::Uuid;

use super::{Ingest, IngestError, OwnedReceived, Received};
use crate::lifecycle;
use crate::store::{self, invitations};
use channels::vocabulary::{Channel, InvitationStatus};

/// The provider name records and raw events from rating links carry.
pub const PROVIDER: &str = "email";

/// Where an answer to an invitation came from: a survey e-mail's rating page, or the web
/// widget (whose invitation was created when it was shown).
#[derive(Debug, Clone)]
pub struct AnswerSource {
    pub channel: Channel,
    pub provider: &'static str,
    /// Stored on a new record.
    pub metadata: serde_json::Value,
}

impl AnswerSource {
    pub fn rating_link() -> Self {
        AnswerSource {
            channel: Channel::Email,
            provider: PROVIDER,
            metadata: serde_json::json!({"via": "rating_link"}),
        }
    }
}

/// What became of an answer by link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkAnswer {
    /// Recorded: a new record, or the invitation's record updated.
    Recorded { feedback_id: Uuid, updated: bool },
    /// The invitation no longer takes answers (its reply window has passed, or it was
    /// cancelled); nothing was written.
    Closed,
    /// The score is not on the survey's scale; nothing was written.
    OffScale,
}

struct LinkRequest {
    source: AnswerSource,
    tenant_id: Uuid,
    invitation_id: Uuid,
    score: i16,
    comment: Option<String>,
    received: OwnedReceived,
}

impl Ingest {
    /// Records `score` (and `comment`) as the answer to an invitation whose link was verified.
    pub async fn answer_by_link(
        &self,
        tenant_id: Uuid,
        invitation_id: Uuid,
        score: i16,
        comment: Option<String>,
        received: Received<'_>,
    ) -> Result<LinkAnswer, IngestError> {
        self.answer_invitation(
            AnswerSource::rating_link(),
            tenant_id,
            invitation_id,
            score,
            comment,
            received,
        )
        .await
    }

    /// Records `score` (and `comment`) as the answer to an invitation on `source.channel`
    /// whose token was verified; a second answer changes the first.
    pub async fn answer_invitation(
        &self,
        source: AnswerSource,
        tenant_id: Uuid,
        invitation_id: Uuid,
        score: i16,
        comment: Option<String>,
        received: Received<'_>,
    ) -> Result<LinkAnswer, IngestError> {
        let request = Arc::new(LinkRequest {
            source,
            tenant_id,
            invitation_id,
            score,
            comment: comment.filter(|c| !c.trim().is_empty()),
            received: OwnedReceived::from(&received),
        });
        let ingest = self.clone();
        let answer = self
            .group
            .run(move |txn| {
                let (ingest, request) = (ingest.clone(), request.clone());
                Box::pin(async move { ingest.apply_link_answer(txn, &request).await })
            })
            .await?;
        if matches!(answer, LinkAnswer::Recorded { .. }) {
            self.wake_relay();
        }
        Ok(answer)
    }

    async fn apply_link_answer(
        &self,
        txn: &DatabaseTransaction,
        r: &LinkRequest,
    ) -> Result<LinkAnswer, DbErr> {
        let now = store::now();
        let Some(invitation) = invitations::by_id(txn, r.tenant_id, r.invitation_id).await? else {
            return Ok(LinkAnswer::Closed);
        };
        // Answers for one contact (a link and an SMS reply at once) are applied in turn; the
        // invitation is read again under the lock.
        invitations::lock_contact(txn, invitation.contact_id).await?;
        let Some(invitation) = invitations::by_id(txn, r.tenant_id, r.invitation_id).await? else {
            return Ok(LinkAnswer::Closed);
        };
        if !takes_answers(&invitation, now)
            || invitation.channel.as_deref() != Some(r.source.channel.as_str())
        {
            return Ok(LinkAnswer::Closed);
        }
        let metric: Metric = invitation.metric.parse().unwrap_or(Metric::Text);
        let Some(scale) = metric.numeric_scale() else {
            return Ok(LinkAnswer::OffScale);
        };
        let (low, high) = scale.range();
        if !(low..=high).contains(&r.score) {
            return Ok(LinkAnswer::OffScale);
        }
        super::insert_raw(
            txn,
            r.tenant_id,
            r.source.provider,
            None,
            None,
            &r.received.borrow(),
            now,
        )
        .await?;
        let mut existing =
            store::feedback::first_for_invitations(txn, &[(r.tenant_id, invitation.id)]).await?;
        let mut events = Vec::new();
        let answer = match existing.remove(&invitation.id) {
            Some(mut record) => {
                record.metric = metric;
                record.score = Some(r.score);
                record.scale = Some(scale);
                if r.comment.is_some() {
                    record.comment = r.comment.clone();
                }
                super::update_record(txn, &record, &mut events, now).await?;
                LinkAnswer::Recorded {
                    feedback_id: record.id,
                    updated: true,
                }
            }
            None => {
                let record = Feedback {
                    id: channels::model::new_id(),
                    tenant_id: r.tenant_id,
                    channel: r.source.channel.as_str().to_owned(),
                    provider: r.source.provider.to_owned(),
                    provider_ref: None,
                    contact_id: Some(invitation.contact_id),
                    invitation_id: Some(invitation.id),
                    metric,
                    score: Some(r.score),
                    scale: Some(scale),
                    comment: r.comment.clone(),
                    language: invitation.language.clone(),
                    ticket_ref: invitation.ticket_ref.clone(),
                    agent_ref: invitation.agent_ref.clone(),
                    team_ref: invitation.team_ref.clone(),
                    occurred_at: now,
                    received_at: now,
                    metadata: r.source.metadata.clone(),
                };
                super::insert_record(txn, &record, &mut events, now).await?;
                LinkAnswer::Recorded {
                    feedback_id: record.id,
                    updated: false,
                }
            }
        };
        lifecycle::mark_answered(txn, invitation.id, now).await?;
        super::queue_answers(txn, self.out(), &events, now).await?;
        Ok(answer)
    }
}

/// Whether an invitation still takes answers: sent (or answered, to change the answer) and
/// within its reply window.
pub fn takes_answers(invitation: &store::entities::invitation::Model, now: DateTime<Utc>) -> bool {
    InvitationStatus::parse(&invitation.status).is_some_and(|s| InvitationStatus::OPEN.contains(&s))
        && invitation.expires_at.is_some_and(|e| e > now)
}
