//! All MongoDB access: one repository per collection. Handlers never build
//! BSON filters; they call these.

pub mod appointments;
pub mod audit;
pub mod avatars;
pub mod documents;
pub mod generations;
pub mod guards;
pub mod history;
pub mod hospitals;
pub mod idempotency;
#[cfg(test)]
mod index_coverage;
pub mod patients;
pub mod permissions;
pub mod quotes;
pub mod refresh_tokens;
pub mod reports;
pub mod travel;
pub mod treatments;
pub mod users;

use mongodb::Database;

/// A date as the milliseconds stored beside it for queries; null without
/// one.
pub fn millis_or_null(date: Option<mongodb::bson::DateTime>) -> mongodb::bson::Bson {
    date.map_or(mongodb::bson::Bson::Null, |d| {
        mongodb::bson::Bson::Int64(d.timestamp_millis())
    })
}

/// Adds `from <= field < before` to `filter` on a field that holds a date
/// as milliseconds since the epoch (such as the ledger's `booked_ms`): one
/// plain range, which the stand-in runs in SQL from the field's index and
/// MongoDB from its index. Dates themselves never reach an index on the
/// stand-in (docs/mongodb-compatibility.md), so no query ranges on a
/// date: every period has its milliseconds stored beside the date
/// ([`millis_or_null`]).
pub fn add_millis_range(
    filter: &mut mongodb::bson::Document,
    field: &str,
    from: Option<mongodb::bson::DateTime>,
    before: Option<mongodb::bson::DateTime>,
) {
    let mut bounds = mongodb::bson::Document::new();
    if let Some(from) = from {
        bounds.insert("$gte", from.timestamp_millis());
    }
    if let Some(before) = before {
        bounds.insert("$lt", before.timestamp_millis());
    }
    if !bounds.is_empty() {
        filter.insert(field, bounds);
    }
}

/// `(_id, name)` of the documents matching `filter` in `coll`, with ids
/// parsed as `Id` (one projection query; documents that do not parse are
/// left out).
pub async fn id_names<T, Id>(
    coll: &mongodb::Collection<T>,
    filter: mongodb::bson::Document,
) -> crate::error::Result<Vec<(Id, String)>>
where
    T: Send + Sync,
    Id: std::str::FromStr,
{
    use futures::TryStreamExt;
    use mongodb::bson::{doc, Document};
    let rows: Vec<Document> = coll
        .clone_with_type::<Document>()
        .find(filter)
        .projection(doc! { "_id": 1, "name": 1 })
        .await?
        .try_collect()
        .await?;
    Ok(rows
        .iter()
        .filter_map(|d| {
            let id = d.get_str("_id").ok()?.parse().ok()?;
            Some((id, d.get_str("name").ok()?.to_owned()))
        })
        .collect())
}

/// Set to `true` on a deleted patient's appointments and treatments.
pub const PATIENT_DELETED: &str = "patient_deleted";

/// `patient`'s records whose mark [`patient_deleted_update`] would change,
/// so the update's matched count is what it changed and a record that
/// already agrees is not rewritten. Marking takes the records the lists
/// across patients show ([`patient_scope`]'s `$eq: null`; not `$ne: true`,
/// which the stand-in's update filters do not match on a missing field:
/// docs/mongodb-compatibility.md). Clearing takes any record with the
/// field, whatever it holds (`false` from an older build, `1` from data
/// the stand-in wrote), the same test as the doctor's, so a repair always
/// removes what the check found.
pub fn patient_deleted_filter(
    patient: crate::domain::PatientId,
    deleted: bool,
) -> mongodb::bson::Document {
    let mut filter = mongodb::bson::doc! { "patient_id": patient };
    if deleted {
        patient_scope(&mut filter, None);
    } else {
        filter.insert(PATIENT_DELETED, any_mark());
    }
    filter
}

/// A record holding the mark, whatever its value: the doctor's stale-mark
/// test and what a restore clears. `$exists`, not `$ne: null`: a stand-in
/// `find` with `$ne: null` also matches the documents that lack the field
/// (docs/mongodb-compatibility.md).
fn any_mark() -> mongodb::bson::Document {
    mongodb::bson::doc! { "$exists": true }
}

/// The update that marks a patient's records as a deleted patient's, or
/// clears the mark on a restore: the field is `true` or absent, never
/// `false`, so [`patient_scope`] can match its absence.
pub fn patient_deleted_update(deleted: bool) -> mongodb::bson::Document {
    use mongodb::bson::doc;
    if deleted {
        doc! { "$set": { PATIENT_DELETED: true } }
    } else {
        doc! { "$unset": { PATIENT_DELETED: "" } }
    }
}

/// Limits `filter` (appointments or treatments) to live patients' records
/// and, when given, to `only` these patients. A record of a deleted
/// patient holds `patient_deleted: true` ([`patient_deleted_update`]); any
/// other lacks the field. Written `$eq: null` (absent): `$ne: true` means
/// the same on MongoDB, but the stand-in's count leaves out the documents
/// that lack the field, and `$in: [false, null]` has it fetch and count
/// every match in Python, 5x slower (docs/mongodb-compatibility.md).
pub fn patient_scope(
    filter: &mut mongodb::bson::Document,
    only: Option<&[crate::domain::PatientId]>,
) {
    use mongodb::bson::doc;
    filter.insert(PATIENT_DELETED, doc! { "$eq": mongodb::bson::Bson::Null });
    if let Some(only) = only {
        let hex: Vec<String> = only.iter().map(|i| i.to_string()).collect();
        filter.insert("patient_id", doc! { "$in": hex });
    }
}

/// Where the deletion marks of `coll` (appointments or treatments) disagree
/// with the patients, for the consistency check: the patients in `deleted`
/// with a record lacking the mark (it shows in the lists across patients),
/// and the patients not in `deleted` with a marked record (it is hidden
/// from them).
pub async fn mark_disagreements(
    coll: &mongodb::Collection<mongodb::bson::Document>,
    deleted: &std::collections::HashSet<crate::domain::PatientId>,
) -> crate::error::Result<(
    std::collections::BTreeSet<crate::domain::PatientId>,
    std::collections::BTreeSet<crate::domain::PatientId>,
)> {
    use mongodb::bson::doc;
    let mut unmarked = std::collections::BTreeSet::new();
    if !deleted.is_empty() {
        let ids: Vec<_> = deleted.iter().copied().collect();
        let mut filter = doc! {};
        patient_scope(&mut filter, Some(&ids));
        unmarked = patients_of(coll, filter).await?;
    }
    let marked = patients_of(coll, doc! { PATIENT_DELETED: any_mark() })
        .await?
        .into_iter()
        .filter(|p| !deleted.contains(p))
        .collect();
    Ok((unmarked, marked))
}

/// The patients of the records of `coll` matching `filter`.
async fn patients_of(
    coll: &mongodb::Collection<mongodb::bson::Document>,
    filter: mongodb::bson::Document,
) -> crate::error::Result<std::collections::BTreeSet<crate::domain::PatientId>> {
    use futures::TryStreamExt;
    let mut cursor = coll
        .find(filter)
        .projection(mongodb::bson::doc! { "patient_id": 1 })
        .await?;
    let mut out = std::collections::BTreeSet::new();
    while let Some(d) = cursor.try_next().await? {
        let id = d
            .get_str("patient_id")
            .map_err(crate::error::AppError::internal)?
            .parse()
            .map_err(|_| {
                crate::error::AppError::internal("a record with a malformed patient_id")
            })?;
        out.insert(id);
    }
    Ok(out)
}

/// Largest magnitude a double holds every whole number up to (2^53).
const EXACT_IN_F64: f64 = 9_007_199_254_740_992.0;

/// A money total (minor units) from an aggregation result, exactly or not
/// at all. MongoDB's `$sum` over `Int64` values that overflows does not
/// fail: it goes on in a double, so a total past `i64` comes back as a
/// `Double` near or above 2^63, and some servers return small integer sums
/// as doubles too. A double is taken only when it is a whole number below
/// 2^53 (where every whole number is exact); anything else is an error
/// rather than a rounded or saturated figure. Absent or null is nothing
/// summed, 0.
pub fn read_minor(d: &mongodb::bson::Document, key: &str) -> crate::error::Result<i64> {
    use mongodb::bson::Bson;
    let bad = |what: String| crate::error::AppError::internal(format!("{key}: {what}"));
    match d.get(key) {
        None | Some(Bson::Null) => Ok(0),
        Some(Bson::Int32(v)) => Ok(i64::from(*v)),
        Some(Bson::Int64(v)) => Ok(*v),
        Some(Bson::Double(v)) if v.fract() == 0.0 && v.abs() <= EXACT_IN_F64 => {
            // Whole and within 2^53: the conversion is exact.
            Ok(*v as i64)
        }
        Some(Bson::Double(v)) => Err(bad(format!(
            "the sum {v} is not an exact 64-bit number of minor units \
             (an overflowing $sum comes back as a double)"
        ))),
        Some(other) => Err(bad(format!(
            "expected a number of minor units, got {:?}",
            other.element_type()
        ))),
    }
}

/// Offset pagination as the list endpoints use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u64,
    pub per_page: u64,
}

impl PageRequest {
    pub fn skip(&self) -> u64 {
        (self.page.saturating_sub(1)).saturating_mul(self.per_page)
    }
}

/// One page of `filter`'s matches in `sort` order, and the total count.
pub async fn paged<T>(
    coll: &mongodb::Collection<T>,
    filter: mongodb::bson::Document,
    sort: mongodb::bson::Document,
    page: PageRequest,
) -> crate::error::Result<(Vec<T>, u64)>
where
    T: serde::de::DeserializeOwned + Send + Sync + Unpin,
{
    use futures::TryStreamExt;
    let items: Vec<T> = coll
        .find(filter.clone())
        .sort(sort)
        .skip(page.skip())
        .limit(i64::try_from(page.per_page).unwrap_or(100))
        .await?
        .try_collect()
        .await?;
    let total = match page_total(page, items.len()) {
        Some(total) => total,
        None => crate::db::count(coll, filter).await?,
    };
    Ok((items, total))
}

/// The total a page already tells: a page with room left over is the last
/// one, so the matches are the ones skipped plus the ones on it. `None`
/// when it is full, or empty past the first page (the total is then
/// counted). Saves the count of a search whose matches fit on one page,
/// which neither server can take from an index.
pub fn page_total(page: PageRequest, on_page: usize) -> Option<u64> {
    let on_page = u64::try_from(on_page).ok()?;
    let room_left = on_page < page.per_page;
    (room_left && (on_page > 0 || page.skip() == 0)).then(|| page.skip() + on_page)
}

/// Sets the fields `fields` derives from each stored document on the
/// documents of `coll` matching `stale` (those written before one of the
/// fields existed); how many needed them (none after the first run). Each
/// document is set on its own: a second run redoes only what a first one
/// left, and `fields` must make a document stop matching `stale`. A
/// document that already holds every field as derived is left alone and
/// not counted: the stand-in's `find` matches a stored null under
/// `$exists: false` (docs/mongodb-compatibility.md), so `stale` may
/// return documents that need nothing.
pub async fn backfill(
    coll: &mongodb::Collection<mongodb::bson::Document>,
    stale: mongodb::bson::Document,
    fields: impl Fn(&mongodb::bson::Document) -> crate::error::Result<mongodb::bson::Document>,
) -> crate::error::Result<u64> {
    use futures::TryStreamExt;
    let stale: Vec<mongodb::bson::Document> = coll.find(stale).await?.try_collect().await?;
    let mut set = 0;
    for stored in &stale {
        let derived = fields(stored)?;
        if derived.iter().all(|(k, v)| stored.get(k) == Some(v)) {
            continue;
        }
        let id = stored
            .get("_id")
            .cloned()
            .ok_or_else(|| crate::error::AppError::internal("a stored document without _id"))?;
        coll.update_one(
            mongodb::bson::doc! { "_id": id },
            mongodb::bson::doc! { "$set": derived },
        )
        .await?;
        set += 1;
    }
    Ok(set)
}

/// Escapes `text` for use inside a `$regex` so user input matches literally.
pub fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~/".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The repositories, built once per database.
#[derive(Clone)]
pub struct Repos {
    pub users: users::UsersRepo,
    pub refresh_tokens: refresh_tokens::RefreshTokensRepo,
    pub permissions: permissions::PermissionsRepo,
    pub audit: audit::AuditRepo,
    pub avatars: avatars::AvatarsRepo,
    pub hospitals: hospitals::HospitalsRepo,
    pub patients: patients::PatientsRepo,
    pub history: history::HistoryRepo,
    pub appointments: appointments::AppointmentsRepo,
    pub treatments: treatments::TreatmentsRepo,
    pub quotes: quotes::QuotesRepo,
    pub travel: travel::TravelRepo,
    pub documents: documents::DocumentsRepo,
    pub reports: reports::ReportsRepo,
    pub idempotency: idempotency::IdempotencyRepo,
    pub guards: guards::GuardsRepo,
    pub generations: generations::GenerationsRepo,
}

impl Repos {
    pub fn new(db: &Database) -> Self {
        Repos {
            users: users::UsersRepo::new(db),
            refresh_tokens: refresh_tokens::RefreshTokensRepo::new(db),
            permissions: permissions::PermissionsRepo::new(db),
            audit: audit::AuditRepo::new(db),
            avatars: avatars::AvatarsRepo::new(db),
            hospitals: hospitals::HospitalsRepo::new(db),
            patients: patients::PatientsRepo::new(db),
            history: history::HistoryRepo::new(db),
            appointments: appointments::AppointmentsRepo::new(db),
            treatments: treatments::TreatmentsRepo::new(db),
            quotes: quotes::QuotesRepo::new(db),
            travel: travel::TravelRepo::new(db),
            documents: documents::DocumentsRepo::new(db),
            reports: reports::ReportsRepo::new(db),
            idempotency: idempotency::IdempotencyRepo::new(db),
            guards: guards::GuardsRepo::new(db),
            generations: generations::GenerationsRepo::new(db),
        }
    }
}

#[cfg(test)]
mod tests {
    use mongodb::bson::{doc, Bson};
    use proptest::prelude::*;

    use super::{page_total, read_minor, PageRequest};

    #[test]
    fn a_page_with_room_left_tells_the_total() {
        let page = |page, per_page| PageRequest { page, per_page };
        assert_eq!(page_total(page(1, 20), 0), Some(0));
        assert_eq!(page_total(page(1, 20), 7), Some(7));
        assert_eq!(page_total(page(3, 20), 5), Some(45));
        // A full page may have more after it; an empty one past the first
        // page says nothing of how many came before.
        assert_eq!(page_total(page(1, 20), 20), None);
        assert_eq!(page_total(page(4, 20), 0), None);
        assert_eq!(page_total(page(1, 0), 0), None);
    }

    #[test]
    fn money_totals_read_exactly_or_fail() {
        let d = doc! {
            "i32": 7, "i64": i64::MIN, "whole": 125_000.0, "null": Bson::Null,
            // What MongoDB returns for a $sum of two i64::MAX.
            "overflowed": 2.0 * i64::MAX as f64,
            "cents": 0.5, "nan": f64::NAN, "inf": f64::NEG_INFINITY, "text": "5",
        };
        assert_eq!(read_minor(&d, "i32").ok(), Some(7));
        assert_eq!(read_minor(&d, "i64").ok(), Some(i64::MIN));
        assert_eq!(read_minor(&d, "whole").ok(), Some(125_000));
        assert_eq!(read_minor(&d, "null").ok(), Some(0));
        assert_eq!(read_minor(&d, "absent").ok(), Some(0));
        for bad in ["overflowed", "cents", "nan", "inf", "text"] {
            assert!(read_minor(&d, bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn any_double_reads_exactly_or_fails(v in any::<f64>()) {
            if let Ok(n) = read_minor(&doc! { "x": v }, "x") {
                prop_assert_eq!(n as f64, v);
                prop_assert!(n.unsigned_abs() <= 1 << 53);
            }
        }

        #[test]
        fn any_integer_reads_as_itself(n in any::<i64>(), m in any::<i32>()) {
            prop_assert_eq!(read_minor(&doc! { "x": n }, "x").ok(), Some(n));
            prop_assert_eq!(read_minor(&doc! { "x": m }, "x").ok(), Some(i64::from(m)));
        }
    }

    #[test]
    fn regex_metacharacters_are_escaped() {
        assert_eq!(super::regex_escape("a.b*(c)"), r"a\.b\*\(c\)");
        assert_eq!(super::regex_escape("plain"), "plain");
    }
}
