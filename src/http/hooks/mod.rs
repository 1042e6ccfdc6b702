//! Provider webhooks: `POST /hooks/{tenant}/{provider}[/{kind}]`, one path per tenant and
//! provider, each verified by that provider's signature before anything is read or stored.
//! A request that fails verification is answered 403 and leaves nothing but a counter.

pub mod email;
pub mod messaging;
pub mod platforms;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, Uri};
use axum::Router;

use super::input::RawBody;
use super::problem::ApiError;
use super::AppState;
use crate::store::tenants::{self, Tenant};

pub fn router(config: &crate::config::Config) -> Router<AppState> {
    Router::new()
        .merge(email::router(config.email.inbound_limit_bytes))
        .merge(messaging::router())
        .merge(platforms::router())
}

/// Counts a webhook request by provider, kind and outcome (accepted, duplicate, rejected),
/// the same names for every provider.
pub fn count(provider: &'static str, kind: &'static str, outcome: &'static str) {
    metrics::counter!(
        "webhook_requests_total",
        "provider" => provider,
        "kind" => kind,
        "outcome" => outcome,
    )
    .increment(1);
}

/// The answer for a hook address that leads nowhere: the same whether the tenant does not exist
/// or has not configured the provider, so the webhook routes cannot be used to find out which
/// tenants exist.
pub fn no_hook_here() -> ApiError {
    ApiError::NotFound("no webhook is configured at this address".into())
}

/// The tenant named in a hook's path.
pub async fn tenant(state: &AppState, slug: &str) -> Result<Tenant, ApiError> {
    tenants::find_by_slug(&state.db, slug)
        .await
        .map_err(|e| state.db_error(e))?
        .ok_or_else(no_hook_here)
}

/// The URL the provider called, as it knows it: the configured public base URL, then the
/// request's path and query exactly as received.
pub fn public_url(state: &AppState, uri: &Uri) -> String {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    format!("{}{path}", state.config.public_url.trim_end_matches('/'))
}

/// An `application/x-www-form-urlencoded` body: its decoded pairs in order (a name may repeat)
/// and the raw bytes, which are stored as the raw event.
pub struct FormBody {
    pub pairs: Vec<(String, String)>,
    pub raw: Bytes,
    pub content_type: String,
}

impl<S: Send + Sync> FromRequest<S> for FormBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(ApiError::UnsupportedMediaType(
                "expected Content-Type: application/x-www-form-urlencoded".into(),
            ));
        }
        let RawBody(raw) = RawBody::from_request(req, state).await?;
        let pairs = parse_form(&raw)?;
        Ok(FormBody {
            pairs,
            raw,
            content_type,
        })
    }
}

/// Decodes form pairs strictly: bytes or percent-escapes that are not UTF-8 make the body
/// unreadable rather than silently replaced (the signature covers the exact values).
fn parse_form(raw: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    let malformed = |detail: &str| ApiError::BadRequest {
        kind: "malformed-form",
        detail: detail.to_owned(),
    };
    if std::str::from_utf8(raw).is_err() {
        return Err(malformed("the form body is not UTF-8"));
    }
    let mut pairs = Vec::new();
    for part in raw.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match part.iter().position(|b| *b == b'=') {
            Some(i) => (&part[..i], &part[i + 1..]),
            None => (part, &b""[..]),
        };
        let decode = |bytes: &[u8]| -> Result<String, ApiError> {
            let plus_as_space: Vec<u8> = bytes
                .iter()
                .map(|b| if *b == b'+' { b' ' } else { *b })
                .collect();
            let decoded: Vec<u8> = percent_decode(&plus_as_space)
                .ok_or_else(|| malformed("a percent-escape in the form is incomplete"))?;
            String::from_utf8(decoded)
                .map_err(|_| malformed("a form value does not decode to UTF-8"))
        };
        pairs.push((decode(name)?, decode(value)?));
    }
    Ok(pairs)
}

/// `%XX` escapes to bytes; `None` for a `%` not followed by two hex digits. (form_urlencoded
/// passes such input through unchanged, which would hide a malformed body.)
fn percent_decode(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' {
            let hex = input.get(i + 1..i + 3)?;
            let s = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(s, 16).ok()?);
            i += 3;
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_strictly() {
        let pairs = parse_form(b"Body=5+tak%21&From=%2B4522334455&Empty=&Flag").unwrap();
        assert_eq!(
            pairs,
            [
                ("Body".to_owned(), "5 tak!".to_owned()),
                ("From".to_owned(), "+4522334455".to_owned()),
                ("Empty".to_owned(), String::new()),
                ("Flag".to_owned(), String::new()),
            ]
        );
        assert_eq!(
            parse_form("Body=hj%C3%A6lp".as_bytes()).unwrap()[0].1,
            "hjælp"
        );
        assert!(parse_form(b"Body=%E6").is_err(), "not UTF-8");
        assert!(parse_form(b"Body=%4").is_err(), "cut escape");
        assert!(parse_form(b"Body=%zz").is_err(), "not hex");
        assert!(parse_form(&[0x42, 0xff]).is_err(), "raw bytes not UTF-8");
    }
}
