//! HTTP conventions every client relies on: `Location` on each 201 (also
//! on replays), `ETag` on single reads of versioned records, and
//! `If-Match` in place of the body's `version` (412 when stale, 428 when a
//! versioned update sends neither).

use axum::{
    body::Body,
    http::{header, Method, Request, StatusCode},
};
use serde_json::{json, Value};

use crate::{
    documents::{form, pdf, BOUNDARY},
    helpers::{Session, TestApp, TestResponse},
    quotes::{ask, price},
    treatments::{world, World},
};

async fn send(
    app: &TestApp,
    s: &Session,
    method: Method,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> TestResponse {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {}", s.token));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let body = match body {
        Some(b) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(serde_json::to_vec(b).expect("json"))
        }
        None => Body::empty(),
    };
    app.request(req.body(body).expect("request")).await
}

/// The 201's `Location`, checked to name the created record and to read.
async fn located(w: &World, res: &TestResponse, base: &str, id: &str) {
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
    let location = res.headers[header::LOCATION].to_str().expect("ascii");
    assert_eq!(location, format!("{base}/{id}"));
    let read = w.app.get_as(&w.admin, location).await;
    assert_eq!(read.status, StatusCode::OK, "{location}");
}

#[tokio::test]
async fn every_201_says_where_the_record_is_also_when_replayed() {
    let w = world().await;
    let p = format!("/api/v1/patients/{}", w.patient);
    let cases: Vec<(String, Value, &str, &str)> = vec![
        (
            "/api/v1/hospitals".into(),
            json!({"name": "Located Hospital", "location": "Izmir", "country": "TR"}),
            "/api/v1/hospitals",
            "/id",
        ),
        (
            "/api/v1/users".into(),
            json!({"name": "Located User", "email": "located@example.com", "password": "a long enough password", "role": "staff"}),
            "/api/v1/users",
            "/id",
        ),
        (
            "/api/v1/patients".into(),
            json!({"name": "Located Patient", "country": "DE"}),
            "/api/v1/patients",
            "/id",
        ),
        (
            format!("{p}/appointments"),
            json!({"discussion_notes": "first call", "status": "completed"}),
            "/api/v1/appointments",
            "/id",
        ),
        (
            format!("{p}/treatments"),
            json!({"treatment_type": "knee replacement", "disease": "osteoarthritis", "hospital_id": w.hospital,
                   "cost": {"amount_minor": 1_200_000, "currency": "EUR"},
                   "earnings": {"amount_minor": 150_000, "currency": "EUR"}, "status": "planned"}),
            "/api/v1/treatments",
            "/id",
        ),
        (
            format!("{p}/quotes"),
            json!({"hospital_id": w.hospital, "treatment_type": "hip replacement"}),
            "/api/v1/quotes",
            "/id",
        ),
    ];
    for (path, body, base, pointer) in cases {
        let key = format!("located-{base}");
        let first = send(
            &w.app,
            &w.admin,
            Method::POST,
            &path,
            Some(&body),
            &[("idempotency-key", &key)],
        )
        .await;
        let id = first
            .json()
            .pointer(pointer)
            .and_then(Value::as_str)
            .expect("id")
            .to_owned();
        located(&w, &first, base, &id).await;
        let again = send(
            &w.app,
            &w.admin,
            Method::POST,
            &path,
            Some(&body),
            &[("idempotency-key", &key)],
        )
        .await;
        assert_eq!(again.headers["idempotent-replayed"], "true");
        located(&w, &again, base, &id).await;
    }

    // Accepting a quote creates the booked treatment.
    let quote = ask(&w, &w.hospital, "cataract surgery", Some("cataract")).await;
    price(&w, &quote, 250_000, "EUR").await;
    let res = w
        .app
        .post_as(
            &w.staff,
            &format!("/api/v1/quotes/{quote}/accept"),
            &json!({}),
        )
        .await;
    let treatment = res.json()["treatment"]["id"]
        .as_str()
        .expect("treatment")
        .to_owned();
    located(&w, &res, "/api/v1/treatments", &treatment).await;

    // A document upload.
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("{p}/documents"))
        .header(header::AUTHORIZATION, format!("Bearer {}", w.staff.token))
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(Body::from(form(
            &[("category", "other")],
            Some(("a.pdf", &pdf("loc", 500))),
        )))
        .expect("request");
    let res = w.app.request(req).await;
    let id = res.json()["id"].as_str().expect("id").to_owned();
    located(&w, &res, "/api/v1/documents", &id).await;
}

/// A versioned record: where it is read, and a change to it.
struct Versioned {
    path: String,
    method: Method,
    change: Value,
}

async fn versioned_records(w: &World) -> Vec<Versioned> {
    let p = format!("/api/v1/patients/{}", w.patient);
    let appointment = w
        .app
        .post_as(
            &w.staff,
            &format!("{p}/appointments"),
            &json!({"discussion_notes": "call", "status": "scheduled"}),
        )
        .await
        .json()["id"]
        .as_str()
        .expect("appointment")
        .to_owned();
    let treatment = w
        .app
        .post_as(
            &w.staff,
            &format!("{p}/treatments"),
            &json!({"treatment_type": "knee replacement", "disease": "osteoarthritis", "hospital_id": w.hospital,
                    "cost": {"amount_minor": 1_200_000, "currency": "EUR"},
                    "earnings": {"amount_minor": 150_000, "currency": "EUR"}, "status": "planned"}),
        )
        .await
        .json()["id"]
        .as_str()
        .expect("treatment")
        .to_owned();
    let quote = ask(w, &w.hospital, "hip replacement", None).await;
    let travel = json!({"passport": {"number": "X1234567", "country": "GB", "expires_on": "2031-01-01"},
                        "arrival": {"at": "2027-02-01T10:00:00Z"}, "pickup_arranged": false});
    let res = w
        .app
        .put_as(&w.staff, &format!("{p}/travel"), &travel)
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    let valid_until = (chrono::Utc::now().date_naive() + chrono::Duration::days(30)).to_string();
    let mut travel_change = travel.clone();
    travel_change["pickup_arranged"] = json!(true);
    vec![
        Versioned {
            path: p.clone(),
            method: Method::PATCH,
            change: json!({"source": "referral"}),
        },
        Versioned {
            path: format!("/api/v1/appointments/{appointment}"),
            method: Method::PATCH,
            change: json!({"discussion_notes": "called back"}),
        },
        Versioned {
            path: format!("/api/v1/treatments/{treatment}"),
            method: Method::PATCH,
            change: json!({"disease": "advanced osteoarthritis"}),
        },
        Versioned {
            path: format!("/api/v1/quotes/{quote}"),
            method: Method::PATCH,
            change: json!({"status": "received", "amount": {"amount_minor": 900_000, "currency": "EUR"}, "valid_until": valid_until}),
        },
        Versioned {
            path: format!("{p}/travel"),
            method: Method::PUT,
            change: travel_change,
        },
    ]
}

#[tokio::test]
async fn versioned_records_carry_an_etag_that_if_match_may_replace_the_version_with() {
    let w = world().await;
    for v in versioned_records(&w).await {
        let read = w.app.get_as(&w.staff, &v.path).await;
        assert_eq!(read.status, StatusCode::OK, "{}", v.path);
        let version = read.json()["version"].as_i64().expect("version");
        let tag = format!("\"{version}\"");
        assert_eq!(read.headers[header::ETAG], tag.as_str(), "{}", v.path);

        // Neither version nor If-Match: 428, nothing changed.
        let res = send(
            &w.app,
            &w.staff,
            v.method.clone(),
            &v.path,
            Some(&v.change),
            &[],
        )
        .await;
        res.assert_error(StatusCode::PRECONDITION_REQUIRED, "precondition_required");
        // If-Match in place of the version: saved, with the new ETag.
        let res = send(
            &w.app,
            &w.staff,
            v.method.clone(),
            &v.path,
            Some(&v.change),
            &[("if-match", &tag)],
        )
        .await;
        assert_eq!(res.status, StatusCode::OK, "{}: {:?}", v.path, res.json());
        let next = format!("\"{}\"", version + 1);
        assert_eq!(res.headers[header::ETAG], next.as_str(), "{}", v.path);
        // The old tag again: 412, nothing changed.
        let res = send(
            &w.app,
            &w.staff,
            v.method.clone(),
            &v.path,
            Some(&v.change),
            &[("if-match", &tag)],
        )
        .await;
        res.assert_error(StatusCode::PRECONDITION_FAILED, "precondition_failed");
        // A tag that is not ours, or one that disagrees with the body: 412.
        let mut with_version = v.change.clone();
        with_version["version"] = json!(version + 1);
        for (body, value) in [
            (&v.change, "\"abc\""),
            (&v.change, "*"),
            (&with_version, tag.as_str()),
        ] {
            let res = send(
                &w.app,
                &w.staff,
                v.method.clone(),
                &v.path,
                Some(body),
                &[("if-match", value)],
            )
            .await;
            res.assert_error(StatusCode::PRECONDITION_FAILED, "precondition_failed");
        }
        // The stale version in the body is still a 409.
        let mut stale = v.change.clone();
        stale["version"] = json!(version);
        let res = send(
            &w.app,
            &w.staff,
            v.method.clone(),
            &v.path,
            Some(&stale),
            &[],
        )
        .await;
        res.assert_error(StatusCode::CONFLICT, "conflict");
        let now = w.app.get_as(&w.staff, &v.path).await;
        assert_eq!(
            now.json()["version"],
            version + 1,
            "{}: one change only",
            v.path
        );
    }
}

/// The served document names each convention's header where the server
/// sets it, so a client generated from it can read them: `x-request-id`
/// on every response, `Location` on every 201, `Retry-After` on every 429,
/// `ETag` on every 304, and `ETag` on the 200 of each versioned record's
/// read and of each change that takes its `If-Match`.
#[tokio::test]
async fn the_document_names_each_conventional_header_where_it_is_set() {
    let app = TestApp::spawn().await;
    let doc = app.get("/api/v1/openapi.json").await.json();
    let paths = doc["paths"].as_object().expect("the document's paths");
    let (mut created, mut limited, mut unchanged) = (0, 0, 0);
    let mut versioned = Vec::new();
    for (path, item) in paths {
        let ops = item.as_object().expect("a path item");
        let takes_if_match = |op: &Value| {
            op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == "If-Match"))
        };
        let is_versioned = ops.values().any(takes_if_match);
        for (method, op) in ops {
            let responses = op["responses"].as_object().expect("responses");
            for (status, response) in responses {
                let named = |h: &str| response["headers"].get(h).is_some();
                let at = format!("{method} {path} {status}");
                assert!(named("x-request-id"), "{at}: no x-request-id");
                if status == "201" {
                    assert!(named("Location"), "{at}: no Location");
                    created += 1;
                }
                if status == "429" {
                    assert!(named("Retry-After"), "{at}: no Retry-After");
                    limited += 1;
                }
                if status == "304" {
                    assert!(named("ETag"), "{at}: no ETag");
                    unchanged += 1;
                }
            }
            if is_versioned && (method == "get" || takes_if_match(op)) {
                assert!(
                    responses["200"]["headers"].get("ETag").is_some(),
                    "{method} {path} 200: no ETag"
                );
                versioned.push(format!("{method} {path}"));
            }
        }
    }
    // The walk saw what the API has today: 8 creating routes, the login's
    // rate limit, the reports, dashboard and earnings summary's 304, and 5
    // versioned records each read and changed.
    assert_eq!(created, 8, "201 responses");
    assert!(limited >= 1, "429 responses");
    assert_eq!(unchanged, 3, "304 responses");
    assert_eq!(versioned.len(), 10, "{versioned:?}");
    assert!(versioned.contains(&"get /api/v1/patients/{id}".to_owned()));
    assert!(versioned.contains(&"patch /api/v1/patients/{id}".to_owned()));
}
