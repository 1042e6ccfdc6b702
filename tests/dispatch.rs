//! The dispatcher: due invitations become messages through a channel's sender, in the
//! contact's language, paced per sender, with opt-out checked again at send time.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::{Backend, TestServer};
use feedback_gateway::dispatch::{
    AddressVerdict, OutboundMessage, Pace, Receipt, SendError, Sender,
};
use feedback_gateway::Extensions;
use reqwest::Method;
use sea_orm::ConnectionTrait;
use serde_json::{json, Value};
use uuid::Uuid;

/// A stand-in SMS provider: records messages, fails on demand.
struct TestSms {
    sent: Mutex<Vec<(Instant, OutboundMessage)>>,
    transient_failures: AtomicUsize,
    refuse: Mutex<Option<SendError>>,
    per_second: f64,
}

impl TestSms {
    fn new(per_second: f64) -> Arc<Self> {
        Arc::new(TestSms {
            sent: Mutex::new(Vec::new()),
            transient_failures: AtomicUsize::new(0),
            refuse: Mutex::new(None),
            per_second,
        })
    }

    fn messages(&self) -> Vec<OutboundMessage> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .map(|(_, m)| m.clone())
            .collect()
    }
}

#[async_trait]
impl Sender for TestSms {
    fn channel(&self) -> &'static str {
        "sms"
    }
    async fn pace(&self, tenant_id: Uuid) -> Result<Pace, SendError> {
        Ok(Pace {
            key: format!("test-sms:{tenant_id}"),
            per_second: self.per_second,
        })
    }
    async fn send(&self, message: &OutboundMessage) -> Result<Receipt, SendError> {
        if let Some(e) = self.refuse.lock().unwrap().clone() {
            return Err(e);
        }
        if self
            .transient_failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(SendError::transient("429 Too Many Requests"));
        }
        let mut sent = self.sent.lock().unwrap();
        sent.push((Instant::now(), message.clone()));
        Ok(Receipt {
            provider_ref: format!("SM{:032}", sent.len()),
            sender: Some("+4578787878".into()),
        })
    }
}

/// The server with the background dispatcher kept away (one round at start, the next in ten
/// minutes): each test drives the rounds itself. A background round in the middle of a test's
/// triggers would, for example, start sending one tenant's flood before the other tenant's
/// invitation exists, and the test would measure the speed of the triggers instead.
async fn start(backend: Backend, sms: &Arc<TestSms>) -> TestServer {
    TestServer::start_with_extensions(
        backend,
        |c| c.dispatch.poll_interval_ms = 600_000,
        Extensions {
            senders: vec![sms.clone()],
            ..Default::default()
        },
    )
    .await
}

/// A survey that sends at once, at any hour, as often as asked.
async fn survey(server: &TestServer, key: &str) {
    let (status, body) = server
        .send(
            Method::PUT,
            "/v1/surveys/csat",
            Some(key),
            Some(json!({
                "metric": "csat",
                "question": {"da": "Hvor tilfreds er du? Svar 1-5.", "en": "How satisfied are you? Answer 1-5."},
                "default_language": "da",
                "channels": ["sms"],
                "policy": {"send_delay_minutes": 0, "quiet_hours": null, "rest_period_days": 0,
                           "max_per_window": 1000, "one_per_ticket": false}
            })),
        )
        .await;
    assert!(status.is_success(), "{body}");
}

async fn trigger(server: &TestServer, key: &str, body: Value) -> Value {
    let (status, inv) = server.post("/v1/surveys/csat/send", key, body).await;
    assert_eq!(status.as_u16(), 202, "{inv}");
    assert_eq!(inv["status"], "scheduled", "{inv}");
    inv
}

/// Runs dispatch rounds until `done` holds.
async fn dispatch_until(server: &TestServer, mut done: impl FnMut() -> bool) {
    for _ in 0..600 {
        server.dispatcher.run_once().await.unwrap();
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("dispatch did not finish");
}

on_both_backends!(
    sends_the_question_in_the_contacts_language,
    opt_out_is_checked_again_at_send_time,
    transient_failures_retry_and_permanent_ones_fail,
    a_burst_is_paced_and_other_tenants_are_not_held_up,
);

async fn sends_the_question_in_the_contacts_language(backend: Backend) {
    let sms = TestSms::new(100.0);
    let server = start(backend, &sms).await;
    let key = server.tenant("acme").await;
    survey(&server, &key).await;
    let da = trigger(&server, &key, json!({"contact": {"phone": "22 33 44 55"}})).await;
    let en = trigger(
        &server,
        &key,
        json!({"contact": {"phone": "+4540506070"}, "language": "en-GB"}),
    )
    .await;
    dispatch_until(&server, || sms.messages().len() == 2).await;
    let messages = sms.messages();
    let to_da = messages.iter().find(|m| m.to == "+4522334455").unwrap();
    assert_eq!(to_da.body, "Hvor tilfreds er du? Svar 1-5.");
    assert_eq!(to_da.language, "da");
    let to_en = messages.iter().find(|m| m.to == "+4540506070").unwrap();
    assert_eq!(to_en.body, "How satisfied are you? Answer 1-5.");
    let stored = server.invitation(&key, &da["id"]).await;
    assert_eq!(stored["status"], "sent");
    assert!(stored["provider_ref"].as_str().unwrap().starts_with("SM"));
    assert_eq!(stored["attempts"], 1);
    assert!(stored["sent_at"].is_string());
    assert_eq!(server.invitation(&key, &en["id"]).await["status"], "sent");
    // Nothing is sent twice.
    server.dispatcher.drain().await.unwrap();
    assert_eq!(sms.messages().len(), 2);
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(stored["expires_at"].as_str().unwrap()).unwrap()
            - chrono::DateTime::parse_from_rfc3339(stored["sent_at"].as_str().unwrap()).unwrap(),
        chrono::Duration::hours(72),
        "the reply window runs from the send"
    );
    // Once the reply window has passed, the invitation is no longer open. (The Danish one is
    // the only invitation in Danish.)
    server
        .db
        .write
        .execute_unprepared("UPDATE invitations SET expires_at = sent_at WHERE language = 'da'")
        .await
        .unwrap();
    server.dispatcher.run_once().await.unwrap();
    assert_eq!(
        server.invitation(&key, &da["id"]).await["status"],
        "expired"
    );
    assert_eq!(server.invitation(&key, &en["id"]).await["status"], "sent");
    server.stop().await;
}

async fn opt_out_is_checked_again_at_send_time(backend: Backend) {
    let sms = TestSms::new(100.0);
    // The opt-out must land before any round, as start() sees to.
    let server = start(backend, &sms).await;
    let key = server.tenant("acme").await;
    survey(&server, &key).await;
    let inv = trigger(&server, &key, json!({"contact": {"phone": "+4522334455"}})).await;
    // An opt-out recorded straight in the contact (as a provider's STOP would be, racing the
    // scheduled send), without the API's cancellation of scheduled invitations.
    let tenant = feedback_gateway::store::tenants::find_by_slug(&server.db, "acme")
        .await
        .unwrap()
        .unwrap();
    let contact: Uuid = inv["contact_id"].as_str().unwrap().parse().unwrap();
    feedback_gateway::store::contacts::set_opt_out(
        &server.db.write,
        tenant.id,
        contact,
        "sms",
        true,
    )
    .await
    .unwrap();
    server.dispatcher.drain().await.unwrap();
    assert!(
        sms.messages().is_empty(),
        "an opted-out contact is never texted"
    );
    let stored = server.invitation(&key, &inv["id"]).await;
    assert_eq!(
        (stored["status"].as_str(), stored["reason"].as_str()),
        (Some("cancelled"), Some("opt_out"))
    );
    let (_, log) = server
        .get(&format!("/v1/contacts/{contact}/decisions"), &key)
        .await;
    assert_eq!(log["items"][0]["outcome"], "cancelled");
    assert_eq!(log["items"][0]["rule"], "opt_out");
    server.stop().await;
}

async fn transient_failures_retry_and_permanent_ones_fail(backend: Backend) {
    let sms = TestSms::new(100.0);
    let server = start(backend, &sms).await;
    let key = server.tenant("acme").await;
    survey(&server, &key).await;

    sms.transient_failures.store(2, Ordering::SeqCst);
    let retried = trigger(&server, &key, json!({"contact": {"phone": "+4522334455"}})).await;
    dispatch_until(&server, || sms.messages().len() == 1).await;
    let stored = server.invitation(&key, &retried["id"]).await;
    assert_eq!(
        (stored["status"].as_str(), stored["attempts"].as_i64()),
        (Some("sent"), Some(3))
    );

    *sms.refuse.lock().unwrap() = Some(SendError::permanent(
        Some("21211".into()),
        "The 'To' number is not a valid phone number.",
    ));
    let refused = trigger(&server, &key, json!({"contact": {"phone": "+4540506070"}})).await;
    let mut stored = Value::Null;
    for _ in 0..200 {
        server.dispatcher.run_once().await.unwrap();
        stored = server.invitation(&key, &refused["id"]).await;
        if stored["status"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(stored["status"], "failed");
    assert_eq!(stored["attempts"], 1, "a permanent refusal is not retried");
    assert!(stored["last_error"].as_str().unwrap().starts_with("21211"));

    // The provider says the recipient unsubscribed: the contact is opted out of SMS.
    *sms.refuse.lock().unwrap() = Some(SendError {
        verdict: Some(AddressVerdict::OptedOut),
        ..SendError::permanent(
            Some("21610".into()),
            "Attempt to send to unsubscribed recipient",
        )
    });
    let unsubscribed = trigger(&server, &key, json!({"contact": {"phone": "+4570809010"}})).await;
    for _ in 0..200 {
        server.dispatcher.run_once().await.unwrap();
        if server.invitation(&key, &unsubscribed["id"]).await["status"] == "cancelled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let contact = unsubscribed["contact_id"].as_str().unwrap();
    let (_, c) = server.get(&format!("/v1/contacts/{contact}"), &key).await;
    assert_eq!(c["opt_outs"], json!(["sms"]));
    server.stop().await;
}

async fn a_burst_is_paced_and_other_tenants_are_not_held_up(backend: Backend) {
    let sms = TestSms::new(20.0);
    let server = start(backend, &sms).await;
    let flood = server.tenant("flood").await;
    let quiet = server.tenant("quiet").await;
    survey(&server, &flood).await;
    survey(&server, &quiet).await;
    for i in 0..40 {
        trigger(&server, &flood, json!({"contact": {"email": format!("c{i}@example.com"), "phone": format!("+45401000{i:02}")}})).await;
    }
    let quiet_inv = trigger(
        &server,
        &quiet,
        json!({"contact": {"phone": "+4522334455"}}),
    )
    .await;
    let started = Instant::now();
    dispatch_until(&server, || sms.messages().len() == 41).await;
    let sent = sms.sent.lock().unwrap().clone();
    let flood_times: Vec<Instant> = sent
        .iter()
        .filter(|(_, m)| m.to != "+4522334455")
        .map(|(t, _)| *t)
        .collect();
    let quiet_time = sent.iter().find(|(_, m)| m.to == "+4522334455").unwrap().0;
    assert_eq!(flood_times.len(), 40, "paced, not dropped");
    // 40 messages at 20 per second take about two seconds, not one burst.
    let span = *flood_times.last().unwrap() - flood_times[0];
    assert!(
        span >= Duration::from_millis(1500),
        "flood sent within {span:?}"
    );
    assert!(
        quiet_time < flood_times[5],
        "the other tenant waited behind the flood ({:?} after start)",
        quiet_time - started
    );
    assert_eq!(
        server.invitation(&quiet, &quiet_inv["id"]).await["status"],
        "sent"
    );
    server.stop().await;
}
