//! A server process killed (SIGKILL) in the middle of a burst of 120
//! concurrent treatment completions loses no money: after a restart every
//! completed treatment has exactly one credit.
//!
//! MongoDB aborts the transactions of a dead client; the local stand-in
//! keeps their writes, so a completion can be left without its credit.
//! Either way the restarted server's consistency check (DOCTOR_ON_START,
//! default repair) books what is missing before it serves.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use axum::http::StatusCode;
use futures::TryStreamExt;
use healthcrm::domain::user::Role;
use mongodb::bson::{doc, Document};
use serde_json::json;

use crate::{
    helpers::{mongodb_uri, test_document_dir, TestApp, TEST_DOCUMENT_KEY, TEST_JWT_SECRET},
    hospitals::create_hospital,
};

const TREATMENTS: usize = 120;

/// The server binary, run as a user would run it.
pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    pub async fn start(db_name: &str) -> Server {
        Self::start_with(db_name, &[]).await
    }

    /// Started with `env` on top of the test settings.
    pub async fn start_with(db_name: &str, env: &[(&str, &str)]) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("addr")
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_healthcrm"))
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("MONGODB_URI", mongodb_uri())
            .env("MONGODB_DB", db_name)
            .env("JWT_SECRET", TEST_JWT_SECRET)
            .env("DOCUMENT_KEY", TEST_DOCUMENT_KEY)
            .env("DOCUMENT_STORE", test_document_dir(db_name))
            .env("DOCTOR_ON_START", "repair")
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the server");
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(r) = http.get(format!("{}/ready", server.base)).send().await {
                if r.status() == StatusCode::OK {
                    return server;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the server did not get ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then waits (without blocking the runtime) for the drain
    /// and exit; the exit status, or `None` after 30 s.
    pub async fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    pub fn kill(&mut self) {
        // std's kill is SIGKILL on Unix: no shutdown, no drain.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn count_completed(app: &TestApp) -> u64 {
    app.db
        .collection::<Document>("treatments")
        .count_documents(doc! { "status": "completed" })
        .await
        .expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_burst_leaves_every_completed_treatment_with_one_credit() {
    let db_name = format!("t_crash_{}", uuid::Uuid::new_v4().simple());
    // The database is not dropped at the end: the stand-in may still hold
    // the dead server's open transaction on it.
    let app = TestApp::spawn_on(&mongodb_uri(), &[("MONGODB_DB", &db_name)]).await;
    let admin = app.login_as(Role::Admin).await;
    let staff = app.login_as(Role::Staff).await;
    let hospital = create_hospital(&app, &admin, "Crash Hospital").await;
    let patient = app
        .post_as(
            &staff,
            "/api/v1/patients",
            &json!({"name": "Burst", "country": "NL"}),
        )
        .await
        .json()["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut ids = Vec::new();
    for _ in 0..TREATMENTS {
        let res = app
            .post_as(
                &staff,
                &format!("/api/v1/patients/{patient}/treatments"),
                &json!({"treatment_type": "hip", "disease": "arthrosis", "hospital_id": hospital,
                       "cost": {"amount_minor": 10_000, "currency": "EUR"},
                       "earnings": {"amount_minor": 1_000, "currency": "EUR"},
                       "status": "in_progress"}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED);
        ids.push(res.json()["id"].as_str().expect("id").to_owned());
    }

    let mut server = Server::start(&db_name).await;
    let http = reqwest::Client::new();
    let burst: Vec<_> = ids
        .iter()
        .map(|id| {
            let request = http
                .patch(format!("{}/api/v1/treatments/{id}", server.base))
                .bearer_auth(&staff.token)
                .json(&json!({"version": 1, "status": "completed"}));
            tokio::spawn(async move { request.send().await.map(|r| r.status()) })
        })
        .collect();
    // Kill it once completions are landing: mid-burst however fast or slow
    // this machine and build are.
    let started = Instant::now();
    while count_completed(&app).await < 10 && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill();
    let mut answered = 0;
    for call in burst {
        if matches!(call.await, Ok(Ok(s)) if s == StatusCode::OK) {
            answered += 1;
        }
    }

    let restarted = Server::start(&db_name).await;
    let treatments: Vec<Document> = app
        .db
        .collection::<Document>("treatments")
        .find(doc! {})
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("collect");
    let mut completed = 0;
    for t in &treatments {
        let id = t.get_str("_id").expect("id");
        let credits = app
            .db
            .collection::<Document>("earnings")
            .count_documents(doc! { "treatment_id": id, "kind": "credit" })
            .await
            .expect("count");
        if t.get_str("status") == Ok("completed") {
            completed += 1;
            assert_eq!(credits, 1, "completed treatment {id} has {credits} credits");
        } else {
            assert_eq!(
                credits, 0,
                "treatment {id} is not completed yet has a credit"
            );
        }
    }
    assert!(
        completed >= answered,
        "every answered completion is kept ({completed} completed, {answered} answered)"
    );
    assert!(
        completed > 0,
        "the burst completed something before the kill"
    );
    drop(restarted);
}

/// `healthcrm healthcheck`, the container health check: 0 against a
/// ready server (also when BIND_ADDR is a wildcard), 1 where nothing
/// listens.
#[tokio::test]
async fn the_healthcheck_command_reports_readiness() {
    let db_name = format!("t_crash_{}", uuid::Uuid::new_v4().simple());
    let server = Server::start(&db_name).await;
    let port = server.base.rsplit(':').next().expect("port").to_owned();
    let check = |bind: String| {
        std::process::Command::new(env!("CARGO_BIN_EXE_healthcrm"))
            .arg("healthcheck")
            .env("BIND_ADDR", bind)
            .output()
            .expect("run healthcheck")
    };
    let ready = check(format!("0.0.0.0:{port}"));
    assert!(
        ready.status.success(),
        "{}",
        String::from_utf8_lossy(&ready.stderr)
    );
    drop(server);
    let down = check(format!("127.0.0.1:{port}"));
    assert_eq!(down.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&down.stderr).contains("cannot connect"));
    let client = mongodb::Client::with_uri_str(mongodb_uri())
        .await
        .expect("client");
    client.database(&db_name).drop().await.expect("drop");
}
