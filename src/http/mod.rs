//! HTTP surface: router assembly, middleware and extractors.

pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod routes;

use std::sync::Arc;

use axum::{
    extract::State,
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::{error::AppError, state::AppState};

pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

/// Every documented route, with the OpenAPI document built from the same
/// registrations.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi()).merge(routes::health::router())
}

/// The whole application: routes, the OpenAPI document, the 404 fallback
/// and the shared middleware stack.
pub fn build_app(state: AppState) -> Router {
    let (router, mut doc) = api_router().split_for_parts();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    let doc_json: Arc<str> = match doc.to_json() {
        Ok(json) => Arc::from(json),
        Err(e) => {
            tracing::error!(error = %e, "OpenAPI document could not be serialized");
            Arc::from("{}")
        }
    };
    let router = router
        .route(OPENAPI_PATH, get(move || serve_openapi(doc_json.clone())))
        .fallback(not_found);
    let config = state.config.clone();
    middleware::apply(router, &config).with_state(state)
}

/// The document as one pre-rendered string.
async fn serve_openapi(json: Arc<str>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        json.to_string(),
    )
        .into_response()
}

async fn not_found(State(_): State<AppState>) -> AppError {
    AppError::NotFound("no such route".into())
}
