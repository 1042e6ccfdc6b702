//! The SMS channel over Twilio, end to end: a survey goes out through a fake Twilio REST API,
//! the customer's signed replies come back through `/hooks/{tenant}/twilio/sms`, and become one
//! scored record with its comment. Plus signatures, redeliveries, STOP, provider errors and
//! delivery reports.

mod common;

use std::sync::Arc;
use std::time::Duration;

use channels::messaging::twilio::signature;
use common::fake_twilio::{form, inbound_sms, FakeTwilio, Refusal, ACCOUNT_SID, AUTH_TOKEN, FROM};
use common::{assert_problem, Backend, EventTypes, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const PUBLIC_URL: &str = "https://feedback.example.com";
const CUSTOMER: &str = "+4522334455";
const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#;

fn twiml(message: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>{message}</Message></Response>"#
    )
}

on_both_backends!(
    a_survey_goes_out_and_two_replies_make_one_scored_record,
    bad_signatures_and_bad_requests_store_nothing,
    a_redelivered_message_is_stored_once,
    two_replies_at_once_land_in_one_record,
    an_unreadable_reply_is_kept_and_asked_about_once,
    a_second_score_updates_the_record,
    a_reply_without_an_open_invitation_is_unsolicited_text,
    stop_opts_out_and_start_opts_back_in,
    provider_errors_retry_or_give_up,
    delivery_reports_move_the_invitation,
    channel_configuration_keeps_its_secret,
    a_burst_of_replies_is_applied_as_one_by_one,
    a_reply_the_database_refuses_fails_only_itself,
);

struct Sms {
    server: TestServer,
    twilio: FakeTwilio,
    key: String,
    events: Arc<EventTypes>,
}

/// A gateway with tenant `acme`, Twilio configured on the fake, and a Danish CSAT survey that
/// goes out at once.
async fn setup(backend: Backend, extra_config: Value) -> Sms {
    let events = Arc::new(EventTypes::default());
    let twilio = FakeTwilio::start().await;
    let server = TestServer::start_with(
        backend,
        |c| {
            c.public_url = PUBLIC_URL.into();
            c.providers.set_api_base_url("twilio", twilio.base.clone());
        },
        vec![events.clone()],
    )
    .await;
    let key = server.tenant("acme").await;
    let (status, body) = server
        .send(
            Method::PUT,
            "/v1/channels/twilio",
            Some(&key),
            Some(twilio.config(extra_config)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    survey(&server, &key, "csat", "csat").await;
    Sms {
        server,
        twilio,
        key,
        events,
    }
}

async fn survey(server: &TestServer, key: &str, name: &str, metric: &str) {
    let (status, body) = server
        .send(
            Method::PUT,
            &format!("/v1/surveys/{name}"),
            Some(key),
            Some(json!({
                "metric": metric,
                "question": {
                    "da": "Hvor tilfreds er du med den service, du modtog i dag? Svar 1-5.",
                    "en": "How satisfied are you with the service you received today? Answer 1-5."
                },
                "default_language": "da",
                "channels": ["sms"],
                "policy": {"send_delay_minutes": 0, "quiet_hours": null, "rest_period_days": 0,
                           "max_per_window": 1000, "one_per_ticket": false}
            })),
        )
        .await;
    assert!(status.is_success(), "{body}");
}

impl Sms {
    /// Triggers the survey for a phone number and runs the dispatcher until Twilio has it.
    async fn ask(&self, survey: &str, phone: &str, extra: Value) -> Value {
        let mut body =
            json!({"contact": {"phone": phone}, "ticket_ref": "T-1", "agent_ref": "agent-7"});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let (status, inv) = self
            .server
            .post(&format!("/v1/surveys/{survey}/send"), &self.key, body)
            .await;
        assert_eq!(status.as_u16(), 202, "{inv}");
        assert_eq!(inv["status"], "scheduled", "{inv}");
        let before = self.twilio.sent().len();
        self.dispatch_until(|| self.twilio.sent().len() > before)
            .await;
        // The server's own dispatcher may be the one that sent it, and record it as sent a
        // moment after Twilio took it: a reply before that would find no open invitation.
        for _ in 0..500 {
            if self.invitation(&inv["id"]).await["status"] == "sent" {
                return inv;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("invitation {} was not marked sent", inv["id"]);
    }

    async fn dispatch_until(&self, done: impl Fn() -> bool) {
        for _ in 0..500 {
            self.server.dispatcher.run_once().await.unwrap();
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("dispatch did not finish");
    }

    /// The invitation once a dispatch round (the test's or the background one, which may
    /// have made the provider call the test waited for) has settled it.
    async fn settled(&self, id: &Value) -> Value {
        for _ in 0..200 {
            let stored = self.invitation(id).await;
            if stored["status"] != "scheduled" {
                return stored;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.invitation(id).await
    }

    async fn invitation(&self, id: &Value) -> Value {
        self.server.invitation(&self.key, id).await
    }

    async fn feedback(&self) -> Vec<Value> {
        let (status, list) = self.server.get("/v1/feedback?limit=100", &self.key).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        list["items"].as_array().unwrap().clone()
    }

    /// Posts a message from `from` as Twilio would, correctly signed.
    async fn text(&self, from: &str, body: &str) -> (StatusCode, String) {
        self.text_as("acme", &inbound_sms(from, body, &new_sid()))
            .await
    }

    async fn text_as(&self, slug: &str, params: &[(String, String)]) -> (StatusCode, String) {
        let path = format!("/hooks/{slug}/twilio/sms");
        let sig = signature(AUTH_TOKEN, &format!("{PUBLIC_URL}{path}"), params);
        post_form(&self.server, &path, params, Some(&sig)).await
    }
}

fn new_sid() -> String {
    format!("SM{}", uuid::Uuid::new_v4().simple())
}

async fn post_form(
    server: &TestServer,
    path: &str,
    params: &[(String, String)],
    signature: Option<&str>,
) -> (StatusCode, String) {
    post_raw(
        server,
        path,
        "application/x-www-form-urlencoded",
        form(params).into_bytes(),
        signature,
    )
    .await
}

async fn post_raw(
    server: &TestServer,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
    signature: Option<&str>,
) -> (StatusCode, String) {
    let mut req = server
        .client
        .post(server.url(path))
        .header("content-type", content_type)
        .body(body);
    if let Some(sig) = signature {
        req = req.header("X-Twilio-Signature", sig);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    if status.is_success() {
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/xml; charset=utf-8"
        );
    }
    (status, resp.text().await.unwrap())
}

fn problem(status: StatusCode, body: &str, want: u16, kind: &str) {
    let body: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{status} {body}"));
    assert_problem(status, &body, want, kind);
}

async fn a_survey_goes_out_and_two_replies_make_one_scored_record(backend: Backend) {
    let t = setup(
        backend,
        json!({"thank_you": {"da": "Tak for dit svar & god dag!"}}),
    )
    .await;
    let inv = t
        .ask("csat", "22 33 44 55", json!({"language": "da"}))
        .await;

    let sent = t.twilio.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, CUSTOMER);
    assert_eq!(sent[0].from.as_deref(), Some(FROM));
    assert_eq!(
        sent[0].body,
        "Hvor tilfreds er du med den service, du modtog i dag? Svar 1-5."
    );
    assert_eq!(
        sent[0].status_callback.as_deref(),
        Some(format!("{PUBLIC_URL}/hooks/acme/twilio/status").as_str())
    );
    let stored = t.invitation(&inv["id"]).await;
    assert_eq!(stored["status"], "sent");
    assert_eq!(stored["provider_ref"], sent[0].sid.as_str());

    let (status, answer) = t.text(CUSTOMER, "5 tak!").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer, twiml("Tak for dit svar &amp; god dag!"));
    let (status, answer) = t.text(CUSTOMER, "hurtig og venlig hjælp").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer, EMPTY_TWIML, "a comment is not answered");

    let records = t.feedback().await;
    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    assert_eq!(r["metric"], "csat");
    assert_eq!(r["score"], 5);
    assert_eq!(r["scale"], "1-5");
    assert_eq!(r["channel"], "sms");
    assert_eq!(r["provider"], "twilio");
    assert_eq!(r["comment"], "hurtig og venlig hjælp");
    assert_eq!(r["invitation_id"], inv["id"]);
    assert_eq!(r["ticket_ref"], "T-1");
    assert_eq!(r["agent_ref"], "agent-7");
    assert_eq!(r["language"], "da");
    assert_eq!(t.invitation(&inv["id"]).await["status"], "answered");

    t.server.settle().await;
    let (_, scores) = t.server.get("/v1/scores?metric=csat", &t.key).await;
    assert_eq!(scores["responses"], 1, "{scores}");
    assert_eq!(scores["satisfied"], 1, "{scores}");
    let (_, by_agent) = t
        .server
        .get("/v1/scores?metric=csat&group_by=agent", &t.key)
        .await;
    assert_eq!(by_agent["groups"][0]["key"], "agent-7", "{by_agent}");
    // Created once, updated once by the comment: two events, one record.
    assert_eq!(t.server.count("raw_events").await, 2);
    t.server.stop().await;
}

async fn bad_signatures_and_bad_requests_store_nothing(backend: Backend) {
    let t = setup(backend, json!({})).await;
    let path = "/hooks/acme/twilio/sms";
    let params = inbound_sms(CUSTOMER, "5", &new_sid());
    let url = format!("{PUBLIC_URL}{path}");
    let good = signature(AUTH_TOKEN, &url, &params);

    let (status, body) = post_form(&t.server, path, &params, None).await;
    problem(status, &body, 403, "forbidden");
    let (status, body) = post_form(&t.server, path, &params, Some("bm90IGEgc2lnbmF0dXJl")).await;
    problem(status, &body, 403, "forbidden");
    // Signed with another account's token, over another host, or over other parameters.
    let other_token = signature("another-token", &url, &params);
    let (status, body) = post_form(&t.server, path, &params, Some(&other_token)).await;
    problem(status, &body, 403, "forbidden");
    let other_host = signature(
        AUTH_TOKEN,
        &format!("https://Feedback.example.com{path}"),
        &params,
    );
    let (status, body) = post_form(&t.server, path, &params, Some(&other_host)).await;
    problem(status, &body, 403, "forbidden");
    let mut more = params.clone();
    more.push(("Body".into(), "10".into()));
    let (status, body) = post_form(&t.server, path, &more, Some(&good)).await;
    problem(status, &body, 403, "forbidden");
    // The URL with its default port is accepted, as Twilio's SDKs accept it.
    let with_port = signature(
        AUTH_TOKEN,
        &format!("https://feedback.example.com:443{path}"),
        &params,
    );
    assert_eq!(t.server.count("raw_events").await, 0);

    // Unknown tenant; another tenant's hook with this account's signature.
    let (status, body) =
        post_form(&t.server, "/hooks/nobody/twilio/sms", &params, Some(&good)).await;
    problem(status, &body, 404, "not-found");
    let other = t.server.tenant("other").await;
    let (status, body) =
        post_form(&t.server, "/hooks/other/twilio/sms", &params, Some(&good)).await;
    problem(status, &body, 404, "not-found");
    t.server
        .send(
            Method::PUT,
            "/v1/channels/twilio",
            Some(&other),
            Some(
                t.twilio
                    .config(json!({"auth_token": "other-auth-token-0123456789"})),
            ),
        )
        .await;
    let signed_for_other = signature(
        AUTH_TOKEN,
        &format!("{PUBLIC_URL}/hooks/other/twilio/sms"),
        &params,
    );
    let (status, body) = post_form(
        &t.server,
        "/hooks/other/twilio/sms",
        &params,
        Some(&signed_for_other),
    )
    .await;
    problem(status, &body, 403, "forbidden");

    // Not a form, too big, malformed, or signed but without a sender.
    let (status, body) = post_raw(
        &t.server,
        path,
        "application/json",
        b"{}".to_vec(),
        Some(&good),
    )
    .await;
    problem(status, &body, 415, "unsupported-media-type");
    let big = vec![b'a'; 70_000];
    let (status, body) = post_raw(
        &t.server,
        path,
        "application/x-www-form-urlencoded",
        [b"Body=".as_slice(), &big].concat(),
        Some(&good),
    )
    .await;
    problem(status, &body, 413, "payload-too-large");
    let (status, body) = post_raw(
        &t.server,
        path,
        "application/x-www-form-urlencoded",
        b"Body=%E6%&From=%2".to_vec(),
        Some(&good),
    )
    .await;
    problem(status, &body, 400, "malformed-form");
    let no_from: Vec<_> = params
        .iter()
        .filter(|(k, _)| k != "From")
        .cloned()
        .collect();
    let sig = signature(AUTH_TOKEN, &url, &no_from);
    let (status, body) = post_form(&t.server, path, &no_from, Some(&sig)).await;
    problem(status, &body, 422, "validation-failed");
    assert!(body.contains("From"), "{body}");
    let bad_from = inbound_sms("not a phone", "5", &new_sid());
    let sig = signature(AUTH_TOKEN, &url, &bad_from);
    let (status, body) = post_form(&t.server, path, &bad_from, Some(&sig)).await;
    problem(status, &body, 422, "validation-failed");

    assert_eq!(t.server.count("raw_events").await, 0, "nothing stored");
    assert_eq!(t.server.count("feedback").await, 0);
    assert_eq!(t.server.count("contacts").await, 0);
    let metrics = t.server.metrics().await;
    assert!(
        metrics
            .contains(r#"webhook_requests_total{provider="twilio",kind="sms",outcome="rejected"}"#),
        "rejections are counted"
    );

    // And the same request, correctly signed (with the default port), is accepted.
    let (status, _) = post_form(&t.server, path, &params, Some(&with_port)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(t.server.count("raw_events").await, 1);
    t.server.stop().await;
}

async fn a_redelivered_message_is_stored_once(backend: Backend) {
    let t = setup(backend, json!({"thank_you": {"da": "Tak!"}})).await;
    t.ask("csat", CUSTOMER, json!({})).await;
    let params = inbound_sms(CUSTOMER, "4", &new_sid());
    let first = t.text_as("acme", &params).await;
    assert_eq!(first, (StatusCode::OK, twiml("Tak!")));
    let again = t.text_as("acme", &params).await;
    assert_eq!(again, first, "a redelivery is answered the same");
    // Several deliveries of one new message at the same time.
    let params = inbound_sms(CUSTOMER, "god service", &new_sid());
    let answers = futures::future::join_all((0..8).map(|_| t.text_as("acme", &params))).await;
    for a in &answers {
        assert_eq!(a.0, StatusCode::OK, "{a:?}");
    }
    assert_eq!(t.server.count("raw_events").await, 2);
    let records = t.feedback().await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["score"], 4);
    assert_eq!(records[0]["comment"], "god service", "the comment once");
    t.server.stop().await;
}

async fn two_replies_at_once_land_in_one_record(backend: Backend) {
    let t = setup(backend, json!({})).await;
    for round in 0..5 {
        let phone = format!("+45223344{round:02}");
        let inv = t.ask("csat", &phone, json!({})).await;
        let (a, b) = tokio::join!(
            t.text(&phone, "5 tak!"),
            t.text(&phone, "hurtig og venlig hjælp")
        );
        assert_eq!((a.0, b.0), (StatusCode::OK, StatusCode::OK));
        let records: Vec<Value> = t
            .feedback()
            .await
            .into_iter()
            .filter(|r| r["invitation_id"] == inv["id"])
            .collect();
        assert_eq!(records.len(), 1, "{records:?}");
        assert_eq!(records[0]["score"], 5);
        assert_eq!(records[0]["metric"], "csat");
        assert_eq!(records[0]["comment"], "hurtig og venlig hjælp");
    }
    t.server.stop().await;
}

async fn an_unreadable_reply_is_kept_and_asked_about_once(backend: Backend) {
    let t = setup(
        backend,
        json!({"thank_you": {"da": "Tak!", "en": "Thanks!"}}),
    )
    .await;
    let inv = t.ask("csat", CUSTOMER, json!({"language": "da"})).await;
    let (_, answer) = t.text(CUSTOMER, "7 eller 8").await;
    assert_eq!(answer, twiml("Svar venligst med ét tal fra 1 til 5."));
    let (_, answer) = t.text(CUSTOMER, "6").await;
    assert_eq!(answer, EMPTY_TWIML, "asked once only");
    let records = t.feedback().await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["metric"], "text", "no score is guessed");
    assert_eq!(records[0]["score"], Value::Null);
    assert_eq!(records[0]["comment"], "7 eller 8\n6");
    t.server.settle().await;
    let (_, scores) = t.server.get("/v1/scores?metric=csat", &t.key).await;
    assert_eq!(scores["responses"], 0, "{scores}");

    let (_, answer) = t.text(CUSTOMER, "fire").await;
    assert_eq!(answer, twiml("Tak!"));
    let records = t.feedback().await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["metric"], "csat");
    assert_eq!(records[0]["score"], 4);
    assert_eq!(records[0]["comment"], "7 eller 8\n6");
    assert_eq!(t.invitation(&inv["id"]).await["status"], "answered");

    // An English customer is asked in English.
    t.ask("csat", "+4540506070", json!({"language": "en"}))
        .await;
    let (_, answer) = t.text("+4540506070", "between 3 and 4").await;
    assert_eq!(answer, twiml("Please answer with one number from 1 to 5."));
    t.server.stop().await;
}

async fn a_second_score_updates_the_record(backend: Backend) {
    let t = setup(backend, json!({})).await;
    survey(&t.server, &t.key, "nps", "nps").await;
    t.ask("nps", CUSTOMER, json!({})).await;
    t.text(CUSTOMER, "9").await;
    t.server.settle().await;
    let (_, scores) = t.server.get("/v1/scores?metric=nps", &t.key).await;
    assert_eq!(scores["promoters"], 1, "{scores}");
    t.text(CUSTOMER, "Undskyld, 3").await;
    let records = t.feedback().await;
    assert_eq!(records.len(), 1, "an update, not a second answer");
    assert_eq!(records[0]["score"], 3);
    assert_eq!(records[0]["comment"], "Undskyld, 3");
    t.server.settle().await;
    let id = records[0]["id"].as_str().unwrap();
    let events: Vec<String> = t
        .events
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, record)| record == id)
        .map(|(kind, _)| kind.clone())
        .collect();
    assert_eq!(events, ["feedback.created", "feedback.updated"]);
    let (_, scores) = t.server.get("/v1/scores?metric=nps", &t.key).await;
    assert_eq!(scores["responses"], 1, "{scores}");
    assert_eq!(scores["promoters"], 0, "{scores}");
    assert_eq!(scores["detractors"], 1, "{scores}");
    t.server.stop().await;
}

async fn a_reply_without_an_open_invitation_is_unsolicited_text(backend: Backend) {
    let t = setup(backend, json!({"thank_you": {"da": "Tak!"}})).await;
    let (status, answer) = t.text("+4540506070", "9 - I er de bedste").await;
    assert_eq!((status, answer.as_str()), (StatusCode::OK, EMPTY_TWIML));
    let records = t.feedback().await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["metric"], "text");
    assert_eq!(records[0]["invitation_id"], Value::Null);
    assert_eq!(records[0]["comment"], "9 - I er de bedste");
    let contact = records[0]["contact_id"].as_str().unwrap();
    let (_, c) = t
        .server
        .get(&format!("/v1/contacts/{contact}"), &t.key)
        .await;
    assert_eq!(c["identities"][0]["value"], "+4540506070", "{c}");

    // A reply to a number that was asked from another sending number is not its answer.
    t.ask("csat", CUSTOMER, json!({})).await;
    let mut params = inbound_sms(CUSTOMER, "5", &new_sid());
    for (k, v) in params.iter_mut() {
        if k == "To" {
            *v = "+4570707070".into();
        }
    }
    t.text_as("acme", &params).await;
    let records = t.feedback().await;
    assert_eq!(records[0]["metric"], "text", "{records:?}");
    t.server.stop().await;
}

async fn stop_opts_out_and_start_opts_back_in(backend: Backend) {
    let t = setup(
        backend,
        json!({"help_text": {"da": "Kundeservice: 70 10 20 30. Svar STOP for at afmelde."}}),
    )
    .await;
    let inv = t.ask("csat", CUSTOMER, json!({})).await;
    let contact = t.invitation(&inv["id"]).await["contact_id"].clone();
    let contact_path = format!("/v1/contacts/{}", contact.as_str().unwrap());

    let (status, answer) = t.text(CUSTOMER, " sToP ").await;
    assert_eq!((status, answer.as_str()), (StatusCode::OK, EMPTY_TWIML));
    let (_, c) = t.server.get(&contact_path, &t.key).await;
    assert_eq!(c["opt_outs"], json!(["sms"]), "{c}");
    assert_eq!(
        t.server.count("feedback").await,
        0,
        "a keyword is not feedback"
    );
    // The dispatcher never texts them again: a new trigger is suppressed.
    let (status, again) = t
        .server
        .post(
            "/v1/surveys/csat/send",
            &t.key,
            json!({"contact": {"phone": CUSTOMER}}),
        )
        .await;
    assert_eq!(status.as_u16(), 202);
    assert_eq!(again["status"], "suppressed", "{again}");
    assert_eq!(again["reason"], "opt_out", "{again}");

    let (_, answer) = t.text(CUSTOMER, "HELP").await;
    assert_eq!(
        answer,
        twiml("Kundeservice: 70 10 20 30. Svar STOP for at afmelde.")
    );
    let (_, _) = t.text(CUSTOMER, "start").await;
    let (_, c) = t.server.get(&contact_path, &t.key).await;
    assert_eq!(c["opt_outs"], json!([]), "{c}");

    // "Stop please" is a message, unless Twilio's Advanced Opt-Out says it is a STOP.
    t.text(CUSTOMER, "Stop please").await;
    let (_, c) = t.server.get(&contact_path, &t.key).await;
    assert_eq!(c["opt_outs"], json!([]), "{c}");
    let mut params = inbound_sms(CUSTOMER, "Stop please", &new_sid());
    params.push(("OptOutType".into(), "STOP".into()));
    t.text_as("acme", &params).await;
    let (_, c) = t.server.get(&contact_path, &t.key).await;
    assert_eq!(c["opt_outs"], json!(["sms"]), "{c}");

    // A STOP from a number never seen before is kept, so it is never texted.
    t.text("+4540506070", "STOP").await;
    let (status, fresh) = t
        .server
        .post(
            "/v1/surveys/csat/send",
            &t.key,
            json!({"contact": {"phone": "+4540506070"}}),
        )
        .await;
    assert_eq!(status.as_u16(), 202);
    assert_eq!(fresh["reason"], "opt_out", "{fresh}");
    t.server.stop().await;
}

async fn provider_errors_retry_or_give_up(backend: Backend) {
    let t = setup(backend, json!({})).await;
    // 429 and 500 are retried; the message goes out in the end.
    t.twilio
        .refuse_next(&[Refusal::TooManyRequests, Refusal::ServerError]);
    let inv = t.ask("csat", CUSTOMER, json!({})).await;
    let stored = t.invitation(&inv["id"]).await;
    assert_eq!(stored["status"], "sent", "{stored}");
    assert_eq!(stored["attempts"], 3, "{stored}");

    // 21610: the recipient texted STOP to Twilio. Opted out here too, never retried.
    t.twilio.refuse_next(&[Refusal::Code(21610)]);
    let (_, inv) = t
        .server
        .post(
            "/v1/surveys/csat/send",
            &t.key,
            json!({"contact": {"phone": "+4540506070"}}),
        )
        .await;
    let requests = t.twilio.requests();
    t.dispatch_until(|| t.twilio.requests() > requests).await;
    let stored = t.settled(&inv["id"]).await;
    assert_eq!(stored["status"], "cancelled", "{stored}");
    assert_eq!(stored["reason"], "opt_out", "{stored}");
    assert!(
        stored["last_error"].is_null() || stored["detail"].as_str().unwrap_or("").contains("21610"),
        "{stored}"
    );
    let (_, c) = t
        .server
        .get(
            &format!("/v1/contacts/{}", stored["contact_id"].as_str().unwrap()),
            &t.key,
        )
        .await;
    assert_eq!(c["opt_outs"], json!(["sms"]), "{c}");

    // 21211: not a valid number. The invitation fails, the number is marked invalid.
    t.twilio.refuse_next(&[Refusal::Code(21211)]);
    let (_, inv) = t
        .server
        .post(
            "/v1/surveys/csat/send",
            &t.key,
            json!({"contact": {"phone": "+4560708090"}}),
        )
        .await;
    let requests = t.twilio.requests();
    t.dispatch_until(|| t.twilio.requests() > requests).await;
    let stored = t.settled(&inv["id"]).await;
    assert_eq!(stored["status"], "failed", "{stored}");
    assert!(
        stored["last_error"].as_str().unwrap().starts_with("21211"),
        "{stored}"
    );
    let (_, c) = t
        .server
        .get(
            &format!("/v1/contacts/{}", stored["contact_id"].as_str().unwrap()),
            &t.key,
        )
        .await;
    assert_eq!(c["identities"][0]["status"], "invalid", "{c}");

    // A wrong auth token: Twilio answers 401 / 20003, a permanent failure.
    t.server
        .send(
            Method::PUT,
            "/v1/channels/twilio",
            Some(&t.key),
            Some(
                t.twilio
                    .config(json!({"auth_token": "wrong-auth-token-0123456789"})),
            ),
        )
        .await;
    let (_, inv) = t
        .server
        .post(
            "/v1/surveys/csat/send",
            &t.key,
            json!({"contact": {"phone": "+4571727374"}}),
        )
        .await;
    let requests = t.twilio.requests();
    t.dispatch_until(|| t.twilio.requests() > requests).await;
    let stored = t.settled(&inv["id"]).await;
    assert_eq!(stored["status"], "failed", "{stored}");
    assert!(
        stored["last_error"].as_str().unwrap().starts_with("20003"),
        "{stored}"
    );
    assert_eq!(t.twilio.sent().len(), 1, "only the first message went out");
    t.server.stop().await;
}

async fn delivery_reports_move_the_invitation(backend: Backend) {
    let t = setup(backend, json!({})).await;
    let inv = t.ask("csat", CUSTOMER, json!({})).await;
    let sid = t.twilio.sent()[0].sid.clone();
    let path = "/hooks/acme/twilio/status";
    let report = |status: &str, error: Option<&str>| {
        let mut p: Vec<(String, String)> = [
            ("SmsSid", sid.as_str()),
            ("SmsStatus", status),
            ("MessageStatus", status),
            ("To", CUSTOMER),
            ("MessageSid", sid.as_str()),
            ("AccountSid", ACCOUNT_SID),
            ("From", FROM),
            ("ApiVersion", "2010-04-01"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        if let Some(code) = error {
            p.push(("ErrorCode".into(), code.into()));
        }
        p
    };
    let post = |params: Vec<(String, String)>| {
        let sig = signature(AUTH_TOKEN, &format!("{PUBLIC_URL}{path}"), &params);
        let server = &t.server;
        async move { post_form(server, path, &params, Some(&sig)).await }
    };
    assert_eq!(t.invitation(&inv["id"]).await["delivery_status"], "queued");
    for (status, want) in [
        ("sent", "sent"),
        ("delivered", "delivered"),
        // Late and repeated reports do not move it back.
        ("sent", "delivered"),
        ("queued", "delivered"),
        ("delivered", "delivered"),
    ] {
        let (code, body) = post(report(status, None)).await;
        assert_eq!((code, body.as_str()), (StatusCode::OK, EMPTY_TWIML));
        assert_eq!(
            t.invitation(&inv["id"]).await["delivery_status"],
            want,
            "after {status}"
        );
    }
    assert_eq!(t.invitation(&inv["id"]).await["status"], "sent");
    // A bad signature changes nothing.
    let params = report("undelivered", Some("30003"));
    let (code, body) = post_form(&t.server, path, &params, Some("AAAA")).await;
    problem(code, &body, 403, "forbidden");

    // Another message that never arrives: the invitation fails.
    let inv2 = t.ask("csat", "+4540506070", json!({})).await;
    let sid2 = t.twilio.sent()[1].sid.clone();
    let params: Vec<(String, String)> = report("undelivered", Some("30003"))
        .into_iter()
        .map(|(k, v)| (k, if v == sid { sid2.clone() } else { v }))
        .collect();
    let (code, _) = post(params).await;
    assert_eq!(code, StatusCode::OK);
    let stored = t.invitation(&inv2["id"]).await;
    assert_eq!(stored["delivery_status"], "undelivered");
    assert_eq!(stored["status"], "failed", "{stored}");
    assert_eq!(stored["last_error"], "undelivered 30003", "{stored}");
    assert_eq!(t.invitation(&inv["id"]).await["status"], "sent");
    t.server.stop().await;
}

async fn channel_configuration_keeps_its_secret(backend: Backend) {
    let t = setup(backend, json!({})).await;
    let (status, shown) = t.server.get("/v1/channels/twilio", &t.key).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["settings"]["account_sid"], ACCOUNT_SID);
    assert_eq!(shown["settings"]["from"], FROM);
    assert_eq!(shown["secrets_set"], json!(["auth_token"]));
    assert!(
        !shown.to_string().contains(AUTH_TOKEN),
        "the auth token is never shown: {shown}"
    );

    let (status, body) = t
        .server
        .send(
            Method::PUT,
            "/v1/channels/twilio",
            Some(&t.key),
            Some(json!({"account_sid": "AC12", "auth_token": "", "from": "12"})),
        )
        .await;
    assert_problem(status, &body, 422, "validation-failed");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["account_sid", "auth_token", "from"], "{body}");
    let (status, body) = t
        .server
        .send(
            Method::PUT,
            "/v1/channels/twilio",
            Some(&t.key),
            Some(t.twilio.config(json!({"colour": "red"}))),
        )
        .await;
    assert_problem(status, &body, 422, "validation-failed");
    let (status, body) = t
        .server
        .send(
            Method::PUT,
            "/v1/channels/pigeon",
            Some(&t.key),
            Some(json!({})),
        )
        .await;
    assert_problem(status, &body, 404, "not-found");
    // The invalid attempts changed nothing.
    let (_, still) = t.server.get("/v1/channels/twilio", &t.key).await;
    assert_eq!(still, shown);

    // Another tenant sees none of it.
    let other = t.server.tenant("other").await;
    let (status, body) = t.server.get("/v1/channels/twilio", &other).await;
    assert_problem(status, &body, 404, "not-found");
    let (status, body) = t
        .server
        .send(Method::GET, "/v1/channels/twilio", None, None)
        .await;
    assert_problem(status, &body, 401, "unauthorized");
    t.server.stop().await;
}

/// Customers' replies that arrive at once are applied together (set-based statements for the
/// group) with the same outcome as one by one: a first score answers its survey with a
/// thank-you, an ambiguous reply is asked about, STOP opts out, a text without a survey is
/// unsolicited, a redelivery in the same burst is stored once.
async fn a_burst_of_replies_is_applied_as_one_by_one(backend: Backend) {
    let t = setup(backend, json!({"thank_you": {"da": "Tak!"}})).await;
    let phone = |n: usize| format!("+45611100{n:02}");
    let mut invitations = Vec::new();
    for n in 0..12 {
        invitations.push(t.ask("csat", &phone(n), json!({"language": "da"})).await);
    }
    let redelivered = inbound_sms(&phone(11), "2", &new_sid());
    let mut burst: Vec<Vec<(String, String)>> = (0..9)
        .map(|n| inbound_sms(&phone(n), ["5", "4 - hurtig hjælp", "1"][n % 3], &new_sid()))
        .collect();
    burst.push(inbound_sms(&phone(9), "7 eller 8", &new_sid()));
    burst.push(inbound_sms(&phone(10), "STOP", &new_sid()));
    burst.push(redelivered.clone());
    burst.push(redelivered);
    burst.push(inbound_sms("+4561119999", "hej", &new_sid()));
    let answers = futures::future::join_all(burst.iter().map(|p| t.text_as("acme", p))).await;
    for (n, (status, answer)) in answers.iter().enumerate() {
        assert_eq!(*status, StatusCode::OK, "reply {n}: {answer}");
        let expected = match n {
            0..=8 | 11 | 12 => twiml("Tak!"),
            9 => twiml("Svar venligst med ét tal fra 1 til 5."),
            _ => EMPTY_TWIML.to_owned(),
        };
        assert_eq!(*answer, expected, "reply {n}");
    }

    for (n, inv) in invitations.iter().enumerate() {
        let stored = t.invitation(&inv["id"]).await;
        let expected = if matches!(n, 9 | 10) {
            "sent"
        } else {
            "answered"
        };
        assert_eq!(stored["status"], expected, "invitation {n}: {stored}");
    }
    let records = t.feedback().await;
    assert_eq!(
        records.len(),
        12,
        "one record per message, the redelivery once"
    );
    let of = |n: usize| {
        let id = &invitations[n]["id"];
        records
            .iter()
            .filter(|r| r["invitation_id"] == *id)
            .collect::<Vec<_>>()
    };
    for n in 0..9 {
        let rec = of(n);
        assert_eq!(rec.len(), 1, "invitation {n}");
        assert_eq!(rec[0]["score"], [5, 4, 1][n % 3], "{:?}", rec[0]);
        assert_eq!(rec[0]["ticket_ref"], "T-1");
        let comment = if n % 3 == 1 {
            json!("4 - hurtig hjælp")
        } else {
            Value::Null
        };
        assert_eq!(rec[0]["comment"], comment, "{:?}", rec[0]);
    }
    assert_eq!(of(9)[0]["metric"], "text");
    assert_eq!(of(9)[0]["comment"], "7 eller 8");
    assert!(of(10).is_empty(), "STOP is not feedback");
    assert_eq!(of(11).len(), 1);
    let unsolicited: Vec<_> = records.iter().filter(|r| r["comment"] == "hej").collect();
    assert_eq!(unsolicited.len(), 1);
    assert_eq!(unsolicited[0]["invitation_id"], Value::Null);
    assert_eq!(t.server.count("raw_events").await, 13);
    let contact = t.invitation(&invitations[10]["id"]).await["contact_id"].clone();
    let (_, c) = t
        .server
        .get(
            &format!("/v1/contacts/{}", contact.as_str().unwrap()),
            &t.key,
        )
        .await;
    assert_eq!(c["opt_outs"], json!(["sms"]), "{c}");

    // A redelivery of a message of the burst answers what the first delivery answered.
    assert_eq!(
        t.text_as("acme", &burst[0]).await,
        (StatusCode::OK, twiml("Tak!"))
    );
    t.server.settle().await;
    let (_, scores) = t.server.get("/v1/scores?metric=csat", &t.key).await;
    assert_eq!(scores["responses"], 10, "{scores}");
    t.server.stop().await;
}

/// A reply the database refuses fails the group it arrived in; every other reply of that
/// group is applied again on its own and succeeds, and the refused one changes nothing.
async fn a_reply_the_database_refuses_fails_only_itself(backend: Backend) {
    let t = setup(backend, json!({"thank_you": {"da": "Tak!"}})).await;
    let refuse: &[&str] = match backend {
        Backend::Sqlite => &["CREATE TRIGGER refuse_reply BEFORE INSERT ON feedback \
              WHEN NEW.comment = 'refuse me' BEGIN SELECT RAISE(ABORT, 'refused'); END"],
        Backend::Postgres => &[
            "CREATE FUNCTION refuse_reply() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN IF NEW.comment = 'refuse me' THEN RAISE EXCEPTION 'refused'; END IF; \
             RETURN NEW; END $$",
            "CREATE TRIGGER refuse_reply BEFORE INSERT ON feedback \
             FOR EACH ROW EXECUTE FUNCTION refuse_reply()",
        ],
    };
    for sql in refuse {
        sea_orm::ConnectionTrait::execute_unprepared(&t.server.db.write, sql)
            .await
            .unwrap();
    }
    let phone = |n: usize| format!("+45622200{n:02}");
    for n in 0..8 {
        t.ask("csat", &phone(n), json!({"language": "da"})).await;
    }
    // Rounds of bursts, so that the refused reply shares a group with good ones.
    for round in 0..3 {
        let burst: Vec<_> = (0..8)
            .map(|n| {
                let text = if n == 3 { "refuse me" } else { "hurtig hjælp" };
                inbound_sms(&phone(n), text, &format!("SM{round:02}{n:030}"))
            })
            .collect();
        let answers = futures::future::join_all(burst.iter().map(|p| t.text_as("acme", p))).await;
        for (n, (status, answer)) in answers.iter().enumerate() {
            if n == 3 {
                assert!(status.is_server_error(), "{status} {answer}");
            } else {
                assert_eq!(*status, StatusCode::OK, "reply {n}: {answer}");
            }
        }
    }
    let records = t.feedback().await;
    assert_eq!(records.len(), 7, "one record for each good sender");
    assert!(records
        .iter()
        .all(|r| r["comment"].as_str().unwrap().starts_with("hurtig hjælp")));
    assert_eq!(
        t.server.count("raw_events").await,
        21,
        "the refused reply left no raw event"
    );
    t.server.stop().await;
}
