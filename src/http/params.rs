//! Path and query parameters shared by several resources, and the parsers
//! for their values.

use chrono::{DateTime, NaiveDate, Utc};
use mongodb::bson::DateTime as BsonDateTime;
use serde::{Deserialize, Deserializer};
use utoipa::IntoParams;
use validator::Validate;

use crate::{
    auth::cache::Principal,
    domain::{
        dates::{in_bounds, instant_in_bounds, OUT_OF_RANGE},
        zone::{self, Tz},
        PatientId,
    },
    error::AppError,
};

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageOnly {
    #[param(minimum = 1, maximum = 1_000_000)]
    pub page: Option<u64>,
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<u64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct PatientPath {
    /// The patient's id.
    pub id: PatientId,
}

/// Distinguishes an absent field (`None`) from an explicit `null`
/// (`Some(None)`, which clears the field).
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Query parameters renamed so that every date filter is `from`/`to`: the
/// old names still work until v2 and are marked deprecated in the OpenAPI
/// document. `(path, old name)`.
pub const DEPRECATED_PARAMS: [(&str, &str); 3] = [
    ("/api/v1/patients", "created_from"),
    ("/api/v1/patients", "created_to"),
    ("/api/v1/follow-ups", "due_before"),
];

/// A query parameter that was renamed: its value under the new name or the
/// deprecated old one, with the name the caller used (for messages); 400
/// when both are sent.
pub fn renamed<T>(
    new: &'static str,
    new_value: Option<T>,
    old: &'static str,
    old_value: Option<T>,
) -> Result<(&'static str, Option<T>), AppError> {
    match (new_value, old_value) {
        (Some(_), Some(_)) => Err(AppError::BadRequest(format!(
            "send {new} or {old} (its deprecated name), not both"
        ))),
        (Some(v), None) => Ok((new, Some(v))),
        (None, Some(v)) => Ok((old, Some(v))),
        (None, None) => Ok((new, None)),
    }
}

/// The time zone a request reads its dates in: its `tz` when given (400 for
/// a name that is not an IANA zone), else the caller's profile zone, else UTC.
pub fn zone_of(tz: Option<&str>, me: &Principal) -> Result<Tz, AppError> {
    match tz {
        Some(raw) => zone::parse(raw).ok_or_else(|| {
            AppError::BadRequest(
                "tz must be an IANA time zone name such as Asia/Kolkata, America/Los_Angeles or UTC"
                    .into(),
            )
        }),
        None => Ok(me.time_zone.unwrap_or(Tz::UTC)),
    }
}

/// A date bound from a query: `YYYY-MM-DD` or RFC 3339, on a UTC day in
/// 1900 ..= 2200 (see [`crate::domain::dates`]). `end_of_day` turns a date
/// into the start of the next day (an exclusive bound).
pub fn parse_bound(field: &str, raw: &str, end_of_day: bool) -> Result<BsonDateTime, AppError> {
    parse_bound_in(field, raw, end_of_day, Tz::UTC)
}

/// [`parse_bound`] with a date read in `tz`: `2026-03-10` in Asia/Kolkata
/// starts at 2026-03-09T18:30Z. An RFC 3339 timestamp carries its own offset.
pub fn parse_bound_in(
    field: &str,
    raw: &str,
    end_of_day: bool,
    tz: Tz,
) -> Result<BsonDateTime, AppError> {
    let out_of_range = || AppError::BadRequest(format!("{field} {OUT_OF_RANGE}"));
    if let Ok(d) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        if !in_bounds(d) {
            return Err(out_of_range());
        }
        let d = if end_of_day {
            d.succ_opt().ok_or_else(out_of_range)?
        } else {
            d
        };
        return Ok(BsonDateTime::from_chrono(zone::start_of_day(d, tz)));
    }
    let at = DateTime::parse_from_rfc3339(raw)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| {
            AppError::BadRequest(format!(
                "{field} must be YYYY-MM-DD or an RFC 3339 timestamp"
            ))
        })?;
    if !instant_in_bounds(at) {
        return Err(out_of_range());
    }
    Ok(BsonDateTime::from_chrono(at))
}

/// A `from`/`to` window from a query (see [`parse_bound`]): the start and
/// the exclusive end; 400 when `from` is not before `to`.
pub fn date_window(
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(Option<BsonDateTime>, Option<BsonDateTime>), AppError> {
    let from = from.map(|v| parse_bound("from", v, false)).transpose()?;
    let before = to.map(|v| parse_bound("to", v, true)).transpose()?;
    if let (Some(f), Some(b)) = (from, before) {
        if f >= b {
            return Err(AppError::BadRequest("from must be before to".into()));
        }
    }
    Ok((from, before))
}

#[cfg(test)]
mod tests {
    use chrono::Datelike;
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn bounds_outside_1900_to_2200_are_refused() {
        for raw in [
            "-262143-01-01",
            "+262142-12-31",
            "1899-12-31",
            "2201-01-01",
            "1899-12-31T23:59:59Z",
            "2200-12-31T23:00:00-05:00",
        ] {
            let err = parse_bound("from", raw, false).expect_err(raw);
            assert!(
                matches!(&err, AppError::BadRequest(m) if m == "from must be between 1900-01-01 and 2200-12-31"),
                "{raw}: {err:?}"
            );
        }
        for raw in [
            "1900-01-01",
            "2200-12-31",
            "1900-01-01T00:00:00Z",
            "2200-12-31T23:59:59.999Z",
        ] {
            assert!(parse_bound("to", raw, true).is_ok(), "{raw}");
        }
        let last = parse_bound("to", "2200-12-31", true).expect("ok");
        assert_eq!(last.to_chrono().to_rfc3339(), "2201-01-01T00:00:00+00:00");
    }

    proptest! {
        #[test]
        fn any_string_parses_or_is_a_400(raw in any::<String>(), end in any::<bool>()) {
            match parse_bound("from", &raw, end) {
                // 2201-01-01T00:00Z only as the exclusive end of 2200-12-31.
                Ok(d) => prop_assert!((1900..=2201).contains(&d.to_chrono().year())),
                Err(e) => prop_assert!(matches!(e, AppError::BadRequest(_))),
            }
        }

        #[test]
        fn any_chrono_date_parses_or_is_a_400(
            days in NaiveDate::MIN.num_days_from_ce()..=NaiveDate::MAX.num_days_from_ce(),
            end in any::<bool>(),
        ) {
            let Some(d) = NaiveDate::from_num_days_from_ce_opt(days) else {
                return Ok(());
            };
            for raw in [d.format("%Y-%m-%d").to_string(), format!("{d}T12:00:00+14:00")] {
                let parsed = parse_bound("to", &raw, end);
                // Noon at +14:00 on 1900-01-01 is still 1899 in UTC.
                let first_day_east = raw.contains('T') && d.to_string() == "1900-01-01";
                prop_assert_eq!(parsed.is_ok(), in_bounds(d) && !first_day_east, "{}", raw);
            }
        }

        #[test]
        fn date_like_strings_parse_or_are_a_400(raw in "[+-]?[0-9]{1,7}-[0-9]{1,2}-[0-9]{1,2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2}))?") {
            if let Err(e) = parse_bound("from", &raw, true) {
                prop_assert!(matches!(e, AppError::BadRequest(_)));
            }
        }
    }
}
