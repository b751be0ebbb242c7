//! The coordinator's arrivals board: patients arriving in a window, with
//! what still needs doing before they land.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use mongodb::bson::DateTime as BsonDateTime;

use super::Ctx;
use crate::{
    domain::{
        patient::Patient,
        travel::{Travel, Warning},
        PatientId,
    },
    error::{AppError, Result},
};

/// The longest window the board covers (about a quarter).
pub const MAX_WINDOW_DAYS: i64 = 92;
/// Trips read for one board at most; a window holding more is refused
/// with a request to narrow it rather than cut silently.
const MAX_TRIPS: i64 = 5_000;

/// One arriving patient.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub patient: Patient,
    pub travel: Travel,
    pub warnings: Vec<Warning>,
}

/// The live patients arriving in `from..before`, earliest first, each with
/// its warnings as of today (UTC). By default `from` is the start of today
/// and `before` the end of the 14th day after `from`'s day: today and the
/// next 14 days.
pub async fn board(
    ctx: &Ctx,
    from: Option<BsonDateTime>,
    before: Option<BsonDateTime>,
) -> Result<Vec<Arrival>> {
    let today_start = ctx.clock.today().and_time(chrono::NaiveTime::MIN).and_utc();
    let from: DateTime<Utc> = from.map_or(today_start, |f| f.to_chrono());
    let before: DateTime<Utc> = before.map_or_else(
        || {
            let first_day = from.date_naive().and_time(chrono::NaiveTime::MIN).and_utc();
            first_day + chrono::Duration::days(15)
        },
        |b| b.to_chrono(),
    );
    if before <= from {
        return Err(AppError::BadRequest("from must be before to".into()));
    }
    if before - from > chrono::Duration::days(MAX_WINDOW_DAYS) {
        return Err(AppError::BadRequest(format!(
            "the window may span at most {MAX_WINDOW_DAYS} days"
        )));
    }
    let trips = ctx
        .repos
        .travel
        .arriving(
            BsonDateTime::from_chrono(from),
            BsonDateTime::from_chrono(before),
            MAX_TRIPS + 1,
        )
        .await?;
    if trips.len() as i64 > MAX_TRIPS {
        return Err(AppError::BadRequest(format!(
            "more than {MAX_TRIPS} arrivals in the window; narrow it"
        )));
    }
    let ids: Vec<PatientId> = trips.iter().map(|t| t.patient_id).collect();
    let mut patients: HashMap<PatientId, Patient> = ctx
        .repos
        .patients
        .live_among(&ids)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let treated = ctx.repos.treatments.patients_treated(&ids).await?;
    let today = ctx.clock.today();
    Ok(trips
        .into_iter()
        .filter_map(|travel| {
            let patient = patients.remove(&travel.patient_id)?;
            let warnings = travel.warnings(treated.contains(&patient.id), today);
            Some(Arrival {
                patient,
                travel,
                warnings,
            })
        })
        .collect())
}
