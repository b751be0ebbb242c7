//! The `patients` collection. Soft-deleted patients are invisible to every
//! read here except [`PatientsRepo::find_including_deleted`].

use mongodb::{
    bson::{doc, Bson, DateTime, Document},
    ClientSession, Collection, Database,
};

use super::{generations::Source, regex_escape, PageRequest};
use crate::{
    domain::{
        patient::{Patient, PatientStatus, TreatmentStatus},
        HospitalId, PatientId, UserId,
    },
    error::Result,
};

#[derive(Debug, Default, Clone)]
pub struct PatientFilter {
    /// Name, e-mail or phone contains (see [`search_needle`]).
    pub q: Option<String>,
    pub country: Option<String>,
    /// A condition in the medical history (case-insensitive, exact).
    pub disease: Option<String>,
    pub status: Option<PatientStatus>,
    pub treatment_status: Option<TreatmentStatus>,
    pub hospital_id: Option<HospitalId>,
    pub created_by: Option<UserId>,
    pub assigned_to: Option<UserId>,
    pub created_from: Option<DateTime>,
    /// Exclusive upper bound.
    pub created_before: Option<DateTime>,
    /// Soft-deleted patients instead of live ones (the restore screen).
    pub deleted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PatientSort {
    #[default]
    CreatedDesc,
    CreatedAsc,
    UpdatedDesc,
    UpdatedAsc,
    NameAsc,
    NameDesc,
}

impl PatientSort {
    fn document(self) -> Document {
        match self {
            PatientSort::CreatedDesc => doc! { "created_at": -1, "_id": -1 },
            PatientSort::CreatedAsc => doc! { "created_at": 1, "_id": 1 },
            PatientSort::UpdatedDesc => doc! { "updated_at": -1, "_id": -1 },
            PatientSort::UpdatedAsc => doc! { "updated_at": 1, "_id": 1 },
            PatientSort::NameAsc => doc! { "name_lower": 1, "_id": 1 },
            PatientSort::NameDesc => doc! { "name_lower": -1, "_id": -1 },
        }
    }
}

#[derive(Clone)]
pub struct PatientsRepo {
    coll: Collection<Patient>,
    generations: super::generations::GenerationsRepo,
}

/// What `?q=` searches, kept on each stored patient as `search_text`: the
/// lower-cased name, the lower-cased e-mail, the phone's E.164 digits and
/// the passport number, one per line. One field, so the search is one `$regex` beside the other
/// filters (an `$or` beside other conditions is miscounted by the local
/// stand-in; README, compatibility notes). Written by every insert and
/// replace here; `migrate` fills it in for documents written before it.
pub fn search_text(p: &Patient) -> String {
    let contact = p.contact.as_ref();
    let email = contact
        .and_then(|c| c.email.as_deref())
        .unwrap_or_default()
        .to_lowercase();
    let phone = contact
        .and_then(|c| c.phone.as_deref())
        .map(phone_digits)
        .unwrap_or_default();
    let passport = p
        .passport_search
        .as_deref()
        .unwrap_or_default()
        .to_lowercase();
    format!("{}\n{email}\n{phone}\n{passport}", p.name.to_lowercase())
}

/// The digits of a phone number in its E.164 form: `+90 532 000 1122` and
/// `0090 532 000 1122` are both `905320001122`.
pub fn phone_digits(raw: &str) -> String {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    match digits.strip_prefix("00") {
        Some(rest) if !raw.trim_start().starts_with('+') => rest.to_owned(),
        _ => digits,
    }
}

/// A search term as `search_text` holds it: a phone number (only digits,
/// spaces, `+-().`, at least 4 digits) by its E.164 digits, anything else
/// lower-cased.
pub fn search_needle(q: &str) -> String {
    let phone_like = q
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c))
        && q.chars().filter(char::is_ascii_digit).count() >= 4;
    if phone_like {
        phone_digits(q)
    } else {
        q.to_lowercase()
    }
}

/// A patient's date of birth as its UTC day, `YYYY-MM-DD` (null without
/// one), kept on each stored patient as `birth_day`: the age report
/// compares it with its cut-off days as text. Deriving the day in the
/// pipeline (`$dateToString` per patient) kept the stand-in on its slow
/// path, 5x slower; comparing the dates themselves there gave wrong bands
/// (docs/mongodb-compatibility.md).
pub fn birth_day(p: &Patient) -> Bson {
    p.date_of_birth
        .map(|d| Bson::String(d.to_chrono().format("%Y-%m-%d").to_string()))
        .unwrap_or(Bson::Null)
}

/// A patient's `created_at` in milliseconds since the epoch, stored beside
/// it: the dashboard's counts of new patients are number ranges on it,
/// which reach an index on the stand-in where a date range never does.
pub const CREATED_MS: &str = "created_ms";

/// A patient's `next_follow_up` in milliseconds (null without one), stored
/// beside it for the dashboard's follow-up counts, as [`CREATED_MS`].
pub const NEXT_FOLLOW_UP_MS: &str = "next_follow_up_ms";

/// The fields kept on a stored patient for queries, derived from the
/// patient: `search_text`, `birth_day`, [`CREATED_MS`] and
/// [`NEXT_FOLLOW_UP_MS`].
pub fn derived(p: &Patient) -> Document {
    doc! {
        "search_text": search_text(p),
        "birth_day": birth_day(p),
        CREATED_MS: p.created_at.timestamp_millis(),
        NEXT_FOLLOW_UP_MS: super::millis_or_null(p.next_follow_up),
    }
}

/// The stored form of `p`: the patient and its [`derived`] fields.
pub fn stored(p: &Patient) -> Result<Document> {
    let mut d = mongodb::bson::to_document(p).map_err(crate::error::AppError::internal)?;
    d.extend(derived(p));
    Ok(d)
}

/// Not soft-deleted. Written `$eq: null` rather than `null`: the stand-in's
/// count path reads `{field: null}` as "missing" only (README notes).
fn live() -> Document {
    doc! { "deleted_at": { "$eq": Bson::Null } }
}

impl PatientsRepo {
    pub fn new(db: &Database) -> Self {
        PatientsRepo {
            coll: db.collection("patients"),
            generations: super::generations::GenerationsRepo::new(db),
        }
    }

    pub async fn insert(&self, s: &mut ClientSession, patient: &Patient) -> Result<()> {
        self.coll
            .clone_with_type::<Document>()
            .insert_one(stored(patient)?)
            .session(&mut *s)
            .await?;
        self.generations.bump(s, Source::Patients).await
    }

    pub async fn find(&self, id: PatientId) -> Result<Option<Patient>> {
        let mut filter = live();
        filter.insert("_id", id);
        Ok(self.coll.find_one(filter).await?)
    }

    pub async fn find_including_deleted(&self, id: PatientId) -> Result<Option<Patient>> {
        Ok(self.coll.find_one(doc! { "_id": id }).await?)
    }

    /// Every patient, deleted or not (the consistency check).
    pub async fn scan(&self) -> Result<mongodb::Cursor<Patient>> {
        Ok(self.coll.find(doc! {}).sort(doc! { "_id": 1 }).await?)
    }

    /// The patient (deleted or not) as the transaction sees it.
    pub async fn find_in(&self, s: &mut ClientSession, id: PatientId) -> Result<Option<Patient>> {
        Ok(self.coll.find_one(doc! { "_id": id }).session(s).await?)
    }

    /// Writes to the live patient `id` in `s` (`$inc` of `links`, a counter
    /// nothing reads and a replace resets), as
    /// [`super::hospitals::HospitalsRepo::hold_in`] does for hospitals: a
    /// transaction that adds or changes one of the patient's appointments or
    /// treatments then conflicts with a concurrent soft delete (which
    /// replaces the patient), and whichever retries sees the other's outcome.
    /// `false` when the patient is deleted or absent.
    pub async fn hold_in(&self, s: &mut ClientSession, id: PatientId) -> Result<bool> {
        let mut filter = live();
        filter.insert("_id", id);
        Ok(self
            .coll
            .update_one(filter, doc! { "$inc": { "links": 1_i64 } })
            .session(s)
            .await?
            .matched_count
            == 1)
    }

    /// [`Self::hold_in`] of the patient `id` whether deleted or not, for the
    /// consistency check's repairs; the patient as it was, if it exists.
    pub async fn touch_in(&self, s: &mut ClientSession, id: PatientId) -> Result<Option<Patient>> {
        Ok(self
            .coll
            .find_one_and_update(doc! { "_id": id }, doc! { "$inc": { "links": 1_i64 } })
            .session(s)
            .await?)
    }

    /// Replaces the stored document if it still has `expected_version`;
    /// `false` means someone else changed it first.
    pub async fn replace(
        &self,
        s: &mut ClientSession,
        patient: &Patient,
        expected_version: i64,
    ) -> Result<bool> {
        let res = self
            .coll
            .clone_with_type::<Document>()
            .replace_one(
                doc! { "_id": patient.id, "version": expected_version },
                stored(patient)?,
            )
            .session(&mut *s)
            .await?;
        if res.matched_count > 0 {
            self.generations.bump(s, Source::Patients).await?;
        }
        Ok(res.matched_count == 1)
    }

    /// The filter of a patient list. Equality is written `{$eq: v}`: the
    /// same on MongoDB, and the stand-in's `count` can use an index for it
    /// but not for the implicit form (it also looks inside arrays there).
    pub fn filter(f: &PatientFilter) -> Document {
        let mut filter = if f.deleted {
            doc! { "deleted_at": { "$ne": Bson::Null } }
        } else {
            live()
        };
        if let Some(q) = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            filter.insert(
                "search_text",
                doc! { "$regex": regex_escape(&search_needle(q)) },
            );
        }
        if let Some(v) = &f.country {
            filter.insert("country", doc! { "$eq": v });
        }
        if let Some(v) = &f.disease {
            // `$in` of one value, not plain equality: the same on MongoDB
            // (any element matches), but the local stand-in answers plain
            // equality on an indexed array field with no rows while its
            // count still finds them (README, compatibility notes).
            filter.insert(
                "medical_history_lower",
                doc! { "$in": [v.trim().to_lowercase()] },
            );
        }
        if let Some(v) = f.status {
            filter.insert("status", doc! { "$eq": v.as_str() });
        }
        if let Some(v) = f.treatment_status {
            filter.insert("treatment_status", doc! { "$eq": v.as_str() });
        }
        if let Some(v) = f.hospital_id {
            filter.insert("hospital_id", doc! { "$eq": v });
        }
        if let Some(v) = f.created_by {
            filter.insert("created_by", doc! { "$eq": v });
        }
        if let Some(v) = f.assigned_to {
            filter.insert("assigned_to", doc! { "$eq": v });
        }
        let mut created = doc! {};
        if let Some(from) = f.created_from {
            created.insert("$gte", from);
        }
        if let Some(before) = f.created_before {
            created.insert("$lt", before);
        }
        if !created.is_empty() {
            filter.insert("created_at", created);
        }
        filter
    }

    pub async fn list(
        &self,
        f: &PatientFilter,
        sort: PatientSort,
        page: PageRequest,
    ) -> Result<(Vec<Patient>, u64)> {
        let filter = Self::filter(f);
        let (items, total) = super::paged(&self.coll, filter, sort.document(), page).await?;
        Ok((items, total))
    }

    /// Live patients with a follow-up due before `due_before` (exclusive),
    /// oldest due first.
    pub async fn follow_ups(
        &self,
        due_before: DateTime,
        assigned_to: Option<UserId>,
        page: PageRequest,
    ) -> Result<(Vec<Patient>, u64)> {
        let mut filter = live();
        filter.insert("next_follow_up", doc! { "$lt": due_before });
        if let Some(u) = assigned_to {
            filter.insert("assigned_to", u);
        }
        let (items, total) = super::paged(
            &self.coll,
            filter,
            doc! { "next_follow_up": 1, "_id": 1 },
            page,
        )
        .await?;
        Ok((items, total))
    }

    /// Live patients currently assigned to `hospital`.
    pub async fn count_assigned(&self, hospital: HospitalId) -> Result<u64> {
        let mut filter = live();
        filter.insert("hospital_id", hospital);
        Ok(crate::db::count(&self.coll, filter).await?)
    }

    /// [`Self::count_assigned`] for each of `hospitals` (a list page), the
    /// counts issued together. Each is the `count` command on the
    /// `hospital_id` index, right and fast on both servers; one grouped
    /// aggregation would need `$in` beside the live-patient test, which the
    /// local stand-in evaluates in Python.
    pub async fn count_assigned_each(
        &self,
        hospitals: &[HospitalId],
    ) -> Result<Vec<(HospitalId, u64)>> {
        futures::future::try_join_all(
            hospitals
                .iter()
                .map(|h| async move { Ok((*h, self.count_assigned(*h).await?)) }),
        )
        .await
    }

    /// Whether any patient, deleted or not, is or was assigned to `hospital`.
    pub async fn references_hospital(
        &self,
        s: &mut ClientSession,
        hospital: HospitalId,
    ) -> Result<bool> {
        let filter = doc! { "$or": [
            { "hospital_id": hospital },
            { "hospital_history.hospital_id": hospital },
        ] };
        Ok(self.coll.find_one(filter).session(s).await?.is_some())
    }

    /// Writes the [`derived`] fields on patients stored before one of them
    /// existed; how many needed them (none after the first run).
    pub async fn backfill_derived(&self) -> Result<u64> {
        let stale = doc! { "$or": [
            { "search_text": { "$exists": false } },
            { "birth_day": { "$exists": false } },
            { CREATED_MS: { "$exists": false } },
            { NEXT_FOLLOW_UP_MS: { "$exists": false } },
        ] };
        super::backfill(&self.coll.clone_with_type(), stale, |stored| {
            let p: Patient = mongodb::bson::from_document(stored.clone())
                .map_err(crate::error::AppError::internal)?;
            Ok(derived(&p))
        })
        .await
    }

    /// Ids of the live patients assigned to `user`.
    pub async fn ids_assigned_to(&self, user: UserId) -> Result<Vec<PatientId>> {
        let mut filter = live();
        filter.insert("assigned_to", user);
        self.ids(filter).await
    }

    async fn ids(&self, filter: Document) -> Result<Vec<PatientId>> {
        use futures::TryStreamExt;
        let rows: Vec<Document> = self
            .coll
            .clone_with_type::<Document>()
            .find(filter)
            .projection(doc! { "_id": 1 })
            .await?
            .try_collect()
            .await?;
        Ok(rows
            .iter()
            .filter_map(|d| d.get_str("_id").ok()?.parse().ok())
            .collect())
    }

    /// How many patients (deleted ones too) were registered by someone
    /// other than `users`: the demo seed's test for real data.
    pub async fn count_registered_by_others(&self, users: &[UserId]) -> Result<u64> {
        let ids: Vec<String> = users.iter().map(|u| u.to_string()).collect();
        Ok(self
            .coll
            .count_documents(doc! { "created_by": { "$nin": ids } })
            .await?)
    }

    /// The contact e-mails of the patients (deleted ones too) registered by
    /// `users`: what the demo seed already loaded.
    pub async fn emails_registered_by(
        &self,
        users: &[UserId],
    ) -> Result<std::collections::HashSet<String>> {
        use futures::TryStreamExt;
        let ids: Vec<String> = users.iter().map(|u| u.to_string()).collect();
        let rows: Vec<Document> = self
            .coll
            .clone_with_type::<Document>()
            .find(doc! { "created_by": { "$in": ids } })
            // The whole `contact`: the stand-in answers a dotted projection
            // with a flat "contact.email" key (README notes).
            .projection(doc! { "contact": 1 })
            .await?
            .try_collect()
            .await?;
        Ok(rows
            .iter()
            .filter_map(|d| {
                Some(
                    d.get_document("contact")
                        .ok()?
                        .get_str("email")
                        .ok()?
                        .to_owned(),
                )
            })
            .collect())
    }

    /// The live (not deleted) patients among `ids`.
    pub async fn live_among(&self, ids: &[PatientId]) -> Result<Vec<Patient>> {
        use futures::TryStreamExt;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let hex: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
        let mut filter = live();
        filter.insert("_id", doc! { "$in": hex });
        Ok(self.coll.find(filter).await?.try_collect().await?)
    }

    /// The names of `ids` (one query for a page of rows).
    pub async fn names_of(
        &self,
        ids: &[PatientId],
    ) -> Result<std::collections::HashMap<PatientId, String>> {
        if ids.is_empty() {
            return Ok(Default::default());
        }
        let hex: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
        let rows = super::id_names(&self.coll, doc! { "_id": { "$in": hex } }).await?;
        Ok(rows.into_iter().collect())
    }
}
