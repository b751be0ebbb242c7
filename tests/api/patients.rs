//! Patients through the API: registration, reads, filters, versioned
//! updates, the status workflow, assignment, soft delete, history, audit.

use axum::http::StatusCode;
use healthcrm::domain::user::Role;
use serde_json::{json, Value};

use crate::{
    helpers::{Session, TestApp},
    hospitals::create_hospital,
};

fn patient_body(name: &str) -> Value {
    json!({"name": name, "age": 42, "country": "GB", "medical_history": ["Knee osteoarthritis", "Hypertension"],
           "source": "web form", "contact": {"email": "p@example.com"}})
}

async fn register(app: &TestApp, s: &Session, body: &Value) -> Value {
    let res = app.post_as(s, "/api/v1/patients", body).await;
    assert_eq!(
        res.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&res.body)
    );
    res.json()
}

#[tokio::test]
async fn staff_register_read_and_update_patients() {
    let app = TestApp::spawn().await;
    let staff = app.login_as(Role::Staff).await;
    let p = register(&app, &staff, &patient_body("John Smith")).await;
    assert_eq!(p["status"], "new");
    assert_eq!(p["treatment_status"], "inquiry");
    assert_eq!(p["created_by"], staff.id.to_string());
    assert_eq!(p["version"], 1);
    let id = p["id"].as_str().expect("id");

    let got = app
        .get_as(&staff, &format!("/api/v1/patients/{id}"))
        .await
        .json();
    assert_eq!(got["name"], "John Smith");
    assert_eq!(
        got["medical_history"],
        json!(["Knee osteoarthritis", "Hypertension"])
    );

    let res = app
        .patch_as(
            &staff,
            &format!("/api/v1/patients/{id}"),
            &json!({"version": 1, "name": "John A. Smith", "next_follow_up": "2026-12-01"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    assert_eq!(res.json()["version"], 2);
    assert_eq!(res.json()["next_follow_up"], "2026-12-01");

    // A stale version changes nothing.
    app.patch_as(
        &staff,
        &format!("/api/v1/patients/{id}"),
        &json!({"version": 1, "name": "Stale"}),
    )
    .await
    .assert_error(StatusCode::CONFLICT, "conflict");
    assert_eq!(
        app.get_as(&staff, &format!("/api/v1/patients/{id}"))
            .await
            .json()["name"],
        "John A. Smith"
    );

    // Explicit null clears a field.
    let res = app
        .patch_as(
            &staff,
            &format!("/api/v1/patients/{id}"),
            &json!({"version": 2, "next_follow_up": null}),
        )
        .await;
    assert_eq!(res.json()["next_follow_up"], Value::Null);
}

#[tokio::test]
async fn age_is_derived_from_the_date_of_birth() {
    let app = TestApp::spawn().await;
    let staff = app.login_as(Role::Staff).await;
    let p = register(
        &app,
        &staff,
        &json!({"name": "Ana", "country": "ES", "date_of_birth": "1990-01-15"}),
    )
    .await;
    assert_eq!(p["date_of_birth"], "1990-01-15");
    let expected = chrono::Utc::now()
        .date_naive()
        .years_since(chrono::NaiveDate::from_ymd_opt(1990, 1, 15).expect("date"));
    assert_eq!(p["age"], json!(expected));
}

#[tokio::test]
async fn the_treatment_status_follows_the_workflow() {
    let app = TestApp::spawn().await;
    let staff = app.login_as(Role::Staff).await;
    let p = register(&app, &staff, &patient_body("Flow")).await;
    let path = format!("/api/v1/patients/{}", p["id"].as_str().expect("id"));
    let step = |v: i64, s: &str| json!({"version": v, "treatment_status": s});

    let err = app
        .patch_as(&staff, &path, &step(1, "completed"))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let msg = err["details"]["treatment_status"][0]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        msg.contains("ready") && msg.contains("denied"),
        "names the allowed ones: {msg}"
    );

    app.patch_as(&staff, &path, &step(1, "denied"))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let res = app.patch_as(&staff, &path, &json!({"version": 1, "treatment_status": "denied", "denial_reason": "not a candidate"})).await;
    assert_eq!(res.json()["denial_reason"], "not a candidate");
    let res = app.patch_as(&staff, &path, &step(2, "inquiry")).await;
    assert_eq!(res.json()["denial_reason"], Value::Null, "reopened");
    for (v, s) in [(3, "ready"), (4, "coming"), (5, "completed")] {
        let res = app.patch_as(&staff, &path, &step(v, s)).await;
        assert_eq!(res.status, StatusCode::OK, "{s}: {:?}", res.json());
    }
    app.patch_as(&staff, &path, &step(6, "inquiry"))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let res = app.patch_as(&staff, &path, &step(6, "ready")).await;
    assert_eq!(
        res.json()["status"],
        "repeat",
        "a completed patient starting again is a repeat patient"
    );

    let history = app.get_as(&staff, &format!("{path}/history")).await.json();
    let actions: Vec<&str> = history["data"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions.first(), Some(&"create"));
    assert_eq!(
        actions.iter().filter(|a| **a == "status_change").count(),
        6,
        "{actions:?}"
    );
    let first_change = &history["data"][1];
    assert_eq!(first_change["actor_id"], staff.id.to_string());
    assert_eq!(
        first_change["changes"]["treatment_status"]["before"],
        "inquiry"
    );
    assert_eq!(
        first_change["changes"]["treatment_status"]["after"],
        "denied"
    );
}

#[tokio::test]
async fn hospital_assignment_is_checked_and_kept_in_history() {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let staff = app.login_as(Role::Staff).await;
    let h1 = create_hospital(&app, &admin, "First").await;
    let h2 = create_hospital(&app, &admin, "Second").await;
    let p = register(&app, &staff, &patient_body("Mover")).await;
    let path = format!(
        "/api/v1/patients/{}/hospital",
        p["id"].as_str().expect("id")
    );

    app.put_as(
        &staff,
        &path,
        &json!({"hospital_id": "000000000000000000000000"}),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    app.put_as(&staff, &path, &json!({"hospital_id": "nope"}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        app.put_as(&staff, &path, &json!({"hospital_id": h1}))
            .await
            .status,
        StatusCode::OK
    );
    let res = app.put_as(&staff, &path, &json!({"hospital_id": h2})).await;
    let body = res.json();
    assert_eq!(body["hospital_id"], h2);
    let hist = body["hospital_history"].as_array().expect("history");
    assert_eq!(hist.len(), 2);
    assert_eq!(hist[0]["hospital_id"], h1);
    assert_eq!(hist[1]["by"], staff.id.to_string());

    let hospital = app
        .get_as(&staff, &format!("/api/v1/hospitals/{h2}"))
        .await
        .json();
    assert_eq!(hospital["patients_assigned"], 1);
    let assigned = app
        .get_as(&staff, &format!("/api/v1/hospitals/{h2}/patients"))
        .await
        .json();
    assert_eq!(assigned["total"], 1);
    assert_eq!(assigned["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(assigned["data"][0]["hospital_id"], h2.as_str());
    let before = app
        .get_as(&staff, &format!("/api/v1/hospitals/{h1}/patients"))
        .await
        .json();
    assert_eq!(before["total"], 0, "only patients assigned now: {before}");
    assert_eq!(before["data"], json!([]));
    // Referenced hospitals cannot be deleted, even the previous one.
    app.delete_as(&admin, &format!("/api/v1/hospitals/{h1}"))
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
    // An inactive hospital takes no new patients.
    app.patch_as(
        &admin,
        &format!("/api/v1/hospitals/{h1}"),
        &json!({"active": false}),
    )
    .await;
    app.put_as(&staff, &path, &json!({"hospital_id": h1}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
}

#[tokio::test]
async fn soft_deleted_patients_vanish_and_can_be_restored() {
    let app = TestApp::spawn().await;
    let staff = app.login_as(Role::Staff).await;
    let p = register(&app, &staff, &patient_body("Ghost")).await;
    let id = p["id"].as_str().expect("id");
    let path = format!("/api/v1/patients/{id}");
    assert_eq!(
        app.delete_as(&staff, &path).await.status,
        StatusCode::NO_CONTENT
    );
    app.get_as(&staff, &path)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(
        app.get_as(&staff, "/api/v1/patients").await.json()["total"],
        0
    );
    app.patch_as(&staff, &path, &json!({"version": 2, "name": "x"}))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    let res = app
        .post_as(&staff, &format!("{path}/restore"), &json!({}))
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json()["name"], "Ghost");
    assert_eq!(
        app.get_as(&staff, "/api/v1/patients").await.json()["total"],
        1
    );
    app.post_as(&staff, &format!("{path}/restore"), &json!({}))
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
}

#[tokio::test]
async fn patients_are_listed_with_every_filter() {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let staff = app.login_as(Role::Staff).await;
    let h = create_hospital(&app, &admin, "Filter Hospital").await;
    register(
        &app,
        &staff,
        &json!({"name": "Alice Brown", "country": "GB", "medical_history": ["Diabetes"],
                "contact": {"email": "Alice.B@Example.org", "phone": "+90 532 000 1122"}}),
    )
    .await;
    register(&app, &admin, &json!({"name": "Bob Stone", "country": "DE", "medical_history": ["diabetes", "Asthma"], "hospital_id": h})).await;
    register(
        &app,
        &staff,
        &json!({"name": "Carla Brownstone", "country": "DE", "treatment_status": "ready"}),
    )
    .await;

    // Each filter's total and the names on its page (sorted): the page must
    // hold the rows the total counts (the stand-in once counted 2 and
    // returned none for a disease).
    let rows = |q: &str| {
        let app = &app;
        let staff = &staff;
        let q = q.to_owned();
        async move {
            let res = app.get_as(staff, &format!("/api/v1/patients{q}")).await;
            assert_eq!(res.status, StatusCode::OK, "{q}: {:?}", res.json());
            let body = res.json();
            let mut names: Vec<String> = body["data"]
                .as_array()
                .expect("rows")
                .iter()
                .map(|p| p["name"].as_str().expect("name").to_owned())
                .collect();
            names.sort();
            let total = body["total"].as_u64().expect("total");
            assert_eq!(total as usize, names.len(), "{q}: total and page disagree");
            names
        }
    };
    let (alice, bob, carla) = ("Alice Brown", "Bob Stone", "Carla Brownstone");
    assert_eq!(rows("").await, [alice, bob, carla]);
    assert_eq!(rows("?q=brown").await, [alice, carla]);
    assert_eq!(rows("?q=BROWNSTONE").await, [carla]);
    assert_eq!(rows("?country=DE").await, [bob, carla]);
    assert_eq!(rows("?disease=DIABETES").await, [alice, bob]);
    assert_eq!(rows("?disease=asthma").await, [bob]);
    assert_eq!(rows("?treatment_status=ready").await, [carla]);
    assert_eq!(rows("?status=new").await, [alice, bob, carla]);
    assert_eq!(rows(&format!("?hospital_id={h}")).await, [bob]);
    assert_eq!(
        rows(&format!("?created_by={}", staff.id)).await,
        [alice, carla]
    );
    let today = chrono::Utc::now().date_naive();
    assert_eq!(
        rows(&format!("?created_from={today}&created_to={today}")).await,
        [alice, bob, carla]
    );
    assert!(
        rows(&format!("?created_to={}", today.pred_opt().expect("date")))
            .await
            .is_empty()
    );
    // `from`/`to` are the names every other date filter uses; the old ones
    // above still work.
    assert_eq!(
        rows(&format!("?from={today}&to={today}")).await,
        [alice, bob, carla]
    );
    assert!(rows(&format!("?to={}", today.pred_opt().expect("date")))
        .await
        .is_empty());
    assert!(
        rows("?q=.*").await.is_empty(),
        "regex characters are literal"
    );
    // The search also matches the e-mail and the phone, compared as the
    // digits of its E.164 form however it is typed.
    assert_eq!(rows("?q=alice.b@example.ORG").await, [alice]);
    assert_eq!(rows("?q=example.org").await, [alice]);
    assert_eq!(rows("?q=905320001122").await, [alice]);
    assert_eq!(rows("?q=%2B90%20532%20000%201122").await, [alice]);
    assert_eq!(rows("?q=0090-532-000-1122").await, [alice]);
    assert_eq!(rows("?q=(532)%20000").await, [alice]);
    assert!(rows("?q=905320009999").await.is_empty());
    assert_eq!(rows("?q=brown&country=GB").await, [alice]);
    assert!(rows("?q=stone&country=GB").await.is_empty());

    // Patients stored before the search key existed are found once the
    // migrations have filled it in.
    app.db
        .collection::<mongodb::bson::Document>("patients")
        .update_many(
            mongodb::bson::doc! {},
            mongodb::bson::doc! { "$unset": { "search_text": "" } },
        )
        .await
        .expect("unset");
    assert!(rows("?q=905320001122").await.is_empty());
    healthcrm::migrate::run(&app.db).await.expect("migrate");
    assert_eq!(rows("?q=905320001122").await, [alice]);
    assert_eq!(rows("?q=brown").await, [alice, carla]);

    let names = app
        .get_as(&staff, "/api/v1/patients?sort=name&per_page=2")
        .await
        .json();
    assert_eq!(names["data"][0]["name"], "Alice Brown");
    assert_eq!(names["data"].as_array().map(Vec::len), Some(2));
    let page2 = app
        .get_as(&staff, "/api/v1/patients?sort=name&per_page=2&page=2")
        .await
        .json();
    assert_eq!(page2["data"][0]["name"], "Carla Brownstone");
    let newest = app
        .get_as(&staff, "/api/v1/patients?sort=-created_at")
        .await
        .json();
    assert_eq!(newest["data"][0]["name"], "Carla Brownstone");

    for bad in [
        "?sort=age",
        "?treatment_status=done",
        "?country=XX",
        "?created_from=yesterday",
        "?hospital_id=12",
        "?page=0",
        "?name[$ne]=x",
        "?created_from=2026-02-01&created_to=2026-01-01",
        "?from=2026-02-01&to=2026-01-01",
        "?from=2026-01-01&created_from=2026-01-01",
        "?to=2026-01-01&created_to=2026-01-01",
    ] {
        app.get_as(&staff, &format!("/api/v1/patients{bad}"))
            .await
            .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    }
}

#[tokio::test]
async fn bad_patient_input_is_refused_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let staff = app.login_as(Role::Staff).await;
    let cases = [
        json!({"country": "GB"}),
        json!({"name": "X"}),
        json!({"name": "X", "country": "England"}),
        json!({"name": "X", "country": "GB", "age": 200}),
        json!({"name": "X", "country": "GB", "age": -1}),
        json!({"name": "X", "country": "GB", "age": "forty"}),
        json!({"name": "X", "country": "GB", "date_of_birth": "15/01/1990"}),
        json!({"name": "X", "country": "GB", "date_of_birth": "2999-01-01"}),
        json!({"name": "X", "country": "GB", "age": 40, "date_of_birth": "1980-01-01"}),
        json!({"name": "X", "country": "GB", "treatment_status": "maybe"}),
        json!({"name": "X", "country": "GB", "treatment_status": "denied"}),
        json!({"name": "X", "country": "GB", "status": "repeat"}),
        json!({"name": "X", "country": "GB", "medical_history": "diabetes"}),
        json!({"name": "X", "country": "GB", "medical_history": [""]}),
        json!({"name": "X", "country": "GB", "hospital_id": "000000000000000000000000"}),
        json!({"name": "X", "country": "GB", "assigned_to": "000000000000000000000000"}),
        json!({"name": "X", "country": "GB", "assigned_to": "zz"}),
        json!({"name": "X", "country": "GB", "next_follow_up": "tomorrow"}),
        json!({"name": {"$gt": ""}, "country": "GB"}),
        json!({"name": "X", "country": "GB", "$where": "1"}),
        json!({"name": "X".repeat(201), "country": "GB"}),
    ];
    for body in cases {
        let res = app.post_as(&staff, "/api/v1/patients", &body).await;
        res.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    assert_eq!(
        app.get_as(&staff, "/api/v1/patients").await.json()["total"],
        0
    );

    let p = register(&app, &staff, &patient_body("Target")).await;
    let path = format!("/api/v1/patients/{}", p["id"].as_str().expect("id"));
    // No version at all: the precondition is required (RFC 6585).
    app.patch_as(&staff, &path, &json!({"name": "no version"}))
        .await
        .assert_error(StatusCode::PRECONDITION_REQUIRED, "precondition_required");
    for body in [
        json!({"version": "1"}),
        json!({"version": 1, "country": "ZZ"}),
        json!({"version": 1, "created_by": "x"}),
        json!({"version": 1, "medical_history": [1, 2]}),
        json!({"version": 1, "treatment_status": "completed"}),
    ] {
        app.patch_as(&staff, &path, &body)
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    assert_eq!(
        app.get_as(&staff, &path).await.json()["version"],
        1,
        "unchanged"
    );
    app.get_as(&staff, "/api/v1/patients/123")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_id");
    app.get_as(&staff, "/api/v1/patients/000000000000000000000000")
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn every_access_to_patient_data_is_audited() {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let staff = app.login_as(Role::Staff).await;
    let p = register(&app, &staff, &patient_body("Audited")).await;
    let id = p["id"].as_str().expect("id").to_owned();
    app.get_as(&staff, &format!("/api/v1/patients/{id}")).await;
    app.get_as(&staff, "/api/v1/patients").await;
    // A refused attempt is recorded too.
    app.get_as(&staff, &format!("/api/v1/patients/{id}/access-log"))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    // Audit writes happen off the response path; give them a moment.
    let mut log = serde_json::Value::Null;
    for _ in 0..50 {
        log = app
            .get_as(&admin, &format!("/api/v1/patients/{id}/access-log"))
            .await
            .json();
        if log["total"].as_u64().unwrap_or(0) >= 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let actions: Vec<(String, i64)> = log["data"]
        .as_array()
        .expect("list")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or("").to_owned(),
                e["status"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    for expected in [
        ("patients.create", 201),
        ("patients.read", 200),
        ("patients.list", 200),
        ("patients.access-log.read", 403),
    ] {
        assert!(
            actions
                .iter()
                .any(|(a, s)| a == expected.0 && *s == expected.1),
            "{expected:?} in {actions:?}"
        );
    }
    let entry = &log["data"][0];
    assert!(entry["request_id"].as_str().is_some_and(|r| !r.is_empty()));
    assert_eq!(entry["ip"], "127.0.0.1");
    // Audit entries carry no medical details.
    let raw = app
        .get_as(&admin, &format!("/api/v1/audit?patient_id={id}"))
        .await;
    assert_eq!(raw.status, StatusCode::OK);
    assert!(!String::from_utf8_lossy(&raw.body)
        .to_lowercase()
        .contains("osteoarthritis"));
    let by_actor = app
        .get_as(
            &admin,
            &format!("/api/v1/audit?actor_id={}&action=patients.read", staff.id),
        )
        .await
        .json();
    assert!(by_actor["total"].as_u64().unwrap_or(0) >= 1);
    app.get_as(&staff, "/api/v1/audit")
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    app.get_as(&admin, "/api/v1/audit?from=2026-13-01")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    // Nothing in the API changes audit entries.
    app.send_as(
        Some(&admin.token),
        axum::http::Method::DELETE,
        "/api/v1/audit",
        None,
    )
    .await
    .assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}

#[tokio::test]
async fn the_restore_screen_lists_deleted_patients_for_admins() {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let staff = app.login_as(Role::Staff).await;
    let mut ids = Vec::new();
    for name in ["Kept", "Gone One", "Gone Two"] {
        let res = app
            .post_as(
                &staff,
                "/api/v1/patients",
                &json!({"name": name, "country": "IT"}),
            )
            .await;
        ids.push(res.json()["id"].as_str().expect("id").to_owned());
    }
    for id in &ids[1..] {
        let res = app
            .delete_as(&staff, &format!("/api/v1/patients/{id}"))
            .await;
        assert!(res.status.is_success(), "{:?}", res.json());
    }
    let names = |body: Value| -> Vec<String> {
        let mut v: Vec<String> = body["data"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|p| p["name"].as_str().expect("name").to_owned())
            .collect();
        v.sort();
        v
    };
    let res = app.get_as(&admin, "/api/v1/patients?deleted=true").await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    let body = res.json();
    assert_eq!(body["total"], 2);
    assert!(body["data"][0]["deleted_at"].is_string(), "{body}");
    assert_eq!(names(body), ["Gone One", "Gone Two"]);
    let res = app
        .get_as(&admin, "/api/v1/patients?deleted=true&q=two")
        .await;
    assert_eq!(names(res.json()), ["Gone Two"]);
    let live = app
        .get_as(&admin, "/api/v1/patients?deleted=false")
        .await
        .json();
    assert_eq!(names(live), ["Kept"]);

    // Staff may list patients but not the deleted ones, until granted.
    app.get_as(&staff, "/api/v1/patients?deleted=true")
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    let rule = json!({"rules": [{"method": "GET", "path": "/api/v1/patients?deleted=true", "allow": true}]});
    let res = app.put_as(&admin, "/api/v1/permissions/staff", &rule).await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    let res = app.get_as(&staff, "/api/v1/patients?deleted=true").await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());

    // A restored patient leaves the screen.
    let res = app
        .post_as(
            &staff,
            &format!("/api/v1/patients/{}/restore", ids[1]),
            &json!({}),
        )
        .await;
    assert!(res.status.is_success(), "{:?}", res.json());
    let body = app
        .get_as(&admin, "/api/v1/patients?deleted=true")
        .await
        .json();
    assert_eq!(names(body), ["Gone Two"]);
}
