//! Contacts as the API shows them, the facts a policy decision needs, opt-outs, and the
//! resolution of a request's addresses to contacts (found or created, many at a time).

use std::collections::{HashMap, HashSet};

use channels::model::{ContactRef, Identity};
use channels::vocabulary::IdentityStatus;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, Set, Statement, Value,
};
use serde::Serialize;
use uuid::Uuid;

use super::batch::{insert_rows, run};
use super::entities::{contact, contact_identity};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IdentityView {
    pub kind: String,
    pub value: String,
    pub status: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ContactView {
    pub id: Uuid,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
    /// Channels the contact opted out of; "all" for every channel.
    pub opt_outs: Vec<String>,
    pub identities: Vec<IdentityView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub async fn get<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Option<ContactView>, DbErr> {
    Ok(get_many(conn, &[(tenant_id, id)]).await?.remove(&id))
}

/// The given (tenant, contact) pairs' contacts with their identities, in two statements; an id
/// another tenant owns is not among them.
pub async fn get_many<C: ConnectionTrait>(
    conn: &C,
    pairs: &[(Uuid, Uuid)],
) -> Result<HashMap<Uuid, ContactView>, DbErr> {
    let mut ids: Vec<Uuid> = pairs.iter().map(|(_, id)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let backend = conn.get_database_backend();
    let [contacts, identities] = get_many_statements(backend, &ids);
    let contacts = contact::Model::find_by_statement(contacts)
        .all(conn)
        .await?;
    let mut identities = contact_identity::Model::find_by_statement(identities)
        .all(conn)
        .await?;
    // The padding branches repeat the last contact's rows; oldest identity first.
    let mut seen = HashSet::new();
    identities.retain(|i| seen.insert(i.id));
    identities.sort_by_key(|i| i.created_at);
    let owned: HashSet<(Uuid, Uuid)> = pairs.iter().copied().collect();
    let mut found: HashMap<Uuid, ContactView> = contacts
        .into_iter()
        .filter(|c| owned.contains(&(c.tenant_id, c.id)))
        .map(|c| {
            let view = ContactView {
                id: c.id,
                locale: c.locale,
                time_zone: c.time_zone,
                opt_outs: serde_json::from_value(c.opt_outs).unwrap_or_default(),
                identities: Vec::new(),
                created_at: c.created_at,
                updated_at: c.updated_at,
            };
            (c.id, view)
        })
        .collect();
    for i in identities {
        if let Some(contact) = found.get_mut(&i.contact_id) {
            contact.identities.push(IdentityView {
                kind: i.kind,
                value: i.value,
                status: i.status,
            });
        }
    }
    Ok(found)
}

/// The statements behind [`get_many`]: the contacts, and their identities; `ids` is not empty.
/// The contacts by primary key; the identities as one `UNION ALL` branch per contact, each an
/// equality on `ix_contact_identities_contact` (an id list there let PostgreSQL on a small,
/// unanalyzed table read the whole table now and then).
pub fn get_many_statements(backend: DbBackend, ids: &[Uuid]) -> [Statement; 2] {
    let statement = |sql: String, values| {
        Statement::from_sql_and_values(backend, super::placeholders(backend, &sql), values)
    };
    let contacts = statement(
        format!(
            "SELECT * FROM contacts WHERE id IN ({})",
            super::padded_list(ids.len())
        ),
        super::padded_values(ids.iter().map(|id| Value::from(*id)).collect()),
    );
    let (identities, values) = super::union_all(
        "SELECT * FROM contact_identities WHERE contact_id = ?",
        ids.iter().map(|id| vec![Value::from(*id)]).collect(),
    );
    [contacts, statement(identities, values)]
}

/// Adds (`opt_out`) or removes a channel from the contact's opt-outs. Opting in to "all"
/// clears every opt-out. Returns false when the tenant has no such contact.
pub async fn set_opt_out<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    id: Uuid,
    channel: &str,
    opt_out: bool,
) -> Result<bool, DbErr> {
    let own = contact::Entity::find_by_id(id).filter(contact::Column::TenantId.eq(tenant_id));
    let Some(c) = super::first(own, conn).await? else {
        return Ok(false);
    };
    let mut opt_outs: Vec<String> = serde_json::from_value(c.opt_outs.clone()).unwrap_or_default();
    if opt_out {
        if !opt_outs.iter().any(|o| o == channel) {
            opt_outs.push(channel.to_owned());
        }
    } else if channel == "all" {
        opt_outs.clear();
    } else {
        opt_outs.retain(|o| o != channel);
    }
    opt_outs.sort();
    let mut active: contact::ActiveModel = c.into();
    active.opt_outs = Set(serde_json::json!(opt_outs));
    active.updated_at = Set(super::now());
    active.update(conn).await?;
    Ok(true)
}

/// Marks an address the provider cannot deliver to, so it is not chosen again.
pub async fn mark_identity_invalid<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    kind: &str,
    value: &str,
) -> Result<(), DbErr> {
    contact_identity::Entity::update_many()
        .col_expr(
            contact_identity::Column::Status,
            sea_orm::sea_query::Expr::value(IdentityStatus::Invalid.as_str()),
        )
        .filter(contact_identity::Column::TenantId.eq(tenant_id))
        .filter(contact_identity::Column::Kind.eq(kind))
        .filter(contact_identity::Column::Value.eq(value))
        .exec(conn)
        .await?;
    Ok(())
}

/// The contact that holds `identity` in the tenant, if any (nothing is created).
pub async fn owner_of<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    identity: &Identity,
) -> Result<Option<Uuid>, DbErr> {
    let key = key_of(tenant_id, identity);
    Ok(owners(conn, std::slice::from_ref(&key)).await?.remove(&key))
}

type IdentityKey = (Uuid, &'static str, String);

/// The statement behind the owners of identities (for a plan test): one branch per identity,
/// each an equality on the unique key (tenant, kind, value). An `OR` of such terms took
/// PostgreSQL 50-100 ms on a table without statistics, for a group of a few dozen replies.
pub fn owners_statement(
    backend: sea_orm::DbBackend,
    keys: &[(Uuid, &'static str, String)],
) -> sea_orm::Statement {
    let (sql, values) = super::union_all(
        "SELECT tenant_id, kind, value, contact_id FROM contact_identities \
         WHERE tenant_id = ? AND kind = ? AND value = ?",
        keys.iter()
            .map(|(t, k, v)| vec![Value::from(*t), (*k).into(), v.clone().into()])
            .collect(),
    );
    sea_orm::Statement::from_sql_and_values(backend, super::placeholders(backend, &sql), values)
}

fn key_of(tenant_id: Uuid, identity: &Identity) -> IdentityKey {
    (tenant_id, identity.kind(), identity.value().to_owned())
}

async fn owners<C: ConnectionTrait>(
    conn: &C,
    keys: &[IdentityKey],
) -> Result<HashMap<IdentityKey, Uuid>, DbErr> {
    let mut found = HashMap::new();
    // Bounded statements (both databases cap parameters), of a power-of-two size that
    // `union_all` does not pad further.
    for chunk in keys.chunks(256) {
        let rows = conn
            .query_all_raw(owners_statement(conn.get_database_backend(), chunk))
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
        insert_rows(conn, "contacts", &columns, values, "").await?;
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
    let mut values = Vec::with_capacity(new_identities.len() * columns.len());
    for (id, (tenant, kind, value), contact) in &new_identities {
        values.extend([
            Value::from(*id),
            (*tenant).into(),
            (*contact).into(),
            (*kind).into(),
            value.clone().into(),
            IdentityStatus::Valid.as_str().into(),
            now.into(),
        ]);
    }
    let suffix = "ON CONFLICT (tenant_id, kind, value) DO NOTHING RETURNING id";
    let inserted: HashSet<Uuid> = insert_rows(conn, "contact_identities", &columns, values, suffix)
        .await?
        .iter()
        .map(|row| row.try_get("", "id"))
        .collect::<Result<_, _>>()?;
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
