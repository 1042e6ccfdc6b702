//! Delivery reports: the provider's news about a sent survey moves its invitation through
//! queued → sending → sent → delivered / undelivered / failed. Reports arrive out of order, so
//! a state only replaces one of lower rank; a failed delivery closes the invitation.

use channels::model::{AddressVerdict, DeliveryState, DeliveryStatus};
use channels::vocabulary::Channel;
use std::sync::Arc;

use sea_orm::{ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::{Ingest, IngestError, OwnedReceived, Received};
use crate::lifecycle;
use crate::store::batch::Route;
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
        let request = Arc::new((tenant.id, status.clone(), OwnedReceived::from(&received)));
        let routes = self.sinks.clone();
        Ok(self
            .group
            .run(move |txn| {
                let (request, routes) = (request.clone(), routes.clone());
                Box::pin(async move {
                    let (tenant_id, status, received) = &*request;
                    apply_report(txn, &routes, *tenant_id, status, &received.borrow()).await
                })
            })
            .await?)
    }
}

/// One report's work in its group's transaction.
async fn apply_report(
    txn: &DatabaseTransaction,
    routes: &[Route],
    tenant_id: Uuid,
    status: &DeliveryStatus,
    received: &Received<'_>,
) -> Result<Option<DeliveryState>, DbErr> {
    let now = store::now();
    // One raw event per (message, state): a redelivered report is stored once.
    let reference = format!("{}:{}", status.provider_ref, status.state.as_str());
    if super::insert_raw(
        txn,
        tenant_id,
        &status.provider,
        Some(&reference),
        None,
        received,
        now,
    )
    .await?
    .is_none()
    {
        return Ok(None);
    }
    let sent = invitation::Entity::find()
        .filter(invitation::Column::TenantId.eq(tenant_id))
        .filter(invitation::Column::ProviderRef.eq(status.provider_ref.as_str()));
    let Some(inv) = store::first(sent, txn).await? else {
        return Ok(None);
    };
    let current = inv
        .delivery_status
        .as_deref()
        .and_then(DeliveryState::parse);
    if current.is_some_and(|c| c.rank() >= status.state.rank()) {
        return Ok(current);
    }
    let error = format!(
        "{} {}",
        status.state.as_str(),
        status.error_code.as_deref().unwrap_or("")
    );
    lifecycle::record_delivery(txn, routes, &inv, status.state, Some(error.trim_end())).await?;
    // The provider's codes say what the failure means for the address.
    if let (Some(verdict), Some(address), Some(channel)) = (
        status.verdict,
        inv.address.as_deref(),
        inv.channel.as_deref(),
    ) {
        match verdict {
            AddressVerdict::OptedOut => {
                crate::policy::opt_out::apply(
                    txn,
                    routes,
                    tenant_id,
                    inv.contact_id,
                    channel,
                    true,
                )
                .await?;
            }
            AddressVerdict::Invalid => {
                let kind = Channel::parse(channel)
                    .and_then(Channel::address_kind)
                    .unwrap_or_default();
                contacts::mark_identity_invalid(txn, tenant_id, kind, address).await?;
            }
        }
    }
    Ok(Some(status.state))
}
