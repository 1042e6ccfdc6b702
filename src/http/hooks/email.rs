//! Inbound e-mail: `POST /hooks/{tenant}/email/{provider}` for replies to survey e-mails, from
//! SendGrid's Inbound Parse (`sendgrid`), Mailgun's routes (`mailgun`), Postmark's inbound
//! webhook (`postmark`) or any MTA that can post a raw message to a URL (`mime`).
//!
//! The same addresses take the providers' bounce and complaint webhooks (Mailgun's JSON event
//! webhook, Postmark's `Bounce` and `SpamComplaint` records, SendGrid's Signed Event Webhook,
//! told from Inbound Parse by its JSON body).
//!
//! Checked in this order: the provider (404), the tenant and its inbound settings (404), the
//! proof: Mailgun's signature over timestamp and token, within five minutes and each token
//! used once (403; 406 for a reused token, which Mailgun does not retry), SendGrid's ECDSA
//! signature over timestamp and body, within five minutes (403), or the basic auth the tenant
//! set for the other hooks (401); then the body (415, 400, 422). Ingest reads the reply.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use channels::chat::Credentials;
use channels::email::events;
use channels::email::inbound::{self, InboundMail};
use channels::email::{EmailSettings, INBOUND_PASSWORD, MAILGUN_SIGNING_KEY};
use moka::sync::Cache;
use serde_json::json;

use super::{count, no_hook_here, tenant};
use crate::http::input::RawBody;
use crate::http::problem::ApiError;
use crate::http::AppState;
use crate::ingest::mail::MailReceived;
use crate::ingest::Received;
use crate::store::channel_configs;

/// How old a Mailgun or SendGrid signature may be.
const SIGNATURE_TOLERANCE_SECONDS: i64 = 300;

const PROVIDERS: [&str; 4] = ["sendgrid", "mailgun", "postmark", "mime"];

pub fn router(body_limit: usize) -> Router<AppState> {
    // Mailgun tokens already used, per tenant: kept for longer than a signature is valid.
    let seen: Arc<Cache<String, ()>> = Arc::new(
        Cache::builder()
            .max_capacity(1_000_000)
            .time_to_live(Duration::from_secs(2 * SIGNATURE_TOLERANCE_SECONDS as u64))
            .build(),
    );
    Router::new().route(
        "/hooks/{tenant}/email/{provider}",
        post(move |state, path, headers, body| receive(state, path, headers, body, seen.clone()))
            .layer(DefaultBodyLimit::max(body_limit)),
    )
}

fn kind_of(provider: &str) -> Option<&'static str> {
    PROVIDERS.iter().copied().find(|p| *p == provider)
}

async fn receive(
    State(state): State<AppState>,
    Path((slug, provider)): Path<(String, String)>,
    headers: HeaderMap,
    RawBody(body): RawBody,
    seen: Arc<Cache<String, ()>>,
) -> Result<Response, ApiError> {
    let provider = kind_of(&provider).ok_or_else(no_hook_here)?;
    let tenant = tenant(&state, &slug).await?;
    let creds = channel_configs::credentials(&state.db, tenant.id, channels::email::NAME)
        .await
        .map_err(|e| state.db_error(e))?
        .ok_or_else(no_hook_here)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let rejected = |e: ApiError| {
        count("email", provider, "rejected");
        e
    };
    let mut mailgun_token = None;
    let is_json = content_type
        .to_ascii_lowercase()
        .starts_with("application/json");
    let tenant_key = tenant.id.to_string();
    let mut verified_mailgun = |signed: Option<(&str, &str, &str)>| {
        let key = creds.secret(MAILGUN_SIGNING_KEY).ok_or_else(no_hook_here)?;
        let token = verify_mailgun(key.expose(), signed, &tenant_key, &seen).map_err(|e| {
            tracing::warn!(tenant = %tenant.slug, reason = %e.1, "e-mail hook not verified");
            e.0
        })?;
        mailgun_token = Some(token);
        Ok::<(), ApiError>(())
    };
    let delivery = match provider {
        // Mailgun's event webhook (bounces, complaints) is JSON with the signature inside.
        "mailgun" if is_json => {
            let value = json_body(&body).map_err(rejected)?;
            verified_mailgun(events::mailgun_signature(&value)).map_err(rejected)?;
            Delivery::Events(events::from_mailgun(&value))
        }
        "mailgun" => {
            let fields = text_fields(&content_type, &body).await.map_err(rejected)?;
            let field = |name: &str| {
                fields
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
            };
            let signed = field("timestamp")
                .zip(field("token"))
                .zip(field("signature"))
                .map(|((timestamp, token), signature)| (timestamp, token, signature));
            verified_mailgun(signed).map_err(rejected)?;
            Delivery::Mail(inbound::from_mailgun(&fields).map_err(|e| rejected(unreadable(e)))?)
        }
        // SendGrid's Event Webhook (bounces, spam reports) is JSON, signed in two headers;
        // its Inbound Parse is multipart.
        "sendgrid" if is_json => {
            verify_sendgrid(&creds, &headers, &body).map_err(|(e, reason)| {
                tracing::warn!(tenant = %tenant.slug, reason, "e-mail hook not verified");
                rejected(e)
            })?;
            Delivery::Events(events::from_sendgrid(&json_body(&body).map_err(rejected)?))
        }
        other => {
            check_basic_auth(&creds, &headers).map_err(rejected)?;
            match other {
                "postmark" => {
                    let value = json_body(&body).map_err(rejected)?;
                    if events::is_postmark_event(&value) {
                        Delivery::Events(events::from_postmark(&value))
                    } else {
                        Delivery::Mail(
                            inbound::from_postmark(&value).map_err(|e| rejected(unreadable(e)))?,
                        )
                    }
                }
                "sendgrid" => {
                    let fields = multipart_fields(&content_type, &body)
                        .await
                        .map_err(rejected)?;
                    Delivery::Mail(
                        inbound::from_sendgrid(&fields).map_err(|e| rejected(unreadable(e)))?,
                    )
                }
                _ => {
                    Delivery::Mail(inbound::from_mime(&body).map_err(|e| rejected(unreadable(e)))?)
                }
            }
        }
    };
    let raw_kind = format!("email.{provider}");
    let received = Received {
        kind: &raw_kind,
        content_type: Some(&content_type),
        body: &body,
    };
    let outcome = match delivery {
        Delivery::Events(events) => {
            state
                .ingest
                .address_events(&tenant, &events, received)
                .await
                .map_err(|e| give_back(&seen, &mailgun_token, state.ingest_error(e)))?;
            "events"
        }
        Delivery::Mail(mail) => {
            let settings = crate::ingest::replies::ReplySettings {
                comment_window: chrono::Duration::minutes(i64::from(
                    state.config.replies.comment_window_minutes,
                )),
                thank_you: Default::default(),
                help_text: Default::default(),
            };
            let received = state
                .ingest
                .receive_mail(&tenant, &mail, received, settings)
                .await
                .map_err(|e| give_back(&seen, &mailgun_token, state.ingest_error(e)))?;
            match received {
                MailReceived::Replied(r) => r.outcome.as_str(),
                MailReceived::Automatic => "automatic",
                MailReceived::Unsubscribed => "unsubscribed",
            }
        }
    };
    count(
        "email",
        provider,
        if outcome == "duplicate" {
            "duplicate"
        } else {
            "accepted"
        },
    );
    metrics::counter!("email_hooks_total", "outcome" => outcome).increment(1);
    Ok((StatusCode::OK, Json(json!({"outcome": outcome}))).into_response())
}

/// What an inbound hook carries: a mail, or a provider's news about addresses.
enum Delivery {
    Mail(InboundMail),
    Events(Vec<events::AddressEvent>),
}

/// A delivery that could not be stored (the database, say) does not spend its Mailgun token:
/// Mailgun retries it with the same one.
fn give_back(seen: &Cache<String, ()>, token: &Option<String>, e: ApiError) -> ApiError {
    if let Some(token) = token {
        seen.invalidate(token);
    }
    e
}

fn unreadable(e: channels::model::InvalidValue) -> ApiError {
    ApiError::validation(e.field, e.message)
}

/// The basic auth the tenant set for its SendGrid, Postmark and MIME hooks.
fn check_basic_auth(creds: &Credentials, headers: &HeaderMap) -> Result<(), ApiError> {
    let username = EmailSettings::of(creds)
        .ok()
        .and_then(|s| s.inbound_username)
        .ok_or_else(no_hook_here)?;
    let password = creds.secret(INBOUND_PASSWORD).ok_or_else(no_hook_here)?;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if channels::chat::basic_auth_matches(given, &username, password.expose()) {
        Ok(())
    } else {
        Err(ApiError::BasicAuthRequired(
            "this hook needs the basic auth set in the tenant's e-mail settings".into(),
        ))
    }
}

/// Mailgun's proof: the signature over timestamp and token, a recent timestamp, and a token
/// not used before (per tenant). The token's key in `seen`, given back if the delivery is not
/// applied.
fn verify_mailgun(
    key: &str,
    signed: Option<(&str, &str, &str)>,
    tenant: &str,
    seen: &Cache<String, ()>,
) -> Result<String, (ApiError, &'static str)> {
    let forbidden = |reason: &'static str| (ApiError::Forbidden(reason.into()), reason);
    let Some((timestamp, token, signature)) = signed else {
        return Err(forbidden("the delivery carries no Mailgun signature"));
    };
    if !inbound::mailgun_signature_valid(key, timestamp, token, signature) {
        return Err(forbidden("the Mailgun signature does not match"));
    }
    signed_recently(
        timestamp,
        "the Mailgun timestamp is not a number",
        "the Mailgun signature is too old",
    )?;
    // Taken at once, so that two copies arriving together cannot both pass; given back when
    // the delivery is not applied, so that Mailgun's retry of it is accepted.
    let key = format!("{tenant}:{token}");
    if !seen.entry(key.clone()).or_insert(()).is_fresh() {
        return Err((
            ApiError::NotAcceptable("this Mailgun token was used before".into()),
            "token reused",
        ));
    }
    Ok(key)
}

/// SendGrid's proof: an ECDSA signature, by the key the tenant copied from SendGrid, over the
/// timestamp and the body, made within the last five minutes. A replay inside that window
/// changes nothing: marking an address invalid or opting a contact out twice is the same as
/// once.
fn verify_sendgrid(
    creds: &Credentials,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), (ApiError, &'static str)> {
    let key = EmailSettings::of(creds)
        .ok()
        .and_then(|s| s.sendgrid_verification_key)
        .and_then(|key| events::SendgridKey::parse(&key).ok())
        .ok_or_else(|| (no_hook_here(), "no SendGrid verification key"))?;
    let forbidden = |reason: &'static str| (ApiError::Forbidden(reason.into()), reason);
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(signature), Some(timestamp)) = (
        header(events::SENDGRID_SIGNATURE_HEADER),
        header(events::SENDGRID_TIMESTAMP_HEADER),
    ) else {
        return Err(forbidden("the delivery carries no SendGrid signature"));
    };
    if !key.verifies(timestamp, body, signature) {
        return Err(forbidden("the SendGrid signature does not match"));
    }
    signed_recently(
        timestamp,
        "the SendGrid timestamp is not a number",
        "the SendGrid signature is too old",
    )
}

/// A signature's Unix `timestamp` is within [`SIGNATURE_TOLERANCE_SECONDS`] of now, either way.
fn signed_recently(
    timestamp: &str,
    not_a_number: &'static str,
    too_old: &'static str,
) -> Result<(), (ApiError, &'static str)> {
    let forbidden = |reason: &'static str| (ApiError::Forbidden(reason.into()), reason);
    let at: i64 = timestamp.parse().map_err(|_| forbidden(not_a_number))?;
    if (chrono::Utc::now().timestamp() - at).abs() > SIGNATURE_TOLERANCE_SECONDS {
        return Err(forbidden(too_old));
    }
    Ok(())
}

/// A JSON body.
fn json_body(body: &Bytes) -> Result<serde_json::Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest {
        kind: "malformed-json",
        detail: format!("the body is not JSON: {e}"),
    })
}

/// A form's fields as text, from either encoding Mailgun uses.
async fn text_fields(content_type: &str, body: &Bytes) -> Result<Vec<(String, String)>, ApiError> {
    if content_type
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return super::parse_form(body);
    }
    Ok(multipart_fields(content_type, body)
        .await?
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect())
}

/// A `multipart/form-data` body's fields, as bytes (their charsets are the provider's to say).
async fn multipart_fields(
    content_type: &str,
    body: &Bytes,
) -> Result<Vec<(String, Vec<u8>)>, ApiError> {
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        ApiError::UnsupportedMediaType("expected Content-Type: multipart/form-data".into())
    })?;
    let malformed = |e: multer::Error| ApiError::BadRequest {
        kind: "malformed-form",
        detail: format!("the multipart body cannot be read: {e}"),
    };
    let stream = futures::stream::once({
        let body = body.clone();
        async move { Ok::<Bytes, std::convert::Infallible>(body) }
    });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut fields = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or_default().to_owned();
        let value = field.bytes().await.map_err(malformed)?;
        fields.push((name, value.to_vec()));
    }
    Ok(fields)
}
