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
        refuse_control_characters(&raw)?;
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

/// Text from the API may not carry C0 control characters other than tab, CR and LF: no
/// database column wants them (PostgreSQL refuses U+0000 outright), and a client can fix its
/// input. JSON can only carry them as escapes (`\u0000`–`\u001F`, `\b`, `\f`), so bodies
/// without one are passed at once, also those that escape ordinary letters (`\u00e6`); the
/// others are parsed once more to find the field to name.
fn refuse_control_characters(raw: &[u8]) -> Result<(), ApiError> {
    let suspicious = raw.iter().enumerate().any(|(i, &byte)| {
        byte == b'\\'
            && match raw.get(i + 1) {
                Some(b'b' | b'f') => true,
                Some(b'u') => matches!(raw.get(i + 2..i + 5), Some([b'0', b'0', b'0' | b'1'])),
                _ => false,
            }
    });
    if !suspicious {
        return Ok(());
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(raw) else {
        return Ok(());
    };
    match control_character_at(&value, String::new()) {
        Some(field) => Err(ApiError::validation(
            if field.is_empty() {
                "body".to_owned()
            } else {
                field
            },
            "contains a control character; only tab, CR and LF are allowed in text",
        )),
        None => Ok(()),
    }
}

/// The path (`contact.external_id`, `questions[0]`) of the first string or key that carries a
/// forbidden control character.
fn control_character_at(value: &serde_json::Value, path: String) -> Option<String> {
    use channels::sanitize::is_forbidden_control;
    use serde_json::Value;
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::String(s) => s.chars().any(is_forbidden_control).then_some(path),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| control_character_at(v, format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            if k.chars().any(is_forbidden_control) {
                Some(join(&channels::sanitize::clean_text(k)))
            } else {
                control_character_at(v, join(k))
            }
        }),
        _ => None,
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
    fn control_characters_are_refused_naming_the_field() {
        let field = |body: &str| match refuse_control_characters(body.as_bytes()) {
            Err(ApiError::Validation(errors)) => Some(errors[0].field.clone()),
            Ok(()) => None,
            Err(other) => panic!("{other:?}"),
        };
        assert_eq!(
            field(r#"{"comment": "a\u0000b"}"#).as_deref(),
            Some("comment")
        );
        assert_eq!(
            field(r#"{"contact": {"external_id": "x\u001F"}}"#).as_deref(),
            Some("contact.external_id")
        );
        assert_eq!(
            field(r#"{"questions": {"da": ["ok", "\b"]}}"#).as_deref(),
            Some("questions.da[1]")
        );
        assert_eq!(
            field(r#"{"metadata": {"k\u0001": 1}}"#).as_deref(),
            Some("metadata.k")
        );
        assert_eq!(
            field(r#"{"comment": "tab\t, lines\r\n, \\u0000 as text"}"#),
            None
        );
        assert_eq!(field(r#"{"comment": "\u00e6\u00f8"}"#), None);
        assert_eq!(
            field(r#"{"c":"\f"}"#).as_deref(),
            Some("c"),
            "an escape at the very end"
        );
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
