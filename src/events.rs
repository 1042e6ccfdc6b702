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
