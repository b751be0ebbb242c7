//! Patients: registration, updates and the treatment-status workflow,
//! hospital assignment, soft delete and restore, each saved together with
//! its history entry in one transaction.

use chrono::NaiveDate;
use mongodb::bson::DateTime as BsonDateTime;

use super::{
    history::{self, Change},
    idempotency::{self, Claimed, Created, Idem},
    tx::Tx,
    Ctx,
};
use crate::{
    domain::{
        dates::{age_on, date_to_bson},
        patient::{HospitalAssignment, Patient, PatientContact, PatientStatus, TreatmentStatus},
        HospitalId, PatientId, UserId,
    },
    error::{AppError, FieldErrors, Result},
    transaction,
};

/// A patient to register (already validated field by field).
#[derive(Debug, Clone)]
pub struct NewPatient {
    pub name: String,
    pub age: Option<u8>,
    pub date_of_birth: Option<NaiveDate>,
    pub country: String,
    pub contact: Option<PatientContact>,
    pub source: Option<String>,
    pub medical_history: Vec<String>,
    pub treatment_status: Option<TreatmentStatus>,
    pub denial_reason: Option<String>,
    pub assigned_to: Option<UserId>,
    pub hospital_id: Option<HospitalId>,
    pub next_follow_up: Option<NaiveDate>,
}

/// A change to a patient: `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct PatientChanges {
    pub version: i64,
    pub name: Option<String>,
    pub age: Option<Option<u8>>,
    pub date_of_birth: Option<Option<NaiveDate>>,
    pub country: Option<String>,
    pub contact: Option<Option<PatientContact>>,
    pub source: Option<Option<String>>,
    pub medical_history: Option<Vec<String>>,
    pub treatment_status: Option<TreatmentStatus>,
    pub denial_reason: Option<Option<String>>,
    pub assigned_to: Option<Option<UserId>>,
    pub next_follow_up: Option<Option<NaiveDate>>,
}

/// `record` (a `what` of patient `patient`) when its patient is live; a
/// soft-deleted patient's records are 404 like the patient.
pub async fn of_live_patient<T>(ctx: &Ctx, record: T, patient: PatientId, what: &str) -> Result<T> {
    match load(ctx, patient).await {
        Ok(_) => Ok(record),
        Err(AppError::NotFound(_)) => Err(AppError::not_found(what)),
        Err(e) => Err(e),
    }
}

/// The live (not deleted) patient, or 404.
pub async fn load(ctx: &Ctx, id: PatientId) -> Result<Patient> {
    ctx.repos
        .patients
        .find(id)
        .await?
        .ok_or_else(|| AppError::not_found("patient"))
}

/// 422 unless the user exists and is active.
pub async fn check_assignee(ctx: &Ctx, id: UserId) -> Result<()> {
    match ctx.repos.users.find(id).await? {
        Some(u) if u.active => Ok(()),
        Some(_) => Err(AppError::invalid_field(
            "assigned_to",
            "that user is deactivated",
        )),
        None => Err(AppError::invalid_field("assigned_to", "no such user")),
    }
}

/// 422 unless the hospital exists and is active.
pub async fn check_hospital(ctx: &Ctx, id: HospitalId, field: &str) -> Result<()> {
    hospital_usable(ctx.repos.hospitals.find(id).await?, field)
}

/// [`check_hospital`] inside the transaction that links to the hospital,
/// with a write to it: a concurrent delete of the hospital conflicts with
/// this transaction instead of leaving a link to nothing.
pub async fn hold_hospital(ctx: &Ctx, tx: &mut Tx, id: HospitalId, field: &str) -> Result<()> {
    let found = ctx.repos.hospitals.hold_in(tx.session()?, id).await?;
    tx.point("hospital:hold")?;
    hospital_usable(found, field)
}

fn hospital_usable(found: Option<crate::domain::hospital::Hospital>, field: &str) -> Result<()> {
    match found {
        Some(h) if h.active => Ok(()),
        Some(_) => Err(AppError::invalid_field(field, "that hospital is inactive")),
        None => Err(AppError::invalid_field(field, "no such hospital")),
    }
}

fn check_birth_date(ctx: &Ctx, dob: NaiveDate) -> Result<()> {
    let today = ctx.clock.today();
    if dob > today || age_on(dob, today) > 130 {
        return Err(AppError::invalid_field(
            "date_of_birth",
            "must be a past date within 130 years",
        ));
    }
    Ok(())
}

/// The denial reason goes with `denied`, and only with it.
fn check_denial(status: TreatmentStatus, reason: &Option<String>) -> Result<()> {
    match (status == TreatmentStatus::Denied, reason.is_some()) {
        (true, false) => Err(AppError::invalid_field(
            "denial_reason",
            "is required when the treatment status is denied",
        )),
        (false, true) => Err(AppError::invalid_field(
            "denial_reason",
            "only applies to denied patients",
        )),
        _ => Ok(()),
    }
}

fn trimmed(reason: Option<String>) -> Option<String> {
    reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
}

/// Conditions with collapsed whitespace, first spelling of each kept, and
/// their lowercase forms for search.
fn normalized_conditions(list: Vec<String>) -> (Vec<String>, Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for c in list {
        let c = c.split_whitespace().collect::<Vec<_>>().join(" ");
        if seen.insert(c.to_lowercase()) {
            out.push(c);
        }
    }
    let lower = out.iter().map(|c| c.to_lowercase()).collect();
    (out, lower)
}

fn transition_error(from: TreatmentStatus, to: TreatmentStatus) -> AppError {
    let allowed: Vec<&str> = from.allowed_next().iter().map(|s| s.as_str()).collect();
    let message = format!(
        "cannot go from {} to {}; allowed: {}",
        from.as_str(),
        to.as_str(),
        allowed.join(", ")
    );
    let mut details = FieldErrors::new();
    details.insert("treatment_status".into(), vec![message.clone()]);
    AppError::Validation { message, details }
}

/// The patient document `input` describes, before it is stored.
async fn build(ctx: &Ctx, actor: UserId, input: NewPatient) -> Result<Patient> {
    if input.age.is_some() && input.date_of_birth.is_some() {
        return Err(AppError::invalid_field(
            "age",
            "give age or date_of_birth, not both",
        ));
    }
    if let Some(dob) = input.date_of_birth {
        check_birth_date(ctx, dob)?;
    }
    let treatment_status = input.treatment_status.unwrap_or(TreatmentStatus::Inquiry);
    let denial_reason = trimmed(input.denial_reason);
    check_denial(treatment_status, &denial_reason)?;
    if let Some(u) = input.assigned_to {
        check_assignee(ctx, u).await?;
    }
    let now = ctx.clock.now_bson();
    let mut hospital_history = Vec::new();
    if let Some(h) = input.hospital_id {
        check_hospital(ctx, h, "hospital_id").await?;
        hospital_history.push(HospitalAssignment {
            hospital_id: h,
            by: actor,
            at: now,
        });
    }
    let (medical_history, medical_history_lower) = normalized_conditions(input.medical_history);
    let name = input.name.trim().to_owned();
    let mut patient = Patient {
        id: PatientId::new(),
        name_lower: name.to_lowercase(),
        name,
        age: input.age.map(i32::from),
        date_of_birth: input.date_of_birth.map(date_to_bson),
        country: input.country,
        contact: input.contact,
        source: input.source.map(|s| s.trim().to_owned()),
        medical_history,
        medical_history_lower,
        status: PatientStatus::New,
        treatment_status,
        denial_reason,
        assigned_to: input.assigned_to,
        hospital_id: input.hospital_id,
        hospital_history,
        next_follow_up: input.next_follow_up.map(date_to_bson),
        reached: Vec::new(),
        completed_at: None,
        version: 1,
        deleted_at: None,
        deleted_by: None,
        passport_search: None,
        created_at: now,
        created_by: actor,
        updated_at: now,
        updated_by: actor,
    };
    patient.note_reached(treatment_status, now);
    Ok(patient)
}

/// Registers a patient: the record and its `create` history entry (and
/// the idempotency record, when the request carries a key).
pub async fn register(
    ctx: &Ctx,
    actor: UserId,
    input: NewPatient,
    idem: Idem<'_, Patient>,
) -> Result<Created<Patient>> {
    let claim = match idempotency::claim(ctx, actor, idem.request).await? {
        Claimed::Replay(r) => return Ok(Created::Replayed(r)),
        Claimed::Proceed(c) => c,
    };
    let result = async {
        let patient = build(ctx, actor, input).await?;
        transaction!(ctx, |tx| {
            if let Some(h) = patient.hospital_id {
                hold_hospital(ctx, &mut tx, h, "hospital_id").await?;
            }
            ctx.repos.patients.insert(tx.session()?, &patient).await?;
            tx.point("patient.register:insert")?;
            // Done as soon as the patient exists (see treatments::record).
            idempotency::complete(ctx, &mut tx, claim.as_ref(), &idem, &patient).await?;
            record_created(ctx, &mut tx, &patient, actor).await?;
            Ok(patient.clone())
        })
    }
    .await;
    idempotency::finish(ctx, claim, result).await
}

/// Inserts a new patient and its history in `tx`.
pub async fn insert(ctx: &Ctx, tx: &mut Tx, patient: &Patient, actor: UserId) -> Result<()> {
    ctx.repos.patients.insert(tx.session()?, patient).await?;
    tx.point("patient.register:insert")?;
    record_created(ctx, tx, patient, actor).await
}

/// The `create` history entry of a new patient, in `tx`.
async fn record_created(ctx: &Ctx, tx: &mut Tx, patient: &Patient, actor: UserId) -> Result<()> {
    history::record(
        ctx,
        tx,
        Change {
            entity: history::Entity::Patient,
            entity_id: patient.id.to_string(),
            patient_id: patient.id,
            before: None,
            after: patient,
            action: "create",
            actor,
        },
    )
    .await?;
    tx.point("patient.register:history")
}

/// Applies `changes` to `prev`, checking every rule; returns the new
/// document and the history action.
async fn apply(
    ctx: &Ctx,
    prev: &Patient,
    changes: PatientChanges,
) -> Result<(Patient, &'static str)> {
    let mut next = prev.clone();
    if let Some(name) = changes.name {
        next.name = name.trim().to_owned();
        next.name_lower = next.name.to_lowercase();
    }
    match (changes.age, changes.date_of_birth) {
        (Some(Some(_)), Some(Some(_))) => {
            return Err(AppError::invalid_field(
                "age",
                "give age or date_of_birth, not both",
            ))
        }
        (Some(age), dob) => {
            next.age = age.map(i32::from);
            if age.is_some() || dob.is_some() {
                next.date_of_birth = None;
            }
        }
        (None, Some(dob)) => {
            if let Some(d) = dob {
                check_birth_date(ctx, d)?;
                next.age = None;
            }
            next.date_of_birth = dob.map(date_to_bson);
        }
        (None, None) => {}
    }
    if let Some(country) = changes.country {
        next.country = country;
    }
    if let Some(contact) = changes.contact {
        next.contact = contact;
    }
    if let Some(source) = changes.source {
        next.source = source.map(|s| s.trim().to_owned());
    }
    if let Some(list) = changes.medical_history {
        (next.medical_history, next.medical_history_lower) = normalized_conditions(list);
    }
    if let Some(assignee) = changes.assigned_to {
        if let Some(u) = assignee {
            check_assignee(ctx, u).await?;
        }
        next.assigned_to = assignee;
    }
    if let Some(date) = changes.next_follow_up {
        next.next_follow_up = date.map(date_to_bson);
    }
    if let Some(reason) = changes.denial_reason {
        next.denial_reason = trimmed(reason);
    }
    let mut action = "update";
    if let Some(status) = changes.treatment_status {
        if !prev.treatment_status.can_become(status) {
            return Err(transition_error(prev.treatment_status, status));
        }
        if status != prev.treatment_status {
            action = "status_change";
        }
        take_step(&mut next, status, ctx.clock.now_bson());
    }
    check_denial(next.treatment_status, &next.denial_reason)?;
    Ok((next, action))
}

/// Moves `p` to `status` with what a status change implies: leaving
/// `completed` makes a repeat patient, leaving `denied` drops the reason,
/// and the funnel notes the stage reached.
pub(super) fn take_step(p: &mut Patient, status: TreatmentStatus, now: BsonDateTime) {
    if status != p.treatment_status {
        if p.treatment_status == TreatmentStatus::Completed {
            p.status = PatientStatus::Repeat;
        }
        if p.treatment_status == TreatmentStatus::Denied {
            p.denial_reason = None;
        }
    }
    p.treatment_status = status;
    p.note_reached(status, now);
}

fn stale(version: i64, current: i64) -> AppError {
    AppError::Stale(format!(
        "stale version {version}: the patient is at version {current}"
    ))
}

/// Updates a patient (optimistic concurrency on `changes.version`).
pub async fn update(
    ctx: &Ctx,
    actor: UserId,
    id: PatientId,
    changes: PatientChanges,
) -> Result<Patient> {
    let prev = load(ctx, id).await?;
    if changes.version != prev.version {
        return Err(stale(changes.version, prev.version));
    }
    let (next, action) = apply(ctx, &prev, changes).await?;
    transaction!(ctx, |tx| save(
        ctx,
        &mut tx,
        &prev,
        next.clone(),
        action,
        actor
    )
    .await)
}

/// Soft delete: the patient disappears from every list and read.
pub async fn delete(ctx: &Ctx, actor: UserId, id: PatientId) -> Result<()> {
    let prev = load(ctx, id).await?;
    let mut next = prev.clone();
    next.deleted_at = Some(ctx.clock.now_bson());
    next.deleted_by = Some(actor);
    transaction!(ctx, |tx| {
        save(ctx, &mut tx, &prev, next.clone(), "delete", actor).await?;
        super::follow::mark_records(ctx, &mut tx, id, true).await?;
        Ok(())
    })
}

/// Undoes a soft delete; 409 if the patient is not deleted.
pub async fn restore(ctx: &Ctx, actor: UserId, id: PatientId) -> Result<Patient> {
    let prev = ctx
        .repos
        .patients
        .find_including_deleted(id)
        .await?
        .ok_or_else(|| AppError::not_found("patient"))?;
    if prev.deleted_at.is_none() {
        return Err(AppError::conflict("the patient is not deleted"));
    }
    let mut next = prev.clone();
    next.deleted_at = None;
    next.deleted_by = None;
    transaction!(ctx, |tx| {
        let restored = save(ctx, &mut tx, &prev, next.clone(), "restore", actor).await?;
        super::follow::mark_records(ctx, &mut tx, id, false).await?;
        Ok(restored)
    })
}

/// Assigns the patient to an active hospital, kept in its hospital history.
pub async fn assign_hospital(
    ctx: &Ctx,
    actor: UserId,
    id: PatientId,
    hospital: HospitalId,
) -> Result<Patient> {
    check_hospital(ctx, hospital, "hospital_id").await?;
    let prev = load(ctx, id).await?;
    if prev.hospital_id == Some(hospital) {
        return Ok(prev);
    }
    let mut next = prev.clone();
    next.hospital_id = Some(hospital);
    next.hospital_history.push(HospitalAssignment {
        hospital_id: hospital,
        by: actor,
        at: ctx.clock.now_bson(),
    });
    transaction!(ctx, |tx| {
        hold_hospital(ctx, &mut tx, hospital, "hospital_id").await?;
        save(ctx, &mut tx, &prev, next.clone(), "assign_hospital", actor).await
    })
}

/// Stores `next` over `prev` (guarded by `prev.version`) and writes its
/// history, in `tx`.
pub async fn save(
    ctx: &Ctx,
    tx: &mut Tx,
    prev: &Patient,
    mut next: Patient,
    action: &'static str,
    actor: UserId,
) -> Result<Patient> {
    next.version = prev.version + 1;
    next.updated_at = ctx.clock.now_bson();
    next.updated_by = actor;
    if !ctx
        .repos
        .patients
        .replace(tx.session()?, &next, prev.version)
        .await?
    {
        return Err(AppError::conflict(
            "the patient was changed meanwhile; reload and retry",
        ));
    }
    tx.point("patient.save:replace")?;
    history::record(
        ctx,
        tx,
        Change {
            entity: history::Entity::Patient,
            entity_id: next.id.to_string(),
            patient_id: next.id,
            before: Some(prev),
            after: &next,
            action,
            actor,
        },
    )
    .await?;
    tx.point("patient.save:history")?;
    Ok(next)
}

/// Changes the live patient `id` in `tx` with `edit` (which returns `false`
/// when there is nothing to do), re-reading and retrying if a concurrent
/// change moves the version meanwhile.
pub async fn change_in(
    ctx: &Ctx,
    tx: &mut Tx,
    id: PatientId,
    actor: UserId,
    edit: impl Fn(&mut Patient) -> bool,
) -> Result<()> {
    change_in_as(ctx, tx, id, actor, "update", edit)
        .await
        .map(|_| ())
}

/// [`change_in`] recorded in history as `action`; whether anything changed.
pub(super) async fn change_in_as(
    ctx: &Ctx,
    tx: &mut Tx,
    id: PatientId,
    actor: UserId,
    action: &'static str,
    edit: impl Fn(&mut Patient) -> bool,
) -> Result<bool> {
    for _ in 0..5 {
        let prev = ctx
            .repos
            .patients
            .find_in(tx.session()?, id)
            .await?
            .filter(|p| p.deleted_at.is_none())
            .ok_or_else(|| AppError::not_found("patient"))?;
        let mut next = prev.clone();
        if !edit(&mut next) {
            return Ok(false);
        }
        match save(ctx, tx, &prev, next, action, actor).await {
            Err(AppError::Conflict { .. }) => continue,
            other => return other.map(|_| true),
        }
    }
    Err(AppError::conflict(
        "the patient is changing too often; retry",
    ))
}

/// Sets the patient's next follow-up (logged appointments do this), in `tx`.
pub async fn set_next_follow_up(
    ctx: &Ctx,
    tx: &mut Tx,
    id: PatientId,
    date: BsonDateTime,
    actor: UserId,
) -> Result<()> {
    change_in(ctx, tx, id, actor, |p| {
        let changed = p.next_follow_up != Some(date);
        p.next_follow_up = Some(date);
        changed
    })
    .await
}

/// Makes the patient a repeat patient (a returning patient started another
/// treatment), in `tx`.
pub async fn mark_repeat(ctx: &Ctx, tx: &mut Tx, id: PatientId, actor: UserId) -> Result<()> {
    change_in(ctx, tx, id, actor, |p| {
        let changed = p.status != PatientStatus::Repeat;
        p.status = PatientStatus::Repeat;
        changed
    })
    .await
}
