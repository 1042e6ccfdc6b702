//! Twilio Programmable Messaging: request signatures, inbound SMS and status webhooks, opt-out
//! keywords, TwiML answers, and the Messages REST API.
//!
//! Written against Twilio's documented wire protocol rather than a crate: `twilio-rs` 0.1.1 is
//! generated code whose create-message call cannot set To, From or Body; `twilio` 1.1.0
//! hard-codes the API host (so it cannot be tested against a local peer), pulls OpenSSL through
//! hyper-tls and compares signatures in non-constant time. The protocol is small: an HMAC-SHA1
//! over the URL and sorted parameters, a form POST with basic auth, and two JSON shapes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha1::Sha1;
use subtle::ConstantTimeEq;

use super::{
    Accepted, BodyFormat, Credentials, HookAnswer, HookKind, Messaging, MessagingRequest, Outgoing,
    Pace, Rejection, ReplySettings, SendError, SendFuture,
};
use crate::model::MessagingEvent;
use crate::model::{
    AddressVerdict, DeliveryState, DeliveryStatus, E164Phone, Identity, InvalidValue, Keyword,
    ReplyText,
};
use crate::outbound::Outbound;
use crate::secret::Secret;
use crate::vocabulary::Channel;
use serde_json::Value;

pub const PROVIDER: &str = "twilio";
pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

// ---------------------------------------------------------------------------------------------
// Request signatures

/// `X-Twilio-Signature` for a request: base64(HMAC-SHA1(auth token, URL + every parameter name
/// and value, sorted by name and then by value, each pair once)). The URL is taken byte for byte
/// as Twilio requested it: scheme and host keep their case.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (name, value) in params {
        sorted.entry(name).or_default().insert(value);
    }
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(url.as_bytes());
    for (name, values) in sorted {
        for value in values {
            mac.update(name.as_bytes());
            mac.update(value.as_bytes());
        }
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether `header` is Twilio's signature of the request. As Twilio's SDKs do, the URL is tried
/// as given, without its port, and with the scheme's default port, because Twilio's own
/// signing is inconsistent about default ports. Compared in constant time.
pub fn verify_signature(
    auth_token: &Secret,
    url: &str,
    params: &[(String, String)],
    header: &str,
) -> bool {
    let mut valid = subtle::Choice::from(0);
    for candidate in url_variants(url) {
        let expected = signature(auth_token.expose(), &candidate, params);
        valid |= expected.as_bytes().ct_eq(header.as_bytes());
    }
    valid.into()
}

/// The URL as given, without an explicit port, and with the default port of its scheme added
/// when it had none. Parsed by hand: URL libraries lower-case the scheme and host, which
/// would change what was signed.
fn url_variants(url: &str) -> Vec<String> {
    let Some(scheme_end) = url.find("://") else {
        return vec![url.to_owned()];
    };
    let authority_start = scheme_end + 3;
    let authority_end = url[authority_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| authority_start + i);
    let authority = &url[authority_start..authority_end];
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let host_port = &authority[host_start..];
    // An IPv6 literal has colons of its own; its port follows the closing bracket.
    let port_colon = match host_port.rfind(']') {
        Some(bracket) => host_port[bracket..].find(':').map(|i| bracket + i),
        None => host_port.rfind(':'),
    };
    let (prefix, rest) = (&url[..authority_start + host_start], &url[authority_end..]);
    let mut variants = vec![url.to_owned()];
    match port_colon {
        Some(colon) => {
            let host = &host_port[..colon];
            variants.push(format!("{prefix}{host}{rest}"));
        }
        None => {
            let scheme = &url[..scheme_end];
            let port = if scheme.eq_ignore_ascii_case("https") {
                443
            } else {
                80
            };
            variants.push(format!("{prefix}{host_port}:{port}{rest}"));
        }
    }
    variants
}

// ---------------------------------------------------------------------------------------------
// Webhooks

/// The first value of a form parameter.
fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn required<'a>(
    params: &'a [(String, String)],
    name: &'static str,
) -> Result<&'a str, InvalidValue> {
    param(params, name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| InvalidValue::new(name, format!("Twilio sends `{name}`; it is missing")))
}

/// The keyword a message is, matched as carriers do: the whole trimmed message, any case.
/// Twilio's `OptOutType` (sent when Advanced Opt-Out is on) decides when present.
pub fn keyword(body: &str, opt_out_type: Option<&str>) -> Option<Keyword> {
    match opt_out_type.map(str::to_ascii_uppercase).as_deref() {
        Some("STOP") => return Some(Keyword::OptOut),
        Some("START") => return Some(Keyword::OptIn),
        Some("HELP") => return Some(Keyword::Help),
        _ => {}
    }
    match body.trim().to_uppercase().as_str() {
        "STOP" | "STOPALL" | "UNSUBSCRIBE" | "CANCEL" | "END" | "QUIT" | "REVOKE" | "OPTOUT" => {
            Some(Keyword::OptOut)
        }
        "START" | "YES" | "UNSTOP" => Some(Keyword::OptIn),
        "HELP" | "INFO" => Some(Keyword::Help),
        _ => None,
    }
}

/// An incoming SMS webhook (`application/x-www-form-urlencoded` parameters, decoded) as a
/// message, a keyword or a reply. `From` must be a phone number.
pub fn parse_inbound(params: &[(String, String)]) -> Result<ReplyText, InvalidValue> {
    let message_sid = required(params, "MessageSid")?;
    let from = E164Phone::parse(required(params, "From")?, None)
        .map_err(|e| InvalidValue::new("From", e.message))?;
    let to = required(params, "To")?;
    let body = param(params, "Body").unwrap_or("");
    Ok(ReplyText {
        channel: Channel::Sms.as_str().to_owned(),
        provider: PROVIDER.to_owned(),
        provider_ref: message_sid.to_owned(),
        from: Identity::Phone(from),
        to: to.to_owned(),
        text: body.to_owned(),
        attachments: param(params, "NumMedia")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
        keyword: keyword(body, param(params, "OptOutType").filter(|v| !v.is_empty())),
        invitation: None,
    })
}

/// Error codes of a failed delivery that say the number cannot get SMS: unknown handset,
/// landline or unreachable carrier (Twilio's error reference, 30005 and 30006).
const UNDELIVERABLE_NUMBER: &[&str] = &["30005", "30006"];

/// What a delivery failure's error code says about the number.
fn delivery_verdict(code: Option<&str>) -> Option<AddressVerdict> {
    match code? {
        c if c.parse() == Ok(UNSUBSCRIBED) => Some(AddressVerdict::OptedOut),
        c if UNDELIVERABLE_NUMBER.contains(&c) => Some(AddressVerdict::Invalid),
        _ => None,
    }
}

/// A status callback for a sent message. Statuses that say nothing about delivery
/// (`accepted`, `scheduled`, `canceled`, `partially_delivered`, future ones) give `None`.
pub fn parse_status(params: &[(String, String)]) -> Result<Option<DeliveryStatus>, InvalidValue> {
    let message_sid = required(params, "MessageSid")?;
    let status = param(params, "MessageStatus")
        .or_else(|| param(params, "SmsStatus"))
        .ok_or_else(|| InvalidValue::new("MessageStatus", "Twilio sends `MessageStatus`"))?;
    let error_code = param(params, "ErrorCode").filter(|c| !c.is_empty());
    Ok(DeliveryState::parse(status).map(|state| DeliveryStatus {
        provider: PROVIDER.to_owned(),
        provider_ref: message_sid.to_owned(),
        state,
        error_code: error_code.map(str::to_owned),
        verdict: delivery_verdict(error_code.filter(|_| state.is_failure())),
    }))
}

/// A TwiML messaging answer: empty (no reply) or one reply message, XML-escaped.
pub fn twiml(message: Option<&str>) -> String {
    match message {
        None => r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#.to_owned(),
        Some(text) => format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>{}</Message></Response>"#,
            xml_escape(text)
        ),
    }
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// A tenant's configuration (`PUT /v1/channels/twilio`)

/// The body of `PUT /v1/channels/twilio`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigBody {
    pub account_sid: String,
    pub auth_token: Secret,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub messaging_service_sid: Option<String>,
    /// Refused with a clear message: where Twilio's API is, is the operator's setting
    /// (`providers.twilio.api_base_url`), never a tenant's.
    #[serde(default)]
    pub api_base_url: Option<serde_json::Value>,
    #[serde(default)]
    pub messages_per_second: Option<f64>,
    // The reply settings field by field, not `#[serde(flatten)] ReplySettings`: serde ignores
    // `deny_unknown_fields` on a struct with a flattened field, and a misspelt key must be
    // refused. `validate` gathers them into `ReplySettings`.
    #[serde(default)]
    pub comment_window_minutes: Option<u32>,
    /// Answer to a first score, per language: {"da": "Tak for dit svar!"}.
    #[serde(default)]
    pub thank_you: BTreeMap<String, String>,
    /// Answer to HELP / INFO, per language.
    #[serde(default)]
    pub help_text: BTreeMap<String, String>,
}

/// Everything but the auth token: what `GET /v1/channels/twilio` shows.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
pub struct Settings {
    pub account_sid: String,
    pub from: Option<String>,
    pub messaging_service_sid: Option<String>,
    /// A long code sends about one message a second; short codes and toll-free numbers more.
    pub messages_per_second: f64,
    /// Comment window, thank-you and help texts, as every messaging provider keeps them.
    #[serde(flatten)]
    pub replies: ReplySettings,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    pub auth_token: Secret,
}

impl Config {
    /// The account, on the API at the operator's `api_base_url`.
    pub fn account(&self, api_base_url: &str) -> Account {
        Account {
            account_sid: self.settings.account_sid.clone(),
            auth_token: self.auth_token.clone(),
            api_base_url: api_base_url.trim_end_matches('/').to_owned(),
        }
    }

    pub fn send_from(&self) -> SendFrom {
        match (&self.settings.from, &self.settings.messaging_service_sid) {
            (Some(number), _) => SendFrom::Number(number.clone()),
            (None, Some(sid)) => SendFrom::MessagingService(sid.clone()),
            (None, None) => unreachable!("validated: `from` or `messaging_service_sid` is set"),
        }
    }
}

/// Twilio's ids: two letters and 32 hex digits.
fn is_sid(value: &str, prefix: &str) -> bool {
    value.len() == 34
        && value.starts_with(prefix)
        && value[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

impl ConfigBody {
    /// Checks every field; the sending number is normalized to E.164 in `default_region`.
    pub fn validate(self, default_region: &str) -> Result<Config, Vec<InvalidValue>> {
        let mut errors = Vec::new();
        if !is_sid(&self.account_sid, "AC") {
            errors.push(InvalidValue::new(
                "account_sid",
                "an account SID is AC followed by 32 hex digits",
            ));
        }
        // The auth token is also the key Twilio signs webhooks with (32 hex digits).
        if self.auth_token.expose().trim().len() < 16 {
            errors.push(InvalidValue::new(
                "auth_token",
                "must be the account's auth token (at least 16 characters)",
            ));
        }
        let from = match &self.from {
            Some(number) => match E164Phone::parse(number, Some(default_region)) {
                Ok(n) => Some(n.as_str().to_owned()),
                Err(e) => {
                    errors.push(InvalidValue::new("from", e.message));
                    None
                }
            },
            None => None,
        };
        if let Some(sid) = &self.messaging_service_sid {
            if !is_sid(sid, "MG") {
                errors.push(InvalidValue::new(
                    "messaging_service_sid",
                    "a Messaging Service SID is MG followed by 32 hex digits",
                ));
            }
        }
        if self.from.is_none() == self.messaging_service_sid.is_none() {
            errors.push(InvalidValue::new(
                "from",
                "give exactly one of `from` and `messaging_service_sid`",
            ));
        }
        if self.api_base_url.is_some() {
            errors.push(InvalidValue::new(
                "api_base_url",
                "Twilio's API address is the operator's setting (providers.twilio.api_base_url); leave it out",
            ));
        }
        let messages_per_second = self.messages_per_second.unwrap_or(1.0);
        if !(messages_per_second > 0.0 && messages_per_second <= 1000.0) {
            errors.push(InvalidValue::new(
                "messages_per_second",
                "must be more than 0 and at most 1000",
            ));
        }
        if self.comment_window_minutes.is_some_and(|m| m > 7 * 24 * 60) {
            errors.push(InvalidValue::new(
                "comment_window_minutes",
                "must be 0 to 10080 (7 days)",
            ));
        }
        for (field, texts) in [
            ("thank_you", &self.thank_you),
            ("help_text", &self.help_text),
        ] {
            if texts
                .values()
                .any(|t| t.trim().is_empty() || t.chars().count() > 1600)
            {
                errors.push(InvalidValue::new(
                    field,
                    "each text is 1 to 1600 characters (Twilio's limit)",
                ));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Config {
            settings: Settings {
                account_sid: self.account_sid,
                from,
                messaging_service_sid: self.messaging_service_sid,
                messages_per_second,
                replies: ReplySettings {
                    comment_window_minutes: self.comment_window_minutes,
                    thank_you: self.thank_you,
                    help_text: self.help_text,
                },
            },
            auth_token: self.auth_token,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Messages API

/// Who a message is sent from: a number, or a Messaging Service that picks one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFrom {
    Number(String),
    MessagingService(String),
}

/// An account's credentials and where its API is.
#[derive(Debug, Clone)]
pub struct Account {
    pub account_sid: String,
    pub auth_token: Secret,
    /// The operator's `providers.twilio.api_base_url`: `https://api.twilio.com`, or a local
    /// stand-in in tests.
    pub api_base_url: String,
}

/// The part of Twilio's message resource the gateway reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Message {
    pub sid: String,
    pub status: String,
}

/// Twilio's refusal, from either of its error formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub http_status: u16,
    /// Twilio's error code (21610, 20429, …); the HTTP status when the body had none.
    pub code: u32,
    pub message: String,
    pub more_info: Option<String>,
    pub retry_after: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendFailure {
    #[error("Twilio error {}: {}", .0.code, .0.message)]
    Api(ApiError),
    /// No answer, or one that was not Twilio's (a proxy's HTML page).
    #[error("Twilio could not be reached: {0}")]
    Transport(String),
}

/// A fixed description of a Twilio error code, for what a tenant sees. Twilio's own message
/// text is not shown: it names the recipient. (From Twilio's error reference.)
pub fn describe(code: u32) -> &'static str {
    match code {
        20003 => "authentication failed: check the account SID and auth token",
        20404 => "the account or resource was not found",
        20429 => "too many requests",
        21211 => "the recipient's number is not valid",
        21408 => "sending to this region is not enabled on the account",
        21606 | 21659 => "the sending number cannot send this message",
        21610 => "the recipient has opted out (replied STOP)",
        21612 => "Twilio cannot route to the recipient's number",
        21614 => "the recipient's number is not a mobile number",
        21635 => "the recipient's number is a landline",
        30003..=30008 => "the message could not be delivered to the handset",
        c if (500..600).contains(&c) => "Twilio had a server error",
        _ => "see Twilio's error reference for this code",
    }
}

/// Codes for a recipient who texted STOP: every later send answers the same.
pub const UNSUBSCRIBED: u32 = 21610;
/// Codes for a number that cannot get an SMS: invalid, not a mobile number, a landline.
pub const UNREACHABLE_NUMBER: &[u32] = &[21211, 21614, 21635];
/// Twilio's "too many requests".
pub const TOO_MANY_REQUESTS: u32 = 20429;

impl SendFailure {
    /// Worth trying again later: the network, 429 and 5xx. Everything else is a refusal.
    pub fn is_retryable(&self) -> bool {
        match self {
            SendFailure::Transport(_) => true,
            SendFailure::Api(e) => {
                e.http_status == 429 || e.http_status >= 500 || e.code == TOO_MANY_REQUESTS
            }
        }
    }

    pub fn code(&self) -> Option<u32> {
        match self {
            SendFailure::Api(e) => Some(e.code),
            SendFailure::Transport(_) => None,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SendFailure::Api(e) => e.retry_after,
            SendFailure::Transport(_) => None,
        }
    }

    pub fn recipient_unsubscribed(&self) -> bool {
        self.code() == Some(UNSUBSCRIBED)
    }

    pub fn recipient_unreachable(&self) -> bool {
        self.code().is_some_and(|c| UNREACHABLE_NUMBER.contains(&c))
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    code: Option<u32>,
    message: Option<String>,
    more_info: Option<String>,
    // RFC 9457 form, which newer Twilio APIs answer with.
    title: Option<String>,
    detail: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

fn parse_error(http_status: u16, retry_after: Option<Duration>, body: &str) -> SendFailure {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(e) => SendFailure::Api(ApiError {
            http_status,
            code: e.code.unwrap_or(u32::from(http_status)),
            message: e
                .message
                .or(e.detail)
                .or(e.title)
                .unwrap_or_else(|| format!("HTTP {http_status}")),
            more_info: e.more_info.or(e.kind),
            retry_after,
        }),
        // Not Twilio's JSON: a load balancer's page. Judge by the status alone.
        Err(_) if http_status == 429 || http_status >= 500 => SendFailure::Api(ApiError {
            http_status,
            code: u32::from(http_status),
            message: format!("HTTP {http_status}"),
            more_info: None,
            retry_after,
        }),
        Err(_) => SendFailure::Transport(format!("HTTP {http_status} without a Twilio error body")),
    }
}

/// The Messages API of one account.
#[derive(Debug, Clone)]
pub struct Client {
    http: Outbound,
    account: Account,
}

impl Client {
    pub fn new(http: Outbound, account: Account) -> Self {
        Client { http, account }
    }

    /// `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`.
    pub async fn send(
        &self,
        to: &str,
        from: &SendFrom,
        body: &str,
        status_callback: Option<&str>,
    ) -> Result<Message, SendFailure> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.account.api_base_url.trim_end_matches('/'),
            self.account.account_sid
        );
        let mut form = vec![("To", to), ("Body", body)];
        match from {
            SendFrom::Number(n) => form.push(("From", n)),
            SendFrom::MessagingService(sid) => form.push(("MessagingServiceSid", sid)),
        }
        if let Some(cb) = status_callback {
            form.push(("StatusCallback", cb));
        }
        let encoded = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let response = self
            .http
            .request(reqwest::Method::POST, &url)
            .map_err(|e| SendFailure::Transport(e.to_string()))?
            .basic_auth(
                &self.account.account_sid,
                Some(self.account.auth_token.expose()),
            )
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(encoded)
            .send()
            .await
            .map_err(|e| SendFailure::Transport(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response
            .text()
            .await
            .map_err(|e| SendFailure::Transport(e.without_url().to_string()))?;
        if (200..300).contains(&status) {
            serde_json::from_str::<Message>(&text).map_err(|e| {
                SendFailure::Transport(format!("Twilio answered {status} with no message: {e}"))
            })
        } else {
            Err(parse_error(status, retry_after, &text))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The provider table's entry

/// Twilio in the messaging-provider table.
pub static MESSAGING: Messaging = Messaging {
    name: PROVIDER,
    channel: Channel::Sms,
    kinds: &[
        HookKind {
            name: "sms",
            format: BodyFormat::Form,
        },
        HookKind {
            name: "status",
            format: BodyFormat::Form,
        },
    ],
    status_kind: "status",
    configure,
    verify,
    parse: parse_hook,
    answer,
    pace,
    send: send_message,
};

fn configure(body: &Value, default_region: &str) -> Result<Credentials, Vec<InvalidValue>> {
    let config = crate::chat::config_body::<ConfigBody>(body)?.validate(default_region)?;
    let settings = serde_json::to_value(&config.settings)
        .map_err(|e| vec![InvalidValue::new("body", e.to_string())])?;
    Ok(Credentials {
        settings,
        secrets: BTreeMap::from([("auth_token".to_owned(), config.auth_token)]),
    })
}

impl Config {
    /// The account as a tenant's stored credentials give it.
    pub fn from_credentials(creds: &Credentials) -> Result<Config, String> {
        let settings = serde_json::from_value(creds.settings.clone())
            .map_err(|e| format!("twilio configuration: {e}"))?;
        let auth_token = creds
            .secret("auth_token")
            .cloned()
            .ok_or("twilio configuration: no auth token")?;
        Ok(Config {
            settings,
            auth_token,
        })
    }
}

fn verify(req: &MessagingRequest, creds: &Credentials) -> Result<(), Rejection> {
    let signature = req
        .header(SIGNATURE_HEADER)
        .ok_or(Rejection::Missing("X-Twilio-Signature"))?;
    let token = creds
        .secret("auth_token")
        .ok_or(Rejection::Mismatch("X-Twilio-Signature"))?;
    if verify_signature(token, req.url, req.form, signature) {
        Ok(())
    } else {
        Err(Rejection::Mismatch("X-Twilio-Signature"))
    }
}

fn parse_hook(kind: &str, req: &MessagingRequest) -> Result<Option<MessagingEvent>, InvalidValue> {
    match kind {
        "sms" => parse_inbound(req.form).map(|m| Some(MessagingEvent::Message(m))),
        _ => parse_status(req.form).map(|s| s.map(MessagingEvent::Delivery)),
    }
}

fn answer(reply: Option<&str>) -> HookAnswer {
    HookAnswer {
        content_type: "text/xml; charset=utf-8",
        body: twiml(reply),
    }
}

fn pace(creds: &Credentials, tenant: &str) -> Pace {
    let (sender, per_second) = match Config::from_credentials(creds) {
        Ok(config) => {
            let sender = match config.send_from() {
                SendFrom::Number(n) => n,
                SendFrom::MessagingService(sid) => sid,
            };
            (sender, config.settings.messages_per_second)
        }
        Err(_) => (String::new(), 1.0),
    };
    Pace {
        key: format!("twilio:{tenant}:{sender}"),
        per_second,
    }
}

fn send_message<'a>(
    http: &'a Outbound,
    api_base_url: &'a str,
    creds: &'a Credentials,
    message: Outgoing<'a>,
) -> SendFuture<'a> {
    Box::pin(async move {
        let config = Config::from_credentials(creds).map_err(SendError::transient)?;
        let from = config.send_from();
        let client = Client::new(http.clone(), config.account(api_base_url));
        let sent = client
            .send(message.to, &from, message.body, message.status_callback)
            .await
            .map_err(send_error)?;
        Ok(Accepted {
            provider_ref: sent.sid,
            sender: match from {
                SendFrom::Number(n) => Some(n),
                SendFrom::MessagingService(_) => None,
            },
        })
    })
}

/// Twilio's refusal as the dispatcher keeps it. The message is fixed text by error code:
/// Twilio's own text names the recipient's number, and a tenant sees `last_error`. A short,
/// scrubbed excerpt of Twilio's text goes to the log for the operator.
fn send_error(failure: SendFailure) -> SendError {
    let verdict = if failure.recipient_unsubscribed() {
        Some(AddressVerdict::OptedOut)
    } else if failure.recipient_unreachable() {
        Some(AddressVerdict::Invalid)
    } else {
        None
    };
    let message = match &failure {
        SendFailure::Api(e) => {
            tracing::warn!(
                code = e.code,
                http_status = e.http_status,
                excerpt = %crate::scrub::excerpt(&e.message),
                "Twilio refused a message"
            );
            format!("Twilio error {}: {}", e.code, describe(e.code))
        }
        SendFailure::Transport(reason) => {
            tracing::warn!(reason = %crate::scrub::excerpt(reason), "Twilio could not be reached");
            "Twilio could not be reached".to_owned()
        }
    };
    SendError {
        retryable: failure.is_retryable(),
        code: failure.code().map(|c| c.to_string()),
        message,
        retry_after: failure.retry_after(),
        verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The parameters of twilio-python's request-validator tests.
    fn sdk_params() -> Vec<(String, String)> {
        pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ])
    }

    const TOKEN: &str = "12345";

    fn verify(url: &str, params: &[(String, String)], sig: &str) -> bool {
        verify_signature(&Secret::new(TOKEN), url, params, sig)
    }

    #[test]
    fn signs_as_the_sdks_do() {
        // Published vectors of twilio-python and twilio-csharp (shared/PROTOCOLS.md 1a).
        let cases = [
            (
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
            ),
            (
                "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                "kvajT1Ptam85bY51eRf/AJRuM3w=",
            ),
            (
                "http://mycompany.com:80/myapp.php?foo=1&bar=2",
                "0ZXoZLH/DfblKGATFgpif+LLRf4=",
            ),
            (
                "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
                "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
            ),
            (
                "https://MyCompany.com/myapp.php?foo=1&bar=2",
                "g9IN/x4Cft2g517EjYvEvM/W7LU=",
            ),
            (
                "https://MyCompany.com:1234/myapp.php?foo=1&bar=2",
                "PCqOZm8cnu/L6+u5i5fuEd+Iac4=",
            ),
            (
                "http://username:password@MyCompany.com/myapp.php?foo=1&bar=2",
                "PJ08CxXr7KLPjEQCTc8LkUSMwSM=",
            ),
            (
                "HTTP://username:password@MyCompany.com/myapp.php?foo=1&bar=2",
                "hy/l8pca+LFms4cvRdv8uiP6NGc=",
            ),
        ];
        for (url, expected) in cases {
            assert_eq!(signature(TOKEN, url, &sdk_params()), expected, "{url}");
            assert!(verify(url, &sdk_params(), expected), "{url}");
        }
    }

    #[test]
    fn repeated_parameters_are_sorted_by_value_and_counted_once() {
        let params = pairs(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ]);
        assert_eq!(
            signature(
                TOKEN,
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &params
            ),
            "IK+Dwps556ElfBT0I3Rgjkr1wJU="
        );
    }

    #[test]
    fn accepts_the_url_with_and_without_its_default_port() {
        let p = sdk_params();
        // Signed without a port, requested with :443, and the other way round.
        assert!(verify(
            "https://mycompany.com:443/myapp.php?foo=1&bar=2",
            &p,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        assert!(verify(
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            &p,
            "kvajT1Ptam85bY51eRf/AJRuM3w="
        ));
        assert!(verify(
            "http://mycompany.com/myapp.php?foo=1&bar=2",
            &p,
            "0ZXoZLH/DfblKGATFgpif+LLRf4="
        ));
        // A non-default port is tried as given and stripped (twilio-python's own test).
        assert!(verify(
            "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
            &p,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        assert!(verify(
            "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
            &p,
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="
        ));
    }

    #[test]
    fn rejects_wrong_signatures_and_never_changes_case() {
        let p = sdk_params();
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert!(!verify(
            "https://MyCompany.com/myapp.php?foo=1&bar=2",
            &p,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        assert!(!verify(url, &p, "NOTRSOYDt4T1cUTdK1PDd93/VVr8B8="));
        assert!(!verify(url, &p, ""));
        assert!(!verify(url, &p, "RSOYDt4T1cUTdK1PDd93/VVr8B8"));
        assert!(!verify_signature(
            &Secret::new("54321"),
            url,
            &p,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        // A parameter added, changed or left out breaks it: every parameter is signed.
        let mut more = p.clone();
        more.push(("NewParam".into(), "x".into()));
        assert!(!verify(url, &more, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
        let mut changed = p.clone();
        changed[2].1 = "1235".into();
        assert!(!verify(url, &changed, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
        assert!(!verify(url, &p[1..], "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
        // The query string is part of what is signed.
        assert!(!verify(
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            &p,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
    }

    #[test]
    fn url_variants_keep_everything_but_the_port() {
        assert_eq!(
            url_variants("https://u:p@Host.example:8443/a?b=c"),
            [
                "https://u:p@Host.example:8443/a?b=c",
                "https://u:p@Host.example/a?b=c"
            ]
        );
        assert_eq!(
            url_variants("http://[::1]/hook"),
            ["http://[::1]/hook", "http://[::1]:80/hook"]
        );
        assert_eq!(
            url_variants("http://[::1]:9000/hook"),
            ["http://[::1]:9000/hook", "http://[::1]/hook"]
        );
        assert_eq!(
            url_variants("https://h.example"),
            ["https://h.example", "https://h.example:443"]
        );
    }

    #[test]
    fn keywords_match_the_whole_message_in_any_case() {
        let cases = [
            ("STOP", Some(Keyword::OptOut)),
            ("stop", Some(Keyword::OptOut)),
            (" sToP \n", Some(Keyword::OptOut)),
            ("Stopall", Some(Keyword::OptOut)),
            ("unsubscribe", Some(Keyword::OptOut)),
            ("cancel", Some(Keyword::OptOut)),
            ("END", Some(Keyword::OptOut)),
            ("quit", Some(Keyword::OptOut)),
            ("start", Some(Keyword::OptIn)),
            ("YES", Some(Keyword::OptIn)),
            ("Unstop", Some(Keyword::OptIn)),
            ("help", Some(Keyword::Help)),
            ("INFO", Some(Keyword::Help)),
            ("Stop please", None),
            ("stop.", None),
            ("don't stop", None),
            ("5", None),
            ("", None),
        ];
        for (body, expected) in cases {
            assert_eq!(keyword(body, None), expected, "{body:?}");
        }
        assert_eq!(keyword("Stop please", Some("STOP")), Some(Keyword::OptOut));
        assert_eq!(keyword("Begin", Some("START")), Some(Keyword::OptIn));
        assert_eq!(keyword("5", Some("")), None);
    }

    #[test]
    fn parses_an_inbound_message_and_its_keywords() {
        let mut params = pairs(&[
            ("ToCountry", "DK"),
            ("SmsMessageSid", "SMb711289e438f577f230f5837e9c74a08"),
            ("NumMedia", "0"),
            ("SmsSid", "SMb711289e438f577f230f5837e9c74a08"),
            ("SmsStatus", "received"),
            ("Body", "5 tak!"),
            ("To", "+4578787878"),
            ("NumSegments", "1"),
            ("MessageSid", "SMb711289e438f577f230f5837e9c74a08"),
            ("AccountSid", "ACf54dd7a47a8011d65b54d472a7190549"),
            ("From", "+4522334455"),
            ("ApiVersion", "2010-04-01"),
        ]);
        let r = parse_inbound(&params).unwrap();
        assert_eq!(r.provider_ref, "SMb711289e438f577f230f5837e9c74a08");
        assert_eq!(r.from.value(), "+4522334455");
        assert_eq!(r.to, "+4578787878");
        assert_eq!(r.text, "5 tak!");
        assert_eq!(r.attachments, 0);
        assert_eq!(r.keyword, None);
        params[5].1 = "STOP".into();
        assert_eq!(
            parse_inbound(&params).unwrap().keyword,
            Some(Keyword::OptOut)
        );
        params[10].1 = "not a number".into();
        assert_eq!(parse_inbound(&params).unwrap_err().field, "From");
        params.retain(|(k, _)| k != "MessageSid");
        assert_eq!(parse_inbound(&params).unwrap_err().field, "MessageSid");
    }

    #[test]
    fn parses_status_callbacks() {
        let params = pairs(&[
            ("MessageSid", "SM1"),
            ("MessageStatus", "undelivered"),
            ("ErrorCode", "30003"),
        ]);
        let s = parse_status(&params).unwrap().unwrap();
        assert_eq!(s.state, DeliveryState::Undelivered);
        assert_eq!(s.error_code.as_deref(), Some("30003"));
        assert_eq!(
            s.verdict, None,
            "30003: the handset was unreachable this time"
        );
        let code = |c: &str| {
            parse_status(&pairs(&[
                ("MessageSid", "SM1"),
                ("MessageStatus", "failed"),
                ("ErrorCode", c),
            ]))
            .unwrap()
            .unwrap()
            .verdict
        };
        assert_eq!(code("21610"), Some(AddressVerdict::OptedOut));
        assert_eq!(code("30005"), Some(AddressVerdict::Invalid));
        assert_eq!(code("30006"), Some(AddressVerdict::Invalid));
        let accepted = pairs(&[("MessageSid", "SM1"), ("MessageStatus", "accepted")]);
        assert_eq!(parse_status(&accepted).unwrap(), None);
        assert!(parse_status(&pairs(&[("MessageSid", "SM1")])).is_err());
    }

    #[test]
    fn twiml_is_escaped() {
        assert_eq!(
            twiml(None),
            r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#
        );
        assert_eq!(
            twiml(Some("Tak & <farvel>")),
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>Tak &amp; &lt;farvel&gt;</Message></Response>"#
        );
    }

    #[test]
    fn configuration_is_validated_and_the_number_normalized() {
        let body = |json: &str| serde_json::from_str::<ConfigBody>(json).unwrap();
        let ok = body(
            r#"{"account_sid": "AC0123456789abcdef0123456789abcdef", "auth_token": "0123456789abcdef0123456789abcdef",
                "from": "78 78 78 78"}"#,
        )
        .validate("DK")
        .unwrap();
        assert_eq!(ok.settings.from.as_deref(), Some("+4578787878"));
        assert_eq!(ok.settings.messages_per_second, 1.0);
        assert_eq!(ok.send_from(), SendFrom::Number("+4578787878".into()));
        let fields = |json: &str| -> Vec<&'static str> {
            body(json)
                .validate("DK")
                .unwrap_err()
                .into_iter()
                .map(|e| e.field)
                .collect()
        };
        assert_eq!(
            fields(r#"{"account_sid": "AC1", "auth_token": "", "from": "12"}"#),
            ["account_sid", "auth_token", "from"]
        );
        assert_eq!(
            fields(
                r#"{"account_sid": "AC0123456789abcdef0123456789abcdef", "auth_token": "0123456789abcdef"}"#
            ),
            ["from"]
        );
        assert_eq!(
            fields(
                r#"{"account_sid": "AC0123456789abcdef0123456789abcdef", "auth_token": "0123456789abcdef",
                    "messaging_service_sid": "MGx", "messages_per_second": 0}"#
            ),
            ["messaging_service_sid", "messages_per_second"]
        );
        assert_eq!(
            fields(
                r#"{"account_sid": "AC0123456789abcdef0123456789abcdef", "auth_token": "short",
                    "from": "78 78 78 78", "api_base_url": "http://127.0.0.1:8080/internal?x=1#"}"#
            ),
            ["auth_token", "api_base_url"]
        );
        assert!(serde_json::from_str::<ConfigBody>(
            r#"{"account_sid": "AC", "auth_token": "t", "token": 1}"#
        )
        .is_err());
    }

    #[test]
    fn reads_both_error_formats() {
        let legacy = parse_error(
            400,
            None,
            r#"{"code": 21610, "message": "Attempt to send to unsubscribed recipient", "more_info": "https://www.twilio.com/docs/errors/21610", "status": 400}"#,
        );
        assert!(legacy.recipient_unsubscribed());
        assert!(!legacy.is_retryable());
        let problem = parse_error(
            400,
            None,
            r#"{"type": "https://www.twilio.com/docs/errors/21211", "title": "Invalid 'To' Phone Number", "status": 400, "code": 21211, "detail": "The 'To' number +1 is not a valid phone number."}"#,
        );
        assert!(problem.recipient_unreachable());
        match &problem {
            SendFailure::Api(e) => assert!(e.message.contains("not a valid phone number")),
            other => panic!("{other:?}"),
        }
        let busy = parse_error(
            429,
            Some(Duration::from_secs(2)),
            r#"{"code": 20429, "message": "Too Many Requests", "status": 429}"#,
        );
        assert!(busy.is_retryable());
        assert_eq!(busy.retry_after(), Some(Duration::from_secs(2)));
        assert!(parse_error(503, None, "<html>bad gateway</html>").is_retryable());
        let auth = parse_error(
            401,
            None,
            r#"{"code": 20003, "message": "Authenticate", "status": 401}"#,
        );
        assert!(!auth.is_retryable());
    }
}
