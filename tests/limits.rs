//! Inbound rate limits over HTTP: per tenant key, and per client IP on public endpoints.

mod common;

use common::{assert_problem, Backend, TestServer, ADMIN_TOKEN};
use reqwest::StatusCode;
use serde_json::json;

on_both_backends!(
    a_tenant_over_its_limit_gets_429_and_others_do_not,
    admin_is_limited_per_client_ip,
    unknown_api_keys_are_throttled_before_the_database,
    a_known_key_is_not_throttled_when_its_cache_entry_expires,
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

/// Guessing keys costs a database look-up each; past the per-IP budget the guesses are answered
/// 429 without one. A key that authenticated before is remembered and keeps working.
async fn unknown_api_keys_are_throttled_before_the_database(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        |c| {
            c.rate_limits.key_lookup_ip_per_second = 1;
            c.rate_limits.key_lookup_ip_burst = 10;
        },
        vec![],
    )
    .await;
    let key = server.tenant("acme").await;
    let (status, _) = server.get("/v1/feedback", &key).await;
    assert_eq!(status, StatusCode::OK);
    let mut unauthorized = 0;
    let mut throttled = 0;
    for i in 0..200 {
        let resp = server
            .client
            .get(server.url("/v1/feedback"))
            .bearer_auth(format!("fgk_guess_{i:040}"))
            .send()
            .await
            .unwrap();
        match resp.status() {
            StatusCode::UNAUTHORIZED => unauthorized += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(resp.headers().contains_key("retry-after"));
                throttled += 1;
            }
            other => panic!("{other}"),
        }
    }
    assert!(
        unauthorized <= 12,
        "{unauthorized} guesses reached the database"
    );
    assert_eq!(unauthorized + throttled, 200);
    let (status, body) = server.get("/v1/feedback", &key).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.stop().await;
}

/// When a busy integration's cached key expires, all its requests in flight look the key up at
/// once: none of them is throttled as a guess, and guesses from the same client still are.
async fn a_known_key_is_not_throttled_when_its_cache_entry_expires(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        |c| {
            c.database.cache_ttl_ms = 50;
            c.rate_limits.key_lookup_ip_per_second = 1;
            c.rate_limits.key_lookup_ip_burst = 3;
        },
        vec![],
    )
    .await;
    let key = server.tenant("acme").await;
    assert_eq!(server.get("/v1/feedback", &key).await.0, StatusCode::OK);
    for _ in 0..3 {
        tokio::time::sleep(std::time::Duration::from_millis(80)).await;
        let answers =
            futures::future::join_all((0..30).map(|_| server.get("/v1/feedback", &key))).await;
        for (status, body) in answers {
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }
    let guesses = futures::future::join_all((0..10).map(|i| {
        server
            .client
            .get(server.url("/v1/feedback"))
            .bearer_auth(format!("fgk_guess_{i:040}"))
            .send()
    }))
    .await;
    let throttled = guesses
        .iter()
        .filter(|r| r.as_ref().unwrap().status() == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(throttled >= 6, "{throttled} of 10 guesses throttled");
    server.stop().await;
}

mod connections {
    //! The connection layer: not storage, so SQLite only.
    use super::*;
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    fn address(server: &TestServer) -> String {
        server.base.trim_start_matches("http://").to_owned()
    }

    /// Reads until the server closes the connection; the time it took.
    async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout_at((start + limit).into(), stream.read(&mut buf)).await {
                Err(_) => return None,
                Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
                Ok(Ok(_)) => continue,
            }
        }
    }

    #[tokio::test]
    async fn headers_that_never_finish_are_cut_off() {
        let server = TestServer::start_with(
            Backend::Sqlite,
            |c| c.http.header_read_timeout_seconds = 1,
            vec![],
        )
        .await;
        let mut silent = TcpStream::connect(address(&server)).await.unwrap();
        let mut slow = TcpStream::connect(address(&server)).await.unwrap();
        slow.write_all(b"POST /v1/feedback HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        for stream in [&mut silent, &mut slow] {
            let closed = closed_within(stream, Duration::from_secs(5)).await;
            assert!(closed.is_some(), "the connection is still open after 5 s");
        }
        // A request that completes its headers in time is served.
        let (status, _) = server
            .send(reqwest::Method::GET, "/healthz", None, None)
            .await;
        assert_eq!(status, StatusCode::OK);
        server.stop().await;
    }

    #[tokio::test]
    async fn one_address_holds_a_bounded_number_of_connections() {
        let server = TestServer::start_with(
            Backend::Sqlite,
            |c| c.http.max_connections_per_ip = 4,
            vec![],
        )
        .await;
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(TcpStream::connect(address(&server)).await.unwrap());
        }
        // Let the server count them.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut fifth = TcpStream::connect(address(&server)).await.unwrap();
        let closed = closed_within(&mut fifth, Duration::from_secs(2)).await;
        assert!(closed.is_some(), "a fifth connection is closed at once");

        // The held connections still work, and closing one makes room.
        held[0]
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let n = held[0].read(&mut buf).await.unwrap();
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "{:?}",
            String::from_utf8_lossy(&buf[..n])
        );
        drop(held.pop());
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut again = TcpStream::connect(address(&server)).await.unwrap();
        again
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let n = again.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        server.stop().await;
    }
}
