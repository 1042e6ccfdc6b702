//! Hundreds of malformed and mutated requests against every inbound endpoint, on both backends:
//! none may be answered with a server error (503 aside, which asks for a retry), every refusal
//! is problem+json, and nothing is stored but what an endpoint accepted.
//!
//! The mutations start from valid requests (the platforms' fixtures, Twilio's documented
//! parameters, the API's own examples), signed as the provider signs them, then bytes are
//! flipped, cut, repeated or replaced with values that have broken parsers before. The signature
//! stays the original's, so a mutated hook body must fail verification. The random stream is
//! seeded (`FUZZ_SEED`, default 7), so a failure can be replayed.

mod common;

use channels::messaging::twilio;
use chrono::Utc;
use common::{platform_fixture, Backend, TestServer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_backends!(malformed_and_mutated_requests_fail_cleanly);

const PUBLIC_URL: &str = "https://feedback.example.com";
const SECRET: &str = "malformed-test-secret-0123456789";
const GENERIC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const TWILIO_SID: &str = "AC0123456789abcdef0123456789abcdef";
const MUTATIONS_PER_SEED: usize = 40;

const NASTY: &[&[u8]] = &[
    b"\\u0000",
    b"\x00",
    b"\xff\xfe",
    b"\"",
    b"{",
    b"}]",
    b"-5000-01-01T00:00:00Z",
    b"99999999999999999999999",
    b"null",
    b"%00",
    b"%",
    b"&&==",
    b"\\",
];

fn mutate(rng: &mut StdRng, seed: &[u8]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..rng.random_range(1..4) {
        let at = rng.random_range(0..=bytes.len());
        match rng.random_range(0..6) {
            0 if !bytes.is_empty() => {
                let i = at.min(bytes.len() - 1);
                bytes[i] ^= rng.random_range(1..=255u8);
            }
            1 => bytes.truncate(at),
            2 => {
                let token = NASTY[rng.random_range(0..NASTY.len())];
                bytes.splice(at..at, token.iter().copied());
            }
            3 if !bytes.is_empty() => {
                let end = rng.random_range(at.min(bytes.len())..=bytes.len());
                let chunk = bytes[at.min(end)..end].to_vec();
                bytes.splice(at..at, chunk);
            }
            4 => {
                let end = rng.random_range(at..=bytes.len());
                bytes.drain(at..end);
            }
            _ => bytes.extend(std::iter::repeat_n(b'[', rng.random_range(1..200))),
        }
    }
    bytes
}

/// The headers that sign `body` as `platform` does, now.
fn signed(platform: &str, body: &[u8]) -> Vec<(String, String)> {
    let secret = if platform == "generic" {
        GENERIC_SECRET
    } else {
        SECRET
    };
    common::signed_headers(platform, secret, body, "msg_1", Utc::now())
}

struct Tally {
    accepted: usize,
}

/// Sends one request and checks the answer: no 5xx but 503, and problem+json for refusals.
async fn send(
    server: &TestServer,
    method: Method,
    path: &str,
    content_type: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
    key: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = server
        .client
        .request(method, server.url(path))
        .header("content-type", content_type)
        .body(body.clone());
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let problem_json = resp.headers().get("content-type").is_some_and(|v| {
        v.to_str()
            .unwrap_or("")
            .starts_with("application/problem+json")
    });
    let text = resp.text().await.unwrap();
    assert!(
        !status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE,
        "{path} answered {status} to {:?}: {text}",
        String::from_utf8_lossy(&body)
    );
    if status.is_client_error() {
        assert!(problem_json, "{path} {status} is not problem+json: {text}");
    }
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn malformed_and_mutated_requests_fail_cleanly(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        |c| {
            c.public_url = PUBLIC_URL.into();
            c.rate_limits.hook_ip_per_second = 100_000;
            c.rate_limits.hook_ip_burst = 100_000;
            c.rate_limits.tenant_per_second = 100_000;
            c.rate_limits.tenant_burst = 100_000;
            c.rate_limits.ip_per_second = 100_000;
            c.rate_limits.ip_burst = 100_000;
            c.dispatch.poll_interval_ms = 600_000;
        },
        vec![],
    )
    .await;
    let key = server.tenant("acme").await;
    for (platform, config) in [
        (
            "twilio",
            json!({"account_sid": TWILIO_SID, "auth_token": SECRET, "from": "+4578787878"}),
        ),
        ("zendesk", json!({"signing_secret": SECRET})),
        ("intercom", json!({"client_secret": SECRET})),
        ("chatwoot", json!({"webhook_secret": SECRET})),
        (
            "freshdesk",
            json!({"basic_user": "hook", "basic_password": SECRET}),
        ),
        ("generic", json!({"secret": GENERIC_SECRET})),
    ] {
        server
            .put_ok(&key, &format!("/v1/channels/{platform}"), config)
            .await;
    }
    server
        .put_ok(
            &key,
            "/v1/surveys/csat",
            json!({"metric": "csat", "question": {"da": "Hvor tilfreds er du?"},
                        "channels": ["sms", "email"], "trigger": "ticket_closed"}),
        )
        .await;
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let mut rng = StdRng::seed_from_u64(seed);

    // Support platforms: each fixture, mutated, under the original's signature.
    for (platform, fixtures) in [
        (
            "zendesk",
            vec![
                "zendesk_trigger_solved",
                "zendesk_trigger_rating_bad",
                "zendesk_ticket_status_changed",
            ],
        ),
        (
            "intercom",
            vec![
                "intercom_conversation_rating_added",
                "intercom_conversation_admin_closed",
            ],
        ),
        (
            "chatwoot",
            vec!["chatwoot_conversation_resolved", "chatwoot_csat_submitted"],
        ),
        ("generic", vec!["generic_ticket_closed"]),
    ] {
        let mut tally = Tally { accepted: 0 };
        for name in fixtures {
            let original = platform_fixture(name);
            let headers = signed(platform, &original);
            for _ in 0..MUTATIONS_PER_SEED {
                let body = mutate(&mut rng, &original);
                let (status, answer) = send(
                    &server,
                    Method::POST,
                    &format!("/hooks/acme/{platform}"),
                    "application/json",
                    &headers,
                    body,
                    None,
                )
                .await;
                if status == StatusCode::OK && answer["status"] == "accepted" {
                    tally.accepted += 1;
                }
            }
        }
        let stored = server
            .count_where(&format!(
                "SELECT COUNT(*) AS n FROM raw_events WHERE provider = '{platform}'"
            ))
            .await;
        assert_eq!(
            stored as usize, tally.accepted,
            "{platform}: stored only what it accepted"
        );
    }

    // Freshdesk's credential does not cover the body: a mutated body with the right password
    // may be accepted, and must then be stored once; everything else stores nothing.
    let mut tally = Tally { accepted: 0 };
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("hook:{SECRET}"));
    for name in ["freshdesk_ticket_resolved", "freshdesk_satisfaction_rating"] {
        let original = platform_fixture(name);
        for i in 0..MUTATIONS_PER_SEED {
            let body = mutate(&mut rng, &original);
            let auth = if i % 2 == 0 {
                format!("Basic {basic}")
            } else {
                "Basic Og==".into()
            };
            let (status, answer) = send(
                &server,
                Method::POST,
                "/hooks/acme/freshdesk",
                "application/json",
                &[("authorization".into(), auth)],
                body,
                None,
            )
            .await;
            if status == StatusCode::OK && answer["status"] == "accepted" {
                tally.accepted += 1;
            }
        }
    }
    let stored = server
        .count_where("SELECT COUNT(*) AS n FROM raw_events WHERE provider = 'freshdesk'")
        .await;
    assert_eq!(stored as usize, tally.accepted, "freshdesk");

    // Twilio: documented parameters, mutated form bytes, signed for the original parameters.
    for (path, original) in [
        (
            "/hooks/acme/twilio/sms",
            "ToCountry=DK&SmsMessageSid=SM1&NumMedia=0&SmsStatus=received&Body=5+tak%21&To=%2B4578787878&MessageSid=SM1&AccountSid=AC0123456789abcdef0123456789abcdef&From=%2B4522334455&ApiVersion=2010-04-01",
        ),
        (
            "/hooks/acme/twilio/status",
            "SmsSid=SM1&MessageStatus=undelivered&ErrorCode=30003&To=%2B4522334455&MessageSid=SM1&AccountSid=AC0123456789abcdef0123456789abcdef&From=%2B4578787878&ApiVersion=2010-04-01",
        ),
    ] {
        let params: Vec<(String, String)> =
            form_urlencoded::parse(original.as_bytes()).into_owned().collect();
        let signature = twilio::signature(SECRET, &format!("{PUBLIC_URL}{path}"), &params);
        for _ in 0..MUTATIONS_PER_SEED * 2 {
            let body = mutate(&mut rng, original.as_bytes());
            let changed = form_urlencoded::parse(&body).into_owned().collect::<Vec<_>>() != params;
            let (status, _) = send(
                &server,
                Method::POST,
                path,
                "application/x-www-form-urlencoded",
                &[("x-twilio-signature".into(), signature.clone())],
                body,
                None,
            )
            .await;
            if changed {
                assert!(status.is_client_error(), "{path}: a changed form was taken ({status})");
            }
        }
    }
    // At most the one unchanged original of each could be stored.
    assert!(
        server
            .count_where("SELECT COUNT(*) AS n FROM raw_events WHERE provider = 'twilio'")
            .await
            <= 2
    );

    // The tenant API: mutated examples; every 201 is one record, everything else none.
    let examples: [(&str, Method, Value); 4] = [
        (
            "/v1/feedback",
            Method::POST,
            json!({"metric": "nps", "score": 9, "comment": "Quick and friendly", "channel": "api",
                   "contact": {"email": "anna@example.com"}, "occurred_at": "2026-11-01T10:00:00Z",
                   "ticket_ref": "T-1", "agent_ref": "agent-7", "team_ref": "support-dk",
                   "metadata": {"call": 4711}}),
        ),
        (
            "/v1/surveys/mutated",
            Method::PUT,
            json!({"metric": "nps", "question": {"da": "Vil du anbefale os?"}, "channels": ["sms"],
                   "policy": {"rest_period_days": 180, "reply_window_hours": 72}}),
        ),
        (
            "/v1/surveys/csat/send",
            Method::POST,
            json!({"contact": {"phone": "+4522334455"}, "ticket_ref": "T-9"}),
        ),
        (
            "/v1/channels/generic",
            Method::PUT,
            json!({"secret": GENERIC_SECRET, "tolerance_seconds": 300}),
        ),
    ];
    let mut created = 0;
    for (path, method, example) in examples {
        let original = serde_json::to_vec(&example).unwrap();
        for _ in 0..MUTATIONS_PER_SEED * 2 {
            let body = mutate(&mut rng, &original);
            let (status, _) = send(
                &server,
                method.clone(),
                path,
                "application/json",
                &[],
                body,
                Some(&key),
            )
            .await;
            if path == "/v1/feedback" && status == StatusCode::CREATED {
                created += 1;
            }
        }
    }
    let api_records = server
        .count_where("SELECT COUNT(*) AS n FROM feedback WHERE provider = 'api'")
        .await;
    assert_eq!(api_records as usize, created, "one record per 201");
    server.stop().await;
}
