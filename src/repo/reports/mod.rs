//! Reports and the dashboard: the aggregation pipelines (pure builders in
//! [`pipelines`] and [`dashboard`]) and [`ReportsRepo`], which runs them and
//! decodes each result into typed rows ([`rows`] and [`dashboard`]).
//!
//! Every pipeline opens with a `$match` on the period field (`created_ms`
//! for patients and treatments, `booked_ms` for the ledger: the time in
//! milliseconds, see [`in_millis`]) so both servers can use that index.
//! Groups are on one string key (`a|b`) because the stand-in groups on
//! single expressions only; the row readers here split the key.
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

use super::add_millis_range;
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

/// Every period of the reports and the dashboard is a number range on a
/// time stored beside its date in milliseconds since the epoch: the
/// patients' and the treatments' `created_ms`, the ledger's
/// [`BOOKED_MS`](crate::repo::treatments::BOOKED_MS). The stand-in answers
/// a number range in SQL from its index, but evaluates a date range in
/// Python; with a period, the patient reports went from 44-320 ms to
/// 130-860 ms over 10,000 patients on the date (docs/benchmarks.md).
/// MongoDB uses an index for either.
fn in_millis(field: &str, range: Range) -> Document {
    let mut m = doc! {};
    add_millis_range(&mut m, field, range.from, range.before);
    m
}

/// The ledger entries booked in `range`.
fn booked_in(range: Range) -> Document {
    in_millis(crate::repo::treatments::BOOKED_MS, range)
}

fn booked_match(range: Range) -> Document {
    doc! { "$match": booked_in(range) }
}

/// The treatments recorded in `range`.
fn recorded_match(range: Range) -> Document {
    doc! { "$match": in_millis(crate::repo::treatments::CREATED_MS, range) }
}

/// Live (not soft-deleted) documents whose `field` (in ms) is in
/// `[from, before)`.
fn live_in(field: &str, from: Option<DateTime>, before: Option<DateTime>) -> Document {
    let mut m = doc! { "deleted_at": { "$eq": Bson::Null } };
    add_millis_range(&mut m, field, from, before);
    m
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
