//! No phone number or e-mail address reaches the logs in clear: the SMS path (sends, a
//! provider's refusal that names the number, replies, STOP), the support-platform path (a rating
//! with the customer's addresses, a Users API lookup) and the outbox (a sink whose error quotes
//! an address) run with every log level on, through the gateway's own log writer; then the
//! captured output is searched for every address the test used.
//!
//! One test in its own binary: the tracing subscriber is global to the process.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::fake_twilio::{inbound_sms, FakeTwilio, Refusal, AUTH_TOKEN};
use common::fake_zendesk::FakeZendesk;
use common::{Backend, TestServer};
use feedback_gateway::config::LogConfig;
use feedback_gateway::events::Event;
use feedback_gateway::forward::{Sink, SinkError};
use reqwest::StatusCode;
use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;

const PUBLIC_URL: &str = "https://feedback.example.com";
const ZENDESK_SECRET: &str = "zendesk-signing-secret-0123456789";

/// Every address the test hands the gateway, as written in logs would show them.
const REFUSED_PHONE: &str = "+4522900022";
const ANSWERING_PHONE: &str = "+4531313131";
const STRANGER_PHONE: &str = "+4540404040";
const RATING_EMAIL: &str = "anna.jensen@example.com";
const RATING_PHONE: &str = "+4550505050";
const LOOKED_UP_EMAIL: &str = "bo.berg@example.com";
const LOOKED_UP_PHONE: &str = "+4560606060";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// A sink that refuses each event once, quoting the contact's address in its error, as an
/// HTTP endpoint that echoes the body it could not take would.
#[derive(Default)]
struct EchoingSink(Mutex<std::collections::HashSet<uuid::Uuid>>);

#[async_trait::async_trait]
impl Sink for EchoingSink {
    fn name(&self) -> &'static str {
        "echoing"
    }

    async fn deliver(&self, event: &Event) -> Result<(), SinkError> {
        if self.0.lock().unwrap().insert(event.id) {
            return Err(SinkError::retry(format!(
                "422 from endpoint: cannot take record for {RATING_EMAIL} / {RATING_PHONE}"
            )));
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logs_carry_no_phone_numbers_or_email_addresses() {
    let captured = Captured::default();
    feedback_gateway::telemetry::init_tracing_to(
        &LogConfig {
            format: "json".into(),
            filter: "trace,hyper=info,h2=info,rustls=info,reqwest=info,tokio=info".into(),
        },
        captured.clone(),
    );
    for backend in [Backend::Sqlite, Backend::Postgres] {
        if backend == Backend::Postgres && common::postgres_url().is_none() {
            continue;
        }
        run_every_path(backend).await;
    }

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("Twilio refused a message"),
        "the provider's refusal was logged (the test reached it)"
    );
    assert!(
        logs.contains("delivery failed; will retry"),
        "the sink's error was logged"
    );
    for address in [
        REFUSED_PHONE,
        ANSWERING_PHONE,
        STRANGER_PHONE,
        RATING_EMAIL,
        RATING_PHONE,
        LOOKED_UP_EMAIL,
        LOOKED_UP_PHONE,
    ] {
        // Also without the plus and country code, as a national number.
        for form in [address, address.trim_start_matches('+'), &address[3..]] {
            assert!(
                !logs.contains(form),
                "{form} appears in the logs:\n{}",
                logs.lines()
                    .filter(|l| l.contains(form))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}

async fn run_every_path(backend: Backend) {
    let twilio = FakeTwilio::start().await;
    let zendesk = FakeZendesk::start().await;
    let (twilio_base, zendesk_base) = (twilio.base.clone(), zendesk.base.clone());
    let server = TestServer::start_with(
        backend,
        move |c| {
            c.public_url = PUBLIC_URL.into();
            c.providers.set_api_base_url("twilio", twilio_base);
            c.providers.set_api_base_url("zendesk", zendesk_base);
            c.dispatch.poll_interval_ms = 600_000;
        },
        vec![Arc::new(EchoingSink::default())],
    )
    .await;
    let key = server.tenant("acme").await;
    for (platform, body) in [
        ("twilio", twilio.config(json!({}))),
        ("zendesk", zendesk.config(ZENDESK_SECRET)),
    ] {
        server
            .put_ok(&key, &format!("/v1/channels/{platform}"), body)
            .await;
    }
    server
        .put_ok(
            &key,
            "/v1/surveys/csat",
            json!({"metric": "csat", "question": {"da": "Hvor tilfreds er du? Svar 1-5."},
                        "channels": ["sms"], "trigger": "ticket_closed",
                        "policy": {"send_delay_minutes": 0, "quiet_hours": null,
                                   "rest_period_days": 0, "one_per_ticket": false}}),
        )
        .await;

    // SMS out: one number Twilio refuses (its message names the number), one it takes.
    twilio.refuse_next(&[Refusal::Code(21211)]);
    for phone in [REFUSED_PHONE, ANSWERING_PHONE] {
        let (status, inv) = server
            .post(
                "/v1/surveys/csat/send",
                &key,
                json!({"contact": {"phone": phone}}),
            )
            .await;
        assert_eq!(status.as_u16(), 202, "{inv}");
    }
    for _ in 0..100 {
        server.dispatcher.run_once().await.unwrap();
        if !twilio.sent().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(twilio.sent().len(), 1);

    // SMS in: an answer with a comment, a stranger's text, a STOP.
    for (i, (from, text)) in [
        (ANSWERING_PHONE, "4 hurtig hjælp"),
        (STRANGER_PHONE, "hvem er det?"),
        (ANSWERING_PHONE, "STOP"),
    ]
    .into_iter()
    .enumerate()
    {
        let params = inbound_sms(from, text, &format!("SM{i:032}"));
        let (status, answer) = server
            .post_twilio(PUBLIC_URL, "/hooks/acme/twilio/sms", AUTH_TOKEN, &params)
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }

    // Zendesk: a rating with the customer's addresses, and an event whose requester is looked
    // up through the Users API.
    zendesk.add_user(
        "8447388090495",
        "Bo Berg",
        LOOKED_UP_EMAIL,
        Some(LOOKED_UP_PHONE),
    );
    let rating = serde_json::to_vec(&json!({
        "ticket_id": "4711", "status": "Solved", "requester_email": RATING_EMAIL,
        "requester_phone": RATING_PHONE, "satisfaction_rating": "Bad, I'm unsatisfied",
        "satisfaction_rating_id": "36312155", "satisfaction_comment": "Ring til mig",
    }))
    .unwrap();
    let event = common::platform_fixture("zendesk_ticket_status_changed");
    for body in [rating, event] {
        let headers =
            common::signed_headers("zendesk", ZENDESK_SECRET, &body, "", chrono::Utc::now());
        let (status, answer) = server
            .post_raw("/hooks/acme/zendesk", "application/json", &headers, body)
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    assert_eq!(zendesk.requests(), 1, "the requester was looked up");

    // The outbox: the echoing sink refuses each event once, then takes it.
    server.settle().await;
    server.stop().await;
}
