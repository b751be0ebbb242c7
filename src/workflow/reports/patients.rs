//! The reports over patients: by condition, country, status and age band,
//! and the treatment funnel.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;

use super::{
    add,
    table::{by_count_desc, ratio, text_or_null, Cell, Column, Table},
};
use crate::{
    domain::patient::TreatmentStatus,
    error::Result,
    repo::reports::{FunnelRows, Range, AGE_BANDS, AGE_UNKNOWN, STAGES},
    workflow::Ctx,
};

pub const BY_DISEASE_COLUMNS: [Column; 3] = [
    Column::text("disease"),
    Column::int("patients"),
    // Of the patients with any condition; null only when there are none.
    Column::decimal("share").or_null(),
];

pub async fn by_disease(ctx: &Ctx, range: Range, country: Option<&str>) -> Result<Table> {
    let counts = ctx
        .repos
        .reports
        .patients_by_disease(range, country)
        .await?;
    let total = counts.patients;
    let mut table = Table::new(&BY_DISEASE_COLUMNS);
    for r in by_count_desc(counts.conditions) {
        table.push(vec![
            Cell::Text(r.group),
            Cell::Int(r.patients),
            ratio(r.patients, total),
        ]);
    }
    Ok(table)
}

pub const BY_COUNTRY_COLUMNS: [Column; 4] = [
    Column::text("country"),
    Column::int("patients"),
    Column::int("completed"),
    Column::decimal("completion_rate").or_null(),
];

pub async fn by_country(ctx: &Ctx, range: Range, country: Option<&str>) -> Result<Table> {
    let rows = ctx
        .repos
        .reports
        .patients_by_country(range, country)
        .await?;
    let mut table = Table::new(&BY_COUNTRY_COLUMNS);
    for r in rows {
        let (n, done) = (r.patients, r.completed);
        table.push(vec![
            Cell::Text(r.country),
            Cell::Int(n),
            Cell::Int(done),
            ratio(done, n),
        ]);
    }
    Ok(table)
}

const STATUSES: [&str; 2] = ["new", "repeat"];
const TREATMENT_STATUSES: [TreatmentStatus; 5] = [
    TreatmentStatus::Inquiry,
    TreatmentStatus::Ready,
    TreatmentStatus::Coming,
    TreatmentStatus::Completed,
    TreatmentStatus::Denied,
];

pub const BY_STATUS_COLUMNS: [Column; 3] = [
    Column::text("status"),
    Column::text("treatment_status"),
    Column::int("patients"),
];

/// Every status and treatment status pair, counted or not.
pub async fn by_status(ctx: &Ctx, range: Range, country: Option<&str>) -> Result<Table> {
    let rows = ctx.repos.reports.patients_by_status(range, country).await?;
    let counts: HashMap<(String, String), i64> = rows
        .into_iter()
        .map(|r| ((r.status, r.treatment_status), r.patients))
        .collect();
    let mut table = Table::new(&BY_STATUS_COLUMNS);
    for s in STATUSES {
        for t in TREATMENT_STATUSES {
            let n = counts
                .get(&(s.to_owned(), t.as_str().to_owned()))
                .copied()
                .unwrap_or(0);
            table.push(vec![
                Cell::Text(s.into()),
                Cell::Text(t.as_str().into()),
                Cell::Int(n),
            ]);
        }
    }
    Ok(table)
}

pub const BY_AGE_COLUMNS: [Column; 3] = [
    // Null on the rows for all countries.
    Column::text("country").or_null(),
    Column::text("band"),
    Column::int("patients"),
];

/// Every band for every country (and for all countries, first), counted
/// or not; ages as of `today`.
pub async fn by_age(
    ctx: &Ctx,
    range: Range,
    country: Option<&str>,
    today: NaiveDate,
) -> Result<Table> {
    let rows = ctx
        .repos
        .reports
        .patients_by_age(range, country, today)
        .await?;
    // country -> band -> patients; "" is every country.
    let mut counts: BTreeMap<String, HashMap<String, i64>> = BTreeMap::new();
    counts.insert(String::new(), HashMap::new());
    for r in rows {
        for c in [String::new(), r.country.clone()] {
            let n = counts
                .entry(c)
                .or_default()
                .entry(r.band.clone())
                .or_default();
            *n = add(*n, r.patients, "a patient count")?;
        }
    }
    let bands: Vec<&str> = AGE_BANDS
        .iter()
        .map(|(b, _)| *b)
        .chain([AGE_UNKNOWN])
        .collect();
    let mut table = Table::new(&BY_AGE_COLUMNS);
    for (country, by_band) in &counts {
        for band in &bands {
            table.push(vec![
                text_or_null(country),
                Cell::Text((*band).into()),
                Cell::Int(by_band.get(*band).copied().unwrap_or(0)),
            ]);
        }
    }
    Ok(table)
}

type StageCounts = [i64; STAGES.len()];

/// Per country ("" is every country): how many reached each stage, and
/// how many are denied now for each reason.
type FunnelCounts = (
    BTreeMap<String, StageCounts>,
    BTreeMap<String, BTreeMap<String, i64>>,
);

fn funnel_counts(rows: FunnelRows) -> Result<FunnelCounts> {
    let mut stages: BTreeMap<String, StageCounts> = BTreeMap::new();
    stages.insert(String::new(), [0; STAGES.len()]);
    for r in &rows.stages {
        for c in [String::new(), r.country.clone()] {
            let entry = stages.entry(c).or_insert([0; STAGES.len()]);
            for (e, n) in entry.iter_mut().zip(&r.reached) {
                *e = add(*e, *n, "a funnel count")?;
            }
        }
    }
    let mut reasons: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for r in &rows.denials {
        for c in [String::new(), r.country.clone()] {
            let n = reasons
                .entry(c)
                .or_default()
                .entry(r.reason.clone())
                .or_default();
            *n = add(*n, r.patients, "a denial count")?;
        }
    }
    Ok((stages, reasons))
}

pub const FUNNEL_COLUMNS: [Column; 6] = [
    // Null on the rows for all countries.
    Column::text("country").or_null(),
    Column::text("stage"),
    // Set on the rows of denial reasons only.
    Column::text("reason").or_null(),
    Column::int("patients"),
    Column::decimal("share_of_inquiries").or_null(),
    // Null for the first stage.
    Column::decimal("share_of_previous").or_null(),
];

/// Per country (all countries first): each stage with its share of the
/// inquiries and of the stage before, then the denial reasons.
pub async fn funnel(ctx: &Ctx, range: Range, country: Option<&str>) -> Result<Table> {
    let (stages, reasons) = funnel_counts(ctx.repos.reports.funnel(range, country).await?)?;
    let denied = STAGES.len() - 1;
    let mut table = Table::new(&FUNNEL_COLUMNS);
    for (c, counts) in &stages {
        let inquiries = counts[0];
        for (i, stage) in STAGES.iter().enumerate() {
            let previous = match i {
                0 => Cell::Null,
                // Denied branches off the inquiries.
                i if i == denied => ratio(counts[i], inquiries),
                i => ratio(counts[i], counts[i - 1]),
            };
            table.push(vec![
                text_or_null(c),
                Cell::Text(stage.as_str().into()),
                Cell::Null,
                Cell::Int(counts[i]),
                ratio(counts[i], inquiries),
                previous,
            ]);
        }
        for (reason, n) in reasons.get(c).into_iter().flatten() {
            table.push(vec![
                text_or_null(c),
                Cell::Text("denied".into()),
                Cell::Text(reason.clone()),
                Cell::Int(*n),
                ratio(*n, inquiries),
                ratio(*n, counts[denied]),
            ]);
        }
    }
    Ok(table)
}
