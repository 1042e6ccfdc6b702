//! Twilio's webhooks: `POST /hooks/{tenant}/twilio/sms` (a customer's message) and
//! `POST /hooks/{tenant}/twilio/status` (delivery reports of sent surveys). Both are signed
//! with `X-Twilio-Signature` over the public URL and every parameter; the answer is TwiML.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use channels::model::InboundEvent;
use channels::sanitize::clean_text;
use channels::sms::twilio::{self, SIGNATURE_HEADER};

use super::{count, no_hook_here, public_url, tenant, FormBody};
use crate::http::problem::ApiError;
use crate::http::AppState;
use crate::ingest::replies::ReplySettings;
use crate::ingest::Received;
use crate::store::channel_configs;
use crate::store::tenants::Tenant;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/hooks/{tenant}/twilio/sms", post(sms))
        .route("/hooks/{tenant}/twilio/status", post(status))
}

fn twiml(message: Option<&str>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        twilio::twiml(message),
    )
        .into_response()
}

/// The tenant and its Twilio account, once the request proved it comes from that account.
async fn verified(
    state: &AppState,
    slug: &str,
    kind: &'static str,
    uri: &Uri,
    headers: &HeaderMap,
    form: &FormBody,
) -> Result<(Tenant, twilio::Config), ApiError> {
    let tenant = tenant(state, slug).await?;
    let config = channel_configs::twilio(&state.db, tenant.id)
        .await
        .map_err(|e| state.db_error(e))?
        .ok_or_else(no_hook_here)?;
    let Some(signature) = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()) else {
        count("twilio", kind, "rejected");
        return Err(ApiError::Forbidden("X-Twilio-Signature is missing".into()));
    };
    let url = public_url(state, uri);
    if !twilio::verify_signature(&config.auth_token, &url, &form.pairs, signature) {
        count("twilio", kind, "rejected");
        tracing::warn!(tenant = %tenant.slug, "Twilio webhook with a wrong signature");
        return Err(ApiError::Forbidden(
            "X-Twilio-Signature does not match the request".into(),
        ));
    }
    Ok((tenant, config))
}

async fn sms(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    form: FormBody,
) -> Result<Response, ApiError> {
    let (tenant, config) = verified(&state, &slug, "sms", &uri, &headers, &form).await?;
    let mut event = twilio::parse_inbound(&form.pairs).map_err(|e| {
        count("twilio", "sms", "rejected");
        ApiError::validation(e.field, e.message)
    })?;
    event.sanitize(chrono::Utc::now());
    let message_sid = form
        .pairs
        .iter()
        .find(|(k, _)| k == "MessageSid")
        .map(|(_, v)| clean_text(v).into_owned())
        .unwrap_or_default();
    let settings = ReplySettings {
        comment_window: chrono::Duration::minutes(i64::from(
            config
                .settings
                .comment_window_minutes
                .unwrap_or(state.config.replies.comment_window_minutes),
        )),
        thank_you: &config.settings.thank_you,
        help_text: &config.settings.help_text,
    };
    let received = Received {
        kind: "twilio.sms",
        content_type: Some(&form.content_type),
        body: &form.raw,
    };
    let outcome = state
        .ingest
        .receive_message(&tenant, &event, &message_sid, received, &settings)
        .await
        .map_err(|e| state.ingest_error(e))?;
    count(
        "twilio",
        "sms",
        if outcome.outcome == "duplicate" {
            "duplicate"
        } else {
            "accepted"
        },
    );
    if let InboundEvent::Reply(_) = event {
        metrics::counter!("sms_replies_total", "outcome" => outcome.outcome).increment(1);
    }
    Ok(twiml(outcome.answer.as_deref()))
}

async fn status(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    form: FormBody,
) -> Result<Response, ApiError> {
    let (tenant, _) = verified(&state, &slug, "status", &uri, &headers, &form).await?;
    let report = twilio::parse_status(&form.pairs).map_err(|e| {
        count("twilio", "status", "rejected");
        ApiError::validation(e.field, e.message)
    })?;
    if let Some(mut report) = report {
        report.sanitize();
        let received = Received {
            kind: "twilio.status",
            content_type: Some(&form.content_type),
            body: &form.raw,
        };
        state
            .ingest
            .delivery_status(&tenant, &report, received)
            .await
            .map_err(|e| state.ingest_error(e))?;
    }
    count("twilio", "status", "accepted");
    Ok(twiml(None))
}
