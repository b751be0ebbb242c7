//! Hospitals through the API.

use axum::http::StatusCode;
use healthcrm::domain::user::Role;
use serde_json::{json, Value};

use crate::helpers::{Session, TestApp};

pub fn hospital_body(name: &str, country: &str) -> Value {
    json!({"name": name, "location": "Istanbul", "country": country, "commission_bps": 1250,
           "currency": "EUR", "specialties": ["orthopedics", "cardiology"],
           "contact": {"person": "Ayse", "email": "intl@hospital.test", "phone": "+90 212 000 00 00"}})
}

pub async fn create_hospital(app: &TestApp, s: &Session, name: &str) -> String {
    let res = app
        .post_as(s, "/api/v1/hospitals", &hospital_body(name, "TR"))
        .await;
    assert_eq!(
        res.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&res.body)
    );
    res.json()["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn hospitals_crud_with_unique_names_per_country() {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let id = create_hospital(&app, &admin, "Acibadem Maslak").await;
    let got = app
        .get_as(&admin, &format!("/api/v1/hospitals/{id}"))
        .await
        .json();
    assert_eq!(got["name"], "Acibadem Maslak");
    assert_eq!(got["commission_bps"], 1250);
    assert_eq!(got["patients_assigned"], 0);
    assert_eq!(got["active"], true);

    let dup = app
        .post_as(
            &admin,
            "/api/v1/hospitals",
            &hospital_body("ACIBADEM maslak", "TR"),
        )
        .await;
    dup.assert_error(StatusCode::CONFLICT, "conflict");
    let other_country = app
        .post_as(
            &admin,
            "/api/v1/hospitals",
            &hospital_body("Acibadem Maslak", "DE"),
        )
        .await;
    assert_eq!(other_country.status, StatusCode::CREATED);

    let res = app
        .patch_as(
            &admin,
            &format!("/api/v1/hospitals/{id}"),
            &json!({"active": false, "commission_bps": 1500}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    assert_eq!(res.json()["active"], false);
    assert_eq!(res.json()["commission_bps"], 1500);
    assert_eq!(
        app.get_as(&admin, &format!("/api/v1/hospitals/{id}"))
            .await
            .json()["active"],
        false
    );

    let listed = app
        .get_as(&admin, "/api/v1/hospitals?country=TR")
        .await
        .json();
    assert_eq!(listed["total"], 1);
    let listed = app
        .get_as(&admin, "/api/v1/hospitals?q=maslak&active=true")
        .await
        .json();
    assert_eq!(listed["total"], 1, "only the German one is active");

    assert_eq!(
        app.delete_as(&admin, &format!("/api/v1/hospitals/{id}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    app.get_as(&admin, &format!("/api/v1/hospitals/{id}"))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn bad_hospital_input_is_refused() {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let mut cases = Vec::new();
    for (field, value) in [
        ("country", json!("UK")),
        ("country", json!("tr")),
        ("currency", json!("EURO")),
        ("commission_bps", json!(-1)),
        ("commission_bps", json!(10001)),
        ("commission_bps", json!(12.5)),
        ("name", json!("")),
        ("name", json!({"$gt": ""})),
        ("contact", json!({"email": "nope"})),
        ("bogus", json!(1)),
    ] {
        let mut body = hospital_body("X", "TR");
        body[field] = value;
        cases.push(body);
    }
    for body in cases {
        app.post_as(&admin, "/api/v1/hospitals", &body)
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    assert_eq!(
        app.get_as(&admin, "/api/v1/hospitals").await.json()["total"],
        0,
        "nothing written"
    );
    app.get_as(&admin, "/api/v1/hospitals/xyz")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_id");
    app.get_as(&admin, "/api/v1/hospitals?country=Turkey")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "bad_request");
}

#[tokio::test]
async fn staff_read_hospitals_but_cannot_change_them() {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let staff = app.login_as(Role::Staff).await;
    let id = create_hospital(&app, &admin, "Memorial").await;
    assert_eq!(
        app.get_as(&staff, "/api/v1/hospitals").await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get_as(&staff, &format!("/api/v1/hospitals/{id}"))
            .await
            .status,
        StatusCode::OK
    );
    app.post_as(&staff, "/api/v1/hospitals", &hospital_body("Y", "TR"))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    app.patch_as(
        &staff,
        &format!("/api/v1/hospitals/{id}"),
        &json!({"active": false}),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");
    app.delete_as(&staff, &format!("/api/v1/hospitals/{id}"))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn a_hospital_deleted_while_a_patient_is_assigned_is_never_left_referenced() {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    for round in 0..4 {
        let hospital = create_hospital(&app, &admin, &format!("Race {round}")).await;
        let res = app
            .post_as(
                &admin,
                "/api/v1/patients",
                &json!({"name": "Racing Patient", "country": "GB"}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
        let patient = res.json()["id"].as_str().expect("id").to_owned();
        let assign_path = format!("/api/v1/patients/{patient}/hospital");
        let assign_body = json!({"hospital_id": hospital});
        let delete_path = format!("/api/v1/hospitals/{hospital}");
        let (assigned, deleted) = tokio::join!(
            app.put_as(&admin, &assign_path, &assign_body),
            app.delete_as(&admin, &delete_path),
        );
        let exists = app
            .get_as(&admin, &format!("/api/v1/hospitals/{hospital}"))
            .await
            .status
            == StatusCode::OK;
        let linked = app
            .get_as(&admin, &format!("/api/v1/patients/{patient}"))
            .await
            .json()["hospital_id"]
            == json!(hospital);
        match (assigned.status, deleted.status) {
            (StatusCode::OK, StatusCode::CONFLICT) => assert!(exists && linked, "round {round}"),
            (StatusCode::UNPROCESSABLE_ENTITY, StatusCode::NO_CONTENT) => {
                assert!(!exists && !linked, "round {round}")
            }
            other => panic!("round {round}: assign and delete answered {other:?}"),
        }
    }
}

#[tokio::test]
async fn hospital_list_rows_carry_patients_assigned_and_every_filter_returns_its_rows() {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let staff = app.login_as(Role::Staff).await;
    let busy = create_hospital(&app, &admin, "Busy Clinic").await;
    create_hospital(&app, &admin, "Quiet Clinic").await;
    let res = app
        .post_as(
            &admin,
            "/api/v1/hospitals",
            &hospital_body("Berlin Charite", "DE"),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
    let berlin = res.json()["id"].as_str().expect("id").to_owned();
    let res = app
        .patch_as(
            &admin,
            &format!("/api/v1/hospitals/{berlin}"),
            &json!({"active": false}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    let mut patients = Vec::new();
    for name in ["One Patient", "Two Patient", "Gone Patient"] {
        let res = app
            .post_as(
                &staff,
                "/api/v1/patients",
                &json!({"name": name, "country": "GB", "hospital_id": busy}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
        patients.push(res.json()["id"].as_str().expect("id").to_owned());
    }
    // A deleted patient no longer counts.
    let res = app
        .delete_as(&admin, &format!("/api/v1/patients/{}", patients[2]))
        .await;
    assert!(res.status.is_success(), "{:?}", res.status);

    let rows = |q: &str| {
        let app = &app;
        let staff = &staff;
        let q = q.to_owned();
        async move {
            let res = app.get_as(staff, &format!("/api/v1/hospitals{q}")).await;
            assert_eq!(res.status, StatusCode::OK, "{q}: {:?}", res.json());
            let body = res.json();
            let mut rows: Vec<(String, u64)> = body["data"]
                .as_array()
                .expect("rows")
                .iter()
                .map(|h| {
                    (
                        h["name"].as_str().expect("name").to_owned(),
                        h["patients_assigned"].as_u64().expect("patients_assigned"),
                    )
                })
                .collect();
            rows.sort();
            assert_eq!(body["total"].as_u64(), Some(rows.len() as u64), "{q}");
            rows
        }
    };
    let row = |name: &str, n: u64| (name.to_owned(), n);
    assert_eq!(
        rows("").await,
        [
            row("Berlin Charite", 0),
            row("Busy Clinic", 2),
            row("Quiet Clinic", 0)
        ]
    );
    assert_eq!(
        rows("?country=TR").await,
        [row("Busy Clinic", 2), row("Quiet Clinic", 0)]
    );
    assert_eq!(rows("?q=QUIET").await, [row("Quiet Clinic", 0)]);
    assert_eq!(rows("?active=false").await, [row("Berlin Charite", 0)]);
    assert_eq!(
        rows("?active=true&country=TR&q=clinic").await,
        [row("Busy Clinic", 2), row("Quiet Clinic", 0)]
    );
}
