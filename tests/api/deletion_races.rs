//! A patient soft-deleted between a write's checks and its transaction.
//!
//! Logging an appointment or recording a treatment checks that the patient
//! is live before its transaction; editing one checks that the record's
//! patient is. The delete marks the patient's records (`patient_deleted`),
//! which is how the lists across patients leave them out. A delete landing
//! in that gap must fail the write (404, nothing kept) rather than leave an
//! unmarked record of a deleted patient behind, or drop the mark an edit's
//! replace does not carry. Each test stops the write at its pause point,
//! deletes the patient, and lets the write go on.

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
            gate.reached().await;
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

    fn appointment(&self) -> Value {
        json!({"hospital_id": self.hospital, "appointment_date": "2026-03-10T10:00:00Z",
            "discussion_notes": "first call", "status": "scheduled"})
    }

    fn treatment(&self) -> Value {
        json!({"treatment_type": "knee replacement", "disease": "osteoarthritis",
            "hospital_id": self.hospital, "cost": {"amount_minor": 1_000_000, "currency": "EUR"},
            "earnings": {"amount_minor": 100_000, "currency": "EUR"}, "status": "planned"})
    }
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
    let c = Case::new().await;
    let url = format!("/api/v1/patients/{}/appointments", c.patient);
    let body = c.appointment();
    let res = c
        .deleted_during(
            "appointment.log:checked",
            c.app.post_as(&c.staff, &url, &body),
        )
        .await;
    res.assert_error(StatusCode::NOT_FOUND, "not_found");
    assert!(c.stored("appointments").await.is_empty());
    assert_eq!(c.total("/api/v1/appointments").await, 0);
}

#[tokio::test]
async fn an_appointment_edited_as_its_patient_is_deleted_is_refused_and_keeps_the_mark() {
    let c = Case::new().await;
    let url = format!("/api/v1/patients/{}/appointments", c.patient);
    let res = c.app.post_as(&c.staff, &url, &c.appointment()).await;
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
    let id = res.json()["id"].as_str().expect("id").to_owned();
    let url = format!("/api/v1/appointments/{id}");
    let body = json!({"version": 1, "discussion_notes": "second call"});
    let res = c
        .deleted_during(
            "appointment.update:checked",
            c.app.patch_as(&c.staff, &url, &body),
        )
        .await;
    res.assert_error(StatusCode::NOT_FOUND, "not_found");
    let stored = c.stored("appointments").await;
    assert_eq!(stored.len(), 1);
    assert!(marked(&stored[0]), "the mark was dropped: {:?}", stored[0]);
    assert_eq!(stored[0].get_str("discussion_notes"), Ok("first call"));
    assert_eq!(c.total("/api/v1/appointments").await, 0);
}

#[tokio::test]
async fn a_treatment_recorded_as_its_patient_is_deleted_is_refused_and_not_kept() {
    let c = Case::new().await;
    let url = format!("/api/v1/patients/{}/treatments", c.patient);
    let body = c.treatment();
    let res = c
        .deleted_during(
            "treatment.record:checked",
            c.app.post_as(&c.staff, &url, &body),
        )
        .await;
    res.assert_error(StatusCode::NOT_FOUND, "not_found");
    assert!(c.stored("treatments").await.is_empty());
    assert_eq!(c.total("/api/v1/treatments").await, 0);
}

#[tokio::test]
async fn a_treatment_edited_as_its_patient_is_deleted_is_refused_and_keeps_the_mark() {
    let c = Case::new().await;
    let url = format!("/api/v1/patients/{}/treatments", c.patient);
    let res = c.app.post_as(&c.staff, &url, &c.treatment()).await;
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
    let id = res.json()["id"].as_str().expect("id").to_owned();
    let url = format!("/api/v1/treatments/{id}");
    let body = json!({"version": 1, "treatment_type": "hip replacement"});
    let res = c
        .deleted_during(
            "treatment.update:checked",
            c.app.patch_as(&c.staff, &url, &body),
        )
        .await;
    res.assert_error(StatusCode::NOT_FOUND, "not_found");
    let stored = c.stored("treatments").await;
    assert_eq!(stored.len(), 1);
    assert!(marked(&stored[0]), "the mark was dropped: {:?}", stored[0]);
    assert_eq!(stored[0].get_str("treatment_type"), Ok("knee replacement"));
    assert_eq!(c.total("/api/v1/treatments").await, 0);
}
