//! The `hospitals` collection.

use mongodb::{
    bson::{doc, to_bson, Document},
    options::{FindOneAndUpdateOptions, ReturnDocument},
    ClientSession, Collection, Database,
};

use super::{generations::Source, regex_escape, PageRequest};
use crate::{
    domain::{
        hospital::{Contact, Hospital},
        HospitalId, UserId,
    },
    error::{AppError, Result},
};

#[derive(Debug, Default, Clone)]
pub struct HospitalFilter {
    pub q: Option<String>,
    pub country: Option<String>,
    pub active: Option<bool>,
}

/// Fields an update may change; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct HospitalChanges {
    pub name: Option<String>,
    pub location: Option<String>,
    pub country: Option<String>,
    pub contact: Option<Option<Contact>>,
    pub specialties: Option<Vec<String>>,
    pub commission_bps: Option<i32>,
    pub currency: Option<String>,
    pub active: Option<bool>,
}

#[derive(Clone)]
pub struct HospitalsRepo {
    coll: Collection<Hospital>,
    generations: super::generations::GenerationsRepo,
}

/// Unique per (country, lower-cased name).
const UNIQUE_FIELD: &str = "name";

impl HospitalsRepo {
    pub fn new(db: &Database) -> Self {
        HospitalsRepo {
            coll: db.collection("hospitals"),
            generations: super::generations::GenerationsRepo::new(db),
        }
    }

    pub async fn create(&self, s: &mut ClientSession, hospital: &Hospital) -> Result<()> {
        self.coll
            .insert_one(hospital)
            .session(&mut *s)
            .await
            .map_err(|e| AppError::unique_violation(e, UNIQUE_FIELD))?;
        self.generations.bump(s, Source::Hospitals).await
    }

    pub async fn find(&self, id: HospitalId) -> Result<Option<Hospital>> {
        Ok(self.coll.find_one(doc! { "_id": id }).await?)
    }

    /// Every hospital, by name (reports list them all; there are few).
    pub async fn all(&self) -> Result<Vec<Hospital>> {
        use futures::TryStreamExt;
        Ok(self
            .coll
            .find(doc! {})
            .sort(doc! { "name_lower": 1, "_id": 1 })
            .await?
            .try_collect()
            .await?)
    }

    /// Every hospital's id and name (the name cache).
    pub async fn names(&self) -> Result<Vec<(HospitalId, String)>> {
        super::id_names(&self.coll, doc! {}).await
    }

    /// The hospitals with these ids (unknown ids are left out).
    pub async fn with_ids(&self, ids: &[HospitalId]) -> Result<Vec<Hospital>> {
        use futures::TryStreamExt;
        Ok(self
            .coll
            .find(doc! { "_id": { "$in": ids.iter().map(|i| i.to_string()).collect::<Vec<_>>() } })
            .await?
            .try_collect()
            .await?)
    }

    fn filter(f: &HospitalFilter) -> Document {
        let mut filter = doc! {};
        if let Some(country) = &f.country {
            filter.insert("country", country);
        }
        if let Some(active) = f.active {
            filter.insert("active", active);
        }
        if let Some(q) = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            filter.insert(
                "name_lower",
                doc! { "$regex": regex_escape(&q.to_lowercase()) },
            );
        }
        filter
    }

    pub async fn list(
        &self,
        f: &HospitalFilter,
        page: PageRequest,
    ) -> Result<(Vec<Hospital>, u64)> {
        let filter = Self::filter(f);
        let (items, total) =
            super::paged(&self.coll, filter, doc! { "name_lower": 1, "_id": 1 }, page).await?;
        Ok((items, total))
    }

    pub async fn update(
        &self,
        s: &mut ClientSession,
        id: HospitalId,
        c: HospitalChanges,
        by: UserId,
    ) -> Result<Option<Hospital>> {
        let mut set = doc! { "updated_by": by };
        if let Some(name) = c.name {
            set.insert("name_lower", name.to_lowercase());
            set.insert("name", name);
        }
        if let Some(v) = c.location {
            set.insert("location", v);
        }
        if let Some(v) = c.country {
            set.insert("country", v);
        }
        if let Some(v) = c.contact {
            set.insert("contact", to_bson(&v).map_err(AppError::internal)?);
        }
        if let Some(v) = c.specialties {
            set.insert("specialties", v);
        }
        if let Some(v) = c.commission_bps {
            set.insert("commission_bps", v);
        }
        if let Some(v) = c.currency {
            set.insert("currency", v);
        }
        if let Some(v) = c.active {
            set.insert("active", v);
        }
        let options = FindOneAndUpdateOptions::builder()
            .return_document(ReturnDocument::After)
            .build();
        let updated = self
            .coll
            .find_one_and_update(
                doc! { "_id": id },
                doc! { "$set": set, "$currentDate": { "updated_at": true } },
            )
            .with_options(options)
            .session(&mut *s)
            .await
            .map_err(|e| AppError::unique_violation(e, UNIQUE_FIELD))?;
        if updated.is_some() {
            self.generations.bump(s, Source::Hospitals).await?;
        }
        Ok(updated)
    }

    /// Writes to the hospital inside the transaction `s` before something is
    /// linked to it: a concurrent delete of the same hospital then conflicts
    /// with this transaction, and whichever retries sees the other's outcome.
    /// The hospital as it was, if it exists.
    pub async fn hold_in(&self, s: &mut ClientSession, id: HospitalId) -> Result<Option<Hospital>> {
        Ok(self
            .coll
            .find_one_and_update(doc! { "_id": id }, doc! { "$inc": { "links": 1_i64 } })
            .session(s)
            .await?)
    }

    pub async fn delete_in(&self, s: &mut ClientSession, id: HospitalId) -> Result<bool> {
        let deleted = self
            .coll
            .delete_one(doc! { "_id": id })
            .session(&mut *s)
            .await?
            .deleted_count
            == 1;
        if deleted {
            self.generations.bump(s, Source::Hospitals).await?;
        }
        Ok(deleted)
    }
}
