//! Forwarding: the outbox relay hands each queued event to its sink, at least once.

pub mod endpoints;
pub mod nats;
pub mod relay;
pub mod scoring;
pub mod webhook;

use async_trait::async_trait;
use sea_orm::{DatabaseTransaction, DbErr};

use crate::events::Event;

/// Why a sink did not take an event.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    /// False when trying again cannot help (the event is malformed for this sink); the row
    /// goes to the dead letters at once.
    pub retryable: bool,
    pub message: String,
    /// The destination's answer, when it gave one: a sink with its own retry schedule reads
    /// it (a 429, say).
    pub status: Option<u16>,
    /// How long the destination asked to be left alone (`Retry-After`).
    pub retry_after: Option<std::time::Duration>,
    /// The event was not offered at all (its destination failed earlier in the round): the
    /// row is put back without spending an attempt.
    pub not_attempted: bool,
}

impl SinkError {
    pub fn retry(message: impl Into<String>) -> Self {
        SinkError {
            retryable: true,
            message: message.into(),
            status: None,
            retry_after: None,
            not_attempted: false,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        SinkError {
            retryable: false,
            ..SinkError::retry(message)
        }
    }
}

/// When a sink wants a failed row tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// The outbox's backoff and attempt limit (`[outbox]`).
    Backoff,
    /// After this long.
    After(std::time::Duration),
    /// Never: the row becomes a dead letter.
    GiveUp,
}

/// A destination for events. Delivery is at least once: a sink must treat a second delivery
/// of the same event id as a no-op.
#[async_trait]
pub trait Sink: Send + Sync {
    /// The name outbox rows carry; stable across releases.
    fn name(&self) -> &'static str;

    /// The event types this sink takes; `None`: all. Events of other types are not queued
    /// for it at all.
    fn event_types(&self) -> Option<&'static [&'static str]> {
        None
    }

    async fn deliver(&self, event: &Event) -> Result<(), SinkError>;

    /// `Some` for a sink that takes only some tenants' events.
    fn tenants(&self) -> Option<&'static crate::store::endpoints::TenantGate> {
        None
    }

    /// Whether rows queued under `sink_name` are this sink's: its own name, or, for a sink
    /// whose name ends in `:`, any name that starts with it (one row per destination).
    fn serves(&self, sink_name: &str) -> bool {
        let name = self.name();
        sink_name == name || (name.ends_with(':') && sink_name.starts_with(name))
    }

    /// Delivers the events of rows queued under `sink_name` (see [`Sink::serves`]).
    async fn deliver_to(&self, _sink_name: &str, events: &[Event]) -> Vec<Result<(), SinkError>> {
        self.deliver_batch(events).await
    }

    /// When a row that failed with `error` on its `attempts`-th attempt is tried again.
    fn retry(&self, _attempts: i32, _error: &SinkError) -> Retry {
        Retry::Backoff
    }

    /// Delivers several events, answering for each in order. Sinks that can take a batch in
    /// one request or statement override this; the default delivers one by one.
    async fn deliver_batch(&self, events: &[Event]) -> Vec<Result<(), SinkError>> {
        let mut results = Vec::with_capacity(events.len());
        for event in events {
            results.push(self.deliver(event).await);
        }
        results
    }

    /// `Some` for a sink that writes into the gateway's own database: the relay then claims,
    /// delivers and settles its rows in one transaction.
    fn in_database(&self) -> Option<&dyn DatabaseSink> {
        None
    }
}

/// [`Sink::deliver`] for a sink whose [`Sink::deliver_batch`] does the work.
pub async fn deliver_one<S: Sink + ?Sized>(sink: &S, event: &Event) -> Result<(), SinkError> {
    sink.deliver_batch(std::slice::from_ref(event))
        .await
        .pop()
        .unwrap_or(Ok(()))
}

/// A sink whose destination is the gateway's own database (the built-in scoring store). The
/// relay hands it the transaction that took the due rows; delivered rows are deleted and failed
/// ones rescheduled before the same commit. A round is one commit with no lease to write or
/// release, and a crash can never leave a delivered row queued: such a sink gets each event
/// exactly once.
#[async_trait]
pub trait DatabaseSink: Send + Sync {
    /// Results in the order of `events`. An `Err` rolls the whole round back; its rows are
    /// then rescheduled as failed deliveries.
    async fn deliver_in(
        &self,
        txn: &DatabaseTransaction,
        events: &[Event],
    ) -> Result<Vec<Result<(), SinkError>>, DbErr>;
}
