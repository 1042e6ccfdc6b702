//! The pages behind a survey e-mail's links.
//!
//! - `GET /r/{token}/{score}` shows the question with that score chosen and a comment box, and
//!   records nothing: corporate mail filters fetch every link in a message, and such a fetch
//!   must not answer for the customer.
//! - `POST /r/{token}/{score}` (the page's form, which works without JavaScript) records the
//!   answer; a second POST changes it.
//! - `GET /u/{token}` shows a button and changes nothing; `POST /u/{token}` opts the contact out
//!   of e-mail at once. That POST is also RFC 8058's one-click unsubscribe, sent by mailbox
//!   providers with no cookie, no authorization and a body of either form encoding: the token
//!   is the authorization, the body is ignored, and the answer is a page, never a redirect.
//!
//! A bad, foreign or expired link shows a friendly page in the reader's language, not JSON.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use channels::email::links::{self, Purpose};
use channels::email::render::escape;
use channels::email::texts::{self, Texts};
use channels::model::Metric;
use serde::Deserialize;

use super::AppState;
use crate::ingest::links::{takes_answers, LinkAnswer};
use crate::ingest::Received;
use crate::store::entities::invitation;
use crate::store::{self, invitations, surveys, tenants};

/// The longest comment kept from the page.
const MAX_COMMENT_CHARS: usize = 2000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/r/{token}/{score}", get(show_rating).post(post_rating))
        .route("/u/{token}", get(show_unsubscribe).post(post_unsubscribe))
}

/// A page, with the headers every link page carries: no caching (the answer may change), no
/// referrer (the URL holds the token), no indexing, and a policy that allows no script.
pub(super) fn page(status: StatusCode, texts: &Texts, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head>\
         <body><main>{body}</main></body></html>\n",
        lang = texts.lang,
        title = escape(title),
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.insert("x-robots-tag", HeaderValue::from_static("noindex"));
    response
}

const STYLE: &str = "body{margin:0;background:#f4f4f4;font-family:Arial,Helvetica,sans-serif;\
color:#222}main{max-width:36rem;margin:2rem auto;background:#fff;border-radius:8px;\
padding:1.5rem}fieldset{border:0;padding:0;margin:0 0 1rem}legend{font-size:1.2rem;\
margin-bottom:1rem}.scale{display:flex;flex-wrap:wrap;gap:.4rem}.scale label{display:flex;\
align-items:center;justify-content:center;min-width:2.4rem;min-height:2.4rem;\
border:1px solid #1f4e79;border-radius:6px;color:#1f4e79;font-weight:bold;cursor:pointer}\
.scale input{position:absolute;opacity:0}.scale input:checked+span{color:#fff}\
.scale label:has(input:checked){background:#1f4e79;color:#fff}\
.scale input:focus-visible+span{outline:3px solid #f90;outline-offset:4px}\
.ends{display:flex;justify-content:space-between;font-size:.8rem;color:#555}\
textarea{width:100%;box-sizing:border-box;min-height:6rem;font:inherit}\
button{margin-top:1rem;padding:.6rem 1.4rem;font:inherit;font-weight:bold;color:#fff;\
background:#1f4e79;border:0;border-radius:6px;cursor:pointer}\
button:focus-visible{outline:3px solid #f90;outline-offset:2px}";

/// The reader's language from `Accept-Language`, for a link that names no invitation.
fn reader_texts(headers: &HeaderMap) -> &'static Texts {
    let first = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split([',', ';']).next())
        .unwrap_or("en");
    texts::for_language(first.trim())
}

fn invitation_texts(invitation: &invitation::Model) -> &'static Texts {
    texts::for_language(invitation.language.as_deref().unwrap_or("en"))
}

fn bad_link(texts: &Texts, status: StatusCode) -> Response {
    page(
        status,
        texts,
        texts.bad_link_title,
        &format!(
            "<h1>{}</h1><p>{}</p>",
            escape(texts.bad_link_title),
            escape(texts.bad_link_detail)
        ),
    )
}

/// Why a link was not followed.
enum Refused {
    /// Not a token of ours, or not signed by the invitation's tenant.
    Bad,
    /// A database error, shown as a page (the link may work later).
    Unavailable,
}

/// The invitation a link's token names, once its signature is checked with the invitation's
/// tenant's key.
async fn verified(
    state: &AppState,
    token: &str,
    purpose: Purpose,
    score: Option<u8>,
) -> Result<invitation::Model, Refused> {
    let read = links::read(token).map_err(|_| Refused::Bad)?;
    if read.purpose != purpose {
        return Err(Refused::Bad);
    }
    let unavailable = |e: sea_orm::DbErr| {
        tracing::warn!(error = %e, "a link could not be looked up");
        Refused::Unavailable
    };
    let invitation = invitations::of_link(&state.db.read, read.invitation)
        .await
        .map_err(unavailable)?
        .ok_or(Refused::Bad)?;
    let key = tenants::link_key(&state.db, invitation.tenant_id)
        .await
        .map_err(unavailable)?
        .ok_or(Refused::Bad)?;
    read.verify(&key, score).map_err(|_| Refused::Bad)?;
    Ok(invitation)
}

fn refused_page(refused: Refused, headers: &HeaderMap) -> Response {
    let texts = reader_texts(headers);
    match refused {
        Refused::Bad => bad_link(texts, StatusCode::NOT_FOUND),
        Refused::Unavailable => bad_link(texts, StatusCode::SERVICE_UNAVAILABLE),
    }
}

/// The path's score, if it can be one of a token's (the token's MAC then decides).
fn path_score(score: &str) -> Option<u8> {
    score.parse::<u8>().ok().filter(|s| *s <= 10)
}

async fn rating_page(
    state: &AppState,
    invitation: &invitation::Model,
    chosen: i16,
    comment: &str,
    status: StatusCode,
) -> Response {
    let texts = invitation_texts(invitation);
    let metric: Metric = invitation.metric.parse().unwrap_or(Metric::Text);
    let Some((low, high)) = metric.numeric_scale().map(|s| s.range()) else {
        return bad_link(texts, StatusCode::GONE);
    };
    let question = match surveys::get(&state.db, invitation.tenant_id, &invitation.survey_key).await
    {
        Ok(Some(survey)) => survey
            .question_in(invitation.language.as_deref())
            .1
            .to_owned(),
        _ => texts.your_answer.to_owned(),
    };
    let (low_label, high_label) = texts.ends(metric);
    let mut scale = String::new();
    for score in low..=high {
        scale.push_str(&format!(
            "<label><input type=\"radio\" name=\"score\" value=\"{score}\"{checked} \
             aria-describedby=\"ends\"><span>{score}</span></label>",
            checked = if score == chosen { " checked" } else { "" },
        ));
    }
    let body = format!(
        "<form method=\"post\"><fieldset><legend>{question}</legend>\
         <div class=\"scale\" role=\"radiogroup\">{scale}</div>\
         <div class=\"ends\" id=\"ends\"><span>{low} = {low_label}</span>\
         <span>{high} = {high_label}</span></div></fieldset>\
         <label for=\"comment\">{comment_label}</label>\
         <textarea id=\"comment\" name=\"comment\" maxlength=\"{MAX_COMMENT_CHARS}\">{comment}</textarea>\
         <button type=\"submit\">{send}</button></form>",
        question = escape(&question),
        low_label = escape(low_label),
        high_label = escape(high_label),
        comment_label = escape(texts.comment_label),
        comment = escape(comment),
        send = escape(texts.send),
    );
    page(status, texts, texts.your_answer, &body)
}

async fn show_rating(
    State(state): State<AppState>,
    Path((token, score)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(score) = path_score(&score) else {
        return refused_page(Refused::Bad, &headers);
    };
    let invitation = match verified(&state, &token, Purpose::Rating, Some(score)).await {
        Ok(invitation) => invitation,
        Err(refused) => return refused_page(refused, &headers),
    };
    if !takes_answers(&invitation, store::now()) {
        return bad_link(invitation_texts(&invitation), StatusCode::GONE);
    }
    rating_page(&state, &invitation, i16::from(score), "", StatusCode::OK).await
}

#[derive(Deserialize)]
struct RatingForm {
    score: Option<String>,
    comment: Option<String>,
}

async fn post_rating(
    State(state): State<AppState>,
    Path((token, score)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(link_score) = path_score(&score) else {
        return refused_page(Refused::Bad, &headers);
    };
    let invitation = match verified(&state, &token, Purpose::Rating, Some(link_score)).await {
        Ok(invitation) => invitation,
        Err(refused) => return refused_page(refused, &headers),
    };
    let texts = invitation_texts(&invitation);
    // The page's form; a form that does not parse is answered with the page again.
    let form: RatingForm = serde_urlencoded::from_bytes(&body).unwrap_or(RatingForm {
        score: None,
        comment: None,
    });
    let comment: String = channels::sanitize::clean_text(&form.comment.unwrap_or_default())
        .trim()
        .chars()
        .take(MAX_COMMENT_CHARS)
        .collect();
    let score = match form.score.as_deref().map(str::parse::<i16>) {
        None => i16::from(link_score),
        Some(Ok(score)) => score,
        Some(Err(_)) => {
            return rating_page(
                &state,
                &invitation,
                i16::from(link_score),
                &comment,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    };
    let received = Received {
        kind: "email.rating_link",
        content_type: Some("application/x-www-form-urlencoded"),
        body: &body,
    };
    let comment = Some(comment).filter(|c| !c.is_empty());
    match state
        .ingest
        .answer_by_link(
            invitation.tenant_id,
            invitation.id,
            score,
            comment,
            received,
        )
        .await
    {
        Ok(LinkAnswer::Recorded { .. }) => page(
            StatusCode::OK,
            texts,
            texts.thank_you,
            &format!(
                "<h1 role=\"status\">{}</h1><p>{}</p>",
                escape(texts.thank_you),
                escape(texts.thank_you_detail)
            ),
        ),
        Ok(LinkAnswer::Closed) => bad_link(texts, StatusCode::GONE),
        Ok(LinkAnswer::OffScale) => {
            rating_page(
                &state,
                &invitation,
                i16::from(link_score),
                "",
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => {
            tracing::warn!(error = %e, "an answer by link was not recorded");
            bad_link(texts, StatusCode::SERVICE_UNAVAILABLE)
        }
    }
}

async fn show_unsubscribe(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let invitation = match verified(&state, &token, Purpose::Unsubscribe, None).await {
        Ok(invitation) => invitation,
        Err(refused) => return refused_page(refused, &headers),
    };
    let texts = invitation_texts(&invitation);
    page(
        StatusCode::OK,
        texts,
        texts.unsubscribe_question,
        &format!(
            "<form method=\"post\"><h1>{}</h1><button type=\"submit\" name=\"List-Unsubscribe\" \
             value=\"One-Click\">{}</button></form>",
            escape(texts.unsubscribe_question),
            escape(texts.unsubscribe_button)
        ),
    )
}

async fn post_unsubscribe(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let invitation = match verified(&state, &token, Purpose::Unsubscribe, None).await {
        Ok(invitation) => invitation,
        Err(refused) => return refused_page(refused, &headers),
    };
    let texts = invitation_texts(&invitation);
    let email = channels::vocabulary::Channel::Email.as_str();
    match crate::policy::opt_out::set(
        &state.db,
        invitation.tenant_id,
        invitation.contact_id,
        email,
        true,
    )
    .await
    {
        // An erased contact has nothing left to unsubscribe: the page says it is done.
        Ok(_) => page(
            StatusCode::OK,
            texts,
            texts.unsubscribed,
            &format!("<h1 role=\"status\">{}</h1>", escape(texts.unsubscribed)),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "an unsubscribe was not recorded");
            bad_link(texts, StatusCode::SERVICE_UNAVAILABLE)
        }
    }
}
