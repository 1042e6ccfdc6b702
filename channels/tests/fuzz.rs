//! Fuzz targets for everything that reads what the outside world sends: the reply reader, the
//! Twilio adapter, and every support platform's verify + parse.
//!
//! Each target mutates a committed seed corpus (the platforms' fixtures under
//! `tests/fixtures/platforms/`, `tests/corpus/replies.txt`, `tests/corpus/twilio.txt`) with
//! proptest: byte edits, splices, and JSON-aware edits that put odd values (control characters,
//! huge numbers, ancient dates, deep nesting) where the adapters look. Nothing may panic, and
//! what comes out must keep its invariants. A failure is shrunk to a minimal input and shown.
//!
//! Why proptest and not cargo-fuzz: cargo-fuzz needs a nightly compiler, and CI has the one
//! stable toolchain; proptest runs on stable, in `cargo test`, and shrinks what it finds. It has
//! no time budget of its own, so each target runs rounds until `FUZZ_SECONDS` (default 1) have
//! passed; `scripts/fuzz` runs every target for longer.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine;
use channels::chat::{self, chatwoot, generic, intercom, zendesk, HookRequest};
use channels::messaging::twilio;
use channels::model::{PlatformEvent, Scale};
use channels::reply::{self, Reading};
use chrono::{DateTime, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

const SECRET: &str = "fuzzing-secret-0123456789abcdef";
const GENERIC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

// ---------------------------------------------------------------------------------------------
// Corpus and mutations

fn workspace_file(path: &str) -> String {
    format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))
}

/// The platforms' fixtures, by platform (the file name's prefix).
fn platform_seeds() -> BTreeMap<String, Vec<Vec<u8>>> {
    let mut seeds: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    let dir = workspace_file("tests/fixtures/platforms");
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let platform = name.split('_').next().unwrap().to_owned();
        seeds
            .entry(platform)
            .or_default()
            .push(std::fs::read(&path).unwrap());
    }
    seeds
}

/// One seed per line of a corpus file (`#` lines are comments; `\\n` stands for a line break).
fn line_seeds(file: &str) -> Vec<Vec<u8>> {
    let path = format!("{}/tests/corpus/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.replace("\\n", "\n").into_bytes())
        .collect()
}

/// Values that have broken parsers before: control characters, huge and negative numbers,
/// dates far outside any plausible range, empty and odd containers.
fn nasty_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(Value::String(String::new())),
        Just(Value::String("\u{0}".into())),
        Just(Value::String("a\u{0}b\u{1b}c".into())),
        Just(Value::String("-5000-01-01T00:00:00Z".into())),
        Just(Value::String("9999-12-31T23:59:59Z".into())),
        Just(Value::String("2013-12-12T05:35Z".into())),
        Just(Value::String("0000-00-00 00:00:00 UTC".into())),
        Just(Value::String("😀".repeat(50))),
        Just(Value::String("x".repeat(5000))),
        Just(serde_json::json!(i64::MAX)),
        Just(serde_json::json!(i64::MIN)),
        Just(serde_json::json!(u64::MAX)),
        Just(serde_json::json!(1e308)),
        Just(serde_json::json!(-1)),
        Just(serde_json::json!(0.5)),
        Just(serde_json::json!(true)),
        Just(serde_json::json!([])),
        Just(serde_json::json!({})),
        Just(serde_json::from_str(&format!("{}{}", "[".repeat(64), "]".repeat(64))).unwrap()),
        any::<i64>().prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
    ]
}

#[derive(Debug, Clone)]
enum Edit {
    /// Replace the n-th leaf (in document order) of the JSON value with a nasty value.
    Leaf(usize, Value),
    /// Remove the n-th object member.
    Remove(usize),
    /// Flip, insert or delete a byte at a position (taken modulo the length).
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
    /// Append the tail of another seed.
    Splice(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (any::<usize>(), nasty_value()).prop_map(|(i, v)| Edit::Leaf(i, v)),
        1 => any::<usize>().prop_map(Edit::Remove),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        1 => any::<usize>().prop_map(Edit::Delete),
        1 => any::<usize>().prop_map(Edit::Truncate),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(s, i)| Edit::Splice(s, i)),
    ]
}

fn count_leaves(v: &Value) -> usize {
    match v {
        Value::Object(m) => m.values().map(count_leaves).sum(),
        Value::Array(a) => a.iter().map(count_leaves).sum(),
        _ => 1,
    }
}

/// Replaces the n-th leaf in document order.
fn replace_leaf(v: &mut Value, n: &mut usize, new: &Value) -> bool {
    match v {
        Value::Object(m) => m.values_mut().any(|x| replace_leaf(x, n, new)),
        Value::Array(a) => a.iter_mut().any(|x| replace_leaf(x, n, new)),
        leaf if *n == 0 => {
            *leaf = new.clone();
            true
        }
        _ => {
            *n -= 1;
            false
        }
    }
}

fn remove_member(v: &mut Value, n: &mut usize) -> bool {
    match v {
        Value::Object(m) => {
            if *n < m.len() {
                let key = m.keys().nth(*n).cloned().unwrap();
                m.remove(&key);
                return true;
            }
            *n -= m.len();
            m.values_mut().any(|x| remove_member(x, n))
        }
        Value::Array(a) => a.iter_mut().any(|x| remove_member(x, n)),
        _ => false,
    }
}

/// Applies the edits to a seed. JSON edits apply while the bytes still parse as JSON.
fn mutate(seed: &[u8], edits: &[Edit], seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for e in edits {
        match e {
            Edit::Leaf(i, value) => {
                if let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) {
                    let mut n = i % count_leaves(&v).max(1);
                    replace_leaf(&mut v, &mut n, value);
                    bytes = serde_json::to_vec(&v).unwrap();
                }
            }
            Edit::Remove(i) => {
                if let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) {
                    let mut n = *i % 64;
                    remove_member(&mut v, &mut n);
                    bytes = serde_json::to_vec(&v).unwrap();
                }
            }
            Edit::Flip(i, b) if !bytes.is_empty() => {
                let at = i % bytes.len();
                bytes[at] ^= b | 1;
            }
            Edit::Insert(i, b) => {
                let at = i % (bytes.len() + 1);
                bytes.insert(at, *b);
            }
            Edit::Delete(i) if !bytes.is_empty() => {
                let at = i % bytes.len();
                bytes.remove(at);
            }
            Edit::Truncate(i) => bytes.truncate(i % (bytes.len() + 1)),
            Edit::Splice(s, i) => {
                let other = &seeds[s % seeds.len()];
                let from = i % (other.len() + 1);
                bytes.extend_from_slice(&other[from..]);
            }
            _ => {}
        }
    }
    bytes
}

/// Runs `check` on mutated inputs until the time budget is spent; a failure panics with the
/// shrunk input.
fn fuzz<S: Strategy>(
    target: &str,
    strategy: S,
    check: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let seconds: f64 = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut cases = 0u64;
    while Instant::now() < deadline {
        let mut runner = TestRunner::new(Config {
            cases: 128,
            failure_persistence: None,
            ..Config::default()
        });
        if let Err(e) = runner.run(&strategy, &check) {
            panic!("fuzz target {target} failed after {cases} cases: {e}");
        }
        cases += 128;
    }
    eprintln!("fuzz target {target}: {cases} cases in {seconds} s, no failure");
}

// ---------------------------------------------------------------------------------------------
// Targets

#[test]
fn fuzz_reply_reader() {
    let seeds = line_seeds("replies.txt");
    let all = seeds.clone();
    let strategy = (
        0..seeds.len(),
        proptest::collection::vec(edit(), 0..6),
        prop_oneof![
            Just(Scale::ZeroToTen),
            Just(Scale::OneToFive),
            Just(Scale::OneToSeven)
        ],
        proptest::option::of(prop_oneof![
            Just("da"),
            Just("sv"),
            Just("nb"),
            Just("en"),
            Just("de"),
            Just("da-DK"),
            Just("x")
        ]),
    );
    fuzz(
        "reply_reader",
        strategy,
        move |(seed, edits, scale, language)| {
            let bytes = mutate(&all[seed], &edits, &all);
            let text = String::from_utf8_lossy(&bytes);
            let read = reply::read(&text, scale, language);
            if let Reading::Score(s) = read.reading {
                let (low, high) = scale.range();
                prop_assert!((low..=high).contains(&s), "{s} off the scale for {text:?}");
            }
            Ok(())
        },
    );
}

fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

#[test]
fn fuzz_twilio_inbound_and_status() {
    let seeds = line_seeds("twilio.txt");
    let all = seeds.clone();
    let strategy = (
        0..seeds.len(),
        proptest::collection::vec(edit(), 0..8),
        ".{0,40}",
    );
    fuzz("twilio", strategy, move |(seed, edits, signature)| {
        let params = form_pairs(&mutate(&all[seed], &edits, &all));
        let token = channels::secret::Secret::new(SECRET);
        let url = "https://feedback.example.com/hooks/acme/twilio/sms";
        // A random signature is refused; the right one for these exact parameters is taken.
        prop_assert!(!twilio::verify_signature(&token, url, &params, &signature));
        let good = twilio::signature(SECRET, url, &params);
        prop_assert!(twilio::verify_signature(&token, url, &params, &good));
        if let Ok(mut message) = twilio::parse_inbound(&params) {
            message.sanitize();
            let text = format!("{message:?}");
            prop_assert!(!text.contains("\\u{0}"), "{text}");
        }
        let _ = twilio::parse_status(&params);
        Ok(())
    });
}

/// Headers that sign `body` as `platform` does, at `now`.
fn signed(platform: &str, body: &[u8], now: DateTime<Utc>) -> HeaderMap {
    let mut h = HeaderMap::new();
    let mut put = |k: &str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(HeaderName::from_bytes(k.as_bytes()).unwrap(), v);
        }
    };
    match platform {
        "zendesk" => {
            let ts = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            put(
                zendesk::SIGNATURE_HEADER,
                zendesk::signature(SECRET, &ts, body),
            );
            put(zendesk::TIMESTAMP_HEADER, ts);
            put(zendesk::INVOCATION_HEADER, "fuzz-1".into());
        }
        "intercom" => put(
            intercom::SIGNATURE_HEADER,
            intercom::signature(SECRET, body),
        ),
        "chatwoot" => {
            let ts = now.timestamp().to_string();
            put(
                chatwoot::SIGNATURE_HEADER,
                chatwoot::signature(SECRET, &ts, body),
            );
            put(chatwoot::TIMESTAMP_HEADER, ts);
            put(chatwoot::DELIVERY_HEADER, "fuzz-1".into());
        }
        "freshdesk" => {
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("hook:{SECRET}"));
            put("authorization", format!("Basic {basic}"));
        }
        "generic" => {
            let ts = now.timestamp().to_string();
            let key = generic::secret_key(GENERIC_SECRET).unwrap();
            put(
                "webhook-signature",
                generic::signature(&key, "msg_fuzz", &ts, body),
            );
            put("webhook-id", "msg_fuzz".into());
            put("webhook-timestamp", ts);
        }
        other => panic!("no signing for {other}"),
    }
    h
}

fn credentials(platform: &str) -> chat::Credentials {
    let config = match platform {
        "zendesk" => serde_json::json!({"signing_secret": SECRET}),
        "intercom" => serde_json::json!({"client_secret": SECRET}),
        "chatwoot" => serde_json::json!({"webhook_secret": SECRET}),
        "freshdesk" => serde_json::json!({"basic_user": "hook", "basic_password": SECRET}),
        "generic" => serde_json::json!({"secret": GENERIC_SECRET}),
        other => panic!("{other}"),
    };
    (chat::platform(platform).unwrap().configure)(&config).unwrap()
}

/// After sanitizing, no text an event carries has a forbidden control character, and no time
/// is implausible.
fn assert_clean(event: &PlatformEvent) -> Result<(), TestCaseError> {
    let text = format!("{event:?}");
    prop_assert!(!text.contains("\\u{0}"), "{text}");
    let now = Utc::now();
    match event {
        PlatformEvent::TicketClosed(t) => {
            prop_assert!(channels::sanitize::is_plausible_time(t.closed_at, now))
        }
        PlatformEvent::PlatformRating(r) => {
            prop_assert!(channels::sanitize::is_plausible_time(r.rated_at, now))
        }
    }
    Ok(())
}

fn fuzz_platform(name: &'static str) {
    let seeds = platform_seeds()
        .remove(name)
        .unwrap_or_else(|| panic!("no fixtures for {name}"));
    let platform = chat::platform(name).unwrap();
    let creds = credentials(name);
    let all = seeds.clone();
    let strategy = (
        0..seeds.len(),
        proptest::collection::vec(edit(), 0..8),
        any::<bool>(),
        proptest::collection::vec((".{0,8}", ".{0,40}"), 0..3),
    );
    fuzz(name, strategy, move |(seed, edits, sign, junk_headers)| {
        let body = mutate(&all[seed], &edits, &all);
        let now = Utc::now();
        let mut headers = if sign {
            signed(name, &body, now)
        } else {
            HeaderMap::new()
        };
        for (k, v) in junk_headers {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(format!("x-{k}").as_bytes()),
                HeaderValue::from_str(&v),
            ) {
                headers.insert(k, v);
            }
        }
        let request = HookRequest {
            headers: &headers,
            query: None,
            body: &body,
            now,
        };
        let verified = (platform.verify)(&request, &creds);
        if sign {
            prop_assert!(
                verified.is_ok(),
                "{name}: a correct signature was refused: {verified:?}"
            );
        } else {
            prop_assert!(verified.is_err(), "{name}: an unsigned request was taken");
        }
        // Parsed only after verification in the gateway; parsing must hold for any body a
        // platform could sign.
        if let Ok(mut parsed) = (platform.parse)(&request, &creds, "DK") {
            parsed.sanitize(now);
            for event in &parsed.events {
                assert_clean(event)?;
            }
        }
        Ok(())
    });
}

#[test]
fn fuzz_zendesk() {
    fuzz_platform("zendesk");
}

#[test]
fn fuzz_intercom() {
    fuzz_platform("intercom");
}

#[test]
fn fuzz_freshdesk() {
    fuzz_platform("freshdesk");
}

#[test]
fn fuzz_chatwoot() {
    fuzz_platform("chatwoot");
}

#[test]
fn fuzz_generic() {
    fuzz_platform("generic");
}

#[test]
fn every_platform_has_a_fuzz_target_and_seeds() {
    let seeds = platform_seeds();
    for name in chat::names() {
        assert!(seeds.contains_key(name), "no seed fixtures for {name}");
    }
}
