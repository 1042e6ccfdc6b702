//! Configuration in layers: the commented defaults compiled in from `config/default.toml`, an
//! optional file, then `FEEDBACK_*` environment variables; then one validation pass whose
//! errors name the key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use channels::{chat, messaging};
use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::Deserialize;

pub const DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub listen: String,
    pub public_url: String,
    pub database_url: String,
    pub admin_token: String,
    pub database: DatabaseConfig,
    pub http: HttpConfig,
    pub rate_limits: RateLimitConfig,
    pub ingest: IngestConfig,
    pub outbox: OutboxConfig,
    pub dispatch: DispatchConfig,
    pub replies: RepliesConfig,
    pub tenant_defaults: TenantDefaults,
    pub policy: crate::rules::PolicyDefaults,
    pub outbound: OutboundConfig,
    pub providers: ProvidersConfig,
    pub email: EmailConfig,
    pub alerts: AlertsConfig,
    pub widget: WidgetConfig,
    /// Forwarding sinks the operator runs beside the built-in scoring store (`[[sinks]]`).
    #[serde(default)]
    pub sinks: Vec<SinkConfig>,
    pub demo: DemoConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseConfig {
    pub max_connections: u32,
    pub acquire_timeout_ms: u64,
    pub sqlite_synchronous_full: bool,
    /// How long a cached tenant, provider configuration, survey list or alert rule is used before it is
    /// read again: the longest a change made through another replica takes to be seen here.
    pub cache_ttl_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HttpConfig {
    pub body_limit_bytes: usize,
    pub request_timeout_ms: u64,
    pub retry_after_seconds: u64,
    pub shutdown_grace_seconds: u64,
    pub header_read_timeout_seconds: u64,
    pub max_connections_per_ip: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RateLimitConfig {
    pub tenant_per_second: u32,
    pub tenant_burst: u32,
    pub ip_per_second: u32,
    pub ip_burst: u32,
    pub hook_ip_per_second: u32,
    pub hook_ip_burst: u32,
    pub key_lookup_ip_per_second: u32,
    pub key_lookup_ip_burst: u32,
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IngestConfig {
    pub max_batch: usize,
    pub postgres_writers: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OutboxConfig {
    pub poll_interval_ms: u64,
    pub batch_size: u32,
    pub max_attempts: i32,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    pub lease_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AlertsConfig {
    /// How often each replica looks for overdue alerts and refreshes the alert gauges.
    pub sweep_interval_ms: u64,
}

/// The web widget's public endpoints (`[widget]`).
#[derive(Debug, Clone, Deserialize)]
pub struct WidgetConfig {
    pub body_limit_bytes: usize,
    /// Least time between showing and answering, after the site's display delay.
    pub min_answer_ms: u64,
    pub impression_max_age_hours: u32,
    pub ip_per_second: u32,
    pub ip_burst: u32,
    pub site_per_second: u32,
    pub site_burst: u32,
    /// How long an identified visitor's "not now" is remembered by a replica.
    pub decision_memory_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DispatchConfig {
    pub poll_interval_ms: u64,
    pub batch_size: u32,
    pub concurrency: usize,
    pub max_attempts: i32,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    pub lease_seconds: u64,
    pub provider_timeout_ms: u64,
}

/// The e-mail channel's server-wide defaults (`[email]`): the transport for tenants that
/// configure no SMTP server of their own, and how fast and how long sends may take.
#[derive(Debug, Clone, Deserialize)]
pub struct EmailConfig {
    /// The sender for tenants whose settings name none.
    pub from: String,
    /// Replies go to `reply+{token}@{reply_to_domain}` for tenants that name none; empty: to
    /// the sender.
    pub reply_to_domain: String,
    /// With no SMTP host, each message is written as an `.eml` file here instead.
    pub file_dir: String,
    pub smtp: EmailSmtpConfig,
    /// DKIM signing of the mail that goes through the gateway's own transport, for tenants
    /// without a key of their own.
    pub dkim: EmailDkimConfig,
    /// A PEM file of CA certificates trusted besides the public roots (an SMTP relay with a
    /// private CA). Empty: public roots only.
    pub ca_file: String,
    /// Messages per second per tenant.
    pub per_second: f64,
    /// Connections per SMTP server: kept open, and the most messages sent to it at once.
    pub pool_size: u32,
    /// How long a connection, a TLS handshake or an SMTP command may take (milliseconds).
    pub timeout_ms: u64,
    /// Largest inbound e-mail delivery accepted (replies carry signatures, images and quoted
    /// originals, so this is larger than `http.body_limit_bytes`); larger ones are answered 413.
    pub inbound_limit_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EmailSmtpConfig {
    /// Empty: no SMTP server; messages are written to `file_dir`.
    pub host: String,
    pub port: u16,
    /// "starttls", "implicit" or "none" (plain, for loopback and private networks only).
    pub tls: channels::email::SmtpTls,
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EmailDkimConfig {
    /// The signing domain (`d=`). Empty: the gateway signs nothing itself.
    pub domain: String,
    /// The selector (`s=`): the public key is published at `{selector}._domainkey.{domain}`.
    pub selector: String,
    /// "rsa" or "ed25519".
    pub algorithm: channels::email::DkimAlgorithm,
    /// The private key (RSA in PKCS#1 PEM, or an Ed25519 seed in base64), or
    pub private_key: String,
    /// a file that holds it.
    pub private_key_file: String,
}

/// A forwarding sink the operator configures: every tenant's events go to it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// The name its outbox rows and dead letters carry; stable across restarts.
    pub name: String,
    pub kind: SinkKind,
    /// `nats://host:port`.
    pub url: String,
    /// A NATS credentials file (JWT and NKey seed). Empty: no credentials.
    #[serde(default)]
    pub credentials_file: String,
    /// The JetStream stream, created if missing.
    #[serde(default = "default_stream")]
    pub stream: String,
    /// Subjects are `{subject_prefix}.{tenant_slug}.{event_type}`.
    #[serde(default = "default_subject_prefix")]
    pub subject_prefix: String,
    /// The event types sent; empty: all.
    #[serde(default)]
    pub event_types: Vec<String>,
    /// Comments, metadata, phone numbers and e-mail addresses in events; off: contact ids only.
    #[serde(default)]
    pub include_personal_data: bool,
    /// How long the stream keeps a message, when the gateway creates it (days; 0: for ever).
    #[serde(default)]
    pub max_age_days: u64,
    /// JetStream drops a message whose `Nats-Msg-Id` it saw within this window (seconds):
    /// longer than the outbox's longest backoff, so that a redelivery after a lost
    /// acknowledgement is dropped.
    #[serde(default = "default_duplicate_window")]
    pub duplicate_window_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    Nats,
}

fn default_stream() -> String {
    "FEEDBACK".into()
}

fn default_subject_prefix() -> String {
    "feedback".into()
}

fn default_duplicate_window() -> u64 {
    900
}

/// Every call the gateway makes to a provider goes through one guarded client.
#[derive(Debug, Clone, Deserialize)]
pub struct OutboundConfig {
    /// Lets provider calls reach loopback, private, link-local and unique-local addresses
    /// (tests, on-premise providers). Off: only public addresses are called.
    pub allow_private_networks: bool,
}

/// Where each provider's API is, by provider name (`[providers.twilio]`). These are operator
/// settings: a tenant never chooses a URL the gateway calls.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct ProvidersConfig(BTreeMap<String, ProviderApi>);

impl ProvidersConfig {
    /// The operator's API base URL for a provider; empty where none is set (the provider's
    /// address then follows from the tenant's settings).
    pub fn api_base_url(&self, provider: &str) -> &str {
        self.0.get(provider).map_or("", |p| p.api_base_url.as_str())
    }

    /// Points a provider's API elsewhere (a local stand-in in tests, an egress proxy).
    pub fn set_api_base_url(&mut self, provider: &str, url: impl Into<String>) {
        self.0.insert(
            provider.to_owned(),
            ProviderApi {
                api_base_url: url.into(),
            },
        );
    }

    /// Every provider is one the gateway knows, and every messaging provider has an API
    /// address (support platforms may leave it empty: each tenant's own).
    fn validate(&self) -> Result<(), (String, String)> {
        for name in self.0.keys() {
            if messaging::provider(name).is_none() && chat::platform(name).is_none() {
                return Err((format!("providers.{name}"), "no such provider".into()));
            }
        }
        let required = messaging::PROVIDERS.iter().map(|p| (p.name, true));
        let optional = chat::names().map(|n| (n, false));
        for (name, required) in required.chain(optional) {
            let url = self.api_base_url(name);
            if url.is_empty() && !required {
                continue;
            }
            match url::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                _ => {
                    return Err((
                        format!("providers.{name}.api_base_url"),
                        format!("`{url}` is not an http(s) URL"),
                    ))
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ProviderApi {
    /// The API's base URL; for Zendesk and Intercom empty means each tenant's own
    /// (`https://{subdomain}.zendesk.com`, Intercom's API for the tenant's hosting region).
    pub api_base_url: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RepliesConfig {
    pub comment_window_minutes: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TenantDefaults {
    pub region: String,
    pub time_zone: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DemoConfig {
    pub create_tenant: bool,
    pub slug: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogConfig {
    pub format: String,
    pub filter: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(Box<figment::Error>),
    #[error("configuration key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

impl Config {
    /// Defaults, then `file` if given, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULTS));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::Invalid {
                    key: "--config".into(),
                    message: format!("file {} does not exist", file.display()),
                });
            }
            figment = figment.merge(Toml::file(file));
        }
        Self::from_figment(figment.merge(Env::prefixed("FEEDBACK_").split("__")))
    }

    /// The compiled-in defaults alone, for tests and tools that set fields themselves.
    pub fn defaults() -> Config {
        Self::from_figment(Figment::from(Toml::string(DEFAULTS)))
            .expect("config/default.toml is valid")
    }

    fn from_figment(figment: Figment) -> Result<Config, ConfigError> {
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Load(Box::new(e)))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| {
            Err(ConfigError::Invalid {
                key: key.to_owned(),
                message,
            })
        };
        if let Err(e) = self.listen.parse::<SocketAddr>() {
            return invalid(
                "listen",
                format!("`{}` is not an address:port ({e})", self.listen),
            );
        }
        match url::Url::parse(&self.public_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                if self.public_url.ends_with('/') || u.query().is_some() {
                    return invalid(
                        "public_url",
                        "give scheme, host and optional port and path, without a trailing slash or query".into(),
                    );
                }
            }
            _ => {
                return invalid(
                    "public_url",
                    format!("`{}` is not an http(s) URL", self.public_url),
                )
            }
        }
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            return invalid("database_url", "expected sqlite:… or postgres://…".into());
        }
        if !(256..=65_536).contains(&self.widget.body_limit_bytes) {
            return invalid("widget.body_limit_bytes", "256 to 65536 bytes".into());
        }
        if self.widget.impression_max_age_hours == 0 {
            return invalid("widget.impression_max_age_hours", "at least 1 hour".into());
        }
        if let Err(e) = channels::email::mailbox(&self.email.from) {
            return invalid("email.from", e.message);
        }
        if !(self.email.per_second > 0.0 && self.email.per_second.is_finite()) {
            return invalid("email.per_second", "a number of messages above 0".into());
        }
        let mut names = std::collections::HashSet::new();
        for (i, sink) in self.sinks.iter().enumerate() {
            let name_ok = !sink.name.is_empty()
                && sink.name.len() <= 64
                && sink
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            // `scoring` is the built-in store's outbox name (forward::scoring).
            if !name_ok || sink.name == "scoring" {
                return invalid(
                    &format!("sinks[{i}].name"),
                    "letters, digits, - and _, and not `scoring` (the built-in store)".into(),
                );
            }
            if !names.insert(sink.name.as_str()) {
                return invalid(
                    &format!("sinks[{i}].name"),
                    format!("`{}` names two sinks", sink.name),
                );
            }
            let token = |s: &str| {
                !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            };
            if !token(&sink.stream) {
                return invalid(
                    &format!("sinks[{i}].stream"),
                    "letters, digits, - and _".into(),
                );
            }
            if !sink.subject_prefix.split('.').all(token) {
                return invalid(
                    &format!("sinks[{i}].subject_prefix"),
                    "dot-separated tokens of letters, digits, - and _".into(),
                );
            }
        }
        if !self.admin_token.is_empty() && self.admin_token.len() < 16 {
            return invalid(
                "admin_token",
                "use at least 16 characters, or leave it empty to disable the admin API".into(),
            );
        }
        if self.database.max_connections == 0 {
            return invalid("database.max_connections", "must be at least 1".into());
        }
        if self.http.body_limit_bytes < 1024 {
            return invalid("http.body_limit_bytes", "must be at least 1024".into());
        }
        if !(1..=30).contains(&self.http.header_read_timeout_seconds) {
            return invalid("http.header_read_timeout_seconds", "must be 1 to 30".into());
        }
        if self.http.request_timeout_ms == 0 {
            return invalid("http.request_timeout_ms", "must be above 0".into());
        }
        let r = &self.rate_limits;
        if r.tenant_per_second == 0 || r.ip_per_second == 0 {
            return invalid(
                "rate_limits.tenant_per_second",
                "tenant_per_second and ip_per_second must be at least 1".into(),
            );
        }
        if r.key_lookup_ip_per_second == 0 {
            return invalid(
                "rate_limits.key_lookup_ip_per_second",
                "must be at least 1".into(),
            );
        }
        if !(1..=1000).contains(&self.ingest.max_batch) {
            return invalid("ingest.max_batch", "must be 1 to 1000".into());
        }
        if !(1..=64).contains(&self.ingest.postgres_writers) {
            return invalid("ingest.postgres_writers", "must be 1 to 64".into());
        }
        if self.outbox.max_attempts < 1 {
            return invalid("outbox.max_attempts", "must be at least 1".into());
        }
        if self.outbox.batch_size == 0 {
            return invalid("outbox.batch_size", "must be at least 1".into());
        }
        if self.outbox.backoff_base_ms == 0
            || self.outbox.backoff_max_ms < self.outbox.backoff_base_ms
        {
            return invalid(
                "outbox.backoff_max_ms",
                "backoff_base_ms must be above 0 and backoff_max_ms at least backoff_base_ms"
                    .into(),
            );
        }
        if !is_region(&self.tenant_defaults.region) {
            return invalid(
                "tenant_defaults.region",
                format!(
                    "`{}` is not an ISO 3166 alpha-2 region",
                    self.tenant_defaults.region
                ),
            );
        }
        if self
            .tenant_defaults
            .time_zone
            .parse::<chrono_tz::Tz>()
            .is_err()
        {
            return invalid(
                "tenant_defaults.time_zone",
                format!(
                    "`{}` is not an IANA time zone",
                    self.tenant_defaults.time_zone
                ),
            );
        }
        if self.dispatch.max_attempts < 1 || self.dispatch.batch_size == 0 {
            return invalid(
                "dispatch.max_attempts",
                "max_attempts and batch_size must be at least 1".into(),
            );
        }
        if let Err(message) = self.policy.validate() {
            return invalid("policy", message);
        }
        if let Err((key, message)) = self.providers.validate() {
            return invalid(&key, message);
        }
        if !matches!(self.log.format.as_str(), "pretty" | "json") {
            return invalid("log.format", "expected \"pretty\" or \"json\"".into());
        }
        if self.demo.create_tenant && channels::vocabulary::check_slug(&self.demo.slug).is_err() {
            return invalid(
                "demo.slug",
                "lowercase letters, digits and dashes, 2–40 long".into(),
            );
        }
        Ok(())
    }
}

fn is_region(region: &str) -> bool {
    region
        .to_ascii_uppercase()
        .parse::<phonenumber::country::Id>()
        .is_ok()
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closure signature
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn defaults_load_and_validate() {
        let c = Config::defaults();
        assert_eq!(c.listen, "127.0.0.1:8080");
        assert!(c.database_url.starts_with("sqlite:"));
    }

    #[test]
    fn environment_overrides_nested_keys() {
        Jail::expect_with(|jail| {
            jail.set_env("FEEDBACK_LISTEN", "0.0.0.0:9999");
            jail.set_env("FEEDBACK_DATABASE_URL", "postgres://u@h/db");
            jail.set_env("FEEDBACK_HTTP__BODY_LIMIT_BYTES", "2048");
            jail.set_env("FEEDBACK_OUTBOUND__ALLOW_PRIVATE_NETWORKS", "true");
            jail.set_env(
                "FEEDBACK_PROVIDERS__TWILIO__API_BASE_URL",
                "http://127.0.0.1:9000",
            );
            let c = Config::load(None).unwrap();
            assert!(c.outbound.allow_private_networks);
            assert_eq!(c.providers.api_base_url("twilio"), "http://127.0.0.1:9000");
            assert_eq!(c.providers.api_base_url("zendesk"), "");
            assert_eq!(c.listen, "0.0.0.0:9999");
            assert_eq!(c.database_url, "postgres://u@h/db");
            assert_eq!(c.http.body_limit_bytes, 2048);
            Ok(())
        });
    }

    #[test]
    fn sinks_come_from_a_configuration_file() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "sinks.toml",
                "[[sinks]]\nname = \"stream\"\nkind = \"nats\"\nurl = \"nats://127.0.0.1:4222\"\n",
            )?;
            let c = Config::load(Some(Path::new("sinks.toml"))).unwrap();
            let sink = &c.sinks[0];
            assert_eq!(
                (sink.kind, sink.url.as_str()),
                (SinkKind::Nats, "nats://127.0.0.1:4222")
            );
            assert_eq!(
                (sink.stream.as_str(), sink.subject_prefix.as_str()),
                ("FEEDBACK", "feedback")
            );
            assert!(!sink.include_personal_data);
            for (bad, key) in [
                ("name = \"scoring\"", "sinks[0].name"),
                ("name = \"a\"\nstream = \"with space\"", "sinks[0].stream"),
                (
                    "name = \"a\"\nsubject_prefix = \"a..b\"",
                    "sinks[0].subject_prefix",
                ),
            ] {
                jail.create_file(
                    "bad.toml",
                    &format!("[[sinks]]\nkind = \"nats\"\nurl = \"nats://h\"\n{bad}\n"),
                )?;
                match Config::load(Some(Path::new("bad.toml"))) {
                    Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key),
                    other => panic!("{bad}: {other:?}"),
                }
            }
            Ok(())
        });
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let cases = [
            (
                "FEEDBACK_HTTP__BODY_LIMIT_BYTES",
                "lots",
                "body_limit_bytes",
            ),
            ("FEEDBACK_LISTEN", "nowhere", "listen"),
            ("FEEDBACK_PUBLIC_URL", "ftp://x", "public_url"),
            ("FEEDBACK_DATABASE_URL", "mysql://x", "database_url"),
            ("FEEDBACK_ADMIN_TOKEN", "short", "admin_token"),
            (
                "FEEDBACK_TENANT_DEFAULTS__TIME_ZONE",
                "Mars/Base",
                "tenant_defaults.time_zone",
            ),
            (
                "FEEDBACK_TENANT_DEFAULTS__REGION",
                "XX",
                "tenant_defaults.region",
            ),
            ("FEEDBACK_LOG__FORMAT", "xml", "log.format"),
            (
                "FEEDBACK_PROVIDERS__TWILIO__API_BASE_URL",
                "api.twilio.com",
                "providers.twilio.api_base_url",
            ),
            (
                "FEEDBACK_OUTBOUND__ALLOW_PRIVATE_NETWORKS",
                "perhaps",
                "allow_private_networks",
            ),
            (
                "FEEDBACK_PROVIDERS__PIGEON__API_BASE_URL",
                "https://pigeon.example",
                "providers.pigeon",
            ),
            (
                "FEEDBACK_PROVIDERS__TWILIO__API_BASE_URL",
                "",
                "providers.twilio.api_base_url",
            ),
        ];
        for (var, value, key) in cases {
            Jail::expect_with(|jail| {
                jail.set_env(var, value);
                let err = Config::load(None).unwrap_err().to_string();
                assert!(err.to_lowercase().contains(key), "{var}={value}: {err}");
                Ok(())
            });
        }
    }
}
