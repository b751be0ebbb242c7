//! A patient soft-deleted between a write's checks and its transaction.
//!
//! Logging an appointment or recording a treatment checks that the patient
//! is live before its transaction; editing one checks that the record's
//! patient is. The delete marks the patient's records (`patient_deleted`),
//! which is how the lists across patients leave them out. A delete landing
//! in that gap must fail the write (404, nothing kept) rather than leave an
//! unmarked record of a deleted patient behind, or drop the mark an edit's
//! replace does not carry. Each test stops the write at its pause point,
//! deletes the patient, and lets the write go on. Accepting a quote books a
//! treatment the same way.

use axum::http::StatusCode;
use healthcrm::domain::user::Role;
use mongodb::bson::{doc, Bson, Document};
use serde_json::{json, Value};

use crate::{
    helpers::{Session, TestApp, TestResponse},
    hospitals::create_hospital,
};

struct Case {
    app: TestApp,
    admin: Session,
    staff: Session,
    hospital: String,
    patient: String,
}

impl Case {
    async fn new() -> Case {
        let app = TestApp::spawn().await;
        let admin = app.login_as(Role::Admin).await;
        let staff = app.login_as(Role::Staff).await;
        let hospital = create_hospital(&app, &admin, "Race Clinic").await;
        let res = app
            .post_as(
                &staff,
                "/api/v1/patients",
                &json!({"name": "Gone Midway", "country": "DE"}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
        let patient = res.json()["id"].as_str().expect("id").to_owned();
        Case {
            app,
            admin,
            staff,
            hospital,
            patient,
        }
    }

    /// Runs `write` up to its pause point `point`, deletes the patient
    /// there, lets the write finish, and returns its response.
    async fn deleted_during(
        &self,
        point: &'static str,
        write: impl std::future::Future<Output = TestResponse>,
    ) -> TestResponse {
        let gate = self.app.workflows.faults.pause_at(point);
        let delete = async {
            // A write that fails before its pause point must fail the test,
            // not hang it.
            tokio::time::timeout(std::time::Duration::from_secs(30), gate.reached())
                .await
                .unwrap_or_else(|_| panic!("the write never reached {point}"));
            let res = self
                .app
                .delete_as(&self.admin, &format!("/api/v1/patients/{}", self.patient))
                .await;
            gate.release();
            res
        };
        let (written, deleted) = tokio::join!(write, delete);
        assert_eq!(
            deleted.status,
            StatusCode::NO_CONTENT,
            "{:?}",
            deleted.json()
        );
        written
    }

    /// The patient's stored records in `collection` (raw, with the mark).
    async fn stored(&self, collection: &str) -> Vec<Document> {
        // Ids are stored as hex strings (docs/mongodb-compatibility.md).
        let mut cursor = self
            .app
            .db
            .collection::<Document>(collection)
            .find(doc! { "patient_id": &self.patient })
            .await
            .expect("find");
        let mut all = Vec::new();
        while cursor.advance().await.expect("advance") {
            all.push(Document::try_from(cursor.current().to_owned()).expect("document"));
        }
        all
    }

    /// The total of a list across patients.
    async fn total(&self, url: &str) -> u64 {
        let res = self.app.get_as(&self.staff, url).await;
        assert_eq!(res.status, StatusCode::OK, "{url}: {:?}", res.json());
        res.json()["total"].as_u64().expect("total")
    }
}

/// One kind of patient record: its collection (also its paths under
/// `/api/v1`), the pause points of its create and edit, how to create one,
/// and a field the edit changes (as created, then as edited).
struct Kind {
    name: &'static str,
    create_point: &'static str,
    edit_point: &'static str,
    body: fn(&str) -> Value,
    field: &'static str,
    created: &'static str,
    edited: &'static str,
}

const APPOINTMENTS: Kind = Kind {
    name: "appointments",
    create_point: "appointment.log:checked",
    edit_point: "appointment.update:checked",
    body: |hospital| {
        json!({"hospital_id": hospital, "appointment_date": "2026-03-10T10:00:00Z",
            "discussion_notes": "first call", "status": "scheduled"})
    },
    field: "discussion_notes",
    created: "first call",
    edited: "second call",
};

const TREATMENTS: Kind = Kind {
    name: "treatments",
    create_point: "treatment.record:checked",
    edit_point: "treatment.update:checked",
    body: |hospital| {
        json!({"treatment_type": "knee replacement", "disease": "osteoarthritis",
            "hospital_id": hospital, "cost": {"amount_minor": 1_000_000, "currency": "EUR"},
            "earnings": {"amount_minor": 100_000, "currency": "EUR"}, "status": "planned"})
    },
    field: "treatment_type",
    created: "knee replacement",
    edited: "hip replacement",
};

/// A record created as its patient is deleted: 404, nothing kept, nothing
/// listed.
async fn created_as_the_patient_goes(kind: &Kind) {
    let c = Case::new().await;
    let url = format!("/api/v1/patients/{}/{}", c.patient, kind.name);
    let body = (kind.body)(&c.hospital);
    let res = c
        .deleted_during(kind.create_point, c.app.post_as(&c.staff, &url, &body))
        .await;
    res.assert_error(StatusCode::NOT_FOUND, "not_found");
    assert!(c.stored(kind.name).await.is_empty());
    assert_eq!(c.total(&format!("/api/v1/{}", kind.name)).await, 0);
}

/// A record edited as its patient is deleted: 404, the record as it was
/// and marked, nothing listed.
async fn edited_as_the_patient_goes(kind: &Kind) {
    let c = Case::new().await;
    let url = format!("/api/v1/patients/{}/{}", c.patient, kind.name);
    let res = c
        .app
        .post_as(&c.staff, &url, &(kind.body)(&c.hospital))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
    let id = res.json()["id"].as_str().expect("id").to_owned();
    let url = format!("/api/v1/{}/{id}", kind.name);
    let body = json!({"version": 1, kind.field: kind.edited});
    let res = c
        .deleted_during(kind.edit_point, c.app.patch_as(&c.staff, &url, &body))
        .await;
    res.assert_error(StatusCode::NOT_FOUND, "not_found");
    let stored = c.stored(kind.name).await;
    assert_eq!(stored.len(), 1);
    assert!(marked(&stored[0]), "the mark was dropped: {:?}", stored[0]);
    assert_eq!(stored[0].get_str(kind.field), Ok(kind.created));
    assert_eq!(c.total(&format!("/api/v1/{}", kind.name)).await, 0);
}

/// Whether the record carries its patient's deletion mark. The stand-in
/// stores a `$set` boolean as 0/1 (docs/mongodb-compatibility.md).
fn marked(d: &Document) -> bool {
    matches!(
        d.get("patient_deleted"),
        Some(Bson::Boolean(true)) | Some(Bson::Int32(1)) | Some(Bson::Int64(1))
    )
}

#[tokio::test]
async fn an_appointment_logged_as_its_patient_is_deleted_is_refused_and_not_kept() {
    created_as_the_patient_goes(&APPOINTMENTS).await;
}

#[tokio::test]
async fn an_appointment_edited_as_its_patient_is_deleted_is_refused_and_keeps_the_mark() {
    edited_as_the_patient_goes(&APPOINTMENTS).await;
}

#[tokio::test]
async fn a_treatment_recorded_as_its_patient_is_deleted_is_refused_and_not_kept() {
    created_as_the_patient_goes(&TREATMENTS).await;
}

#[tokio::test]
async fn a_treatment_edited_as_its_patient_is_deleted_is_refused_and_keeps_the_mark() {
    edited_as_the_patient_goes(&TREATMENTS).await;
}

#[tokio::test]
async fn a_quote_accepted_as_its_patient_is_deleted_is_refused_and_books_nothing() {
    let c = Case::new().await;
    let res = c
        .app
        .post_as(
            &c.staff,
            &format!("/api/v1/patients/{}/quotes", c.patient),
            &json!({"hospital_id": c.hospital, "treatment_type": "knee replacement"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
    let quote = res.json()["id"].as_str().expect("id").to_owned();
    let valid_until = (chrono::Utc::now().date_naive() + chrono::Duration::days(30))
        .format("%Y-%m-%d")
        .to_string();
    let res = c
        .app
        .patch_as(
            &c.staff,
            &format!("/api/v1/quotes/{quote}"),
            &json!({"version": 1, "status": "received", "valid_until": valid_until,
                "amount": {"amount_minor": 1_000_000, "currency": "EUR"}}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    let url = format!("/api/v1/quotes/{quote}/accept");
    let body = json!({"disease": "osteoarthritis"});
    let res = c
        .deleted_during("quote.accept:checked", c.app.post_as(&c.staff, &url, &body))
        .await;
    res.assert_error(StatusCode::NOT_FOUND, "not_found");
    assert!(c.stored("treatments").await.is_empty());
    let stored = c.stored("quotes").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].get_str("status"),
        Ok("received"),
        "{:?}",
        stored[0]
    );
    assert_eq!(c.total("/api/v1/treatments").await, 0);
}
