//! The built-in scoring store as a sink: each feedback event becomes (or replaces) one score
//! fact, which `GET /v1/scores` aggregates.

use async_trait::async_trait;
use channels::model::Feedback;

use sea_orm::{DatabaseTransaction, DbErr, TransactionTrait};

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

    async fn deliver(&self, event: &Event) -> Result<(), SinkError> {
        self.deliver_batch(std::slice::from_ref(event))
            .await
            .pop()
            .unwrap_or(Ok(()))
    }

    /// Outside the relay (its rounds use [`DatabaseSink::deliver_in`]): in a transaction of
    /// its own.
    async fn deliver_batch(&self, events: &[Event]) -> Vec<Result<(), SinkError>> {
        let delivered = async {
            let txn = self.db.write.begin().await?;
            let results = self.deliver_in(&txn, events).await?;
            txn.commit().await?;
            Ok::<_, DbErr>(results)
        };
        delivered.await.unwrap_or_else(|e| {
            let failure = SinkError::retry(format!("scoring store: {e}"));
            events.iter().map(|_| Err(failure.clone())).collect()
        })
    }

    fn in_database(&self) -> Option<&dyn DatabaseSink> {
        Some(self)
    }
}

#[async_trait]
impl DatabaseSink for ScoringStore {
    /// One statement for the whole batch. Events that are not feedback records are delivered
    /// by doing nothing; a feedback event that does not parse fails for good on its own.
    async fn deliver_in(
        &self,
        txn: &DatabaseTransaction,
        events: &[Event],
    ) -> Result<Vec<Result<(), SinkError>>, DbErr> {
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
        scores::upsert_facts(txn, &facts).await?;
        Ok(results)
    }
}
