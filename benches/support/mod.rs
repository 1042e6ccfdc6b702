//! What the load benchmarks share: the gateway and a bare axum server as child processes,
//! closed- and open-loop load over loopback, and request bodies signed as each provider signs
//! them.

#![allow(dead_code)] // each benchmark uses part of it

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Database};
use serde_json::{json, Value};

pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A load benchmark's `main`: the bare axum child when started as one, nothing under `cargo
/// test` (which runs benchmarks without `--bench`), else `run` on a multi-threaded runtime.
pub fn bench_main<F: std::future::Future<Output = ()>>(run: impl FnOnce() -> F) {
    if std::env::var("BENCH_ROLE").as_deref() == Ok("bare-axum") {
        return bare_axum();
    }
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run());
}

/// The ceiling: a bare axum handler that parses the same JSON and answers 201. Runs in a
/// child process started with `BENCH_ROLE=bare-axum`.
pub fn bare_axum() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use axum::routing::post;
        let app = axum::Router::new().route(
            "/v1/feedback",
            post(|axum::Json(v): axum::Json<Value>| async move {
                (
                    axum::http::StatusCode::CREATED,
                    axum::Json(json!({"id": uuid::Uuid::now_v7(), "metric": v["metric"]})),
                )
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("listening {}", listener.local_addr().unwrap());
        axum::serve(listener, app).await.unwrap();
    });
}

pub struct Server {
    pub child: Child,
    pub base: String,
    pub key: String,
}

impl Server {
    pub fn peak_rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[allow(clippy::zombie_processes)]
pub fn spawn_bare() -> Server {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("BENCH_ROLE", "bare-axum")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().trim_start_matches("listening ").to_owned();
    Server {
        child,
        base: format!("http://{addr}"),
        key: String::new(),
    }
}

// The child is handed to the caller inside `Server`, which kills and waits for it.
#[allow(clippy::zombie_processes)]
pub fn spawn_gateway(db_url: &str, dir: &std::path::Path) -> Server {
    spawn_gateway_with(db_url, dir, &[])
}

/// The gateway with more settings in its environment.
#[allow(clippy::zombie_processes)]
pub fn spawn_gateway_with(db_url: &str, dir: &std::path::Path, env: &[(&str, &str)]) -> Server {
    // BENCH_GATEWAY: another build of the gateway to measure (an A/B against an older commit).
    let binary = std::env::var("BENCH_GATEWAY")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_feedback-gateway").to_owned());
    let mut child = Command::new(binary)
        .current_dir(dir)
        .env("FEEDBACK_LISTEN", "127.0.0.1:0")
        .env("FEEDBACK_DATABASE_URL", db_url)
        .env("FEEDBACK_LOG__FORMAT", "json")
        .env("FEEDBACK_LOG__FILTER", "warn,feedback_gateway=info")
        .env("FEEDBACK_DEMO__SLUG", "bench")
        // The load comes from one tenant and one address: lift the inbound limits.
        .env("FEEDBACK_RATE_LIMITS__TENANT_PER_SECOND", "10000000")
        .env("FEEDBACK_RATE_LIMITS__TENANT_BURST", "10000000")
        .env("FEEDBACK_RATE_LIMITS__IP_PER_SECOND", "10000000")
        .env("FEEDBACK_RATE_LIMITS__IP_BURST", "10000000")
        .env("FEEDBACK_RATE_LIMITS__HOOK_IP_PER_SECOND", "10000000")
        .env("FEEDBACK_RATE_LIMITS__HOOK_IP_BURST", "10000000")
        .env("FEEDBACK_WIDGET__IP_PER_SECOND", "10000000")
        .env("FEEDBACK_WIDGET__IP_BURST", "10000000")
        .env("FEEDBACK_WIDGET__SITE_PER_SECOND", "10000000")
        .env("FEEDBACK_WIDGET__SITE_BURST", "10000000")
        // The URL Twilio's signatures cover (the bench signs as Twilio would).
        .env("FEEDBACK_PUBLIC_URL", PUBLIC_URL)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut key = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            panic!("gateway exited before listening");
        }
        if let Some(k) = line.split_whitespace().find(|w| w.starts_with("fgw_")) {
            key = k.trim_matches('\'').to_owned();
        }
        if line.contains("feedback-gateway listening") {
            let v: Value = serde_json::from_str(&line).unwrap();
            let addr = v["fields"]["addr"].as_str().unwrap().to_owned();
            std::thread::spawn(move || for _ in reader.lines() {});
            return Server {
                child,
                base: format!("http://{addr}"),
                key,
            };
        }
    }
}

/// An answer through `POST /v1/feedback`, as an integrating application sends it.
pub fn api_answer(i: u64) -> Payload {
    Payload::Json(json!({
        "metric": "nps",
        "score": i % 11,
        "comment": "Quick and friendly help",
        "channel": "sms",
        "contact": {"email": format!("customer{}@example.com", i % 1000)},
        "ticket_ref": format!("T-{i}"),
        "agent_ref": format!("agent-{}", i % 20),
    }))
}

/// What one request carries.
pub enum Payload {
    Json(Value),
    /// A body signed as a provider signs it, with its content type and signature headers.
    Signed {
        content_type: &'static str,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
}

pub struct Outcome {
    pub ok: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub latencies_us: Vec<u64>,
    pub acknowledged: Vec<String>,
    /// The first unexpected answer, to tell why a phase failed.
    pub first_error: Option<String>,
}

impl Outcome {
    fn empty() -> Outcome {
        Outcome {
            ok: 0,
            errors: 0,
            elapsed: Duration::ZERO,
            latencies_us: Vec::new(),
            acknowledged: Vec::new(),
            first_error: None,
        }
    }

    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
    pub fn percentile_ms(&mut self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        self.latencies_us.sort_unstable();
        let idx = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[idx] as f64 / 1000.0
    }
}

/// Sends `make(i)` to `path` and counts answers with `expect` status as successes.
#[allow(clippy::too_many_arguments)]
pub async fn load_on(
    server: &Server,
    path: &str,
    expect: u16,
    make: impl Fn(u64) -> Payload + Send + Sync + 'static,
    clients: u64,
    duration: Duration,
    rate: Option<f64>,
    keep_ids: bool,
) -> Outcome {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients as usize)
        .build()
        .unwrap();
    let make = Arc::new(make);
    // Numbers are never reused across phases: a ticket or message id sent twice would be a
    // redelivery, which is cheaper than the work each phase means to measure.
    let first = LOADS.fetch_add(1, Ordering::Relaxed) * 1_000_000_000;
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..clients {
        let (client, stop, make) = (client.clone(), stop.clone(), make.clone());
        let url = format!("{}{path}", server.base);
        let key = server.key.clone();
        let interval = rate.map(|r| Duration::from_secs_f64(clients as f64 / r));
        tasks.push(tokio::spawn(async move {
            let mut out = Outcome::empty();
            let mut next = Instant::now()
                + interval.map_or(Duration::ZERO, |i| {
                    i.mul_f64(worker as f64 / clients as f64)
                });
            let mut i = first + worker * 1_000_000;
            while !stop.load(Ordering::Relaxed) {
                if let Some(iv) = interval {
                    tokio::time::sleep_until(next.into()).await;
                    next += iv;
                }
                i += 1;
                let sent = Instant::now();
                let request = match make(i) {
                    Payload::Json(v) => client.post(&url).bearer_auth(&key).json(&v),
                    Payload::Signed {
                        content_type,
                        headers,
                        body,
                    } => {
                        let mut request = client
                            .post(&url)
                            .header("content-type", content_type)
                            .body(body);
                        for (name, value) in headers {
                            request = request.header(name, value);
                        }
                        request
                    }
                };
                let resp = request.send().await;
                match resp {
                    Ok(r) if r.status().as_u16() == expect => {
                        let id = if keep_ids {
                            r.json::<Value>()
                                .await
                                .ok()
                                .and_then(|v| v["id"].as_str().map(str::to_owned))
                        } else {
                            let _ = r.bytes().await;
                            None
                        };
                        out.latencies_us.push(sent.elapsed().as_micros() as u64);
                        out.ok += 1;
                        out.acknowledged.extend(id);
                    }
                    Ok(r) => {
                        out.errors += 1;
                        if out.first_error.is_none() {
                            let status = r.status();
                            let body = r.text().await.unwrap_or_default();
                            out.first_error = Some(format!("{status}: {body}"));
                        }
                    }
                    Err(e) => {
                        out.errors += 1;
                        out.first_error.get_or_insert_with(|| e.to_string());
                    }
                }
            }
            out
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = Outcome::empty();
    for t in tasks {
        let o = t.await.unwrap();
        total.ok += o.ok;
        total.errors += o.errors;
        total.latencies_us.extend(o.latencies_us);
        total.acknowledged.extend(o.acknowledged);
        total.first_error = total.first_error.or(o.first_error);
    }
    total.elapsed = started.elapsed();
    total
}

pub struct Figures {
    pub peak: f64,
    pub p50: f64,
    pub p99: f64,
    pub errors: u64,
    /// The first unexpected answer, if any.
    pub first_error: Option<String>,
}

/// Peak with closed-loop clients after a second of warm-up, then latency at half the peak.
pub async fn figures<F>(
    server: &Server,
    path: &str,
    expect: u16,
    make: F,
    clients: u64,
    duration: Duration,
) -> Figures
where
    F: Fn(u64) -> Payload + Send + Sync + Clone + 'static,
{
    let one_second = Duration::from_secs(1);
    let run = |d, rate| load_on(server, path, expect, make.clone(), clients, d, rate, false);
    run(one_second, None).await;
    let peak: Outcome = run(duration, None).await;
    assert!(
        peak.ok > 0,
        "{path}: nothing accepted; first answer: {:?}",
        peak.first_error
    );
    let mut half = run(duration, Some(peak.rate() / 2.0)).await;
    Figures {
        peak: peak.rate(),
        p50: half.percentile_ms(0.50),
        p99: half.percentile_ms(0.99),
        errors: peak.errors + half.errors,
        first_error: peak.first_error.clone().or(half.first_error.clone()),
    }
}

pub const PUBLIC_URL: &str = "https://gateway.example.com";
pub const TWILIO_AUTH_TOKEN: &str = "bench-auth-token";
pub const SMS_HOOK: &str = "/hooks/bench/twilio/sms";
pub const ZENDESK_SECRET: &str = "bench-zendesk-signing-secret";
pub const INTERCOM_SECRET: &str = "bench-intercom-client-secret";

/// A Zendesk trigger webhook for a solved ticket (the README's template), signed now: a new
/// ticket and requester each time, so each schedules a survey.
pub fn zendesk_solved(i: u64) -> Payload {
    let body = json!({
        "ticket_id": format!("{i}"), "status": "Solved",
        "requester_id": format!("{}", 900_000_000 + i),
        "requester_email": format!("requester{i}@example.com"), "requester_phone": "",
        "requester_name": "Bench Customer", "assignee_id": format!("{}", i % 20),
        "group_id": "7", "updated_at": "2026-11-24T10:00:00Z",
        "satisfaction_rating": "Offered", "satisfaction_comment": "",
    })
    .to_string();
    let timestamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let signature = channels::chat::zendesk::signature(ZENDESK_SECRET, &timestamp, body.as_bytes());
    Payload::Signed {
        content_type: "application/json",
        headers: vec![
            (channels::chat::zendesk::SIGNATURE_HEADER, signature),
            (channels::chat::zendesk::TIMESTAMP_HEADER, timestamp),
            (
                channels::chat::zendesk::INVOCATION_HEADER,
                format!("bench-{i}"),
            ),
        ],
        body,
    }
}

/// An Intercom `conversation.rating.added` notification, signed: a new conversation each time,
/// so each becomes a feedback record.
pub fn intercom_rating(i: u64) -> Payload {
    let body = json!({
        "type": "notification_event", "app_id": "bench", "id": format!("notif_{i}"),
        "topic": "conversation.rating.added", "created_at": 1_764_062_000,
        "data": {"type": "notification_event_data", "item": {
            "type": "conversation", "id": format!("{i}"), "admin_assignee_id": i % 20,
            "source": {"author": {"type": "user", "id": format!("u{}", i % 5000),
                                  "email": format!("chatter{}@example.com", i % 5000)}},
            "conversation_rating": {"rating": i % 5 + 1, "remark": "Quick answer",
                                    "created_at": 1_764_062_000}
        }}
    })
    .to_string();
    let signature = channels::chat::intercom::signature(INTERCOM_SECRET, body.as_bytes());
    Payload::Signed {
        content_type: "application/json",
        headers: vec![(channels::chat::intercom::SIGNATURE_HEADER, signature)],
        body,
    }
}

/// `PUT`s a tenant setting (a channel, a survey) before a phase; the phase is meaningless
/// without it.
pub async fn configure(server: &Server, path: &str, body: Value) {
    let resp = reqwest::Client::new()
        .put(format!("{}{path}", server.base))
        .bearer_auth(&server.key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
}

/// An inbound SMS as Twilio posts it to `hook`, signed with `auth_token`.
pub fn twilio_sms(
    hook: &str,
    auth_token: &str,
    sid: &str,
    from: &str,
    to: &str,
    text: &str,
) -> Payload {
    let params: Vec<(String, String)> = [
        ("ToCountry", "DK"),
        ("SmsMessageSid", sid),
        ("NumMedia", "0"),
        ("SmsSid", sid),
        ("SmsStatus", "received"),
        ("Body", text),
        ("FromCountry", "DK"),
        ("To", to),
        ("NumSegments", "1"),
        ("MessageSid", sid),
        ("AccountSid", "AC00000000000000000000000000000001"),
        ("From", from),
        ("ApiVersion", "2010-04-01"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let signature =
        channels::messaging::twilio::signature(auth_token, &format!("{PUBLIC_URL}{hook}"), &params);
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&params)
        .finish();
    Payload::Signed {
        content_type: "application/x-www-form-urlencoded",
        headers: vec![("x-twilio-signature", signature)],
        body,
    }
}

/// A phase's length and the number of clients (BENCH_SECONDS, default 10; BENCH_CLIENTS,
/// default 64).
pub fn phase_settings() -> (Duration, u64) {
    (
        Duration::from_secs(env_or("BENCH_SECONDS", 10)),
        env_or("BENCH_CLIENTS", 64),
    )
}

/// Runs `run` on each database of [`databases`] (`file` names the SQLite one), in a temporary
/// folder it may use too, and drops the PostgreSQL database after.
pub async fn on_each_database<R>(
    file: &str,
    mut run: impl AsyncFnMut(&'static str, &str, &std::path::Path) -> R,
) -> Vec<R> {
    let dir = tempfile::tempdir().unwrap();
    let mut results = Vec::new();
    for database in databases(dir.path(), file).await {
        results.push(run(database.name, &database.url, dir.path()).await);
        database.drop_now().await;
    }
    results
}

/// The bare axum ceiling of this run: its peak, and its latency at half the peak.
pub async fn ceiling(clients: u64, duration: Duration) -> Figures {
    let bare = spawn_bare();
    let ceiling = figures(&bare, "/v1/feedback", 201, api_answer, clients, duration).await;
    bare.kill();
    eprintln!("bare axum: {:.0}/s", ceiling.peak);
    ceiling
}

/// A database a benchmark runs on.
pub struct BenchDatabase {
    pub name: &'static str,
    pub url: String,
    postgres: Option<TempPostgres>,
}

impl BenchDatabase {
    pub async fn drop_now(self) {
        if let Some(postgres) = self.postgres {
            postgres.drop_now().await;
        }
    }
}

/// A SQLite file `file` in `dir`, and a PostgreSQL database of its own when
/// FEEDBACK_TEST_POSTGRES_URL is set.
pub async fn databases(dir: &std::path::Path, file: &str) -> Vec<BenchDatabase> {
    let mut all = vec![BenchDatabase {
        name: "SQLite",
        url: format!("sqlite://{}/{file}?mode=rwc", dir.display()),
        postgres: None,
    }];
    match std::env::var("FEEDBACK_TEST_POSTGRES_URL") {
        Ok(admin_url) => {
            let postgres = TempPostgres::create(&admin_url).await;
            all.push(BenchDatabase {
                name: "PostgreSQL",
                url: postgres.url.clone(),
                postgres: Some(postgres),
            });
        }
        Err(_) => eprintln!("FEEDBACK_TEST_POSTGRES_URL is not set: PostgreSQL run skipped"),
    }
    all
}

/// A database of its own on the PostgreSQL server at `admin_url`, dropped by [`Self::drop_now`].
pub struct TempPostgres {
    admin_url: String,
    name: String,
    pub url: String,
}

impl TempPostgres {
    pub async fn create(admin_url: &str) -> TempPostgres {
        let name = format!("fg_bench_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(admin_url).await.unwrap();
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let mut url = url::Url::parse(admin_url).unwrap();
        url.set_path(&format!("/{name}"));
        TempPostgres {
            admin_url: admin_url.to_owned(),
            name,
            url: url.to_string(),
        }
    }

    pub async fn drop_now(self) {
        let admin = Database::connect(&self.admin_url).await.unwrap();
        admin
            .execute_unprepared(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await
            .unwrap();
    }
}

static LOADS: AtomicU64 = AtomicU64::new(0);
