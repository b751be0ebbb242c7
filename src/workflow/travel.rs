//! A patient's travel record: saved whole (with `version`), its history
//! written with the passport number masked, and the patient's passport
//! search key kept in the same transaction.

use chrono::NaiveDate;

use super::{
    history::{self, Change},
    patients,
    tx::Tx,
    Ctx,
};
use crate::{
    domain::{
        travel::{mask_passport, normalize_passport, Companion, Leg, Passport, Travel, Visa},
        PatientId, UserId,
    },
    error::{AppError, FieldErrors, Result},
    transaction,
};

/// A passport as typed: the number may be the masked form the reader was
/// shown, which keeps the stored number.
#[derive(Debug, Clone)]
pub struct PassportInput {
    pub number: String,
    pub country: String,
    pub expires_on: NaiveDate,
}

/// The whole record as a PUT sends it.
#[derive(Debug, Clone)]
pub struct TravelInput {
    /// Required once the record exists.
    pub version: Option<i64>,
    pub passport: Option<PassportInput>,
    pub visa: Option<Visa>,
    pub arrival: Option<Leg>,
    pub departure: Option<Leg>,
    pub accommodation: Option<String>,
    pub companions: Vec<Companion>,
    pub pickup_arranged: bool,
}

/// The live patient's travel record, if any.
pub async fn load(ctx: &Ctx, patient: PatientId) -> Result<Option<Travel>> {
    patients::load(ctx, patient).await?;
    ctx.repos.travel.find(patient).await
}

fn passport(prev: Option<&Travel>, input: Option<PassportInput>) -> Result<Option<Passport>> {
    let Some(p) = input else { return Ok(None) };
    let kept = prev
        .and_then(|t| t.passport.as_ref())
        .filter(|old| mask_passport(&old.number) == p.number.trim())
        .map(|old| old.number.clone());
    let number = match kept.or_else(|| normalize_passport(&p.number)) {
        Some(n) => n,
        None => {
            return Err(AppError::invalid_field(
                "passport.number",
                "must be 5 to 20 letters and digits (spaces and dashes are ignored)",
            ))
        }
    };
    Ok(Some(Passport {
        number,
        country: p.country,
        expires_on: p.expires_on.format("%Y-%m-%d").to_string(),
    }))
}

fn check_legs(arrival: Option<&Leg>, departure: Option<&Leg>) -> Result<()> {
    if let (Some(a), Some(d)) = (arrival, departure) {
        if d.at <= a.at {
            let mut details = FieldErrors::new();
            details.insert(
                "departure.at".into(),
                vec!["must be after the arrival".into()],
            );
            return Err(AppError::Validation {
                message: "the departure must be after the arrival".into(),
                details,
            });
        }
    }
    Ok(())
}

/// `t` with its passport number masked, for history.
fn masked(t: &Travel) -> Travel {
    let mut t = t.clone();
    if let Some(p) = t.passport.as_mut() {
        p.number = mask_passport(&p.number);
    }
    t
}

/// Saves the whole record: the first without `version`, later ones with
/// the current one (409 when stale or missing).
pub async fn save(
    ctx: &Ctx,
    actor: UserId,
    patient: PatientId,
    input: TravelInput,
) -> Result<Travel> {
    let prev = load(ctx, patient).await?;
    match (&prev, input.version) {
        (Some(p), Some(v)) if v != p.version => {
            return Err(AppError::Stale(format!(
                "stale version {v}: the travel record is at version {}",
                p.version
            )))
        }
        (Some(p), None) => {
            return Err(AppError::PreconditionRequired(format!(
                "the travel record exists: send its version ({}) in the body or as If-Match",
                p.version
            )))
        }
        (None, Some(_)) => {
            return Err(AppError::Stale(
                "there is no travel record yet: send the first one without a version".into(),
            ))
        }
        _ => {}
    }
    check_legs(input.arrival.as_ref(), input.departure.as_ref())?;
    let now = ctx.clock.now_bson();
    let next = Travel {
        patient_id: patient,
        passport: passport(prev.as_ref(), input.passport)?,
        visa: input.visa,
        arrival: input.arrival,
        departure: input.departure,
        accommodation: input
            .accommodation
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty()),
        companions: input.companions,
        pickup_arranged: input.pickup_arranged,
        version: prev.as_ref().map_or(1, |p| p.version + 1),
        created_at: prev.as_ref().map_or(now, |p| p.created_at),
        created_by: prev.as_ref().map_or(actor, |p| p.created_by),
        updated_at: now,
        updated_by: actor,
    };
    transaction!(ctx, |tx| {
        match &prev {
            None => ctx.repos.travel.insert(tx.session()?, &next).await?,
            Some(p) => {
                if !ctx
                    .repos
                    .travel
                    .replace(tx.session()?, &next, p.version)
                    .await?
                {
                    return Err(AppError::conflict(
                        "the travel record was changed meanwhile; reload and retry",
                    ));
                }
            }
        }
        tx.point("travel.save:record")?;
        let before = prev.as_ref().map(masked);
        history::record(
            ctx,
            &mut tx,
            Change {
                entity: history::Entity::Travel,
                entity_id: patient.to_string(),
                patient_id: patient,
                before: before.as_ref(),
                after: &masked(&next),
                action: if prev.is_some() { "update" } else { "create" },
                actor,
            },
        )
        .await?;
        tx.point("travel.save:history")?;
        let key = next.passport.as_ref().map(|p| p.number.clone());
        keep_passport_search(ctx, &mut tx, patient, key).await?;
        Ok(next.clone())
    })
}

/// Sets the patient's passport search key in `tx` (a new version of the
/// patient, no history entry of its own: the travel entry holds the
/// change), re-reading when a concurrent change moves the version.
async fn keep_passport_search(
    ctx: &Ctx,
    tx: &mut Tx,
    id: PatientId,
    key: Option<String>,
) -> Result<()> {
    for _ in 0..5 {
        let prev = ctx
            .repos
            .patients
            .find_in(tx.session()?, id)
            .await?
            .filter(|p| p.deleted_at.is_none())
            .ok_or_else(|| AppError::not_found("patient"))?;
        if prev.passport_search == key {
            return Ok(());
        }
        let mut next = prev.clone();
        next.passport_search = key.clone();
        next.version = prev.version + 1;
        if ctx
            .repos
            .patients
            .replace(tx.session()?, &next, prev.version)
            .await?
        {
            return tx.point("travel.save:patient");
        }
    }
    Err(AppError::conflict(
        "the patient is changing too often; retry",
    ))
}
