//! Route permissions: default matrix, default deny, live changes, per-user
//! overrides, and the guards that keep an admin in charge.

use std::collections::HashSet;

use axum::http::StatusCode;
use healthcrm::{domain::user::Role, seed};
use serde_json::json;

use crate::helpers::{TestApp, TEST_PASSWORD};

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
    let query_permissions = healthcrm::domain::permission::query_permissions();
    for route in healthcrm::http::protected_routes() {
        if query_permissions.contains(route) {
            // A permission on a query parameter of a documented route.
            let (path, _) = route.path.split_once('?').expect("a query");
            assert!(
                doc["paths"][path][route.method.to_lowercase()].is_object(),
                "{route}"
            );
            continue;
        }
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

/// A staff member who was delegated `rules` by an admin.
async fn delegate(
    app: &TestApp,
    admin: &crate::helpers::Session,
    rules: serde_json::Value,
) -> crate::helpers::Session {
    let staff = app.login_as(Role::Staff).await;
    let res = app
        .patch_as(
            admin,
            &format!("/api/v1/users/{}", staff.id),
            &json!({ "permissions": rules }),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    // The access change ended nothing (no role change): the token still works.
    staff
}

#[tokio::test]
async fn delegated_user_management_cannot_grant_what_it_does_not_hold() {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let manager = delegate(
        &app,
        &admin,
        json!([
            {"method": "POST", "path": "/api/v1/users", "allow": true},
            {"method": "PATCH", "path": "/api/v1/users/{id}", "allow": true},
            {"method": "POST", "path": "/api/v1/users/{id}/password", "allow": true},
            {"method": "POST", "path": "/api/v1/users/{id}/deactivate", "allow": true},
            {"method": "DELETE", "path": "/api/v1/users/{id}", "allow": true},
        ]),
    )
    .await;
    let put_permissions =
        json!({"method": "PUT", "path": "/api/v1/permissions/{role}", "allow": true});

    // Not to themselves...
    app.patch_as(
        &manager,
        &format!("/api/v1/users/{}", manager.id),
        &json!({"permissions": [put_permissions]}),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");
    // ...nor to a colleague, nor to a new account.
    let colleague = app.login_as(Role::Staff).await;
    let body = app
        .patch_as(
            &manager,
            &format!("/api/v1/users/{}", colleague.id),
            &json!({"permissions": [put_permissions]}),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("PUT /api/v1/permissions/{role}"),
        "{body}"
    );
    app.post_as(
        &manager,
        "/api/v1/users",
        &json!({"name": "New One", "email": "new.one@example.com", "password": "a long enough password",
                "role": "staff", "permissions": [put_permissions]}),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");
    // No admin is created, promoted, reset, deactivated or deleted by them.
    app.post_as(
        &manager,
        "/api/v1/users",
        &json!({"name": "New Admin", "email": "new.admin@example.com", "password": "a long enough password", "role": "admin"}),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");
    app.patch_as(
        &manager,
        &format!("/api/v1/users/{}", colleague.id),
        &json!({"role": "admin"}),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");
    let on_admin = format!("/api/v1/users/{}", admin.id);
    app.post_as(
        &manager,
        &format!("{on_admin}/password"),
        &json!({"new_password": "taken over at last!"}),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");
    app.patch_as(
        &manager,
        &on_admin,
        &json!({"email": "attacker@example.com"}),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");
    app.post_as(&manager, &format!("{on_admin}/deactivate"), &json!({}))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    app.delete_as(&manager, &on_admin)
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    // Nothing changed: the admin still logs in, the colleague is still staff
    // without the rule, and no account was created.
    assert_eq!(
        app.login(&admin.email, TEST_PASSWORD).await.status,
        StatusCode::OK
    );
    app.put_as(
        &colleague,
        "/api/v1/permissions/staff",
        &json!({"rules": [put_permissions]}),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");
    let users = app
        .get_as(&admin, "/api/v1/users?per_page=100")
        .await
        .json();
    assert_eq!(users["total"], 3, "{users}");

    // Nor do they take over an account that may do more than they may.
    let privileged = delegate(&app, &admin, json!([put_permissions])).await;
    let on_privileged = format!("/api/v1/users/{}", privileged.id);
    app.post_as(
        &manager,
        &format!("{on_privileged}/password"),
        &json!({"new_password": "taken over at last!"}),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");
    app.patch_as(
        &manager,
        &on_privileged,
        &json!({"email": "attacker@example.com"}),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(
        app.login(&privileged.email, TEST_PASSWORD).await.status,
        StatusCode::OK
    );

    // What they hold they may share, and staff accounts they may manage.
    let share = json!({"method": "POST", "path": "/api/v1/users", "allow": true});
    let res = app
        .patch_as(
            &manager,
            &format!("/api/v1/users/{}", colleague.id),
            &json!({"permissions": [share]}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    let res = app
        .post_as(
            &manager,
            &format!("/api/v1/users/{}/password", colleague.id),
            &json!({"new_password": "a fresh passphrase here"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{:?}", res.json());
    let res = app
        .post_as(
            &manager,
            "/api/v1/users",
            &json!({"name": "New One", "email": "new.one@example.com", "password": "a long enough password", "role": "staff"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
}

#[tokio::test]
async fn delegated_permission_editing_cannot_grant_what_it_does_not_hold() {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let editor = delegate(
        &app,
        &admin,
        json!([{"method": "PUT", "path": "/api/v1/permissions/{role}", "allow": true}]),
    )
    .await;
    let users = json!({"method": "GET", "path": "/api/v1/users", "allow": true});
    app.put_as(
        &editor,
        "/api/v1/permissions/staff",
        &json!({"rules": [users]}),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");
    app.get_as(&editor, "/api/v1/users")
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    // The admin role's rules are the admins' to change.
    let deny = json!({"method": "GET", "path": "/api/v1/users", "allow": false});
    app.put_as(
        &editor,
        "/api/v1/permissions/admin",
        &json!({"rules": [deny]}),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(
        app.get_as(&admin, "/api/v1/users").await.status,
        StatusCode::OK
    );
    // Taking a rule away, or granting one they hold, is fine.
    let held = json!({"method": "PUT", "path": "/api/v1/permissions/{role}", "allow": true});
    let res = app
        .put_as(
            &editor,
            "/api/v1/permissions/staff",
            &json!({"rules": [held]}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
}

#[tokio::test]
async fn two_admins_deactivating_each_other_at_once_leave_one() {
    let app = TestApp::spawn().await;
    for round in 0..4 {
        // Only these two admins are active.
        app.db
            .collection::<mongodb::bson::Document>("users")
            .update_many(
                mongodb::bson::doc! { "role": "admin" },
                mongodb::bson::doc! { "$set": { "active": false } },
            )
            .await
            .expect("retire earlier admins");
        let a = app.login_as(Role::Admin).await;
        let b = app.login_as(Role::Admin).await;
        let (off_b, off_a) = (
            format!("/api/v1/users/{}/deactivate", b.id),
            format!("/api/v1/users/{}/deactivate", a.id),
        );
        let empty = json!({});
        let (ra, rb) = tokio::join!(
            app.post_as(&a, &off_b, &empty),
            app.post_as(&b, &off_a, &empty),
        );
        let ok = [ra.status, rb.status]
            .iter()
            .filter(|s| **s == StatusCode::OK)
            .count();
        assert_eq!(ok, 1, "round {round}: {} and {}", ra.status, rb.status);
        let active = app
            .db
            .collection::<mongodb::bson::Document>("users")
            .count_documents(mongodb::bson::doc! { "role": "admin", "active": true })
            .await
            .expect("count");
        assert_eq!(active, 1, "round {round}");
    }
}
