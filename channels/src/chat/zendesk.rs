//! Zendesk: webhooks signed with `X-Zendesk-Webhook-Signature`, in two shapes — event
//! subscriptions (`zen:event-type:ticket.status_changed`) and trigger webhooks whose JSON the
//! admin writes from placeholders (read through a field mapping) — and the Users API to look up
//! a requester that an event names only by id.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    check_age, common_settings, config_body, finish, hmac_sha256, json_body, lookup_json, mapped,
    parse_time, platform_identity, requester, required_secret, same, text_at, time_at, Credentials,
    FoundRequester, HookRequest, LookupError, LookupFuture, Parsed, Platform, Rejection,
    RequesterLookup, SignedContent, Unreadable,
};
use crate::model::{
    ContactRef, InvalidValue, Metric, PlatformEvent, PlatformRating, Scale, Score, TicketClosed,
};
use crate::outbound::Outbound;
use crate::secret::Secret;

pub const NAME: &str = "zendesk";
pub const SIGNATURE_HEADER: &str = "x-zendesk-webhook-signature";
pub const TIMESTAMP_HEADER: &str = "x-zendesk-webhook-signature-timestamp";
/// Zendesk's id of one attempt to deliver a webhook; a retry of it carries the same id.
pub const INVOCATION_HEADER: &str = "x-zendesk-webhook-invocation-id";

pub const PLATFORM: Platform = Platform {
    name: NAME,
    channel: "zendesk",
    signed: SignedContent::TimestampAndBody(TIMESTAMP_HEADER),
    configure,
    verify,
    parse,
    lookup: Some(RequesterLookup { tenant_api, fetch }),
};

/// The recommended trigger body (README), and where the mapping finds each field in it.
pub const DEFAULT_MAPPING: &[(&str, &str)] = &[
    ("ticket_id", "/ticket_id"),
    ("event", "/event"),
    ("status", "/status"),
    ("requester_id", "/requester_id"),
    ("requester_email", "/requester_email"),
    ("requester_phone", "/requester_phone"),
    ("requester_external_id", "/requester_external_id"),
    ("requester_name", "/requester_name"),
    ("requester_locale", "/requester_locale"),
    ("assignee_id", "/assignee_id"),
    ("group_id", "/group_id"),
    ("updated_at", "/updated_at"),
    ("rating", "/satisfaction_rating"),
    ("rating_id", "/satisfaction_rating_id"),
    ("rating_comment", "/satisfaction_comment"),
    ("rating_reason", "/satisfaction_reason"),
];

/// `X-Zendesk-Webhook-Signature`: base64(HMAC-SHA256(signing secret, timestamp + body)). The
/// secret's bytes are the key as shown in Zendesk, not base64-decoded, though it looks encoded.
pub fn signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(hmac_sha256(
        secret.as_bytes(),
        &[timestamp.as_bytes(), body],
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigBody {
    signing_secret: Option<String>,
    /// The account's subdomain: `acme` for https://acme.zendesk.com.
    #[serde(default)]
    subdomain: Option<String>,
    /// Accepted for configurations written before `subdomain`, only in the form
    /// `https://{subdomain}.zendesk.com`: the gateway calls no other host for a tenant.
    #[serde(default)]
    api_base_url: Option<String>,
    #[serde(default)]
    api_user: Option<String>,
    #[serde(default)]
    api_token: Option<String>,
    #[serde(default)]
    tolerance_seconds: Option<i64>,
    #[serde(default)]
    field_mapping: Option<BTreeMap<String, String>>,
    /// Status labels as the tenant's placeholders render them (translated into the
    /// requester's language) → Zendesk's status: `{"Ratkaistu": "solved", "Suljettu": "closed"}`.
    #[serde(default)]
    status_labels: Option<BTreeMap<String, String>>,
    /// Rating labels likewise → `good` or `bad`.
    #[serde(default)]
    rating_labels: Option<BTreeMap<String, String>>,
}

fn configure(body: &Value) -> Result<Credentials, Vec<InvalidValue>> {
    let body: ConfigBody = config_body(body)?;
    let mut errors = Vec::new();
    let mut settings = common_settings(body.tolerance_seconds, &body.field_mapping, &mut errors);
    for (field, labels, allowed) in [
        ("status_labels", &body.status_labels, KNOWN_STATUSES),
        ("rating_labels", &body.rating_labels, &["good", "bad"][..]),
    ] {
        if let Some(labels) = labels {
            if labels.values().any(|v| !allowed.contains(&v.as_str())) {
                errors.push(InvalidValue::new(
                    field,
                    format!("each label maps to one of {}", allowed.join(", ")),
                ));
            }
            let lowered: BTreeMap<String, String> = labels
                .iter()
                .map(|(k, v)| (k.trim().to_lowercase(), v.clone()))
                .collect();
            settings.insert(field.into(), json!(lowered));
        }
    }
    let mut secrets = BTreeMap::new();
    if let Some(s) = required_secret(&body.signing_secret, "signing_secret", &mut errors) {
        secrets.insert("signing_secret".to_owned(), s);
    }
    let from_url = body.api_base_url.as_deref().map(|url| {
        subdomain_of_url(url).ok_or_else(|| {
            InvalidValue::new(
                "api_base_url",
                "only https://{subdomain}.zendesk.com; better, give `subdomain`",
            )
        })
    });
    let subdomain = match (body.subdomain.as_deref(), from_url) {
        (Some(given), _) => match check_subdomain(given) {
            Some(s) => Some(s),
            None => {
                errors.push(InvalidValue::new(
                    "subdomain",
                    "letters, digits and dashes: `acme` for https://acme.zendesk.com",
                ));
                None
            }
        },
        (None, Some(Ok(s))) => Some(s),
        (None, Some(Err(e))) => {
            errors.push(e);
            None
        }
        (None, None) => None,
    };
    if let Some(s) = &subdomain {
        settings.insert("subdomain".into(), s.clone().into());
    }
    match (&body.api_user, &body.api_token) {
        (Some(user), Some(token)) if !user.trim().is_empty() && !token.trim().is_empty() => {
            settings.insert("api_user".into(), user.trim().into());
            secrets.insert("api_token".to_owned(), Secret::new(token.trim()));
        }
        (None, None) => {}
        _ => errors.push(InvalidValue::new(
            "api_token",
            "api_user and api_token go together",
        )),
    }
    if secrets.contains_key("api_token") && subdomain.is_none() && body.api_base_url.is_none() {
        errors.push(InvalidValue::new(
            "subdomain",
            "is required with api_token: `acme` for https://acme.zendesk.com",
        ));
    }
    finish(settings, secrets, errors)
}

fn verify(req: &HookRequest, creds: &Credentials) -> Result<(), Rejection> {
    let given = req
        .header(SIGNATURE_HEADER)
        .ok_or(Rejection::Missing("X-Zendesk-Webhook-Signature"))?;
    let timestamp = req
        .header(TIMESTAMP_HEADER)
        .ok_or(Rejection::Missing("X-Zendesk-Webhook-Signature-Timestamp"))?;
    let secret = creds
        .secret("signing_secret")
        .ok_or(Rejection::Mismatch("X-Zendesk-Webhook-Signature"))?;
    let given = base64::engine::general_purpose::STANDARD
        .decode(given.trim())
        .map_err(|_| Rejection::Mismatch("X-Zendesk-Webhook-Signature"))?;
    let expected = hmac_sha256(
        secret.expose().as_bytes(),
        &[timestamp.as_bytes(), req.body],
    );
    if !same(&given, &expected) {
        return Err(Rejection::Mismatch("X-Zendesk-Webhook-Signature"));
    }
    // Checked after the signature, so that a forged request learns nothing about the clock.
    let signed_at = parse_time(timestamp).ok_or_else(|| {
        Rejection::Malformed("X-Zendesk-Webhook-Signature-Timestamp is not a time".into())
    })?;
    check_age(signed_at, req.now, creds.tolerance_seconds())
}

/// Adds the requester's Zendesk user id as an identity, so the events and ratings of one person
/// meet on one contact even when a payload carries no address.
fn known_by_id(mut contact: ContactRef, user_id: Option<&str>) -> ContactRef {
    if let Some(id) = user_id {
        contact.identities.push(platform_identity(NAME, id));
    }
    contact
}

fn is_closed(status: &str) -> bool {
    let s = status.trim().to_ascii_lowercase();
    s == "solved" || s == "closed"
}

/// Status values the gateway reads (Zendesk's in English and its API's names).
const KNOWN_STATUSES: &[&str] = &[
    "new", "open", "pending", "hold", "on-hold", "on hold", "solved", "closed",
];

/// Zendesk's standard status names as its placeholders render them in other languages.
///
/// Sources, both Zendesk's own:
/// - the help center article "Updating and solving tickets" (support.zendesk.com, article
///   4408832151834) in its German (`/hc/de/`), French (`/hc/fr/`) and Spanish (`/hc/es/`)
///   editions: New, Open, Pending, On-hold, Solved;
/// - the status labels Zendesk ships for requesters in its reference help-center theme,
///   github.com/zendesk/copenhagen_theme, `src/modules/request-list/translations/locales/
///   {da,sv,no,nl,de,fr,es}.json`, keys `guide-requests-app.status{New,Open,Pending,Hold,
///   Solved,Closed}` (read 2026-11-25 at commit 39eb65f). Requesters see "awaiting reply"
///   for pending, so both wordings are listed.
const TRANSLATED_STATUSES: &[(&str, &str)] = &[
    // Danish
    ("ny", "new"),
    ("åben", "open"),
    ("afventer svar", "pending"),
    ("venter på dit svar", "pending"),
    ("i bero", "hold"),
    ("løst", "solved"),
    ("lukket", "closed"),
    // Swedish
    ("öppen", "open"),
    ("väntar på svar", "pending"),
    ("väntar på ditt svar", "pending"),
    ("parkerat", "hold"),
    ("löst", "solved"),
    ("stängt", "closed"),
    // Norwegian (Danish shares "ny" and "løst")
    ("åpen", "open"),
    ("venter på svar", "pending"),
    ("på vent", "hold"),
    ("avsluttet", "closed"),
    // Dutch
    ("nieuw", "new"),
    ("in afwachting van een reactie", "pending"),
    ("in afwachting van uw reactie", "pending"),
    ("geparkeerd", "hold"),
    ("opgelost", "solved"),
    ("gesloten", "closed"),
    // German
    ("neu", "new"),
    ("offen", "open"),
    ("wartend", "pending"),
    ("wartet auf antwort", "pending"),
    ("wartet auf ihre antwort", "pending"),
    ("angehalten", "hold"),
    ("gelöst", "solved"),
    ("geschlossen", "closed"),
    // French
    ("nouveau", "new"),
    ("ouvert", "open"),
    ("en attente", "pending"),
    ("en attente de réponse", "pending"),
    ("en attente de votre réponse", "pending"),
    ("en pause", "hold"),
    ("résolu", "solved"),
    ("fermé", "closed"),
    ("clos", "closed"),
    // Spanish
    ("nuevo", "new"),
    ("abierto", "open"),
    ("pendiente", "pending"),
    ("esperando respuesta", "pending"),
    ("esperando su respuesta", "pending"),
    ("en espera", "hold"),
    ("resuelto", "solved"),
    ("cerrado", "closed"),
];

/// A status label in Zendesk's own words, where the gateway knows the translation.
fn untranslated(status: &str) -> Option<&'static str> {
    let lower = status.trim().to_lowercase();
    TRANSLATED_STATUSES
        .iter()
        .find(|(label, _)| *label == lower)
        .map(|(_, ours)| *ours)
}

/// The first words of `{{satisfaction.current_rating}}` in other languages ("Gut, ich bin
/// zufrieden"), from Zendesk's help center article "About CSAT (customer satisfaction ratings)
/// in Zendesk Support" (support.zendesk.com, article 4408886173338) in its German, French and
/// Spanish editions, which quote the two answers a customer clicks: "Gut, ich bin zufrieden" /
/// "Schlecht, ich bin unzufrieden", "Bonne, je suis satisfait" / "Mauvaise, je suis
/// mécontent(e)", "Bueno, estoy satisfecho" / "Malo, no estoy satisfecho". Zendesk publishes
/// the labels in no other of the languages the gateway reads; a tenant names those in
/// `rating_labels`.
const TRANSLATED_RATINGS: &[(&str, &str)] = &[
    ("gut", "good"),
    ("schlecht", "bad"),
    ("bonne", "good"),
    ("mauvaise", "bad"),
    ("bueno", "good"),
    ("malo", "bad"),
];

/// A rating label in Zendesk's own words, where the gateway knows the translation: the word
/// before the first comma decides, as it does in English ("Good, I'm satisfied").
fn untranslated_rating(rating: &str) -> Option<&'static str> {
    let first = rating.split(',').next()?.trim().to_lowercase();
    TRANSLATED_RATINGS
        .iter()
        .find(|(label, _)| *label == first)
        .map(|(_, ours)| *ours)
}

/// Rating values that are not a rating (`{{satisfaction.current_rating}}` before the customer
/// rated, in English).
const NOT_RATED: &[&str] = &["offered", "unoffered", "not offered"];

/// A status or rating label the gateway cannot read: most likely translated into the
/// requester's language by the placeholder. Such a delivery is kept for the operator.
fn unreadable(rating: Option<&str>, status: Option<&str>) -> Option<Unreadable> {
    let cut = |v: &str| v.chars().take(64).collect::<String>();
    if let Some(r) = rating.filter(|r| !NOT_RATED.contains(&r.trim())) {
        return Some(Unreadable {
            field: "rating",
            value: cut(r),
        });
    }
    status
        .filter(|s| !KNOWN_STATUSES.contains(&s.trim().to_ascii_lowercase().as_str()))
        .map(|s| Unreadable {
            field: "status",
            value: cut(s),
        })
}

fn parse(req: &HookRequest, creds: &Credentials, region: &str) -> Result<Parsed, InvalidValue> {
    let body = json_body(req)?;
    let invocation = req.header(INVOCATION_HEADER).map(str::to_owned);
    match body.get("type").and_then(Value::as_str) {
        Some(kind) if kind.starts_with("zen:event-type:") => {
            Ok(parse_event(&body, kind, invocation, req))
        }
        _ => parse_trigger(&body, creds, invocation, req, region),
    }
}

/// An event subscription's envelope: `{"type", "id", "time", "subject", "detail", "event"}`,
/// ids as strings, status in any case.
fn parse_event(body: &Value, kind: &str, invocation: Option<String>, req: &HookRequest) -> Parsed {
    let mut parsed = Parsed {
        delivery_ref: text_at(body, "/id").or(invocation),
        kind: kind.to_owned(),
        events: Vec::new(),
        unreadable: None,
    };
    if kind != "zen:event-type:ticket.status_changed" {
        return parsed;
    }
    let status = text_at(body, "/event/current").or_else(|| text_at(body, "/detail/status"));
    let ticket = text_at(body, "/detail/id").or_else(|| {
        text_at(body, "/subject").and_then(|s| s.strip_prefix("zen:ticket:").map(str::to_owned))
    });
    if let (Some(status), Some(ticket)) = (status, ticket) {
        if is_closed(&status) {
            let requester_id = text_at(body, "/detail/requester_id");
            parsed
                .events
                .push(PlatformEvent::TicketClosed(TicketClosed {
                    platform: NAME.into(),
                    ticket_ref: ticket,
                    requester: known_by_id(ContactRef::default(), requester_id.as_deref()),
                    requester_platform_id: requester_id,
                    requester_name: None,
                    assignee_ref: text_at(body, "/detail/assignee_id"),
                    team_ref: text_at(body, "/detail/group_id"),
                    closed_at: time_at(body, "/time").unwrap_or(req.now),
                }));
        }
    }
    parsed
}

/// A trigger webhook: the admin's JSON, read through the tenant's field mapping.
fn parse_trigger(
    body: &Value,
    creds: &Credentials,
    invocation: Option<String>,
    req: &HookRequest,
    region: &str,
) -> Result<Parsed, InvalidValue> {
    let mapping = creds.mapping(DEFAULT_MAPPING);
    let field = |name: &str| mapped(body, &mapping, name);
    let mut parsed = Parsed {
        delivery_ref: invocation,
        kind: "trigger".into(),
        events: Vec::new(),
        unreadable: None,
    };
    let Some(ticket) = field("ticket_id") else {
        return Err(InvalidValue::new(
            "ticket_id",
            "the payload has no ticket id where the field mapping points",
        ));
    };
    let contact = known_by_id(
        requester(
            field("requester_email"),
            field("requester_phone"),
            field("requester_external_id"),
            field("requester_locale"),
            region,
        ),
        field("requester_id").as_deref(),
    );
    let when = mapping
        .get("updated_at")
        .and_then(|p| time_at(body, p))
        .unwrap_or(req.now);
    // `{{satisfaction.current_rating}}` renders "Good, I'm satisfied", "Bad, …", or "Offered",
    // translated into the requester's language; the tenant's labels say what each means.
    let label = |setting: &str, value: &str| {
        creds
            .settings
            .pointer(&format!(
                "/{setting}/{}",
                value
                    .trim()
                    .to_lowercase()
                    .replace('~', "~0")
                    .replace('/', "~1")
            ))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let rating = field("rating").map(|r| {
        label("rating_labels", &r)
            .or_else(|| untranslated_rating(&r).map(str::to_owned))
            .unwrap_or(r.to_lowercase())
    });
    let status = field("status").map(|s| {
        label("status_labels", &s)
            .or_else(|| untranslated(&s).map(str::to_owned))
            .unwrap_or(s)
    });
    let good_or_bad = rating.as_deref().and_then(|r| {
        if r.starts_with("good") {
            Some(1)
        } else if r.starts_with("bad") {
            Some(0)
        } else {
            None
        }
    });
    // The recommended template names the event literally: Zendesk translates placeholders
    // into the requester's language (and says this cannot be turned off), so a trigger's own
    // condition ("status changed to solved") is the one reliable statement of what happened.
    let solved_by_event = field("event").is_some_and(|e| e == "ticket_solved");
    if good_or_bad.is_none() && !solved_by_event {
        parsed.unreadable = unreadable(rating.as_deref(), status.as_deref());
    }
    if let Some(value) = good_or_bad {
        parsed.kind = "trigger.satisfaction_rating".into();
        parsed
            .events
            .push(PlatformEvent::PlatformRating(PlatformRating {
                platform: NAME.into(),
                // Zendesk keeps one rating per ticket; a changed rating replaces it.
                rating_ref: field("rating_id").unwrap_or_else(|| format!("ticket:{ticket}")),
                score: Score::on_scale(Metric::Csat, value, Scale::GoodBad)?,
                comment: field("rating_comment"),
                reason: field("rating_reason"),
                ticket_ref: Some(ticket),
                agent_ref: field("assignee_id"),
                team_ref: field("group_id"),
                requester: contact,
                rated_at: when,
                raw_value: json!(rating),
            }));
    } else if solved_by_event || status.as_deref().is_some_and(is_closed) {
        parsed.kind = "trigger.ticket_solved".into();
        parsed
            .events
            .push(PlatformEvent::TicketClosed(TicketClosed {
                platform: NAME.into(),
                ticket_ref: ticket,
                requester_platform_id: field("requester_id"),
                requester_name: field("requester_name"),
                requester: contact,
                assignee_ref: field("assignee_id"),
                team_ref: field("group_id"),
                closed_at: when,
            }));
    }
    Ok(parsed)
}

// ---------------------------------------------------------------------------------------------
// Users API: the requester of an event that names only an id

/// A subdomain as Zendesk allows it (a DNS label), lower-cased.
fn check_subdomain(given: &str) -> Option<String> {
    let s = given.trim().to_ascii_lowercase();
    let ok = (1..=63).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    ok.then_some(s)
}

/// The subdomain of `https://{subdomain}.zendesk.com` (with an optional trailing slash).
fn subdomain_of_url(url: &str) -> Option<String> {
    let host = url
        .strip_prefix("https://")?
        .trim_end_matches('/')
        .strip_suffix(".zendesk.com")?;
    check_subdomain(host).filter(|s| s == host)
}

/// Where the tenant's Users API is: `https://{subdomain}.zendesk.com`.
fn tenant_api(creds: &Credentials) -> Option<String> {
    let subdomain = creds
        .setting("subdomain")
        .map(str::to_owned)
        .or_else(|| creds.setting("api_base_url").and_then(subdomain_of_url))?;
    Some(format!("https://{subdomain}.zendesk.com"))
}

/// `GET {api_base_url}/api/v2/users/{id}.json` with the API token (`{email}/token:{token}`).
pub async fn lookup_requester(
    http: &Outbound,
    base: &str,
    creds: &Credentials,
    user_id: &str,
    region: &str,
    timeout: Duration,
) -> Result<FoundRequester, LookupError> {
    let (Some(user), Some(token)) = (creds.setting("api_user"), creds.secret("api_token")) else {
        return Err(LookupError::NotConfigured);
    };
    let id: String = user_id.chars().filter(char::is_ascii_digit).collect();
    let request = http
        .request(
            reqwest::Method::GET,
            &format!("{base}/api/v2/users/{id}.json"),
        )
        .map_err(|e| LookupError::Transport(e.to_string()))?
        .basic_auth(format!("{user}/token"), Some(token.expose()));
    let body = lookup_json(request, timeout).await?;
    let mut contact = requester(
        text_at(&body, "/user/email"),
        text_at(&body, "/user/phone"),
        text_at(&body, "/user/external_id"),
        text_at(&body, "/user/locale"),
        region,
    );
    contact.time_zone = text_at(&body, "/user/iana_time_zone");
    Ok((contact, text_at(&body, "/user/name")))
}

fn fetch<'a>(
    http: &'a Outbound,
    base: &'a str,
    creds: &'a Credentials,
    user_id: &'a str,
    region: &'a str,
    timeout: Duration,
) -> LookupFuture<'a> {
    Box::pin(lookup_requester(
        http, base, creds, user_id, region, timeout,
    ))
}

#[cfg(test)]
mod tests {
    use super::super::needs_lookup;
    use super::super::test_support::{at, fixture, headers};
    use super::*;
    use crate::model::Identity;

    /// The body of zendesk-go's `Test_WebhookEventVerifySignature_200`: tab-indented, with a
    /// trailing newline, byte for byte.
    const GROUP_MEMBERSHIP_CREATED: &str = "{\n\t\"type\": \"zen:event-type:user.group_membership_created\",\n\t\"account_id\": 12514403,\n\t\"id\": \"6b9bbadf-5725-4e92-bebe-7b71011bf5f1\",\n\t\"subject\": \"zen:user:6596848315901\",\n\t\"time\": \"2099-07-04T05:33:18Z\",\n\t\"zendesk_event_version\": \"2022-06-20\",\n\t\"detail\": {\n\t\t\"created_at\": \"2099-07-04T05:27:58Z\",\n\t\t\"default_group_id\": \"0\",\n\t\t\"email\": \"user.name@example.com\",\n\t\t\"external_id\": \"\",\n\t\t\"id\": \"6596848315901\",\n\t\t\"organization_id\": \"0\",\n\t\t\"role\": \"end-user\",\n\t\t\"updated_at\": \"2099-07-04T05:33:18Z\"\n\t},\n\t\"event\": { \"group\": { \"id\": \"1\" } }\n}\n";
    const TEST_SECRET: &str = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ==";

    fn creds() -> Credentials {
        configure(&json!({"signing_secret": TEST_SECRET})).unwrap()
    }

    #[test]
    fn status_labels_zendesk_publishes_are_read() {
        let creds = creds();
        for solved in [
            "Løst",
            "Löst",
            "Opgelost",
            "Gelöst",
            "Résolu",
            "Resuelto",
            "solved",
            "Lukket",
            "Stängt",
            "Avsluttet",
            "Gesloten",
            "Geschlossen",
            "Fermé",
            "Cerrado",
        ] {
            let body = json!({"ticket_id": "1", "status": solved,
                "requester_email": "a@example.com"});
            let parsed = parse_body(&body, &creds).unwrap();
            assert!(
                matches!(parsed.events.as_slice(), [PlatformEvent::TicketClosed(_)]),
                "{solved}: {parsed:?}"
            );
        }
        for (open, read) in [
            ("Wartend", true),
            ("En attente", true),
            ("Afventer svar", true),
            ("Väntar på ditt svar", true),
            ("På vent", true),
            ("In afwachting van uw reactie", true),
            ("Åben", true),
            ("Ratkaistu", false),
        ] {
            let parsed = parse_body(&json!({"ticket_id": "1", "status": open}), &creds).unwrap();
            assert!(parsed.events.is_empty(), "{open}");
            assert_eq!(parsed.unreadable.is_none(), read, "{open}: {parsed:?}");
        }
    }

    #[test]
    fn rating_labels_zendesk_publishes_are_read() {
        let creds = creds();
        for (label, good) in [
            ("Good, I'm satisfied", true),
            ("Bad, I'm unsatisfied", false),
            ("Gut, ich bin zufrieden", true),
            ("Schlecht, ich bin unzufrieden", false),
            ("Bonne, je suis satisfait", true),
            ("Mauvaise, je suis mécontent(e)", false),
            ("Bueno, estoy satisfecho", true),
            ("Malo, no estoy satisfecho", false),
        ] {
            let body = json!({"ticket_id": "1", "satisfaction_rating": label,
                "requester_email": "a@example.com"});
            let parsed = parse_body(&body, &creds).unwrap();
            let [PlatformEvent::PlatformRating(r)] = parsed.events.as_slice() else {
                panic!("{label}: {parsed:?}")
            };
            assert_eq!(r.score, Score::csat_good_bad(good), "{label}");
        }
        // A label in a language without a published translation is kept for the operator.
        let parsed = parse_body(
            &json!({"ticket_id": "1", "satisfaction_rating": "Hyvä, olen tyytyväinen"}),
            &creds,
        )
        .unwrap();
        assert!(parsed.events.is_empty());
        assert!(parsed.unreadable.is_some_and(|u| u.field == "rating"));
    }

    #[test]
    fn signs_as_zendesk_does() {
        use sha2::Digest;
        assert_eq!(
            super::super::hex(&sha2::Sha256::digest(GROUP_MEMBERSHIP_CREATED.as_bytes())),
            "99ea3ee87a1131f583105cda2225e7bbbf371072ada32bfde0cf2e89e9b49f2d",
            "the fixture is the published body byte for byte"
        );
        assert_eq!(
            signature(TEST_SECRET, "1234", GROUP_MEMBERSHIP_CREATED.as_bytes()),
            "10IqYzYTLHRftNsNE+im0DeOM6/JactIRuy0XCHJ9B8="
        );
        assert_eq!(
            signature(
                TEST_SECRET,
                "2021-03-25T05:09:27Z",
                br#"{"event":"ticket.updated","id":123}"#
            ),
            "S/RDdU2ERmj7LHDDoWJ2onPYH+t7/f2+LTM4dL7UiLM="
        );
    }

    #[test]
    fn verifies_the_vector_and_rejects_the_wrong_keys_and_bodies() {
        let body = br#"{"event":"ticket.updated","id":123}"#;
        let check = |sig: &str, ts: &str, body: &[u8], now: &str| {
            let h = headers(&[(SIGNATURE_HEADER, sig), (TIMESTAMP_HEADER, ts)]);
            verify(
                &HookRequest {
                    headers: &h,
                    query: None,
                    body,
                    now: at(now),
                },
                &creds(),
            )
        };
        let good = "S/RDdU2ERmj7LHDDoWJ2onPYH+t7/f2+LTM4dL7UiLM=";
        assert_eq!(
            check(good, "2021-03-25T05:09:27Z", body, "2021-03-25T05:10:00Z"),
            Ok(())
        );
        // A replay an hour later.
        assert!(matches!(
            check(good, "2021-03-25T05:09:27Z", body, "2021-03-25T06:09:27Z"),
            Err(Rejection::Stale(3600))
        ));
        // The key base64-decoded, or the body without its newline: Zendesk's vectors that fail.
        let whole = GROUP_MEMBERSHIP_CREATED.as_bytes();
        for wrong in [
            "Yf7IAOoYEOP2aa2bTuGgwtjXxRn64WFzCqoDmC9HkBs=",
            "kvWjaewTmBsDVRjQ3UaEiTsGMU5eeIv33St++Kl9z+Q=",
            "not base64!",
        ] {
            assert_eq!(
                check(wrong, "1234", whole, "1970-01-01T00:20:00Z"),
                Err(Rejection::Mismatch("X-Zendesk-Webhook-Signature"))
            );
        }
        let h = headers(&[(TIMESTAMP_HEADER, "1234")]);
        let req = HookRequest {
            headers: &h,
            query: None,
            body,
            now: at("2021-03-25T05:10:00Z"),
        };
        assert!(matches!(verify(&req, &creds()), Err(Rejection::Missing(_))));
    }

    fn parse_body(body: &Value, creds: &Credentials) -> Result<Parsed, InvalidValue> {
        let bytes = serde_json::to_vec(body).unwrap();
        let h = headers(&[]);
        parse(
            &HookRequest {
                headers: &h,
                query: None,
                body: &bytes,
                now: at("2026-11-24T10:00:00Z"),
            },
            creds,
            "DK",
        )
    }

    /// A Danish requester's ticket as an older template renders it ("Løst", the time to the
    /// minute), and the README's template with the literal event: both are a solved ticket,
    /// dated when Zendesk says, not when the gateway received it.
    #[test]
    fn translated_and_literal_templates_are_solved_tickets_at_zendesks_minute() {
        for (name, ticket, minute) in [
            (
                "zendesk_trigger_solved_translated",
                "4713",
                "2026-11-24T10:07:00Z",
            ),
            (
                "zendesk_trigger_solved_literal",
                "4714",
                "2026-11-24T10:09:00Z",
            ),
        ] {
            let body: Value = serde_json::from_slice(&fixture(name)).unwrap();
            let parsed = parse_body(&body, &creds()).unwrap();
            assert!(parsed.unreadable.is_none(), "{name}: {parsed:?}");
            let [PlatformEvent::TicketClosed(t)] = parsed.events.as_slice() else {
                panic!("{name}: {parsed:?}")
            };
            assert_eq!(t.ticket_ref, ticket);
            assert_eq!(t.closed_at, at(minute), "{name}");
        }
    }

    #[test]
    fn a_solved_ticket_event_names_the_requester_by_id() {
        let event = json!({
            "account_id": 12514403, "id": "01J-EVENT", "time": "2026-11-24T09:59:00Z",
            "type": "zen:event-type:ticket.status_changed",
            "subject": "zen:ticket:101", "zendesk_event_version": "2022-11-06",
            "detail": {"id": "101", "requester_id": "6596848315901", "assignee_id": "777",
                       "group_id": "55", "status": "SOLVED"},
            "event": {"current": "SOLVED", "previous": "OPEN"}
        });
        let parsed = parse_body(&event, &creds()).unwrap();
        assert_eq!(parsed.delivery_ref.as_deref(), Some("01J-EVENT"));
        let [PlatformEvent::TicketClosed(t)] = parsed.events.as_slice() else {
            panic!("{parsed:?}")
        };
        assert_eq!(t.ticket_ref, "101");
        assert_eq!(t.requester_platform_id.as_deref(), Some("6596848315901"));
        assert_eq!(
            t.requester.identities,
            [Identity::External("zendesk:6596848315901".into())]
        );
        assert!(needs_lookup(t));
        assert_eq!(
            (t.assignee_ref.as_deref(), t.team_ref.as_deref()),
            (Some("777"), Some("55"))
        );
        assert_eq!(t.closed_at, at("2026-11-24T09:59:00Z"));
        // Re-opened: nothing to do.
        let mut opened = event.clone();
        opened["event"]["current"] = json!("open");
        assert!(parse_body(&opened, &creds()).unwrap().events.is_empty());
        // Another event type: nothing to do, but known by name.
        let other: Value = serde_json::from_str(GROUP_MEMBERSHIP_CREATED).unwrap();
        let parsed = parse_body(&other, &creds()).unwrap();
        assert!(parsed.events.is_empty());
        assert_eq!(parsed.kind, "zen:event-type:user.group_membership_created");
    }

    #[test]
    fn trigger_bodies_are_read_through_the_mapping() {
        let solved = json!({"ticket_id": "4711", "status": "Solved",
            "requester_email": "anna@example.com", "requester_phone": "22 33 44 55",
            "requester_locale": "da", "assignee_id": "7", "group_id": "3",
            "satisfaction_rating": "Offered"});
        let parsed = parse_body(&solved, &creds()).unwrap();
        let [PlatformEvent::TicketClosed(t)] = parsed.events.as_slice() else {
            panic!("{parsed:?}")
        };
        assert_eq!(t.ticket_ref, "4711");
        assert_eq!(
            t.requester
                .identities
                .iter()
                .map(|i| i.value())
                .collect::<Vec<_>>(),
            ["anna@example.com", "+4522334455"]
        );
        assert_eq!(t.requester.locale.as_deref(), Some("da"));

        let rated = json!({"ticket_id": "4711", "status": "Solved",
            "satisfaction_rating": "Bad, I'm unsatisfied", "satisfaction_comment": "Too slow",
            "satisfaction_reason": "Issue took too long to resolve"});
        let parsed = parse_body(&rated, &creds()).unwrap();
        let [PlatformEvent::PlatformRating(r)] = parsed.events.as_slice() else {
            panic!("{parsed:?}")
        };
        assert_eq!((r.score.value(), r.score.scale()), (0, Scale::GoodBad));
        assert_eq!(r.rating_ref, "ticket:4711");
        assert_eq!(r.comment.as_deref(), Some("Too slow"));
        assert_eq!(r.reason.as_deref(), Some("Issue took too long to resolve"));

        // The admin's own field names.
        let custom = configure(&json!({"signing_secret": TEST_SECRET,
            "field_mapping": {"ticket_id": "/ticket/id", "status": "/ticket/state"}}))
        .unwrap();
        let parsed = parse_body(&json!({"ticket": {"id": 9, "state": "closed"}}), &custom).unwrap();
        assert!(matches!(
            parsed.events.as_slice(),
            [PlatformEvent::TicketClosed(t)] if t.ticket_ref == "9"
        ));
        assert_eq!(
            parse_body(&json!({"status": "solved"}), &creds())
                .unwrap_err()
                .field,
            "ticket_id"
        );
    }

    #[test]
    fn configuration_needs_the_signing_secret_and_keeps_secrets_apart() {
        let errors = configure(&json!({"api_user": "a@example.com"}))
            .err()
            .unwrap();
        let fields: Vec<&str> = errors.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["signing_secret", "api_token"]);
        let c = configure(
            &json!({"signing_secret": TEST_SECRET, "api_base_url": "https://acme.zendesk.com/",
            "api_user": "a@example.com", "api_token": "t0k-zendesk-api-token"}),
        )
        .unwrap();
        assert_eq!(c.setting("subdomain"), Some("acme"));
        assert_eq!(c.setting("api_base_url"), None);
        let lookup = PLATFORM.lookup.as_ref().unwrap();
        assert_eq!(
            lookup.base_url(&c, "").as_deref(),
            Some("https://acme.zendesk.com")
        );
        assert_eq!(
            lookup.base_url(&c, "http://127.0.0.1:9/").as_deref(),
            Some("http://127.0.0.1:9"),
            "the operator's setting wins"
        );
        assert!(!c.settings.to_string().contains("t0k-zendesk"));
        assert_eq!(
            c.secret("api_token").unwrap().expose(),
            "t0k-zendesk-api-token"
        );
        let c = configure(&json!({"signing_secret": TEST_SECRET, "subdomain": "Acme-DK"})).unwrap();
        assert_eq!(c.setting("subdomain"), Some("acme-dk"));
        assert!(
            configure(&json!({"signing_secret": TEST_SECRET, "tolerance_seconds": 0})).is_err()
        );
        assert!(configure(&json!({"signing_secret": TEST_SECRET, "nonsense": 1})).is_err());
    }

    #[test]
    fn a_tenant_cannot_point_the_gateway_at_another_host() {
        for (body, field) in [
            (
                json!({"api_base_url": "http://127.0.0.1:8080/internal/path?x=1#"}),
                "api_base_url",
            ),
            (
                json!({"api_base_url": "https://acme.zendesk.com.evil.example"}),
                "api_base_url",
            ),
            (
                json!({"api_base_url": "https://evil.example/?.zendesk.com"}),
                "api_base_url",
            ),
            (
                json!({"api_base_url": "http://acme.zendesk.com"}),
                "api_base_url",
            ),
            (json!({"subdomain": "acme.evil.example"}), "subdomain"),
            (json!({"subdomain": "127.0.0.1:8080/"}), "subdomain"),
        ] {
            let mut body = body;
            body["signing_secret"] = json!(TEST_SECRET);
            let errors = configure(&body).err().unwrap_or_else(|| panic!("{body}"));
            assert_eq!(errors[0].field, field, "{body}");
        }
    }
}
