//! The reports over treatments and the earnings ledger: the zero-filled
//! earnings series, hospital performance and treatments by type.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;

use super::{
    add,
    calendar::{period_starts, Granularity},
    table::{Cell, Column, Table},
};
use crate::{
    domain::{dates::bson_to_date, hospital::Hospital, HospitalId},
    error::Result,
    repo::reports::{HospitalEarningsRow, HospitalPatientsRow, HospitalTreatmentsRow, Range},
    workflow::Ctx,
};

/// The same columns whatever the granularity: `period_start` is the first
/// day of the week, month or year.
pub const EARNINGS_COLUMNS: [Column; 4] = [
    Column::date("period_start"),
    Column::text("currency"),
    Column::money("amount_minor", "amount"),
    Column::int("treatments"),
];

/// Net earnings per period and currency. Every period from the start of
/// the range (or of the data) to its end has a row per currency seen, so a
/// chart has no gaps.
pub async fn earnings(ctx: &Ctx, range: Range, g: Granularity) -> Result<Table> {
    let rows = ctx.repos.reports.earnings(range, g.into()).await?;
    let mut found: HashMap<(NaiveDate, String), (i64, i64)> = HashMap::new();
    let mut currencies = BTreeSet::new();
    for row in rows {
        currencies.insert(row.currency.clone());
        found.insert(
            (row.period_start, row.currency),
            (row.amount_minor, row.treatments),
        );
    }
    let mut table = Table::new(&EARNINGS_COLUMNS);
    let data_days = found.keys().map(|(d, _)| *d);
    let first = range
        .from
        .map(bson_to_date)
        .or_else(|| data_days.clone().min());
    // The last instant before the exclusive end; `None` only at the very
    // start of chrono's calendar, where there is nothing before it.
    let last = match range.before {
        Some(b) => b
            .to_chrono()
            .checked_sub_signed(chrono::Duration::milliseconds(1))
            .map(|d| d.date_naive()),
        None => data_days.max(),
    };
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(table);
    };
    if currencies.is_empty() {
        return Ok(table);
    }
    for day in period_starts(first, last, g)? {
        for currency in &currencies {
            let (amount, treatments) = found
                .get(&(day, currency.clone()))
                .copied()
                .unwrap_or((0, 0));
            table.push(vec![
                Cell::Date(day),
                Cell::Text(currency.clone()),
                Cell::Money(amount, currency.clone()),
                Cell::Int(treatments),
            ]);
        }
    }
    Ok(table)
}

#[derive(Default)]
struct HospitalFigures {
    patients: i64,
    hours_to_complete: Option<f64>,
    by_status: HashMap<String, i64>,
    /// currency -> (revenue, earnings)
    money: BTreeMap<String, (i64, i64)>,
}

pub const HOSPITAL_PERFORMANCE_COLUMNS: [Column; 12] = [
    Column::text("hospital_id"),
    Column::text("hospital"),
    Column::text("country"),
    Column::int("patients"),
    // Null while none of its patients has completed.
    Column::decimal("avg_days_to_complete").or_null(),
    Column::int("treatments_planned"),
    Column::int("treatments_in_progress"),
    Column::int("treatments_completed"),
    Column::int("treatments_cancelled"),
    // The money three are null on a hospital's one row with no money.
    Column::text("currency").or_null(),
    Column::money("revenue_minor", "revenue").or_null(),
    Column::money("earnings_minor", "earnings").or_null(),
];

/// Every hospital, one row per currency it has money in (or one row with
/// no money).
pub async fn hospital_performance(ctx: &Ctx, range: Range) -> Result<Table> {
    let reports = &ctx.repos.reports;
    let (patients, treatments, ledger, hospitals) = tokio::try_join!(
        reports.hospital_patients(range),
        reports.hospital_treatments(range),
        reports.hospital_earnings(range),
        ctx.repos.hospitals.all(),
    )?;
    let figures = hospital_figures(patients, treatments, ledger)?;
    let mut table = Table::new(&HOSPITAL_PERFORMANCE_COLUMNS);
    let empty = HospitalFigures::default();
    for h in &hospitals {
        push_hospital(&mut table, h, figures.get(&h.id).unwrap_or(&empty));
    }
    Ok(table)
}

/// The three queries' rows gathered per hospital. Rows for no hospital
/// (patients not yet assigned) are left out: the report lists hospitals.
fn hospital_figures(
    patients: Vec<HospitalPatientsRow>,
    treatments: Vec<HospitalTreatmentsRow>,
    ledger: Vec<HospitalEarningsRow>,
) -> Result<HashMap<HospitalId, HospitalFigures>> {
    let mut figures: HashMap<HospitalId, HospitalFigures> = HashMap::new();
    for r in patients {
        let Some(id) = r.hospital_id else { continue };
        let f = figures.entry(id).or_default();
        f.patients = r.patients;
        let completed = r.completed;
        f.hours_to_complete = r
            .hours_to_complete
            .filter(|_| completed > 0)
            .map(|h| h / completed as f64);
    }
    for r in treatments {
        let Some(id) = r.hospital_id else { continue };
        let f = figures.entry(id).or_default();
        let count = f.by_status.entry(r.status.clone()).or_default();
        *count = add(*count, r.treatments, "a treatment count")?;
        let money = f.money.entry(r.currency).or_default();
        if r.status == "completed" {
            money.0 = add(money.0, r.cost_minor, "a hospital's revenue")?;
        }
    }
    for r in ledger {
        let Some(id) = r.hospital_id else { continue };
        let f = figures.entry(id).or_default();
        let money = f.money.entry(r.currency).or_default();
        money.1 = add(money.1, r.amount_minor, "a hospital's earnings")?;
    }
    Ok(figures)
}

fn push_hospital(table: &mut Table, h: &Hospital, f: &HospitalFigures) {
    let status = |s: &str| Cell::Int(f.by_status.get(s).copied().unwrap_or(0));
    let head = vec![
        Cell::Text(h.id.to_string()),
        Cell::Text(h.name.clone()),
        Cell::Text(h.country.clone()),
        Cell::Int(f.patients),
        f.hours_to_complete
            .map(|h| Cell::Decimal((h / 24.0 * 10.0).round() / 10.0))
            .unwrap_or(Cell::Null),
        status("planned"),
        status("in_progress"),
        status("completed"),
        status("cancelled"),
    ];
    if f.money.is_empty() {
        let mut row = head.clone();
        row.extend([Cell::Null, Cell::Null, Cell::Null]);
        table.push(row);
    }
    for (currency, (revenue, earned)) in &f.money {
        let mut row = head.clone();
        row.extend([
            Cell::Text(currency.clone()),
            Cell::Money(*revenue, currency.clone()),
            Cell::Money(*earned, currency.clone()),
        ]);
        table.push(row);
    }
}

pub const TREATMENTS_BY_TYPE_COLUMNS: [Column; 7] = [
    Column::text("treatment_type"),
    Column::text("currency"),
    Column::int("treatments"),
    Column::int("completed"),
    Column::int("cancelled"),
    Column::money("cost_minor", "cost"),
    Column::money("earnings_minor", "earnings"),
];

pub async fn treatments_by_type(ctx: &Ctx, range: Range) -> Result<Table> {
    let rows = ctx.repos.reports.treatments_by_type(range).await?;
    let mut table = Table::new(&TREATMENTS_BY_TYPE_COLUMNS);
    for r in rows {
        table.push(vec![
            Cell::Text(r.treatment_type),
            Cell::Text(r.currency.clone()),
            Cell::Int(r.treatments),
            Cell::Int(r.completed),
            Cell::Int(r.cancelled),
            Cell::Money(r.cost_minor, r.currency.clone()),
            Cell::Money(r.earnings_minor, r.currency),
        ]);
    }
    Ok(table)
}
