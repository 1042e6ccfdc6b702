//! Delivery reports: the provider's news about a sent survey moves its invitation through
//! queued → sending → sent → delivered / undelivered / failed. Reports arrive out of order, so
//! a state only replaces one of lower rank; a failed delivery closes the invitation.

use channels::model::{AddressVerdict, DeliveryState, DeliveryStatus};
use channels::vocabulary::Channel;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};

use super::{Ingest, IngestError, Received};
use crate::lifecycle;
use crate::store::entities::invitation;
use crate::store::tenants::Tenant;
use crate::store::{self, contacts};

impl Ingest {
    /// Applies a delivery report. Returns the invitation's delivery state afterwards, or `None`
    /// when no invitation has that message (sent by something else) or the report was seen.
    pub async fn delivery_status(
        &self,
        tenant: &Tenant,
        status: &DeliveryStatus,
        received: Received<'_>,
    ) -> Result<Option<DeliveryState>, IngestError> {
        let now = store::now();
        let txn = self.db.write.begin().await?;
        // One raw event per (message, state): a redelivered report is stored once.
        let reference = format!("{}:{}", status.provider_ref, status.state.as_str());
        if super::insert_raw(
            &txn,
            tenant.id,
            &status.provider,
            Some(&reference),
            None,
            &received,
            now,
        )
        .await?
        .is_none()
        {
            txn.rollback().await?;
            return Ok(None);
        }
        let sent = invitation::Entity::find()
            .filter(invitation::Column::TenantId.eq(tenant.id))
            .filter(invitation::Column::ProviderRef.eq(status.provider_ref.as_str()));
        let Some(inv) = store::first(sent, &txn).await? else {
            txn.commit().await?;
            return Ok(None);
        };
        let current = inv
            .delivery_status
            .as_deref()
            .and_then(DeliveryState::parse);
        if current.is_some_and(|c| c.rank() >= status.state.rank()) {
            txn.commit().await?;
            return Ok(current);
        }
        let error = format!(
            "{} {}",
            status.state.as_str(),
            status.error_code.as_deref().unwrap_or("")
        );
        lifecycle::record_delivery(&txn, inv.id, status.state, Some(error.trim_end())).await?;
        // The provider's codes say what the failure means for the address.
        if let (Some(verdict), Some(address), Some(channel)) = (
            status.verdict,
            inv.address.as_deref(),
            inv.channel.as_deref(),
        ) {
            match verdict {
                AddressVerdict::OptedOut => {
                    crate::policy::opt_out::apply(&txn, tenant.id, inv.contact_id, channel, true)
                        .await?;
                }
                AddressVerdict::Invalid => {
                    let kind = Channel::parse(channel)
                        .and_then(Channel::address_kind)
                        .unwrap_or_default();
                    contacts::mark_identity_invalid(&txn, tenant.id, kind, address).await?;
                }
            }
        }
        txn.commit().await?;
        Ok(Some(status.state))
    }
}
