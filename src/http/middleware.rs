//! The middleware stack every route shares, assembled once in [`apply`].

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    body::Body,
    extract::{DefaultBodyLimit, MatchedPath, Request, State},
    http::{header, HeaderName, HeaderValue, Method},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    Router,
};
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    compression::CompressionLayer,
    cors::{AllowOrigin, CorsLayer},
    sensitive_headers::{SetSensitiveRequestHeadersLayer, SetSensitiveResponseHeadersLayer},
    trace::TraceLayer,
};
use tracing::{field::Empty, Span};

use crate::{
    config::Config,
    error::{AppError, ErrorBody, ErrorResponse, RenderedError},
};

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request's id: the client's `x-request-id` when it is sane, else a new UUID.
#[derive(Debug, Clone)]
pub struct RequestId(pub Arc<str>);

/// Wraps every route (and the fallback) in the stack, outermost first. Order matters:
///
/// 1. mark `Authorization`/`Cookie` sensitive before anything can log them;
/// 2. request id, so every later layer and the span know it, and the
///    headers every response carries (`nosniff`; `no-store` on the API);
/// 3. the client's address (`TRUSTED_PROXIES`), then the metrics (with
///    `METRICS_TOKEN` set): outside the envelope, panic and timeout layers,
///    so they count the status the client finally gets;
/// 4. trace span (method, matched route, request id; the caller's user id
///    once authenticated, never the name; status and latency at the end).
///    Raw paths and query strings are not logged: they can carry patient
///    names;
/// 5. CORS, so error responses are readable by the SPA too; only with
///    `CORS_ORIGINS` set. Without, no cross-origin call is allowed, a
///    response carries no `Vary: origin` or `Access-Control-*` header, and
///    an `OPTIONS` request (a preflight included) is routed like any other
///    method: 405 on a route without it (tallied by the audit step like any
///    refused call), 404 on an unknown path;
/// 6. compression;
/// 7. the error envelope: every status >= 400 leaves in the contract's shape,
///    with the request id, and a 5xx cause is logged here, once;
/// 8. panics become a 500 (rendered by 7) instead of a dropped connection;
/// 9. the request timeout (a 504 rendered by 7), longer for document
///    transfers, whose upload body it also bounds;
/// 10. the body limit enforced by the body extractors (413 rendered by 7).
pub fn apply<S>(router: Router<S>, config: &Config) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.layer(
        ServiceBuilder::new()
            .layer(SetSensitiveRequestHeadersLayer::new([
                header::AUTHORIZATION,
                header::COOKIE,
            ]))
            .layer(middleware::from_fn_with_state(
                Edge {
                    proxies: crate::http::client_ip::Proxies {
                        trusted: config.trusted_proxies.clone().into(),
                        header: config.trusted_proxy_header,
                    },
                    metrics: MetricsOn(config.metrics_token.is_some()),
                },
                edge,
            ))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(make_span)
                    .on_request(())
                    .on_response(on_response)
                    .on_failure(()),
            )
            .option_layer(cors(config))
            .layer(CompressionLayer::new())
            .layer(middleware::from_fn(error_envelope))
            .layer(CatchPanicLayer::custom(|_| {
                AppError::internal("handler panicked").into_response()
            }))
            .layer(middleware::from_fn_with_state(
                Timeouts {
                    request: config.request_timeout,
                    transfer: config.documents.upload_timeout.max(config.request_timeout),
                    upload_body: usize::try_from(config.documents.max_bytes)
                        .unwrap_or(usize::MAX)
                        .saturating_add(FORM_OVERHEAD),
                },
                timeout,
            ))
            .layer(DefaultBodyLimit::max(config.body_limit_bytes))
            .layer(SetSensitiveResponseHeadersLayer::new([header::SET_COOKIE])),
    )
}

/// What the edge layer's steps need.
#[derive(Clone)]
struct Edge {
    proxies: crate::http::client_ip::Proxies,
    metrics: MetricsOn,
}

/// Steps 2 and 3 of [`apply`] in one layer, outermost first: the request
/// id, the headers every response carries, the client's address, the
/// metrics. Each step takes the rest of the request as a plain function,
/// so they nest as one future, with no boxed service or clone of the
/// route's inner stack per step (as `http::protected` does for protected
/// routes).
async fn edge(State(edge): State<Edge>, req: Request, next: Next) -> Response {
    let edge = &edge;
    request_id(req, move |req| {
        security_headers(req, move |mut req| async move {
            crate::http::client_ip::resolve(&edge.proxies, &mut req);
            record_metrics(edge.metrics, req, move |req| next.run(req)).await
        })
    })
    .await
}

/// Whether `/metrics` is served (`METRICS_TOKEN` set), and so recorded.
#[derive(Clone, Copy)]
struct MetricsOn(bool);

/// Counts the request and times it to its response's head, labelled by
/// route template (never the raw path, which carries record ids).
async fn record_metrics<F>(on: MetricsOn, req: Request, next: impl FnOnce(Request) -> F) -> Response
where
    F: Future<Output = Response>,
{
    if !on.0 {
        return next(req).await;
    }
    let started = Instant::now();
    // A closed set: hyper accepts any token as a method, and each new label
    // value would be a new series kept for the life of the process.
    let method = match *req.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    // The template's shared text, not a copy: `MatchedPath` clones cheaply.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let res = next(req).await;
    crate::metrics::request_served(
        method,
        route.as_ref().map_or("<unmatched>", MatchedPath::as_str),
        res.status().as_u16(),
        started.elapsed(),
    );
    res
}

fn make_span(req: &Request) -> Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str())
        .unwrap_or("<unmatched>");
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| &*r.0)
        .unwrap_or("-");
    // Exported traces (feature `otel`) name the span after its route
    // template and mark it a server span; the logs need neither.
    #[cfg(feature = "otel")]
    return tracing::info_span!(
        "request",
        method = %req.method(),
        route = %route,
        request_id = %request_id,
        user_id = Empty,
        status = Empty,
        latency_ms = Empty,
        otel.name = %format_args!("{} {route}", req.method()),
        otel.kind = "server",
        otel.status_code = Empty,
    );
    #[cfg(not(feature = "otel"))]
    tracing::info_span!(
        "request",
        method = %req.method(),
        route = %route,
        request_id = %request_id,
        user_id = Empty,
        status = Empty,
        latency_ms = Empty,
    )
}

fn on_response<B>(res: &axum::http::Response<B>, latency: Duration, span: &Span) {
    span.record("status", res.status().as_u16());
    #[cfg(feature = "otel")]
    if res.status().is_server_error() {
        span.record("otel.status_code", "error");
    }
    span.record("latency_ms", latency.as_secs_f64() * 1000.0);
    tracing::info!("request finished");
}

fn cors(config: &Config) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = config
        .cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    let layer = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        // Every request header the contract has a client send, and every
        // response header it has a client read (`../shared/API.md`). The
        // OpenAPI document names each (`openapi::document_response_headers`
        // and the routes' own annotations); `tests/api/cors.rs` holds the
        // exposed list to exactly the documented response headers.
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            X_REQUEST_ID,
            HeaderName::from_static(crate::http::idempotency::HEADER),
            header::IF_MATCH,
            header::IF_NONE_MATCH,
        ])
        .expose_headers([
            X_REQUEST_ID,
            header::RETRY_AFTER,
            header::CONTENT_DISPOSITION,
            header::ETAG,
            header::LOCATION,
            HeaderName::from_static(crate::http::idempotency::REPLAYED),
        ])
        .max_age(Duration::from_secs(600));
    Some(layer)
}

fn sane_request_id(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

async fn request_id<F>(mut req: Request, next: impl FnOnce(Request) -> F) -> Response
where
    F: Future<Output = Response>,
{
    let id: Arc<str> = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| sane_request_id(v))
        .map(Arc::from)
        .unwrap_or_else(|| Arc::from(uuid::Uuid::new_v4().to_string()));
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut res = next(req).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(X_REQUEST_ID, value);
    }
    res
}

/// `X-Content-Type-Options: nosniff` on every response, so a browser never
/// runs an uploaded file or an error body as something else; and
/// `Cache-Control: no-store` on every API response and every response to a
/// request that carried credentials, unless the handler set its own:
/// health data, tokens and the answers that depend on who asks stay out of
/// browser, proxy and CDN caches.
async fn security_headers<F>(req: Request, next: impl FnOnce(Request) -> F) -> Response
where
    F: Future<Output = Response>,
{
    let private = req.headers().contains_key(header::AUTHORIZATION)
        || req.uri().path().starts_with(crate::http::API_PREFIX);
    let mut res = next(req).await;
    let headers = res.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // A handler that chose a policy keeps it (the computed figures:
    // `private, no-cache`, see `http::freshness`).
    if private && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// Renders every error response in the contract's shape.
async fn error_envelope(req: Request, next: Next) -> Response {
    let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, _original_body) = response.into_parts();
    let mut body = match parts.extensions.remove::<RenderedError>() {
        Some(RenderedError { body, cause }) => {
            if let Some(cause) = cause {
                if status.is_server_error() {
                    tracing::error!(%cause, code = %body.code, "request failed");
                }
            }
            body
        }
        None => {
            if status.is_server_error() {
                tracing::error!(status = status.as_u16(), "request failed without a cause");
            }
            ErrorBody::for_status(status)
        }
    };
    body.request_id = request_id.map(|id| id.to_string());
    let bytes = serde_json::to_vec(&ErrorResponse { error: body }).unwrap_or_default();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_ENCODING);
    Response::from_parts(parts, Body::from(bytes))
}

#[derive(Clone, Copy)]
struct Timeouts {
    request: Duration,
    /// Document uploads and downloads, whose bytes stream within the
    /// request.
    transfer: Duration,
    /// The whole body of a document upload: the file's limit plus room for
    /// the form around it.
    upload_body: usize,
}

/// The route a document upload is made to.
pub const DOCUMENT_UPLOAD_ROUTE: &str = "/api/v1/patients/{id}/documents";
/// The route a document is downloaded from.
pub const DOCUMENT_CONTENT_ROUTE: &str = "/api/v1/documents/{id}/content";
/// Room for the multipart framing and text fields around a document.
const FORM_OVERHEAD: usize = 64 * 1024;

async fn timeout(State(limits): State<Timeouts>, mut req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let upload = req.method() == Method::POST && route == Some(DOCUMENT_UPLOAD_ROUTE);
    let download = req.method() == Method::GET && route == Some(DOCUMENT_CONTENT_ROUTE);
    if upload {
        // The upload route turns the JSON body limit off (the file is
        // bounded as it streams); this bounds the rest of the form, which
        // the multipart parser would otherwise buffer without limit.
        let (parts, body) = req.into_parts();
        let limited = http_body_util::Limited::new(body, limits.upload_body);
        req = Request::from_parts(parts, Body::new(limited));
    }
    let limit = if upload || download {
        limits.transfer
    } else {
        limits.request
    };
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => AppError::Timeout.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_from_clients_are_bounded() {
        assert!(sane_request_id("abc-123_x.y"));
        assert!(!sane_request_id(""));
        assert!(!sane_request_id(&"a".repeat(65)));
        assert!(!sane_request_id("a b"));
        assert!(!sane_request_id("<script>"));
    }
}
