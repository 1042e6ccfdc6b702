//! Opt-out and opt-in, for the API and for channel adapters (SMS STOP, e-mail unsubscribe).
//! Opting out is absolute and immediate: invitations already scheduled on that channel are
//! cancelled in the same transaction, and the dispatcher checks again at send time.

use sea_orm::{ConnectionTrait, DbErr, TransactionTrait};
use uuid::Uuid;

use crate::lifecycle;
use crate::store::{contacts, Db};

/// Returns false when the tenant has no such contact.
pub async fn set(
    db: &Db,
    tenant_id: Uuid,
    contact_id: Uuid,
    channel: &str,
    opt_out: bool,
) -> Result<bool, DbErr> {
    let txn = db.write.begin().await?;
    if !apply(&txn, tenant_id, contact_id, channel, opt_out).await? {
        return Ok(false);
    }
    txn.commit().await?;
    Ok(true)
}

/// As [`set`], inside the caller's transaction (an SMS STOP is stored with its raw event).
pub async fn apply<C: ConnectionTrait>(
    conn: &C,
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
    tracing::info!(contact = %contact_id, channel, opt_out, "contact opt-out changed");
    Ok(true)
}
