//! The dashboard and the period reports, as JSON or streamed CSV.
//!
//! Each report is computed by one or more aggregation pipelines
//! (`repo::reports`), then laid out here as a flat [`Table`]: the JSON form
//! is `{report, from, to, generated_at, columns, rows}` and the CSV form is
//! the same table, money in major units beside its currency.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::{
    body::Body,
    extract::State,
    http::{header, HeaderMap, HeaderValue},
    response::{IntoResponse, Response},
    Json,
};
use chrono::{DateTime, Datelike, Days, Months, NaiveDate, Utc};
use mongodb::bson::DateTime as BsonDateTime;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::Validate;

use crate::{domain::dates::date_to_bson, http::params::parse_bound};
use crate::{
    domain::{iso, money::Money, patient::TreatmentStatus, HospitalId},
    error::{AppError, ErrorResponse},
    http::extract::{ApiPath, ApiQuery},
    repo::{
        reports::{Clock, PatientCount, Range, AGE_BANDS, AGE_UNKNOWN, STAGES},
        treatments::Period,
    },
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(dashboard))
        .routes(routes!(report))
}

/// The report names `/reports/{name}` serves.
pub const REPORTS: [&str; 8] = [
    "earnings",
    "patients-by-disease",
    "patients-by-country",
    "patients-by-status",
    "patients-by-age",
    "hospital-performance",
    "treatments-by-type",
    "funnel",
];

// ---- the table -----------------------------------------------------------

/// One value of a report row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Text(String),
    Int(i64),
    /// A ratio or average, rounded for display.
    Decimal(f64),
    Date(NaiveDate),
    /// Minor units; JSON keeps them, CSV writes major units.
    Money(i64, String),
}

impl Cell {
    fn json(&self) -> Value {
        match self {
            Cell::Null => Value::Null,
            Cell::Text(s) => Value::String(s.clone()),
            Cell::Int(n) => Value::from(*n),
            Cell::Decimal(x) => serde_json::Number::from_f64(*x)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            Cell::Date(d) => Value::String(d.format("%Y-%m-%d").to_string()),
            Cell::Money(minor, _) => Value::from(*minor),
        }
    }

    fn csv(&self, out: &mut String) {
        match self {
            Cell::Null => {}
            Cell::Text(s) => csv_text(s, out),
            Cell::Int(n) => out.push_str(&n.to_string()),
            Cell::Decimal(x) => out.push_str(&x.to_string()),
            Cell::Date(d) => out.push_str(&d.format("%Y-%m-%d").to_string()),
            Cell::Money(minor, currency) => out.push_str(&iso::format_major(*minor, currency)),
        }
    }
}

/// RFC 4180 quoting. Text that a spreadsheet would run as a formula
/// (`=`, `+`, `-`, `@`, tab, CR first) gets a leading `'`: these cells hold
/// what patients and staff typed.
fn csv_text(s: &str, out: &mut String) {
    let guarded = matches!(s.chars().next(), Some('=' | '+' | '-' | '@' | '\t' | '\r'));
    let quote = guarded || s.contains([',', '"', '\r', '\n']);
    if quote {
        out.push('"');
    }
    if guarded {
        out.push('\'');
    }
    if quote {
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// A column: its JSON key and its CSV header (they differ for money,
/// `amount_minor` in JSON and `amount` in major units in CSV).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Column {
    pub key: &'static str,
    pub csv: &'static str,
}

const fn col(key: &'static str) -> Column {
    Column { key, csv: key }
}

const fn money(key: &'static str, csv: &'static str) -> Column {
    Column { key, csv }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    fn new(columns: &[Column]) -> Self {
        Table {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    fn push(&mut self, row: Vec<Cell>) {
        debug_assert_eq!(row.len(), self.columns.len());
        self.rows.push(row);
    }
}

fn csv_line(cells: impl Iterator<Item = impl FnOnce(&mut String)>, out: &mut String) {
    for (i, write) in cells.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write(out);
    }
    out.push_str("\r\n");
}

/// The CSV body, encoded a batch of rows at a time as the client reads.
fn csv_stream(table: Table) -> Body {
    const BATCH: usize = 256;
    let stream = futures::stream::unfold((table, None::<usize>), |(table, next)| async move {
        let mut out = String::new();
        let start = match next {
            None => {
                csv_line(
                    table
                        .columns
                        .iter()
                        .map(|c| move |o: &mut String| csv_text(c.csv, o)),
                    &mut out,
                );
                0
            }
            Some(i) if i >= table.rows.len() => return None,
            Some(i) => {
                for row in &table.rows[i..(i + BATCH).min(table.rows.len())] {
                    csv_line(row.iter().map(|c| move |o: &mut String| c.csv(o)), &mut out);
                }
                i + BATCH
            }
        };
        Some((
            Ok::<_, std::convert::Infallible>(bytes_of(out)),
            (table, Some(start)),
        ))
    });
    Body::from_stream(stream)
}

fn bytes_of(s: String) -> axum::body::Bytes {
    axum::body::Bytes::from(s)
}

// ---- request -------------------------------------------------------------

#[derive(Debug, Clone, Copy, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Week,
    Month,
    Year,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Csv,
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// `YYYY-MM-DD` (inclusive) or RFC 3339.
    pub from: Option<String>,
    /// `YYYY-MM-DD` (inclusive, whole day) or RFC 3339 (exclusive).
    pub to: Option<String>,
    /// `earnings` only: `week` (starting Monday, UTC), `month` (default) or `year`.
    #[param(value_type = Option<String>)]
    pub granularity: Option<Granularity>,
    /// Patient reports and `funnel`: one country (ISO 3166-1 alpha-2).
    pub country: Option<String>,
    /// `csv` or `json`; wins over the `Accept` header.
    #[param(value_type = Option<String>)]
    pub format: Option<Format>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ReportPath {
    /// `earnings`, `patients-by-disease`, `patients-by-country`,
    /// `patients-by-status`, `patients-by-age`, `hospital-performance`,
    /// `treatments-by-type` or `funnel`.
    pub name: String,
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DashboardQuery {
    /// Narrows new patients, earnings and the top lists to a period.
    pub from: Option<String>,
    pub to: Option<String>,
}

fn range_of(from: Option<&str>, to: Option<&str>) -> Result<Range, AppError> {
    let from = from.map(|v| parse_bound("from", v, false)).transpose()?;
    let before = to.map(|v| parse_bound("to", v, true)).transpose()?;
    if let (Some(f), Some(b)) = (from, before) {
        if f >= b {
            return Err(AppError::BadRequest("from must be before to".into()));
        }
    }
    Ok(Range { from, before })
}

fn wants_csv(format: Option<Format>, headers: &HeaderMap) -> bool {
    match format {
        Some(f) => f == Format::Csv,
        None => headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|m| {
                m.split(';')
                    .next()
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/csv"))
            }),
    }
}

// ---- shaping rows ----------------------------------------------------------

/// `(group, patients)` by `patients` descending, then group.
fn by_count_desc(rows: Vec<PatientCount>) -> Vec<(String, i64)> {
    let mut v: Vec<(String, i64)> = rows.into_iter().map(|r| (r.group, r.patients)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

fn ratio(n: i64, of: i64) -> Cell {
    if of == 0 {
        Cell::Null
    } else {
        Cell::Decimal((n as f64 / of as f64 * 10_000.0).round() / 10_000.0)
    }
}

fn text_or_null(s: &str) -> Cell {
    if s.is_empty() {
        Cell::Null
    } else {
        Cell::Text(s.to_owned())
    }
}

// ---- the reports ---------------------------------------------------------

fn period_of(g: Granularity) -> Period {
    match g {
        Granularity::Week => Period::Week,
        Granularity::Month => Period::Month,
        Granularity::Year => Period::Year,
    }
}

/// The start of the period `day` falls in (weeks start Monday).
pub fn period_start(day: NaiveDate, g: Granularity) -> NaiveDate {
    match g {
        Granularity::Week => day - Days::new(u64::from(day.weekday().num_days_from_monday())),
        Granularity::Month => day.with_day(1).unwrap_or(day),
        Granularity::Year => NaiveDate::from_ymd_opt(day.year(), 1, 1).unwrap_or(day),
    }
}

fn next_period(start: NaiveDate, g: Granularity) -> Option<NaiveDate> {
    match g {
        Granularity::Week => start.checked_add_days(Days::new(7)),
        Granularity::Month => start.checked_add_months(Months::new(1)),
        Granularity::Year => start.checked_add_months(Months::new(12)),
    }
}

/// More periods than this in one series is a 400 (a century of weeks).
const MAX_PERIODS: usize = 5_300;

/// Every period start from `first` to `last` (inclusive).
pub fn period_starts(
    first: NaiveDate,
    last: NaiveDate,
    g: Granularity,
) -> Result<Vec<NaiveDate>, AppError> {
    let mut out = Vec::new();
    let mut at = Some(period_start(first, g));
    while let Some(d) = at.filter(|d| *d <= last) {
        if out.len() == MAX_PERIODS {
            return Err(AppError::BadRequest(format!(
                "the range holds more than {MAX_PERIODS} periods; choose a coarser granularity"
            )));
        }
        out.push(d);
        at = next_period(d, g);
    }
    Ok(out)
}

async fn earnings(state: &AppState, range: Range, g: Granularity) -> Result<Table, AppError> {
    let rows = state.repos.reports.earnings(range, period_of(g)).await?;
    let mut found: HashMap<(NaiveDate, String), (i64, i64)> = HashMap::new();
    let mut currencies = BTreeSet::new();
    for row in rows {
        currencies.insert(row.currency.clone());
        found.insert(
            (row.period_start, row.currency),
            (row.amount_minor, row.treatments),
        );
    }
    let mut table = Table::new(&[
        col("period_start"),
        col("currency"),
        money("amount_minor", "amount"),
        col("treatments"),
    ]);
    let data_days = found.keys().map(|(d, _)| *d);
    let first = range
        .from
        .map(|f| f.to_chrono().date_naive())
        .or_else(|| data_days.clone().min());
    let last = range
        .before
        .map(|b| (b.to_chrono() - chrono::Duration::milliseconds(1)).date_naive())
        .or_else(|| data_days.max());
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

async fn by_disease(
    state: &AppState,
    range: Range,
    country: Option<&str>,
) -> Result<Table, AppError> {
    let counts = state
        .repos
        .reports
        .patients_by_disease(range, country)
        .await?;
    let total = counts.patients;
    let mut table = Table::new(&[col("disease"), col("patients"), col("share")]);
    for (disease, n) in by_count_desc(counts.conditions) {
        table.push(vec![Cell::Text(disease), Cell::Int(n), ratio(n, total)]);
    }
    Ok(table)
}

async fn by_country(
    state: &AppState,
    range: Range,
    country: Option<&str>,
) -> Result<Table, AppError> {
    let rows = state
        .repos
        .reports
        .patients_by_country(range, country)
        .await?;
    let mut table = Table::new(&[
        col("country"),
        col("patients"),
        col("completed"),
        col("completion_rate"),
    ]);
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

async fn by_status(
    state: &AppState,
    range: Range,
    country: Option<&str>,
) -> Result<Table, AppError> {
    let rows = state
        .repos
        .reports
        .patients_by_status(range, country)
        .await?;
    let counts: HashMap<(String, String), i64> = rows
        .into_iter()
        .map(|r| ((r.status, r.treatment_status), r.patients))
        .collect();
    let mut table = Table::new(&[col("status"), col("treatment_status"), col("patients")]);
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

async fn by_age(
    state: &AppState,
    range: Range,
    country: Option<&str>,
    today: NaiveDate,
) -> Result<Table, AppError> {
    let rows = state
        .repos
        .reports
        .patients_by_age(range, country, today)
        .await?;
    // country -> band -> patients; "" is every country.
    let mut counts: BTreeMap<String, HashMap<String, i64>> = BTreeMap::new();
    counts.insert(String::new(), HashMap::new());
    for r in rows {
        for c in [String::new(), r.country.clone()] {
            *counts
                .entry(c)
                .or_default()
                .entry(r.band.clone())
                .or_default() += r.patients;
        }
    }
    let bands: Vec<&str> = AGE_BANDS
        .iter()
        .map(|(b, _)| *b)
        .chain([AGE_UNKNOWN])
        .collect();
    let mut table = Table::new(&[col("country"), col("band"), col("patients")]);
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

#[derive(Default)]
struct HospitalFigures {
    patients: i64,
    hours_to_complete: Option<f64>,
    by_status: HashMap<String, i64>,
    /// currency -> (revenue, earnings)
    money: BTreeMap<String, (i64, i64)>,
}

async fn hospital_performance(state: &AppState, range: Range) -> Result<Table, AppError> {
    let reports = &state.repos.reports;
    let (patients, treatments, ledger, hospitals) = tokio::try_join!(
        reports.hospital_patients(range),
        reports.hospital_treatments(range),
        reports.hospital_earnings(range),
        state.repos.hospitals.all(),
    )?;
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
        *f.by_status.entry(r.status.clone()).or_default() += r.treatments;
        let money = f.money.entry(r.currency).or_default();
        if r.status == "completed" {
            money.0 += r.cost_minor;
        }
    }
    for r in ledger {
        let Some(id) = r.hospital_id else { continue };
        let f = figures.entry(id).or_default();
        f.money.entry(r.currency).or_default().1 += r.amount_minor;
    }
    let mut table = Table::new(&[
        col("hospital_id"),
        col("hospital"),
        col("country"),
        col("patients"),
        col("avg_days_to_complete"),
        col("treatments_planned"),
        col("treatments_in_progress"),
        col("treatments_completed"),
        col("treatments_cancelled"),
        col("currency"),
        money("revenue_minor", "revenue"),
        money("earnings_minor", "earnings"),
    ]);
    let empty = HospitalFigures::default();
    for h in &hospitals {
        let f = figures.get(&h.id).unwrap_or(&empty);
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
    Ok(table)
}

async fn treatments_by_type(state: &AppState, range: Range) -> Result<Table, AppError> {
    let rows = state.repos.reports.treatments_by_type(range).await?;
    let mut table = Table::new(&[
        col("treatment_type"),
        col("currency"),
        col("treatments"),
        col("completed"),
        col("cancelled"),
        money("cost_minor", "cost"),
        money("earnings_minor", "earnings"),
    ]);
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

async fn funnel(state: &AppState, range: Range, country: Option<&str>) -> Result<Table, AppError> {
    let rows = state.repos.reports.funnel(range, country).await?;
    let stage_names: Vec<&str> = STAGES.iter().map(|s| s.as_str()).collect();
    // country -> stage counts ("" is every country), and denial reasons.
    let mut stages: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    stages.insert(String::new(), vec![0; stage_names.len()]);
    for r in &rows.stages {
        for c in [String::new(), r.country.clone()] {
            let entry = stages
                .entry(c)
                .or_insert_with(|| vec![0; stage_names.len()]);
            for (e, n) in entry.iter_mut().zip(&r.reached) {
                *e += n;
            }
        }
    }
    let mut reasons: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for r in &rows.denials {
        for c in [String::new(), r.country.clone()] {
            *reasons
                .entry(c)
                .or_default()
                .entry(r.reason.clone())
                .or_default() += r.patients;
        }
    }
    let mut table = Table::new(&[
        col("country"),
        col("stage"),
        col("reason"),
        col("patients"),
        col("share_of_inquiries"),
        col("share_of_previous"),
    ]);
    for (c, counts) in &stages {
        let inquiries = counts[0];
        for (i, stage) in stage_names.iter().enumerate() {
            let previous = match i {
                0 => Cell::Null,
                // Denied branches off the inquiries.
                i if i == stage_names.len() - 1 => ratio(counts[i], inquiries),
                i => ratio(counts[i], counts[i - 1]),
            };
            table.push(vec![
                text_or_null(c),
                Cell::Text((*stage).into()),
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
                ratio(*n, counts[stage_names.len() - 1]),
            ]);
        }
    }
    Ok(table)
}

// ---- handlers --------------------------------------------------------------

/// A report as JSON. `rows` are objects keyed by `columns`; money is in
/// minor units beside its `currency`; `to` is the exclusive end.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportResponse {
    pub report: String,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub generated_at: DateTime<Utc>,
    pub columns: Vec<String>,
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<Map<String, Value>>,
}

fn today_utc() -> NaiveDate {
    Utc::now().date_naive()
}

fn check_country(country: Option<&str>) -> Result<(), AppError> {
    match country {
        Some(c) if !iso::is_country(c) => Err(AppError::BadRequest(
            "country must be an ISO 3166-1 alpha-2 code such as DE".into(),
        )),
        _ => Ok(()),
    }
}

/// Builds report `name`'s table.
pub async fn build(
    state: &AppState,
    name: &str,
    q: &ReportQuery,
    range: Range,
) -> Result<Table, AppError> {
    let country = q.country.as_deref();
    check_country(country)?;
    if q.granularity.is_some() && name != "earnings" {
        return Err(AppError::BadRequest(
            "granularity applies to the earnings report only".into(),
        ));
    }
    let per_patient = name.starts_with("patients-by-") || name == "funnel";
    if country.is_some() && !per_patient {
        return Err(AppError::BadRequest(
            "country applies to the patient reports and the funnel only".into(),
        ));
    }
    match name {
        "earnings" => earnings(state, range, q.granularity.unwrap_or(Granularity::Month)).await,
        "patients-by-disease" => by_disease(state, range, country).await,
        "patients-by-country" => by_country(state, range, country).await,
        "patients-by-status" => by_status(state, range, country).await,
        "patients-by-age" => by_age(state, range, country, today_utc()).await,
        "hospital-performance" => hospital_performance(state, range).await,
        "treatments-by-type" => treatments_by_type(state, range).await,
        "funnel" => funnel(state, range, country).await,
        _ => Err(AppError::NotFound(format!(
            "no report named {name:?}; reports: {}",
            REPORTS.join(", ")
        ))),
    }
}

/// A report over `from`..`to`, as JSON or (with `Accept: text/csv` or
/// `?format=csv`) as a streamed CSV download.
#[utoipa::path(get, path = "/reports/{name}", tag = "reports", params(ReportPath, ReportQuery),
    responses(
        (status = 200, description = "The report", content(
            (ReportResponse = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse),
    ))]
pub async fn report(
    State(state): State<AppState>,
    ApiPath(ReportPath { name }): ApiPath<ReportPath>,
    ApiQuery(q): ApiQuery<ReportQuery>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if !REPORTS.contains(&name.as_str()) {
        return Err(AppError::NotFound(format!(
            "no report named {name:?}; reports: {}",
            REPORTS.join(", ")
        )));
    }
    let range = range_of(q.from.as_deref(), q.to.as_deref())?;
    let table = build(&state, &name, &q, range).await?;
    if wants_csv(q.format, &headers) {
        let day = |d: Option<BsonDateTime>| {
            d.map(|d| d.to_chrono().format("%Y%m%d").to_string())
                .unwrap_or_else(|| "all".into())
        };
        let filename = format!("{name}-{}-{}.csv", day(range.from), day(range.before));
        let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
            .map_err(AppError::internal)?;
        return Ok((
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/csv; charset=utf-8; header=present"),
                ),
                (header::CONTENT_DISPOSITION, disposition),
            ],
            csv_stream(table),
        )
            .into_response());
    }
    let columns = table.columns.iter().map(|c| c.key.to_owned()).collect();
    let rows = table
        .rows
        .iter()
        .map(|row| {
            table
                .columns
                .iter()
                .zip(row)
                .map(|(c, v)| (c.key.to_owned(), v.json()))
                .collect()
        })
        .collect();
    Ok(Json(ReportResponse {
        report: name,
        from: range.from.map(|d| d.to_chrono()),
        to: range.before.map(|d| d.to_chrono()),
        generated_at: Utc::now(),
        columns,
        rows,
    })
    .into_response())
}

// ---- dashboard -------------------------------------------------------------

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PeriodBounds {
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ByTreatmentStatus {
    pub inquiry: i64,
    pub ready: i64,
    pub coming: i64,
    pub completed: i64,
    pub denied: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PatientFigures {
    /// Live (not deleted) patients.
    pub total: i64,
    /// Registered since Monday, UTC.
    pub new_this_week: i64,
    pub new_this_month: i64,
    /// Registered in `period`, when one is given.
    pub new_in_period: Option<i64>,
    pub by_treatment_status: ByTreatmentStatus,
    /// Patients whose treatment status is `inquiry`.
    pub open_inquiries: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FollowUpFigures {
    pub due_today: i64,
    pub overdue: i64,
}

/// Net ledger earnings (reversals netted out), one entry per currency.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EarningsFigures {
    pub all_time: Vec<Money>,
    pub this_month: Vec<Money>,
    pub this_year: Vec<Money>,
    pub in_period: Option<Vec<Money>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CountryCount {
    pub country: String,
    pub patients: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DiseaseCount {
    pub disease: String,
    pub patients: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HospitalEarnings {
    pub hospital_id: HospitalId,
    pub name: Option<String>,
    pub earnings: Money,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DashboardResponse {
    pub generated_at: DateTime<Utc>,
    /// The period that narrows new patients, earnings and the top lists.
    pub period: Option<PeriodBounds>,
    pub patients: PatientFigures,
    pub follow_ups: FollowUpFigures,
    pub earnings: EarningsFigures,
    /// Top 5 countries by patients (in the period, if given).
    pub top_countries: Vec<CountryCount>,
    /// Top 5 conditions by patients (in the period, if given).
    pub top_diseases: Vec<DiseaseCount>,
    /// Per currency, the top 5 hospitals by net earnings this year (or in
    /// the period), currencies in alphabetical order.
    pub top_hospitals: Vec<HospitalEarnings>,
}

pub fn clock(now: DateTime<Utc>) -> Clock {
    let today = now.date_naive();
    Clock {
        today: date_to_bson(today),
        tomorrow: date_to_bson(today + Days::new(1)),
        week_start: date_to_bson(period_start(today, Granularity::Week)),
        month_start: date_to_bson(period_start(today, Granularity::Month)),
        year_start: date_to_bson(period_start(today, Granularity::Year)),
    }
}

/// The dashboard's figures at `now`: every count and group is issued at
/// once; only the top hospitals wait, for the currencies they rank in.
pub async fn figures(
    state: &AppState,
    now: DateTime<Utc>,
    period: Option<Range>,
) -> Result<DashboardResponse, AppError> {
    let clock = clock(now);
    let reports = &state.repos.reports;
    let money_range = |from: Option<BsonDateTime>| Range { from, before: None };
    let ranked = period.unwrap_or(money_range(Some(clock.year_start)));
    let (counts, statuses, countries, diseases, all_time, this_month, this_year, in_range) = tokio::try_join!(
        reports.patient_counts(clock, period),
        reports.treatment_status_counts(),
        reports.top_countries(period),
        reports.disease_counts(period),
        reports.earnings_by_currency(Range::default()),
        reports.earnings_by_currency(money_range(Some(clock.month_start))),
        reports.earnings_by_currency(money_range(Some(clock.year_start))),
        reports.earnings_by_currency(ranked),
    )?;
    let tops = futures::future::try_join_all(
        in_range
            .iter()
            .map(|m| reports.top_hospitals(ranked, &m.currency)),
    )
    .await?;
    let top: Vec<(HospitalId, Money)> = tops
        .into_iter()
        .flatten()
        .map(|t| (t.hospital_id, t.earnings))
        .collect();
    let ids: Vec<HospitalId> = top.iter().map(|(id, _)| *id).collect();
    let names: HashMap<HospitalId, String> = if ids.is_empty() {
        HashMap::new()
    } else {
        state
            .repos
            .hospitals
            .with_ids(&ids)
            .await?
            .into_iter()
            .map(|h| (h.id, h.name))
            .collect()
    };
    let statuses: HashMap<String, i64> = statuses
        .into_iter()
        .map(|r| (r.group, r.patients))
        .collect();
    let status = |s: TreatmentStatus| statuses.get(s.as_str()).copied().unwrap_or(0);
    Ok(DashboardResponse {
        generated_at: now,
        period: period.map(|r| PeriodBounds {
            from: r.from.map(|d| d.to_chrono()),
            to: r.before.map(|d| d.to_chrono()),
        }),
        patients: PatientFigures {
            total: counts.total,
            new_this_week: counts.new_this_week,
            new_this_month: counts.new_this_month,
            new_in_period: counts.new_in_period,
            by_treatment_status: ByTreatmentStatus {
                inquiry: status(TreatmentStatus::Inquiry),
                ready: status(TreatmentStatus::Ready),
                coming: status(TreatmentStatus::Coming),
                completed: status(TreatmentStatus::Completed),
                denied: status(TreatmentStatus::Denied),
            },
            open_inquiries: status(TreatmentStatus::Inquiry),
        },
        follow_ups: FollowUpFigures {
            due_today: counts.follow_ups_due_today,
            overdue: counts.follow_ups_overdue,
        },
        earnings: EarningsFigures {
            all_time,
            this_month,
            this_year,
            in_period: period.map(|_| in_range),
        },
        top_countries: countries
            .into_iter()
            .map(|r| CountryCount {
                country: r.group,
                patients: r.patients,
            })
            .collect(),
        top_diseases: by_count_desc(diseases)
            .into_iter()
            .take(5)
            .map(|(disease, patients)| DiseaseCount { disease, patients })
            .collect(),
        top_hospitals: top
            .into_iter()
            .map(|(id, earnings)| HospitalEarnings {
                hospital_id: id,
                name: names.get(&id).cloned(),
                earnings,
            })
            .collect(),
    })
}

type PeriodKey = (Option<i64>, Option<i64>);

/// Recent dashboards per period. The lock is held while one is computed, so
/// a burst of requests costs the database one computation, not one each.
#[derive(Clone, Default)]
pub struct DashboardCache {
    entries: std::sync::Arc<
        tokio::sync::Mutex<HashMap<PeriodKey, (std::time::Instant, DashboardResponse)>>,
    >,
}

/// Most periods kept at once.
const DASHBOARD_CACHE_ENTRIES: usize = 64;

/// Headline figures in one round of small aggregations and counts, run
/// together. Reused for `DASHBOARD_CACHE_TTL_MS` (10 s by default;
/// `generated_at` tells when they were computed).
#[utoipa::path(get, path = "/dashboard", tag = "reports", params(DashboardQuery),
    responses((status = 200, body = DashboardResponse), (status = 400, body = ErrorResponse)))]
pub async fn dashboard(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DashboardQuery>,
) -> Result<Json<DashboardResponse>, AppError> {
    let range = range_of(q.from.as_deref(), q.to.as_deref())?;
    let period = (range != Range::default()).then_some(range);
    Ok(Json(cached_figures(&state, period).await?))
}

/// The dashboard for `period`, reused while younger than the TTL.
pub async fn cached_figures(
    state: &AppState,
    period: Option<Range>,
) -> Result<DashboardResponse, AppError> {
    let ttl = state.config.dashboard_cache_ttl;
    if ttl.is_zero() {
        return figures(state, Utc::now(), period).await;
    }
    let range = period.unwrap_or_default();
    let key = (
        range.from.map(|d| d.timestamp_millis()),
        range.before.map(|d| d.timestamp_millis()),
    );
    let mut entries = state.dashboard.entries.lock().await;
    if let Some((at, figures)) = entries.get(&key) {
        if at.elapsed() < ttl {
            return Ok(figures.clone());
        }
    }
    let fresh = figures(state, Utc::now(), period).await?;
    entries.retain(|_, (at, _)| at.elapsed() < ttl);
    if entries.len() < DASHBOARD_CACHE_ENTRIES {
        entries.insert(key, (std::time::Instant::now(), fresh.clone()));
    }
    Ok(fresh)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("date")
    }

    #[test]
    fn periods_start_on_monday_the_first_and_new_year() {
        // 2026-11-23 is a Monday; 2026-11-29 a Sunday.
        assert_eq!(
            period_start(d(2026, 11, 29), Granularity::Week),
            d(2026, 11, 23)
        );
        assert_eq!(
            period_start(d(2026, 11, 23), Granularity::Week),
            d(2026, 11, 23)
        );
        assert_eq!(
            period_start(d(2026, 11, 29), Granularity::Month),
            d(2026, 11, 1)
        );
        assert_eq!(
            period_start(d(2026, 11, 29), Granularity::Year),
            d(2026, 1, 1)
        );
        let weeks = period_starts(d(2026, 12, 30), d(2027, 1, 12), Granularity::Week).expect("ok");
        assert_eq!(weeks, [d(2026, 12, 28), d(2027, 1, 4), d(2027, 1, 11)]);
        let months = period_starts(d(2026, 1, 31), d(2026, 3, 1), Granularity::Month).expect("ok");
        assert_eq!(months, [d(2026, 1, 1), d(2026, 2, 1), d(2026, 3, 1)]);
        assert!(period_starts(d(1900, 1, 1), d(2100, 1, 1), Granularity::Week).is_err());
        assert_eq!(
            period_starts(d(1900, 1, 1), d(2100, 1, 1), Granularity::Year)
                .expect("ok")
                .len(),
            201
        );
    }

    #[test]
    fn csv_quotes_per_rfc_4180_and_defuses_formulas() {
        let mut out = String::new();
        for s in [
            "plain",
            "a,b",
            "say \"hi\"",
            "two\nlines",
            "=1+1",
            "-3",
            "@x",
        ] {
            csv_text(s, &mut out);
            out.push('|');
        }
        assert_eq!(
            out,
            "plain|\"a,b\"|\"say \"\"hi\"\"\"|\"two\nlines\"|\"'=1+1\"|\"'-3\"|\"'@x\"|"
        );
        let mut money = String::new();
        Cell::Money(-125_050, "EUR".into()).csv(&mut money);
        assert_eq!(money, "-1250.50");
    }

    #[tokio::test]
    async fn the_csv_body_streams_header_then_batches_of_rows() {
        use http_body_util::BodyExt;
        let mut table = Table::new(&[col("n"), money("amount_minor", "amount"), col("currency")]);
        for i in 0..600 {
            table.push(vec![
                Cell::Int(i),
                Cell::Money(i * 100, "USD".into()),
                Cell::Text("USD".into()),
            ]);
        }
        let mut body = csv_stream(table);
        let mut frames = Vec::new();
        while let Some(frame) = body.frame().await {
            let data = frame.expect("frame").into_data().expect("data");
            frames.push(String::from_utf8(data.to_vec()).expect("utf8"));
        }
        // Header, then 256 + 256 + 88 rows.
        assert_eq!(frames.len(), 4);
        assert_eq!(frames[0], "n,amount,currency\r\n");
        assert!(frames[1].starts_with("0,0.00,USD\r\n1,1.00,USD\r\n"));
        assert_eq!(frames[3].lines().count(), 88);
        assert!(frames[3].ends_with("599,599.00,USD\r\n"));
    }

    #[test]
    fn accept_negotiation() {
        let mut h = HeaderMap::new();
        assert!(!wants_csv(None, &h));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/csv;q=0.9"),
        );
        assert!(wants_csv(None, &h));
        assert!(!wants_csv(Some(Format::Json), &h));
        assert!(wants_csv(Some(Format::Csv), &HeaderMap::new()));
    }
}
