//! Storage: connections, migrations, and the queries of each stage.
//!
//! SQLite allows one writer at a time, so on SQLite the gateway keeps a single-connection write
//! pool (writers queue in the pool instead of failing with SQLITE_BUSY) beside a read pool; on
//! PostgreSQL both are the same pool.

pub mod alerts;
pub mod batch;
pub mod cache;
pub mod channel_configs;
pub mod contacts;
pub mod endpoints;
pub mod entities;
pub mod feedback;
pub mod group;
pub mod invitations;
pub mod outbox;
pub mod raw_events;
pub mod scores;
pub mod sites;
pub mod surveys;
pub mod tenants;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use migrations::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, RuntimeErr,
    Statement, Value,
};

use crate::config::DatabaseConfig;

/// Advisory lock key for migrations ("fgmi" in ASCII).
const MIGRATION_LOCK: i64 = 0x6667_6d69;

#[derive(Clone, Debug)]
pub struct Db {
    /// Used for every transaction that writes.
    pub write: DatabaseConnection,
    /// Used for reads that need no transaction (lists, scores, health).
    pub read: DatabaseConnection,
    /// Tenants by slug, provider configurations, survey lists (see [`cache`]).
    pub caches: Arc<cache::Caches>,
    /// Where events are queued (the relay's sinks), set once when the gateway is wired: the
    /// writes that emit events (the lifecycle, opt-outs) queue them in their own transaction.
    routes: Arc<std::sync::OnceLock<Arc<[batch::Route]>>>,
}

impl Db {
    pub async fn connect(url: &str, cfg: &DatabaseConfig) -> Result<Db, DbErr> {
        if url.starts_with("sqlite:") {
            create_sqlite_parent_dir(url)?;
            let write = connect_sqlite(url, cfg, 1, true).await?;
            let read = connect_sqlite(url, cfg, cfg.max_connections.max(2), false).await?;
            Ok(Db {
                write,
                read,
                caches: caches(cfg),
                routes: Default::default(),
            })
        } else {
            let mut opts = ConnectOptions::new(url);
            opts.max_connections(cfg.max_connections)
                .min_connections(0)
                .acquire_timeout(Duration::from_millis(cfg.acquire_timeout_ms))
                .connect_timeout(Duration::from_millis(cfg.acquire_timeout_ms))
                // A ping on every checkout is a round trip per transaction; only a connection
                // idle long enough for a proxy or a restart to have dropped it is tested.
                .test_before_acquire_if_idle_for(Duration::from_secs(30))
                .sqlx_logging(false);
            let pool = Database::connect(opts).await?;
            Ok(Db {
                write: pool.clone(),
                read: pool,
                caches: caches(cfg),
                routes: Default::default(),
            })
        }
    }

    /// Sets where events are queued; the first call wins.
    pub fn set_routes(&self, routes: Arc<[batch::Route]>) {
        let _ = self.routes.set(routes);
    }

    /// Where events are queued; none before [`Db::set_routes`].
    pub fn routes(&self) -> &[batch::Route] {
        self.routes.get().map_or(&[], |r| r)
    }

    pub fn backend(&self) -> DbBackend {
        self.write.get_database_backend()
    }

    /// Applies pending migrations. On PostgreSQL replicas that start together take turns: the
    /// first holds an advisory lock while it migrates, the others then find nothing to do. The
    /// migrations run in the lock's own transaction (PostgreSQL's DDL is transactional): one
    /// connection at start instead of two, each a TLS handshake away (about 90 ms here).
    pub async fn migrate(&self) -> Result<(), DbErr> {
        if self.backend() != DbBackend::Postgres {
            return Migrator::up(&self.write, None).await;
        }
        use sea_orm::TransactionTrait;
        let guard = self.write.begin().await?;
        guard
            .execute_raw(Statement::from_string(
                DbBackend::Postgres,
                format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"),
            ))
            .await?;
        Migrator::up(&guard, None).await?;
        guard.commit().await
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), DbErr> {
        self.read
            .execute_raw(Statement::from_string(self.backend(), "SELECT 1"))
            .await
            .map(|_| ())
    }

    /// SQLite: copies the write-ahead log into the database file on a reader's connection,
    /// without waiting for the writer or blocking it (a passive checkpoint). The server runs it
    /// every second; the writer itself never does (see `connect_sqlite`). PostgreSQL: nothing.
    pub async fn checkpoint(&self) -> Result<(), DbErr> {
        if self.backend() != DbBackend::Sqlite {
            return Ok(());
        }
        self.read
            .execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)")
            .await
            .map(|_| ())
    }

    /// A statement written with `?` placeholders, numbered for PostgreSQL.
    pub fn statement(&self, sql: &str, values: Vec<Value>) -> Statement {
        Statement::from_sql_and_values(self.backend(), placeholders(self.backend(), sql), values)
    }

    pub async fn close(self) {
        let _ = self.write.close().await;
        let _ = self.read.close().await;
    }
}

fn caches(cfg: &DatabaseConfig) -> Arc<cache::Caches> {
    Arc::new(cache::Caches::new(Duration::from_millis(cfg.cache_ttl_ms)))
}

async fn connect_sqlite(
    url: &str,
    cfg: &DatabaseConfig,
    max_connections: u32,
    writer: bool,
) -> Result<DatabaseConnection, DbErr> {
    let mut opts = ConnectOptions::new(url);
    let synchronous = if cfg.sqlite_synchronous_full {
        SqliteSynchronous::Full
    } else {
        // In WAL mode NORMAL loses nothing when the process dies (kill -9): a commit is in
        // the WAL file before it is acknowledged; only an operating-system crash or power
        // loss can roll back the newest commits. `sqlite_synchronous_full` closes that gap.
        SqliteSynchronous::Normal
    };
    let busy = Duration::from_millis(cfg.acquire_timeout_ms);
    opts.max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_millis(cfg.acquire_timeout_ms))
        // A file this process opened cannot be dropped by a server: pinging it on every
        // checkout was one more hand-off to the connection's thread per transaction.
        .test_before_acquire(false)
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(move |o: SqliteConnectOptions| {
            let o = o
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(synchronous)
                .foreign_keys(true)
                .busy_timeout(busy)
                .create_if_missing(true);
            if writer {
                // The writer never checkpoints: a checkpoint's copying and fsync would hold the
                // one write connection (a commit every thousand pages took tens of ms longer).
                // [`Db::checkpoint`] runs it from a reader instead, beside the writer.
                o.pragma("wal_autocheckpoint", "0")
            } else {
                o
            }
        });
    Database::connect(opts).await
}

fn create_sqlite_parent_dir(url: &str) -> Result<(), DbErr> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(parent) = std::path::Path::new(path).parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent).map_err(|e| {
                DbErr::Custom(format!("cannot create directory {}: {e}", parent.display()))
            })?;
        }
    }
    // Parse once here so a malformed URL fails with sqlx's message, not later in the pool.
    SqliteConnectOptions::from_str(url).map_err(|e| DbErr::Custom(e.to_string()))?;
    Ok(())
}

/// The current time at the precision both databases keep (PostgreSQL stores microseconds), so
/// a record answered from memory equals the same record read back.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    to_db_precision(chrono::Utc::now())
}

pub fn to_db_precision(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    chrono::SubsecRound::trunc_subsecs(t, 6)
}

/// The first row of `select`, like sea-orm's `.one()` but with `LIMIT 1` written into the SQL:
/// `.one()` binds the limit as a parameter, and SQLite re-prepares a statement whose `LIMIT` is a
/// parameter on every execution (6.9 % of the gateway's CPU on the SMS path when profiled).
pub async fn first<E, C>(select: sea_orm::Select<E>, conn: &C) -> Result<Option<E::Model>, DbErr>
where
    E: sea_orm::EntityTrait,
    E::Model: sea_orm::FromQueryResult,
    C: ConnectionTrait,
{
    use sea_orm::{FromQueryResult, QueryTrait};
    let mut statement = select.build(conn.get_database_backend());
    statement.sql.push_str(" LIMIT 1");
    E::Model::find_by_statement(statement).one(conn).await
}

/// Rewrites `?` placeholders to `$1, $2, …` for PostgreSQL. Queries here never contain a
/// literal `?`, so a plain scan is enough.
pub fn placeholders(backend: DbBackend, sql: &str) -> String {
    if backend != DbBackend::Postgres {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// `?, ?, …` for a list of `n` values in `IN (…)`, padded to the next power of two (see
/// [`padded_values`]): a list's length then takes one of a few shapes, and its statement stays
/// prepared instead of being parsed anew for every length (as [`batch::fixed_insert`] does for
/// inserts).
pub fn padded_list(n: usize) -> String {
    vec!["?"; n.max(1).next_power_of_two()].join(", ")
}

/// The values of a [`padded_list`]: the last one repeated up to the list's length, which
/// changes no `IN` (and, for [`union_all`], repeats a branch whose rows callers ignore).
pub fn padded_values<T: Clone>(mut values: Vec<T>) -> Vec<T> {
    if let Some(last) = values.last().cloned() {
        values.resize(values.len().next_power_of_two(), last);
    }
    values
}

/// `branch UNION ALL branch …`, one branch per item of `values` (each item the values of one
/// branch's placeholders), for looking many keys up at once where each key alone has a plan
/// that cannot go wrong: an `IN` list beside the tenant lets a planner without statistics read
/// every row of the tenant through another index, while each branch here is an equality on an
/// index's full key. The branches are padded to a power of two by repeating the last one (so
/// the statement stays prepared): callers ignore the repeated rows.
pub fn union_all(branch: &str, values: Vec<Vec<Value>>) -> (String, Vec<Value>) {
    let values = padded_values(values);
    let sql = vec![branch; values.len()].join(" UNION ALL ");
    (sql, values.into_iter().flatten().collect())
}

/// Runs one statement written with `?` placeholders on any connection or transaction; the rows
/// it changed.
pub async fn execute<C: ConnectionTrait>(
    conn: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<u64, DbErr> {
    let backend = conn.get_database_backend();
    let done = conn
        .execute_raw(Statement::from_sql_and_values(
            backend,
            placeholders(backend, sql),
            values,
        ))
        .await?;
    Ok(done.rows_affected())
}

/// A claim of due rows in a work queue: `UPDATE … SET locked_until = ?, locked_by = ? WHERE id
/// IN (due rows, oldest first, at most ?) RETURNING …`, with `FOR UPDATE SKIP LOCKED` on
/// PostgreSQL so replicas skip each other's rows (SQLite's single writer serializes claims).
/// Binds, in order: lease end, worker, then the `due` condition's values, then the limit.
pub fn claim_sql(
    backend: DbBackend,
    table: &str,
    due: &str,
    order_by: &str,
    returning: &str,
) -> String {
    let lock = if backend == DbBackend::Postgres {
        "FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    format!(
        "UPDATE {table} SET locked_until = ?, locked_by = ? \
         WHERE id IN (SELECT id FROM {table} WHERE {due} ORDER BY {order_by} LIMIT ? {lock}) \
         RETURNING {returning}"
    )
}

/// Whether an error means the database cannot be reached or is overloaded right now (the
/// request may succeed later: 503), rather than a bug or a bad query (500).
pub fn is_unavailable(err: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    let sqlx_err = match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => e,
        _ => return false,
    };
    match &**sqlx_err {
        Sqlx::Io(_)
        | Sqlx::Tls(_)
        | Sqlx::Protocol(_)
        | Sqlx::PoolTimedOut
        | Sqlx::PoolClosed
        | Sqlx::WorkerCrashed => true,
        Sqlx::Database(db) => {
            let code = db.code().unwrap_or_default();
            // PostgreSQL: class 08 connection exception, 57P0x shutdown / cannot connect now,
            // 53xxx insufficient resources. SQLite: 5 SQLITE_BUSY, 6 SQLITE_LOCKED.
            code.starts_with("08")
                || code.starts_with("57P")
                || code.starts_with("53")
                || code == "5"
                || code == "6"
        }
        _ => false,
    }
}

/// Whether an error is a violated unique key (a duplicate delivery, a concurrent insert).
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres_only() {
        assert_eq!(
            placeholders(DbBackend::Postgres, "a = ? AND b = ?"),
            "a = $1 AND b = $2"
        );
        assert_eq!(
            placeholders(DbBackend::Sqlite, "a = ? AND b = ?"),
            "a = ? AND b = ?"
        );
    }
}
