//! Partner hospitals: creation (idempotent), updates, and deletion only
//! while nothing refers to them.

use super::{
    idempotency::{self, Claimed, Created, Idem},
    Ctx,
};
use crate::{
    domain::{
        hospital::{Contact, Hospital},
        HospitalId, UserId,
    },
    error::{AppError, Result},
    repo::hospitals::HospitalChanges,
    transaction,
};

/// A hospital to add.
#[derive(Debug, Clone)]
pub struct NewHospital {
    pub name: String,
    pub location: String,
    pub country: String,
    pub contact: Option<Contact>,
    pub specialties: Vec<String>,
    pub commission_bps: Option<i32>,
    pub currency: Option<String>,
    pub active: bool,
}

fn clean(list: Vec<String>) -> Vec<String> {
    list.into_iter().map(|s| s.trim().to_owned()).collect()
}

pub async fn load(ctx: &Ctx, id: HospitalId) -> Result<Hospital> {
    ctx.repos
        .hospitals
        .find(id)
        .await?
        .ok_or_else(|| AppError::not_found("hospital"))
}

/// Adds a hospital; names are unique per country (ignoring case).
pub async fn create(
    ctx: &Ctx,
    actor: UserId,
    input: NewHospital,
    idem: Idem<'_, Hospital>,
) -> Result<Created<Hospital>> {
    let claim = match idempotency::claim(ctx, actor, idem.request).await? {
        Claimed::Replay(r) => return Ok(Created::Replayed(r)),
        Claimed::Proceed(c) => c,
    };
    let now = ctx.clock.now_bson();
    let name = input.name.trim().to_owned();
    let hospital = Hospital {
        id: HospitalId::new(),
        name_lower: name.to_lowercase(),
        name,
        location: input.location.trim().to_owned(),
        country: input.country,
        contact: input.contact,
        specialties: clean(input.specialties),
        commission_bps: input.commission_bps,
        currency: input.currency,
        active: input.active,
        created_at: now,
        created_by: Some(actor),
        updated_at: now,
        updated_by: Some(actor),
    };
    let result = transaction!(ctx, |tx| {
        ctx.repos.hospitals.create(tx.session()?, &hospital).await?;
        tx.point("hospital.create:insert")?;
        idempotency::complete(ctx, &mut tx, claim.as_ref(), &idem, &hospital).await?;
        Ok(hospital.clone())
    });
    ctx.names.invalidate();
    idempotency::finish(ctx, claim, result).await
}

/// Applies `changes` (trimmed); 404 when there is no such hospital.
pub async fn update(
    ctx: &Ctx,
    actor: UserId,
    id: HospitalId,
    mut changes: HospitalChanges,
) -> Result<Hospital> {
    changes.name = changes.name.map(|n| n.trim().to_owned());
    changes.location = changes.location.map(|l| l.trim().to_owned());
    changes.specialties = changes.specialties.map(clean);
    // A transaction for the write and its generation count (the report
    // cache's key) together; the body runs again only on a transient
    // failure, so the changes are handed over as a copy.
    transaction!(ctx, |tx| {
        ctx.repos
            .hospitals
            .update(tx.session()?, id, changes.clone(), actor)
            .await
    })?
    .ok_or_else(|| AppError::not_found("hospital"))
    .inspect(|_| ctx.names.invalidate())
}

/// Deletes a hospital nobody refers to; otherwise 409 (deactivate it).
///
/// The check and the delete are one transaction that first writes the
/// hospital, as every link to it does (`patients::hold_hospital`): a
/// patient assigned at the same moment conflicts with the delete, so either
/// the assignment sees no hospital (422) or the delete sees the assignment.
pub async fn delete(ctx: &Ctx, id: HospitalId) -> Result<()> {
    transaction!(ctx, |tx| {
        if ctx
            .repos
            .hospitals
            .hold_in(tx.session()?, id)
            .await?
            .is_none()
        {
            return Err(AppError::not_found("hospital"));
        }
        tx.point("hospital.delete:hold")?;
        if ctx
            .repos
            .patients
            .references_hospital(tx.session()?, id)
            .await?
            || ctx
                .repos
                .treatments
                .references_hospital(tx.session()?, id)
                .await?
            || ctx
                .repos
                .appointments
                .references_hospital(tx.session()?, id)
                .await?
            || ctx
                .repos
                .quotes
                .references_hospital(tx.session()?, id)
                .await?
        {
            return Err(AppError::conflict(
                "patients are or were assigned to this hospital; deactivate it instead",
            ));
        }
        if !ctx.repos.hospitals.delete_in(tx.session()?, id).await? {
            return Err(AppError::not_found("hospital"));
        }
        Ok(())
    })
}
