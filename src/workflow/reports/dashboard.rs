//! The dashboard: its figures, computed in one round of queries issued
//! together, and [`DashboardCache`], which reuses them briefly.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use futures::future::try_join_all;
use tokio::sync::Mutex;

use super::{
    calendar::{period_start, Granularity},
    table::by_count_desc,
};
use crate::{
    domain::{dates::date_to_bson, money::Money, patient::TreatmentStatus, HospitalId},
    error::{AppError, Result},
    repo::reports::{Clock, PatientCount, PatientCounts, Range},
    workflow::Ctx,
};

/// Live patients per treatment status.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusCounts {
    pub inquiry: i64,
    pub ready: i64,
    pub coming: i64,
    pub completed: i64,
    pub denied: i64,
}

/// Net ledger earnings (reversals netted out), one entry per currency.
#[derive(Debug, Clone, PartialEq)]
pub struct Earnings {
    pub all_time: Vec<Money>,
    pub this_month: Vec<Money>,
    pub this_year: Vec<Money>,
    /// Only when the dashboard has a period.
    pub in_period: Option<Vec<Money>>,
}

/// One of a currency's top hospitals, with its name if it still exists.
#[derive(Debug, Clone, PartialEq)]
pub struct RankedHospital {
    pub hospital_id: HospitalId,
    pub name: Option<String>,
    pub earnings: Money,
}

/// The dashboard's figures at `generated_at`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dashboard {
    pub generated_at: DateTime<Utc>,
    /// Narrows new patients, earnings and the top lists.
    pub period: Option<Range>,
    pub patients: PatientCounts,
    pub by_treatment_status: StatusCounts,
    pub earnings: Earnings,
    /// At most five, by patients.
    pub top_countries: Vec<PatientCount>,
    /// At most five, by patients, then name.
    pub top_diseases: Vec<PatientCount>,
    /// Per currency (alphabetical), at most five by earnings: this year's,
    /// or the period's.
    pub top_hospitals: Vec<RankedHospital>,
}

/// The moments the dashboard counts from, at `now` (UTC); an error only
/// for a clock at the very edge of chrono's calendar.
pub fn moments(now: DateTime<Utc>) -> Result<Clock> {
    let today = now.date_naive();
    let off_calendar = || AppError::internal(format!("the clock reads {now}, off the calendar"));
    let start = |g| {
        period_start(today, g)
            .map(date_to_bson)
            .ok_or_else(off_calendar)
    };
    Ok(Clock {
        today: date_to_bson(today),
        tomorrow: date_to_bson(today.succ_opt().ok_or_else(off_calendar)?),
        week_start: start(Granularity::Week)?,
        month_start: start(Granularity::Month)?,
        year_start: start(Granularity::Year)?,
    })
}

fn status_counts(rows: Vec<PatientCount>) -> StatusCounts {
    let by_status: HashMap<String, i64> = rows.into_iter().map(|r| (r.group, r.patients)).collect();
    let n = |s: TreatmentStatus| by_status.get(s.as_str()).copied().unwrap_or(0);
    StatusCounts {
        inquiry: n(TreatmentStatus::Inquiry),
        ready: n(TreatmentStatus::Ready),
        coming: n(TreatmentStatus::Coming),
        completed: n(TreatmentStatus::Completed),
        denied: n(TreatmentStatus::Denied),
    }
}

/// The dashboard's figures at `now`: every count and group is issued at
/// once; only the top hospitals wait, for the currencies they rank in.
pub async fn figures(ctx: &Ctx, now: DateTime<Utc>, period: Option<Range>) -> Result<Dashboard> {
    let clock = moments(now)?;
    let reports = &ctx.repos.reports;
    let since = |from| Range {
        from: Some(from),
        before: None,
    };
    let ranked = period.unwrap_or(since(clock.year_start));
    let (patients, statuses, top_countries, diseases, all_time, this_month, this_year, in_range) =
        tokio::try_join!(
            reports.patient_counts(clock, period),
            reports.treatment_status_counts(),
            reports.top_countries(period),
            reports.disease_counts(period),
            reports.earnings_by_currency(Range::default()),
            reports.earnings_by_currency(since(clock.month_start)),
            reports.earnings_by_currency(since(clock.year_start)),
            reports.earnings_by_currency(ranked),
        )?;
    let top_hospitals = top_hospitals(ctx, ranked, &in_range).await?;
    let mut top_diseases = by_count_desc(diseases);
    top_diseases.truncate(5);
    Ok(Dashboard {
        generated_at: now,
        period,
        patients,
        by_treatment_status: status_counts(statuses),
        earnings: Earnings {
            all_time,
            this_month,
            this_year,
            in_period: period.map(|_| in_range),
        },
        top_countries,
        top_diseases,
        top_hospitals,
    })
}

/// The top hospitals of each currency in `earned` (in that order), named.
async fn top_hospitals(ctx: &Ctx, ranked: Range, earned: &[Money]) -> Result<Vec<RankedHospital>> {
    let reports = &ctx.repos.reports;
    let tops = try_join_all(
        earned
            .iter()
            .map(|m| reports.top_hospitals(ranked, &m.currency)),
    )
    .await?;
    let top: Vec<_> = tops.into_iter().flatten().collect();
    let ids: Vec<HospitalId> = top.iter().map(|t| t.hospital_id).collect();
    let names: HashMap<HospitalId, String> = if ids.is_empty() {
        HashMap::new()
    } else {
        ctx.repos
            .hospitals
            .with_ids(&ids)
            .await?
            .into_iter()
            .map(|h| (h.id, h.name))
            .collect()
    };
    Ok(top
        .into_iter()
        .map(|t| RankedHospital {
            name: names.get(&t.hospital_id).cloned(),
            hospital_id: t.hospital_id,
            earnings: t.earnings,
        })
        .collect())
}

type PeriodKey = (Option<i64>, Option<i64>);

/// Recent dashboards per period. The lock is held while one is computed, so
/// a burst of requests costs the database one computation, not one each.
#[derive(Clone, Default)]
pub struct DashboardCache {
    entries: Arc<Mutex<HashMap<PeriodKey, (Instant, Dashboard)>>>,
}

/// Most periods kept at once.
const DASHBOARD_CACHE_ENTRIES: usize = 64;

/// The dashboard for `period`, reused while younger than
/// `config.dashboard_cache_ttl` (a zero TTL computes it every time).
pub async fn dashboard(ctx: &Ctx, period: Option<Range>) -> Result<Dashboard> {
    let ttl: Duration = ctx.config.dashboard_cache_ttl;
    if ttl.is_zero() {
        return figures(ctx, ctx.clock.now(), period).await;
    }
    let range = period.unwrap_or_default();
    let key = (
        range.from.map(|d| d.timestamp_millis()),
        range.before.map(|d| d.timestamp_millis()),
    );
    let mut entries = ctx.dashboard.entries.lock().await;
    if let Some((at, cached)) = entries.get(&key) {
        if at.elapsed() < ttl {
            crate::metrics::cache_lookup("dashboard", true);
            return Ok(cached.clone());
        }
    }
    crate::metrics::cache_lookup("dashboard", false);
    let fresh = figures(ctx, ctx.clock.now(), period).await?;
    entries.retain(|_, (at, _)| at.elapsed() < ttl);
    if entries.len() < DASHBOARD_CACHE_ENTRIES {
        entries.insert(key, (Instant::now(), fresh.clone()));
    }
    Ok(fresh)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn the_dashboard_counts_from_midnight_monday_and_the_first_utc() {
        // A Sunday, late in the evening.
        let now = Utc
            .with_ymd_and_hms(2026, 11, 29, 23, 30, 0)
            .single()
            .expect("time");
        let day = |y, m, d| date_to_bson(chrono::NaiveDate::from_ymd_opt(y, m, d).expect("date"));
        let c = moments(now).expect("moments");
        assert_eq!(c.today, day(2026, 11, 29));
        assert_eq!(c.tomorrow, day(2026, 11, 30));
        assert_eq!(c.week_start, day(2026, 11, 23));
        assert_eq!(c.month_start, day(2026, 11, 1));
        assert_eq!(c.year_start, day(2026, 1, 1));
    }
}
