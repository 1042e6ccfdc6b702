//! Forwarding to the operator's NATS JetStream (`[[sinks]]`, kind `nats`): a real NATS server
//! (FEEDBACK_TEST_NATS_URL, default nats://127.0.0.1:4222, JetStream on), a stream and subject
//! prefix of each test's own. Every message is checked against the versioned JSON Schemas in
//! `docs/events/v1/`.

mod common;

use std::time::Duration;

use common::schemas::{assert_valid, validator};
use common::{Backend, TestServer};
use feedback_gateway::config::{SinkConfig, SinkKind};
use feedback_gateway::forward::Sink;
use serde_json::{json, Value};

#[test]
fn documented_examples_match_their_schemas() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/events/v1/examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let example: Value =
            serde_json::from_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
        assert_valid(&example);
        seen += 1;
    }
    assert!(seen >= 2);
    // The schemas refuse what they should: a missing field, a stray one, a wrong version.
    let mut broken: Value = serde_json::from_str(include_str!(
        "../docs/events/v1/examples/feedback.created.json"
    ))
    .unwrap();
    let created = validator("feedback.created");
    assert!(created.is_valid(&broken));
    broken["version"] = json!(2);
    assert!(!created.is_valid(&broken));
    broken["version"] = json!(1);
    broken["data"]["phone"] = json!("+4522334455");
    assert!(!created.is_valid(&broken));
    broken["data"].as_object_mut().unwrap().remove("phone");
    broken["data"].as_object_mut().unwrap().remove("metric");
    assert!(!created.is_valid(&broken));
}

on_both_backends!(
    events_reach_the_stream_once_in_the_versioned_schema,
    an_unreachable_nats_server_delays_events_and_loses_none,
    a_sink_is_queued_only_the_event_types_it_takes,
    the_survey_lifecycle_and_opt_outs_reach_the_stream,
);

fn nats_url() -> String {
    std::env::var("FEEDBACK_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// A sink of the test's own: a stream and subject prefix no other test uses.
fn sink_config(url: &str, include_personal_data: bool) -> SinkConfig {
    let unique = uuid::Uuid::new_v4().simple().to_string();
    SinkConfig {
        name: "stream".into(),
        kind: SinkKind::Nats,
        url: url.into(),
        credentials_file: String::new(),
        stream: format!("FG_TEST_{unique}"),
        subject_prefix: format!("fgtest{}", &unique[..12]),
        event_types: Vec::new(),
        include_personal_data,
        max_age_days: 1,
        duplicate_window_seconds: 900,
    }
}

/// The stream's messages, as (subject, Nats-Msg-Id, body).
async fn messages(url: &str, stream: &str) -> Vec<(String, String, Value)> {
    let client = async_nats::connect(url).await.unwrap();
    let jetstream = async_nats::jetstream::new(client);
    let mut stream = jetstream.get_stream(stream).await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut all = Vec::new();
    for sequence in 1..=last {
        let message = stream.get_raw_message(sequence).await.unwrap();
        let id = message
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .map(|v| v.to_string())
            .unwrap_or_default();
        all.push((
            message.subject.to_string(),
            id,
            serde_json::from_slice(&message.payload).unwrap(),
        ));
    }
    all
}

async fn delete_stream(url: &str, stream: &str) {
    let client = async_nats::connect(url).await.unwrap();
    let _ = async_nats::jetstream::new(client)
        .delete_stream(stream)
        .await;
}

async fn events_reach_the_stream_once_in_the_versioned_schema(backend: Backend) {
    let url = nats_url();
    let cfg = sink_config(&url, false);
    let sink_cfg = cfg.clone();
    let server = TestServer::start_with(backend, |c| c.sinks = vec![sink_cfg], vec![]).await;
    let key = server.tenant("acme").await;
    let record = server
        .feedback(
            &key,
            json!({"metric": "nps", "score": 3, "comment": "Ingen ringede tilbage",
                   "channel": "sms", "contact": {"phone": "22 33 44 55"},
                   "ticket_ref": "T-1", "agent_ref": "agent-7", "metadata": {"kilde": "test"}}),
        )
        .await;
    server.settle().await;

    // The answer, and the alert a detractor's answer opens (in the same transaction).
    let got = messages(&url, &cfg.stream).await;
    assert_eq!(got.len(), 2, "{got:?}");
    let (subject, msg_id, event) = &got[0];
    assert_eq!(
        subject,
        &format!("{}.acme.feedback.created", cfg.subject_prefix)
    );
    assert_eq!(msg_id, event["id"].as_str().unwrap());
    assert_eq!(event["type"], "feedback.created");
    assert_eq!(event["version"], 1);
    assert_eq!(
        event["tenant_id"],
        server.tenant_id("acme").await.to_string()
    );
    assert_eq!(event["data"]["id"], record["id"]);
    assert_eq!(event["data"]["score"], 3);
    assert_eq!(event["data"]["contact_id"], record["contact_id"]);
    // Not configured for personal data: the contact is known by its id only.
    assert!(event["data"].get("comment").is_none(), "{event}");
    assert!(event["data"].get("metadata").is_none(), "{event}");
    assert_valid(event);
    let (subject, _, alert) = &got[1];
    assert_eq!(
        subject,
        &format!("{}.acme.alert.opened", cfg.subject_prefix)
    );
    assert_eq!(alert["data"]["answer"]["feedback_id"], record["id"]);
    assert_eq!(alert["data"]["severity"], "urgent");
    assert!(alert["data"].get("comment").is_none(), "{alert}");
    assert_valid(alert);

    // A redelivery (the acknowledgement lost, the relay retrying) is the same message id:
    // JetStream keeps one.
    let stored: feedback_gateway::events::Event = serde_json::from_value(json!({
        "id": event["id"], "type": "feedback.created", "tenant_id": event["tenant_id"],
        "aggregate_id": record["id"], "created_at": event["occurred_at"], "data": record,
    }))
    .unwrap();
    let again = feedback_gateway::forward::nats::NatsSink::new(cfg.clone(), server.db.clone());
    again.deliver(&stored).await.unwrap();
    assert_eq!(messages(&url, &cfg.stream).await.len(), 2);

    // A sink configured for personal data gets the comment, and still matches the schema.
    let personal = sink_config(&url, true);
    let with_comment =
        feedback_gateway::forward::nats::NatsSink::new(personal.clone(), server.db.clone());
    with_comment.deliver(&stored).await.unwrap();
    let got = messages(&url, &personal.stream).await;
    assert_eq!(got[0].2["data"]["comment"], "Ingen ringede tilbage");
    assert_valid(&got[0].2);

    // A changed record is its own event, with its own id.
    let mut updated = stored.clone();
    updated.id = uuid::Uuid::now_v7();
    updated.event_type = "feedback.updated".into();
    again.deliver(&updated).await.unwrap();
    let got = messages(&url, &cfg.stream).await;
    assert_eq!(got.len(), 3);
    assert_eq!(
        got[2].0,
        format!("{}.acme.feedback.updated", cfg.subject_prefix)
    );
    assert_valid(&got[2].2);
    delete_stream(&url, &cfg.stream).await;
    delete_stream(&url, &personal.stream).await;
    server.stop().await;
}

/// Forwards TCP from `listener` to NATS, once NATS should be reachable.
async fn forward_to_nats(listener: tokio::net::TcpListener, nats: String) {
    let target = nats.trim_start_matches("nats://").to_owned();
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            return;
        };
        let target = target.clone();
        tokio::spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

async fn an_unreachable_nats_server_delays_events_and_loses_none(backend: Backend) {
    // A port nothing listens on yet.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let cfg = sink_config(&format!("nats://127.0.0.1:{port}"), false);
    let sink_cfg = cfg.clone();
    let server = TestServer::start_with(
        backend,
        |c| {
            c.sinks = vec![sink_cfg];
            c.outbox.backoff_base_ms = 10;
            c.outbox.backoff_max_ms = 20;
        },
        vec![],
    )
    .await;
    let key = server.tenant("acme").await;
    server
        .feedback(
            &key,
            json!({"metric": "csat", "score": 5, "channel": "email"}),
        )
        .await;
    // The scoring store takes its copy; NATS's waits, with the failure noted.
    let mut waiting = 0;
    for _ in 0..200 {
        server.drain().await;
        waiting = server
            .count_where("SELECT COUNT(*) AS n FROM outbox WHERE sink = 'stream' AND attempts >= 1")
            .await;
        if waiting == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(waiting, 1);
    assert_eq!(server.count("dead_letters").await, 0);

    // NATS becomes reachable on that port: the event goes out, once.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(forward_to_nats(listener, nats_url()));
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.settle().await;
    let got = messages(&nats_url(), &cfg.stream).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].2["data"]["score"], 5);
    assert_valid(&got[0].2);
    delete_stream(&nats_url(), &cfg.stream).await;
    server.stop().await;
}

async fn a_sink_is_queued_only_the_event_types_it_takes(backend: Backend) {
    let mut cfg = sink_config(&nats_url(), false);
    cfg.event_types = vec!["feedback.updated".into()];
    let sink_cfg = cfg.clone();
    let server = TestServer::start_with(backend, |c| c.sinks = vec![sink_cfg], vec![]).await;
    let key = server.tenant("acme").await;
    server
        .feedback(
            &key,
            json!({"metric": "nps", "score": 10, "channel": "api"}),
        )
        .await;
    // The scoring store had its row (the server's own relay may have taken it already); the
    // sink never got one: it was never called, so it never even made its stream.
    server.settle().await;
    assert_eq!(server.count("score_facts").await, 1);
    let client = async_nats::connect(nats_url()).await.unwrap();
    assert!(
        async_nats::jetstream::new(client)
            .get_stream(&cfg.stream)
            .await
            .is_err(),
        "the sink was handed an event of a type it does not take"
    );
    server.stop().await;
}

/// Every `survey.*` and `contact.*` event, from the transitions that emit them, in the
/// versioned schema and without the address the survey went to.
async fn the_survey_lifecycle_and_opt_outs_reach_the_stream(backend: Backend) {
    use feedback_gateway::lifecycle;
    use feedback_gateway::store::entities::invitation;
    use sea_orm::EntityTrait;

    let url = nats_url();
    let cfg = sink_config(&url, false);
    let sink_cfg = cfg.clone();
    let mail_dir = tempfile::tempdir().unwrap();
    let file_dir = mail_dir.path().to_str().unwrap().to_owned();
    let server = TestServer::start_with(
        backend,
        |c| {
            c.sinks = vec![sink_cfg];
            c.email.file_dir = file_dir;
            c.dispatch.poll_interval_ms = 600_000;
        },
        vec![],
    )
    .await;
    let key = server.tenant("acme").await;
    let (status, body) = server
        .send(
            reqwest::Method::PUT,
            "/v1/surveys/support-csat",
            Some(&key),
            Some(json!({
                "metric": "csat", "question": {"da": "Hvor tilfreds er du?"},
                "channels": ["email"],
                "policy": {"send_delay_minutes": 0, "quiet_hours": null,
                           "rest_period_days": 30, "max_per_window": 1000,
                           "one_per_ticket": false}
            })),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let send = |email: &'static str, ticket: &'static str| {
        let (server, key) = (&server, &key);
        async move {
            let (status, invitation) = server
                .post(
                    "/v1/surveys/support-csat/send",
                    key,
                    json!({"contact": {"email": email}, "ticket_ref": ticket}),
                )
                .await;
            assert!(status.is_success(), "{invitation}");
            invitation
        }
    };
    let first = send("kunde-a@example.dk", "48213").await;
    // Asked within the rest period: suppressed.
    let again = send("kunde-a@example.dk", "48214").await;
    assert_eq!(again["status"], "suppressed", "{again}");
    let second = send("kunde-b@example.dk", "48215").await;
    let third = send("kunde-c@example.dk", "48216").await;
    assert_eq!(third["status"], "scheduled", "{third}");
    let model = |id: &Value| {
        let id: uuid::Uuid = id.as_str().unwrap().parse().unwrap();
        let db = server.db.clone();
        async move {
            invitation::Entity::find_by_id(id)
                .one(&db.write)
                .await
                .unwrap()
                .unwrap()
        }
    };
    // Sent (as .eml files: no SMTP server here), paced a few per second.
    for _ in 0..100 {
        server.dispatcher.run_once().await.unwrap();
        let mut all_sent = true;
        for inv in [&first, &second, &third] {
            all_sent &= model(&inv["id"]).await.status == "sent";
        }
        if all_sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let db = &server.db;
    lifecycle::record_delivery(
        &db.write,
        db.routes(),
        &model(&second["id"]).await,
        channels::model::DeliveryState::Delivered,
        None,
    )
    .await
    .unwrap();
    lifecycle::record_delivery(
        &db.write,
        db.routes(),
        &model(&third["id"]).await,
        channels::model::DeliveryState::Undelivered,
        Some("undelivered 550 kunde-c@example.dk"),
    )
    .await
    .unwrap();
    let month_later = feedback_gateway::store::now() + chrono::Duration::days(30);
    assert_eq!(lifecycle::expire_open(db, month_later).await.unwrap(), 2);
    let contact = first["contact_id"].as_str().unwrap();
    for (path, body) in [
        ("opt-out", json!({"channel": "email"})),
        ("opt-in", json!({"channel": "email"})),
    ] {
        let (status, answer) = server
            .post(&format!("/v1/contacts/{contact}/{path}"), &key, body)
            .await;
        assert!(status.is_success(), "{answer}");
    }
    server.settle().await;

    let got = messages(&url, &cfg.stream).await;
    let types: Vec<&str> = got
        .iter()
        .map(|(_, _, e)| e["type"].as_str().unwrap())
        .collect();
    for wanted in [
        "survey.scheduled",
        "survey.suppressed",
        "survey.sent",
        "survey.delivered",
        "survey.failed",
        "survey.expired",
        "contact.opted_out",
        "contact.opted_in",
    ] {
        assert!(types.contains(&wanted), "{wanted} in {types:?}");
    }
    assert_eq!(
        types.iter().filter(|t| **t == "survey.scheduled").count(),
        3
    );
    assert_eq!(types.iter().filter(|t| **t == "survey.sent").count(), 3);
    for (subject, msg_id, event) in &got {
        assert_valid(event);
        assert_eq!(msg_id, event["id"].as_str().unwrap());
        assert_eq!(
            subject,
            &format!(
                "{}.acme.{}",
                cfg.subject_prefix,
                event["type"].as_str().unwrap()
            )
        );
        // The addresses the surveys went to are personal data: not for this sink.
        assert!(!event.to_string().contains("@example.dk"), "{event}");
    }
    let suppressed = &got
        .iter()
        .find(|(_, _, e)| e["type"] == "survey.suppressed")
        .unwrap()
        .2;
    assert_eq!(suppressed["data"]["invitation_id"], again["id"]);
    assert_eq!(suppressed["data"]["ticket_ref"], "48214");
    assert!(suppressed["data"]["rule"].is_string(), "{suppressed}");
    let failed = &got
        .iter()
        .find(|(_, _, e)| e["type"] == "survey.failed")
        .unwrap()
        .2;
    assert_eq!(failed["data"]["invitation_id"], third["id"]);
    assert_eq!(failed["data"]["reason"], "undelivered");
    let opted = &got
        .iter()
        .find(|(_, _, e)| e["type"] == "contact.opted_out")
        .unwrap()
        .2;
    assert_eq!(
        opted["data"],
        json!({"contact_id": contact, "channel": "email"})
    );
    delete_stream(&url, &cfg.stream).await;
    server.stop().await;
}
