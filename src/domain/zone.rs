//! Time zones: what "today", "this week" and a date-only bound mean for a
//! caller. An IANA name (`Asia/Kolkata`, `America/Los_Angeles`) from the
//! request's `tz`, else the user's profile `time_zone`, else UTC.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
pub use chrono_tz::Tz;
use validator::ValidationError;

/// The zone named `raw` (an IANA name, matched exactly).
pub fn parse(raw: &str) -> Option<Tz> {
    raw.parse::<Tz>().ok()
}

/// Validator rule for a stored or submitted zone name.
pub fn validate(raw: &str) -> Result<(), ValidationError> {
    match parse(raw) {
        Some(_) => Ok(()),
        None => Err(ValidationError::new("time_zone")
            .with_message("must be an IANA time zone name such as Asia/Kolkata or UTC".into())),
    }
}

/// The calendar date at `now` in `tz`.
pub fn today(now: DateTime<Utc>, tz: Tz) -> NaiveDate {
    now.with_timezone(&tz).date_naive()
}

/// The instant `day` begins in `tz`: its local midnight, or, in a zone
/// whose clocks skip midnight that day, the first local time that exists.
pub fn start_of_day(day: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let mut local = day.and_time(NaiveTime::MIN);
    // Gaps are at most a few hours; step through them a quarter at a time.
    for _ in 0..=(24 * 4) {
        match tz.from_local_datetime(&local) {
            LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => {
                return at.with_timezone(&Utc)
            }
            LocalResult::None => local += Duration::minutes(15),
        }
    }
    // No zone skips a whole day at midnight; fall back to UTC midnight.
    day.and_time(NaiveTime::MIN).and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("instant")
            .with_timezone(&Utc)
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn names_are_iana_names() {
        assert_eq!(parse("Asia/Kolkata"), Some(Tz::Asia__Kolkata));
        assert_eq!(parse("UTC"), Some(Tz::UTC));
        for bad in ["", "IST", "+05:30", "asia/kolkata ", "Mars/Olympus"] {
            assert!(parse(bad).is_none(), "{bad:?}");
            assert!(validate(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn today_turns_over_at_local_midnight() {
        // 18:29 UTC is 23:59 in Kolkata (UTC+05:30); 18:30 is 00:00 there.
        assert_eq!(
            today(at("2026-03-10T18:29:00Z"), Tz::Asia__Kolkata),
            day("2026-03-10")
        );
        assert_eq!(
            today(at("2026-03-10T18:30:00Z"), Tz::Asia__Kolkata),
            day("2026-03-11")
        );
        // 07:59 UTC is 23:59 the day before in Los Angeles (UTC-08:00 in
        // January); 08:00 is its midnight.
        let la = Tz::America__Los_Angeles;
        assert_eq!(today(at("2026-01-16T07:59:00Z"), la), day("2026-01-15"));
        assert_eq!(today(at("2026-01-16T08:00:00Z"), la), day("2026-01-16"));
        assert_eq!(
            today(at("2026-01-16T07:59:00Z"), Tz::UTC),
            day("2026-01-16")
        );
    }

    #[test]
    fn a_day_starts_at_its_local_midnight() {
        assert_eq!(
            start_of_day(day("2026-03-10"), Tz::Asia__Kolkata),
            at("2026-03-09T18:30:00Z")
        );
        assert_eq!(
            start_of_day(day("2026-01-15"), Tz::America__Los_Angeles),
            at("2026-01-15T08:00:00Z")
        );
        // Summer time: UTC-07:00.
        assert_eq!(
            start_of_day(day("2026-07-01"), Tz::America__Los_Angeles),
            at("2026-07-01T07:00:00Z")
        );
        assert_eq!(
            start_of_day(day("2026-07-01"), Tz::UTC),
            at("2026-07-01T00:00:00Z")
        );
    }

    #[test]
    fn a_day_whose_midnight_is_skipped_starts_when_the_clocks_resume() {
        // Santiago moved its clocks from 00:00 to 01:00 on 2026-09-06.
        let tz = Tz::America__Santiago;
        let start = start_of_day(day("2026-09-06"), tz);
        assert_eq!(today(start, tz), day("2026-09-06"));
        assert_eq!(start, at("2026-09-06T04:00:00Z"));
    }
}
