//! The consistency checker: each kind of violation, planted directly in the
//! database, is found; the ledger ones are repaired, once.

use axum::http::StatusCode;
use healthcrm::{domain::user::Role, workflow::doctor};
use mongodb::bson::{doc, oid::ObjectId, Document};
use serde_json::json;

use crate::{
    helpers::{Session, TestApp},
    hospitals::create_hospital,
};

struct World {
    app: TestApp,
    staff: Session,
    hospital: String,
    patient: String,
}

async fn world() -> World {
    let app = TestApp::spawn().await;
    let admin = app.login_as(Role::Admin).await;
    let staff = app.login_as(Role::Staff).await;
    let hospital = create_hospital(&app, &admin, "Doctor Hospital").await;
    let patient = app
        .post_as(
            &staff,
            "/api/v1/patients",
            &json!({"name": "Checked", "country": "NL"}),
        )
        .await
        .json()["id"]
        .as_str()
        .expect("id")
        .to_owned();
    World {
        app,
        staff,
        hospital,
        patient,
    }
}

async fn treatment(w: &World, status: &str) -> String {
    let res = w
        .app
        .post_as(
            &w.staff,
            &format!("/api/v1/patients/{}/treatments", w.patient),
            &json!({"treatment_type": "hip", "disease": "arthrosis", "hospital_id": w.hospital,
                   "cost": {"amount_minor": 10_000, "currency": "EUR"},
                   "earnings": {"amount_minor": 1_000, "currency": "EUR"}, "status": status}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
    res.json()["id"].as_str().expect("id").to_owned()
}

async fn cancel(w: &World, id: &str) {
    let path = format!("/api/v1/treatments/{id}");
    let version = w.app.get_as(&w.staff, &path).await.json()["version"].clone();
    let res = w
        .app
        .patch_as(
            &w.staff,
            &path,
            &json!({"version": version, "status": "cancelled"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
}

fn coll(w: &World, name: &str) -> mongodb::Collection<Document> {
    w.app.db.collection(name)
}

async fn kinds(w: &World, repair: bool) -> (Vec<&'static str>, usize) {
    let report = doctor::check(&w.app.workflows, repair)
        .await
        .expect("check");
    let mut kinds: Vec<&'static str> = report.violations.iter().map(|v| v.kind).collect();
    kinds.sort();
    (kinds, report.repaired.len())
}

async fn entries(w: &World, treatment: &str) -> u64 {
    coll(w, "earnings")
        .count_documents(doc! { "treatment_id": treatment })
        .await
        .expect("count")
}

#[tokio::test]
async fn a_consistent_database_has_no_violations() {
    let w = world().await;
    treatment(&w, "completed").await;
    let cancelled = treatment(&w, "completed").await;
    cancel(&w, &cancelled).await;
    treatment(&w, "planned").await;
    // A patient stored before `reached` existed, created by an account
    // deleted since: history, not a broken reference.
    let mut legacy = coll(&w, "patients")
        .find_one(doc! { "_id": &w.patient })
        .await
        .expect("find")
        .expect("patient");
    legacy.insert("reached", Vec::<String>::new());
    legacy.insert("created_by", ObjectId::new().to_hex());
    coll(&w, "patients")
        .replace_one(doc! { "_id": &w.patient }, legacy)
        .await
        .expect("plant");
    assert_eq!(kinds(&w, false).await, (vec![], 0));
}

#[tokio::test]
async fn missing_credits_and_reversals_are_booked_once() {
    let w = world().await;
    let done = treatment(&w, "completed").await;
    let cancelled = treatment(&w, "completed").await;
    cancel(&w, &cancelled).await;
    coll(&w, "earnings")
        .delete_many(doc! { "treatment_id": &done })
        .await
        .expect("plant");
    coll(&w, "earnings")
        .delete_many(doc! { "treatment_id": &cancelled, "kind": "reversal" })
        .await
        .expect("plant");
    let (found, _) = kinds(&w, false).await;
    assert_eq!(found, vec!["missing_credit", "missing_reversal"]);
    assert_eq!(entries(&w, &done).await, 0, "a report changes nothing");
    assert_eq!(
        kinds(&w, true).await,
        (vec!["missing_credit", "missing_reversal"], 2)
    );
    assert_eq!(entries(&w, &done).await, 1);
    assert_eq!(entries(&w, &cancelled).await, 2);
    assert_eq!(
        kinds(&w, true).await,
        (vec![], 0),
        "nothing left, nothing booked twice"
    );
    assert_eq!(entries(&w, &done).await, 1);
}

#[tokio::test]
async fn ledger_entries_that_do_not_match_are_reported_not_touched() {
    let w = world().await;
    let done = treatment(&w, "completed").await;
    let planned = treatment(&w, "planned").await;
    coll(&w, "earnings")
        .update_one(
            doc! { "treatment_id": &done },
            doc! { "$set": { "amount_minor": 5 } },
        )
        .await
        .expect("plant");
    let mut stray = coll(&w, "earnings")
        .find_one(doc! { "treatment_id": &done })
        .await
        .expect("find")
        .expect("entry");
    stray.remove("_id");
    stray.insert("treatment_id", &planned);
    coll(&w, "earnings")
        .insert_one(stray.clone())
        .await
        .expect("plant");
    stray.insert("treatment_id", ObjectId::new().to_hex());
    coll(&w, "earnings").insert_one(stray).await.expect("plant");
    let expected = vec!["ledger_mismatch", "orphan_entry", "unexpected_entry"];
    assert_eq!(kinds(&w, true).await, (expected.clone(), 0));
    assert_eq!(
        kinds(&w, false).await.0,
        expected,
        "still there: not repairable"
    );
}

#[tokio::test]
async fn patients_that_disagree_with_their_history_are_reported() {
    let w = world().await;
    let path = format!("/api/v1/patients/{}", w.patient);
    let res = w
        .app
        .patch_as(
            &w.staff,
            &path,
            &json!({"version": 1, "treatment_status": "ready"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    let id = w.patient.clone();
    // Replaced whole: the stand-in mangles dates written with `$set`.
    let mut stored = coll(&w, "patients")
        .find_one(doc! { "_id": &id })
        .await
        .expect("find")
        .expect("patient");
    stored.insert("reached", vec!["inquiry"]);
    stored.insert("completed_at", mongodb::bson::DateTime::now());
    coll(&w, "patients")
        .replace_one(doc! { "_id": &id }, stored)
        .await
        .expect("plant");
    coll(&w, "history")
        .delete_many(doc! { "patient_id": &id, "action": "create" })
        .await
        .expect("plant");
    assert_eq!(
        kinds(&w, true).await,
        (
            vec![
                "completed_at_mismatch",
                "missing_history",
                "reached_mismatch"
            ],
            0
        )
    );
}

#[tokio::test]
async fn references_to_missing_hospitals_and_users_are_reported() {
    let w = world().await;
    treatment(&w, "planned").await;
    let ghost = ObjectId::new().to_hex();
    coll(&w, "patients")
        .update_one(
            doc! { "_id": &w.patient },
            doc! { "$set": { "hospital_id": &ghost, "assigned_to": &ghost } },
        )
        .await
        .expect("plant");
    coll(&w, "treatments")
        .update_many(doc! {}, doc! { "$set": { "hospital_id": &ghost } })
        .await
        .expect("plant");
    assert_eq!(
        kinds(&w, false).await.0,
        vec!["missing_hospital", "missing_hospital", "missing_user"]
    );
    // Records of a patient that does not exist at all (not even deleted).
    let res = w
        .app
        .post_as(
            &w.staff,
            &format!("/api/v1/patients/{}/appointments", w.patient),
            &json!({"discussion_notes": "call", "status": "scheduled"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
    let nobody = ObjectId::new().to_hex();
    for name in ["appointments", "treatments"] {
        coll(&w, name)
            .update_many(doc! {}, doc! { "$set": { "patient_id": &nobody } })
            .await
            .expect("plant");
    }
    assert_eq!(
        kinds(&w, true).await,
        (
            vec![
                "missing_hospital",
                "missing_hospital",
                "missing_patient",
                "missing_patient",
                "missing_user"
            ],
            0
        ),
        "reported, and no repair touches them"
    );
}

/// The total of a list across patients.
async fn listed(w: &World, path: &str) -> u64 {
    let res = w.app.get_as(&w.staff, path).await;
    assert_eq!(res.status, StatusCode::OK, "{path}: {:?}", res.json());
    res.json()["total"].as_u64().expect("total")
}

#[tokio::test]
async fn deletion_marks_that_disagree_with_their_patient_are_set_from_it() {
    let w = world().await;
    let admin = w.app.login_as(Role::Admin).await;
    let appointment = json!({"appointment_date": "2026-03-10T10:00:00Z",
        "discussion_notes": "call", "status": "scheduled"});
    let gone = w
        .app
        .post_as(
            &w.staff,
            "/api/v1/patients",
            &json!({"name": "Gone", "country": "NL"}),
        )
        .await
        .json()["id"]
        .as_str()
        .expect("id")
        .to_owned();
    // Two of the deleted patient's, of which the plant below unmarks one.
    for p in [&w.patient, &gone, &gone] {
        let path = format!("/api/v1/patients/{p}/appointments");
        let res = w.app.post_as(&w.staff, &path, &appointment).await;
        assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
    }
    treatment(&w, "planned").await;
    let res = w
        .app
        .delete_as(&admin, &format!("/api/v1/patients/{gone}"))
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    assert_eq!(kinds(&w, false).await, (vec![], 0));
    assert_eq!(
        (
            listed(&w, "/api/v1/appointments").await,
            listed(&w, "/api/v1/treatments").await
        ),
        (1, 1)
    );

    // Plant both ways a mark can disagree: one of the deleted patient's
    // appointments unmarked, the live patient's treatment marked.
    coll(&w, "appointments")
        .update_one(
            doc! { "patient_id": &gone },
            doc! { "$unset": { "patient_deleted": "" } },
        )
        .await
        .expect("plant");
    coll(&w, "treatments")
        .update_many(
            doc! { "patient_id": &w.patient },
            doc! { "$set": { "patient_deleted": true } },
        )
        .await
        .expect("plant");
    assert_eq!(
        (
            listed(&w, "/api/v1/appointments").await,
            listed(&w, "/api/v1/treatments").await
        ),
        (2, 0),
        "the lists across patients are wrong"
    );
    let (found, _) = kinds(&w, false).await;
    assert_eq!(found, vec!["stale_mark", "unmarked_record"]);
    assert_eq!(
        (
            listed(&w, "/api/v1/appointments").await,
            listed(&w, "/api/v1/treatments").await
        ),
        (2, 0),
        "a report changes nothing"
    );
    let report = doctor::check(&w.app.workflows, true).await.expect("repair");
    let mut found: Vec<&str> = report.violations.iter().map(|v| v.kind).collect();
    found.sort();
    assert_eq!(found, vec!["stale_mark", "unmarked_record"]);
    let mut repaired = report.repaired.clone();
    repaired.sort();
    assert_eq!(
        repaired,
        vec![
            format!(
                "cleared the deletion mark from 1 of patient {}'s appointments and treatments",
                w.patient
            ),
            format!("set the deletion mark on 1 of patient {gone}'s appointments and treatments"),
        ],
        "each repair says how many records it changed: the one planted, not the one already marked"
    );
    assert_eq!(kinds(&w, false).await, (vec![], 0));
    assert_eq!(
        (
            listed(&w, "/api/v1/appointments").await,
            listed(&w, "/api/v1/treatments").await
        ),
        (1, 1)
    );
}

/// Sets the patient's treatments' mark to `false`, a value the code never
/// writes.
async fn plant_false(w: &World) {
    coll(w, "treatments")
        .update_many(
            doc! { "patient_id": &w.patient },
            doc! { "$set": { "patient_deleted": false } },
        )
        .await
        .expect("plant");
}

/// A mark holding anything but `true` (`false` from an older build, or a
/// value copied from elsewhere) hides the record all the same; the doctor
/// finds it, and both its repair and a restore remove it.
#[tokio::test]
async fn a_stray_mark_value_is_cleared_by_the_repair_and_by_a_restore() {
    let w = world().await;
    let admin = w.app.login_as(Role::Admin).await;
    treatment(&w, "planned").await;
    assert_eq!(listed(&w, "/api/v1/treatments").await, 1);
    plant_false(&w).await;
    assert_eq!(listed(&w, "/api/v1/treatments").await, 0, "hidden");
    let report = doctor::check(&w.app.workflows, true).await.expect("repair");
    let found: Vec<&str> = report.violations.iter().map(|v| v.kind).collect();
    assert_eq!(found, vec!["stale_mark"]);
    assert_eq!(
        report.repaired,
        vec![format!(
            "cleared the deletion mark from 1 of patient {}'s appointments and treatments",
            w.patient
        )]
    );
    assert_eq!(kinds(&w, false).await, (vec![], 0));
    assert_eq!(listed(&w, "/api/v1/treatments").await, 1, "shown again");

    // Deleted, then the mark replaced by the stray value: the restore
    // clears it too.
    let path = format!("/api/v1/patients/{}", w.patient);
    assert_eq!(
        w.app.delete_as(&admin, &path).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(listed(&w, "/api/v1/treatments").await, 0);
    plant_false(&w).await;
    let res = w
        .app
        .post_as(&admin, &format!("{path}/restore"), &json!({}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    assert_eq!(listed(&w, "/api/v1/treatments").await, 1, "restored");
    assert_eq!(kinds(&w, false).await, (vec![], 0));
}
