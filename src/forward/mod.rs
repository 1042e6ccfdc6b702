//! Forwarding: the outbox relay hands each queued event to its sink, at least once.

pub mod relay;
pub mod scoring;

use async_trait::async_trait;

use crate::events::Event;

/// Why a sink did not take an event.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    /// False when trying again cannot help (the event is malformed for this sink); the row
    /// goes to the dead letters at once.
    pub retryable: bool,
    pub message: String,
}

impl SinkError {
    pub fn retry(message: impl Into<String>) -> Self {
        SinkError {
            retryable: true,
            message: message.into(),
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        SinkError {
            retryable: false,
            message: message.into(),
        }
    }
}

/// A destination for events. Delivery is at least once: a sink must treat a second delivery
/// of the same event id as a no-op.
#[async_trait]
pub trait Sink: Send + Sync {
    /// The name outbox rows carry; stable across releases.
    fn name(&self) -> &'static str;
    async fn deliver(&self, event: &Event) -> Result<(), SinkError>;

    /// Delivers several events, answering for each in order. Sinks that can take a batch in
    /// one request or statement override this; the default delivers one by one.
    async fn deliver_batch(&self, events: &[Event]) -> Vec<Result<(), SinkError>> {
        let mut results = Vec::with_capacity(events.len());
        for event in events {
            results.push(self.deliver(event).await);
        }
        results
    }
}
