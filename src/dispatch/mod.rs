//! Dispatch: scheduled invitations become messages. The dispatcher claims due invitations,
//! checks opt-out again at send time, renders the question in the contact's language, paces
//! each sender within its rate, and hands the message to the channel's sender.

pub mod dispatcher;
pub mod pacer;
pub mod twilio;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

/// One message to one address.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundMessage {
    pub invitation_id: Uuid,
    pub tenant_id: Uuid,
    pub channel: String,
    /// E.164 phone number or e-mail address.
    pub to: String,
    pub language: String,
    pub body: String,
}

/// The provider's acknowledgement.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    /// The provider's id for the message (Twilio's message SID, an SMTP queue id).
    pub provider_ref: String,
    /// The address the message was sent from (the SMS number); a reply to it is matched on
    /// the (customer, sender) pair. `None` when the provider picks it (a Messaging Service).
    pub sender: Option<String>,
}

/// How fast messages may go out, and which messages share that rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Pace {
    /// Messages with the same key share one rate: one sending number or account. Keys include
    /// the tenant, so one tenant's flood never spends another tenant's rate.
    pub key: String,
    /// Messages per second (a Twilio long code sends about one).
    pub per_second: f64,
}

/// What the provider's refusal means for the contact's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressVerdict {
    /// The recipient unsubscribed at the provider: opt the contact out of the channel.
    OptedOut,
    /// The address cannot receive messages: mark it invalid.
    Invalid,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// Transient (provider overloaded, 429, 5xx, network): try again later.
    pub retryable: bool,
    /// The provider's error code, kept on the invitation.
    pub code: Option<String>,
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

/// A channel's way out. Senders are registered per channel; a provider adapter (Twilio, SMTP)
/// implements this.
#[async_trait]
pub trait Sender: Send + Sync {
    fn channel(&self) -> &'static str;

    /// The rate the tenant's messages on this channel go out at. An error (the tenant has not
    /// configured the provider) is settled like a failed send.
    async fn pace(&self, tenant_id: Uuid) -> Result<Pace, SendError>;

    async fn send(&self, message: &OutboundMessage) -> Result<Receipt, SendError>;
}

#[derive(Clone, Default)]
pub struct Senders {
    by_channel: HashMap<&'static str, Arc<dyn Sender>>,
}

impl Senders {
    pub fn new(senders: Vec<Arc<dyn Sender>>) -> Self {
        Senders {
            by_channel: senders.into_iter().map(|s| (s.channel(), s)).collect(),
        }
    }

    pub fn get(&self, channel: &str) -> Option<&Arc<dyn Sender>> {
        self.by_channel.get(channel)
    }
}
