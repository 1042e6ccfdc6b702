//! Delivery rules for tenants' HTTP endpoints, per the Standard Webhooks specification: how a
//! delivery is signed, what an endpoint's answer means, and when the next attempt is due.
//! Kept apart from the worker that makes the calls so that the rules are plain functions.
//!
//! The schedule is Svix's: an attempt at once, then after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and
//! 10 h, each delay varied by up to ±20 % so that endpoints that failed together are not all
//! retried in the same second. A throttled (429) or timed-out attempt waits at least a minute;
//! an endpoint's `Retry-After` is honoured, but never sooner than the schedule and never later
//! than an hour. `410 Gone` disables the endpoint. After the last attempt the event is a dead
//! letter.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

/// The delays before each attempt; the first is immediate.
pub const SCHEDULE: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// How long one attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);
/// The least wait after a 429 or a timeout.
const THROTTLED_WAIT: Duration = Duration::from_secs(60);
/// The longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// How far each delay is varied either way.
const JITTER: f64 = 0.2;

/// What an attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer.
    Delivered,
    /// `410 Gone`: the endpoint does not want deliveries any more.
    Gone,
    /// 429, or no answer within [`ATTEMPT_TIMEOUT`].
    Throttled,
    /// Any other answer (3xx included: the spec counts a redirect as a failure), or no
    /// connection.
    Failed,
}

impl Outcome {
    /// The outcome of an answer's status code; `None` when no answer came in time.
    pub fn of(status: Option<u16>) -> Outcome {
        match status {
            Some(200..=299) => Outcome::Delivered,
            Some(410) => Outcome::Gone,
            Some(429) | None => Outcome::Throttled,
            Some(_) => Outcome::Failed,
        }
    }
}

/// When to try again after attempt number `attempts` (1 for the first) failed with `outcome`,
/// or `None` when that was the last attempt (or the endpoint is gone). `jitter` is a random
/// number in [0, 1).
pub fn retry_delay(
    attempts: usize,
    outcome: Outcome,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Option<Duration> {
    if matches!(outcome, Outcome::Delivered | Outcome::Gone) {
        return None;
    }
    let scheduled = *SCHEDULE.get(attempts)?;
    let factor = 1.0 + JITTER * (2.0 * jitter.clamp(0.0, 1.0) - 1.0);
    let mut delay = scheduled.mul_f64(factor);
    if outcome == Outcome::Throttled {
        delay = delay.max(THROTTLED_WAIT);
    }
    if let Some(asked) = retry_after {
        delay = delay.max(asked.min(MAX_RETRY_AFTER));
    }
    Some(delay)
}

/// `Retry-After` as seconds (the HTTP-date form is not used by the endpoints it matters for,
/// and is ignored).
pub fn retry_after(header: Option<&str>) -> Option<Duration> {
    header?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// A new endpoint secret: `whsec_` and the base64 of 32 random bytes.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("whsec_{}", BASE64.encode(bytes))
}

/// The three Standard Webhooks headers of a delivery: `webhook-id` (the event id, which the
/// endpoint de-duplicates on), `webhook-timestamp`, and `webhook-signature` with one `v1,`
/// entry per secret in use (two while a rotated secret is still valid).
pub fn signed_headers(
    secrets: &[&str],
    event_id: &str,
    timestamp: i64,
    body: &[u8],
) -> [(&'static str, String); 3] {
    let timestamp = timestamp.to_string();
    let signatures: Vec<String> = secrets
        .iter()
        .filter_map(|secret| channels::chat::generic::secret_key(secret))
        .map(|key| channels::chat::generic::signature(&key, event_id, &timestamp, body))
        .collect();
    [
        ("webhook-id", event_id.to_owned()),
        ("webhook-timestamp", timestamp),
        ("webhook-signature", signatures.join(" ")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use channels::chat::{platform, HookRequest};
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

    /// Whether the generic hook (the gateway's own Standard Webhooks verifier, checked against
    /// the specification's vectors) accepts a delivery for `secret`.
    fn verified(secret: &str, headers: &[(&'static str, String); 3], body: &[u8], at: i64) -> bool {
        let generic = platform("generic").unwrap();
        let creds = (generic.configure)(&serde_json::json!({"secret": secret})).unwrap();
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(
                HeaderName::from_static(name),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let request = HookRequest {
            headers: &map,
            query: None,
            body,
            now: chrono::DateTime::from_timestamp(at, 0).unwrap(),
        };
        (generic.verify)(&request, &creds).is_ok()
    }

    #[test]
    fn deliveries_are_signed_as_the_specification_says() {
        // The specification's vector (the reference libraries' `test_sign_function`).
        let headers = signed_headers(
            &["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(
            headers[2].1,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );

        // During a rotation both secrets sign; a receiver that knows either accepts it.
        let (old, new) = (new_secret(), new_secret());
        assert!(new.starts_with("whsec_") && old != new);
        let body = br#"{"type":"feedback.created"}"#;
        let now = 1_765_000_000;
        let headers = signed_headers(&[&new, &old], "01938f6e-5b2a-7c41", now, body);
        assert_eq!(headers[2].1.split(' ').count(), 2);
        assert!(verified(&new, &headers, body, now));
        assert!(verified(&old, &headers, body, now));
        assert!(!verified(&new_secret(), &headers, body, now));
        assert!(!verified(&new, &headers, b"{}", now));
        // The receiver's tolerance: five minutes.
        assert!(!verified(&new, &headers, body, now + 301));
    }

    #[test]
    fn attempts_follow_the_schedule_with_jitter() {
        let middle = 0.5;
        let delays: Vec<Option<Duration>> = (1..=8)
            .map(|n| retry_delay(n, Outcome::Failed, None, middle))
            .collect();
        assert_eq!(delays[0], Some(Duration::from_secs(5)));
        assert_eq!(delays[1], Some(Duration::from_secs(300)));
        assert_eq!(delays[6], Some(Duration::from_secs(36_000)));
        // The eighth attempt was the last.
        assert_eq!(delays[7], None);
        // ±20 %.
        let low = retry_delay(3, Outcome::Failed, None, 0.0).unwrap();
        let high = retry_delay(3, Outcome::Failed, None, 0.999_999).unwrap();
        assert_eq!(low, Duration::from_secs(1440));
        assert!(high > Duration::from_secs(2159) && high <= Duration::from_secs(2160));
        // Delivered or gone: nothing more.
        assert_eq!(retry_delay(1, Outcome::Delivered, None, middle), None);
        assert_eq!(retry_delay(1, Outcome::Gone, None, middle), None);
    }

    #[test]
    fn throttling_and_retry_after_stretch_the_wait_within_bounds() {
        // A 429 or a timeout right after the first attempt waits a minute, not 5 s.
        assert_eq!(
            retry_delay(1, Outcome::Throttled, None, 0.5),
            Some(Duration::from_secs(60))
        );
        // Retry-After is honoured...
        assert_eq!(
            retry_delay(1, Outcome::Throttled, Some(Duration::from_secs(120)), 0.5),
            Some(Duration::from_secs(120))
        );
        // ...but not beyond an hour, and never sooner than the schedule.
        assert_eq!(
            retry_delay(1, Outcome::Failed, Some(Duration::from_secs(86_400)), 0.5),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            retry_delay(4, Outcome::Failed, Some(Duration::from_secs(1)), 0.5),
            Some(Duration::from_secs(7200))
        );
        assert_eq!(retry_after(Some(" 30 ")), Some(Duration::from_secs(30)));
        assert_eq!(retry_after(Some("Wed, 21 Oct 2026 07:28:00 GMT")), None);
        assert_eq!(
            [
                None,
                Some(200),
                Some(204),
                Some(301),
                Some(410),
                Some(429),
                Some(500)
            ]
            .map(Outcome::of),
            [
                Outcome::Throttled,
                Outcome::Delivered,
                Outcome::Delivered,
                Outcome::Failed,
                Outcome::Gone,
                Outcome::Throttled,
                Outcome::Failed
            ]
        );
    }
}
