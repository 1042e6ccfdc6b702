//! The closed loop's background work, on every replica: escalating overdue alerts (each once,
//! whichever replica takes it) and refreshing the per-tenant gauges of open and overdue
//! alerts.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{escalate_overdue, Clock};
use crate::store::alerts::counts;
use crate::store::Db;

#[derive(Clone)]
pub struct Sweeper {
    db: Db,
    clock: Arc<dyn Clock>,
    every: Duration,
    wake: Arc<tokio::sync::Notify>,
    /// Tenants with a gauge set.
    seen: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl Sweeper {
    pub fn new(
        db: Db,
        clock: Arc<dyn Clock>,
        every: Duration,
        wake: Arc<tokio::sync::Notify>,
    ) -> Sweeper {
        Sweeper {
            db,
            clock,
            every,
            wake,
            seen: Default::default(),
        }
    }

    /// One sweep at the clock's time: escalations, then the gauges. How many escalated.
    pub async fn run_once(&self) -> Result<usize, sea_orm::DbErr> {
        let now = self.clock.now();
        let escalated = escalate_overdue(&self.db, now).await?;
        if escalated > 0 {
            // Their notifications are queued: the relay need not wait for its next poll.
            self.wake.notify_one();
        }
        let counted = counts(&self.db.read, now).await?;
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        // A tenant whose alerts were all resolved is no longer counted: its gauges go to 0.
        for tenant in seen.iter() {
            if !counted.iter().any(|(t, _, _)| t == tenant) {
                metrics::gauge!("alerts_open", "tenant" => tenant.clone()).set(0.0);
                metrics::gauge!("alerts_overdue", "tenant" => tenant.clone()).set(0.0);
            }
        }
        seen.clear();
        for (tenant, open, overdue) in counted {
            metrics::gauge!("alerts_open", "tenant" => tenant.clone()).set(open as f64);
            metrics::gauge!("alerts_overdue", "tenant" => tenant.clone()).set(overdue as f64);
            seen.insert(tenant);
        }
        Ok(escalated)
    }

    pub async fn run(self, stop: CancellationToken) {
        loop {
            if let Err(e) = self.run_once().await {
                tracing::warn!(error = %e, "the alert sweep failed");
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.every) => {}
            }
        }
    }
}
