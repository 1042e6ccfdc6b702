//! Opt-out and opt-in, for the API and for channel adapters (SMS STOP, e-mail unsubscribe).
//! Opting out is absolute and immediate: invitations already scheduled on that channel are
//! cancelled in the same transaction, and the dispatcher checks again at send time. The change
//! is queued as `contact.opted_out` / `contact.opted_in` in the same transaction.

use sea_orm::{ConnectionTrait, DbErr, TransactionTrait};
use uuid::Uuid;

use crate::events::{Event, CONTACT_OPTED_IN, CONTACT_OPTED_OUT};
use crate::lifecycle;
use crate::store::batch::{self, Route};
use crate::store::{self, contacts, Db};

/// Returns false when the tenant has no such contact.
pub async fn set(
    db: &Db,
    tenant_id: Uuid,
    contact_id: Uuid,
    channel: &str,
    opt_out: bool,
) -> Result<bool, DbErr> {
    let txn = db.write.begin().await?;
    if !apply(&txn, db.routes(), tenant_id, contact_id, channel, opt_out).await? {
        return Ok(false);
    }
    txn.commit().await?;
    Ok(true)
}

/// As [`set`], inside the caller's transaction (an SMS STOP is stored with its raw event).
pub async fn apply<C: ConnectionTrait>(
    conn: &C,
    routes: &[Route],
    tenant_id: Uuid,
    contact_id: Uuid,
    channel: &str,
    opt_out: bool,
) -> Result<bool, DbErr> {
    if !contacts::set_opt_out(conn, tenant_id, contact_id, channel, opt_out).await? {
        return Ok(false);
    }
    if opt_out {
        lifecycle::cancel_on_opt_out(conn, tenant_id, contact_id, channel).await?;
    }
    let event_type = if opt_out {
        CONTACT_OPTED_OUT
    } else {
        CONTACT_OPTED_IN
    };
    if batch::any_takes(routes, event_type) {
        let event = Event {
            id: channels::model::new_id(),
            event_type: event_type.to_owned(),
            tenant_id,
            aggregate_id: contact_id,
            created_at: store::now(),
            data: serde_json::json!({"contact_id": contact_id, "channel": channel}),
        };
        batch::enqueue(conn, &[event], routes).await?;
    }
    tracing::info!(contact = %contact_id, channel, opt_out, "contact opt-out changed");
    Ok(true)
}
