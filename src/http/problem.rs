//! One error type for the HTTP edge, answered as RFC 9457 `application/problem+json`.
//!
//! Only client errors carry detail to the client; database and internal errors are logged with
//! context and answered as a plain 500 or 503.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sea_orm::DbErr;
use serde::Serialize;

pub const CONTENT_TYPE: &str = "application/problem+json";
const TYPE_PREFIX: &str = "urn:feedback-gateway:problem:";

/// One wrong input: `field` is a JSON pointer-like dotted path into the request.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[derive(Debug)]
pub enum ApiError {
    /// 400: the request cannot be read at all (syntax, bad query string).
    BadRequest {
        kind: &'static str,
        detail: String,
    },
    /// 401: no or unknown credentials.
    Unauthorized(&'static str),
    /// 401 on a webhook: the platform's signature or secret is missing or unreadable. Without
    /// a Bearer challenge: no API key would help.
    Unverified(String),
    /// 401 on a hook protected by basic auth (inbound e-mail): challenges with `Basic`, which
    /// clients that hold the credentials in the hook's URL answer.
    BasicAuthRequired(String),
    /// 403: credentials are fine but not for this.
    Forbidden(String),
    NotFound(String),
    /// 406: refused for good (a provider that retries other codes stops on this one).
    NotAcceptable(String),
    /// 409: the request contradicts what is stored (idempotency key reused with another body).
    Conflict {
        kind: &'static str,
        detail: String,
    },
    PayloadTooLarge(String),
    UnsupportedMediaType(String),
    /// 422: readable but invalid.
    Validation(Vec<FieldError>),
    TooManyRequests {
        retry_after_secs: u64,
    },
    /// 503: the database (or another dependency) is unreachable; retry later.
    Unavailable {
        retry_after_secs: u64,
    },
    /// 503: a provider API the request needs failed for now (a platform's user lookup).
    UpstreamUnavailable {
        detail: String,
        retry_after_secs: u64,
    },
    Internal,
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<Vec<FieldError>>,
}

impl ApiError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_)
            | ApiError::Unverified(_)
            | ApiError::BasicAuthRequired(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } | ApiError::UpstreamUnavailable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable last part of the problem `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::BadRequest { kind, .. } | ApiError::Conflict { kind, .. } => kind,
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Unverified(_) | ApiError::BasicAuthRequired(_) => "webhook-unverified",
            ApiError::NotAcceptable(_) => "not-acceptable",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not-found",
            ApiError::PayloadTooLarge(_) => "payload-too-large",
            ApiError::UnsupportedMediaType(_) => "unsupported-media-type",
            ApiError::Validation(_) => "validation-failed",
            ApiError::TooManyRequests { .. } => "rate-limited",
            ApiError::Unavailable { .. } => "service-unavailable",
            ApiError::UpstreamUnavailable { .. } => "upstream-unavailable",
            ApiError::Internal => "internal-error",
        }
    }

    fn detail(self) -> (Option<String>, Option<Vec<FieldError>>) {
        match self {
            ApiError::BadRequest { detail, .. }
            | ApiError::Conflict { detail, .. }
            | ApiError::Forbidden(detail)
            | ApiError::Unverified(detail)
            | ApiError::BasicAuthRequired(detail)
            | ApiError::NotAcceptable(detail)
            | ApiError::UpstreamUnavailable { detail, .. }
            | ApiError::NotFound(detail)
            | ApiError::PayloadTooLarge(detail)
            | ApiError::UnsupportedMediaType(detail) => (Some(detail), None),
            ApiError::Unauthorized(detail) => (Some(detail.to_owned()), None),
            ApiError::Validation(errors) => {
                let detail = errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                (Some(detail), Some(errors))
            }
            ApiError::TooManyRequests { .. } => {
                (Some("too many requests; retry later".into()), None)
            }
            ApiError::Unavailable { .. } => (
                Some("the service cannot reach its database; retry later".into()),
                None,
            ),
            ApiError::Internal => (None, None),
        }
    }

    pub fn from_db(err: DbErr, retry_after_secs: u64) -> Self {
        if crate::store::is_unavailable(&err) {
            tracing::warn!(error = %err, "database unavailable");
            ApiError::Unavailable { retry_after_secs }
        } else {
            tracing::error!(error = %err, "database error");
            ApiError::Internal
        }
    }
}

impl From<channels::model::InvalidValue> for ApiError {
    fn from(e: channels::model::InvalidValue) -> Self {
        ApiError::validation(e.field, e.message)
    }
}

/// Builds a problem response for a status and stable kind.
pub fn problem_response(
    status: StatusCode,
    kind: &str,
    detail: Option<String>,
    errors: Option<Vec<FieldError>>,
) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = Problem {
        kind: format!("{TYPE_PREFIX}{kind}"),
        title,
        status: status.as_u16(),
        detail,
        errors,
    };
    let mut response = (status, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let kind = self.kind();
        let retry_after = match &self {
            ApiError::TooManyRequests { retry_after_secs }
            | ApiError::Unavailable { retry_after_secs }
            | ApiError::UpstreamUnavailable {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        };
        let unauthorized = matches!(self, ApiError::Unauthorized(_));
        let basic = matches!(self, ApiError::BasicAuthRequired(_));
        let (detail, errors) = self.detail();
        let mut response = problem_response(status, kind, detail, errors);
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if unauthorized {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if basic {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"feedback-gateway hooks\""),
            );
        }
        response
    }
}

/// Turns the framework's own error answers (unknown route, wrong method, body too large, the
/// timeout layer's 408) into problem+json, keeping their status and headers such as `Allow`.
pub async fn problem_for_framework_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    // A problem already, or a page written for a person (the e-mail links' pages): kept.
    let is_answer = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes().starts_with(CONTENT_TYPE.as_bytes())
                || v.as_bytes().starts_with(b"text/html")
        });
    if is_answer {
        return response;
    }
    let kind = match status {
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload-too-large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        StatusCode::REQUEST_TIMEOUT => "request-timeout",
        StatusCode::BAD_REQUEST => "bad-request",
        StatusCode::UNPROCESSABLE_ENTITY => "validation-failed",
        s if s.is_server_error() => "internal-error",
        _ => "client-error",
    };
    let (mut parts, _) = response.into_parts();
    let fresh = problem_response(status, kind, None, None);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    Response::from_parts(parts, fresh.into_body())
}
