//! Support-platform webhooks, end to end through the real server: signed deliveries from
//! Zendesk, Intercom, Freshdesk, Chatwoot and the generic hook (payloads in
//! `tests/fixtures/platforms/`, built from the platforms' documentation) schedule surveys and
//! become feedback; Zendesk's Users API is played by a fake on loopback. Plus every bad input,
//! redeliveries, and simultaneous deliveries.

mod common;

use std::sync::Arc;

use channels::chat::zendesk;
use chrono::{DateTime, Duration, Utc};
use common::fake_intercom::{self, FakeIntercom};
use common::fake_twilio::{form, inbound_sms, FakeTwilio, AUTH_TOKEN};
use common::fake_zendesk::FakeZendesk;
use common::{assert_problem, Backend, EventTypes, TestServer};
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};

const ZENDESK_SECRET: &str = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ==";
const INTERCOM_SECRET: &str = "intercom-client-secret-9f3b";
const CHATWOOT_SECRET: &str = "chatwoot-webhook-secret-77a1";
const GENERIC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const FRESHDESK_USER: &str = "freshdesk-hook";
const FRESHDESK_PASSWORD: &str = "fd-basic-pass-0c1d";
const SURVEY: &str = "csat-after-ticket";
/// The URL Twilio's signatures cover.
const PUBLIC_URL: &str = "https://feedback.example.com";

on_both_backends!(
    closed_tickets_from_every_platform_schedule_surveys,
    closed_reopened_and_closed_again_asks_once,
    zendesk_events_look_the_requester_up,
    intercom_asks_the_customer_never_the_agent,
    a_translated_status_is_kept_and_replayed_once_it_can_be_read,
    the_recommended_trigger_needs_no_translated_placeholder,
    platform_ratings_become_feedback_once_and_follow_changes,
    bad_requests_are_refused_and_store_nothing,
    a_ticket_without_any_address_is_kept_and_not_surveyed,
    simultaneous_deliveries_ask_once_and_rate_once,
    survey_sources_limit_the_platforms_that_trigger,
    platform_configuration_keeps_its_secrets,
    a_closed_ticket_is_asked_by_sms_and_scored_by_agent_and_team,
);

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/platforms/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A fixture with some fields replaced: the bytes change, so the signature is made anew.
fn fixture_with(name: &str, changes: Value) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&fixture(name)).unwrap();
    for (pointer, value) in changes.as_object().unwrap() {
        *body.pointer_mut(pointer).unwrap() = value.clone();
    }
    serde_json::to_vec(&body).unwrap()
}

struct Hooks {
    server: TestServer,
    key: String,
    zendesk: FakeZendesk,
    twilio: FakeTwilio,
    intercom: FakeIntercom,
    events: Arc<EventTypes>,
    /// Seconds added to the signing time of each delivery: distinct deliveries are signed at
    /// distinct times, as a platform signs each one when it sends it (the same signed timestamp
    /// and body again is a replay).
    clock: std::sync::atomic::AtomicI64,
}

/// The headers a platform signs a delivery with, with this test's secret, signed at `at`.
fn signed_headers(
    platform: &str,
    body: &[u8],
    delivery: &str,
    at: DateTime<Utc>,
) -> Vec<(String, String)> {
    let freshdesk = format!("{FRESHDESK_USER}:{FRESHDESK_PASSWORD}");
    let secret = match platform {
        "zendesk" => ZENDESK_SECRET,
        "intercom" => INTERCOM_SECRET,
        "chatwoot" => CHATWOOT_SECRET,
        "freshdesk" => &freshdesk,
        "generic" => GENERIC_SECRET,
        other => panic!("no secret for {other}"),
    };
    common::signed_headers(platform, secret, body, delivery, at)
}

impl Hooks {
    async fn start(backend: Backend) -> Hooks {
        let events = Arc::new(EventTypes::default());
        let zendesk = FakeZendesk::start().await;
        let twilio = FakeTwilio::start().await;
        let intercom = FakeIntercom::start().await;
        // Invitations stay as scheduled: no dispatcher round runs during a test.
        let server = TestServer::start_with(
            backend,
            |c| {
                c.dispatch.poll_interval_ms = 600_000;
                c.public_url = PUBLIC_URL.into();
                c.providers
                    .set_api_base_url("zendesk", zendesk.base.clone());
                c.providers.set_api_base_url("twilio", twilio.base.clone());
                c.providers
                    .set_api_base_url("intercom", intercom.base.clone());
            },
            vec![events.clone()],
        )
        .await;
        let key = server.tenant("acme").await;
        let hooks = Hooks {
            server,
            key,
            zendesk,
            twilio,
            intercom,
            events,
            clock: Default::default(),
        };
        for (platform, config) in [
            ("zendesk", hooks.zendesk.config(ZENDESK_SECRET)),
            ("intercom", json!({"client_secret": INTERCOM_SECRET})),
            ("chatwoot", json!({"webhook_secret": CHATWOOT_SECRET})),
            (
                "freshdesk",
                json!({"basic_user": FRESHDESK_USER, "basic_password": FRESHDESK_PASSWORD}),
            ),
            ("generic", json!({"secret": GENERIC_SECRET})),
        ] {
            let (status, body) = hooks.configure(platform, config).await;
            assert_eq!(status, StatusCode::OK, "{platform}: {body}");
        }
        hooks.survey(SURVEY, json!({})).await;
        hooks
    }

    async fn configure(&self, platform: &str, config: Value) -> (StatusCode, Value) {
        self.server
            .send(
                Method::PUT,
                &format!("/v1/channels/{platform}"),
                Some(&self.key),
                Some(config),
            )
            .await
    }

    /// A CSAT survey started by closed tickets, asked by SMS, else by e-mail.
    async fn survey(&self, key: &str, extra: Value) {
        let mut body = json!({
            "metric": "csat",
            "question": {"en": "How satisfied are you with the service you received today?"},
            "channels": ["sms", "email"],
            "trigger": "ticket_closed",
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, answer) = self
            .server
            .send(
                Method::PUT,
                &format!("/v1/surveys/{key}"),
                Some(&self.key),
                Some(body),
            )
            .await;
        assert!(status.is_success(), "{answer}");
    }

    async fn post(
        &self,
        path: &str,
        body: &[u8],
        headers: &[(String, String)],
    ) -> (StatusCode, Value) {
        let mut req = self
            .server
            .client
            .post(self.server.url(path))
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Delivers `body` as the platform would, signed now (a second later than the previous).
    async fn deliver(&self, platform: &str, body: &[u8], delivery: &str) -> (StatusCode, Value) {
        let tick = self.clock.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let at = Utc::now() + chrono::Duration::seconds(tick);
        let headers = signed_headers(platform, body, delivery, at);
        self.post(&format!("/hooks/acme/{platform}"), body, &headers)
            .await
    }

    async fn count_where(&self, sql: &str) -> i64 {
        let db = &self.server.db;
        let row = db
            .read
            .query_one_raw(Statement::from_string(db.backend(), sql.to_owned()))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap()
    }

    async fn scheduled(&self) -> i64 {
        self.count_where("SELECT COUNT(*) AS n FROM invitations WHERE status = 'scheduled'")
            .await
    }

    async fn feedback(&self, id: &str) -> Value {
        let (status, body) = self
            .server
            .get(&format!("/v1/feedback/{id}"), &self.key)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

fn only_invitation(answer: &Value) -> &Value {
    let invitations = answer["invitations"].as_array().expect("invitations");
    assert_eq!(invitations.len(), 1, "{answer}");
    &invitations[0]
}

async fn closed_tickets_from_every_platform_schedule_surveys(backend: Backend) {
    let hooks = Hooks::start(backend).await;
    // (platform, fixture, channel, ticket, agent, team)
    let cases = [
        (
            "zendesk",
            "zendesk_trigger_solved",
            "sms",
            "4711",
            "7001",
            "301",
        ),
        (
            "intercom",
            "intercom_conversation_admin_closed",
            "email",
            "147",
            "814860",
            "5017691",
        ),
        (
            "freshdesk",
            "freshdesk_ticket_resolved",
            "email",
            "20931",
            "sofie@acme.example",
            "Billing",
        ),
        (
            "chatwoot",
            "chatwoot_conversation_resolved",
            "sms",
            "42",
            "7",
            "2",
        ),
        (
            "generic",
            "generic_ticket_closed",
            "sms",
            "CALL-2026-11-24-0042",
            "ext-214",
            "phone-support",
        ),
    ];
    for (platform, name, channel, ticket, agent, team) in cases {
        let (status, answer) = hooks
            .deliver(platform, &fixture(name), &format!("{platform}-1"))
            .await;
        assert_eq!(status, StatusCode::OK, "{platform}: {answer}");
        assert_eq!(answer["status"], "accepted", "{platform}: {answer}");
        let invitation = only_invitation(&answer);
        assert_eq!(invitation["survey"], SURVEY);
        assert_eq!(invitation["status"], "scheduled", "{platform}: {answer}");
        assert_eq!(invitation["channel"], channel, "{platform}: {answer}");
        assert_eq!(invitation["ticket_ref"], ticket, "{platform}");
        assert_eq!(invitation["agent_ref"], agent, "{platform}");
        assert_eq!(invitation["team_ref"], team, "{platform}");
    }
    assert_eq!(hooks.scheduled().await, 5);
    assert_eq!(hooks.server.count("raw_events").await, 5);
    // The Zendesk trigger carried the address: no lookup was needed.
    assert_eq!(hooks.zendesk.requests(), 0);
    hooks.server.stop().await;
}

async fn closed_reopened_and_closed_again_asks_once(backend: Backend) {
    let hooks = Hooks::start(backend).await;
    let solved = fixture("zendesk_trigger_solved");
    let (status, first) = hooks.deliver("zendesk", &solved, "inv-1").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(only_invitation(&first)["status"], "scheduled");

    // Zendesk retries the same invocation: answered, nothing new.
    let (status, again) = hooks.deliver("zendesk", &solved, "inv-1").await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["status"], "duplicate");

    let reopened = fixture_with("zendesk_trigger_solved", json!({"/status": "Open"}));
    let (status, ignored) = hooks.deliver("zendesk", &reopened, "inv-2").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{ignored}");
    assert_eq!(ignored["status"], "ignored");

    let (status, second) = hooks.deliver("zendesk", &solved, "inv-3").await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let invitation = only_invitation(&second);
    assert_eq!(invitation["status"], "suppressed", "{second}");
    assert_eq!(invitation["reason"], "one_per_ticket", "{second}");

    assert_eq!(hooks.scheduled().await, 1);
    // Two deliveries stored (the redelivery and the ignored re-open are not).
    assert_eq!(hooks.server.count("raw_events").await, 2);
    hooks.server.stop().await;
}

/// In a conversation an agent started, Intercom's `source.author` is the agent: the survey must
/// go to the customer (looked up by the contact id the notification carries), or to nobody.
async fn intercom_asks_the_customer_never_the_agent(backend: Backend) {
    let hooks = Hooks::start(backend).await;
    let admin_initiated = fixture("intercom_conversation_admin_initiated_closed");
    let agent_email = "maja.holm@acme.example";

    // Without an access token the customer cannot be looked up: suppressed, not sent to the
    // agent.
    let (status, answer) = hooks.deliver("intercom", &admin_initiated, "unused").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let invitation = only_invitation(&answer);
    assert_eq!(invitation["status"], "suppressed", "{answer}");
    assert_eq!(invitation["reason"], "no_channel", "{answer}");
    assert_eq!(invitation["agent_ref"], "814860");
    let agent_identities =
        format!("SELECT COUNT(*) AS n FROM contact_identities WHERE value = '{agent_email}'");
    assert_eq!(hooks.count_where(&agent_identities).await, 0);

    // With a token, the contact is looked up; a failure for now asks Intercom to deliver again.
    let (status, body) = hooks
        .configure(
            "intercom",
            json!({"client_secret": INTERCOM_SECRET, "access_token": fake_intercom::ACCESS_TOKEN}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    hooks.intercom.add_contact(
        "6762f1261bb69f9f2193bba7",
        "user",
        "Sofie Dahl",
        "sofie.dahl@example.com",
        Some("+4522446688"),
    );
    hooks.intercom.add_contact(
        "5ba682d23d7cf92bef87bfd4",
        "lead",
        "Ben Olsen",
        "ben.olsen@example.com",
        None,
    );
    let sofie = fixture_with(
        "intercom_conversation_admin_initiated_closed",
        json!({"/id": "notif_sofie", "/data/item/id": "4816"}),
    );
    hooks
        .intercom
        .fail_next(1, StatusCode::INTERNAL_SERVER_ERROR);
    let (status, body) = hooks.deliver("intercom", &sofie, "unused").await;
    assert_problem(status, &body, 503, "upstream-unavailable");
    let (status, answer) = hooks.deliver("intercom", &sofie, "unused").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let invitation = only_invitation(&answer);
    assert_eq!(invitation["status"], "scheduled", "{answer}");
    assert_eq!(invitation["channel"], "sms", "{answer}");
    let sofie_contact = invitation["contact_id"].as_str().unwrap().to_owned();

    // Another customer's conversation with the same agent: another contact.
    let ben = fixture_with(
        "intercom_conversation_admin_initiated_closed",
        json!({"/id": "notif_ben", "/data/item/id": "4817",
               "/data/item/contacts/contacts/0/id": "5ba682d23d7cf92bef87bfd4",
               "/data/item/contacts/contacts/0/external_id": "crm-1"}),
    );
    let (status, answer) = hooks.deliver("intercom", &ben, "unused").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let invitation = only_invitation(&answer);
    assert_eq!(invitation["status"], "scheduled", "{answer}");
    assert_eq!(invitation["channel"], "email", "{answer}");
    assert_ne!(invitation["contact_id"], sofie_contact.as_str());
    assert_eq!(hooks.intercom.requests(), 3);

    let (_, contact) = hooks
        .server
        .get(&format!("/v1/contacts/{sofie_contact}"), &hooks.key)
        .await;
    let text = contact.to_string();
    assert!(text.contains("sofie.dahl@example.com"), "{contact}");
    assert!(!text.contains(agent_email), "{contact}");
    assert_eq!(hooks.count_where(&agent_identities).await, 0);
    hooks.server.stop().await;
}

/// Zendesk renders `{{ticket.status}}` in the requester's language. A status the gateway cannot
/// read (here Finnish, a language the gateway has no labels for) is kept, listed, and applied
/// once the tenant says what the label means.
async fn a_translated_status_is_kept_and_replayed_once_it_can_be_read(backend: Backend) {
    let hooks = Hooks::start(backend).await;
    let finnish = fixture_with("zendesk_trigger_solved", json!({"/status": "Ratkaistu"}));
    let (status, answer) = hooks.deliver("zendesk", &finnish, "inv-fi").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["status"], "unreadable", "{answer}");
    assert_eq!(
        (&answer["field"], &answer["value"]),
        (&json!("status"), &json!("Ratkaistu"))
    );
    assert_eq!(hooks.scheduled().await, 0);
    // Zendesk delivers it again: kept once.
    let (_, again) = hooks.deliver("zendesk", &finnish, "inv-fi").await;
    assert_eq!(again["status"], "duplicate", "{again}");

    let (status, list) = hooks
        .server
        .get("/v1/raw-events?outcome=unreadable", &hooks.key)
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["reason"]["value"], "Ratkaistu");
    let id = items[0]["id"].as_str().unwrap().to_owned();
    let replay = format!("/v1/raw-events/{id}/replay");

    // Replayed before the label is known: still unreadable, nothing changes.
    let (status, problem) = hooks.server.post(&replay, &hooks.key, json!({})).await;
    assert_problem(status, &problem, 422, "validation-failed");
    assert_eq!(hooks.scheduled().await, 0);

    // The tenant maps the label; the replay schedules the survey, once.
    let mut config = hooks.zendesk.config(ZENDESK_SECRET);
    config["status_labels"] = json!({"Ratkaistu": "solved", "Suljettu": "closed"});
    let (status, body) = hooks.configure("zendesk", config).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, applied) = hooks.server.post(&replay, &hooks.key, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{applied}");
    assert_eq!(
        only_invitation(&applied)["status"],
        "scheduled",
        "{applied}"
    );
    let (status, problem) = hooks.server.post(&replay, &hooks.key, json!({})).await;
    assert_problem(status, &problem, 409, "not-replayable");
    assert_eq!(hooks.scheduled().await, 1);
    let (_, list) = hooks
        .server
        .get("/v1/raw-events?outcome=unreadable", &hooks.key)
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "{list}");

    // From now on the label is read as it arrives.
    let (status, answer) = hooks
        .deliver(
            "zendesk",
            &fixture_with(
                "zendesk_trigger_solved",
                json!({"/status": "Suljettu", "/ticket_id": "4712"}),
            ),
            "inv-fi-2",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["event"], "trigger.ticket_solved", "{answer}");
    // Read and decided (the same customer rests after the first survey).
    assert_eq!(
        only_invitation(&answer)["reason"],
        "rest_period",
        "{answer}"
    );
    hooks.server.stop().await;
}

/// The README's template names the event literally, so no translation can hide it; a template
/// already in use that sends `{{ticket.status}}` works in the labels Zendesk itself uses.
async fn the_recommended_trigger_needs_no_translated_placeholder(backend: Backend) {
    let hooks = Hooks::start(backend).await;
    for (name, delivery) in [
        ("zendesk_trigger_solved_literal", "inv-literal"),
        ("zendesk_trigger_solved_translated", "inv-da"),
    ] {
        let (status, answer) = hooks.deliver("zendesk", &fixture(name), delivery).await;
        assert_eq!(status, StatusCode::OK, "{name}: {answer}");
        assert_eq!(answer["event"], "trigger.ticket_solved", "{name}: {answer}");
        assert_eq!(
            only_invitation(&answer)["status"],
            "scheduled",
            "{name}: {answer}"
        );
    }
    assert_eq!(hooks.scheduled().await, 2);
    hooks.server.stop().await;
}

async fn zendesk_events_look_the_requester_up(backend: Backend) {
    let hooks = Hooks::start(backend).await;
    hooks.zendesk.add_user(
        "8447388090495",
        "Frida Lund",
        "frida.lund@example.com",
        None,
    );
    let event = fixture("zendesk_ticket_status_changed");

    // The lookup fails for now: Zendesk is asked to deliver again, nothing is stored.
    hooks
        .zendesk
        .fail_next(1, StatusCode::INTERNAL_SERVER_ERROR);
    let (status, body) = hooks.deliver("zendesk", &event, "inv-1").await;
    assert_problem(status, &body, 503, "upstream-unavailable");
    assert_eq!(hooks.server.count("raw_events").await, 0);
    hooks.zendesk.fail_next(1, StatusCode::TOO_MANY_REQUESTS);
    let (status, body) = hooks.deliver("zendesk", &event, "inv-1").await;
    assert_problem(status, &body, 503, "upstream-unavailable");

    // The redelivery finds the user: the survey goes by e-mail (she has no phone).
    let (status, answer) = hooks.deliver("zendesk", &event, "inv-1").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let invitation = only_invitation(&answer);
    assert_eq!(invitation["status"], "scheduled", "{answer}");
    assert_eq!(invitation["channel"], "email");
    assert_eq!(invitation["ticket_ref"], "5158");
    assert_eq!(invitation["agent_ref"], "8447388090494");
    assert_eq!(invitation["team_ref"], "8447320466430");
    assert_eq!(hooks.zendesk.requests(), 3);
    // Zendesk delivers it once more: answered from what is stored, no second lookup.
    let (status, again) = hooks.deliver("zendesk", &event, "inv-1").await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["status"], "duplicate");
    assert_eq!(hooks.zendesk.requests(), 3);

    // The contact carries the looked-up address and the Zendesk id.
    let contact_id = invitation["contact_id"].as_str().unwrap();
    let (status, contact) = hooks
        .server
        .get(&format!("/v1/contacts/{contact_id}"), &hooks.key)
        .await;
    assert_eq!(status, StatusCode::OK, "{contact}");
    let text = contact.to_string();
    assert!(text.contains("frida.lund@example.com"), "{contact}");
    assert!(text.contains("zendesk:8447388090495"), "{contact}");

    // A requester Zendesk no longer knows: the ticket is kept, its survey suppressed.
    let unknown = fixture_with(
        "zendesk_ticket_status_changed",
        json!({"/id": "0b0e6f7a-unknown", "/detail/id": "5159",
               "/detail/requester_id": "404404"}),
    );
    let (status, answer) = hooks.deliver("zendesk", &unknown, "inv-2").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let invitation = only_invitation(&answer);
    assert_eq!(invitation["status"], "suppressed", "{answer}");
    assert_eq!(invitation["reason"], "no_channel", "{answer}");
    assert_eq!(hooks.server.count("raw_events").await, 2);
    hooks.server.stop().await;
}

async fn platform_ratings_become_feedback_once_and_follow_changes(backend: Backend) {
    let hooks = Hooks::start(backend).await;
    let good = fixture("zendesk_trigger_rating_good");
    let (status, answer) = hooks.deliver("zendesk", &good, "inv-1").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["ratings"][0]["outcome"], "created", "{answer}");
    let id = answer["ratings"][0]["feedback_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let record = hooks.feedback(&id).await;
    assert_eq!(record["channel"], "zendesk");
    assert_eq!(record["metric"], "csat");
    assert_eq!(record["score"], 1);
    assert_eq!(record["scale"], "good-bad");
    assert_eq!(record["comment"], "Hurtigt svar");
    assert_eq!(
        (
            &record["ticket_ref"],
            &record["agent_ref"],
            &record["team_ref"]
        ),
        (&json!("4711"), &json!("7001"), &json!("301"))
    );

    // A redelivery, and the same rating in a new delivery: one record, unchanged.
    let (_, again) = hooks.deliver("zendesk", &good, "inv-1").await;
    assert_eq!(again["status"], "duplicate");
    let (_, same) = hooks.deliver("zendesk", &good, "inv-2").await;
    assert_eq!(same["ratings"][0]["outcome"], "unchanged", "{same}");

    // The customer turns good into bad: the same record changes.
    let bad = fixture("zendesk_trigger_rating_bad");
    let (status, changed) = hooks.deliver("zendesk", &bad, "inv-3").await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["ratings"][0]["outcome"], "updated", "{changed}");
    assert_eq!(changed["ratings"][0]["feedback_id"], id.as_str());
    let record = hooks.feedback(&id).await;
    assert_eq!(record["score"], 0);
    assert_eq!(record["comment"], "Pakken kom aldrig");
    assert_eq!(
        record["metadata"]["reason"], "The issue was not resolved",
        "{record}"
    );

    // The other platforms' ratings, each on its scale.
    for (platform, name, delivery, score, scale, comment) in [
        (
            "intercom",
            "intercom_conversation_rating_added",
            "",
            2,
            "1-5",
            "Took three days",
        ),
        (
            "freshdesk",
            "freshdesk_satisfaction_rating",
            "",
            5,
            "1-5",
            "Very helpful",
        ),
        (
            "chatwoot",
            "chatwoot_csat_submitted",
            "cw-1",
            4,
            "1-5",
            "Nice and quick",
        ),
    ] {
        let (status, answer) = hooks.deliver(platform, &fixture(name), delivery).await;
        assert_eq!(status, StatusCode::OK, "{platform}: {answer}");
        assert_eq!(answer["ratings"][0]["outcome"], "created", "{answer}");
        // Intercom's notification id and Chatwoot's delivery header de-duplicate; Freshdesk
        // sends neither, and its rating id keeps the record single.
        let (_, again) = hooks.deliver(platform, &fixture(name), delivery).await;
        let expected = if platform == "freshdesk" {
            "accepted"
        } else {
            "duplicate"
        };
        assert_eq!(again["status"], expected, "{platform}: {again}");
        let record = hooks
            .feedback(answer["ratings"][0]["feedback_id"].as_str().unwrap())
            .await;
        assert_eq!(record["channel"], platform);
        assert_eq!(record["score"], score, "{platform}: {record}");
        assert_eq!(record["scale"], scale, "{platform}: {record}");
        assert_eq!(record["comment"], comment, "{platform}: {record}");
    }
    assert_eq!(hooks.server.count("feedback").await, 4);

    // The outbox carried a creation and an update of the Zendesk record, nothing more.
    hooks.server.settle().await;
    let zendesk_events: Vec<String> = hooks
        .events
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, aggregate)| *aggregate == id)
        .map(|(kind, _)| kind.clone())
        .collect();
    assert_eq!(zendesk_events, ["feedback.created", "feedback.updated"]);

    // One CSAT across the platforms: Freshdesk's 5 and Chatwoot's 4 are satisfied, Intercom's
    // 2 and Zendesk's (now bad) rating are not.
    let (status, overall) = hooks.server.get("/v1/scores?metric=csat", &hooks.key).await;
    assert_eq!(status, StatusCode::OK, "{overall}");
    assert_eq!(overall["responses"], 4, "{overall}");
    assert_eq!(overall["score"], 50.0, "{overall}");
    let (_, scores) = hooks
        .server
        .get("/v1/scores?metric=csat&group_by=agent", &hooks.key)
        .await;
    let agents: Vec<&str> = scores["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["key"].as_str().unwrap())
        .collect();
    assert!(agents.contains(&"7001"), "{scores}");
    hooks.server.stop().await;
}

async fn bad_requests_are_refused_and_store_nothing(backend: Backend) {
    let hooks = Hooks::start(backend).await;
    let solved = fixture("zendesk_trigger_solved");
    let now = Utc::now();
    let zendesk_headers = signed_headers("zendesk", &solved, "inv-1", now);
    let without = |name: &str, headers: &[(String, String)]| -> Vec<(String, String)> {
        headers.iter().filter(|(k, _)| k != name).cloned().collect()
    };
    let with = |name: &str, value: &str, headers: &[(String, String)]| {
        let mut h = without(name, headers);
        h.push((name.to_owned(), value.to_owned()));
        h
    };
    let tampered = fixture_with("zendesk_trigger_solved", json!({"/ticket_id": "4712"}));
    let not_json = b"{\"ticket_id\": 4711,".to_vec();

    // (what, path, body, headers, status, problem kind)
    type Case<'a> = (
        &'a str,
        String,
        Vec<u8>,
        Vec<(String, String)>,
        u16,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "no signature",
            "/hooks/acme/zendesk".into(),
            solved.clone(),
            without(zendesk::SIGNATURE_HEADER, &zendesk_headers),
            401,
            "webhook-unverified",
        ),
        (
            "no timestamp",
            "/hooks/acme/zendesk".into(),
            solved.clone(),
            without(zendesk::TIMESTAMP_HEADER, &zendesk_headers),
            401,
            "webhook-unverified",
        ),
        (
            "signature of another body",
            "/hooks/acme/zendesk".into(),
            tampered.clone(),
            zendesk_headers.clone(),
            403,
            "forbidden",
        ),
        (
            "signature with another secret",
            "/hooks/acme/zendesk".into(),
            solved.clone(),
            with(
                zendesk::SIGNATURE_HEADER,
                &zendesk::signature("another-secret", &now.to_rfc3339(), &solved),
                &zendesk_headers,
            ),
            403,
            "forbidden",
        ),
        (
            "zendesk timestamp ten minutes old",
            "/hooks/acme/zendesk".into(),
            solved.clone(),
            signed_headers("zendesk", &solved, "inv-1", now - Duration::minutes(10)),
            403,
            "forbidden",
        ),
        (
            "chatwoot timestamp ten minutes ahead",
            "/hooks/acme/chatwoot".into(),
            fixture("chatwoot_conversation_resolved"),
            signed_headers(
                "chatwoot",
                &fixture("chatwoot_conversation_resolved"),
                "cw-1",
                now + Duration::minutes(10),
            ),
            403,
            "forbidden",
        ),
        (
            "generic timestamp an hour old",
            "/hooks/acme/generic".into(),
            fixture("generic_ticket_closed"),
            signed_headers(
                "generic",
                &fixture("generic_ticket_closed"),
                "msg_1",
                now - Duration::hours(1),
            ),
            403,
            "forbidden",
        ),
        (
            "intercom signature of another body",
            "/hooks/acme/intercom".into(),
            fixture("intercom_conversation_admin_closed"),
            signed_headers("intercom", &fixture("intercom_ping"), "", now),
            403,
            "forbidden",
        ),
        (
            "freshdesk without basic auth",
            "/hooks/acme/freshdesk".into(),
            fixture("freshdesk_ticket_resolved"),
            vec![],
            401,
            "webhook-unverified",
        ),
        (
            "freshdesk with a wrong password",
            "/hooks/acme/freshdesk".into(),
            fixture("freshdesk_ticket_resolved"),
            vec![(
                "authorization".into(),
                "Basic ZnJlc2hkZXNrLWhvb2s6d3Jvbmc=".into(),
            )],
            403,
            "forbidden",
        ),
        (
            "signed but not JSON",
            "/hooks/acme/zendesk".into(),
            not_json.clone(),
            signed_headers("zendesk", &not_json, "inv-9", now),
            422,
            "validation-failed",
        ),
        (
            "signed JSON without a ticket id",
            "/hooks/acme/zendesk".into(),
            b"{\"status\": \"solved\"}".to_vec(),
            signed_headers("zendesk", b"{\"status\": \"solved\"}", "inv-8", now),
            422,
            "validation-failed",
        ),
        (
            "unknown tenant",
            "/hooks/nobody/zendesk".into(),
            solved.clone(),
            zendesk_headers.clone(),
            404,
            "not-found",
        ),
        (
            "unknown platform",
            "/hooks/acme/helpscout".into(),
            solved.clone(),
            zendesk_headers.clone(),
            404,
            "not-found",
        ),
        (
            "body over the limit",
            "/hooks/acme/zendesk".into(),
            // Over the 64 KiB limit, yet small enough that the client has sent it all before
            // the server answers 413 and closes: a much larger body races that close and may
            // see the connection reset instead of the answer.
            vec![b' '; 70_000],
            zendesk_headers.clone(),
            413,
            "payload-too-large",
        ),
    ];
    for (what, path, body, headers, want_status, want_kind) in cases {
        let (status, answer) = hooks.post(&path, &body, &headers).await;
        assert_eq!(status.as_u16(), want_status, "{what}: {answer}");
        assert_problem(status, &answer, want_status, want_kind);
    }

    // A platform the tenant did not configure.
    hooks.server.tenant("globex").await;
    let (status, answer) = hooks
        .post("/hooks/globex/zendesk", &solved, &zendesk_headers)
        .await;
    assert_problem(status, &answer, 404, "not-found");

    for table in ["raw_events", "feedback", "invitations", "policy_decisions"] {
        assert_eq!(hooks.server.count(table).await, 0, "{table}");
    }
    // The same request, correctly signed, is taken.
    let (status, answer) = hooks
        .post("/hooks/acme/zendesk", &solved, &zendesk_headers)
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    hooks.server.stop().await;
}

async fn a_ticket_without_any_address_is_kept_and_not_surveyed(backend: Backend) {
    let hooks = Hooks::start(backend).await;
    let body = fixture("freshdesk_ticket_resolved_no_contact");
    let (status, answer) = hooks.deliver("freshdesk", &body, "").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["unreachable"], json!([SURVEY]), "{answer}");
    assert_eq!(answer["invitations"], json!([]));
    assert_eq!(hooks.server.count("raw_events").await, 1);
    assert_eq!(hooks.server.count("invitations").await, 0);
    assert_eq!(
        hooks
            .count_where(
                "SELECT COUNT(*) AS n FROM policy_decisions \
                 WHERE rule = 'no_channel' AND outcome = 'suppressed' AND contact_id IS NULL"
            )
            .await,
        1
    );
    // An event we do not act on: answered 202, not stored.
    let (status, answer) = hooks
        .deliver("intercom", &fixture("intercom_ping"), "")
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["event"], "ping");
    assert_eq!(hooks.server.count("raw_events").await, 1);
    let metrics = hooks.server.metrics().await;
    assert!(
        metrics.contains(
            r#"webhook_requests_total{provider="intercom",kind="ignored",outcome="ignored"}"#
        ),
        "{metrics}"
    );
    hooks.server.stop().await;
}

async fn simultaneous_deliveries_ask_once_and_rate_once(backend: Backend) {
    let hooks = Arc::new(Hooks::start(backend).await);
    // Twelve deliveries of one body at once, each with its own delivery id (as when a ticket
    // is solved by several triggers, or a rating is re-sent by automations).
    for (fixture_name, prefix) in [
        ("zendesk_trigger_solved", "close"),
        ("zendesk_trigger_rating_good", "rate"),
    ] {
        let body = fixture(fixture_name);
        let start = Arc::new(tokio::sync::Barrier::new(12));
        let mut tasks = Vec::new();
        for i in 0..12 {
            let (hooks, body, start) = (hooks.clone(), body.clone(), start.clone());
            tasks.push(tokio::spawn(async move {
                // Each delivery signed at its own second: several triggers, not one replayed.
                let at = Utc::now() + chrono::Duration::seconds(i);
                let headers = signed_headers("zendesk", &body, &format!("{prefix}-{i}"), at);
                start.wait().await;
                hooks.post("/hooks/acme/zendesk", &body, &headers).await
            }));
        }
        for task in tasks {
            let (status, answer) = task.await.unwrap();
            assert_eq!(status, StatusCode::OK, "{fixture_name}: {answer}");
        }
    }
    assert_eq!(hooks.scheduled().await, 1);
    assert_eq!(hooks.server.count("feedback").await, 1);
    assert_eq!(hooks.server.count("raw_events").await, 24);
    let hooks = Arc::try_unwrap(hooks).ok().unwrap();
    hooks.server.stop().await;
}

async fn survey_sources_limit_the_platforms_that_trigger(backend: Backend) {
    let hooks = Hooks::start(backend).await;
    hooks
        .survey("after-chat", json!({"sources": ["intercom", "chatwoot"]}))
        .await;
    let (_, zendesk_answer) = hooks
        .deliver("zendesk", &fixture("zendesk_trigger_solved"), "inv-1")
        .await;
    let surveys = |answer: &Value| -> Vec<String> {
        let mut keys: Vec<String> = answer["invitations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["survey"].as_str().unwrap().to_owned())
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(surveys(&zendesk_answer), [SURVEY]);
    let (_, intercom_answer) = hooks
        .deliver(
            "intercom",
            &fixture("intercom_conversation_admin_closed"),
            "",
        )
        .await;
    assert_eq!(surveys(&intercom_answer), ["after-chat", SURVEY]);

    // Sources are checked when the survey is written.
    for (body, field) in [
        (
            json!({"metric": "csat", "question": {"en": "?"}, "channels": ["sms"],
                   "trigger": "ticket_closed", "sources": ["helpscout"]}),
            "sources[0]",
        ),
        (
            json!({"metric": "csat", "question": {"en": "?"}, "channels": ["sms"],
                   "trigger": "manual", "sources": ["zendesk"]}),
            "sources",
        ),
    ] {
        let (status, answer) = hooks
            .server
            .send(Method::PUT, "/v1/surveys/bad", Some(&hooks.key), Some(body))
            .await;
        assert_problem(status, &answer, 422, "validation-failed");
        assert_eq!(answer["errors"][0]["field"], field, "{answer}");
    }
    let (_, shown) = hooks.server.get("/v1/surveys/after-chat", &hooks.key).await;
    assert_eq!(shown["sources"], json!(["intercom", "chatwoot"]));
    hooks.server.stop().await;
}

async fn platform_configuration_keeps_its_secrets(backend: Backend) {
    let hooks = Hooks::start(backend).await;
    let (status, answer) = hooks
        .configure("zendesk", json!({"api_user": "a@b.c"}))
        .await;
    assert_problem(status, &answer, 422, "validation-failed");
    let fields: Vec<&str> = answer["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"signing_secret"), "{answer}");
    assert!(fields.contains(&"api_token"), "{answer}");

    let (status, shown) = hooks.server.get("/v1/channels/zendesk", &hooks.key).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    let text = shown.to_string();
    assert!(!text.contains(ZENDESK_SECRET), "{shown}");
    assert!(!text.contains(common::fake_zendesk::API_TOKEN), "{shown}");
    assert_eq!(shown["secrets_set"], json!(["api_token", "signing_secret"]));
    assert_eq!(
        shown["settings"]["api_user"],
        common::fake_zendesk::API_USER
    );

    let (status, answer) = hooks.configure("helpscout", json!({})).await;
    assert_problem(status, &answer, 404, "not-found");

    // Chatwoot before 4.11 signs nothing: a token in the hook URL stands in.
    let token = "cw-url-token-0123456789abcdef";
    let (status, answer) = hooks
        .configure("chatwoot", json!({"url_token": token}))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let body = fixture("chatwoot_conversation_resolved");
    let (status, answer) = hooks.post("/hooks/acme/chatwoot", &body, &[]).await;
    assert_problem(status, &answer, 401, "webhook-unverified");
    let (status, answer) = hooks
        .post("/hooks/acme/chatwoot?token=guess", &body, &[])
        .await;
    assert_problem(status, &answer, 403, "forbidden");
    let (status, answer) = hooks
        .post(&format!("/hooks/acme/chatwoot?token={token}"), &body, &[])
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(only_invitation(&answer)["status"], "scheduled");
    hooks.server.stop().await;
}

async fn a_closed_ticket_is_asked_by_sms_and_scored_by_agent_and_team(backend: Backend) {
    let hooks = Hooks::start(backend).await;
    let twilio = &hooks.twilio;
    let (status, body) = hooks.configure("twilio", twilio.config(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Asked at once, whatever the hour.
    hooks
        .survey(
            SURVEY,
            json!({"policy": {"send_delay_minutes": 0, "quiet_hours": null}}),
        )
        .await;
    let (status, answer) = hooks
        .deliver("zendesk", &fixture("zendesk_trigger_solved"), "inv-1")
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(only_invitation(&answer)["channel"], "sms");

    for _ in 0..500 {
        hooks.server.dispatcher.run_once().await.unwrap();
        if !twilio.sent().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let sent = twilio.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].to, "+4522334455");

    // The customer answers 2: the record carries the ticket, agent and team of the webhook.
    let path = "/hooks/acme/twilio/sms";
    let params = inbound_sms("+4522334455", "2", "SM0000000000000000000000000000a001");
    let signature =
        channels::messaging::twilio::signature(AUTH_TOKEN, &format!("{PUBLIC_URL}{path}"), &params);
    let resp = hooks
        .server
        .client
        .post(hooks.server.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", signature)
        .body(form(&params))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (_, list) = hooks.server.get("/v1/feedback", &hooks.key).await;
    let record = &list["items"][0];
    assert_eq!(record["channel"], "sms", "{list}");
    assert_eq!(record["score"], 2, "{list}");
    assert_eq!(
        (
            &record["ticket_ref"],
            &record["agent_ref"],
            &record["team_ref"]
        ),
        (&json!("4711"), &json!("7001"), &json!("301")),
        "{record}"
    );

    hooks.server.settle().await;
    for (group_by, key) in [("agent", "7001"), ("team", "301")] {
        let (status, scores) = hooks
            .server
            .get(
                &format!("/v1/scores?metric=csat&group_by={group_by}"),
                &hooks.key,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{scores}");
        assert_eq!(scores["groups"][0]["key"], key, "{scores}");
        assert_eq!(scores["groups"][0]["responses"], 1, "{scores}");
        assert_eq!(scores["groups"][0]["score"], 0.0, "{scores}");
    }
    hooks.server.stop().await;
}
