//! Reports and the dashboard: exact figures over a known data set written
//! in the stored shape, period edges in UTC, CSV, bad input and permissions.

use axum::{
    body::Body,
    http::{header, Request, StatusCode},
};
use chrono::{DateTime as ChronoDateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use healthcrm::domain::{
    money::Money,
    patient::{Patient, PatientStatus, TreatmentStatus},
    treatment::{EarningEntry, EntryKind, Treatment, TreatmentState},
    user::Role,
    HospitalId, PatientId, TreatmentId, UserId,
};
use mongodb::bson::DateTime;
use serde_json::{json, Value};

use crate::{
    helpers::{Session, TestApp},
    hospitals::create_hospital,
};

fn at(s: &str) -> DateTime {
    DateTime::from_chrono(
        ChronoDateTime::parse_from_rfc3339(s)
            .expect("timestamp")
            .with_timezone(&Utc),
    )
}

fn day(s: &str) -> DateTime {
    at(&format!("{s}T00:00:00Z"))
}

struct NewPatient<'a> {
    created: DateTime,
    country: &'a str,
    conditions: &'a [&'a str],
    status: PatientStatus,
    reached: &'a [TreatmentStatus],
    completed_at: Option<DateTime>,
    age: Option<i32>,
    dob: Option<DateTime>,
    hospital: Option<HospitalId>,
    denial_reason: Option<&'a str>,
    follow_up: Option<DateTime>,
    deleted: bool,
}

impl Default for NewPatient<'_> {
    fn default() -> Self {
        NewPatient {
            created: day("2026-01-01"),
            country: "DE",
            conditions: &[],
            status: PatientStatus::New,
            reached: &[TreatmentStatus::Inquiry],
            completed_at: None,
            age: None,
            dob: None,
            hospital: None,
            denial_reason: None,
            follow_up: None,
            deleted: false,
        }
    }
}

async fn patient(app: &TestApp, by: UserId, p: NewPatient<'_>) -> PatientId {
    let reached = p.reached.to_vec();
    let current = *reached.last().expect("a status");
    let doc = Patient {
        id: PatientId::new(),
        name: "Report Patient".into(),
        name_lower: "report patient".into(),
        age: p.age,
        date_of_birth: p.dob,
        country: p.country.into(),
        contact: None,
        source: None,
        medical_history: p.conditions.iter().map(|c| (*c).to_owned()).collect(),
        medical_history_lower: p.conditions.iter().map(|c| c.to_lowercase()).collect(),
        status: p.status,
        treatment_status: current,
        denial_reason: p.denial_reason.map(str::to_owned),
        assigned_to: None,
        hospital_id: p.hospital,
        hospital_history: Vec::new(),
        next_follow_up: p.follow_up,
        reached,
        completed_at: p.completed_at,
        version: 1,
        deleted_at: p.deleted.then_some(p.created),
        deleted_by: p.deleted.then_some(by),
        passport_search: None,
        created_at: p.created,
        created_by: by,
        updated_at: p.created,
        updated_by: by,
    };
    app.repos()
        .patients
        .insert(&mut app.session().await, &doc)
        .await
        .expect("insert");
    doc.id
}

#[allow(clippy::too_many_arguments)]
async fn treatment(
    app: &TestApp,
    by: UserId,
    patient: PatientId,
    hospital: HospitalId,
    kind: &str,
    cost: i64,
    earned: i64,
    currency: &str,
    status: TreatmentState,
    created: DateTime,
    completed: Option<DateTime>,
    cancelled: Option<DateTime>,
) {
    let money = |amount_minor| Money {
        amount_minor,
        currency: currency.into(),
    };
    let t = Treatment {
        id: TreatmentId::new(),
        patient_id: patient,
        hospital_id: hospital,
        treatment_type: kind.into(),
        disease: "condition".into(),
        cost: money(cost),
        earnings: money(earned),
        status,
        appointment_ids: Vec::new(),
        quote_id: None,
        started_at: None,
        completed_at: completed,
        cancelled_at: cancelled,
        version: 1,
        created_by: by,
        created_at: created,
        updated_by: by,
        updated_at: created,
    };
    let repo = app.repos().treatments;
    let mut session = app.session().await;
    repo.insert(&mut session, &t).await.expect("insert");
    let entry = |kind, amount_minor, booked_at| EarningEntry {
        treatment_id: t.id,
        kind,
        seq: 0,
        amount_minor,
        currency: currency.into(),
        hospital_id: hospital,
        patient_id: patient,
        booked_at,
    };
    if let Some(c) = completed {
        repo.book(&mut session, &entry(EntryKind::Credit, earned, c))
            .await
            .expect("book");
    }
    if let Some(c) = cancelled {
        repo.book(&mut session, &entry(EntryKind::Reversal, -earned, c))
            .await
            .expect("book");
    }
}

struct World {
    app: TestApp,
    admin: Session,
    staff: Session,
    anadolu: String,
    charite: String,
}

/// The known data set (figures in the tests below are worked out by hand
/// from it):
/// - P1 DE 2026-01-05, diabetes + hypertension, completed in 10 days, 35-49, Anadolu
/// - P2 DE 2026-01-31 23:59:59, diabetes, denied ("not a candidate"), age 70, Anadolu
/// - P3 TR 2026-02-01 00:00, cardiac, ready, a child, Charite
/// - P4 TR 2026-02-10, coming (a repeat patient), no age, Anadolu
/// - P5 DE 2026-01-10, diabetes, completed, soft-deleted: never counted
/// - P6 FR 2025-12-31 23:59:59, asthma, inquiry, age 20
/// - T1 P1 Anadolu knee EUR 10000.00/1000.00 completed 2026-01-15
/// - T2 P1 Anadolu knee EUR 5000.00/500.00 completed 2026-01-25 23:00,
///   cancelled 2026-02-02 (credit and reversal)
/// - T3 P3 Charite cardiac USD 20000.00/3000.00 planned
/// - T4 P4 Anadolu knee EUR 8000.00/800.00 completed 2026-02-28 23:59:59
/// - T5 P6 Charite cardiac USD 10000.00/1000.00 completed 2025-12-30
async fn world() -> World {
    use TreatmentStatus::*;
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let staff = app.login_as(Role::Staff).await;
    let anadolu = create_hospital(&app, &admin, "Anadolu").await;
    let charite = create_hospital(&app, &admin, "Charite").await;
    let h1: HospitalId = anadolu.parse().expect("id");
    let h2: HospitalId = charite.parse().expect("id");
    let by = admin.id;
    let p1 = patient(
        &app,
        by,
        NewPatient {
            created: at("2026-01-05T10:00:00Z"),
            conditions: &["Diabetes", "Hypertension"],
            reached: &[Inquiry, Ready, Coming, Completed],
            completed_at: Some(at("2026-01-15T10:00:00Z")),
            dob: Some(day("1990-06-01")),
            hospital: Some(h1),
            ..Default::default()
        },
    )
    .await;
    patient(
        &app,
        by,
        NewPatient {
            created: at("2026-01-31T23:59:59Z"),
            conditions: &["diabetes"],
            reached: &[Inquiry, Denied],
            age: Some(70),
            hospital: Some(h1),
            denial_reason: Some("not a candidate"),
            ..Default::default()
        },
    )
    .await;
    let p3 = patient(
        &app,
        by,
        NewPatient {
            created: day("2026-02-01"),
            country: "TR",
            conditions: &["Cardiac"],
            reached: &[Inquiry, Ready],
            dob: Some(day("2015-03-01")),
            hospital: Some(h2),
            ..Default::default()
        },
    )
    .await;
    let p4 = patient(
        &app,
        by,
        NewPatient {
            created: day("2026-02-10"),
            country: "TR",
            status: PatientStatus::Repeat,
            reached: &[Inquiry, Ready, Coming],
            hospital: Some(h1),
            ..Default::default()
        },
    )
    .await;
    patient(
        &app,
        by,
        NewPatient {
            created: day("2026-01-10"),
            conditions: &["Diabetes"],
            reached: &[Inquiry, Completed],
            completed_at: Some(day("2026-01-11")),
            hospital: Some(h1),
            deleted: true,
            ..Default::default()
        },
    )
    .await;
    let p6 = patient(
        &app,
        by,
        NewPatient {
            created: at("2025-12-31T23:59:59Z"),
            country: "FR",
            conditions: &["Asthma"],
            age: Some(20),
            ..Default::default()
        },
    )
    .await;
    use TreatmentState::{Cancelled, Planned};
    let knee = "knee replacement";
    let cardiac = "cardiac surgery";
    treatment(
        &app,
        by,
        p1,
        h1,
        knee,
        1_000_000,
        100_000,
        "EUR",
        TreatmentState::Completed,
        day("2026-01-06"),
        Some(day("2026-01-15")),
        None,
    )
    .await;
    treatment(
        &app,
        by,
        p1,
        h1,
        knee,
        500_000,
        50_000,
        "EUR",
        Cancelled,
        day("2026-01-20"),
        Some(at("2026-01-25T23:00:00Z")),
        Some(day("2026-02-02")),
    )
    .await;
    treatment(
        &app,
        by,
        p3,
        h2,
        cardiac,
        2_000_000,
        300_000,
        "USD",
        Planned,
        day("2026-02-03"),
        None,
        None,
    )
    .await;
    treatment(
        &app,
        by,
        p4,
        h1,
        knee,
        800_000,
        80_000,
        "EUR",
        TreatmentState::Completed,
        day("2026-02-10"),
        Some(at("2026-02-28T23:59:59Z")),
        None,
    )
    .await;
    treatment(
        &app,
        by,
        p6,
        h2,
        cardiac,
        1_000_000,
        100_000,
        "USD",
        TreatmentState::Completed,
        day("2025-12-20"),
        Some(day("2025-12-30")),
        None,
    )
    .await;
    World {
        app,
        admin,
        staff,
        anadolu,
        charite,
    }
}

async fn rows(w: &World, query: &str) -> Vec<Value> {
    let res = w
        .app
        .get_as(&w.admin, &format!("/api/v1/reports/{query}"))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{query}: {:?}", res.json());
    let body = res.json();
    let columns: Vec<&str> = body["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let rows = body["rows"].as_array().expect("rows").clone();
    for r in &rows {
        let keys: Vec<&str> = r
            .as_object()
            .expect("row")
            .keys()
            .map(String::as_str)
            .collect();
        let mut want = columns.clone();
        want.sort_unstable();
        let mut got = keys.clone();
        got.sort_unstable();
        assert_eq!(got, want, "every row has exactly the columns");
    }
    rows
}

#[tokio::test]
async fn earnings_series_nets_reversals_and_zero_fills_periods() {
    let w = world().await;
    assert_eq!(
        rows(&w, "earnings?from=2026-01-01&to=2026-02-28").await,
        vec![
            json!({"period_start": "2026-01-01", "currency": "EUR", "amount_minor": 150_000, "treatments": 2}),
            json!({"period_start": "2026-02-01", "currency": "EUR", "amount_minor": 30_000, "treatments": 0}),
        ]
    );
    // Weeks start Monday; the credit at 23:00 UTC on Sunday the 25th is in
    // the week of the 19th, and a `to` date includes its whole day.
    assert_eq!(
        rows(
            &w,
            "earnings?granularity=week&from=2026-01-12&to=2026-01-25"
        )
        .await,
        vec![
            json!({"period_start": "2026-01-12", "currency": "EUR", "amount_minor": 100_000, "treatments": 1}),
            json!({"period_start": "2026-01-19", "currency": "EUR", "amount_minor": 50_000, "treatments": 1}),
        ]
    );
    // An RFC 3339 `to` is exclusive: one second before the credit leaves it out.
    assert_eq!(
        rows(
            &w,
            "earnings?granularity=week&from=2026-01-19&to=2026-01-25T22:59:59Z"
        )
        .await,
        Vec::<Value>::new(),
        "no currency seen, nothing to fill"
    );
    assert_eq!(
        rows(
            &w,
            "earnings?granularity=week&from=2026-01-12&to=2026-01-24"
        )
        .await,
        vec![
            json!({"period_start": "2026-01-12", "currency": "EUR", "amount_minor": 100_000, "treatments": 1}),
            json!({"period_start": "2026-01-19", "currency": "EUR", "amount_minor": 0, "treatments": 0}),
        ],
        "an empty week inside the range appears with zero"
    );
    assert_eq!(
        rows(&w, "earnings?granularity=year").await,
        vec![
            json!({"period_start": "2025-01-01", "currency": "EUR", "amount_minor": 0, "treatments": 0}),
            json!({"period_start": "2025-01-01", "currency": "USD", "amount_minor": 100_000, "treatments": 1}),
            json!({"period_start": "2026-01-01", "currency": "EUR", "amount_minor": 180_000, "treatments": 2}),
            json!({"period_start": "2026-01-01", "currency": "USD", "amount_minor": 0, "treatments": 0}),
        ]
    );
}

#[tokio::test]
async fn patient_reports_count_live_patients_in_the_period() {
    let w = world().await;
    // January only: P1 and P2 (P2 at 23:59:59 on the 31st); P6 (2025) and
    // P3 (midnight on February 1st) are outside, P5 is deleted.
    assert_eq!(
        rows(&w, "patients-by-disease?from=2026-01-01&to=2026-01-31").await,
        vec![
            json!({"disease": "diabetes", "patients": 2, "share": 1.0}),
            json!({"disease": "hypertension", "patients": 1, "share": 0.5}),
        ]
    );
    assert_eq!(
        rows(&w, "patients-by-country").await,
        vec![
            json!({"country": "DE", "patients": 2, "completed": 1, "completion_rate": 0.5}),
            json!({"country": "TR", "patients": 2, "completed": 0, "completion_rate": 0.0}),
            json!({"country": "FR", "patients": 1, "completed": 0, "completion_rate": 0.0}),
        ]
    );
    let status = rows(&w, "patients-by-status").await;
    assert_eq!(status.len(), 10, "every status pair, zero-filled");
    let count = |s: &str, t: &str| {
        status
            .iter()
            .find(|r| r["status"] == s && r["treatment_status"] == t)
            .map(|r| r["patients"].as_i64().unwrap_or(-1))
    };
    assert_eq!(count("new", "completed"), Some(1));
    assert_eq!(count("new", "denied"), Some(1));
    assert_eq!(count("new", "ready"), Some(1));
    assert_eq!(count("new", "inquiry"), Some(1));
    assert_eq!(count("repeat", "coming"), Some(1));
    assert_eq!(count("repeat", "completed"), Some(0));
    let tr = rows(&w, "patients-by-status?country=TR").await;
    let total: i64 = tr.iter().filter_map(|r| r["patients"].as_i64()).sum();
    assert_eq!(total, 2);

    let ages = rows(&w, "patients-by-age").await;
    let band = |c: Value, b: &str| {
        ages.iter()
            .find(|r| r["country"] == c && r["band"] == b)
            .map(|r| r["patients"].as_i64().unwrap_or(-1))
    };
    assert_eq!(
        ages.len(),
        6 * 4,
        "all countries, DE, FR, TR; six bands each"
    );
    for (b, n) in [
        ("0-17", 1),
        ("18-34", 1),
        ("35-49", 1),
        ("50-64", 0),
        ("65+", 1),
        ("unknown", 1),
    ] {
        assert_eq!(band(Value::Null, b), Some(n), "overall {b}");
    }
    assert_eq!(band(json!("DE"), "35-49"), Some(1));
    assert_eq!(band(json!("DE"), "65+"), Some(1));
    assert_eq!(band(json!("TR"), "0-17"), Some(1));
    assert_eq!(band(json!("TR"), "unknown"), Some(1));
    assert_eq!(band(json!("FR"), "18-34"), Some(1));
}

#[tokio::test]
async fn hospital_performance_and_treatments_by_type() {
    let w = world().await;
    assert_eq!(
        rows(&w, "hospital-performance?from=2026-01-01&to=2026-02-28").await,
        vec![
            json!({"hospital_id": w.anadolu, "hospital": "Anadolu", "country": "TR", "patients": 3,
                   "avg_days_to_complete": 10.0, "treatments_planned": 0, "treatments_in_progress": 0,
                   "treatments_completed": 2, "treatments_cancelled": 1, "currency": "EUR",
                   "revenue_minor": 1_800_000, "earnings_minor": 180_000}),
            json!({"hospital_id": w.charite, "hospital": "Charite", "country": "TR", "patients": 1,
                   "avg_days_to_complete": null, "treatments_planned": 1, "treatments_in_progress": 0,
                   "treatments_completed": 0, "treatments_cancelled": 0, "currency": "USD",
                   "revenue_minor": 0, "earnings_minor": 0}),
        ]
    );
    // Before any activity, a hospital still has its row, with no money.
    let quiet = rows(&w, "hospital-performance?to=2025-01-01").await;
    assert_eq!(quiet.len(), 2);
    assert_eq!(quiet[0]["currency"], Value::Null);
    assert_eq!(quiet[0]["patients"], 0);

    assert_eq!(
        rows(&w, "treatments-by-type?from=2026-01-01&to=2026-02-28").await,
        vec![
            json!({"treatment_type": "cardiac surgery", "currency": "USD", "treatments": 1, "completed": 0,
                   "cancelled": 0, "cost_minor": 2_000_000, "earnings_minor": 0}),
            json!({"treatment_type": "knee replacement", "currency": "EUR", "treatments": 2, "completed": 2,
                   "cancelled": 1, "cost_minor": 1_800_000, "earnings_minor": 180_000}),
        ]
    );
}

#[tokio::test]
async fn funnel_counts_every_stage_reached_with_ratios_and_reasons() {
    let w = world().await;
    let all = rows(&w, "funnel").await;
    let stage = |c: Value, s: &str| {
        all.iter()
            .find(|r| r["country"] == c && r["stage"] == s && r["reason"].is_null())
            .cloned()
            .expect("stage row")
    };
    assert_eq!(
        stage(Value::Null, "inquiry"),
        json!({"country": null, "stage": "inquiry", "reason": null, "patients": 5,
               "share_of_inquiries": 1.0, "share_of_previous": null})
    );
    assert_eq!(
        stage(Value::Null, "ready"),
        json!({"country": null, "stage": "ready", "reason": null, "patients": 3,
               "share_of_inquiries": 0.6, "share_of_previous": 0.6})
    );
    assert_eq!(stage(Value::Null, "coming")["patients"], 2);
    assert_eq!(stage(Value::Null, "coming")["share_of_previous"], 0.6667);
    assert_eq!(stage(Value::Null, "completed")["patients"], 1);
    assert_eq!(stage(Value::Null, "completed")["share_of_previous"], 0.5);
    assert_eq!(stage(Value::Null, "denied")["patients"], 1);
    assert_eq!(stage(json!("DE"), "completed")["patients"], 1);
    assert_eq!(stage(json!("FR"), "ready")["patients"], 0);
    let reasons: Vec<&Value> = all.iter().filter(|r| !r["reason"].is_null()).collect();
    assert_eq!(
        reasons,
        vec![
            &json!({"country": null, "stage": "denied", "reason": "not a candidate", "patients": 1,
                    "share_of_inquiries": 0.2, "share_of_previous": 1.0}),
            &json!({"country": "DE", "stage": "denied", "reason": "not a candidate", "patients": 1,
                    "share_of_inquiries": 0.5, "share_of_previous": 1.0}),
        ]
    );
    let tr = rows(&w, "funnel?country=TR").await;
    let counts: Vec<(String, i64)> = tr
        .iter()
        .filter(|r| r["country"].is_null())
        .map(|r| {
            (
                r["stage"].as_str().unwrap_or("").to_owned(),
                r["patients"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [
            ("inquiry".to_owned(), 2),
            ("ready".to_owned(), 2),
            ("coming".to_owned(), 1),
            ("completed".to_owned(), 0),
            ("denied".to_owned(), 0),
        ]
    );
}

/// Whether `v` is of the schema's `type` (one or a list), dates as
/// `YYYY-MM-DD`.
fn fits(v: &Value, schema: &Value) -> bool {
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    types.into_iter().any(|t| match t {
        "null" => v.is_null(),
        "string" if schema["format"] == "date" => v
            .as_str()
            .is_some_and(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()),
        "string" => v.is_string(),
        "integer" => v.is_i64(),
        "number" => v.is_number(),
        _ => false,
    })
}

fn sorted_keys(object: &serde_json::Map<String, Value>) -> Vec<&str> {
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

#[tokio::test]
async fn every_report_row_fits_its_schema_in_the_document() {
    let w = world().await;
    let doc = w.app.get("/api/v1/openapi.json").await.json();
    let schemas = &doc["components"]["schemas"];
    let one_of: Vec<&str> = schemas["ReportResponse"]["properties"]["rows"]["items"]["oneOf"]
        .as_array()
        .expect("rows: an array of oneOf")
        .iter()
        .filter_map(|r| r["$ref"].as_str())
        .collect();
    let names = healthcrm::http::routes::reports::REPORTS;
    assert_eq!(one_of.len(), names.len(), "{one_of:?}");
    for name in names {
        // `patients-by-age` rows are `PatientsByAgeReportRow`.
        let title: String = name
            .split('-')
            .map(|w| w[..1].to_uppercase() + &w[1..])
            .collect();
        let schema_name = format!("{title}ReportRow");
        assert!(
            one_of.contains(&format!("#/components/schemas/{schema_name}").as_str()),
            "{schema_name} in {one_of:?}"
        );
        let schema = &schemas[&schema_name];
        assert_eq!(schema["type"], "object", "{schema_name}");
        assert_eq!(schema["additionalProperties"], false, "{schema_name}");
        let mut required: Vec<&str> = schema["required"]
            .as_array()
            .expect("required")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        required.sort_unstable();
        let properties = schema["properties"].as_object().expect("properties");
        assert_eq!(sorted_keys(properties), required, "{schema_name}");

        // With data, and with none (zero-filled, null where nothing was
        // counted); every column is seen with a value at least once.
        let mut queries = vec![name.to_owned(), format!("{name}?to=2025-01-01")];
        if name == "earnings" {
            queries.push("earnings?granularity=week".into());
        }
        let mut valued = std::collections::BTreeSet::new();
        for query in queries {
            // `rows` checks each row has exactly the columns.
            let rows = rows(&w, &query).await;
            for row in &rows {
                let row = row.as_object().expect("row");
                assert_eq!(sorted_keys(row), required, "{query}");
                for (key, v) in row {
                    assert!(
                        fits(v, &properties[key]),
                        "{query}: {key} = {v} is not {}",
                        properties[key]
                    );
                    if !v.is_null() {
                        valued.insert(key.clone());
                    }
                }
            }
        }
        let valued: Vec<&str> = valued.iter().map(String::as_str).collect();
        assert_eq!(valued, required, "{name}: every column seen with a value");
    }
}

async fn get_with_accept(w: &World, path: &str, accept: &str) -> (StatusCode, String, String) {
    let req = Request::get(path)
        .header(header::AUTHORIZATION, format!("Bearer {}", w.admin.token))
        .header(header::ACCEPT, accept)
        .body(Body::empty())
        .expect("request");
    let res = w.app.request(req).await;
    (
        res.status,
        res.header("content-type").unwrap_or("").to_owned(),
        String::from_utf8(res.body.to_vec()).expect("utf8"),
    )
}

#[tokio::test]
async fn any_report_comes_as_csv() {
    let w = world().await;
    let want = "treatment_type,currency,treatments,completed,cancelled,cost,earnings\r\n\
                cardiac surgery,USD,1,0,0,20000.00,0.00\r\n\
                knee replacement,EUR,2,2,1,18000.00,1800.00\r\n";
    let path = "/api/v1/reports/treatments-by-type?from=2026-01-01&to=2026-02-28";
    let (status, kind, body) = get_with_accept(&w, path, "text/csv").await;
    assert_eq!(status, StatusCode::OK);
    assert!(kind.starts_with("text/csv"), "{kind}");
    assert_eq!(body, want);
    let (_, kind, body) =
        get_with_accept(&w, &format!("{path}&format=csv"), "application/json").await;
    assert!(kind.starts_with("text/csv"), "?format wins over Accept");
    assert_eq!(body, want);
    let res = w.app.get_as(&w.admin, &format!("{path}&format=csv")).await;
    assert!(res
        .header("content-disposition")
        .unwrap_or("")
        .contains("treatments-by-type-20260101-20260301.csv"));

    // Every report has a CSV form with a header row; money in major units.
    for name in healthcrm::http::routes::reports::REPORTS {
        let (status, kind, body) =
            get_with_accept(&w, &format!("/api/v1/reports/{name}?format=csv"), "*/*").await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        assert!(kind.starts_with("text/csv"));
        assert!(body.ends_with("\r\n"), "{name}");
    }
    let (_, _, body) = get_with_accept(
        &w,
        "/api/v1/reports/earnings?format=csv&granularity=year&from=2026-01-01&to=2026-12-31",
        "*/*",
    )
    .await;
    assert_eq!(
        body,
        "period_start,currency,amount,treatments\r\n2026-01-01,EUR,1800.00,2\r\n"
    );
    // Text that a spreadsheet would evaluate is defused.
    let (_, _, body) = get_with_accept(
        &w,
        "/api/v1/reports/funnel?format=csv&country=DE",
        "text/csv",
    )
    .await;
    assert!(body.starts_with("country,stage,reason,patients,share_of_inquiries,share_of_previous\r\n,inquiry,,2,1,\r\n"), "{body}");
}

#[tokio::test]
async fn bad_report_requests_are_4xx_in_the_error_shape() {
    let w = world().await;
    for (query, status, code) in [
        ("nope", StatusCode::NOT_FOUND, "not_found"),
        (
            "earnings?from=2026-02-30",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "earnings?to=yesterday",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "earnings?from=2026-03-01&to=2026-02-01",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "earnings?granularity=day",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "funnel?granularity=week",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        ("funnel?country=XX", StatusCode::BAD_REQUEST, "bad_request"),
        (
            "funnel?country[$ne]=DE",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "earnings?country=DE",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "earnings?format=xml",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        ("earnings?limit=5", StatusCode::BAD_REQUEST, "bad_request"),
        (
            "earnings?granularity=week&from=1900-01-01&to=2100-01-01",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
    ] {
        w.app
            .get_as(&w.admin, &format!("/api/v1/reports/{query}"))
            .await
            .assert_error(status, code);
    }
    w.app
        .get_as(&w.admin, "/api/v1/dashboard?from=2026-13-01")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    // Admin-only by default.
    w.app
        .get_as(&w.staff, "/api/v1/reports/earnings")
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    w.app
        .get_as(&w.staff, "/api/v1/dashboard")
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    w.app
        .get("/api/v1/dashboard")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
}

/// (created, country, conditions, reached, follow-up, deleted)
type DashboardPatient = (
    ChronoDateTime<Utc>,
    &'static str,
    &'static [&'static str],
    &'static [TreatmentStatus],
    Option<ChronoDateTime<Utc>>,
    bool,
);

fn midnight(d: NaiveDate) -> ChronoDateTime<Utc> {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("time"))
}

#[tokio::test]
async fn the_dashboard_counts_relative_to_today_in_utc() {
    use TreatmentStatus::*;
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let h1: HospitalId = create_hospital(&app, &admin, "Anadolu")
        .await
        .parse()
        .expect("id");
    let h2: HospitalId = create_hospital(&app, &admin, "Charite")
        .await
        .parse()
        .expect("id");
    let now = Utc::now();
    let today = now.date_naive();
    let week_start =
        midnight(today - Duration::days(today.weekday().num_days_from_monday().into()));
    let month_start = midnight(today.with_day(1).expect("day"));
    let year_start = midnight(NaiveDate::from_ymd_opt(today.year(), 1, 1).expect("date"));
    let bson = DateTime::from_chrono;
    let ms = Duration::milliseconds(1);
    let by = admin.id;
    // (created, country, conditions, reached, follow-up, deleted)
    let set: [DashboardPatient; 6] = [
        (
            now,
            "DE",
            &["Diabetes"],
            &[Inquiry],
            Some(midnight(today)),
            false,
        ),
        (
            week_start,
            "DE",
            &["Diabetes", "Asthma"],
            &[Inquiry, Ready],
            Some(midnight(today) - Duration::days(1)),
            false,
        ),
        (month_start, "TR", &["Asthma"], &[Inquiry], None, false),
        (
            month_start - ms,
            "TR",
            &[],
            &[Inquiry, Ready, Coming, Completed],
            Some(midnight(today) + Duration::days(1)),
            false,
        ),
        (
            year_start - Duration::days(1),
            "FR",
            &["Cardiac"],
            &[Inquiry, Denied],
            None,
            false,
        ),
        (
            now,
            "DE",
            &["Diabetes"],
            &[Inquiry],
            Some(midnight(today) - Duration::days(3)),
            true,
        ),
    ];
    for (created, country, conditions, reached, follow_up, deleted) in set {
        patient(
            &app,
            by,
            NewPatient {
                created: bson(created),
                country,
                conditions,
                reached,
                follow_up: follow_up.map(bson),
                deleted,
                denial_reason: reached.contains(&Denied).then_some("too risky"),
                ..Default::default()
            },
        )
        .await;
    }
    let live = &set[..5];
    let new_since = |t: ChronoDateTime<Utc>| live.iter().filter(|p| p.0 >= t).count() as i64;

    // The ledger: (booked, hospital, amount, currency).
    let p = PatientId::new();
    let entries = [
        (now, h1, 10_000, "EUR", EntryKind::Credit),
        (month_start, h2, 5_000, "EUR", EntryKind::Credit),
        (year_start, h1, 7_000, "USD", EntryKind::Credit),
        (year_start - ms, h2, 100_000, "EUR", EntryKind::Credit),
        (now, h1, -2_000, "EUR", EntryKind::Reversal),
    ];
    for (booked, hospital, amount, currency, kind) in entries {
        app.repos()
            .treatments
            .book(
                &mut app.session().await,
                &EarningEntry {
                    treatment_id: TreatmentId::new(),
                    kind,
                    seq: 0,
                    amount_minor: amount,
                    currency: currency.into(),
                    hospital_id: hospital,
                    patient_id: p,
                    booked_at: bson(booked),
                },
            )
            .await
            .expect("book");
    }

    let res = app.get_as(&admin, "/api/v1/dashboard").await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    let d = res.json();
    assert_eq!(d["period"], Value::Null);
    assert_eq!(
        d["patients"],
        json!({"total": 5, "new_this_week": new_since(week_start), "new_this_month": new_since(month_start),
               "new_in_period": null,
               "by_treatment_status": {"inquiry": 2, "ready": 1, "coming": 0, "completed": 1, "denied": 1},
               "open_inquiries": 2})
    );
    assert_eq!(d["follow_ups"], json!({"due_today": 1, "overdue": 1}));
    assert_eq!(
        d["earnings"]["all_time"],
        json!([{"amount_minor": 113_000, "currency": "EUR"}, {"amount_minor": 7_000, "currency": "USD"}])
    );
    assert_eq!(
        d["earnings"]["this_year"],
        json!([{"amount_minor": 13_000, "currency": "EUR"}, {"amount_minor": 7_000, "currency": "USD"}])
    );
    let mut this_month = vec![json!({"amount_minor": 13_000, "currency": "EUR"})];
    if month_start == year_start {
        this_month.push(json!({"amount_minor": 7_000, "currency": "USD"}));
    }
    assert_eq!(d["earnings"]["this_month"], json!(this_month));
    assert_eq!(
        d["top_countries"],
        json!([{"country": "DE", "patients": 2}, {"country": "TR", "patients": 2}, {"country": "FR", "patients": 1}])
    );
    assert_eq!(
        d["top_diseases"],
        json!([{"disease": "asthma", "patients": 2}, {"disease": "diabetes", "patients": 2}, {"disease": "cardiac", "patients": 1}])
    );
    // Ranked within each currency.
    assert_eq!(
        d["top_hospitals"],
        json!([
            {"hospital_id": h1.to_string(), "hospital_name": "Anadolu", "earnings": {"amount_minor": 8_000, "currency": "EUR"}},
            {"hospital_id": h2.to_string(), "hospital_name": "Charite", "earnings": {"amount_minor": 5_000, "currency": "EUR"}},
            {"hospital_id": h1.to_string(), "hospital_name": "Anadolu", "earnings": {"amount_minor": 7_000, "currency": "USD"}},
        ])
    );

    // Last year only: the FR patient and the one EUR entry.
    let last_year = (year_start - Duration::days(1)).date_naive();
    let res = app
        .get_as(
            &admin,
            &format!(
                "/api/v1/dashboard?from={}-01-01&to={last_year}",
                last_year.year()
            ),
        )
        .await;
    let d = res.json();
    assert_eq!(d["patients"]["new_in_period"], 1);
    assert_eq!(d["patients"]["total"], 5, "totals are not narrowed");
    assert_eq!(
        d["earnings"]["in_period"],
        json!([{"amount_minor": 100_000, "currency": "EUR"}])
    );
    assert_eq!(
        d["top_countries"],
        json!([{"country": "FR", "patients": 1}])
    );
    assert_eq!(
        d["top_diseases"],
        json!([{"disease": "cardiac", "patients": 1}])
    );
    assert_eq!(
        d["top_hospitals"],
        json!([{"hospital_id": h2.to_string(), "hospital_name": "Charite", "earnings": {"amount_minor": 100_000, "currency": "EUR"}}])
    );
}

#[tokio::test]
async fn the_funnel_remembers_stages_a_patient_went_back_from() {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let staff = app.login_as(Role::Staff).await;
    let res = app
        .post_as(
            &staff,
            "/api/v1/patients",
            &json!({"name": "Back And Forth", "country": "NL"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
    let id = res.json()["id"].as_str().expect("id").to_owned();
    for (version, status) in [(1, "ready"), (2, "inquiry")] {
        let res = app
            .patch_as(
                &staff,
                &format!("/api/v1/patients/{id}"),
                &json!({"version": version, "treatment_status": status}),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    }
    let res = app
        .get_as(&admin, "/api/v1/reports/funnel?country=NL")
        .await;
    let rows = res.json()["rows"].as_array().expect("rows").clone();
    let stage = |s: &str| {
        rows.iter()
            .find(|r| r["country"].is_null() && r["stage"] == s)
            .map(|r| r["patients"].as_i64().unwrap_or(-1))
    };
    assert_eq!(stage("inquiry"), Some(1));
    assert_eq!(
        stage("ready"),
        Some(1),
        "reached, though back at inquiry now"
    );
    assert_eq!(stage("coming"), Some(0));
}

/// A CSV body streamed through the gzip layer: the layer polls the body once
/// more after its end, which an unfused stream answers with a panic (a
/// connection cut mid-response; found by the fuzzer).
#[tokio::test]
async fn csv_reports_stream_through_compression() {
    let w = world().await;
    for name in healthcrm::http::routes::reports::REPORTS {
        let req = Request::get(format!("/api/v1/reports/{name}?format=csv"))
            .header(header::AUTHORIZATION, format!("Bearer {}", w.admin.token))
            .header(header::ACCEPT_ENCODING, "gzip")
            .body(Body::empty())
            .expect("request");
        let res = w.app.request(req).await;
        assert_eq!(res.status, StatusCode::OK, "{name}");
        assert_eq!(res.header("content-encoding"), Some("gzip"), "{name}");
        // A gzip stream starts with its magic bytes and is never empty.
        assert_eq!(res.body.get(..2), Some(&[0x1f, 0x8b][..]), "{name}");
    }
}
