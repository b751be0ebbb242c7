//! Reports and the dashboard: which reports there are, the rules on their
//! parameters, and each report laid out as a flat [`Table`] from the
//! repository's typed rows (zero-filled where a chart needs every period
//! or group); the dashboard's figures. Both are kept in [`ReportCache`]
//! until a write changes what they read.
//!
//! The HTTP layer parses the request, calls [`report`] or [`dashboard`]
//! and writes the result as JSON or CSV; nothing here knows the format.

pub mod cache;
pub mod calendar;
pub mod dashboard;
pub mod patients;
pub mod table;
pub mod treatments;

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::Ctx;
use crate::{
    domain::{iso, money},
    error::{AppError, Result},
    repo::{
        generations::Source,
        treatments::{EarningsFilter, Period, SummaryEntry},
    },
};

pub use crate::repo::reports::{PatientCount, PatientCounts, Range};
pub use cache::{Commits, ReportCache, Tag};
pub use calendar::{period_start, period_starts, Granularity};
pub use dashboard::{
    dashboard, dashboard_tag, figures, Dashboard, Earnings, RankedHospital, StatusCounts,
};
pub use table::{Cell, CellKind, Column, Table};

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

/// One of [`REPORTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Earnings,
    PatientsByDisease,
    PatientsByCountry,
    PatientsByStatus,
    PatientsByAge,
    HospitalPerformance,
    TreatmentsByType,
    Funnel,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Earnings,
        Kind::PatientsByDisease,
        Kind::PatientsByCountry,
        Kind::PatientsByStatus,
        Kind::PatientsByAge,
        Kind::HospitalPerformance,
        Kind::TreatmentsByType,
        Kind::Funnel,
    ];

    pub fn name(self) -> &'static str {
        REPORTS[self as usize]
    }

    /// The report called `name`; any other name is a 404 that lists them.
    pub fn from_name(name: &str) -> Result<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| {
                AppError::NotFound(format!(
                    "no report named {name:?}; reports: {}",
                    REPORTS.join(", ")
                ))
            })
    }

    /// The report's columns, in order: its builder lays the table out with
    /// them and the OpenAPI document types its rows from them.
    pub fn columns(self) -> &'static [Column] {
        match self {
            Kind::Earnings => &treatments::EARNINGS_COLUMNS,
            Kind::PatientsByDisease => &patients::BY_DISEASE_COLUMNS,
            Kind::PatientsByCountry => &patients::BY_COUNTRY_COLUMNS,
            Kind::PatientsByStatus => &patients::BY_STATUS_COLUMNS,
            Kind::PatientsByAge => &patients::BY_AGE_COLUMNS,
            Kind::HospitalPerformance => &treatments::HOSPITAL_PERFORMANCE_COLUMNS,
            Kind::TreatmentsByType => &treatments::TREATMENTS_BY_TYPE_COLUMNS,
            Kind::Funnel => &patients::FUNNEL_COLUMNS,
        }
    }

    /// The collections the report reads: a write to any of them changes
    /// its [`Tag`].
    pub fn reads(self) -> &'static [Source] {
        match self {
            Kind::Earnings => &[Source::Earnings],
            Kind::PatientsByDisease
            | Kind::PatientsByCountry
            | Kind::PatientsByStatus
            | Kind::PatientsByAge
            | Kind::Funnel => &[Source::Patients],
            Kind::HospitalPerformance => &[
                Source::Patients,
                Source::Treatments,
                Source::Earnings,
                Source::Hospitals,
            ],
            Kind::TreatmentsByType => &[Source::Treatments],
        }
    }

    /// The reports that count patients, and so can narrow to a country.
    fn per_patient(self) -> bool {
        matches!(
            self,
            Kind::PatientsByDisease
                | Kind::PatientsByCountry
                | Kind::PatientsByStatus
                | Kind::PatientsByAge
                | Kind::Funnel
        )
    }
}

/// What to report on.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRequest {
    pub kind: Kind,
    pub range: Range,
    /// `earnings` only; a month when absent.
    pub granularity: Option<Granularity>,
    /// The patient reports and the funnel only: ISO 3166-1 alpha-2.
    pub country: Option<String>,
}

/// A report, ready to be written in any format.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub kind: Kind,
    pub range: Range,
    pub generated_at: DateTime<Utc>,
    pub table: Table,
}

/// `a + b` for the totals the reports add up in Rust, or an error naming
/// `what` when it does not fit in an `i64`: a wrong figure is worse than
/// none. Each operand is already a MongoDB sum (see `domain::money` on why
/// this cannot happen with amounts under the cap).
fn add(a: i64, b: i64, what: &str) -> Result<i64> {
    money::sum([a, b])
        .ok_or_else(|| AppError::internal(format!("{what} overflowed 64 bits: {a} + {b}")))
}

fn check(req: &ReportRequest) -> Result<()> {
    if let Some(c) = &req.country {
        if !iso::is_country(c) {
            return Err(AppError::BadRequest(
                "country must be an ISO 3166-1 alpha-2 code such as DE".into(),
            ));
        }
    }
    if req.granularity.is_some() && req.kind != Kind::Earnings {
        return Err(AppError::BadRequest(
            "granularity applies to the earnings report only".into(),
        ));
    }
    if req.country.is_some() && !req.kind.per_patient() {
        return Err(AppError::BadRequest(
            "country applies to the patient reports and the funnel only".into(),
        ));
    }
    Ok(())
}

/// Everything a report's figures depend on besides the data: its
/// parameters, and today's date for the ages.
fn key(ctx: &Ctx, req: &ReportRequest) -> String {
    let millis = |d: Option<mongodb::bson::DateTime>| d.map(|d| d.timestamp_millis());
    let today = (req.kind == Kind::PatientsByAge).then(|| ctx.clock.today());
    format!(
        "{}|{:?}|{:?}|{:?}|{:?}|{:?}",
        req.kind.name(),
        millis(req.range.from),
        millis(req.range.before),
        req.granularity,
        req.country,
        today
    )
}

/// The [`Tag`] of the report `req` asks for, after checking that its
/// parameters apply to it: what a client's `If-None-Match` is compared
/// with before anything is computed.
pub async fn report_tag(ctx: &Ctx, req: &ReportRequest) -> Result<Tag> {
    check(req)?;
    let counts = ctx.report_cache.generations(ctx).await?;
    Ok(Tag::new(key(ctx, req), req.kind.reads(), counts))
}

/// The report `req` asks for and its tag: the one kept under that tag, or
/// built now and kept.
pub async fn report(ctx: &Ctx, req: ReportRequest) -> Result<(Tag, Arc<Report>)> {
    let tag = report_tag(ctx, &req).await?;
    let report = ctx.report_cache.report(&tag, build(ctx, req)).await?;
    Ok((tag, report))
}

/// The earnings summary's [`Tag`]: its filter and period, over the
/// ledger's write count.
pub async fn summary_tag(ctx: &Ctx, f: &EarningsFilter, period: Period) -> Result<Tag> {
    let millis = |d: Option<mongodb::bson::DateTime>| d.map(|d| d.timestamp_millis());
    let key = format!(
        "earnings-summary|{:?}|{:?}|{:?}|{:?}",
        millis(f.from),
        millis(f.before),
        f.hospital_id.map(|h| h.to_string()),
        period
    );
    let counts = ctx.report_cache.generations(ctx).await?;
    Ok(Tag::new(key, &[Source::Earnings], counts))
}

/// Net earnings per `period` and currency for `f` (`/earnings/summary`),
/// and their tag: kept like a report until the ledger changes.
pub async fn summary(
    ctx: &Ctx,
    f: EarningsFilter,
    period: Period,
) -> Result<(Tag, Arc<Vec<SummaryEntry>>)> {
    let tag = summary_tag(ctx, &f, period).await?;
    let rows = ctx
        .report_cache
        .summary(&tag, async {
            ctx.repos.treatments.summary(&f, period).await
        })
        .await?;
    Ok((tag, rows))
}

/// Builds the report `req` asks for (its parameters already checked).
async fn build(ctx: &Ctx, req: ReportRequest) -> Result<Report> {
    let (range, country) = (req.range, req.country.as_deref());
    let table = match req.kind {
        Kind::Earnings => {
            let g = req.granularity.unwrap_or(Granularity::Month);
            treatments::earnings(ctx, range, g).await
        }
        Kind::PatientsByDisease => patients::by_disease(ctx, range, country).await,
        Kind::PatientsByCountry => patients::by_country(ctx, range, country).await,
        Kind::PatientsByStatus => patients::by_status(ctx, range, country).await,
        Kind::PatientsByAge => patients::by_age(ctx, range, country, ctx.clock.today()).await,
        Kind::HospitalPerformance => treatments::hospital_performance(ctx, range).await,
        Kind::TreatmentsByType => treatments::treatments_by_type(ctx, range).await,
        Kind::Funnel => patients::funnel(ctx, range, country).await,
    }?;
    Ok(Report {
        kind: req.kind,
        range,
        generated_at: ctx.clock.now(),
        table,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_report_name_is_one_kind() {
        for (kind, name) in Kind::ALL.into_iter().zip(REPORTS) {
            assert_eq!(kind.name(), name);
            assert_eq!(Kind::from_name(name).ok(), Some(kind));
        }
        assert!(matches!(
            Kind::from_name("nope"),
            Err(AppError::NotFound(_))
        ));
    }
}
