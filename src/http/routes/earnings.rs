//! The earnings ledger and its period summaries (aggregated in MongoDB,
//! kept by the report cache until the ledger changes).

use axum::{
    extract::State,
    http::{header, HeaderMap},
    response::{IntoResponse, Response},
    Json,
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::Validate;

use crate::http::params::parse_bound;
use crate::{
    domain::{
        treatment::{EarningEntry, EntryKind},
        HospitalId, PatientId, TreatmentId,
    },
    error::{AppError, ErrorResponse},
    http::{
        audit::AuditPatients,
        dto::{page_request, Page},
        extract::ApiQuery,
        freshness, names,
    },
    repo::treatments::{EarningsFilter, Period},
    state::AppState,
    workflow::reports,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_earnings))
        .routes(routes!(earnings_summary))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EarningEntryResponse {
    pub treatment_id: TreatmentId,
    pub kind: EntryKind,
    /// Signed minor units: reversals are negative.
    pub amount_minor: i64,
    pub currency: String,
    pub hospital_id: HospitalId,
    pub hospital_name: Option<String>,
    pub patient_id: PatientId,
    pub booked_at: DateTime<Utc>,
}

impl From<&EarningEntry> for EarningEntryResponse {
    fn from(e: &EarningEntry) -> Self {
        EarningEntryResponse {
            treatment_id: e.treatment_id,
            kind: e.kind,
            amount_minor: e.amount_minor,
            currency: e.currency.clone(),
            hospital_id: e.hospital_id,
            hospital_name: names::hospital(e.hospital_id),
            patient_id: e.patient_id,
            booked_at: e.booked_at.to_chrono(),
        }
    }
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EarningsQuery {
    #[param(minimum = 1, maximum = 1_000_000)]
    pub page: Option<u64>,
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<u64>,
    /// `YYYY-MM-DD` (inclusive) or RFC 3339.
    pub from: Option<String>,
    /// `YYYY-MM-DD` (inclusive, whole day) or RFC 3339 (exclusive).
    pub to: Option<String>,
    pub hospital_id: Option<HospitalId>,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PeriodParam {
    Weekly,
    Monthly,
    Yearly,
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SummaryQuery {
    /// `weekly` (weeks start Monday, UTC), `monthly` or `yearly`.
    #[param(value_type = String)]
    pub period: PeriodParam,
    pub from: Option<String>,
    pub to: Option<String>,
    pub hospital_id: Option<HospitalId>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SummaryRow {
    #[schema(value_type = String, format = Date)]
    pub period_start: NaiveDate,
    /// Net of reversals, in minor units.
    pub amount_minor: i64,
    pub currency: String,
    /// Treatments credited minus those reversed.
    pub treatments: i64,
}

fn filter(
    from: Option<&str>,
    to: Option<&str>,
    hospital_id: Option<HospitalId>,
) -> Result<EarningsFilter, AppError> {
    let from = from.map(|v| parse_bound("from", v, false)).transpose()?;
    let before = to.map(|v| parse_bound("to", v, true)).transpose()?;
    if let (Some(f), Some(b)) = (from, before) {
        if f >= b {
            return Err(AppError::BadRequest("from must be before to".into()));
        }
    }
    Ok(EarningsFilter {
        from,
        before,
        hospital_id,
    })
}

/// Ledger entries, newest first.
#[utoipa::path(get, path = "/api/v1/earnings", tag = "earnings", params(EarningsQuery),
    responses((status = 200, body = Page<EarningEntryResponse>), (status = 400, body = ErrorResponse)))]
pub async fn list_earnings(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<EarningsQuery>,
) -> Result<impl IntoResponse, AppError> {
    let page = page_request(q.page, q.per_page)?;
    let f = filter(q.from.as_deref(), q.to.as_deref(), q.hospital_id)?;
    let (entries, total) = state.repos.treatments.ledger(&f, page).await?;
    let audit = AuditPatients(entries.iter().map(|e| e.patient_id.to_string()).collect());
    let body = Page::new(
        entries.iter().map(EarningEntryResponse::from).collect(),
        page,
        total,
    );
    Ok((axum::Extension(audit), Json(body)))
}

/// Earnings per period and currency (never mixed), net of reversals.
/// Kept until the ledger changes, with an `ETag`; a matching
/// `If-None-Match` is answered 304 without reading the ledger.
#[utoipa::path(get, path = "/api/v1/earnings/summary", tag = "earnings", params(SummaryQuery, ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer: 304 while it is still current")),
    responses(
        (status = 200, body = Vec<SummaryRow>,
            headers(("ETag" = String, description = "Names these figures; send it as If-None-Match"))),
        (status = 304, description = "The figures named by If-None-Match are still current"),
        (status = 400, body = ErrorResponse)))]
pub async fn earnings_summary(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<SummaryQuery>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let f = filter(q.from.as_deref(), q.to.as_deref(), q.hospital_id)?;
    let period = match q.period {
        PeriodParam::Weekly => Period::Week,
        PeriodParam::Monthly => Period::Month,
        PeriodParam::Yearly => Period::Year,
    };
    let ctx = &state.workflows;
    if headers.contains_key(header::IF_NONE_MATCH) {
        let tag = reports::summary_tag(ctx, &f, period).await?;
        let etag = freshness::etag(&tag.digest(), "json");
        if freshness::matches(&headers, &etag) {
            return Ok(freshness::not_modified(etag));
        }
    }
    let (tag, rows) = reports::summary(ctx, f, period).await?;
    let out: Vec<SummaryRow> = rows
        .iter()
        .map(|r| SummaryRow {
            period_start: r.period_start,
            amount_minor: r.amount_minor,
            currency: r.currency.clone(),
            treatments: r.treatments,
        })
        .collect();
    let fresh = freshness::headers(freshness::etag(&tag.digest(), "json"));
    Ok((fresh, Json(out)).into_response())
}
