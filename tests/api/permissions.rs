//! Route permissions: default matrix, default deny, live changes, per-user
//! overrides, and the guards that keep an admin in charge.

use std::collections::HashSet;

use axum::http::StatusCode;
use healthcrm::{domain::user::Role, seed};
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn every_protected_route_has_a_seed_rule_for_every_role() {
    let routes = healthcrm::http::protected_routes();
    assert!(routes.len() >= 19, "{routes:?}");
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(seed::DEFAULT_SEED_FILE),
    )
    .expect("seed file");
    let matrix = seed::parse("permissions.json", &text, routes).expect("valid seed file");
    for role in Role::ALL {
        let rules = matrix
            .get(&role)
            .unwrap_or_else(|| panic!("no rules for {role}"));
        let covered: HashSet<_> = rules.iter().map(|r| r.key()).collect();
        for route in routes {
            assert!(
                covered.contains(route),
                "{role} has no seed rule for {route}"
            );
        }
    }
    // Admin may do everything by default.
    assert!(matrix[&Role::Admin].iter().all(|r| r.allow));
}

#[tokio::test]
async fn staff_are_forbidden_on_admin_routes_and_allowed_on_theirs() {
    let app = TestApp::spawn().await;
    let staff = app.login_as(Role::Staff).await;
    assert_eq!(
        app.get_as(&staff, "/api/v1/auth/me").await.status,
        StatusCode::OK
    );
    let res = app
        .patch_as(&staff, "/api/v1/auth/me", &json!({"name": "New Name"}))
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json()["name"], "New Name");
    for path in [
        "/api/v1/users",
        "/api/v1/permissions",
        "/api/v1/permissions/routes",
    ] {
        app.get_as(&staff, path)
            .await
            .assert_error(StatusCode::FORBIDDEN, "forbidden");
    }
    app.put_as(
        &staff,
        "/api/v1/permissions/staff",
        &json!({"rules": [{"method": "GET", "path": "/api/v1/users", "allow": true}]}),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");
    // Escalating oneself through the users API is forbidden too.
    app.patch_as(
        &staff,
        &format!("/api/v1/users/{}", staff.id),
        &json!({"role": "admin"}),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");
    let admin = app.login_as(Role::Admin).await;
    assert_eq!(
        app.get_as(&admin, "/api/v1/users").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn unknown_paths_stay_404_and_wrong_methods_405() {
    let app = TestApp::spawn().await;
    let staff = app.login_as(Role::Staff).await;
    app.get("/api/v1/nothing-here")
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    app.get_as(&staff, "/api/v1/nothing-here")
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    for token in [None, Some(staff.token.as_str())] {
        app.send_as(
            token,
            axum::http::Method::DELETE,
            "/api/v1/permissions",
            None,
        )
        .await
        .assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    }
}

#[tokio::test]
async fn a_permission_change_takes_effect_on_the_next_request() {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let staff = app.login_as(Role::Staff).await;
    app.get_as(&staff, "/api/v1/users")
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");

    let grant = json!({"rules": [{"method": "GET", "path": "/api/v1/users", "allow": true}]});
    let res = app
        .put_as(&admin, "/api/v1/permissions/staff", &grant)
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    assert_eq!(
        app.get_as(&staff, "/api/v1/users").await.status,
        StatusCode::OK
    );

    let deny = json!({"rules": [{"method": "GET", "path": "/api/v1/users", "allow": false}]});
    assert_eq!(
        app.put_as(&admin, "/api/v1/permissions/staff", &deny)
            .await
            .status,
        StatusCode::OK
    );
    app.get_as(&staff, "/api/v1/users")
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");

    // The matrix shows it, and the change is in the audit log with before/after.
    let matrix = app.get_as(&admin, "/api/v1/permissions").await.json();
    let staff_rules = matrix
        .as_array()
        .expect("roles")
        .iter()
        .find(|r| r["role"] == "staff")
        .expect("staff")
        .clone();
    assert!(staff_rules["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .any(|r| r["path"] == "/api/v1/users" && r["method"] == "GET" && r["allow"] == false));
    let filter = healthcrm::repo::audit::AuditFilter {
        action: Some("permissions.update".into()),
        ..Default::default()
    };
    let page = healthcrm::repo::PageRequest {
        page: 1,
        per_page: 10,
    };
    let (events, _) = app.repos().audit.list(&filter, page).await.expect("audit");
    assert_eq!(events.len(), 2);
    let first = events.last().expect("first change");
    assert_eq!(first.actor_id, Some(admin.id));
    let change = first
        .details
        .as_ref()
        .expect("details")
        .get_array("changes")
        .expect("changes")[0]
        .clone();
    let change = change.as_document().expect("doc");
    assert_eq!(change.get_bool("before").ok(), Some(false));
    assert_eq!(change.get_bool("after").ok(), Some(true));
}

#[tokio::test]
async fn bad_rules_are_422_and_unknown_roles_404() {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    for rules in [
        json!([{"method": "GET", "path": "/api/v1/nope", "allow": true}]),
        json!([{"method": "BREW", "path": "/api/v1/users", "allow": true}]),
        json!([{"method": "GET", "path": "/api/v1/users", "allow": "yes"}]),
        json!([{"method": "GET", "path": "/api/v1/users", "allow": true}, {"method": "GET", "path": "/api/v1/users", "allow": false}]),
        json!([]),
    ] {
        app.put_as(
            &admin,
            "/api/v1/permissions/staff",
            &json!({"rules": rules}),
        )
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    app.put_as(
        &admin,
        "/api/v1/permissions/root",
        &json!({"rules": [{"method": "GET", "path": "/api/v1/users", "allow": true}]}),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn per_user_overrides_grant_and_deny() {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let other_admin = app.login_as(Role::Admin).await;
    let staff = app.login_as(Role::Staff).await;

    let grant = json!({"permissions": [{"method": "GET", "path": "/api/v1/users", "allow": true}]});
    let res = app
        .patch_as(&admin, &format!("/api/v1/users/{}", staff.id), &grant)
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    assert_eq!(
        app.get_as(&staff, "/api/v1/users").await.status,
        StatusCode::OK
    );
    app.get_as(&staff, "/api/v1/permissions")
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");

    let deny = json!({"permissions": [{"method": "GET", "path": "/api/v1/users", "allow": false}]});
    let res = app
        .patch_as(&admin, &format!("/api/v1/users/{}", other_admin.id), &deny)
        .await;
    assert_eq!(res.status, StatusCode::OK);
    app.get_as(&other_admin, "/api/v1/users")
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(
        app.get_as(&admin, "/api/v1/users").await.status,
        StatusCode::OK,
        "only that user"
    );
}

#[tokio::test]
async fn changes_that_leave_no_admin_able_to_manage_permissions_are_refused() {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let lockout =
        json!({"rules": [{"method": "PUT", "path": "/api/v1/permissions/{role}", "allow": false}]});
    app.put_as(&admin, "/api/v1/permissions/admin", &lockout)
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
    // Nor through the only admin's own overrides.
    let deny =
        json!({"permissions": [{"method": "GET", "path": "/api/v1/permissions", "allow": false}]});
    app.patch_as(&admin, &format!("/api/v1/users/{}", admin.id), &deny)
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
    // Still in charge.
    assert_eq!(
        app.get_as(&admin, "/api/v1/permissions").await.status,
        StatusCode::OK
    );

    // With a second admin who keeps the rights, the first may lose them.
    let second = app.login_as(Role::Admin).await;
    let res = app
        .patch_as(&second, &format!("/api/v1/users/{}", admin.id), &deny)
        .await;
    assert_eq!(res.status, StatusCode::OK);
    app.get_as(&admin, "/api/v1/permissions")
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn protected_routes_are_listed_and_documented_as_bearer_secured() {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let listed = app
        .get_as(&admin, "/api/v1/permissions/routes")
        .await
        .json();
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(healthcrm::http::protected_routes().len())
    );
    let doc = app.get("/api/v1/openapi.json").await.json();
    for route in healthcrm::http::protected_routes() {
        let op = &doc["paths"][&route.path][route.method.to_lowercase()];
        assert!(op.is_object(), "{route} documented");
        assert!(op["security"].is_array(), "{route} marked as secured");
    }
    assert!(
        doc["paths"]["/api/v1/auth/login"]["post"]["security"].is_null(),
        "login is public"
    );
}

#[tokio::test]
async fn permission_checks_never_query_the_database_on_the_hot_path() {
    use std::{
        collections::HashMap,
        sync::{Arc, Mutex},
    };

    use mongodb::{
        event::{command::CommandEvent, EventHandler},
        options::ClientOptions,
        Client,
    };
    use secrecy::ExposeSecret;

    let base = TestApp::spawn_with(&[("USER_CACHE_TTL_MS", "60000")]).await;
    // Every command the app sends, as "command collection" -> count.
    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let mut opts = ClientOptions::parse(base.config.mongodb_uri.expose_secret())
        .await
        .expect("options");
    let sink = seen.clone();
    opts.command_event_handler = Some(EventHandler::callback(move |ev: CommandEvent| {
        if let CommandEvent::Started(s) = ev {
            let coll = s.command.get_str(&s.command_name).unwrap_or("").to_owned();
            if let Ok(mut m) = sink.lock() {
                *m.entry(format!("{} {coll}", s.command_name)).or_default() += 1;
            }
        }
    }));
    let db = Client::with_options(opts)
        .expect("client")
        .database(&base.config.mongodb_db);
    let app = TestApp::from_router(
        healthcrm::build_app(healthcrm::AppState::new(db, base.config.clone())),
        &base,
    );
    let staff = app.login_as(Role::Staff).await;
    let res = app
        .post_as(
            &staff,
            "/api/v1/patients",
            &json!({"name": "Cached", "country": "DE"}),
        )
        .await;
    let path = format!(
        "/api/v1/patients/{}",
        res.json()["id"].as_str().expect("id")
    );
    assert_eq!(app.get_as(&staff, &path).await.status, StatusCode::OK);
    seen.lock().expect("lock").clear();

    for _ in 0..20 {
        assert_eq!(app.get_as(&staff, &path).await.status, StatusCode::OK);
    }
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(
        seen.get("find patients"),
        Some(&20),
        "the monitor sees the handler's reads: {seen:?}"
    );
    assert!(
        seen.keys()
            .all(|k| !k.ends_with(" permissions") && !k.ends_with(" users")),
        "the permission check or the principal went to the database: {seen:?}"
    );
}
