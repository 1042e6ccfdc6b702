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
);

const QUESTION_DA: &str = "Hvor tilfreds er du med den service, du modtog i dag?";

async fn put_email_survey(server: &TestServer, key: &str) {
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
                "policy": {"send_delay_minutes": 0, "quiet_hours": null, "rest_period_days": 0,
                           "max_per_window": 1000, "one_per_ticket": false}
            })),
        )
        .await;
    assert!(status.is_success(), "{body}");
}

async fn configure_smtp(server: &TestServer, key: &str, smtp: &SmtpServer) -> Value {
    let (status, body) = server
        .send(
            Method::PUT,
            "/v1/channels/email",
            Some(key),
            Some(json!({
                "from": "Acme Support <support@acme.example>",
                "reply_to_domain": "reply.acme.example",
                "smtp": {"host": "127.0.0.1", "port": smtp.port, "tls": "starttls",
                         "username": USER, "password": PASSWORD}
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
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
    let smtp = SmtpServer::start();
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), &smtp.ca_pem).unwrap();
    let ca_file = ca.path().to_str().unwrap().to_owned();
    let server = TestServer::start_with(backend, |c| c.email.ca_file = ca_file, vec![]).await;
    let key = server.tenant("acme").await;
    configure_smtp(&server, &key, &smtp).await;
    put_email_survey(&server, &key).await;
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
    let smtp = SmtpServer::start();
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), &smtp.ca_pem).unwrap();
    let ca_file = ca.path().to_str().unwrap().to_owned();
    let server = TestServer::start_with(
        backend,
        |c| {
            c.email.ca_file = ca_file;
            c.dispatch.max_attempts = 3;
        },
        vec![],
    )
    .await;
    let key = server.tenant("acme").await;
    configure_smtp(&server, &key, &smtp).await;
    put_email_survey(&server, &key).await;

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
    configure_smtp(&server, &key, &smtp).await;
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
    let (status, problem) = server
        .send(
            Method::PUT,
            "/v1/channels/email",
            Some(&key),
            Some(json!({"from": "Acme <not an address>", "smtp": {"host": "smtp.acme.example", "username": "u"}})),
        )
        .await;
    assert_problem(status, &problem, 422, "validation-failed");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["from", "smtp.password"], "{problem}");

    let smtp = SmtpServer::start();
    let shown = configure_smtp(&server, &key, &smtp).await;
    assert!(!shown.to_string().contains(PASSWORD), "{shown}");
    assert_eq!(shown["secrets_set"], json!(["smtp_password"]));
    assert_eq!(shown["settings"]["smtp"]["username"], USER);
    let (_, again) = server.get("/v1/channels/email", &key).await;
    assert_eq!(again, shown);
    server.stop().await;
}
