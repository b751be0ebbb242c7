use healthcrm::migrate;

use crate::helpers::TestApp;

#[tokio::test]
async fn migrations_are_idempotent_and_create_the_declared_indexes() {
    // spawn() has applied them once already.
    let app = TestApp::spawn().await;
    let second = migrate::run(&app.db).await.expect("second run succeeds");
    assert!(
        second.created.is_empty(),
        "nothing new on the second run: {:?}",
        second.created
    );
    migrate::run(&app.db).await.expect("third run succeeds");

    let collections = app.db.list_collection_names().await.expect("collections");
    for spec in migrate::specs().expect("specs") {
        assert!(
            collections.contains(&spec.collection),
            "{} exists",
            spec.collection
        );
        let indexes = migrate::list_indexes(&app.db, &spec.collection)
            .await
            .expect("indexes");
        for declared in &spec.indexes {
            assert!(
                indexes.iter().any(|i| declared.matches(i)),
                "{}: index {:?} (unique {}, ttl {:?}) missing; server has {:?}",
                spec.collection,
                declared.key,
                declared.unique,
                declared.expire_after_seconds,
                indexes
            );
        }
        assert_eq!(
            indexes.len(),
            spec.indexes.len(),
            "{}: no duplicate or stray indexes after three runs",
            spec.collection
        );
    }
}

#[tokio::test]
async fn unique_indexes_are_enforced() {
    let app = TestApp::spawn().await;
    let coll = app.db.collection::<mongodb::bson::Document>("permissions");
    coll.insert_one(mongodb::bson::doc! { "role": "auditor", "rules": [] })
        .await
        .expect("first");
    let err = coll
        .insert_one(mongodb::bson::doc! { "role": "auditor", "rules": [] })
        .await
        .expect_err("duplicate role refused");
    assert!(healthcrm::db::is_duplicate_key(&err), "{err}");
    let error = healthcrm::error::AppError::unique_violation(err, "role");
    assert!(
        matches!(error, healthcrm::error::AppError::Conflict { .. }),
        "{error:?}"
    );
}

/// An index an earlier version declared is dropped where it exists, and
/// the run stays idempotent after it.
#[tokio::test]
async fn retired_indexes_are_dropped() {
    let app = TestApp::spawn().await;
    let patients = app.db.collection::<mongodb::bson::Document>("patients");
    patients
        .create_index(
            mongodb::IndexModel::builder()
                .keys(mongodb::bson::doc! { "deleted_at": 1 })
                .build(),
        )
        .await
        .expect("the old index");
    let has_it = |indexes: &[mongodb::IndexModel]| {
        indexes
            .iter()
            .any(|i| i.keys == mongodb::bson::doc! { "deleted_at": 1 })
    };
    let before = migrate::list_indexes(&app.db, "patients")
        .await
        .expect("indexes");
    assert!(has_it(&before));
    migrate::run(&app.db).await.expect("migrations apply");
    let after = migrate::list_indexes(&app.db, "patients")
        .await
        .expect("indexes");
    assert!(!has_it(&after), "{after:?}");
    assert_eq!(after.len(), before.len() - 1);
    migrate::run(&app.db).await.expect("and again");
}

#[tokio::test]
async fn ledger_entries_booked_before_booked_ms_and_day_existed_are_given_them() {
    use healthcrm::repo::treatments::EarningsFilter;
    use mongodb::bson::{doc, oid::ObjectId, DateTime};

    let app = TestApp::spawn().await;
    let booked = DateTime::from_millis(1_780_000_123_456);
    let id = |n: u8| format!("{:024x}", n);
    // As a ledger entry was written before: no `booked_ms`.
    app.db
        .collection::<mongodb::bson::Document>("earnings")
        .insert_one(doc! {
            "_id": ObjectId::new(),
            "treatment_id": id(1), "kind": "credit", "seq": 0_i64,
            "amount_minor": 12_345_i64, "currency": "EUR",
            "hospital_id": id(2), "patient_id": id(3), "booked_at": booked,
        })
        .bypass_document_validation(true)
        .await
        .expect("an old entry");
    let ledger = app.repos().treatments;
    let around = EarningsFilter {
        from: Some(DateTime::from_millis(booked.timestamp_millis() - 1)),
        before: Some(DateTime::from_millis(booked.timestamp_millis() + 1)),
        hospital_id: None,
    };
    let page = healthcrm::repo::PageRequest {
        page: 1,
        per_page: 20,
    };
    let (found, _) = ledger.ledger(&around, page).await.expect("ledger");
    assert!(found.is_empty(), "the period match reads booked_ms");

    migrate::run(&app.db).await.expect("migrations apply");
    let stored = app
        .db
        .collection::<mongodb::bson::Document>("earnings")
        .find_one(doc! { "treatment_id": id(1) })
        .await
        .expect("read")
        .expect("the entry");
    assert_eq!(stored.get_i64("booked_ms"), Ok(booked.timestamp_millis()));
    assert_eq!(stored.get_str("booked_day"), Ok("2026-05-28"));
    assert_eq!(
        stored.get_str("hospital_currency"),
        Ok(format!("{}|EUR", id(2)).as_str())
    );
    let (found, total) = ledger.ledger(&around, page).await.expect("ledger");
    assert_eq!((found.len(), total), (1, 1));
    assert_eq!(found[0].amount_minor, 12_345);
    assert_eq!(
        ledger.backfill_booked().await.expect("again"),
        0,
        "nothing left to fill"
    );
}

#[tokio::test]
async fn patients_stored_before_their_derived_fields_existed_are_given_them() {
    use healthcrm::domain::user::Role;
    use mongodb::bson::{doc, Document};
    use serde_json::{json, Value};

    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let born = |dob: &str| json!({"name": "Old", "country": "DE", "date_of_birth": dob});
    for body in [born("1950-03-01"), born("2001-07-15")] {
        let res = app.post_as(&admin, "/api/v1/patients", &body).await;
        assert_eq!(
            res.status,
            axum::http::StatusCode::CREATED,
            "{:?}",
            res.json()
        );
    }
    let patients = app.db.collection::<Document>("patients");
    let stored = patients
        .find_one(doc! { "name": "Old", "birth_day": "1950-03-01" })
        .await
        .expect("read");
    assert!(stored.is_some(), "written with the patient");
    let bands = |body: Value| -> Vec<(String, i64)> {
        body["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .filter(|r| r["country"] == "DE" && r["patients"].as_i64() != Some(0))
            .map(|r| {
                let band = r["band"].as_str().unwrap_or_default().to_owned();
                (band, r["patients"].as_i64().unwrap_or(-1))
            })
            .collect()
    };
    let report = "/api/v1/reports/patients-by-age?country=DE";
    let before = bands(app.get_as(&admin, report).await.json());
    assert_eq!(before, [("18-34".to_owned(), 1), ("65+".to_owned(), 1)]);

    let new_this_week = |app: &TestApp| {
        let app = app.another_instance(&[]);
        let admin = &admin;
        async move {
            let d = app.get_as(admin, "/api/v1/dashboard").await.json();
            d["patients"]["new_this_week"].as_i64()
        }
    };
    assert_eq!(new_this_week(&app).await, Some(2));
    // A report over a period (since yesterday) matches on `created_ms` too.
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%d");
    let in_period = |app: &TestApp| {
        let app = app.another_instance(&[]);
        let (admin, url) = (
            &admin,
            format!("/api/v1/reports/patients-by-country?from={yesterday}"),
        );
        async move {
            let rows = app.get_as(admin, &url).await.json()["rows"].clone();
            rows.as_array()
                .expect("rows")
                .iter()
                .map(|r| r["patients"].as_i64().unwrap_or(-1))
                .sum::<i64>()
        }
    };
    assert_eq!(in_period(&app).await, 2);

    // As the patients were written before the derived fields existed.
    patients
        .update_many(
            doc! {},
            doc! { "$unset": { "birth_day": "", "created_ms": "", "next_follow_up_ms": "" } },
        )
        .await
        .expect("unset");
    // Fresh instances, whose report caches have not seen the figures.
    let second = app.another_instance(&[]);
    let unknown = bands(second.get_as(&admin, report).await.json());
    assert_eq!(
        unknown,
        [("unknown".to_owned(), 2)],
        "the report reads birth_day"
    );
    assert_eq!(
        new_this_week(&app).await,
        Some(0),
        "the count reads created_ms"
    );
    assert_eq!(in_period(&app).await, 0, "the report reads created_ms");

    migrate::run(&app.db).await.expect("migrations apply");
    let third = app.another_instance(&[]);
    assert_eq!(bands(third.get_as(&admin, report).await.json()), before);
    assert_eq!(new_this_week(&app).await, Some(2));
    assert_eq!(in_period(&app).await, 2);
    let filled = patients
        .find_one(doc! { "birth_day": "1950-03-01" })
        .await
        .expect("read")
        .expect("the patient");
    let created = filled.get_datetime("created_at").expect("created_at");
    assert_eq!(filled.get_i64("created_ms"), Ok(created.timestamp_millis()));
    assert_eq!(
        filled.get("next_follow_up_ms"),
        Some(&mongodb::bson::Bson::Null)
    );
    assert_eq!(
        app.repos()
            .patients
            .backfill_derived()
            .await
            .expect("again"),
        0,
        "nothing left to fill"
    );
}

#[tokio::test]
async fn treatments_keep_their_report_keys_through_each_write_and_the_migrations() {
    use axum::http::StatusCode;
    use healthcrm::domain::user::Role;
    use mongodb::bson::{doc, Document};
    use serde_json::json;

    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let hospital = crate::hospitals::create_hospital(&app, &admin, "Key Clinic").await;
    let res = app
        .post_as(
            &admin,
            "/api/v1/patients",
            &json!({"name": "Keyed", "country": "GB"}),
        )
        .await;
    let patient = res.json()["id"].as_str().expect("id").to_owned();
    let res = app
        .post_as(
            &admin,
            &format!("/api/v1/patients/{patient}/treatments"),
            &json!({"treatment_type": "knee | left", "disease": "arthritis", "hospital_id": hospital,
                    "cost": {"amount_minor": 90_000, "currency": "EUR"},
                    "earnings": {"amount_minor": 9_000, "currency": "EUR"},
                    "status": "planned"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
    let id = res.json()["id"].as_str().expect("id").to_owned();
    let treatments = app.db.collection::<Document>("treatments");
    let keys = || async {
        let d = treatments
            .find_one(doc! {})
            .await
            .expect("read")
            .expect("the treatment");
        let key = |k: &str| d.get_str(k).map(str::to_owned).unwrap_or_default();
        let created = d.get_datetime("created_at").expect("created_at");
        assert_eq!(d.get_i64("created_ms"), Ok(created.timestamp_millis()));
        (key("by_hospital"), key("by_type"))
    };
    assert_eq!(
        keys().await,
        (
            format!("{hospital}|planned|EUR"),
            "planned|EUR|knee | left".to_owned()
        )
    );
    let res = app
        .patch_as(
            &admin,
            &format!("/api/v1/treatments/{id}"),
            &json!({"version": 1, "status": "in_progress"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    let written = keys().await;
    assert_eq!(
        written,
        (
            format!("{hospital}|in_progress|EUR"),
            "in_progress|EUR|knee | left".to_owned()
        ),
        "the keys follow the status"
    );
    // Over a period (since yesterday), matched on the stored `created_ms`.
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%d");
    let by_type = format!("/api/v1/reports/treatments-by-type?from={yesterday}");
    let before = app.get_as(&admin, &by_type).await.json()["rows"].clone();
    assert_eq!(before[0]["treatment_type"], "knee | left");
    assert_eq!(before[0]["treatments"], 1);

    // As the treatment was written before the keys existed.
    treatments
        .update_many(
            doc! {},
            doc! { "$unset": { "by_hospital": "", "by_type": "", "created_ms": "" } },
        )
        .await
        .expect("unset");
    let unfilled = app.another_instance(&[]);
    let rows = unfilled.get_as(&admin, &by_type).await.json()["rows"].clone();
    assert_eq!(rows, serde_json::json!([]), "the period reads created_ms");
    migrate::run(&app.db).await.expect("migrations apply");
    assert_eq!(keys().await, written);
    let fresh = app.another_instance(&[]);
    assert_eq!(fresh.get_as(&admin, &by_type).await.json()["rows"], before);
    assert_eq!(
        app.repos().treatments.backfill_keys().await.expect("again"),
        0,
        "nothing left to fill"
    );
}

#[tokio::test]
async fn appointments_keep_their_date_in_ms_through_each_write_and_the_migrations() {
    use axum::http::StatusCode;
    use healthcrm::domain::user::Role;
    use mongodb::bson::{doc, Bson, Document};
    use serde_json::json;

    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let res = app
        .post_as(
            &admin,
            "/api/v1/patients",
            &json!({"name": "Dated", "country": "GB"}),
        )
        .await;
    let patient = res.json()["id"].as_str().expect("id").to_owned();
    let log = |date: Option<&str>| {
        let (app, admin, patient) = (&app, &admin, &patient);
        let body =
            json!({"appointment_date": date, "discussion_notes": "Call", "status": "scheduled"});
        async move {
            let res = app
                .post_as(
                    admin,
                    &format!("/api/v1/patients/{patient}/appointments"),
                    &body,
                )
                .await;
            assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
            res.json()["id"].as_str().expect("id").to_owned()
        }
    };
    let dated = log(Some("2026-03-10T09:00:00Z")).await;
    log(None).await;
    let appointments = app.db.collection::<Document>("appointments");
    let ms = |id: String| {
        let appointments = appointments.clone();
        async move {
            let oid = mongodb::bson::oid::ObjectId::parse_str(&id).expect("oid");
            let d = appointments
                .find_one(doc! { "_id": oid })
                .await
                .expect("read")
                .expect("the appointment");
            d.get("appointment_ms").cloned()
        }
    };
    let march_10 = chrono::DateTime::parse_from_rfc3339("2026-03-10T09:00:00Z")
        .expect("date")
        .timestamp_millis();
    assert_eq!(ms(dated.clone()).await, Some(Bson::Int64(march_10)));
    let march = "/api/v1/appointments?from=2026-03-01&to=2026-03-31";
    let total = || async { app.get_as(&admin, march).await.json()["total"].as_u64() };
    assert_eq!(total().await, Some(1));

    // Moved by an update: the stored ms follow the date.
    let move_to = |version: i64, date: &'static str| {
        let url = format!("/api/v1/appointments/{dated}");
        let body = json!({"version": version, "appointment_date": date});
        let (app, admin) = (&app, &admin);
        async move {
            let res = app.patch_as(admin, &url, &body).await;
            assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
        }
    };
    move_to(1, "2026-04-02T09:00:00Z").await;
    assert_eq!(total().await, Some(0), "moved out of March");
    move_to(2, "2026-03-10T09:00:00Z").await;
    assert_eq!(total().await, Some(1), "and back");

    // As the appointments were written before `appointment_ms` existed,
    // by a restore that left `patient_deleted: false` behind.
    appointments
        .update_many(
            doc! {},
            doc! { "$unset": { "appointment_ms": "" }, "$set": { "patient_deleted": false } },
        )
        .await
        .expect("unset");
    assert_eq!(total().await, Some(0), "the period reads appointment_ms");
    migrate::run(&app.db).await.expect("migrations apply");
    assert_eq!(total().await, Some(1));
    use futures::TryStreamExt;
    let all: Vec<Document> = appointments
        .find(doc! {})
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("read");
    assert_eq!(all.len(), 2);
    assert!(
        all.iter().all(|d| !d.contains_key("patient_deleted")),
        "a restored patient's mark is cleared, not false: {all:?}"
    );
    assert_eq!(ms(dated).await, Some(Bson::Int64(march_10)));
    let undated = appointments
        .count_documents(doc! { "appointment_ms": { "$eq": Bson::Null } })
        .await
        .expect("count");
    assert_eq!(undated, 1, "an appointment without a date keeps a null");
    assert_eq!(
        app.repos().appointments.backfill_ms().await.expect("again"),
        0,
        "nothing left to fill"
    );
}
