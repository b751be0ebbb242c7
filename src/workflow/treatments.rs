//! Treatments and the earnings ledger: a treatment, its history entry and
//! its ledger entries are written in one transaction.
//!
//! The steps are ordered so that a process that dies inside a transaction
//! the server does not roll back (see the README's compatibility notes)
//! leaves a state the doctor recognises and repairs: the treatment is saved
//! first and its ledger entries last, and booking is idempotent, so "completed
//! with no credit" is the only partial state, and `doctor --repair` books the
//! credit it lacks.

use super::{
    history::{self, Change},
    idempotency::{self, Claim, Claimed, Created, Idem},
    patients,
    tx::Tx,
    Ctx,
};
use crate::{
    domain::{
        money::Money,
        patient::{PatientStatus, TreatmentStatus},
        treatment::{EarningEntry, EntryKind, Treatment, TreatmentState},
        AppointmentId, HospitalId, PatientId, QuoteId, TreatmentId, UserId,
    },
    error::{AppError, FieldErrors, Result},
    transaction,
};

/// A treatment to record.
#[derive(Debug, Clone)]
pub struct NewTreatment {
    pub treatment_type: String,
    pub disease: String,
    pub hospital_id: HospitalId,
    pub cost: Money,
    pub earnings: Money,
    pub status: TreatmentState,
    pub appointment_ids: Vec<AppointmentId>,
}

/// A change to a treatment; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct TreatmentChanges {
    pub version: i64,
    pub treatment_type: Option<String>,
    pub disease: Option<String>,
    pub hospital_id: Option<HospitalId>,
    pub cost: Option<Money>,
    pub earnings: Option<Money>,
    pub status: Option<TreatmentState>,
    pub appointment_ids: Option<Vec<AppointmentId>>,
}

fn check_money(cost: &Money, earnings: &Money) -> Result<()> {
    let mut details = FieldErrors::new();
    if cost.currency != earnings.currency {
        details.insert(
            "earnings.currency".into(),
            vec!["must match the cost's currency".into()],
        );
    } else if earnings.amount_minor > cost.amount_minor {
        details.insert(
            "earnings.amount_minor".into(),
            vec!["must not exceed the cost".into()],
        );
    }
    if details.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation {
            message: "the earnings do not fit the cost".into(),
            details,
        })
    }
}

async fn check_appointments(ctx: &Ctx, patient: PatientId, ids: &[AppointmentId]) -> Result<()> {
    for id in ids {
        match ctx.repos.appointments.find(*id).await? {
            Some(a) if a.patient_id == patient => {}
            _ => {
                return Err(AppError::invalid_field(
                    "appointment_ids",
                    format!("{id} is not an appointment of this patient"),
                ))
            }
        }
    }
    Ok(())
}

fn transition_error(from: TreatmentState, to: TreatmentState) -> AppError {
    let allowed: Vec<&str> = from.allowed_next().iter().map(|s| s.as_str()).collect();
    let allowed = if allowed.is_empty() {
        "none".to_owned()
    } else {
        allowed.join(", ")
    };
    AppError::invalid_field(
        "status",
        format!(
            "cannot go from {} to {}; allowed: {allowed}",
            from.as_str(),
            to.as_str()
        ),
    )
}

/// Stamps the dates a status change implies.
fn stamp(t: &mut Treatment, prev: Option<TreatmentState>, now: mongodb::bson::DateTime) {
    if prev == Some(t.status) {
        return;
    }
    match t.status {
        TreatmentState::InProgress => {
            t.started_at.get_or_insert(now);
        }
        TreatmentState::Completed => t.completed_at = Some(now),
        TreatmentState::Cancelled => t.cancelled_at = Some(now),
        TreatmentState::Planned => {}
    }
}

/// The ledger entries `t` must have: a credit once completed, and a
/// reversal once a completed treatment is cancelled.
pub fn entries_due(t: &Treatment) -> Vec<EarningEntry> {
    let Some(completed_at) = t.completed_at else {
        return Vec::new();
    };
    let entry = |kind, amount_minor, booked_at| EarningEntry {
        treatment_id: t.id,
        kind,
        seq: 0,
        amount_minor,
        currency: t.earnings.currency.clone(),
        hospital_id: t.hospital_id,
        patient_id: t.patient_id,
        booked_at,
    };
    let mut due = Vec::new();
    if matches!(
        t.status,
        TreatmentState::Completed | TreatmentState::Cancelled
    ) {
        due.push(entry(
            EntryKind::Credit,
            t.earnings.amount_minor,
            completed_at,
        ));
    }
    if t.status == TreatmentState::Cancelled {
        let at = t.cancelled_at.unwrap_or(completed_at);
        due.push(entry(EntryKind::Reversal, -t.earnings.amount_minor, at));
    }
    due
}

/// Makes the ledger match the treatment, in `tx`. Idempotent: an entry
/// already booked is left as it is.
pub async fn settle(ctx: &Ctx, tx: &mut Tx, t: &Treatment) -> Result<()> {
    for entry in entries_due(t) {
        ctx.repos.treatments.book(tx.session()?, &entry).await?;
        tx.point("treatment.settle:book")?;
    }
    Ok(())
}

/// Writes the treatment's history entry in `tx`.
pub async fn record_history(
    ctx: &Ctx,
    tx: &mut Tx,
    before: Option<&Treatment>,
    after: &Treatment,
    action: &'static str,
    actor: UserId,
) -> Result<()> {
    history::record(
        ctx,
        tx,
        Change {
            entity: history::Entity::Treatment,
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

/// The treatment, if its patient is live.
pub async fn load(ctx: &Ctx, id: TreatmentId) -> Result<Treatment> {
    let t = ctx
        .repos
        .treatments
        .find(id)
        .await?
        .ok_or_else(|| AppError::not_found("treatment"))?;
    let patient = t.patient_id;
    patients::of_live_patient(ctx, t, patient, "treatment").await
}

/// Records a treatment: the treatment, its history, its credit when it is
/// recorded as completed, and the patient's repeat status when they had
/// completed one before.
pub async fn record(
    ctx: &Ctx,
    actor: UserId,
    patient_id: PatientId,
    input: NewTreatment,
    idem: Idem<'_, Treatment>,
) -> Result<Created<Treatment>> {
    let claim = match idempotency::claim(ctx, actor, idem.request).await? {
        Claimed::Replay(r) => return Ok(Created::Replayed(r)),
        Claimed::Proceed(c) => c,
    };
    let result = record_claimed(ctx, actor, patient_id, input, claim.as_ref(), &idem).await;
    idempotency::finish(ctx, claim, result).await
}

async fn record_claimed(
    ctx: &Ctx,
    actor: UserId,
    patient_id: PatientId,
    input: NewTreatment,
    claim: Option<&Claim>,
    idem: &Idem<'_, Treatment>,
) -> Result<Treatment> {
    let planned = plan(ctx, actor, patient_id, input, None).await?;
    ctx.faults.pause("treatment.record:checked").await;
    transaction!(ctx, |tx| {
        let treatment = &planned.treatment;
        patients::hold_hospital(ctx, &mut tx, treatment.hospital_id, "hospital_id").await?;
        ctx.repos
            .treatments
            .insert(tx.session()?, treatment)
            .await?;
        tx.point("treatment.record:insert")?;
        // The key is done as soon as the treatment exists: a process that
        // dies later in this transaction (the stand-in keeps its writes)
        // leaves at most a missing credit, which the doctor books, never a
        // key a retry could use to record the treatment twice.
        idempotency::complete(ctx, &mut tx, claim, idem, treatment).await?;
        super::holds::hold_patient(ctx, &mut tx, patient_id).await?;
        record_history(ctx, &mut tx, None, treatment, "create", actor).await?;
        tx.point("treatment.record:history")?;
        follow_up_recorded(ctx, &mut tx, &planned, actor).await?;
        Ok(treatment.clone())
    })
}

/// A checked treatment ready to insert, and whether its patient becomes a
/// repeat patient.
pub struct Planned {
    pub treatment: Treatment,
    pub mark_repeat: bool,
}

/// Checks `input` for the live patient `patient_id` and builds the
/// treatment (booked by `quote`, when a quote's acceptance records it).
pub async fn plan(
    ctx: &Ctx,
    actor: UserId,
    patient_id: PatientId,
    input: NewTreatment,
    quote: Option<QuoteId>,
) -> Result<Planned> {
    let patient = patients::load(ctx, patient_id).await?;
    check_money(&input.cost, &input.earnings)?;
    patients::check_hospital(ctx, input.hospital_id, "hospital_id").await?;
    check_appointments(ctx, patient_id, &input.appointment_ids).await?;
    if input.status == TreatmentState::Cancelled {
        return Err(AppError::invalid_field(
            "status",
            "a new treatment cannot start cancelled",
        ));
    }
    let returning = patient.treatment_status == TreatmentStatus::Completed
        || ctx.repos.treatments.has_completed(patient_id).await?;
    let now = ctx.clock.now_bson();
    let mut treatment = Treatment {
        id: TreatmentId::new(),
        patient_id,
        hospital_id: input.hospital_id,
        treatment_type: input.treatment_type.trim().to_owned(),
        disease: input.disease.trim().to_owned(),
        cost: input.cost,
        earnings: input.earnings,
        status: input.status,
        appointment_ids: input.appointment_ids,
        quote_id: quote,
        started_at: None,
        completed_at: None,
        cancelled_at: None,
        version: 1,
        created_by: actor,
        created_at: now,
        updated_by: actor,
        updated_at: now,
    };
    stamp(&mut treatment, None, now);
    Ok(Planned {
        treatment,
        mark_repeat: returning && patient.status != PatientStatus::Repeat,
    })
}

/// What recording `planned` brings with it, in `tx`: the patient's repeat
/// status, the patient's treatment status, and the credit of a treatment
/// recorded as completed.
pub async fn follow_up_recorded(
    ctx: &Ctx,
    tx: &mut Tx,
    planned: &Planned,
    actor: UserId,
) -> Result<()> {
    let t = &planned.treatment;
    if planned.mark_repeat {
        patients::mark_repeat(ctx, tx, t.patient_id, actor).await?;
    }
    settle(ctx, tx, t).await?;
    super::follow::follow_treatment(ctx, tx, t.patient_id, t.status, actor).await
}

/// Applies `changes` to `prev`, checking every rule.
async fn apply(ctx: &Ctx, prev: &Treatment, changes: TreatmentChanges) -> Result<Treatment> {
    let settled = matches!(
        prev.status,
        TreatmentState::Completed | TreatmentState::Cancelled
    );
    let money_change = changes.cost.as_ref().is_some_and(|c| *c != prev.cost)
        || changes
            .earnings
            .as_ref()
            .is_some_and(|e| *e != prev.earnings)
        || changes.hospital_id.is_some_and(|h| h != prev.hospital_id);
    if settled && money_change {
        return Err(AppError::invalid_field(
            "status",
            "the cost, earnings and hospital of a completed or cancelled treatment are fixed",
        ));
    }
    let mut next = prev.clone();
    if let Some(v) = changes.treatment_type {
        next.treatment_type = v.trim().to_owned();
    }
    if let Some(v) = changes.disease {
        next.disease = v.trim().to_owned();
    }
    if let Some(h) = changes.hospital_id {
        if h != prev.hospital_id {
            patients::check_hospital(ctx, h, "hospital_id").await?;
        }
        next.hospital_id = h;
    }
    if let Some(c) = changes.cost {
        next.cost = c;
    }
    if let Some(e) = changes.earnings {
        next.earnings = e;
    }
    check_money(&next.cost, &next.earnings)?;
    if let Some(ids) = changes.appointment_ids {
        check_appointments(ctx, prev.patient_id, &ids).await?;
        next.appointment_ids = ids;
    }
    if let Some(s) = changes.status {
        if !prev.status.can_become(s) {
            return Err(transition_error(prev.status, s));
        }
        next.status = s;
    }
    Ok(next)
}

/// Updates a treatment (optimistic concurrency on `changes.version`).
/// Completing it books its earnings once; cancelling a completed one books a
/// reversal; both with the treatment and its history, or not at all.
pub async fn update(
    ctx: &Ctx,
    actor: UserId,
    id: TreatmentId,
    changes: TreatmentChanges,
) -> Result<Treatment> {
    let prev = load(ctx, id).await?;
    if changes.version != prev.version {
        // A retried request that already went through: make sure the ledger
        // is settled (a no-op unless a dead process left it short), then
        // report the conflict as usual.
        transaction!(ctx, |tx| settle(ctx, &mut tx, &prev).await)?;
        return Err(AppError::Stale(format!(
            "stale version {}: the treatment is at version {}",
            changes.version, prev.version
        )));
    }
    let mut next = apply(ctx, &prev, changes).await?;
    let now = ctx.clock.now_bson();
    stamp(&mut next, Some(prev.status), now);
    next.version = prev.version + 1;
    next.updated_by = actor;
    next.updated_at = now;
    let action = if next.status != prev.status {
        "status_change"
    } else {
        "update"
    };
    ctx.faults.pause("treatment.update:checked").await;
    transaction!(ctx, |tx| {
        if next.hospital_id != prev.hospital_id {
            patients::hold_hospital(ctx, &mut tx, next.hospital_id, "hospital_id").await?;
        }
        if !ctx
            .repos
            .treatments
            .replace(tx.session()?, &next, prev.version)
            .await?
        {
            return Err(AppError::conflict(
                "the treatment was changed meanwhile; reload and retry",
            ));
        }
        tx.point("treatment.update:replace")?;
        // As in appointments::update: a delete since the check above fails
        // this replace, which would otherwise drop the patient's mark.
        super::holds::hold_patient(ctx, &mut tx, next.patient_id)
            .await
            .map_err(|e| super::holds::gone_as(e, "treatment"))?;
        record_history(ctx, &mut tx, Some(&prev), &next, action, actor).await?;
        tx.point("treatment.update:history")?;
        settle(ctx, &mut tx, &next).await?;
        if next.status != prev.status {
            super::follow::follow_treatment(ctx, &mut tx, next.patient_id, next.status, actor)
                .await?;
            if matches!(
                next.status,
                TreatmentState::Completed | TreatmentState::Cancelled
            ) {
                // A booked treatment that is over frees its treatment type
                // for another accepted quote.
                ctx.repos
                    .quotes
                    .release_booking(tx.session()?, next.id)
                    .await?;
            }
        }
        Ok(next.clone())
    })
}
