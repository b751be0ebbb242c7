//! Treatments and the earnings ledger through the API.

use axum::http::StatusCode;
use chrono::{Datelike, Duration, Utc};
use healthcrm::domain::user::Role;
use serde_json::{json, Value};

use crate::{
    helpers::{Session, TestApp},
    hospitals::create_hospital,
};

/// An app with an admin, a staff member, a hospital and a patient.
pub struct World {
    pub app: TestApp,
    pub admin: Session,
    pub staff: Session,
    pub hospital: String,
    pub patient: String,
}

pub async fn world() -> World {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let staff = app.login_as(Role::Staff).await;
    let hospital = create_hospital(&app, &admin, "Ledger Hospital").await;
    let res = app
        .post_as(
            &staff,
            "/api/v1/patients",
            &json!({"name": "Payer", "country": "NL"}),
        )
        .await;
    let patient = res.json()["id"].as_str().expect("id").to_owned();
    World {
        app,
        admin,
        staff,
        hospital,
        patient,
    }
}

fn treatment(hospital: &str, status: &str) -> Value {
    json!({"treatment_type": "knee replacement", "disease": "osteoarthritis", "hospital_id": hospital,
           "cost": {"amount_minor": 1_200_000, "currency": "EUR"},
           "earnings": {"amount_minor": 150_000, "currency": "EUR"}, "status": status})
}

async fn record(w: &World, status: &str) -> Value {
    let res = w
        .app
        .post_as(
            &w.staff,
            &format!("/api/v1/patients/{}/treatments", w.patient),
            &treatment(&w.hospital, status),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
    res.json()
}

async fn ledger(w: &World) -> Vec<Value> {
    w.app.get_as(&w.admin, "/api/v1/earnings").await.json()["data"]
        .as_array()
        .expect("list")
        .clone()
}

#[tokio::test]
async fn completing_a_treatment_books_earnings_exactly_once() {
    let w = world().await;
    let t = record(&w, "planned").await;
    let path = format!("/api/v1/treatments/{}", t["id"].as_str().expect("id"));
    assert!(ledger(&w).await.is_empty());

    let res = w
        .app
        .patch_as(
            &w.staff,
            &path,
            &json!({"version": 1, "status": "in_progress"}),
        )
        .await;
    assert!(res.json()["started_at"].is_string());
    let res = w
        .app
        .patch_as(
            &w.staff,
            &path,
            &json!({"version": 2, "status": "completed"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    assert!(res.json()["completed_at"].is_string());
    // The same request retried, and further updates: still one credit.
    w.app
        .patch_as(
            &w.staff,
            &path,
            &json!({"version": 2, "status": "completed"}),
        )
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
    let res = w
        .app
        .patch_as(
            &w.staff,
            &path,
            &json!({"version": 3, "disease": "severe osteoarthritis"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    let entries = ledger(&w).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["kind"], "credit");
    assert_eq!(entries[0]["amount_minor"], 150_000);
    assert_eq!(entries[0]["currency"], "EUR");
    assert_eq!(entries[0]["patient_id"], w.patient);

    // Money of a completed treatment is fixed.
    w.app
        .patch_as(
            &w.staff,
            &path,
            &json!({"version": 4, "earnings": {"amount_minor": 1, "currency": "EUR"}}),
        )
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

    // Cancelling reverses instead of deleting history.
    let res = w
        .app
        .patch_as(
            &w.staff,
            &path,
            &json!({"version": 4, "status": "cancelled"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    let entries = ledger(&w).await;
    assert_eq!(entries.len(), 2);
    let net: i64 = entries
        .iter()
        .map(|e| e["amount_minor"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(net, 0);
    assert!(entries
        .iter()
        .any(|e| e["kind"] == "reversal" && e["amount_minor"] == -150_000));
    w.app
        .patch_as(
            &w.staff,
            &path,
            &json!({"version": 5, "status": "completed"}),
        )
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
}

#[tokio::test]
async fn bad_money_and_treatments_are_refused_with_nothing_written() {
    let w = world().await;
    let path = format!("/api/v1/patients/{}/treatments", w.patient);
    let mut cases = Vec::new();
    for (field, value) in [
        ("cost", json!({"amount_minor": -1, "currency": "EUR"})),
        ("cost", json!({"amount_minor": 12.5, "currency": "EUR"})),
        ("cost", json!({"amount_minor": "100", "currency": "EUR"})),
        ("cost", json!({"amount_minor": 100, "currency": "euro"})),
        ("cost", json!(1000)),
        (
            "earnings",
            json!({"amount_minor": 150_000, "currency": "USD"}),
        ),
        (
            "earnings",
            json!({"amount_minor": 9_999_999, "currency": "EUR"}),
        ),
        ("earnings", json!({"amount_minor": -5, "currency": "EUR"})),
        ("status", json!("done")),
        ("status", json!("cancelled")),
        ("hospital_id", json!("000000000000000000000000")),
        ("hospital_id", json!(null)),
        ("treatment_type", json!("")),
        ("appointment_ids", json!(["000000000000000000000000"])),
        ("extra", json!(true)),
    ] {
        let mut body = treatment(&w.hospital, "planned");
        body[field] = value;
        cases.push(body);
    }
    for body in cases {
        w.app
            .post_as(&w.staff, &path, &body)
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    assert_eq!(w.app.get_as(&w.staff, &path).await.json()["total"], 0);
    assert!(ledger(&w).await.is_empty());
}

#[tokio::test]
async fn a_returning_patient_becomes_a_repeat_patient() {
    let w = world().await;
    record(&w, "completed").await;
    let p = w
        .app
        .get_as(&w.staff, &format!("/api/v1/patients/{}", w.patient))
        .await
        .json();
    assert_eq!(
        p["status"], "new",
        "the first treatment does not make a repeat patient"
    );
    record(&w, "planned").await;
    let p = w
        .app
        .get_as(&w.staff, &format!("/api/v1/patients/{}", w.patient))
        .await
        .json();
    assert_eq!(p["status"], "repeat");
    // The hospital now has treatments: it cannot be deleted.
    w.app
        .delete_as(&w.admin, &format!("/api/v1/hospitals/{}", w.hospital))
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
}

#[tokio::test]
async fn summaries_group_by_period_and_currency_net_of_reversals() {
    let w = world().await;
    record(&w, "completed").await;
    let usd = json!({"treatment_type": "dental implants", "disease": "tooth loss", "hospital_id": w.hospital,
        "cost": {"amount_minor": 500_000, "currency": "USD"}, "earnings": {"amount_minor": 50_000, "currency": "USD"}, "status": "completed"});
    let res = w
        .app
        .post_as(
            &w.staff,
            &format!("/api/v1/patients/{}/treatments", w.patient),
            &usd,
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
    let cancelled = record(&w, "completed").await;
    let res = w
        .app
        .patch_as(
            &w.staff,
            &format!(
                "/api/v1/treatments/{}",
                cancelled["id"].as_str().expect("id")
            ),
            &json!({"version": 1, "status": "cancelled"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);

    let today = Utc::now().date_naive();
    let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
    for (period, start) in [
        ("weekly", monday),
        ("monthly", today.with_day(1).expect("first")),
        (
            "yearly",
            today
                .with_day(1)
                .and_then(|d| d.with_month(1))
                .expect("jan 1"),
        ),
    ] {
        let rows = w
            .app
            .get_as(
                &w.admin,
                &format!("/api/v1/earnings/summary?period={period}"),
            )
            .await
            .json();
        let rows = rows.as_array().expect("rows").clone();
        assert_eq!(rows.len(), 2, "{period}: one row per currency: {rows:?}");
        let eur = rows.iter().find(|r| r["currency"] == "EUR").expect("EUR");
        assert_eq!(eur["period_start"], start.to_string(), "{period}");
        assert_eq!(
            eur["amount_minor"], 150_000,
            "one credit, one credit+reversal"
        );
        assert_eq!(eur["treatments"], 1);
        let usd = rows.iter().find(|r| r["currency"] == "USD").expect("USD");
        assert_eq!(usd["amount_minor"], 50_000);
    }
    let yesterday = today - Duration::days(1);
    let none = w
        .app
        .get_as(
            &w.admin,
            &format!("/api/v1/earnings/summary?period=monthly&to={yesterday}"),
        )
        .await
        .json();
    assert_eq!(none, json!([]));
    for bad in [
        "",
        "?period=daily",
        "?period=weekly&from=2026-02-30",
        "?period=weekly&from=2026-02-01&to=2026-01-01",
    ] {
        w.app
            .get_as(&w.admin, &format!("/api/v1/earnings/summary{bad}"))
            .await
            .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    }
    // Staff do not see earnings.
    w.app
        .get_as(&w.staff, "/api/v1/earnings")
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    w.app
        .get_as(&w.staff, "/api/v1/earnings/summary?period=weekly")
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    let by_hospital = w
        .app
        .get_as(
            &w.admin,
            &format!("/api/v1/earnings?hospital_id={}", w.hospital),
        )
        .await
        .json();
    assert_eq!(by_hospital["total"], 4);
    let rows = by_hospital["data"].as_array().expect("rows");
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|e| e["hospital_id"] == w.hospital.as_str()));
    let elsewhere = format!(
        "/api/v1/earnings?hospital_id={}",
        "0123456789abcdef01234567"
    );
    let none = w.app.get_as(&w.admin, &elsewhere).await.json();
    assert_eq!(
        (none["total"].clone(), none["data"].clone()),
        (json!(0), json!([]))
    );
    let today = Utc::now().date_naive();
    let window = format!("/api/v1/earnings?from={today}&to={today}");
    let todays = w.app.get_as(&w.admin, &window).await.json();
    assert_eq!(todays["total"], 4);
    assert_eq!(todays["data"].as_array().map(Vec::len), Some(4));
    let later = format!("/api/v1/earnings?from={}", today + Duration::days(1));
    let later = w.app.get_as(&w.admin, &later).await.json();
    assert_eq!(
        (later["total"].clone(), later["data"].clone()),
        (json!(0), json!([]))
    );
}

#[tokio::test]
async fn bad_updates_are_refused_and_change_nothing() {
    let w = world().await;
    let t = record(&w, "planned").await;
    let tpath = format!("/api/v1/treatments/{}", t["id"].as_str().expect("id"));
    // No version at all: the precondition is required (RFC 6585).
    w.app
        .patch_as(&w.staff, &tpath, &json!({"status": "completed"}))
        .await
        .assert_error(StatusCode::PRECONDITION_REQUIRED, "precondition_required");
    for body in [
        json!({"version": 1, "status": "finished"}),
        json!({"version": 1, "cost": {"amount_minor": -1, "currency": "EUR"}}),
        json!({"version": 1, "earnings": {"amount_minor": 2_000_000, "currency": "EUR"}}),
        json!({"version": 1, "earnings": {"amount_minor": 1, "currency": "GBP"}}),
        json!({"version": 1, "hospital_id": "000000000000000000000000"}),
        json!({"version": 1, "patient_id": w.patient}),
        json!({"version": 1, "disease": ""}),
    ] {
        w.app
            .patch_as(&w.staff, &tpath, &body)
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    assert_eq!(
        w.app.get_as(&w.staff, &tpath).await.json()["version"],
        1,
        "unchanged"
    );

    let res = w
        .app
        .post_as(
            &w.staff,
            &format!("/api/v1/patients/{}/appointments", w.patient),
            &json!({"discussion_notes": "first call", "status": "scheduled"}),
        )
        .await;
    let apath = format!(
        "/api/v1/appointments/{}",
        res.json()["id"].as_str().expect("id")
    );
    w.app
        .patch_as(&w.staff, &apath, &json!({"status": "missed"}))
        .await
        .assert_error(StatusCode::PRECONDITION_REQUIRED, "precondition_required");
    for body in [
        json!({"version": 1, "status": "gone"}),
        json!({"version": 1, "discussion_notes": ""}),
        json!({"version": 1, "appointment_date": "yesterday"}),
        json!({"version": 1, "next_follow_up": "2026-02-30"}),
        json!({"version": 1, "hospital_id": "000000000000000000000000"}),
    ] {
        w.app
            .patch_as(&w.staff, &apath, &body)
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    assert_eq!(
        w.app.get_as(&w.staff, &apath).await.json()["version"],
        1,
        "unchanged"
    );

    let hpath = format!("/api/v1/hospitals/{}", w.hospital);
    for body in [
        json!({"country": "XX"}),
        json!({"currency": "eur"}),
        json!({"commission_bps": 20000}),
        json!({"name": ""}),
        json!({"active": "no"}),
        json!({"created_at": "2020-01-01T00:00:00Z"}),
    ] {
        w.app
            .patch_as(&w.admin, &hpath, &body)
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    assert_eq!(
        w.app.get_as(&w.admin, &hpath).await.json()["name"],
        "Ledger Hospital",
        "unchanged"
    );
    // Ids of other kinds or malformed ones in the path.
    w.app
        .get_as(&w.staff, "/api/v1/treatments/xyz")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_id");
    w.app
        .get_as(&w.staff, &format!("/api/v1/treatments/{}", w.patient))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

async fn patient_status(w: &World, patient: &str) -> Value {
    w.app
        .get_as(&w.staff, &format!("/api/v1/patients/{patient}"))
        .await
        .json()
}

async fn status_steps(w: &World, patient: &str) -> Vec<(String, String)> {
    let history = w
        .app
        .get_as(&w.staff, &format!("/api/v1/patients/{patient}/history"))
        .await
        .json();
    history["data"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|e| e["entity"] == "patient" && e["action"] == "status_change")
        .map(|e| {
            let change = &e["changes"]["treatment_status"];
            (
                change["before"].as_str().unwrap_or_default().to_owned(),
                change["after"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_patients_status_follows_the_treatment() {
    let w = world().await;
    // Starting a treatment moves a ready patient to coming; completing it
    // moves them to completed.
    let path = format!("/api/v1/patients/{}", w.patient);
    let res = w
        .app
        .patch_as(
            &w.staff,
            &path,
            &json!({"version": 1, "treatment_status": "ready"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    let t = record(&w, "planned").await;
    assert_eq!(
        patient_status(&w, &w.patient).await["treatment_status"],
        "ready"
    );
    let tpath = format!("/api/v1/treatments/{}", t["id"].as_str().expect("id"));
    let res = w
        .app
        .patch_as(
            &w.staff,
            &tpath,
            &json!({"version": 1, "status": "in_progress"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    assert_eq!(
        patient_status(&w, &w.patient).await["treatment_status"],
        "coming"
    );
    let res = w
        .app
        .patch_as(
            &w.staff,
            &tpath,
            &json!({"version": 2, "status": "completed"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    let p = patient_status(&w, &w.patient).await;
    assert_eq!(p["treatment_status"], "completed", "{p}");
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(
        status_steps(&w, &w.patient).await,
        [
            pair("inquiry", "ready"),
            pair("ready", "coming"),
            pair("coming", "completed")
        ]
    );

    // A treatment recorded as completed takes an inquiry through every stage.
    let res = w
        .app
        .post_as(
            &w.staff,
            "/api/v1/patients",
            &json!({"name": "Walk-in", "country": "NL"}),
        )
        .await;
    let other = res.json()["id"].as_str().expect("id").to_owned();
    let res = w
        .app
        .post_as(
            &w.staff,
            &format!("/api/v1/patients/{other}/treatments"),
            &treatment(&w.hospital, "completed"),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
    assert_eq!(
        patient_status(&w, &other).await["treatment_status"],
        "completed"
    );
    assert_eq!(
        status_steps(&w, &other).await,
        [
            pair("inquiry", "ready"),
            pair("ready", "coming"),
            pair("coming", "completed")
        ]
    );

    // Starting a treatment leaves an inquiry alone (only ready moves).
    let res = w
        .app
        .post_as(
            &w.staff,
            "/api/v1/patients",
            &json!({"name": "Early", "country": "NL"}),
        )
        .await;
    let early = res.json()["id"].as_str().expect("id").to_owned();
    let res = w
        .app
        .post_as(
            &w.staff,
            &format!("/api/v1/patients/{early}/treatments"),
            &treatment(&w.hospital, "in_progress"),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
    assert_eq!(
        patient_status(&w, &early).await["treatment_status"],
        "inquiry"
    );
    assert!(status_steps(&w, &early).await.is_empty());
}
