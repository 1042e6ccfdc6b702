//! A stand-in for Twilio's Messages API on loopback: same path, basic auth, form fields, status
//! codes and error bodies as the real one. It records every message it accepts and can be told
//! to refuse the next ones (429, 500, or a Twilio error code).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};

pub const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const AUTH_TOKEN: &str = "test-auth-token-5f2c";
pub const FROM: &str = "+4578787878";

/// One message as Twilio received it.
#[derive(Debug, Clone, PartialEq)]
pub struct SentSms {
    pub sid: String,
    pub to: String,
    pub from: Option<String>,
    pub messaging_service_sid: Option<String>,
    pub body: String,
    pub status_callback: Option<String>,
}

/// What the fake answers the next send with, instead of accepting it.
#[derive(Debug, Clone, Copy)]
pub enum Refusal {
    /// 429 with Twilio's 20429 body and `Retry-After: 1`.
    TooManyRequests,
    /// 500 with Twilio's generic error body.
    ServerError,
    /// 400 with this Twilio error code (21610 unsubscribed, 21211 invalid To, …).
    Code(u32),
}

#[derive(Default)]
struct FakeState {
    sent: Mutex<Vec<SentSms>>,
    refusals: Mutex<VecDeque<Refusal>>,
    requests: Mutex<usize>,
}

pub struct FakeTwilio {
    pub base: String,
    state: Arc<FakeState>,
}

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        Json(json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status.as_u16(),
        })),
    )
        .into_response()
}

/// Twilio's messages, which name the recipient's number as the real ones do.
fn message_for(code: u32, to: &str) -> String {
    match code {
        21610 => format!("Attempt to send to unsubscribed recipient {to}"),
        21211 => format!("The 'To' number {to} is not a valid phone number."),
        21614 => format!("'To' number {to} is not a valid mobile number"),
        _ => "Bad request".to_owned(),
    }
}

async fn create_message(
    State(state): State<Arc<FakeState>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    *state.requests.lock().unwrap() += 1;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"))
    );
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(&expected)
    {
        return error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let account = account.trim_end_matches(".json");
    if account != ACCOUNT_SID {
        return error(
            StatusCode::NOT_FOUND,
            20404,
            "The requested resource was not found",
        );
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return error(StatusCode::BAD_REQUEST, 20001, "Bad request");
    }
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let Some(to) = field("To") else {
        return error(
            StatusCode::BAD_REQUEST,
            21604,
            "A 'To' phone number is required.",
        );
    };
    let (from, service) = (field("From"), field("MessagingServiceSid"));
    if from.is_none() && service.is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            21603,
            "A 'From' phone number is required.",
        );
    }
    let Some(text) = field("Body").filter(|b| !b.is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            21619,
            "A Message Body, Media URL or Content SID is required",
        );
    };
    if let Some(refusal) = state.refusals.lock().unwrap().pop_front() {
        return match refusal {
            Refusal::TooManyRequests => {
                let mut r = error(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests");
                r.headers_mut()
                    .insert(header::RETRY_AFTER, "1".parse().unwrap());
                r
            }
            Refusal::ServerError => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                20500,
                "An internal server error has occurred",
            ),
            Refusal::Code(code) => error(StatusCode::BAD_REQUEST, code, &message_for(code, &to)),
        };
    }
    let mut sent = state.sent.lock().unwrap();
    let sid = format!("SM{:032x}", sent.len() as u128 + 1 + (rand_suffix() << 64));
    sent.push(SentSms {
        sid: sid.clone(),
        to: to.clone(),
        from: from.clone(),
        messaging_service_sid: service.clone(),
        body: text.clone(),
        status_callback: field("StatusCallback"),
    });
    (
        StatusCode::CREATED,
        Json(json!({
            "account_sid": ACCOUNT_SID,
            "api_version": "2010-04-01",
            "body": text,
            "direction": "outbound-api",
            "error_code": null,
            "error_message": null,
            "from": from,
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": "1",
            "sid": sid,
            "status": "queued",
            "to": to,
            "uri": format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json"),
        })),
    )
        .into_response()
}

/// Distinct SIDs across fakes in one test run.
fn rand_suffix() -> u128 {
    u128::from(uuid::Uuid::new_v4().as_u64_pair().0 >> 1)
}

impl FakeTwilio {
    pub async fn start() -> FakeTwilio {
        let state = Arc::new(FakeState::default());
        let app = Router::new()
            .route(
                "/2010-04-01/Accounts/{account}/Messages.json",
                post(create_message),
            )
            .with_state(state.clone());
        let base = super::serve_on_loopback(app).await;
        FakeTwilio { base, state }
    }

    pub fn sent(&self) -> Vec<SentSms> {
        self.state.sent.lock().unwrap().clone()
    }

    /// Requests received, accepted or not.
    pub fn requests(&self) -> usize {
        *self.state.requests.lock().unwrap()
    }

    pub fn refuse_next(&self, refusals: &[Refusal]) {
        self.state.refusals.lock().unwrap().extend(refusals);
    }

    /// The body of `PUT /v1/channels/twilio` for an account on this fake. The gateway finds
    /// the fake through the operator's `providers.twilio.api_base_url` (set it to `base`).
    pub fn config(&self, extra: Value) -> Value {
        let mut config = json!({
            "account_sid": ACCOUNT_SID,
            "auth_token": AUTH_TOKEN,
            "from": FROM,
            "messages_per_second": 100,
        });
        if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                c.insert(k.clone(), v.clone());
            }
        }
        config
    }
}

/// The parameters of an inbound SMS webhook, as Twilio sends them to a tenant's number.
pub fn inbound_sms(from: &str, body: &str, sid: &str) -> Vec<(String, String)> {
    [
        ("ToCountry", "DK"),
        ("ToState", ""),
        ("SmsMessageSid", sid),
        ("NumMedia", "0"),
        ("ToCity", ""),
        ("FromZip", ""),
        ("SmsSid", sid),
        ("FromState", ""),
        ("SmsStatus", "received"),
        ("FromCity", ""),
        ("Body", body),
        ("FromCountry", "DK"),
        ("To", FROM),
        ("ToZip", ""),
        ("NumSegments", "1"),
        ("MessageSid", sid),
        ("AccountSid", ACCOUNT_SID),
        ("From", from),
        ("ApiVersion", "2010-04-01"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Form-encodes webhook parameters as Twilio does.
pub fn form(params: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}
