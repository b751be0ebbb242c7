//! Every workflow that writes more than one document commits all of it or
//! none of it: a fault injected after each of its writes in turn leaves
//! nothing of it visible, and a retry then completes it exactly once.
//! (Built with the `faults` feature, as CI runs the tests.)

use std::collections::BTreeMap;

use axum::http::StatusCode;
use futures::{future::BoxFuture, TryStreamExt};
use healthcrm::domain::user::Role;
use mongodb::bson::{doc, Document};
use serde_json::{json, Value};

use crate::{
    helpers::{Session, TestApp, TestResponse},
    hospitals::create_hospital,
};

/// What each scenario starts from.
struct Case {
    app: TestApp,
    admin: Session,
    staff: Session,
    hospital: String,
    patient: String,
    /// A treatment, appointment or user made by the setup, when there is one.
    other: String,
}

/// The collections a workflow may write, and the audit events that
/// workflows (not the access layer) write.
const COLLECTIONS: &[&str] = &[
    "patients",
    "history",
    "appointments",
    "treatments",
    "earnings",
    "hospitals",
    "users",
    "refresh_tokens",
    "permissions",
    "idempotency_keys",
    "quotes",
    "quote_bookings",
    "travel",
];
const WORKFLOW_AUDIT: &[&str] = &[
    "users.access_change",
    "users.delete",
    "users.activate",
    "users.deactivate",
    "users.password_reset",
    "auth.password_change",
    "permissions.update",
];

type State = BTreeMap<String, Vec<Document>>;

async fn snapshot(app: &TestApp) -> State {
    app.settle_background().await;
    let mut state = State::new();
    for name in COLLECTIONS {
        let docs: Vec<Document> = app
            .db
            .collection::<Document>(name)
            .find(doc! {})
            .sort(doc! { "_id": 1 })
            .await
            .expect("find")
            .try_collect()
            .await
            .expect("collect");
        state.insert((*name).to_owned(), docs);
    }
    let audit: Vec<Document> = app
        .db
        .collection::<Document>("audit_events")
        // The access layer also records the failed request (status 500).
        .find(doc! { "action": { "$in": WORKFLOW_AUDIT }, "status": { "$lt": 400 } })
        .sort(doc! { "_id": 1 })
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("collect");
    state.insert("audit_events".into(), audit);
    state
}

fn sizes(state: &State) -> BTreeMap<String, usize> {
    state.iter().map(|(k, v)| (k.clone(), v.len())).collect()
}

type Setup = fn() -> BoxFuture<'static, Case>;
type Act = for<'a> fn(&'a Case) -> BoxFuture<'a, TestResponse>;

/// Runs `act` once to learn its fault points, then for each point: fails
/// there, checks nothing changed, retries, and checks the retry did exactly
/// what the clean run did.
async fn prove(name: &str, setup: Setup, act: Act, ok: StatusCode) {
    let clean = setup().await;
    let before = snapshot(&clean.app).await;
    clean.app.workflows.faults.take_passed();
    let res = act(&clean).await;
    assert_eq!(res.status, ok, "{name}: clean run: {:?}", res.json());
    let points = clean.app.workflows.faults.take_passed();
    let delta = diff_sizes(&before, &snapshot(&clean.app).await);
    assert!(
        points.len() >= 2,
        "{name} writes more than one document: {points:?}"
    );
    for (i, point) in points.iter().enumerate() {
        let nth = points[..i].iter().filter(|p| *p == point).count();
        let case = setup().await;
        let before = snapshot(&case.app).await;
        case.app.workflows.faults.arm_nth(point, nth);
        let failed = act(&case).await;
        assert_eq!(
            failed.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{name}: fault at {point} #{nth}"
        );
        assert!(
            !case.app.workflows.faults.pending(),
            "{name}: {point} fired"
        );
        let now = snapshot(&case.app).await;
        let changed: Vec<&String> = now
            .iter()
            .filter(|(k, v)| before.get(*k) != Some(*v))
            .map(|(k, _)| k)
            .collect();
        assert!(
            changed.is_empty(),
            "{name}: something of the failed attempt at {point} #{nth} is visible in {changed:?}: {:?}",
            changed.iter().map(|k| (&before[*k], &now[*k])).collect::<Vec<_>>()
        );
        let retried = act(&case).await;
        assert_eq!(retried.status, ok, "{name}: retry after {point}");
        let after = snapshot(&case.app).await;
        assert_eq!(
            diff_sizes(&before, &after),
            delta,
            "{name}: the retry after {point} did exactly what a clean run does"
        );
    }
}

fn diff_sizes(before: &State, after: &State) -> BTreeMap<String, i64> {
    let (b, a) = (sizes(before), sizes(after));
    a.iter()
        .map(|(k, n)| (k.clone(), *n as i64 - *b.get(k).unwrap_or(&0) as i64))
        .collect()
}

fn treatment(hospital: &str, status: &str) -> Value {
    json!({"treatment_type": "knee replacement", "disease": "osteoarthritis", "hospital_id": hospital,
           "cost": {"amount_minor": 1_200_000, "currency": "EUR"},
           "earnings": {"amount_minor": 150_000, "currency": "EUR"}, "status": status})
}

async fn base() -> Case {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let staff = app.login_as(Role::Staff).await;
    let hospital = create_hospital(&app, &admin, "Atomic Hospital").await;
    let res = app
        .post_as(
            &staff,
            "/api/v1/patients",
            &json!({"name": "Atomic", "country": "NL", "treatment_status": "coming"}),
        )
        .await;
    let patient = res.json()["id"].as_str().expect("id").to_owned();
    Case {
        app,
        admin,
        staff,
        hospital,
        patient,
        other: String::new(),
    }
}

fn id_of(res: TestResponse) -> String {
    res.json()["id"].as_str().expect("id").to_owned()
}

async fn version_of(c: &Case, path: &str) -> i64 {
    c.app.get_as(&c.admin, path).await.json()["version"]
        .as_i64()
        .expect("version")
}

#[tokio::test]
async fn patient_workflows_are_all_or_nothing() {
    prove(
        "register",
        || Box::pin(base()),
        |c| {
            Box::pin(async move {
                let body = json!({"name": "New", "country": "DE"});
                c.app
                    .post_keyed(&c.staff, "/api/v1/patients", "atomic", &body)
                    .await
            })
        },
        StatusCode::CREATED,
    )
    .await;
    prove(
        "status change",
        || Box::pin(base()),
        |c| {
            Box::pin(async move {
                let path = format!("/api/v1/patients/{}", c.patient);
                let version = version_of(c, &path).await;
                let body = json!({"version": version, "treatment_status": "completed"});
                c.app.patch_as(&c.staff, &path, &body).await
            })
        },
        StatusCode::OK,
    )
    .await;
    prove(
        "assign hospital",
        || Box::pin(base()),
        |c| {
            Box::pin(async move {
                let path = format!("/api/v1/patients/{}/hospital", c.patient);
                let body = json!({"hospital_id": c.hospital});
                c.app.put_as(&c.staff, &path, &body).await
            })
        },
        StatusCode::OK,
    )
    .await;
    prove(
        "soft delete",
        || Box::pin(base()),
        |c| {
            Box::pin(async move {
                let path = format!("/api/v1/patients/{}", c.patient);
                c.app.delete_as(&c.admin, &path).await
            })
        },
        StatusCode::NO_CONTENT,
    )
    .await;
    prove(
        "restore",
        || {
            Box::pin(async {
                let c = base().await;
                let path = format!("/api/v1/patients/{}", c.patient);
                assert_eq!(
                    c.app.delete_as(&c.admin, &path).await.status,
                    StatusCode::NO_CONTENT
                );
                c
            })
        },
        |c| {
            let path = format!("/api/v1/patients/{}/restore", c.patient);
            Box::pin(async move { c.app.post_as(&c.admin, &path, &json!({})).await })
        },
        StatusCode::OK,
    )
    .await;
}

#[tokio::test]
async fn treatment_workflows_keep_the_ledger_exact() {
    prove(
        "record completed, returning patient",
        || {
            Box::pin(async {
                let c = base().await;
                let path = format!("/api/v1/patients/{}/treatments", c.patient);
                let res = c
                    .app
                    .post_as(&c.staff, &path, &treatment(&c.hospital, "completed"))
                    .await;
                assert_eq!(res.status, StatusCode::CREATED);
                c
            })
        },
        |c| {
            let path = format!("/api/v1/patients/{}/treatments", c.patient);
            Box::pin(async move {
                c.app
                    .post_keyed(
                        &c.staff,
                        &path,
                        "second",
                        &treatment(&c.hospital, "completed"),
                    )
                    .await
            })
        },
        StatusCode::CREATED,
    )
    .await;
    let with_treatment = || -> BoxFuture<'static, Case> {
        Box::pin(async {
            let mut c = base().await;
            let path = format!("/api/v1/patients/{}/treatments", c.patient);
            let res = c
                .app
                .post_as(&c.staff, &path, &treatment(&c.hospital, "in_progress"))
                .await;
            c.other = id_of(res);
            c
        })
    };
    prove(
        "complete",
        with_treatment,
        |c| {
            Box::pin(async move {
                let path = format!("/api/v1/treatments/{}", c.other);
                let version = version_of(c, &path).await;
                let body = json!({"version": version, "status": "completed"});
                c.app.patch_as(&c.staff, &path, &body).await
            })
        },
        StatusCode::OK,
    )
    .await;
    prove(
        "cancel after completion",
        || {
            Box::pin(async {
                let mut c = base().await;
                let path = format!("/api/v1/patients/{}/treatments", c.patient);
                let res = c
                    .app
                    .post_as(&c.staff, &path, &treatment(&c.hospital, "completed"))
                    .await;
                c.other = id_of(res);
                c
            })
        },
        |c| {
            Box::pin(async move {
                let path = format!("/api/v1/treatments/{}", c.other);
                let version = version_of(c, &path).await;
                let body = json!({"version": version, "status": "cancelled"});
                c.app.patch_as(&c.staff, &path, &body).await
            })
        },
        StatusCode::OK,
    )
    .await;
}

#[tokio::test]
async fn appointments_move_the_follow_up_with_them() {
    prove(
        "log with follow-up",
        || Box::pin(base()),
        |c| {
            let path = format!("/api/v1/patients/{}/appointments", c.patient);
            let body = json!({"discussion_notes": "Call back.", "status": "completed",
                              "next_follow_up": "2031-05-01"});
            Box::pin(async move { c.app.post_keyed(&c.staff, &path, "call", &body).await })
        },
        StatusCode::CREATED,
    )
    .await;
    prove(
        "reschedule follow-up",
        || {
            Box::pin(async {
                let mut c = base().await;
                let path = format!("/api/v1/patients/{}/appointments", c.patient);
                let body = json!({"discussion_notes": "First call.", "status": "completed"});
                c.other = id_of(c.app.post_as(&c.staff, &path, &body).await);
                c
            })
        },
        |c| {
            Box::pin(async move {
                let path = format!("/api/v1/appointments/{}", c.other);
                let version = version_of(c, &path).await;
                let body = json!({"version": version, "next_follow_up": "2031-06-01"});
                c.app.patch_as(&c.staff, &path, &body).await
            })
        },
        StatusCode::OK,
    )
    .await;
}

#[tokio::test]
async fn account_and_permission_changes_carry_their_audit() {
    prove(
        "create hospital",
        || Box::pin(base()),
        |c| {
            let body = json!({"name": "Keyed", "location": "Izmir", "country": "TR",
                              "commission_bps": 1000, "currency": "EUR"});
            Box::pin(async move {
                c.app
                    .post_keyed(&c.admin, "/api/v1/hospitals", "h", &body)
                    .await
            })
        },
        StatusCode::CREATED,
    )
    .await;
    prove(
        "create user",
        || Box::pin(base()),
        |c| {
            let body = json!({"name": "New", "email": "atomic.new@example.com",
                              "password": "a long enough passphrase", "role": "staff"});
            Box::pin(async move {
                c.app
                    .post_keyed(&c.admin, "/api/v1/users", "u", &body)
                    .await
            })
        },
        StatusCode::CREATED,
    )
    .await;
    let with_user = || -> BoxFuture<'static, Case> {
        Box::pin(async {
            let mut c = base().await;
            c.other = c.staff.id.to_string();
            c
        })
    };
    prove(
        "promote",
        with_user,
        |c| {
            let path = format!("/api/v1/users/{}", c.other);
            Box::pin(async move {
                c.app
                    .patch_as(&c.admin, &path, &json!({"role": "admin"}))
                    .await
            })
        },
        StatusCode::OK,
    )
    .await;
    prove(
        "deactivate",
        with_user,
        |c| {
            let path = format!("/api/v1/users/{}/deactivate", c.other);
            Box::pin(async move { c.app.post_as(&c.admin, &path, &json!({})).await })
        },
        StatusCode::OK,
    )
    .await;
    prove(
        "reset password",
        with_user,
        |c| {
            let path = format!("/api/v1/users/{}/password", c.other);
            let body = json!({"new_password": "another long passphrase"});
            Box::pin(async move { c.app.post_as(&c.admin, &path, &body).await })
        },
        StatusCode::NO_CONTENT,
    )
    .await;
    prove(
        "delete user",
        with_user,
        |c| {
            Box::pin(async move {
                let path = format!("/api/v1/users/{}", c.other);
                c.app.delete_as(&c.admin, &path).await
            })
        },
        StatusCode::NO_CONTENT,
    )
    .await;
    prove(
        "set permissions",
        || Box::pin(base()),
        |c| {
            let body =
                json!({"rules": [{"method": "GET", "path": "/api/v1/dashboard", "allow": true}]});
            Box::pin(async move {
                c.app
                    .put_as(&c.admin, "/api/v1/permissions/staff", &body)
                    .await
            })
        },
        StatusCode::OK,
    )
    .await;
}

#[tokio::test]
async fn accepting_a_quote_books_all_of_it_or_nothing() {
    prove(
        "accept a quote",
        || {
            Box::pin(async {
                let mut c = base().await;
                let quotes = format!("/api/v1/patients/{}/quotes", c.patient);
                let ask = json!({"hospital_id": c.hospital, "treatment_type": "knee replacement",
                                 "disease": "osteoarthritis"});
                let mut ids = Vec::new();
                for amount in [1_000_000, 1_100_000] {
                    let id = id_of(c.app.post_as(&c.staff, &quotes, &ask).await);
                    let valid = (chrono::Utc::now() + chrono::Duration::days(30))
                        .format("%Y-%m-%d")
                        .to_string();
                    let answer = json!({"version": 1, "status": "received", "valid_until": valid,
                                        "amount": {"amount_minor": amount, "currency": "EUR"}});
                    let res = c
                        .app
                        .patch_as(&c.staff, &format!("/api/v1/quotes/{id}"), &answer)
                        .await;
                    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
                    ids.push(id);
                }
                c.other = ids.remove(0);
                c
            })
        },
        |c| {
            Box::pin(async move {
                let path = format!("/api/v1/quotes/{}/accept", c.other);
                c.app
                    .post_keyed(&c.staff, &path, "accept", &json!({}))
                    .await
            })
        },
        StatusCode::CREATED,
    )
    .await;
}

#[tokio::test]
async fn saving_travel_writes_the_record_its_history_and_the_search_key_or_nothing() {
    prove(
        "save travel",
        || Box::pin(base()),
        |c| {
            Box::pin(async move {
                let body = json!({"passport": {"number": "U12345678", "country": "GB",
                    "expires_on": "2031-05-01"}, "pickup_arranged": true});
                c.app
                    .put_as(
                        &c.staff,
                        &format!("/api/v1/patients/{}/travel", c.patient),
                        &body,
                    )
                    .await
            })
        },
        StatusCode::OK,
    )
    .await;
}
