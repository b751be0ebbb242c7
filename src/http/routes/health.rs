//! Liveness and readiness probes (unauthenticated).

use axum::{extract::State, Json};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{db, error::AppError, error::ErrorResponse, state::AppState};

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthStatus {
    /// `ok` for liveness, `ready` for readiness.
    pub status: &'static str,
    /// The server's version (Cargo.toml).
    pub version: &'static str,
    /// The git commit it was built from (12 hex digits), or `unknown`.
    pub commit: &'static str,
}

impl HealthStatus {
    fn new(status: &'static str) -> Self {
        HealthStatus {
            status,
            version: env!("CARGO_PKG_VERSION"),
            commit: env!("HEALTHCRM_GIT_COMMIT"),
        }
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
}

/// The process is up and serving HTTP.
#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "Process is up", body = HealthStatus)))]
pub async fn health() -> Json<HealthStatus> {
    Json(HealthStatus::new("ok"))
}

/// The database answers a ping within the configured timeout.
#[utoipa::path(get, path = "/ready", tag = "health",
    responses(
        (status = 200, description = "Database reachable", body = HealthStatus),
        (status = 503, description = "Database unreachable", body = ErrorResponse),
    ))]
pub async fn ready(State(state): State<AppState>) -> Result<Json<HealthStatus>, AppError> {
    let timeout = state.config.mongodb_timeout;
    match tokio::time::timeout(timeout, db::ping(&state.db)).await {
        Ok(Ok(())) => Ok(Json(HealthStatus::new("ready"))),
        Ok(Err(e)) => Err(AppError::ServiceUnavailable(format!(
            "database ping failed: {e}"
        ))),
        Err(_) => Err(AppError::ServiceUnavailable(
            "database ping timed out".into(),
        )),
    }
}
