//! A stand-in for Zendesk's Users API on loopback: `GET /api/v2/users/{id}.json` with API-token
//! basic auth (`{email}/token:{token}`), Zendesk's status codes and error bodies, and users
//! the test adds. It can be told to fail the next requests (500 or 429).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};

pub const API_USER: &str = "admin@acme.example";
pub const API_TOKEN: &str = "zd-api-token-6w1Qx";

#[derive(Default)]
struct FakeState {
    users: Mutex<HashMap<String, Value>>,
    failures: Mutex<VecDeque<StatusCode>>,
    requests: Mutex<usize>,
}

pub struct FakeZendesk {
    pub base: String,
    state: Arc<FakeState>,
}

fn authorized(headers: &HeaderMap) -> bool {
    let expected =
        base64::engine::general_purpose::STANDARD.encode(format!("{API_USER}/token:{API_TOKEN}"));
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .is_some_and(|given| given == expected)
}

async fn show_user(
    State(state): State<Arc<FakeState>>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    *state.requests.lock().unwrap() += 1;
    if !authorized(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "Couldn't authenticate you"})),
        )
            .into_response();
    }
    if let Some(status) = state.failures.lock().unwrap().pop_front() {
        let mut response = (
            status,
            Json(json!({"error": "ServiceUnavailable", "description": "try again later"})),
        )
            .into_response();
        if status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, "1".parse().unwrap());
        }
        return response;
    }
    let Some(id) = file.strip_suffix(".json") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match state.users.lock().unwrap().get(id) {
        Some(user) => Json(json!({ "user": user })).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "RecordNotFound", "description": "Not found"})),
        )
            .into_response(),
    }
}

impl FakeZendesk {
    pub async fn start() -> FakeZendesk {
        let state = Arc::new(FakeState::default());
        let app = Router::new()
            .route("/api/v2/users/{file}", get(show_user))
            .with_state(state.clone());
        let base = super::serve_on_loopback(app).await;
        FakeZendesk { base, state }
    }

    /// An end user as the Users API shows one.
    pub fn add_user(&self, id: &str, name: &str, email: &str, phone: Option<&str>) {
        self.state.users.lock().unwrap().insert(
            id.to_owned(),
            json!({
                "id": id.parse::<u64>().unwrap(),
                "name": name,
                "email": email,
                "phone": phone,
                "role": "end-user",
                "locale": "da",
                "iana_time_zone": "Europe/Copenhagen",
                "external_id": null,
            }),
        );
    }

    /// The next `n` authorized requests are answered with `status`.
    pub fn fail_next(&self, n: usize, status: StatusCode) {
        let mut failures = self.state.failures.lock().unwrap();
        failures.extend(std::iter::repeat_n(status, n));
    }

    pub fn requests(&self) -> usize {
        *self.state.requests.lock().unwrap()
    }

    /// The settings of `PUT /v1/channels/zendesk` for an account on this fake. The gateway
    /// finds the fake through the operator's `providers.zendesk.api_base_url` (set it to `base`).
    pub fn config(&self, signing_secret: &str) -> Value {
        json!({
            "signing_secret": signing_secret,
            "subdomain": "acme",
            "api_user": API_USER,
            "api_token": API_TOKEN,
        })
    }
}
