//! Chatwoot: from 4.11 webhooks are signed, `X-Chatwoot-Signature: sha256=<hex HMAC-SHA256 of
//! "{timestamp}.{body}">` with `X-Chatwoot-Timestamp`, and `X-Chatwoot-Delivery` names the
//! delivery across retries. Older self-hosted Chatwoot signs nothing: such a tenant may instead
//! put a secret token in the hook URL (`?token=…`), and only when it configured one.
//!
//! A resolved conversation is `conversation_status_changed` with status `resolved`; a CSAT
//! answer is `message_updated` on the `input_csat` message.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    check_age, common_settings, config_body, filled, finish, hex, hmac_sha256, json_body,
    platform_identity, requester, same, text_at, time_at, unix_seconds, Credentials, HookRequest,
    Parsed, Platform, Rejection, SignedContent,
};
use crate::model::{
    ContactRef, InvalidValue, Metric, PlatformEvent, PlatformRating, Scale, Score, TicketClosed,
};
use crate::secret::Secret;

pub const NAME: &str = "chatwoot";
pub const SIGNATURE_HEADER: &str = "x-chatwoot-signature";
pub const TIMESTAMP_HEADER: &str = "x-chatwoot-timestamp";
pub const DELIVERY_HEADER: &str = "x-chatwoot-delivery";

pub const PLATFORM: Platform = Platform {
    name: NAME,
    channel: "chatwoot",
    signed: SignedContent::TimestampAndBody(TIMESTAMP_HEADER),
    configure,
    verify,
    parse,
    lookup: None,
};

/// `X-Chatwoot-Signature` for a body sent at `timestamp` (Unix seconds).
pub fn signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex(&hmac_sha256(
            secret.as_bytes(),
            &[timestamp.as_bytes(), b".", body]
        ))
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigBody {
    #[serde(default)]
    webhook_secret: Option<String>,
    /// For Chatwoot before 4.11, which does not sign: a token the hook URL must carry.
    #[serde(default)]
    url_token: Option<String>,
    #[serde(default)]
    tolerance_seconds: Option<i64>,
}

fn configure(body: &Value) -> Result<Credentials, Vec<InvalidValue>> {
    let body: ConfigBody = config_body(body)?;
    let mut errors = Vec::new();
    let settings = common_settings(body.tolerance_seconds, &None, &mut errors);
    let mut secrets = BTreeMap::new();
    for (name, value) in [
        ("webhook_secret", &body.webhook_secret),
        ("url_token", &body.url_token),
    ] {
        if let Some(v) = filled(value) {
            secrets.insert(name.to_owned(), Secret::new(v));
        }
    }
    if secrets.is_empty() {
        errors.push(InvalidValue::new(
            "webhook_secret",
            "is required (or, for Chatwoot before 4.11, which signs nothing, url_token)",
        ));
    }
    finish(settings, secrets, errors)
}

fn verify(req: &HookRequest, creds: &Credentials) -> Result<(), Rejection> {
    if let Some(secret) = creds.secret("webhook_secret") {
        let given = req
            .header(SIGNATURE_HEADER)
            .ok_or(Rejection::Missing("X-Chatwoot-Signature"))?;
        let timestamp = req
            .header(TIMESTAMP_HEADER)
            .ok_or(Rejection::Missing("X-Chatwoot-Timestamp"))?;
        let expected = signature(secret.expose(), timestamp, req.body);
        if !same(
            given.trim().to_ascii_lowercase().as_bytes(),
            expected.as_bytes(),
        ) {
            return Err(Rejection::Mismatch("X-Chatwoot-Signature"));
        }
        let signed_at = unix_seconds(timestamp, "X-Chatwoot-Timestamp")?;
        return check_age(signed_at, req.now, creds.tolerance_seconds());
    }
    let token = creds
        .secret("url_token")
        .ok_or(Rejection::Mismatch("token"))?;
    let given = req
        .query_param("token")
        .ok_or(Rejection::Missing("token"))?;
    if !same(given.as_bytes(), token.expose().as_bytes()) {
        return Err(Rejection::Mismatch("token"));
    }
    Ok(())
}

/// The contact of a conversation: `meta.sender` in conversation payloads.
fn contact(sender: &Value, region: &str) -> ContactRef {
    let mut c = requester(
        text_at(sender, "/email"),
        text_at(sender, "/phone_number"),
        text_at(sender, "/identifier"),
        text_at(sender, "/additional_attributes/language"),
        region,
    );
    if let Some(id) = text_at(sender, "/id") {
        c.identities
            .push(platform_identity(NAME, &format!("contact:{id}")));
    }
    c
}

/// When Chatwoot sent the delivery: the signed `X-Chatwoot-Timestamp`, else the receive time.
/// A resolved conversation's `timestamp` is its last activity, and a CSAT message's
/// `created_at` is when the survey was sent: neither is when the event happened.
fn sent_at(req: &HookRequest) -> DateTime<Utc> {
    req.header(TIMESTAMP_HEADER)
        .and_then(|t| unix_seconds(t, TIMESTAMP_HEADER).ok())
        .unwrap_or(req.now)
}

fn parse(req: &HookRequest, _creds: &Credentials, region: &str) -> Result<Parsed, InvalidValue> {
    let body = json_body(req)?;
    let event = text_at(&body, "/event")
        .ok_or_else(|| InvalidValue::new("event", "a webhook names its event"))?;
    let mut parsed = Parsed {
        delivery_ref: req.header(DELIVERY_HEADER).map(str::to_owned),
        kind: event.clone(),
        events: Vec::new(),
        unreadable: None,
    };
    match event.as_str() {
        "conversation_status_changed" => {
            let resolved = text_at(&body, "/status").is_some_and(|s| s == "resolved");
            if let (true, Some(id)) = (resolved, text_at(&body, "/id")) {
                let sender = body.pointer("/meta/sender").cloned().unwrap_or_default();
                parsed
                    .events
                    .push(PlatformEvent::TicketClosed(TicketClosed {
                        platform: NAME.into(),
                        ticket_ref: id,
                        requester: contact(&sender, region),
                        requester_platform_id: None,
                        requester_name: text_at(&sender, "/name"),
                        assignee_ref: text_at(&body, "/meta/assignee/id"),
                        team_ref: text_at(&body, "/meta/team/id"),
                        // `updated_at` moved when the status did (Chatwoot's conversation
                        // presenter sends it, as float seconds); `timestamp` is the last activity.
                        closed_at: time_at(&body, "/updated_at").unwrap_or_else(|| sent_at(req)),
                    }));
            }
        }
        "message_updated" | "message_created" => {
            let csat = text_at(&body, "/content_type").is_some_and(|t| t == "input_csat");
            let answer = "/content_attributes/submitted_values/csat_survey_response";
            let rating = body
                .pointer(&format!("{answer}/rating"))
                .and_then(Value::as_i64);
            if let (true, Some(rating), Some(message)) = (csat, rating, text_at(&body, "/id")) {
                let conversation = body.get("conversation").cloned().unwrap_or_default();
                let sender = conversation
                    .pointer("/meta/sender")
                    .or_else(|| body.get("contact"))
                    .cloned()
                    .unwrap_or_default();
                parsed
                    .events
                    .push(PlatformEvent::PlatformRating(PlatformRating {
                        platform: NAME.into(),
                        // The survey message: a changed answer updates the same message.
                        rating_ref: format!("message:{message}"),
                        score: Score::on_scale(Metric::Csat, rating, Scale::OneToFive)?,
                        comment: text_at(&body, &format!("{answer}/feedback_message")),
                        reason: None,
                        ticket_ref: text_at(&conversation, "/display_id")
                            .or_else(|| text_at(&conversation, "/id")),
                        agent_ref: text_at(&conversation, "/meta/assignee/id"),
                        team_ref: text_at(&conversation, "/meta/team/id"),
                        requester: contact(&sender, region),
                        // The answer's time: the message's update time where the payload
                        // has one, else when Chatwoot sent the delivery.
                        rated_at: time_at(&body, "/updated_at").unwrap_or_else(|| sent_at(req)),
                        raw_value: json!(rating),
                    }));
            }
        }
        _ => {}
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{at, fixture, headers};
    use super::*;

    const VECTOR_BODY: &str = r#"{"event":"conversation_status_changed","id":42,"status":"resolved","changed_attributes":[{"status":{"previous_value":"open","current_value":"resolved"}}]}"#;
    const VECTOR_SIGNATURE: &str =
        "sha256=8c9367de2ad8577eaf1dbf6a6eb8dc078f5d6c4e520c9be73de710cdfb5959fd";

    fn signed() -> Credentials {
        configure(&json!({"webhook_secret": "test_webhook_secret"})).unwrap()
    }

    fn check(
        pairs: &[(&str, &str)],
        query: Option<&str>,
        body: &[u8],
        now: &str,
        creds: &Credentials,
    ) -> Result<(), Rejection> {
        let h = headers(pairs);
        verify(
            &HookRequest {
                headers: &h,
                query,
                body,
                now: at(now),
            },
            creds,
        )
    }

    fn events_sent_at(name: &str, sent: &str) -> Vec<PlatformEvent> {
        let body = fixture(name);
        let ts = at(sent).timestamp().to_string();
        let h = headers(&[(TIMESTAMP_HEADER, ts.as_str())]);
        let req = HookRequest {
            headers: &h,
            query: None,
            body: &body,
            now: at("2026-11-25T12:00:00Z"),
        };
        parse(&req, &signed(), "DK").unwrap().events
    }

    #[test]
    fn times_are_when_chatwoot_sent_the_event() {
        // The conversation's `timestamp` is its last activity; the CSAT message's `created_at`
        // is when the survey was sent. Neither is when it was resolved or answered.
        let resolved = events_sent_at("chatwoot_conversation_resolved", "2026-11-25T11:59:58Z");
        let [PlatformEvent::TicketClosed(t)] = resolved.as_slice() else {
            panic!("{resolved:?}")
        };
        assert_eq!(
            t.closed_at.timestamp(),
            1764072000,
            "the conversation's updated_at"
        );
        assert_ne!(t.closed_at.timestamp(), 1764071000, "not its last activity");
        let answered = events_sent_at("chatwoot_csat_submitted", "2026-11-25T11:59:59Z");
        let [PlatformEvent::PlatformRating(r)] = answered.as_slice() else {
            panic!("{answered:?}")
        };
        assert_eq!(r.rated_at, at("2026-11-25T11:59:59Z"));
    }

    #[test]
    fn signs_and_verifies_the_vector() {
        assert_eq!(
            signature("test_webhook_secret", "1774708578", VECTOR_BODY.as_bytes()),
            VECTOR_SIGNATURE
        );
        let body = VECTOR_BODY.as_bytes();
        let sent = "2026-03-28T14:36:18Z"; // 1774708578
        let good = [
            (SIGNATURE_HEADER, VECTOR_SIGNATURE),
            (TIMESTAMP_HEADER, "1774708578"),
        ];
        assert_eq!(check(&good, None, body, sent, &signed()), Ok(()));
        assert!(matches!(
            check(&good, None, body, "2026-03-28T15:36:18Z", &signed()),
            Err(Rejection::Stale(3600))
        ));
        let other_time = [
            (SIGNATURE_HEADER, VECTOR_SIGNATURE),
            (TIMESTAMP_HEADER, "1774708579"),
        ];
        assert_eq!(
            check(&other_time, None, body, sent, &signed()),
            Err(Rejection::Mismatch("X-Chatwoot-Signature"))
        );
        assert_eq!(
            check(
                &[(TIMESTAMP_HEADER, "1774708578")],
                None,
                body,
                sent,
                &signed()
            ),
            Err(Rejection::Missing("X-Chatwoot-Signature"))
        );
    }

    #[test]
    fn unsigned_chatwoot_needs_the_url_token() {
        let token = configure(&json!({"url_token": "0123456789abcdef0123"})).unwrap();
        let body = VECTOR_BODY.as_bytes();
        let now = "2026-03-28T14:36:18Z";
        assert_eq!(
            check(&[], Some("token=0123456789abcdef0123"), body, now, &token),
            Ok(())
        );
        assert_eq!(
            check(&[], Some("token=0123456789abcdef0124"), body, now, &token),
            Err(Rejection::Mismatch("token"))
        );
        assert_eq!(
            check(&[], None, body, now, &token),
            Err(Rejection::Missing("token"))
        );
        // Without either credential nothing is configured: no unsigned hooks by default.
        assert!(configure(&json!({})).is_err());
        assert!(configure(&json!({"url_token": "short"})).is_err());
    }

    fn parse_json(v: &Value, delivery: &str) -> Parsed {
        let body = serde_json::to_vec(v).unwrap();
        let h = headers(&[(DELIVERY_HEADER, delivery)]);
        parse(
            &HookRequest {
                headers: &h,
                query: None,
                body: &body,
                now: at("2026-11-24T10:00:00Z"),
            },
            &signed(),
            "DK",
        )
        .unwrap()
    }

    #[test]
    fn reads_resolved_conversations_and_csat_answers() {
        let resolved = json!({"event": "conversation_status_changed", "id": 42, "status": "resolved",
            "timestamp": 1795000000, "channel": "Channel::WebWidget",
            "meta": {"sender": {"id": 9, "name": "Anna", "email": "anna@example.com",
                                "phone_number": "+4522334455", "identifier": null, "type": "contact"},
                     "assignee": {"id": 3, "name": "Bo"}, "team": {"id": 2}},
            "changed_attributes": [{"status": {"previous_value": "open", "current_value": "resolved"}}]});
        let parsed = parse_json(&resolved, "d-1");
        assert_eq!(parsed.delivery_ref.as_deref(), Some("d-1"));
        let [PlatformEvent::TicketClosed(t)] = parsed.events.as_slice() else {
            panic!("{parsed:?}")
        };
        assert_eq!(
            (
                t.ticket_ref.as_str(),
                t.assignee_ref.as_deref(),
                t.team_ref.as_deref()
            ),
            ("42", Some("3"), Some("2"))
        );
        let ids: Vec<&str> = t.requester.identities.iter().map(|i| i.value()).collect();
        assert_eq!(
            ids,
            ["anna@example.com", "+4522334455", "chatwoot:contact:9"]
        );

        let mut pending = resolved.clone();
        pending["status"] = json!("pending");
        assert!(parse_json(&pending, "d-2").events.is_empty());

        let csat = json!({"event": "message_updated", "id": 501, "content_type": "input_csat",
            "message_type": "template", "created_at": "2026-11-24 09:58:00 UTC",
            "content_attributes": {"submitted_values": {"csat_survey_response":
                {"rating": 2, "feedback_message": "Ventede længe"}}},
            "conversation": {"id": 77, "display_id": 42,
                "meta": {"sender": {"id": 9, "email": "anna@example.com"}, "assignee": {"id": 3}}}});
        let parsed = parse_json(&csat, "d-3");
        let [PlatformEvent::PlatformRating(r)] = parsed.events.as_slice() else {
            panic!("{parsed:?}")
        };
        assert_eq!((r.score.value(), r.rating_ref.as_str()), (2, "message:501"));
        assert_eq!(r.ticket_ref.as_deref(), Some("42"));
        assert_eq!(r.agent_ref.as_deref(), Some("3"));
        assert_eq!(r.comment.as_deref(), Some("Ventede længe"));
        // The survey message before it is answered carries no rating.
        let mut unanswered = csat.clone();
        unanswered["content_attributes"] = json!({});
        assert!(parse_json(&unanswered, "d-4").events.is_empty());
    }
}
