//! Hostile input: one tenant's bad answer never fails another's, text no database can hold is
//! refused (API) or cleaned (providers), impossible times are refused or replaced, and a
//! tenant cannot name another tenant's invitation.

mod common;

use std::sync::Arc;

use channels::model::{ContactRef, FeedbackInput, Identity, Metric, Score, TicketRefs};
use chrono::Utc;
use common::{assert_problem, platform_fixture, Backend, TestServer};
use feedback_gateway::forward::relay::Relay;
use feedback_gateway::ingest::{Accepted, Ingest, IngestError, Received};
use feedback_gateway::store::tenants::Tenant;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_backends!(
    a_poisoned_answer_fails_only_itself,
    control_characters_and_impossible_times_from_the_api_are_refused,
    control_characters_and_impossible_times_from_providers_are_cleaned,
    another_tenants_invitation_cannot_be_named,
    no_tenant_can_make_the_gateway_call_an_internal_address,
    replays_are_recognised_by_what_was_signed,
    hook_addresses_do_not_tell_which_tenants_exist,
);

const PUBLIC_URL: &str = "https://feedback.example.com";
const ZENDESK_SECRET: &str = "zendesk-signing-secret-0123456789";
const TWILIO_TOKEN: &str = "twilio-auth-token-0123456789abcd";
const TWILIO_SID: &str = "AC0123456789abcdef0123456789abcdef";

fn answer(score: i64, phone: &str) -> FeedbackInput {
    FeedbackInput {
        channel: "api".into(),
        provider: "api".into(),
        provider_ref: None,
        contact: ContactRef {
            identities: vec![Identity::Phone(
                channels::model::E164Phone::parse(phone, None).unwrap(),
            )],
            ..ContactRef::default()
        },
        invitation_id: None,
        metric: Metric::Nps,
        score: Some(Score::new(Metric::Nps, score).unwrap()),
        comment: Some("fine".into()),
        language: None,
        tickets: TicketRefs::default(),
        occurred_at: Utc::now(),
        metadata: json!({}),
    }
}

/// Group commit writes waiting answers in one transaction. An answer the database refuses
/// (here: for a tenant that does not exist, which breaks a foreign key on both databases) is
/// queued between good ones from another tenant; every good one must still be stored.
async fn a_poisoned_answer_fails_only_itself(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = server.tenant("acme").await;
    let acme = Tenant {
        id: server.tenant_id("acme").await,
        slug: "acme".into(),
    };
    let ghost = Tenant {
        id: uuid::Uuid::now_v7(),
        slug: "ghost".into(),
    };
    let relay: &Relay = &server.relay;
    let scheduler = Arc::new(feedback_gateway::policy::schedule::Scheduler {
        defaults: feedback_gateway::config::Config::defaults().policy,
        tenant_time_zone: chrono_tz::Europe::Copenhagen,
        routes: relay.routes().into(),
    });
    let ingest = Ingest::start(
        server.db.clone(),
        Arc::from(relay.routes()),
        scheduler,
        Arc::new(tokio::sync::Notify::new()),
        1,
        128,
    );
    let body = br#"{"metric": "nps"}"#;
    let submissions = (0..41).map(|i| {
        let ingest = ingest.clone();
        let tenant = if i == 20 { ghost.clone() } else { acme.clone() };
        async move {
            let received = Received {
                kind: "api.feedback",
                content_type: Some("application/json"),
                body,
            };
            let phone = format!("+45223344{:02}", i);
            ingest
                .submit(tenant.id, received, answer(i % 11, &phone))
                .await
        }
    });
    // Submitted together, they wait in the writer's queue together and meet in one batch.
    let results = futures::future::join_all(submissions).await;
    for (i, result) in results.iter().enumerate() {
        if i == 20 {
            assert!(
                matches!(
                    result,
                    Err(IngestError::Storage {
                        unavailable: false,
                        ..
                    })
                ),
                "the poisoned answer fails: {result:?}"
            );
        } else {
            assert!(
                matches!(result, Ok(Accepted::Created(_))),
                "answer {i}: {result:?}"
            );
        }
    }
    assert_eq!(server.count("feedback").await, 40);
    assert_eq!(server.count("raw_events").await, 40);
    // Every stored answer's event reached the scoring store.
    server.settle().await;
    let (status, scores) = server.get("/v1/scores?metric=nps", &key).await;
    assert_eq!(status, StatusCode::OK, "{scores}");
    assert_eq!(scores["responses"], 40, "{scores}");
    server.stop().await;
}

async fn control_characters_and_impossible_times_from_the_api_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = server.tenant("acme").await;
    let base = json!({"metric": "nps", "score": 9, "contact": {"email": "anna@example.com"}});
    let with = |changes: Value| {
        let mut body = base.clone();
        for (k, v) in changes.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let cases = [
        (with(json!({"comment": "a\u{0}b"})), "comment"),
        (with(json!({"comment": "bell\u{7}"})), "comment"),
        (with(json!({"ticket_ref": "T\u{0}1"})), "ticket_ref"),
        (
            with(json!({"metadata": {"note": "x\u{0}"}})),
            "metadata.note",
        ),
        (with(json!({"metadata": {"k\u{0}": 1}})), "metadata.k"),
        (
            with(json!({"contact": {"external_id": "crm\u{0}7"}})),
            "contact.external_id",
        ),
        (
            with(json!({"occurred_at": "-5000-01-01T00:00:00Z"})),
            "occurred_at",
        ),
        (
            with(json!({"occurred_at": "1999-12-31T23:59:59Z"})),
            "occurred_at",
        ),
        (
            with(json!({"occurred_at": (Utc::now() + chrono::Duration::days(2)).to_rfc3339()})),
            "occurred_at",
        ),
    ];
    for (body, field) in cases {
        let (status, problem) = server.post("/v1/feedback", &key, body.clone()).await;
        assert_problem(status, &problem, 422, "validation-failed");
        assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
    }
    let (status, problem) = server
        .send(
            Method::PUT,
            "/v1/surveys/nps",
            Some(&key),
            Some(json!({"metric": "nps", "question": {"da": "Anbefal\u{0} os?"}, "channels": ["sms"]})),
        )
        .await;
    assert_problem(status, &problem, 422, "validation-failed");
    assert_eq!(problem["errors"][0]["field"], "question.da", "{problem}");
    let (status, problem) = server
        .send(
            Method::PUT,
            "/v1/channels/generic",
            Some(&key),
            Some(json!({"secret": "whsec_\u{0}MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})),
        )
        .await;
    assert_problem(status, &problem, 422, "validation-failed");

    // Reading with such values is refused or bounded, never a database error.
    let (status, problem) = server.get("/v1/feedback?ticket_ref=%00", &key).await;
    assert_problem(status, &problem, 400, "invalid-query");
    let (status, body) = server
        .get("/v1/scores?metric=nps&from=-5000-01-01T00:00:00Z", &key)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server
        .get("/v1/feedback?from=-5000-01-01T00:00:00Z", &key)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    for table in [
        "feedback",
        "raw_events",
        "surveys",
        "channel_configs",
        "contacts",
    ] {
        assert_eq!(server.count(table).await, 0, "{table}");
    }
    // Tab and line breaks are text.
    let stored = server
        .feedback(
            &key,
            with(
                json!({"comment": "line one\r\nline\ttwo", "occurred_at": "2000-01-01T00:00:00Z"}),
            ),
        )
        .await;
    assert_eq!(stored["comment"], "line one\r\nline\ttwo");
    server.stop().await;
}

async fn control_characters_and_impossible_times_from_providers_are_cleaned(backend: Backend) {
    let server =
        TestServer::start_with(backend, |c| c.public_url = PUBLIC_URL.into(), vec![]).await;
    let key = server.tenant("acme").await;
    for (platform, config) in [
        (
            "twilio",
            json!({"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN, "from": "+4578787878"}),
        ),
        ("zendesk", json!({"signing_secret": ZENDESK_SECRET})),
    ] {
        server
            .put_ok(&key, &format!("/v1/channels/{platform}"), config)
            .await;
    }

    // An SMS whose body carries NUL and ESC: the provider will not fix it, so it is cleaned.
    let params: Vec<(String, String)> = [
        ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
        ("AccountSid", TWILIO_SID),
        ("From", "+4522334455"),
        ("To", "+4578787878"),
        ("Body", "hurtig\u{0} hj\u{1b}ælp"),
        ("NumMedia", "0"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let (status, answer) = server
        .post_twilio(PUBLIC_URL, "/hooks/acme/twilio/sms", TWILIO_TOKEN, &params)
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    // A Zendesk rating (the README's trigger template) with NUL in its comment and a time
    // before 2000: the comment is cleaned, the time becomes the receive time.
    let before = Utc::now();
    let body = serde_json::to_vec(&json!({
        "ticket_id": "4711",
        "status": "Solved",
        "requester_email": "anna.jensen@example.com",
        "updated_at": "1970-01-01T00:00:00Z",
        "satisfaction_rating": "Bad, I'm unsatisfied",
        "satisfaction_rating_id": "36312155",
        "satisfaction_comment": "Pakken\u{0} kom aldrig",
    }))
    .unwrap();
    let headers = common::signed_headers("zendesk", ZENDESK_SECRET, &body, "", Utc::now());
    let (status, answer) = server
        .post_raw("/hooks/acme/zendesk", "application/json", &headers, body)
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    let (status, page) = server.get("/v1/feedback", &key).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{page}");
    let comments: Vec<&str> = items.iter().filter_map(|f| f["comment"].as_str()).collect();
    assert!(comments.contains(&"hurtig hjælp"), "{page}");
    assert!(comments.contains(&"Pakken kom aldrig"), "{page}");
    let rating = items.iter().find(|f| f["provider"] == "zendesk").unwrap();
    let occurred: chrono::DateTime<Utc> = rating["occurred_at"].as_str().unwrap().parse().unwrap();
    assert!(
        occurred >= before - chrono::Duration::seconds(1),
        "{rating}"
    );
    assert_eq!(server.count("raw_events").await, 2);
    server.stop().await;
}

async fn another_tenants_invitation_cannot_be_named(backend: Backend) {
    let server = TestServer::start(backend).await;
    let acme = server.tenant("acme").await;
    let other = server.tenant("other").await;
    server.put_ok(&acme, "/v1/surveys/nps", json!({"metric": "nps", "question": {"da": "Vil du anbefale os?"}, "channels": ["sms"]})).await;
    let (status, invitation) = server
        .post(
            "/v1/surveys/nps/send",
            &acme,
            json!({"contact": {"phone": "+4522334455"}}),
        )
        .await;
    assert_eq!(status.as_u16(), 202, "{invitation}");
    let id = invitation["id"].as_str().unwrap();

    let answer = json!({"metric": "nps", "score": 3, "invitation_id": id});
    let (status, problem) = server.post("/v1/feedback", &other, answer.clone()).await;
    assert_problem(status, &problem, 422, "validation-failed");
    assert_eq!(problem["errors"][0]["field"], "invitation_id", "{problem}");
    assert_eq!(server.count("feedback").await, 0);
    let stored = server.feedback(&acme, answer).await;
    assert_eq!(stored["invitation_id"], id);
    server.stop().await;
}

/// A service on the operator's network that must never be reached through the gateway: it
/// counts requests and answers with something a tenant must not see.
async fn internal_service() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().fallback(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async { r#"{"user": {"email": "internal-admin@corp.example"}, "code": 1, "message": "internal secret"}"# }
    });
    (common::serve_on_loopback(app).await, hits)
}

async fn no_tenant_can_make_the_gateway_call_an_internal_address(backend: Backend) {
    use std::sync::atomic::Ordering;
    let (internal, hits) = internal_service().await;
    // The operator pointed both providers at an internal address but did not allow private
    // networks: the guarded client must refuse every call.
    let base = internal.clone();
    let server = TestServer::start_with(
        backend,
        move |c| {
            c.public_url = PUBLIC_URL.into();
            c.outbound.allow_private_networks = false;
            c.providers.set_api_base_url("twilio", base.clone());
            c.providers.set_api_base_url("zendesk", base);
            c.dispatch.poll_interval_ms = 600_000;
        },
        vec![],
    )
    .await;
    let key = server.tenant("acme").await;
    let put = |platform: &'static str, body: Value| {
        let server = &server;
        let key = &key;
        async move {
            server
                .send(
                    Method::PUT,
                    &format!("/v1/channels/{platform}"),
                    Some(key),
                    Some(body),
                )
                .await
        }
    };

    // A tenant cannot name a URL.
    let target = format!("{internal}/internal/path?x=1#");
    let (status, problem) = put(
        "twilio",
        json!({"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN, "from": "+4578787878",
               "api_base_url": target}),
    )
    .await;
    assert_problem(status, &problem, 422, "validation-failed");
    assert_eq!(problem["errors"][0]["field"], "api_base_url", "{problem}");
    let (status, problem) = put(
        "zendesk",
        json!({"signing_secret": ZENDESK_SECRET, "api_base_url": target,
               "api_user": "a@acme.example", "api_token": "zendesk-api-token-0123"}),
    )
    .await;
    assert_problem(status, &problem, 422, "validation-failed");
    assert_eq!(server.count("channel_configs").await, 0);

    // Configured properly, the calls still go only where the guard allows.
    let (status, body) = put(
        "twilio",
        json!({"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN, "from": "+4578787878"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = put(
        "zendesk",
        json!({"signing_secret": ZENDESK_SECRET, "subdomain": "acme",
               "api_user": "a@acme.example", "api_token": "zendesk-api-token-0123"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server
        .put_ok(
            &key,
            "/v1/surveys/csat",
            json!({"metric": "csat", "question": {"da": "Hvor tilfreds er du?"},
                        "channels": ["sms"], "trigger": "ticket_closed",
                        "policy": {"send_delay_minutes": 0, "quiet_hours": null}}),
        )
        .await;

    // The SMS send is refused before any connection; the tenant sees a fixed message.
    let (status, invitation) = server
        .post(
            "/v1/surveys/csat/send",
            &key,
            json!({"contact": {"phone": "+4522334455"}}),
        )
        .await;
    assert_eq!(status.as_u16(), 202, "{invitation}");
    server.dispatcher.run_once().await.unwrap();
    let (_, list) = server.get("/v1/invitations", &key).await;
    let listed = list.to_string();
    assert!(listed.contains("Twilio could not be reached"), "{listed}");
    assert!(
        !listed.contains("internal") && !listed.contains("127.0.0.1"),
        "{listed}"
    );

    // A Zendesk event that needs the Users API: 503 with a fixed text, nothing looked up.
    let body = platform_fixture("zendesk_ticket_status_changed");
    let headers = common::signed_headers("zendesk", ZENDESK_SECRET, &body, "", Utc::now());
    let (status, answer) = server
        .post_raw("/hooks/acme/zendesk", "application/json", &headers, body)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    let text = answer.to_string();
    assert!(
        !text.contains("internal") && !text.contains("127.0.0.1"),
        "{text}"
    );

    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the internal service was never called"
    );
    server.stop().await;
}

const CHATWOOT_SECRET: &str = "chatwoot-webhook-secret-0123456789";
const INTERCOM_SECRET: &str = "intercom-client-secret-0123456789";

/// The same signed content sent again is a replay, whatever unsigned delivery id comes with it.
async fn replays_are_recognised_by_what_was_signed(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = server.tenant("acme").await;
    for (platform, config) in [
        ("chatwoot", json!({"webhook_secret": CHATWOOT_SECRET})),
        ("zendesk", json!({"signing_secret": ZENDESK_SECRET})),
        ("intercom", json!({"client_secret": INTERCOM_SECRET})),
    ] {
        server
            .put_ok(&key, &format!("/v1/channels/{platform}"), config)
            .await;
    }

    // The same signed content under each delivery id: one signing time for all.
    let at = Utc::now();
    let statuses = |platform: &'static str,
                    secret: &'static str,
                    body: Vec<u8>,
                    deliveries: &'static [&'static str]| {
        let server = &server;
        async move {
            let mut statuses = Vec::new();
            for delivery in deliveries {
                let headers = common::signed_headers(platform, secret, &body, delivery, at);
                let (status, answer) = server
                    .post_raw(
                        &format!("/hooks/acme/{platform}"),
                        "application/json",
                        &headers,
                        body.clone(),
                    )
                    .await;
                assert_eq!(status, StatusCode::OK, "{answer}");
                statuses.push(answer["status"].as_str().unwrap().to_owned());
            }
            statuses
        }
    };

    // Chatwoot: signed timestamp and body, unsigned X-Chatwoot-Delivery.
    let body = platform_fixture("chatwoot_conversation_resolved");
    let deliveries = &["delivery-1", "delivery-2", "delivery-3"];
    assert_eq!(
        statuses("chatwoot", CHATWOOT_SECRET, body, deliveries).await,
        ["accepted", "duplicate", "duplicate"]
    );

    // Zendesk trigger: signed timestamp and body, unsigned invocation id.
    let body = platform_fixture("zendesk_trigger_rating_good");
    assert_eq!(
        statuses("zendesk", ZENDESK_SECRET, body, &["1001", "1002"]).await,
        ["accepted", "duplicate"]
    );

    // Intercom: a body without its notification id, signed, sent three times.
    let mut notification: Value =
        serde_json::from_slice(&platform_fixture("intercom_conversation_rating_added")).unwrap();
    notification.as_object_mut().unwrap().remove("id");
    let body = serde_json::to_vec(&notification).unwrap();
    assert_eq!(
        statuses("intercom", INTERCOM_SECRET, body, &["", "", ""]).await,
        ["accepted", "duplicate", "duplicate"]
    );

    assert_eq!(server.count("raw_events").await, 3);
    assert_eq!(
        server.count("feedback").await,
        2,
        "the two ratings, once each"
    );
    server.stop().await;
}

/// Before any signature is checked, an unknown tenant and a tenant without the provider look
/// the same from outside.
async fn hook_addresses_do_not_tell_which_tenants_exist(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.tenant("acme").await;
    for provider_path in ["zendesk", "twilio/sms", "twilio/status"] {
        let content_type = if provider_path.starts_with("twilio") {
            "application/x-www-form-urlencoded"
        } else {
            "application/json"
        };
        let mut answers = Vec::new();
        for tenant in ["acme", "nobody"] {
            let resp = server
                .client
                .post(server.url(&format!("/hooks/{tenant}/{provider_path}")))
                .header("content-type", content_type)
                .body(if content_type == "application/json" {
                    "{}"
                } else {
                    "Body=9"
                })
                .send()
                .await
                .unwrap();
            let status = resp.status();
            let body: Value = resp.json().await.unwrap();
            answers.push((status, body["type"].clone(), body["detail"].clone()));
        }
        assert_eq!(answers[0].0, StatusCode::NOT_FOUND, "{provider_path}");
        assert_eq!(answers[0], answers[1], "{provider_path}");
    }
    server.stop().await;
}
