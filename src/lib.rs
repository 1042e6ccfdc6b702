//! feedback-gateway: receives feedback on many channels, normalizes it, applies survey-fatigue
//! rules and forwards every record to a scoring store.
//!
//! The modules follow the data's way: `http` (edge) → `ingest` → `forward` (outbox relay and
//! sinks), with `store` underneath; `policy` decides who is asked, `lifecycle` alone moves an
//! invitation's status, `dispatch` sends through the messaging providers' table. `rules`,
//! `events` and `retry` are leaves every layer may use. ARCHITECTURE.md gives each folder's
//! import rules (checked by `tests/architecture.rs`). `main.rs` only parses the command line;
//! tests call [`App::build`] and [`App::serve`] on a random port and get the real server.

pub mod alerts;
pub mod config;
pub mod dispatch;
pub mod events;
pub mod forward;
pub mod http;
pub mod ingest;
pub mod lifecycle;
pub mod policy;
pub mod retry;
pub mod rules;
pub mod store;
pub mod telemetry;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use config::Config;
use forward::relay::Relay;
use forward::scoring::ScoringStore;
use forward::Sink;
use http::AppState;
use ingest::Ingest;
use store::tenants::{self, CreatedTenant};
use store::Db;

/// Parts a deployment or a test plugs in beside the built-in ones.
#[derive(Default)]
pub struct Extensions {
    /// Sinks beyond the built-in scoring store.
    pub sinks: Vec<Arc<dyn Sink>>,
    /// Senders per channel.
    pub senders: Vec<Arc<dyn dispatch::Sender>>,
    /// The closed loop's clock (deadlines, overdue alerts); the system's when `None`.
    pub clock: Option<Arc<dyn alerts::Clock>>,
}

/// A gateway with its database migrated, ready to serve.
pub struct App {
    pub config: Arc<Config>,
    pub db: Db,
    pub relay: Relay,
    pub dispatcher: dispatch::dispatcher::Dispatcher,
    /// Escalates overdue alerts and refreshes their gauges.
    pub sweeper: alerts::sweep::Sweeper,
    state: AppState,
    /// Where survey e-mails go for tenants without an SMTP server, for the start-up banner.
    pub email_transport: String,
}

impl App {
    /// Connects to the database, runs the migrations and wires the stages together.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        Self::build_with(config, Extensions::default()).await
    }

    /// As [`App::build`], with extra sinks and senders.
    pub async fn build_with(config: Config, extensions: Extensions) -> anyhow::Result<App> {
        let config = Arc::new(config);
        let db = Db::connect(&config.database_url, &config.database)
            .await
            .map_err(|e| anyhow::anyhow!("cannot open database: {e}"))?;
        db.migrate()
            .await
            .map_err(|e| anyhow::anyhow!("migrations failed: {e}"))?;
        let wake = Arc::new(Notify::new());
        let mut sinks: Vec<Arc<dyn Sink>> = vec![Arc::new(ScoringStore::new(db.clone()))];
        for sink in &config.sinks {
            match sink.kind {
                config::SinkKind::Nats => sinks.push(Arc::new(forward::nats::NatsSink::new(
                    sink.clone(),
                    db.clone(),
                ))),
            }
        }
        // Tenants' endpoints: the fan-out, and the deliveries it queues, through a guarded
        // client of their own (the delivery timeout, no redirects, no private addresses unless
        // the operator allows them).
        let endpoint_client = channels::outbound::Outbound::new(
            forward::webhook::ATTEMPT_TIMEOUT,
            config.outbound.allow_private_networks,
        )
        .map_err(|e| anyhow::anyhow!("HTTP client: {e}"))?;
        db.caches
            .endpoint_tenants
            .reload(&db)
            .await
            .map_err(|e| anyhow::anyhow!("loading the tenants' endpoints: {e}"))?;
        sinks.push(Arc::new(forward::endpoints::Fanout::new(
            db.clone(),
            db.caches.endpoint_tenants,
        )));
        sinks.push(Arc::new(forward::endpoints::Deliveries::new(
            db.clone(),
            endpoint_client.clone(),
        )));
        // Survey e-mails and the alert owners' e-mails leave through the same transport.
        let email = Arc::new(dispatch::email::EmailSender::new(
            db.clone(),
            config.email.clone(),
            &config.public_url,
            config.outbound.allow_private_networks,
        )?);
        let email_transport = email.default_transport();
        sinks.push(Arc::new(alerts::notify::Notifier::new(
            db.clone(),
            email.clone(),
            endpoint_client.clone(),
            &config.public_url,
        )));
        sinks.extend(extensions.sinks);
        let relay = Relay::new(db.clone(), sinks, config.outbox.clone(), wake.clone());
        let clock = extensions
            .clock
            .unwrap_or_else(|| Arc::new(alerts::SystemClock));
        let sweeper = alerts::sweep::Sweeper::new(
            db.clone(),
            clock.clone(),
            Duration::from_millis(config.alerts.sweep_interval_ms.max(10)),
            wake.clone(),
        );
        let writers = if db.backend() == sea_orm::DbBackend::Sqlite {
            1
        } else {
            config.ingest.postgres_writers
        };
        let scheduler = Arc::new(policy::schedule::Scheduler {
            routes: relay.routes().into(),
            defaults: config.policy.clone(),
            tenant_time_zone: config
                .tenant_defaults
                .time_zone
                .parse()
                .map_err(|e| anyhow::anyhow!("tenant_defaults.time_zone: {e}"))?,
        });
        db.set_routes(relay.routes().into());
        let ingest = Ingest::start(
            db.clone(),
            relay.routes().into(),
            scheduler.clone(),
            wake,
            writers,
            config.ingest.max_batch,
        );
        let http_client = channels::outbound::Outbound::new(
            Duration::from_millis(config.dispatch.provider_timeout_ms),
            config.outbound.allow_private_networks,
        )
        .map_err(|e| anyhow::anyhow!("HTTP client: {e}"))?;
        let state = AppState {
            config: config.clone(),
            db: db.clone(),
            ingest: ingest.clone(),
            metrics: telemetry::metrics_handle(),
            http: http_client.clone(),
            clock: clock.clone(),
            widget_memory: http::widget::DecisionMemory::new(Duration::from_secs(
                config.widget.decision_memory_seconds,
            )),
            limits: Arc::new(http::limits::InboundLimits::new(
                &config.rate_limits,
                &config.widget,
            )),
            scheduler: policy::schedule::Triggers::start(
                &db,
                scheduler,
                writers,
                config.ingest.max_batch,
            ),
        };
        // Built-in senders first: a sender from the extensions replaces one for its channel.
        let mut senders: Vec<Arc<dyn dispatch::Sender>> =
            dispatch::provider::ProviderSender::for_every_channel(
                &db,
                &http_client,
                &config.public_url,
                &config.providers,
            )
            .into_iter()
            .map(|s| Arc::new(s) as Arc<dyn dispatch::Sender>)
            .collect();
        senders.push(email);
        senders.extend(extensions.senders);
        let dispatcher = dispatch::dispatcher::Dispatcher::new(
            db.clone(),
            dispatch::Senders::new(senders),
            config.dispatch.clone(),
            Arc::new(Notify::new()),
        );
        Ok(App {
            config,
            db,
            relay,
            dispatcher,
            sweeper,
            state,
            email_transport,
        })
    }

    pub fn router(&self) -> axum::Router {
        http::router(self.state.clone())
    }

    /// Serves on `listener` until `shutdown` fires, then stops accepting, lets requests in
    /// flight finish (bounded by the grace period) and stops the relay between rounds, so no
    /// claim is left half-settled.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let workers_stop = CancellationToken::new();
        let relay = tokio::spawn(self.relay.clone().run(workers_stop.clone()));
        let dispatcher = tokio::spawn(self.dispatcher.clone().run(workers_stop.clone()));
        let sweeper = tokio::spawn(self.sweeper.clone().run(workers_stop.clone()));
        // Endpoints put through another process reach this one's fan-out within the TTL.
        let reload = {
            let (db, stop) = (self.db.clone(), workers_stop.clone());
            let every = Duration::from_millis(self.config.database.cache_ttl_ms.max(100));
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(every) => {}
                    }
                    if let Err(e) = db.caches.endpoint_tenants.reload(&db).await {
                        tracing::warn!(error = %e, "reloading the tenants' endpoints failed");
                    }
                }
            })
        };
        let limits = self.state.limits.clone();
        every(Duration::from_secs(60), &workers_stop, move || {
            limits.forget_idle();
            async {}
        });
        let db = self.db.clone();
        every(Duration::from_secs(1), &workers_stop, move || {
            let db = db.clone();
            async move {
                if let Err(e) = db.checkpoint().await {
                    tracing::warn!(error = %e, "WAL checkpoint failed");
                }
            }
        });
        let grace = Duration::from_secs(self.config.http.shutdown_grace_seconds);
        let router = self.router();
        let limits = http::serve::ConnectionLimits {
            header_read_timeout: Duration::from_secs(self.config.http.header_read_timeout_seconds),
            max_per_ip: self.config.http.max_connections_per_ip,
            uncapped: self.config.rate_limits.trusted_proxies.clone(),
        };
        let server = tokio::spawn(http::serve::serve(
            listener,
            router,
            limits,
            shutdown.clone(),
        ));
        shutdown.cancelled().await;
        if tokio::time::timeout(grace, server).await.is_err() {
            tracing::warn!("requests still in flight after the grace period; closing");
        }
        workers_stop.cancel();
        let _ = tokio::time::timeout(grace, relay).await;
        let _ = tokio::time::timeout(grace, dispatcher).await;
        let _ = tokio::time::timeout(grace, sweeper).await;
        let _ = reload.await;
        self.db.close().await;
        Ok(())
    }
}

/// Runs `job` every `period` until `stop` fires.
fn every<F, Fut>(period: Duration, stop: &CancellationToken, mut job: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let stop = stop.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(period) => job().await,
            }
        }
    });
}

/// On first start (no tenant at all) creates the demo tenant and returns its key.
pub async fn ensure_demo_tenant(app: &App) -> anyhow::Result<Option<CreatedTenant>> {
    if !app.config.demo.create_tenant || tenants::count(&app.db).await? > 0 {
        return Ok(None);
    }
    match tenants::create(&app.db, &app.config.demo.slug).await {
        Ok(created) => Ok(Some(created)),
        // A replica starting at the same time created it first.
        Err(tenants::CreateTenantError::Exists(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Installs the SIGTERM and Ctrl-C handlers now, and returns a future that resolves when the
/// process is asked to stop.
///
/// The handlers are installed before the future is first polled: a caller that announces it is
/// listening only after this call cannot be killed by a SIGTERM's default action in between.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let terminate = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        async move {
            match (terminate, interrupt) {
                (Ok(mut terminate), Ok(mut interrupt)) => {
                    tokio::select! {
                        _ = terminate.recv() => {},
                        _ = interrupt.recv() => {},
                    }
                }
                // No signal handling (no runtime signal driver): run until killed.
                _ => std::future::pending::<()>().await,
            }
            tracing::info!("shutdown requested");
        }
    }
    #[cfg(not(unix))]
    async move {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown requested");
    }
}
