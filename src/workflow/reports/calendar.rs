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
}
