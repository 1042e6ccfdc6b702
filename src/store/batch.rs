//! Batched ingest writes: many accepted answers in one transaction with a handful of multi-row
//! statements, whatever the batch size.
//!
//! Why by hand: sqlx runs each SQLite statement through a channel to the connection's worker
//! thread, and the per-statement thread hand-off, not SQLite, bounds a single writer. Writing a
//! batch in ~8 statements instead of ~8 per answer is what lets one SQLite writer (and fewer
//! PostgreSQL round trips) keep up. Every statement is plain SQL both databases accept.

use std::collections::{HashMap, HashSet};

use channels::model::{ContactRef, Feedback, Identity};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, Statement, Value};
use uuid::Uuid;

use super::outbox::Event;
use super::placeholders;

/// `INSERT INTO table (cols) VALUES (?, …), (?, …) suffix`.
fn insert_sql(table: &str, columns: &[&str], rows: usize, suffix: &str) -> String {
    let one = format!("({})", vec!["?"; columns.len()].join(", "));
    let all = vec![one.as_str(); rows].join(", ");
    format!(
        "INSERT INTO {table} ({}) VALUES {all} {suffix}",
        columns.join(", ")
    )
}

async fn run<C: ConnectionTrait>(conn: &C, sql: &str, values: Vec<Value>) -> Result<(), DbErr> {
    super::execute(conn, sql, values).await.map(|_| ())
}

async fn query<C: ConnectionTrait>(
    conn: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<sea_orm::QueryResult>, DbErr> {
    let backend = conn.get_database_backend();
    conn.query_all_raw(Statement::from_sql_and_values(
        backend,
        placeholders(backend, sql),
        values,
    ))
    .await
}

/// Tables whose rows a request may name by id, each row belonging to one tenant.
#[derive(Clone, Copy)]
pub enum Owned {
    Contacts,
    Invitations,
}

/// Of the given (tenant, id) pairs, those that exist in `table`: an id another tenant owns
/// is not among them.
pub async fn existing<C: ConnectionTrait>(
    conn: &C,
    table: Owned,
    pairs: &[(Uuid, Uuid)],
) -> Result<HashSet<(Uuid, Uuid)>, DbErr> {
    let table = match table {
        Owned::Contacts => "contacts",
        Owned::Invitations => "invitations",
    };
    if pairs.is_empty() {
        return Ok(HashSet::new());
    }
    let condition = vec!["(tenant_id = ? AND id = ?)"; pairs.len()].join(" OR ");
    let values = pairs
        .iter()
        .flat_map(|(t, c)| [Value::from(*t), Value::from(*c)])
        .collect();
    let rows = query(
        conn,
        &format!("SELECT tenant_id, id FROM {table} WHERE {condition}"),
        values,
    )
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("", "tenant_id")?, r.try_get("", "id")?)))
        .collect()
}

pub struct RawRow<'a> {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub provider: &'a str,
    pub provider_ref: Option<&'a str>,
    pub kind: &'a str,
    pub body_sha256: &'a str,
    /// Digest of the signed content, unique per tenant and provider where given.
    pub signed_sha256: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub payload: &'a str,
}

/// Inserts raw events, skipping those whose (tenant, provider, provider_ref) or (tenant,
/// provider, signed_sha256) is stored already (or appears earlier in the batch). Returns the ids
/// that were inserted.
pub async fn insert_raw_events<C: ConnectionTrait>(
    conn: &C,
    rows: &[RawRow<'_>],
    now: DateTime<Utc>,
) -> Result<HashSet<Uuid>, DbErr> {
    if rows.is_empty() {
        return Ok(HashSet::new());
    }
    let columns = [
        "id",
        "tenant_id",
        "provider",
        "provider_ref",
        "kind",
        "body_sha256",
        "signed_sha256",
        "content_type",
        "payload",
        "outcome",
        "received_at",
    ];
    // Without a conflict target: either unique key makes the row a duplicate.
    let sql = insert_sql(
        "raw_events",
        &columns,
        rows.len(),
        "ON CONFLICT DO NOTHING RETURNING id",
    );
    let mut values = Vec::with_capacity(rows.len() * columns.len());
    for r in rows {
        // PostgreSQL's text type cannot hold U+0000 (a provider's form may carry one); the
        // body's hash keeps the exact bytes.
        let payload = if r.payload.contains('\0') {
            r.payload.replace('\0', "\u{FFFD}")
        } else {
            r.payload.to_owned()
        };
        values.extend([
            Value::from(r.id),
            r.tenant_id.into(),
            r.provider.into(),
            r.provider_ref.map(str::to_owned).into(),
            r.kind.into(),
            r.body_sha256.into(),
            r.signed_sha256.map(str::to_owned).into(),
            r.content_type.map(str::to_owned).into(),
            payload.into(),
            "accepted".into(),
            now.into(),
        ]);
    }
    query(conn, &sql, values)
        .await?
        .iter()
        .map(|r| r.try_get("", "id"))
        .collect()
}

type IdentityKey = (Uuid, &'static str, String);

fn key_of(tenant_id: Uuid, identity: &Identity) -> IdentityKey {
    (tenant_id, identity.kind(), identity.value().to_owned())
}

async fn owners<C: ConnectionTrait>(
    conn: &C,
    keys: &[IdentityKey],
) -> Result<HashMap<IdentityKey, Uuid>, DbErr> {
    let mut found = HashMap::new();
    // Bounded statements: SQLite parses long OR chains slowly and both databases cap parameters.
    for chunk in keys.chunks(200) {
        let condition =
            vec!["(tenant_id = ? AND kind = ? AND value = ?)"; chunk.len()].join(" OR ");
        let values = chunk
            .iter()
            .flat_map(|(t, k, v)| [Value::from(*t), (*k).into(), v.clone().into()])
            .collect();
        let rows = query(
            conn,
            &format!(
                "SELECT tenant_id, kind, value, contact_id FROM contact_identities WHERE {condition}"
            ),
            values,
        )
        .await?;
        for r in rows {
            let tenant: Uuid = r.try_get("", "tenant_id")?;
            let kind: String = r.try_get("", "kind")?;
            let value: String = r.try_get("", "value")?;
            let contact: Uuid = r.try_get("", "contact_id")?;
            if let Some(k) = chunk
                .iter()
                .find(|(t, k, v)| *t == tenant && *k == kind && *v == value)
            {
                found.insert(k.clone(), contact);
            }
        }
    }
    Ok(found)
}

/// Finds or creates the contact of each request (by id, else by any identity), attaching
/// identities a contact does not have yet. Requests in one batch that share an identity get one
/// contact. Concurrent writers (replicas on one PostgreSQL) that create the same identity at
/// once converge on the identity's stored owner; the loser's new contact is removed.
pub async fn resolve_contacts<C: ConnectionTrait>(
    conn: &C,
    requests: &[(Uuid, &ContactRef)],
    now: DateTime<Utc>,
) -> Result<Vec<Option<Uuid>>, DbErr> {
    let mut wanted: Vec<IdentityKey> = Vec::new();
    for (tenant, contact) in requests {
        for identity in &contact.identities {
            let k = key_of(*tenant, identity);
            if !wanted.contains(&k) {
                wanted.push(k);
            }
        }
    }
    let mut owner = owners(conn, &wanted).await?;
    let mut new_contacts: Vec<(Uuid, Uuid, &ContactRef)> = Vec::new();
    let mut new_identities: Vec<(Uuid, IdentityKey, Uuid)> = Vec::new();
    let mut resolved = Vec::with_capacity(requests.len());
    for (tenant, contact) in requests {
        if contact.is_empty() {
            resolved.push(None);
            continue;
        }
        let keys: Vec<IdentityKey> = contact
            .identities
            .iter()
            .map(|i| key_of(*tenant, i))
            .collect();
        let id = contact
            .id
            .or_else(|| keys.iter().find_map(|k| owner.get(k).copied()))
            .unwrap_or_else(|| {
                let id = channels::model::new_id();
                new_contacts.push((id, *tenant, contact));
                id
            });
        for k in keys {
            if let std::collections::hash_map::Entry::Vacant(e) = owner.entry(k.clone()) {
                e.insert(id);
                new_identities.push((channels::model::new_id(), k, id));
            }
        }
        resolved.push(Some(id));
    }

    if !new_contacts.is_empty() {
        let columns = [
            "id",
            "tenant_id",
            "locale",
            "time_zone",
            "opt_outs",
            "created_at",
            "updated_at",
        ];
        let mut values = Vec::new();
        for (id, tenant, c) in &new_contacts {
            values.extend([
                Value::from(*id),
                (*tenant).into(),
                c.locale.clone().into(),
                c.time_zone.clone().into(),
                serde_json::json!([]).into(),
                now.into(),
                now.into(),
            ]);
        }
        run(
            conn,
            &insert_sql("contacts", &columns, new_contacts.len(), ""),
            values,
        )
        .await?;
    }
    if new_identities.is_empty() {
        return Ok(resolved);
    }
    let columns = [
        "id",
        "tenant_id",
        "contact_id",
        "kind",
        "value",
        "status",
        "created_at",
    ];
    let mut inserted: HashSet<Uuid> = HashSet::new();
    for chunk in new_identities.chunks(200) {
        let mut values = Vec::new();
        for (id, (tenant, kind, value), contact) in chunk {
            values.extend([
                Value::from(*id),
                (*tenant).into(),
                (*contact).into(),
                (*kind).into(),
                value.clone().into(),
                "valid".into(),
                now.into(),
            ]);
        }
        let sql = insert_sql(
            "contact_identities",
            &columns,
            chunk.len(),
            "ON CONFLICT (tenant_id, kind, value) DO NOTHING RETURNING id",
        );
        for row in query(conn, &sql, values).await? {
            inserted.insert(row.try_get("", "id")?);
        }
    }
    let lost: Vec<&(Uuid, IdentityKey, Uuid)> = new_identities
        .iter()
        .filter(|(id, _, _)| !inserted.contains(id))
        .collect();
    if lost.is_empty() {
        return Ok(resolved);
    }
    // Another writer committed these identities first: their contact is the contact of record.
    let lost_keys: Vec<IdentityKey> = lost.iter().map(|(_, k, _)| k.clone()).collect();
    let stored = owners(conn, &lost_keys).await?;
    let mut replaced: HashMap<Uuid, Uuid> = HashMap::new();
    for (_, k, ours) in &lost {
        if let Some(theirs) = stored.get(k) {
            if theirs != ours {
                replaced.insert(*ours, *theirs);
            }
        }
    }
    for (ours, theirs) in &replaced {
        let is_new = new_contacts.iter().any(|(id, _, _)| id == ours);
        if is_new {
            run(
                conn,
                "UPDATE contact_identities SET contact_id = ? WHERE contact_id = ?",
                vec![(*theirs).into(), (*ours).into()],
            )
            .await?;
            run(
                conn,
                "DELETE FROM contacts WHERE id = ?",
                vec![(*ours).into()],
            )
            .await?;
        }
    }
    Ok(resolved
        .into_iter()
        .map(|c| c.map(|id| replaced.get(&id).copied().unwrap_or(id)))
        .collect())
}

pub async fn insert_feedback<C: ConnectionTrait>(
    conn: &C,
    rows: &[(&Feedback, Option<Uuid>)],
) -> Result<(), DbErr> {
    let columns = [
        "id",
        "tenant_id",
        "channel",
        "provider",
        "provider_ref",
        "raw_event_id",
        "contact_id",
        "invitation_id",
        "metric",
        "score",
        "scale",
        "comment",
        "language",
        "ticket_ref",
        "agent_ref",
        "team_ref",
        "occurred_at",
        "received_at",
        "updated_at",
        "metadata",
    ];
    for chunk in rows.chunks(500) {
        let mut values = Vec::with_capacity(chunk.len() * columns.len());
        for (f, raw_id) in chunk {
            values.extend([
                Value::from(f.id),
                f.tenant_id.into(),
                f.channel.clone().into(),
                f.provider.clone().into(),
                f.provider_ref.clone().into(),
                (*raw_id).into(),
                f.contact_id.into(),
                f.invitation_id.into(),
                f.metric.as_str().into(),
                f.score.into(),
                f.scale.map(|s| s.as_str().to_owned()).into(),
                f.comment.clone().into(),
                f.language.clone().into(),
                f.ticket_ref.clone().into(),
                f.agent_ref.clone().into(),
                f.team_ref.clone().into(),
                f.occurred_at.into(),
                f.received_at.into(),
                f.received_at.into(),
                f.metadata.clone().into(),
            ]);
        }
        run(
            conn,
            &insert_sql("feedback", &columns, chunk.len(), ""),
            values,
        )
        .await?;
    }
    Ok(())
}

/// Queues each event once per sink.
pub async fn enqueue<C: ConnectionTrait>(
    conn: &C,
    events: &[Event],
    sinks: &[&str],
) -> Result<(), DbErr> {
    let columns = [
        "tenant_id",
        "event_id",
        "event_type",
        "sink",
        "aggregate_id",
        "payload",
        "attempts",
        "next_attempt_at",
        "created_at",
    ];
    let mut rows = Vec::new();
    for event in events {
        let payload = serde_json::to_value(event).map_err(|e| DbErr::Json(e.to_string()))?;
        for sink in sinks {
            rows.push([
                Value::from(event.tenant_id),
                event.id.into(),
                event.event_type.clone().into(),
                (*sink).into(),
                event.aggregate_id.into(),
                payload.clone().into(),
                0i32.into(),
                event.created_at.into(),
                event.created_at.into(),
            ]);
        }
    }
    for chunk in rows.chunks(500) {
        let values = chunk.iter().flat_map(|r| r.iter().cloned()).collect();
        run(
            conn,
            &insert_sql("outbox", &columns, chunk.len(), ""),
            values,
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_sql_repeats_the_row_shape() {
        assert_eq!(
            insert_sql("t", &["a", "b"], 2, "RETURNING a"),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?) RETURNING a"
        );
    }
}
