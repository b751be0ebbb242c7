//! Calendar maths for the period series: where a week, month or year
//! starts (UTC, weeks from Monday) and every period start in a range.

use chrono::{Datelike, Days, Months, NaiveDate};

use crate::{error::AppError, repo::treatments::Period};

/// The length of one period of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    Week,
    Month,
    Year,
}

impl From<Granularity> for Period {
    fn from(g: Granularity) -> Self {
        match g {
            Granularity::Week => Period::Week,
            Granularity::Month => Period::Month,
            Granularity::Year => Period::Year,
        }
    }
}

/// The start of the period `day` falls in (weeks start Monday); `None`
/// for a week that would begin before chrono's first date.
pub fn period_start(day: NaiveDate, g: Granularity) -> Option<NaiveDate> {
    match g {
        Granularity::Week => {
            day.checked_sub_days(Days::new(u64::from(day.weekday().num_days_from_monday())))
        }
        Granularity::Month => day.with_day(1),
        Granularity::Year => NaiveDate::from_ymd_opt(day.year(), 1, 1),
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
    let start = period_start(first, g).ok_or_else(|| {
        AppError::BadRequest(format!("the range must start after {}", NaiveDate::MIN))
    })?;
    let mut at = Some(start);
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("date")
    }

    #[test]
    fn periods_start_on_monday_the_first_and_new_year() {
        // 2026-11-23 is a Monday; 2026-11-29 a Sunday.
        assert_eq!(
            period_start(d(2026, 11, 29), Granularity::Week),
            Some(d(2026, 11, 23))
        );
        assert_eq!(
            period_start(d(2026, 11, 23), Granularity::Week),
            Some(d(2026, 11, 23))
        );
        assert_eq!(
            period_start(d(2026, 11, 29), Granularity::Month),
            Some(d(2026, 11, 1))
        );
        assert_eq!(
            period_start(d(2026, 11, 29), Granularity::Year),
            Some(d(2026, 1, 1))
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

    /// The week of chrono's first date may begin before it, and nothing
    /// follows its last: the series functions answer, never panic, at both.
    #[test]
    fn the_edges_of_the_calendar_do_not_panic() {
        let (min, max) = (NaiveDate::MIN, NaiveDate::MAX);
        for g in [Granularity::Week, Granularity::Month, Granularity::Year] {
            let _ = period_start(min, g);
            let _ = period_start(max, g);
            let _ = period_starts(min, max, g);
            let _ = period_starts(max, max, g);
            let _ = period_starts(min, min, g);
        }
    }

    fn granularity() -> impl Strategy<Value = Granularity> {
        prop_oneof![
            Just(Granularity::Week),
            Just(Granularity::Month),
            Just(Granularity::Year)
        ]
    }

    fn any_date() -> impl Strategy<Value = NaiveDate> {
        (NaiveDate::MIN.num_days_from_ce()..=NaiveDate::MAX.num_days_from_ce())
            .prop_filter_map("a date", NaiveDate::from_num_days_from_ce_opt)
    }

    proptest! {
        #[test]
        fn a_period_starts_on_or_before_its_day(day in any_date(), g in granularity()) {
            if let Some(start) = period_start(day, g) {
                prop_assert!(start <= day);
                prop_assert_eq!(period_start(start, g), Some(start));
            }
        }

        #[test]
        fn a_series_is_ordered_bounded_and_never_panics(
            a in any_date(),
            b in any_date(),
            g in granularity(),
        ) {
            if let Ok(starts) = period_starts(a, b, g) {
                prop_assert!(starts.len() <= MAX_PERIODS);
                prop_assert!(starts.windows(2).all(|w| w[0] < w[1]));
                prop_assert!(starts.iter().all(|d| *d <= b));
            }
        }

        #[test]
        fn a_series_within_a_year_never_fails(
            days in 0_i32..365,
            len in 0_u64..366,
            g in granularity(),
        ) {
            let first = d(1900, 1, 1) + chrono::Duration::days(i64::from(days) * 300);
            let last = first + Days::new(len);
            let starts = period_starts(first, last, g);
            prop_assert!(starts.is_ok());
        }
    }
}
