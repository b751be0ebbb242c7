//! Staff accounts through the API: create/read/update/delete, filters,
//! guards, password reset, avatars.

use axum::{
    body::Body,
    http::{header, Method, Request, StatusCode},
};
use healthcrm::domain::user::Role;
use serde_json::json;

use crate::helpers::{Session, TestApp, TEST_PASSWORD};

fn new_user(email: &str) -> serde_json::Value {
    json!({"name": "Dana Staff", "email": email, "password": "a long enough password", "role": "staff"})
}

#[tokio::test]
async fn admins_create_read_update_and_delete_users() {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let res = app
        .post_as(&admin, "/api/v1/users", &new_user("Dana@Example.com"))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
    let user = res.json();
    assert_eq!(user["email"], "dana@example.com", "stored lowercased");
    assert_eq!(user["role"], "staff");
    assert_eq!(user["active"], true);
    assert_eq!(user["created_by"], admin.id.to_string());
    assert!(user.get("password").is_none() && user.get("password_hash").is_none());
    let id = user["id"].as_str().expect("id").to_owned();

    // The new account can log in.
    assert_eq!(
        app.login("dana@example.com", "a long enough password")
            .await
            .status,
        StatusCode::OK
    );

    let got = app.get_as(&admin, &format!("/api/v1/users/{id}")).await;
    assert_eq!(got.json()["name"], "Dana Staff");
    let res = app
        .patch_as(
            &admin,
            &format!("/api/v1/users/{id}"),
            &json!({"name": "Dana S."}),
        )
        .await;
    assert_eq!(res.json()["name"], "Dana S.");
    assert_eq!(res.json()["updated_by"], admin.id.to_string());

    let res = app.delete_as(&admin, &format!("/api/v1/users/{id}")).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    app.get_as(&admin, &format!("/api/v1/users/{id}"))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn bad_user_input_is_refused_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let before = app.get_as(&admin, "/api/v1/users").await.json()["total"].clone();
    let cases = [
        json!({"name": "X", "email": "not-an-email", "password": "a long enough password", "role": "staff"}),
        json!({"name": "X", "email": "x@example.com", "password": "short", "role": "staff"}),
        json!({"name": "X", "email": "x@example.com", "password": "x@example.com", "role": "staff"}),
        json!({"name": "X", "email": "x@example.com", "password": "a long enough password", "role": "root"}),
        json!({"name": "", "email": "x@example.com", "password": "a long enough password", "role": "staff"}),
        json!({"name": "X", "email": "x@example.com", "password": "a long enough password", "role": "staff", "active": false}),
        json!({"name": "X", "email": "x@example.com", "password": "a long enough password"}),
        json!({"name": "X", "email": "x@example.com", "password": "a long enough password", "role": "staff",
               "permissions": [{"method": "GET", "path": "/api/v1/nowhere", "allow": true}]}),
        json!({"name": "X", "email": {"$ne": null}, "password": "a long enough password", "role": "staff"}),
    ];
    for body in cases {
        app.post_as(&admin, "/api/v1/users", &body)
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    assert_eq!(
        app.get_as(&admin, "/api/v1/users").await.json()["total"],
        before
    );

    app.post_as(&admin, "/api/v1/users", &new_user("dup@example.com"))
        .await;
    let res = app
        .post_as(&admin, "/api/v1/users", &new_user("DUP@example.com"))
        .await;
    let error = res.assert_error(StatusCode::CONFLICT, "conflict");
    assert!(error["details"]["email"].is_array(), "{error}");

    app.get_as(&admin, "/api/v1/users/not-an-id")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_id");
    app.get_as(&admin, "/api/v1/users/000000000000000000000000")
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    app.get_as(&admin, "/api/v1/users?per_page=1000")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    app.get_as(&admin, "/api/v1/users?role=root")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    app.get_as(&admin, "/api/v1/users?active[$ne]=true")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "bad_request");
}

#[tokio::test]
async fn users_are_listed_with_filters_and_pages() {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    for i in 0..5 {
        let res = app
            .post_as(
                &admin,
                "/api/v1/users",
                &json!({
            "name": format!("Nurse {i}"), "email": format!("nurse{i}@clinic.test"),
            "password": "a long enough password", "role": "staff"}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED);
    }
    let page = app
        .get_as(&admin, "/api/v1/users?role=staff&per_page=2&page=2")
        .await
        .json();
    assert_eq!(page["total"], 5);
    assert_eq!(page["page"], 2);
    assert_eq!(page["per_page"], 2);
    assert_eq!(page["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        page["data"][0]["name"], "Nurse 2",
        "stable order by creation"
    );
    let found = app.get_as(&admin, "/api/v1/users?q=NURSE3").await.json();
    assert_eq!(found["total"], 1);
    assert_eq!(found["data"][0]["name"], "Nurse 3");
    let by_mail = app
        .get_as(&admin, "/api/v1/users?q=nurse4@clinic")
        .await
        .json();
    assert_eq!(by_mail["data"][0]["name"], "Nurse 4", "{by_mail}");
    let found = app.get_as(&admin, "/api/v1/users?q=.*").await.json();
    assert_eq!(found["total"], 0, "regex metacharacters match literally");
    let admins = app
        .get_as(&admin, "/api/v1/users?role=admin&active=true")
        .await
        .json();
    assert_eq!(admins["total"], 1);
    assert_eq!(admins["data"][0]["id"], admin.id.to_string());
    let nurse0 = app.get_as(&admin, "/api/v1/users?q=nurse%200").await.json()["data"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let res = app
        .post_as(
            &admin,
            &format!("/api/v1/users/{nurse0}/deactivate"),
            &json!({}),
        )
        .await;
    assert!(res.status.is_success(), "{:?}", res.json());
    let inactive = app
        .get_as(&admin, "/api/v1/users?active=false")
        .await
        .json();
    assert_eq!(inactive["total"], 1);
    assert_eq!(inactive["data"][0]["id"], nurse0.as_str());
    let active_staff = app
        .get_as(&admin, "/api/v1/users?role=staff&active=true")
        .await
        .json();
    assert_eq!(active_staff["total"], 4);
    assert_eq!(active_staff["data"].as_array().map(Vec::len), Some(4));
    assert!(active_staff["data"]
        .as_array()
        .expect("rows")
        .iter()
        .all(|u| u["role"] == "staff" && u["active"] == true && u["id"] != nurse0.as_str()));
}

#[tokio::test]
async fn nobody_removes_or_demotes_themselves_and_the_last_admin_stays() {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let me = format!("/api/v1/users/{}", admin.id);
    app.post_as(&admin, &format!("{me}/deactivate"), &json!({}))
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
    app.delete_as(&admin, &me)
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
    app.patch_as(&admin, &me, &json!({"role": "staff"}))
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");

    // A staff member granted user management still cannot remove the last admin.
    let staff = app.login_as(Role::Staff).await;
    let grant = json!({"permissions": [
        {"method": "PATCH", "path": "/api/v1/users/{id}", "allow": true},
        {"method": "DELETE", "path": "/api/v1/users/{id}", "allow": true},
        {"method": "POST", "path": "/api/v1/users/{id}/deactivate", "allow": true}]});
    assert_eq!(
        app.patch_as(&admin, &format!("/api/v1/users/{}", staff.id), &grant)
            .await
            .status,
        StatusCode::OK
    );
    // (Nor any admin: an admin's account is for admins to change.)
    app.patch_as(&staff, &me, &json!({"role": "staff"}))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    app.post_as(&staff, &format!("{me}/deactivate"), &json!({}))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    app.delete_as(&staff, &me)
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(
        app.get_as(&admin, "/api/v1/users").await.status,
        StatusCode::OK,
        "admin intact"
    );

    // With a second admin, demoting one is fine, and ends their sessions.
    let second = app.login_as(Role::Admin).await;
    let res = app
        .patch_as(
            &admin,
            &format!("/api/v1/users/{}", second.id),
            &json!({"role": "staff"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json()["role"], "staff");
    app.get_as(&second, "/api/v1/auth/me")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn admin_password_reset_ends_the_users_sessions() {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let staff = app.login_as(Role::Staff).await;
    // Not one's own: that needs the current password (/auth/password).
    app.post_as(
        &admin,
        &format!("/api/v1/users/{}/password", admin.id),
        &json!({"new_password": "reset by the admin ok"}),
    )
    .await
    .assert_error(StatusCode::CONFLICT, "conflict");
    assert_eq!(
        app.get_as(&admin, "/api/v1/auth/me").await.status,
        StatusCode::OK,
        "the admin's session still stands"
    );
    let path = format!("/api/v1/users/{}/password", staff.id);
    app.post_as(&admin, &path, &json!({"new_password": "tiny"}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let res = app
        .post_as(
            &admin,
            &path,
            &json!({"new_password": "reset by the admin ok"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    app.get_as(&staff, "/api/v1/auth/me")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    app.login(&staff.email, TEST_PASSWORD)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(
        app.login(&staff.email, "reset by the admin ok")
            .await
            .status,
        StatusCode::OK
    );
}

pub const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89";

pub async fn upload(
    app: &TestApp,
    s: &Session,
    path: &str,
    filename: &str,
    bytes: &[u8],
) -> crate::helpers::TestResponse {
    let boundary = "XBOUNDARYX";
    let mut body = Vec::new();
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: image/png\r\n\r\n").as_bytes());
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let req = Request::builder()
        .method(Method::PUT)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {}", s.token))
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .expect("request");
    app.request(req).await
}

#[tokio::test]
async fn avatars_are_checked_by_content_and_size() {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let staff = app.login_as(Role::Staff).await;
    let path = format!("/api/v1/users/{}/avatar", staff.id);
    app.get_as(&admin, &path)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");

    let res = upload(&app, &admin, &path, "me.png", PNG).await;
    assert_eq!(
        res.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&res.body)
    );
    assert_eq!(res.json()["has_avatar"], true);
    let got = app.get_as(&admin, &path).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.header("content-type"), Some("image/png"));
    assert_eq!(&got.body[..], PNG);

    // A JPEG replaces it.
    let jpeg = [&[0xFF, 0xD8, 0xFF, 0xE0][..], &[0u8; 64][..]].concat();
    assert_eq!(
        upload(&app, &admin, &path, "me.jpg", &jpeg).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get_as(&admin, &path).await.header("content-type"),
        Some("image/jpeg")
    );

    // Named .png, but text / GIF inside: 415.
    upload(
        &app,
        &admin,
        &path,
        "evil.png",
        b"<script>alert(1)</script>",
    )
    .await
    .assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    upload(&app, &admin, &path, "anim.png", b"GIF89a\x01\x00\x01\x00")
        .await
        .assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    // Over 2 MiB: 413.
    let big = [PNG, &vec![0u8; 2 * 1024 * 1024][..]].concat();
    upload(&app, &admin, &path, "big.png", &big)
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let huge = [PNG, &vec![0u8; 5 * 1024 * 1024][..]].concat();
    upload(&app, &admin, &path, "huge.png", &huge)
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert_eq!(
        app.get_as(&admin, &path).await.header("content-type"),
        Some("image/jpeg"),
        "unchanged"
    );

    // Staff manage their own avatar, not others'.
    assert_eq!(
        upload(&app, &staff, "/api/v1/auth/me/avatar", "me.png", PNG)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        &app.get_as(&staff, "/api/v1/auth/me/avatar").await.body[..],
        PNG
    );
    upload(
        &app,
        &staff,
        &format!("/api/v1/users/{}/avatar", admin.id),
        "x.png",
        PNG,
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");
}
