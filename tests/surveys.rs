//! Surveys, the manual trigger, fatigue decisions, the decision log and opt-outs, over HTTP.

mod common;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use common::{assert_problem, Backend, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_backends!(
    surveys_are_validated_and_stored,
    a_trigger_is_scheduled_after_the_delay,
    fatigue_rules_suppress_with_a_reason,
    twenty_simultaneous_triggers_schedule_one,
    a_group_of_triggers_is_decided_as_one_by_one,
    opt_out_is_absolute_and_cancels_scheduled,
    tenants_do_not_share_surveys_or_contacts,
);

const CSAT_DA: &str = "Hvor tilfreds er du med den service, du modtog i dag? Svar 1-5.";

fn csat_survey(policy: Value) -> Value {
    json!({
        "metric": "csat",
        "question": {"da": CSAT_DA, "en": "How satisfied are you with the service you received today? Answer 1-5."},
        "default_language": "da",
        "channels": ["sms", "email"],
        "trigger": "ticket_closed",
        "policy": policy,
    })
}

async fn put_survey(
    server: &TestServer,
    key: &str,
    survey: &str,
    body: Value,
) -> (StatusCode, Value) {
    server
        .send(
            Method::PUT,
            &format!("/v1/surveys/{survey}"),
            Some(key),
            Some(body),
        )
        .await
}

async fn send(server: &TestServer, key: &str, survey: &str, body: Value) -> (StatusCode, Value) {
    server
        .post(&format!("/v1/surveys/{survey}/send"), key, body)
        .await
}

fn at(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

async fn surveys_are_validated_and_stored(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = server.tenant("acme").await;
    let (status, body) = put_survey(
        &server,
        &key,
        "support-csat",
        csat_survey(json!({"rest_period_days": 14})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["key"], "support-csat");
    assert_eq!(body["question"]["da"], CSAT_DA);
    assert_eq!(body["policy"], json!({"rest_period_days": 14}));
    let (status, again) = put_survey(&server, &key, "support-csat", csat_survey(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "a second PUT replaces");
    assert_eq!(again["id"], body["id"]);
    assert_eq!(again["policy"], json!({}));
    let (_, fetched) = server.get("/v1/surveys/support-csat", &key).await;
    assert_eq!(fetched, again);
    let (_, list) = server.get("/v1/surveys", &key).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    let bad: Vec<(Value, &str)> = vec![
        (
            json!({"metric": "stars", "question": {"da": "?"}, "channels": ["sms"]}),
            "metric",
        ),
        (
            json!({"metric": "text", "question": {"da": "?"}, "channels": ["sms"]}),
            "metric",
        ),
        (
            json!({"metric": "nps", "question": {}, "channels": ["sms"]}),
            "question",
        ),
        (
            json!({"metric": "nps", "question": {"da": "  "}, "channels": ["sms"]}),
            "question.da",
        ),
        (
            json!({"metric": "nps", "question": {"danish": "?"}, "channels": ["sms"]}),
            "question.danish",
        ),
        (
            json!({"metric": "nps", "question": {"da": "?"}, "channels": ["fax"]}),
            "channels[0]",
        ),
        (
            json!({"metric": "nps", "question": {"da": "?"}, "channels": []}),
            "channels",
        ),
        (
            json!({"metric": "nps", "question": {"da": "?"}, "channels": ["sms"], "default_language": "en"}),
            "default_language",
        ),
        (
            json!({"metric": "nps", "question": {"da": "?"}, "channels": ["sms"], "trigger": "sometimes"}),
            "trigger",
        ),
        (
            json!({"metric": "nps", "question": {"da": "?"}, "channels": ["sms"], "policy": {"rest_period_days": -1}}),
            "policy.rest_period_days",
        ),
        (
            json!({"metric": "nps", "question": {"da": "?"}, "channels": ["sms"], "policy": {"send_delay_minutes": -15}}),
            "policy.send_delay_minutes",
        ),
        (
            json!({"metric": "nps", "question": {"da": "?"}, "channels": ["sms"], "policy": {"sample_rate": 2}}),
            "policy.sample_rate",
        ),
        (
            json!({"metric": "nps", "question": {"da": "?"}, "channels": ["sms"], "policy": {"quiet_hours": {"start": "9pm", "end": "08:00"}}}),
            "policy.quiet_hours",
        ),
        (
            json!({"metric": "nps", "question": {"da": "?"}, "channels": ["sms"], "policy": {"sleep": true}}),
            "policy",
        ),
    ];
    for (body, field) in bad {
        let (status, problem) = put_survey(&server, &key, "broken", body.clone()).await;
        assert_problem(status, &problem, 422, "validation-failed");
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(
            fields.iter().any(|f| f.starts_with(field)),
            "{body}: {problem}"
        );
    }
    let (status, problem) = put_survey(&server, &key, "Bad Key", csat_survey(json!({}))).await;
    assert_problem(status, &problem, 422, "validation-failed");
    let (status, problem) = server.get("/v1/surveys/broken", &key).await;
    assert_problem(status, &problem, 404, "not-found");
    assert_eq!(
        server.count("surveys").await,
        1,
        "nothing stored for bad input"
    );
    server.stop().await;
}

async fn a_trigger_is_scheduled_after_the_delay(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = server.tenant("acme").await;
    // Without quiet hours the send time does not depend on when the test runs.
    put_survey(
        &server,
        &key,
        "support-csat",
        csat_survey(json!({"quiet_hours": null})),
    )
    .await;
    let before = Utc::now();
    let (status, inv) = send(
        &server,
        &key,
        "support-csat",
        json!({"contact": {"phone": "22 33 44 55"}, "ticket_ref": "T-1", "agent_ref": "agent-7", "team_ref": "support-dk"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{inv}");
    assert_eq!(inv["status"], "scheduled");
    assert_eq!(inv["channel"], "sms");
    assert_eq!(inv["reason"], Value::Null);
    assert_eq!(inv["language"], "da");
    assert_eq!(inv["ticket_ref"], "T-1");
    let send_at = at(&inv["send_at"]);
    let delay = send_at - before;
    assert!(
        delay >= chrono::Duration::minutes(15) && delay < chrono::Duration::minutes(16),
        "{delay}"
    );
    assert_eq!(
        at(&inv["expires_at"]) - send_at,
        chrono::Duration::hours(72),
        "sms reply window"
    );

    // The contact was created with the normalized number.
    let contact_id = inv["contact_id"].as_str().unwrap();
    let (_, contact) = server
        .get(&format!("/v1/contacts/{contact_id}"), &key)
        .await;
    assert_eq!(contact["identities"][0]["value"], "+4522334455");
    let (_, log) = server
        .get(&format!("/v1/contacts/{contact_id}/decisions"), &key)
        .await;
    assert_eq!(log["items"][0]["outcome"], "scheduled");
    assert_eq!(log["items"][0]["invitation_id"], inv["id"]);
    assert_eq!(log["items"][0]["inputs"]["policy"]["rest_period_days"], 7);

    // E-mail only contact, English: e-mail channel, 7-day reply window.
    let (_, inv) = send(
        &server,
        &key,
        "support-csat",
        json!({"contact": {"email": "bo@example.com"}, "ticket_ref": "T-2", "language": "en"}),
    )
    .await;
    assert_eq!(inv["channel"], "email");
    assert_eq!(inv["language"], "en");
    assert_eq!(
        at(&inv["expires_at"]) - at(&inv["send_at"]),
        chrono::Duration::hours(168)
    );

    // Bad input: a 422 naming the field, a 404 for an unknown survey; nothing written.
    let invitations = server.count("invitations").await;
    for (path, body, status, field) in [
        (
            "support-csat",
            json!({"contact": {"phone": "12"}}),
            422,
            Some("contact.phone"),
        ),
        (
            "support-csat",
            json!({"contact": {"email": "not-an-address"}}),
            422,
            Some("contact.email"),
        ),
        (
            "support-csat",
            json!({"contact": {"email": "a@example.com", "time_zone": "Mars/Olympus"}}),
            422,
            Some("contact.time_zone"),
        ),
        ("support-csat", json!({"contact": {}}), 422, Some("contact")),
        (
            "support-csat",
            json!({"contact": {"id": "01a20ba2-3c08-719c-9458-9705aef7ed17"}}),
            422,
            Some("contact.id"),
        ),
        (
            "support-csat",
            json!({"contact": {"email": "a@example.com"}, "language": "Danish"}),
            422,
            Some("language"),
        ),
        (
            "no-such-survey",
            json!({"contact": {"email": "a@example.com"}}),
            404,
            None,
        ),
    ] {
        let (got, problem) = send(&server, &key, path, body.clone()).await;
        assert_eq!(got.as_u16(), status, "{body}: {problem}");
        assert_eq!(problem["status"], status);
        if let Some(field) = field {
            assert_eq!(problem["errors"][0]["field"], field, "{problem}");
        }
    }
    assert_eq!(server.count("invitations").await, invitations);
    server.stop().await;
}

async fn fatigue_rules_suppress_with_a_reason(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = server.tenant("acme").await;
    put_survey(
        &server,
        &key,
        "support-csat",
        csat_survey(json!({"quiet_hours": null, "rest_period_days": 0})),
    )
    .await;
    put_survey(
        &server,
        &key,
        "sms-only",
        json!({"metric": "ces", "question": {"en": "How easy was it?"}, "channels": ["sms"]}),
    )
    .await;
    let anna = json!({"phone": "+4522334455"});

    let (_, first) = send(
        &server,
        &key,
        "support-csat",
        json!({"contact": anna, "ticket_ref": "T-1"}),
    )
    .await;
    assert_eq!(first["status"], "scheduled");
    // Closed, re-opened and closed again: one survey per ticket.
    let (status, again) = send(
        &server,
        &key,
        "support-csat",
        json!({"contact": anna, "ticket_ref": "T-1"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        (again["status"].as_str(), again["reason"].as_str()),
        (Some("suppressed"), Some("one_per_ticket"))
    );
    assert!(again["detail"].as_str().unwrap().contains("T-1"));
    // The cap: 3 invitations in 30 days.
    for t in ["T-2", "T-3"] {
        let (_, inv) = send(
            &server,
            &key,
            "support-csat",
            json!({"contact": anna, "ticket_ref": t}),
        )
        .await;
        assert_eq!(inv["status"], "scheduled", "{inv}");
    }
    let (_, capped) = send(
        &server,
        &key,
        "support-csat",
        json!({"contact": anna, "ticket_ref": "T-4"}),
    )
    .await;
    assert_eq!(capped["reason"], "max_per_window");
    // No address for the survey's only channel: suppressed, not an error.
    let (status, none) = send(
        &server,
        &key,
        "sms-only",
        json!({"contact": {"email": "bo@example.com"}}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        (none["status"].as_str(), none["reason"].as_str()),
        (Some("suppressed"), Some("no_channel"))
    );
    // A survey that turns the ticket rule off may ask about one ticket twice.
    put_survey(
        &server,
        &key,
        "per-contact",
        csat_survey(json!({"quiet_hours": null, "rest_period_days": 0, "one_per_ticket": false})),
    )
    .await;
    for _ in 0..2 {
        let (status, inv) = send(
            &server,
            &key,
            "per-contact",
            json!({"contact": {"phone": "+4540506070"}, "ticket_ref": "T-9"}),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{inv}");
        assert_eq!(inv["status"], "scheduled", "{inv}");
    }

    // "Why was this customer not asked?"
    let contact = first["contact_id"].as_str().unwrap();
    let (_, log) = server
        .get(&format!("/v1/contacts/{contact}/decisions"), &key)
        .await;
    let rules: Vec<Value> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["rule"].clone())
        .collect();
    assert_eq!(
        rules,
        vec![
            json!("max_per_window"),
            json!(null),
            json!(null),
            json!("one_per_ticket"),
            json!(null)
        ]
    );
    let (_, suppressed) = server
        .get(
            &format!("/v1/invitations?status=suppressed&contact={contact}&survey=support-csat"),
            &key,
        )
        .await;
    assert_eq!(suppressed["items"].as_array().unwrap().len(), 2);
    let (_, all) = server
        .get(&format!("/v1/invitations?contact={contact}&limit=2"), &key)
        .await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    let cursor = all["next_cursor"].as_str().unwrap();
    let (_, rest) = server
        .get(
            &format!("/v1/invitations?contact={contact}&limit=10&cursor={cursor}"),
            &key,
        )
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 3);
    let (status, problem) = server.get("/v1/invitations?status=lost", &key).await;
    assert_problem(status, &problem, 400, "invalid-query");
    server.stop().await;
}

async fn twenty_simultaneous_triggers_schedule_one(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = server.tenant("acme").await;
    put_survey(&server, &key, "support-csat", csat_survey(json!({}))).await;
    // On PostgreSQL half the requests go to a second gateway process on the same database.
    let replica = if backend == Backend::Postgres {
        Some(server.replica().await)
    } else {
        None
    };
    let bases: Vec<String> = match &replica {
        Some((base, _)) => vec![server.base.clone(), base.clone()],
        None => vec![server.base.clone()],
    };
    // A known contact (from an earlier answer), twenty tickets closed at once. (For a contact
    // not seen before, creating its identity already orders the requests; here only the
    // scheduling lock does.)
    server
        .feedback(
            &key,
            json!({"metric": "nps", "score": 9, "contact": {"phone": "+4522334455"}}),
        )
        .await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let url = format!("{}/v1/surveys/support-csat/send", bases[i % bases.len()]);
        let req = server.client.post(url).bearer_auth(&key).json(&json!({
            "contact": {"phone": "+4522334455"}, "ticket_ref": format!("T-{i}")
        }));
        tasks.push(tokio::spawn(async move {
            let resp = req.send().await.unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }));
    }
    let mut outcomes: HashMap<String, usize> = HashMap::new();
    let mut contacts = std::collections::HashSet::new();
    for t in tasks {
        let (status, inv) = t.await.unwrap();
        assert_eq!(status, StatusCode::ACCEPTED, "{inv}");
        *outcomes
            .entry(format!(
                "{}/{}",
                inv["status"].as_str().unwrap(),
                inv["reason"].as_str().unwrap_or("-")
            ))
            .or_default() += 1;
        contacts.insert(inv["contact_id"].as_str().unwrap().to_owned());
    }
    let scheduled: usize = outcomes
        .iter()
        .filter(|(k, _)| k.starts_with("scheduled"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(scheduled, 1, "{outcomes:?}");
    assert_eq!(
        outcomes.get("suppressed/rest_period"),
        Some(&19),
        "{outcomes:?}"
    );
    assert_eq!(contacts.len(), 1, "one contact for one phone number");
    assert_eq!(server.count("contacts").await, 1);
    assert_eq!(server.count("policy_decisions").await, 20);
    if let Some((_, stop)) = replica {
        stop.cancel();
    }
    server.stop().await;
}

/// A group of triggers (as the writer takes them when they arrive together) is decided as the
/// same triggers one by one: each sees what the ones before it decided.
async fn a_group_of_triggers_is_decided_as_one_by_one(backend: Backend) {
    use feedback_gateway::policy::schedule::{ScheduleError, Scheduler, SendRequest, Trigger};
    use sea_orm::TransactionTrait;

    let server = TestServer::start(backend).await;
    let scheduler = Scheduler {
        defaults: feedback_gateway::config::Config::defaults().policy,
        tenant_time_zone: chrono_tz::Europe::Copenhagen,
        routes: server.relay.routes().into(),
    };
    use channels::model::{ContactRef, E164Phone, Email, Identity};
    let ask = |phone: &str, email: Option<&str>, ticket: &str| {
        let mut identities = vec![Identity::Phone(E164Phone::parse(phone, None).unwrap())];
        identities.extend(email.map(|e| Identity::Email(Email::parse(e).unwrap())));
        SendRequest {
            contact: ContactRef {
                identities,
                ..ContactRef::default()
            },
            ticket_ref: Some(ticket.to_owned()),
            ..SendRequest::default()
        }
    };
    let stranger = uuid::Uuid::now_v7();
    let requests = [
        ask("+4522334401", None, "T-1"),
        // The same contact for another ticket: within the rest period of the first.
        ask("+4522334401", None, "T-2"),
        // Another contact for the first ticket: that ticket was surveyed.
        ask("+4522334402", None, "T-1"),
        SendRequest {
            contact: ContactRef {
                id: Some(stranger),
                ..ContactRef::default()
            },
            ..SendRequest::default()
        },
        ask("+4522334403", None, "T-3"),
        // The same contact found by its phone, an e-mail address added.
        ask("+4522334403", Some("kunde@example.dk"), "T-3"),
    ];
    let mut decided = Vec::new();
    for (slug, together) in [("grouped", true), ("alone", false)] {
        let key = server.tenant(slug).await;
        // No quiet hours: the verdicts must not depend on the time of day the test runs.
        put_survey(
            &server,
            &key,
            "support-csat",
            csat_survey(json!({"quiet_hours": null})),
        )
        .await;
        let tenant_id = server.tenant_id(slug).await;
        let surveys = feedback_gateway::store::surveys::list(&server.db, tenant_id)
            .await
            .unwrap();
        let triggers: Vec<Trigger> = requests
            .iter()
            .map(|request| Trigger {
                tenant_id,
                survey: &surveys[0],
                request,
            })
            .collect();
        let mut results = Vec::new();
        if together {
            let txn = server.db.write.begin().await.unwrap();
            results = scheduler.schedule_all_in(&txn, &triggers).await.unwrap();
            txn.commit().await.unwrap();
        } else {
            for trigger in triggers {
                let txn = server.db.write.begin().await.unwrap();
                let mut one = scheduler.schedule_all_in(&txn, &[trigger]).await.unwrap();
                txn.commit().await.unwrap();
                results.append(&mut one);
            }
        }
        let outcomes: Vec<String> = results
            .into_iter()
            .map(|r| match r {
                Ok(inv) => format!("{}/{}", inv.status, inv.reason.unwrap_or_default()),
                Err(ScheduleError::UnknownContact(id)) => {
                    assert_eq!(id, stranger);
                    "unknown contact".to_owned()
                }
                Err(e) => panic!("{e}"),
            })
            .collect();
        // What this tenant's triggers added (the first tenant's rows are counted before).
        let before = decided
            .last()
            .map_or((0, 0, 0), |d: &(_, i64, i64, i64)| (d.1, d.2, d.3));
        decided.push((
            outcomes,
            server.count("contacts").await - before.0,
            server.count("contact_identities").await - before.1,
            server.count("policy_decisions").await - before.2,
        ));
    }
    assert_eq!(
        decided[0].0,
        [
            "scheduled/",
            "suppressed/rest_period",
            "suppressed/one_per_ticket",
            "unknown contact",
            "scheduled/",
            "suppressed/one_per_ticket",
        ]
    );
    assert_eq!(decided[0], decided[1]);
    // Three contacts with four addresses (the e-mail address the last request added belongs to
    // the third); five decisions logged, none for the contact that does not exist.
    assert_eq!(decided[0].1, 3);
    assert_eq!(decided[0].2, 4);
    assert_eq!(decided[0].3, 5);
    server.stop().await;
}

async fn opt_out_is_absolute_and_cancels_scheduled(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = server.tenant("acme").await;
    put_survey(
        &server,
        &key,
        "support-csat",
        csat_survey(json!({"quiet_hours": null, "rest_period_days": 0, "max_per_window": 100})),
    )
    .await;
    let both = json!({"phone": "+4522334455", "email": "anna@example.com"});
    let (_, inv) = send(
        &server,
        &key,
        "support-csat",
        json!({"contact": both, "ticket_ref": "T-1"}),
    )
    .await;
    assert_eq!(inv["channel"], "sms");
    let contact = inv["contact_id"].as_str().unwrap().to_owned();

    let (status, c) = server
        .post(
            &format!("/v1/contacts/{contact}/opt-out"),
            &key,
            json!({"channel": "sms"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["opt_outs"], json!(["sms"]));
    let (_, cancelled) = server
        .get(
            &format!("/v1/invitations?contact={contact}&status=cancelled"),
            &key,
        )
        .await;
    assert_eq!(
        cancelled["items"][0]["id"], inv["id"],
        "the scheduled sms was cancelled"
    );
    // SMS opted out: e-mail instead.
    let (_, inv) = send(
        &server,
        &key,
        "support-csat",
        json!({"contact": both, "ticket_ref": "T-2"}),
    )
    .await;
    assert_eq!(
        (inv["status"].as_str(), inv["channel"].as_str()),
        (Some("scheduled"), Some("email"))
    );
    // Everything opted out: nothing, whatever the other rules say.
    server
        .post(
            &format!("/v1/contacts/{contact}/opt-out"),
            &key,
            json!({"channel": "all"}),
        )
        .await;
    let (_, inv) = send(
        &server,
        &key,
        "support-csat",
        json!({"contact": {"id": contact}, "ticket_ref": "T-3"}),
    )
    .await;
    assert_eq!(
        (inv["status"].as_str(), inv["reason"].as_str()),
        (Some("suppressed"), Some("opt_out"))
    );
    let (_, c) = server
        .post(
            &format!("/v1/contacts/{contact}/opt-in"),
            &key,
            json!({"channel": "all"}),
        )
        .await;
    assert_eq!(c["opt_outs"], json!([]));
    let (_, inv) = send(
        &server,
        &key,
        "support-csat",
        json!({"contact": {"id": contact}, "ticket_ref": "T-4"}),
    )
    .await;
    assert_eq!(inv["channel"], "sms");

    let (status, problem) = server
        .post(
            &format!("/v1/contacts/{contact}/opt-out"),
            &key,
            json!({"channel": "pigeon"}),
        )
        .await;
    assert_problem(status, &problem, 422, "validation-failed");
    let (status, problem) = server
        .post(
            "/v1/contacts/not-a-contact/opt-out",
            &key,
            json!({"channel": "sms"}),
        )
        .await;
    assert_problem(status, &problem, 404, "not-found");
    server.stop().await;
}

async fn tenants_do_not_share_surveys_or_contacts(backend: Backend) {
    let server = TestServer::start(backend).await;
    let a = server.tenant("tenant-a").await;
    let b = server.tenant("tenant-b").await;
    put_survey(&server, &a, "support-csat", csat_survey(json!({}))).await;
    let (_, inv) = send(
        &server,
        &a,
        "support-csat",
        json!({"contact": {"email": "x@example.com"}, "ticket_ref": "T-1"}),
    )
    .await;
    let contact = inv["contact_id"].as_str().unwrap();

    let (status, p) = server.get("/v1/surveys/support-csat", &b).await;
    assert_problem(status, &p, 404, "not-found");
    assert_eq!(server.get("/v1/surveys", &b).await.1["items"], json!([]));
    let (status, p) = send(
        &server,
        &b,
        "support-csat",
        json!({"contact": {"email": "x@example.com"}}),
    )
    .await;
    assert_problem(status, &p, 404, "not-found");
    put_survey(&server, &b, "support-csat", csat_survey(json!({}))).await;
    let (status, p) = send(
        &server,
        &b,
        "support-csat",
        json!({"contact": {"id": contact}}),
    )
    .await;
    assert_problem(status, &p, 422, "validation-failed");
    // The same address in tenant B is B's own contact, with its own history.
    let (_, inv_b) = send(
        &server,
        &b,
        "support-csat",
        json!({"contact": {"email": "x@example.com"}, "ticket_ref": "T-1"}),
    )
    .await;
    assert_eq!(inv_b["status"], "scheduled");
    assert_ne!(inv_b["contact_id"], inv["contact_id"]);
    for path in [
        format!("/v1/contacts/{contact}"),
        format!("/v1/contacts/{contact}/decisions"),
    ] {
        let (status, p) = server.get(&path, &b).await;
        assert_problem(status, &p, 404, "not-found");
    }
    let (_, list) = server
        .get(&format!("/v1/invitations?contact={contact}"), &b)
        .await;
    assert_eq!(list["items"], json!([]));
    let (status, p) = server
        .post(
            &format!("/v1/contacts/{contact}/opt-out"),
            &b,
            json!({"channel": "all"}),
        )
        .await;
    assert_problem(status, &p, 404, "not-found");
    let (_, c) = server.get(&format!("/v1/contacts/{contact}"), &a).await;
    assert_eq!(c["opt_outs"], json!([]), "B could not opt A's contact out");
    server.stop().await;
}
