//! `tz` and the profile's `time_zone`: what "today", "this week" and a
//! date-only bound mean on the follow-up queue, the dashboard and the
//! reports, at UTC+05:30 (Asia/Kolkata) and UTC-08:00 (America/Los_Angeles
//! in January) on either side of their midnights. UTC stays the default.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use healthcrm::domain::user::Role;
use serde_json::{json, Value};

use crate::helpers::{Session, TestApp};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("instant")
        .with_timezone(&Utc)
}

/// Two patients: "Wednesday" due 2026-01-14 and "Thursday" due 2026-01-15.
async fn two_follow_ups(app: &TestApp, s: &Session) {
    for (name, due) in [("Wednesday", "2026-01-14"), ("Thursday", "2026-01-15")] {
        let res = app
            .post_as(
                s,
                "/api/v1/patients",
                &json!({"name": name, "country": "IN"}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
        let id = res.json()["id"].as_str().expect("id").to_owned();
        let res = app
            .patch_as(
                s,
                &format!("/api/v1/patients/{id}"),
                &json!({"version": 1, "next_follow_up": due}),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    }
}

/// The queue as `(name, overdue)`, oldest first.
async fn queue(app: &TestApp, s: &Session, query: &str) -> Vec<(String, bool)> {
    let res = app.get_as(s, &format!("/api/v1/follow-ups{query}")).await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    res.json()["data"]
        .as_array()
        .expect("list")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap_or("").to_owned(),
                e["overdue"].as_bool().expect("overdue"),
            )
        })
        .collect()
}

async fn follow_up_figures(app: &TestApp, s: &Session, query: &str) -> Value {
    let res = app.get_as(s, &format!("/api/v1/dashboard{query}")).await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    res.json()["follow_ups"].clone()
}

fn q(names: &[(&str, bool)]) -> Vec<(String, bool)> {
    names.iter().map(|(n, o)| ((*n).to_owned(), *o)).collect()
}

#[tokio::test]
async fn a_quarter_past_midnight_in_kolkata_is_still_the_day_before_in_utc() {
    // 2026-01-14T18:45Z: 00:15 on Thursday the 15th in Kolkata (+05:30),
    // 10:45 on Wednesday the 14th in Los Angeles (-08:00) and in UTC 18:45.
    let app = TestApp::spawn_at(at("2026-01-14T18:45:00Z")).await;
    let staff = app.login_as(Role::Staff).await;
    let admin = app.login_as(Role::Admin).await;
    two_follow_ups(&app, &staff).await;

    assert_eq!(
        queue(&app, &staff, "?tz=Asia/Kolkata").await,
        q(&[("Wednesday", true), ("Thursday", false)])
    );
    assert_eq!(queue(&app, &staff, "").await, q(&[("Wednesday", false)]));
    assert_eq!(
        queue(&app, &staff, "?tz=America/Los_Angeles").await,
        q(&[("Wednesday", false)])
    );
    assert_eq!(
        queue(&app, &staff, "?tz=Asia/Kolkata&overdue=true").await,
        q(&[("Wednesday", true)])
    );

    assert_eq!(
        follow_up_figures(&app, &admin, "?tz=Asia/Kolkata").await,
        json!({"due_today": 1, "overdue": 1})
    );
    assert_eq!(
        follow_up_figures(&app, &admin, "").await,
        json!({"due_today": 1, "overdue": 0})
    );
}

#[tokio::test]
async fn a_quarter_to_midnight_in_los_angeles_is_already_tomorrow_in_utc() {
    // 2026-01-15T07:45Z: 23:45 on Wednesday the 14th in Los Angeles,
    // 07:45 on Thursday the 15th in UTC, 13:15 in Kolkata.
    let app = TestApp::spawn_at(at("2026-01-15T07:45:00Z")).await;
    let staff = app.login_as(Role::Staff).await;
    let admin = app.login_as(Role::Admin).await;
    two_follow_ups(&app, &staff).await;

    assert_eq!(
        queue(&app, &staff, "?tz=America/Los_Angeles").await,
        q(&[("Wednesday", false)])
    );
    assert_eq!(
        queue(&app, &staff, "").await,
        q(&[("Wednesday", true), ("Thursday", false)])
    );
    assert_eq!(
        follow_up_figures(&app, &admin, "?tz=America/Los_Angeles").await,
        json!({"due_today": 1, "overdue": 0})
    );
    assert_eq!(
        follow_up_figures(&app, &admin, "?tz=UTC").await,
        json!({"due_today": 1, "overdue": 1})
    );

    // The profile's zone is the default; a request's tz wins over it.
    let res = app
        .patch_as(
            &staff,
            "/api/v1/auth/me",
            &json!({"time_zone": "America/Los_Angeles"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    assert_eq!(res.json()["time_zone"], "America/Los_Angeles");
    assert_eq!(queue(&app, &staff, "").await, q(&[("Wednesday", false)]));
    let res = app
        .patch_as(
            &admin,
            "/api/v1/auth/me",
            &json!({"time_zone": "America/Los_Angeles"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    assert_eq!(
        follow_up_figures(&app, &admin, "").await,
        json!({"due_today": 1, "overdue": 0})
    );
    assert_eq!(
        queue(&app, &staff, "?tz=UTC").await,
        q(&[("Wednesday", true), ("Thursday", false)])
    );

    // Cleared, UTC again.
    let res = app
        .patch_as(&staff, "/api/v1/auth/me", &json!({"time_zone": null}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    assert_eq!(res.json()["time_zone"], Value::Null);
    assert_eq!(
        queue(&app, &staff, "").await,
        q(&[("Wednesday", true), ("Thursday", false)])
    );
}

#[tokio::test]
async fn a_date_only_report_window_is_the_local_day() {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let report = |query: String| {
        let app = &app;
        let admin = &admin;
        async move {
            let res = app
                .get_as(
                    admin,
                    &format!("/api/v1/reports/patients-by-country?{query}"),
                )
                .await;
            assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
            res.json()
        }
    };
    for (tz, from, to) in [
        (
            "Asia/Kolkata",
            "2026-01-14T18:30:00Z",
            "2026-01-15T18:30:00Z",
        ),
        (
            "America/Los_Angeles",
            "2026-01-15T08:00:00Z",
            "2026-01-16T08:00:00Z",
        ),
        ("UTC", "2026-01-15T00:00:00Z", "2026-01-16T00:00:00Z"),
    ] {
        let r = report(format!("from=2026-01-15&to=2026-01-15&tz={tz}")).await;
        assert_eq!(
            (r["from"].as_str(), r["to"].as_str()),
            (Some(from), Some(to)),
            "{tz}"
        );
    }
    // A timestamp carries its own offset: tz does not move it.
    let r = report("from=2026-01-15T00:00:00%2B05:30&tz=America/Los_Angeles".into()).await;
    assert_eq!(r["from"], "2026-01-14T18:30:00Z");

    // A patient registered now is in today's window wherever "today" is.
    let res = app
        .post_as(
            &admin,
            "/api/v1/patients",
            &json!({"name": "Now", "country": "IN"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
    for tz in ["Asia/Kolkata", "America/Los_Angeles"] {
        let today = Utc::now()
            .with_timezone(&tz.parse::<chrono_tz::Tz>().expect("zone"))
            .date_naive();
        let r = report(format!("from={today}&to={today}&tz={tz}")).await;
        let india = r["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .find(|row| row["country"] == "IN")
            .cloned();
        assert_eq!(
            india.map(|row| row["patients"].clone()),
            Some(json!(1)),
            "{tz}"
        );
    }

    // The dashboard's period reads dates in its tz too.
    let res = app
        .get_as(
            &admin,
            "/api/v1/dashboard?from=2026-01-15&to=2026-01-15&tz=Asia/Kolkata",
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    assert_eq!(res.json()["period"]["from"], "2026-01-14T18:30:00Z");
}

#[tokio::test]
async fn unknown_zones_are_refused() {
    let app = TestApp::spawn().await;
    let staff = app.login_as(Role::Staff).await;
    let admin = app.login_as(Role::Admin).await;
    for path in [
        "/api/v1/follow-ups?tz=IST",
        "/api/v1/follow-ups?tz=%2B05:30",
        "/api/v1/dashboard?tz=Mars/Olympus_Mons",
        "/api/v1/reports/funnel?tz=asia/kolkata",
    ] {
        app.get_as(&admin, path)
            .await
            .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    }
    let res = app
        .patch_as(
            &staff,
            "/api/v1/auth/me",
            &json!({"time_zone": "Mars/Olympus_Mons"}),
        )
        .await;
    let error = res.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("IANA time zone")),
        "{error}"
    );
    app.patch_as(&staff, "/api/v1/auth/me", &json!({}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let me = app.get_as(&staff, "/api/v1/auth/me").await.json();
    assert_eq!(me["user"]["time_zone"], Value::Null);
}
