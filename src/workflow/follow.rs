//! What a patient's records bring to the patient, inside the transaction of
//! the record's own change: a treatment moves the patient's status, an
//! accepted quote assigns the hospital, and a soft delete or restore marks
//! the patient's appointments and treatments for the lists across patients.

use super::{patients, tx::Tx, Ctx};
use crate::{
    domain::{
        patient::{HospitalAssignment, TreatmentStatus},
        treatment::TreatmentState,
        HospitalId, PatientId, UserId,
    },
    error::Result,
};

/// Moves the patient's treatment status along with a treatment's, in `tx`:
/// a completed treatment takes the patient to `completed` (through the
/// stages the transition table needs, each its own history entry like a
/// manual change), and a started one takes a `ready` patient to `coming`.
pub async fn follow_treatment(
    ctx: &Ctx,
    tx: &mut Tx,
    id: PatientId,
    treatment: TreatmentState,
    actor: UserId,
) -> Result<()> {
    let now = ctx.clock.now_bson();
    let target = match treatment {
        TreatmentState::Completed => TreatmentStatus::Completed,
        TreatmentState::InProgress => TreatmentStatus::Coming,
        TreatmentState::Planned | TreatmentState::Cancelled => return Ok(()),
    };
    // At most four steps (denied -> inquiry -> ready -> coming -> completed).
    for _ in 0..4 {
        let moved = patients::change_in_as(ctx, tx, id, actor, "status_change", |p| {
            if target == TreatmentStatus::Coming && p.treatment_status != TreatmentStatus::Ready {
                return false;
            }
            match p.treatment_status.path_to(target).first() {
                Some(&step) => {
                    patients::take_step(p, step, now);
                    true
                }
                None => false,
            }
        })
        .await?;
        if !moved {
            break;
        }
        tx.point("patient.follow_treatment:step")?;
    }
    Ok(())
}

/// Assigns the patient to `hospital` in `tx` (kept in its hospital history);
/// nothing when already assigned there.
pub async fn assign_in(
    ctx: &Ctx,
    tx: &mut Tx,
    id: PatientId,
    hospital: HospitalId,
    actor: UserId,
) -> Result<()> {
    let at = ctx.clock.now_bson();
    patients::change_in_as(ctx, tx, id, actor, "assign_hospital", |p| {
        if p.hospital_id == Some(hospital) {
            return false;
        }
        p.hospital_id = Some(hospital);
        p.hospital_history.push(HospitalAssignment {
            hospital_id: hospital,
            by: actor,
            at,
        });
        true
    })
    .await
    .map(|_| ())
}

/// Marks the patient's appointments and treatments as belonging to a
/// deleted (or restored) patient, in `tx`, so the calendars across
/// patients leave them out with a plain filter (`patient_deleted`).
/// Returns how many records changed (those that already agree are left).
pub async fn mark_records(ctx: &Ctx, tx: &mut Tx, id: PatientId, deleted: bool) -> Result<u64> {
    let appointments = ctx
        .repos
        .appointments
        .mark_patient_deleted(tx.session()?, id, deleted)
        .await?;
    tx.point("patient.mark_records:appointments")?;
    let treatments = ctx
        .repos
        .treatments
        .mark_patient_deleted(tx.session()?, id, deleted)
        .await?;
    tx.point("patient.mark_records:treatments")?;
    Ok(appointments + treatments)
}
