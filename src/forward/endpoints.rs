//! Tenants' HTTP endpoints (`PUT /v1/sinks/{name}`): fan-out in the relay, then signed
//! deliveries per the rules of [`super::webhook`].
//!
//! Ingest writes each event once, for the in-database [`Fanout`] sink. Its round reads the
//! endpoints of the round's tenants in one statement and queues the event again once per
//! endpoint that takes its type, under the name `endpoint:{id}`, so a tenant's many endpoints
//! never multiply ingest's writes (Svix's message attempts). Those rows are claimed with a lease
//! and handed to [`Deliveries`], each endpoint's rows apart from the others': at most
//! [`PER_ENDPOINT`] calls at a time, and once an endpoint fails in a round its remaining rows
//! are put back untried, so an endpoint that keeps failing costs one call per round.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use sea_orm::{DatabaseTransaction, DbErr};
use uuid::Uuid;

use super::webhook::{self, Outcome};
use super::{DatabaseSink, Retry, Sink, SinkError};
use crate::events::Event;
use crate::store::endpoints::{self, Attempt, Endpoint, TenantGate};
use crate::store::{batch, Db};

/// The fan-out sink's name.
pub const FANOUT: &str = "endpoints";
/// The prefix of the rows of one endpoint: `endpoint:{id}`.
pub const PREFIX: &str = "endpoint:";
/// Calls in flight to one endpoint.
const PER_ENDPOINT: usize = 4;
/// What an attempt that got no answer in time says.
const TIMED_OUT: &str = "no answer in time";
/// How long rows put back untried wait.
const UNTRIED_WAIT: Duration = Duration::from_secs(60);
/// How many bytes of an endpoint's answer are kept (scrubbed) in its attempts.
const EXCERPT_BYTES: usize = 512;

pub struct Fanout {
    db: Db,
    gate: &'static TenantGate,
}

impl Fanout {
    /// `gate`: the tenants that have endpoints (kept for the life of the process).
    pub fn new(db: Db, gate: &'static TenantGate) -> Self {
        Fanout { db, gate }
    }
}

#[async_trait]
impl Sink for Fanout {
    fn name(&self) -> &'static str {
        FANOUT
    }

    fn tenants(&self) -> Option<&'static TenantGate> {
        Some(self.gate)
    }

    async fn deliver(&self, event: &Event) -> Result<(), SinkError> {
        super::deliver_one(self, event).await
    }

    async fn deliver_batch(&self, events: &[Event]) -> Vec<Result<(), SinkError>> {
        use sea_orm::TransactionTrait;
        let result = async {
            let txn = self.db.write.begin().await?;
            let results = self.deliver_in(&txn, events).await?;
            txn.commit().await?;
            Ok::<_, DbErr>(results)
        }
        .await;
        result.unwrap_or_else(|e| {
            let failed = SinkError::retry(format!("fan-out: {e}"));
            events.iter().map(|_| Err(failed.clone())).collect()
        })
    }

    fn in_database(&self) -> Option<&dyn DatabaseSink> {
        Some(self)
    }
}

#[async_trait]
impl DatabaseSink for Fanout {
    async fn deliver_in(
        &self,
        txn: &DatabaseTransaction,
        events: &[Event],
    ) -> Result<Vec<Result<(), SinkError>>, DbErr> {
        let mut tenants: Vec<Uuid> = events.iter().map(|e| e.tenant_id).collect();
        tenants.sort_unstable();
        tenants.dedup();
        let endpoints = endpoints::of_tenants(txn, &tenants).await?;
        let names: Vec<(Uuid, String)> = endpoints
            .iter()
            .map(|e| (e.id, format!("{PREFIX}{}", e.id)))
            .collect();
        let mut queued = Vec::new();
        for event in events {
            for (endpoint, (_, name)) in endpoints.iter().zip(&names) {
                if endpoint.tenant_id == event.tenant_id && endpoint.takes(&event.event_type) {
                    queued.push((event, name.as_str()));
                }
            }
        }
        batch::enqueue_to(txn, &queued).await?;
        Ok(events.iter().map(|_| Ok(())).collect())
    }
}

/// Delivers the rows of `endpoint:{id}`.
pub struct Deliveries {
    db: Db,
    client: channels::outbound::Outbound,
}

impl Deliveries {
    pub fn new(db: Db, client: channels::outbound::Outbound) -> Self {
        Deliveries { db, client }
    }

    /// One signed call, recorded in the endpoint's attempts.
    pub async fn attempt(&self, endpoint: &Endpoint, event: &Event) -> Result<(), SinkError> {
        let body = event.public(endpoint.include_personal_data).to_string();
        let now = chrono::Utc::now();
        let headers = webhook::signed_headers(
            &endpoint.signing_secrets(now),
            &event.id.to_string(),
            now.timestamp(),
            body.as_bytes(),
        );
        let started = Instant::now();
        let answer = match self.client.request(reqwest::Method::POST, &endpoint.url) {
            Err(refused) => Err(format!("the endpoint's address is refused: {refused}")),
            Ok(request) => {
                let mut request = request
                    .timeout(webhook::ATTEMPT_TIMEOUT)
                    .header("content-type", "application/json")
                    .header("user-agent", "feedback-gateway")
                    .body(body);
                for (name, value) in headers {
                    request = request.header(name, value);
                }
                match request.send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let retry_after = webhook::retry_after(
                            response
                                .headers()
                                .get("retry-after")
                                .and_then(|v| v.to_str().ok()),
                        );
                        let text = response.text().await.unwrap_or_default();
                        Ok((status, retry_after, text))
                    }
                    Err(e) if e.is_timeout() => Err(TIMED_OUT.to_owned()),
                    Err(_) => Err("the endpoint could not be reached".to_owned()),
                }
            }
        };
        let duration_ms = started.elapsed().as_millis().min(i32::MAX as u128) as i32;
        let (status, retry_after, excerpt, failure) = match &answer {
            Ok((status, retry_after, text)) => {
                let cut: String = text.chars().take(EXCERPT_BYTES).collect();
                (
                    Some(*status),
                    *retry_after,
                    Some(channels::scrub::excerpt(&cut)).filter(|e| !e.is_empty()),
                    None,
                )
            }
            Err(reason) => (None, None, None, Some(reason.clone())),
        };
        // No answer in time is throttling; no connection at all is a plain failure.
        let outcome = match (&failure, status) {
            (Some(reason), None) if reason != TIMED_OUT => Outcome::Failed,
            _ => Outcome::of(status),
        };
        let attempt = Attempt {
            event_id: event.id,
            event_type: event.event_type.clone(),
            attempted_at: now,
            status_code: status.map(i32::from),
            duration_ms,
            outcome: format!("{outcome:?}").to_lowercase(),
            response_excerpt: excerpt,
        };
        if let Err(e) = endpoints::record_attempt(&self.db, endpoint.id, &attempt).await {
            tracing::warn!(error = %e, "a delivery attempt was not recorded");
        }
        match outcome {
            Outcome::Delivered => Ok(()),
            Outcome::Gone => {
                let _ = endpoints::disable(&self.db, endpoint.id, "the endpoint answered 410 Gone")
                    .await;
                Err(SinkError::permanent(
                    "the endpoint answered 410 Gone and is disabled",
                ))
            }
            _ => Err(SinkError {
                status,
                retry_after,
                ..SinkError::retry(match (status, failure) {
                    (Some(status), _) => format!("the endpoint answered {status}"),
                    (None, Some(reason)) => reason,
                    (None, None) => "no answer".to_owned(),
                })
            }),
        }
    }
}

#[async_trait]
impl Sink for Deliveries {
    fn name(&self) -> &'static str {
        PREFIX
    }

    /// Ingest queues nothing for it: its rows come from the fan-out.
    fn event_types(&self) -> Option<&'static [&'static str]> {
        Some(&[])
    }

    async fn deliver(&self, _event: &Event) -> Result<(), SinkError> {
        Err(SinkError::permanent("deliveries go to a named endpoint"))
    }

    async fn deliver_to(&self, sink_name: &str, events: &[Event]) -> Vec<Result<(), SinkError>> {
        let endpoint = match sink_name
            .strip_prefix(PREFIX)
            .and_then(|id| id.parse::<Uuid>().ok())
        {
            Some(id) => endpoints::by_id(&self.db.write, id).await,
            None => Ok(None),
        };
        let endpoint = match endpoint {
            Ok(Some(endpoint)) if endpoint.disabled_at.is_none() => endpoint,
            Ok(Some(_)) => {
                let gone = SinkError::permanent("the endpoint is disabled");
                return events.iter().map(|_| Err(gone.clone())).collect();
            }
            Ok(None) => {
                let gone = SinkError::permanent("the endpoint no longer exists");
                return events.iter().map(|_| Err(gone.clone())).collect();
            }
            Err(e) => {
                let failed = SinkError::retry(format!("loading the endpoint: {e}"));
                return events.iter().map(|_| Err(failed.clone())).collect();
            }
        };
        // In order, a few at a time; after a failure the rest wait for the next round untried.
        let mut results = Vec::with_capacity(events.len());
        let mut failed = false;
        for chunk in events.chunks(PER_ENDPOINT) {
            if failed {
                results.extend(chunk.iter().map(|_| {
                    Err(SinkError {
                        not_attempted: true,
                        ..SinkError::retry("not tried: the endpoint failed in this round")
                    })
                }));
                continue;
            }
            let done =
                futures::future::join_all(chunk.iter().map(|e| self.attempt(&endpoint, e))).await;
            failed = done.iter().any(Result::is_err);
            results.extend(done);
        }
        results
    }

    fn retry(&self, attempts: i32, error: &SinkError) -> Retry {
        // Rows put back untried wait a minute: a dead endpoint's queue is then offered about
        // once a minute per row, not in every round.
        if error.not_attempted {
            return Retry::After(UNTRIED_WAIT);
        }
        // A failure without an answer (refused, unreachable) is retried as a failure, not as
        // throttling; a timeout says so in its message.
        let outcome = if error.status.is_none() && error.message != TIMED_OUT {
            Outcome::Failed
        } else {
            Outcome::of(error.status)
        };
        match webhook::retry_delay(
            attempts.max(1) as usize,
            outcome,
            error.retry_after,
            rand::random::<f64>(),
        ) {
            Some(delay) => Retry::After(delay),
            None => Retry::GiveUp,
        }
    }
}
