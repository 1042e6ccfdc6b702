//! Cost as the data grows: `cargo bench --bench scale` (PostgreSQL too when
//! FEEDBACK_TEST_POSTGRES_URL is set).
//!
//! Each hot inbound path is measured twice on the same gateway and database: first with tables
//! that hold little more than the open invitations the SMS replies answer, then after a bulk
//! loader (plain multi-row inserts, not the API) has added 1,000,000 feedback records, their raw
//! events, 1,000,000 invitations and 200,000 contacts across 10 tenants, the benchmark's own
//! tenant among them. The paths:
//!
//! - signed Twilio SMS replies, each correlating to an open invitation of its sender (a score,
//!   so the invitation is answered and a record written);
//! - signed Zendesk "ticket solved" webhooks, each scheduling a survey for a new requester;
//! - signed Intercom ratings, each a record;
//! - generic answers through `POST /v1/feedback` (group commit).
//!
//! For each: the peak rate with closed-loop clients, then p50 / p99 latency at half that rate
//! (open loop); beside them a bare axum handler's peak in the same run (the ceiling of this
//! machine and load generator), the growth factor (loaded / empty), the gateway's start-to-ready
//! time on the loaded database and its peak RSS.
//!
//! Options (environment): BENCH_SECONDS (default 10), BENCH_CLIENTS (default 64), BENCH_ROWS
//! (default 1,000,000 feedback records and invitations; contacts are a fifth of it),
//! BENCH_GATEWAY (another build of the gateway binary to measure, for an A/B against an older
//! commit).

use std::time::{Duration, Instant};

use chrono::Utc;
use feedback_gateway::store::batch::insert_sql;
use feedback_gateway::store::placeholders;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement, Value};
use serde_json::json;
use uuid::Uuid;

mod support;

use support::{
    api_answer, ceiling, configure, env_or, figures, intercom_rating, on_each_database,
    phase_settings, spawn_gateway_with, twilio_sms, zendesk_solved, Figures, Payload, Server,
    INTERCOM_SECRET, TWILIO_AUTH_TOKEN, ZENDESK_SECRET,
};

const TENANTS: usize = 10;
/// Customers with an open SMS survey, per phase: more than a phase's replies, so most replies
/// are a first answer.
const OPEN_PER_PHASE: u64 = 40_000;
const SMS_HOOK: &str = "/hooks/bench/twilio/sms";
const SENDING_NUMBER: &str = "+4578787878";
const SMS_SURVEY: &str = "bench-sms-csat";

fn main() {
    support::bench_main(run);
}

fn customer_phone(n: u64) -> String {
    format!("+45401{n:05}")
}

/// The n-th phase's SMS replies: each customer of the phase answers their open survey.
fn sms_answer(phase: u64) -> impl Fn(u64) -> Payload + Send + Sync + Clone + 'static {
    move |i| {
        // Spread over the phase's customers: the load's numbers count up per client from
        // multiples of a million, which would have every client text the same few customers.
        let spread = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20;
        let customer = phase * OPEN_PER_PHASE + spread % OPEN_PER_PHASE;
        let text = ["5", "4 - hurtig hjælp", "3"][(i % 3) as usize];
        twilio_sms(
            SMS_HOOK,
            TWILIO_AUTH_TOKEN,
            &format!("SM{i:032x}"),
            &customer_phone(customer),
            SENDING_NUMBER,
            text,
        )
    }
}

const PATHS: [&str; 4] = [
    "signed SMS replies to open invitations",
    "Zendesk solved tickets scheduling a survey",
    "Intercom ratings",
    "POST /v1/feedback",
];

async fn measure_paths(server: &Server, phase: u64, clients: u64, d: Duration) -> Vec<Figures> {
    let all = vec![
        figures(server, SMS_HOOK, 200, sms_answer(phase), clients, d).await,
        figures(
            server,
            "/hooks/bench/zendesk",
            200,
            zendesk_solved,
            clients,
            d,
        )
        .await,
        figures(
            server,
            "/hooks/bench/intercom",
            200,
            intercom_rating,
            clients,
            d,
        )
        .await,
        figures(server, "/v1/feedback", 201, api_answer, clients, d).await,
    ];
    for (name, f) in PATHS.iter().zip(&all) {
        eprintln!(
            "  {name}: {:.0}/s, p50 {:.2} ms, p99 {:.2} ms at half rate, errors {}{}",
            f.peak,
            f.p50,
            f.p99,
            f.errors,
            f.first_error
                .as_deref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        );
    }
    all
}

async fn configure_tenant(server: &Server) {
    for (path, body) in [
        (
            "/v1/channels/twilio",
            json!({"account_sid": "AC00000000000000000000000000000001",
                   "auth_token": TWILIO_AUTH_TOKEN, "from": SENDING_NUMBER}),
        ),
        (
            "/v1/channels/zendesk",
            json!({"signing_secret": ZENDESK_SECRET}),
        ),
        (
            "/v1/channels/intercom",
            json!({"client_secret": INTERCOM_SECRET}),
        ),
        (
            &format!("/v1/surveys/{SMS_SURVEY}"),
            json!({"metric": "csat", "question": {"da": "Hvor tilfreds er du?"},
                   "channels": ["sms"]}),
        ),
        (
            "/v1/surveys/bench-ticket-csat",
            json!({"metric": "csat", "question": {"en": "How satisfied are you?"},
                   "channels": ["email"], "trigger": "ticket_closed"}),
        ),
    ] {
        configure(server, path, body).await;
    }
}

/// Multi-row inserts of `rows`, as many per statement as the databases' parameter limits allow.
async fn bulk_insert(
    db: &DatabaseConnection,
    table: &str,
    columns: &[&str],
    rows: impl Iterator<Item = Vec<Value>>,
) {
    let backend = db.get_database_backend();
    let per_statement = 30_000 / columns.len();
    let mut rows = rows.peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Value>> = rows.by_ref().take(per_statement).collect();
        let sql = placeholders(backend, &insert_sql(table, columns, chunk.len(), ""));
        let values: Vec<Value> = chunk.into_iter().flatten().collect();
        db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await
            .unwrap();
    }
}

async fn tenant_id(db: &DatabaseConnection, slug: &str) -> Uuid {
    db.query_one_raw(Statement::from_string(
        db.get_database_backend(),
        format!("SELECT id FROM tenants WHERE slug = '{slug}'"),
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get("", "id")
    .unwrap()
}

/// Contacts, each with one identity of `kind`.
async fn insert_contacts(
    db: &DatabaseConnection,
    tenant: Uuid,
    kind: &str,
    people: &[(Uuid, String)],
) {
    let now = Utc::now();
    bulk_insert(
        db,
        "contacts",
        &["id", "tenant_id", "opt_outs", "created_at", "updated_at"],
        people.iter().map(|(c, _)| {
            vec![
                (*c).into(),
                tenant.into(),
                json!([]).into(),
                now.into(),
                now.into(),
            ]
        }),
    )
    .await;
    bulk_insert(
        db,
        "contact_identities",
        &[
            "id",
            "tenant_id",
            "contact_id",
            "kind",
            "value",
            "status",
            "created_at",
        ],
        people.iter().map(|(c, value)| {
            vec![
                Uuid::now_v7().into(),
                tenant.into(),
                (*c).into(),
                kind.into(),
                value.as_str().into(),
                "valid".into(),
                now.into(),
            ]
        }),
    )
    .await;
}

/// The customers both phases' replies come from, each with an SMS survey sent an hour ago.
async fn load_open_invitations(db: &DatabaseConnection, tenant: Uuid) {
    let now = Utc::now();
    let customers: Vec<(u64, Uuid)> = (0..2 * OPEN_PER_PHASE)
        .map(|n| (n, Uuid::now_v7()))
        .collect();
    let people: Vec<(Uuid, String)> = customers
        .iter()
        .map(|(n, c)| (*c, customer_phone(*n)))
        .collect();
    insert_contacts(db, tenant, "phone", &people).await;
    let sent = now - chrono::Duration::hours(1);
    bulk_insert(
        db,
        "invitations",
        &[
            "id",
            "tenant_id",
            "survey_key",
            "contact_id",
            "channel",
            "language",
            "status",
            "send_at",
            "sent_at",
            "expires_at",
            "created_at",
            "updated_at",
            "metric",
            "attempts",
            "address",
            "sender",
        ],
        customers.iter().map(|(n, c)| {
            vec![
                Uuid::now_v7().into(),
                tenant.into(),
                SMS_SURVEY.into(),
                (*c).into(),
                "sms".into(),
                "da".into(),
                "sent".into(),
                sent.into(),
                sent.into(),
                (now + chrono::Duration::days(7)).into(),
                sent.into(),
                sent.into(),
                "csat".into(),
                1i32.into(),
                customer_phone(*n).into(),
                SENDING_NUMBER.into(),
            ]
        }),
    )
    .await;
}

/// `rows` feedback records (each with its raw event) and invitations, and a fifth as many
/// contacts, spread over `tenants`, dated over the last 400 days.
async fn load_history(db: &DatabaseConnection, tenants: &[Uuid], rows: u64) {
    let now = Utc::now();
    let contacts_per_tenant = (rows / 5) / tenants.len() as u64;
    let surveys = [SMS_SURVEY, "bench-ticket-csat", "quarterly-nps"];
    for (t, tenant) in tenants.iter().enumerate() {
        let contacts: Vec<Uuid> = (0..contacts_per_tenant).map(|_| Uuid::now_v7()).collect();
        let people: Vec<(Uuid, String)> = contacts
            .iter()
            .enumerate()
            .map(|(n, c)| (*c, format!("history{t}-{n}@example.com")))
            .collect();
        insert_contacts(db, *tenant, "email", &people).await;
        // Five invitations per contact, each answered by one record with its raw event.
        let history: Vec<(u64, Uuid, Uuid, Uuid, chrono::DateTime<Utc>)> = (0..contacts_per_tenant
            * 5)
            .map(|n| {
                let at = now - chrono::Duration::minutes((n as i64 * 37) % (400 * 24 * 60));
                (n, Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), at)
            })
            .collect();
        let contact_of = |n: u64| contacts[(n % contacts_per_tenant) as usize];
        bulk_insert(
            db,
            "invitations",
            &[
                "id",
                "tenant_id",
                "survey_key",
                "contact_id",
                "channel",
                "ticket_ref",
                "language",
                "status",
                "sent_at",
                "answered_at",
                "expires_at",
                "created_at",
                "updated_at",
                "metric",
                "attempts",
            ],
            history.iter().map(|(n, inv, _, _, at)| {
                vec![
                    (*inv).into(),
                    (*tenant).into(),
                    surveys[(*n % 3) as usize].into(),
                    contact_of(*n).into(),
                    ["sms", "email"][(*n % 2) as usize].into(),
                    format!("H-{n}").into(),
                    "da".into(),
                    ["answered", "expired"][(*n % 2) as usize].into(),
                    (*at).into(),
                    (*at).into(),
                    (*at + chrono::Duration::days(7)).into(),
                    (*at).into(),
                    (*at).into(),
                    "csat".into(),
                    1i32.into(),
                ]
            }),
        )
        .await;
        bulk_insert(
            db,
            "raw_events",
            &[
                "id",
                "tenant_id",
                "provider",
                "provider_ref",
                "kind",
                "body_sha256",
                "payload",
                "outcome",
                "received_at",
            ],
            history.iter().map(|(n, _, _, raw, at)| {
                vec![
                    (*raw).into(),
                    (*tenant).into(),
                    "twilio".into(),
                    format!("SMhistory{n:026}").into(),
                    "twilio.sms".into(),
                    format!("{n:064x}").into(),
                    "Body=4".into(),
                    "accepted".into(),
                    (*at).into(),
                ]
            }),
        )
        .await;
        bulk_insert(
            db,
            "feedback",
            &[
                "id",
                "tenant_id",
                "channel",
                "provider",
                "provider_ref",
                "raw_event_id",
                "contact_id",
                "invitation_id",
                "metric",
                "score",
                "scale",
                "language",
                "ticket_ref",
                "occurred_at",
                "received_at",
                "updated_at",
                "metadata",
            ],
            history.iter().map(|(n, inv, record, raw, at)| {
                vec![
                    (*record).into(),
                    (*tenant).into(),
                    "sms".into(),
                    "twilio".into(),
                    format!("SMhistory{n:026}").into(),
                    (*raw).into(),
                    contact_of(*n).into(),
                    (*inv).into(),
                    "csat".into(),
                    ((*n % 5) as i16 + 1).into(),
                    "1-5".into(),
                    "da".into(),
                    format!("H-{n}").into(),
                    (*at).into(),
                    (*at).into(),
                    (*at).into(),
                    json!({}).into(),
                ]
            }),
        )
        .await;
    }
}

/// SMS surveys of the phases' customers that a reply answered.
async fn answered_surveys(db: &DatabaseConnection, tenant: Uuid) -> i64 {
    let backend = db.get_database_backend();
    let sql = "SELECT COUNT(*) AS n FROM invitations WHERE tenant_id = ? AND survey_key = ? \
               AND status = 'answered' AND address IS NOT NULL";
    db.query_one_raw(Statement::from_sql_and_values(
        backend,
        placeholders(backend, sql),
        [tenant.into(), SMS_SURVEY.into()],
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get("", "n")
    .unwrap()
}

/// Other tenants beside the benchmark's, created directly in the database.
async fn more_tenants(db: &DatabaseConnection, bench: Uuid) -> Vec<Uuid> {
    let others: Vec<Uuid> = (1..TENANTS).map(|_| Uuid::now_v7()).collect();
    bulk_insert(
        db,
        "tenants",
        &["id", "slug", "created_at"],
        others.iter().enumerate().map(|(n, id)| {
            vec![
                (*id).into(),
                format!("history-{n}").into(),
                Utc::now().into(),
            ]
        }),
    )
    .await;
    std::iter::once(bench).chain(others).collect()
}

struct Run {
    database: &'static str,
    empty: Vec<Figures>,
    loaded: Vec<Figures>,
    ready: Duration,
    rss_mb: f64,
    load_seconds: f64,
}

async fn run_on(
    database: &'static str,
    url: &str,
    dir: &std::path::Path,
    clients: u64,
    d: Duration,
    rows: u64,
) -> Run {
    let gateway = spawn_gateway_with(url, dir, &[]);
    configure_tenant(&gateway).await;
    let db = Database::connect(url).await.unwrap();
    let bench = tenant_id(&db, "bench").await;
    load_open_invitations(&db, bench).await;
    eprintln!("{database}, tables nearly empty:");
    let empty = measure_paths(&gateway, 0, clients, d).await;
    let key = gateway.key.clone();
    gateway.kill();
    let answered_empty = answered_surveys(&db, bench).await;
    assert!(answered_empty > 0, "no SMS reply answered its survey");

    let started = Instant::now();
    let tenants = more_tenants(&db, bench).await;
    load_history(&db, &tenants, rows).await;
    if db.get_database_backend() == DbBackend::Postgres {
        // What autovacuum does soon after a bulk load.
        db.execute_unprepared("ANALYZE").await.unwrap();
    }
    let load_seconds = started.elapsed().as_secs_f64();
    eprintln!("{database}: {rows} records and invitations loaded in {load_seconds:.0} s");

    let started = Instant::now();
    let mut gateway = spawn_gateway_with(url, dir, &[]);
    let ready = started.elapsed();
    gateway.key = key; // printed on the first start only
    eprintln!("{database}, {rows} rows loaded:");
    let loaded = measure_paths(&gateway, 1, clients, d).await;
    let rss_mb = gateway.peak_rss_mb();
    gateway.kill();
    let answered_loaded = answered_surveys(&db, bench).await - answered_empty;
    eprintln!(
        "{database}: SMS surveys answered: {answered_empty} in the first phase, \
         {answered_loaded} in the second"
    );
    assert!(answered_loaded > 0, "no SMS reply answered its survey");
    db.close().await.unwrap();
    Run {
        database,
        empty,
        loaded,
        ready,
        rss_mb,
        load_seconds,
    }
}

async fn run() {
    let (d, clients) = phase_settings();
    let rows = env_or("BENCH_ROWS", 1_000_000);
    let ceiling = ceiling(clients, d).await;
    let runs = on_each_database("scale.db", async |name, url, dir| {
        run_on(name, url, dir, clients, d, rows).await
    })
    .await;

    println!(
        "\n{} s per phase, {clients} clients, loopback, one machine; bare axum ceiling {:.0}/s \
         (at half of it p50 {:.2} ms, p99 {:.2} ms: the load generator's own share); \
         loaded = {rows} feedback records (with raw events) and invitations, {} contacts, \
         {TENANTS} tenants\n",
        d.as_secs(),
        ceiling.peak,
        ceiling.p50,
        ceiling.p99,
        rows / 5,
    );
    println!("| database | path | empty req/s | loaded req/s | loaded / empty | of ceiling | p50 ms @ half | p99 ms @ half | errors |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for run in &runs {
        for ((name, empty), loaded) in PATHS.iter().zip(&run.empty).zip(&run.loaded) {
            println!(
                "| {} | {name} | {:.0} | {:.0} | {:.2} | {:.1} % | {:.2} | {:.2} | {} |",
                run.database,
                empty.peak,
                loaded.peak,
                loaded.peak / empty.peak,
                100.0 * loaded.peak / ceiling.peak,
                loaded.p50,
                loaded.p99,
                empty.errors + loaded.errors,
            );
        }
    }
    println!();
    for run in &runs {
        println!(
            "{}: bulk load {:.0} s; start to ready on the loaded database {} ms; peak RSS {:.1} MB",
            run.database,
            run.load_seconds,
            run.ready.as_millis(),
            run.rss_mb
        );
    }
}
