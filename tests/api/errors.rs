//! Every failure leaves in the contract's error shape with the request id.

use axum::{
    body::Body,
    http::{Method, Request, StatusCode},
    routing::post,
    Json, Router,
};
use healthcrm::http::extract::ApiJson;
use serde::Deserialize;
use serde_json::json;
use validator::Validate;

use crate::helpers::TestApp;

#[derive(Debug, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
struct Probe {
    #[validate(length(min = 1, max = 10))]
    name: String,
    count: u32,
}

async fn echo(ApiJson(p): ApiJson<Probe>) -> Json<serde_json::Value> {
    Json(json!({ "name": p.name, "count": p.count }))
}

/// The real middleware stack around one JSON route, to exercise the body
/// extractor's failure modes before any resource route exists for them.
fn probe_app(app: &TestApp) -> TestApp {
    let router =
        healthcrm::http::middleware::apply(Router::new().route("/probe", post(echo)), &app.config);
    TestApp::from_router(router, app)
}

#[tokio::test]
async fn unknown_route_is_404_in_the_error_shape() {
    let app = TestApp::spawn().await;
    let res = app.get("/api/v1/no-such-thing").await;
    res.assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn wrong_method_is_405_in_the_error_shape() {
    let app = TestApp::spawn().await;
    let res = app.send(Method::DELETE, "/health", None).await;
    res.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert!(res.header("allow").is_some_and(|a| a.contains("GET")));
}

#[tokio::test]
async fn request_id_is_generated_or_echoed() {
    let app = TestApp::spawn().await;
    let res = app.get("/health").await;
    let generated = res.header("x-request-id").expect("generated id");
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
    // Also outside the API's routes, as the OpenAPI document says of every
    // response: the docs page, /metrics (404 without METRICS_TOKEN), the
    // document itself.
    for (path, status) in [
        ("/docs/", StatusCode::OK),
        ("/metrics", StatusCode::NOT_FOUND),
        ("/api/v1/openapi.json", StatusCode::OK),
    ] {
        let res = app.get(path).await;
        assert_eq!(res.status, status, "{path}");
        assert!(res.header("x-request-id").is_some(), "{path}");
    }

    let req = Request::get("/health")
        .header("x-request-id", "client-id-42")
        .body(Body::empty());
    let res = app.request(req.expect("request")).await;
    assert_eq!(res.header("x-request-id"), Some("client-id-42"));

    // A hostile id is replaced, not echoed.
    let req = Request::get("/nowhere")
        .header("x-request-id", "a".repeat(200))
        .body(Body::empty());
    let res = app.request(req.expect("request")).await;
    let error = res.assert_error(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(error["request_id"].as_str().map(str::len), Some(36));
}

#[tokio::test]
async fn well_formed_body_passes() {
    let base = TestApp::spawn().await;
    let app = probe_app(&base);
    let res = app
        .post_json("/probe", &json!({"name": "x", "count": 2}))
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json(), json!({"name": "x", "count": 2}));
}

#[tokio::test]
async fn malformed_json_is_400() {
    let base = TestApp::spawn().await;
    let app = probe_app(&base);
    for body in [
        &b"{\"name\": "[..],
        b"not json",
        b"\xff\xfe\xfd",
        b"{\"name\":\"a\",\"count\":1} trailing",
    ] {
        let res = app
            .post_raw("/probe", Some("application/json"), body.to_vec())
            .await;
        res.assert_error(StatusCode::BAD_REQUEST, "malformed_json");
    }
}

#[tokio::test]
async fn deeply_nested_json_is_refused_cleanly() {
    let base = TestApp::spawn().await;
    let app = probe_app(&base);
    // serde_json stops at 128 levels; the deserializer may refuse the shape
    // even earlier. Either way: a 4xx in the error shape, no stack overflow.
    for deep in [
        "[".repeat(100_000) + &"]".repeat(100_000),
        format!(
            "{{\"name\": {}\"x\"{}, \"count\": 1}}",
            "[".repeat(5_000),
            "]".repeat(5_000)
        ),
    ] {
        let res = app.post_raw("/probe", Some("application/json"), deep).await;
        assert!(res.status.is_client_error(), "{}", res.status);
        let code = res.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            code == "malformed_json" || code == "validation_failed",
            "{code}"
        );
    }
}

#[tokio::test]
async fn wrong_shape_is_422_with_the_field_named() {
    let base = TestApp::spawn().await;
    let app = probe_app(&base);
    let cases = [
        (json!({"name": "x"}), "body"),
        (json!({"name": "x", "count": "two"}), "count"),
        (json!({"name": "x", "count": -1}), "count"),
        (json!({"name": "x", "count": 1, "role": "admin"}), "role"),
        (json!({"name": "", "count": 1}), "name"),
        (json!({"name": "x".repeat(11), "count": 1}), "name"),
        (json!([1, 2]), "body"),
    ];
    for (body, field) in cases {
        let res = app.post_json("/probe", &body).await;
        let error = res.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(error["details"].get(field).is_some(), "{body} -> {error}");
    }
}

#[tokio::test]
async fn wrong_or_missing_content_type_is_415() {
    let base = TestApp::spawn().await;
    let app = probe_app(&base);
    let body = br#"{"name":"x","count":1}"#.to_vec();
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let res = app.post_raw("/probe", ct, body.clone()).await;
        res.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    }
}

#[tokio::test]
async fn oversized_body_is_413() {
    let base = TestApp::spawn_with(&[("BODY_LIMIT_BYTES", "4096")]).await;
    let app = probe_app(&base);
    let big = json!({"name": "x", "count": 1, "pad": "y".repeat(10_000)});
    let res = app.post_json("/probe", &big).await;
    res.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
}

#[tokio::test]
async fn slow_handlers_time_out_with_504() {
    let base = TestApp::spawn_with(&[("REQUEST_TIMEOUT_SECS", "1")]).await;
    let router = healthcrm::http::middleware::apply(
        Router::new().route(
            "/slow",
            post(|| async {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                "done"
            }),
        ),
        &base.config,
    );
    let app = TestApp::from_router(router, &base);
    let res = app.post_raw("/slow", None, Vec::new()).await;
    res.assert_error(StatusCode::GATEWAY_TIMEOUT, "timeout");
}

#[tokio::test]
async fn panics_become_500_without_internals() {
    let base = TestApp::spawn().await;
    let router = healthcrm::http::middleware::apply(
        Router::new().route(
            "/boom",
            post(|| async {
                let v: Vec<u8> = Vec::new();
                #[allow(clippy::indexing_slicing)]
                let x = v[3];
                x.to_string()
            }),
        ),
        &base.config,
    );
    let app = TestApp::from_router(router, &base);
    let res = app.post_raw("/boom", None, Vec::new()).await;
    let error = res.assert_error(StatusCode::INTERNAL_SERVER_ERROR, "internal");
    assert!(!error["message"]
        .as_str()
        .unwrap_or_default()
        .contains("index"));
}

#[tokio::test]
async fn validation_messages_say_what_each_rule_wants() {
    let app = crate::helpers::TestApp::spawn().await;
    let admin = app.login_as(healthcrm::domain::user::Role::Admin).await;
    let res = app
        .post_as(
            &admin,
            "/api/v1/hospitals",
            &serde_json::json!({"name": "Rules Hospital", "location": "Izmir", "country": "TR",
                                "commission_bps": 20000, "currency": "EUR"}),
        )
        .await;
    let body = res.assert_error(
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(
        body["details"]["commission_bps"],
        serde_json::json!(["must be between 0 and 10000"])
    );
    assert_eq!(
        body["message"],
        "commission_bps must be between 0 and 10000"
    );
    let res = app
        .post_as(
            &admin,
            "/api/v1/patients",
            &serde_json::json!({"name": "Old", "country": "DE", "age": 200}),
        )
        .await;
    let body = res.assert_error(
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(
        body["details"]["age"],
        serde_json::json!(["must be at most 130"])
    );
}
