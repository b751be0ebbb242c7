//! The `appointments` collection.

use mongodb::{bson::doc, ClientSession, Collection, Database};

use super::PageRequest;
use crate::{
    domain::{appointment::Appointment, AppointmentId, PatientId},
    error::Result,
};

#[derive(Clone)]
pub struct AppointmentsRepo {
    coll: Collection<Appointment>,
}

impl AppointmentsRepo {
    pub fn new(db: &Database) -> Self {
        AppointmentsRepo {
            coll: db.collection("appointments"),
        }
    }

    pub async fn insert(&self, s: &mut ClientSession, a: &Appointment) -> Result<()> {
        self.coll.insert_one(a).session(s).await?;
        Ok(())
    }

    pub async fn references_hospital(
        &self,
        s: &mut ClientSession,
        hospital: crate::domain::HospitalId,
    ) -> Result<bool> {
        Ok(self
            .coll
            .find_one(doc! { "hospital_id": hospital })
            .session(s)
            .await?
            .is_some())
    }

    pub async fn find(&self, id: AppointmentId) -> Result<Option<Appointment>> {
        Ok(self.coll.find_one(doc! { "_id": id }).await?)
    }

    /// Replaces the document if it still has `expected_version`.
    pub async fn replace(
        &self,
        s: &mut ClientSession,
        a: &Appointment,
        expected_version: i64,
    ) -> Result<bool> {
        let res = self
            .coll
            .replace_one(doc! { "_id": a.id, "version": expected_version }, a)
            .session(s)
            .await?;
        Ok(res.matched_count == 1)
    }

    /// Every appointment (the consistency check).
    pub async fn scan(&self) -> Result<mongodb::Cursor<Appointment>> {
        Ok(self.coll.find(doc! {}).await?)
    }

    /// A patient's appointments, newest first.
    pub async fn for_patient(
        &self,
        patient: PatientId,
        page: PageRequest,
    ) -> Result<(Vec<Appointment>, u64)> {
        let filter = doc! { "patient_id": patient };
        let (items, total) = super::paged(
            &self.coll,
            filter,
            doc! { "created_at": -1, "_id": -1 },
            page,
        )
        .await?;
        Ok((items, total))
    }
}
