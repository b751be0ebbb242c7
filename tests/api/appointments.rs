//! Appointments and the follow-up queue through the API.

use axum::http::StatusCode;
use chrono::{Duration, Utc};
use healthcrm::domain::user::Role;
use serde_json::{json, Value};

use crate::helpers::{Session, TestApp};

async fn patient(app: &TestApp, s: &Session, name: &str, assigned_to: Option<String>) -> String {
    let mut body = json!({"name": name, "country": "GB"});
    if let Some(a) = assigned_to {
        body["assigned_to"] = json!(a);
    }
    let res = app.post_as(s, "/api/v1/patients", &body).await;
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
    res.json()["id"].as_str().expect("id").to_owned()
}

fn day(offset: i64) -> String {
    (Utc::now().date_naive() + Duration::days(offset)).to_string()
}

#[tokio::test]
async fn logging_an_appointment_sets_the_patients_next_follow_up() {
    let app = TestApp::spawn().await;
    let staff = app.login_as(Role::Staff).await;
    let id = patient(&app, &staff, "Visitor", None).await;
    let res = app.post_as(&staff, &format!("/api/v1/patients/{id}/appointments"), &json!({
        "appointment_date": "2026-11-20T10:30:00Z", "discussion_notes": "Discussed knee replacement options.",
        "next_follow_up": day(3), "status": "completed"})).await;
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
    let a = res.json();
    assert_eq!(a["created_by"], staff.id.to_string());
    assert_eq!(a["appointment_date"], "2026-11-20T10:30:00Z");
    let p = app
        .get_as(&staff, &format!("/api/v1/patients/{id}"))
        .await
        .json();
    assert_eq!(p["next_follow_up"], day(3));

    let list = app
        .get_as(&staff, &format!("/api/v1/patients/{id}/appointments"))
        .await
        .json();
    assert_eq!(list["total"], 1);
    let aid = a["id"].as_str().expect("id");
    let res = app
        .patch_as(
            &staff,
            &format!("/api/v1/appointments/{aid}"),
            &json!({"version": 1, "next_follow_up": day(7), "status": "completed"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    assert_eq!(res.json()["version"], 2);
    assert_eq!(
        app.get_as(&staff, &format!("/api/v1/patients/{id}"))
            .await
            .json()["next_follow_up"],
        day(7)
    );
    app.patch_as(
        &staff,
        &format!("/api/v1/appointments/{aid}"),
        &json!({"version": 1, "status": "missed"}),
    )
    .await
    .assert_error(StatusCode::CONFLICT, "conflict");

    let history = app
        .get_as(&staff, &format!("/api/v1/patients/{id}/history"))
        .await
        .json();
    let entities: Vec<&str> = history["data"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|e| e["entity"].as_str())
        .collect();
    assert!(
        entities.iter().filter(|e| **e == "appointment").count() >= 2,
        "{entities:?}"
    );
}

#[tokio::test]
async fn bad_appointments_are_refused_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let staff = app.login_as(Role::Staff).await;
    let id = patient(&app, &staff, "Careful", None).await;
    let path = format!("/api/v1/patients/{id}/appointments");
    for body in [
        json!({"status": "scheduled"}),
        json!({"discussion_notes": "x"}),
        json!({"discussion_notes": "", "status": "scheduled"}),
        json!({"discussion_notes": "x", "status": "postponed"}),
        json!({"discussion_notes": "x", "status": "scheduled", "appointment_date": "next tuesday"}),
        json!({"discussion_notes": "x", "status": "scheduled", "appointment_date": "2026-11-20"}),
        json!({"discussion_notes": "x", "status": "scheduled", "next_follow_up": "2026-13-01"}),
        json!({"discussion_notes": "x", "status": "scheduled", "hospital_id": "000000000000000000000000"}),
        json!({"discussion_notes": "x", "status": "scheduled", "patient_id": id}),
        json!({"discussion_notes": ["x"], "status": "scheduled"}),
    ] {
        app.post_as(&staff, &path, &body)
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    assert_eq!(app.get_as(&staff, &path).await.json()["total"], 0);
    app.post_as(
        &staff,
        "/api/v1/patients/000000000000000000000000/appointments",
        &json!({"discussion_notes": "x", "status": "scheduled"}),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");
    app.get_as(&staff, "/api/v1/appointments/nope")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_id");
}

#[tokio::test]
async fn the_follow_up_queue_lists_due_and_overdue_oldest_first() {
    let app = TestApp::spawn().await;
    let staff = app.login_as(Role::Staff).await;
    let other = app.login_as(Role::Staff).await;
    let mine = Some(staff.id.to_string());
    let set = |id: String, date: String| {
        let app = &app;
        let staff = &staff;
        async move {
            let res = app
                .patch_as(
                    staff,
                    &format!("/api/v1/patients/{id}"),
                    &json!({"version": 1, "next_follow_up": date}),
                )
                .await;
            assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
        }
    };
    set(
        patient(&app, &staff, "Overdue", mine.clone()).await,
        day(-2),
    )
    .await;
    set(patient(&app, &staff, "Today", mine.clone()).await, day(0)).await;
    set(patient(&app, &staff, "Later", mine.clone()).await, day(5)).await;
    set(
        patient(&app, &staff, "Someone else's", Some(other.id.to_string())).await,
        day(-1),
    )
    .await;
    patient(&app, &staff, "No follow-up", mine.clone()).await;

    let names = |v: &Value| -> Vec<String> {
        v["data"]
            .as_array()
            .expect("list")
            .iter()
            .map(|e| e["name"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    let due = app.get_as(&staff, "/api/v1/follow-ups").await.json();
    assert_eq!(names(&due), ["Overdue", "Someone else's", "Today"]);
    assert_eq!(due["data"][0]["overdue"], true);
    assert_eq!(due["data"][2]["overdue"], false);
    let mine_due = app
        .get_as(
            &staff,
            &format!("/api/v1/follow-ups?assigned_to={}", staff.id),
        )
        .await
        .json();
    assert_eq!(names(&mine_due), ["Overdue", "Today"]);
    let overdue = app
        .get_as(&staff, "/api/v1/follow-ups?overdue=true")
        .await
        .json();
    assert_eq!(names(&overdue), ["Overdue", "Someone else's"]);
    let week = app
        .get_as(&staff, &format!("/api/v1/follow-ups?due_before={}", day(7)))
        .await
        .json();
    assert_eq!(week["total"], 4);
    assert_eq!(week["data"].as_array().map(Vec::len), Some(4));
    // `to` is the new name of `due_before`.
    let week = app
        .get_as(&staff, &format!("/api/v1/follow-ups?to={}", day(7)))
        .await
        .json();
    assert_eq!(week["total"], 4);
    app.get_as(
        &staff,
        &format!("/api/v1/follow-ups?to={}&due_before={}", day(7), day(7)),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    app.get_as(&staff, "/api/v1/follow-ups?due_before=soon")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "bad_request");
}
