//! Tenants' HTTP endpoints (`/v1/sinks/{name}`): a real endpoint on loopback (an axum server
//! the test starts) receives the events, signed per Standard Webhooks; it answers as the test
//! scripts it (500, 429 with Retry-After, 410), and the gateway retries, waits, disables and
//! dead-letters as Svix's schedule says. Signatures are checked with the gateway's own
//! Standard Webhooks verifier (tested against the specification's vectors).

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode as AxumStatus};
use common::{assert_problem, Backend, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_backends!(
    events_reach_the_endpoint_signed_and_failures_are_retried,
    throttled_and_gone_endpoints_wait_or_stop,
    endpoint_settings_are_checked,
);

/// A request the endpoint received.
#[derive(Clone, Debug)]
struct Received {
    headers: HeaderMap,
    body: String,
}

/// The answers an endpoint gives next: a status and an optional `Retry-After`.
type Script = Arc<Mutex<VecDeque<(u16, Option<&'static str>)>>>;

/// An HTTP endpoint on loopback that records what it gets and answers as scripted (then 200).
struct Endpoint {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    script: Script,
}

impl Endpoint {
    async fn start() -> Endpoint {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let script: Script = Arc::default();
        let (kept, answers) = (received.clone(), script.clone());
        let app = axum::Router::new().route(
            "/hooks/feedback",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let (kept, answers) = (kept.clone(), answers.clone());
                async move {
                    kept.lock().unwrap().push(Received { headers, body });
                    let (status, retry_after) =
                        answers.lock().unwrap().pop_front().unwrap_or((200, None));
                    let mut response_headers = HeaderMap::new();
                    if let Some(seconds) = retry_after {
                        response_headers.insert("retry-after", seconds.parse().unwrap());
                    }
                    (
                        AxumStatus::from_u16(status).unwrap(),
                        response_headers,
                        // An endpoint's error page may quote personal data.
                        format!("status {status}: mailbox kunde@example.dk not found"),
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/feedback", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Endpoint {
            url,
            received,
            script,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    fn answer(&self, status: u16, retry_after: Option<&'static str>) {
        self.script.lock().unwrap().push_back((status, retry_after));
    }
}

/// Whether `secret` signs the request, as a receiver checks it (five minutes' tolerance).
fn signed_with(secret: &str, request: &Received) -> bool {
    let generic = channels::chat::platform("generic").unwrap();
    let creds = (generic.configure)(&json!({"secret": secret})).unwrap();
    let headers = reqwest::header::HeaderMap::from_iter(request.headers.iter().map(|(k, v)| {
        (
            k.as_str().parse().unwrap(),
            v.as_bytes().try_into().unwrap(),
        )
    }));
    let hook = channels::chat::HookRequest {
        headers: &headers,
        query: None,
        body: request.body.as_bytes(),
        now: chrono::Utc::now(),
    };
    (generic.verify)(&hook, &creds).is_ok()
}

async fn put_sink(server: &TestServer, key: &str, name: &str, body: Value) -> (StatusCode, Value) {
    server
        .send(
            Method::PUT,
            &format!("/v1/sinks/{name}"),
            Some(key),
            Some(body),
        )
        .await
}

/// Waits (up to 10 s) until `done` holds: the server's own relay may be delivering.
async fn until(mut done: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if done().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("not reached in 10 s");
}

/// The endpoint's queued rows: (attempts, next attempt).
async fn queued(server: &TestServer) -> Vec<(i32, chrono::DateTime<chrono::Utc>)> {
    use sea_orm::ConnectionTrait;
    let rows = server
        .db
        .write
        .query_all_raw(server.db.statement(
            "SELECT attempts, next_attempt_at FROM outbox WHERE sink LIKE 'endpoint:%'",
            vec![],
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            (
                r.try_get("", "attempts").unwrap(),
                r.try_get("", "next_attempt_at").unwrap(),
            )
        })
        .collect()
}

/// Creates an http sink for `url` and expects 201.
async fn create_sink(server: &TestServer, key: &str, name: &str, url: &str) {
    let (status, body) = put_sink(server, key, name, json!({"kind": "http", "url": url})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// Makes the endpoint's queued retries due now, as if their wait had passed.
async fn wait_passes(server: &TestServer) {
    use sea_orm::ConnectionTrait;
    server
        .db
        .write
        .execute_raw(server.db.statement(
            "UPDATE outbox SET next_attempt_at = ? WHERE sink LIKE 'endpoint:%'",
            vec![feedback_gateway::store::now().into()],
        ))
        .await
        .unwrap();
}

async fn events_reach_the_endpoint_signed_and_failures_are_retried(backend: Backend) {
    let endpoint = Endpoint::start().await;
    let server = TestServer::start(backend).await;
    let key = server.tenant("acme").await;
    let other = server.tenant("beta").await;

    let settings =
        json!({"kind": "http", "url": endpoint.url, "event_types": ["feedback.created"]});
    let (status, created) = put_sink(&server, &key, "crm", settings.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{created}");
    // Shown once: not on a change, not when read.
    let (status, changed) = put_sink(&server, &key, "crm", settings).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert!(changed.get("secret").is_none());
    let (_, shown) = server.get("/v1/sinks/crm", &key).await;
    assert!(!shown.to_string().contains(&secret), "{shown}");

    // The first attempt fails; the retry (once its wait has passed) is delivered.
    endpoint.answer(500, None);
    let record = server
        .feedback(
            &key,
            json!({"metric": "nps", "score": 2, "comment": "Ingen ringede tilbage",
                   "channel": "api", "contact": {"email": "kunde@example.dk"}}),
        )
        .await;
    // Another tenant's answer never reaches this tenant's endpoint.
    server
        .feedback(
            &other,
            json!({"metric": "nps", "score": 9, "channel": "api"}),
        )
        .await;
    server.drain().await;
    until(async || queued(&server).await.first().is_some_and(|q| q.0 == 1)).await;
    assert_eq!(endpoint.received().len(), 1);
    wait_passes(&server).await;
    server.settle().await;
    let got = endpoint.received();
    assert_eq!(got.len(), 2, "{got:?}");
    let delivered = &got[1];
    let event: Value = serde_json::from_str(&delivered.body).unwrap();
    assert_eq!(event["type"], "feedback.created");
    assert_eq!(event["version"], 1);
    assert_eq!(event["data"]["id"], record["id"]);
    assert!(event["data"].get("comment").is_none(), "{event}");
    // The same event both times: the endpoint de-duplicates on webhook-id.
    assert_eq!(got[0].headers["webhook-id"], event["id"].as_str().unwrap());
    assert_eq!(
        delivered.headers["webhook-id"],
        event["id"].as_str().unwrap()
    );
    assert!(signed_with(&secret, delivered));
    assert!(!signed_with(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        delivered
    ));

    // The attempts, newest first, with the answer's excerpt scrubbed of the address.
    let (_, attempts) = server.get("/v1/sinks/crm/attempts", &key).await;
    let items = attempts["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{attempts}");
    assert_eq!(items[0]["status_code"], 200);
    assert_eq!(items[0]["outcome"], "delivered");
    assert_eq!(items[1]["status_code"], 500);
    assert_eq!(items[1]["outcome"], "failed");
    assert!(
        !attempts.to_string().contains("kunde@example.dk"),
        "{attempts}"
    );

    // A rotated secret: both sign for a day, so a receiver that still has either accepts.
    let (status, rotated) = server
        .send(
            Method::POST,
            "/v1/sinks/crm/rotate-secret",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap();
    let (status, ping) = server
        .send(Method::POST, "/v1/sinks/crm/test", Some(&key), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{ping}");
    assert_eq!(ping["delivered"], true, "{ping}");
    let pinged = endpoint.received().pop().unwrap();
    assert!(signed_with(new_secret, &pinged) && signed_with(&secret, &pinged));
    let ping_body: Value = serde_json::from_str(&pinged.body).unwrap();
    assert_eq!(ping_body["type"], "ping");
    assert_eq!(ping_body["data"], json!({"sink": "crm"}));

    // Deleted: nothing more is queued for it.
    let (status, _) = server
        .send(Method::DELETE, "/v1/sinks/crm", Some(&key), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    server
        .feedback(&key, json!({"metric": "nps", "score": 8, "channel": "api"}))
        .await;
    server.settle().await;
    assert_eq!(endpoint.received().len(), 3);
    server.stop().await;
}

async fn throttled_and_gone_endpoints_wait_or_stop(backend: Backend) {
    let endpoint = Endpoint::start().await;
    let server = TestServer::start(backend).await;
    let key = server.tenant("acme").await;
    create_sink(&server, &key, "crm", &endpoint.url).await;
    let healthy = Endpoint::start().await;
    create_sink(&server, &key, "bi", &healthy.url).await;

    // 429 with Retry-After: 120 waits two minutes, not the schedule's 5 s; the tenant's other
    // endpoint has its copy meanwhile.
    endpoint.answer(429, Some("120"));
    // A satisfied answer: one event (a dissatisfied one would open an alert, a second event).
    server
        .feedback(
            &key,
            json!({"metric": "csat", "score": 4, "channel": "api"}),
        )
        .await;
    server.drain().await;
    until(async || {
        let rows = queued(&server).await;
        healthy.received().len() == 1 && rows.len() == 1 && rows[0].0 == 1
    })
    .await;
    let (_, next) = queued(&server).await[0];
    let wait = next - chrono::Utc::now();
    assert!(
        wait > chrono::Duration::seconds(100) && wait <= chrono::Duration::seconds(120),
        "{wait}"
    );

    // 410 Gone: the endpoint is disabled, the event is a dead letter.
    endpoint.answer(410, None);
    wait_passes(&server).await;
    server.settle().await;
    let (_, shown) = server.get("/v1/sinks/crm", &key).await;
    assert!(shown["disabled_at"].is_string(), "{shown}");
    let (_, dead) = server.get("/v1/dead-letters", &key).await;
    let items = dead["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{dead}");
    assert!(items[0]["sink"].as_str().unwrap().starts_with("endpoint:"));
    // Disabled: later events are not sent to it.
    let before = endpoint.received().len();
    server
        .feedback(
            &key,
            json!({"metric": "csat", "score": 5, "channel": "api"}),
        )
        .await;
    server.settle().await;
    assert_eq!(endpoint.received().len(), before);
    // Put again, it is enabled.
    let (status, body) = put_sink(
        &server,
        &key,
        "crm",
        json!({"kind": "http", "url": endpoint.url}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["disabled_at"].is_null(), "{body}");
    // ...and the dead letter, replayed, reaches it.
    let replay = format!(
        "/v1/dead-letters/{}/replay",
        items[0]["id"].as_str().unwrap()
    );
    let (status, body) = server.send(Method::POST, &replay, Some(&key), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    server.settle().await;
    let last: Value = serde_json::from_str(&endpoint.received().last().unwrap().body).unwrap();
    assert_eq!(last["id"], items[0]["event_id"]);
    server.stop().await;
}

async fn endpoint_settings_are_checked(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        |c| c.outbound.allow_private_networks = false,
        vec![],
    )
    .await;
    let key = server.tenant("acme").await;
    for (body, field) in [
        (
            json!({"kind": "http", "url": "http://127.0.0.1:9/hook"}),
            "url",
        ),
        (
            json!({"kind": "http", "url": "https://10.1.2.3/hook"}),
            "url",
        ),
        (
            json!({"kind": "http", "url": "http://93.184.215.14/hook"}),
            "url",
        ),
        (
            json!({"kind": "http", "url": "ftp://example.com/hook"}),
            "url",
        ),
        (
            json!({"kind": "http", "url": "https://user:pw@93.184.215.14/hook"}),
            "url",
        ),
        (json!({"kind": "http"}), "url"),
        (
            json!({"kind": "http", "url": "https://93.184.215.14/hook", "event_types": ["nope"]}),
            "event_types",
        ),
        (
            json!({"kind": "nats", "url": "nats://127.0.0.1:4222"}),
            "kind",
        ),
    ] {
        let (status, problem) = put_sink(&server, &key, "crm", body.clone()).await;
        assert_problem(status, &problem, 422, "validation-failed");
        assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
    }
    let (status, problem) = put_sink(
        &server,
        &key,
        "crm",
        json!({"kind": "http", "url": "https://93.184.215.14/hook", "secret": "mine"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let (status, _) = server.get("/v1/sinks/none", &key).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A public https URL is accepted (nothing is sent until an event comes).
    create_sink(&server, &key, "crm", "https://93.184.215.14/hook").await;
    // Twenty at most: each event is queued once per endpoint.
    for n in 1..20 {
        create_sink(
            &server,
            &key,
            &format!("crm-{n}"),
            "https://93.184.215.14/hook",
        )
        .await;
    }
    let (status, problem) = put_sink(
        &server,
        &key,
        "one-too-many",
        json!({"kind": "http", "url": "https://93.184.215.14/hook"}),
    )
    .await;
    assert_problem(status, &problem, 422, "validation-failed");
    server.stop().await;
}
