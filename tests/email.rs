//! The e-mail channel end to end: a tenant's SMTP server (a real one on loopback, STARTTLS on a
//! test CA, AUTH PLAIN) receives the survey e-mail; the test reads it as a mail client would,
//! follows a rating link with GET (nothing recorded), answers with the page's form, changes
//! the answer, and unsubscribes with RFC 8058's one-click POST. Then the refusals: a bad link,
//! a mailbox that does not exist, one that says "later", a server on a private network, and
//! the `.eml` files a gateway without an SMTP server writes.

mod common;

use std::time::Duration;

use common::smtp::{SmtpServer, PASSWORD, USER};
use common::{assert_problem, Backend, TestServer};
use mail_parser::MessageParser;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_backends!(
    a_survey_email_is_answered_by_its_link_and_unsubscribed_in_one_click,
    refused_addresses_and_private_servers_settle_the_invitation,
    without_an_smtp_server_the_email_is_written_to_a_file,
    email_settings_are_checked_and_keep_the_password,
    replies_arrive_through_every_inbound_provider,
    bounces_and_complaints_invalidate_addresses_and_opt_out,
    sendgrid_signed_events_invalidate_addresses_and_opt_out,
    survey_emails_are_dkim_signed_over_the_unsubscribe_headers,
);

const QUESTION_DA: &str = "Hvor tilfreds er du med den service, du modtog i dag?";

async fn put_email_survey(server: &TestServer, key: &str) {
    put_email_survey_sent_after(server, key, 0).await
}

/// The e-mail survey, its invitations sent `delay_minutes` after the trigger.
async fn put_email_survey_sent_after(server: &TestServer, key: &str, delay_minutes: u32) {
    let (status, body) = server
        .send(
            Method::PUT,
            "/v1/surveys/support-csat",
            Some(key),
            Some(json!({
                "metric": "csat",
                "question": {"da": QUESTION_DA, "en": "How satisfied are you with the service you received today?"},
                "default_language": "da",
                "channels": ["email"],
                "policy": {"send_delay_minutes": delay_minutes, "quiet_hours": null,
                           "rest_period_days": 0, "max_per_window": 1000, "one_per_ticket": false}
            })),
        )
        .await;
    assert!(status.is_success(), "{body}");
}

/// `PUT /v1/channels/email`.
async fn put_email_settings(
    server: &TestServer,
    key: &str,
    settings: Value,
) -> (StatusCode, Value) {
    server
        .send(Method::PUT, "/v1/channels/email", Some(key), Some(settings))
        .await
}

/// The tenant's e-mail settings: the test's SMTP server, with the inbound hooks' secrets when
/// `inbound`.
async fn configure_smtp(server: &TestServer, key: &str, smtp: &SmtpServer, inbound: bool) -> Value {
    let mut settings = json!({
        "from": "Acme Support <support@acme.example>",
        "reply_to_domain": "reply.acme.example",
        "smtp": {"host": "127.0.0.1", "port": smtp.port, "tls": "starttls",
                 "username": USER, "password": PASSWORD}
    });
    if inbound {
        settings["inbound"] = json!({"mailgun_signing_key": MAILGUN_KEY,
            "basic_auth": {"username": INBOUND_USER, "password": INBOUND_PASSWORD}});
    }
    let (status, body) = put_email_settings(server, key, settings).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// A gateway that trusts the test SMTP server's CA, a tenant `acme` configured to send through
/// that server, and the e-mail survey.
struct MailSetup {
    smtp: SmtpServer,
    server: TestServer,
    key: String,
    _ca: tempfile::NamedTempFile,
}

async fn mail_setup(
    backend: Backend,
    inbound: bool,
    tweak: impl FnOnce(&mut feedback_gateway::config::Config),
) -> MailSetup {
    let smtp = SmtpServer::start();
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), &smtp.ca_pem).unwrap();
    let ca_file = ca.path().to_str().unwrap().to_owned();
    let server = TestServer::start_with(
        backend,
        |c| {
            c.email.ca_file = ca_file;
            tweak(c);
        },
        vec![],
    )
    .await;
    let key = server.tenant("acme").await;
    configure_smtp(&server, &key, &smtp, inbound).await;
    put_email_survey(&server, &key).await;
    MailSetup {
        smtp,
        server,
        key,
        _ca: ca,
    }
}

async fn trigger(server: &TestServer, key: &str, email: &str) -> Value {
    let (status, inv) = server
        .post(
            "/v1/surveys/support-csat/send",
            key,
            json!({"contact": {"email": email}, "language": "da"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{inv}");
    inv
}

/// Dispatch rounds until the invitation leaves `scheduled` (or has been tried `attempts` times).
async fn dispatch(server: &TestServer, key: &str, id: &Value, attempts: i64) -> Value {
    for _ in 0..100 {
        server.dispatcher.run_once().await.unwrap();
        let inv = server.invitation(key, id).await;
        if inv["status"] != "scheduled" || inv["attempts"].as_i64() >= Some(attempts) {
            return inv;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("invitation {id} was not dispatched");
}

/// The path of a link the gateway wrote (its public URL is not the test server's address).
fn path_of(link: &str) -> String {
    let url = url::Url::parse(link).unwrap();
    url.path().to_owned()
}

async fn page(
    server: &TestServer,
    method: Method,
    path: &str,
    form: Option<&str>,
) -> (StatusCode, String, reqwest::header::HeaderMap) {
    let mut request = server.client.request(method, server.url(path));
    if let Some(form) = form {
        request = request
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_owned());
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    (status, response.text().await.unwrap(), headers)
}

async fn feedback_items(server: &TestServer, key: &str) -> Vec<Value> {
    let (_, list) = server.get("/v1/feedback?limit=100", key).await;
    list["items"].as_array().cloned().unwrap_or_default()
}

async fn a_survey_email_is_answered_by_its_link_and_unsubscribed_in_one_click(backend: Backend) {
    let MailSetup {
        smtp,
        server,
        key,
        _ca,
    } = mail_setup(backend, false, |_| {}).await;
    let inv = trigger(&server, &key, "kunde@example.dk").await;
    assert_eq!(inv["channel"], "email", "{inv}");
    let sent = dispatch(&server, &key, &inv["id"], 1).await;
    assert_eq!(sent["status"], "sent", "{sent}");

    // The message, as the SMTP server received it: over TLS, after the login.
    let mail = smtp.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(mail.len(), 1);
    assert!(mail[0].tls && mail[0].user.as_deref() == Some(USER));
    assert_eq!(mail[0].to, ["kunde@example.dk"]);
    let message = MessageParser::default().parse(&mail[0].data).unwrap();
    let message_id = format!("{}@acme.example", inv["id"].as_str().unwrap());
    assert_eq!(message.message_id(), Some(message_id.as_str()));
    assert_eq!(
        sent["provider_ref"],
        message_id.as_str(),
        "stored on the invitation"
    );
    let from = message.from().unwrap().first().unwrap();
    assert_eq!(from.address(), Some("support@acme.example"));
    assert_eq!(from.name(), Some("Acme Support"));
    let reply_to = message
        .reply_to()
        .unwrap()
        .first()
        .unwrap()
        .address()
        .unwrap();
    assert!(
        reply_to.starts_with("reply+") && reply_to.ends_with("@reply.acme.example"),
        "{reply_to}"
    );
    let header = |name: &str| {
        message
            .header_raw(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .trim()
            .replace("\r\n", "")
            .replace('\n', "")
    };
    assert_eq!(
        header("List-Unsubscribe-Post"),
        "List-Unsubscribe=One-Click"
    );
    let list_unsubscribe = header("List-Unsubscribe");
    let unsubscribe_link = list_unsubscribe
        .split(['<', '>'])
        .find(|p| p.starts_with("http"))
        .unwrap()
        .to_owned();
    assert!(
        list_unsubscribe.contains("<mailto:reply+"),
        "{list_unsubscribe}"
    );
    let text = message.body_text(0).unwrap().into_owned();
    let html = message.body_html(0).unwrap().into_owned();
    assert!(text.contains(QUESTION_DA) && html.contains(QUESTION_DA));
    assert!(!html.to_ascii_lowercase().contains("<script"));
    // One link per score, 1 to 5, in both parts.
    let links: Vec<String> = text
        .lines()
        .filter_map(|l| {
            l.split_once(": http")
                .map(|(_, rest)| format!("http{rest}"))
        })
        .filter(|l| l.contains("/r/"))
        .collect();
    assert_eq!(links.len(), 5, "{text}");
    for (i, link) in links.iter().enumerate() {
        assert!(link.ends_with(&format!("/{}", i + 1)), "{link}");
        assert!(html.contains(link.as_str()), "{link} in the HTML part");
    }

    // A link scanner's GET records nothing: the page shows the score chosen.
    let four = path_of(&links[3]);
    let (status, body, headers) = page(&server, Method::GET, &four, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert!(body.contains("value=\"4\" checked"), "{body}");
    assert!(body.contains(QUESTION_DA));
    assert!(feedback_items(&server, &key).await.is_empty());
    assert_eq!(server.invitation(&key, &inv["id"]).await["status"], "sent");

    // A link changed by hand (another score under this score's token) is refused with a page.
    let forged = four.replace("/4", "/5");
    for (method, form) in [(Method::GET, None), (Method::POST, Some("score=5"))] {
        let (status, body, headers) = page(&server, method, &forged, form).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert!(
            body.contains("Linket virker ikke længere") || body.contains("no longer works"),
            "{body}"
        );
    }
    assert!(feedback_items(&server, &key).await.is_empty());

    // The page's form records the answer, with the comment.
    let (status, body, _) = page(
        &server,
        Method::POST,
        &four,
        Some("score=4&comment=hurtig+hj%C3%A6lp"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("Tak for dit svar!"), "{body}");
    let items = feedback_items(&server, &key).await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["score"], 4);
    assert_eq!(items[0]["comment"], "hurtig hjælp");
    assert_eq!(items[0]["channel"], "email");
    assert_eq!(items[0]["invitation_id"], inv["id"]);
    assert_eq!(
        server.invitation(&key, &inv["id"]).await["status"],
        "answered"
    );

    // A second answer changes the record, as a second SMS score does.
    let (status, _, _) = page(&server, Method::POST, &path_of(&links[1]), Some("score=2")).await;
    assert_eq!(status, StatusCode::OK);
    let items = feedback_items(&server, &key).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["score"], 2);
    assert_eq!(
        items[0]["comment"], "hurtig hjælp",
        "a POST without a comment keeps it"
    );
    // The scoring store follows.
    let mut scored = Value::Null;
    for _ in 0..100 {
        let (_, scores) = server.get("/v1/scores?metric=csat", &key).await;
        if scores["responses"] == 1 && scores["satisfied"] == 0 {
            scored = scores;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_ne!(scored, Value::Null, "the changed answer reaches the scores");

    // Unsubscribe: the GET shows a button and changes nothing; the one-click POST (either form
    // encoding, no authentication) opts the contact out of e-mail, without a redirect.
    let unsubscribe = path_of(&unsubscribe_link);
    let contact_path = format!("/v1/contacts/{}", inv["contact_id"].as_str().unwrap());
    let (status, body, _) = page(&server, Method::GET, &unsubscribe, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("<button"), "{body}");
    let (_, contact) = server.get(&contact_path, &key).await;
    assert_eq!(contact["opt_outs"], json!([]), "{contact}");
    let (status, _, headers) = page(
        &server,
        Method::POST,
        &unsubscribe,
        Some("List-Unsubscribe=One-Click"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.get("location").is_none());
    let (_, contact) = server.get(&contact_path, &key).await;
    assert_eq!(contact["opt_outs"], json!(["email"]), "{contact}");
    let multipart = server
        .client
        .post(server.url(&unsubscribe))
        .header("content-type", "multipart/form-data; boundary=XyZ")
        .body("--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--XyZ--\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(multipart.status(), StatusCode::OK);

    // The next survey is not e-mailed to the contact.
    let next = trigger(&server, &key, "kunde@example.dk").await;
    assert_eq!(next["status"], "suppressed", "{next}");
    assert_eq!(next["reason"], "opt_out", "{next}");
    assert_eq!(smtp.received().len(), 1);
    server.stop().await;
}

async fn refused_addresses_and_private_servers_settle_the_invitation(backend: Backend) {
    let MailSetup {
        smtp,
        server,
        key,
        _ca,
    } = mail_setup(backend, false, |c| c.dispatch.max_attempts = 3).await;

    // 550: the address does not work; the invitation fails and the address is marked invalid.
    let bounced = trigger(&server, &key, "bounce@example.dk").await;
    let settled = dispatch(&server, &key, &bounced["id"], 1).await;
    assert_eq!(settled["status"], "failed", "{settled}");
    assert!(
        settled["last_error"].as_str().unwrap().starts_with("550"),
        "{settled}"
    );
    assert!(
        !settled["last_error"].as_str().unwrap().contains("bounce@"),
        "no address in errors"
    );
    let (_, contact) = server
        .get(
            &format!("/v1/contacts/{}", bounced["contact_id"].as_str().unwrap()),
            &key,
        )
        .await;
    assert_eq!(contact["identities"][0]["status"], "invalid", "{contact}");

    // 451: tried again later.
    let later = trigger(&server, &key, "later@example.dk").await;
    let retried = dispatch(&server, &key, &later["id"], 1).await;
    assert_eq!(retried["status"], "scheduled", "{retried}");
    assert!(
        retried["last_error"].as_str().unwrap().starts_with("451"),
        "{retried}"
    );
    assert!(smtp.received().is_empty());
    server.stop().await;

    // A tenant's server on a private network, where the operator does not allow those.
    let server = TestServer::start_with(
        backend,
        |c| c.outbound.allow_private_networks = false,
        vec![],
    )
    .await;
    let key = server.tenant("acme").await;
    // Plain-text SMTP cannot reach any server such a gateway calls: refused at once.
    let (status, problem) = put_email_settings(
        &server,
        &key,
        json!({"from": "support@acme.example",
                        "smtp": {"host": "smtp.acme.example", "tls": "none"}}),
    )
    .await;
    assert_problem(status, &problem, 422, "validation-failed");
    assert_eq!(problem["errors"][0]["field"], "smtp.tls", "{problem}");
    configure_smtp(&server, &key, &smtp, false).await;
    put_email_survey(&server, &key).await;
    let inv = trigger(&server, &key, "kunde@example.dk").await;
    let settled = dispatch(&server, &key, &inv["id"], 1).await;
    assert_eq!(settled["status"], "failed", "{settled}");
    assert!(
        settled["last_error"]
            .as_str()
            .unwrap()
            .contains("private network"),
        "{settled}"
    );
    assert!(smtp.received().is_empty());
    server.stop().await;
}

async fn without_an_smtp_server_the_email_is_written_to_a_file(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let file_dir = dir.path().join("mail").to_str().unwrap().to_owned();
    let server =
        TestServer::start_with(backend, |c| c.email.file_dir = file_dir.clone(), vec![]).await;
    let key = server.tenant("acme").await;
    put_email_survey(&server, &key).await;
    let inv = trigger(&server, &key, "kunde@example.dk").await;
    let sent = dispatch(&server, &key, &inv["id"], 1).await;
    assert_eq!(sent["status"], "sent", "{sent}");
    let files: Vec<_> = std::fs::read_dir(&file_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().unwrap(), "eml");
    let raw = std::fs::read(&files[0]).unwrap();
    let message = MessageParser::default().parse(&raw).unwrap();
    assert_eq!(
        message.from().unwrap().first().unwrap().address(),
        Some("feedback@gateway.localhost")
    );
    assert!(message.header_raw("List-Unsubscribe").is_some());
    assert!(message.body_text(0).unwrap().contains(QUESTION_DA));
    server.stop().await;
}

async fn email_settings_are_checked_and_keep_the_password(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = server.tenant("acme").await;
    let invalid = json!({"from": "Acme <not an address>",
                         "smtp": {"host": "smtp.acme.example", "username": "u"}});
    let (status, problem) = put_email_settings(&server, &key, invalid).await;
    assert_problem(status, &problem, 422, "validation-failed");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["from", "smtp.password"], "{problem}");

    let smtp = SmtpServer::start();
    let shown = configure_smtp(&server, &key, &smtp, false).await;
    assert!(!shown.to_string().contains(PASSWORD), "{shown}");
    assert_eq!(shown["secrets_set"], json!(["smtp_password"]));
    assert_eq!(shown["settings"]["smtp"]["username"], USER);
    let (_, again) = server.get("/v1/channels/email", &key).await;
    assert_eq!(again, shown);
    server.stop().await;
}

const MAILGUN_KEY: &str = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0";
const INBOUND_USER: &str = "acme-inbound";
const INBOUND_PASSWORD: &str = "a long inbound password";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/email/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (name, value) in values {
        out = out.replace(&format!("{{{{{name}}}}}"), value);
    }
    out
}

/// A multipart fixture with the line ends providers send.
fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

/// What the gateway's survey e-mail to `to` carried: its reply address and Message-ID.
struct Sent {
    reply_to: String,
    message_id: String,
    /// The address of `List-Unsubscribe`'s mailto.
    unsubscribe_to: String,
}

async fn hook(
    server: &TestServer,
    provider: &str,
    content_type: &str,
    auth: Option<(&str, &str)>,
    body: Vec<u8>,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let mut request = server
        .client
        .post(server.url(&format!("/hooks/acme/email/{provider}")))
        .header("content-type", content_type)
        .body(body);
    if let Some((user, password)) = auth {
        request = request.basic_auth(user, Some(password));
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
        headers,
    )
}

fn mailgun_body(values: &[(&str, &str)], timestamp: i64, token: &str) -> Vec<u8> {
    let timestamp = timestamp.to_string();
    let signature = channels::email::inbound::mailgun_signature(MAILGUN_KEY, &timestamp, token);
    let mut all = values.to_vec();
    all.extend([
        ("TIMESTAMP", timestamp.as_str()),
        ("TOKEN", token),
        ("SIGNATURE", signature.as_str()),
    ]);
    crlf(&fill(&fixture("mailgun_reply.multipart"), &all)).into_bytes()
}

/// Posts a message of `size` bytes (a 10 MB attachment) to the MIME hook over a raw
/// connection, reading the answer while the body is still being written: the gateway answers
/// 413 once the limit is passed and closes, so a client that only reads after writing all of
/// it would see the connection reset instead of the answer.
async fn too_large(server: &TestServer, size: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = server.base.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let credentials = base64_credentials();
    let head = format!(
        "POST /hooks/acme/email/mime HTTP/1.1\r\nHost: {address}\r\n\
         Content-Type: message/rfc822\r\nAuthorization: Basic {credentials}\r\n\
         Content-Length: {size}\r\n\r\n"
    );
    let writer = tokio::spawn(async move {
        if write.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let chunk = vec![b'a'; 64 * 1024];
        let mut sent = 0;
        while sent < size {
            if write.write_all(&chunk).await.is_err() {
                return;
            }
            sent += chunk.len();
        }
    });
    let mut answer = vec![0u8; 12];
    tokio::time::timeout(Duration::from_secs(20), read.read_exact(&mut answer))
        .await
        .expect("an answer before the whole body is sent")
        .expect("the status line");
    writer.abort();
    String::from_utf8_lossy(&answer[9..12]).parse().unwrap()
}

fn base64_credentials() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{INBOUND_USER}:{INBOUND_PASSWORD}"))
}

const MAILGUN_TYPE: &str = "multipart/form-data; boundary=515e0b8d-a7e3-43ef-808e-f27b75edf470";

async fn replies_arrive_through_every_inbound_provider(backend: Backend) {
    let MailSetup {
        smtp,
        server,
        key,
        _ca,
    } = mail_setup(backend, true, |_| {}).await;
    let (_, shown) = server.get("/v1/channels/email", &key).await;
    let shown = shown.to_string();
    assert!(
        !shown.contains(INBOUND_PASSWORD) && !shown.contains(MAILGUN_KEY),
        "{shown}"
    );

    // Five customers are asked.
    let customers: Vec<String> = (1..=5).map(|i| format!("kunde{i}@example.dk")).collect();
    let mut invitations = Vec::new();
    for customer in &customers {
        let inv = trigger(&server, &key, customer).await;
        assert_eq!(
            dispatch(&server, &key, &inv["id"], 1).await["status"],
            "sent"
        );
        invitations.push(inv);
    }
    let mail = smtp.wait_for(5, Duration::from_secs(5)).await;
    let sent: Vec<Sent> = customers
        .iter()
        .map(|c| {
            let m = mail.iter().find(|m| m.to == [c.clone()]).unwrap();
            let parsed = MessageParser::default().parse(&m.data).unwrap();
            Sent {
                reply_to: parsed
                    .reply_to()
                    .unwrap()
                    .first()
                    .unwrap()
                    .address()
                    .unwrap()
                    .to_owned(),
                message_id: parsed.message_id().unwrap().to_owned(),
                unsubscribe_to: parsed
                    .header_raw("List-Unsubscribe")
                    .unwrap()
                    .split("<mailto:")
                    .nth(1)
                    .unwrap()
                    .split(['?', '>'])
                    .next()
                    .unwrap()
                    .to_owned(),
            }
        })
        .collect();
    let auth = Some((INBOUND_USER, INBOUND_PASSWORD));

    // Postmark: the reply address's token names the invitation; the quoted original is cut.
    let token = sent[0]
        .reply_to
        .split(['+', '@'])
        .nth(1)
        .unwrap()
        .to_owned();
    let postmark = fill(
        &fixture("postmark_reply.json"),
        &[
            ("FROM", &customers[0]),
            ("TO", &sent[0].reply_to),
            ("MAILBOX_HASH", &token),
            ("MESSAGE_ID", "reply-1@mail.example.dk"),
            ("IN_REPLY_TO", &sent[0].message_id),
        ],
    );
    for (auth, why) in [
        (None, "no basic auth"),
        (Some((INBOUND_USER, "wrong password!!")), "a wrong password"),
    ] {
        let (status, problem, headers) = hook(
            &server,
            "postmark",
            "application/json",
            auth,
            postmark.clone().into_bytes(),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}: {problem}");
        assert!(
            headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic"),
            "{why}"
        );
    }
    let (status, problem, _) = hook(
        &server,
        "postmark",
        "application/json",
        auth,
        b"{\"From\": ".to_vec(),
    )
    .await;
    assert_problem(status, &problem, 400, "malformed-json");
    let (status, answer, _) = hook(
        &server,
        "postmark",
        "application/json",
        auth,
        postmark.clone().into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "answered");
    let (status, answer, _) = hook(
        &server,
        "postmark",
        "application/json",
        auth,
        postmark.into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answer["outcome"], "duplicate",
        "a redelivery is stored once"
    );

    // Mailgun: sent to the plain support address from another address of the customer's;
    // In-Reply-To names the survey e-mail.
    let values = [
        ("FROM", "kunde2.privat@example.dk"),
        ("TO", "support@acme.example"),
        ("MESSAGE_ID", "reply-2@mail.example.dk"),
        ("IN_REPLY_TO", sent[1].message_id.as_str()),
    ];
    let now = chrono::Utc::now().timestamp();
    let mut forged = mailgun_body(
        &values,
        now,
        "c0ffee0123456789c0ffee0123456789c0ffee0123456789ab",
    );
    let at = forged
        .windows(64)
        .position(|w| w.iter().all(u8::is_ascii_hexdigit))
        .unwrap();
    forged[at] = if forged[at] == b'0' { b'1' } else { b'0' };
    let (status, problem, _) = hook(&server, "mailgun", MAILGUN_TYPE, None, forged).await;
    assert_problem(status, &problem, 403, "forbidden");
    let old = mailgun_body(
        &values,
        now - 3600,
        "d0ffee0123456789c0ffee0123456789c0ffee0123456789ab",
    );
    let (status, problem, _) = hook(&server, "mailgun", MAILGUN_TYPE, None, old).await;
    assert_problem(status, &problem, 403, "forbidden");
    let token = "e0ffee0123456789c0ffee0123456789c0ffee0123456789ab";
    let (status, answer, _) = hook(
        &server,
        "mailgun",
        MAILGUN_TYPE,
        None,
        mailgun_body(&values, now, token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "answered");
    let (status, problem, _) = hook(
        &server,
        "mailgun",
        MAILGUN_TYPE,
        None,
        mailgun_body(&values, now, token),
    )
    .await;
    assert_problem(status, &problem, 406, "not-acceptable");

    // SendGrid: the envelope's reply address; the text in ISO-8859-1, as `charsets` says.
    let template = crlf(&fill(
        &fixture("sendgrid_reply.multipart"),
        &[
            ("FROM", &customers[2]),
            ("TO", &sent[2].reply_to),
            ("MESSAGE_ID", "reply-3@mail.example.dk"),
        ],
    ));
    let (head, tail) = template.split_once("{{TEXT}}").unwrap();
    let mut body = head.as_bytes().to_vec();
    body.extend("3 - for lang ventetid på svar".chars().map(|c| c as u8)); // ISO-8859-1
    body.extend(tail.as_bytes());
    let (status, answer, _) = hook(
        &server,
        "sendgrid",
        "multipart/form-data; boundary=xYzZY",
        auth,
        body,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "answered");

    // A raw message in Windows-1252, with neither token nor In-Reply-To: the sender's newest
    // open invitation; the phone's signature cut.
    let mime = |extra: &str, subject: &str, message_id: &str, text: &[u8]| {
        let template = fill(
            &fixture("mime_reply.eml"),
            &[
                ("FROM", &customers[3]),
                ("SUBJECT", subject),
                ("MESSAGE_ID", message_id),
                ("EXTRA_HEADERS", extra),
            ],
        );
        let (head, tail) = template.split_once("{{TEXT}}").unwrap();
        let mut body = head.as_bytes().to_vec();
        body.extend_from_slice(text);
        body.extend(tail.as_bytes());
        body
    };
    // "5 – tusind tak" with Windows-1252's en dash (0x96).
    let cp1252 = b"5 \x96 tusind tak".to_vec();
    let (status, answer, _) = hook(
        &server,
        "mime",
        "message/rfc822",
        auth,
        mime(
            "",
            "Re: Hvordan gik det?",
            "reply-4@mail.example.dk",
            &cp1252,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "answered");
    // An out-of-office reply is kept and never read.
    let (status, answer, _) = hook(
        &server,
        "mime",
        "message/rfc822",
        auth,
        mime(
            "Auto-Submitted: auto-replied\n",
            "Autosvar: Hvordan gik det?",
            "auto-4@mail.example.dk",
            b"Jeg er p\xe5 ferie til 10. oktober.",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "automatic");

    // HTML only.
    let html = fill(
        &fixture("mime_html_only.eml"),
        &[
            ("FROM", &customers[4]),
            ("TO", &sent[4].reply_to),
            ("MESSAGE_ID", "reply-5@mail.example.dk"),
        ],
    );
    let (status, answer, _) =
        hook(&server, "mime", "message/rfc822", auth, html.into_bytes()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "answered");

    // Bad input: no message at all, a body over the limit, a provider the gateway does not know.
    let (status, problem, _) = hook(
        &server,
        "mime",
        "message/rfc822",
        auth,
        b"no headers, no sender".to_vec(),
    )
    .await;
    assert_problem(status, &problem, 422, "validation-failed");
    assert_eq!(too_large(&server, 10 * 1024 * 1024).await, 413);
    let (status, _, _) = hook(
        &server,
        "sparkpost",
        "application/json",
        auth,
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Every answer is recorded on its invitation, with its comment.
    let items = feedback_items(&server, &key).await;
    let by_invitation = |i: usize| {
        items
            .iter()
            .find(|f| f["invitation_id"] == invitations[i]["id"])
            .unwrap_or_else(|| panic!("no record for customer {}: {items:?}", i + 1))
            .clone()
    };
    assert_eq!(items.len(), 5, "{items:?}");
    let expected: [(i64, Option<&str>); 5] = [
        (4, Some("4 - hurtig hjælp")),
        (5, None),
        (3, Some("3 - for lang ventetid på svar")),
        (5, Some("5 – tusind tak")),
        (2, Some("2\nDet tog for lang tid, men personalet var søde.")),
    ];
    for (i, (score, comment)) in expected.iter().enumerate() {
        let record = by_invitation(i);
        assert_eq!(record["score"], *score, "customer {}: {record}", i + 1);
        assert_eq!(record["channel"], "email");
        assert_eq!(
            record["contact_id"],
            invitations[i]["contact_id"],
            "customer {}",
            i + 1
        );
        match comment {
            Some(c) => assert_eq!(
                record["comment"].as_str().map(str::trim),
                Some(*c),
                "customer {}",
                i + 1
            ),
            None => assert_eq!(record["comment"], Value::Null, "customer {}", i + 1),
        }
        assert_eq!(
            server.invitation(&key, &invitations[i]["id"]).await["status"],
            "answered"
        );
    }

    // A mail to the unsubscribe address of List-Unsubscribe opts the contact out of e-mail.
    let unsubscribe = fill(
        &fixture("mime_html_only.eml"),
        &[
            ("FROM", &customers[4]),
            ("TO", &sent[4].unsubscribe_to),
            ("MESSAGE_ID", "unsubscribe-5@mail.example.dk"),
        ],
    );
    let (status, answer, _) = hook(
        &server,
        "mime",
        "message/rfc822",
        auth,
        unsubscribe.into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "unsubscribed");
    let (_, contact) = server
        .get(
            &format!(
                "/v1/contacts/{}",
                invitations[4]["contact_id"].as_str().unwrap()
            ),
            &key,
        )
        .await;
    assert_eq!(contact["opt_outs"], json!(["email"]), "{contact}");
    server.stop().await;
}

async fn bounces_and_complaints_invalidate_addresses_and_opt_out(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = server.tenant("acme").await;
    let (status, body) = put_email_settings(
        &server,
        &key,
        json!({
            "from": "Acme Support <support@acme.example>",
            "inbound": {"mailgun_signing_key": MAILGUN_KEY,
                        "basic_auth": {"username": INBOUND_USER, "password": INBOUND_PASSWORD}}
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Sent in an hour: the invitations stay scheduled (the dispatcher does not take them), so
    // the complaint's cancellation is what the test sees.
    put_email_survey_sent_after(&server, &key, 60).await;
    let bounced = trigger(&server, &key, "kunde-a@example.dk").await;
    let complained = trigger(&server, &key, "kunde-b@example.dk").await;
    let contact = |inv: &Value| format!("/v1/contacts/{}", inv["contact_id"].as_str().unwrap());

    // Mailgun's permanent failure, signed inside the JSON body.
    let event = |timestamp: i64, token: &str, signature: Option<&str>| {
        let timestamp = timestamp.to_string();
        let computed = channels::email::inbound::mailgun_signature(MAILGUN_KEY, &timestamp, token);
        fill(
            &fixture("mailgun_event_failed.json"),
            &[
                ("TIMESTAMP", &timestamp),
                ("TOKEN", token),
                ("SIGNATURE", signature.unwrap_or(&computed)),
                ("RECIPIENT", "kunde-a@example.dk"),
                ("MESSAGE_ID", "survey-1@acme.example"),
            ],
        )
        .into_bytes()
    };
    let now = chrono::Utc::now().timestamp();
    let token = "f0ffee0123456789c0ffee0123456789c0ffee0123456789ab";
    let forged = event(now, token, Some(&"0".repeat(64)));
    let (status, problem, _) = hook(&server, "mailgun", "application/json", None, forged).await;
    assert_problem(status, &problem, 403, "forbidden");
    let (_, before) = server.get(&contact(&bounced), &key).await;
    assert_eq!(before["identities"][0]["status"], "valid", "{before}");
    let (status, answer, _) = hook(
        &server,
        "mailgun",
        "application/json",
        None,
        event(now, token, None),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (_, after) = server.get(&contact(&bounced), &key).await;
    assert_eq!(after["identities"][0]["status"], "invalid", "{after}");

    // Postmark's spam complaint: the contact is opted out of e-mail and not asked again.
    let complaint = fill(
        &fixture("postmark_spam_complaint.json"),
        &[("RECIPIENT", "kunde-b@example.dk")],
    );
    let (status, _, _) = hook(
        &server,
        "postmark",
        "application/json",
        None,
        complaint.clone().into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, answer, _) = hook(
        &server,
        "postmark",
        "application/json",
        Some((INBOUND_USER, INBOUND_PASSWORD)),
        complaint.into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_opted_out_of_email(&server, &key, &complained).await;
    server.stop().await;
}

/// SendGrid's Signed Event Webhook: a batch with a hard bounce, a block and a spam report,
/// signed by the key the tenant configured. Unsigned, wrongly signed and old deliveries (the
/// SDK's published vector, signed in 2020) change nothing.
async fn sendgrid_signed_events_invalidate_addresses_and_opt_out(backend: Backend) {
    use base64::Engine;
    use p256::ecdsa::signature::Signer;
    use p256::pkcs8::EncodePublicKey;
    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
    // The verification key and signature of SendGrid's Python library's test.
    const SDK_KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g==";
    const SDK_SIGNATURE: &str = "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM=";
    const SDK_PAYLOAD: &str = "[{\"email\":\"hello@world.com\",\"event\":\"dropped\",\"reason\":\"Bounced Address\",\"sg_event_id\":\"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA\",\"sg_message_id\":\"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0\",\"smtp-id\":\"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>\",\"timestamp\":1600112492}]\r\n";

    let server = TestServer::start(backend).await;
    let key = server.tenant("acme").await;
    let configure = |verification_key: String| {
        json!({"from": "Acme Support <support@acme.example>",
               "inbound": {"sendgrid_verification_key": verification_key}})
    };
    let signing = p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
    let public = B64.encode(
        signing
            .verifying_key()
            .to_public_key_der()
            .unwrap()
            .as_bytes(),
    );
    let post = |body: Vec<u8>, signed: Option<(String, String)>| {
        let mut request = server
            .client
            .post(server.url("/hooks/acme/email/sendgrid"))
            .header("content-type", "application/json")
            .body(body);
        if let Some((timestamp, signature)) = signed {
            request = request
                .header("X-Twilio-Email-Event-Webhook-Timestamp", timestamp)
                .header("X-Twilio-Email-Event-Webhook-Signature", signature);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let sign = |timestamp: i64, body: &[u8]| {
        let timestamp = timestamp.to_string();
        let mut signed = timestamp.as_bytes().to_vec();
        signed.extend_from_slice(body);
        let signature: p256::ecdsa::DerSignature = signing.sign(&signed);
        (timestamp, B64.encode(signature.as_bytes()))
    };

    // Without a verification key the hook takes no events.
    let (status, body) =
        put_email_settings(&server, &key, json!({"from": "support@acme.example"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, problem) = post(SDK_PAYLOAD.into(), None).await;
    assert_problem(status, &problem, 404, "not-found");

    // The SDK's vector is genuine, but signed in 2020: a replay.
    let (status, body) = put_email_settings(&server, &key, configure(SDK_KEY.into())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["settings"]["sendgrid_verification_key"], SDK_KEY,
        "{body}"
    );
    let (status, problem) = post(
        SDK_PAYLOAD.into(),
        Some(("1600112502".into(), SDK_SIGNATURE.into())),
    )
    .await;
    assert_problem(status, &problem, 403, "forbidden");
    assert!(
        problem["detail"].as_str().unwrap().contains("too old"),
        "{problem}"
    );
    let (status, problem) =
        put_email_settings(&server, &key, configure("c2VuZGdyaWQ=".into())).await;
    assert_problem(status, &problem, 422, "validation-failed");

    let (status, body) = put_email_settings(&server, &key, configure(public)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    put_email_survey_sent_after(&server, &key, 60).await;
    let bounced = trigger(&server, &key, "kunde-a@example.dk").await;
    let blocked = trigger(&server, &key, "kunde-b@example.dk").await;
    let complained = trigger(&server, &key, "kunde-c@example.dk").await;
    let contact = |inv: &Value| format!("/v1/contacts/{}", inv["contact_id"].as_str().unwrap());
    let events = fill(
        &fixture("sendgrid_events.json"),
        &[
            ("BOUNCED", "kunde-a@example.dk"),
            ("BLOCKED", "kunde-b@example.dk"),
            ("COMPLAINED", "kunde-c@example.dk"),
        ],
    ) + "\r\n";
    let now = chrono::Utc::now().timestamp();

    let (status, problem) = post(events.clone().into(), None).await;
    assert_problem(status, &problem, 403, "forbidden");
    let (timestamp, signature) = sign(now, events.as_bytes());
    let tampered = events.replace("spamreport", "delivered");
    let (status, problem) = post(
        tampered.into(),
        Some((timestamp.clone(), signature.clone())),
    )
    .await;
    assert_problem(status, &problem, 403, "forbidden");
    let (status, problem) = post(
        events.clone().into(),
        Some(sign(now - 600, events.as_bytes())),
    )
    .await;
    assert_problem(status, &problem, 403, "forbidden");
    let (_, before) = server.get(&contact(&bounced), &key).await;
    assert_eq!(before["identities"][0]["status"], "valid", "{before}");
    let (_, before) = server.get(&contact(&complained), &key).await;
    assert_eq!(before["opt_outs"], json!([]), "{before}");

    let (status, answer) = post(events.into(), Some((timestamp, signature))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "events");
    let (_, after) = server.get(&contact(&bounced), &key).await;
    assert_eq!(after["identities"][0]["status"], "invalid", "{after}");
    // A block is a soft bounce: the address stays.
    let (_, after) = server.get(&contact(&blocked), &key).await;
    assert_eq!(after["identities"][0]["status"], "valid", "{after}");
    assert_opted_out_of_email(&server, &key, &complained).await;
    server.stop().await;
}

/// The contact of `invitation` is opted out of e-mail, and the invitation cancelled.
async fn assert_opted_out_of_email(server: &TestServer, key: &str, invitation: &Value) {
    let contact = invitation["contact_id"].as_str().unwrap();
    let (_, opted) = server.get(&format!("/v1/contacts/{contact}"), key).await;
    assert_eq!(opted["opt_outs"], json!(["email"]), "{opted}");
    assert_eq!(
        server.invitation(key, &invitation["id"]).await["status"],
        "cancelled"
    );
}

/// RFC 6376 3.4.2, relaxed header canonicalization of one header.
fn relaxed_header(name: &str, value: &str) -> String {
    let unfolded = value.replace("\r\n", "");
    let mut compressed = String::new();
    for c in unfolded.chars() {
        let c = if c == '\t' { ' ' } else { c };
        if !(c == ' ' && compressed.ends_with(' ')) {
            compressed.push(c);
        }
    }
    format!("{}:{}\r\n", name.to_ascii_lowercase(), compressed.trim())
}

/// RFC 6376 3.4.4, relaxed body canonicalization.
fn relaxed_body(body: &str) -> String {
    let mut lines: Vec<String> = body
        .split("\r\n")
        .map(|line| {
            let mut out = String::new();
            for c in line.chars() {
                let c = if c == '\t' { ' ' } else { c };
                if !(c == ' ' && out.ends_with(' ')) {
                    out.push(c);
                }
            }
            out.trim_end().to_owned()
        })
        .collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    if lines.is_empty() {
        String::new()
    } else {
        format!("{}\r\n", lines.join("\r\n"))
    }
}

async fn survey_emails_are_dkim_signed_over_the_unsubscribe_headers(backend: Backend) {
    use base64::Engine;
    use ed25519_dalek::SigningKey;
    let b64 = base64::engine::general_purpose::STANDARD;

    // The gateway sends through the test server itself for tenants without one, signing with
    // its own key (`[email.dkim]`) where the tenant has none.
    let smtp = SmtpServer::start();
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), &smtp.ca_pem).unwrap();
    let gateway_seed = [9u8; 32];
    let server = TestServer::start_with(
        backend,
        |c| {
            c.email.ca_file = ca.path().to_str().unwrap().to_owned();
            c.email.smtp.host = "127.0.0.1".into();
            c.email.smtp.port = smtp.port;
            c.email.smtp.tls = channels::email::SmtpTls::Starttls;
            c.email.smtp.username = USER.into();
            c.email.smtp.password = PASSWORD.into();
            c.email.dkim.domain = "gateway.example".into();
            c.email.dkim.selector = "gw1".into();
            c.email.dkim.algorithm = channels::email::DkimAlgorithm::Ed25519;
            c.email.dkim.private_key = b64.encode(gateway_seed);
        },
        vec![],
    )
    .await;
    let key = server.tenant("acme").await;
    configure_smtp(&server, &key, &smtp, false).await;
    put_email_survey(&server, &key).await;
    let seed = [7u8; 32];
    let public = SigningKey::from_bytes(&seed).verifying_key();
    let settings = |private_key: &str| {
        json!({
            "from": "Acme Support <support@acme.example>",
            "reply_to_domain": "reply.acme.example",
            "smtp": {"host": "127.0.0.1", "port": smtp.port, "tls": "starttls",
                     "username": USER, "password": PASSWORD},
            "dkim": {"domain": "acme.example", "selector": "fb2026", "algorithm": "ed25519",
                     "private_key": private_key}
        })
    };
    let (status, problem) = put_email_settings(&server, &key, settings("not a key")).await;
    assert_problem(status, &problem, 422, "validation-failed");
    assert_eq!(
        problem["errors"][0]["field"], "dkim.private_key",
        "{problem}"
    );
    let (status, shown) = put_email_settings(&server, &key, settings(&b64.encode(seed))).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert!(!shown.to_string().contains(&b64.encode(seed)));

    let inv = trigger(&server, &key, "kunde@example.dk").await;
    assert_eq!(
        dispatch(&server, &key, &inv["id"], 1).await["status"],
        "sent"
    );
    let mail = smtp.wait_for(1, Duration::from_secs(5)).await;
    let raw = String::from_utf8(mail[0].data.clone()).unwrap();
    let tags = dkim_verified(&raw, &public);
    assert_eq!(
        (tags["d"].as_str(), tags["s"].as_str()),
        ("acme.example", "fb2026")
    );

    // A tenant with no server and no key of its own: the gateway's signature.
    let beta = server.tenant("beta").await;
    let (status, body) = put_email_settings(
        &server,
        &beta,
        json!({"from": "Beta Kundeservice <kontakt@beta.example>"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    put_email_survey(&server, &beta).await;
    let inv = trigger(&server, &beta, "kunde@example.dk").await;
    assert_eq!(
        dispatch(&server, &beta, &inv["id"], 1).await["status"],
        "sent"
    );
    let mail = smtp.wait_for(2, Duration::from_secs(5)).await;
    let raw = String::from_utf8(mail[1].data.clone()).unwrap();
    let gateway_public = SigningKey::from_bytes(&gateway_seed).verifying_key();
    let tags = dkim_verified(&raw, &gateway_public);
    assert_eq!(
        (tags["d"].as_str(), tags["s"].as_str()),
        ("gateway.example", "gw1")
    );
    // The same server and login: the second message went over the first one's kept
    // connection.
    assert_eq!(smtp.connections(), 1);
    server.stop().await;
}

/// Checks a received message's DKIM-Signature as a receiving server would (ed25519-sha256,
/// relaxed/relaxed, the List-Unsubscribe headers signed, the body hash, the signature by
/// `public`, and that a changed List-Unsubscribe no longer verifies); its tags.
fn dkim_verified(
    raw: &str,
    public: &ed25519_dalek::VerifyingKey,
) -> std::collections::HashMap<String, String> {
    use base64::Engine;
    use ed25519_dalek::{Signature, Verifier};
    use sha2::{Digest, Sha256};
    let b64 = base64::engine::general_purpose::STANDARD;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    // The header block, unfolded into (name, raw value) pairs.
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            headers
                .last_mut()
                .unwrap()
                .1
                .push_str(&format!("\r\n{line}"));
        } else {
            let (name, value) = line.split_once(':').unwrap();
            headers.push((name.to_owned(), value.to_owned()));
        }
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let dkim = find("DKIM-Signature").expect("a DKIM-Signature header");
    let tags: Vec<(String, String)> = dkim
        .replace("\r\n", "")
        .split(';')
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().to_owned(),
                v.split_whitespace().collect::<String>(),
            )
        })
        .collect();
    let tag = |name: &str| tags.iter().find(|(k, _)| k == name).unwrap().1.clone();
    assert_eq!(tag("a"), "ed25519-sha256");
    assert_eq!(tag("c"), "relaxed/relaxed");
    let signed: Vec<String> = tag("h").split(':').map(str::to_owned).collect();
    for required in [
        "from",
        "subject",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "message-id",
    ] {
        assert!(
            signed.iter().any(|h| h == required),
            "{required} is signed: {signed:?}"
        );
    }

    // The body hash matches the body as received, and the signature verifies with the public key.
    let body_hash = b64.encode(Sha256::digest(relaxed_body(body).as_bytes()));
    assert_eq!(tag("bh"), body_hash);
    let mut data = String::new();
    for name in &signed {
        if let Some(value) = find(name) {
            data.push_str(&relaxed_header(name, &value));
        }
    }
    let unsigned: String = dkim
        .replace("\r\n", "")
        .split(';')
        .map(|t| {
            if t.trim_start().starts_with("b=") {
                " b=".to_owned()
            } else {
                t.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(";");
    data.push_str(relaxed_header("DKIM-Signature", &unsigned).trim_end());
    let digest = Sha256::digest(data.as_bytes());
    let signature = Signature::from_slice(&b64.decode(tag("b")).unwrap()).unwrap();
    public
        .verify(&digest, &signature)
        .expect("the DKIM signature verifies");
    // A changed List-Unsubscribe no longer verifies.
    let tampered = data.replacen(
        "list-unsubscribe:<",
        "list-unsubscribe:<https://evil.example/u>, <",
        1,
    );
    assert!(public
        .verify(&Sha256::digest(tampered.as_bytes()), &signature)
        .is_err());
    tags.into_iter().collect()
}
