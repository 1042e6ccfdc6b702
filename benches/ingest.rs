//! Ingest and scheduling throughput over loopback: `cargo bench --bench ingest`.
//!
//! Runs, one after another and each as its own process: a bare axum handler that parses the
//! same JSON and answers 201 (the ceiling of this machine and load generator), the gateway on
//! SQLite, and the gateway on PostgreSQL when FEEDBACK_TEST_POSTGRES_URL is set. For each it
//! measures the peak rate with closed-loop clients, then p50 / p99 latency at half that rate
//! (open loop), and the server's peak RSS. After the SQLite run it kills the gateway with -9 and
//! checks that every answer it acknowledged with 201 is in the database. On each gateway it also
//! measures scheduled invitations per second (manual survey triggers for distinct contacts, each
//! decided and written with its decision log entry), and signed Twilio SMS replies per second
//! through the whole inbound pipeline (signature, parsing, score reading, correlation, one
//! transaction), and signed support-platform webhooks per second (Zendesk solved tickets that
//! each schedule a survey, Intercom ratings that each store a record).
//!
//! Options (environment): BENCH_SECONDS (default 10), BENCH_CLIENTS (default 64).

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{json, Value};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if std::env::var("BENCH_ROLE").as_deref() == Ok("bare-axum") {
        return bare_axum();
    }
    // `cargo bench` passes --bench; `cargo test --benches` would pass nothing useful. Only run
    // the load when invoked as a benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

fn bare_axum() {
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

struct Server {
    child: Child,
    base: String,
    key: String,
}

impl Server {
    fn peak_rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[allow(clippy::zombie_processes)]
fn spawn_bare() -> Server {
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
fn spawn_gateway(db_url: &str, dir: &std::path::Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_feedback-gateway"))
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
        // The URL Twilio's signatures cover (the bench signs as Twilio would).
        .env("FEEDBACK_PUBLIC_URL", PUBLIC_URL)
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

/// What one request carries.
enum Payload {
    Json(Value),
    /// A body signed as a provider signs it, with its content type and signature headers.
    Signed {
        content_type: &'static str,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
}

fn body(i: u64) -> Payload {
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

struct Outcome {
    ok: u64,
    errors: u64,
    elapsed: Duration,
    latencies_us: Vec<u64>,
    acknowledged: Vec<String>,
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
    fn percentile_ms(&mut self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        self.latencies_us.sort_unstable();
        let idx = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[idx] as f64 / 1000.0
    }
}

/// Closed loop: `clients` tasks send as fast as answers come back, for `duration`.
/// Open loop when `rate` is set: requests start on a fixed schedule whatever the answers do.
async fn load(
    server: &Server,
    clients: u64,
    duration: Duration,
    rate: Option<f64>,
    keep_ids: bool,
) -> Outcome {
    load_on(
        server,
        "/v1/feedback",
        201,
        body,
        clients,
        duration,
        rate,
        keep_ids,
    )
    .await
}

/// Sends `make(i)` to `path` and counts answers with `expect` status as successes.
#[allow(clippy::too_many_arguments)]
async fn load_on(
    server: &Server,
    path: &str,
    expect: u16,
    make: fn(u64) -> Payload,
    clients: u64,
    duration: Duration,
    rate: Option<f64>,
    keep_ids: bool,
) -> Outcome {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients as usize)
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..clients {
        let (client, stop) = (client.clone(), stop.clone());
        let url = format!("{}{path}", server.base);
        let key = server.key.clone();
        let interval = rate.map(|r| Duration::from_secs_f64(clients as f64 / r));
        tasks.push(tokio::spawn(async move {
            let mut out = Outcome {
                ok: 0,
                errors: 0,
                elapsed: Duration::ZERO,
                latencies_us: Vec::new(),
                acknowledged: Vec::new(),
            };
            let mut next = Instant::now()
                + interval.map_or(Duration::ZERO, |i| {
                    i.mul_f64(worker as f64 / clients as f64)
                });
            let mut i = worker * 1_000_000;
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
                    _ => out.errors += 1,
                }
            }
            out
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = Outcome {
        ok: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies_us: Vec::new(),
        acknowledged: Vec::new(),
    };
    for t in tasks {
        let o = t.await.unwrap();
        total.ok += o.ok;
        total.errors += o.errors;
        total.latencies_us.extend(o.latencies_us);
        total.acknowledged.extend(o.acknowledged);
    }
    total.elapsed = started.elapsed();
    total
}

fn send_body(i: u64) -> Payload {
    Payload::Json(
        json!({"contact": {"email": format!("invitee{i}@example.com")}, "ticket_ref": format!("T-{i}")}),
    )
}

const PUBLIC_URL: &str = "https://gateway.example.com";
const TWILIO_AUTH_TOKEN: &str = "bench-auth-token";
const SMS_HOOK: &str = "/hooks/bench/twilio/sms";

/// An inbound SMS as Twilio posts it, signed: 5,000 customers, each sending a score, a remark
/// and a word that is neither.
fn sms_reply(i: u64) -> Payload {
    let sid = format!("SM{:032x}", i);
    let from = format!("+45401{:05}", i % 5000);
    let text = ["9", "hurtig og venlig hjælp", "8 - meget god service"][(i % 3) as usize];
    let params: Vec<(String, String)> = [
        ("ToCountry", "DK"),
        ("SmsMessageSid", sid.as_str()),
        ("NumMedia", "0"),
        ("SmsSid", sid.as_str()),
        ("SmsStatus", "received"),
        ("Body", text),
        ("FromCountry", "DK"),
        ("To", "+4578787878"),
        ("NumSegments", "1"),
        ("MessageSid", sid.as_str()),
        ("AccountSid", "AC00000000000000000000000000000001"),
        ("From", from.as_str()),
        ("ApiVersion", "2010-04-01"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let signature = channels::messaging::twilio::signature(
        TWILIO_AUTH_TOKEN,
        &format!("{PUBLIC_URL}{SMS_HOOK}"),
        &params,
    );
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&params)
        .finish();
    Payload::Signed {
        content_type: "application/x-www-form-urlencoded",
        headers: vec![("x-twilio-signature", signature)],
        body,
    }
}

const ZENDESK_SECRET: &str = "bench-zendesk-signing-secret";
const INTERCOM_SECRET: &str = "bench-intercom-client-secret";

/// A Zendesk trigger webhook for a solved ticket (the README's template), signed now: a new
/// ticket and requester each time, so each schedules a survey.
fn zendesk_solved(i: u64) -> Payload {
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
fn intercom_rating(i: u64) -> Payload {
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

/// Support-platform webhooks per second through the server: Zendesk solved tickets (each
/// schedules a survey) and Intercom ratings (each stores a record).
async fn measure_platforms(
    name: &str,
    server: &Server,
    clients: u64,
    duration: Duration,
) -> (f64, f64) {
    for (path, body) in [
        (
            "/v1/channels/zendesk",
            json!({"signing_secret": ZENDESK_SECRET}),
        ),
        (
            "/v1/channels/intercom",
            json!({"client_secret": INTERCOM_SECRET}),
        ),
        (
            "/v1/surveys/bench-ticket-csat",
            json!({"metric": "csat", "question": {"en": "How satisfied are you?"},
                   "channels": ["email"], "trigger": "ticket_closed"}),
        ),
    ] {
        configure(server, path, body).await;
    }
    let closed = load_on(
        server,
        "/hooks/bench/zendesk",
        200,
        zendesk_solved,
        clients,
        duration,
        None,
        false,
    )
    .await;
    let rated = load_on(
        server,
        "/hooks/bench/intercom",
        200,
        intercom_rating,
        clients,
        duration,
        None,
        false,
    )
    .await;
    eprintln!(
        "{name}: {:.0} Zendesk closed tickets/s (errors {}), {:.0} Intercom ratings/s (errors {})",
        closed.rate(),
        closed.errors,
        rated.rate(),
        rated.errors
    );
    assert!(
        closed.ok > 0 && rated.ok > 0,
        "{name}: no platform webhook was accepted"
    );
    (closed.rate(), rated.rate())
}

/// `PUT`s a tenant setting (a channel, a survey) before a phase; the phase is meaningless
/// without it.
async fn configure(server: &Server, path: &str, body: Value) {
    let resp = reqwest::Client::new()
        .put(format!("{}{path}", server.base))
        .bearer_auth(&server.key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
}

/// Signed inbound SMS replies per second, answered 200 with TwiML.
async fn measure_sms(name: &str, server: &Server, clients: u64, duration: Duration) -> f64 {
    configure(
        server,
        "/v1/channels/twilio",
        json!({"account_sid": "AC00000000000000000000000000000001",
               "auth_token": TWILIO_AUTH_TOKEN, "from": "+4578787878"}),
    )
    .await;
    let out = load_on(
        server, SMS_HOOK, 200, sms_reply, clients, duration, None, false,
    )
    .await;
    eprintln!(
        "{name}: {:.0} signed SMS replies/s, errors {}",
        out.rate(),
        out.errors
    );
    assert!(out.ok > 0, "{name}: no signed SMS reply was accepted");
    out.rate()
}

/// Scheduled invitations per second: a CSAT survey triggered for a new contact each time.
async fn measure_scheduling(name: &str, server: &Server, clients: u64, duration: Duration) -> f64 {
    configure(
        server,
        "/v1/surveys/bench-csat",
        json!({"metric": "csat", "question": {"en": "How satisfied are you?"}, "channels": ["email"]}),
    )
    .await;
    let out = load_on(
        server,
        "/v1/surveys/bench-csat/send",
        202,
        send_body,
        clients,
        duration,
        None,
        false,
    )
    .await;
    eprintln!(
        "{name}: {:.0} scheduled invitations/s, errors {}",
        out.rate(),
        out.errors
    );
    out.rate()
}

struct Row {
    name: String,
    peak: f64,
    p50: f64,
    p99: f64,
    rss_mb: f64,
    errors: u64,
}

async fn measure(name: &str, server: &Server, clients: u64, duration: Duration) -> Row {
    // Warm up connections and caches.
    load(server, clients, Duration::from_secs(1), None, false).await;
    let peak = load(server, clients, duration, None, false).await;
    let mut half = load(server, clients, duration, Some(peak.rate() / 2.0), false).await;
    let row = Row {
        name: name.to_owned(),
        peak: peak.rate(),
        p50: half.percentile_ms(0.50),
        p99: half.percentile_ms(0.99),
        rss_mb: server.peak_rss_mb(),
        errors: peak.errors + half.errors,
    };
    eprintln!(
        "{name}: peak {:.0}/s, at half rate p50 {:.2} ms p99 {:.2} ms, peak RSS {:.1} MB, errors {}",
        row.peak, row.p50, row.p99, row.rss_mb, row.errors
    );
    row
}

async fn run() {
    let duration = Duration::from_secs(env_or("BENCH_SECONDS", 10));
    let clients = env_or("BENCH_CLIENTS", 64);
    let mut rows = Vec::new();

    let bare = spawn_bare();
    rows.push(measure("bare axum (ceiling)", &bare, clients, duration).await);
    bare.kill();

    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}/bench.db?mode=rwc", dir.path().display());
    let gw = spawn_gateway(&sqlite_url, dir.path());
    rows.push(measure("gateway, SQLite", &gw, clients, duration).await);
    let mut scheduling = vec![(
        "SQLite",
        measure_scheduling("gateway, SQLite", &gw, clients, duration).await,
    )];
    let mut sms = vec![(
        "SQLite",
        measure_sms("gateway, SQLite", &gw, clients, duration).await,
    )];
    let mut platforms = vec![(
        "SQLite",
        measure_platforms("gateway, SQLite", &gw, clients, duration).await,
    )];
    let kill9 = kill_9_check(gw, &sqlite_url, clients).await;

    if let Ok(admin_url) = std::env::var("FEEDBACK_TEST_POSTGRES_URL") {
        let name = format!("fg_bench_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(&admin_url).await.unwrap();
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let mut url = url::Url::parse(&admin_url).unwrap();
        url.set_path(&format!("/{name}"));
        let gw = spawn_gateway(url.as_str(), dir.path());
        rows.push(measure("gateway, PostgreSQL", &gw, clients, duration).await);
        scheduling.push((
            "PostgreSQL",
            measure_scheduling("gateway, PostgreSQL", &gw, clients, duration).await,
        ));
        sms.push((
            "PostgreSQL",
            measure_sms("gateway, PostgreSQL", &gw, clients, duration).await,
        ));
        platforms.push((
            "PostgreSQL",
            measure_platforms("gateway, PostgreSQL", &gw, clients, duration).await,
        ));
        gw.kill();
        admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .unwrap();
    } else {
        eprintln!("FEEDBACK_TEST_POSTGRES_URL is not set: PostgreSQL run skipped");
    }

    let ceiling = rows[0].peak;
    println!(
        "\n{} s per phase, {clients} clients, loopback, one machine\n",
        duration.as_secs()
    );
    println!("| target | peak req/s | of ceiling | p50 ms @ half | p99 ms @ half | peak RSS MB | errors |");
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {:.0} | {:.1} % | {:.2} | {:.2} | {:.1} | {} |",
            r.name,
            r.peak,
            100.0 * r.peak / ceiling,
            r.p50,
            r.p99,
            r.rss_mb,
            r.errors
        );
    }
    println!("\nkill -9 during SQLite load: {kill9}");
    println!();
    for (db, rate) in &scheduling {
        println!(
            "scheduled invitations on {db}: {rate:.0}/s ({:.1} % of the ceiling)",
            100.0 * rate / ceiling
        );
    }
    for (db, rate) in &sms {
        println!(
            "signed SMS replies on {db}: {rate:.0}/s ({:.1} % of the ceiling)",
            100.0 * rate / ceiling
        );
    }
    for (db, (closed, rated)) in &platforms {
        println!(
            "signed Zendesk closed tickets on {db}: {closed:.0}/s ({:.1} % of the ceiling); \
             signed Intercom ratings: {rated:.0}/s ({:.1} %)",
            100.0 * closed / ceiling,
            100.0 * rated / ceiling
        );
    }
    let decisions = decisions_per_second();
    println!(
        "policy decisions (pure function, one core): {decisions:.0}/s ({:.0}x the ceiling)",
        decisions / ceiling
    );
}

/// Loads the SQLite gateway, kills it with SIGKILL mid-load, and checks every acknowledged id.
async fn kill_9_check(gw: Server, url: &str, clients: u64) -> String {
    let load_task = {
        let server = Server {
            child: Command::new("true").spawn().unwrap(),
            base: gw.base.clone(),
            key: gw.key.clone(),
        };
        tokio::spawn(async move {
            let out = load(&server, clients, Duration::from_secs(3), None, true).await;
            server.kill();
            out
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    gw.kill();
    let out = load_task.await.unwrap();
    let db = Database::connect(url).await.unwrap();
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT id FROM feedback",
        ))
        .await
        .unwrap();
    let stored: HashSet<String> = rows
        .iter()
        .map(|r| r.try_get::<uuid::Uuid>("", "id").unwrap().to_string())
        .collect();
    let lost = out
        .acknowledged
        .iter()
        .filter(|id| !stored.contains(*id))
        .count();
    format!(
        "{} answered 201 before the kill, {} of them missing after it",
        out.acknowledged.len(),
        lost
    )
}

/// The pure decision function alone, against a history of 50 earlier invitations (outside the
/// rest period and window, so every rule is evaluated and the answer is to schedule).
fn decisions_per_second() -> f64 {
    use channels::vocabulary::InvitationStatus;
    use feedback_gateway::policy::decision::{decide, Contact, Past, Survey, Trigger};
    use feedback_gateway::policy::{Policy, PolicyOverrides};
    let config = feedback_gateway::config::Config::defaults();
    let policy = Policy::resolve(
        &config.policy,
        channels::model::Metric::Csat,
        &PolicyOverrides::default(),
    );
    let now: chrono::DateTime<chrono::Utc> = "2026-11-24T10:00:00Z".parse().unwrap();
    let history: Vec<Past> = (0..50)
        .map(|i| Past {
            survey_key: format!("s{}", i % 3),
            metric: channels::model::Metric::Csat,
            ticket_ref: Some(format!("T-{i}")),
            status: InvitationStatus::Sent,
            at: now - chrono::Duration::days(31 + i),
        })
        .collect();
    let channels = vec!["sms".to_owned(), "email".to_owned()];
    let survey = Survey {
        key: "s1",
        metric: channels::model::Metric::Csat,
        channels: &channels,
        policy: &policy,
    };
    let contact = Contact {
        id: uuid::Uuid::from_u128(7),
        reachable: vec!["email".into()],
        opt_outs: vec![],
        time_zone: chrono_tz::Europe::Copenhagen,
    };
    let n = 200_000;
    let started = Instant::now();
    let mut scheduled = 0;
    for i in 0..n {
        let trigger = Trigger {
            ticket_ref: Some(if i % 2 == 0 { "T-new" } else { "T-3" }),
            now,
        };
        if matches!(
            std::hint::black_box(decide(&contact, &history, &survey, &trigger)),
            feedback_gateway::policy::decision::Decision::Schedule { .. }
        ) {
            scheduled += 1;
        }
    }
    assert!(scheduled > 0);
    n as f64 / started.elapsed().as_secs_f64()
}
