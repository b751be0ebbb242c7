//! `Idempotency-Key` on creating POSTs: replay, reuse with another body,
//! a request still running, expiry, and a retry after a failure.

use axum::http::StatusCode;
use chrono::{Duration, Utc};
use healthcrm::{
    domain::user::Role,
    repo::idempotency::KeyRecord,
    workflow::idempotency::{fingerprint, record_id},
};
use mongodb::bson::{doc, DateTime, Document};
use serde_json::{json, Value};

use crate::{
    helpers::{Session, TestApp},
    hospitals::create_hospital,
};

fn patient(name: &str) -> Value {
    json!({"name": name, "country": "DE", "age": 51})
}

async fn count(app: &TestApp, collection: &str, filter: Document) -> u64 {
    app.db
        .collection::<Document>(collection)
        .count_documents(filter)
        .await
        .expect("count")
}

#[tokio::test]
async fn the_same_key_and_body_replays_the_first_response_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let staff = app.login_as(Role::Staff).await;
    let first = app
        .post_keyed(&staff, "/api/v1/patients", "reg-1", &patient("Ada"))
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = app
        .post_keyed(&staff, "/api/v1/patients", "reg-1", &patient("Ada"))
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body, "byte for byte the first response");
    assert_eq!(count(&app, "patients", doc! {}).await, 1);
    assert_eq!(count(&app, "history", doc! {}).await, 1);
    // Both responses showed the patient: both are in its access log.
    app.settle_background().await;
    let id = first.json()["id"].as_str().expect("id").to_owned();
    let reads = doc! { "action": "patients.create", "patient_ids": { "$in": [id] } };
    assert_eq!(count(&app, "audit_events", reads).await, 2);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused() {
    let app = TestApp::spawn().await;
    let staff = app.login_as(Role::Staff).await;
    let first = app
        .post_keyed(&staff, "/api/v1/patients", "reg-2", &patient("Ada"))
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    app.post_keyed(&staff, "/api/v1/patients", "reg-2", &patient("Bob"))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused");
    assert_eq!(count(&app, "patients", doc! {}).await, 1);
}

#[tokio::test]
async fn a_key_names_one_request_across_routes() {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let first = app
        .post_keyed(&admin, "/api/v1/patients", "one", &patient("Ada"))
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    app.post_keyed(
        &admin,
        "/api/v1/hospitals",
        "one",
        &json!({"name": "H", "location": "Izmir", "country": "TR",
                "commission_bps": 1000, "currency": "EUR"}),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused");
    assert_eq!(count(&app, "hospitals", doc! {}).await, 0);
}

#[tokio::test]
async fn keys_belong_to_their_user() {
    let app = TestApp::spawn().await;
    let one = app.login_as(Role::Staff).await;
    let two = app.login_as(Role::Staff).await;
    for s in [&one, &two] {
        let res = app
            .post_keyed(s, "/api/v1/patients", "shared", &patient("Ada"))
            .await;
        assert_eq!(res.status, StatusCode::CREATED);
        assert_eq!(res.header("idempotent-replayed"), None);
    }
    assert_eq!(count(&app, "patients", doc! {}).await, 2);
}

#[tokio::test]
async fn malformed_keys_are_a_bad_request() {
    let app = TestApp::spawn().await;
    let staff = app.login_as(Role::Staff).await;
    for key in ["", &"k".repeat(256)] {
        app.post_keyed(&staff, "/api/v1/patients", key, &patient("Ada"))
            .await
            .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    }
    assert_eq!(count(&app, "patients", doc! {}).await, 0);
}

/// A claim as a request still running (or one whose process died) leaves it.
async fn plant_claim(app: &TestApp, s: &Session, key: &str, body: &Value, lease_secs: i64) {
    let now = Utc::now();
    let record = KeyRecord {
        id: record_id(s.id, key),
        user_id: s.id,
        fingerprint: fingerprint(
            app.config.jwt_secret_bytes(),
            "POST",
            "/api/v1/patients",
            &serde_json::to_vec(body).expect("json"),
        )
        .expect("fingerprint"),
        state: "running".into(),
        token: "someone-else".into(),
        status: None,
        body: None,
        created_at: DateTime::from_chrono(now),
        expires_at: DateTime::from_chrono(now + Duration::hours(24)),
        lease_until: DateTime::from_chrono(now + Duration::seconds(lease_secs)),
    };
    assert!(app
        .repos()
        .idempotency
        .insert(&record)
        .await
        .expect("plant"));
}

#[tokio::test]
async fn a_request_still_running_makes_its_duplicate_wait_with_a_409() {
    let app = TestApp::spawn().await;
    let staff = app.login_as(Role::Staff).await;
    plant_claim(&app, &staff, "busy", &patient("Ada"), 60).await;
    app.post_keyed(&staff, "/api/v1/patients", "busy", &patient("Ada"))
        .await
        .assert_error(StatusCode::CONFLICT, "request_in_progress");
    assert_eq!(count(&app, "patients", doc! {}).await, 0);
}

#[tokio::test]
async fn a_claim_whose_process_died_is_taken_over_after_its_lease() {
    let app = TestApp::spawn().await;
    let staff = app.login_as(Role::Staff).await;
    plant_claim(&app, &staff, "orphan", &patient("Ada"), -1).await;
    let res = app
        .post_keyed(&staff, "/api/v1/patients", "orphan", &patient("Ada"))
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
    assert_eq!(count(&app, "patients", doc! {}).await, 1);
}

#[tokio::test]
async fn concurrent_duplicates_create_exactly_one_record() {
    let app = TestApp::spawn().await;
    let staff = app.login_as(Role::Staff).await;
    let body = patient("Burst");
    let calls = (0..8).map(|_| app.post_keyed(&staff, "/api/v1/patients", "burst", &body));
    let results = futures::future::join_all(calls).await;
    let mut created = Vec::new();
    for res in &results {
        match res.status {
            StatusCode::CREATED => created.push(res.body.clone()),
            StatusCode::CONFLICT => {
                res.assert_error(StatusCode::CONFLICT, "request_in_progress");
            }
            other => panic!("unexpected {other}: {:?}", res.json()),
        }
    }
    assert!(!created.is_empty());
    assert!(
        created.iter().all(|b| *b == created[0]),
        "every 201 is the same response"
    );
    assert_eq!(count(&app, "patients", doc! {}).await, 1);
}

#[tokio::test]
async fn an_expired_key_is_forgotten() {
    let app = TestApp::spawn_with(&[("IDEMPOTENCY_TTL_SECS", "1")]).await;
    let staff = app.login_as(Role::Staff).await;
    let first = app
        .post_keyed(&staff, "/api/v1/patients", "short", &patient("Ada"))
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    let later = app
        .post_keyed(&staff, "/api/v1/patients", "short", &patient("Ada"))
        .await;
    assert_eq!(later.status, StatusCode::CREATED);
    assert_eq!(later.header("idempotent-replayed"), None);
    assert_ne!(later.json()["id"], first.json()["id"]);
    assert_eq!(count(&app, "patients", doc! {}).await, 2);
}

#[cfg(feature = "faults")]
#[tokio::test]
async fn a_retry_after_a_failure_creates_exactly_one_record() {
    let app = TestApp::spawn().await;
    let staff = app.login_as(Role::Staff).await;
    app.workflows.faults.arm("patient.register:history");
    let failed = app
        .post_keyed(&staff, "/api/v1/patients", "retry", &patient("Ada"))
        .await;
    assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(count(&app, "patients", doc! {}).await, 0);
    let retried = app
        .post_keyed(&staff, "/api/v1/patients", "retry", &patient("Ada"))
        .await;
    assert_eq!(retried.status, StatusCode::CREATED);
    assert_eq!(retried.header("idempotent-replayed"), None);
    let replayed = app
        .post_keyed(&staff, "/api/v1/patients", "retry", &patient("Ada"))
        .await;
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));
    assert_eq!(count(&app, "patients", doc! {}).await, 1);
    assert_eq!(count(&app, "history", doc! {}).await, 1);
}

#[tokio::test]
async fn every_creating_post_honours_the_key() {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let hospital = create_hospital(&app, &admin, "Keyed Hospital").await;
    let p = app
        .post_as(&admin, "/api/v1/patients", &patient("Keyed"))
        .await
        .json()["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let cases = [
        ("/api/v1/patients".to_owned(), patient("Other"), "patients"),
        (
            format!("/api/v1/patients/{p}/appointments"),
            json!({"discussion_notes": "Called.", "status": "completed"}),
            "appointments",
        ),
        (
            format!("/api/v1/patients/{p}/treatments"),
            json!({"treatment_type": "hip", "disease": "arthrosis", "hospital_id": hospital,
                   "cost": {"amount_minor": 1000, "currency": "EUR"},
                   "earnings": {"amount_minor": 100, "currency": "EUR"}, "status": "completed"}),
            "treatments",
        ),
        (
            "/api/v1/hospitals".to_owned(),
            json!({"name": "Second", "location": "Izmir", "country": "TR",
                   "commission_bps": 1000, "currency": "EUR"}),
            "hospitals",
        ),
        (
            "/api/v1/users".to_owned(),
            json!({"name": "New Staff", "email": "new.staff@example.com",
                   "password": "a long enough passphrase", "role": "staff"}),
            "users",
        ),
    ];
    for (path, body, collection) in cases {
        let before = count(&app, collection, doc! {}).await;
        // A key names one request: each route gets its own.
        let key = format!("create-{collection}");
        let first = app.post_keyed(&admin, &path, &key, &body).await;
        assert_eq!(
            first.status,
            StatusCode::CREATED,
            "{path}: {:?}",
            first.json()
        );
        let again = app.post_keyed(&admin, &path, &key, &body).await;
        assert_eq!(again.status, StatusCode::CREATED, "{path}");
        assert_eq!(again.header("idempotent-replayed"), Some("true"), "{path}");
        assert_eq!(again.body, first.body, "{path}");
        assert_eq!(count(&app, collection, doc! {}).await, before + 1, "{path}");
    }
    // One credit for the completed treatment, not two.
    assert_eq!(count(&app, "earnings", doc! {}).await, 1);
}

#[tokio::test]
async fn the_openapi_document_names_the_header_on_every_creating_post() {
    let app = TestApp::spawn().await;
    let doc = app.get("/api/v1/openapi.json").await.json();
    for path in healthcrm::http::idempotency::CREATING {
        let op = &doc["paths"][*path]["post"];
        let params = op["parameters"].as_array().expect("parameters");
        assert!(
            params
                .iter()
                .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header"),
            "{path}"
        );
        assert!(
            op["responses"]["201"]["headers"]["idempotent-replayed"].is_object(),
            "{path}"
        );
        assert!(op["responses"]["409"].is_object(), "{path}");
        assert!(op["responses"]["422"].is_object(), "{path}");
    }
}
