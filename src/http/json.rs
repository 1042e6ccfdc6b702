//! A JSON body extractor whose every rejection is a problem+json answer that names the field,
//! and which keeps the raw bytes (idempotency compares them, raw events store them).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use super::input::RawBody;
use super::problem::ApiError;

pub struct JsonBody<T> {
    pub value: T,
    pub raw: Bytes,
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !is_json(content_type) {
            return Err(ApiError::UnsupportedMediaType(
                "expected Content-Type: application/json".into(),
            ));
        }
        let RawBody(raw) = RawBody::from_request(req, state).await?;
        let value = parse(&raw)?;
        Ok(JsonBody { value, raw })
    }
}

/// Parses JSON: syntax errors are 400, well-formed JSON of the wrong shape is 422 naming the
/// path of the offending field.
pub fn parse<T: DeserializeOwned>(raw: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(raw);
    let parsed = serde_path_to_error::deserialize(&mut de);
    if parsed.is_ok() {
        if let Err(trailing) = de.end() {
            return Err(ApiError::BadRequest {
                kind: "malformed-json",
                detail: format!("the body is not valid JSON: {trailing}"),
            });
        }
    }
    match parsed {
        Ok(v) => Ok(v),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            match inner.classify() {
                serde_json::error::Category::Data => Err(ApiError::validation(
                    if path == "." { "body".to_owned() } else { path },
                    strip_position(&inner.to_string()),
                )),
                _ => Err(ApiError::BadRequest {
                    kind: "malformed-json",
                    detail: format!("the body is not valid JSON: {inner}"),
                }),
            }
        }
    }
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Body {
        score: i64,
        contact: Contact,
    }
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Contact {
        email: String,
    }

    #[test]
    fn json_content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("application/json; charset=utf-8"));
        assert!(is_json("application/merge-patch+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json(""));
    }

    #[test]
    fn syntax_errors_are_400_and_shape_errors_name_the_field() {
        let err = parse::<Body>(br#"{"score": 9,"#).unwrap_err();
        assert_eq!(err.kind(), "malformed-json");
        match parse::<Body>(br#"{"score": 9, "contact": {"email": 5}}"#).unwrap_err() {
            ApiError::Validation(errors) => assert_eq!(errors[0].field, "contact.email"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse::<Body>(br#"{"score": 1, "contact": {"email": "a"}} x"#)
                .unwrap_err()
                .kind(),
            "malformed-json"
        );
    }
}
