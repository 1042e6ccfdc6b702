//! The outbox relay: claims due rows with a lease, hands each to its sink, deletes delivered
//! rows, reschedules failures with exponential backoff and jitter, and moves rows that used up
//! their attempts to the dead letters.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use rand::Rng;
use sea_orm::{ConnectionTrait, DbErr, TransactionTrait};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{DatabaseSink, Retry, Sink, SinkError};
use crate::config::OutboxConfig;
use crate::events::Event;
use crate::retry::backoff;
use crate::store::batch::Route;
use crate::store::outbox::{self, Claimed, Holder};
use crate::store::Db;

#[derive(Clone)]
pub struct Relay {
    db: Db,
    sinks: Arc<HashMap<&'static str, Arc<dyn Sink>>>,
    cfg: OutboxConfig,
    worker: String,
    wake: Arc<Notify>,
    /// When the depth gauge was last counted: `COUNT(*)` reads the whole outbox, so it runs at
    /// most once per [`HOUSEKEEPING_EVERY`], not per round.
    depth_counted: Arc<std::sync::Mutex<Option<Instant>>>,
    /// When rows of sinks no longer configured were last looked for (see
    /// [`Relay::leased_round_due`]).
    strays_checked: Arc<std::sync::Mutex<Option<Instant>>>,
}

const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(5);

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
            strays_checked: Default::default(),
        }
    }

    /// Where ingest queues events: each sink with the event types it takes.
    pub fn routes(&self) -> Vec<Route> {
        let mut routes: Vec<Route> = self
            .sinks
            .values()
            .map(|s| Route {
                sink: s.name(),
                types: s.event_types(),
                tenants: s.tenants(),
            })
            .collect();
        routes.sort_unstable_by_key(|r| r.sink);
        routes
    }

    /// One round: each sink that writes into the gateway's own database takes its due rows,
    /// delivers and settles them in one transaction; the other sinks' due rows are claimed with
    /// a lease, handed to each sink in one batch, and settled. Returns how many rows were taken.
    pub async fn run_once(&self) -> Result<usize, DbErr> {
        let mut taken = 0;
        for (&name, sink) in self.sinks.iter() {
            if let Some(sink) = sink.in_database() {
                taken += self.round_in_database(name, sink).await?;
            }
        }
        if self.leased_round_due() {
            taken += self.round_with_lease().await?;
        }
        Ok(taken)
    }

    /// Claims, delivers and settles one sink's due rows in one commit.
    async fn round_in_database(&self, name: &str, sink: &dyn DatabaseSink) -> Result<usize, DbErr> {
        let now = Utc::now();
        let txn = self.db.write.begin().await?;
        let rows = outbox::take_due(&txn, name, now, self.cfg.batch_size).await?;
        if rows.is_empty() {
            txn.commit().await?;
            return Ok(0);
        }
        let (events, unreadable) = parse_events(&rows);
        let delivered = match sink.deliver_in(&txn, &events).await {
            Ok(results) => results,
            Err(e) => {
                // The sink's writes are rolled back with the round; the rows are rescheduled
                // as failed deliveries, in a transaction of their own. (A replica's relay that
                // took one of them meanwhile settles it itself: a row it deleted is not
                // updated, one it rescheduled gets the same attempt count.)
                let _ = txn.rollback().await;
                let failure = SinkError::retry(format!("{name}: {e}"));
                let txn = self.db.write.begin().await?;
                for row in &rows {
                    self.settle_failure(&txn, Holder::Transaction, row, failure.clone())
                        .await?;
                }
                txn.commit().await?;
                return Ok(rows.len());
            }
        };
        let results = merge_results(unreadable, delivered);
        let mut done = Vec::with_capacity(rows.len());
        for (row, result) in rows.iter().zip(results) {
            match result {
                Ok(()) => done.push(row.id),
                Err(e) => {
                    self.settle_failure(&txn, Holder::Transaction, row, e)
                        .await?
                }
            }
        }
        outbox::delete_delivered(&txn, Holder::Transaction, &done).await?;
        txn.commit().await?;
        metrics::counter!("outbox_delivered_total", "sink" => name.to_owned())
            .increment(done.len() as u64);
        Ok(rows.len())
    }

    /// Whether this round claims rows for the sinks outside the database: always when there are
    /// such sinks; otherwise only now and then, for rows left queued for a sink that is no
    /// longer configured (they fail until they are dead letters, as before), so that a gateway
    /// with only the scoring store does not write an empty claim every round.
    fn leased_round_due(&self) -> bool {
        if self.sinks.values().any(|s| s.in_database().is_none()) {
            return true;
        }
        let mut checked = self
            .strays_checked
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if checked.is_some_and(|at| at.elapsed() < HOUSEKEEPING_EVERY) {
            return false;
        }
        *checked = Some(Instant::now());
        true
    }

    /// Claims due rows of every sink outside the database with a lease, hands each sink its
    /// rows in one batch, and settles each row.
    async fn round_with_lease(&self) -> Result<usize, DbErr> {
        let now = Utc::now();
        let lease = chrono::Duration::seconds(self.cfg.lease_seconds as i64);
        let in_database: Vec<&str> = self
            .sinks
            .iter()
            .filter(|(_, s)| s.in_database().is_some())
            .map(|(&name, _)| name)
            .collect();
        let claimed = outbox::claim(
            &self.db,
            &self.worker,
            now,
            lease,
            self.cfg.batch_size,
            &in_database,
        )
        .await?;
        let mut by_sink: HashMap<&str, Vec<&Claimed>> = HashMap::new();
        for row in &claimed {
            by_sink.entry(row.sink.as_str()).or_default().push(row);
        }
        let mut delivered = Vec::with_capacity(claimed.len());
        let holder = Holder::Lease(&self.worker);
        // Every destination at once: one that is slow to answer does not hold up the others.
        let rounds =
            futures::future::join_all(by_sink.into_iter().map(|(sink_name, rows)| async move {
                let results = self.deliver(sink_name, &rows).await;
                (sink_name, rows, results)
            }))
            .await;
        for (sink_name, rows, results) in rounds {
            let ok = results.iter().filter(|r| r.is_ok()).count();
            // Per sink, not per endpoint: the label's values stay few.
            let label = self.sink_for(sink_name).map_or(sink_name, |s| s.name());
            metrics::counter!("outbox_delivered_total", "sink" => label.to_owned())
                .increment(ok as u64);
            for (row, result) in rows.into_iter().zip(results) {
                match result {
                    Ok(()) => delivered.push(row.id),
                    Err(e) => self.settle_failure(&self.db.write, holder, row, e).await?,
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
        let Some(sink) = self.sink_for(sink_name) else {
            let missing = SinkError::retry(format!("sink `{sink_name}` is not configured"));
            return rows.iter().map(|_| Err(missing.clone())).collect();
        };
        let (events, unreadable) = parse_events(rows.iter().copied());
        merge_results(unreadable, sink.deliver_to(sink_name, &events).await)
    }

    /// The sink that serves rows queued under `sink_name`.
    fn sink_for(&self, sink_name: &str) -> Option<&Arc<dyn Sink>> {
        self.sinks
            .get(sink_name)
            .or_else(|| self.sinks.values().find(|s| s.serves(sink_name)))
    }

    async fn settle_failure<C: TransactionTrait + ConnectionTrait>(
        &self,
        conn: &C,
        holder: Holder<'_>,
        row: &Claimed,
        mut err: SinkError,
    ) -> Result<(), DbErr> {
        // A sink's error may quote the endpoint's answer; a tenant reads it in the dead letters.
        err.message = channels::scrub::excerpt(&err.message);
        let attempts = if err.not_attempted {
            row.attempts
        } else {
            row.attempts + 1
        };
        let now = Utc::now();
        let label = self
            .sink_for(&row.sink)
            .map_or(row.sink.as_str(), |s| s.name());
        metrics::counter!("outbox_failed_total", "sink" => label.to_owned()).increment(1);
        let retry = match self.sink_for(&row.sink) {
            Some(sink) if err.retryable => sink.retry(attempts, &err),
            _ => Retry::Backoff,
        };
        if let Retry::After(delay) = retry {
            let next = now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero());
            return outbox::retry_later(conn, holder, row.id, attempts, next, &err.message).await;
        }
        if !err.retryable || retry == Retry::GiveUp || attempts >= self.cfg.max_attempts {
            tracing::warn!(outbox_id = row.id, sink = %row.sink, attempts, error = %err.message, "event dead-lettered");
            metrics::counter!("outbox_dead_lettered_total", "sink" => label.to_owned())
                .increment(1);
            return outbox::dead_letter(conn, holder, row.id, attempts, &err.message, now).await;
        }
        let delay = backoff(
            attempts,
            self.cfg.backoff_base_ms,
            self.cfg.backoff_max_ms,
            rand::rng().random::<f64>(),
        );
        tracing::info!(outbox_id = row.id, sink = %row.sink, attempts, retry_in_ms = delay.as_millis() as u64, error = %err.message, "delivery failed; will retry");
        let next = now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero());
        outbox::retry_later(conn, holder, row.id, attempts, next, &err.message).await
    }

    async fn record_depth(&self) {
        {
            let mut counted = self.depth_counted.lock().unwrap_or_else(|e| e.into_inner());
            if counted.is_some_and(|at| at.elapsed() < HOUSEKEEPING_EVERY) {
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

/// The events of `rows` that can be read, and for each row in order `None` (readable: the
/// sink's result goes there) or the error that fails it for good.
fn parse_events<'a>(
    rows: impl IntoIterator<Item = &'a Claimed>,
) -> (Vec<Event>, Vec<Option<SinkError>>) {
    let mut events = Vec::new();
    let mut unreadable = Vec::new();
    for row in rows {
        match row.event() {
            Ok(event) => {
                events.push(event);
                unreadable.push(None);
            }
            Err(e) => unreadable.push(Some(SinkError::permanent(format!("unreadable event: {e}")))),
        }
    }
    (events, unreadable)
}

/// Each row's result: its parse error, or the sink's next answer for the readable ones.
fn merge_results(
    unreadable: Vec<Option<SinkError>>,
    delivered: Vec<Result<(), SinkError>>,
) -> Vec<Result<(), SinkError>> {
    let mut sent = delivered.into_iter();
    unreadable
        .into_iter()
        .map(|parsed| match parsed {
            None => sent.next().unwrap_or_else(|| {
                Err(SinkError::retry(
                    "the sink answered fewer results than events",
                ))
            }),
            Some(e) => Err(e),
        })
        .collect()
}
