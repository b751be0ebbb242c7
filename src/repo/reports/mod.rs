//! Reports and the dashboard: the aggregation pipelines (pure builders in
//! [`pipelines`] and [`dashboard`]) and [`ReportsRepo`], which runs them and
//! decodes each result into typed rows ([`rows`] and [`dashboard`]).
//!
//! Every pipeline opens with a `$match` on the period field (`created_at`
//! for patients and treatments, `booked_ms` for the ledger) so MongoDB can
//! use that index. Groups are on one string key (`a|b`) because the stand-in
//! groups on single expressions only; the row readers here split the key.
//! Date tests inside expressions are made on `$dateToString` strings, which
//! compare the same on both servers.

pub mod dashboard;
pub mod pipelines;
pub mod rows;

use futures::TryStreamExt;
use mongodb::{
    bson::{doc, Bson, DateTime, Document},
    Collection, Database,
};

use super::add_date_range;
use crate::error::Result;

pub use dashboard::{Clock, PatientCounts};
pub use pipelines::{AGE_BANDS, AGE_UNKNOWN, FUNNEL, STAGES};
pub use rows::{
    AgeRow, CountryRow, DenialRow, DiseaseCounts, EarningsRow, FunnelRows, FunnelStageRow,
    HospitalEarningsRow, HospitalPatientsRow, HospitalTreatmentsRow, PatientCount, StatusRow,
    TreatmentTypeRow,
};

/// A half-open period `[from, before)`; either end may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Range {
    pub from: Option<DateTime>,
    pub before: Option<DateTime>,
}

/// The ledger entries booked in `range`, on
/// [`BOOKED_MS`](crate::repo::treatments::BOOKED_MS): a plain number range,
/// which the stand-in answers in SQL from its index, 3-4x faster than the
/// `$and` date clauses of [`range_match`].
fn booked_in(range: Range) -> Document {
    let mut m = doc! {};
    super::add_millis_range(
        &mut m,
        crate::repo::treatments::BOOKED_MS,
        range.from,
        range.before,
    );
    m
}

fn booked_match(range: Range) -> Document {
    doc! { "$match": booked_in(range) }
}

fn range_match(field: &str, range: Range) -> Document {
    let mut m = doc! {};
    add_date_range(&mut m, field, range.from, range.before);
    doc! { "$match": m }
}

/// Runs the report pipelines against their collections.
#[derive(Clone)]
pub struct ReportsRepo {
    patients: Collection<Document>,
    treatments: Collection<Document>,
    ledger: Collection<Document>,
}

impl ReportsRepo {
    pub fn new(db: &Database) -> Self {
        ReportsRepo {
            patients: db.collection("patients"),
            treatments: db.collection("treatments"),
            ledger: db.collection("earnings"),
        }
    }

    async fn run(coll: &Collection<Document>, pipeline: Vec<Document>) -> Result<Vec<Document>> {
        Ok(coll.aggregate(pipeline).await?.try_collect().await?)
    }
}

// ---- reading result documents ----------------------------------------------
//
// Lenient on purpose: the stand-in and MongoDB return a `$sum` as any
// numeric BSON type, and an absent figure means nothing was counted.

pub(crate) fn int(d: &Document, key: &str) -> i64 {
    match d.get(key) {
        Some(Bson::Int32(v)) => i64::from(*v),
        Some(Bson::Int64(v)) => *v,
        Some(Bson::Double(v)) => v.round() as i64,
        _ => 0,
    }
}

fn float(d: &Document, key: &str) -> Option<f64> {
    match d.get(key) {
        Some(Bson::Int32(v)) => Some(f64::from(*v)),
        Some(Bson::Int64(v)) => Some(*v as f64),
        Some(Bson::Double(v)) => Some(*v),
        _ => None,
    }
}

/// The group key, as a string (the stand-in may return `_id` as a string
/// where MongoDB returns null for an empty group).
fn id_str(d: &Document) -> String {
    match d.get("_id") {
        Some(Bson::String(s)) => s.clone(),
        _ => String::new(),
    }
}

/// Splits a `a|b|c` key into `n` parts; the last part keeps any `|`.
fn parts(key: &str, n: usize) -> Vec<String> {
    let mut v: Vec<String> = key.splitn(n, '|').map(str::to_owned).collect();
    v.resize(n, String::new());
    v
}

#[cfg(test)]
mod testing {
    use mongodb::bson::{DateTime, Document};

    use super::Range;

    pub fn range() -> Range {
        Range {
            from: Some(DateTime::from_millis(1_000)),
            before: Some(DateTime::from_millis(2_000)),
        }
    }

    pub fn stage_names(p: &[Document]) -> Vec<String> {
        p.iter()
            .map(|s| s.keys().next().cloned().unwrap_or_default())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_into_parts_and_results_read_leniently() {
        assert_eq!(parts("DE|65+", 2), ["DE", "65+"]);
        assert_eq!(parts("a|b|c", 2), ["a", "b|c"]);
        assert_eq!(parts("", 3), ["", "", ""]);
        let d = doc! { "_id": Bson::Null, "a": 2.6, "b": 3_i64 };
        assert_eq!((int(&d, "a"), int(&d, "b"), int(&d, "c")), (3, 3, 0));
        assert_eq!(float(&d, "c"), None);
        assert_eq!(id_str(&d), "");
    }
}
