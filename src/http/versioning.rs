//! Optimistic concurrency over HTTP (RFC 9110 §13.1.1, RFC 6585 §3):
//! single reads of versioned records carry `ETag: "<version>"`; an update
//! names the version it is based on in the body (`version`) or as
//! `If-Match`, and one that sends neither is 428 `precondition_required`.
//! A stale version is 409 `conflict` from the body, 412
//! `precondition_failed` from `If-Match`.

use axum::{
    extract::FromRequestParts,
    http::{header, request::Parts, HeaderValue},
};

use crate::error::AppError;

/// The version an `If-Match` header names, if one was sent.
#[derive(Debug, Clone, Copy)]
pub struct IfMatch(pub Option<IfMatchValue>);

/// What an `If-Match` header held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfMatchValue {
    /// One of our ETags: this version.
    Version(i64),
    /// Anything else (another server's tag, a list, `*`): it cannot match a
    /// version, so the update fails its precondition.
    Unmatchable,
}

/// `"3"` -> 3; also a weak `W/"3"`, which a proxy that compressed the
/// response may have turned ours into. Anything else is unmatchable.
pub fn parse(raw: &str) -> IfMatchValue {
    let raw = raw.trim();
    let tag = raw.strip_prefix("W/").unwrap_or(raw);
    tag.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|v| *v >= 1)
        .map_or(IfMatchValue::Unmatchable, IfMatchValue::Version)
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let mut values = parts.headers.get_all(header::IF_MATCH).iter();
        let Some(first) = values.next() else {
            return Ok(IfMatch(None));
        };
        if values.next().is_some() {
            return Ok(IfMatch(Some(IfMatchValue::Unmatchable)));
        }
        let raw = first.to_str().unwrap_or("");
        Ok(IfMatch(Some(parse(raw))))
    }
}

/// The version an update is based on, and where it came from.
#[derive(Debug, Clone, Copy)]
pub struct Expected {
    pub version: i64,
    pub from_header: bool,
}

/// The update's base version from the body's `version` and `If-Match`:
/// 428 when neither is sent, 412 when `If-Match` cannot match or the two
/// disagree.
pub fn expected(body: Option<i64>, if_match: IfMatch) -> Result<Expected, AppError> {
    match (body, if_match.0) {
        (_, Some(IfMatchValue::Unmatchable)) => Err(AppError::PreconditionFailed(
            "If-Match must be the ETag of the record as read (\"<version>\")".into(),
        )),
        (Some(v), Some(IfMatchValue::Version(m))) if v != m => Err(AppError::PreconditionFailed(
            format!("If-Match names version {m} but the body's version is {v}"),
        )),
        (_, Some(IfMatchValue::Version(m))) => Ok(Expected {
            version: m,
            from_header: true,
        }),
        (Some(v), None) => Ok(Expected {
            version: v,
            from_header: false,
        }),
        (None, None) => Err(AppError::PreconditionRequired(
            "send the version this change is based on: `version` in the body or If-Match".into(),
        )),
    }
}

/// A stale version named by `If-Match` is a failed precondition (412).
pub fn stale_as_precondition<T>(
    result: Result<T, AppError>,
    from_header: bool,
) -> Result<T, AppError> {
    match result {
        Err(AppError::Stale(m)) if from_header => Err(AppError::PreconditionFailed(m)),
        other => other,
    }
}

/// The `ETag` of a record at `version`.
pub fn etag(version: i64) -> (header::HeaderName, HeaderValue) {
    // Digits and quotes only: always a valid header value.
    let value = HeaderValue::try_from(format!("\"{version}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
    (header::ETAG, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_values_are_our_etags_or_unmatchable() {
        assert_eq!(parse("\"3\""), IfMatchValue::Version(3));
        assert_eq!(parse(" W/\"12\" "), IfMatchValue::Version(12));
        for bad in ["3", "*", "\"abc\"", "\"0\"", "\"-1\"", "\"1\", \"2\"", ""] {
            assert_eq!(parse(bad), IfMatchValue::Unmatchable, "{bad}");
        }
    }

    #[test]
    fn the_base_version_comes_from_the_body_or_the_header() {
        let none = IfMatch(None);
        let three = IfMatch(Some(IfMatchValue::Version(3)));
        assert!(matches!(
            expected(None, none),
            Err(AppError::PreconditionRequired(_))
        ));
        let e = expected(Some(3), none).unwrap();
        assert_eq!((e.version, e.from_header), (3, false));
        let e = expected(None, three).unwrap();
        assert_eq!((e.version, e.from_header), (3, true));
        assert!(expected(Some(3), three).is_ok());
        assert!(matches!(
            expected(Some(2), three),
            Err(AppError::PreconditionFailed(_))
        ));
        let bad = IfMatch(Some(IfMatchValue::Unmatchable));
        assert!(matches!(
            expected(Some(3), bad),
            Err(AppError::PreconditionFailed(_))
        ));
        let stale: Result<(), AppError> = Err(AppError::Stale("old".into()));
        assert!(matches!(
            stale_as_precondition(stale, true),
            Err(AppError::PreconditionFailed(_))
        ));
        let stale: Result<(), AppError> = Err(AppError::Stale("old".into()));
        assert!(matches!(
            stale_as_precondition(stale, false),
            Err(AppError::Stale(_))
        ));
    }
}
