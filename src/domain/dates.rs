//! Calendar dates as stored (midnight UTC) and the ages derived from them.

use chrono::{Datelike, NaiveDate};
use mongodb::bson::DateTime as BsonDateTime;

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
}
