//! The `appointments` collection.

use mongodb::{
    bson::{doc, Bson, DateTime, Document},
    ClientSession, Collection, Database,
};

use super::PageRequest;
use crate::{
    domain::{
        appointment::{Appointment, AppointmentStatus},
        AppointmentId, HospitalId, PatientId,
    },
    error::{AppError, Result},
};

/// An appointment's `appointment_date` in milliseconds since the epoch
/// (null without one), stored beside it: the calendar's period is a number
/// range on it and its order follows it. The stand-in evaluates a date
/// range in Python (670 ms a calendar page over 20,000 appointments) and a
/// number range in SQL from the index; MongoDB uses an index for either.
pub const APPOINTMENT_MS: &str = "appointment_ms";

fn appointment_ms(a: &Appointment) -> Bson {
    super::millis_or_null(a.appointment_date)
}

/// An appointment as stored: its fields and [`APPOINTMENT_MS`], rewritten
/// with every insert and replace.
pub fn stored(a: &Appointment) -> Result<Document> {
    let mut d = mongodb::bson::to_document(a).map_err(AppError::internal)?;
    d.insert(APPOINTMENT_MS, appointment_ms(a));
    Ok(d)
}

/// The appointment calendar's filters.
#[derive(Debug, Default, Clone)]
pub struct CalendarFilter {
    /// On `appointment_date`.
    pub from: Option<DateTime>,
    /// Exclusive.
    pub before: Option<DateTime>,
    pub hospital_id: Option<HospitalId>,
    pub status: Option<AppointmentStatus>,
    /// Only these patients (the live patients of an assignee).
    pub patients: Option<Vec<PatientId>>,
}

impl CalendarFilter {
    pub fn document(&self) -> Document {
        let mut filter = doc! {};
        if let Some(h) = self.hospital_id {
            filter.insert("hospital_id", doc! { "$eq": h });
        }
        if let Some(s) = self.status {
            filter.insert("status", doc! { "$eq": appointment_status(s) });
        }
        super::patient_scope(&mut filter, self.patients.as_deref());
        super::add_millis_range(&mut filter, APPOINTMENT_MS, self.from, self.before);
        if self.from.is_none() && self.before.is_none() {
            // A calendar shows dated appointments only.
            filter.insert(APPOINTMENT_MS, doc! { "$ne": Bson::Null });
        }
        filter
    }
}

fn appointment_status(s: AppointmentStatus) -> &'static str {
    match s {
        AppointmentStatus::Scheduled => "scheduled",
        AppointmentStatus::Completed => "completed",
        AppointmentStatus::Cancelled => "cancelled",
        AppointmentStatus::Missed => "missed",
    }
}

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

    fn stored_coll(&self) -> Collection<Document> {
        self.coll.clone_with_type()
    }

    pub async fn insert(&self, s: &mut ClientSession, a: &Appointment) -> Result<()> {
        self.stored_coll().insert_one(stored(a)?).session(s).await?;
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
            .stored_coll()
            .replace_one(
                doc! { "_id": a.id, "version": expected_version },
                stored(a)?,
            )
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

    /// Appointments across patients by date (the calendar), earliest first.
    pub async fn calendar(
        &self,
        f: &CalendarFilter,
        page: PageRequest,
    ) -> Result<(Vec<Appointment>, u64)> {
        super::paged(
            &self.coll,
            f.document(),
            doc! { APPOINTMENT_MS: 1, "_id": 1 },
            page,
        )
        .await
    }

    /// Gives [`APPOINTMENT_MS`] to the appointments written before it
    /// existed; how many needed it (none after the first run).
    pub async fn backfill_ms(&self) -> Result<u64> {
        let stale = doc! { APPOINTMENT_MS: { "$exists": false } };
        super::backfill(&self.stored_coll(), stale, |d| {
            let a: Appointment =
                mongodb::bson::from_document(d.clone()).map_err(AppError::internal)?;
            Ok(doc! { APPOINTMENT_MS: appointment_ms(&a) })
        })
        .await
    }

    /// Where the deletion marks disagree with the patients
    /// ([`super::mark_disagreements`]).
    pub async fn mark_disagreements(
        &self,
        deleted: &std::collections::HashSet<PatientId>,
    ) -> Result<(
        std::collections::BTreeSet<PatientId>,
        std::collections::BTreeSet<PatientId>,
    )> {
        super::mark_disagreements(&self.coll.clone_with_type(), deleted).await
    }

    /// Marks `patient`'s appointments as a deleted patient's (or not); returns
    /// how many changed ([`super::patient_deleted_filter`]).
    pub async fn mark_patient_deleted(
        &self,
        s: &mut ClientSession,
        patient: PatientId,
        deleted: bool,
    ) -> Result<u64> {
        let res = self
            .coll
            .update_many(
                super::patient_deleted_filter(patient, deleted),
                super::patient_deleted_update(deleted),
            )
            .session(s)
            .await?;
        Ok(res.matched_count)
    }
}
