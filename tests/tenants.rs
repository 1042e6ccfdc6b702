//! Tenants, keys and isolation: one tenant never sees or changes another's data.

mod common;

use common::{assert_problem, Backend, TestServer, ADMIN_TOKEN};
use reqwest::{Method, StatusCode};
use sea_orm::ConnectionTrait;
use serde_json::json;

on_both_backends!(
    admin_creates_tenants_with_hashed_keys,
    a_revoked_key_stops_working_within_the_cache_lifetime,
    tenants_are_isolated_on_every_endpoint
);

async fn admin_creates_tenants_with_hashed_keys(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, body) = server
        .send(
            Method::POST,
            "/admin/v1/tenants",
            Some(ADMIN_TOKEN),
            Some(json!({"slug": "acme"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["slug"], "acme");
    assert!(uuid::Uuid::parse_str(body["id"].as_str().unwrap()).is_ok());
    let key = body["api_key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("fgw_") && key.len() > 40);

    // The key works, and is stored only as a hash.
    let (status, _) = server.get("/v1/feedback", &key).await;
    assert_eq!(status, StatusCode::OK);
    let stored = server
        .db
        .read
        .query_all_raw(sea_orm::Statement::from_string(
            server.db.backend(),
            "SELECT key_hash, key_prefix FROM api_keys",
        ))
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    let hash: String = stored[0].try_get("", "key_hash").unwrap();
    let prefix: String = stored[0].try_get("", "key_prefix").unwrap();
    assert_ne!(hash, key);
    assert!(!hash.contains(&key[4..]));
    assert!(key.starts_with(&prefix) && prefix.len() < 16);

    let cases = [
        (
            Some(ADMIN_TOKEN),
            json!({"slug": "acme"}),
            409,
            "tenant-exists",
        ),
        (
            Some(ADMIN_TOKEN),
            json!({"slug": "Not A Slug"}),
            422,
            "validation-failed",
        ),
        (
            Some(ADMIN_TOKEN),
            json!({"slug": 5}),
            422,
            "validation-failed",
        ),
        (
            Some(ADMIN_TOKEN),
            json!({"name": "acme"}),
            422,
            "validation-failed",
        ),
        (None, json!({"slug": "beta"}), 401, "unauthorized"),
        (
            Some("test-admin-token-012345678X"),
            json!({"slug": "beta"}),
            401,
            "unauthorized",
        ),
        (
            Some(key.as_str()),
            json!({"slug": "beta"}),
            401,
            "unauthorized",
        ),
    ];
    for (token, body, status, kind) in cases {
        let (got, problem) = server
            .send(Method::POST, "/admin/v1/tenants", token, Some(body.clone()))
            .await;
        assert_problem(got, &problem, status, kind);
    }
    assert_eq!(server.count("tenants").await, 1);
    server.stop().await;

    // With no admin token configured the admin API is closed.
    let server = TestServer::start_with(backend, |c| c.admin_token = String::new(), vec![]).await;
    let (status, body) = server
        .send(
            Method::POST,
            "/admin/v1/tenants",
            Some(""),
            Some(json!({"slug": "acme"})),
        )
        .await;
    assert_problem(status, &body, 403, "forbidden");
    server.stop().await;
}

/// Keys are cached for `database.cache_ttl_ms`: a key revoked in the database (by an operator,
/// or through another replica) is refused within that time, and the cache never keeps a key
/// that failed.
async fn a_revoked_key_stops_working_within_the_cache_lifetime(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.database.cache_ttl_ms = 300, vec![]).await;
    let key = server.tenant("acme").await;
    let (status, _) = server.get("/v1/feedback", &key).await;
    assert_eq!(status, StatusCode::OK);
    server
        .db
        .write
        .execute_unprepared("UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP")
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let (status, body) = server.get("/v1/feedback", &key).await;
        if status == StatusCode::UNAUTHORIZED {
            assert_problem(status, &body, 401, "unauthorized");
            break;
        }
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(
            std::time::Instant::now() < deadline,
            "a revoked key still works after the cache lifetime"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Refused keys are not cached: restoring the key makes it work again at once.
    server
        .db
        .write
        .execute_unprepared("UPDATE api_keys SET revoked_at = NULL")
        .await
        .unwrap();
    let (status, _) = server.get("/v1/feedback", &key).await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
}

async fn tenants_are_isolated_on_every_endpoint(backend: Backend) {
    let server = TestServer::start(backend).await;
    let a = server.tenant("tenant-a").await;
    let b = server.tenant("tenant-b").await;
    let send = |key: &str, idem: &str, body: serde_json::Value| {
        server
            .client
            .post(server.url("/v1/feedback"))
            .bearer_auth(key)
            .header("Idempotency-Key", idem)
            .json(&body)
            .send()
    };
    let resp = send(&a, "shared-key", json!({"metric": "nps", "score": 10, "contact": {"email": "x@example.com"}, "channel": "sms"}))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let fa: serde_json::Value = resp.json().await.unwrap();
    // The same idempotency key in another tenant is another request.
    let resp = send(
        &b,
        "shared-key",
        json!({"metric": "nps", "score": 0, "contact": {"email": "x@example.com"}}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let fb: serde_json::Value = resp.json().await.unwrap();
    assert_ne!(fa["id"], fb["id"]);
    assert_ne!(
        fa["contact_id"], fb["contact_id"],
        "same address, separate contacts per tenant"
    );
    server.settle().await;

    // GET by id.
    let (status, body) = server
        .get(&format!("/v1/feedback/{}", fa["id"].as_str().unwrap()), &b)
        .await;
    assert_problem(status, &body, 404, "not-found");
    // List, including by the other tenant's contact.
    let (_, list_b) = server.get("/v1/feedback", &b).await;
    assert_eq!(list_b["items"].as_array().unwrap().len(), 1);
    assert_eq!(list_b["items"][0]["id"], fb["id"]);
    let (_, by_contact) = server
        .get(
            &format!(
                "/v1/feedback?contact={}",
                fa["contact_id"].as_str().unwrap()
            ),
            &b,
        )
        .await;
    assert_eq!(by_contact["items"], json!([]));
    // Scores.
    let (_, score_a) = server.get("/v1/scores?metric=nps", &a).await;
    let (_, score_b) = server.get("/v1/scores?metric=nps", &b).await;
    assert_eq!(
        (score_a["responses"].clone(), score_a["score"].clone()),
        (json!(1), json!(100.0))
    );
    assert_eq!(
        (score_b["responses"].clone(), score_b["score"].clone()),
        (json!(1), json!(-100.0))
    );
    // Ingest naming the other tenant's contact.
    let (status, body) = server
        .post(
            "/v1/feedback",
            &b,
            json!({"metric": "nps", "score": 5, "contact": {"id": fa["contact_id"]}}),
        )
        .await;
    assert_problem(status, &body, 422, "validation-failed");
    // Dead letters: listing and replaying another tenant's.
    let (_, dl) = server.get("/v1/dead-letters", &b).await;
    assert_eq!(dl["items"], json!([]));
    let (status, body) = server
        .send(
            Method::POST,
            &format!("/v1/dead-letters/{}/replay", fa["id"].as_str().unwrap()),
            Some(&b),
            None,
        )
        .await;
    assert_problem(status, &body, 404, "not-found");
    server.stop().await;
}
