//! Tenants' HTTP endpoints for forwarded events, and the record of each delivery attempt.
//! The signing secret is kept (deliveries are signed with it) and never shown after creation.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};
use uuid::Uuid;

use super::{now, placeholders, Db};

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub url: String,
    /// Empty: every type.
    pub event_types: Vec<String>,
    pub include_personal_data: bool,
    pub secret: String,
    /// The secret before the last rotation, which still signs until `previous_secret_until`.
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Endpoint {
    pub fn takes(&self, event_type: &str) -> bool {
        self.disabled_at.is_none()
            && (self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type))
    }

    /// The secrets that sign a delivery made at `at`: the current one, and the previous one
    /// while it is still valid.
    pub fn signing_secrets(&self, at: DateTime<Utc>) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let (Some(previous), Some(until)) = (&self.previous_secret, self.previous_secret_until) {
            if at < until {
                secrets.push(previous);
            }
        }
        secrets
    }

    fn from_row(r: &QueryResult) -> Result<Endpoint, DbErr> {
        let types: serde_json::Value = r.try_get("", "event_types")?;
        Ok(Endpoint {
            id: r.try_get("", "id")?,
            tenant_id: r.try_get("", "tenant_id")?,
            name: r.try_get("", "name")?,
            url: r.try_get("", "url")?,
            event_types: serde_json::from_value(types).unwrap_or_default(),
            include_personal_data: r.try_get("", "include_personal_data")?,
            secret: r.try_get("", "secret")?,
            previous_secret: r.try_get("", "previous_secret")?,
            previous_secret_until: r.try_get("", "previous_secret_until")?,
            disabled_at: r.try_get("", "disabled_at")?,
            disabled_reason: r.try_get("", "disabled_reason")?,
            created_at: r.try_get("", "created_at")?,
            updated_at: r.try_get("", "updated_at")?,
        })
    }
}

/// The tenants that have an endpoint: the fan-out is queued only for their events, so a tenant
/// without endpoints pays no write for them. Changed at once by the process that puts an
/// endpoint, and reloaded every `database.cache_ttl_ms` for the others (a replica may queue
/// nothing for an endpoint created elsewhere within that time).
#[derive(Default)]
pub struct TenantGate {
    tenants: std::sync::RwLock<std::collections::HashSet<Uuid>>,
}

impl TenantGate {
    pub fn admits(&self, tenant_id: Uuid) -> bool {
        self.tenants
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&tenant_id)
    }

    pub fn add(&self, tenant_id: Uuid) {
        self.tenants
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(tenant_id);
    }

    pub async fn reload(&self, db: &Db) -> Result<(), DbErr> {
        let rows = db
            .read
            .query_all_raw(db.statement(
                "SELECT DISTINCT tenant_id FROM webhook_endpoints WHERE disabled_at IS NULL",
                vec![],
            ))
            .await?;
        let tenants = rows
            .iter()
            .map(|r| r.try_get::<Uuid>("", "tenant_id"))
            .collect::<Result<_, _>>()?;
        *self.tenants.write().unwrap_or_else(|e| e.into_inner()) = tenants;
        Ok(())
    }
}

const COLUMNS: &str = "id, tenant_id, name, url, event_types, include_personal_data, secret, \
                       previous_secret, previous_secret_until, disabled_at, disabled_reason, \
                       created_at, updated_at";

async fn select<C: ConnectionTrait>(
    conn: &C,
    condition: &str,
    values: Vec<Value>,
) -> Result<Vec<Endpoint>, DbErr> {
    let sql = format!("SELECT {COLUMNS} FROM webhook_endpoints WHERE {condition} ORDER BY name");
    let backend = conn.get_database_backend();
    let rows = conn
        .query_all_raw(sea_orm::Statement::from_sql_and_values(
            backend,
            placeholders(backend, &sql),
            values,
        ))
        .await?;
    rows.iter().map(Endpoint::from_row).collect()
}

pub async fn get(db: &Db, tenant_id: Uuid, name: &str) -> Result<Option<Endpoint>, DbErr> {
    Ok(select(
        &db.write,
        "tenant_id = ? AND name = ?",
        vec![tenant_id.into(), name.into()],
    )
    .await?
    .pop())
}

pub async fn list(db: &Db, tenant_id: Uuid) -> Result<Vec<Endpoint>, DbErr> {
    select(&db.read, "tenant_id = ?", vec![tenant_id.into()]).await
}

/// The endpoints of the tenants named (a group of events' fan-out), through
/// `ux_webhook_endpoints_tenant_name`.
pub async fn of_tenants<C: ConnectionTrait>(
    conn: &C,
    tenants: &[Uuid],
) -> Result<Vec<Endpoint>, DbErr> {
    if tenants.is_empty() {
        return Ok(Vec::new());
    }
    let list = vec!["?"; tenants.len()].join(", ");
    select(
        conn,
        &format!("tenant_id IN ({list})"),
        tenants.iter().map(|&t| t.into()).collect(),
    )
    .await
}

pub async fn by_id<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<Option<Endpoint>, DbErr> {
    Ok(select(conn, "id = ?", vec![id.into()]).await?.pop())
}

/// What `PUT /v1/sinks/{name}` sets.
pub struct EndpointInput<'a> {
    pub url: &'a str,
    pub event_types: &'a [String],
    pub include_personal_data: bool,
}

/// Creates the endpoint with `new_secret`, or changes an existing one (its secret kept; a
/// disabled endpoint is enabled again). Returns it, and whether it was created.
pub async fn put(
    db: &Db,
    tenant_id: Uuid,
    name: &str,
    input: &EndpointInput<'_>,
    new_secret: &str,
) -> Result<(Endpoint, bool), DbErr> {
    let at = now();
    let types = serde_json::to_value(input.event_types).expect("strings serialize");
    let changed = db
        .write
        .execute_raw(db.statement(
            "UPDATE webhook_endpoints SET url = ?, event_types = ?, include_personal_data = ?, \
             disabled_at = NULL, disabled_reason = NULL, updated_at = ? \
             WHERE tenant_id = ? AND name = ?",
            vec![
                input.url.into(),
                types.clone().into(),
                input.include_personal_data.into(),
                at.into(),
                tenant_id.into(),
                name.into(),
            ],
        ))
        .await?
        .rows_affected();
    let created = changed == 0;
    if created {
        db.write
            .execute_raw(db.statement(
                &format!(
                    "INSERT INTO webhook_endpoints ({COLUMNS}) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL, ?, ?)"
                ),
                vec![
                    channels::model::new_id().into(),
                    tenant_id.into(),
                    name.into(),
                    input.url.into(),
                    types.into(),
                    input.include_personal_data.into(),
                    new_secret.into(),
                    at.into(),
                    at.into(),
                ],
            ))
            .await?;
    }
    let endpoint = get(db, tenant_id, name)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("the endpoint just written".into()))?;
    Ok((endpoint, created))
}

pub async fn delete(db: &Db, tenant_id: Uuid, name: &str) -> Result<bool, DbErr> {
    Ok(db
        .write
        .execute_raw(db.statement(
            "DELETE FROM webhook_endpoints WHERE tenant_id = ? AND name = ?",
            vec![tenant_id.into(), name.into()],
        ))
        .await?
        .rows_affected()
        == 1)
}

/// A new secret; the old one keeps signing beside it until `until`.
pub async fn rotate(
    db: &Db,
    tenant_id: Uuid,
    name: &str,
    new_secret: &str,
    until: DateTime<Utc>,
) -> Result<bool, DbErr> {
    Ok(db
        .write
        .execute_raw(db.statement(
            "UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_until = ?, \
             secret = ?, updated_at = ? WHERE tenant_id = ? AND name = ?",
            vec![
                until.into(),
                new_secret.into(),
                now().into(),
                tenant_id.into(),
                name.into(),
            ],
        ))
        .await?
        .rows_affected()
        == 1)
}

/// Stops deliveries to the endpoint (it answered 410 Gone) until it is put again.
pub async fn disable(db: &Db, id: Uuid, reason: &str) -> Result<(), DbErr> {
    db.write
        .execute_raw(db.statement(
            "UPDATE webhook_endpoints SET disabled_at = ?, disabled_reason = ? WHERE id = ?",
            vec![now().into(), reason.into(), id.into()],
        ))
        .await?;
    Ok(())
}

/// One delivery attempt, as `GET /v1/sinks/{name}/attempts` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Attempt {
    pub event_id: Uuid,
    pub event_type: String,
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub duration_ms: i32,
    pub outcome: String,
    pub response_excerpt: Option<String>,
}

pub async fn record_attempt(db: &Db, endpoint_id: Uuid, attempt: &Attempt) -> Result<(), DbErr> {
    db.write
        .execute_raw(db.statement(
            "INSERT INTO webhook_attempts (endpoint_id, event_id, event_type, attempted_at, \
             status_code, duration_ms, outcome, response_excerpt) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                endpoint_id.into(),
                attempt.event_id.into(),
                attempt.event_type.clone().into(),
                attempt.attempted_at.into(),
                attempt.status_code.into(),
                attempt.duration_ms.into(),
                attempt.outcome.clone().into(),
                attempt.response_excerpt.clone().into(),
            ],
        ))
        .await?;
    Ok(())
}

/// The newest attempts first, through `ix_webhook_attempts_endpoint`.
pub async fn attempts(db: &Db, endpoint_id: Uuid, limit: u64) -> Result<Vec<Attempt>, DbErr> {
    let rows = db
        .read
        .query_all_raw(db.statement(
            &format!(
                "SELECT event_id, event_type, attempted_at, status_code, duration_ms, outcome, \
                 response_excerpt FROM webhook_attempts WHERE endpoint_id = ? \
                 ORDER BY id DESC LIMIT {limit}"
            ),
            vec![endpoint_id.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Attempt {
                event_id: r.try_get("", "event_id")?,
                event_type: r.try_get("", "event_type")?,
                attempted_at: r.try_get("", "attempted_at")?,
                status_code: r.try_get("", "status_code")?,
                duration_ms: r.try_get("", "duration_ms")?,
                outcome: r.try_get("", "outcome")?,
                response_excerpt: r.try_get("", "response_excerpt")?,
            })
        })
        .collect()
}
