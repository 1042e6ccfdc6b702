//! The e-mail channel's throughput: `cargo bench --bench email` (PostgreSQL too when
//! FEEDBACK_TEST_POSTGRES_URL is set).
//!
//! - **Out**: survey e-mails rendered (text and HTML, a signed link per score, the signed
//!   reply and unsubscribe addresses, DKIM with the gateway's Ed25519 key) and handed to a real
//!   SMTP server on loopback (the tests' server: STARTTLS on a test CA, AUTH PLAIN) through the
//!   gateway's pooled connections. BENCH_MAILS invitations are scheduled through the API while
//!   the dispatcher sleeps; then a gateway with a busy dispatcher starts, and the time until
//!   the server holds them all gives the rate.
//! - **In**: replies to those e-mails through the whole pipeline: a raw RFC 5322 reply
//!   ("4 - hurtig hjælp" above a quoted original and "Sendt fra min iPhone") posted to
//!   `/hooks/{tenant}/email/mime` with basic auth, parsed with `mail-parser`, correlated by its
//!   signed `reply+{token}@` address, stripped, read as a score and stored. Peak with
//!   closed-loop clients, then p50 / p99 at half the peak.
//!
//! Beside them, a bare axum handler's peak in the same run: the ceiling of this machine and
//! load generator. Options (environment): BENCH_SECONDS (default 10), BENCH_CLIENTS (default
//! 64), BENCH_MAILS (default 10,000), BENCH_GATEWAY (another build of the gateway).

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::json;

#[allow(dead_code)] // the tests use more of it
#[path = "../tests/common/smtp.rs"]
mod smtp;
mod support;

use support::{
    ceiling, configure, env_or, figures, on_each_database, phase_settings, spawn_gateway_with,
    Figures, Payload, Server,
};

const SURVEY: &str = "bench-email-csat";
const HOOK: &str = "/hooks/bench/email/mime";
const INBOUND_USER: &str = "bench-inbound";
const INBOUND_PASSWORD: &str = "bench-inbound-password-0123456789";
const REPLY_DOMAIN: &str = "reply.bench.example";

fn main() {
    support::bench_main(run);
}

/// The gateway's settings for the run: the SMTP server as its own transport, DKIM, no pacing.
fn gateway_env(
    smtp: &smtp::SmtpServer,
    ca_file: &str,
    dispatch_poll_ms: u64,
) -> Vec<(String, String)> {
    let seed = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    [
        ("FEEDBACK_EMAIL__SMTP__HOST", "127.0.0.1".to_owned()),
        ("FEEDBACK_EMAIL__SMTP__PORT", smtp.port.to_string()),
        ("FEEDBACK_EMAIL__SMTP__TLS", "starttls".to_owned()),
        ("FEEDBACK_EMAIL__SMTP__USERNAME", smtp::USER.to_owned()),
        ("FEEDBACK_EMAIL__SMTP__PASSWORD", smtp::PASSWORD.to_owned()),
        ("FEEDBACK_EMAIL__CA_FILE", ca_file.to_owned()),
        ("FEEDBACK_EMAIL__PER_SECOND", "1000000".to_owned()),
        ("FEEDBACK_EMAIL__DKIM__DOMAIN", "bench.example".to_owned()),
        ("FEEDBACK_EMAIL__DKIM__SELECTOR", "bench".to_owned()),
        ("FEEDBACK_EMAIL__DKIM__ALGORITHM", "ed25519".to_owned()),
        ("FEEDBACK_EMAIL__DKIM__PRIVATE_KEY", seed),
        (
            "FEEDBACK_DISPATCH__POLL_INTERVAL_MS",
            dispatch_poll_ms.to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn spawn(url: &str, dir: &std::path::Path, env: &[(String, String)]) -> Server {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    spawn_gateway_with(url, dir, &env)
}

/// Schedules `n` survey e-mails through the API, to `n` customers, `clients` at a time.
async fn schedule(server: &Server, n: u64, clients: u64) {
    let client = reqwest::Client::new();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, next) = (client.clone(), next.clone());
        let url = format!("{}/v1/surveys/{SURVEY}/send", server.base);
        let key = server.key.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let response = client
                    .post(&url)
                    .bearer_auth(&key)
                    .json(
                        &json!({"contact": {"email": format!("kunde{i}@example.dk")},
                                  "language": "da"}),
                    )
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

/// The `reply+{token}` local parts of the survey e-mails the server holds.
fn reply_addresses(smtp: &smtp::SmtpServer) -> Vec<String> {
    smtp.received()
        .iter()
        .filter_map(|mail| {
            let raw = String::from_utf8_lossy(&mail.data);
            let start = raw.find("reply+")?;
            let end = start + raw[start..].find('@')?;
            Some(raw[start..end].to_owned())
        })
        .collect()
}

/// A customer's reply from a phone, as a mail client writes it, to one of the survey e-mails.
fn reply(addresses: std::sync::Arc<Vec<String>>) -> impl Fn(u64) -> Payload + Clone {
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{INBOUND_USER}:{INBOUND_PASSWORD}"))
    );
    move |i| {
        let spread = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20;
        let to = &addresses[(spread % addresses.len() as u64) as usize];
        let body = format!(
            "From: Kunde <kunde@example.dk>\r\n\
             To: <{to}@{REPLY_DOMAIN}>\r\n\
             Subject: Re: Hvor tilfreds er du?\r\n\
             Date: Sat, 3 Oct 2026 10:14:00 +0200\r\n\
             Message-ID: <bench-{i}@example.dk>\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: 8bit\r\n\
             \r\n\
             4 - hurtig hjælp\r\n\
             \r\n\
             Sendt fra min iPhone\r\n\
             \r\n\
             Den 3. okt. 2026 kl. 10.12 skrev Acme Support <support@acme.example>:\r\n\
             > Hvor tilfreds er du med den service, du modtog i dag?\r\n\
             > 1 2 3 4 5\r\n"
        );
        Payload::Signed {
            content_type: "message/rfc822",
            headers: vec![("authorization", auth.clone())],
            body,
        }
    }
}

struct Run {
    database: &'static str,
    mails: u64,
    sent_per_second: f64,
    replies: Figures,
}

async fn run_on(
    database: &'static str,
    url: &str,
    dir: &std::path::Path,
    clients: u64,
    d: Duration,
    mails: u64,
) -> Run {
    let smtp = smtp::SmtpServer::start();
    let ca_file = dir.join(format!("ca-{database}.pem"));
    std::fs::write(&ca_file, &smtp.ca_pem).unwrap();
    let ca_file = ca_file.to_str().unwrap().to_owned();

    // Scheduled with the dispatcher asleep (its first look is at start, before any exists).
    let mut gateway = spawn(url, dir, &gateway_env(&smtp, &ca_file, 3_600_000));
    for (path, body) in [
        (
            "/v1/channels/email".to_owned(),
            json!({"from": "Acme Support <support@acme.example>",
                   "reply_to_domain": REPLY_DOMAIN,
                   "inbound": {"basic_auth": {"username": INBOUND_USER,
                                              "password": INBOUND_PASSWORD}}}),
        ),
        (
            format!("/v1/surveys/{SURVEY}"),
            json!({"metric": "csat",
                   "question": {"da": "Hvor tilfreds er du med den service, du modtog i dag?"},
                   "default_language": "da", "channels": ["email"],
                   "policy": {"send_delay_minutes": 0, "quiet_hours": null,
                              "rest_period_days": 0, "max_per_window": 1000,
                              "one_per_ticket": false}}),
        ),
    ] {
        configure(&gateway, &path, body).await;
    }
    schedule(&gateway, mails, clients).await;
    let key = gateway.key.clone();
    gateway.kill();

    let started = Instant::now();
    gateway = spawn(url, dir, &gateway_env(&smtp, &ca_file, 20));
    gateway.key = key;
    while (smtp.count() as u64) < mails {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "{database}: {} of {mails} e-mails arrived in 10 minutes",
            smtp.count()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let sent_per_second = mails as f64 / started.elapsed().as_secs_f64();
    eprintln!(
        "{database}: {mails} survey e-mails sent, {sent_per_second:.0}/s, over {} SMTP \
         connections",
        smtp.connections()
    );

    let addresses = std::sync::Arc::new(reply_addresses(&smtp));
    assert_eq!(
        addresses.len() as u64,
        mails,
        "every e-mail has a reply address"
    );
    let replies = figures(&gateway, HOOK, 200, reply(addresses), clients, d).await;
    eprintln!(
        "{database}: replies {:.0}/s, p50 {:.2} ms, p99 {:.2} ms at half rate, errors {}{}",
        replies.peak,
        replies.p50,
        replies.p99,
        replies.errors,
        replies
            .first_error
            .as_deref()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
    gateway.kill();
    Run {
        database,
        mails,
        sent_per_second,
        replies,
    }
}

async fn run() {
    let (d, clients) = phase_settings();
    let mails = env_or("BENCH_MAILS", 10_000);
    let ceiling = ceiling(clients, d).await;
    let runs = on_each_database("email.db", async |name, url, dir| {
        run_on(name, url, dir, clients, d, mails).await
    })
    .await;

    println!(
        "\n{} s per phase, {clients} clients, loopback, one machine; bare axum ceiling {:.0}/s\n",
        d.as_secs(),
        ceiling.peak,
    );
    println!(
        "| database | path | per second | of ceiling | p50 ms @ half | p99 ms @ half | errors |"
    );
    println!("|---|---|---|---|---|---|---|");
    for run in &runs {
        println!(
            "| {} | {} survey e-mails rendered, DKIM-signed, handed to SMTP (pooled, STARTTLS) | {:.0} | {:.1} % | | | 0 |",
            run.database,
            run.mails,
            run.sent_per_second,
            100.0 * run.sent_per_second / ceiling.peak,
        );
        println!(
            "| {} | e-mail replies through /hooks/…/email/mime to a stored answer | {:.0} | {:.1} % | {:.2} | {:.2} | {} |",
            run.database,
            run.replies.peak,
            100.0 * run.replies.peak / ceiling.peak,
            run.replies.p50,
            run.replies.p99,
            run.replies.errors,
        );
    }
}
