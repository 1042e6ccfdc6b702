//! A generic hook for any other system (a phone system's "call ended", an in-house CRM), signed
//! per the Standard Webhooks spec: `webhook-id`, `webhook-timestamp`, and `webhook-signature`
//! with space-separated `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` entries under a
//! `whsec_` secret.
//!
//! Payloads follow the spec's recommended shape, `{"type", "timestamp", "data"}`:
//! - `ticket.closed`: `data` = `{"ticket_ref", "contact": {"email", "phone", "external_id",
//!   "locale", "time_zone", "name"}, "agent_ref", "team_ref", "closed_at"}`;
//! - `rating.created` / `rating.updated`: `data` = `{"rating_ref", "metric", "score", "comment",
//!   "ticket_ref", "agent_ref", "team_ref", "contact", "rated_at"}`.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;

use super::{
    check_age, common_settings, config_body, finish, hmac_sha256, json_body, requester, same,
    text_at, time_at, unix_seconds, Credentials, HookRequest, Parsed, Platform, Rejection,
    SignedContent,
};
use crate::model::{
    ContactRef, InvalidValue, Metric, PlatformEvent, PlatformRating, Score, TicketClosed,
};
use crate::secret::Secret;

pub const NAME: &str = "generic";

pub const PLATFORM: Platform = Platform {
    name: NAME,
    channel: "webhook",
    signed: SignedContent::TimestampAndBody("webhook-timestamp"),
    configure,
    verify,
    parse,
    lookup: None,
};

/// Decodes secrets as the reference Python library does (`base64.b64decode` after adding
/// padding): padding optional, stray low bits in the last character ignored.
const LENIENT_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// The key of a `whsec_` secret: the base64 after the prefix.
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key = LENIENT_BASE64.decode(encoded).ok()?;
    // Standard Webhooks secrets carry 24 to 64 random bytes; fewer than 16 can be guessed.
    Some(key).filter(|k| k.len() >= super::MIN_SECRET_BYTES)
}

/// The `v1,<base64>` signature of a message.
pub fn signature(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> String {
    let mac = hmac_sha256(
        key,
        &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
    );
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac)
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigBody {
    secret: Option<String>,
    #[serde(default)]
    tolerance_seconds: Option<i64>,
}

fn configure(body: &Value) -> Result<Credentials, Vec<InvalidValue>> {
    let body: ConfigBody = config_body(body)?;
    let mut errors = Vec::new();
    let settings = common_settings(body.tolerance_seconds, &None, &mut errors);
    let mut secrets = BTreeMap::new();
    match body.secret.as_deref().map(str::trim) {
        Some(s) if secret_key(s).is_some() => {
            secrets.insert("secret".to_owned(), Secret::new(s));
        }
        _ => errors.push(InvalidValue::new(
            "secret",
            "a Standard Webhooks secret: whsec_ followed by base64 of 24 to 64 random bytes",
        )),
    }
    finish(settings, secrets, errors)
}

fn verify(req: &HookRequest, creds: &Credentials) -> Result<(), Rejection> {
    let id = req
        .header("webhook-id")
        .ok_or(Rejection::Missing("webhook-id"))?;
    let timestamp = req
        .header("webhook-timestamp")
        .ok_or(Rejection::Missing("webhook-timestamp"))?;
    let given = req
        .header("webhook-signature")
        .ok_or(Rejection::Missing("webhook-signature"))?;
    let key = creds
        .secret("secret")
        .and_then(|s| secret_key(s.expose()))
        .ok_or(Rejection::Mismatch("webhook-signature"))?;
    let expected = signature(&key, id, timestamp, req.body);
    // Entries of other versions (v1a, v2) are skipped, not errors; any matching v1 entry counts.
    let matched = given
        .split(' ')
        .filter(|entry| entry.starts_with("v1,"))
        .fold(false, |found, entry| {
            found | same(entry.as_bytes(), expected.as_bytes())
        });
    if !matched {
        return Err(Rejection::Mismatch("webhook-signature"));
    }
    let signed_at = unix_seconds(timestamp, "webhook-timestamp")?;
    check_age(signed_at, req.now, creds.tolerance_seconds())
}

fn contact(v: &Value, region: &str) -> ContactRef {
    let mut c = requester(
        text_at(v, "/email"),
        text_at(v, "/phone"),
        text_at(v, "/external_id"),
        text_at(v, "/locale"),
        region,
    );
    c.time_zone = text_at(v, "/time_zone");
    c
}

fn parse(req: &HookRequest, _creds: &Credentials, region: &str) -> Result<Parsed, InvalidValue> {
    let body = json_body(req)?;
    let kind = text_at(&body, "/type")
        .ok_or_else(|| InvalidValue::new("type", "a message names its type"))?;
    let data = body.get("data").cloned().unwrap_or_default();
    let when = time_at(&body, "/timestamp").unwrap_or(req.now);
    let mut parsed = Parsed {
        delivery_ref: req.header("webhook-id").map(str::to_owned),
        kind: kind.clone(),
        events: Vec::new(),
        unreadable: None,
    };
    let person = data.get("contact").cloned().unwrap_or_default();
    match kind.as_str() {
        "ticket.closed" => {
            let ticket = text_at(&data, "/ticket_ref")
                .ok_or_else(|| InvalidValue::new("data.ticket_ref", "is required"))?;
            parsed
                .events
                .push(PlatformEvent::TicketClosed(TicketClosed {
                    platform: NAME.into(),
                    ticket_ref: ticket,
                    requester: contact(&person, region),
                    requester_platform_id: None,
                    requester_name: text_at(&person, "/name"),
                    assignee_ref: text_at(&data, "/agent_ref"),
                    team_ref: text_at(&data, "/team_ref"),
                    closed_at: time_at(&data, "/closed_at").unwrap_or(when),
                }));
        }
        "rating.created" | "rating.updated" => {
            let rating_ref = text_at(&data, "/rating_ref")
                .ok_or_else(|| InvalidValue::new("data.rating_ref", "is required"))?;
            let metric: Metric = text_at(&data, "/metric")
                .unwrap_or_else(|| "csat".into())
                .parse()?;
            let value = data
                .get("score")
                .and_then(Value::as_i64)
                .ok_or_else(|| InvalidValue::new("data.score", "a whole number is required"))?;
            let score = Score::new(metric, value)?;
            parsed
                .events
                .push(PlatformEvent::PlatformRating(PlatformRating {
                    platform: NAME.into(),
                    rating_ref,
                    score,
                    comment: text_at(&data, "/comment"),
                    reason: text_at(&data, "/reason"),
                    ticket_ref: text_at(&data, "/ticket_ref"),
                    agent_ref: text_at(&data, "/agent_ref"),
                    team_ref: text_at(&data, "/team_ref"),
                    requester: contact(&person, region),
                    rated_at: time_at(&data, "/rated_at").unwrap_or(when),
                    raw_value: data.get("score").cloned().unwrap_or_default(),
                }));
        }
        _ => {}
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{at, headers};
    use super::*;
    use serde_json::json;

    fn check(
        secret: &str,
        id: &str,
        ts: &str,
        sig: &str,
        body: &str,
        now: &str,
    ) -> Result<(), Rejection> {
        let creds = configure(&json!({"secret": secret})).unwrap();
        let h = headers(&[
            ("webhook-id", id),
            ("webhook-timestamp", ts),
            ("webhook-signature", sig),
        ]);
        verify(
            &HookRequest {
                headers: &h,
                query: None,
                body: body.as_bytes(),
                now: at(now),
            },
            &creds,
        )
    }

    #[test]
    fn signs_as_the_reference_libraries_do() {
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(key.len(), 24);
        assert_eq!(
            signature(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                "1614265330",
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let key = secret_key("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        assert_eq!(
            signature(
                &key,
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                "1649367553",
                br#"{"email":"test@example.com","username":"test_user"}"#
            ),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
        // Unpadded secrets, as the Python library accepts them.
        assert!(secret_key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS").is_some());
        assert!(secret_key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwBr").is_some());
        assert!(secret_key("whsec_").is_none());
        assert!(secret_key("").is_none());
    }

    #[test]
    fn verifies_lists_of_signatures_and_rejects_the_rest() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let (id, ts, body) = (
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            r#"{"test": 2432232314}"#,
        );
        let now = "2021-02-25T15:02:10Z"; // 1614265330
        let good = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert_eq!(check(secret, id, ts, good, body, now), Ok(()));
        let listed = format!(
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= {good} v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
        );
        assert_eq!(check(secret, id, ts, &listed, body, now), Ok(()));
        for wrong in [
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=",
            "v1,",
            "v1,g0hM9SsE+OTPJTGt",
            "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ] {
            assert_eq!(
                check(secret, id, ts, wrong, body, now),
                Err(Rejection::Mismatch("webhook-signature")),
                "{wrong}"
            );
        }
        // The other message id, or a replay past five minutes.
        assert!(check(secret, "msg_other", ts, good, body, now).is_err());
        assert_eq!(
            check(secret, id, ts, good, body, "2021-02-25T15:07:11Z"),
            Err(Rejection::Stale(301))
        );
        assert_eq!(
            check(secret, id, ts, good, body, "2021-02-25T15:07:10Z"),
            Ok(())
        );
        assert!(matches!(
            check(secret, id, "soon", good, body, now),
            Err(Rejection::Mismatch(_))
        ));
    }

    #[test]
    fn reads_closed_tickets_and_ratings() {
        let creds =
            configure(&json!({"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})).unwrap();
        let run = |v: Value| {
            let body = serde_json::to_vec(&v).unwrap();
            let h = headers(&[("webhook-id", "msg_1")]);
            parse(
                &HookRequest {
                    headers: &h,
                    query: None,
                    body: &body,
                    now: at("2026-11-24T10:00:00Z"),
                },
                &creds,
                "DK",
            )
        };
        let parsed = run(json!({"type": "ticket.closed", "timestamp": "2026-11-24T09:00:00Z",
            "data": {"ticket_ref": "CALL-9", "agent_ref": "agent-7",
                     "contact": {"phone": "22334455", "locale": "da", "time_zone": "Europe/Copenhagen"}}}))
        .unwrap();
        assert_eq!(parsed.delivery_ref.as_deref(), Some("msg_1"));
        let [PlatformEvent::TicketClosed(t)] = parsed.events.as_slice() else {
            panic!("{parsed:?}")
        };
        assert_eq!(t.requester.identities[0].value(), "+4522334455");
        assert_eq!(t.requester.time_zone.as_deref(), Some("Europe/Copenhagen"));
        let parsed = run(json!({"type": "rating.created",
            "data": {"rating_ref": "r-1", "metric": "nps", "score": 9}}))
        .unwrap();
        assert!(matches!(
            parsed.events.as_slice(),
            [PlatformEvent::PlatformRating(r)] if r.score.value() == 9
        ));
        assert!(run(json!({"type": "rating.created",
            "data": {"rating_ref": "r-1", "metric": "nps", "score": 11}}))
        .is_err());
        assert!(run(json!({"type": "contact.updated", "data": {}}))
            .unwrap()
            .events
            .is_empty());
    }
}
