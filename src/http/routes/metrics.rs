//! `GET /metrics`: the Prometheus text format, on the main address, behind
//! a bearer token of its own (`METRICS_TOKEN`). While the token is unset
//! the route answers 404 like any unknown path, and nothing is recorded.
//! Not in the OpenAPI document: it is for the operator's scraper, not for
//! the API's clients.

use axum::{
    extract::State,
    http::{header, HeaderMap, HeaderValue},
    response::{IntoResponse, Response},
};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::{error::AppError, state::AppState};

pub const METRICS_PATH: &str = "/metrics";

pub async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let Some(expected) = state.config.metrics_token.as_ref() else {
        return Err(AppError::NotFound("no such route".into()));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !given.is_some_and(|given| same_secret(given, expected.expose_secret())) {
        return Err(AppError::Unauthorized(
            "/metrics needs the METRICS_TOKEN as a bearer token".into(),
        ));
    }
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        crate::metrics::render(),
    )
        .into_response())
}

/// Compares digests, so the time taken says nothing about how much of the
/// token a guess got right.
fn same_secret(given: &str, expected: &str) -> bool {
    Sha256::digest(given.as_bytes()) == Sha256::digest(expected.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn only_the_same_token_matches() {
        assert!(same_secret("a-long-metrics-token", "a-long-metrics-token"));
        assert!(!same_secret("a-long-metrics-token", "a-long-metrics-tokeN"));
        assert!(!same_secret("", "a-long-metrics-token"));
    }
}
