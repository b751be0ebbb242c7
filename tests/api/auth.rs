//! Sessions: login and its failure modes, refresh rotation and reuse
//! detection, logout, password change, lockout, rate limit, forged tokens.

use axum::http::{Method, StatusCode};
use healthcrm::{auth::jwt::JwtKeys, domain::user::Role};
use serde_json::json;

use crate::helpers::{TestApp, TEST_PASSWORD};

#[tokio::test]
async fn login_returns_a_token_pair_and_the_user() {
    let app = TestApp::spawn().await;
    let (id, email) = app.create_user(Role::Staff).await;
    let res = app.login(&email.to_uppercase(), TEST_PASSWORD).await;
    assert_eq!(res.status, StatusCode::OK);
    let body = res.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["user"]["id"], id.to_string());
    assert_eq!(body["user"]["email"], email);
    assert!(body["user"].get("password_hash").is_none());
    assert!(!body.to_string().contains("argon2"), "no hash anywhere");
    let token = body["access_token"].as_str().expect("token");
    let claims = JwtKeys::new(crate::helpers::TEST_JWT_SECRET.as_bytes())
        .verify(token)
        .expect("valid");
    assert_eq!(claims.exp - claims.iat, 900);
    assert_eq!(claims.sub, id.to_string());
    let me = app
        .send_as(Some(token), Method::GET, "/api/v1/auth/me", None)
        .await;
    assert_eq!(me.status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_email_and_wrong_password_answer_identically() {
    let app = TestApp::spawn().await;
    let (_, email) = app.create_user(Role::Staff).await;
    let wrong = app.login(&email, "not the right password").await;
    let unknown = app
        .login("nobody@example.com", "not the right password")
        .await;
    let a = wrong.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    let b = unknown.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(a["message"], b["message"]);
    assert_eq!(a["details"], b["details"]);
}

#[tokio::test]
async fn bad_login_bodies_are_refused_in_the_error_shape() {
    let app = TestApp::spawn().await;
    app.post_json("/api/v1/auth/login", &json!({"email": "a@b.c"}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    app.post_json(
        "/api/v1/auth/login",
        &json!({"email": "a@b.c", "password": "x", "admin": true}),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    app.post_json(
        "/api/v1/auth/login",
        &json!({"email": {"$gt": ""}, "password": "x"}),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    app.post_raw(
        "/api/v1/auth/login",
        Some("application/json"),
        "{\"email\":",
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "malformed_json");
    app.post_raw("/api/v1/auth/login", Some("text/plain"), "email=a")
        .await
        .assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let app = TestApp::spawn().await;
    let s = app.login_as(Role::Staff).await;
    let r1 = s.refresh_token.clone();
    let res = app
        .post_json("/api/v1/auth/refresh", &json!({"refresh_token": r1}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    let r2 = res.json()["refresh_token"]
        .as_str()
        .expect("new")
        .to_owned();
    assert_ne!(r1, r2);
    let access2 = res.json()["access_token"]
        .as_str()
        .expect("access")
        .to_owned();
    assert_eq!(
        app.send_as(Some(&access2), Method::GET, "/api/v1/auth/me", None)
            .await
            .status,
        StatusCode::OK
    );

    // The spent token presented again: refused, and its whole family revoked.
    app.post_json("/api/v1/auth/refresh", &json!({"refresh_token": r1}))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    app.post_json("/api/v1/auth/refresh", &json!({"refresh_token": r2}))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    app.post_json("/api/v1/auth/refresh", &json!({"refresh_token": "made-up"}))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn logout_revokes_the_refresh_token() {
    let app = TestApp::spawn().await;
    let s = app.login_as(Role::Staff).await;
    let res = app
        .post_as(
            &s,
            "/api/v1/auth/logout",
            &json!({"refresh_token": s.refresh_token}),
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    app.post_json(
        "/api/v1/auth/refresh",
        &json!({"refresh_token": s.refresh_token}),
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    // Logout itself needs a valid access token.
    app.post_json(
        "/api/v1/auth/logout",
        &json!({"refresh_token": s.refresh_token}),
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn password_change_ends_every_session() {
    let app = TestApp::spawn().await;
    let s = app.login_as(Role::Staff).await;
    let new_password = "a brand new passphrase";
    app.post_as(
        &s,
        "/api/v1/auth/password",
        &json!({"current_password": "wrong one", "new_password": new_password}),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    app.post_as(
        &s,
        "/api/v1/auth/password",
        &json!({"current_password": TEST_PASSWORD, "new_password": "short"}),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    app.post_as(
        &s,
        "/api/v1/auth/password",
        &json!({"current_password": TEST_PASSWORD, "new_password": s.email}),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

    let res = app
        .post_as(
            &s,
            "/api/v1/auth/password",
            &json!({"current_password": TEST_PASSWORD, "new_password": new_password}),
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    app.get_as(&s, "/api/v1/auth/me")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    app.post_json(
        "/api/v1/auth/refresh",
        &json!({"refresh_token": s.refresh_token}),
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    app.login(&s.email, TEST_PASSWORD)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(
        app.login(&s.email, new_password).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn deactivated_users_are_refused_at_once() {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let staff = app.login_as(Role::Staff).await;
    assert_eq!(
        app.get_as(&staff, "/api/v1/auth/me").await.status,
        StatusCode::OK
    );
    let res = app
        .post_as(
            &admin,
            &format!("/api/v1/users/{}/deactivate", staff.id),
            &json!({}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    assert_eq!(res.json()["active"], false);
    app.get_as(&staff, "/api/v1/auth/me")
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    app.post_json(
        "/api/v1/auth/refresh",
        &json!({"refresh_token": staff.refresh_token}),
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    app.login(&staff.email, TEST_PASSWORD)
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");

    // Reactivated: the old token stays void (sessions ended), a new login works.
    let res = app
        .post_as(
            &admin,
            &format!("/api/v1/users/{}/activate", staff.id),
            &json!({}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    app.get_as(&staff, "/api/v1/auth/me")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(
        app.login(&staff.email, TEST_PASSWORD).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn ten_failures_lock_the_account() {
    let app = TestApp::spawn().await;
    let (_, email) = app.create_user(Role::Staff).await;
    for _ in 0..10 {
        app.login(&email, "wrong password!!")
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    // Locked now, even with the right password.
    app.login(&email, TEST_PASSWORD)
        .await
        .assert_error(StatusCode::LOCKED, "account_locked");
}

#[tokio::test]
async fn a_success_resets_the_failure_count() {
    let app = TestApp::spawn_with(&[("LOGIN_LOCKOUT_THRESHOLD", "3")]).await;
    let (_, email) = app.create_user(Role::Staff).await;
    for _ in 0..2 {
        app.login(&email, "wrong password!!")
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    assert_eq!(
        app.login(&email, TEST_PASSWORD).await.status,
        StatusCode::OK
    );
    for _ in 0..2 {
        app.login(&email, "wrong password!!")
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    assert_eq!(
        app.login(&email, TEST_PASSWORD).await.status,
        StatusCode::OK,
        "not locked"
    );
}

#[tokio::test]
async fn auth_endpoints_are_rate_limited_per_ip() {
    let mut app = TestApp::spawn_with(&[("AUTH_RATE_LIMIT_PER_MINUTE", "3")]).await;
    for _ in 0..3 {
        app.login("x@example.com", "whatever password")
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let res = app.login("x@example.com", "whatever password").await;
    res.assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let retry: u64 = res
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry));
    app.post_json("/api/v1/auth/refresh", &json!({"refresh_token": "x"}))
        .await
        .assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    // Another address is unaffected.
    app.client_ip = "127.0.0.2:5000".parse().expect("addr");
    app.login("x@example.com", "whatever password")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn forged_expired_and_malformed_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let s = app.login_as(Role::Admin).await;
    let keys = JwtKeys::new(crate::helpers::TEST_JWT_SECRET.as_bytes());
    let expired = keys.issue(s.id, Role::Admin, 0, -120).expect("issue");
    let other = JwtKeys::new(b"some-other-secret-some-other-secret!")
        .issue(s.id, Role::Admin, 0, 600)
        .expect("issue");
    let payload = s.token.split('.').nth(1).expect("payload");
    let alg_none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
    let res = app
        .send_as(Some(&expired), Method::GET, "/api/v1/auth/me", None)
        .await;
    res.assert_error(StatusCode::UNAUTHORIZED, "token_expired");
    for bad in [other.as_str(), alg_none.as_str(), "garbage", "a.b.c"] {
        let res = app
            .send_as(Some(bad), Method::GET, "/api/v1/users", None)
            .await;
        res.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    app.get("/api/v1/users")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn me_lists_the_routes_the_user_may_call() {
    let app = TestApp::spawn().await;
    let staff = app.login_as(Role::Staff).await;
    let body = app.get_as(&staff, "/api/v1/auth/me").await.json();
    assert_eq!(body["user"]["role"], "staff");
    let routes: Vec<String> = body["permissions"]
        .as_array()
        .expect("list")
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["method"].as_str().unwrap_or(""),
                r["path"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert!(
        routes.contains(&"GET /api/v1/auth/me".to_owned()),
        "{routes:?}"
    );
    // Of the user routes, staff may only see colleagues' avatars (the
    // directory's pictures).
    assert_eq!(
        routes
            .iter()
            .filter(|r| r.contains("/api/v1/users"))
            .collect::<Vec<_>>(),
        ["GET /api/v1/users/{id}/avatar"],
        "{routes:?}"
    );
    let admin = app.login_as(Role::Admin).await;
    let body = app.get_as(&admin, "/api/v1/auth/me").await.json();
    assert_eq!(
        body["permissions"].as_array().map(Vec::len),
        Some(healthcrm::http::protected_routes().len())
    );
}

/// A login request as the router receives it from `app`'s client address.
fn login_request(
    app: &TestApp,
    email: &str,
    password: &str,
) -> axum::http::Request<axum::body::Body> {
    let mut req = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/api/v1/auth/login")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            json!({"email": email, "password": password}).to_string(),
        ))
        .expect("request");
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(app.client_ip));
    req
}

#[tokio::test]
async fn concurrent_guesses_verify_at_most_the_threshold_then_lock() {
    use tower::ServiceExt;
    let app = TestApp::spawn_with(&[("AUTH_RATE_LIMIT_PER_MINUTE", "1000")]).await;
    let (_, email) = app.create_user(Role::Staff).await;
    let before = app.hasher.stats().verifications();
    let guesses = (0..40).map(|i| {
        let req = login_request(&app, &email, &format!("wrong password {i:02}"));
        app.router.clone().oneshot(req)
    });
    let statuses: Vec<StatusCode> = futures::future::join_all(guesses)
        .await
        .into_iter()
        .map(|r| r.expect("infallible").status())
        .collect();
    let verified = app.hasher.stats().verifications() - before;
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::LOCKED)
        .count();
    let wrong = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!(wrong + refused, 40, "{statuses:?}");
    assert!(verified <= 10, "{verified} passwords were checked");
    assert_eq!(wrong as u64, verified, "each 401 is one verification");
    assert!(refused >= 30, "{statuses:?}");
    app.login(&email, TEST_PASSWORD)
        .await
        .assert_error(StatusCode::LOCKED, "account_locked");
}

#[tokio::test]
async fn an_unknown_email_locks_like_an_account() {
    let app = TestApp::spawn_with(&[("LOGIN_LOCKOUT_THRESHOLD", "3")]).await;
    let (_, email) = app.create_user(Role::Staff).await;
    for who in [email.as_str(), "nobody-here@example.com"] {
        for _ in 0..3 {
            app.login(who, "wrong password!!")
                .await
                .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
        }
        let body = app
            .login(who, "wrong password!!")
            .await
            .assert_error(StatusCode::LOCKED, "account_locked");
        let message = body["message"].as_str().expect("message");
        assert!(message.starts_with("too many failed logins"), "{message}");
    }
}

#[tokio::test]
async fn a_wrong_current_password_counts_toward_the_lockout() {
    let app = TestApp::spawn_with(&[("LOGIN_LOCKOUT_THRESHOLD", "3")]).await;
    let me = app.login_as(Role::Staff).await;
    for _ in 0..3 {
        app.post_as(
            &me,
            "/api/v1/auth/password",
            &json!({"current_password": "not my password", "new_password": "a brand new passphrase"}),
        )
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    app.post_as(
        &me,
        "/api/v1/auth/password",
        &json!({"current_password": TEST_PASSWORD, "new_password": "a brand new passphrase"}),
    )
    .await
    .assert_error(StatusCode::LOCKED, "account_locked");
    app.login(&me.email, TEST_PASSWORD)
        .await
        .assert_error(StatusCode::LOCKED, "account_locked");
}

#[tokio::test]
async fn cancelled_password_requests_never_exceed_the_hashing_cap() {
    use tower::ServiceExt;
    let app = TestApp::spawn_with(&[
        ("PASSWORD_HASH_CONCURRENCY", "2"),
        ("LOGIN_LOCKOUT_THRESHOLD", "1000"),
    ])
    .await;
    let me = app.login_as(Role::Staff).await;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let mut req = axum::http::Request::builder()
                .method(Method::POST)
                .uri("/api/v1/auth/password")
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer {}", me.token))
                .body(axum::body::Body::from(
                    json!({"current_password": "not my password", "new_password": "a brand new passphrase"})
                        .to_string(),
                ))
                .expect("request");
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(app.client_ip));
            tokio::spawn(app.router.clone().oneshot(req))
        })
        .collect();
    // The client gives up on them two at a time, as a socket-closing flood
    // would: the running hashes first, then the queued ones.
    let mut peak_seen = 0;
    for pair in tasks.chunks(2) {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        for t in pair {
            t.abort();
        }
        peak_seen = peak_seen.max(app.hasher.stats().running());
    }
    for _ in 0..500 {
        if app.hasher.stats().running() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(app.hasher.stats().running(), 0);
    let peak = app.hasher.stats().peak();
    assert!(
        peak <= 2,
        "{peak} hashes ran at once (seen while cancelling: {peak_seen})"
    );
    assert!(app.hasher.stats().verifications() >= 1, "some hashes ran");
}

#[tokio::test]
async fn responses_carry_nosniff_and_api_responses_are_never_cached() {
    let app = TestApp::spawn().await;
    let (_, email) = app.create_user(Role::Staff).await;
    let login = app.login(&email, TEST_PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK);
    let token = login.json()["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let cases = [
        ("login (tokens)", login),
        (
            "signed-in read",
            app.send_as(Some(&token), Method::GET, "/api/v1/auth/me", None)
                .await,
        ),
        ("refused (401)", app.get("/api/v1/patients").await),
        (
            "forbidden (403)",
            app.send_as(Some(&token), Method::GET, "/api/v1/users", None)
                .await,
        ),
        ("unknown route (404)", app.get("/api/v1/nothing-here").await),
    ];
    for (what, res) in &cases {
        assert_eq!(
            res.header("x-content-type-options"),
            Some("nosniff"),
            "{what}"
        );
        assert_eq!(res.header("cache-control"), Some("no-store"), "{what}");
    }
    let health = app.get("/health").await;
    assert_eq!(health.header("x-content-type-options"), Some("nosniff"));
}

/// A failed login from `forwarded_for`, as a proxy at the app's client
/// address would forward it.
async fn login_via_proxy(app: &TestApp, forwarded_for: &str) -> StatusCode {
    let req = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/api/v1/auth/login")
        .header("content-type", "application/json")
        .header("x-forwarded-for", format!("203.0.113.66, {forwarded_for}"))
        .body(axum::body::Body::from(
            json!({"email": "nobody@example.com", "password": "whatever password"}).to_string(),
        ))
        .expect("request");
    app.request(req).await.status
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    // The proxy is the app's own client address (127.0.0.1).
    let behind_proxy = TestApp::spawn_with(&[
        ("AUTH_RATE_LIMIT_PER_MINUTE", "2"),
        ("TRUSTED_PROXIES", "127.0.0.0/8"),
    ])
    .await;
    for _ in 0..2 {
        assert_eq!(
            login_via_proxy(&behind_proxy, "198.51.100.1").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login_via_proxy(&behind_proxy, "198.51.100.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another user behind the same proxy has a budget of their own; an IPv6
    // client is counted by its /64.
    assert_eq!(
        login_via_proxy(&behind_proxy, "198.51.100.2").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login_via_proxy(&behind_proxy, "2001:db8:0:1::1").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login_via_proxy(&behind_proxy, "2001:db8:0:1::2").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login_via_proxy(&behind_proxy, "2001:db8:0:1:ffff::3").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The audit trail names the client, not the proxy (nor the forged hop).
    behind_proxy.settle_background().await;
    let ips: Vec<String> = behind_proxy
        .db
        .collection::<mongodb::bson::Document>("audit_events")
        .distinct("ip", mongodb::bson::doc! {})
        .await
        .expect("distinct")
        .into_iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    assert!(ips.contains(&"198.51.100.1".to_owned()), "{ips:?}");
    assert!(
        !ips.iter()
            .any(|ip| ip == "203.0.113.66" || ip == "127.0.0.1"),
        "{ips:?}"
    );

    // Without TRUSTED_PROXIES the header is the client's word: ignored.
    let direct = TestApp::spawn_with(&[("AUTH_RATE_LIMIT_PER_MINUTE", "2")]).await;
    for who in ["198.51.100.1", "198.51.100.2"] {
        assert_eq!(
            login_via_proxy(&direct, who).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login_via_proxy(&direct, "198.51.100.3").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}
