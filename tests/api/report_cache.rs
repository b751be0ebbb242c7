//! The report cache: a repeated report or dashboard is answered from memory
//! without a database command, every kind of write shows in the next one,
//! `If-None-Match` gets a 304, and another instance's write shows once the
//! write counts are read again.

use axum::{
    body::Body,
    http::{header, Request, StatusCode},
};
use healthcrm::{domain::user::Role, http::routes::reports::REPORTS};
use serde_json::{json, Value};

use crate::{
    helpers::{Session, TestApp, TestResponse},
    hospitals::create_hospital,
};

/// The collections the reports read, and the write counts.
const REPORT_READS: [&str; 5] = [
    "patients",
    "treatments",
    "earnings",
    "hospitals",
    "generations",
];

/// Long enough that no test sees it run out: only commits re-read.
const POLL: (&str, &str) = ("REPORT_CACHE_POLL_MS", "600000");

async fn get_if(app: &TestApp, s: &Session, path: &str, etag: Option<&str>) -> TestResponse {
    let mut req = Request::get(path).header(header::AUTHORIZATION, format!("Bearer {}", s.token));
    if let Some(tag) = etag {
        req = req.header(header::IF_NONE_MATCH, tag);
    }
    app.request(req.body(Body::empty()).expect("request")).await
}

fn etag(res: &TestResponse) -> String {
    res.header("etag").expect("an ETag").to_owned()
}

async fn new_patient(app: &TestApp, s: &Session, country: &str) -> String {
    let res = app
        .post_as(
            s,
            "/api/v1/patients",
            &json!({"name": "Cache Patient", "country": country, "medical_history": ["asthma"]}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
    res.json()["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn a_repeated_report_or_dashboard_costs_no_database_command() {
    let (app, commands) = TestApp::spawn_watched(&[POLL]).await;
    let admin = app.login_as(Role::Admin).await;
    new_patient(&app, &admin, "NL").await;
    let mut paths: Vec<String> = REPORTS
        .iter()
        .map(|r| format!("/api/v1/reports/{r}"))
        .collect();
    paths.push("/api/v1/reports/earnings?granularity=week".into());
    paths.push("/api/v1/reports/patients-by-country?format=csv".into());
    paths.push("/api/v1/dashboard".into());
    paths.push("/api/v1/dashboard?from=2020-01-01".into());
    for path in &paths {
        let first = app.get_as(&admin, path).await;
        assert_eq!(first.status, StatusCode::OK, "{path}");
        assert_eq!(
            first.header("cache-control"),
            Some("private, no-cache"),
            "{path}"
        );
        let mark = commands.mark();
        let second = app.get_as(&admin, path).await;
        assert_eq!(second.status, StatusCode::OK, "{path}");
        assert_eq!(
            commands.since_on(mark, &REPORT_READS),
            vec![],
            "{path}: answered from memory"
        );
        assert_eq!(second.body, first.body, "{path}: the same figures");
        assert_eq!(etag(&second), etag(&first), "{path}");
    }
    // Another variant of the same report is its own entry, with its own tag.
    let json = app
        .get_as(&admin, "/api/v1/reports/patients-by-country")
        .await;
    let csv = app
        .get_as(&admin, "/api/v1/reports/patients-by-country?format=csv")
        .await;
    assert_ne!(etag(&json), etag(&csv));
    let nl = app
        .get_as(&admin, "/api/v1/reports/patients-by-country?country=NL")
        .await;
    assert_ne!(etag(&json), etag(&nl));
}

/// `rows` of a report, and its tag.
async fn report(app: &TestApp, s: &Session, path: &str) -> (Vec<Value>, String) {
    let res = app.get_as(s, &format!("/api/v1/reports/{path}")).await;
    assert_eq!(res.status, StatusCode::OK, "{path}: {:?}", res.json());
    let rows = res.json()["rows"].as_array().expect("rows").clone();
    (rows, etag(&res))
}

#[tokio::test]
async fn every_kind_of_write_shows_in_the_next_report() {
    let app = TestApp::spawn_with(&[POLL]).await;
    let admin = app.login_as(Role::Admin).await;
    let staff = app.login_as(Role::Staff).await;
    let count_of = |rows: &[Value], key: &str, value: &str| {
        rows.iter()
            .find(|r| r[key] == value)
            .map(|r| r["patients"].as_i64().unwrap_or(-1))
    };

    // A registration.
    let (before, tag0) = report(&app, &admin, "patients-by-country").await;
    assert_eq!(count_of(&before, "country", "NL"), None);
    let patient = new_patient(&app, &staff, "NL").await;
    let (rows, tag1) = report(&app, &admin, "patients-by-country").await;
    assert_eq!(count_of(&rows, "country", "NL"), Some(1));
    assert_ne!(tag0, tag1);

    // A change to the patient.
    let path = format!("/api/v1/patients/{patient}");
    let res = app
        .patch_as(&staff, &path, &json!({"version": 1, "country": "BE"}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    let (rows, tag2) = report(&app, &admin, "patients-by-country").await;
    assert_eq!(count_of(&rows, "country", "NL"), None);
    assert_eq!(count_of(&rows, "country", "BE"), Some(1));
    assert_ne!(tag1, tag2);

    // A hospital added, renamed and deleted.
    let (rows, _) = report(&app, &admin, "hospital-performance").await;
    assert!(rows.is_empty());
    let hospital = create_hospital(&app, &admin, "Cache Clinic").await;
    let names = |rows: &[Value]| -> Vec<String> {
        rows.iter()
            .map(|r| r["hospital"].as_str().unwrap_or("?").to_owned())
            .collect()
    };
    let (rows, _) = report(&app, &admin, "hospital-performance").await;
    assert_eq!(names(&rows), ["Cache Clinic"]);
    let hpath = format!("/api/v1/hospitals/{hospital}");
    let res = app
        .patch_as(&admin, &hpath, &json!({"name": "Cache Clinic Two"}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    let (rows, _) = report(&app, &admin, "hospital-performance").await;
    assert_eq!(names(&rows), ["Cache Clinic Two"]);
    let spare = create_hospital(&app, &admin, "Spare Clinic").await;
    let res = app
        .delete_as(&admin, &format!("/api/v1/hospitals/{spare}"))
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    let (rows, _) = report(&app, &admin, "hospital-performance").await;
    assert_eq!(names(&rows), ["Cache Clinic Two"]);

    // A treatment recorded, then completed: the ledger's credit shows in
    // the earnings report and on the dashboard.
    let (rows, _) = report(&app, &admin, "treatments-by-type").await;
    assert!(rows.is_empty());
    let (rows, _) = report(&app, &admin, "earnings").await;
    assert!(rows.is_empty());
    let dashboard = app.get_as(&admin, "/api/v1/dashboard").await.json();
    assert_eq!(dashboard["earnings"]["all_time"], json!([]));
    let tpath = record_treatment(
        &app,
        &staff,
        &patient,
        &hospital,
        ("knee replacement", "osteoarthritis"),
        100_000,
    )
    .await;
    let (rows, _) = report(&app, &admin, "treatments-by-type").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["treatment_type"], "knee replacement");
    complete(&app, &staff, &tpath).await;
    let (rows, _) = report(&app, &admin, "earnings").await;
    let earned: i64 = rows
        .iter()
        .map(|r| r["amount_minor"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(earned, 100_000);
    let dashboard = app.get_as(&admin, "/api/v1/dashboard").await.json();
    assert_eq!(
        dashboard["earnings"]["all_time"],
        json!([{"amount_minor": 100_000, "currency": "EUR"}])
    );
    assert_eq!(dashboard["patients"]["by_treatment_status"]["completed"], 1);

    // A soft delete and a restore.
    let res = app.delete_as(&admin, &path).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{:?}", res.json());
    let dashboard = app.get_as(&admin, "/api/v1/dashboard").await.json();
    assert_eq!(dashboard["patients"]["total"], 0);
    let res = app
        .post_as(&admin, &format!("{path}/restore"), &json!({}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    let dashboard = app.get_as(&admin, "/api/v1/dashboard").await.json();
    assert_eq!(dashboard["patients"]["total"], 1);

    // A write the reports do not read leaves every tag as it was.
    let (_, by_country) = report(&app, &admin, "patients-by-country").await;
    let dash = etag(&app.get_as(&admin, "/api/v1/dashboard").await);
    let res = app
        .post_as(
            &admin,
            "/api/v1/users",
            &json!({"email": "cache.reader@example.com", "password": "correct horse battery staple",
                    "name": "Cache Reader", "role": "staff"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
    assert_eq!(
        report(&app, &admin, "patients-by-country").await.1,
        by_country
    );
    assert_eq!(etag(&app.get_as(&admin, "/api/v1/dashboard").await), dash);
}

#[tokio::test]
async fn a_matching_if_none_match_is_answered_304_without_computing() {
    let (app, commands) = TestApp::spawn_watched(&[POLL]).await;
    let admin = app.login_as(Role::Admin).await;
    new_patient(&app, &admin, "DE").await;
    for path in [
        "/api/v1/reports/patients-by-disease",
        "/api/v1/reports/funnel?format=csv",
        "/api/v1/dashboard",
    ] {
        let first = get_if(&app, &admin, path, None).await;
        assert_eq!(first.status, StatusCode::OK, "{path}");
        let tag = etag(&first);
        assert!(tag.starts_with("W/\""), "{path}: a weak tag, {tag}");

        let mark = commands.mark();
        let again = get_if(&app, &admin, path, Some(&tag)).await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(again.body.is_empty(), "{path}: no body");
        assert_eq!(etag(&again), tag);
        assert_eq!(again.header("cache-control"), Some("private, no-cache"));
        assert_eq!(commands.since_on(mark, &REPORT_READS), vec![], "{path}");

        // Any of a list matches; another tag does not.
        let listed = format!("\"other\", {tag}");
        let res = get_if(&app, &admin, path, Some(&listed)).await;
        assert_eq!(res.status, StatusCode::NOT_MODIFIED, "{path}");
        let res = get_if(&app, &admin, path, Some("W/\"0000000000000000-json\"")).await;
        assert_eq!(res.status, StatusCode::OK, "{path}");
        assert_eq!(etag(&res), tag);
    }
    // After a write the old tag is stale: the full answer, with a new tag.
    let path = "/api/v1/reports/patients-by-disease";
    let old = etag(&get_if(&app, &admin, path, None).await);
    new_patient(&app, &admin, "FR").await;
    let res = get_if(&app, &admin, path, Some(&old)).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_ne!(etag(&res), old);
    assert_eq!(res.json()["rows"][0]["patients"], 2);
    // Refused parameters are refused before any tag is compared.
    get_if(
        &app,
        &admin,
        "/api/v1/reports/earnings?country=DE",
        Some(&old),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    // And no tag helps a caller without the permission.
    let staff = app.login_as(Role::Staff).await;
    let res = get_if(&app, &staff, path, Some("*")).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn another_instance_sees_a_write_when_it_reads_the_counts_again() {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    new_patient(&app, &admin, "DE").await;
    // Both read the counts: one on every request, one once in ten minutes.
    let eager = app.another_instance(&[("REPORT_CACHE_POLL_MS", "0")]);
    let lazy = app.another_instance(&[POLL]);
    let total = |res: TestResponse| res.json()["patients"]["total"].as_i64();
    for other in [&eager, &lazy] {
        assert_eq!(
            total(other.get_as(&admin, "/api/v1/dashboard").await),
            Some(1)
        );
    }
    // A write through the first instance.
    new_patient(&app, &admin, "DE").await;
    assert_eq!(
        total(eager.get_as(&admin, "/api/v1/dashboard").await),
        Some(2)
    );
    assert_eq!(
        total(lazy.get_as(&admin, "/api/v1/dashboard").await),
        Some(1),
        "within its poll interval, the counts it read are reused"
    );
    // Its own write makes it read them again, and it sees both.
    new_patient(&lazy, &admin, "DE").await;
    assert_eq!(
        total(lazy.get_as(&admin, "/api/v1/dashboard").await),
        Some(3)
    );
    // The counts themselves: one document, one field per collection.
    let counts = app.repos().generations.read().await.expect("counts");
    assert!(counts.0[0] >= 3, "{counts:?}");
}

/// Records a planned treatment (type and disease) for `patient` at
/// `hospital`, earning `earned` EUR cents on a cost ten times that; its
/// path.
async fn record_treatment(
    app: &TestApp,
    s: &Session,
    patient: &str,
    hospital: &str,
    (treatment_type, disease): (&str, &str),
    earned: i64,
) -> String {
    let res = app
        .post_as(
            s,
            &format!("/api/v1/patients/{patient}/treatments"),
            &json!({"treatment_type": treatment_type, "disease": disease, "hospital_id": hospital,
                    "cost": {"amount_minor": earned * 10, "currency": "EUR"},
                    "earnings": {"amount_minor": earned, "currency": "EUR"},
                    "status": "planned"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
    format!(
        "/api/v1/treatments/{}",
        res.json()["id"].as_str().expect("id")
    )
}

/// Takes the new treatment at `path` through in progress to completed,
/// which books its credit.
async fn complete(app: &TestApp, s: &Session, path: &str) {
    for (version, status) in [(1, "in_progress"), (2, "completed")] {
        let res = app
            .patch_as(s, path, &json!({"version": version, "status": status}))
            .await;
        assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    }
}

/// Records a cataract surgery for `patient` earning `earned` EUR cents and
/// completes it, which books the credit.
async fn complete_treatment(
    app: &TestApp,
    s: &Session,
    patient: &str,
    hospital: &str,
    earned: i64,
) {
    let path = record_treatment(
        app,
        s,
        patient,
        hospital,
        ("cataract surgery", "cataract"),
        earned,
    )
    .await;
    complete(app, s, &path).await;
}

#[tokio::test]
async fn the_earnings_summary_is_kept_until_the_ledger_changes() {
    let (app, commands) = TestApp::spawn_watched(&[POLL]).await;
    let admin = app.login_as(Role::Admin).await;
    let hospital = create_hospital(&app, &admin, "Summary Clinic").await;
    let patient = new_patient(&app, &admin, "GB").await;
    complete_treatment(&app, &admin, &patient, &hospital, 40_000).await;
    let total = |res: &TestResponse| -> i64 {
        res.json()
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| r["amount_minor"].as_i64().unwrap_or(0))
            .sum()
    };
    let path = "/api/v1/earnings/summary?period=weekly";
    let first = get_if(&app, &admin, path, None).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.json());
    assert_eq!(total(&first), 40_000);
    assert_eq!(first.header("cache-control"), Some("private, no-cache"));
    let tag = etag(&first);

    // Again: from memory, the same rows and tag; with the tag, a 304.
    let mark = commands.mark();
    let again = get_if(&app, &admin, path, None).await;
    assert_eq!(again.body, first.body);
    assert_eq!(etag(&again), tag);
    let not_modified = get_if(&app, &admin, path, Some(&tag)).await;
    assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);
    assert!(not_modified.body.is_empty());
    assert_eq!(commands.since_on(mark, &REPORT_READS), vec![]);

    // Another period or filter is its own entry.
    let monthly = get_if(
        &app,
        &admin,
        "/api/v1/earnings/summary?period=monthly",
        None,
    )
    .await;
    assert_ne!(etag(&monthly), tag);
    let other = format!("{path}&hospital_id={}", "0".repeat(24));
    let none = get_if(&app, &admin, &other, None).await;
    assert_eq!(none.status, StatusCode::OK, "{:?}", none.json());
    assert_eq!(total(&none), 0);

    // A new credit: the old tag is stale and the new figures show.
    complete_treatment(&app, &admin, &patient, &hospital, 2_500).await;
    let after = get_if(&app, &admin, path, Some(&tag)).await;
    assert_eq!(after.status, StatusCode::OK);
    assert_ne!(etag(&after), tag);
    assert_eq!(total(&after), 42_500);
    // Bad parameters are refused before any tag is compared.
    get_if(
        &app,
        &admin,
        "/api/v1/earnings/summary?period=daily",
        Some("*"),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "bad_request");
}
