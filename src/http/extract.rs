//! Request extractors whose rejections speak the contract's error shape.
//!
//! axum's own extractors answer with plain-text bodies; these wrap them so a
//! malformed body, a wrong content type, an oversized body or a bad query
//! string is an [`AppError`] like everything else.

use axum::{
    body::Bytes,
    extract::{rejection::PathRejection, FromRequest, FromRequestParts, Path, Query, Request},
    http::{header, request::Parts, StatusCode},
};
use serde::de::DeserializeOwned;
use validator::Validate;

use crate::error::{AppError, FieldErrors};

/// A JSON body, deserialized strictly (DTOs deny unknown fields) and validated.
///
/// - no or non-JSON `Content-Type`: 415 `unsupported_media_type`
/// - body over the limit: 413 `payload_too_large`
/// - not JSON at all (syntax, invalid UTF-8, nesting too deep): 400 `malformed_json`
/// - JSON of the wrong shape (missing/unknown fields, wrong types) or
///   breaking a validation rule: 422 `validation_failed` with per-field details
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned + Validate,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(req.headers()) {
            return Err(AppError::UnsupportedMediaType(
                "expected Content-Type: application/json".into(),
            ));
        }
        let bytes = read_body(req, state).await?;
        let value = parse_json::<T>(&bytes)?;
        value.validate()?;
        Ok(ApiJson(value))
    }
}

/// An optional JSON body: an empty body is `None`; anything else is read
/// exactly as [`ApiJson`] reads it.
#[derive(Debug, Clone, Copy, Default)]
pub struct MaybeJson<T>(pub Option<T>);

impl<T, S> FromRequest<S> for MaybeJson<T>
where
    T: DeserializeOwned + Validate,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = has_json_content_type(req.headers());
        let bytes = read_body(req, state).await?;
        if bytes.is_empty() {
            return Ok(MaybeJson(None));
        }
        if !json {
            return Err(AppError::UnsupportedMediaType(
                "expected Content-Type: application/json".into(),
            ));
        }
        let value = parse_json::<T>(&bytes)?;
        value.validate()?;
        Ok(MaybeJson(Some(value)))
    }
}

/// The whole body (within the body limit: 413 beyond it).
async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, AppError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::PayloadTooLarge
        } else {
            AppError::BadRequest("the request body could not be read".into())
        }
    })
}

/// Deserializes `bytes`, telling malformed JSON (400) from well-formed JSON
/// of the wrong shape (422, naming the field by its path).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    // Every request body is an object; serde would otherwise accept a struct
    // written as an array of its fields.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => AppError::invalid_field("body", "must be a JSON object"),
                Err(e) => AppError::MalformedJson(format!("the body is not valid JSON: {e}")),
            },
        );
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    let value = match result {
        Ok(v) => v,
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            return Err(match inner.classify() {
                serde_json::error::Category::Data => {
                    let field = if path == "." || path.is_empty() {
                        "body".to_owned()
                    } else {
                        path
                    };
                    let message = data_error_message(&inner);
                    let mut details = FieldErrors::new();
                    details.insert(field.clone(), vec![message.clone()]);
                    AppError::Validation {
                        message: format!("{field}: {message}"),
                        details,
                    }
                }
                _ => AppError::MalformedJson(format!("the body is not valid JSON: {inner}")),
            });
        }
    };
    // Trailing bytes after the value are malformed input too.
    de.end()
        .map_err(|e| AppError::MalformedJson(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

/// serde's message without the " at line 1 column 17" suffix.
fn data_error_message(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

fn has_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Path parameters; a malformed id is a 400 `invalid_id`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(value) = Path::<T>::from_request_parts(parts, state).await.map_err(
            |rejection| match rejection {
                PathRejection::FailedToDeserializePathParams(e) => {
                    AppError::InvalidId(e.body_text().replace("Invalid URL: ", ""))
                }
                other => AppError::BadRequest(other.body_text()),
            },
        )?;
        Ok(ApiPath(value))
    }
}

/// Query parameters; a value that does not parse is a 400 `bad_request`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned + Validate,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(value) = Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| AppError::BadRequest(rejection.body_text()))?;
        value.validate().map_err(|e| match AppError::from(e) {
            // A query has no body to point into: the 400 names each
            // parameter with what it wants.
            AppError::Validation { details, .. } => AppError::BadRequest(
                details
                    .iter()
                    .map(|(field, messages)| format!("{field} {}", messages.join(", ")))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            other => other,
        })?;
        Ok(ApiQuery(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        age: u8,
    }

    #[test]
    fn syntax_errors_are_malformed_and_shape_errors_are_validation() {
        assert!(matches!(
            parse_json::<Body>(b"{\"name\": "),
            Err(AppError::MalformedJson(_))
        ));
        assert!(matches!(
            parse_json::<Body>(b"\xff\xfe"),
            Err(AppError::MalformedJson(_))
        ));
        assert!(matches!(
            parse_json::<Body>(br#"{"name":"a","age":3} x"#),
            Err(AppError::MalformedJson(_))
        ));
        match parse_json::<Body>(br#"{"name":"a","age":300}"#) {
            Err(AppError::Validation { details, .. }) => assert!(details.contains_key("age")),
            other => panic!("expected validation error, got {other:?}"),
        }
        match parse_json::<Body>(br#"{"name":"a","age":3,"role":"admin"}"#) {
            Err(AppError::Validation { message, .. }) => assert!(message.contains("unknown field")),
            other => panic!("expected validation error, got {other:?}"),
        }
        match parse_json::<Body>(br#"{"name":"a","name":"b","age":3}"#) {
            Err(AppError::Validation { message, .. }) => {
                assert!(message.contains("duplicate field"))
            }
            other => panic!("expected validation error, got {other:?}"),
        }
    }

    #[test]
    fn json_content_types() {
        let mut h = axum::http::HeaderMap::new();
        assert!(!has_json_content_type(&h));
        h.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert!(has_json_content_type(&h));
        h.insert(
            header::CONTENT_TYPE,
            "application/merge-patch+json".parse().unwrap(),
        );
        assert!(has_json_content_type(&h));
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(!has_json_content_type(&h));
    }
}
