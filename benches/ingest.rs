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
//! each schedule a survey, Intercom ratings that each store a record), and anonymous web
//! widget answers per second through the public endpoint.
//!
//! Options (environment): BENCH_SECONDS (default 10), BENCH_CLIENTS (default 64).

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::json;

mod support;

use support::{
    api_answer, configure, env_or, intercom_rating, load_on, spawn_bare, spawn_gateway, twilio_sms,
    zendesk_solved, Outcome, Payload, Server, TempPostgres, INTERCOM_SECRET, TWILIO_AUTH_TOKEN,
    ZENDESK_SECRET,
};

fn main() {
    support::bench_main(run);
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
        api_answer,
        clients,
        duration,
        rate,
        keep_ids,
    )
    .await
}

fn send_body(i: u64) -> Payload {
    Payload::Json(
        json!({"contact": {"email": format!("invitee{i}@example.com")}, "ticket_ref": format!("T-{i}")}),
    )
}

const SMS_HOOK: &str = "/hooks/bench/twilio/sms";

/// An inbound SMS as Twilio posts it, signed: 5,000 customers, each sending a score, a remark
/// and a word that is neither.
fn sms_reply(i: u64) -> Payload {
    let text = ["9", "hurtig og venlig hjælp", "8 - meget god service"][(i % 3) as usize];
    twilio_sms(
        SMS_HOOK,
        TWILIO_AUTH_TOKEN,
        &format!("SM{i:032x}"),
        &format!("+45401{:05}", i % 5000),
        "+4578787878",
        text,
    )
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

/// Anonymous widget answers per second through `POST /w/{site_key}/feedback`, each under its
/// own impression from the site's allowed origin. The impressions are minted here with the
/// site's secret, dated two seconds back (past the least time to answer), as the eligibility
/// endpoint issues them; the answer path is what is measured.
async fn measure_widget(name: &str, server: &Server, clients: u64, duration: Duration) -> f64 {
    configure(
        server,
        "/v1/surveys/bench-web",
        json!({"metric": "nps", "question": {"en": "How likely are you to recommend us?"},
               "channels": ["widget"]}),
    )
    .await;
    let site: serde_json::Value = reqwest::Client::new()
        .put(format!("{}/v1/sites/bench", server.base))
        .bearer_auth(&server.key)
        .json(
            &json!({"allowed_origins": [WIDGET_ORIGIN], "survey": "bench-web",
                      "display": {"delay_seconds": 0}}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let site_key = site["site_key"].as_str().expect("a site").to_owned();
    let secret = site["secret"].as_str().expect("its secret").to_owned();
    let out = load_on(
        server,
        &format!("/w/{site_key}/feedback"),
        201,
        move |i| widget_answer(&secret, i),
        clients,
        duration,
        None,
        false,
    )
    .await;
    eprintln!(
        "{name}: {:.0} widget answers/s, errors {} {}",
        out.rate(),
        out.errors,
        out.first_error.as_deref().unwrap_or("")
    );
    assert!(out.ok > 0, "{name}: no widget answer was accepted");
    out.rate()
}

const WIDGET_ORIGIN: &str = "https://shop.bench.example";

fn widget_answer(secret: &str, i: u64) -> Payload {
    use channels::widget::token::{sign_impression, Audience};
    let shown = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        - Duration::from_secs(2);
    let id = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        shown.as_secs(),
        shown.subsec_nanos(),
    ));
    let body = json!({
        "impression": sign_impression(secret.as_bytes(), id, Audience::Anonymous),
        "score": i % 11,
        "comment": "Easy to find what I needed",
        "page": "/checkout/done",
        "language": "en",
        "website": "",
    });
    Payload::Signed {
        content_type: "application/json",
        headers: vec![("origin", WIDGET_ORIGIN.to_owned())],
        body: body.to_string(),
    }
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
    let mut widget = vec![(
        "SQLite",
        measure_widget("gateway, SQLite", &gw, clients, duration).await,
    )];
    let kill9 = kill_9_check(gw, &sqlite_url, clients).await;

    if let Ok(admin_url) = std::env::var("FEEDBACK_TEST_POSTGRES_URL") {
        let database = TempPostgres::create(&admin_url).await;
        let gw = spawn_gateway(&database.url, dir.path());
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
        widget.push((
            "PostgreSQL",
            measure_widget("gateway, PostgreSQL", &gw, clients, duration).await,
        ));
        gw.kill();
        database.drop_now().await;
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
    for (db, rate) in &widget {
        println!(
            "widget answers on {db}: {rate:.0}/s ({:.1} % of the ceiling)",
            100.0 * rate / ceiling
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
