//! Inbound rate limits over HTTP: per tenant key, and per client IP on public endpoints.

mod common;

use common::{assert_problem, Backend, TestServer, ADMIN_TOKEN};
use reqwest::StatusCode;
use serde_json::json;

on_both_backends!(
    a_tenant_over_its_limit_gets_429_and_others_do_not,
    admin_is_limited_per_client_ip
);

async fn a_tenant_over_its_limit_gets_429_and_others_do_not(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        |c| {
            c.rate_limits.tenant_per_second = 1;
            c.rate_limits.tenant_burst = 3;
        },
        vec![],
    )
    .await;
    let flood = server.tenant("flood").await;
    let calm = server.tenant("calm").await;
    for _ in 0..3 {
        server
            .feedback(&flood, json!({"metric": "nps", "score": 9}))
            .await;
    }
    let resp = server
        .client
        .post(server.url("/v1/feedback"))
        .bearer_auth(&flood)
        .json(&json!({"metric": "nps", "score": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "1");
    let status = resp.status();
    assert_problem(status, &resp.json().await.unwrap(), 429, "rate-limited");
    assert_eq!(
        server.count("feedback").await,
        3,
        "nothing stored over the limit"
    );
    // Another tenant is not slowed by the flood.
    let (status, _) = server.get("/v1/feedback", &calm).await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    server
        .feedback(&flood, json!({"metric": "nps", "score": 1}))
        .await;
    server.stop().await;
}

async fn admin_is_limited_per_client_ip(backend: Backend) {
    let limited = |trusted: bool| {
        move |c: &mut feedback_gateway::config::Config| {
            c.rate_limits.ip_per_second = 1;
            c.rate_limits.ip_burst = 2;
            if trusted {
                c.rate_limits.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
            }
        }
    };
    let create = |server: &TestServer, slug: String, forwarded: Option<String>| {
        let mut req = server
            .client
            .post(server.url("/admin/v1/tenants"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"slug": slug}));
        if let Some(ip) = forwarded {
            req = req.header("X-Forwarded-For", ip);
        }
        req.send()
    };

    // Direct clients: the peer address counts, and X-Forwarded-For is not believed.
    let server = TestServer::start_with(backend, limited(false), vec![]).await;
    let mut statuses = Vec::new();
    for i in 0..3 {
        let resp = create(&server, format!("t-{i}"), Some(format!("203.0.113.{i}")))
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(statuses, vec![201, 201, 429]);
    assert_eq!(server.count("tenants").await, 2);
    server.stop().await;

    // Behind a trusted proxy each forwarded client has its own budget.
    let server = TestServer::start_with(backend, limited(true), vec![]).await;
    for i in 0..3 {
        let resp = create(&server, format!("t-{i}"), Some(format!("203.0.113.{i}")))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    let mut statuses = Vec::new();
    for i in 3..6 {
        let resp = create(&server, format!("t-{i}"), Some("198.51.100.7".into()))
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(statuses, vec![201, 201, 429]);
    server.stop().await;
}
