//! The sender of a channel over the messaging providers that carry it: for each message, the
//! provider the tenant has configured (in the table's order), its pace, and its client. Built
//! from `channels::messaging::PROVIDERS`, so a new provider sends without code here.

use async_trait::async_trait;
use channels::messaging::{self, Credentials, Messaging, Outgoing};
use channels::outbound::Outbound;
use channels::vocabulary::Channel;
use uuid::Uuid;

use super::{OutboundMessage, Pace, Receipt, SendError, Sender};
use crate::config::ProvidersConfig;
use crate::store::{channel_configs, tenants, Db};

pub struct ProviderSender {
    channel: Channel,
    db: Db,
    http: Outbound,
    /// The gateway's public base URL: delivery reports come to
    /// `/hooks/{tenant}/{provider}/{status kind}`.
    public_url: String,
    providers: ProvidersConfig,
}

impl ProviderSender {
    /// One sender per channel that some provider carries.
    pub fn for_every_channel(
        db: &Db,
        http: &Outbound,
        public_url: &str,
        providers: &ProvidersConfig,
    ) -> Vec<ProviderSender> {
        let mut channels: Vec<Channel> = messaging::PROVIDERS.iter().map(|p| p.channel).collect();
        channels.sort_unstable();
        channels.dedup();
        channels
            .into_iter()
            .map(|channel| ProviderSender {
                channel,
                db: db.clone(),
                http: http.clone(),
                public_url: public_url.trim_end_matches('/').to_owned(),
                providers: providers.clone(),
            })
            .collect()
    }

    /// The tenant's provider for this channel and its credentials.
    async fn configured(
        &self,
        tenant_id: Uuid,
    ) -> Result<(&'static Messaging, Credentials), SendError> {
        for provider in messaging::for_channel(self.channel) {
            let stored = channel_configs::credentials(&self.db, tenant_id, provider.name)
                .await
                .map_err(|e| {
                    SendError::transient(format!(
                        "loading the {} configuration: {e}",
                        provider.name
                    ))
                })?;
            if let Some(creds) = stored {
                return Ok((provider, creds));
            }
        }
        // Retried, not failed: the tenant may configure a provider after scheduling surveys.
        Err(SendError::transient(format!(
            "no {} provider is configured for this tenant",
            self.channel
        )))
    }
}

#[async_trait]
impl Sender for ProviderSender {
    fn channel(&self) -> &'static str {
        self.channel.as_str()
    }

    async fn pace(&self, tenant_id: Uuid) -> Result<Pace, SendError> {
        let (provider, creds) = self.configured(tenant_id).await?;
        Ok((provider.pace)(&creds, &tenant_id.to_string()))
    }

    async fn send(&self, message: &OutboundMessage) -> Result<Receipt, SendError> {
        let (provider, creds) = self.configured(message.tenant_id).await?;
        let slug = tenants::slug_of(&self.db, message.tenant_id)
            .await
            .map_err(|e| SendError::transient(format!("loading the tenant: {e}")))?
            .ok_or_else(|| SendError::permanent(None, "the tenant no longer exists"))?;
        let callback = format!(
            "{}/hooks/{slug}/{}/{}",
            self.public_url, provider.name, provider.status_kind
        );
        let outgoing = Outgoing {
            to: &message.to,
            body: &message.body,
            status_callback: Some(&callback),
        };
        let api_base_url = self.providers.api_base_url(provider.name);
        (provider.send)(&self.http, api_base_url, &creds, outgoing).await
    }
}
