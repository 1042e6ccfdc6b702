//! The built-in scoring store as a sink: each feedback event becomes (or replaces) one score
//! fact, which `GET /v1/scores` aggregates.

use async_trait::async_trait;
use channels::model::Feedback;

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseTransaction, DbErr};

use super::{DatabaseSink, Sink, SinkError};
use crate::events::Event;
use crate::events::{FEEDBACK_CREATED, FEEDBACK_UPDATED};
use crate::store::{scores, Db};

pub struct ScoringStore {
    db: Db,
}

impl ScoringStore {
    pub const NAME: &'static str = "scoring";

    pub fn new(db: Db) -> Self {
        ScoringStore { db }
    }
}

#[async_trait]
impl Sink for ScoringStore {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    /// Score facts come from answers only.
    fn event_types(&self) -> Option<&'static [&'static str]> {
        Some(&[FEEDBACK_CREATED, FEEDBACK_UPDATED])
    }

    async fn deliver(&self, event: &Event) -> Result<(), SinkError> {
        super::deliver_one(self, event).await
    }

    /// Outside the relay (its rounds use [`DatabaseSink::deliver_in`]): on the write
    /// connection. A failed write fails the events it carried, to be retried; an event that
    /// did not parse stays failed for good.
    async fn deliver_batch(&self, events: &[Event]) -> Vec<Result<(), SinkError>> {
        let (mut results, facts) = facts_of(events);
        if let Err(e) = scores::upsert_facts(&self.db.write, &facts).await {
            let failure = SinkError::retry(format!("scoring store: {e}"));
            for r in results.iter_mut().filter(|r| r.is_ok()) {
                *r = Err(failure.clone());
            }
        }
        results
    }

    fn in_database(&self) -> Option<&dyn DatabaseSink> {
        Some(self)
    }
}

#[async_trait]
impl DatabaseSink for ScoringStore {
    /// One statement for the whole batch, in the relay's transaction.
    async fn deliver_in(
        &self,
        txn: &DatabaseTransaction,
        events: &[Event],
    ) -> Result<Vec<Result<(), SinkError>>, DbErr> {
        let (results, facts) = facts_of(events);
        scores::upsert_facts(txn, &facts).await?;
        Ok(results)
    }
}

/// A record and the version (its event's time) a fact reflects.
type Fact = (Feedback, DateTime<Utc>);

/// Each event's result so far, and the facts to write. Events that are not feedback records
/// are delivered by doing nothing; a feedback event that does not parse fails for good on its
/// own.
fn facts_of(events: &[Event]) -> (Vec<Result<(), SinkError>>, Vec<Fact>) {
    let mut results: Vec<Result<(), SinkError>> = Vec::with_capacity(events.len());
    let mut facts = Vec::new();
    for event in events {
        match event.event_type.as_str() {
            FEEDBACK_CREATED | FEEDBACK_UPDATED => {
                match serde_json::from_value::<Feedback>(event.data.clone()) {
                    Ok(f) => {
                        // The event's creation time orders versions of one record.
                        facts.push((f, event.created_at));
                        results.push(Ok(()));
                    }
                    Err(e) => results.push(Err(SinkError::permanent(format!(
                        "not a feedback record: {e}"
                    )))),
                }
            }
            _ => results.push(Ok(())),
        }
    }
    (results, facts)
}
