//! Cross-origin calls: refused (no CORS headers at all) unless
//! `CORS_ORIGINS` lists the SPA's origin, and then allowed with every
//! request header the contract has a client send and every response header
//! it has a client read.

use std::collections::BTreeSet;

use axum::{
    body::Body,
    http::{header, Method, Request, StatusCode},
};
use healthcrm::domain::user::Role;
use serde_json::Value;

use crate::helpers::{TestApp, TestResponse};

const SPA: &str = "https://crm.example";

/// The browser's preflight for a keyed, versioned write from `origin`.
async fn preflight(app: &TestApp, origin: &str) -> TestResponse {
    let req = Request::builder()
        .method(Method::OPTIONS)
        .uri("/api/v1/patients")
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "authorization,content-type,idempotency-key,if-match,if-none-match,x-request-id",
        )
        .body(Body::empty())
        .expect("request");
    app.request(req).await
}

/// `GET /api/v1/patients` from `origin`, signed in.
async fn list_from(app: &TestApp, origin: &str) -> TestResponse {
    let session = app.login_as(Role::Admin).await;
    let req = Request::builder()
        .uri("/api/v1/patients")
        .header(header::ORIGIN, origin)
        .header(header::AUTHORIZATION, format!("Bearer {}", session.token))
        .body(Body::empty())
        .expect("request");
    let res = app.request(req).await;
    assert_eq!(res.status, StatusCode::OK);
    res
}

fn listed(res: &TestResponse, name: &header::HeaderName) -> Vec<String> {
    res.headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_ascii_lowercase())
        .collect()
}

/// Asserts that header `name` of `res` lists each of `expected`.
#[track_caller]
fn assert_lists(res: &TestResponse, name: &header::HeaderName, expected: &[&str]) {
    let listed = listed(res, name);
    for e in expected {
        assert!(
            listed.contains(&(*e).to_owned()),
            "{e} not in {name}: {listed:?}"
        );
    }
}

#[tokio::test]
async fn without_cors_origins_no_cross_origin_call_is_allowed() {
    let app = TestApp::spawn().await;
    // Routed like any method the route lacks, in the error shape.
    let pre = preflight(&app, SPA).await;
    pre.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert!(pre.header("access-control-allow-origin").is_none());
    assert!(pre.header("access-control-allow-headers").is_none());

    let res = list_from(&app, SPA).await;
    assert!(res.header("access-control-allow-origin").is_none());
    assert!(res.header("access-control-expose-headers").is_none());
    assert!(
        !listed(&res, &header::VARY).contains(&"origin".into()),
        "nothing varies by origin"
    );
}

#[tokio::test]
async fn the_listed_origin_may_send_and_read_every_header_the_contract_uses() {
    let app = TestApp::spawn_with(&[("CORS_ORIGINS", SPA)]).await;
    let pre = preflight(&app, SPA).await;
    assert_eq!(pre.status, StatusCode::OK);
    assert_eq!(pre.header("access-control-allow-origin"), Some(SPA));
    assert_lists(
        &pre,
        &header::ACCESS_CONTROL_ALLOW_METHODS,
        &["get", "post", "put", "patch", "delete"],
    );
    assert_lists(
        &pre,
        &header::ACCESS_CONTROL_ALLOW_HEADERS,
        &[
            "authorization",
            "content-type",
            "idempotency-key",
            "if-match",
            "if-none-match",
            "x-request-id",
        ],
    );
    assert_eq!(pre.header("access-control-max-age"), Some("600"));

    let res = list_from(&app, SPA).await;
    assert_eq!(res.header("access-control-allow-origin"), Some(SPA));
    assert_lists(
        &res,
        &header::ACCESS_CONTROL_EXPOSE_HEADERS,
        &[
            "x-request-id",
            "etag",
            "location",
            "idempotent-replayed",
            "retry-after",
            "content-disposition",
        ],
    );
    assert_lists(&res, &header::VARY, &["origin"]);
}

#[tokio::test]
async fn another_origin_is_not_allowed() {
    let app = TestApp::spawn_with(&[("CORS_ORIGINS", SPA)]).await;
    let pre = preflight(&app, "https://elsewhere.example").await;
    assert!(pre.header("access-control-allow-origin").is_none());
    let res = list_from(&app, "https://elsewhere.example").await;
    assert!(res.header("access-control-allow-origin").is_none());
}

/// Every header the served OpenAPI document has a client send (a header
/// parameter) and read (a response header), lower-cased.
fn documented_headers(doc: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut sent, mut read) = (BTreeSet::new(), BTreeSet::new());
    let paths = doc["paths"].as_object().expect("the document's paths");
    for item in paths.values() {
        let operations = item.as_object().into_iter().flat_map(|i| i.values());
        // A path item's own `parameters` apply to all its operations.
        let parameters = operations
            .clone()
            .chain(std::iter::once(item))
            .filter_map(|o| o["parameters"].as_array())
            .flatten();
        for p in parameters {
            // A `$ref` would hide its header from this walk: refuse it here.
            assert!(p.get("$ref").is_none(), "a parameter by reference: {p}");
            if p["in"] == "header" {
                let name = p["name"].as_str().expect("a header's name");
                sent.insert(name.to_ascii_lowercase());
            }
        }
        let responses = operations
            .filter_map(|o| o["responses"].as_object())
            .flat_map(|r| r.values());
        for response in responses {
            assert!(
                response.get("$ref").is_none(),
                "a response by reference: {response}"
            );
            if let Some(headers) = response["headers"].as_object() {
                read.extend(headers.keys().map(|h| h.to_ascii_lowercase()));
            }
        }
    }
    (sent, read)
}

#[tokio::test]
async fn every_header_the_document_names_crosses_origins() {
    let app = TestApp::spawn_with(&[("CORS_ORIGINS", SPA)]).await;
    let doc = app.get("/api/v1/openapi.json").await.json();
    let (sent, read) = documented_headers(&doc);
    // The walk finds what the contract documents today; a header added to
    // the document later must be added to the CORS lists too.
    for h in ["idempotency-key", "if-match", "if-none-match"] {
        assert!(sent.contains(h), "{h} not documented as sent: {sent:?}");
    }
    // The exposed list is exactly the documented response headers: nothing
    // exposed that a generated client cannot know of, nothing documented but
    // hidden. (That each is documented where the server sets it is
    // `conventions::the_document_names_each_conventional_header_where_it_is_set`.)
    let everything_read = [
        "content-disposition",
        "etag",
        "idempotent-replayed",
        "location",
        "retry-after",
        "x-request-id",
    ];
    assert_eq!(
        read.iter().map(String::as_str).collect::<Vec<_>>(),
        everything_read,
        "the response headers the document names"
    );
    let sent: Vec<&str> = sent.iter().map(String::as_str).collect();
    assert_lists(
        &preflight(&app, SPA).await,
        &header::ACCESS_CONTROL_ALLOW_HEADERS,
        &sent,
    );
    let mut exposed = listed(
        &list_from(&app, SPA).await,
        &header::ACCESS_CONTROL_EXPOSE_HEADERS,
    );
    exposed.sort();
    assert_eq!(exposed, everything_read);
}
