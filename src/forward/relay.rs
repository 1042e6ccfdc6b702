//! The outbox relay: claims due rows with a lease, hands each to its sink, deletes delivered
//! rows, reschedules failures with exponential backoff and jitter, and moves rows that used up
//! their attempts to the dead letters.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use rand::Rng;
use sea_orm::DbErr;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Sink, SinkError};
use crate::config::OutboxConfig;
use crate::events::Event;
use crate::retry::backoff;
use crate::store::outbox::{self, Claimed};
use crate::store::Db;

#[derive(Clone)]
pub struct Relay {
    db: Db,
    sinks: Arc<HashMap<&'static str, Arc<dyn Sink>>>,
    cfg: OutboxConfig,
    worker: String,
    wake: Arc<Notify>,
    /// When the depth gauge was last counted: `COUNT(*)` reads the whole outbox, so it runs at
    /// most once per [`DEPTH_EVERY`], not per round.
    depth_counted: Arc<std::sync::Mutex<Option<Instant>>>,
}

const DEPTH_EVERY: Duration = Duration::from_secs(5);

impl Relay {
    pub fn new(db: Db, sinks: Vec<Arc<dyn Sink>>, cfg: OutboxConfig, wake: Arc<Notify>) -> Self {
        let sinks = sinks.into_iter().map(|s| (s.name(), s)).collect();
        Relay {
            db,
            sinks: Arc::new(sinks),
            cfg,
            worker: format!("relay-{}", channels::model::new_id()),
            wake,
            depth_counted: Default::default(),
        }
    }

    pub fn sink_names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.sinks.keys().copied().collect();
        names.sort_unstable();
        names
    }

    /// One round: claim a batch of due rows, hand each sink its rows in one batch, and settle
    /// each row. Returns how many were claimed.
    pub async fn run_once(&self) -> Result<usize, DbErr> {
        let now = Utc::now();
        let lease = chrono::Duration::seconds(self.cfg.lease_seconds as i64);
        let claimed =
            outbox::claim(&self.db, &self.worker, now, lease, self.cfg.batch_size).await?;
        let mut by_sink: HashMap<&str, Vec<&Claimed>> = HashMap::new();
        for row in &claimed {
            by_sink.entry(row.sink.as_str()).or_default().push(row);
        }
        let mut delivered = Vec::with_capacity(claimed.len());
        for (sink_name, rows) in by_sink {
            let results = self.deliver(sink_name, &rows).await;
            let ok = results.iter().filter(|r| r.is_ok()).count();
            metrics::counter!("outbox_delivered_total", "sink" => sink_name.to_owned())
                .increment(ok as u64);
            for (row, result) in rows.into_iter().zip(results) {
                match result {
                    Ok(()) => delivered.push(row.id),
                    Err(e) => self.settle_failure(row, e).await?,
                }
            }
        }
        outbox::complete(&self.db, &self.worker, &delivered).await?;
        Ok(claimed.len())
    }

    /// Runs rounds until no row is due. For tests and for draining at shutdown.
    pub async fn drain(&self) -> Result<usize, DbErr> {
        let mut total = 0;
        loop {
            let n = self.run_once().await?;
            total += n;
            // Also under a load that never lets the queue empty.
            self.record_depth().await;
            if n == 0 {
                break;
            }
        }
        Ok(total)
    }

    /// Results in the order of `rows`. Rows whose payload cannot be read fail for good
    /// without holding back the others.
    async fn deliver(&self, sink_name: &str, rows: &[&Claimed]) -> Vec<Result<(), SinkError>> {
        let Some(sink) = self.sinks.get(sink_name) else {
            let missing = SinkError::retry(format!("sink `{sink_name}` is not configured"));
            return rows.iter().map(|_| Err(missing.clone())).collect();
        };
        let parsed: Vec<Result<Event, SinkError>> = rows
            .iter()
            .map(|r| {
                r.event()
                    .map_err(|e| SinkError::permanent(format!("unreadable event: {e}")))
            })
            .collect();
        let events: Vec<Event> = parsed
            .iter()
            .filter_map(|p| p.as_ref().ok().cloned())
            .collect();
        let mut sent = sink.deliver_batch(&events).await.into_iter();
        parsed
            .into_iter()
            .map(|p| match p {
                Ok(_) => sent.next().unwrap_or_else(|| {
                    Err(SinkError::retry(
                        "the sink answered fewer results than events",
                    ))
                }),
                Err(e) => Err(e),
            })
            .collect()
    }

    async fn settle_failure(&self, row: &Claimed, mut err: SinkError) -> Result<(), DbErr> {
        // A sink's error may quote the endpoint's answer; a tenant reads it in the dead letters.
        err.message = channels::scrub::excerpt(&err.message);
        let attempts = row.attempts + 1;
        let now = Utc::now();
        metrics::counter!("outbox_failed_total", "sink" => row.sink.clone()).increment(1);
        if !err.retryable || attempts >= self.cfg.max_attempts {
            tracing::warn!(outbox_id = row.id, sink = %row.sink, attempts, error = %err.message, "event dead-lettered");
            metrics::counter!("outbox_dead_lettered_total", "sink" => row.sink.clone())
                .increment(1);
            return outbox::dead_letter(
                &self.db,
                &self.worker,
                row.id,
                attempts,
                &err.message,
                now,
            )
            .await;
        }
        let delay = backoff(
            attempts,
            self.cfg.backoff_base_ms,
            self.cfg.backoff_max_ms,
            rand::rng().random::<f64>(),
        );
        tracing::info!(outbox_id = row.id, sink = %row.sink, attempts, retry_in_ms = delay.as_millis() as u64, error = %err.message, "delivery failed; will retry");
        let next = now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero());
        outbox::retry_later(&self.db, &self.worker, row.id, attempts, next, &err.message).await
    }

    async fn record_depth(&self) {
        {
            let mut counted = self.depth_counted.lock().unwrap_or_else(|e| e.into_inner());
            if counted.is_some_and(|at| at.elapsed() < DEPTH_EVERY) {
                return;
            }
            *counted = Some(Instant::now());
        }
        if let Ok(depth) = outbox::depth(&self.db).await {
            metrics::gauge!("outbox_depth").set(depth as f64);
        }
    }

    /// Runs until `shutdown` fires: a round whenever ingest wakes it, when the next row falls
    /// due, or at the poll interval, whichever comes first.
    pub async fn run(self, shutdown: CancellationToken) {
        let poll = Duration::from_millis(self.cfg.poll_interval_ms);
        loop {
            let mut idle_for = poll;
            match self.drain().await {
                Ok(_) => {
                    if let Ok(Some(due)) = outbox::next_due(&self.db).await {
                        let until = (due - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                        idle_for = idle_for.min(until.max(Duration::from_millis(10)));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "outbox relay round failed"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(idle_for) => {}
            }
        }
    }
}
