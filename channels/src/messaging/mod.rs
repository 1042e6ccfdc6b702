//! Messaging providers: the services that carry surveys to customers and their answers back
//! (Twilio for SMS; the e-mail providers next). Each provider is one file and one [`Messaging`]
//! value in [`PROVIDERS`], the one table that names them: its configuration (settings and
//! secrets), the proof that a webhook comes from it, the parsing of each kind of webhook into a
//! [`MessagingEvent`], the answer it expects, and its outbound client.
//!
//! Adding a provider is one file here and one line in [`PROVIDERS`]; the gateway serves its
//! webhooks at `/hooks/{tenant}/{provider}/{kind}`, its settings at `/v1/channels/{provider}`,
//! and sends through it on its channel.

pub mod twilio;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub use crate::chat::{Credentials, Rejection};
use crate::model::{AddressVerdict, InvalidValue, MessagingEvent};
use crate::outbound::Outbound;
use crate::vocabulary::Channel;

/// How a kind of webhook's body is encoded; the gateway decodes it before verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/x-www-form-urlencoded`, decoded strictly into ordered pairs.
    Form,
}

/// One kind of webhook a provider sends, the last segment of its path.
#[derive(Debug, Clone, Copy)]
pub struct HookKind {
    pub name: &'static str,
    pub format: BodyFormat,
}

/// A verified-to-be webhook request, as the provider's functions see it.
pub struct MessagingRequest<'a> {
    /// The URL the provider called, as it knows it (the gateway's public base URL, then the
    /// path and query as received): some providers sign it.
    pub url: &'a str,
    pub headers: &'a HeaderMap,
    /// The form's pairs, in order, for [`BodyFormat::Form`].
    pub form: &'a [(String, String)],
    pub now: DateTime<Utc>,
}

impl MessagingRequest<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What the provider expects in the HTTP answer to its webhook (Twilio: TwiML, which may carry
/// a reply to the customer).
pub struct HookAnswer {
    pub content_type: &'static str,
    pub body: String,
}

/// The texts and timing every messaging provider's settings carry for replies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplySettings {
    /// Minutes after a score during which more text becomes its comment; the gateway's default
    /// when absent.
    #[serde(default)]
    pub comment_window_minutes: Option<u32>,
    /// Answer to a first score, per language: {"da": "Tak for dit svar!"}.
    #[serde(default)]
    pub thank_you: BTreeMap<String, String>,
    /// Answer to a request for help, per language.
    #[serde(default)]
    pub help_text: BTreeMap<String, String>,
}

impl ReplySettings {
    /// The reply settings in a tenant's stored settings (absent keys: none).
    pub fn of(creds: &Credentials) -> ReplySettings {
        serde_json::from_value(creds.settings.clone()).unwrap_or_default()
    }
}

/// How fast one tenant's messages through a provider may go, and which share that rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Pace {
    /// Messages with the same key share one rate (one sending number or account); keys name
    /// the tenant, so one tenant's flood never spends another's rate.
    pub key: String,
    pub per_second: f64,
}

/// One message to send.
pub struct Outgoing<'a> {
    pub to: &'a str,
    pub body: &'a str,
    /// Where the provider should post delivery reports about it.
    pub status_callback: Option<&'a str>,
}

/// The provider's acknowledgement of a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// The provider's id of the message (Twilio's SID, an SMTP queue id).
    pub provider_ref: String,
    /// The address it was sent from; `None` when the provider picks it.
    pub sender: Option<String>,
}

/// Why a message was not taken, and what to do about it: retry later, give up, opt the contact
/// out, or mark the address invalid (`verdict`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// Transient (provider overloaded, 429, 5xx, network): try again later.
    pub retryable: bool,
    /// The provider's error code, kept on the invitation.
    pub code: Option<String>,
    /// Fixed text by error code: a provider's own text can name the recipient.
    pub message: String,
    /// The provider's own Retry-After, when it gave one.
    pub retry_after: Option<Duration>,
    pub verdict: Option<AddressVerdict>,
}

impl SendError {
    pub fn transient(message: impl Into<String>) -> Self {
        SendError {
            retryable: true,
            code: None,
            message: message.into(),
            retry_after: None,
            verdict: None,
        }
    }

    pub fn permanent(code: Option<String>, message: impl Into<String>) -> Self {
        SendError {
            retryable: false,
            code,
            message: message.into(),
            retry_after: None,
            verdict: None,
        }
    }
}

/// The future of a send, boxed so that a provider's async function fits in [`PROVIDERS`].
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<Accepted, SendError>> + Send + 'a>>;

/// One messaging provider.
pub struct Messaging {
    /// The path segment and provider name: `/hooks/{tenant}/{name}/{kind}`.
    pub name: &'static str,
    /// The channel it carries.
    pub channel: Channel,
    /// The webhooks it sends.
    pub kinds: &'static [HookKind],
    /// The kind its delivery reports arrive as, for the callback address of each message.
    pub status_kind: &'static str,
    /// Checks `PUT /v1/channels/{name}` (numbers read in the region given) and splits it into
    /// settings and secrets.
    pub configure: fn(&Value, &str) -> Result<Credentials, Vec<InvalidValue>>,
    /// Proves the request comes from the tenant's account at the provider.
    pub verify: fn(&MessagingRequest, &Credentials) -> Result<(), Rejection>,
    /// Turns a verified webhook of a kind into an event; `None` for news the gateway does not
    /// act on (a status that says nothing about delivery).
    pub parse: fn(&str, &MessagingRequest) -> Result<Option<MessagingEvent>, InvalidValue>,
    /// The HTTP answer to a webhook, with a reply to the customer when there is one.
    pub answer: fn(Option<&str>) -> HookAnswer,
    /// The rate a tenant's messages go out at.
    pub pace: fn(&Credentials, &str) -> Pace,
    /// Sends one message: (client, the operator's API base URL, credentials, message).
    pub send: for<'a> fn(&'a Outbound, &'a str, &'a Credentials, Outgoing<'a>) -> SendFuture<'a>,
}

impl Messaging {
    pub fn kind(&self, name: &str) -> Option<&'static HookKind> {
        self.kinds.iter().find(|k| k.name == name)
    }
}

/// Every messaging provider. Adding one is a file in this folder and a line here.
pub static PROVIDERS: &[&Messaging] = &[&twilio::MESSAGING];

/// The provider named `name`.
pub fn provider(name: &str) -> Option<&'static Messaging> {
    PROVIDERS.iter().copied().find(|p| p.name == name)
}

/// The providers that carry `channel`, in table order.
pub fn for_channel(channel: Channel) -> impl Iterator<Item = &'static Messaging> {
    PROVIDERS
        .iter()
        .copied()
        .filter(move |p| p.channel == channel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_is_registered_once_and_apart_from_the_platforms() {
        let mut names: Vec<&str> = PROVIDERS.iter().map(|p| p.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PROVIDERS.len(), "a name appears twice");
        for p in PROVIDERS {
            assert!(
                crate::chat::platform(p.name).is_none(),
                "{} is also a support platform: /v1/channels/{} would be ambiguous",
                p.name,
                p.name
            );
            assert!(
                p.channel.can_send(),
                "{} carries a channel that sends",
                p.name
            );
            assert!(
                p.kind(p.status_kind).is_some(),
                "{}: its status kind is served",
                p.name
            );
            assert_eq!(provider(p.name).map(|q| q.name), Some(p.name));
        }
    }
}
