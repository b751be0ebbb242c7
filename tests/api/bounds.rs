//! Dates and money at the edges: every date a request names is held to
//! 1900-2200 and every amount to 10^13 minor units, answered as a 400
//! (query) or 422 (body) in the error shape, never a 500.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::treatments::World;

const RANGE: &str = "must be between 1900-01-01 and 2200-12-31";

/// The treatments tests' world plus one completed treatment, so the
/// earnings series has a currency and a period to stretch from the far past.
async fn world() -> World {
    let w = crate::treatments::world().await;
    let res = w
        .app
        .post_as(
            &w.staff,
            &format!("/api/v1/patients/{}/treatments", w.patient),
            &treatment(&w.hospital, 1_200_000, 150_000, "completed"),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
    w
}

fn treatment(hospital: &str, cost: i64, earnings: i64, status: &str) -> Value {
    json!({"treatment_type": "knee replacement", "disease": "osteoarthritis", "hospital_id": hospital,
           "cost": {"amount_minor": cost, "currency": "EUR"},
           "earnings": {"amount_minor": earnings, "currency": "EUR"}, "status": status})
}

#[tokio::test]
async fn extreme_dates_in_queries_are_400_never_500() {
    let w = world().await;
    for path in [
        // The request: a week start before chrono's first date.
        "/api/v1/reports/earnings?granularity=week&from=-262143-01-01",
        "/api/v1/reports/earnings?granularity=month&from=-262143-01-01",
        "/api/v1/reports/earnings?granularity=year&to=%2B262142-12-31",
        "/api/v1/reports/earnings?to=-262143-01-01",
        "/api/v1/reports/patients-by-age?from=1899-12-31",
        "/api/v1/reports/hospital-performance?to=2201-01-01",
        "/api/v1/reports/funnel?from=2201-01-01T00:00:00Z",
        "/api/v1/reports/treatments-by-type?from=1899-12-31T23:59:59Z",
        "/api/v1/dashboard?from=-262143-01-01",
        "/api/v1/dashboard?to=%2B262142-12-31",
        "/api/v1/earnings?from=0001-01-01",
        "/api/v1/earnings/summary?period=weekly&from=-262143-01-01",
        "/api/v1/patients?created_to=%2B262142-12-31",
        "/api/v1/audit?from=-262143-01-01",
        "/api/v1/follow-ups?due_before=%2B262142-12-31",
        "/api/v1/follow-ups?due_before=1899-12-31",
    ] {
        let res = w.app.get_as(&w.admin, path).await;
        let error = res.assert_error(StatusCode::BAD_REQUEST, "bad_request");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(message.contains(RANGE), "{path}: {message}");
    }
    // The edges themselves are accepted.
    for path in [
        "/api/v1/reports/earnings?granularity=year&from=1900-01-01&to=2200-12-31",
        "/api/v1/reports/earnings?granularity=month&from=1900-01-01T00:00:00Z&to=2200-12-31T23:59:59Z",
        "/api/v1/dashboard?from=1900-01-01&to=2200-12-31",
        "/api/v1/earnings/summary?period=weekly&from=1900-01-01&to=2200-12-31",
        "/api/v1/follow-ups?due_before=2200-12-31",
    ] {
        let res = w.app.get_as(&w.admin, path).await;
        assert_eq!(res.status, StatusCode::OK, "{path}: {:?}", res.json());
    }
    let rows = w
        .app
        .get_as(
            &w.admin,
            "/api/v1/reports/earnings?granularity=year&from=1900-01-01&to=2200-12-31",
        )
        .await
        .json()["rows"]
        .as_array()
        .map(Vec::len);
    assert_eq!(rows, Some(301), "a row per year per currency");
}

#[tokio::test]
async fn extreme_dates_in_bodies_are_422_naming_the_field() {
    let w = world().await;
    let patients = "/api/v1/patients";
    for (field, value) in [
        ("date_of_birth", "1899-12-31"),
        ("next_follow_up", "+262142-12-31"),
        ("next_follow_up", "2201-01-01"),
    ] {
        let mut body = json!({"name": "Far Away", "country": "NL"});
        body[field] = json!(value);
        let error = w
            .app
            .post_as(&w.staff, patients, &body)
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(error["details"][field], json!([RANGE]), "{field}: {error}");
    }
    let res = w
        .app
        .patch_as(
            &w.staff,
            &format!("{patients}/{}", w.patient),
            &json!({"version": 1, "next_follow_up": "-262143-01-01"}),
        )
        .await;
    let error = res.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        error["details"]["next_follow_up"],
        json!([RANGE]),
        "{error}"
    );

    let appointments = format!("{patients}/{}/appointments", w.patient);
    for (field, value) in [
        ("appointment_date", "2201-01-01T00:00:00Z"),
        ("appointment_date", "1899-12-31T23:59:59Z"),
        ("next_follow_up", "+262142-12-31"),
    ] {
        let mut body = json!({"discussion_notes": "far out", "status": "scheduled"});
        body[field] = json!(value);
        let error = w
            .app
            .post_as(&w.staff, &appointments, &body)
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(error["details"][field], json!([RANGE]), "{field}: {error}");
    }
    let listed = w.app.get_as(&w.staff, &appointments).await.json();
    assert_eq!(listed["total"], 0, "nothing written: {listed}");
}

#[tokio::test]
async fn money_over_ten_to_the_thirteenth_is_422_naming_the_field() {
    let w = world().await;
    let path = format!("/api/v1/patients/{}/treatments", w.patient);
    let cap = 10_000_000_000_000_i64;
    for (body, field) in [
        (
            treatment(&w.hospital, cap + 1, 0, "planned"),
            "cost.amount_minor",
        ),
        (
            treatment(&w.hospital, cap, cap + 1, "planned"),
            "earnings.amount_minor",
        ),
        (
            treatment(&w.hospital, i64::MAX, 0, "planned"),
            "cost.amount_minor",
        ),
    ] {
        let error = w
            .app
            .post_as(&w.staff, &path, &body)
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        let messages = error["details"][field].to_string();
        assert!(
            messages.contains("at most 10000000000000"),
            "{field}: {error}"
        );
    }
    let listed = w.app.get_as(&w.staff, &path).await.json();
    assert_eq!(listed["total"], 1, "only the world's treatment: {listed}");
    // The cap itself is accepted, and the reports add it up exactly.
    let res = w
        .app
        .post_as(
            &w.staff,
            &path,
            &treatment(&w.hospital, cap, cap, "completed"),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
    let summary = w
        .app
        .get_as(&w.admin, "/api/v1/earnings/summary?period=yearly")
        .await
        .json();
    assert_eq!(
        summary[0]["amount_minor"],
        json!(cap + 150_000),
        "{summary}"
    );
    let dashboard = w.app.get_as(&w.admin, "/api/v1/dashboard").await;
    assert_eq!(dashboard.status, StatusCode::OK, "{:?}", dashboard.json());
}
