//! Messaging providers' webhooks: `POST /hooks/{tenant}/{provider}/{kind}` for every provider
//! in `channels::messaging::PROVIDERS` and each kind of webhook it sends (Twilio: `sms`, a
//! customer's message; `status`, delivery reports of sent surveys).
//!
//! Checked in this order: the provider and kind (404), the tenant and its configuration of the
//! provider (404), the body's encoding (415, 400), the provider's signature (403), the payload
//! (422). Then ingest applies the event and the provider's answer goes back (Twilio: TwiML,
//! which may carry a reply to the customer).

use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{header, HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use channels::messaging::{self, BodyFormat, HookKind, Messaging, MessagingRequest, ReplySettings};
use channels::model::MessagingEvent;
use channels::vocabulary::ReplyOutcome;

use super::{count, no_hook_here, public_url, tenant, FormBody};
use crate::http::problem::ApiError;
use crate::http::AppState;
use crate::ingest::Received;
use crate::store::channel_configs;

pub fn router() -> Router<AppState> {
    Router::new().route("/hooks/{tenant}/{provider}/{kind}", post(receive))
}

fn provider_and_kind(
    name: &str,
    kind: &str,
) -> Result<(&'static Messaging, &'static HookKind), ApiError> {
    let provider = messaging::provider(name).ok_or_else(no_hook_here)?;
    let kind = provider.kind(kind).ok_or_else(no_hook_here)?;
    Ok((provider, kind))
}

async fn receive(
    State(state): State<AppState>,
    Path((slug, name, kind)): Path<(String, String, String)>,
    uri: Uri,
    headers: HeaderMap,
    request: Request,
) -> Result<Response, ApiError> {
    let (provider, hook) = provider_and_kind(&name, &kind)?;
    // The body is read once the address is known to lead somewhere. A new format fails this
    // match at compile time, on purpose: its decoding belongs here.
    let form = match hook.format {
        BodyFormat::Form => FormBody::from_request(request, &state).await?,
    };
    let kind = hook.name;
    let tenant = tenant(&state, &slug).await?;
    let creds = channel_configs::credentials(&state.db, tenant.id, provider.name)
        .await
        .map_err(|e| state.db_error(e))?
        .ok_or_else(no_hook_here)?;
    let url = public_url(&state, &uri);
    let request = MessagingRequest {
        url: &url,
        headers: &headers,
        form: &form.pairs,
        now: chrono::Utc::now(),
    };
    if let Err(rejection) = (provider.verify)(&request, &creds) {
        count(provider.name, kind, "rejected");
        tracing::warn!(tenant = %tenant.slug, provider = provider.name, reason = %rejection, "webhook not verified");
        return Err(ApiError::Forbidden(rejection.to_string()));
    }
    let event = (provider.parse)(kind, &request).map_err(|e| {
        count(provider.name, kind, "rejected");
        ApiError::validation(e.field, e.message)
    })?;
    let raw_kind = format!("{}.{kind}", provider.name);
    let received = Received {
        kind: &raw_kind,
        content_type: Some(&form.content_type),
        body: &form.raw,
    };
    let reply = match event {
        Some(MessagingEvent::Message(mut message)) => {
            message.sanitize();
            let stored = ReplySettings::of(&creds);
            let settings = crate::ingest::replies::ReplySettings {
                comment_window: chrono::Duration::minutes(i64::from(
                    stored
                        .comment_window_minutes
                        .unwrap_or(state.config.replies.comment_window_minutes),
                )),
                thank_you: stored.thank_you,
                help_text: stored.help_text,
            };
            let replied = state
                .ingest
                .receive_message(&tenant, &message, received, settings)
                .await
                .map_err(|e| state.ingest_error(e))?;
            let duplicate = replied.outcome == ReplyOutcome::Duplicate;
            count(
                provider.name,
                kind,
                if duplicate { "duplicate" } else { "accepted" },
            );
            if message.keyword.is_none() {
                metrics::counter!("sms_replies_total", "outcome" => replied.outcome.as_str())
                    .increment(1);
            }
            replied.answer
        }
        Some(MessagingEvent::Delivery(mut report)) => {
            report.sanitize();
            state
                .ingest
                .delivery_status(&tenant, &report, received)
                .await
                .map_err(|e| state.ingest_error(e))?;
            count(provider.name, kind, "accepted");
            None
        }
        None => {
            count(provider.name, kind, "accepted");
            None
        }
    };
    let answer = (provider.answer)(reply.as_deref());
    Ok(([(header::CONTENT_TYPE, answer.content_type)], answer.body).into_response())
}
