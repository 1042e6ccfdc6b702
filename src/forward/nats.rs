//! A NATS JetStream sink, configured by the operator (`[[sinks]]` with `kind = "nats"`): each
//! event is published to `{subject_prefix}.{tenant_slug}.{event_type}` in the versioned public
//! form ([`Event::public`]), with `Nats-Msg-Id` set to the event id so that JetStream drops a
//! redelivery within the stream's duplicate window. The outbox row is settled only after
//! JetStream acknowledged the message as stored; an unreachable server fails the delivery,
//! which the relay retries with backoff (and dead-letters after its attempts), so an outage
//! delays events and never loses them.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use async_trait::async_trait;
use moka::sync::Cache;
use tokio::sync::OnceCell;
use uuid::Uuid;

use super::{Sink, SinkError};
use crate::config::SinkConfig;
use crate::events::Event;
use crate::store::{tenants, Db};

/// How long connecting, creating the stream or an acknowledgement may take.
const NATS_TIMEOUT: Duration = Duration::from_secs(10);

pub struct NatsSink {
    /// Leaked once at start: outbox rows name their sink with a `&'static str`.
    name: &'static str,
    /// `event_types` of the configuration, leaked likewise; `None` when it names none.
    types: Option<&'static [&'static str]>,
    cfg: SinkConfig,
    db: Db,
    /// Connected, and the stream made sure of, on the first delivery: a gateway starts while
    /// NATS is down, and its events wait in the outbox.
    jetstream: OnceCell<jetstream::Context>,
    slugs: Cache<Uuid, String>,
}

impl NatsSink {
    pub fn new(cfg: SinkConfig, db: Db) -> NatsSink {
        NatsSink {
            name: Box::leak(cfg.name.clone().into_boxed_str()),
            types: (!cfg.event_types.is_empty()).then(|| {
                let types: Vec<&'static str> = cfg
                    .event_types
                    .iter()
                    .map(|t| &*Box::leak(t.clone().into_boxed_str()))
                    .collect();
                &*Box::leak(types.into_boxed_slice())
            }),
            cfg,
            db,
            jetstream: OnceCell::new(),
            slugs: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(300))
                .build(),
        }
    }

    async fn context(&self) -> Result<&jetstream::Context, SinkError> {
        self.jetstream
            .get_or_try_init(|| async {
                let mut options = async_nats::ConnectOptions::new()
                    .name("feedback-gateway")
                    .connection_timeout(NATS_TIMEOUT);
                if !self.cfg.credentials_file.is_empty() {
                    options = options
                        .credentials_file(&self.cfg.credentials_file)
                        .await
                        .map_err(|e| {
                            SinkError::retry(format!("reading the NATS credentials file: {e}"))
                        })?;
                }
                let client = options
                    .connect(self.cfg.url.as_str())
                    .await
                    .map_err(|e| SinkError::retry(format!("connecting to NATS: {e}")))?;
                let context = jetstream::new(client);
                let config = stream::Config {
                    name: self.cfg.stream.clone(),
                    subjects: vec![format!("{}.>", self.cfg.subject_prefix)],
                    max_age: Duration::from_secs(self.cfg.max_age_days * 86_400),
                    duplicate_window: Duration::from_secs(self.cfg.duplicate_window_seconds),
                    ..Default::default()
                };
                tokio::time::timeout(NATS_TIMEOUT, context.get_or_create_stream(config))
                    .await
                    .map_err(|_| SinkError::retry("the NATS stream did not answer"))?
                    .map_err(|e| SinkError::retry(format!("the NATS stream: {e}")))?;
                Ok(context)
            })
            .await
    }

    async fn slug(&self, tenant_id: Uuid) -> Result<String, SinkError> {
        if let Some(slug) = self.slugs.get(&tenant_id) {
            return Ok(slug);
        }
        let slug = tenants::slug_of(&self.db, tenant_id)
            .await
            .map_err(|e| SinkError::retry(format!("looking up the tenant: {e}")))?
            // A tenant deleted since: its events are not sent anywhere.
            .ok_or_else(|| SinkError::permanent("the tenant no longer exists"))?;
        self.slugs.insert(tenant_id, slug.clone());
        Ok(slug)
    }

    /// Rows of other types are not queued for this sink; one queued before its configuration
    /// changed is acknowledged without sending.
    fn wants(&self, event: &Event) -> bool {
        self.types
            .is_none_or(|types| types.contains(&event.event_type.as_str()))
    }
}

#[async_trait]
impl Sink for NatsSink {
    fn name(&self) -> &'static str {
        self.name
    }

    fn event_types(&self) -> Option<&'static [&'static str]> {
        self.types
    }

    async fn deliver(&self, event: &Event) -> Result<(), SinkError> {
        super::deliver_one(self, event).await
    }

    /// Publishes every event first and then waits for the acknowledgements, so a batch costs
    /// about one round trip rather than one per event.
    async fn deliver_batch(&self, events: &[Event]) -> Vec<Result<(), SinkError>> {
        let context = match self.context().await {
            Ok(context) => context,
            Err(e) => return events.iter().map(|_| Err(e.clone())).collect(),
        };
        let mut pending = Vec::with_capacity(events.len());
        for event in events {
            if !self.wants(event) {
                pending.push(Ok(None));
                continue;
            }
            let slug = match self.slug(event.tenant_id).await {
                Ok(slug) => slug,
                Err(e) => {
                    pending.push(Err(e));
                    continue;
                }
            };
            let subject = format!("{}.{slug}.{}", self.cfg.subject_prefix, event.event_type);
            let body = event.public(self.cfg.include_personal_data).to_string();
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(
                async_nats::header::NATS_MESSAGE_ID,
                event.id.to_string().as_str(),
            );
            headers.insert("Content-Type", "application/json");
            pending.push(
                context
                    .publish_with_headers(subject, headers, body.into())
                    .await
                    .map(Some)
                    .map_err(|e| SinkError::retry(format!("publishing to NATS: {e}"))),
            );
        }
        let mut results = Vec::with_capacity(events.len());
        for publish in pending {
            results.push(match publish {
                Ok(Some(ack)) => match tokio::time::timeout(NATS_TIMEOUT, ack).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(SinkError::retry(format!("NATS did not store it: {e}"))),
                    Err(_) => Err(SinkError::retry("NATS did not acknowledge in time")),
                },
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            });
        }
        results
    }
}
