//! The closed loop, end to end on the real server: a detractor's SMS reply opens an alert for
//! the ticket's agent, who gets a chat message (a Slack-compatible receiver on loopback) and an
//! e-mail (a real SMTP server on loopback) at once; a changed answer closes or raises the alert;
//! an overdue alert escalates once, with time moved by a test clock; two replicas open one
//! alert per answer and notify once; the statistics of a scripted history.

mod common;

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::post;
use axum::Router;
use channels::messaging::twilio::signature;
use chrono::{DateTime, Utc};
use common::fake_twilio::{form, inbound_sms, FakeTwilio, AUTH_TOKEN};
use common::schemas::assert_valid;
use common::smtp::{SmtpServer, PASSWORD, USER};
use common::{assert_problem, Backend, TestServer};
use feedback_gateway::alerts::Clock;
use feedback_gateway::events::Event;
use feedback_gateway::forward::{Sink, SinkError};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const PUBLIC_URL: &str = "https://feedback.example.com";
const CUSTOMER: &str = "+4522334455";

on_both_backends!(
    an_sms_detractor_alerts_the_tickets_agent_at_once,
    a_changed_answer_closes_or_raises_its_alert_never_opens_a_second,
    an_overdue_alert_escalates_once_and_its_owner_resolves_it,
    replicas_open_one_alert_per_answer_and_notify_once,
    the_statistics_measure_the_loop_on_a_scripted_history,
    rules_filter_answers_and_bad_settings_are_refused,
);

/// The closed loop's time: the system's, moved forward by the test.
#[derive(Default)]
struct TestClock(AtomicI64);

impl TestClock {
    fn advance_hours(&self, hours: i64) {
        self.0.fetch_add(hours * 3600, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        feedback_gateway::store::now() + chrono::Duration::seconds(self.0.load(Ordering::SeqCst))
    }
}

/// A chat service's incoming webhooks on loopback: Slack's paths and answers (`200 ok`), and
/// Teams workflow webhooks (`202`). Records every message with its `Idempotency-Key`.
#[derive(Default)]
struct ChatState {
    messages: Mutex<Vec<(String, Option<String>, Value)>>,
    /// Requests to answer `500` before accepting again.
    failing: AtomicUsize,
}

struct Chat {
    base: String,
    state: Arc<ChatState>,
}

async fn receive(
    State(state): State<Arc<ChatState>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: String,
) -> (AxumStatus, &'static str) {
    if state
        .failing
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return (AxumStatus::INTERNAL_SERVER_ERROR, "internal_error");
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return (AxumStatus::BAD_REQUEST, "invalid_payload");
    };
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    state
        .messages
        .lock()
        .unwrap()
        .push((path.clone(), key, body));
    if path.starts_with("workflows/") {
        (AxumStatus::ACCEPTED, "")
    } else {
        (AxumStatus::OK, "ok")
    }
}

impl Chat {
    async fn start() -> Chat {
        let state = Arc::new(ChatState::default());
        let app = Router::new()
            .route("/{*path}", post(receive))
            .with_state(state.clone());
        Chat {
            base: common::serve_on_loopback(app).await,
            state,
        }
    }

    fn slack_url(&self, hook: &str) -> String {
        format!("{}/services/T0001/B0001/{hook}", self.base)
    }

    fn teams_url(&self, hook: &str) -> String {
        format!(
            "{}/workflows/{hook}/triggers/manual/paths/invoke",
            self.base
        )
    }

    /// The texts of the Slack messages posted to `hook`, with their idempotency keys.
    fn slack(&self, hook: &str) -> Vec<(String, String)> {
        self.state
            .messages
            .lock()
            .unwrap()
            .iter()
            .filter(|(path, _, _)| path.ends_with(hook) && path.starts_with("services/"))
            .map(|(_, key, body)| {
                (
                    key.clone().unwrap_or_default(),
                    body["text"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    fn teams(&self) -> Vec<Value> {
        self.state
            .messages
            .lock()
            .unwrap()
            .iter()
            .filter(|(path, _, _)| path.starts_with("workflows/"))
            .map(|(_, _, body)| body.clone())
            .collect()
    }

    /// Waits until `hook` has `n` messages, and a moment more for any that should not come.
    async fn wait_for(&self, hook: &str, n: usize) -> Vec<(String, String)> {
        for _ in 0..500 {
            if self.slack(hook).len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.slack(hook)
    }
}

/// Every event the sinks got, whole: checked against the versioned schemas.
#[derive(Default)]
struct Recorder(Mutex<Vec<Event>>);

#[async_trait::async_trait]
impl Sink for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }

    async fn deliver(&self, event: &Event) -> Result<(), SinkError> {
        self.0.lock().unwrap().push(event.clone());
        Ok(())
    }
}

impl Recorder {
    /// The alert events, each valid against its schema with and without personal data.
    fn alert_events(&self) -> Vec<Event> {
        let events: Vec<Event> = self
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.event_type.starts_with("alert."))
            .cloned()
            .collect();
        for e in &events {
            assert_valid(&e.public(true));
            assert_valid(&e.public(false));
        }
        events
    }

    fn types(&self) -> Vec<String> {
        self.alert_events()
            .iter()
            .map(|e| e.event_type.clone())
            .collect()
    }
}

struct Loop {
    server: TestServer,
    key: String,
    chat: Chat,
    clock: Arc<TestClock>,
    events: Arc<Recorder>,
}

async fn start(
    backend: Backend,
    tweak: impl FnOnce(&mut feedback_gateway::config::Config),
) -> Loop {
    let clock = Arc::new(TestClock::default());
    let events = Arc::new(Recorder::default());
    let server = TestServer::start_with_extensions(
        backend,
        |c| {
            c.public_url = PUBLIC_URL.into();
            // The test drives the sweep.
            c.alerts.sweep_interval_ms = 3_600_000;
            tweak(c);
        },
        feedback_gateway::Extensions {
            sinks: vec![events.clone()],
            clock: Some(clock.clone()),
            ..Default::default()
        },
    )
    .await;
    let key = server.tenant("acme").await;
    Loop {
        server,
        key,
        chat: Chat::start().await,
        clock,
        events,
    }
}

impl Loop {
    async fn owner(&self, reference: &str, body: Value) -> Value {
        let (status, owner) = self
            .server
            .send(
                Method::PUT,
                &format!("/v1/owners/{reference}"),
                Some(&self.key),
                Some(body),
            )
            .await;
        assert!(status.is_success(), "{status} {owner}");
        owner
    }

    /// PUTs `body` to `path` and expects a 422 that names `field`.
    async fn assert_refused(&self, path: &str, body: Value, field: &str) {
        let (status, problem) = self
            .server
            .send(Method::PUT, path, Some(&self.key), Some(body))
            .await;
        assert_problem(status, &problem, 422, "validation-failed");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }

    async fn alerts(&self, query: &str) -> Vec<Value> {
        let (status, list) = self
            .server
            .get(&format!("/v1/alerts{query}"), &self.key)
            .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        list["items"].as_array().unwrap().clone()
    }

    async fn answer(&self, body: Value) -> Value {
        self.server.feedback(&self.key, body).await
    }

    async fn act(&self, id: &Value, action: &str, body: Value) -> (StatusCode, Value) {
        self.server
            .post(
                &format!("/v1/alerts/{}/{action}", id.as_str().unwrap()),
                &self.key,
                body,
            )
            .await
    }
}

fn nps(score: i64, phone: &str, extra: Value) -> Value {
    let mut body = json!({"metric": "nps", "score": score, "contact": {"phone": phone}});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    body
}

async fn an_sms_detractor_alerts_the_tickets_agent_at_once(backend: Backend) {
    let smtp = SmtpServer::start();
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), &smtp.ca_pem).unwrap();
    let (ca_file, port) = (ca.path().to_str().unwrap().to_owned(), smtp.port);
    let (t, sms) = start_with_sms(backend, move |c| {
        c.email.ca_file = ca_file;
        c.email.smtp.host = "127.0.0.1".into();
        c.email.smtp.port = port;
        c.email.smtp.tls = channels::email::SmtpTls::Starttls;
        c.email.smtp.username = USER.into();
        c.email.smtp.password = PASSWORD.into();
        c.email.from = "Acme Feedback <feedback@acme.example>".into();
    })
    .await;
    let server = &t.server;
    server
        .put_ok(
            &t.key,
            "/v1/alert-rules/default",
            json!({"ticket_url": "https://acme.zendesk.com/agent/tickets/{ticket_ref}"}),
        )
        .await;
    t.owner(
        "agent-7",
        json!({"name": "Mette Hansen", "email": "mette@acme.example",
               "slack_webhook_url": t.chat.slack_url("mette"),
               "teams_webhook_url": t.chat.teams_url("mette"),
               "time_zone": "Europe/Copenhagen"}),
    )
    .await;

    // The ticket closes; the survey goes out by SMS; the customer answers "3".
    sms.ask(&t, CUSTOMER, "agent-7").await;
    sms.text(&t, CUSTOMER, "3").await;

    // The alert is there as soon as the answer is: urgent, the agent's, due in 24 hours.
    let alerts = t.alerts("").await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert = &alerts[0];
    assert_eq!(alert["status"], "open");
    assert_eq!(alert["severity"], "urgent");
    assert_eq!(alert["owner"], "agent-7");
    assert_eq!(alert["rule"], "default");
    assert_eq!(alert["answer"]["score"], 3);
    assert_eq!(alert["overdue"], false);
    let opened: DateTime<Utc> = alert["opened_at"].as_str().unwrap().parse().unwrap();
    let due: DateTime<Utc> = alert["due_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(due - opened, chrono::Duration::hours(24));

    // The agent's chat gets one message: score, ticket link, acknowledge link, and the
    // customer only by the country code and last digits.
    let messages = t.chat.wait_for("mette", 1).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let text = &messages[0].1;
    assert!(text.contains("Urgent alert: NPS 3"), "{text}");
    assert!(
        text.contains("<https://acme.zendesk.com/agent/tickets/48214|48214>"),
        "{text}"
    );
    assert!(text.contains("+45…55"), "{text}");
    assert!(
        !text.contains("22334455"),
        "a full phone number in chat: {text}"
    );
    let acknowledge = text
        .split(&format!("<{PUBLIC_URL}"))
        .nth(1)
        .and_then(|rest| rest.split('|').next())
        .map(|path| path.to_owned())
        .expect("an acknowledge link");
    assert!(acknowledge.starts_with("/a/"), "{text}");
    let teams = t.chat.teams();
    assert_eq!(teams.len(), 1);
    assert_eq!(
        teams[0]["attachments"][0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    // And an e-mail, through the gateway's SMTP server.
    let mail = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].to, vec!["mette@acme.example".to_owned()]);
    let body = String::from_utf8_lossy(&mail[0].data);
    assert!(body.contains("Urgent alert: NPS 3"), "{body}");
    assert!(!body.contains("22334455"), "{body}");

    // The link: GET (a scanner) changes nothing; the button's POST acknowledges.
    let page = server
        .client
        .get(server.url(&acknowledge))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("<form method=\"post\">"));
    assert_eq!(t.alerts("?status=open").await.len(), 1);
    let posted = server
        .client
        .post(server.url(&acknowledge))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::OK);
    let (_, shown) = server
        .get(
            &format!("/v1/alerts/{}", alert["id"].as_str().unwrap()),
            &t.key,
        )
        .await;
    assert_eq!(shown["status"], "acknowledged", "{shown}");
    assert_eq!(
        shown["ticket"]["url"],
        "https://acme.zendesk.com/agent/tickets/48214"
    );
    assert_eq!(shown["answer"]["channel"], "sms");
    assert_eq!(
        shown["contact"]["recent_answers"].as_array().unwrap().len(),
        1
    );
    assert_eq!(
        shown["contact"]["recent_invitations"][0]["ticket_ref"],
        "48214"
    );
    // A forged link is refused.
    let forged = format!("{}x", &acknowledge[..acknowledge.len() - 1]);
    let refused = server
        .client
        .post(server.url(&forged))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);

    server.settle().await;
    assert_eq!(t.events.types(), ["alert.opened", "alert.acknowledged"]);
    let opened_event = &t.events.alert_events()[0];
    assert_eq!(opened_event.data["ticket_ref"], "48214");
    assert!(opened_event.public(false)["data"].get("comment").is_none());

    // The gauges, refreshed by the sweep.
    server.sweeper.run_once().await.unwrap();
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("alerts_open{tenant=\"acme\"} 0"),
        "{metrics}"
    );
    assert!(metrics.contains("alerts_overdue{tenant=\"acme\"} 0"));
    assert!(metrics.contains("alert_time_to_acknowledge_seconds_bucket{le=\"60\"} "));
    t.server.stop().await;
}

async fn a_changed_answer_closes_or_raises_its_alert_never_opens_a_second(backend: Backend) {
    let (t, sms) = start_with_sms(backend, |_| {}).await;
    // A second score by SMS updates the record (as a changed platform rating or a second
    // press on an e-mail's rating page would).
    let (first, second) = ("+4522330001", "+4522330002");
    sms.ask(&t, first, "agent-1").await;
    sms.text(&t, first, "3").await;
    assert_eq!(t.alerts("").await.len(), 1);
    sms.text(&t, first, "Undskyld, 9").await;
    let alerts = t.alerts("").await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["status"], "self_resolved", "{:?}", alerts[0]);
    assert_eq!(alerts[0]["answer"]["score"], 9);
    // Unhappy again: the same alert opens again, with a new deadline.
    sms.text(&t, first, "Nej alligevel 2").await;
    let alerts = t.alerts("").await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["status"], "open", "{:?}", alerts[0]);
    assert_eq!(alerts[0]["severity"], "urgent");
    assert_eq!(alerts[0]["resolved_at"], Value::Null);

    // 6 (normal) → 2 (urgent): the same alert, raised.
    sms.ask(&t, second, "agent-1").await;
    sms.text(&t, second, "6").await;
    assert_eq!(t.alerts("?severity=normal").await.len(), 1);
    sms.text(&t, second, "nej, 2").await;
    let alerts = t.alerts("").await;
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(alerts[0]["severity"], "urgent");
    assert_eq!(alerts[0]["status"], "open");
    assert_eq!(alerts[0]["answer"]["score"], 2);
    assert_eq!(t.alerts("?severity=normal").await.len(), 0);

    // An acknowledged alert stays with its owner when the answer improves.
    let (status, _) = t.act(&alerts[0]["id"], "acknowledge", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    sms.text(&t, second, "10").await;
    assert_eq!(t.alerts("?status=acknowledged").await.len(), 1);

    t.server.settle().await;
    assert_eq!(
        t.events.types(),
        [
            "alert.opened",
            "alert.resolved",
            "alert.opened",
            "alert.opened",
            "alert.acknowledged"
        ],
    );
    let resolved = &t.events.alert_events()[1];
    assert_eq!(resolved.data["status"], "self_resolved");
    t.server.stop().await;
}

/// A tenant's Twilio account on a fake Twilio API, and an NPS survey by SMS.
struct Sms {
    twilio: FakeTwilio,
}

async fn start_with_sms(
    backend: Backend,
    tweak: impl FnOnce(&mut feedback_gateway::config::Config),
) -> (Loop, Sms) {
    let twilio = FakeTwilio::start().await;
    let base = twilio.base.clone();
    let t = start(backend, |c| {
        c.providers.set_api_base_url("twilio", base);
        tweak(c);
    })
    .await;
    t.server
        .put_ok(&t.key, "/v1/channels/twilio", twilio.config(json!({})))
        .await;
    t.server
        .put_ok(
            &t.key,
            "/v1/surveys/nps",
            json!({
                "metric": "nps",
                "question": {"da": "Hvor sandsynligt er det, at du vil anbefale os? Svar 0-10."},
                "default_language": "da",
                "channels": ["sms"],
                "policy": {"send_delay_minutes": 0, "quiet_hours": null, "rest_period_days": 0,
                           "max_per_window": 1000, "one_per_ticket": false}
            }),
        )
        .await;
    (t, Sms { twilio })
}

impl Sms {
    /// A closed ticket of `agent`'s sends the survey to `phone`; returns once it is sent.
    async fn ask(&self, t: &Loop, phone: &str, agent: &str) {
        let (status, invitation) = t
            .server
            .post(
                "/v1/surveys/nps/send",
                &t.key,
                json!({"contact": {"phone": phone}, "ticket_ref": "48214", "agent_ref": agent,
                       "team_ref": "support-dk", "language": "da"}),
            )
            .await;
        assert_eq!(status.as_u16(), 202, "{invitation}");
        for _ in 0..500 {
            t.server.dispatcher.run_once().await.unwrap();
            if t.server.invitation(&t.key, &invitation["id"]).await["status"] == "sent" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "the survey was not sent ({} messages)",
            self.twilio.sent().len()
        );
    }

    /// `phone` texts `body` back, as Twilio posts it, signed.
    async fn text(&self, t: &Loop, phone: &str, body: &str) {
        let params = inbound_sms(phone, body, &format!("SM{}", uuid::Uuid::new_v4().simple()));
        let path = "/hooks/acme/twilio/sms";
        let sig = signature(AUTH_TOKEN, &format!("{PUBLIC_URL}{path}"), &params);
        let (status, answer) = t
            .server
            .post_raw(
                path,
                "application/x-www-form-urlencoded",
                &[("X-Twilio-Signature", sig.as_str())],
                form(&params).into_bytes(),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
}

async fn an_overdue_alert_escalates_once_and_its_owner_resolves_it(backend: Backend) {
    let t = start(backend, |_| {}).await;
    t.owner(
        "agent-7",
        json!({"slack_webhook_url": t.chat.slack_url("agent")}),
    )
    .await;
    t.owner(
        "support-dk",
        json!({"name": "Support DK", "escalate_to": "lead"}),
    )
    .await;
    t.owner(
        "lead",
        json!({"slack_webhook_url": t.chat.slack_url("lead")}),
    )
    .await;
    let answer = t
        .answer(nps(
            2,
            "+4522330003",
            json!({"agent_ref": "agent-7", "team_ref": "support-dk", "comment": "Aldrig igen"}),
        ))
        .await;
    assert_eq!(t.chat.wait_for("agent", 1).await.len(), 1);

    // Nothing is overdue before the deadline.
    t.clock.advance_hours(23);
    assert_eq!(t.server.sweeper.run_once().await.unwrap(), 0);
    assert!(t.alerts("?overdue=true").await.is_empty());
    // After it: escalated once, to the team's escalation contact, however often the sweep runs.
    t.clock.advance_hours(2);
    assert_eq!(t.server.sweeper.run_once().await.unwrap(), 1);
    assert_eq!(t.server.sweeper.run_once().await.unwrap(), 0);
    let overdue = t.alerts("?overdue=true").await;
    assert_eq!(overdue.len(), 1);
    assert!(overdue[0]["escalated_at"].is_string());
    let lead = t.chat.wait_for("lead", 2).await;
    assert_eq!(lead.len(), 1, "{lead:?}");
    assert!(
        lead[0].1.starts_with("*Overdue alert: NPS 2*"),
        "{}",
        lead[0].1
    );
    assert!(lead[0].1.contains("Aldrig igen"));
    assert!(lead[0].1.contains("Owner: agent-7"));
    assert_eq!(
        t.chat.slack("agent").len(),
        1,
        "the owner is not told twice"
    );
    t.server.sweeper.run_once().await.unwrap();
    let metrics = t.server.metrics().await;
    assert!(
        metrics.contains("alerts_overdue{tenant=\"acme\"} 1"),
        "{metrics}"
    );

    // The owner resolves it; what cannot be done is refused and changes nothing.
    let id = overdue[0]["id"].clone();
    let (status, body) = t.act(&id, "resolve", json!({"outcome": "called"})).await;
    assert_problem(status, &body, 422, "validation-failed");
    let (status, body) = t.act(&id, "reassign", json!({"owner": "nobody"})).await;
    assert_problem(status, &body, 422, "validation-failed");
    // Given to the lead, who is told it is theirs now.
    let (status, body) = t.act(&id, "reassign", json!({"owner": "lead"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["owner"], "lead");
    let lead = t.chat.wait_for("lead", 2).await;
    assert_eq!(lead.len(), 2, "{lead:?}");
    assert!(
        lead[1].1.starts_with("*Alert assigned to you: NPS 2*"),
        "{}",
        lead[1].1
    );
    assert_eq!(t.alerts("?owner=lead").await.len(), 1);
    let (status, body) = t
        .act(
            &id,
            "resolve",
            json!({"outcome": "contacted", "note": "Ringede, tilbød kompensation"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "resolved");
    assert_eq!(body["outcome"], "contacted");
    assert_eq!(body["overdue"], false);
    let (status, body) = t.act(&id, "acknowledge", json!({})).await;
    assert_problem(status, &body, 409, "alert-status");
    let (status, body) = t
        .act(
            &json!(uuid::Uuid::new_v4().to_string()),
            "acknowledge",
            json!({}),
        )
        .await;
    assert_problem(status, &body, 404, "not-found");
    // Another tenant cannot see or touch it.
    let other = t.server.tenant("other").await;
    let (status, _) = t
        .server
        .get(&format!("/v1/alerts/{}", id.as_str().unwrap()), &other)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    t.server.settle().await;
    assert_eq!(
        t.events.types(),
        ["alert.opened", "alert.overdue", "alert.resolved"]
    );
    let events = t.events.alert_events();
    assert_eq!(events[1].data["escalated_to"], "lead");
    assert_eq!(events[2].data["note"], "Ringede, tilbød kompensation");
    assert!(events[2].public(false)["data"].get("note").is_none());
    let _ = answer;
    t.server.stop().await;
}

async fn replicas_open_one_alert_per_answer_and_notify_once(backend: Backend) {
    let t = start(backend, |_| {}).await;
    // The chat service fails the first two messages: at least once means they come again.
    t.chat.state.failing.store(2, Ordering::SeqCst);
    t.owner(
        "agent-7",
        json!({"slack_webhook_url": t.chat.slack_url("agent")}),
    )
    .await;
    t.owner(
        "lead",
        json!({"slack_webhook_url": t.chat.slack_url("lead"), "default": true}),
    )
    .await;
    let replica = t
        .server
        .replica_with(
            |c| {
                c.public_url = PUBLIC_URL.into();
                c.alerts.sweep_interval_ms = 3_600_000;
            },
            feedback_gateway::Extensions {
                clock: Some(t.clock.clone()),
                ..Default::default()
            },
        )
        .await;
    let bases = [t.server.base.clone(), replica.base.clone()];
    // Ten answers, each delivered to both replicas at once (a provider's retry racing its
    // first delivery), under one idempotency key.
    let mut sends = Vec::new();
    for i in 0..10 {
        let body = nps(
            i % 5,
            &format!("+452233010{i}"),
            json!({"agent_ref": "agent-7"}),
        );
        for base in &bases {
            let (client, key, body, url) = (
                t.server.client.clone(),
                t.key.clone(),
                body.clone(),
                format!("{base}/v1/feedback"),
            );
            sends.push(tokio::spawn(async move {
                client
                    .post(url)
                    .bearer_auth(key)
                    .header("idempotency-key", format!("answer-{i}"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status()
            }));
        }
    }
    for send in sends {
        assert!(send.await.unwrap().is_success());
    }
    assert_eq!(t.server.count("alerts").await, 10);

    // Both relays deliver; each alert's message arrives once, or again with the same id.
    let messages = t.chat.wait_for("agent", 10).await;
    let mut ids: Vec<&str> = messages.iter().map(|(id, _)| id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 10, "{messages:?}");
    assert!(
        messages.len() <= 12,
        "more than at-least-once: {messages:?}"
    );
    for (id, text) in &messages {
        let same: Vec<&String> = messages
            .iter()
            .filter(|(i, _)| i == id)
            .map(|(_, t)| t)
            .collect();
        assert!(same.iter().all(|t| *t == text), "one id, two messages");
    }

    // Both replicas sweep at the same moment: each alert escalates once.
    t.clock.advance_hours(25);
    let (a, b) = tokio::join!(t.server.sweeper.run_once(), replica.sweeper.run_once());
    assert_eq!(a.unwrap() + b.unwrap(), 10);
    let lead = t.chat.wait_for("lead", 10).await;
    let mut escalated: Vec<&str> = lead.iter().map(|(id, _)| id.as_str()).collect();
    escalated.sort();
    escalated.dedup();
    assert_eq!(escalated.len(), 10, "{lead:?}");
    assert_eq!(lead.len(), 10, "{lead:?}");
    replica.shutdown.cancel();
    t.server.stop().await;
}

async fn the_statistics_measure_the_loop_on_a_scripted_history(backend: Backend) {
    let t = start(backend, |_| {}).await;
    let days_ago = |d: i64| (Utc::now() - chrono::Duration::days(d)).to_rfc3339();
    let (a, b, c) = ("+4522332001", "+4522332002", "+4522332003");
    // A: 3 to Ann, acknowledged after 2 hours, resolved after 3; A later answers 8 (passive).
    let a1 = t
        .answer(nps(
            3,
            a,
            json!({"agent_ref": "ann", "team_ref": "dk", "occurred_at": days_ago(10)}),
        ))
        .await;
    // B: 5 to Ann, acknowledged after 30 hours (late); B later answers 2 (still a detractor,
    // which opens an alert of its own that nobody acknowledges).
    let b1 = t
        .answer(nps(
            5,
            b,
            json!({"agent_ref": "ann", "team_ref": "dk", "occurred_at": days_ago(9)}),
        ))
        .await;
    // C: 1 to Bob, never acknowledged, no later answer.
    t.answer(nps(
        1,
        c,
        json!({"agent_ref": "bob", "team_ref": "se", "occurred_at": days_ago(8)}),
    ))
    .await;
    t.answer(nps(
        8,
        a,
        json!({"agent_ref": "ann", "occurred_at": days_ago(2)}),
    ))
    .await;
    t.answer(nps(
        2,
        b,
        json!({"agent_ref": "ann", "team_ref": "dk", "occurred_at": days_ago(1)}),
    ))
    .await;
    let alert_of = |answer: &Value, alerts: &[Value]| {
        alerts
            .iter()
            .find(|a| a["answer"]["feedback_id"] == answer["id"])
            .unwrap()["id"]
            .clone()
    };
    let alerts = t.alerts("").await;
    assert_eq!(alerts.len(), 4);
    t.clock.advance_hours(2);
    t.act(&alert_of(&a1, &alerts), "acknowledge", json!({}))
        .await;
    t.clock.advance_hours(1);
    t.act(
        &alert_of(&a1, &alerts),
        "resolve",
        json!({"outcome": "contacted"}),
    )
    .await;
    t.clock.advance_hours(27);
    t.act(&alert_of(&b1, &alerts), "acknowledge", json!({}))
        .await;

    let from = (Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let to = (Utc::now() + chrono::Duration::days(3)).to_rfc3339();
    let query = |group: &str| {
        format!(
            "/v1/alerts/stats?from={}&to={}&group_by={group}",
            urlencode(&from),
            urlencode(&to)
        )
    };
    let (status, stats) = t.server.get(&query("owner"), &t.key).await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    let total = &stats["total"];
    assert_eq!(total["opened"], 4);
    assert_eq!(total["acknowledged_in_time"], 1);
    assert_eq!(total["acknowledged_in_time_pct"], 25.0);
    assert_eq!(total["answered_again"], 2);
    assert_eq!(total["moved_up"], 1);
    assert_eq!(total["moved_up_pct"], 50.0);
    let ann = &stats["groups"][0];
    assert_eq!(ann["key"], "ann");
    assert_eq!(ann["opened"], 3);
    assert_eq!(ann["acknowledged_in_time_pct"], 33.3);
    // 2 h and 30 h: the median is 16 h (a few seconds of test time aside).
    let median = ann["median_seconds_to_acknowledge"].as_i64().unwrap();
    assert!((57_600..57_660).contains(&median), "{ann}");
    let resolve = ann["median_seconds_to_resolve"].as_i64().unwrap();
    assert!((10_800..10_860).contains(&resolve), "{ann}");
    assert_eq!(ann["moved_up_pct"], 50.0);
    let bob = &stats["groups"][1];
    assert_eq!(bob["key"], "bob");
    assert_eq!(bob["acknowledged_in_time_pct"], 0.0);
    assert_eq!(bob["moved_up_pct"], Value::Null);

    let (_, by_severity) = t.server.get(&query("severity"), &t.key).await;
    let keys: Vec<&str> = by_severity["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["normal", "urgent"]);
    assert_eq!(by_severity["groups"][0]["opened"], 1);
    let (_, by_team) = t.server.get(&query("team"), &t.key).await;
    assert_eq!(by_team["groups"][0]["key"], "dk");
    assert_eq!(by_team["groups"][0]["opened"], 3);

    let (status, body) = t
        .server
        .get("/v1/alerts/stats?group_by=agent", &t.key)
        .await;
    assert_problem(status, &body, 422, "validation-failed");
    t.server.stop().await;
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn rules_filter_answers_and_bad_settings_are_refused(backend: Backend) {
    let t = start(backend, |_| {}).await;
    // The default rule off; a rule of the tenant's own: NPS up to 8 that mentions cancelling,
    // on SMS only... and from the API here.
    t.server
        .put_ok(&t.key, "/v1/alert-rules/default", json!({"enabled": false}))
        .await;
    let (status, rule) = t
        .server
        .send(
            Method::PUT,
            "/v1/alert-rules/cancellations",
            Some(&t.key),
            Some(
                json!({"nps": {"at_most": 8, "urgent_at_most": 8}, "channels": ["api"],
                        "words": ["opsige", "advokat", "cancel"], "deadline_hours": 4,
                        "business_hours": {"start": "09:00:00", "end": "17:00:00"}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rule}");
    assert_eq!(rule["business_hours"]["time_zone"], "Europe/Copenhagen");
    let (_, list) = t.server.get("/v1/alert-rules", &t.key).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);

    t.answer(nps(2, "+4522330010", json!({"comment": "Meget langsom"})))
        .await;
    assert!(t.alerts("").await.is_empty(), "the default rule is off");
    t.answer(nps(
        8,
        "+4522330011",
        json!({"comment": "Jeg vil OPSIGE mit abonnement"}),
    ))
    .await;
    let alerts = t.alerts("").await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["rule"], "cancellations");
    assert_eq!(alerts[0]["severity"], "urgent");
    // Without an owner in the directory the alert is owned by nobody, and nobody is notified.
    assert_eq!(alerts[0]["owner"], Value::Null);
    // Deleting the default rule's override brings the built-in rule back.
    let (status, _) = t
        .server
        .send(
            Method::DELETE,
            "/v1/alert-rules/default",
            Some(&t.key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    t.answer(nps(2, "+4522330012", json!({}))).await;
    assert_eq!(t.alerts("").await.len(), 2);

    for (body, field) in [
        (json!({"nps": {"at_most": 11}}), "nps"),
        (json!({"nps": {"at_most": 4, "urgent_at_most": 6}}), "nps"),
        (json!({"deadline_hours": 0}), "deadline_hours"),
        (
            json!({"business_hours": {"start": "17:00:00", "end": "09:00:00"}}),
            "business_hours",
        ),
        (
            json!({"business_hours": {"start": "09:00:00", "end": "17:00:00", "time_zone": "Mars/Base"}}),
            "business_hours.time_zone",
        ),
        (json!({"ticket_url": "javascript:alert(1)"}), "ticket_url"),
    ] {
        t.assert_refused("/v1/alert-rules/bad", body, field).await;
    }
    let (status, problem) = t
        .server
        .send(
            Method::PUT,
            "/v1/alert-rules/bad",
            Some(&t.key),
            Some(json!({"threshold": 6})),
        )
        .await;
    assert!(status.is_client_error(), "{problem}");
    for (body, field) in [
        (json!({"email": "not an address"}), "email"),
        (
            json!({"slack_webhook_url": "ftp://hooks.example/x"}),
            "slack_webhook_url",
        ),
        (
            json!({"teams_webhook_url": "https://user:pw@example.com/x"}),
            "teams_webhook_url",
        ),
        (json!({"time_zone": "Europe/Atlantis"}), "time_zone"),
    ] {
        t.assert_refused("/v1/owners/ann", body, field).await;
    }
    // A chat webhook's URL is its credential: never shown back whole.
    let owner = t
        .owner(
            "ann",
            json!({"slack_webhook_url": t.chat.slack_url("secret-token")}),
        )
        .await;
    let shown = owner["slack_webhook_url"].as_str().unwrap();
    assert!(!shown.contains("secret-token"), "{shown}");
    let (status, _) = t.server.get("/v1/alerts?status=closed", &t.key).await;
    assert_eq!(status.as_u16(), 422);
    let (status, _) = t.server.get("/v1/alerts", "fg_wrong_key").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    t.server.stop().await;
}
