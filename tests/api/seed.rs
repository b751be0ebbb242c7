//! The seed: idempotent, dry run writes nothing, admin changes kept unless
//! reset, bad files refused whole.

use futures::TryStreamExt;
use healthcrm::{domain::user::Role, http::protected_routes, migrate, seed};
use mongodb::bson::{doc, Document};
use secrecy::SecretString;

use crate::helpers::{test_config, TestApp};

fn seed_file() -> std::collections::BTreeMap<Role, Vec<healthcrm::domain::permission::Rule>> {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(seed::DEFAULT_SEED_FILE),
    )
    .expect("seed file");
    seed::parse("permissions.json", &text, protected_routes()).expect("valid")
}

fn opts(dry_run: bool, reset: bool) -> seed::Options {
    seed::Options {
        dry_run,
        reset,
        admin_email: Some("First.Admin@Example.com".into()),
        admin_password: Some(SecretString::from("the first admin's passphrase")),
        admin_name: "First Admin".into(),
    }
}

/// A migrated but unseeded database (TestApp::spawn seeds permissions).
async fn empty_db() -> TestApp {
    let app = TestApp::spawn().await;
    app.db
        .collection::<Document>("permissions")
        .delete_many(doc! {})
        .await
        .expect("clear");
    app
}

#[tokio::test]
async fn seeding_twice_changes_nothing_the_second_time() {
    let app = empty_db().await;
    let rules = seed_file();
    let first = seed::run(&app.db, &rules, &opts(false, false))
        .await
        .expect("first run");
    let writes = first.iter().filter(|c| c.writes()).count();
    assert_eq!(
        writes,
        protected_routes().len() * 2 + 1,
        "every rule for both roles + the admin"
    );
    assert!(first.contains(&seed::Change::CreateAdmin {
        email: "first.admin@example.com".into()
    }));
    let second = seed::run(&app.db, &rules, &opts(false, false))
        .await
        .expect("second run");
    assert!(second.is_empty(), "{second:?}");
    // The admin can log in.
    assert_eq!(
        app.login("first.admin@example.com", "the first admin's passphrase")
            .await
            .status,
        axum::http::StatusCode::OK
    );
}

#[tokio::test]
async fn a_dry_run_writes_nothing() {
    let app = empty_db().await;
    let planned = seed::run(&app.db, &seed_file(), &opts(true, false))
        .await
        .expect("dry run");
    assert!(planned.iter().filter(|c| c.writes()).count() > 1);
    assert_eq!(
        app.db
            .collection::<Document>("permissions")
            .count_documents(doc! {})
            .await
            .expect("count"),
        0
    );
    assert_eq!(
        app.db
            .collection::<Document>("users")
            .count_documents(doc! {})
            .await
            .expect("count"),
        0
    );
}

#[tokio::test]
async fn admin_changes_are_kept_unless_reset() {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let grant =
        serde_json::json!({"rules": [{"method": "GET", "path": "/api/v1/users", "allow": true}]});
    assert_eq!(
        app.put_as(&admin, "/api/v1/permissions/staff", &grant)
            .await
            .status,
        axum::http::StatusCode::OK
    );
    let rules = seed_file();
    let changes = seed::run(&app.db, &rules, &opts(false, false))
        .await
        .expect("run");
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert!(matches!(
        &changes[0],
        seed::Change::KeptAdminChange {
            role: Role::Staff,
            ..
        }
    ));
    let staff = app
        .repos()
        .permissions
        .for_role(Role::Staff)
        .await
        .expect("read")
        .expect("staff");
    assert!(staff
        .rules
        .iter()
        .any(|r| r.path == "/api/v1/users" && r.method == "GET" && r.allow));

    let changes = seed::run(&app.db, &rules, &opts(false, true))
        .await
        .expect("reset");
    assert!(
        matches!(
            &changes[0],
            seed::Change::ResetRule {
                role: Role::Staff,
                ..
            }
        ),
        "{changes:?}"
    );
    let staff = app
        .repos()
        .permissions
        .for_role(Role::Staff)
        .await
        .expect("read")
        .expect("staff");
    assert!(staff
        .rules
        .iter()
        .any(|r| r.path == "/api/v1/users" && r.method == "GET" && !r.allow));
    assert!(seed::run(&app.db, &rules, &opts(false, false))
        .await
        .expect("again")
        .is_empty());
}

#[tokio::test]
async fn bad_seed_files_name_the_entry_and_write_nothing() {
    let routes = protected_routes();
    let cases = [
        (
            r#"{"roles": {"staff": [{"method": "GET", "path": "/api/v1/nope", "allow": true}]}}"#,
            "roles.staff[0]",
        ),
        (r#"{"roles": {"root": []}}"#, "roles.root"),
        (
            r#"{"roles": {"staff": [{"method": "GET", "path": "/api/v1/users", "allow": "yes"}]}}"#,
            "roles.staff[0].allow",
        ),
        (
            r#"{"roles": {"staff": [{"method": "GET", "path": "/api/v1/users", "allow": true}, {"method": "get", "path": "/api/v1/users", "allow": true}]}}"#,
            "roles.staff[1]",
        ),
        (r#"{"rules": []}"#, "rules"),
        (r#"{"roles": "#, "bad.json: roles"),
        (r#"[]"#, "(top level)"),
    ];
    for (text, entry) in cases {
        let err = seed::parse("seeds/bad.json", text, routes).expect_err(text);
        assert!(err.to_string().contains(entry), "{err} should name {entry}");
        assert!(err.to_string().starts_with("seeds/bad.json"), "{err}");
    }
    // Parsing fails before any connection, so nothing can be written; and a
    // weak admin password is refused before writing anything either.
    let config = test_config(&[]);
    let client = healthcrm::db::client(&config).await.expect("client");
    let db = client.database(&config.mongodb_db);
    migrate::run(&db).await.expect("migrate");
    let mut weak = opts(false, false);
    weak.admin_password = Some(SecretString::from("short"));
    let err = seed::run(&db, &seed_file(), &weak)
        .await
        .expect_err("weak password");
    assert!(err.to_string().contains("SEED_ADMIN_PASSWORD"), "{err}");
    assert_eq!(
        db.collection::<Document>("permissions")
            .count_documents(doc! {})
            .await
            .expect("count"),
        0
    );
    db.drop().await.expect("drop");
}

#[tokio::test]
async fn the_seed_restores_an_admin_when_none_is_active() {
    let app = empty_db().await;
    let rules = seed_file();
    seed::run(&app.db, &rules, &opts(false, false))
        .await
        .expect("first run");
    // The only admin is deactivated behind the API's back (a bad script):
    // an inactive admin does not count.
    app.db
        .collection::<Document>("users")
        .update_many(
            doc! { "role": "admin" },
            doc! { "$set": { "active": false } },
        )
        .await
        .expect("deactivate");
    let mut recover = opts(false, false);
    recover.admin_password = Some(SecretString::from("a brand new admin passphrase"));
    let changes = seed::run(&app.db, &rules, &recover)
        .await
        .expect("recovery run");
    assert!(
        changes.contains(&seed::Change::RestoreAdmin {
            email: "first.admin@example.com".into()
        }),
        "{changes:?}"
    );
    let res = app
        .login("first.admin@example.com", "a brand new admin passphrase")
        .await;
    assert_eq!(res.status, axum::http::StatusCode::OK);
    assert_eq!(res.json()["user"]["role"], "admin");
    // Once an admin is active again, the seed leaves accounts alone.
    let again = seed::run(&app.db, &rules, &recover).await.expect("again");
    assert!(again.is_empty(), "{again:?}");
}

async fn distinct(app: &TestApp, coll: &str, field: &str) -> Vec<String> {
    let mut values: Vec<String> = app
        .db
        .collection::<Document>(coll)
        .distinct(field, doc! {})
        .await
        .expect("distinct")
        .into_iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    values.sort();
    values
}

async fn counts(app: &TestApp) -> Vec<(&'static str, u64)> {
    let mut out = Vec::new();
    for coll in [
        "users",
        "hospitals",
        "patients",
        "appointments",
        "quotes",
        "treatments",
        "earnings",
        "travel",
        "history",
    ] {
        let n = app
            .db
            .collection::<Document>(coll)
            .count_documents(doc! {})
            .await
            .expect("count");
        out.push((coll, n));
    }
    out
}

/// `seed --demo`: the whole data set through the workflows, consistent (the
/// doctor finds nothing), spread over 18 months, every state present; a
/// second run adds nothing; real patients stop it unless forced.
#[tokio::test]
async fn the_demo_loads_once_consistently_and_refuses_beside_real_patients() {
    use healthcrm::demo;
    let app = TestApp::spawn().await;
    let now = chrono::Utc::now();
    let opts = |force| demo::Options {
        force,
        now,
        patients: demo::PATIENTS,
    };
    let first = demo::run(&app.workflows, &app.hasher, &opts(false))
        .await
        .expect("first run");
    assert_eq!(
        (
            first.staff_added,
            first.hospitals_added,
            first.patients_added
        ),
        (4, 15, demo::PATIENTS)
    );
    assert!(first.quotes > 300 && first.treatments > 120, "{first}");

    assert_eq!(distinct(&app, "hospitals", "country").await.len(), 8);
    assert_eq!(distinct(&app, "patients", "country").await.len(), 20);
    assert_eq!(
        distinct(&app, "patients", "treatment_status").await,
        ["coming", "completed", "denied", "inquiry", "ready"]
    );
    assert_eq!(
        distinct(&app, "treatments", "status").await,
        ["cancelled", "completed", "in_progress", "planned"]
    );
    assert_eq!(
        distinct(&app, "quotes", "status").await,
        ["accepted", "declined", "received", "requested"]
    );
    assert_eq!(
        distinct(&app, "earnings", "kind").await,
        ["credit", "reversal"]
    );
    assert_eq!(
        distinct(&app, "patients", "status").await,
        ["new", "repeat"]
    );
    let patients = app.repos().patients;
    let oldest = patients
        .scan()
        .await
        .expect("scan")
        .try_collect::<Vec<_>>()
        .await
        .expect("patients")
        .iter()
        .map(|p| p.created_at.to_chrono())
        .min()
        .expect("patients");
    let months = (now - oldest).num_days() / 30;
    assert!((15..=19).contains(&months), "spread over {months} months");

    // Consistent as the API keeps it: every credit booked, every status
    // where its treatments put it.
    let report = healthcrm::workflow::doctor::check(&app.workflows, false)
        .await
        .expect("doctor");
    assert!(report.violations.is_empty(), "{:?}", report.violations);

    // What a new user opens first is not empty.
    let admin = app.login_as(Role::Admin).await;
    let dash = app.get_as(&admin, "/api/v1/dashboard").await;
    assert_eq!(dash.status, axum::http::StatusCode::OK);
    let earnings = app.get_as(&admin, "/api/v1/reports/earnings").await.json();
    assert!(!earnings["rows"].as_array().expect("rows").is_empty());
    let today = now.format("%Y-%m-%d").to_string();
    let ran_out = app
        .db
        .collection::<Document>("quotes")
        .count_documents(doc! { "status": "received", "valid_until": { "$lt": today } })
        .await
        .expect("count");
    assert!(ran_out > 0, "some quotes ran out unanswered");

    let before = counts(&app).await;
    let second = demo::run(&app.workflows, &app.hasher, &opts(false))
        .await
        .expect("second run");
    assert_eq!(
        second,
        demo::Summary {
            patients_kept: demo::PATIENTS,
            ..Default::default()
        }
    );
    assert_eq!(counts(&app).await, before);

    // A patient the demo did not register: refused, unless forced.
    let real = app
        .post_as(
            &admin,
            "/api/v1/patients",
            &serde_json::json!({"name": "Real Person", "country": "GB"}),
        )
        .await;
    assert_eq!(real.status, axum::http::StatusCode::CREATED);
    let refused = demo::run(&app.workflows, &app.hasher, &opts(false)).await;
    assert!(
        matches!(refused, Err(demo::DemoError::RealPatients(1))),
        "{refused:?}"
    );
    let forced = demo::run(&app.workflows, &app.hasher, &opts(true))
        .await
        .expect("forced");
    assert_eq!(forced.patients_kept, demo::PATIENTS);
    assert_eq!(forced.patients_added, 0);
}
