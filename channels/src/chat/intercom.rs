//! Intercom: notifications signed with `X-Hub-Signature: sha1=<hex HMAC-SHA1 of the body>`
//! under the app's client secret. There is no timestamp to bound a replay, so a notification is
//! taken once by its id (`notif_…`). Topics acted on: `conversation.admin.closed` and
//! `conversation.rating.added`; `ping` is answered and nothing else happens.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    config_body, finish, hex, hmac_sha1, json_body, platform_identity, requester, required_secret,
    same, text_at, time_at, Credentials, HookRequest, Parsed, Platform, Rejection, SignedContent,
};
use crate::model::{
    ContactRef, InboundEvent, InvalidValue, Metric, PlatformRating, Scale, Score, TicketClosed,
};

pub const NAME: &str = "intercom";
pub const SIGNATURE_HEADER: &str = "x-hub-signature";

pub const PLATFORM: Platform = Platform {
    name: NAME,
    channel: "intercom",
    signed: SignedContent::Body,
    configure,
    verify,
    parse,
};

/// `X-Hub-Signature` for a body: `sha1=` and the lowercase hex HMAC-SHA1.
pub fn signature(client_secret: &str, body: &[u8]) -> String {
    format!("sha1={}", hex(&hmac_sha1(client_secret.as_bytes(), body)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigBody {
    client_secret: Option<String>,
}

fn configure(body: &Value) -> Result<Credentials, Vec<InvalidValue>> {
    let body: ConfigBody = config_body(body)?;
    let mut errors = Vec::new();
    let mut secrets = BTreeMap::new();
    if let Some(s) = required_secret(&body.client_secret, "client_secret", &mut errors) {
        secrets.insert("client_secret".to_owned(), s);
    }
    finish(serde_json::Map::new(), secrets, errors)
}

fn verify(req: &HookRequest, creds: &Credentials) -> Result<(), Rejection> {
    let given = req
        .header(SIGNATURE_HEADER)
        .ok_or(Rejection::Missing("X-Hub-Signature"))?;
    let secret = creds
        .secret("client_secret")
        .ok_or(Rejection::Mismatch("X-Hub-Signature"))?;
    let expected = signature(secret.expose(), req.body);
    if !same(
        given.trim().to_ascii_lowercase().as_bytes(),
        expected.as_bytes(),
    ) {
        return Err(Rejection::Mismatch("X-Hub-Signature"));
    }
    Ok(())
}

/// The customer of a conversation: its contacts list (current API), the legacy `user`, or the
/// author of its first message.
fn customer(item: &Value, region: &str) -> ContactRef {
    let email = text_at(item, "/source/author/email").or_else(|| text_at(item, "/user/email"));
    let external = text_at(item, "/contacts/contacts/0/external_id")
        .or_else(|| text_at(item, "/user/user_id"));
    let mut contact = requester(email, None, external, None, region);
    if let Some(id) = text_at(item, "/contacts/contacts/0/id").or_else(|| text_at(item, "/user/id"))
    {
        contact.identities.push(platform_identity(NAME, &id));
    }
    contact
}

fn parse(req: &HookRequest, _creds: &Credentials, region: &str) -> Result<Parsed, InvalidValue> {
    let body = json_body(req)?;
    let topic = text_at(&body, "/topic")
        .ok_or_else(|| InvalidValue::new("topic", "a notification names its topic"))?;
    let mut parsed = Parsed {
        delivery_ref: text_at(&body, "/id"),
        kind: topic.clone(),
        events: Vec::new(),
    };
    let item = body.pointer("/data/item").cloned().unwrap_or(Value::Null);
    let conversation = text_at(&item, "/id");
    let when = time_at(&body, "/created_at").unwrap_or(req.now);
    match (topic.as_str(), conversation) {
        ("conversation.admin.closed", Some(conversation)) => {
            parsed.events.push(InboundEvent::TicketClosed(TicketClosed {
                platform: NAME.into(),
                ticket_ref: conversation,
                requester: customer(&item, region),
                requester_platform_id: None,
                requester_name: text_at(&item, "/source/author/name")
                    .or_else(|| text_at(&item, "/user/name")),
                assignee_ref: text_at(&item, "/admin_assignee_id"),
                team_ref: text_at(&item, "/team_assignee_id"),
                closed_at: when,
            }));
        }
        ("conversation.rating.added", Some(conversation)) => {
            let rating = item
                .pointer("/conversation_rating/rating")
                .and_then(Value::as_i64)
                .ok_or_else(|| {
                    InvalidValue::new("conversation_rating", "a rating event carries a rating")
                })?;
            let mut contact = customer(&item, region);
            if let Some(id) = text_at(&item, "/conversation_rating/contact/id") {
                let id = platform_identity(NAME, &id);
                if !contact.identities.contains(&id) {
                    contact.identities.push(id);
                }
            }
            parsed
                .events
                .push(InboundEvent::PlatformRating(PlatformRating {
                    platform: NAME.into(),
                    // One rating per conversation; a changed one replaces it.
                    rating_ref: format!("conversation:{conversation}"),
                    score: Score::on_scale(Metric::Csat, rating, Scale::OneToFive)?,
                    comment: text_at(&item, "/conversation_rating/remark"),
                    reason: None,
                    ticket_ref: Some(conversation),
                    agent_ref: text_at(&item, "/conversation_rating/teammate/id")
                        .or_else(|| text_at(&item, "/admin_assignee_id")),
                    team_ref: text_at(&item, "/team_assignee_id"),
                    requester: contact,
                    rated_at: time_at(&item, "/conversation_rating/created_at").unwrap_or(when),
                    raw_value: json!(rating),
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

    const VECTOR_BODY: &str = r#"{"type":"notification_event","app_id":"abc123","data":{"type":"notification_event_data","item":{"type":"conversation","id":"1","conversation_rating":{"rating":5,"remark":"Great"}}},"id":"notif_1","topic":"conversation.rating.added","created_at":1700000000}"#;

    fn creds() -> Credentials {
        configure(&json!({"client_secret": "my_client_secret"})).unwrap()
    }

    fn request<'a>(h: &'a reqwest::header::HeaderMap, body: &'a [u8]) -> HookRequest<'a> {
        HookRequest {
            headers: h,
            query: None,
            body,
            now: at("2026-11-24T10:00:00Z"),
        }
    }

    #[test]
    fn signs_and_verifies_the_vector() {
        let expected = "sha1=e076243249e4d245170937246cb2989b37ca7dd4";
        assert_eq!(
            signature("my_client_secret", VECTOR_BODY.as_bytes()),
            expected
        );
        let h = headers(&[(SIGNATURE_HEADER, expected)]);
        assert_eq!(
            verify(&request(&h, VECTOR_BODY.as_bytes()), &creds()),
            Ok(())
        );
        let tampered = VECTOR_BODY.replace("\"rating\":5", "\"rating\":1");
        assert!(verify(&request(&h, tampered.as_bytes()), &creds()).is_err());
        let h = headers(&[(
            SIGNATURE_HEADER,
            "sha1=e076243249e4d245170937246cb2989b37ca7dd5",
        )]);
        assert_eq!(
            verify(&request(&h, VECTOR_BODY.as_bytes()), &creds()),
            Err(Rejection::Mismatch("X-Hub-Signature"))
        );
        let h = headers(&[]);
        assert_eq!(
            verify(&request(&h, VECTOR_BODY.as_bytes()), &creds()),
            Err(Rejection::Missing("X-Hub-Signature"))
        );
    }

    #[test]
    fn reads_ratings_closes_and_pings() {
        let h = headers(&[]);
        let parsed = parse(&request(&h, VECTOR_BODY.as_bytes()), &creds(), "DK").unwrap();
        assert_eq!(parsed.delivery_ref.as_deref(), Some("notif_1"));
        let [InboundEvent::PlatformRating(r)] = parsed.events.as_slice() else {
            panic!("{parsed:?}")
        };
        assert_eq!((r.score.value(), r.score.scale()), (5, Scale::OneToFive));
        assert_eq!(r.comment.as_deref(), Some("Great"));
        assert_eq!(r.rating_ref, "conversation:1");

        let closed = json!({"type": "notification_event", "id": "notif_2",
            "topic": "conversation.admin.closed", "created_at": 1795000000,
            "data": {"type": "notification_event_data", "item": {"type": "conversation",
              "id": "4711", "state": "closed", "admin_assignee_id": 814860, "team_assignee_id": "5",
              "source": {"author": {"type": "user", "email": "anna@example.com", "name": "Anna"}},
              "contacts": {"type": "contact.list", "contacts": [
                  {"type": "contact", "id": "5ba682d2", "external_id": "crm-17"}]}}}});
        let body = serde_json::to_vec(&closed).unwrap();
        let parsed = parse(&request(&h, &body), &creds(), "DK").unwrap();
        let [InboundEvent::TicketClosed(t)] = parsed.events.as_slice() else {
            panic!("{parsed:?}")
        };
        assert_eq!(t.ticket_ref, "4711");
        assert_eq!(t.assignee_ref.as_deref(), Some("814860"));
        let ids: Vec<&str> = t.requester.identities.iter().map(|i| i.value()).collect();
        assert_eq!(ids, ["anna@example.com", "crm-17", "intercom:5ba682d2"]);

        let ping = br#"{"type":"notification_event","topic":"ping","id":"notif_3","data":{"item":{"type":"ping","message":"hi"}}}"#;
        let parsed = parse(&request(&h, ping), &creds(), "DK").unwrap();
        assert!(parsed.events.is_empty());
        assert_eq!(parsed.kind, "ping");
        let out_of_range = VECTOR_BODY.replace("\"rating\":5", "\"rating\":6");
        assert!(parse(&request(&h, out_of_range.as_bytes()), &creds(), "DK").is_err());
    }
}
