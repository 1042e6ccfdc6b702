//! Generic ingest over HTTP: accepted input is stored once with its raw event and outbox row,
//! bad input is a problem+json answer that stores nothing.

mod common;

use common::{assert_problem, Backend, TestServer};
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::{json, Value};

on_both_backends!(
    stores_record_raw_event_and_outbox_in_one_go,
    finds_contacts_by_identity,
    idempotency_key_replays_and_conflicts,
    concurrent_retries_store_once,
    bad_input_is_a_problem_and_stores_nothing,
    lists_with_cursor_and_filters,
);

async fn stores_record_raw_event_and_outbox_in_one_go(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = server.tenant("acme").await;
    let (status, body) = server
        .post(
            "/v1/feedback",
            &key,
            json!({
                "metric": "nps", "score": 9, "comment": "Hurtig og venlig hjælp",
                "channel": "sms", "contact": {"phone": "22 33 44 55"},
                "occurred_at": "2026-11-01T10:00:00Z", "ticket_ref": "T-1",
                "agent_ref": "agent-7", "team_ref": "support-dk", "language": "da",
                "metadata": {"source": "test"}
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);
    assert_eq!(body["metric"], "nps");
    assert_eq!(body["score"], 9);
    assert_eq!(body["scale"], "0-10");
    assert_eq!(body["channel"], "sms");
    assert_eq!(body["ticket_ref"], "T-1");
    assert_eq!(body["occurred_at"], "2026-11-01T10:00:00Z");
    assert!(body["contact_id"].is_string());

    let (status, fetched) = server.get(&format!("/v1/feedback/{id}"), &key).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, body);

    assert_eq!(server.count("raw_events").await, 1);
    assert_eq!(server.count("feedback").await, 1);
    assert_eq!(server.count("contacts").await, 1);
    // The phone number was normalized with the tenant default region (DK).
    let phone = server
        .db
        .read
        .query_one_raw(sea_orm::Statement::from_string(
            server.db.backend(),
            "SELECT value FROM contact_identities WHERE kind = 'phone'",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<String>("", "value")
        .unwrap();
    assert_eq!(phone, "+4522334455");
    server.settle().await;
    assert_eq!(
        server.count("outbox").await,
        0,
        "delivered rows leave the outbox"
    );
    assert_eq!(server.count("score_facts").await, 1);
    server.stop().await;
}

async fn finds_contacts_by_identity(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = server.tenant("acme").await;
    let a = server
        .feedback(
            &key,
            json!({"metric": "csat", "score": 5, "contact": {"email": "Anna@Example.com"}}),
        )
        .await;
    let b = server
        .feedback(&key, json!({"metric": "csat", "score": 4, "contact": {"email": "Anna@EXAMPLE.COM", "phone": "+4522334455"}}))
        .await;
    assert_eq!(
        a["contact_id"], b["contact_id"],
        "same address, same contact"
    );
    let c = server
        .feedback(
            &key,
            json!({"metric": "csat", "score": 3, "contact": {"phone": "+45 22 33 44 55"}}),
        )
        .await;
    assert_eq!(
        a["contact_id"], c["contact_id"],
        "phone attached by the second answer"
    );
    let d = server
        .feedback(
            &key,
            json!({"metric": "csat", "score": 3, "contact": {"id": a["contact_id"]}}),
        )
        .await;
    assert_eq!(a["contact_id"], d["contact_id"]);
    let anonymous = server
        .feedback(&key, json!({"metric": "csat", "score": 2}))
        .await;
    assert!(anonymous["contact_id"].is_null());
    assert_eq!(server.count("contacts").await, 1);
    assert_eq!(server.count("contact_identities").await, 2);
    server.stop().await;
}

async fn idempotency_key_replays_and_conflicts(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = server.tenant("acme").await;
    let body = json!({"metric": "nps", "score": 10, "contact": {"email": "a@example.com"}});
    let post = |b: Value, idem: &'static str| {
        server
            .client
            .post(server.url("/v1/feedback"))
            .bearer_auth(&key)
            .header("Idempotency-Key", idem)
            .json(&b)
            .send()
    };
    let first = post(body.clone(), "req-1").await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again = post(body.clone(), "req-1").await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    let other = post(json!({"metric": "nps", "score": 3}), "req-1")
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::CONFLICT);
    assert_eq!(other.headers()["content-type"], "application/problem+json");
    let problem: Value = other.json().await.unwrap();
    assert_problem(
        StatusCode::CONFLICT,
        &problem,
        409,
        "idempotency-key-reused",
    );
    assert_eq!(server.count("feedback").await, 1);
    assert_eq!(server.count("raw_events").await, 1);
    server.settle().await;
    assert_eq!(server.count("score_facts").await, 1);

    let bad = server
        .client
        .post(server.url("/v1/feedback"))
        .bearer_auth(&key)
        .header("Idempotency-Key", "")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    server.stop().await;
}

async fn concurrent_retries_store_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = server.tenant("acme").await;
    let body = json!({"metric": "ces", "score": 6, "contact": {"email": "same@example.com"}});
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let req = server
            .client
            .post(server.url("/v1/feedback"))
            .bearer_auth(&key)
            .header("Idempotency-Key", "retry-storm")
            .json(&body);
        tasks.push(tokio::spawn(async move {
            let resp = req.send().await.unwrap();
            let status = resp.status();
            (status, resp.json::<Value>().await.unwrap())
        }));
    }
    let mut created = 0;
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            StatusCode::CREATED => created += 1,
            StatusCode::OK => {}
            other => panic!("unexpected {other}: {body}"),
        }
        ids.insert(body["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(created, 1, "exactly one request stores");
    assert_eq!(ids.len(), 1, "every answer names the same record");
    assert_eq!(server.count("feedback").await, 1);
    assert_eq!(server.count("raw_events").await, 1);
    server.settle().await;
    assert_eq!(server.count("outbox").await, 0);
    assert_eq!(
        server.count("score_facts").await,
        1,
        "one event queued for the one record"
    );

    // Twenty different answers from one new contact at once: one contact, twenty records.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let req = server
            .client
            .post(server.url("/v1/feedback"))
            .bearer_auth(&key)
            .json(
                &json!({"metric": "nps", "score": i % 11, "contact": {"email": "new@example.com"}}),
            );
        tasks.push(tokio::spawn(
            async move { req.send().await.unwrap().status() },
        ));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::CREATED);
    }
    let (_, page) = server.get("/v1/feedback?limit=100&metric=nps", &key).await;
    let contacts: std::collections::HashSet<_> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["contact_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(contacts.len(), 1, "one contact for one address");
    assert_eq!(server.count("contacts").await, 2);
    server.stop().await;
}

async fn bad_input_is_a_problem_and_stores_nothing(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.http.body_limit_bytes = 4096, vec![]).await;
    let key = server.tenant("acme").await;
    let other_tenant = server.tenant("other").await;
    let (_, foreign) = server
        .post(
            "/v1/feedback",
            &other_tenant,
            json!({"metric": "nps", "score": 1, "contact": {"email": "x@example.com"}}),
        )
        .await;
    let raw = |body: &'static str, content_type: &'static str, bearer: Option<&str>| {
        let mut req = server
            .client
            .post(server.url("/v1/feedback"))
            .header("content-type", content_type)
            .body(body);
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        req.send()
    };
    let cases: Vec<(reqwest::Response, u16, &str, Option<&str>)> = vec![
        (raw("{\"metric\": \"nps\", ", "application/json", Some(&key)).await.unwrap(), 400, "malformed-json", None),
        (raw("{\"metric\": \"nps\", \"score\": 1} trailing", "application/json", Some(&key)).await.unwrap(), 400, "malformed-json", None),
        (raw("{\"metric\": \"nps\", \"score\": 9}", "text/plain", Some(&key)).await.unwrap(), 415, "unsupported-media-type", None),
        (raw("{\"metric\": 7, \"score\": 9}", "application/json", Some(&key)).await.unwrap(), 422, "validation-failed", Some("metric")),
        (raw("{\"metric\": \"nps\", \"score\": \"nine\"}", "application/json", Some(&key)).await.unwrap(), 422, "validation-failed", Some("score")),
        (raw("{\"metric\": \"nps\", \"score\": 9.5}", "application/json", Some(&key)).await.unwrap(), 422, "validation-failed", Some("score")),
        (raw("{\"metric\": \"stars\", \"score\": 9}", "application/json", Some(&key)).await.unwrap(), 422, "validation-failed", Some("metric")),
        (raw("{\"metric\": \"nps\", \"score\": 11}", "application/json", Some(&key)).await.unwrap(), 422, "validation-failed", Some("score")),
        (raw("{\"metric\": \"nps\", \"score\": -1}", "application/json", Some(&key)).await.unwrap(), 422, "validation-failed", Some("score")),
        (raw("{\"metric\": \"csat\", \"score\": 0}", "application/json", Some(&key)).await.unwrap(), 422, "validation-failed", Some("score")),
        (raw("{\"metric\": \"ces\", \"score\": 8}", "application/json", Some(&key)).await.unwrap(), 422, "validation-failed", Some("score")),
        (raw("{\"metric\": \"nps\"}", "application/json", Some(&key)).await.unwrap(), 422, "validation-failed", Some("score")),
        (raw("{\"metric\": \"text\"}", "application/json", Some(&key)).await.unwrap(), 422, "validation-failed", Some("comment")),
        (raw("{\"metric\": \"nps\", \"score\": 9, \"scor\": 1}", "application/json", Some(&key)).await.unwrap(), 422, "validation-failed", None),
        (raw("{\"metric\": \"nps\", \"score\": 9, \"channel\": \"fax\"}", "application/json", Some(&key)).await.unwrap(), 422, "validation-failed", Some("channel")),
        (raw("{\"metric\": \"nps\", \"score\": 9, \"contact\": {\"email\": \"not-an-address\"}}", "application/json", Some(&key)).await.unwrap(), 422, "validation-failed", Some("contact.email")),
        (raw("{\"metric\": \"nps\", \"score\": 9, \"contact\": {\"phone\": \"12\"}}", "application/json", Some(&key)).await.unwrap(), 422, "validation-failed", Some("contact.phone")),
        (raw("{\"metric\": \"nps\", \"score\": 9, \"contact\": {\"email\": \"a@example.com\", \"time_zone\": \"Mars/Olympus\"}}", "application/json", Some(&key)).await.unwrap(), 422, "validation-failed", Some("contact.time_zone")),
        (raw("{\"metric\": \"nps\", \"score\": 9, \"occurred_at\": \"yesterday\"}", "application/json", Some(&key)).await.unwrap(), 422, "validation-failed", Some("occurred_at")),
        (raw("{\"metric\": \"nps\", \"score\": 9, \"occurred_at\": \"2999-01-01T00:00:00Z\"}", "application/json", Some(&key)).await.unwrap(), 422, "validation-failed", Some("occurred_at")),
        (raw("{\"metric\": \"nps\", \"score\": 9}", "application/json", None).await.unwrap(), 401, "unauthorized", None),
        (raw("{\"metric\": \"nps\", \"score\": 9}", "application/json", Some("fgw_wrong")).await.unwrap(), 401, "unauthorized", None),
        (raw("{\"metric\": \"nps\", \"score\": 9}", "application/json", Some("not-even-our-format")).await.unwrap(), 401, "unauthorized", None),
    ];
    for (resp, status, kind, field) in cases {
        let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
        let code = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(content_type, "application/problem+json", "{body}");
        assert_problem(code, &body, status, kind);
        if let Some(field) = field {
            assert_eq!(body["errors"][0]["field"], field, "{body}");
        }
    }
    // A contact id of another tenant is unknown here.
    let (status, body) = server
        .post(
            "/v1/feedback",
            &key,
            json!({"metric": "nps", "score": 9, "contact": {"id": foreign["contact_id"]}}),
        )
        .await;
    assert_problem(status, &body, 422, "validation-failed");
    assert_eq!(body["errors"][0]["field"], "contact.id");

    let big = format!(
        "{{\"metric\": \"text\", \"comment\": \"{}\"}}",
        "x".repeat(5000)
    );
    let resp = server
        .client
        .post(server.url("/v1/feedback"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(big)
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

    let (_, page) = server.get("/v1/feedback", &key).await;
    assert_eq!(page["items"], json!([]), "nothing stored for the tenant");
    assert_eq!(
        server.count("raw_events").await,
        1,
        "only the other tenant's answer"
    );
    assert_eq!(server.count("feedback").await, 1);
    assert_eq!(server.count("contacts").await, 1);
    server.stop().await;
}

async fn lists_with_cursor_and_filters(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = server.tenant("acme").await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let f = server
            .feedback(
                &key,
                json!({
                    "metric": if i % 2 == 0 { "nps" } else { "csat" },
                    "score": if i % 2 == 0 { 9 } else { 4 },
                    "channel": if i < 4 { "sms" } else { "email" },
                    "contact": {"email": format!("c{}@example.com", i % 3)},
                    "occurred_at": format!("2026-11-0{}T12:00:00Z", i + 1),
                    "ticket_ref": format!("T-{i}"),
                }),
            )
            .await;
        ids.push(f["id"].as_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    let mut path = "/v1/feedback?limit=3".to_owned();
    loop {
        let (status, page) = server.get(&path, &key).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|f| f["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/feedback?limit=3&cursor={c}"),
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first, "every record once, newest first");

    let count = |q: &'static str| {
        let server = &server;
        let key = key.clone();
        async move {
            let (status, page) = server.get(&format!("/v1/feedback?{q}"), &key).await;
            assert_eq!(status, StatusCode::OK, "{q}: {page}");
            page["items"].as_array().unwrap().len()
        }
    };
    assert_eq!(count("metric=nps").await, 4);
    assert_eq!(count("channel=email").await, 3);
    assert_eq!(count("metric=csat&channel=sms").await, 2);
    assert_eq!(
        count("from=2026-11-03T00:00:00Z&to=2026-11-05T00:00:00Z").await,
        2
    );
    assert_eq!(count("ticket_ref=T-6").await, 1);
    let (_, first) = server.get(&format!("/v1/feedback/{}", ids[0]), &key).await;
    let contact = first["contact_id"].as_str().unwrap();
    let (_, by_contact) = server
        .get(&format!("/v1/feedback?contact={contact}"), &key)
        .await;
    assert_eq!(by_contact["items"].as_array().unwrap().len(), 3);

    for bad in [
        "limit=0",
        "limit=501",
        "metric=stars",
        "cursor=@@@",
        "from=yesterday",
        "contact=42",
        "sort=asc",
    ] {
        let (status, body) = server.get(&format!("/v1/feedback?{bad}"), &key).await;
        assert_problem(status, &body, 400, "invalid-query");
    }
    let (status, body) = server.get("/v1/feedback/not-a-uuid", &key).await;
    assert_problem(status, &body, 404, "not-found");
    server.stop().await;
}
