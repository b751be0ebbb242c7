//! The patient hold: a write to the patient inside a transaction that adds
//! or changes one of its appointments or treatments, so that the
//! transaction conflicts with a concurrent soft delete of the patient.

use super::{tx::Tx, Ctx};
use crate::{
    domain::PatientId,
    error::{AppError, Result},
};

/// Holds the live patient `id` in `tx` ([`PatientsRepo::hold_in`]); 404
/// if it was deleted since the caller's checks. On MongoDB the hold's
/// write conflicts with a concurrent delete's; on the stand-in the
/// transaction gate runs the delete wholly before or after this
/// transaction, which the hold then sees. Called after the write to the
/// patient's appointment or treatment (several server processes on one
/// stand-in database are not gated: a delete of another process landing
/// between the two then either marks the new record or fails this
/// transaction).
///
/// [`PatientsRepo::hold_in`]: crate::repo::patients::PatientsRepo::hold_in
pub async fn hold_patient(ctx: &Ctx, tx: &mut Tx, id: PatientId) -> Result<()> {
    let live = ctx.repos.patients.hold_in(tx.session()?, id).await?;
    tx.point("patient:hold")?;
    if live {
        Ok(())
    } else {
        Err(AppError::not_found("patient"))
    }
}

/// A 404 of [`hold_patient`] as the 404 of the record being changed
/// (`what`), as reading that record now answers; other errors unchanged.
pub fn gone_as(e: AppError, what: &str) -> AppError {
    match e {
        AppError::NotFound(_) => AppError::not_found(what),
        e => e,
    }
}
