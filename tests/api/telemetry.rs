//! Trace export (feature `otel`): the real binary, pointed at a stand-in
//! OTLP collector by OTEL_EXPORTER_OTLP_ENDPOINT, exports one server span
//! per request, named after its route template, with the request's
//! attributes and no PHI, and flushes the last ones when it stops.

use std::sync::{Arc, Mutex};

use axum::{
    body::Bytes,
    extract::State,
    http::{header, HeaderMap, StatusCode},
    routing::post,
    Router,
};
use serde_json::Value;

use crate::{crash::Server, helpers::TestApp};

type Posts = Arc<Mutex<Vec<(Option<String>, Bytes)>>>;

/// A collector on a free port that keeps every body posted to /v1/traces.
async fn collector() -> (String, Posts) {
    let posts = Posts::default();
    let app = Router::new()
        .route(
            "/v1/traces",
            post(
                |State(p): State<Posts>, headers: HeaderMap, body: Bytes| async move {
                    let ct = headers
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    p.lock().expect("lock").push((ct, body));
                    (
                        StatusCode::OK,
                        [(header::CONTENT_TYPE, "application/json")],
                        "{}",
                    )
                },
            ),
        )
        .with_state(posts.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), posts)
}

/// Every exported span with its resource.
fn spans(posts: &[(Option<String>, Bytes)]) -> Vec<(Value, Value)> {
    let mut out = Vec::new();
    for (_, body) in posts {
        let req: Value = serde_json::from_slice(body).expect("OTLP JSON");
        for rs in req["resourceSpans"].as_array().into_iter().flatten() {
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                for span in ss["spans"].as_array().into_iter().flatten() {
                    out.push((rs["resource"].clone(), span.clone()));
                }
            }
        }
    }
    out
}

fn attr<'a>(attrs: &'a Value, key: &str) -> Option<&'a Value> {
    attrs
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| &a["value"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_spans_reach_the_collector_when_the_server_stops() {
    let app = TestApp::spawn().await;
    let (endpoint, posts) = collector().await;
    // A long batch delay: what arrives comes from the flush at shutdown.
    let mut server = Server::start_with(
        app.db.name(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
        ],
    )
    .await;
    let http = reqwest::Client::new();
    let health = http
        .get(format!("{}/health", server.base))
        .header("x-request-id", "trace-me-1")
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), StatusCode::OK);
    let secret = "jane.doe.secret@example.com";
    let login = http
        .post(format!("{}/api/v1/auth/login", server.base))
        .json(&serde_json::json!({"email": secret, "password": "not the password"}))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), StatusCode::UNAUTHORIZED);
    assert!(
        posts.lock().expect("lock").is_empty(),
        "nothing before the batch is due"
    );
    let status = server.stop().await.expect("the server stops");
    assert!(status.success(), "{status:?}");

    let posts = posts.lock().expect("lock").clone();
    assert!(!posts.is_empty(), "the shutdown flushed the spans");
    assert!(posts
        .iter()
        .all(|(ct, _)| ct.as_deref() == Some("application/json")));
    let spans = spans(&posts);
    let (resource, span) = spans
        .iter()
        .find(|(_, s)| s["name"] == "GET /health")
        .unwrap_or_else(|| panic!("a GET /health span in {spans:?}"));
    assert_eq!(
        attr(&resource["attributes"], "service.name").expect("service")["stringValue"],
        "healthcrm"
    );
    let attrs = &span["attributes"];
    assert_eq!(
        attr(attrs, "route").expect("route")["stringValue"],
        "/health"
    );
    assert_eq!(attr(attrs, "method").expect("method")["stringValue"], "GET");
    assert_eq!(
        attr(attrs, "request_id").expect("request id")["stringValue"],
        "trace-me-1"
    );
    assert_eq!(
        attr(attrs, "status").expect("status")["stringValue"],
        "200",
        "{attrs}"
    );
    assert_eq!(span["kind"], 2, "a server span");
    assert_eq!(span["traceId"].as_str().map(str::len), Some(32));
    assert!(
        spans
            .iter()
            .any(|(_, s)| s["name"] == "POST /api/v1/auth/login"),
        "{spans:?}"
    );
    let everything: String = posts
        .iter()
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert!(!everything.contains(secret), "no e-mail in the traces");
}
