//! The events the gateway emits, as they travel through the outbox to every sink: one
//! envelope and the names of the event types. Public, because consumers (the built-in scoring
//! store, forwarding sinks, tests) read them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A feedback record was stored.
pub const FEEDBACK_CREATED: &str = "feedback.created";
/// A stored record changed (a rescored answer, a comment, a changed platform rating).
pub const FEEDBACK_UPDATED: &str = "feedback.updated";

/// An invitation was created to be sent.
pub const SURVEY_SCHEDULED: &str = "survey.scheduled";
/// A trigger was decided against: the invitation records the rule that stopped it.
pub const SURVEY_SUPPRESSED: &str = "survey.suppressed";
/// The provider took the message.
pub const SURVEY_SENT: &str = "survey.sent";
/// The provider reported the message delivered.
pub const SURVEY_DELIVERED: &str = "survey.delivered";
/// The message could not be sent or delivered.
pub const SURVEY_FAILED: &str = "survey.failed";
/// The reply window passed without an answer.
pub const SURVEY_EXPIRED: &str = "survey.expired";
/// A contact opted out of a channel (or of all).
pub const CONTACT_OPTED_OUT: &str = "contact.opted_out";
/// A contact opted in again.
pub const CONTACT_OPTED_IN: &str = "contact.opted_in";

/// A detractor's answer opened an alert for its owner.
pub const ALERT_OPENED: &str = "alert.opened";
/// The owner took the alert on.
pub const ALERT_ACKNOWLEDGED: &str = "alert.acknowledged";
/// The alert was closed: by its owner with an outcome, or by the customer's better answer
/// (`status` `self_resolved`).
pub const ALERT_RESOLVED: &str = "alert.resolved";
/// The follow-up was not done by its deadline; the alert escalated.
pub const ALERT_OVERDUE: &str = "alert.overdue";

/// Every event type, in the order `docs/events/` lists them.
pub const ALL_TYPES: [&str; 14] = [
    FEEDBACK_CREATED,
    FEEDBACK_UPDATED,
    SURVEY_SCHEDULED,
    SURVEY_SUPPRESSED,
    SURVEY_SENT,
    SURVEY_DELIVERED,
    SURVEY_FAILED,
    SURVEY_EXPIRED,
    CONTACT_OPTED_OUT,
    CONTACT_OPTED_IN,
    ALERT_OPENED,
    ALERT_ACKNOWLEDGED,
    ALERT_RESOLVED,
    ALERT_OVERDUE,
];

/// An event as it travels to sinks. `id` is the de-duplication key for consumers: a redelivery
/// carries the same id.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    pub tenant_id: Uuid,
    pub aggregate_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub data: serde_json::Value,
}

/// The version of the event schema that forwarding sinks receive (`docs/events/v1/`). A change
/// that removes or retypes a field is a new version; new optional fields are not.
pub const SCHEMA_VERSION: u32 = 1;

/// Fields of an event's `data` that hold personal data: sent only to sinks configured with
/// `include_personal_data`. A feedback record's comment is the customer's own words, and its
/// metadata can carry what a platform knew of them; an alert's note is an employee's account
/// of talking to them.
const PERSONAL_FIELDS: &[&str] = &["comment", "metadata", "phone", "email", "address", "note"];

impl Event {
    /// The event as forwarding sinks receive it, per the versioned schema: `id` (the
    /// de-duplication key), `type`, `version`, `tenant_id`, `occurred_at`, `data`. Without
    /// `include_personal_data`, the personal fields of `data` are left out (the contact stays
    /// known by its id).
    pub fn public(&self, include_personal_data: bool) -> serde_json::Value {
        let mut data = self.data.clone();
        if !include_personal_data {
            if let Some(fields) = data.as_object_mut() {
                for field in PERSONAL_FIELDS {
                    fields.remove(*field);
                }
            }
        }
        serde_json::json!({
            "id": self.id,
            "type": self.event_type,
            "version": SCHEMA_VERSION,
            "tenant_id": self.tenant_id,
            "occurred_at": self.created_at,
            "data": data,
        })
    }
}
