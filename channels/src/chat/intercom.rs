//! Intercom: notifications signed with `X-Hub-Signature: sha1=<hex HMAC-SHA1 of the body>`
//! under the app's client secret. There is no timestamp to bound a replay, so a notification is
//! taken once by its id (`notif_…`) and by its signed body. Topics acted on:
//! `conversation.admin.closed` and `conversation.rating.added`; `ping` is answered and nothing
//! else happens.
//!
//! The customer is never the agent. A conversation an admin started (`source.delivered_as:
//! "admin_initiated"`) has the admin as `source.author`; the customer is in `contacts.contacts[]`
//! (API 2.x) or `user` (1.x notifications), and `source.author` counts only when it is a
//! customer. Notifications name the customer by id; with an access token the gateway looks the
//! contact up (`GET /contacts/{id}`), without one the survey is suppressed, never addressed to
//! someone else.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    config_body, finish, hex, hmac_sha1, json_body, lookup_json, platform_identity, requester,
    required_secret, same, text_at, time_at, Credentials, FoundRequester, HookRequest, LookupError,
    LookupFuture, Parsed, Platform, Rejection, RequesterLookup, SignedContent,
};
use crate::model::{
    ContactRef, InvalidValue, Metric, PlatformEvent, PlatformRating, Scale, Score, TicketClosed,
};
use crate::outbound::Outbound;
use crate::secret::Secret;

pub const NAME: &str = "intercom";
pub const SIGNATURE_HEADER: &str = "x-hub-signature";

pub const PLATFORM: Platform = Platform {
    name: NAME,
    channel: "intercom",
    signed: SignedContent::Body,
    configure,
    verify,
    parse,
    lookup: Some(RequesterLookup { tenant_api, fetch }),
};

/// The types Intercom gives people who are customers; `admin`, `bot` and `team` are not.
const CUSTOMER_TYPES: &[&str] = &["contact", "user", "lead"];

/// The API version the contact look-up asks for.
const API_VERSION: &str = "2.11";

/// `X-Hub-Signature` for a body: `sha1=` and the lowercase hex HMAC-SHA1.
pub fn signature(client_secret: &str, body: &[u8]) -> String {
    format!("sha1={}", hex(&hmac_sha1(client_secret.as_bytes(), body)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigBody {
    client_secret: Option<String>,
    /// An access token with "Read users and companies", for looking up customers that
    /// notifications name only by id.
    #[serde(default)]
    access_token: Option<String>,
    /// Where the workspace is hosted: `us` (default), `eu` or `au`.
    #[serde(default)]
    region: Option<String>,
}

fn configure(body: &Value) -> Result<Credentials, Vec<InvalidValue>> {
    let body: ConfigBody = config_body(body)?;
    let mut errors = Vec::new();
    let mut settings = serde_json::Map::new();
    let mut secrets = BTreeMap::new();
    if let Some(s) = required_secret(&body.client_secret, "client_secret", &mut errors) {
        secrets.insert("client_secret".to_owned(), s);
    }
    if let Some(token) = body
        .access_token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        secrets.insert("access_token".to_owned(), Secret::new(token));
    }
    if let Some(region) = &body.region {
        if hosted_api(region).is_none() {
            errors.push(InvalidValue::new("region", "one of us, eu, au"));
        }
        settings.insert("region".into(), region.clone().into());
    }
    finish(settings, secrets, errors)
}

/// Intercom's API for a hosting region (Intercom's regional hosting documentation).
fn hosted_api(region: &str) -> Option<&'static str> {
    match region {
        "us" => Some("https://api.intercom.io"),
        "eu" => Some("https://api.eu.intercom.io"),
        "au" => Some("https://api.au.intercom.io"),
        _ => None,
    }
}

/// The contacts API of the tenant's hosting region. (Without an access token the look-up
/// itself answers that it is not configured.)
fn tenant_api(creds: &Credentials) -> Option<String> {
    hosted_api(creds.setting("region").unwrap_or("us")).map(str::to_owned)
}

/// `GET {api}/contacts/{id}` with the access token: the customer's addresses and name.
async fn lookup_contact(
    http: &Outbound,
    base: &str,
    creds: &Credentials,
    contact_id: &str,
    region: &str,
    timeout: Duration,
) -> Result<FoundRequester, LookupError> {
    let token = creds
        .secret("access_token")
        .ok_or(LookupError::NotConfigured)?;
    // Intercom's ids are hex; nothing else may reach the path.
    let id: String = contact_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let request = http
        .request(reqwest::Method::GET, &format!("{base}/contacts/{id}"))
        .map_err(|e| LookupError::Transport(e.to_string()))?
        .bearer_auth(token.expose())
        .header("accept", "application/json")
        .header("intercom-version", API_VERSION);
    let body = lookup_json(request, timeout).await?;
    if !text_at(&body, "/role").is_some_and(|r| CUSTOMER_TYPES.contains(&r.as_str())) {
        return Err(LookupError::Body("the id does not name a customer".into()));
    }
    let locale =
        text_at(&body, "/language_override").or_else(|| text_at(&body, "/browser_language"));
    let contact = requester(
        text_at(&body, "/email"),
        text_at(&body, "/phone"),
        text_at(&body, "/external_id"),
        locale,
        region,
    );
    Ok((contact, text_at(&body, "/name")))
}

fn fetch<'a>(
    http: &'a Outbound,
    base: &'a str,
    creds: &'a Credentials,
    id: &'a str,
    region: &'a str,
    timeout: Duration,
) -> LookupFuture<'a> {
    Box::pin(lookup_contact(http, base, creds, id, region, timeout))
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

fn is_customer(person: &Value) -> bool {
    text_at(person, "/type").is_some_and(|t| CUSTOMER_TYPES.contains(&t.as_str()))
}

/// The customer of a conversation, never an admin.
struct Customer {
    contact: ContactRef,
    /// Intercom's id of the contact, to look up when the notification carries no address.
    id: Option<String>,
    name: Option<String>,
}

/// The customer: the first customer in `contacts.contacts[]` (API 2.x), else `user` (1.x);
/// `source.author` adds an address only when it is that customer.
fn customer(item: &Value, region: &str) -> Customer {
    let listed = item
        .pointer("/contacts/contacts")
        .and_then(Value::as_array)
        .and_then(|all| all.iter().find(|c| is_customer(c)));
    let user = item.get("user").filter(|u| is_customer(u));
    let author = item.pointer("/source/author").filter(|a| is_customer(a));
    let id = listed
        .or(user)
        .and_then(|c| text_at(c, "/id"))
        .or_else(|| author.and_then(|a| text_at(a, "/id")));
    // The author speaks for the customer only when it is the customer.
    let author = author.filter(|a| id.is_none() || text_at(a, "/id") == id);
    let email = author
        .and_then(|a| text_at(a, "/email"))
        .or_else(|| user.and_then(|u| text_at(u, "/email")));
    let external = listed
        .and_then(|c| text_at(c, "/external_id"))
        .or_else(|| user.and_then(|u| text_at(u, "/user_id")));
    let name = author
        .and_then(|a| text_at(a, "/name"))
        .or_else(|| user.and_then(|u| text_at(u, "/name")));
    let mut contact = requester(email, None, external, None, region);
    if let Some(id) = &id {
        contact.identities.push(platform_identity(NAME, id));
    }
    Customer { contact, id, name }
}

/// The agent: the conversation's assigned admin (2.x `admin_assignee_id`, 1.x `assignee`).
fn agent(item: &Value) -> Option<String> {
    text_at(item, "/admin_assignee_id").or_else(|| {
        item.get("assignee")
            .filter(|a| text_at(a, "/type").as_deref() == Some("admin"))
            .and_then(|a| text_at(a, "/id"))
    })
}

fn parse(req: &HookRequest, _creds: &Credentials, region: &str) -> Result<Parsed, InvalidValue> {
    let body = json_body(req)?;
    let topic = text_at(&body, "/topic")
        .ok_or_else(|| InvalidValue::new("topic", "a notification names its topic"))?;
    let mut parsed = Parsed {
        delivery_ref: text_at(&body, "/id"),
        kind: topic.clone(),
        events: Vec::new(),
        unreadable: None,
    };
    let item = body.pointer("/data/item").cloned().unwrap_or(Value::Null);
    let conversation = text_at(&item, "/id");
    let when = time_at(&body, "/created_at").unwrap_or(req.now);
    match (topic.as_str(), conversation) {
        ("conversation.admin.closed", Some(conversation)) => {
            let customer = customer(&item, region);
            parsed
                .events
                .push(PlatformEvent::TicketClosed(TicketClosed {
                    platform: NAME.into(),
                    ticket_ref: conversation,
                    requester: customer.contact,
                    requester_platform_id: customer.id,
                    requester_name: customer.name,
                    assignee_ref: agent(&item),
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
            let mut contact = customer(&item, region).contact;
            if let Some(id) = text_at(&item, "/conversation_rating/contact/id") {
                let id = platform_identity(NAME, &id);
                if !contact.identities.contains(&id) {
                    contact.identities.push(id);
                }
            }
            parsed
                .events
                .push(PlatformEvent::PlatformRating(PlatformRating {
                    platform: NAME.into(),
                    // One rating per conversation; a changed one replaces it.
                    rating_ref: format!("conversation:{conversation}"),
                    score: Score::on_scale(Metric::Csat, rating, Scale::OneToFive)?,
                    comment: text_at(&item, "/conversation_rating/remark"),
                    reason: None,
                    ticket_ref: Some(conversation),
                    agent_ref: text_at(&item, "/conversation_rating/teammate/id")
                        .or_else(|| agent(&item)),
                    team_ref: text_at(&item, "/team_assignee_id"),
                    requester: contact,
                    // `conversation_rating.created_at` is when the rating was requested
                    // (Intercom's schema); the customer rated at its `updated_at`, else when
                    // the notification was made.
                    rated_at: time_at(&item, "/conversation_rating/updated_at").unwrap_or(when),
                    raw_value: json!(rating),
                }));
        }
        _ => {}
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{at, fixture, headers};
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
        let [PlatformEvent::PlatformRating(r)] = parsed.events.as_slice() else {
            panic!("{parsed:?}")
        };
        assert_eq!((r.score.value(), r.score.scale()), (5, Scale::OneToFive));
        assert_eq!(r.comment.as_deref(), Some("Great"));
        assert_eq!(r.rating_ref, "conversation:1");

        let closed = json!({"type": "notification_event", "id": "notif_2",
            "topic": "conversation.admin.closed", "created_at": 1795000000,
            "data": {"type": "notification_event_data", "item": {"type": "conversation",
              "id": "4711", "state": "closed", "admin_assignee_id": 814860, "team_assignee_id": "5",
              "source": {"author": {"type": "user", "id": "5ba682d2", "email": "anna@example.com",
                                    "name": "Anna"}},
              "contacts": {"type": "contact.list", "contacts": [
                  {"type": "contact", "id": "5ba682d2", "external_id": "crm-17"}]}}}});
        let body = serde_json::to_vec(&closed).unwrap();
        let parsed = parse(&request(&h, &body), &creds(), "DK").unwrap();
        let [PlatformEvent::TicketClosed(t)] = parsed.events.as_slice() else {
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

    fn closed(body: &[u8]) -> TicketClosed {
        let h = headers(&[]);
        let parsed = parse(&request(&h, body), &creds(), "DK").unwrap();
        match parsed.events.as_slice() {
            [PlatformEvent::TicketClosed(t)] => t.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_customer_of_an_admin_initiated_conversation_is_never_the_admin() {
        let body = fixture("intercom_conversation_admin_initiated_closed");
        let t = closed(&body);
        let values: Vec<&str> = t.requester.identities.iter().map(|i| i.value()).collect();
        assert_eq!(values, ["crm-99120", "intercom:6762f1261bb69f9f2193bba7"]);
        assert!(
            !values.iter().any(|v| v.contains("maja.holm")),
            "the admin's address"
        );
        assert_eq!(
            t.requester_platform_id.as_deref(),
            Some("6762f1261bb69f9f2193bba7")
        );
        assert_eq!(t.requester_name, None, "not the admin's name");
        assert!(
            super::super::needs_lookup(&t),
            "only an id: looked up, or suppressed"
        );
        assert_eq!(t.assignee_ref.as_deref(), Some("814860"));

        // Another customer's conversation with the same admin shares no identity with it.
        let other = String::from_utf8(body)
            .unwrap()
            .replace("6762f1261bb69f9f2193bba7", "5ba682d23d7cf92bef87bfd4")
            .replace("crm-99120", "crm-1");
        let u = closed(other.as_bytes());
        assert!(u
            .requester
            .identities
            .iter()
            .all(|i| !t.requester.identities.contains(i)));
    }

    #[test]
    fn a_1x_notification_names_the_customer_in_user_and_the_agent_in_assignee() {
        let t = closed(&fixture("intercom_v1_conversation_admin_closed"));
        let values: Vec<&str> = t.requester.identities.iter().map(|i| i.value()).collect();
        assert_eq!(
            values,
            [
                "sofie.dahl@example.com",
                "75067020-1204-495c-8edc-abb7d88bdd43",
                "intercom:5c9553cb27e377f24eed49f7"
            ]
        );
        assert_eq!(t.requester_name.as_deref(), Some("Sofie Dahl"));
        assert_eq!(t.assignee_ref.as_deref(), Some("1957471"));
        assert!(!super::super::needs_lookup(&t));
    }

    #[test]
    fn a_rating_is_dated_when_the_customer_rated() {
        let h = headers(&[]);
        let body = json!({"type": "notification_event", "id": "notif_9",
            "topic": "conversation.rating.added", "created_at": 1795000300,
            "data": {"item": {"type": "conversation", "id": "9",
              "conversation_rating": {"rating": 2, "remark": "", "created_at": 1795000000,
                                      "updated_at": 1795000200,
                                      "contact": {"type": "contact", "id": "c1"},
                                      "teammate": {"type": "admin", "id": "814860"}}}}});
        let body = serde_json::to_vec(&body).unwrap();
        let parsed = parse(&request(&h, &body), &creds(), "DK").unwrap();
        let [PlatformEvent::PlatformRating(r)] = parsed.events.as_slice() else {
            panic!("{parsed:?}")
        };
        assert_eq!(
            r.rated_at.timestamp(),
            1795000200,
            "updated_at, not created_at"
        );
        let without_update = String::from_utf8(body)
            .unwrap()
            .replace(",\"updated_at\":1795000200", "");
        let parsed = parse(&request(&h, without_update.as_bytes()), &creds(), "DK").unwrap();
        let [PlatformEvent::PlatformRating(r)] = parsed.events.as_slice() else {
            panic!("{parsed:?}")
        };
        assert_eq!(
            r.rated_at.timestamp(),
            1795000300,
            "the notification's time"
        );
    }
}
