//! The dashboard: its figures, computed in one round of queries issued
//! together and kept in the report cache until what they read changes.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use chrono::{DateTime, Utc};
use mongodb::bson::DateTime as BsonDateTime;

use super::{
    cache::Tag,
    calendar::{period_start, Granularity},
    table::by_count_desc,
};
use crate::{
    domain::{
        dates::date_to_bson,
        money::Money,
        patient::TreatmentStatus,
        zone::{self, Tz},
        HospitalId,
    },
    error::{AppError, Result},
    repo::{
        generations::Source,
        reports::{Clock, HospitalEarningsRow, PatientCount, PatientCounts, Range},
    },
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

/// The moments the dashboard counts from, at `now` in `tz`: `today` and
/// `tomorrow` as the calendar dates follow-ups are kept as, and the week's
/// (from Monday), month's and year's starts as the instants their local
/// midnights fall on. An error only for a clock at the very edge of
/// chrono's calendar.
pub fn moments(now: DateTime<Utc>, tz: Tz) -> Result<Clock> {
    let today = zone::today(now, tz);
    let off_calendar = || AppError::internal(format!("the clock reads {now}, off the calendar"));
    let start = |g| {
        period_start(today, g)
            .map(|day| BsonDateTime::from_chrono(zone::start_of_day(day, tz)))
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
pub async fn figures(
    ctx: &Ctx,
    now: DateTime<Utc>,
    period: Option<Range>,
    tz: Tz,
) -> Result<Dashboard> {
    let clock = moments(now, tz)?;
    let reports = &ctx.repos.reports;
    let since = |from| Range {
        from: Some(from),
        before: None,
    };
    let ranked = period.unwrap_or(since(clock.year_start));
    // One group per hospital and currency over the ranked range (this year
    // without a period) gives both that range's earnings per currency and
    // each currency's top hospitals. Without a period, all-time earnings
    // are those before this year plus this year's, so no entry of this
    // year is read twice; with one, this year's and all-time earnings are
    // asked for apart.
    let (this_year_apart, earlier) = match period {
        Some(_) => (Some(since(clock.year_start)), Range::default()),
        None => (
            None,
            Range {
                from: None,
                before: Some(clock.year_start),
            },
        ),
    };
    let this_year_apart = async {
        match this_year_apart {
            Some(r) => reports.earnings_by_currency(r).await.map(Some),
            None => Ok(None),
        }
    };
    let ((patients, statuses), top_countries, diseases, earlier, this_month, per_hospital, year) =
        tokio::try_join!(
            reports.patient_counts(clock, period),
            reports.top_countries(period),
            reports.disease_counts(period),
            reports.earnings_by_currency(earlier),
            reports.earnings_by_currency(since(clock.month_start)),
            reports.hospital_earnings(ranked),
            this_year_apart,
        )?;
    let (in_range, top) = rank_hospitals(per_hospital)?;
    let (all_time, this_year, in_period) = match year {
        Some(year) => (earlier, year, Some(in_range)),
        None => (merge_earnings(&earlier, &in_range)?, in_range, None),
    };
    let top_hospitals = name_hospitals(ctx, top).await?;
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
            in_period,
        },
        top_countries,
        top_diseases,
        top_hospitals,
    })
}

/// A currency's hospitals ranked by net earnings, at most this many.
const TOP_HOSPITALS: usize = 5;

/// The ranked range's net earnings per currency (by currency), and each
/// currency's top hospitals (in currency order, by earnings descending,
/// then id), from its rows per hospital and currency. A row whose hospital
/// id does not parse counts in its currency's total but is not ranked.
fn rank_hospitals(rows: Vec<HospitalEarningsRow>) -> Result<(Vec<Money>, Vec<RankedHospital>)> {
    let mut per_currency: BTreeMap<String, (i64, Vec<(HospitalId, i64)>)> = BTreeMap::new();
    for r in rows {
        let (total, hospitals) = per_currency.entry(r.currency).or_default();
        *total = super::add(*total, r.amount_minor, "a currency's earnings")?;
        if let Some(id) = r.hospital_id {
            hospitals.push((id, r.amount_minor));
        }
    }
    let mut totals = Vec::with_capacity(per_currency.len());
    let mut top = Vec::new();
    for (currency, (total, mut hospitals)) in per_currency {
        hospitals.sort_by_cached_key(|(id, amount)| (std::cmp::Reverse(*amount), id.to_string()));
        top.extend(
            hospitals
                .into_iter()
                .take(TOP_HOSPITALS)
                .map(|(id, amount)| RankedHospital {
                    hospital_id: id,
                    name: None,
                    earnings: Money {
                        amount_minor: amount,
                        currency: currency.clone(),
                    },
                }),
        );
        totals.push(Money {
            amount_minor: total,
            currency,
        });
    }
    Ok((totals, top))
}

/// The sums per currency of `a` and `b`, by currency.
fn merge_earnings(a: &[Money], b: &[Money]) -> Result<Vec<Money>> {
    let mut sums: BTreeMap<&str, i64> = BTreeMap::new();
    for m in a.iter().chain(b) {
        let sum = sums.entry(&m.currency).or_default();
        *sum = super::add(*sum, m.amount_minor, "a currency's earnings")?;
    }
    Ok(sums
        .into_iter()
        .map(|(currency, amount_minor)| Money {
            amount_minor,
            currency: currency.to_owned(),
        })
        .collect())
}

/// `top` with the hospitals' names.
async fn name_hospitals(ctx: &Ctx, mut top: Vec<RankedHospital>) -> Result<Vec<RankedHospital>> {
    if top.is_empty() {
        return Ok(top);
    }
    let ids: Vec<HospitalId> = top.iter().map(|t| t.hospital_id).collect();
    let names: HashMap<HospitalId, String> = ctx
        .repos
        .hospitals
        .with_ids(&ids)
        .await?
        .into_iter()
        .map(|h| (h.id, h.name))
        .collect();
    for t in &mut top {
        t.name = names.get(&t.hospital_id).cloned();
    }
    Ok(top)
}

/// The collections the dashboard reads.
const DASHBOARD_READS: [Source; 3] = [Source::Patients, Source::Earnings, Source::Hospitals];

/// The dashboard's [`Tag`] for `period` seen from `tz` now: its figures
/// depend on the data, the period, and the day, week, month and year `now`
/// falls in there (all fixed by the local date and the zone).
pub async fn dashboard_tag(ctx: &Ctx, period: Option<Range>, tz: Tz) -> Result<Tag> {
    let range = period.unwrap_or_default();
    let millis = |d: Option<BsonDateTime>| d.map(|d| d.timestamp_millis());
    let key = format!(
        "{:?}|{:?}|{}|{}",
        millis(range.from),
        millis(range.before),
        tz.name(),
        zone::today(ctx.clock.now(), tz)
    );
    let counts = ctx.report_cache.generations(ctx).await?;
    Ok(Tag::new(key, &DASHBOARD_READS, counts))
}

/// The dashboard for `period` as seen from `tz`, and its tag: the figures
/// kept under that tag, or computed now and kept.
pub async fn dashboard(ctx: &Ctx, period: Option<Range>, tz: Tz) -> Result<(Tag, Arc<Dashboard>)> {
    let tag = dashboard_tag(ctx, period, tz).await?;
    let figures = ctx
        .report_cache
        .dashboard(&tag, figures(ctx, ctx.clock.now(), period, tz))
        .await?;
    Ok((tag, figures))
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
        let c = moments(now, Tz::UTC).expect("moments");
        assert_eq!(c.today, day(2026, 11, 29));
        assert_eq!(c.tomorrow, day(2026, 11, 30));
        assert_eq!(c.week_start, day(2026, 11, 23));
        assert_eq!(c.month_start, day(2026, 11, 1));
        assert_eq!(c.year_start, day(2026, 1, 1));
    }

    fn at(s: &str) -> BsonDateTime {
        BsonDateTime::from_chrono(
            chrono::DateTime::parse_from_rfc3339(s)
                .expect("instant")
                .with_timezone(&Utc),
        )
    }

    #[test]
    fn in_kolkata_a_new_week_month_and_year_begin_at_its_midnight() {
        // 2026-12-31T18:45Z is 00:15 on Friday 2027-01-01 in Kolkata (+05:30).
        let now = Utc
            .with_ymd_and_hms(2026, 12, 31, 18, 45, 0)
            .single()
            .expect("time");
        let day = |y, m, d| date_to_bson(chrono::NaiveDate::from_ymd_opt(y, m, d).expect("date"));
        let c = moments(now, Tz::Asia__Kolkata).expect("moments");
        assert_eq!(c.today, day(2027, 1, 1));
        assert_eq!(c.tomorrow, day(2027, 1, 2));
        assert_eq!(c.week_start, at("2026-12-27T18:30:00Z"));
        assert_eq!(c.month_start, at("2026-12-31T18:30:00Z"));
        assert_eq!(c.year_start, at("2026-12-31T18:30:00Z"));
        // In UTC it is still Thursday 2026-12-31.
        let utc = moments(now, Tz::UTC).expect("moments");
        assert_eq!(utc.today, day(2026, 12, 31));
        assert_eq!(utc.year_start, day(2026, 1, 1));
    }

    #[test]
    fn in_los_angeles_the_old_day_lasts_until_its_midnight() {
        // 2026-02-02T07:45Z is 23:45 on Sunday 2026-02-01 in Los Angeles (-08:00).
        let now = Utc
            .with_ymd_and_hms(2026, 2, 2, 7, 45, 0)
            .single()
            .expect("time");
        let day = |y, m, d| date_to_bson(chrono::NaiveDate::from_ymd_opt(y, m, d).expect("date"));
        let c = moments(now, Tz::America__Los_Angeles).expect("moments");
        assert_eq!(c.today, day(2026, 2, 1));
        assert_eq!(c.week_start, at("2026-01-26T08:00:00Z"));
        assert_eq!(c.month_start, at("2026-02-01T08:00:00Z"));
        let utc = moments(now, Tz::UTC).expect("moments");
        assert_eq!(utc.today, day(2026, 2, 2));
        assert_eq!(utc.week_start, day(2026, 2, 2));
    }

    #[test]
    fn hospitals_rank_per_currency_by_earnings_then_id() {
        let id = |n: u8| format!("{n:024x}").parse::<HospitalId>().expect("id");
        let row = |h: Option<HospitalId>, currency: &str, amount_minor| HospitalEarningsRow {
            hospital_id: h,
            currency: currency.into(),
            amount_minor,
        };
        let mut rows: Vec<_> = (1..=7)
            .map(|n| row(Some(id(n)), "USD", i64::from(n) * 10))
            .collect();
        rows.extend([
            row(Some(id(9)), "EUR", 50),
            row(Some(id(8)), "EUR", 50),
            row(Some(id(7)), "EUR", -5),
            // An id that did not parse: counted, never ranked.
            row(None, "EUR", 1_000),
        ]);
        let (totals, top) = rank_hospitals(rows).expect("ranked");
        let money = |amount_minor, currency: &str| Money {
            amount_minor,
            currency: currency.into(),
        };
        assert_eq!(totals, [money(1_095, "EUR"), money(280, "USD")]);
        let ranked: Vec<(HospitalId, i64)> = top
            .iter()
            .map(|t| (t.hospital_id, t.earnings.amount_minor))
            .collect();
        assert_eq!(
            ranked,
            [
                (id(8), 50),
                (id(9), 50),
                (id(7), -5),
                (id(7), 70),
                (id(6), 60),
                (id(5), 50),
                (id(4), 40),
                (id(3), 30),
            ],
            "EUR first, ties by id; five per currency"
        );
        let overflow = vec![
            row(Some(id(1)), "EUR", i64::MAX),
            row(Some(id(2)), "EUR", 1),
        ];
        assert!(rank_hospitals(overflow).is_err(), "an overflow is an error");
    }

    #[test]
    fn earnings_before_this_year_and_in_it_add_up_per_currency() {
        let m = |amount_minor, currency: &str| Money {
            amount_minor,
            currency: currency.into(),
        };
        let before = [m(100, "EUR"), m(-20, "TRY")];
        let this_year = [m(5, "EUR"), m(7, "USD")];
        assert_eq!(
            merge_earnings(&before, &this_year).expect("merged"),
            [m(105, "EUR"), m(-20, "TRY"), m(7, "USD")]
        );
        assert_eq!(merge_earnings(&[], &[]).expect("merged"), []);
        assert!(merge_earnings(&[m(i64::MAX, "EUR")], &[m(1, "EUR")]).is_err());
    }
}
