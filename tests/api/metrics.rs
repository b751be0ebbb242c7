//! `GET /metrics`: off (404) without `METRICS_TOKEN`, behind its own bearer
//! token with it, in the Prometheus text format, labelled by route
//! template, and free of anything a patient or a user could be known by.

use axum::{
    body::Body,
    http::{header, Method, Request, StatusCode},
};
use healthcrm::domain::user::Role;
use serde_json::json;

use crate::helpers::{TestApp, TestResponse};

const TOKEN: &str = "metrics-token-for-the-tests-0123";

async fn scrape(app: &TestApp, authorization: Option<&str>) -> TestResponse {
    let mut req = Request::builder().method(Method::GET).uri("/metrics");
    if let Some(a) = authorization {
        req = req.header(header::AUTHORIZATION, a);
    }
    app.request(req.body(Body::empty()).expect("request")).await
}

#[tokio::test]
async fn metrics_are_off_without_a_token() {
    let app = TestApp::spawn().await;
    scrape(&app, None)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    scrape(&app, Some(&format!("Bearer {TOKEN}")))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    // Not routed at all: no 405 gives it away either.
    let post = Request::builder()
        .method(Method::POST)
        .uri("/metrics")
        .body(Body::empty())
        .expect("request");
    app.request(post)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

/// Asserts that the server refuses to start with `key` set to `value`,
/// naming the setting.
fn assert_refused(key: &str, value: &str) {
    let err = healthcrm::config::Config::from_lookup(|k| match k {
        "JWT_SECRET" => Some("x".repeat(48)),
        "DOCUMENT_KEY" => Some("ab".repeat(32)),
        k if k == key => Some(value.into()),
        _ => None,
    })
    .expect_err("refused");
    assert!(err.0.iter().any(|e| e.contains(key)), "{:?}", err.0);
}

#[tokio::test]
async fn a_short_metrics_token_is_refused_at_start() {
    assert_refused("METRICS_TOKEN", "short");
}

#[tokio::test]
async fn metrics_need_their_token_and_name_routes_not_records() {
    let app = TestApp::spawn_with(&[("METRICS_TOKEN", TOKEN), ("METRICS_DB_COMMANDS", "on")]).await;
    scrape(&app, None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    scrape(&app, Some("Bearer not-the-metrics-token-at-all"))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    // An API token is not a metrics token.
    let admin = app.login_as(Role::Admin).await;
    scrape(&app, Some(&format!("Bearer {}", admin.token)))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");

    let name = "Metricsprobe Zyxwv";
    let created = app
        .post_as(
            &admin,
            "/api/v1/patients",
            &json!({"name": name, "country": "GB", "medical_history": ["asthma"],
                    "contact": {"email": "metricsprobe@example.com"}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.json()["id"].as_str().expect("id").to_owned();
    let read = app.get_as(&admin, &format!("/api/v1/patients/{id}")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(
        app.get_as(&admin, "/api/v1/patients/000000000000000000000000")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    app.get_as(&admin, "/api/v1/dashboard").await;
    app.get_as(&admin, "/api/v1/dashboard").await;
    // A made-up method is counted as `other`, never as a label of its own.
    let odd = Request::builder()
        .method(Method::from_bytes(b"MADEUPMETHOD").expect("method"))
        .uri("/health")
        .body(Body::empty())
        .expect("request");
    app.request(odd).await;
    app.settle_background().await;

    let res = scrape(&app, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")));
    let text = String::from_utf8_lossy(&res.body);
    for wanted in [
        r#"healthcrm_http_requests_total{method="GET",route="/api/v1/patients/{id}",status="200"}"#,
        r#"healthcrm_http_requests_total{method="GET",route="/api/v1/patients/{id}",status="404"}"#,
        r#"healthcrm_http_requests_total{method="POST",route="/api/v1/patients",status="201"}"#,
        r#"healthcrm_http_request_duration_seconds_bucket{method="GET",route="/api/v1/patients/{id}",status="200",le="0.005"}"#,
        r#"healthcrm_db_command_duration_seconds_bucket{command="insert",outcome="ok",le="#,
        r#"healthcrm_db_command_duration_seconds_count{command="find",outcome="ok"}"#,
        r#"healthcrm_db_pool_checkout_seconds_bucket{outcome="ok",le="#,
        r#"healthcrm_password_hash_wait_seconds_count{outcome="ran"}"#,
        r#"healthcrm_cache_lookups_total{cache="dashboard",result="hit"}"#,
        r#"healthcrm_cache_lookups_total{cache="dashboard",result="miss"}"#,
        r#"healthcrm_cache_lookups_total{cache="permissions",result="hit"}"#,
        "# TYPE healthcrm_audit_queue_depth gauge",
        r#"healthcrm_http_requests_total{method="other",route="/health",status="405"}"#,
    ] {
        assert!(text.contains(wanted), "{wanted} missing from:\n{text}");
    }
    for secret in [
        id.as_str(),
        name,
        "Metricsprobe",
        "metricsprobe@example.com",
        admin.token.as_str(),
        TOKEN,
        "MADEUPMETHOD",
    ] {
        assert!(!text.contains(secret), "{secret} leaked into /metrics");
    }
}

/// The operations counted so far: the sum of the checkout histogram's
/// `ok` counts in a scrape.
async fn checkouts(app: &TestApp) -> f64 {
    let res = scrape(app, Some(&format!("Bearer {TOKEN}"))).await;
    String::from_utf8_lossy(&res.body)
        .lines()
        .filter(|l| l.starts_with(r#"healthcrm_db_pool_checkout_seconds_count{outcome="ok"}"#))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn operations_are_counted_by_their_connection_checkouts() {
    let app = TestApp::spawn_with(&[("METRICS_TOKEN", TOKEN)]).await;
    let admin = app.login_as(Role::Admin).await;
    let created = app
        .post_as(
            &admin,
            "/api/v1/patients",
            &json!({"name": "Poolcount Probe", "country": "GB"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.json()["id"].as_str().expect("id").to_owned();
    app.settle_background().await;
    let before = checkouts(&app).await;
    assert!(before > 0.0, "no checkouts counted");
    for _ in 0..3 {
        let read = app.get_as(&admin, &format!("/api/v1/patients/{id}")).await;
        assert_eq!(read.status, StatusCode::OK);
    }
    app.settle_background().await;
    let after = checkouts(&app).await;
    // Each read is one find; their audit events are written afterwards.
    // (The recorder is the process's, shared with the other tests: the
    // count can only have grown more. `db::tests` checks which driver
    // monitors each setting installs.)
    assert!(after >= before + 3.0, "three reads, {before} then {after}");
}

#[tokio::test]
async fn the_command_metrics_switch_takes_on_or_off_only() {
    assert_refused("METRICS_DB_COMMANDS", "yes");
    assert_refused("METRICS_DB_COMMANDS", "true");
}

/// The server binary's `/metrics`, scraped over HTTP.
async fn scrape_process(server: &crate::crash::Server) -> String {
    let res = reqwest::Client::new()
        .get(format!("{}/metrics", server.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("scrape");
    assert_eq!(res.status(), StatusCode::OK);
    res.text().await.expect("body")
}

#[tokio::test]
async fn the_server_runs_as_many_runtime_workers_as_worker_threads_says() {
    // Unset, the runtime has tokio's own TOKIO_WORKER_THREADS if this
    // process has it (the server inherits it), else one per core.
    let default = std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    for (setting, workers) in [(Some("1"), 1), (Some("3"), 3), (None, default)] {
        // The app only for its database, dropped with it.
        let app = TestApp::spawn().await;
        let mut env = vec![("METRICS_TOKEN", TOKEN)];
        // Empty is unset, and keeps a developer's `.env` from setting it.
        env.push(("WORKER_THREADS", setting.unwrap_or("")));
        let mut server = crate::crash::Server::start_with(app.db.name(), &env).await;
        let body = scrape_process(&server).await;
        server.stop().await;
        let line = format!("healthcrm_runtime_workers {workers}");
        assert!(
            body.lines().any(|l| l == line),
            "WORKER_THREADS={setting:?}: no {line:?} in\n{body}"
        );
    }
}

#[tokio::test]
async fn a_worker_count_outside_1_to_1024_is_refused_at_start() {
    for bad in ["0", "1025", "many"] {
        assert_refused("WORKER_THREADS", bad);
    }
}
