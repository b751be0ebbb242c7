//! Appointments: each logged discussion, saved with its history entry and
//! the patient's next follow-up in one transaction.

use chrono::{DateTime, NaiveDate, Utc};
use mongodb::bson::DateTime as BsonDateTime;

use super::{
    history::{self, Change},
    idempotency::{self, Claim, Claimed, Created, Idem},
    patients,
    tx::Tx,
    Ctx,
};
use crate::{
    domain::{
        appointment::{Appointment, AppointmentStatus},
        dates::date_to_bson,
        AppointmentId, HospitalId, PatientId, UserId,
    },
    error::{AppError, Result},
    transaction,
};

/// An appointment or discussion to log.
#[derive(Debug, Clone)]
pub struct NewAppointment {
    pub hospital_id: Option<HospitalId>,
    pub appointment_date: Option<DateTime<Utc>>,
    pub discussion_notes: String,
    pub next_follow_up: Option<NaiveDate>,
    pub status: AppointmentStatus,
}

/// A change to an appointment: `None` leaves a field alone, `Some(None)`
/// clears it.
#[derive(Debug, Clone, Default)]
pub struct AppointmentChanges {
    pub version: i64,
    pub hospital_id: Option<Option<HospitalId>>,
    pub appointment_date: Option<Option<DateTime<Utc>>>,
    pub discussion_notes: Option<String>,
    pub next_follow_up: Option<Option<NaiveDate>>,
    pub status: Option<AppointmentStatus>,
}

/// The appointment, if its patient is live (not soft-deleted).
pub async fn load(ctx: &Ctx, id: AppointmentId) -> Result<Appointment> {
    let a = ctx
        .repos
        .appointments
        .find(id)
        .await?
        .ok_or_else(|| AppError::not_found("appointment"))?;
    let patient = a.patient_id;
    patients::of_live_patient(ctx, a, patient, "appointment").await
}

async fn record_history(
    ctx: &Ctx,
    tx: &mut Tx,
    before: Option<&Appointment>,
    after: &Appointment,
    action: &'static str,
    actor: UserId,
) -> Result<()> {
    history::record(
        ctx,
        tx,
        Change {
            entity: history::Entity::Appointment,
            entity_id: after.id.to_string(),
            patient_id: after.patient_id,
            before,
            after,
            action,
            actor,
        },
    )
    .await
}

/// Logs an appointment; its `next_follow_up` also becomes the patient's.
pub async fn log(
    ctx: &Ctx,
    actor: UserId,
    patient_id: PatientId,
    input: NewAppointment,
    idem: Idem<'_, Appointment>,
) -> Result<Created<Appointment>> {
    let claim = match idempotency::claim(ctx, actor, idem.request).await? {
        Claimed::Replay(r) => return Ok(Created::Replayed(r)),
        Claimed::Proceed(c) => c,
    };
    let result = log_claimed(ctx, actor, patient_id, input, claim.as_ref(), &idem).await;
    idempotency::finish(ctx, claim, result).await
}

async fn log_claimed(
    ctx: &Ctx,
    actor: UserId,
    patient_id: PatientId,
    input: NewAppointment,
    claim: Option<&Claim>,
    idem: &Idem<'_, Appointment>,
) -> Result<Appointment> {
    patients::load(ctx, patient_id).await?;
    if let Some(h) = input.hospital_id {
        patients::check_hospital(ctx, h, "hospital_id").await?;
    }
    let now = ctx.clock.now_bson();
    let appointment = Appointment {
        id: AppointmentId::new(),
        patient_id,
        hospital_id: input.hospital_id,
        appointment_date: input.appointment_date.map(BsonDateTime::from_chrono),
        discussion_notes: input.discussion_notes.trim().to_owned(),
        next_follow_up: input.next_follow_up.map(date_to_bson),
        status: input.status,
        version: 1,
        created_by: actor,
        created_at: now,
        updated_by: actor,
        updated_at: now,
    };
    ctx.faults.pause("appointment.log:checked").await;
    transaction!(ctx, |tx| {
        if let Some(h) = appointment.hospital_id {
            patients::hold_hospital(ctx, &mut tx, h, "hospital_id").await?;
        }
        ctx.repos
            .appointments
            .insert(tx.session()?, &appointment)
            .await?;
        tx.point("appointment.log:insert")?;
        // Done as soon as the appointment exists (see treatments::record).
        idempotency::complete(ctx, &mut tx, claim, idem, &appointment).await?;
        super::holds::hold_patient(ctx, &mut tx, patient_id).await?;
        record_history(ctx, &mut tx, None, &appointment, "create", actor).await?;
        tx.point("appointment.log:history")?;
        if let Some(date) = appointment.next_follow_up {
            patients::set_next_follow_up(ctx, &mut tx, patient_id, date, actor).await?;
        }
        Ok(appointment.clone())
    })
}

/// Updates an appointment (optimistic concurrency on `changes.version`); a
/// new `next_follow_up` also becomes the patient's.
pub async fn update(
    ctx: &Ctx,
    actor: UserId,
    id: AppointmentId,
    changes: AppointmentChanges,
) -> Result<Appointment> {
    let prev = load(ctx, id).await?;
    if changes.version != prev.version {
        return Err(AppError::Stale(format!(
            "stale version {}: the appointment is at version {}",
            changes.version, prev.version
        )));
    }
    let mut next = prev.clone();
    if let Some(h) = changes.hospital_id {
        if let Some(h) = h {
            patients::check_hospital(ctx, h, "hospital_id").await?;
        }
        next.hospital_id = h;
    }
    if let Some(d) = changes.appointment_date {
        next.appointment_date = d.map(BsonDateTime::from_chrono);
    }
    if let Some(n) = changes.discussion_notes {
        next.discussion_notes = n.trim().to_owned();
    }
    if let Some(f) = changes.next_follow_up {
        next.next_follow_up = f.map(date_to_bson);
    }
    if let Some(s) = changes.status {
        next.status = s;
    }
    next.version = prev.version + 1;
    next.updated_by = actor;
    next.updated_at = ctx.clock.now_bson();
    let action = if next.status != prev.status {
        "status_change"
    } else {
        "update"
    };
    let follow_up = next
        .next_follow_up
        .filter(|_| next.next_follow_up != prev.next_follow_up);
    ctx.faults.pause("appointment.update:checked").await;
    transaction!(ctx, |tx| {
        if let Some(h) = next.hospital_id.filter(|h| Some(*h) != prev.hospital_id) {
            patients::hold_hospital(ctx, &mut tx, h, "hospital_id").await?;
        }
        if !ctx
            .repos
            .appointments
            .replace(tx.session()?, &next, prev.version)
            .await?
        {
            return Err(AppError::conflict(
                "the appointment was changed meanwhile; reload and retry",
            ));
        }
        tx.point("appointment.update:replace")?;
        // The mark of a deleted patient is not in `next`: a delete since the
        // check above must fail this replace rather than have it unmarked,
        // with the 404 a read of the appointment now gives.
        super::holds::hold_patient(ctx, &mut tx, next.patient_id)
            .await
            .map_err(|e| super::holds::gone_as(e, "appointment"))?;
        record_history(ctx, &mut tx, Some(&prev), &next, action, actor).await?;
        tx.point("appointment.update:history")?;
        if let Some(date) = follow_up {
            patients::set_next_follow_up(ctx, &mut tx, next.patient_id, date, actor).await?;
        }
        Ok(next.clone())
    })
}
