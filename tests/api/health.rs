use axum::http::StatusCode;

use crate::helpers::TestApp;

#[tokio::test]
async fn health_is_ok_without_auth() {
    let app = TestApp::spawn().await;
    let res = app.get("/health").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json()["status"], "ok");
    assert_eq!(res.json()["version"], env!("CARGO_PKG_VERSION"));
    // The commit this checkout is at, as git reports it.
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git");
    let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
    assert_eq!(res.json()["commit"], head.as_str());
}

#[tokio::test]
async fn ready_when_the_database_answers() {
    let app = TestApp::spawn().await;
    let res = app.get("/ready").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json()["status"], "ready");
}

#[tokio::test]
async fn not_ready_when_the_database_is_unreachable() {
    let app = TestApp::spawn_unreachable_db().await;
    let started = std::time::Instant::now();
    let res = app.get("/ready").await;
    let error = res.assert_error(StatusCode::SERVICE_UNAVAILABLE, "service_unavailable");
    // The cause (driver message, address) is logged, not sent.
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        !message.contains("127.0.0.1"),
        "no internals in the body: {message}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "answers promptly"
    );
    // Liveness does not depend on the database.
    assert_eq!(app.get("/health").await.status, StatusCode::OK);
}

#[tokio::test]
async fn openapi_document_is_served_and_lists_the_routes() {
    let app = TestApp::spawn().await;
    let res = app.get("/api/v1/openapi.json").await;
    assert_eq!(res.status, StatusCode::OK);
    let doc = res.json();
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    for path in ["/health", "/ready"] {
        assert!(doc["paths"].get(path).is_some(), "{path} documented");
    }
    assert!(doc["components"]["schemas"].get("ErrorResponse").is_some());
}
