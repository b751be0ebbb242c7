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

#[tokio::test]
async fn the_docs_page_is_served_from_the_binary_and_reads_the_document() {
    let app = TestApp::spawn().await;
    let bare = app.get("/docs").await;
    assert!(bare.status.is_redirection(), "{}", bare.status);
    assert_eq!(bare.header("location"), Some("/docs/"));

    let page = app.get("/docs/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/html")));
    let html = String::from_utf8_lossy(&page.body);
    // Every script and style sheet is relative: served here, not by a CDN.
    for asset in [
        "./swagger-ui.css",
        "./swagger-ui-bundle.js",
        "./swagger-initializer.js",
    ] {
        assert!(html.contains(asset), "{asset} in {html}");
        let served = app.get(&format!("/docs/{}", &asset[2..])).await;
        assert_eq!(served.status, StatusCode::OK, "{asset}");
    }
    assert!(!html.contains("https://"), "no absolute asset URL: {html}");

    let init = app.get("/docs/swagger-initializer.js").await;
    let init = String::from_utf8_lossy(&init.body);
    assert!(init.contains(r#""url": "/api/v1/openapi.json""#), "{init}");
    // The validator badge would send the document to validator.swagger.io.
    assert!(init.contains(r#""validatorUrl": "none""#), "{init}");
    assert_eq!(
        app.get("/docs/no-such-asset.js").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_document_names_its_server_and_the_report_names() {
    let app = TestApp::spawn().await;
    let doc = app.get("/api/v1/openapi.json").await.json();
    assert_eq!(doc["servers"][0]["url"], "/");
    let name = &doc["paths"]["/api/v1/reports/{name}"]["get"]["parameters"][0];
    assert_eq!(name["name"], "name");
    let listed: Vec<&str> = name["schema"]["enum"]
        .as_array()
        .expect("enum")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(listed, healthcrm::http::routes::reports::REPORTS);

    // Closed sets are enums: error codes, sort keys, report formats.
    let codes: Vec<&str> = doc["components"]["schemas"]["ErrorBody"]["properties"]["code"]["enum"]
        .as_array()
        .expect("error codes")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(codes, healthcrm::error::ERROR_CODES);
    let param = |path: &str, name: &str| -> serde_json::Value {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["schema"].clone())
            .unwrap_or_default()
    };
    // An optional inline enum: `oneOf: [null, {enum}]`, or the enum itself.
    let enum_of = |schema: serde_json::Value| -> serde_json::Value {
        let inner = schema["oneOf"]
            .as_array()
            .and_then(|alts| alts.iter().find(|a| a.get("enum").is_some()).cloned())
            .unwrap_or(schema);
        inner["enum"].clone()
    };
    assert_eq!(
        enum_of(param("/api/v1/patients", "sort")),
        serde_json::json!([
            "created_at",
            "-created_at",
            "updated_at",
            "-updated_at",
            "name",
            "-name"
        ])
    );
    assert_eq!(
        enum_of(param("/api/v1/reports/{name}", "format")),
        serde_json::json!(["json", "csv"])
    );
    // No reference may dangle.
    let text = doc.to_string();
    for (i, _) in text.match_indices("#/components/schemas/") {
        let name: String = text[i + 21..].chars().take_while(|c| *c != '"').collect();
        assert!(
            doc["components"]["schemas"].get(&name).is_some(),
            "dangling reference to {name}"
        );
    }
}

#[tokio::test]
async fn renamed_date_filters_are_marked_deprecated_beside_their_new_names() {
    let app = TestApp::spawn().await;
    let doc = app.get("/api/v1/openapi.json").await.json();
    let params = |path: &str| -> Vec<(String, bool)> {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap_or("").to_owned(),
                    p["deprecated"].as_bool().unwrap_or(false),
                )
            })
            .collect()
    };
    let patients = params("/api/v1/patients");
    for (name, deprecated) in [
        ("from", false),
        ("to", false),
        ("created_from", true),
        ("created_to", true),
    ] {
        assert!(
            patients.contains(&(name.to_owned(), deprecated)),
            "{name}: {patients:?}"
        );
    }
    let follow_ups = params("/api/v1/follow-ups");
    assert!(
        follow_ups.contains(&("to".to_owned(), false)),
        "{follow_ups:?}"
    );
    assert!(
        follow_ups.contains(&("due_before".to_owned(), true)),
        "{follow_ups:?}"
    );
    assert_eq!(
        healthcrm::http::params::DEPRECATED_PARAMS.len(),
        3,
        "every deprecated name is checked here"
    );
}
