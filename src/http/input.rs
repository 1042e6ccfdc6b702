//! Request pieces several endpoints share: the body's bytes within the limit, a contact given
//! by its addresses or id, bounded strings.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use channels::model::{ContactRef, E164Phone, Email, Identity, InvalidValue};

use super::problem::ApiError;
use super::AppState;
use serde::Deserialize;
use uuid::Uuid;

/// The body's bytes exactly as sent (signatures and idempotency compare them), within the body
/// limit: an oversize body is a 413 problem.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|rejection| {
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge("the request body is larger than allowed".into())
                } else {
                    ApiError::BadRequest {
                        kind: "unreadable-body",
                        detail: rejection.body_text(),
                    }
                }
            })
    }
}

/// Longest reference (ticket, agent, team, external id) accepted.
pub const MAX_REF: usize = 200;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ContactBody {
    pub id: Option<Uuid>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub external_id: Option<String>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
}

pub fn bounded(
    field: &'static str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, InvalidValue> {
    match value {
        Some(v) if v.chars().count() > max => Err(InvalidValue::new(
            field,
            format!("longer than {max} characters"),
        )),
        Some(v) if v.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

pub fn contact_ref(body: ContactBody, region: &str) -> Result<ContactRef, InvalidValue> {
    let mut identities = Vec::new();
    if let Some(phone) = body.phone {
        identities.push(Identity::Phone(
            E164Phone::parse(&phone, Some(region))
                .map_err(|e| InvalidValue::new("contact.phone", e.message))?,
        ));
    }
    if let Some(email) = body.email {
        identities.push(Identity::Email(
            Email::parse(&email).map_err(|e| InvalidValue::new("contact.email", e.message))?,
        ));
    }
    if let Some(external) = bounded("contact.external_id", body.external_id, MAX_REF)? {
        identities.push(Identity::External(external));
    }
    if let Some(tz) = &body.time_zone {
        if tz.parse::<chrono_tz::Tz>().is_err() {
            return Err(InvalidValue::new(
                "contact.time_zone",
                format!("`{tz}` is not an IANA time zone"),
            ));
        }
    }
    Ok(ContactRef {
        id: body.id,
        identities,
        locale: bounded("contact.locale", body.locale, 35)?,
        time_zone: body.time_zone,
    })
}

/// A list's page size: `default` when not given, else 1 to 500.
pub fn page_limit(given: Option<u64>, default: u64) -> Result<u64, ApiError> {
    let limit = given.unwrap_or(default);
    if (1..=500).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::BadRequest {
            kind: "invalid-query",
            detail: "limit: must be 1 to 500".into(),
        })
    }
}

/// Cursors are the last id of a page (UUIDv7, so id order is creation order), opaque to clients.
pub fn encode_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

pub fn decode_cursor(cursor: &str) -> Result<Uuid, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| Uuid::from_slice(&b).ok())
        .ok_or(ApiError::BadRequest {
            kind: "invalid-query",
            detail: "cursor: not a cursor this API returned".into(),
        })
}

/// A tenant's webhook URL (an endpoint for its events, an owner's chat webhook), if the gateway
/// may call it: `https` to public addresses; plain `http` and private addresses only where the
/// operator allows private networks; no credentials in it (they would be shown back or logged).
pub async fn check_webhook_url(state: &AppState, field: &str, url: &str) -> Result<(), ApiError> {
    let invalid = |message: &str| ApiError::validation(field, message);
    let parsed = state
        .http
        .check(url)
        .map_err(|_| invalid("an https URL on a public address"))?;
    // Shown back by GET: no credentials in it (the signature proves the sender).
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid(
            "a URL without user name or password: the URL itself is the secret, or the request is signed",
        ));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| invalid("a URL with a host"))?
        .trim_matches(['[', ']']);
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addresses: Vec<std::net::IpAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| invalid("the host name does not resolve"))?
        .map(|a| a.ip())
        .collect();
    let private = addresses
        .iter()
        .any(|ip| !channels::outbound::is_public(*ip));
    if private && !state.http.allows_private_networks() {
        return Err(invalid(
            "the address is on a private network, which this gateway does not call",
        ));
    }
    if parsed.scheme() != "https" && !private {
        return Err(invalid("https is required"));
    }
    Ok(())
}
