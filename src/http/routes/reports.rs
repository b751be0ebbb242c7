//! `/dashboard` and `/reports/{name}`: the query parameters, content
//! negotiation, and the JSON and CSV shapes of what `workflow::reports`
//! computes.
//!
//! A report's JSON form is `{report, from, to, generated_at, columns, rows}`
//! and its CSV form is the same table, money in major units beside its
//! currency.

use axum::{
    extract::State,
    http::{header, HeaderMap, HeaderValue},
    response::{IntoResponse, Response},
    Json,
};
use chrono::{DateTime, Utc};
use mongodb::bson::DateTime as BsonDateTime;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::Validate;

use crate::{
    domain::zone::Tz,
    domain::{money::Money, HospitalId},
    error::{AppError, ErrorResponse},
    http::{
        auth::CurrentUser,
        csv,
        extract::{ApiPath, ApiQuery},
        freshness,
        params::{parse_bound_in, zone_of},
    },
    state::AppState,
    workflow::reports::{
        self, Cell, Dashboard, Kind, PatientCount, Range, Report, ReportRequest, Table,
    },
};

/// The names `/reports/{name}` serves (the list lives with the reports).
pub use crate::workflow::reports::REPORTS;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(dashboard))
        .routes(routes!(report))
}

// ---- request -------------------------------------------------------------

/// `?granularity=` as sent; [`reports::Granularity`] is what the report uses.
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
    #[param(inline)]
    pub granularity: Option<Granularity>,
    /// Patient reports and `funnel`: one country (ISO 3166-1 alpha-2).
    #[param(pattern = "^[A-Z]{2}$")]
    pub country: Option<String>,
    /// `csv` or `json`; wins over the `Accept` header.
    #[param(inline)]
    pub format: Option<Format>,
    /// IANA time zone (`Asia/Kolkata`) in which a date-only `from`/`to`
    /// begins and ends (the `earnings` periods
    /// themselves stay UTC weeks, months and years); default the caller's profile `time_zone`, else UTC.
    #[param(max_length = 32)]
    pub tz: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ReportPath {
    /// `earnings`, `patients-by-disease`, `patients-by-country`,
    /// `patients-by-status`, `patients-by-age`, `hospital-performance`,
    /// `treatments-by-type` or `funnel`.
    #[param(schema_with = report_names)]
    pub name: String,
}

/// The report names as a closed set in the document; the handler itself
/// answers any other name with a 404 that lists them.
fn report_names() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(reports::REPORTS.iter().copied()))
        .build()
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DashboardQuery {
    /// Narrows new patients, earnings and the top lists to a period.
    pub from: Option<String>,
    pub to: Option<String>,
    /// IANA time zone (`Asia/Kolkata`) that decides "today" (follow-ups
    /// due), "this week", "this month", "this year" and where a date-only
    /// `from`/`to` begins and ends; default the caller's profile
    /// `time_zone`, else UTC.
    pub tz: Option<String>,
}

impl From<Granularity> for reports::Granularity {
    fn from(g: Granularity) -> Self {
        match g {
            Granularity::Week => reports::Granularity::Week,
            Granularity::Month => reports::Granularity::Month,
            Granularity::Year => reports::Granularity::Year,
        }
    }
}

fn range_of(from: Option<&str>, to: Option<&str>, tz: Tz) -> Result<Range, AppError> {
    let from = from
        .map(|v| parse_bound_in("from", v, false, tz))
        .transpose()?;
    let before = to.map(|v| parse_bound_in("to", v, true, tz)).transpose()?;
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

// ---- reports ---------------------------------------------------------------

/// A report as JSON. `rows` are objects keyed by `columns`; money is in
/// minor units beside its `currency`; `to` is the exclusive end. Each
/// report's rows have their own schema, named after it: `report` tells
/// which (`funnel` rows are `FunnelReportRow`, `patients-by-age` rows
/// `PatientsByAgeReportRow`, and so on).
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportResponse {
    pub report: String,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub generated_at: DateTime<Utc>,
    pub columns: Vec<String>,
    #[schema(schema_with = crate::http::openapi::report_rows::rows)]
    pub rows: Vec<Map<String, Value>>,
}

/// What a cell is in JSON; `openapi::report_rows` declares the same.
pub(crate) fn cell_json(cell: &Cell) -> Value {
    match cell {
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

impl From<&Report> for ReportResponse {
    fn from(r: &Report) -> Self {
        let Table { columns, rows } = &r.table;
        let rows = rows
            .iter()
            .map(|row| {
                columns
                    .iter()
                    .zip(row)
                    .map(|(c, v)| (c.key.to_owned(), cell_json(v)))
                    .collect()
            })
            .collect();
        ReportResponse {
            report: r.kind.name().to_owned(),
            from: r.range.from.map(|d| d.to_chrono()),
            to: r.range.before.map(|d| d.to_chrono()),
            generated_at: r.generated_at,
            columns: columns.iter().map(|c| c.key.to_owned()).collect(),
            rows,
        }
    }
}

/// The report as a streamed CSV attachment named for it and its range.
fn csv_download(report: &Report) -> Result<Response, AppError> {
    let day = |d: Option<BsonDateTime>| {
        d.map(|d| d.to_chrono().format("%Y%m%d").to_string())
            .unwrap_or_else(|| "all".into())
    };
    let (name, range) = (report.kind.name(), report.range);
    let filename = format!("{name}-{}-{}.csv", day(range.from), day(range.before));
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
        .map_err(AppError::internal)?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8; header=present"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        csv::body(report.table.clone()),
    )
        .into_response())
}

/// A report over `from`..`to`, as JSON or (with `Accept: text/csv` or
/// `?format=csv`) as a streamed CSV download. Kept until a write changes
/// what it counts; carries an `ETag`, and a matching `If-None-Match` is
/// answered 304 without computing anything.
#[utoipa::path(get, path = "/api/v1/reports/{name}", tag = "reports", params(ReportPath, ReportQuery, ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer: 304 while it is still current")),
    responses(
        (status = 200, description = "The report", content(
            (ReportResponse = "application/json"),
            (String = "text/csv"),
        ), headers(("ETag" = String, description = "Names this report over the current data, in this format; send it as If-None-Match"),
            ("Content-Disposition" = String, description = "On the CSV answer only (`format=csv` or `Accept: text/csv`): `attachment; filename=\"<report>-<from>-<before>.csv\"`, the days as YYYYMMDD or `all`"))),
        (status = 304, description = "The report named by If-None-Match is still current"),
        (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse),
    ))]
pub async fn report(
    State(state): State<AppState>,
    ApiPath(ReportPath { name }): ApiPath<ReportPath>,
    ApiQuery(q): ApiQuery<ReportQuery>,
    CurrentUser(me): CurrentUser,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    // An unknown name is a 404 before any parameter is looked at.
    let kind = Kind::from_name(&name)?;
    let tz = zone_of(q.tz.as_deref(), &me)?;
    let range = range_of(q.from.as_deref(), q.to.as_deref(), tz)?;
    let csv = wants_csv(q.format, &headers);
    let req = ReportRequest {
        kind,
        range,
        granularity: q.granularity.map(Into::into),
        country: q.country,
    };
    let variant = if csv { "csv" } else { "json" };
    if headers.contains_key(header::IF_NONE_MATCH) {
        let tag = reports::report_tag(&state.workflows, &req).await?;
        let etag = freshness::etag(&tag.digest(), variant);
        if freshness::matches(&headers, &etag) {
            return Ok(freshness::not_modified(etag));
        }
    }
    let (tag, report) = reports::report(&state.workflows, req).await?;
    let fresh = freshness::headers(freshness::etag(&tag.digest(), variant));
    if csv {
        Ok((fresh, csv_download(&report)?).into_response())
    } else {
        Ok((fresh, Json(ReportResponse::from(&*report))).into_response())
    }
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
    /// The hospital's name beside its id (null if it no longer exists).
    pub hospital_name: Option<String>,
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

fn counts<T>(rows: Vec<PatientCount>, each: impl Fn(String, i64) -> T) -> Vec<T> {
    rows.into_iter()
        .map(|r| each(r.group, r.patients))
        .collect()
}

impl From<Dashboard> for DashboardResponse {
    fn from(d: Dashboard) -> Self {
        let (p, s) = (d.patients, d.by_treatment_status);
        DashboardResponse {
            generated_at: d.generated_at,
            period: d.period.map(|r| PeriodBounds {
                from: r.from.map(|d| d.to_chrono()),
                to: r.before.map(|d| d.to_chrono()),
            }),
            patients: PatientFigures {
                total: p.total,
                new_this_week: p.new_this_week,
                new_this_month: p.new_this_month,
                new_in_period: p.new_in_period,
                open_inquiries: s.inquiry,
                by_treatment_status: ByTreatmentStatus {
                    inquiry: s.inquiry,
                    ready: s.ready,
                    coming: s.coming,
                    completed: s.completed,
                    denied: s.denied,
                },
            },
            follow_ups: FollowUpFigures {
                due_today: p.follow_ups_due_today,
                overdue: p.follow_ups_overdue,
            },
            earnings: EarningsFigures {
                all_time: d.earnings.all_time,
                this_month: d.earnings.this_month,
                this_year: d.earnings.this_year,
                in_period: d.earnings.in_period,
            },
            top_countries: counts(d.top_countries, |country, patients| CountryCount {
                country,
                patients,
            }),
            top_diseases: counts(d.top_diseases, |disease, patients| DiseaseCount {
                disease,
                patients,
            }),
            top_hospitals: d
                .top_hospitals
                .into_iter()
                .map(|h| HospitalEarnings {
                    hospital_id: h.hospital_id,
                    hospital_name: h.name,
                    earnings: h.earnings,
                })
                .collect(),
        }
    }
}

/// Headline figures in one round of small aggregations and counts, run
/// together, and kept until a write changes what they count (`generated_at`
/// tells when they were computed). Carries an `ETag`; a matching
/// `If-None-Match` is answered 304.
#[utoipa::path(get, path = "/api/v1/dashboard", tag = "reports", params(DashboardQuery, ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer: 304 while it is still current")),
    responses(
        (status = 200, body = DashboardResponse,
            headers(("ETag" = String, description = "Names these figures; send it as If-None-Match"))),
        (status = 304, description = "The figures named by If-None-Match are still current"),
        (status = 400, body = ErrorResponse)))]
pub async fn dashboard(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DashboardQuery>,
    CurrentUser(me): CurrentUser,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let tz = zone_of(q.tz.as_deref(), &me)?;
    let range = range_of(q.from.as_deref(), q.to.as_deref(), tz)?;
    let period = (range != Range::default()).then_some(range);
    let ctx = &state.workflows;
    if headers.contains_key(header::IF_NONE_MATCH) {
        let etag = freshness::etag(
            &reports::dashboard_tag(ctx, period, tz).await?.digest(),
            "json",
        );
        if freshness::matches(&headers, &etag) {
            return Ok(freshness::not_modified(etag));
        }
    }
    let (tag, figures) = reports::dashboard(ctx, period, tz).await?;
    let fresh = freshness::headers(freshness::etag(&tag.digest(), "json"));
    Ok((
        fresh,
        Json(DashboardResponse::from(Dashboard::clone(&figures))),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

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
