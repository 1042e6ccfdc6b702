//! Test harness: the real server on a random port, on a fresh SQLite file or a fresh
//! PostgreSQL database, spoken to over HTTP.
#![allow(dead_code)]

pub mod binary;
pub mod fake_intercom;
pub mod fake_twilio;
pub mod fake_zendesk;
pub mod schemas;
pub mod smtp;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use feedback_gateway::config::Config;
use feedback_gateway::events::Event;
use feedback_gateway::forward::relay::Relay;
use feedback_gateway::forward::{Sink, SinkError};
use feedback_gateway::store::Db;
use feedback_gateway::App;
use reqwest::{Method, StatusCode};
pub use sea_orm::ConnectionTrait as _;
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs the test body on SQLite, and on PostgreSQL when FEEDBACK_TEST_POSTGRES_URL is set.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    if $crate::common::postgres_url().is_none() {
                        eprintln!("FEEDBACK_TEST_POSTGRES_URL is not set: PostgreSQL run skipped");
                        return;
                    }
                    super::$name($crate::common::Backend::Postgres).await
                }
            }
        )*
    };
}

pub fn postgres_url() -> Option<String> {
    std::env::var("FEEDBACK_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// A database that exists for one test only.
pub enum TestDb {
    Sqlite(tempfile::TempDir, String),
    Postgres {
        admin_url: String,
        name: String,
        url: String,
    },
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}/gateway.db?mode=rwc", dir.path().display());
                TestDb::Sqlite(dir, url)
            }
            Backend::Postgres => {
                let admin_url = postgres_url().expect("FEEDBACK_TEST_POSTGRES_URL");
                let name = format!("fg_test_{}", uuid::Uuid::new_v4().simple());
                let admin = Database::connect(&admin_url)
                    .await
                    .expect("PostgreSQL at FEEDBACK_TEST_POSTGRES_URL answers");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .unwrap();
                admin.close().await.unwrap();
                let url = replace_database(&admin_url, &name);
                TestDb::Postgres {
                    admin_url,
                    name,
                    url,
                }
            }
        }
    }

    pub fn url(&self) -> &str {
        match self {
            TestDb::Sqlite(_, url) => url,
            TestDb::Postgres { url, .. } => url,
        }
    }

    pub async fn drop_database(&self) {
        if let TestDb::Postgres {
            admin_url, name, ..
        } = self
        {
            if let Ok(admin) = Database::connect(admin_url).await {
                let _ = admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
                let _ = admin.close().await;
            }
        }
    }

    /// Runs SQL as the superuser on the test database's server (PostgreSQL only).
    pub async fn admin_sql(&self, sql: &str) {
        if let TestDb::Postgres { admin_url, .. } = self {
            let admin = Database::connect(admin_url).await.unwrap();
            admin
                .execute_raw(Statement::from_string(admin.get_database_backend(), sql))
                .await
                .unwrap();
            admin.close().await.unwrap();
        }
    }
}

fn replace_database(url: &str, name: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("FEEDBACK_TEST_POSTGRES_URL is a URL");
    parsed.set_path(&format!("/{name}"));
    parsed.to_string()
}

/// With RUST_LOG set, the gateway's logs go to the test's output (shown for failing tests).
fn init_test_logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

pub fn test_config(database_url: &str) -> Config {
    let mut config = Config::defaults();
    config.database_url = database_url.to_owned();
    config.listen = "127.0.0.1:0".into();
    config.admin_token = ADMIN_TOKEN.into();
    config.demo.create_tenant = false;
    // Provider stand-ins listen on loopback.
    config.outbound.allow_private_networks = true;
    config.outbox.backoff_base_ms = 1;
    config.outbox.backoff_max_ms = 5;
    config.outbox.poll_interval_ms = 50;
    config.database.acquire_timeout_ms = 2000;
    config.dispatch.poll_interval_ms = 50;
    config.dispatch.backoff_base_ms = 1;
    config.dispatch.backoff_max_ms = 5;
    // Survey e-mails of tenants without an SMTP server go to files: not into the checkout.
    config.email.file_dir = std::env::temp_dir()
        .join(format!("feedback-gateway-test-mail-{}", std::process::id()))
        .to_string_lossy()
        .into_owned();
    config
}

pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    pub relay: Relay,
    pub dispatcher: feedback_gateway::dispatch::dispatcher::Dispatcher,
    pub sweeper: feedback_gateway::alerts::sweep::Sweeper,
    pub db: Db,
    pub test_db: TestDb,
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// A replica started by [`TestServer::replica_with`]; stopped with `shutdown`.
pub struct Replica {
    pub base: String,
    pub relay: Relay,
    pub sweeper: feedback_gateway::alerts::sweep::Sweeper,
    pub shutdown: CancellationToken,
}

impl TestServer {
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_with(backend, |_| {}, vec![]).await
    }

    pub async fn start_with(
        backend: Backend,
        tweak: impl FnOnce(&mut Config),
        extra_sinks: Vec<Arc<dyn Sink>>,
    ) -> TestServer {
        let extensions = feedback_gateway::Extensions {
            sinks: extra_sinks,
            ..Default::default()
        };
        Self::start_with_extensions(backend, tweak, extensions).await
    }

    pub async fn start_with_extensions(
        backend: Backend,
        tweak: impl FnOnce(&mut Config),
        extensions: feedback_gateway::Extensions,
    ) -> TestServer {
        init_test_logs();
        let test_db = TestDb::new(backend).await;
        let mut config = test_config(test_db.url());
        tweak(&mut config);
        let app = App::build_with(config, extensions).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let relay = app.relay.clone();
        let dispatcher = app.dispatcher.clone();
        let sweeper = app.sweeper.clone();
        let db = app.db.clone();
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(app.serve(listener, shutdown.clone()));
        TestServer {
            base,
            client: reqwest::Client::new(),
            relay,
            dispatcher,
            sweeper,
            db,
            test_db,
            shutdown,
            handle,
        }
    }

    /// A second gateway process on the same database (as a replica would be), serving on its
    /// own port. Returns its base URL and a handle that stops it.
    pub async fn replica(&self) -> (String, CancellationToken) {
        let config = test_config(self.test_db.url());
        let app = App::build(config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        tokio::spawn(app.serve(listener, shutdown.clone()));
        (base, shutdown)
    }

    /// A second gateway process on the same database with the test's configuration changes and
    /// extensions (a shared test clock, say).
    pub async fn replica_with(
        &self,
        tweak: impl FnOnce(&mut Config),
        extensions: feedback_gateway::Extensions,
    ) -> Replica {
        let mut config = test_config(self.test_db.url());
        tweak(&mut config);
        let app = App::build_with(config, extensions).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let replica = Replica {
            base,
            relay: app.relay.clone(),
            sweeper: app.sweeper.clone(),
            shutdown: shutdown.clone(),
        };
        tokio::spawn(app.serve(listener, shutdown));
        replica
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.handle).await;
        self.test_db.drop_database().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The tenant's invitation `id`, as `GET /v1/invitations` shows it.
    pub async fn invitation(&self, key: &str, id: &Value) -> Value {
        let (_, list) = self.get("/v1/invitations?limit=500", key).await;
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == *id)
            .cloned()
            .unwrap_or_else(|| panic!("no invitation {id}"))
    }

    /// The id of the tenant with `slug`.
    pub async fn tenant_id(&self, slug: &str) -> uuid::Uuid {
        use sea_orm::ConnectionTrait;
        let backend = self.db.backend();
        let sql = match backend {
            sea_orm::DbBackend::Postgres => "SELECT id FROM tenants WHERE slug = $1",
            _ => "SELECT id FROM tenants WHERE slug = ?",
        };
        let row = self
            .db
            .read
            .query_one_raw(sea_orm::Statement::from_sql_and_values(
                backend,
                sql,
                [slug.into()],
            ))
            .await
            .unwrap()
            .expect("the tenant exists");
        row.try_get("", "id").unwrap()
    }

    /// Creates a tenant through the admin API and returns its API key.
    pub async fn tenant(&self, slug: &str) -> String {
        let (status, body) = self
            .send(
                Method::POST,
                "/admin/v1/tenants",
                Some(ADMIN_TOKEN),
                Some(serde_json::json!({"slug": slug})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["api_key"].as_str().unwrap().to_owned()
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        json: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        if let Some(body) = json {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// PUTs a tenant's resource (a channel's settings, a survey) and expects it to be taken.
    pub async fn put_ok(&self, key: &str, path: &str, json: Value) -> Value {
        let (status, body) = self.send(Method::PUT, path, Some(key), Some(json)).await;
        assert!(status.is_success(), "PUT {path}: {status} {body}");
        body
    }

    /// The Prometheus text of `GET /metrics`.
    pub async fn metrics(&self) -> String {
        let (status, text) = self.send(Method::GET, "/metrics", None, None).await;
        assert_eq!(status, StatusCode::OK);
        text.as_str().unwrap_or_default().to_owned()
    }

    pub async fn get(&self, path: &str, key: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, Some(key), None).await
    }

    pub async fn post(&self, path: &str, key: &str, json: Value) -> (StatusCode, Value) {
        self.send(Method::POST, path, Some(key), Some(json)).await
    }

    /// Submits feedback and expects it to be stored.
    pub async fn feedback(&self, key: &str, json: Value) -> Value {
        let (status, body) = self.post("/v1/feedback", key, json).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Delivers every due outbox row, so scores reflect all accepted feedback.
    pub async fn drain(&self) {
        self.relay.drain().await.unwrap();
    }

    /// Waits until the outbox is empty: every queued event delivered or dead-lettered, also by
    /// the server's background relay, which may hold rows this process's drain skips.
    pub async fn settle(&self) {
        for _ in 0..500 {
            self.drain().await;
            if self.count("outbox").await == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the outbox did not empty");
    }

    /// Counts rows of a table, straight from the database.
    pub async fn count(&self, table: &str) -> i64 {
        self.count_where(&format!("SELECT COUNT(*) AS n FROM {table}"))
            .await
    }

    /// Runs a `SELECT COUNT(*) AS n …` straight on the database.
    pub async fn count_where(&self, sql: &str) -> i64 {
        let row = self
            .db
            .read
            .query_one_raw(Statement::from_string(self.db.backend(), sql.to_owned()))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap()
    }

    /// POSTs raw bytes as a provider would, with its headers; the answer as JSON (or a string).
    pub async fn post_raw<K: AsRef<str>, V: AsRef<str>>(
        &self,
        path: &str,
        content_type: &str,
        headers: &[(K, V)],
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body);
        for (k, v) in headers {
            req = req.header(k.as_ref(), v.as_ref());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

impl TestServer {
    /// POSTs a form to a Twilio hook, signed with `auth_token` for `public_url` + `path`, as
    /// Twilio signs it.
    pub async fn post_twilio(
        &self,
        public_url: &str,
        path: &str,
        auth_token: &str,
        params: &[(String, String)],
    ) -> (StatusCode, Value) {
        let signature = channels::messaging::twilio::signature(
            auth_token,
            &format!("{public_url}{path}"),
            params,
        );
        self.post_raw(
            path,
            "application/x-www-form-urlencoded",
            &[("x-twilio-signature".to_owned(), signature)],
            fake_twilio::form(params).into_bytes(),
        )
        .await
    }
}

/// Serves a provider stand-in on a loopback port; its base URL.
pub async fn serve_on_loopback(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// A platform's payload from `tests/fixtures/platforms/` (each file names its source).
pub fn platform_fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/platforms/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The headers `platform` signs a delivery with, signed with `secret` at `at` (for Freshdesk,
/// whose credential is a password, `secret` is `user:password`). An empty `delivery` leaves out
/// the platform's unsigned delivery-id header.
pub fn signed_headers(
    platform: &str,
    secret: &str,
    body: &[u8],
    delivery: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Vec<(String, String)> {
    use channels::chat::{chatwoot, generic, intercom, zendesk};
    let h = |k: &str, v: String| (k.to_owned(), v);
    let mut headers = match platform {
        "zendesk" => {
            let ts = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            vec![
                h(
                    zendesk::SIGNATURE_HEADER,
                    zendesk::signature(secret, &ts, body),
                ),
                h(zendesk::TIMESTAMP_HEADER, ts),
            ]
        }
        "intercom" => vec![h(
            intercom::SIGNATURE_HEADER,
            intercom::signature(secret, body),
        )],
        "chatwoot" => {
            let ts = at.timestamp().to_string();
            vec![
                h(
                    chatwoot::SIGNATURE_HEADER,
                    chatwoot::signature(secret, &ts, body),
                ),
                h(chatwoot::TIMESTAMP_HEADER, ts),
            ]
        }
        "freshdesk" => {
            use base64::Engine;
            let basic = base64::engine::general_purpose::STANDARD.encode(secret);
            vec![h("authorization", format!("Basic {basic}"))]
        }
        "generic" => {
            let ts = at.timestamp().to_string();
            let key = generic::secret_key(secret).unwrap();
            vec![
                h(
                    "webhook-signature",
                    generic::signature(&key, delivery, &ts, body),
                ),
                h("webhook-id", delivery.to_owned()),
                h("webhook-timestamp", ts),
            ]
        }
        other => panic!("no signing for {other}"),
    };
    let delivery_header = match platform {
        "zendesk" => Some(zendesk::INVOCATION_HEADER),
        "chatwoot" => Some(chatwoot::DELIVERY_HEADER),
        _ => None,
    };
    if let (Some(name), false) = (delivery_header, delivery.is_empty()) {
        headers.push(h(name, delivery.to_owned()));
    }
    headers
}

/// A sink that keeps the type and record id of every event it is given.
#[derive(Default)]
pub struct EventTypes(pub Mutex<Vec<(String, String)>>);

#[async_trait::async_trait]
impl Sink for EventTypes {
    fn name(&self) -> &'static str {
        "event-types"
    }

    async fn deliver(&self, event: &Event) -> Result<(), SinkError> {
        self.0
            .lock()
            .unwrap()
            .push((event.event_type.clone(), event.aggregate_id.to_string()));
        Ok(())
    }
}

/// Asserts a problem+json answer with the given status and type suffix.
pub fn assert_problem(status: StatusCode, body: &Value, want_status: u16, want_kind: &str) {
    assert_eq!(status.as_u16(), want_status, "{body}");
    assert_eq!(
        body["type"].as_str().unwrap_or_default(),
        format!("urn:feedback-gateway:problem:{want_kind}"),
        "{body}"
    );
    assert_eq!(body["status"], want_status, "{body}");
}
