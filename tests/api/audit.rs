//! The audit trail under abuse: calls without a valid token are tallied per
//! client and minute, junk path parameters are never stored, and a flood of
//! unauthenticated calls leaves the collection and the server's memory
//! bounded.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use futures::StreamExt;
use healthcrm::domain::user::Role;
use mongodb::bson::{doc, Document};
use serde_json::json;

use crate::{
    crash::Server,
    helpers::{test_config, TestApp},
};

/// A tally's count (an integer of either width, as the server stored it).
fn count(details: &Document) -> i64 {
    match details.get("count") {
        Some(mongodb::bson::Bson::Int64(n)) => *n,
        Some(mongodb::bson::Bson::Int32(n)) => i64::from(*n),
        other => panic!("count is {other:?}"),
    }
}

async fn events(app: &TestApp, filter: Document) -> Vec<Document> {
    use futures::TryStreamExt;
    app.db
        .collection::<Document>("audit_events")
        .find(filter)
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("events")
}

#[tokio::test]
async fn refused_calls_without_a_token_are_tallied_not_logged_one_by_one() {
    let app = TestApp::spawn().await;
    let staff = app.login_as(Role::Staff).await;
    let res = app
        .post_as(
            &staff,
            "/api/v1/patients",
            &json!({"name": "Real Patient", "country": "GB"}),
        )
        .await;
    let id = res.json()["id"].as_str().expect("id").to_owned();
    app.settle_background().await;
    let before = events(&app, doc! {}).await.len();
    for _ in 0..30 {
        app.get(&format!("/api/v1/patients/{id}/history"))
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    app.send_as(
        Some("not-a-token"),
        axum::http::Method::GET,
        "/api/v1/patients",
        None,
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    // A method the route lacks is answered before authentication: tallied too.
    for _ in 0..3 {
        app.send(
            axum::http::Method::PUT,
            &format!("/api/v1/patients/{id}"),
            None,
        )
        .await
        .assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    }
    app.settle_background().await;
    let all = events(&app, doc! {}).await;
    assert_eq!(all.len() - before, 3, "one tally per route: {all:?}");
    let lacking = events(&app, doc! { "method": "PUT" }).await;
    assert_eq!(lacking.len(), 1);
    assert_eq!(
        count(lacking[0].get_document("details").expect("details")),
        3
    );
    let tally = events(&app, doc! { "route": "/api/v1/patients/{id}/history" }).await;
    assert_eq!(tally.len(), 1);
    let t = &tally[0];
    assert_eq!(t.get_str("action").expect("action"), "auth.refused");
    assert_eq!(t.get_str("ip").expect("ip"), "127.0.0.1");
    let details = t.get_document("details").expect("details");
    assert_eq!(count(details), 30);
    assert!(details.get_datetime("from").is_ok() && details.get_datetime("to").is_ok());
    // Nobody without a token writes into a real patient's access log.
    let admin = app.login_as(Role::Admin).await;
    let log = app
        .get_as(&admin, &format!("/api/v1/patients/{id}/access-log"))
        .await
        .json();
    assert!(
        log["data"]
            .as_array()
            .expect("entries")
            .iter()
            .all(|e| !e["actor_id"].is_null()),
        "{log}"
    );
}

#[tokio::test]
async fn only_well_formed_path_parameters_are_stored() {
    let app = TestApp::spawn().await;
    let staff = app.login_as(Role::Staff).await;
    let junk = "x".repeat(4000);
    app.get_as(&staff, &format!("/api/v1/patients/{junk}/history"))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_id");
    app.get_as(&staff, "/api/v1/patients/0123456789abcdef01234567")
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    app.settle_background().await;
    let junk_events = events(&app, doc! { "route": "/api/v1/patients/{id}/history" }).await;
    assert_eq!(junk_events.len(), 1);
    assert!(
        junk_events[0]
            .get_array("target_ids")
            .expect("targets")
            .is_empty()
            && junk_events[0]
                .get_array("patient_ids")
                .expect("patients")
                .is_empty(),
        "{junk_events:?}"
    );
    let id_events = events(&app, doc! { "route": "/api/v1/patients/{id}" }).await;
    assert_eq!(
        id_events[0].get_array("target_ids").expect("targets")[0].as_str(),
        Some("0123456789abcdef01234567")
    );
}

/// `VmHWM` / `VmRSS` of a process, in KiB.
pub fn memory_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("memory figure")
}

#[tokio::test]
async fn a_flood_of_unauthenticated_calls_leaves_the_trail_and_memory_bounded() {
    const CALLS: usize = 10_000;
    let config = test_config(&[]);
    let db = healthcrm::db::client(&config)
        .await
        .expect("client")
        .database(&config.mongodb_db);
    let mut server =
        Server::start_with(&config.mongodb_db, &[("AUDIT_QUEUE_CAPACITY", "64")]).await;
    let pid = server.pid();
    let http = reqwest::Client::new();
    // Warm up, then take the baseline.
    for _ in 0..200 {
        let _ = http
            .get(format!("{}/api/v1/patients", server.base))
            .send()
            .await;
    }
    let rss_before = memory_kib(pid, "VmRSS:");
    let junk = "z".repeat(2000);
    let started = Instant::now();
    let statuses: Vec<u16> = futures::stream::iter(0..CALLS)
        .map(|i| {
            let http = http.clone();
            let url = format!("{}/api/v1/patients/{junk}{i}/history", server.base);
            async move {
                http.get(url)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let peak = memory_kib(pid, "VmHWM:");
    let rss_after = memory_kib(pid, "VmRSS:");
    assert!(statuses.iter().all(|s| *s == 401), "every call refused");
    // A clean stop writes the tally of the current minute.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    let coll = db.collection::<Document>("audit_events");
    let mut total = 0;
    let mut written = 0;
    while Instant::now() < deadline {
        use futures::TryStreamExt;
        let all: Vec<Document> = coll
            .find(doc! { "route": "/api/v1/patients/{id}/history" })
            .await
            .expect("find")
            .try_collect()
            .await
            .expect("events");
        written = all.len();
        total = all
            .iter()
            .filter_map(|e| e.get_document("details").ok())
            .map(count)
            .sum::<i64>();
        if total == CALLS as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.kill();
    eprintln!(
        "flood: {CALLS} unauthenticated calls in {:.1} s; {written} audit events counting {total}; \
         server RSS {} KiB before, {} KiB after, peak {} KiB",
        elapsed.as_secs_f64(),
        rss_before,
        rss_after,
        peak
    );
    assert_eq!(total, CALLS as i64, "every refusal is counted once");
    // One event per client, route and minute: the flood spans a minute or two.
    assert!((1..=3).contains(&written), "{written} events");
    assert!(
        rss_after.saturating_sub(rss_before) < 64 * 1024,
        "memory grew from {rss_before} to {rss_after} KiB"
    );
    let _ = db.drop().await;
}

#[tokio::test]
async fn a_full_writer_holds_the_next_event_back_instead_of_growing() {
    use healthcrm::{
        config::TransactionGate, http::audit_log::AuditLog, repo::audit::AuditRepo,
        workflow::tx::Gate,
    };
    // Nothing listens on port 9: every write fails slowly and is retried.
    let config = test_config(&[
        (
            "MONGODB_URI",
            "mongodb://127.0.0.1:9/?directConnection=true",
        ),
        ("MONGODB_TIMEOUT_MS", "300"),
    ]);
    let client = healthcrm::db::client(&config).await.expect("client");
    let db = client.database(&config.mongodb_db);
    let tracker = tokio_util::task::TaskTracker::new();
    let log = AuditLog::new(
        AuditRepo::new(&db),
        Gate::new(client, TransactionGate::Open),
        tracker.clone(),
        2,
    );
    let event = |n: u8| healthcrm::repo::audit::AuditEvent {
        id: mongodb::bson::oid::ObjectId::new(),
        at: mongodb::bson::DateTime::now(),
        actor_id: None,
        role: None,
        action: format!("test.{n}"),
        method: "GET".into(),
        route: "/api/v1/patients".into(),
        status: 200,
        target_ids: vec![],
        patient_ids: vec![],
        request_id: String::new(),
        ip: None,
        details: None,
    };
    log.submit(event(1)).await;
    log.submit(event(2)).await;
    assert_eq!(log.in_flight(), 2);
    let third = tokio::time::timeout(Duration::from_millis(200), log.submit(event(3))).await;
    assert!(third.is_err(), "the third waits for a free slot");
    assert_eq!(
        tracker.len(),
        1,
        "one batch for the two, none for the third"
    );
}

/// Events handed over together are written together: fifty concurrent
/// events cost a handful of inserts, not fifty, and every one is stored.
#[tokio::test]
async fn concurrent_events_share_their_inserts() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use healthcrm::{
        config::TransactionGate, http::audit_log::AuditLog, repo::audit::AuditRepo,
        workflow::tx::Gate,
    };
    use mongodb::event::{command::CommandEvent, EventHandler};
    let app = TestApp::spawn().await;
    let inserts = std::sync::Arc::new(AtomicUsize::new(0));
    let mut options = mongodb::options::ClientOptions::parse(crate::helpers::mongodb_uri())
        .await
        .expect("options");
    let counter = inserts.clone();
    options.command_event_handler = Some(EventHandler::callback(move |e: CommandEvent| {
        if let CommandEvent::Started(s) = e {
            if s.command_name == "insert" {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    }));
    let client = mongodb::Client::with_options(options).expect("client");
    let db = client.database(app.db.name());
    let tracker = tokio_util::task::TaskTracker::new();
    let log = AuditLog::new(
        AuditRepo::new(&db),
        Gate::new(client, TransactionGate::Open),
        tracker.clone(),
        1024,
    );
    let event = |n: usize| healthcrm::repo::audit::AuditEvent {
        id: mongodb::bson::oid::ObjectId::new(),
        at: mongodb::bson::DateTime::now(),
        actor_id: None,
        role: None,
        action: format!("batched.{n}"),
        method: "GET".into(),
        route: "/api/v1/patients/{id}".into(),
        status: 200,
        target_ids: vec![],
        patient_ids: vec![],
        request_id: String::new(),
        ip: None,
        details: None,
    };
    futures::future::join_all((0..50).map(|n| log.submit(event(n)))).await;
    tracker.close();
    tracker.wait().await;
    let stored = app
        .db
        .collection::<Document>("audit_events")
        .count_documents(doc! { "action": { "$regex": "^batched\\." } })
        .await
        .expect("count");
    assert_eq!(stored, 50);
    let inserts = inserts.load(Ordering::Relaxed);
    assert!(
        (1..=5).contains(&inserts),
        "{inserts} inserts for 50 events"
    );
    assert_eq!(log.in_flight(), 0, "every slot given back");
}

#[tokio::test]
async fn the_audit_list_shows_ids_and_details_and_every_filter_returns_its_rows() {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let staff = app.login_as(Role::Staff).await;
    let res = app
        .post_as(
            &staff,
            "/api/v1/patients",
            &json!({"name": "Listed Patient", "country": "GB"}),
        )
        .await;
    let patient = res.json()["id"].as_str().expect("id").to_owned();
    app.get_as(&staff, &format!("/api/v1/patients/{patient}"))
        .await;
    // A permission change carries its before and after.
    let rule = json!({"rules": [{"method": "GET", "path": "/api/v1/users", "allow": true}]});
    let res = app.put_as(&admin, "/api/v1/permissions/staff", &rule).await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    for _ in 0..2 {
        app.get("/api/v1/hospitals").await;
    }
    app.settle_background().await;

    let list = |q: String| {
        let app = &app;
        let admin = &admin;
        async move {
            // The previous listing's own event is written in the background:
            // let it land, so it cannot fall between this page's count and
            // its rows.
            app.settle_background().await;
            let res = app.get_as(admin, &format!("/api/v1/audit{q}")).await;
            assert_eq!(res.status, StatusCode::OK, "{q}: {:?}", res.json());
            let body = res.json();
            let rows = body["data"].as_array().expect("rows").clone();
            assert_eq!(body["total"].as_u64(), Some(rows.len() as u64), "{q}");
            rows
        }
    };
    let refused = list("?action=auth.refused".into()).await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["details"]["count"], 2);
    assert_eq!(refused[0]["route"], "/api/v1/hospitals");

    let by_patient = list(format!("?patient_id={patient}")).await;
    let actions: Vec<&str> = by_patient
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"patients.create") && actions.contains(&"patients.read"),
        "{actions:?}"
    );
    assert!(by_patient.iter().all(|e| e["patient_ids"]
        .as_array()
        .is_some_and(|ids| ids.contains(&json!(patient)))));
    let read = by_patient
        .iter()
        .find(|e| e["action"] == "patients.read")
        .expect("the read");
    assert_eq!(read["target_ids"], json!([patient]));

    let by_staff = list(format!("?actor_id={}", staff.id)).await;
    assert!(!by_staff.is_empty());
    assert!(by_staff
        .iter()
        .all(|e| e["actor_id"] == json!(staff.id.to_string())));

    let changes = list("?action=permissions.update".into()).await;
    assert_eq!(changes.len(), 1, "{changes:?}");
    let change = &changes[0]["details"]["changes"][0];
    assert_eq!(change["path"], "/api/v1/users");
    assert_eq!(change["after"], true);

    let today = chrono::Utc::now().date_naive();
    let all_today = list(format!("?from={today}&to={today}&per_page=100")).await;
    assert!(all_today.len() >= by_staff.len() + changes.len());
    let yesterday = today.pred_opt().expect("date");
    assert!(list(format!("?to={yesterday}")).await.is_empty());
}

/// Captures what a subscriber writes.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_request_span_carries_the_callers_id_never_the_name() {
    let app = TestApp::spawn().await;
    let staff = app.login_as(Role::Staff).await;
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter("info")
        .with_writer(move || writer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    let res = app.get_as(&staff, "/api/v1/auth/me").await;
    drop(guard);
    assert_eq!(res.status, StatusCode::OK);
    let name = res.json()["user"]["name"]
        .as_str()
        .expect("name")
        .to_owned();
    let out = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    let finished = out
        .lines()
        .find(|l| l.contains("request finished"))
        .unwrap_or_else(|| panic!("no request log line in {out}"));
    assert!(
        finished.contains(&format!("\"user_id\":\"{}\"", staff.id)),
        "{finished}"
    );
    assert!(!out.contains(&name), "the name is never logged: {out}");
}
