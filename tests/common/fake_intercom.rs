//! A stand-in for Intercom's Contacts API on loopback: `GET /contacts/{id}` with a bearer
//! access token, Intercom's `error.list` bodies for 401 and 404, and 429 / 500 when told to;
//! contacts the test adds, in the shape of the OpenAPI description's contact example.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

pub const ACCESS_TOKEN: &str = "dG9rOmZha2UtaW50ZXJjb20tdG9rZW4=";

#[derive(Default)]
struct FakeState {
    contacts: Mutex<HashMap<String, Value>>,
    failures: Mutex<VecDeque<StatusCode>>,
    requests: Mutex<usize>,
}

pub struct FakeIntercom {
    pub base: String,
    state: Arc<FakeState>,
}

fn error_list(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(
            json!({"type": "error.list", "request_id": "b1b88e2d-938c-4a26-b65d-26ff65a0af36",
                    "errors": [{"code": code, "message": message}]}),
        ),
    )
        .into_response()
}

async fn show_contact(
    State(state): State<Arc<FakeState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    *state.requests.lock().unwrap() += 1;
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer != Some(ACCESS_TOKEN) {
        return error_list(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Access Token Invalid",
        );
    }
    if let Some(status) = state.failures.lock().unwrap().pop_front() {
        let mut response = error_list(status, "service_unavailable", "Try again later");
        if status == StatusCode::TOO_MANY_REQUESTS {
            response = error_list(status, "rate_limit_exceeded", "Exceeded rate limit");
        }
        return response;
    }
    match state.contacts.lock().unwrap().get(&id) {
        Some(contact) => Json(contact.clone()).into_response(),
        None => error_list(StatusCode::NOT_FOUND, "not_found", "User Not Found"),
    }
}

impl FakeIntercom {
    pub async fn start() -> FakeIntercom {
        let state = Arc::new(FakeState::default());
        let app = Router::new()
            .route("/contacts/{id}", get(show_contact))
            .with_state(state.clone());
        let base = super::serve_on_loopback(app).await;
        FakeIntercom { base, state }
    }

    /// A contact as `GET /contacts/{id}` shows one (the fields the gateway reads, and the
    /// others it must ignore).
    pub fn add_contact(&self, id: &str, role: &str, name: &str, email: &str, phone: Option<&str>) {
        self.state.contacts.lock().unwrap().insert(
            id.to_owned(),
            json!({
                "type": "contact", "id": id, "workspace_id": "lkqcyt9t", "external_id": null,
                "role": role, "email": email, "phone": phone, "name": name, "avatar": null,
                "owner_id": null, "has_hard_bounced": false, "marked_email_as_spam": false,
                "unsubscribed_from_emails": false, "created_at": 1764000000,
                "updated_at": 1764000000, "signed_up_at": 1764000000, "last_seen_at": null,
                "language_override": null, "browser_language": "da",
                "location": {"type": "location", "country": "Denmark", "region": null,
                             "city": "Aarhus", "country_code": "DNK", "continent_code": "EU"},
                "custom_attributes": {},
                "tags": {"type": "list", "data": [], "url": format!("/contacts/{id}/tags"),
                         "total_count": 0, "has_more": false}
            }),
        );
    }

    pub fn fail_next(&self, n: usize, status: StatusCode) {
        let mut failures = self.state.failures.lock().unwrap();
        failures.extend(std::iter::repeat_n(status, n));
    }

    pub fn requests(&self) -> usize {
        *self.state.requests.lock().unwrap()
    }
}
