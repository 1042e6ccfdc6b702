//! The SMS sender over Twilio: the tenant's account from its channel configuration, one message
//! per invitation, Twilio's refusals turned into retry / give up / opt out / invalid number.

use async_trait::async_trait;
use channels::outbound::Outbound;
use channels::scrub;
use channels::sms::twilio::{self, SendFailure};
use uuid::Uuid;

use super::{AddressVerdict, OutboundMessage, Pace, Receipt, SendError, Sender};
use crate::store::{channel_configs, tenants, Db};

pub struct TwilioSender {
    db: Db,
    http: Outbound,
    /// The gateway's public base URL: status callbacks go to `/hooks/{tenant}/twilio/status`.
    public_url: String,
    /// The operator's `providers.twilio.api_base_url`.
    api_base_url: String,
}

impl TwilioSender {
    pub fn new(db: Db, http: Outbound, public_url: &str, api_base_url: &str) -> Self {
        TwilioSender {
            db,
            http,
            public_url: public_url.trim_end_matches('/').to_owned(),
            api_base_url: api_base_url.to_owned(),
        }
    }

    async fn config(&self, tenant_id: Uuid) -> Result<twilio::Config, SendError> {
        channel_configs::twilio(&self.db, tenant_id)
            .await
            .map_err(|e| SendError::transient(format!("loading the Twilio configuration: {e}")))?
            // Retried, not failed: the tenant may configure Twilio after scheduling surveys.
            .ok_or_else(|| SendError::transient("Twilio is not configured for this tenant"))
    }
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
                excerpt = %scrub::excerpt(&e.message),
                "Twilio refused a message"
            );
            format!("Twilio error {}: {}", e.code, twilio::describe(e.code))
        }
        SendFailure::Transport(reason) => {
            tracing::warn!(reason = %scrub::excerpt(reason), "Twilio could not be reached");
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

#[async_trait]
impl Sender for TwilioSender {
    fn channel(&self) -> &'static str {
        "sms"
    }

    async fn pace(&self, tenant_id: Uuid) -> Result<Pace, SendError> {
        let config = self.config(tenant_id).await?;
        let sender = match config.send_from() {
            twilio::SendFrom::Number(n) => n,
            twilio::SendFrom::MessagingService(sid) => sid,
        };
        Ok(Pace {
            key: format!("twilio:{tenant_id}:{sender}"),
            per_second: config.settings.messages_per_second,
        })
    }

    async fn send(&self, message: &OutboundMessage) -> Result<Receipt, SendError> {
        let config = self.config(message.tenant_id).await?;
        let slug = tenants::slug_of(&self.db, message.tenant_id)
            .await
            .map_err(|e| SendError::transient(format!("loading the tenant: {e}")))?
            .ok_or_else(|| SendError::permanent(None, "the tenant no longer exists"))?;
        let callback = format!("{}/hooks/{slug}/twilio/status", self.public_url);
        let from = config.send_from();
        let client = twilio::Client::new(self.http.clone(), config.account(&self.api_base_url));
        let sent = client
            .send(&message.to, &from, &message.body, Some(&callback))
            .await
            .map_err(send_error)?;
        Ok(Receipt {
            provider_ref: sent.sid,
            sender: match from {
                twilio::SendFrom::Number(n) => Some(n),
                twilio::SendFrom::MessagingService(_) => None,
            },
        })
    }
}
