//! Replies by e-mail: a customer answers the survey e-mail with "4 - hurtig hjælp". The reply
//! is read like an SMS reply (`replies`), with the quoted original and the signature cut off,
//! against the invitation it names: the reply address's token first, then the survey e-mail it
//! answers (In-Reply-To, References), else the sender's newest open e-mail invitation.
//! An automatic reply (out of office) is kept as a raw event and never read; a mail to the
//! unsubscribe address (`List-Unsubscribe`'s mailto) opts the contact out of e-mail.

use channels::email::events::AddressEvent;
use channels::email::inbound::InboundMail;
use channels::email::links::{self, Purpose};
use channels::model::{Email, Identity, ReplyText};
use channels::vocabulary::{Channel, RawOutcome};
use sea_orm::TransactionTrait;
use uuid::Uuid;

use super::links::PROVIDER;
use super::replies::{Replied, ReplySettings};
use super::{sha256_hex, Ingest, IngestError, Received};
use crate::store::entities::invitation;
use crate::store::tenants::Tenant;
use crate::store::{self, contacts, invitations, raw_events, tenants};

/// What became of an inbound e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailReceived {
    /// Read as a reply (or found stored before: `Replied::outcome` is `Duplicate`).
    Replied(Replied),
    /// Sent by a program: kept, not read.
    Automatic,
    /// Sent to the unsubscribe address: the contact is opted out of e-mail.
    Unsubscribed,
}

/// What the reply address or the threading headers name.
enum Named {
    Invitation(invitation::Model),
    Unsubscribe(invitation::Model),
}

/// Message-IDs looked up at most, of a long References chain.
const MAX_THREAD_IDS: usize = 20;

impl Ingest {
    pub async fn receive_mail(
        &self,
        tenant: &Tenant,
        mail: &InboundMail,
        received: Received<'_>,
        settings: ReplySettings,
    ) -> Result<MailReceived, IngestError> {
        // A redelivery carries the same Message-ID; a message without one is known by its bytes.
        let provider_ref = mail
            .message_id
            .clone()
            .unwrap_or_else(|| sha256_hex(received.body));
        let named = self.named(tenant, mail).await?;
        if mail.automatic {
            self.keep(
                tenant,
                &provider_ref,
                &received,
                RawOutcome::Automatic,
                None,
            )
            .await?;
            return Ok(MailReceived::Automatic);
        }
        let invitation = match named {
            Some(Named::Unsubscribe(invitation)) => {
                let contact = Some(invitation.contact_id);
                self.keep(
                    tenant,
                    &provider_ref,
                    &received,
                    RawOutcome::Accepted,
                    contact,
                )
                .await?;
                return Ok(MailReceived::Unsubscribed);
            }
            Some(Named::Invitation(invitation)) => Some(invitation),
            None => None,
        };
        // Read as from the address the invitation went to: a customer may answer from another
        // address of theirs, and the invitation's contact is who answers.
        let from = invitation
            .as_ref()
            .and_then(|i| i.address.as_deref())
            .and_then(|a| Email::parse(a).ok())
            .unwrap_or_else(|| mail.from.clone());
        let mut message = ReplyText {
            channel: Channel::Email.as_str().to_owned(),
            provider: PROVIDER.to_owned(),
            provider_ref,
            from: Identity::Email(from),
            to: mail.recipients.first().cloned().unwrap_or_default(),
            text: mail.new_text(),
            attachments: 0,
            keyword: None,
            invitation: invitation.map(|i| i.id),
        };
        // A NUL in a mail's text is refused by PostgreSQL, and would fail the whole group.
        message.sanitize();
        let replied = self
            .receive_message(tenant, &message, received, settings)
            .await?;
        Ok(MailReceived::Replied(replied))
    }

    /// Applies a provider's bounces and complaints with their raw event: a permanent bounce
    /// makes the address invalid (the dispatcher no longer sends to it), a complaint opts its
    /// contact out of e-mail (and cancels the contact's scheduled e-mail invitations).
    pub async fn address_events(
        &self,
        tenant: &Tenant,
        events: &[AddressEvent],
        received: Received<'_>,
    ) -> Result<(), IngestError> {
        let now = store::now();
        let email = Channel::Email.as_str();
        let txn = self.db.write.begin().await?;
        super::insert_raw(&txn, tenant.id, PROVIDER, None, None, &received, now).await?;
        for event in events {
            match event {
                AddressEvent::Bounced(address) => {
                    contacts::mark_identity_invalid(&txn, tenant.id, email, address.as_str())
                        .await?;
                }
                AddressEvent::Complained(address) => {
                    let identity = Identity::Email(address.clone());
                    if let Some(contact) = contacts::owner_of(&txn, tenant.id, &identity).await? {
                        let routes = self.db.routes();
                        crate::policy::opt_out::apply(
                            &txn, routes, tenant.id, contact, email, true,
                        )
                        .await?;
                    }
                }
            }
        }
        txn.commit().await?;
        Ok(())
    }

    /// Stores the mail's raw event with `outcome`, and opts `opt_out` out of e-mail in the same
    /// transaction (once: a redelivery changes nothing).
    async fn keep(
        &self,
        tenant: &Tenant,
        provider_ref: &str,
        received: &Received<'_>,
        outcome: RawOutcome,
        opt_out: Option<Uuid>,
    ) -> Result<(), IngestError> {
        let now = store::now();
        let txn = self.db.write.begin().await?;
        let stored = super::insert_raw(
            &txn,
            tenant.id,
            PROVIDER,
            Some(provider_ref),
            None,
            received,
            now,
        )
        .await?;
        if let Some(raw_id) = stored {
            if outcome != RawOutcome::Accepted {
                raw_events::set_outcome(&txn, raw_id, outcome).await?;
            }
            if let Some(contact) = opt_out {
                let email = Channel::Email.as_str();
                let routes = self.db.routes();
                crate::policy::opt_out::apply(&txn, routes, tenant.id, contact, email, true)
                    .await?;
            }
        }
        txn.commit().await?;
        Ok(())
    }

    /// The invitation a mail names: a verified token in a `reply+{token}@` recipient, else the
    /// survey e-mail it answers.
    async fn named(
        &self,
        tenant: &Tenant,
        mail: &InboundMail,
    ) -> Result<Option<Named>, IngestError> {
        for recipient in &mail.recipients {
            let Some(token) = plus_token(recipient) else {
                continue;
            };
            let Ok(read) = links::read(token) else {
                continue;
            };
            let Some(key) = tenants::link_key(&self.db, tenant.id).await? else {
                return Ok(None);
            };
            if matches!(read.purpose, Purpose::Rating | Purpose::Acknowledge)
                || read.verify(&key, None).is_err()
            {
                continue;
            }
            let Some(invitation) =
                invitations::by_id(&self.db.read, tenant.id, read.invitation).await?
            else {
                continue;
            };
            return Ok(Some(match read.purpose {
                Purpose::Unsubscribe => Named::Unsubscribe(invitation),
                _ => Named::Invitation(invitation),
            }));
        }
        let ids: Vec<String> = mail.answers.iter().take(MAX_THREAD_IDS).cloned().collect();
        if ids.is_empty() {
            return Ok(None);
        }
        let found = invitations::by_provider_refs(&self.db.read, tenant.id, &ids).await?;
        // In-Reply-To first, then the References chain from its newest end.
        Ok(ids
            .iter()
            .find_map(|id| found.iter().find(|i| i.provider_ref.as_deref() == Some(id)))
            .filter(|i| i.channel.as_deref() == Some(Channel::Email.as_str()))
            .cloned()
            .map(Named::Invitation))
    }
}

/// The `{token}` of a `reply+{token}@domain` address.
fn plus_token(address: &str) -> Option<&str> {
    let local = address.split('@').next()?;
    let (name, token) = local.split_once('+')?;
    (name.eq_ignore_ascii_case("reply") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::plus_token;

    #[test]
    fn the_token_is_the_plus_part_of_a_reply_address() {
        assert_eq!(
            plus_token("reply+abc123@reply.acme.example"),
            Some("abc123")
        );
        assert_eq!(
            plus_token("Reply+abc123@reply.acme.example"),
            Some("abc123")
        );
        assert_eq!(plus_token("support+abc123@acme.example"), None);
        assert_eq!(plus_token("reply@reply.acme.example"), None);
        assert_eq!(plus_token("reply+@reply.acme.example"), None);
    }
}
