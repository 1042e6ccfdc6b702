//! The web widget's public endpoints and its sites API, on the real server over HTTP (SQLite
//! and PostgreSQL): sites and their checks, origin-locked CORS and the server-side `Origin`
//! check, the impression's rules (too soon, forged, idempotent, honeypot), limits, identity
//! verification, and one fatigue budget shared with e-mail. The widget in a real browser is in
//! `tests/browser.rs`.

mod common;

use std::time::Duration;

use channels::widget::token::user_hash;
use common::{assert_problem, Backend, TestServer};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const SHOP: &str = "https://www.acme.example";
const ELSEWHERE: &str = "https://evil.example";

/// The least time between showing and answering in these tests (milliseconds).
const MIN_ANSWER_MS: u64 = 1000;

async fn start(backend: Backend) -> TestServer {
    TestServer::start_with(
        backend,
        |c| {
            c.widget.min_answer_ms = MIN_ANSWER_MS;
            // Every request comes from one address; the limits have their own test.
            c.widget.ip_per_second = 1000;
            c.widget.ip_burst = 1000;
        },
        vec![],
    )
    .await
}

/// A survey that asks on `channels`, in Danish and English.
async fn survey(server: &TestServer, key: &str, name: &str, metric: &str, channels: Value) {
    server
        .put_ok(
            key,
            &format!("/v1/surveys/{name}"),
            json!({
                "metric": metric,
                "question": {
                    "da": "Hvor sandsynligt er det, at du vil anbefale os?",
                    "en": "How likely are you to recommend us?"
                },
                "channels": channels,
                "policy": {"send_delay_minutes": 0, "quiet_hours": null}
            }),
        )
        .await;
}

/// Creates a site; its public key and secret.
async fn site(server: &TestServer, key: &str, name: &str, settings: Value) -> (String, String) {
    let (status, body) = server
        .send(
            Method::PUT,
            &format!("/v1/sites/{name}"),
            Some(key),
            Some(settings),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (
        body["site_key"].as_str().unwrap().to_owned(),
        body["secret"].as_str().unwrap().to_owned(),
    )
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

async fn widget(
    server: &TestServer,
    method: Method,
    path: &str,
    origin: Option<&str>,
    body: Option<Vec<u8>>,
) -> Answer {
    let mut req = server.client.request(method, server.url(path));
    if let Some(origin) = origin {
        req = req.header("origin", origin);
    }
    if let Some(body) = body {
        req = req.header("content-type", "application/json").body(body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    Answer {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

async fn eligibility(server: &TestServer, site_key: &str, query: &str, origin: &str) -> Answer {
    widget(
        server,
        Method::GET,
        &format!("/w/{site_key}/eligibility?{query}"),
        Some(origin),
        None,
    )
    .await
}

async fn answer(server: &TestServer, site_key: &str, body: &Value, origin: &str) -> Answer {
    widget(
        server,
        Method::POST,
        &format!("/w/{site_key}/feedback"),
        Some(origin),
        Some(serde_json::to_vec(body).unwrap()),
    )
    .await
}

fn allowed_origin(a: &Answer) -> Option<&str> {
    a.headers
        .get("access-control-allow-origin")
        .and_then(|v| v.to_str().ok())
}

async fn widget_records(server: &TestServer, key: &str) -> Vec<Value> {
    let (status, list) = server
        .get("/v1/feedback?channel=widget&limit=100", key)
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["items"].as_array().unwrap().clone()
}

on_both_backends!(
    sites_are_created_once_with_their_secret_and_checked,
    anonymous_answers_are_origin_locked_timed_and_idempotent,
    identified_visitors_share_one_fatigue_budget_with_email,
    widget_requests_are_limited_per_site_and_per_address,
    a_rotated_secret_keeps_verifying_beside_the_new_one,
);

async fn a_rotated_secret_keeps_verifying_beside_the_new_one(backend: Backend) {
    let server = start(backend).await;
    let key = server.tenant("acme").await;
    survey(&server, &key, "nps", "nps", json!(["widget"])).await;
    let (site_key, first) = site(
        &server,
        &key,
        "shop",
        json!({"allowed_origins": [SHOP], "survey": "nps", "display": {"delay_seconds": 0}}),
    )
    .await;
    let signed = |secret: &str, user: &str| {
        format!(
            "user_id={user}&user_hash={}&path=/",
            user_hash(secret.as_bytes(), user)
        )
    };
    let before = eligibility(&server, &site_key, "path=/", SHOP).await;
    let impression = before.body["impression"].as_str().unwrap().to_owned();

    let (status, rotated) = server
        .post("/v1/sites/shop/rotate-secret", &key, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let second = rotated["secret"].as_str().unwrap().to_owned();
    assert!(second.starts_with("wss_") && second != first, "{rotated}");
    assert_eq!(
        rotated["site_key"],
        site_key.as_str(),
        "the public key stays"
    );
    assert!(rotated["previous_secret_valid_until"].is_string());
    let (_, shown) = server.get("/v1/sites/shop", &key).await;
    assert!(shown.get("secret").is_none(), "{shown}");

    // Both secrets identify visitors, and an impression signed before still takes its answer.
    let contacts = server.count("contacts").await;
    for (secret, user) in [(&first, "user-old"), (&second, "user-new")] {
        let a = eligibility(&server, &site_key, &signed(secret, user), SHOP).await;
        assert_eq!(a.body["show"], true, "{}", a.body);
    }
    assert_eq!(server.count("contacts").await, contacts + 2);
    tokio::time::sleep(Duration::from_millis(MIN_ANSWER_MS + 50)).await;
    let a = answer(
        &server,
        &site_key,
        &json!({"impression": impression, "score": 8}),
        SHOP,
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);

    // Rotated again: the first secret verifies nothing any more.
    let (status, _) = server
        .post("/v1/sites/shop/rotate-secret", &key, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let a = eligibility(&server, &site_key, &signed(&first, "user-oldest"), SHOP).await;
    assert_eq!(a.body["show"], true, "shown, anonymously: {}", a.body);
    assert_eq!(
        server.count("contacts").await,
        contacts + 2,
        "an expired secret identifies no one"
    );
    let (status, body) = server
        .post("/v1/sites/nope/rotate-secret", &key, json!({}))
        .await;
    assert_problem(status, &body, 404, "not-found");
    server.stop().await;
}

async fn sites_are_created_once_with_their_secret_and_checked(backend: Backend) {
    let server = start(backend).await;
    let key = server.tenant("acme").await;
    let other = server.tenant("globex").await;
    survey(&server, &key, "web-nps", "nps", json!(["widget"])).await;
    survey(&server, &key, "mail-only", "nps", json!(["email"])).await;

    let settings = json!({
        "allowed_origins": [SHOP, "https://*.shop.example"],
        "survey": "web-nps",
        "display": {"delay_seconds": 5, "paths": ["/checkout/*"], "share": 0.5,
                    "rest_days": 30, "remember_visitor": true},
        "theme": {"accent": "#005a9c", "font": "Georgia, serif", "radius": "12px",
                  "position": "bottom-left"},
        "languages": ["da", "en"]
    });
    let (status, created) = server
        .send(
            Method::PUT,
            "/v1/sites/shop",
            Some(&key),
            Some(settings.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let site_key = created["site_key"].as_str().unwrap().to_owned();
    assert!(site_key.starts_with("ws_"), "{created}");
    assert!(created["secret"].as_str().unwrap().starts_with("wss_"));
    assert_eq!(created["display"]["share"], 0.5);
    assert_eq!(created["theme"]["position"], "bottom-left");
    let script_url = created["script_url"].as_str().unwrap();
    assert!(script_url.contains("/widget.js?v="), "{created}");
    assert_eq!(
        created["embed"],
        format!("<script async src=\"{script_url}\" data-site=\"{site_key}\"></script>")
    );

    // Changed: same keys, no secret shown again.
    let mut changed = settings.clone();
    changed["display"]["share"] = json!(1.0);
    let (status, updated) = server
        .send(Method::PUT, "/v1/sites/shop", Some(&key), Some(changed))
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["site_key"], site_key.as_str());
    assert!(updated.get("secret").is_none(), "{updated}");
    let (_, shown) = server.get("/v1/sites/shop", &key).await;
    assert!(shown.get("secret").is_none(), "{shown}");
    assert_eq!(shown["display"]["share"], 1.0);
    let (_, list) = server.get("/v1/sites", &key).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (status, body) = server.get("/v1/sites/shop", &other).await;
    assert_problem(status, &body, 404, "not-found");

    // Every bad value is named.
    let cases = [
        (
            json!({"allowed_origins": ["*"], "survey": "web-nps"}),
            "allowed_origins[0]",
        ),
        (
            json!({"allowed_origins": ["https://www.acme.example/shop"], "survey": "web-nps"}),
            "allowed_origins[0]",
        ),
        (
            json!({"allowed_origins": [], "survey": "web-nps"}),
            "allowed_origins",
        ),
        (
            json!({"allowed_origins": [SHOP], "survey": "nope"}),
            "survey",
        ),
        (
            json!({"allowed_origins": [SHOP], "survey": "mail-only"}),
            "survey",
        ),
        (
            json!({"allowed_origins": [SHOP], "survey": "web-nps", "languages": ["sv"]}),
            "languages[0]",
        ),
        (
            json!({"allowed_origins": [SHOP], "survey": "web-nps", "theme": {"accent": "#ffff00"}}),
            "theme.accent",
        ),
        (
            json!({"allowed_origins": [SHOP], "survey": "web-nps", "theme": {"font": "x;}*{display:none"}}),
            "theme.font",
        ),
        (
            json!({"allowed_origins": [SHOP], "survey": "web-nps", "display": {"share": 2}}),
            "display.share",
        ),
        (
            json!({"allowed_origins": [SHOP], "survey": "web-nps", "colour": "red"}),
            "colour",
        ),
    ];
    for (body, field) in cases {
        let (status, problem) = server
            .send(Method::PUT, "/v1/sites/bad", Some(&key), Some(body.clone()))
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {problem}"
        );
        assert!(
            problem.to_string().contains(&format!("\"{field}\"")),
            "{body}: expected {field} in {problem}"
        );
    }
    assert_eq!(server.count("sites").await, 1, "bad sites are not stored");

    // Deleted: the widget's endpoints no longer know the site.
    let (status, _) = server
        .send(Method::DELETE, "/v1/sites/shop", Some(&key), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let gone = eligibility(&server, &site_key, "path=/checkout/x", SHOP).await;
    assert_problem(gone.status, &gone.body, 404, "not-found");
    server.stop().await;
}

async fn anonymous_answers_are_origin_locked_timed_and_idempotent(backend: Backend) {
    let server = start(backend).await;
    let key = server.tenant("acme").await;
    survey(&server, &key, "web-nps", "nps", json!(["widget"])).await;
    let (site_key, _) = site(
        &server,
        &key,
        "shop",
        json!({
            "allowed_origins": [SHOP],
            "survey": "web-nps",
            "display": {"delay_seconds": 2, "paths": ["/checkout/*"]},
            "languages": ["da", "en"]
        }),
    )
    .await;

    // Preflight: the allowed origin may, another may not (and learns nothing).
    let preflight = |origin: &'static str| {
        let server = &server;
        let url = server.url(&format!("/w/{site_key}/feedback"));
        async move {
            server
                .client
                .request(Method::OPTIONS, url)
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "content-type")
                .send()
                .await
                .unwrap()
        }
    };
    let ok = preflight(SHOP).await;
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    assert_eq!(ok.headers()["access-control-allow-origin"], SHOP);
    assert!(ok.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    let refused = preflight(ELSEWHERE).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused
        .headers()
        .get("access-control-allow-origin")
        .is_none());

    // Display rules: the path, and the page's own show() that skips them.
    let elsewhere = eligibility(&server, &site_key, "path=/about&lang=da", SHOP).await;
    assert_eq!(elsewhere.status, StatusCode::OK, "{}", elsewhere.body);
    assert_eq!(elsewhere.body, json!({"show": false, "reason": "path"}));
    let forced = eligibility(&server, &site_key, "path=/about&lang=da&force=true", SHOP).await;
    assert_eq!(forced.body["show"], true, "{}", forced.body);
    assert_eq!(forced.body["delay_ms"], 0);

    let shown = eligibility(&server, &site_key, "path=/checkout/pay&lang=da-DK,en", SHOP).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(allowed_origin(&shown), Some(SHOP));
    let b = &shown.body;
    assert_eq!(b["show"], true, "{b}");
    assert_eq!(b["language"], "da");
    assert_eq!(b["metric"], "nps");
    assert_eq!((b["low"].as_i64(), b["high"].as_i64()), (Some(0), Some(10)));
    assert_eq!(
        b["texts"]["question"],
        "Hvor sandsynligt er det, at du vil anbefale os?"
    );
    assert_eq!(b["texts"]["thank_you"], "Tak for dit svar!");
    assert_eq!(b["delay_ms"], 2000);
    let impression = b["impression"].as_str().unwrap().to_owned();
    // The browser's language among the site's; else the site's first.
    let english = eligibility(&server, &site_key, "path=/checkout/pay&lang=en-GB,fr", SHOP).await;
    assert_eq!(english.body["language"], "en");
    assert_eq!(
        english.body["texts"]["thank_you"],
        "Thank you for your answer!"
    );
    assert_eq!(
        english.body["texts"]["question"],
        "How likely are you to recommend us?"
    );
    let german = eligibility(&server, &site_key, "path=/checkout/pay&lang=de-DE", SHOP).await;
    assert_eq!(
        german.body["language"], "da",
        "German is not among the site's languages"
    );

    // Another origin, or none (a script outside a browser), is refused by the server itself.
    let foreign = eligibility(&server, &site_key, "path=/checkout/pay", ELSEWHERE).await;
    assert_problem(foreign.status, &foreign.body, 403, "forbidden");
    assert_eq!(allowed_origin(&foreign), None);
    let body = json!({"impression": impression, "score": 9, "comment": "Nem betaling"});
    let foreign = answer(&server, &site_key, &body, ELSEWHERE).await;
    assert_problem(foreign.status, &foreign.body, 403, "forbidden");
    let bare = widget(
        &server,
        Method::POST,
        &format!("/w/{site_key}/feedback"),
        None,
        Some(serde_json::to_vec(&body).unwrap()),
    )
    .await;
    assert_problem(bare.status, &bare.body, 403, "forbidden");
    let unknown = answer(&server, "ws_unknown", &body, SHOP).await;
    assert_problem(unknown.status, &unknown.body, 404, "not-found");

    // Too soon after the widget was shown: a person cannot have read the question. (A fresh
    // impression, answered at once: the requests above may have taken the least time already
    // on a busy machine.)
    let fresh = eligibility(&server, &site_key, "path=/checkout/pay", SHOP).await;
    let hasty = json!({"impression": fresh.body["impression"], "score": 9});
    let early = answer(&server, &site_key, &hasty, SHOP).await;
    assert_problem(early.status, &early.body, 422, "validation-failed");
    assert!(
        early.body.to_string().contains("too soon"),
        "{}",
        early.body
    );
    assert_eq!(
        allowed_origin(&early),
        Some(SHOP),
        "errors are readable by the page"
    );
    tokio::time::sleep(Duration::from_millis(MIN_ANSWER_MS + 50)).await;

    // Bad bodies change nothing.
    let forged = json!({"impression": "AAAA".repeat(11), "score": 9});
    let a = answer(&server, &site_key, &forged, SHOP).await;
    assert_problem(a.status, &a.body, 422, "validation-failed");
    let off_scale = json!({"impression": impression, "score": 11});
    let a = answer(&server, &site_key, &off_scale, SHOP).await;
    assert_problem(a.status, &a.body, 422, "validation-failed");
    let a = widget(
        &server,
        Method::POST,
        &format!("/w/{site_key}/feedback"),
        Some(SHOP),
        Some(b"{\"impression\": ".to_vec()),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    let huge = json!({"impression": impression, "score": 9, "comment": "x".repeat(5000)});
    let a = answer(&server, &site_key, &huge, SHOP).await;
    assert_problem(a.status, &a.body, 413, "payload-too-large");
    // The honeypot: answered as if taken, nothing stored.
    let bot = json!({"impression": impression, "score": 10, "website": "http://spam.example"});
    let a = answer(&server, &site_key, &bot, SHOP).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    assert!(widget_records(&server, &key).await.is_empty());

    // The answer, sent five times at once (a double click, a retry): one record.
    let sends = (0..5).map(|_| answer(&server, &site_key, &body, SHOP));
    let results = futures::future::join_all(sends).await;
    let ids: std::collections::HashSet<String> = results
        .iter()
        .map(|a| {
            assert!(
                a.status == StatusCode::CREATED || a.status == StatusCode::OK,
                "{} {}",
                a.status,
                a.body
            );
            a.body["feedback_id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one record per impression");
    assert_eq!(
        results
            .iter()
            .filter(|a| a.status == StatusCode::CREATED)
            .count(),
        1
    );
    // The same impression with another answer: a conflict, the first answer stays.
    let other = json!({"impression": impression, "score": 2});
    let a = answer(&server, &site_key, &other, SHOP).await;
    assert_problem(a.status, &a.body, 409, "already-answered");

    let records = widget_records(&server, &key).await;
    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    assert_eq!(r["channel"], "widget");
    assert_eq!(r["provider"], "widget");
    assert_eq!(r["score"], 9);
    assert_eq!(r["comment"], "Nem betaling");
    assert_eq!(r["contact_id"], Value::Null, "anonymous");
    assert_eq!(r["metadata"]["site"], "shop");
    server.stop().await;
}

async fn identified_visitors_share_one_fatigue_budget_with_email(backend: Backend) {
    let server = start(backend).await;
    let key = server.tenant("acme").await;
    survey(&server, &key, "nps", "nps", json!(["email", "widget"])).await;
    let (site_key, secret) = site(
        &server,
        &key,
        "shop",
        json!({"allowed_origins": [SHOP], "survey": "nps", "display": {"delay_seconds": 0}}),
    )
    .await;
    let signed = |user: &str| {
        format!(
            "user_id={user}&user_hash={}&path=/",
            user_hash(secret.as_bytes(), user)
        )
    };

    // Mailed yesterday (here: a moment ago): not asked again on the web.
    let (status, mailed) = server
        .post(
            "/v1/surveys/nps/send",
            &key,
            json!({"contact": {"external_id": "user-1", "email": "ann@example.com"}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{mailed}");
    assert_eq!(mailed["status"], "scheduled");
    let a = eligibility(&server, &site_key, &signed("user-1"), SHOP).await;
    assert_eq!(
        a.body,
        json!({"show": false, "reason": "rest_period"}),
        "{}",
        a.body
    );
    let ann = mailed["contact_id"].as_str().unwrap();
    let (_, decisions) = server
        .get(&format!("/v1/contacts/{ann}/decisions"), &key)
        .await;
    let items = decisions["items"].as_array().unwrap();
    let widget_decision = items
        .iter()
        .find(|d| d["inputs"]["channels"] == json!(["widget"]))
        .unwrap_or_else(|| panic!("the widget's decision is logged: {decisions}"));
    assert_eq!(widget_decision["outcome"], "suppressed");
    assert_eq!(widget_decision["rule"], "rest_period");
    // Page views within the memory time decide nothing again, and log nothing.
    let logged = server.count("policy_decisions").await;
    for _ in 0..3 {
        let again = eligibility(&server, &site_key, &signed("user-1"), SHOP).await;
        assert_eq!(again.body["reason"], "rest_period");
    }
    assert_eq!(server.count("policy_decisions").await, logged);

    // A visitor never asked: ten page views at once show the widget once.
    let bo_query = signed("user-2");
    let views = (0..10).map(|_| eligibility(&server, &site_key, &bo_query, SHOP));
    let views = futures::future::join_all(views).await;
    let shown: Vec<&Answer> = views.iter().filter(|v| v.body["show"] == true).collect();
    assert_eq!(
        shown.len(),
        1,
        "{:?}",
        views.iter().map(|v| &v.body).collect::<Vec<_>>()
    );
    let impression = shown[0].body["impression"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(MIN_ANSWER_MS + 50)).await;
    let a = answer(
        &server,
        &site_key,
        &json!({"impression": impression, "score": 3, "comment": "For dyrt"}),
        SHOP,
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let records = widget_records(&server, &key).await;
    assert_eq!(records.len(), 1);
    let bo = records[0]["contact_id"].as_str().unwrap().to_owned();
    assert_eq!(records[0]["score"], 3);
    let (_, decisions) = server
        .get(&format!("/v1/contacts/{bo}/decisions"), &key)
        .await;
    let outcomes: Vec<&str> = decisions["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["outcome"].as_str().unwrap())
        .collect();
    assert!(outcomes.contains(&"shown"), "{decisions}");
    let (_, invitations) = server
        .get(&format!("/v1/invitations?contact={bo}"), &key)
        .await;
    let widget_invitation = invitations["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["channel"] == "widget")
        .cloned()
        .unwrap_or_else(|| panic!("{invitations}"));
    assert_eq!(widget_invitation["status"], "answered");
    // Answered on the web: not mailed the same question now.
    let (status, mail) = server
        .post(
            "/v1/surveys/nps/send",
            &key,
            json!({"contact": {"external_id": "user-2", "email": "bo@example.com"}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{mail}");
    assert_eq!(mail["contact_id"], bo.as_str(), "the same contact");
    assert_eq!(mail["status"], "suppressed");
    assert_eq!(mail["reason"], "rest_period");

    // A hash that does not verify: shown, but anonymous; no contact is made or found.
    let contacts = server.count("contacts").await;
    let forged = format!("user_id=user-1&user_hash={}&path=/", "0".repeat(64));
    let a = eligibility(&server, &site_key, &forged, SHOP).await;
    assert_eq!(a.body["show"], true, "{}", a.body);
    // An e-mail address beside a user id is not what the hash signs: not used.
    let spoof = format!(
        "user_id=user-9&email=ann@example.com&user_hash={}&path=/",
        user_hash(secret.as_bytes(), "user-9")
    );
    let b = eligibility(&server, &site_key, &spoof, SHOP).await;
    assert_eq!(b.body["show"], true, "{}", b.body);
    tokio::time::sleep(Duration::from_millis(MIN_ANSWER_MS + 50)).await;
    let r = answer(
        &server,
        &site_key,
        &json!({"impression": a.body["impression"], "score": 10}),
        SHOP,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let (_, record) = server
        .get(
            &format!("/v1/feedback/{}", r.body["feedback_id"].as_str().unwrap()),
            &key,
        )
        .await;
    assert_eq!(record["contact_id"], Value::Null, "{record}");
    assert_eq!(
        server.count("contacts").await,
        contacts + 1,
        "only user-9 (verified) became a contact"
    );
    server.stop().await;
}

async fn widget_requests_are_limited_per_site_and_per_address(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        |c| {
            c.widget.site_per_second = 1;
            c.widget.site_burst = 3;
            c.widget.ip_per_second = 1;
            c.widget.ip_burst = 6;
        },
        vec![],
    )
    .await;
    let key = server.tenant("acme").await;
    survey(&server, &key, "web-nps", "nps", json!(["widget"])).await;
    let (busy, _) = site(
        &server,
        &key,
        "busy",
        json!({"allowed_origins": [SHOP], "survey": "web-nps"}),
    )
    .await;
    let (quiet, _) = site(
        &server,
        &key,
        "quiet",
        json!({"allowed_origins": [SHOP], "survey": "web-nps"}),
    )
    .await;
    for _ in 0..3 {
        let a = eligibility(&server, &busy, "path=/", SHOP).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    }
    let limited = eligibility(&server, &busy, "path=/", SHOP).await;
    assert_problem(limited.status, &limited.body, 429, "rate-limited");
    assert!(limited.headers.contains_key("retry-after"));
    assert_eq!(allowed_origin(&limited), Some(SHOP));
    // Another site of the same tenant is not slowed by the busy one…
    let a = eligibility(&server, &quiet, "path=/", SHOP).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // …until this address has used its own allowance.
    let a = eligibility(&server, &quiet, "path=/", SHOP).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let by_address = eligibility(&server, &quiet, "path=/", SHOP).await;
    assert_problem(by_address.status, &by_address.body, 429, "rate-limited");
    server.stop().await;
}

#[tokio::test]
async fn the_script_is_small_cacheable_and_embeddable() {
    let server = TestServer::start(Backend::Sqlite).await;
    let key = server.tenant("acme").await;
    survey(&server, &key, "web-nps", "nps", json!(["widget"])).await;
    let (status, site) = server
        .send(
            Method::PUT,
            "/v1/sites/shop",
            Some(&key),
            Some(json!({"allowed_origins": [SHOP], "survey": "web-nps"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let versioned = url::Url::parse(site["script_url"].as_str().unwrap()).unwrap();
    let path = format!("{}?{}", versioned.path(), versioned.query().unwrap());

    let gz = server
        .client
        .get(server.url(&path))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gz.status(), StatusCode::OK);
    let h = gz.headers().clone();
    assert_eq!(h["content-encoding"], "gzip");
    assert_eq!(h["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(h["cross-origin-resource-policy"], "cross-origin");
    assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
    let compressed = gz.bytes().await.unwrap();
    assert!(
        compressed.len() <= 15 * 1024,
        "widget.js is {} bytes gzipped; at most 15 KB",
        compressed.len()
    );
    let mut plain = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&compressed[..]),
        &mut plain,
    )
    .unwrap();
    assert!(plain.contains("attachShadow({ mode: \"open\" })"));
    assert!(!plain.contains("document.cookie"), "no cookies");

    // Without the version: a short lifetime and an ETag to revalidate with.
    let bare = server
        .client
        .get(server.url("/widget.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.headers()["cache-control"], "public, max-age=300");
    let etag = bare.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(bare.text().await.unwrap(), plain);
    let again = server
        .client
        .get(server.url("/widget.js"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    server.stop().await;
}
