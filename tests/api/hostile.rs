//! Hostile input swept over the whole API, driven by the route list and the
//! served OpenAPI document so a new route or field is covered as it lands:
//! IDOR on every path-parameter route, operator injection in every list
//! filter and every JSON body field, huge values. Each: the right 4xx and
//! nothing written.

use axum::http::{Method, StatusCode};
use futures::TryStreamExt;
use healthcrm::{domain::user::Role, http::protected_routes};
use mongodb::bson::{doc, Document};
use serde_json::{json, Value};

use crate::{
    helpers::{Session, TestApp},
    hospitals::create_hospital,
};

/// Every document of every collection but the audit trail (which records
/// refused calls, as it should), in `_id` order.
async fn snapshot(app: &TestApp) -> Vec<(String, Vec<Document>)> {
    let mut names = app.db.list_collection_names().await.expect("collections");
    names.sort();
    let mut out = Vec::new();
    for name in names {
        if name == "audit_events" {
            continue;
        }
        let docs: Vec<Document> = app
            .db
            .collection::<Document>(&name)
            .find(doc! {})
            .sort(doc! { "_id": 1 })
            .await
            .expect("find")
            .try_collect()
            .await
            .expect("collect");
        out.push((name, docs));
    }
    out
}

struct World {
    app: TestApp,
    admin: Session,
    staff: Session,
    hospital: String,
    patient: String,
    appointment: String,
    treatment: String,
}

async fn world() -> World {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let staff = app.login_as(Role::Staff).await;
    let hospital = create_hospital(&app, &admin, "Target Hospital").await;
    let id = |res: crate::helpers::TestResponse| {
        assert!(res.status.is_success(), "{:?}", res.json());
        res.json()["id"].as_str().expect("id").to_owned()
    };
    let patient = id(app
        .post_as(
            &admin,
            "/api/v1/patients",
            &json!({"name": "Target Patient", "country": "DE", "medical_history": ["Cataract"],
                    "hospital_id": hospital}),
        )
        .await);
    let appointment = id(app
        .post_as(
            &admin,
            &format!("/api/v1/patients/{patient}/appointments"),
            &json!({"discussion_notes": "First call", "status": "completed"}),
        )
        .await);
    let treatment = id(app
        .post_as(
            &admin,
            &format!("/api/v1/patients/{patient}/treatments"),
            &json!({"treatment_type": "cataract surgery", "disease": "cataract", "hospital_id": hospital,
                    "cost": {"amount_minor": 300_000, "currency": "EUR"},
                    "earnings": {"amount_minor": 30_000, "currency": "EUR"}, "status": "completed"}),
        )
        .await);
    World {
        app,
        admin,
        staff,
        hospital,
        patient,
        appointment,
        treatment,
    }
}

fn fill(path: &str, w: &World, user: &str) -> String {
    let id = if path.contains("/users/") {
        user
    } else if path.contains("/hospitals/") {
        &w.hospital
    } else if path.starts_with("/api/v1/appointments") {
        &w.appointment
    } else if path.starts_with("/api/v1/treatments") {
        &w.treatment
    } else {
        &w.patient
    };
    path.replace("{id}", id)
        .replace("{role}", "staff")
        .replace("{name}", "earnings")
}

#[tokio::test]
async fn idor_on_every_id_route_is_403_and_writes_nothing() {
    let w = world().await;
    // Deny the staff role every route that names a record.
    let id_routes: Vec<_> = protected_routes()
        .iter()
        .filter(|r| r.path.contains('{'))
        .cloned()
        .collect();
    assert!(id_routes.len() >= 25, "{}", id_routes.len());
    let rules: Vec<Value> = id_routes
        .iter()
        .map(|r| json!({"method": r.method, "path": r.path, "allow": false}))
        .collect();
    let res = w
        .app
        .put_as(
            &w.admin,
            "/api/v1/permissions/staff",
            &json!({"rules": rules}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    let before = snapshot(&w.app).await;

    let target_user = w.admin.id.to_string();
    for r in &id_routes {
        let path = fill(&r.path, &w, &target_user);
        let method = Method::from_bytes(r.method.as_bytes()).expect("method");
        let body = (method != Method::GET && method != Method::DELETE).then(|| {
            json!({"name": "Taken Over", "role": "admin", "version": 1, "new_password": "owned by the intruder",
                   "rules": [{"method": "GET", "path": "/api/v1/users", "allow": true}]})
        });
        let res = w
            .app
            .send_as(Some(&w.staff.token), method.clone(), &path, body.as_ref())
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{method} {path}");
        res.assert_error(StatusCode::FORBIDDEN, "forbidden");
    }
    assert!(
        snapshot(&w.app).await == before,
        "a refused call wrote something"
    );
}

/// Values that must never widen a query: bracket operators, JSON operator
/// objects, `$where`.
const INJECTIONS: [(&str, &str); 4] = [
    ("[$ne]", "x"),
    ("", "%7B%22%24gt%22%3A%22%22%7D"),
    ("", "%24where"),
    ("[$regex]", ".*"),
];

#[tokio::test]
async fn operator_injection_in_every_list_filter_matches_nothing() {
    let w = world().await;
    let doc = w.app.get("/api/v1/openapi.json").await.json();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let Some(op) = item.get("get") else { continue };
        if !path.starts_with("/api/v1/") || path.ends_with("/avatar") {
            continue;
        }
        let params: Vec<&str> = op["parameters"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|p| p["in"] == "query")
                    .filter_map(|p| p["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        let base = fill(path, &w, &w.admin.id.to_string());
        for name in params {
            for (suffix, value) in INJECTIONS {
                let mut url = format!("{base}?{name}{suffix}={value}");
                if path.ends_with("/earnings/summary") && name != "period" {
                    url.push_str("&period=monthly");
                }
                let res = w.app.get_as(&w.admin, &url).await;
                checked += 1;
                match res.status {
                    StatusCode::BAD_REQUEST => {
                        res.assert_error(StatusCode::BAD_REQUEST, "bad_request");
                    }
                    StatusCode::OK => {
                        let body = res.json();
                        // Taken as a literal, it matches nothing.
                        if let Some(total) = body.get("total") {
                            assert_eq!(total, 0, "{url} widened the query");
                        } else if let Some(rows) = body.as_array() {
                            assert!(rows.is_empty(), "{url} widened the query");
                        } else {
                            panic!("{url}: 200 for an operator value: {body}");
                        }
                    }
                    other => panic!("{url}: {other}"),
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} filter probes");
}

/// A valid body for each JSON-body route, in the order they can run.
fn bodies(w: &World, fresh_user: &str, quote: &str) -> Vec<(Method, String, Value)> {
    let p = &w.patient;
    vec![
        (
            Method::POST,
            "/api/v1/users".into(),
            json!({"name": "New Staff", "email": "new.staff@example.com", "password": "a long enough passphrase", "role": "staff"}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/users/{fresh_user}"),
            json!({"name": "Renamed Staff"}),
        ),
        (
            Method::POST,
            format!("/api/v1/users/{fresh_user}/password"),
            json!({"new_password": "another long passphrase"}),
        ),
        (
            Method::POST,
            "/api/v1/hospitals".into(),
            json!({"name": "Second Hospital", "location": "Izmir", "country": "TR", "commission_bps": 1000, "currency": "EUR"}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/hospitals/{}", w.hospital),
            json!({"location": "Ankara"}),
        ),
        (
            Method::POST,
            "/api/v1/patients".into(),
            json!({"name": "Second Patient", "country": "FR", "medical_history": ["Asthma"]}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/patients/{p}"),
            // Version 4: the world's completed treatment took the patient
            // from inquiry through ready and coming to completed.
            json!({"version": 4, "name": "Renamed Patient"}),
        ),
        (
            Method::PUT,
            format!("/api/v1/patients/{p}/hospital"),
            json!({"hospital_id": w.hospital}),
        ),
        (
            Method::POST,
            format!("/api/v1/patients/{p}/appointments"),
            json!({"discussion_notes": "Second call", "status": "scheduled"}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/appointments/{}", w.appointment),
            json!({"version": 1, "discussion_notes": "Edited"}),
        ),
        (
            Method::POST,
            format!("/api/v1/patients/{p}/treatments"),
            json!({"treatment_type": "check-up", "disease": "cataract", "hospital_id": w.hospital,
                "cost": {"amount_minor": 1000, "currency": "EUR"}, "earnings": {"amount_minor": 100, "currency": "EUR"}, "status": "planned"}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/treatments/{}", w.treatment),
            json!({"version": 1, "status": "cancelled"}),
        ),
        (
            Method::POST,
            format!("/api/v1/patients/{p}/quotes"),
            json!({"hospital_id": w.hospital, "treatment_type": "cataract surgery", "notes": "both eyes"}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/quotes/{quote}"),
            json!({"version": 1, "status": "received", "amount": {"amount_minor": 300_000, "currency": "EUR"},
                "valid_until": (chrono::Utc::now() + chrono::Duration::days(30)).format("%Y-%m-%d").to_string()}),
        ),
        (
            Method::POST,
            format!("/api/v1/quotes/{quote}/accept"),
            json!({"disease": "cataract"}),
        ),
        (
            Method::PUT,
            format!("/api/v1/patients/{p}/travel"),
            json!({"passport": {"number": "U12345678", "country": "GB", "expires_on": "2031-05-01"},
                "visa": {"status": "applied"}, "arrival": {"at": "2026-12-10T09:30:00Z"},
                "companions": [{"name": "Jane Doe", "relation": "spouse"}], "pickup_arranged": true}),
        ),
        (
            Method::PUT,
            "/api/v1/permissions/staff".into(),
            json!({"rules": [{"method": "GET", "path": "/api/v1/users", "allow": true}]}),
        ),
        (
            Method::PATCH,
            "/api/v1/auth/me".into(),
            json!({"name": "Admin Renamed"}),
        ),
    ]
}

#[tokio::test]
async fn operator_injection_in_every_body_field_is_refused_and_writes_nothing() {
    let w = world().await;
    let res = w
        .app
        .post_as(
            &w.admin,
            "/api/v1/users",
            &json!({"name": "Fresh Staff", "email": "fresh@example.com", "password": "a long enough passphrase", "role": "staff"}),
        )
        .await;
    let fresh = res.json()["id"].as_str().expect("id").to_owned();
    let res = w
        .app
        .post_as(
            &w.admin,
            &format!("/api/v1/patients/{}/quotes", w.patient),
            &json!({"hospital_id": w.hospital, "treatment_type": "lens replacement"}),
        )
        .await;
    let quote = res.json()["id"].as_str().expect("id").to_owned();
    let doc = w.app.get("/api/v1/openapi.json").await.json();
    let documented_bodies = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            ["post", "put", "patch"].into_iter().filter_map(move |m| {
                item.get(m)
                    .filter(|op| op["requestBody"]["content"]["application/json"].is_object())
                    .map(|_| format!("{} {path}", m.to_uppercase()))
            })
        })
        .filter(|r| {
            !r.contains("/auth/login")
                && !r.contains("/auth/refresh")
                && !r.contains("/auth/logout")
                && !r.contains("/auth/password")
        })
        .count();
    let cases = bodies(&w, &fresh, &quote);
    assert_eq!(
        cases.len(),
        documented_bodies,
        "a JSON-body route has no case here"
    );

    for (method, path, valid) in cases {
        let fields: Vec<String> = valid.as_object().expect("object").keys().cloned().collect();
        let mut hostile: Vec<(String, Value)> = Vec::new();
        for f in &fields {
            for bad in [
                json!({"$gt": ""}),
                json!({"$ne": null}),
                json!({"$where": "sleep(1000)"}),
            ] {
                let mut b = valid.clone();
                b[f] = bad;
                hostile.push((format!("{f} as an operator"), b));
            }
        }
        for key in ["$where", "a.b", "$set"] {
            let mut b = valid.clone();
            b[key] = json!("1");
            hostile.push((format!("extra key {key}"), b));
        }
        let mut huge = valid.clone();
        huge[&fields[0]] = json!("x".repeat(200_000));
        hostile.push(("a huge string".into(), huge));
        let mut long = valid.clone();
        long[&fields[0]] = json!(vec!["x"; 50_000]);
        hostile.push(("a huge array".into(), long));
        for f in &fields {
            if let Some(first) = valid[f].as_array().and_then(|a| a.first()) {
                let mut b = valid.clone();
                b[f] = json!(vec![first.clone(); 50_000]);
                hostile.push((format!("{f} with 50,000 items"), b));
            }
        }

        let before = snapshot(&w.app).await;
        for (what, body) in &hostile {
            let res = w
                .app
                .send_as(Some(&w.admin.token), method.clone(), &path, Some(body))
                .await;
            assert!(
                res.status.is_client_error(),
                "{method} {path} with {what}: {}",
                res.status
            );
            let code = res.json()["error"]["code"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            assert!(
                [
                    "validation_failed",
                    "bad_request",
                    "malformed_json",
                    "payload_too_large",
                    "invalid_id"
                ]
                .contains(&code.as_str()),
                "{method} {path} with {what}: {code}"
            );
        }
        assert!(
            before == snapshot(&w.app).await,
            "{method} {path}: a refused body wrote something"
        );
        // The valid body is accepted, so the refusals above were about the
        // hostile values, not a body that was wrong anyway.
        let res = w
            .app
            .send_as(Some(&w.admin.token), method.clone(), &path, Some(&valid))
            .await;
        assert!(res.status.is_success(), "{method} {path}: {:?}", res.json());
    }
}
