//! Dispatch: scheduled invitations become messages. The dispatcher claims due invitations,
//! checks opt-out again at send time, renders the question in the contact's language, paces
//! each sender within its rate, and hands the message to the channel's sender.

pub mod dispatcher;
pub mod email;
pub mod pacer;
pub mod provider;

use std::collections::HashMap;
use std::sync::Arc;

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
    /// The survey's question in that language.
    pub body: String,
    /// What the question asks for: the scale of the e-mail's rating links.
    pub metric: channels::model::Metric,
}

/// The provider's acknowledgement: its id of the message and the number it went from.
pub type Receipt = channels::messaging::Accepted;

pub use channels::messaging::{Pace, SendError};
pub use channels::model::AddressVerdict;

/// A channel's way out. The messaging providers' table gives one sender per channel
/// ([`provider::ProviderSender`]); an extension may register its own for a channel.
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
