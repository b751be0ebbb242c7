//! The travel record through the API: saved whole with `version`, in the
//! patient's history with the passport masked, passport numbers shown per
//! the matrix, and patients found by passport number.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::treatments::{world, World};

fn record() -> Value {
    json!({
        "passport": {"number": "u 1234-5678", "country": "GB", "expires_on": "2031-05-01"},
        "visa": {"status": "invitation_requested", "notes": "hospital letter asked for"},
        "arrival": {"at": "2026-12-10T09:30:00Z", "flight": "TK1980"},
        "departure": {"at": "2026-12-24T18:00:00Z", "flight": "TK1979"},
        "accommodation": "Hotel beside the hospital",
        "companions": [{"name": "Jane Doe", "relation": "spouse"}],
        "pickup_arranged": false
    })
}

fn path(w: &World) -> String {
    format!("/api/v1/patients/{}/travel", w.patient)
}

#[tokio::test]
async fn the_travel_record_is_saved_whole_with_its_version_and_history() {
    let w = world().await;
    w.app
        .get_as(&w.staff, &path(&w))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    let res = w.app.put_as(&w.staff, &path(&w), &record()).await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    let saved = res.json();
    assert_eq!(saved["version"], 1);
    assert_eq!(saved["passport"]["number"], "U12345678", "normalised");
    assert_eq!(saved["visa"]["status"], "invitation_requested");
    assert_eq!(saved["companions"][0]["relation"], "spouse");
    assert!(saved["created_by_name"].is_string());
    let got = w.app.get_as(&w.staff, &path(&w)).await.json();
    assert_eq!(got, saved);

    // Later saves need the current version.
    let mut next = record();
    next["visa"] = json!({"status": "granted"});
    next["pickup_arranged"] = json!(true);
    w.app
        .put_as(&w.staff, &path(&w), &next)
        .await
        .assert_error(StatusCode::PRECONDITION_REQUIRED, "precondition_required");
    next["version"] = json!(7);
    w.app
        .put_as(&w.staff, &path(&w), &next)
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
    next["version"] = json!(1);
    let res = w.app.put_as(&w.staff, &path(&w), &next).await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    assert_eq!(res.json()["version"], 2);
    assert_eq!(res.json()["visa"]["status"], "granted");

    // Every change is in the patient's history, the passport masked.
    let history = w
        .app
        .get_as(&w.staff, &format!("/api/v1/patients/{}/history", w.patient))
        .await
        .json();
    let travel: Vec<&Value> = history["data"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|e| e["entity"] == "travel")
        .collect();
    assert_eq!(travel.len(), 2, "{history}");
    assert_eq!(travel[0]["action"], "create");
    assert_eq!(travel[1]["changes"]["visa"]["after"]["status"], "granted");
    let text = history.to_string();
    assert!(
        !text.contains("U12345678"),
        "no passport number in history: {text}"
    );
    assert!(text.contains("*****5678"));

    // Bad records are refused and change nothing.
    for (field, bad) in [
        ("visa", json!({"status": "maybe"})),
        (
            "passport",
            json!({"number": "12", "country": "GB", "expires_on": "2031-05-01"}),
        ),
        (
            "passport",
            json!({"number": "U1234567", "country": "UK", "expires_on": "2031-05-01"}),
        ),
        ("departure", json!({"at": "2026-12-01T00:00:00Z"})),
        ("companions", json!([{"name": "", "relation": "friend"}])),
    ] {
        let mut body = next.clone();
        body["version"] = json!(2);
        body[field] = bad;
        let res = w.app.put_as(&w.staff, &path(&w), &body).await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {:?}",
            res.json()
        );
    }
    assert_eq!(w.app.get_as(&w.staff, &path(&w)).await.json()["version"], 2);
}

#[tokio::test]
async fn passport_numbers_follow_the_matrix_and_find_the_patient() {
    let w = world().await;
    let res = w.app.put_as(&w.staff, &path(&w), &record()).await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());

    // Found by passport number, however it is typed.
    for q in ["U12345678", "u12345678", "12345678"] {
        let found = w
            .app
            .get_as(&w.staff, &format!("/api/v1/patients?q={q}"))
            .await
            .json();
        assert_eq!(found["total"], 1, "{q}: {found}");
        assert_eq!(found["data"][0]["id"], w.patient.as_str());
    }
    let none = w
        .app
        .get_as(&w.staff, "/api/v1/patients?q=U99999999")
        .await
        .json();
    assert_eq!(
        (none["total"].clone(), none["data"].clone()),
        (json!(0), json!([]))
    );

    // An admin takes passport numbers away from staff: they see the last
    // four, and saving the record with what they see keeps the number.
    let rule = json!({"rules": [{"method": "GET", "path": "/api/v1/patients/{id}/travel?passport=shown", "allow": false}]});
    let res = w
        .app
        .put_as(&w.admin, "/api/v1/permissions/staff", &rule)
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    let seen = w.app.get_as(&w.staff, &path(&w)).await.json();
    assert_eq!(seen["passport"]["number"], "*****5678");
    let mut echo = json!({
        "version": seen["version"], "passport": seen["passport"], "visa": seen["visa"],
        "arrival": seen["arrival"], "departure": seen["departure"],
        "accommodation": seen["accommodation"], "companions": seen["companions"],
        "pickup_arranged": true
    });
    let res = w.app.put_as(&w.staff, &path(&w), &echo).await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    assert_eq!(res.json()["passport"]["number"], "*****5678");
    let full = w.app.get_as(&w.admin, &path(&w)).await.json();
    assert_eq!(full["passport"]["number"], "U12345678", "kept");
    assert_eq!(full["pickup_arranged"], true);

    // A new number replaces it, and the search follows.
    echo["version"] = full["version"].clone();
    echo["passport"]["number"] = json!("X7654321");
    let res = w.app.put_as(&w.staff, &path(&w), &echo).await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    let old = w
        .app
        .get_as(&w.staff, "/api/v1/patients?q=U12345678")
        .await
        .json();
    assert_eq!(old["total"], 0);
    let new = w
        .app
        .get_as(&w.staff, "/api/v1/patients?q=x7654321")
        .await
        .json();
    assert_eq!(new["total"], 1);

    // A deleted patient's travel record is gone with them.
    w.app
        .delete_as(&w.admin, &format!("/api/v1/patients/{}", w.patient))
        .await;
    w.app
        .get_as(&w.admin, &path(&w))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

mod arrivals {
    use axum::http::StatusCode;
    use chrono::{Duration, Utc};
    use serde_json::{json, Value};

    use crate::treatments::world;

    fn day(offset: i64) -> String {
        (Utc::now().date_naive() + Duration::days(offset))
            .format("%Y-%m-%d")
            .to_string()
    }

    fn at(offset: i64) -> String {
        format!("{}T10:00:00Z", day(offset))
    }

    /// A trip arriving in `arrive` days, leaving in `leave`, its passport
    /// expiring in `expires` days.
    fn trip(arrive: i64, leave: i64, expires: i64, visa: &str, pickup: bool) -> Value {
        json!({
            "passport": {"number": "X1234567", "country": "GB", "expires_on": day(expires)},
            "visa": {"status": visa},
            "arrival": {"at": at(arrive), "flight": "TK1980"},
            "departure": {"at": at(leave)},
            "pickup_arranged": pickup
        })
    }

    async fn new_patient(w: &crate::treatments::World, name: &str) -> String {
        w.app
            .post_as(
                &w.staff,
                "/api/v1/patients",
                &json!({"name": name, "country": "GB"}),
            )
            .await
            .json()["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    #[tokio::test]
    async fn the_board_lists_arrivals_in_the_window_with_each_warning_on_its_day() {
        let w = world().await;
        let app = &w.app;
        // Each patient shows one rule (the others kept quiet).
        let year = 365;
        let cases = [
            (
                "All Set",
                trip(20, 30, 30 + 2 * year, "granted", true),
                vec![],
            ),
            (
                "Short Passport",
                trip(20, 30, 30 + 150, "granted", true),
                vec!["passport_expires_soon"],
            ),
            (
                "Visa Pending",
                trip(14, 20, 3 * year, "applied", true),
                vec!["visa_not_granted"],
            ),
            (
                "Visa Later",
                trip(15, 20, 3 * year, "applied", true),
                vec![],
            ),
            (
                "No Pickup",
                trip(3, 10, 3 * year, "not_needed", false),
                vec!["no_pickup"],
            ),
            (
                "Pickup Later",
                trip(4, 10, 3 * year, "not_needed", false),
                vec![],
            ),
        ];
        let mut ids = Vec::new();
        for (name, travel, _) in &cases {
            let id = new_patient(&w, name).await;
            let res = app
                .put_as(&w.staff, &format!("/api/v1/patients/{id}/travel"), travel)
                .await;
            assert_eq!(res.status, StatusCode::OK, "{name}: {:?}", res.json());
            // A planned treatment each, so only the travel rules speak.
            let t = app
                .post_as(
                    &w.staff,
                    &format!("/api/v1/patients/{id}/treatments"),
                    &json!({"treatment_type": "dental implants", "disease": "tooth loss", "hospital_id": w.hospital,
                            "cost": {"amount_minor": 300_000, "currency": "EUR"},
                            "earnings": {"amount_minor": 30_000, "currency": "EUR"}, "status": "planned"}),
                )
                .await;
            assert_eq!(t.status, StatusCode::CREATED, "{:?}", t.json());
            ids.push(id);
        }
        // No treatment recorded: the world's patient, arriving in 5 days.
        let res = app
            .put_as(
                &w.staff,
                &format!("/api/v1/patients/{}/travel", w.patient),
                &trip(5, 12, 3 * year, "granted", true),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK);
        // Past the 35-day window asked for below.
        let later = new_patient(&w, "Next Month").await;
        app.put_as(
            &w.staff,
            &format!("/api/v1/patients/{later}/travel"),
            &trip(40, 50, 3 * year, "granted", true),
        )
        .await;
        // A deleted patient does not arrive.
        let gone = new_patient(&w, "Gone").await;
        app.put_as(
            &w.staff,
            &format!("/api/v1/patients/{gone}/travel"),
            &trip(6, 9, 3 * year, "granted", true),
        )
        .await;
        assert_eq!(
            app.delete_as(&w.admin, &format!("/api/v1/patients/{gone}"))
                .await
                .status,
            StatusCode::NO_CONTENT
        );

        let board = app
            .get_as(&w.staff, &format!("/api/v1/arrivals?to={}", day(35)))
            .await;
        assert_eq!(board.status, StatusCode::OK, "{:?}", board.json());
        let board = board.json();
        let rows = board["data"].as_array().expect("rows");
        assert_eq!(board["total"], 7, "{board}");
        let arrivals: Vec<&str> = rows
            .iter()
            .map(|r| r["arrival_at"].as_str().unwrap())
            .collect();
        let mut sorted = arrivals.clone();
        sorted.sort();
        assert_eq!(arrivals, sorted, "earliest first");
        let row = |id: &str| {
            rows.iter()
                .find(|r| r["patient_id"] == id)
                .expect("on the board")
                .clone()
        };
        for ((name, _, want), id) in cases.iter().zip(&ids) {
            let r = row(id);
            assert_eq!(r["patient_name"], *name);
            assert_eq!(r["warnings"], json!(want), "{name}: {r}");
        }
        let r = row(&w.patient);
        assert_eq!(r["warnings"], json!(["no_treatment"]));
        assert_eq!(r["visa_status"], "granted");
        assert_eq!(r["pickup_arranged"], true);
        assert!(r["assigned_to"].is_null() || r["assigned_to_name"].is_string());

        // The default window is today and the next 14 days: 14, 3, 4 and 5
        // days away; 15 and 20 are not.
        let default = app.get_as(&w.staff, "/api/v1/arrivals").await.json();
        assert_eq!(default["total"], 4, "{default}");
        // Bad windows are 400.
        for q in [
            "?from=2026-13-01",
            "?from=2027-01-10&to=2027-01-01",
            "?from=2027-01-01&to=2027-12-31",
        ] {
            app.get_as(&w.staff, &format!("/api/v1/arrivals{q}"))
                .await
                .assert_error(StatusCode::BAD_REQUEST, "bad_request");
        }
    }
}
