//! Freshdesk signs nothing. Its automation rules call a webhook with HTTP basic auth or a
//! custom header the admin sets, so the tenant configures one of those and every request must
//! carry it. The body is whatever the admin wrote from placeholders: it is read through a field
//! mapping whose defaults match the template the README recommends. Satisfaction ratings come
//! as Freshdesk's rating object (`ratings.default_question` from 103 down to -103).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    basic_auth_matches, common_settings, config_body, filled, finish, json_body, mapped,
    platform_identity, requester, same, text_at, time_at, Credentials, HookRequest, Parsed,
    Platform, Rejection, SignedContent,
};
use crate::model::{
    InvalidValue, Metric, PlatformEvent, PlatformRating, Scale, Score, TicketClosed,
};
use crate::secret::Secret;

pub const NAME: &str = "freshdesk";

pub const PLATFORM: Platform = Platform {
    name: NAME,
    channel: "freshdesk",
    signed: SignedContent::Nothing,
    configure,
    verify,
    parse,
    lookup: None,
};

/// The recommended automation body (README), and where the mapping finds each field in it.
pub const DEFAULT_MAPPING: &[(&str, &str)] = &[
    ("ticket_id", "/ticket_id"),
    ("status", "/status"),
    ("requester_email", "/requester_email"),
    ("requester_phone", "/requester_phone"),
    ("requester_name", "/requester_name"),
    ("requester_id", "/requester_id"),
    ("agent", "/agent_email"),
    ("group", "/group_name"),
    ("updated_at", "/updated_at"),
];

/// Freshdesk's "Simple" content mode nests the chosen placeholders under `freshdesk_webhook`,
/// each named after its placeholder (`{{ticket.status}}` → `ticket_status`). Older accounts
/// name the requester `requester_*`, newer ones `ticket_contact_*` or `ticket_requester_*`
/// (captured deliveries in Zulip's Freshdesk integration and public consumers). Our field → the
/// keys that carry it, first found wins.
const SIMPLE_MODE_KEYS: &[(&str, &[&str])] = &[
    ("ticket_id", &["ticket_id"]),
    ("status", &["ticket_status"]),
    (
        "requester_email",
        &[
            "ticket_contact_email",
            "ticket_requester_email",
            "requester_email",
        ],
    ),
    (
        "requester_phone",
        &[
            "ticket_contact_phone",
            "ticket_contact_mobile",
            "ticket_requester_phone",
            "requester_phone",
        ],
    ),
    (
        "requester_name",
        &[
            "ticket_contact_name",
            "ticket_requester_name",
            "requester_name",
        ],
    ),
    ("agent_email", &["ticket_agent_email", "ticket_agent_name"]),
    ("group_name", &["ticket_group_name"]),
    ("updated_at", &["ticket_updated_at", "ticket_updated_on"]),
];

/// A simple-mode body, read into the shape of the recommended advanced body, so the default
/// mapping applies to both. `None` for any other body.
fn from_simple_mode(body: &Value) -> Option<Value> {
    let nested = body.get("freshdesk_webhook")?.as_object()?;
    let mut flat = serde_json::Map::new();
    for (ours, keys) in SIMPLE_MODE_KEYS {
        if let Some(v) = keys
            .iter()
            .filter_map(|k| nested.get(*k))
            .find(|v| !v.is_null() && v.as_str() != Some(""))
        {
            flat.insert((*ours).to_owned(), v.clone());
        }
    }
    Some(Value::Object(flat))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigBody {
    #[serde(default)]
    basic_user: Option<String>,
    #[serde(default)]
    basic_password: Option<String>,
    #[serde(default)]
    header_name: Option<String>,
    #[serde(default)]
    header_value: Option<String>,
    #[serde(default)]
    field_mapping: Option<BTreeMap<String, String>>,
}

fn configure(body: &Value) -> Result<Credentials, Vec<InvalidValue>> {
    let body: ConfigBody = config_body(body)?;
    let mut errors = Vec::new();
    let mut settings = common_settings(None, &body.field_mapping, &mut errors);
    let mut secrets = BTreeMap::new();
    match (filled(&body.basic_user), filled(&body.basic_password)) {
        (Some(user), Some(password)) => {
            settings.insert("basic_user".into(), user.into());
            secrets.insert("basic_password".to_owned(), Secret::new(password));
        }
        (None, None) => {}
        _ => errors.push(InvalidValue::new(
            "basic_password",
            "basic_user and basic_password go together",
        )),
    }
    match (filled(&body.header_name), filled(&body.header_value)) {
        (Some(name), Some(value)) => {
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                errors.push(InvalidValue::new("header_name", "not a header name"));
            }
            settings.insert("header_name".into(), name.to_ascii_lowercase().into());
            secrets.insert("header_value".to_owned(), Secret::new(value));
        }
        (None, None) => {}
        _ => errors.push(InvalidValue::new(
            "header_value",
            "header_name and header_value go together",
        )),
    }
    if secrets.is_empty() && errors.is_empty() {
        errors.push(InvalidValue::new(
            "basic_user",
            "Freshdesk signs nothing: set basic_user and basic_password, or header_name and \
             header_value, and the same in the automation rule's webhook",
        ));
    }
    finish(settings, secrets, errors)
}

fn verify(req: &HookRequest, creds: &Credentials) -> Result<(), Rejection> {
    // Every configured credential must be present and right.
    if let (Some(user), Some(password)) =
        (creds.setting("basic_user"), creds.secret("basic_password"))
    {
        let given = req
            .header("authorization")
            .ok_or(Rejection::Missing("Authorization"))?;
        if !basic_auth_matches(given, user, password.expose()) {
            return Err(Rejection::Mismatch("Authorization"));
        }
    }
    if let (Some(name), Some(value)) = (creds.setting("header_name"), creds.secret("header_value"))
    {
        let given = req
            .header(name)
            .ok_or(Rejection::Missing("the configured secret header"))?;
        if !same(given.as_bytes(), value.expose().as_bytes()) {
            return Err(Rejection::Mismatch("the configured secret header"));
        }
    }
    Ok(())
}

/// Freshdesk's satisfaction values on the CSAT 1–5 scale: happy and above is satisfied (4–5),
/// neutral is 3, unhappy and below 2 or 1. The platform's own value stays in the metadata.
fn csat_of(value: i64) -> Option<i64> {
    Some(match value {
        103 => 5,
        101 | 102 => 4,
        100 => 3,
        -101 | -102 => 2,
        -103 => 1,
        _ => return None,
    })
}

fn is_closed(status: &str) -> bool {
    matches!(
        status.trim().to_ascii_lowercase().as_str(),
        "resolved" | "closed" | "4" | "5"
    )
}

fn parse(req: &HookRequest, creds: &Credentials, region: &str) -> Result<Parsed, InvalidValue> {
    let body = json_body(req)?;
    let rating = body
        .get("satisfaction_rating")
        .filter(|r| r.is_object())
        .unwrap_or(&body);
    if let Some(value) = rating
        .pointer("/ratings/default_question")
        .and_then(Value::as_i64)
    {
        return parse_rating(rating, value, req, region);
    }
    // Simple mode is recognised unless the tenant maps fields itself.
    let body = match creds.settings.get("field_mapping") {
        None => from_simple_mode(&body).unwrap_or(body),
        Some(_) => body,
    };
    let mapping = creds.mapping(DEFAULT_MAPPING);
    let field = |name: &str| mapped(&body, &mapping, name);
    let ticket = field("ticket_id").ok_or_else(|| {
        InvalidValue::new(
            "ticket_id",
            "the payload has no ticket id where the field mapping points",
        )
    })?;
    let mut parsed = Parsed {
        delivery_ref: None,
        kind: "automation".into(),
        events: Vec::new(),
        unreadable: None,
    };
    if field("status").is_some_and(|s| is_closed(&s)) {
        parsed.kind = "automation.ticket_resolved".into();
        let mut contact = requester(
            field("requester_email"),
            field("requester_phone"),
            None,
            None,
            region,
        );
        if let Some(id) = field("requester_id") {
            contact.identities.push(platform_identity(NAME, &id));
        }
        parsed
            .events
            .push(PlatformEvent::TicketClosed(TicketClosed {
                platform: NAME.into(),
                ticket_ref: ticket,
                requester: contact,
                requester_platform_id: None,
                requester_name: field("requester_name"),
                assignee_ref: field("agent"),
                team_ref: field("group"),
                closed_at: mapping
                    .get("updated_at")
                    .and_then(|p| time_at(&body, p))
                    .unwrap_or(req.now),
            }));
    }
    Ok(parsed)
}

fn parse_rating(
    rating: &Value,
    value: i64,
    req: &HookRequest,
    region: &str,
) -> Result<Parsed, InvalidValue> {
    let score = csat_of(value).ok_or_else(|| {
        InvalidValue::new(
            "ratings",
            format!("{value} is not a Freshdesk satisfaction value (103 … -103)"),
        )
    })?;
    let id = text_at(rating, "/id")
        .or_else(|| text_at(rating, "/ticket_id").map(|t| format!("ticket:{t}")))
        .ok_or_else(|| InvalidValue::new("id", "a rating names itself or its ticket"))?;
    let mut contact = requester(text_at(rating, "/email"), None, None, None, region);
    if let Some(user) = text_at(rating, "/user_id") {
        contact.identities.push(platform_identity(NAME, &user));
    }
    Ok(Parsed {
        delivery_ref: None,
        kind: "satisfaction_rating".into(),
        events: vec![PlatformEvent::PlatformRating(PlatformRating {
            platform: NAME.into(),
            rating_ref: id,
            score: Score::on_scale(Metric::Csat, score, Scale::OneToFive)?,
            comment: text_at(rating, "/feedback"),
            reason: None,
            ticket_ref: text_at(rating, "/ticket_id"),
            agent_ref: text_at(rating, "/agent_id"),
            team_ref: text_at(rating, "/group_id"),
            requester: contact,
            rated_at: time_at(rating, "/updated_at")
                .or_else(|| time_at(rating, "/created_at"))
                .unwrap_or(req.now),
            raw_value: json!(value),
        })],
        unreadable: None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{at, fixture, headers};
    use super::*;

    fn basic() -> Credentials {
        configure(&json!({"basic_user": "freshdesk", "basic_password": "s3cret-s3cret-s3cret"}))
            .unwrap()
    }

    fn check(pairs: &[(&str, &str)], creds: &Credentials) -> Result<(), Rejection> {
        let h = headers(pairs);
        verify(
            &HookRequest {
                headers: &h,
                query: None,
                body: b"{}",
                now: at("2026-11-24T10:00:00Z"),
            },
            creds,
        )
    }

    fn closed_from(body: &[u8], creds: &Credentials) -> TicketClosed {
        let h = headers(&[]);
        let req = HookRequest {
            headers: &h,
            query: None,
            body,
            now: at("2026-11-24T10:00:00Z"),
        };
        match parse(&req, creds, "DK").unwrap().events.as_slice() {
            [PlatformEvent::TicketClosed(t)] => t.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn simple_mode_is_read_without_a_field_mapping() {
        let t = closed_from(&fixture("freshdesk_simple_mode_resolved"), &basic());
        assert_eq!(t.ticket_ref, "4711");
        assert_eq!(t.requester.identities[0].value(), "karen.holm@example.com");
        assert_eq!(t.requester_name.as_deref(), Some("Karen Holm"));

        // The newer key names, with the agent and group.
        let newer = json!({"freshdesk_webhook": {"ticket_id": 12, "ticket_status": "Closed",
            "ticket_contact_email": "bo@example.com", "ticket_contact_name": "Bo",
            "ticket_contact_phone": "22 33 44 55", "ticket_agent_email": "maja@acme.example",
            "ticket_group_name": "Support DK"}});
        let t = closed_from(&serde_json::to_vec(&newer).unwrap(), &basic());
        let ids: Vec<&str> = t.requester.identities.iter().map(|i| i.value()).collect();
        assert_eq!(ids, ["bo@example.com", "+4522334455"]);
        assert_eq!(t.assignee_ref.as_deref(), Some("maja@acme.example"));
        assert_eq!(t.team_ref.as_deref(), Some("Support DK"));
    }

    #[test]
    fn requires_the_configured_credential() {
        // base64("freshdesk:s3cret-s3cret-s3cret")
        let good = "Basic ZnJlc2hkZXNrOnMzY3JldC1zM2NyZXQtczNjcmV0";
        assert_eq!(check(&[("authorization", good)], &basic()), Ok(()));
        assert_eq!(
            check(
                &[(
                    "authorization",
                    "Basic ZnJlc2hkZXNrOnMzY3JldC1zM2NyZXQtczNjcmV1"
                )],
                &basic()
            ),
            Err(Rejection::Mismatch("Authorization"))
        );
        assert_eq!(
            check(&[], &basic()),
            Err(Rejection::Missing("Authorization"))
        );
        let header = configure(
            &json!({"header_name": "X-Feedback-Token", "header_value": "tok-123-tok-123-tok"}),
        )
        .unwrap();
        assert_eq!(
            check(&[("x-feedback-token", "tok-123-tok-123-tok")], &header),
            Ok(())
        );
        assert!(check(&[("x-feedback-token", "tok-124-tok-124-tok")], &header).is_err());
        assert!(check(&[("authorization", good)], &header).is_err());
        assert!(configure(&json!({})).is_err(), "never unauthenticated");
        assert!(configure(&json!({"basic_user": "u"})).is_err());
    }

    fn parse_json(v: &Value) -> Result<Parsed, InvalidValue> {
        let body = serde_json::to_vec(v).unwrap();
        let h = headers(&[]);
        parse(
            &HookRequest {
                headers: &h,
                query: None,
                body: &body,
                now: at("2026-11-24T10:00:00Z"),
            },
            &basic(),
            "DK",
        )
    }

    #[test]
    fn reads_resolved_tickets_and_ratings() {
        let resolved = json!({"ticket_id": "123", "status": "Resolved",
            "requester_email": "anna@example.com", "requester_phone": "",
            "requester_name": "Anna", "agent_email": "bo@acme.example", "group_name": "Support DK"});
        let parsed = parse_json(&resolved).unwrap();
        let [PlatformEvent::TicketClosed(t)] = parsed.events.as_slice() else {
            panic!("{parsed:?}")
        };
        assert_eq!(t.ticket_ref, "123");
        assert_eq!(t.team_ref.as_deref(), Some("Support DK"));
        assert_eq!(
            t.requester.identities.len(),
            1,
            "the empty phone is no address"
        );
        let mut open = resolved.clone();
        open["status"] = json!("Open");
        assert!(parse_json(&open).unwrap().events.is_empty());

        for (value, csat) in [(103, 5), (102, 4), (101, 4), (100, 3), (-101, 2), (-103, 1)] {
            let rating = json!({"id": 9001, "ticket_id": 123, "survey_id": 43_000_076_179_i64,
                "agent_id": 73001, "group_id": 55, "user_id": 999,
                "created_at": "2026-07-21T04:15:00Z", "updated_at": "2026-07-21T04:15:00Z",
                "ratings": {"default_question": value}, "feedback": "Tak"});
            let parsed = parse_json(&json!({"satisfaction_rating": rating})).unwrap();
            let [PlatformEvent::PlatformRating(r)] = parsed.events.as_slice() else {
                panic!("{parsed:?}")
            };
            assert_eq!((r.score.value(), r.raw_value.clone()), (csat, json!(value)));
            assert_eq!(r.rating_ref, "9001");
            assert_eq!(r.agent_ref.as_deref(), Some("73001"));
        }
        assert!(parse_json(&json!({"id": 1, "ratings": {"default_question": 7}})).is_err());
        assert_eq!(
            parse_json(&json!({"status": "Resolved"}))
                .unwrap_err()
                .field,
            "ticket_id"
        );
    }
}
