//! Faults: the database goes away mid-run and comes back.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use axum::http::StatusCode;
use healthcrm::domain::user::Role;
use serde_json::json;

use crate::helpers::TestApp;

/// A database of this test's own, on a free port, that it can kill.
struct OwnDatabase {
    port: u16,
    dir: std::path::PathBuf,
    child: Option<Child>,
}

impl OwnDatabase {
    fn start() -> OwnDatabase {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("addr")
            .port();
        let dir = std::env::temp_dir().join(format!(
            "healthcrm-fault-{port}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        let mut db = OwnDatabase {
            port,
            dir,
            child: None,
        };
        db.spawn();
        db
    }

    fn spawn(&mut self) {
        let bin = std::env::var("NX_27017_BIN")
            .unwrap_or_else(|_| format!("{}/.local/venv/bin/nx-27017", env!("CARGO_MANIFEST_DIR")));
        let child = Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .arg("--pid-file")
            .arg(self.dir.join("pid"))
            .arg("--log-file")
            .arg(self.dir.join("log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin} (run scripts/test.sh): {e}"));
        self.child = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "database did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}/?directConnection=true", self.port)
    }
}

impl Drop for OwnDatabase {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn a_lost_database_answers_503_promptly_and_service_resumes_by_itself() {
    let mut db = OwnDatabase::start();
    let uri = db.uri();
    let app = TestApp::spawn_on(&uri, &[("MONGODB_TIMEOUT_MS", "1000")]).await;
    let staff = app.login_as(Role::Staff).await;
    let res = app
        .post_as(
            &staff,
            "/api/v1/patients",
            &json!({"name": "Before Outage", "country": "GB"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
    let id = res.json()["id"].as_str().expect("id").to_owned();

    db.kill();
    let started = Instant::now();
    app.get("/ready")
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE, "service_unavailable");
    app.get_as(&staff, &format!("/api/v1/patients/{id}"))
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE, "service_unavailable");
    let res = app
        .post_as(
            &staff,
            "/api/v1/patients",
            &json!({"name": "During Outage", "country": "GB"}),
        )
        .await;
    res.assert_error(StatusCode::SERVICE_UNAVAILABLE, "service_unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "no hang past the timeout: {:?}",
        started.elapsed()
    );
    assert_eq!(
        app.get("/health").await.status,
        StatusCode::OK,
        "liveness is unaffected"
    );

    db.spawn();
    let mut ready = false;
    for _ in 0..50 {
        if app.get("/ready").await.status == StatusCode::OK {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ready, "service resumes by itself");
    let got = app.get_as(&staff, &format!("/api/v1/patients/{id}")).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.json()["name"], "Before Outage");
    // Nothing acknowledged that was not written, nothing written that was refused.
    let during = app.get_as(&staff, "/api/v1/patients?q=during").await.json();
    assert_eq!(during["total"], 0);
    let res = app
        .post_as(
            &staff,
            "/api/v1/patients",
            &json!({"name": "After Outage", "country": "GB"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
}

#[tokio::test]
async fn graceful_shutdown_completes_in_flight_requests_and_their_audit_writes() {
    let app = TestApp::spawn().await;
    let staff = app.login_as(Role::Staff).await;
    let state = healthcrm::AppState::new(app.db.clone(), app.config.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(healthcrm::server::serve(listener, state, async {
        let _ = stopped.await;
    }));

    let http = reqwest::Client::new();
    let requests: Vec<_> = (0..20)
        .map(|i| {
            let (http, base, token) = (http.clone(), base.clone(), staff.token.clone());
            tokio::spawn(async move {
                http.post(format!("{base}/api/v1/patients"))
                    .bearer_auth(token)
                    .json(&json!({"name": format!("In Flight {i}"), "country": "GB"}))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            })
        })
        .collect();
    // Let the requests reach the server, then ask it to stop while they run.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let _ = stop.send(());
    for r in requests {
        assert_eq!(r.await.expect("task").expect("completed, not dropped"), 201);
    }
    server.await.expect("server task").expect("clean shutdown");

    // Every request was stored, and its audit event written before serve returned.
    let total = app
        .get_as(&staff, "/api/v1/patients?q=in%20flight")
        .await
        .json()["total"]
        .clone();
    assert_eq!(total, 20);
    let filter = healthcrm::repo::audit::AuditFilter {
        action: Some("patients.create".into()),
        ..Default::default()
    };
    let page = healthcrm::repo::PageRequest {
        page: 1,
        per_page: 100,
    };
    let (events, _) = app.repos().audit.list(&filter, page).await.expect("audit");
    assert_eq!(events.len(), 20);
    // And the listener is gone.
    assert!(http.get(format!("{base}/health")).send().await.is_err());
}
