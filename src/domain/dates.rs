//! Calendar dates as stored (midnight UTC), the ages derived from them,
//! and the years a request may name.
//!
//! Every date and date-time a request carries is held to 1900-01-01 ..=
//! 2200-12-31 (UTC). chrono accepts years up to +-262143, where a week
//! start, a `+ 1 day` or a `- 1 ms` falls off the calendar; a bound far
//! inside that range keeps all the arithmetic done on request dates
//! finite, and no real patient, appointment or report needs more.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use mongodb::bson::DateTime as BsonDateTime;
use validator::ValidationError;

/// The first and last years a request may name (inclusive).
pub const MIN_YEAR: i32 = 1900;
pub const MAX_YEAR: i32 = 2200;

/// What an out-of-range date is told.
pub const OUT_OF_RANGE: &str = "must be between 1900-01-01 and 2200-12-31";

/// Whether `date` lies in [`MIN_YEAR`] ..= [`MAX_YEAR`].
pub fn in_bounds(date: NaiveDate) -> bool {
    (MIN_YEAR..=MAX_YEAR).contains(&date.year())
}

/// Whether the instant `at` falls on a UTC day in [`MIN_YEAR`] ..= [`MAX_YEAR`].
pub fn instant_in_bounds(at: DateTime<Utc>) -> bool {
    in_bounds(at.date_naive())
}

fn out_of_range() -> ValidationError {
    ValidationError::new("date_range").with_message(OUT_OF_RANGE.into())
}

/// validator hook for a `YYYY-MM-DD` body field.
pub fn validate_date(date: &NaiveDate) -> Result<(), ValidationError> {
    if in_bounds(*date) {
        Ok(())
    } else {
        Err(out_of_range())
    }
}

/// validator hook for an RFC 3339 body field.
pub fn validate_instant(at: &DateTime<Utc>) -> Result<(), ValidationError> {
    if instant_in_bounds(*at) {
        Ok(())
    } else {
        Err(out_of_range())
    }
}

/// Midnight UTC of `date`, as stored.
pub fn date_to_bson(date: NaiveDate) -> BsonDateTime {
    BsonDateTime::from_millis(
        date.and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc().timestamp_millis())
            .unwrap_or(0),
    )
}

pub fn bson_to_date(dt: BsonDateTime) -> NaiveDate {
    dt.to_chrono().date_naive()
}

/// Whole years between `dob` and `today`.
pub fn age_on(dob: NaiveDate, today: NaiveDate) -> i32 {
    let mut age = today.year() - dob.year();
    if (today.month(), today.day()) < (dob.month(), dob.day()) {
        age -= 1;
    }
    age
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn age_turns_on_the_birthday() {
        let dob = NaiveDate::from_ymd_opt(2000, 6, 15).unwrap();
        assert_eq!(
            age_on(dob, NaiveDate::from_ymd_opt(2020, 6, 14).unwrap()),
            19
        );
        assert_eq!(
            age_on(dob, NaiveDate::from_ymd_opt(2020, 6, 15).unwrap()),
            20
        );
    }

    #[test]
    fn dates_round_trip_through_midnight_utc() {
        let d = NaiveDate::from_ymd_opt(2026, 2, 28).unwrap();
        assert_eq!(bson_to_date(date_to_bson(d)), d);
    }

    #[test]
    fn requests_may_name_1900_to_2200() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).expect("date");
        assert!(validate_date(&d(1900, 1, 1)).is_ok());
        assert!(validate_date(&d(2200, 12, 31)).is_ok());
        assert!(validate_date(&d(1899, 12, 31)).is_err());
        assert!(validate_date(&d(2201, 1, 1)).is_err());
        assert!(validate_date(&NaiveDate::MIN).is_err());
        assert!(validate_instant(&DateTime::<Utc>::MAX_UTC).is_err());
    }

    fn any_date() -> impl Strategy<Value = NaiveDate> {
        (NaiveDate::MIN.num_days_from_ce()..=NaiveDate::MAX.num_days_from_ce())
            .prop_filter_map("a date", NaiveDate::from_num_days_from_ce_opt)
    }

    proptest! {
        #[test]
        fn any_date_round_trips_and_has_an_age(dob in any_date(), today in any_date()) {
            prop_assert_eq!(bson_to_date(date_to_bson(dob)), dob);
            let age = age_on(dob, today);
            prop_assert!((age - (today.year() - dob.year())).abs() <= 1);
            let within = (1900..=2200).contains(&dob.year());
            prop_assert_eq!(validate_date(&dob).is_ok(), within);
        }

        #[test]
        fn any_instant_is_bounded_by_its_utc_day(ms in any::<i64>()) {
            let at = BsonDateTime::from_millis(ms).to_chrono();
            let within = (1900..=2200).contains(&at.date_naive().year());
            prop_assert_eq!(validate_instant(&at).is_ok(), within);
            let _ = bson_to_date(BsonDateTime::from_millis(ms));
        }
    }
}
