//! The `quotes` collection, and `quote_bookings`: one document per patient
//! and treatment type holding the quote whose treatment is booked.
//!
//! Accepting a quote claims its booking with one conditional upsert on a
//! fixed `_id`, so two accepts of two quotes for the same treatment cannot
//! both succeed on either server: the second finds the booking taken (or
//! meets the duplicate `_id` of the first's insert) and answers 409. The
//! booking is released when its treatment is completed or cancelled, so a
//! returning patient can book the same treatment again.

use futures::TryStreamExt;
use mongodb::{
    bson::{doc, Bson, Document},
    ClientSession, Collection, Database,
};

use super::PageRequest;
use crate::{
    domain::{
        quote::{Quote, QuoteStatus},
        PatientId, QuoteId, TreatmentId,
    },
    error::{AppError, Result},
};

#[derive(Clone)]
pub struct QuotesRepo {
    coll: Collection<Quote>,
    bookings: Collection<Document>,
}

/// The booking `_id` of a patient's treatment type.
pub fn booking_key(patient: PatientId, treatment_key: &str) -> String {
    format!("{patient}:{treatment_key}")
}

impl QuotesRepo {
    pub fn new(db: &Database) -> Self {
        QuotesRepo {
            coll: db.collection("quotes"),
            bookings: db.collection("quote_bookings"),
        }
    }

    pub async fn insert(&self, s: &mut ClientSession, q: &Quote) -> Result<()> {
        self.coll.insert_one(q).session(s).await?;
        Ok(())
    }

    pub async fn find(&self, id: QuoteId) -> Result<Option<Quote>> {
        Ok(self.coll.find_one(doc! { "_id": id }).await?)
    }

    pub async fn find_in(&self, s: &mut ClientSession, id: QuoteId) -> Result<Option<Quote>> {
        Ok(self.coll.find_one(doc! { "_id": id }).session(s).await?)
    }

    /// Replaces the quote if it is still at `expected_version`.
    pub async fn replace(
        &self,
        s: &mut ClientSession,
        q: &Quote,
        expected_version: i64,
    ) -> Result<bool> {
        let res = self
            .coll
            .replace_one(doc! { "_id": q.id, "version": expected_version }, q)
            .session(s)
            .await?;
        Ok(res.matched_count == 1)
    }

    /// A patient's quotes in comparison order: priced offers first, by
    /// currency then amount, then those waiting for a price, then the
    /// declined; oldest first within a price.
    pub async fn for_patient(
        &self,
        patient: PatientId,
        page: PageRequest,
    ) -> Result<(Vec<Quote>, u64)> {
        super::paged(
            &self.coll,
            doc! { "patient_id": patient },
            doc! {
                "rank": 1, "amount.currency": 1, "amount.amount_minor": 1,
                "created_at": 1, "_id": 1,
            },
            page,
        )
        .await
    }

    /// The patient's other open quotes for `treatment_key`, in `s`.
    pub async fn open_siblings_in(&self, s: &mut ClientSession, q: &Quote) -> Result<Vec<Quote>> {
        let open: Vec<&str> = [QuoteStatus::Requested, QuoteStatus::Received]
            .iter()
            .map(|st| st.as_str())
            .collect();
        let filter = doc! {
            "patient_id": q.patient_id,
            "treatment_key": &q.treatment_key,
            "status": { "$in": open },
            "_id": { "$ne": q.id },
        };
        let mut cursor = self
            .coll
            .find(filter)
            .sort(doc! { "_id": 1 })
            .session(&mut *s)
            .await?;
        Ok(cursor.stream(s).try_collect().await?)
    }

    /// Claims the booking of `key` for `quote`; `false` when another quote
    /// holds it.
    pub async fn claim_booking(
        &self,
        s: &mut ClientSession,
        key: &str,
        quote: QuoteId,
        treatment: TreatmentId,
    ) -> Result<bool> {
        let res = self
            .bookings
            .update_one(
                doc! { "_id": key, "quote_id": Bson::Null },
                doc! { "$set": { "quote_id": quote, "treatment_id": treatment } },
            )
            .upsert(true)
            .session(s)
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if crate::db::is_duplicate_key(&e) => Ok(false),
            Err(e) => Err(AppError::from(e)),
        }
    }

    /// Releases the booking held by `treatment` (completed or cancelled),
    /// if any.
    pub async fn release_booking(
        &self,
        s: &mut ClientSession,
        treatment: TreatmentId,
    ) -> Result<()> {
        self.bookings
            .update_many(
                doc! { "treatment_id": treatment },
                doc! { "$set": { "quote_id": Bson::Null, "treatment_id": Bson::Null } },
            )
            .session(s)
            .await?;
        Ok(())
    }

    /// Whether any quote asks `hospital` (deleting it waits for none).
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
}
