//! Conditional reads of computed figures (RFC 9110 §13.1.2, §15.4.5).
//!
//! Reports and the dashboard carry a weak `ETag` naming the data they were
//! computed from and their format. A request whose `If-None-Match` holds it
//! is answered `304 Not Modified` without a body, before anything is
//! computed. They are sent `Cache-Control: private, no-cache`: a browser
//! may keep them but asks again each time (and gets the 304), and no shared
//! cache keeps them; every other API response stays `no-store`.

use axum::{
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};

/// `W/"<digest>-<variant>"`: weak, since the same figures may be computed
/// again with another `generated_at`.
pub fn etag(digest: &str, variant: &str) -> HeaderValue {
    // Hex digits, a dash and a fixed word: always a valid header value.
    HeaderValue::try_from(format!("W/\"{digest}-{variant}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("W/\"none\""))
}

/// Whether `If-None-Match` names `etag` (weak comparison: a `W/` prefix on
/// either side is ignored) or is `*`.
pub fn matches(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let opaque = |t: &str| -> String {
        let t = t.trim();
        t.strip_prefix("W/").unwrap_or(t).to_owned()
    };
    let Ok(ours) = etag.to_str().map(opaque) else {
        return false;
    };
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*" || opaque(t) == ours)
}

/// The headers every fresh or not-modified answer carries.
pub fn headers(etag: HeaderValue) -> [(header::HeaderName, HeaderValue); 3] {
    [
        (header::ETAG, etag),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache"),
        ),
        (header::VARY, HeaderValue::from_static("accept")),
    ]
}

/// `304 Not Modified` for `etag`.
pub fn not_modified(etag: HeaderValue) -> Response {
    (StatusCode::NOT_MODIFIED, headers(etag)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(value).expect("header"),
        );
        h
    }

    #[test]
    fn if_none_match_compares_weakly_and_in_lists() {
        let ours = etag("0123456789abcdef", "json");
        assert_eq!(ours, "W/\"0123456789abcdef-json\"");
        assert!(matches(&with("W/\"0123456789abcdef-json\""), &ours));
        assert!(matches(&with("\"0123456789abcdef-json\""), &ours));
        assert!(matches(&with("\"x\", W/\"0123456789abcdef-json\""), &ours));
        assert!(matches(&with("*"), &ours));
        assert!(!matches(&with("W/\"0123456789abcdef-csv\""), &ours));
        assert!(!matches(&with("W/\"0123456789abcdef\""), &ours));
        assert!(!matches(&HeaderMap::new(), &ours));
    }
}
