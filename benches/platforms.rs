//! Verified and parsed support-platform webhooks per second, per platform:
//! `cargo bench --bench platforms`.
//!
//! Each case is one delivery from `tests/fixtures/platforms/`, signed as the platform signs it:
//! `verify` (constant-time signature check and replay window) then `parse` into events. Beside
//! each, the same body through `serde_json::from_slice` alone, so the adapter's cost reads as a
//! ratio to a bare JSON parse measured in the same run.

use std::hint::black_box;

use base64::Engine as _;
use channels::chat::{self, chatwoot, generic, intercom, zendesk, Credentials, HookRequest};
use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};

const ZENDESK_SECRET: &str = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ==";
const INTERCOM_SECRET: &str = "intercom-client-secret";
const CHATWOOT_SECRET: &str = "chatwoot-webhook-secret";
const GENERIC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/platforms/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn headers(pairs: &[(&str, String)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(k, v)| {
            (
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            )
        })
        .collect()
}

/// (case name, platform, configuration, body, headers)
fn cases() -> Vec<(&'static str, &'static str, Value, Vec<u8>, HeaderMap)> {
    let now = Utc::now();
    let iso = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let unix = now.timestamp().to_string();
    let mut out = Vec::new();
    for (case, name) in [
        ("zendesk trigger", "zendesk_trigger_solved"),
        ("zendesk event", "zendesk_ticket_status_changed"),
    ] {
        let body = fixture(name);
        let h = headers(&[
            (
                zendesk::SIGNATURE_HEADER,
                zendesk::signature(ZENDESK_SECRET, &iso, &body),
            ),
            (zendesk::TIMESTAMP_HEADER, iso.clone()),
        ]);
        out.push((
            case,
            "zendesk",
            json!({"signing_secret": ZENDESK_SECRET}),
            body,
            h,
        ));
    }
    let body = fixture("intercom_conversation_rating_added");
    let h = headers(&[(
        intercom::SIGNATURE_HEADER,
        intercom::signature(INTERCOM_SECRET, &body),
    )]);
    out.push((
        "intercom rating",
        "intercom",
        json!({"client_secret": INTERCOM_SECRET}),
        body,
        h,
    ));
    let body = fixture("freshdesk_ticket_resolved");
    let basic = base64::engine::general_purpose::STANDARD.encode("freshdesk:s3cret-pass");
    let h = headers(&[("authorization", format!("Basic {basic}"))]);
    out.push((
        "freshdesk automation",
        "freshdesk",
        json!({"basic_user": "freshdesk", "basic_password": "s3cret-pass-0123456"}),
        body,
        h,
    ));
    let body = fixture("chatwoot_conversation_resolved");
    let h = headers(&[
        (
            chatwoot::SIGNATURE_HEADER,
            chatwoot::signature(CHATWOOT_SECRET, &unix, &body),
        ),
        (chatwoot::TIMESTAMP_HEADER, unix.clone()),
    ]);
    out.push((
        "chatwoot resolved",
        "chatwoot",
        json!({"webhook_secret": CHATWOOT_SECRET}),
        body,
        h,
    ));
    let body = fixture("generic_ticket_closed");
    let key = generic::secret_key(GENERIC_SECRET).unwrap();
    let h = headers(&[
        ("webhook-id", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W".into()),
        ("webhook-timestamp", unix.clone()),
        (
            "webhook-signature",
            generic::signature(&key, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", &unix, &body),
        ),
    ]);
    out.push((
        "generic ticket.closed",
        "generic",
        json!({"secret": GENERIC_SECRET}),
        body,
        h,
    ));
    out
}

fn verify_and_parse(c: &mut Criterion) {
    let now = Utc::now();
    let mut group = c.benchmark_group("webhooks");
    group.throughput(Throughput::Elements(1));
    for (case, platform_name, config, body, headers) in cases() {
        let platform = chat::platform(platform_name).unwrap();
        let creds: Credentials = (platform.configure)(&config).unwrap();
        let request = HookRequest {
            headers: &headers,
            query: None,
            body: &body,
            now,
        };
        // Checked once outside the loop: a case that does not verify measures nothing useful.
        (platform.verify)(&request, &creds).unwrap();
        assert!(!(platform.parse)(&request, &creds, "DK")
            .unwrap()
            .events
            .is_empty());
        group.bench_function(format!("{case}: verify + parse"), |b| {
            b.iter(|| {
                (platform.verify)(black_box(&request), &creds).unwrap();
                (platform.parse)(black_box(&request), &creds, "DK").unwrap()
            })
        });
        group.bench_function(format!("{case}: serde_json only"), |b| {
            b.iter(|| serde_json::from_slice::<Value>(black_box(&body)).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, verify_and_parse);
criterion_main!(benches);
