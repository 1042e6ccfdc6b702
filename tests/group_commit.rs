//! The group commit the read-then-write paths go through (SMS replies, delivery reports,
//! platform deliveries, API triggers): requests that wait together commit together, one bad
//! request fails only itself, and a request in a group sees what the requests before it in the
//! same group wrote. On SQLite and PostgreSQL, over the server's own connections.

mod common;

use common::{Backend, TestServer};
use feedback_gateway::store::group::GroupCommit;
use futures::future::join_all;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};

on_both_backends!(
    one_bad_request_fails_only_itself,
    requests_in_one_group_see_each_others_writes
);

fn insert_tenant(backend: DbBackend, slug: &str) -> Statement {
    let sql = match backend {
        DbBackend::Postgres => "INSERT INTO tenants (id, slug, created_at) VALUES ($1, $2, $3)",
        _ => "INSERT INTO tenants (id, slug, created_at) VALUES (?, ?, ?)",
    };
    Statement::from_sql_and_values(
        backend,
        sql,
        [
            uuid::Uuid::now_v7().into(),
            slug.into(),
            chrono::Utc::now().into(),
        ],
    )
}

async fn one_bad_request_fails_only_itself(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.tenant("taken").await;
    let db_backend = server.db.backend();
    // One writer and room for all: the requests queue up while the first group runs, so the
    // later ones share groups with the bad one.
    let group = GroupCommit::start(server.db.write.clone(), 1, 64);
    let requests = (0..40).map(|i| {
        let group = group.clone();
        // Request 17 breaks a unique key: it fails, and on PostgreSQL it aborts the
        // transaction it runs in.
        let slug = if i == 17 {
            "taken".to_owned()
        } else {
            format!("tenant-{i}")
        };
        async move {
            group
                .run(move |txn| {
                    let statement = insert_tenant(db_backend, &slug);
                    Box::pin(async move { txn.execute_raw(statement).await.map(|_| i) })
                })
                .await
        }
    });
    let results: Vec<Result<i32, DbErr>> = join_all(requests).await;
    for (i, result) in results.iter().enumerate() {
        if i == 17 {
            assert!(result.is_err(), "the bad request reports its failure");
        } else {
            assert_eq!(result.as_ref().ok(), Some(&(i as i32)), "request {i}");
        }
    }
    assert_eq!(
        server.count("tenants").await,
        40,
        "39 new tenants and the one taken"
    );
    server.stop().await;
}

async fn requests_in_one_group_see_each_others_writes(backend: Backend) {
    let server = TestServer::start(backend).await;
    let db_backend = server.db.backend();
    let group = GroupCommit::start(server.db.write.clone(), 1, 64);
    // Each request counts the tenants it sees and adds one: run one after the other, whatever
    // group each lands in, they see 0, 1, 2, … — never the same count twice.
    let requests = (0..30).map(|i| {
        let group = group.clone();
        async move {
            group
                .run(move |txn| {
                    let insert = insert_tenant(db_backend, &format!("t{i}"));
                    Box::pin(async move {
                        let seen: i64 = txn
                            .query_one_raw(Statement::from_string(
                                db_backend,
                                "SELECT COUNT(*) AS n FROM tenants",
                            ))
                            .await?
                            .expect("a count")
                            .try_get("", "n")?;
                        txn.execute_raw(insert).await?;
                        Ok(seen)
                    })
                })
                .await
                .unwrap()
        }
    });
    let mut seen: Vec<i64> = join_all(requests).await;
    seen.sort_unstable();
    assert_eq!(seen, (0..30).collect::<Vec<i64>>());
    server.stop().await;
}
