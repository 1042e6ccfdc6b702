//! Opt-out and opt-in, for the API and for channel adapters (SMS STOP, e-mail unsubscribe).
//! Opting out is absolute and immediate: invitations already scheduled on that channel are
//! cancelled in the same transaction, and the dispatcher checks again at send time.

use sea_orm::{ConnectionTrait, DbErr, Statement, TransactionTrait};
use uuid::Uuid;

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
        let sql = "UPDATE invitations SET status = 'cancelled', reason = 'opt_out', \
                   detail = ?, updated_at = ? \
                   WHERE tenant_id = ? AND contact_id = ? AND status = 'scheduled' \
                   AND (channel = ? OR ? = 'all')";
        let backend = conn.get_database_backend();
        conn.execute_raw(Statement::from_sql_and_values(
            backend,
            store::placeholders(backend, sql),
            [
                format!("the contact opted out of {channel}").into(),
                store::now().into(),
                tenant_id.into(),
                contact_id.into(),
                channel.into(),
                channel.into(),
            ],
        ))
        .await?;
    }
    tracing::info!(contact = %contact_id, channel, opt_out, "contact opt-out changed");
    Ok(true)
}
