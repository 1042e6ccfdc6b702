//! Logs (tracing) and metrics (Prometheus).

use std::io::Write;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::config::LogConfig;

/// Installs the global tracing subscriber, writing to standard output; a second call (tests
/// start several servers in one process) is a no-op.
pub fn init_tracing(cfg: &LogConfig) {
    init_tracing_to(cfg, std::io::stdout);
}

/// As [`init_tracing`], writing to `writer`. Every line passes [`Scrubbed`] on its way out.
pub fn init_tracing_to<W>(cfg: &LogConfig, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let writer = Scrubbed(writer);
    let _ = if cfg.format == "json" {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_writer(writer),
            )
            .try_init()
    } else {
        registry
            .with(tracing_subscriber::fmt::layer().with_writer(writer))
            .try_init()
    };
}

/// Logs carry no phone numbers or e-mail addresses in clear. Code logs redacted forms
/// (`E164Phone::redacted`) and scrubs provider texts itself; this writer is the net under it:
/// each formatted event is scrubbed (`channels::scrub::log_line`) before it is written, so a
/// database error or a sink's answer that quotes an address does not leak it either.
pub struct Scrubbed<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Scrubbed<M> {
    type Writer = ScrubbedWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        ScrubbedWriter {
            inner: self.0.make_writer(),
            buffer: Vec::new(),
        }
    }
}

/// Collects one event's text and writes it, scrubbed, when the event is done (dropped).
pub struct ScrubbedWriter<W: Write> {
    inner: W,
    buffer: Vec<u8>,
}

impl<W: Write> Write for ScrubbedWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for ScrubbedWriter<W> {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buffer);
        let _ = self
            .inner
            .write_all(channels::scrub::log_line(&text).as_bytes());
        let _ = self.inner.flush();
    }
}

/// The process-wide Prometheus recorder. Installed once; every server in the process shares it.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("duration_seconds".into()),
                    &[
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                        10.0,
                    ],
                )
                .expect("bucket list is not empty")
                // From a minute to a week: a follow-up is due within a day.
                .set_buckets_for_metric(
                    Matcher::Full("alert_time_to_acknowledge_seconds".into()),
                    &[
                        60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 43200.0,
                        86400.0, 172800.0, 604800.0,
                    ],
                )
                .expect("bucket list is not empty")
                .install_recorder()
                .expect("no other metrics recorder is installed");
            describe();
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "http_requests_total",
        "HTTP requests by method, route and status"
    );
    describe_histogram!(
        "http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request latency by method, route and status"
    );
    describe_counter!(
        "feedback_ingested_total",
        "Inbound feedback by channel, provider and outcome (accepted, duplicate, rejected, conflict, error)"
    );
    describe_gauge!(
        "outbox_depth",
        "Outbox rows waiting for delivery, all sinks"
    );
    describe_counter!("outbox_delivered_total", "Events delivered, by sink");
    describe_counter!("outbox_failed_total", "Failed delivery attempts, by sink");
    describe_counter!(
        "outbox_dead_lettered_total",
        "Events moved to dead letters, by sink"
    );
    describe_gauge!(
        "alerts_open",
        "Alerts nobody has acknowledged yet, by tenant"
    );
    describe_gauge!(
        "alerts_overdue",
        "Unresolved alerts past their follow-up deadline, by tenant"
    );
    describe_histogram!(
        "alert_time_to_acknowledge_seconds",
        Unit::Seconds,
        "Time from an alert's opening to its acknowledgement"
    );
}
