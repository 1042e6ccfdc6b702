//! Pages and the web widget in a real browser, Debian's headless Chromium (`apt-get install
//! chromium`; `.ci/run` installs it):
//!
//! - the pages behind a survey e-mail's links: the rating page opens with the link's score
//!   chosen, the customer adds a comment and sends the form (no script runs: the pages' policy
//!   allows none), and the thank-you shows; the unsubscribe page's button opts the contact out
//!   of e-mail. With FEEDBACK_SCREENSHOT set, the rating page's screenshot is written there
//!   (the README shows `docs/rating-page.png`);
//! - the web widget embedded in pages on another loopback origin: axe-core (installed by
//!   `npm ci`) finds no WCAG 2.2 A/AA violation in the light and the dark scheme; on a page
//!   whose CSS attacks every element, a visitor rates with the keyboard, comments, sends, and
//!   the answer is found through the API; a page on an origin the site does not allow gets no
//!   widget and cannot post. With FEEDBACK_WIDGET_SCREENSHOT set, the Danish widget's
//!   screenshot is written there (the README shows `docs/widget-da.png`).

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

/// Headless Chromium with this machine's flags (no background networking: its connections
/// would be refused, many at a time).
fn launch(chromium: PathBuf, window: (u32, u32)) -> Browser {
    Browser::new(
        LaunchOptions::default_builder()
            .path(Some(chromium))
            .headless(true)
            .sandbox(false)
            .window_size(Some(window))
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
    .expect("Chromium starts")
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
        let browser = launch(chromium, (600, 760));
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

/// axe-core's browser build, installed by `npm ci` (package.json). In CI its absence fails the
/// test; elsewhere the accessibility checks are skipped with a notice.
fn axe_source() -> Option<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node_modules/axe-core/axe.min.js");
    match std::fs::read_to_string(&path) {
        Ok(source) => Some(source),
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "axe-core is not installed at {}; CI runs `npm ci`",
                path.display()
            );
            eprintln!(
                "accessibility checks skipped: no {} (run `npm ci`)",
                path.display()
            );
            None
        }
    }
}

/// A shop's page that embeds the widget. `hostile` adds CSS that attacks every element the
/// way careless or hostile site styles do; the plain page has a strict Content-Security-Policy
/// (no inline styles, scripts only from the gateway or with the page's nonce), as shops often
/// do, and records any violation.
fn shop_page(script: &str, site_key: &str, hostile: bool, focused: &str) -> String {
    let gateway = url::Url::parse(script)
        .unwrap()
        .origin()
        .ascii_serialization();
    let policy = if hostile {
        String::new()
    } else {
        format!(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
             script-src 'nonce-shop' {gateway}; connect-src {gateway}; style-src 'self'\">"
        )
    };
    let style = if hostile {
        "* { all: unset !important; } button, [role=dialog], form, textarea { display: none !important; } \
         div { visibility: hidden !important; font-size: 2px !important; }"
    } else {
        // The policy allows no inline style: the plain page has none of its own.
        ""
    };
    let style = if style.is_empty() {
        String::new()
    } else {
        format!("<style>{style}</style>")
    };
    format!(
        "<!DOCTYPE html><html lang=\"da\"><head><meta charset=\"utf-8\">{policy}<title>Acme butik</title>\
         {style}</head><body><main><h1>Acme butik</h1>\
         <label for=\"search\">Søg</label> <input id=\"search\">\
         <p>Tak fordi du handler hos os. <a id=\"offer\" href=\"#offer\">Se ugens tilbud</a></p></main>\
         <script nonce=\"shop\">window.violations = [];\
         document.addEventListener('securitypolicyviolation', function (e) {{ window.violations.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile); }});\
         document.getElementById('{focused}').focus();\
         window.addEventListener('feedbackwidget:answered', function (e) {{ window.answered = e.detail; }});</script>\
         <script async src=\"{script}\" data-site=\"{site_key}\" data-lang=\"da\"></script>\
         </body></html>"
    )
}

/// The value of `expression` (awaited, if a promise), through JSON: the protocol hands back
/// objects and arrays as references, not values.
fn js(tab: &headless_chrome::Tab, expression: &str) -> Value {
    let wrapped = format!(
        "Promise.resolve(({expression})).then(v => JSON.stringify(v === undefined ? null : v))"
    );
    let json = tab
        .evaluate(&wrapped, true)
        .unwrap_or_else(|e| panic!("{expression}: {e}"))
        .value
        .unwrap_or(Value::Null);
    serde_json::from_str(json.as_str().unwrap_or("null")).unwrap()
}

/// Waits until `expression` is true in the page.
fn wait_for(tab: &headless_chrome::Tab, expression: &str) {
    for _ in 0..200 {
        if js(tab, expression) == Value::Bool(true) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {expression}");
}

const WIDGET: &str = "document.querySelector('feedback-widget')";
const SHADOW: &str = "document.querySelector('feedback-widget').shadowRoot";
const WIDGET_SHOWN: &str = "!!(document.querySelector('feedback-widget') && \
     document.querySelector('feedback-widget').shadowRoot && \
     document.querySelector('feedback-widget').shadowRoot.querySelector('input[name=score]'))";

/// axe-core's WCAG 2.0–2.2 A and AA violations inside the widget, as JSON.
fn axe_violations(tab: &headless_chrome::Tab, axe: &str) -> Value {
    tab.evaluate(axe, false).expect("axe-core loads");
    js(
        tab,
        &format!(
            "axe.run({WIDGET}, {{runOnly: {{type: 'tag', values: \
             ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}}}})\
             .then(r => r.violations.map(v => ({{id: v.id, \
             nodes: v.nodes.map(n => n.html + ' ' + n.failureSummary)}})))"
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_widget_is_accessible_keyboard_usable_and_origin_locked_in_a_browser() {
    let Some(chromium) = chromium() else {
        return;
    };
    let axe = axe_source();
    let checks_accessibility = axe.is_some();
    let server =
        TestServer::start_with(Backend::Sqlite, |c| c.widget.min_answer_ms = 500, vec![]).await;
    let key = server.tenant("acme").await;
    server
        .put_ok(
            &key,
            "/v1/surveys/web-nps",
            json!({
                "metric": "nps",
                "question": {
                    "da": "Hvor sandsynligt er det, at du vil anbefale Acme til en ven?",
                    "en": "How likely are you to recommend Acme to a friend?"
                },
                "default_language": "da",
                "channels": ["widget"]
            }),
        )
        .await;
    // The shop's pages, on loopback origins of their own; the site allows the first only.
    type Pages = std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>;
    let pages: Pages = Default::default();
    let app = |pages: Pages| {
        axum::Router::new().route(
            "/{page}",
            axum::routing::get(
                move |axum::extract::Path(page): axum::extract::Path<String>| async move {
                    axum::response::Html(
                        pages
                            .lock()
                            .unwrap()
                            .get(&page)
                            .cloned()
                            .unwrap_or_default(),
                    )
                },
            ),
        )
    };
    let shop = common::serve_on_loopback(app(pages.clone())).await;
    let elsewhere = common::serve_on_loopback(app(pages.clone())).await;
    let mut site_keys = Vec::new();
    let mut script = String::new();
    for (name, remember) in [("shop", false), ("remembering", true)] {
        let (status, site) = server
            .send(
                Method::PUT,
                &format!("/v1/sites/{name}"),
                Some(&key),
                Some(json!({
                    "allowed_origins": [shop],
                    "survey": "web-nps",
                    "display": {"delay_seconds": 0, "remember_visitor": remember, "rest_days": 30},
                    "languages": ["da", "en"]
                })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{site}");
        site_keys.push(site["site_key"].as_str().unwrap().to_owned());
        let versioned = url::Url::parse(site["script_url"].as_str().unwrap()).unwrap();
        script = server.url(&format!(
            "{}?{}",
            versioned.path(),
            versioned.query().unwrap()
        ));
    }
    let site_key = site_keys[0].clone();
    pages.lock().unwrap().extend([
        (
            "plain".to_owned(),
            shop_page(&script, &site_key, false, "offer"),
        ),
        (
            "hostile".to_owned(),
            shop_page(&script, &site_key, true, "offer"),
        ),
        (
            "typing".to_owned(),
            shop_page(&script, &site_key, false, "search"),
        ),
        (
            "remembering".to_owned(),
            shop_page(&script, &site_keys[1], false, "offer"),
        ),
    ]);
    let screenshot = std::env::var_os("FEEDBACK_WIDGET_SCREENSHOT").map(PathBuf::from);
    let gateway = server.base.clone();
    let remembering_key = site_keys[1].clone();

    let seen = tokio::task::spawn_blocking(move || {
        use headless_chrome::protocol::cdp::{Emulation, Page};
        let browser = launch(chromium, (900, 700));
        let mut seen = serde_json::Map::new();

        // A plain page: the widget opens in Danish with focus on the scale, and axe-core
        // finds nothing, in the light scheme and the dark one (with reduced motion).
        let tab = browser.new_tab().unwrap();
        tab.navigate_to(&format!("{shop}/plain")).unwrap();
        wait_for(&tab, WIDGET_SHOWN);
        seen.insert("legend".into(), js(&tab, &format!("{SHADOW}.getElementById('fw-q').textContent")));
        seen.insert("focused".into(), js(&tab, &format!("{SHADOW}.activeElement.value")));
        seen.insert("mode".into(), js(&tab, &format!("{SHADOW}.mode")));
        seen.insert(
            "described_by".into(),
            js(&tab, &format!("{SHADOW}.querySelector('[role=radiogroup]').getAttribute('aria-describedby')")),
        );
        seen.insert(
            "smallest_target".into(),
            js(&tab, &format!("Math.min(...Array.from({SHADOW}.querySelectorAll('.s label, button')).map(e => Math.min(e.getBoundingClientRect().width, e.getBoundingClientRect().height)))")),
        );
        seen.insert("csp_violations".into(), js(&tab, "window.violations"));
        seen.insert("cookies".into(), js(&tab, "document.cookie"));
        seen.insert("storage".into(), js(&tab, "localStorage.length"));
        if let Some(axe) = &axe {
            seen.insert("axe_light".into(), axe_violations(&tab, axe));
        }
        if let Some(path) = &screenshot {
            for _ in 0..9 {
                tab.press_key("ArrowRight").unwrap();
            }
            js(&tab, &format!("{SHADOW}.getElementById('fw-comment').focus()"));
            tab.type_str("Hurtig levering og venlig kundeservice").unwrap();
            js(&tab, &format!("{SHADOW}.querySelector('.send').focus()"));
            let rect = js(&tab, &format!("(() => {{ const r = {WIDGET}.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; }})()"));
            let r: Vec<f64> = serde_json::from_value(rect).unwrap();
            let clip = Page::Viewport {
                x: r[0] - 16.0,
                y: r[1] - 16.0,
                width: r[2] + 32.0,
                height: r[3] + 32.0,
                scale: 1.0,
            };
            let png = tab
                .capture_screenshot(Page::CaptureScreenshotFormatOption::Png, None, Some(clip), true)
                .unwrap();
            std::fs::write(path, png).unwrap();
        }
        tab.call_method(Emulation::SetEmulatedMedia {
            media: None,
            features: Some(vec![
                Emulation::MediaFeature {
                    name: "prefers-color-scheme".into(),
                    value: "dark".into(),
                },
                Emulation::MediaFeature {
                    name: "prefers-reduced-motion".into(),
                    value: "reduce".into(),
                },
            ]),
        })
        .unwrap();
        tab.reload(true, None).unwrap();
        wait_for(&tab, WIDGET_SHOWN);
        seen.insert(
            "dark_background".into(),
            js(&tab, &format!("getComputedStyle({SHADOW}.querySelector('.w')).backgroundColor")),
        );
        seen.insert(
            "reduced_motion_animation".into(),
            js(&tab, &format!("getComputedStyle({SHADOW}.querySelector('.w')).animationName")),
        );
        if let Some(axe) = &axe {
            seen.insert("axe_dark".into(), axe_violations(&tab, axe));
        }

        // A page whose CSS attacks every element: rated, commented and sent by keyboard only.
        let tab = browser.new_tab().unwrap();
        tab.navigate_to(&format!("{shop}/hostile")).unwrap();
        wait_for(&tab, WIDGET_SHOWN);
        seen.insert(
            "hostile_layout".into(),
            js(&tab, &format!("(() => {{ const r = {WIDGET}.getBoundingClientRect(); \
                const send = {SHADOW}.querySelector('.send'); \
                return [r.width > 200, r.height > 150, r.right <= innerWidth, r.bottom <= innerHeight, \
                getComputedStyle(send).display !== 'none', send.getBoundingClientRect().height >= 24, \
                getComputedStyle({SHADOW}.querySelector('.w')).visibility]; }})()")),
        );
        for _ in 0..9 {
            tab.press_key("ArrowRight").unwrap();
        }
        seen.insert("chosen".into(), js(&tab, &format!("{SHADOW}.querySelector('input[name=score]:checked').value")));
        tab.press_key("Tab").unwrap();
        seen.insert("after_tab".into(), js(&tab, &format!("{SHADOW}.activeElement.id")));
        tab.type_str("Meget hjælpsom").unwrap();
        tab.press_key("Tab").unwrap();
        seen.insert("after_second_tab".into(), js(&tab, &format!("{SHADOW}.activeElement.className")));
        tab.press_key("Enter").unwrap();
        wait_for(&tab, &format!("{SHADOW}.querySelector('[role=status]').textContent.length > 0"));
        seen.insert("thanks".into(), js(&tab, &format!("{SHADOW}.querySelector('[role=status]').textContent")));
        seen.insert("live".into(), js(&tab, &format!("{SHADOW}.querySelector('[role=status]').getAttribute('aria-live')")));
        wait_for(&tab, "!!window.answered");
        seen.insert("answered_event".into(), js(&tab, "window.answered.score"));
        tab.press_key("Escape").unwrap();
        wait_for(&tab, &format!("{WIDGET} === null"));
        seen.insert("focus_returned_to".into(), js(&tab, "document.activeElement.id"));

        // A visitor typing in the page's search field keeps the caret there.
        let tab = browser.new_tab().unwrap();
        tab.navigate_to(&format!("{shop}/typing")).unwrap();
        wait_for(&tab, WIDGET_SHOWN);
        seen.insert("typing_keeps_focus".into(), js(&tab, "document.activeElement.id"));

        // A site that lets the widget remember visitors: shown once, then not again within
        // its rest period, not even through show().
        let tab = browser.new_tab().unwrap();
        tab.navigate_to(&format!("{shop}/remembering")).unwrap();
        wait_for(&tab, WIDGET_SHOWN);
        seen.insert(
            "remembered".into(),
            js(&tab, &format!("JSON.parse(localStorage.getItem('feedback-widget:{}'))", remembering_key)),
        );
        tab.reload(true, None).unwrap();
        tab.wait_until_navigated().unwrap();
        std::thread::sleep(Duration::from_millis(1000));
        seen.insert("shown_again".into(), js(&tab, &format!("{WIDGET} !== null")));
        seen.insert("show_again".into(), js(&tab, "FeedbackWidget.show()"));

        // An origin the site does not allow: no widget, and a script there cannot post.
        let tab = browser.new_tab().unwrap();
        tab.navigate_to(&format!("{elsewhere}/plain")).unwrap();
        tab.wait_until_navigated().unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        seen.insert("foreign_widget".into(), js(&tab, &format!("{WIDGET} === null")));
        seen.insert(
            "foreign_post".into(),
            js(&tab, &format!("fetch('{gateway}/w/{site_key}/feedback', {{method: 'POST', \
                headers: {{'Content-Type': 'application/json'}}, \
                body: JSON.stringify({{impression: 'x', score: 9}})}}).then(r => 'answered ' + r.status, () => 'blocked')")),
        );
        Value::Object(seen)
    })
    .await
    .unwrap();

    let s = |k: &str| seen[k].clone();
    assert_eq!(
        s("legend"),
        "Hvor sandsynligt er det, at du vil anbefale Acme til en ven?"
    );
    assert_eq!(s("focused"), "0", "focus moves to the scale: {seen:?}");
    assert_eq!(s("mode"), "open");
    assert_eq!(s("described_by"), "fw-lo fw-hi");
    assert!(s("smallest_target").as_f64().unwrap() >= 24.0, "{seen:?}");
    assert_eq!(
        s("csp_violations"),
        json!([]),
        "the widget needs nothing a strict policy forbids"
    );
    assert_eq!(s("cookies"), "");
    assert_eq!(s("storage"), 0, "nothing stored without remember_visitor");
    if checks_accessibility {
        assert_eq!(s("axe_light"), json!([]), "axe-core, light scheme");
        assert_eq!(s("axe_dark"), json!([]), "axe-core, dark scheme");
    }
    assert_eq!(s("dark_background"), "rgb(30, 30, 30)");
    assert_eq!(s("reduced_motion_animation"), "none");
    assert_eq!(
        s("hostile_layout"),
        json!([true, true, true, true, true, true, "visible"]),
        "the hostile page's CSS does not reach the widget"
    );
    assert_eq!(s("chosen"), "9", "arrow keys move within the scale");
    assert_eq!(
        s("after_tab"),
        "fw-comment",
        "Tab leaves the scale for the comment"
    );
    assert_eq!(
        s("after_second_tab"),
        "send",
        "the honeypot is not in the tab order"
    );
    assert_eq!(s("thanks"), "Tak for dit svar!");
    assert_eq!(s("live"), "polite");
    assert_eq!(s("answered_event"), 9);
    assert_eq!(s("focus_returned_to"), "offer", "focus returns to the page");
    assert_eq!(s("typing_keeps_focus"), "search", "the caret is not taken");
    let remembered = s("remembered");
    assert_eq!(remembered["restDays"], 30, "{remembered}");
    assert!(
        remembered["visitor"]
            .as_str()
            .is_some_and(|v| v.len() >= 16),
        "{remembered}"
    );
    assert_eq!(s("shown_again"), false, "within the rest period");
    assert_eq!(s("show_again"), false);
    assert_eq!(s("foreign_widget"), true, "{seen:?}");
    assert_eq!(s("foreign_post"), "blocked");

    let (_, list) = server.get("/v1/feedback?channel=widget", &key).await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["score"], 9);
    assert_eq!(items[0]["comment"], "Meget hjælpsom");
    assert_eq!(items[0]["language"], "da");
    assert_eq!(items[0]["metadata"]["page"], "/hostile");
    server.stop().await;
}
