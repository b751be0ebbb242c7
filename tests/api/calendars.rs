//! The daily screens' lists across patients: the appointment calendar, the
//! treatment list and the directory. Every filter is checked by the rows it
//! returns.

use axum::http::StatusCode;
use chrono::{Duration, Utc};
use healthcrm::domain::user::Role;
use serde_json::{json, Value};

use crate::{
    helpers::{Session, TestApp},
    hospitals::create_hospital,
    users::{upload, PNG},
};

fn day(n: i64) -> String {
    (Utc::now().date_naive() + Duration::days(n))
        .format("%Y-%m-%d")
        .to_string()
}

async fn patient(app: &TestApp, s: &Session, name: &str, assignee: Option<&Session>) -> String {
    let mut body = json!({"name": name, "country": "DE"});
    if let Some(a) = assignee {
        body["assigned_to"] = json!(a.id.to_string());
    }
    let res = app.post_as(s, "/api/v1/patients", &body).await;
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
    res.json()["id"].as_str().expect("id").to_owned()
}

async fn log(app: &TestApp, s: &Session, patient: &str, body: Value) {
    let res = app
        .post_as(
            s,
            &format!("/api/v1/patients/{patient}/appointments"),
            &body,
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
}

/// The patient names of a list's rows, in order, and the total.
async fn rows(app: &TestApp, s: &Session, url: &str) -> (Vec<String>, u64) {
    let res = app.get_as(s, url).await;
    assert_eq!(res.status, StatusCode::OK, "{url}: {:?}", res.json());
    let body = res.json();
    let names = body["data"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["patient_name"].as_str().expect("patient_name").to_owned())
        .collect();
    (names, body["total"].as_u64().expect("total"))
}

fn named(list: &[&str]) -> (Vec<String>, u64) {
    (
        list.iter().map(|s| (*s).to_owned()).collect(),
        list.len() as u64,
    )
}

#[tokio::test]
async fn the_appointment_calendar_filters_by_date_assignee_hospital_and_status() {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let staff = app.login_as(Role::Staff).await;
    let hospital = create_hospital(&app, &admin, "Calendar Hospital").await;
    let mine = patient(&app, &staff, "Mine", Some(&staff)).await;
    let other = patient(&app, &staff, "Other", None).await;
    let gone = patient(&app, &staff, "Gone", None).await;
    let at = |n: i64| format!("{}T10:00:00Z", day(n));
    log(
        &app,
        &staff,
        &mine,
        json!({"hospital_id": hospital, "appointment_date": at(2),
        "discussion_notes": "consultation", "status": "scheduled"}),
    )
    .await;
    log(
        &app,
        &staff,
        &mine,
        json!({"discussion_notes": "undated call", "status": "completed"}),
    )
    .await;
    log(
        &app,
        &staff,
        &other,
        json!({"appointment_date": at(5),
        "discussion_notes": "video call", "status": "completed"}),
    )
    .await;
    log(
        &app,
        &staff,
        &gone,
        json!({"appointment_date": at(3),
        "discussion_notes": "to be deleted", "status": "scheduled"}),
    )
    .await;
    let res = app
        .delete_as(&admin, &format!("/api/v1/patients/{gone}"))
        .await;
    assert!(res.status.is_success());

    let base = "/api/v1/appointments";
    // Dated appointments of live patients, earliest first, with names.
    assert_eq!(rows(&app, &staff, base).await, named(&["Mine", "Other"]));
    let first = app.get_as(&staff, base).await.json()["data"][0].clone();
    assert_eq!(first["discussion_notes"], "consultation");
    assert_eq!(first["patient_id"], mine.as_str());
    let from = format!("{base}?from={}", day(4));
    assert_eq!(rows(&app, &staff, &from).await, named(&["Other"]));
    let to = format!("{base}?to={}", day(3));
    assert_eq!(rows(&app, &staff, &to).await, named(&["Mine"]));
    let window = format!("{base}?from={}&to={}", day(6), day(9));
    assert_eq!(rows(&app, &staff, &window).await, named(&[]));
    let assigned = format!("{base}?assigned_to={}", staff.id);
    assert_eq!(rows(&app, &staff, &assigned).await, named(&["Mine"]));
    let by_hospital = format!("{base}?hospital_id={hospital}");
    assert_eq!(rows(&app, &staff, &by_hospital).await, named(&["Mine"]));
    let done = format!("{base}?status=completed");
    assert_eq!(rows(&app, &staff, &done).await, named(&["Other"]));
    let scheduled = format!("{base}?status=scheduled&assigned_to={}", admin.id);
    assert_eq!(rows(&app, &staff, &scheduled).await, named(&[]));

    // A restored patient's appointments come back.
    let res = app
        .post_as(
            &admin,
            &format!("/api/v1/patients/{gone}/restore"),
            &json!({}),
        )
        .await;
    assert!(res.status.is_success(), "{:?}", res.json());
    assert_eq!(
        rows(&app, &staff, base).await,
        named(&["Mine", "Gone", "Other"])
    );

    let backwards = format!("{base}?from={}&to={}", day(5), day(1));
    app.get_as(&staff, &backwards)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    app.get_as(&staff, &format!("{base}?status=someday"))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "bad_request");
}

#[tokio::test]
async fn the_treatment_list_filters_by_status_hospital_and_date() {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let staff = app.login_as(Role::Staff).await;
    let north = create_hospital(&app, &admin, "North Clinic").await;
    let south = create_hospital(&app, &admin, "South Clinic").await;
    let record = |patient: String, hospital: String, status: &'static str| {
        let app = &app;
        let staff = &staff;
        async move {
            let body = json!({"treatment_type": "knee replacement", "disease": "osteoarthritis",
                "hospital_id": hospital, "cost": {"amount_minor": 1_000_000, "currency": "EUR"},
                "earnings": {"amount_minor": 100_000, "currency": "EUR"}, "status": status});
            let res = app
                .post_as(
                    staff,
                    &format!("/api/v1/patients/{patient}/treatments"),
                    &body,
                )
                .await;
            assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
        }
    };
    let a = patient(&app, &staff, "Planned North", None).await;
    let b = patient(&app, &staff, "Completed South", None).await;
    let c = patient(&app, &staff, "Deleted", None).await;
    record(a, north.clone(), "planned").await;
    record(b, south.clone(), "completed").await;
    record(c.clone(), north.clone(), "in_progress").await;
    app.delete_as(&admin, &format!("/api/v1/patients/{c}"))
        .await;

    let base = "/api/v1/treatments";
    assert_eq!(
        rows(&app, &staff, base).await,
        named(&["Completed South", "Planned North"]),
        "newest first, the deleted patient's left out"
    );
    let url = format!("{base}?status=completed");
    assert_eq!(rows(&app, &staff, &url).await, named(&["Completed South"]));
    let url = format!("{base}?hospital_id={north}");
    assert_eq!(rows(&app, &staff, &url).await, named(&["Planned North"]));
    let url = format!("{base}?status=in_progress");
    assert_eq!(rows(&app, &staff, &url).await, named(&[]));
    let url = format!("{base}?from={}", day(1));
    assert_eq!(rows(&app, &staff, &url).await, named(&[]));
    let url = format!("{base}?from={}&to={}", day(0), day(0));
    assert_eq!(rows(&app, &staff, &url).await.1, 2);
    let row = app.get_as(&staff, base).await.json()["data"][0].clone();
    assert_eq!(row["cost"]["amount_minor"], 1_000_000);
    assert_eq!(row["hospital_id"], south.as_str());
}

#[tokio::test]
async fn the_directory_lists_active_colleagues_for_staff() {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let staff = app.login_as(Role::Staff).await;
    let (leaver, _) = app.create_user(Role::Staff).await;
    let res = app
        .post_as(
            &admin,
            &format!("/api/v1/users/{leaver}/deactivate"),
            &json!({}),
        )
        .await;
    assert!(res.status.is_success(), "{:?}", res.json());
    let res = upload(&app, &admin, "/api/v1/auth/me/avatar", "me.png", PNG).await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());

    let res = app.get_as(&staff, "/api/v1/directory").await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    let body = res.json();
    let people = body["data"].as_array().expect("rows");
    let ids: Vec<&str> = people.iter().filter_map(|p| p["id"].as_str()).collect();
    assert_eq!(body["total"], 2, "{body}");
    assert!(
        ids.contains(&admin.id.to_string().as_str())
            && ids.contains(&staff.id.to_string().as_str())
    );
    assert!(
        !ids.contains(&leaver.to_string().as_str()),
        "inactive users are left out"
    );
    for p in people {
        assert!(
            p.get("email").is_none() && p.get("permissions").is_none(),
            "{p}"
        );
    }
    let me = people
        .iter()
        .find(|p| p["id"] == admin.id.to_string())
        .expect("admin");
    assert_eq!(me["role"], "admin");
    let url = me["avatar_url"].as_str().expect("avatar_url");
    let got = app.get_as(&staff, url).await;
    assert_eq!(got.status, StatusCode::OK, "staff read colleagues' avatars");
    assert_eq!(&got.body[..], PNG);
    let plain = people
        .iter()
        .find(|p| p["id"] == staff.id.to_string())
        .expect("staff");
    assert_eq!(plain["avatar_url"], Value::Null);
    // The directory searches names only: e-mails stay hidden, even to probes.
    let probe = app.get_as(&staff, "/api/v1/directory?q=%40").await.json();
    assert_eq!(
        (probe["total"].clone(), probe["data"].clone()),
        (json!(0), json!([]))
    );
    let first: String = me["name"].as_str().expect("name").chars().take(3).collect();
    let found = app
        .get_as(
            &staff,
            &format!("/api/v1/directory?q={}", first.to_uppercase()),
        )
        .await
        .json();
    assert!(
        found["data"]
            .as_array()
            .expect("rows")
            .iter()
            .any(|p| p["id"] == admin.id.to_string()),
        "{found}"
    );
    let admins = app
        .get_as(&staff, "/api/v1/directory?role=admin")
        .await
        .json();
    assert_eq!(admins["total"], 1);
    assert_eq!(admins["data"][0]["id"], admin.id.to_string());
}
