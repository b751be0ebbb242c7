//! Path and query parameters shared by several resources, and the parsers
//! for their values.

use chrono::{DateTime, NaiveDate, Utc};
use mongodb::bson::DateTime as BsonDateTime;
use serde::{Deserialize, Deserializer};
use utoipa::IntoParams;
use validator::Validate;

use crate::{
    domain::{dates::date_to_bson, PatientId},
    error::AppError,
};

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageOnly {
    pub page: Option<u64>,
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

/// A date bound from a query: `YYYY-MM-DD` or RFC 3339. `end_of_day`
/// turns a date into the start of the next day (an exclusive bound).
pub fn parse_bound(field: &str, raw: &str, end_of_day: bool) -> Result<BsonDateTime, AppError> {
    if let Ok(d) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        let d = if end_of_day {
            d.succ_opt().unwrap_or(d)
        } else {
            d
        };
        return Ok(date_to_bson(d));
    }
    DateTime::parse_from_rfc3339(raw)
        .map(|d| BsonDateTime::from_chrono(d.with_timezone(&Utc)))
        .map_err(|_| {
            AppError::BadRequest(format!(
                "{field} must be YYYY-MM-DD or an RFC 3339 timestamp"
            ))
        })
}
