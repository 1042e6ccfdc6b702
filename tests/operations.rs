//! Running the gateway: health, metrics, framework errors as problem+json, a database that goes
//! away, the command line, first start, graceful shutdown, and no loss on kill -9.

mod common;

use std::process::Command;
use std::time::Duration;

use common::binary::start_binary;
use common::{assert_problem, Backend, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_backends!(health_and_metrics, framework_errors_are_problems);

async fn health_and_metrics(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, body) = server.send(Method::GET, "/healthz", None, None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    let (status, body) = server.send(Method::GET, "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let key = server.tenant("acme").await;
    server
        .feedback(&key, json!({"metric": "nps", "score": 9, "channel": "sms"}))
        .await;
    server
        .post("/v1/feedback", &key, json!({"metric": "nps", "score": 99}))
        .await;
    server.settle().await;
    let resp = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = resp.text().await.unwrap();
    for needle in [
        "http_requests_total{method=\"POST\",route=\"/v1/feedback\",status=\"201\"}",
        "http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/feedback\",status=\"201\",le=\"0.005\"}",
        "feedback_ingested_total{channel=\"sms\",provider=\"api\",outcome=\"accepted\"}",
        // The recorder is process-wide and other tests' servers share it: the gauge exists,
        // its value is theirs too.
        "# TYPE outbox_depth gauge",
        "outbox_delivered_total{sink=\"scoring\"}",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    // A 422 is counted by route and status, not by the raw path.
    assert!(text.contains("route=\"/v1/feedback\",status=\"422\""));
    let resp = server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert!(resp.headers().contains_key("x-request-id"));
    server.stop().await;
}

async fn framework_errors_are_problems(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = server.tenant("acme").await;
    let (status, body) = server.send(Method::GET, "/no/such/route", None, None).await;
    assert_problem(status, &body, 404, "not-found");
    let resp = server
        .client
        .delete(server.url("/v1/feedback"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert!(resp.headers()["allow"].to_str().unwrap().contains("POST"));
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let status = resp.status();
    assert_problem(
        status,
        &resp.json().await.unwrap(),
        405,
        "method-not-allowed",
    );
    let resp = server
        .client
        .post(server.url("/v1/feedback"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(vec![b' '; 70_000])
        .send()
        .await
        .unwrap();
    let status = resp.status();
    assert_problem(
        status,
        &resp.json().await.unwrap(),
        413,
        "payload-too-large",
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_database_answers_503_and_writes_nothing() {
    if common::postgres_url().is_none() {
        eprintln!("FEEDBACK_TEST_POSTGRES_URL is not set: skipped");
        return;
    }
    let server = TestServer::start_with(
        Backend::Postgres,
        |c| c.database.acquire_timeout_ms = 1000,
        vec![],
    )
    .await;
    let key = server.tenant("acme").await;
    server
        .feedback(&key, json!({"metric": "nps", "score": 9}))
        .await;
    server.settle().await;
    let name = match &server.test_db {
        common::TestDb::Postgres { name, .. } => name.clone(),
        _ => unreachable!(),
    };
    server
        .test_db
        .admin_sql(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
        .await;
    server
        .test_db
        .admin_sql(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ))
        .await;

    let resp = server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["retry-after"], "5");
    for _ in 0..3 {
        let resp = server
            .client
            .post(server.url("/v1/feedback"))
            .bearer_auth(&key)
            .json(&json!({"metric": "nps", "score": 3}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()["retry-after"], "5");
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body["type"],
            "urn:feedback-gateway:problem:service-unavailable"
        );
    }

    server
        .test_db
        .admin_sql(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .await;
    let mut ready = false;
    for _ in 0..50 {
        if server
            .client
            .get(server.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            == StatusCode::OK
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "ready again once the database is back");
    assert_eq!(
        server.count("feedback").await,
        1,
        "nothing half-written while down"
    );
    assert_eq!(server.count("raw_events").await, 1);
    server
        .feedback(&key, json!({"metric": "nps", "score": 10}))
        .await;
    server.settle().await;
    let (_, scores) = server.get("/v1/scores?metric=nps", &key).await;
    assert_eq!(scores["responses"], 2);
    server.stop().await;
}

fn run_cli(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_feedback-gateway"));
    cmd.current_dir(dir)
        .args(args)
        .env("FEEDBACK_LOG__FILTER", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[tokio::test]
async fn first_start_creates_a_demo_tenant_whose_key_works() {
    let dir = tempfile::tempdir().unwrap();
    // The default database URL: ./data/feedback-gateway.db, created on first start.
    let db_url = feedback_gateway::config::Config::defaults().database_url;
    let mut gw = start_binary(dir.path(), &db_url, &[]);
    assert!(dir.path().join("data/feedback-gateway.db").exists());
    let printed = gw.stdout_lines.join("");
    let key = printed
        .split_whitespace()
        .find(|w| w.starts_with("fgw_"))
        .unwrap_or_else(|| panic!("no key printed: {printed}"))
        .trim_matches('\'')
        .to_owned();
    assert!(printed.contains("curl"), "{printed}");
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("{}/v1/feedback", gw.base))
        .bearer_auth(&key)
        .json(&json!({"metric": "nps", "score": 9}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    gw.child.kill().unwrap();
    gw.child.wait().unwrap();

    // A second start keeps the tenant and prints no new key.
    let mut gw = start_binary(dir.path(), &db_url, &[]);
    assert!(!gw.stdout_lines.join("").contains("fgw_"));
    let resp = client
        .get(format!("{}/v1/feedback", gw.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.json::<Value>().await.unwrap()["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    gw.child.kill().unwrap();
    gw.child.wait().unwrap();
}

#[tokio::test]
async fn cli_migrates_creates_tenants_and_names_bad_config_keys() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/cli.db?mode=rwc", dir.path().display());
    let env = [("FEEDBACK_DATABASE_URL", db.as_str())];
    let out = run_cli(dir.path(), &["migrate"], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run_cli(dir.path(), &["tenant", "create", "acme"], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["slug"], "acme");
    let key = created["api_key"].as_str().unwrap().to_owned();
    let out = run_cli(dir.path(), &["tenant", "create", "acme"], &env);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists"));

    let mut gw = start_binary(
        dir.path(),
        &db,
        &[("FEEDBACK_DEMO__CREATE_TENANT", "false")],
    );
    let resp = reqwest::Client::new()
        .get(format!("{}/v1/feedback", gw.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "the offline key works online"
    );
    gw.child.kill().unwrap();
    gw.child.wait().unwrap();

    for (var, value, key) in [
        ("FEEDBACK_LISTEN", "nowhere", "listen"),
        ("FEEDBACK_OUTBOX__MAX_ATTEMPTS", "many", "max_attempts"),
        ("FEEDBACK_DATABASE_URL", "mysql://x", "database_url"),
    ] {
        let out = run_cli(dir.path(), &["migrate"], &[(var, value)]);
        assert_eq!(out.status.code(), Some(2), "{var}");
        let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
        assert!(stderr.contains(key), "{var}: {stderr}");
    }
}

#[tokio::test]
async fn sigterm_stops_the_gateway_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/g.db?mode=rwc", dir.path().display());
    let mut gw = start_binary(dir.path(), &db, &[]);
    let status = Command::new("kill")
        .args(["-TERM", &gw.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for _ in 0..100 {
        if let Some(exit) = gw.child.try_wait().unwrap() {
            assert!(exit.success(), "exit status {exit}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gw.child.kill().unwrap();
    panic!("the gateway did not stop within 5 s of SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_loses_nothing_that_was_answered_201() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/g.db?mode=rwc", dir.path().display());
    let mut gw = start_binary(dir.path(), &db, &[("FEEDBACK_DEMO__SLUG", "load")]);
    let key = gw
        .stdout_lines
        .join("")
        .split_whitespace()
        .find(|w| w.starts_with("fgw_"))
        .unwrap()
        .trim_matches('\'')
        .to_owned();
    let client = reqwest::Client::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut senders = Vec::new();
    for worker in 0..8 {
        let (client, tx, key, base) = (client.clone(), tx.clone(), key.clone(), gw.base.clone());
        senders.push(tokio::spawn(async move {
            for i in 0..10_000 {
                let resp = client
                    .post(format!("{base}/v1/feedback"))
                    .bearer_auth(&key)
                    .json(&json!({"metric": "nps", "score": (worker + i) % 11, "contact": {"email": format!("c{i}@example.com")}}))
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status() == StatusCode::CREATED => {
                        let body: Value = match r.json().await {
                            Ok(b) => b,
                            Err(_) => return,
                        };
                        let _ = tx.send(body["id"].as_str().unwrap().to_owned());
                    }
                    _ => return,
                }
            }
        }));
    }
    drop(tx);
    let mut acknowledged = Vec::new();
    while acknowledged.len() < 300 {
        acknowledged.push(rx.recv().await.expect("answers keep coming"));
    }
    gw.child.kill().unwrap(); // SIGKILL, mid-load
    gw.child.wait().unwrap();
    for s in senders {
        let _ = s.await;
    }
    while let Ok(id) = rx.try_recv() {
        acknowledged.push(id);
    }

    let mut gw = start_binary(dir.path(), &db, &[]);
    for id in &acknowledged {
        let resp = client
            .get(format!("{}/v1/feedback/{id}", gw.base))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::OK,
            "record {id} was answered 201 but is gone"
        );
    }
    gw.child.kill().unwrap();
    gw.child.wait().unwrap();
}

/// On SQLite the writer never checkpoints (a checkpoint would hold the one write connection);
/// the server copies the write-ahead log into the database file from a reader every second.
/// Read with the log ignored (`immutable`), the database file itself holds what was answered
/// 201 a moment before; without the checkpointer it would hold nothing.
#[tokio::test]
async fn the_sqlite_log_is_checkpointed_beside_the_writer() {
    use sea_orm::ConnectionTrait;
    let server = TestServer::start(Backend::Sqlite).await;
    let key = server.tenant("acme").await;
    for i in 0..20 {
        let (status, body) = server
            .post(
                "/v1/feedback",
                &key,
                json!({"metric": "nps", "score": i % 11, "contact": {"email": format!("c{i}@example.com")}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let file = server
        .test_db
        .url()
        .trim_start_matches("sqlite://")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let in_file = || async {
        let options = sea_orm::sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&file)
            .immutable(true)
            .read_only(true);
        let pool = sea_orm::sqlx::SqlitePool::connect_with(options)
            .await
            .unwrap();
        let db = sea_orm::SqlxSqliteConnector::from_sqlx_sqlite_pool(pool);
        // Before the first checkpoint the file holds not even the tables.
        let n: i64 = match db
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Sqlite,
                "SELECT COUNT(*) AS n FROM feedback",
            ))
            .await
        {
            Ok(Some(row)) => row.try_get("", "n").unwrap(),
            _ => 0,
        };
        db.close().await.unwrap();
        n
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while in_file().await < 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "the answers never reached the database file"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.stop().await;
}
