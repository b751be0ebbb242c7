//! Quotes through the API: asking, answering, comparing, accepting.

use axum::http::StatusCode;
use chrono::{Duration, Utc};
use futures::TryStreamExt;
use mongodb::bson::doc;
use serde_json::{json, Value};

use crate::{
    helpers::{Session, TestApp, TestResponse},
    treatments::{world, World},
};

fn in_days(n: i64) -> String {
    (Utc::now().date_naive() + Duration::days(n))
        .format("%Y-%m-%d")
        .to_string()
}

/// A hospital with the given commission terms (none when `bps` is `None`).
pub async fn hospital(app: &TestApp, admin: &Session, name: &str, bps: Option<i32>) -> String {
    let mut body = json!({"name": name, "location": "Antalya", "country": "TR"});
    if let Some(bps) = bps {
        body["commission_bps"] = json!(bps);
    }
    let res = app.post_as(admin, "/api/v1/hospitals", &body).await;
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
    res.json()["id"].as_str().expect("id").to_owned()
}

pub async fn ask(w: &World, hospital: &str, treatment: &str, disease: Option<&str>) -> String {
    let mut body = json!({"hospital_id": hospital, "treatment_type": treatment});
    if let Some(d) = disease {
        body["disease"] = json!(d);
    }
    let res = w
        .app
        .post_as(
            &w.staff,
            &format!("/api/v1/patients/{}/quotes", w.patient),
            &body,
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
    assert_eq!(res.json()["status"], "requested");
    res.json()["id"].as_str().expect("id").to_owned()
}

async fn answer_as(w: &World, quote: &str, body: Value) -> TestResponse {
    let path = format!("/api/v1/quotes/{quote}");
    let version = w.app.get_as(&w.staff, &path).await.json()["version"].clone();
    let mut body = body;
    body["version"] = version;
    w.app.patch_as(&w.staff, &path, &body).await
}

pub async fn price(w: &World, quote: &str, amount_minor: i64, currency: &str) {
    let res = answer_as(
        w,
        quote,
        json!({"status": "received", "amount": {"amount_minor": amount_minor, "currency": currency},
               "valid_until": in_days(30), "includes": "surgery and 5 nights"}),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    assert_eq!(res.json()["status"], "received");
}

async fn accept(w: &World, quote: &str, body: Option<Value>) -> TestResponse {
    let path = format!("/api/v1/quotes/{quote}/accept");
    match body {
        Some(b) => w.app.post_as(&w.staff, &path, &b).await,
        None => {
            w.app
                .send_as(Some(&w.staff.token), axum::http::Method::POST, &path, None)
                .await
        }
    }
}

async fn quote(w: &World, id: &str) -> Value {
    let res = w
        .app
        .get_as(&w.staff, &format!("/api/v1/quotes/{id}"))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    res.json()
}

#[tokio::test]
async fn quotes_are_compared_and_one_is_booked_with_the_commission() {
    let w = world().await; // its hospital takes 12.5 % (1250 bps)
    let other = hospital(&w.app, &w.admin, "Second Opinion", Some(1000)).await;
    let plain = hospital(&w.app, &w.admin, "No Terms Yet", None).await;
    let got = w
        .app
        .get_as(&w.admin, &format!("/api/v1/hospitals/{plain}"))
        .await
        .json();
    assert_eq!(
        got["commission_bps"],
        Value::Null,
        "terms are optional: {got}"
    );

    let knee_a = ask(&w, &w.hospital, "Knee replacement", Some("osteoarthritis")).await;
    let knee_b = ask(&w, &other, "knee REPLACEMENT", None).await;
    let knee_c = ask(&w, &plain, "knee replacement", None).await;
    let teeth = ask(&w, &w.hospital, "dental implants", None).await;

    price(&w, &knee_a, 1_200_000, "EUR").await;
    price(&w, &knee_b, 900_000, "USD").await;
    price(&w, &knee_c, 1_000_000, "EUR").await;

    // Comparison order: priced offers by currency then amount, then the
    // unanswered.
    let list = w
        .app
        .get_as(&w.staff, &format!("/api/v1/patients/{}/quotes", w.patient))
        .await
        .json();
    let order: Vec<&str> = list["data"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|q| q["id"].as_str().expect("id"))
        .collect();
    assert_eq!(order, [knee_c.as_str(), &knee_a, &knee_b, &teeth], "{list}");
    assert_eq!(list["total"], 4);
    assert_eq!(list["data"][0]["amount"]["amount_minor"], 1_000_000);
    assert_eq!(list["data"][0]["expired"], false);

    // Not answered yet: nothing to book.
    accept(&w, &teeth, None)
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
    // No commission terms and no disease: 422 names both.
    let err = accept(&w, &knee_c, None)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let details = &err["details"];
    assert!(
        details["earnings"][0]
            .as_str()
            .expect("earnings")
            .contains("No Terms Yet"),
        "{err}"
    );
    assert!(details["disease"].is_array(), "{err}");

    let res = accept(&w, &knee_a, None).await;
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
    let booked = res.json();
    let t = &booked["treatment"];
    assert_eq!(t["status"], "planned");
    assert_eq!(t["treatment_type"], "Knee replacement");
    assert_eq!(t["disease"], "osteoarthritis");
    assert_eq!(t["hospital_id"], w.hospital.as_str());
    assert_eq!(
        t["cost"],
        json!({"amount_minor": 1_200_000, "currency": "EUR"})
    );
    assert_eq!(
        t["earnings"],
        json!({"amount_minor": 150_000, "currency": "EUR"})
    );
    assert_eq!(t["quote_id"], knee_a.as_str());
    assert_eq!(booked["quote"]["status"], "accepted");
    assert_eq!(booked["quote"]["treatment_id"], t["id"]);

    // The other open quotes for the same treatment are declined; the other
    // treatment's quote is not.
    assert_eq!(quote(&w, &knee_b).await["status"], "declined");
    assert_eq!(quote(&w, &knee_c).await["status"], "declined");
    assert_eq!(quote(&w, &teeth).await["status"], "requested");

    // The patient is assigned to the hospital, with assignment history.
    let patient = w
        .app
        .get_as(&w.staff, &format!("/api/v1/patients/{}", w.patient))
        .await
        .json();
    assert_eq!(patient["hospital_id"], w.hospital.as_str());
    assert_eq!(
        patient["hospital_history"][0]["hospital_id"],
        w.hospital.as_str()
    );
    let history = w
        .app
        .get_as(&w.staff, &format!("/api/v1/patients/{}/history", w.patient))
        .await
        .json();
    let actions: Vec<(String, String)> = history["data"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|e| {
            (
                e["entity"].as_str().unwrap_or_default().to_owned(),
                e["action"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("quote", "accept"),
        ("quote", "decline"),
        ("treatment", "create"),
        ("patient", "assign_hospital"),
    ] {
        assert!(
            actions
                .iter()
                .any(|(e, a)| (e.as_str(), a.as_str()) == expected),
            "{expected:?} in {actions:?}"
        );
    }

    // Closed quotes stay closed.
    accept(&w, &knee_a, None)
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
    accept(&w, &knee_b, None)
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
    answer_as(&w, &knee_a, json!({"status": "declined"}))
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
    let treatments = w
        .app
        .get_as(
            &w.staff,
            &format!("/api/v1/patients/{}/treatments", w.patient),
        )
        .await
        .json();
    assert_eq!(treatments["total"], 1);
}

/// Each case: (currency, cost in minor units, commission bps, expected
/// earnings in minor units).
const ROUNDING: &[(&str, i64, i32, i64)] = &[
    // JPY has no decimals: 12,345 yen at 10 % is 1,234.5 yen -> 1,234 (even).
    ("JPY", 12_345, 1000, 1_234),
    // ... and 12,355 yen at 10 % is 1,235.5 -> 1,236 (even).
    ("JPY", 12_355, 1000, 1_236),
    // KWD has 3: 1,234.565 KWD at 10 % is 123.4565 -> 123.456 (even).
    ("KWD", 1_234_565, 1000, 123_456),
    ("KWD", 1_000_001, 1250, 125_000),
    // A half cent: 1.01 USD at 50 % is 0.505 -> 0.50; 1.03 -> 0.52.
    ("USD", 101, 5000, 50),
    ("USD", 103, 5000, 52),
    // Below half rounds down, above rounds up.
    ("EUR", 1_999, 1250, 250),
    ("EUR", 2_005, 1250, 251),
];

#[tokio::test]
async fn commission_rounds_half_to_even_in_the_currencys_minor_unit() {
    let w = world().await;
    for (i, (currency, cost, bps, expected)) in ROUNDING.iter().enumerate() {
        let h = hospital(&w.app, &w.admin, &format!("Rounding {i}"), Some(*bps)).await;
        let q = ask(&w, &h, &format!("case {i}"), Some("rounding")).await;
        price(&w, &q, *cost, currency).await;
        let res = accept(&w, &q, None).await;
        assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
        assert_eq!(
            res.json()["treatment"]["earnings"],
            json!({"amount_minor": expected, "currency": currency}),
            "{currency} {cost} at {bps} bps"
        );
    }
}

#[tokio::test]
async fn earnings_in_the_request_replace_missing_terms() {
    let w = world().await;
    let plain = hospital(&w.app, &w.admin, "Terms Pending", None).await;
    let q = ask(&w, &plain, "IVF", None).await;
    price(&w, &q, 500_000, "GBP").await;
    let bad =
        json!({"earnings": {"amount_minor": 600_000, "currency": "GBP"}, "disease": "infertility"});
    let err = accept(&w, &q, Some(bad))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(err["details"]["earnings.amount_minor"].is_array(), "{err}");
    let body =
        json!({"earnings": {"amount_minor": 40_000, "currency": "GBP"}, "disease": "infertility"});
    let res = accept(&w, &q, Some(body)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
    assert_eq!(res.json()["treatment"]["earnings"]["amount_minor"], 40_000);
    assert_eq!(res.json()["treatment"]["disease"], "infertility");
}

#[tokio::test]
async fn answers_are_checked_and_expired_quotes_are_marked() {
    let w = world().await;
    let q = ask(&w, &w.hospital, "rhinoplasty", Some("deviated septum")).await;
    let err = answer_as(&w, &q, json!({"status": "received"}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(err["details"]["amount"].is_array(), "{err}");
    assert!(err["details"]["valid_until"].is_array(), "{err}");
    let past = json!({"status": "received", "amount": {"amount_minor": 1, "currency": "EUR"},
                      "valid_until": in_days(-1)});
    answer_as(&w, &q, past)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    answer_as(&w, &q, json!({"status": "accepted"}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let stale = json!({"version": 99, "status": "declined"});
    w.app
        .patch_as(&w.staff, &format!("/api/v1/quotes/{q}"), &stale)
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
    let unknown = json!({"hospital_id": "0123456789abcdef01234567", "treatment_type": "x"});
    w.app
        .post_as(
            &w.staff,
            &format!("/api/v1/patients/{}/quotes", w.patient),
            &unknown,
        )
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

    // A price that held until yesterday has expired: marked, and closed.
    price(&w, &q, 300_000, "EUR").await;
    w.app
        .db
        .collection::<mongodb::bson::Document>("quotes")
        .update_one(
            doc! { "_id": &q },
            doc! { "$set": { "valid_until": in_days(-1) } },
        )
        .await
        .expect("age the quote");
    let got = quote(&w, &q).await;
    assert_eq!(got["status"], "expired", "{got}");
    assert_eq!(got["expired"], true);
    let list = w
        .app
        .get_as(&w.staff, &format!("/api/v1/patients/{}/quotes", w.patient))
        .await
        .json();
    assert_eq!(list["data"][0]["status"], "expired", "{list}");
    accept(&w, &q, None)
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
    price_fails(&w, &q).await;

    // A deleted patient's quotes are gone with it.
    w.app
        .delete_as(&w.admin, &format!("/api/v1/patients/{}", w.patient))
        .await;
    w.app
        .get_as(&w.staff, &format!("/api/v1/quotes/{q}"))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

async fn price_fails(w: &World, q: &str) {
    let body = json!({"status": "received", "amount": {"amount_minor": 1, "currency": "EUR"},
                      "valid_until": in_days(3)});
    answer_as(w, q, body)
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
}

#[tokio::test]
async fn two_concurrent_accepts_for_one_treatment_book_it_once() {
    let w = world().await;
    let other = hospital(&w.app, &w.admin, "Rival", Some(1000)).await;
    for round in 0..4 {
        let kind = format!("hip replacement {round}");
        let a = ask(&w, &w.hospital, &kind, Some("dysplasia")).await;
        let b = ask(&w, &other, &kind, Some("dysplasia")).await;
        price(&w, &a, 800_000, "EUR").await;
        price(&w, &b, 700_000, "EUR").await;
        let (ra, rb) = tokio::join!(accept(&w, &a, None), accept(&w, &b, None));
        let statuses = [ra.status, rb.status];
        assert!(
            statuses.contains(&StatusCode::CREATED) && statuses.contains(&StatusCode::CONFLICT),
            "round {round}: one wins, one is refused: {statuses:?} {:?} {:?}",
            ra.json(),
            rb.json()
        );
        let accepted = [quote(&w, &a).await, quote(&w, &b).await]
            .iter()
            .filter(|q| q["status"] == "accepted")
            .count();
        assert_eq!(accepted, 1, "round {round}");
    }
    let treatments = w
        .app
        .get_as(
            &w.staff,
            &format!("/api/v1/patients/{}/treatments", w.patient),
        )
        .await
        .json();
    assert_eq!(treatments["total"], 4, "one treatment per round");
}

#[tokio::test]
async fn a_booking_frees_its_treatment_type_once_the_treatment_is_over() {
    let w = world().await;
    let first = ask(&w, &w.hospital, "cataract surgery", Some("cataract")).await;
    price(&w, &first, 200_000, "EUR").await;
    let booked = accept(&w, &first, None).await.json();
    let later = ask(&w, &w.hospital, "Cataract Surgery", Some("cataract")).await;
    price(&w, &later, 210_000, "EUR").await;
    accept(&w, &later, None)
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
    // One booking per patient and treatment type, keyed by both.
    let bookings: Vec<mongodb::bson::Document> = w
        .app
        .db
        .collection::<mongodb::bson::Document>("quote_bookings")
        .find(doc! {})
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("collect");
    assert_eq!(bookings.len(), 1, "{bookings:?}");
    assert_eq!(
        bookings[0].get_str("_id").ok(),
        Some(format!("{}:cataract surgery", w.patient).as_str())
    );
    assert_eq!(bookings[0].get_str("quote_id").ok(), Some(first.as_str()));
    let path = format!(
        "/api/v1/treatments/{}",
        booked["treatment"]["id"].as_str().expect("id")
    );
    let res = w
        .app
        .patch_as(
            &w.staff,
            &path,
            &json!({"version": 1, "status": "completed"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    let res = accept(&w, &later, None).await;
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
}

#[tokio::test]
async fn accepting_replays_with_the_same_key() {
    let w = world().await;
    let q = ask(&w, &w.hospital, "bariatric surgery", Some("obesity")).await;
    price(&w, &q, 700_000, "EUR").await;
    let path = format!("/api/v1/quotes/{q}/accept");
    let first = w
        .app
        .post_keyed(&w.staff, &path, "accept-1", &json!({}))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.json());
    let again = w
        .app
        .post_keyed(&w.staff, &path, "accept-1", &json!({}))
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json(), first.json());
}

#[tokio::test]
async fn the_matrix_decides_who_works_on_quotes() {
    let w = world().await;
    let q = ask(&w, &w.hospital, "hair transplant", Some("alopecia")).await;
    price(&w, &q, 250_000, "EUR").await;
    // Staff may do all of it by default; an admin can take a route away.
    let rule = json!({"rules": [{"method": "POST", "path": "/api/v1/quotes/{id}/accept", "allow": false}]});
    let res = w
        .app
        .put_as(&w.admin, "/api/v1/permissions/staff", &rule)
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    accept(&w, &q, None)
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    let res = w
        .app
        .post_as(&w.admin, &format!("/api/v1/quotes/{q}/accept"), &json!({}))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
}

#[tokio::test]
async fn quotes_keep_their_hospital_and_need_an_active_one() {
    let w = world().await;
    let q = ask(&w, &w.hospital, "liver transplant", Some("cirrhosis")).await;
    // A hospital a quote names cannot be deleted.
    w.app
        .delete_as(&w.admin, &format!("/api/v1/hospitals/{}", w.hospital))
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
    price(&w, &q, 9_000_000, "EUR").await;
    let res = w
        .app
        .patch_as(
            &w.admin,
            &format!("/api/v1/hospitals/{}", w.hospital),
            &json!({"active": false}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    let body = json!({"hospital_id": w.hospital, "treatment_type": "kidney transplant"});
    let err = w
        .app
        .post_as(
            &w.staff,
            &format!("/api/v1/patients/{}/quotes", w.patient),
            &body,
        )
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(err["details"]["hospital_id"].is_array(), "{err}");
    // An answered quote of a hospital since deactivated cannot be booked.
    accept(&w, &q, None)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(quote(&w, &q).await["status"], "received", "nothing written");
}

#[tokio::test]
async fn cancelling_the_booked_treatment_frees_its_type_too() {
    let w = world().await;
    let first = ask(&w, &w.hospital, "spine surgery", Some("herniated disc")).await;
    price(&w, &first, 2_000_000, "EUR").await;
    let booked = accept(&w, &first, None).await.json();
    let later = ask(&w, &w.hospital, "spine surgery", Some("herniated disc")).await;
    price(&w, &later, 1_900_000, "EUR").await;
    accept(&w, &later, None)
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
    let path = format!(
        "/api/v1/treatments/{}",
        booked["treatment"]["id"].as_str().expect("id")
    );
    let res = w
        .app
        .patch_as(
            &w.staff,
            &path,
            &json!({"version": 1, "status": "cancelled"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    let res = accept(&w, &later, None).await;
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
}
