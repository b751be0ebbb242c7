//! Names beside ids: every user or hospital id in a response has its
//! display name beside it, from the in-memory name cache.

use std::time::Duration;

use axum::http::StatusCode;
use healthcrm::domain::user::Role;
use mongodb::bson::doc;
use serde_json::json;

use crate::{helpers::TestApp, hospitals::create_hospital};

#[tokio::test]
async fn responses_name_the_users_and_hospitals_they_refer_to() {
    let app = TestApp::spawn_with(&[("NAME_CACHE_TTL_MS", "400")]).await;
    let admin = app.login_as(Role::Admin).await;
    let staff = app.login_as(Role::Staff).await;
    let staff_name = app.get_as(&staff, "/api/v1/auth/me").await.json()["user"]["name"]
        .as_str()
        .expect("name")
        .to_owned();
    let admin_name = app.get_as(&admin, "/api/v1/auth/me").await.json()["user"]["name"]
        .as_str()
        .expect("name")
        .to_owned();
    let hospital = create_hospital(&app, &admin, "Named Hospital").await;
    let res = app
        .post_as(
            &staff,
            "/api/v1/patients",
            &json!({"name": "Named", "country": "DE", "assigned_to": staff.id.to_string(),
                    "hospital_id": hospital}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
    let p = res.json();
    let id = p["id"].as_str().expect("id").to_owned();
    assert_eq!(p["assigned_to_name"], staff_name.as_str());
    assert_eq!(p["hospital_name"], "Named Hospital");
    assert_eq!(p["created_by_name"], staff_name.as_str());
    assert_eq!(p["updated_by_name"], staff_name.as_str());
    assert_eq!(p["hospital_history"][0]["hospital_name"], "Named Hospital");
    assert_eq!(p["hospital_history"][0]["by_name"], staff_name.as_str());

    // A treatment, an appointment, the history, the access log, the audit,
    // the ledger, the follow-ups and the quote all name theirs.
    let body = json!({"treatment_type": "check-up", "disease": "cataract", "hospital_id": hospital,
        "cost": {"amount_minor": 1000, "currency": "EUR"}, "earnings": {"amount_minor": 100, "currency": "EUR"},
        "status": "completed"});
    let t = app
        .post_as(&staff, &format!("/api/v1/patients/{id}/treatments"), &body)
        .await
        .json();
    assert_eq!(t["hospital_name"], "Named Hospital");
    assert_eq!(t["created_by_name"], staff_name.as_str());
    let a = app
        .post_as(
            &staff,
            &format!("/api/v1/patients/{id}/appointments"),
            &json!({"hospital_id": hospital, "discussion_notes": "call", "status": "completed",
                    "next_follow_up": chrono::Utc::now().date_naive().to_string()}),
        )
        .await
        .json();
    assert_eq!(a["hospital_name"], "Named Hospital");
    assert_eq!(a["updated_by_name"], staff_name.as_str());
    let history = app
        .get_as(&staff, &format!("/api/v1/patients/{id}/history"))
        .await
        .json();
    assert_eq!(history["data"][0]["actor_name"], staff_name.as_str());
    let follow = app.get_as(&staff, "/api/v1/follow-ups").await.json();
    assert_eq!(
        follow["data"][0]["assigned_to_name"],
        staff_name.as_str(),
        "{follow}"
    );
    let ledger = app.get_as(&admin, "/api/v1/earnings").await.json();
    assert_eq!(
        ledger["data"][0]["hospital_name"], "Named Hospital",
        "{ledger}"
    );
    app.settle_background().await;
    let log = app
        .get_as(&admin, &format!("/api/v1/patients/{id}/access-log"))
        .await
        .json();
    let named = log["data"]
        .as_array()
        .expect("rows")
        .iter()
        .any(|e| e["actor_name"] == staff_name.as_str());
    assert!(named, "{log}");
    let audit = app.get_as(&admin, "/api/v1/audit?per_page=5").await.json();
    assert!(audit["data"][0]["actor_name"].is_string(), "{audit}");
    let q = app
        .post_as(
            &staff,
            &format!("/api/v1/patients/{id}/quotes"),
            &json!({"hospital_id": hospital, "treatment_type": "lens"}),
        )
        .await
        .json();
    assert_eq!(q["hospital_name"], "Named Hospital");
    let users = app
        .get_as(&admin, &format!("/api/v1/users/{}", staff.id))
        .await
        .json();
    assert!(users.get("created_by_name").is_some(), "{users}");

    // A rename through the API shows at once.
    let res = app
        .patch_as(
            &admin,
            &format!("/api/v1/hospitals/{hospital}"),
            &json!({"name": "Renamed Hospital"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    let p = app
        .get_as(&staff, &format!("/api/v1/patients/{id}"))
        .await
        .json();
    assert_eq!(p["hospital_name"], "Renamed Hospital");

    // One made elsewhere (another instance) shows within the cache's TTL.
    app.db
        .collection::<mongodb::bson::Document>("users")
        .update_one(
            doc! { "_id": staff.id.to_string() },
            doc! { "$set": { "name": "Renamed Elsewhere" } },
        )
        .await
        .expect("rename");
    let p = app
        .get_as(&admin, &format!("/api/v1/patients/{id}"))
        .await
        .json();
    assert_eq!(
        p["assigned_to_name"],
        staff_name.as_str(),
        "still the cached name"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let p = app
        .get_as(&admin, &format!("/api/v1/patients/{id}"))
        .await
        .json();
    assert_eq!(p["assigned_to_name"], "Renamed Elsewhere");
    assert_ne!(admin_name, "Renamed Elsewhere");
}
