//! Support platforms: Zendesk, Intercom, Freshdesk, Chatwoot, and a generic hook signed per the
//! Standard Webhooks spec. Each platform's file owns its signature check and turns its payloads
//! into [`PlatformEvent::TicketClosed`] and [`PlatformEvent::PlatformRating`].
//!
//! An adapter is a [`Platform`] value; [`PLATFORMS`] is the one table that names them, so adding
//! a platform is one file and one line there.

pub mod chatwoot;
pub mod freshdesk;
pub mod generic;
pub mod intercom;
pub mod zendesk;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::header::HeaderMap;
use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::model::{
    ContactRef, E164Phone, Email, Identity, InvalidValue, PlatformEvent, TicketClosed,
};
use crate::outbound::Outbound;
use crate::secret::Secret;

/// A webhook request as received: what verification and parsing may look at.
pub struct HookRequest<'a> {
    pub headers: &'a HeaderMap,
    /// The query string of the hook URL (Chatwoot's URL token), without `?`.
    pub query: Option<&'a str>,
    /// The raw body: signatures cover these exact bytes.
    pub body: &'a [u8],
    pub now: DateTime<Utc>,
}

impl HookRequest<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query?.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// Why a request was not taken as coming from the platform.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The credential is absent: 401.
    #[error("{0} is missing")]
    Missing(&'static str),
    /// The credential does not match: 403.
    #[error("{0} does not match the request")]
    Mismatch(&'static str),
    /// Signed too long ago or in the future (a replay): 403.
    #[error("the signature timestamp is {0} s away from now, more than the tolerance allows")]
    Stale(i64),
    /// The signature header cannot be read: 401.
    #[error("{0}")]
    Malformed(String),
}

/// What a verified request carries.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Parsed {
    /// The platform's id of this delivery or notification: a redelivery with the same id is
    /// stored once. `None` where the platform sends none (Freshdesk).
    pub delivery_ref: Option<String>,
    /// The platform's name of the event, for the raw event log and metrics.
    pub kind: String,
    /// Empty when the event is one the gateway does not act on (counted and answered 202).
    pub events: Vec<PlatformEvent>,
    /// Set when the delivery carries a value the gateway cannot read (a status label in a
    /// language it does not know): kept for the operator to replay once a mapping is fixed,
    /// never dropped silently.
    pub unreadable: Option<Unreadable>,
}

/// What could not be read in a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// Our name of the field (`status`, `rating`).
    pub field: &'static str,
    /// The value as sent, cut to 64 characters.
    pub value: String,
}

/// A tenant's credentials and options for one platform, as stored: settings in the clear,
/// secrets apart (never shown, never logged).
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub settings: Value,
    pub secrets: BTreeMap<String, Secret>,
}

impl Credentials {
    pub fn secret(&self, name: &str) -> Option<&Secret> {
        self.secrets.get(name).filter(|s| !s.is_empty())
    }

    pub fn setting(&self, name: &str) -> Option<&str> {
        self.settings.get(name).and_then(Value::as_str)
    }

    /// The tenant's field mapping (our field → JSON pointer into the payload) over `defaults`.
    pub fn mapping(&self, defaults: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut mapping: BTreeMap<String, String> = defaults
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if let Some(custom) = self
            .settings
            .get("field_mapping")
            .and_then(Value::as_object)
        {
            for (k, v) in custom {
                if let Some(pointer) = v.as_str() {
                    mapping.insert(k.clone(), pointer.to_owned());
                }
            }
        }
        mapping
    }

    /// Seconds a signature timestamp may be away from now (default five minutes).
    pub fn tolerance_seconds(&self) -> i64 {
        self.settings
            .get("tolerance_seconds")
            .and_then(Value::as_i64)
            .unwrap_or(DEFAULT_TOLERANCE_SECONDS)
    }
}

pub const DEFAULT_TOLERANCE_SECONDS: i64 = 300;
pub const MAX_TOLERANCE_SECONDS: i64 = 3_600;

/// One support platform.
pub struct Platform {
    /// The path segment and provider name: `/hooks/{tenant}/{name}`.
    pub name: &'static str,
    /// The channel its ratings are recorded under.
    pub channel: &'static str,
    /// What the platform's signature covers: a delivery replayed (within the tolerance) under
    /// a new, unsigned delivery id is recognised by it.
    pub signed: SignedContent,
    /// Checks `PUT /v1/channels/{name}` and splits it into settings and secrets.
    pub configure: fn(&Value) -> Result<Credentials, Vec<InvalidValue>>,
    /// Proves the request comes from the platform.
    pub verify: fn(&HookRequest, &Credentials) -> Result<(), Rejection>,
    /// Turns a verified body into events; `default_region` reads national phone numbers.
    pub parse: fn(&HookRequest, &Credentials, &str) -> Result<Parsed, InvalidValue>,
    /// Finds the requester through the platform's API when an event names them only by id.
    pub lookup: Option<RequesterLookup>,
}

/// A person found through a platform's API: addresses, and a name when the platform has one.
pub type FoundRequester = (ContactRef, Option<String>);

/// The future of a look-up, boxed so that a platform's async function fits in [`PLATFORMS`].
pub type LookupFuture<'a> =
    Pin<Box<dyn Future<Output = Result<FoundRequester, LookupError>> + Send + 'a>>;

/// A platform's way of finding a requester by id.
pub struct RequesterLookup {
    /// The API's address as the tenant's settings give it (a Zendesk subdomain, an Intercom
    /// hosting region); `None`: the tenant has not configured it.
    pub tenant_api: fn(&Credentials) -> Option<String>,
    /// Fetches the person with this id: (client, API base URL, credentials, id, default
    /// region, timeout).
    pub fetch: for<'a> fn(
        &'a Outbound,
        &'a str,
        &'a Credentials,
        &'a str,
        &'a str,
        Duration,
    ) -> LookupFuture<'a>,
}

impl RequesterLookup {
    /// Where to look: the operator's `providers.{name}.api_base_url` when set (a stand-in in
    /// tests, an egress proxy) is used for every tenant; else the tenant's own API.
    pub fn base_url(&self, creds: &Credentials, operator_base_url: &str) -> Option<String> {
        if operator_base_url.is_empty() {
            (self.tenant_api)(creds)
        } else {
            Some(operator_base_url.trim_end_matches('/').to_owned())
        }
    }
}

/// Why a look-up at a platform's API failed.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("the platform's API credentials are not configured")]
    NotConfigured,
    #[error("the platform's API answered {0}")]
    Status(u16),
    #[error("the platform's API could not be reached: {0}")]
    Transport(String),
    #[error("the platform's answer could not be read: {0}")]
    Body(String),
}

impl LookupError {
    /// Worth the platform's retry (platforms redeliver a webhook that failed).
    pub fn is_transient(&self) -> bool {
        match self {
            LookupError::Status(s) => *s == 429 || *s >= 500,
            LookupError::Transport(_) => true,
            _ => false,
        }
    }
}

/// Sends a look-up request and reads its JSON answer; an answer other than 2xx is its status.
pub(crate) async fn lookup_json(
    request: reqwest::RequestBuilder,
    timeout: Duration,
) -> Result<Value, LookupError> {
    let transport = |e: reqwest::Error| LookupError::Transport(e.without_url().to_string());
    let resp = request.timeout(timeout).send().await.map_err(transport)?;
    if !resp.status().is_success() {
        return Err(LookupError::Status(resp.status().as_u16()));
    }
    let bytes = resp.bytes().await.map_err(transport)?;
    serde_json::from_slice(&bytes).map_err(|e| LookupError::Body(e.to_string()))
}

/// Whether a closed ticket names its requester only by the platform's id: no address to ask on.
pub fn needs_lookup(t: &TicketClosed) -> bool {
    t.requester_platform_id.is_some()
        && !t
            .requester
            .identities
            .iter()
            .any(|i| matches!(i, Identity::Email(_) | Identity::Phone(_)))
}

/// Fills in a closed ticket's requester through the platform's API when the event named only
/// an id. `Ok(false)`: nothing to look up, the platform has no look-up, or the tenant has not
/// configured its API (the survey is then suppressed with `no_channel`, never addressed to
/// someone else).
pub async fn complete_requester(
    platform: &Platform,
    http: &Outbound,
    operator_base_url: &str,
    creds: &Credentials,
    ticket: &mut TicketClosed,
    region: &str,
    timeout: Duration,
) -> Result<bool, LookupError> {
    let Some(lookup) = &platform.lookup else {
        return Ok(false);
    };
    let Some(id) = ticket
        .requester_platform_id
        .clone()
        .filter(|_| needs_lookup(ticket))
    else {
        return Ok(false);
    };
    let Some(base) = lookup.base_url(creds, operator_base_url) else {
        return Ok(false);
    };
    let (mut found, name) = match (lookup.fetch)(http, &base, creds, &id, region, timeout).await {
        Ok(found) => found,
        Err(LookupError::NotConfigured) => return Ok(false),
        Err(e) => return Err(e),
    };
    found.identities.append(&mut ticket.requester.identities);
    found.locale = found.locale.or(ticket.requester.locale.take());
    ticket.requester = found;
    ticket.requester_name = ticket.requester_name.take().or(name);
    Ok(true)
}

/// What a platform's proof of origin covers, for replay protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedContent {
    /// The body alone (Intercom's X-Hub-Signature).
    Body,
    /// A timestamp header and the body.
    TimestampAndBody(&'static str),
    /// Nothing: the credential is a password, valid for any body (Freshdesk's Basic auth).
    Nothing,
}

impl SignedContent {
    /// The bytes to digest: the signed timestamp, a separator, the body. `None` when nothing
    /// was signed.
    pub fn of(&self, req: &HookRequest) -> Option<Vec<u8>> {
        let timestamp = match self {
            SignedContent::Nothing => return None,
            SignedContent::Body => "",
            SignedContent::TimestampAndBody(header) => req.header(header).unwrap_or(""),
        };
        let mut bytes = Vec::with_capacity(timestamp.len() + 1 + req.body.len());
        bytes.extend_from_slice(timestamp.as_bytes());
        bytes.push(b'.');
        bytes.extend_from_slice(req.body);
        Some(bytes)
    }
}

/// Every platform, by name.
pub const PLATFORMS: &[Platform] = &[
    zendesk::PLATFORM,
    intercom::PLATFORM,
    freshdesk::PLATFORM,
    chatwoot::PLATFORM,
    generic::PLATFORM,
];

pub fn platform(name: &str) -> Option<&'static Platform> {
    PLATFORMS.iter().find(|p| p.name == name)
}

/// Every platform's name, for messages that list the choices.
pub fn names() -> impl Iterator<Item = &'static str> {
    PLATFORMS.iter().map(|p| p.name)
}

// ---------------------------------------------------------------------------------------------
// Shared by the adapters

pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

pub(crate) fn hmac_sha1(key: &[u8], body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// Whether an `Authorization` header carries HTTP basic auth for `user` and `password`,
/// compared in constant time (hooks that providers protect with credentials in their URL).
pub fn basic_auth_matches(header: &str, user: &str, password: &str) -> bool {
    use base64::Engine as _;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    );
    same(header.trim().as_bytes(), expected.as_bytes())
}

/// Compares in time that does not depend on where the inputs differ.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Rejects a timestamp more than `tolerance` seconds before or after `now`.
pub(crate) fn check_age(
    signed_at: DateTime<Utc>,
    now: DateTime<Utc>,
    tolerance: i64,
) -> Result<(), Rejection> {
    let age = (now - signed_at).num_seconds();
    if age.abs() > tolerance {
        return Err(Rejection::Stale(age));
    }
    Ok(())
}

pub(crate) fn unix_seconds(value: &str, header: &str) -> Result<DateTime<Utc>, Rejection> {
    value
        .trim()
        .parse::<i64>()
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .ok_or_else(|| Rejection::Malformed(format!("{header} is not a Unix timestamp")))
}

/// The body as a JSON object: every platform posts one.
pub(crate) fn json_body(req: &HookRequest) -> Result<Value, InvalidValue> {
    let body: Value = serde_json::from_slice(req.body)
        .map_err(|e| InvalidValue::new("body", format!("not valid JSON: {e}")))?;
    if !body.is_object() {
        return Err(InvalidValue::new("body", "expected a JSON object"));
    }
    Ok(body)
}

/// A string or number at `pointer`, trimmed; `None` when absent, null or empty. Platforms send
/// ids as strings in one payload and numbers in the next; a template placeholder the platform
/// could not fill renders as an empty string.
pub(crate) fn text_at(v: &Value, pointer: &str) -> Option<String> {
    match v.pointer(pointer)? {
        Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(crate) fn mapped(v: &Value, mapping: &BTreeMap<String, String>, field: &str) -> Option<String> {
    mapping.get(field).and_then(|pointer| text_at(v, pointer))
}

/// A time as RFC 3339, Unix seconds, Zendesk's minute form, or Ruby's `Time#to_s` forms
/// (`2020-03-03 13:05:57 UTC`, `… +0100`) that Rails-based platforms render.
pub(crate) fn time_at(v: &Value, pointer: &str) -> Option<DateTime<Utc>> {
    match v.pointer(pointer)? {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .and_then(|s| DateTime::from_timestamp(s, 0)),
        Value::String(s) => parse_time(s),
        _ => None,
    }
}

pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(secs) = s.parse::<i64>() {
        return DateTime::from_timestamp(secs, 0);
    }
    // Zendesk's `{{ticket.updated_at_with_timestamp}}` renders to the minute: 2013-12-12T05:35Z.
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%MZ") {
        return Some(t.and_utc());
    }
    // Ruby's `Time#to_s`, as Rails-based platforms render a time into text: in UTC with the
    // zone's name, elsewhere with its offset.
    if let Ok(t) = DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S %z") {
        return Some(t.with_timezone(&Utc));
    }
    let without_zone = s.trim_end_matches(" UTC");
    chrono::NaiveDateTime::parse_from_str(without_zone, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|t| t.and_utc())
}

/// The customer's addresses as a platform gives them. An address that does not parse is left
/// out rather than failing the webhook: the ticket still happened, and the stored raw event
/// keeps what was sent.
pub(crate) fn requester(
    email: Option<String>,
    phone: Option<String>,
    external_id: Option<String>,
    locale: Option<String>,
    default_region: &str,
) -> ContactRef {
    let mut identities = Vec::new();
    if let Some(e) = email.and_then(|e| Email::parse(&e).ok()) {
        identities.push(Identity::Email(e));
    }
    if let Some(p) = phone.and_then(|p| E164Phone::parse(&p, Some(default_region)).ok()) {
        identities.push(Identity::Phone(p));
    }
    if let Some(x) = external_id {
        identities.push(Identity::External(x));
    }
    ContactRef {
        id: None,
        identities,
        locale: locale.filter(|l| l.len() <= 35),
        time_zone: None,
    }
}

/// Settings every platform's configuration may carry besides its credentials: a timestamp
/// tolerance and a field mapping (our field → JSON pointer into the platform's payload).
pub(crate) fn common_settings(
    tolerance_seconds: Option<i64>,
    field_mapping: &Option<BTreeMap<String, String>>,
    errors: &mut Vec<InvalidValue>,
) -> serde_json::Map<String, Value> {
    let mut settings = serde_json::Map::new();
    if let Some(t) = tolerance_seconds {
        // Past an hour, the tolerance no longer protects against replayed deliveries.
        if !(1..=MAX_TOLERANCE_SECONDS).contains(&t) {
            errors.push(InvalidValue::new(
                "tolerance_seconds",
                format!("must be between 1 and {MAX_TOLERANCE_SECONDS}"),
            ));
        }
        settings.insert("tolerance_seconds".into(), t.into());
    }
    if let Some(m) = field_mapping {
        for pointer in m.values() {
            if !pointer.is_empty() && !pointer.starts_with('/') {
                errors.push(InvalidValue::new(
                    "field_mapping",
                    format!("`{pointer}` is not a JSON pointer (it starts with /)"),
                ));
            }
        }
        settings.insert("field_mapping".into(), serde_json::json!(m));
    }
    settings
}

/// The outcome of a `configure`: the credentials, or every error found.
pub(crate) fn finish(
    settings: serde_json::Map<String, Value>,
    secrets: BTreeMap<String, Secret>,
    mut errors: Vec<InvalidValue>,
) -> Result<Credentials, Vec<InvalidValue>> {
    // A short secret can be guessed, and then anyone can sign (or authenticate) deliveries.
    for (name, secret) in &secrets {
        if secret.expose().len() < MIN_SECRET_BYTES {
            let field = SECRET_NAMES
                .iter()
                .find(|n| **n == name.as_str())
                .copied()
                .unwrap_or("secret");
            errors.push(InvalidValue::new(
                field,
                format!(
                    "must be at least {MIN_SECRET_BYTES} characters; copy it from the platform"
                ),
            ));
        }
    }
    if errors.is_empty() {
        Ok(Credentials {
            settings: Value::Object(settings),
            secrets,
        })
    } else {
        Err(errors)
    }
}

/// Deserializes a configuration body, naming the field that is wrong.
pub(crate) fn config_body<T: serde::de::DeserializeOwned>(
    body: &Value,
) -> Result<T, Vec<InvalidValue>> {
    serde_json::from_value(body.clone()).map_err(|e| vec![InvalidValue::new("body", e.to_string())])
}

/// A configuration value, trimmed; `None` when absent or blank.
pub(crate) fn filled(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

pub(crate) fn required_secret(
    value: &Option<String>,
    field: &'static str,
    errors: &mut Vec<InvalidValue>,
) -> Option<Secret> {
    let secret = filled(value).map(Secret::new);
    if secret.is_none() {
        errors.push(InvalidValue::new(field, "is required"));
    }
    secret
}

/// The least key material a signing secret, token or password may have.
pub const MIN_SECRET_BYTES: usize = 16;

/// The names platforms store secrets under, for error messages that name the field.
const SECRET_NAMES: &[&str] = &[
    "signing_secret",
    "client_secret",
    "webhook_secret",
    "url_token",
    "basic_password",
    "header_value",
    "secret",
    "api_token",
];

/// A person's id on a platform, as an identity of the contact: namespaced by the platform, so
/// that it never meets the tenant's own external ids or another platform's.
pub(crate) fn platform_identity(platform: &str, id: &str) -> Identity {
    Identity::External(format!("{platform}:{id}"))
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    pub fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// A platform's payload from the workspace's `tests/fixtures/platforms/`.
    pub fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../tests/fixtures/platforms/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trivial_secrets_and_long_tolerances_are_refused() {
        use serde_json::json;
        let cases = [
            ("generic", json!({"secret": "whsec_AA=="})),
            ("generic", json!({"secret": "whsec_MTIzNDU2Nzg5MDEyMzQ1"})), // 15 bytes
            ("zendesk", json!({"signing_secret": "x"})),
            ("intercom", json!({"client_secret": "x"})),
            ("chatwoot", json!({"webhook_secret": "fifteen-chars.."})),
            (
                "freshdesk",
                json!({"basic_user": "u", "basic_password": "p"}),
            ),
            (
                "zendesk",
                json!({"signing_secret": "a-long-enough-secret-0123", "tolerance_seconds": 86_400}),
            ),
            (
                "generic",
                json!({"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "tolerance_seconds": 3_601}),
            ),
        ];
        for (name, body) in cases {
            let configure = platform(name).unwrap().configure;
            assert!(configure(&body).is_err(), "{name}: {body}");
        }
        let generic = platform("generic").unwrap().configure;
        assert!(
            generic(&json!({"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "tolerance_seconds": 3_600}))
            .is_ok()
        );
    }

    #[test]
    fn reads_ids_and_times_in_the_shapes_platforms_send() {
        let v = serde_json::json!({"a": "101", "b": 101, "c": "  ", "d": null,
            "t1": "2026-11-24T10:00:00Z", "t2": 1795000000, "t3": "2020-03-03 13:05:57 UTC"});
        assert_eq!(
            parse_time("2013-12-12T05:35Z"),
            Some(test_support::at("2013-12-12T05:35:00Z")),
            "Zendesk's placeholder reference renders minutes only"
        );
        assert_eq!(
            parse_time("2026-11-25 10:31:40 +0100"),
            Some(test_support::at("2026-11-25T09:31:40Z"))
        );
        assert_eq!(
            parse_time("2026-11-25T10:31:40.512Z"),
            Some(test_support::at("2026-11-25T10:31:40.512Z"))
        );
        assert_eq!(text_at(&v, "/a").as_deref(), Some("101"));
        assert_eq!(text_at(&v, "/b").as_deref(), Some("101"));
        assert_eq!(text_at(&v, "/c"), None);
        assert_eq!(text_at(&v, "/d"), None);
        assert_eq!(text_at(&v, "/missing"), None);
        assert!(time_at(&v, "/t1").is_some());
        assert_eq!(
            time_at(&v, "/t2"),
            DateTime::from_timestamp(1_795_000_000, 0)
        );
        assert_eq!(
            time_at(&v, "/t3"),
            Some(test_support::at("2020-03-03T13:05:57Z"))
        );
    }

    #[test]
    fn timestamps_outside_the_tolerance_are_replays() {
        let now = test_support::at("2026-11-24T10:00:00Z");
        assert!(check_age(now - chrono::Duration::seconds(300), now, 300).is_ok());
        assert_eq!(
            check_age(now - chrono::Duration::seconds(301), now, 300),
            Err(Rejection::Stale(301))
        );
        assert_eq!(
            check_age(now + chrono::Duration::seconds(301), now, 300),
            Err(Rejection::Stale(-301))
        );
    }

    #[test]
    fn every_platform_is_registered_once() {
        let mut names: Vec<&str> = PLATFORMS.iter().map(|p| p.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PLATFORMS.len());
        assert!(platform("zendesk").is_some());
        assert!(platform("twilio").is_none());
    }
}
