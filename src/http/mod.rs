//! HTTP surface: router assembly, middleware, extractors, the OpenAPI document.

pub mod accounts;
pub mod audit;
pub mod audit_log;
pub mod auth;
pub mod client_ip;
pub mod csv;
pub mod dto;
pub mod extract;
pub mod freshness;
pub mod idempotency;
pub mod middleware;
pub mod names;
pub mod openapi;
pub mod params;
pub mod per_route;
pub mod protected;
pub mod routes;
pub mod rules;
pub mod text;
pub mod versioning;

use std::sync::{Arc, OnceLock};

use axum::{
    extract::State,
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use utoipa::{
    openapi::{path::Operation, security::SecurityRequirement},
    OpenApi,
};
use utoipa_axum::router::OpenApiRouter;

use crate::{domain::permission::RouteKey, error::AppError, state::AppState};

pub const API_PREFIX: &str = "/api/v1";
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";
/// The interactive API reference (Swagger UI, served from the binary).
pub const DOCS_PATH: &str = "/docs";

/// Routes anyone may call. Every route declares its full `/api/v1/...`
/// path: a `nest` would wrap each route in a prefix-stripping layer that
/// rebuilds the request's URI on every call.
fn public_v1() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().merge(routes::auth::public_router())
}

/// Routes behind authentication and route permissions (full paths, as above).
fn protected_v1() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(routes::auth::protected_router())
        .merge(routes::users::router())
        .merge(routes::permissions::router())
        .merge(routes::hospitals::router())
        .merge(routes::patients::router())
        .merge(routes::appointments::router())
        .merge(routes::treatments::router())
        .merge(routes::quotes::router())
        .merge(routes::travel::router())
        .merge(routes::documents::router())
        .merge(routes::earnings::router())
        .merge(routes::reports::router())
        .merge(routes::audit::router())
}

fn operations(item: &mut utoipa::openapi::PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("GET", item.get.as_mut()),
        ("POST", item.post.as_mut()),
        ("PUT", item.put.as_mut()),
        ("PATCH", item.patch.as_mut()),
        ("DELETE", item.delete.as_mut()),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.map(|op| (m, op)))
    .collect()
}

/// Every protected route as `(METHOD, /api/v1/... template)`, read from the
/// same registrations the router is built from, and the permissions a query
/// parameter needs (`domain::permission::query_permissions`).
pub fn protected_routes() -> &'static [RouteKey] {
    static ROUTES: OnceLock<Vec<RouteKey>> = OnceLock::new();
    ROUTES.get_or_init(|| {
        let mut doc = protected_v1().into_openapi();
        let mut routes: Vec<RouteKey> = doc
            .paths
            .paths
            .iter_mut()
            .flat_map(|(path, item)| {
                operations(item)
                    .into_iter()
                    .map(|(m, _)| RouteKey::new(m, path))
                    .collect::<Vec<_>>()
            })
            .collect();
        routes.extend(crate::domain::permission::query_permissions());
        routes.sort();
        routes
    })
}

/// The whole application: public and protected routes, the OpenAPI
/// document, the 404 fallback and the shared middleware stack.
pub fn build_app(state: AppState) -> Router {
    let mut protected = protected_v1();
    // Document the bearer requirement on exactly the routes the guard covers.
    for item in protected.get_openapi_mut().paths.paths.values_mut() {
        for (_, op) in operations(item) {
            op.security = Some(vec![SecurityRequirement::new(
                "bearer",
                Vec::<String>::new(),
            )]);
        }
    }
    // Audit, permission check, idempotency key and names, in that order.
    let protected = protected.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        self::protected::steps,
    ));
    let (router, mut doc) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(routes::health::router())
        .merge(public_v1().merge(protected))
        .split_for_parts();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    openapi::document_idempotency(&mut doc);
    openapi::document_common_errors(&mut doc);
    openapi::document_operator_routes(&mut doc);
    openapi::document_deprecated_params(&mut doc);
    openapi::document_report_rows(&mut doc);
    openapi::document_response_headers(&mut doc);
    let doc_json: Arc<str> = match doc.to_json() {
        Ok(json) => Arc::from(json),
        Err(e) => {
            tracing::error!(error = %e, "OpenAPI document could not be serialized");
            Arc::from("{}")
        }
    };
    let router = router
        .route(OPENAPI_PATH, get(move || serve_openapi(doc_json.clone())))
        .merge(docs_page())
        .fallback(not_found);
    // Unset, /metrics is not routed at all: 404 for every method, like any
    // unknown path.
    let router = if state.config.metrics_token.is_some() {
        crate::metrics::handle();
        router.route(routes::metrics::METRICS_PATH, get(routes::metrics::metrics))
    } else {
        router
    };
    let config = state.config.clone();
    middleware::apply(router, &config).with_state(state)
}

/// Swagger UI at `/docs`, reading the served document. Every asset is
/// compiled into the binary (`utoipa-swagger-ui`'s `vendored` feature), and
/// the validator badge, Swagger UI's one call to another host, is off, so
/// the page works on a closed network and leaks nothing about the API.
fn docs_page() -> Router<AppState> {
    let config = utoipa_swagger_ui::Config::from(OPENAPI_PATH)
        .validator_url("none")
        .try_it_out_enabled(true)
        .persist_authorization(false)
        .display_request_duration(true)
        .filter(true)
        .doc_expansion("list");
    utoipa_swagger_ui::SwaggerUi::new(DOCS_PATH)
        .config(config)
        .into()
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
