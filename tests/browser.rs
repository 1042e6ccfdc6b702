//! The pages behind a survey e-mail's links in a real browser, Debian's headless Chromium
//! (`apt-get install chromium`; `.ci/run` installs it): the rating page opens with the link's
//! score chosen, the customer adds a comment and sends the form (no script runs: the pages'
//! policy allows none), and the thank-you shows; the unsubscribe page's button opts the contact
//! out of e-mail. With FEEDBACK_SCREENSHOT set, the rating page's screenshot is written there
//! (the README shows `docs/rating-page.png`).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{Backend, TestServer};
use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions};
use mail_parser::MessageParser;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const QUESTION_DA: &str = "Hvor tilfreds er du med den service, du modtog i dag?";

/// Debian's Chromium, or `CHROMIUM` when set. Outside CI a machine without it skips the test
/// (with a notice); in CI its absence fails the test.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "Chromium is not installed at {}; CI installs Debian's `chromium` package",
        path.display()
    );
    eprintln!("skipped: no Chromium at {}", path.display());
    None
}

/// The path of a link the gateway wrote (its public URL is not the test server's address).
fn path_of(link: &str) -> String {
    url::Url::parse(link).unwrap().path().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_rating_and_unsubscribe_pages_work_in_a_browser() {
    let Some(chromium) = chromium() else {
        return;
    };
    let mail_dir = tempfile::tempdir().unwrap();
    let file_dir = mail_dir.path().to_str().unwrap().to_owned();
    let server =
        TestServer::start_with(Backend::Sqlite, |c| c.email.file_dir = file_dir, vec![]).await;
    let key = server.tenant("acme").await;
    let (status, body) = server
        .send(
            Method::PUT,
            "/v1/surveys/support-csat",
            Some(&key),
            Some(json!({
                "metric": "csat",
                "question": {"da": QUESTION_DA},
                "default_language": "da",
                "channels": ["email"],
                "policy": {"send_delay_minutes": 0, "quiet_hours": null}
            })),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let (status, inv) = server
        .post(
            "/v1/surveys/support-csat/send",
            &key,
            json!({"contact": {"email": "kunde@example.dk"}, "language": "da"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{inv}");
    // The survey e-mail, written to a file (no SMTP server configured).
    let mut files = Vec::new();
    for _ in 0..200 {
        server.dispatcher.run_once().await.unwrap();
        files = std::fs::read_dir(mail_dir.path())
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        if !files.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let raw = std::fs::read(&files[0]).unwrap();
    let message = MessageParser::default().parse(&raw).unwrap();
    let text = message.body_text(0).unwrap().into_owned();
    let four = text
        .lines()
        .find_map(|l| l.strip_prefix("4: "))
        .expect("the link for 4")
        .to_owned();
    let unsubscribe = message
        .header_raw("List-Unsubscribe")
        .unwrap()
        .split(['<', '>'])
        .find(|p| p.starts_with("http"))
        .unwrap()
        .to_owned();
    let rating_url = server.url(&path_of(&four));
    let unsubscribe_url = server.url(&path_of(&unsubscribe));
    let screenshot = std::env::var_os("FEEDBACK_SCREENSHOT").map(PathBuf::from);

    let (chosen, thanks, unsubscribed) = tokio::task::spawn_blocking(move || {
        let browser = Browser::new(
            LaunchOptions::default_builder()
                .path(Some(chromium))
                .headless(true)
                .sandbox(false)
                .window_size(Some((600, 760)))
                .idle_browser_timeout(Duration::from_secs(60))
                .args(
                    [
                        "--disable-gpu",
                        "--disable-quic",
                        "--no-first-run",
                        "--disable-background-networking",
                        "--disable-component-update",
                        "--disable-sync",
                    ]
                    .iter()
                    .map(std::ffi::OsStr::new)
                    .collect(),
                )
                .build()
                .unwrap(),
        )
        .expect("Chromium starts");
        let tab = browser.new_tab().unwrap();
        tab.navigate_to(&rating_url).unwrap();
        tab.wait_until_navigated().unwrap();
        let chosen = tab
            .evaluate(
                "document.querySelector('input[name=score]:checked').value",
                false,
            )
            .unwrap()
            .value
            .unwrap();
        tab.wait_for_element("textarea#comment")
            .unwrap()
            .click()
            .unwrap();
        tab.type_str("Hurtig og venlig hjælp").unwrap();
        if let Some(path) = screenshot {
            let png = tab
                .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
                .unwrap();
            std::fs::write(path, png).unwrap();
        }
        tab.wait_for_element("button[type=submit]")
            .unwrap()
            .click()
            .unwrap();
        let thanks = tab
            .wait_for_element("h1[role=status]")
            .unwrap()
            .get_inner_text()
            .unwrap();
        tab.navigate_to(&unsubscribe_url).unwrap();
        tab.wait_until_navigated().unwrap();
        tab.wait_for_element("button[type=submit]")
            .unwrap()
            .click()
            .unwrap();
        let unsubscribed = tab
            .wait_for_element("h1[role=status]")
            .unwrap()
            .get_inner_text()
            .unwrap();
        (chosen, thanks, unsubscribed)
    })
    .await
    .unwrap();

    assert_eq!(
        chosen,
        Value::String("4".into()),
        "the link's score is chosen"
    );
    assert_eq!(thanks, "Tak for dit svar!");
    assert!(unsubscribed.starts_with("Du er afmeldt"), "{unsubscribed}");
    let (_, list) = server.get("/v1/feedback?limit=10", &key).await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["score"], 4);
    assert_eq!(items[0]["comment"], "Hurtig og venlig hjælp");
    let (_, contact) = server
        .get(
            &format!("/v1/contacts/{}", inv["contact_id"].as_str().unwrap()),
            &key,
        )
        .await;
    assert_eq!(contact["opt_outs"], json!(["email"]), "{contact}");
    server.stop().await;
}
