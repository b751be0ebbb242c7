//! Quotes: ask partner hospitals for a price, record their answers, and
//! accept one, which books the treatment with the hospital's commission.
//!
//! Accepting is one transaction: the quote, its booking, the planned
//! treatment, the patient's hospital assignment and the other open quotes
//! for the same treatment (declined) are all written, each with its history,
//! or none of them is. Two accepts for one patient's treatment type meet at
//! the booking (`repo::quotes`): one wins, the other is a 409.

use chrono::NaiveDate;

use super::{
    history::{self, Change},
    idempotency::{self, Claim, Claimed, Created, Idem},
    patients,
    treatments::{self, NewTreatment, Planned},
    tx::Tx,
    Ctx,
};
use crate::{
    domain::{
        money::Money,
        quote::{commission, Quote, QuoteStatus},
        treatment::{Treatment, TreatmentState},
        HospitalId, PatientId, QuoteId, UserId,
    },
    error::{AppError, FieldErrors, Result},
    repo::quotes::booking_key,
    transaction,
};

/// A quote to ask for.
#[derive(Debug, Clone)]
pub struct NewQuote {
    pub hospital_id: HospitalId,
    pub treatment_type: String,
    pub disease: Option<String>,
    pub notes: Option<String>,
}

/// The hospital's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub version: i64,
    pub status: QuoteStatus,
    pub amount: Option<Money>,
    pub valid_until: Option<NaiveDate>,
    pub includes: Option<String>,
    pub notes: Option<String>,
}

/// What accepting may add: the earnings (required when the hospital has no
/// commission terms) and the disease (required when the quote names none).
#[derive(Debug, Clone, Default)]
pub struct Acceptance {
    pub earnings: Option<Money>,
    pub disease: Option<String>,
}

/// An accepted quote and the treatment it booked.
#[derive(Debug, Clone)]
pub struct Booked {
    pub quote: Quote,
    pub treatment: Treatment,
}

fn trimmed(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// The quote, if its patient is live.
pub async fn load(ctx: &Ctx, id: QuoteId) -> Result<Quote> {
    let q = ctx
        .repos
        .quotes
        .find(id)
        .await?
        .ok_or_else(|| AppError::not_found("quote"))?;
    let patient = q.patient_id;
    patients::of_live_patient(ctx, q, patient, "quote").await
}

async fn record_history(
    ctx: &Ctx,
    tx: &mut Tx,
    before: Option<&Quote>,
    after: &Quote,
    action: &'static str,
    actor: UserId,
) -> Result<()> {
    history::record(
        ctx,
        tx,
        Change {
            entity: history::Entity::Quote,
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

/// Asks `input.hospital_id` (an active hospital) for a price.
pub async fn request(
    ctx: &Ctx,
    actor: UserId,
    patient_id: PatientId,
    input: NewQuote,
    idem: Idem<'_, Quote>,
) -> Result<Created<Quote>> {
    let claim = match idempotency::claim(ctx, actor, idem.request).await? {
        Claimed::Replay(r) => return Ok(Created::Replayed(r)),
        Claimed::Proceed(c) => c,
    };
    let result = request_claimed(ctx, actor, patient_id, input, claim.as_ref(), &idem).await;
    idempotency::finish(ctx, claim, result).await
}

async fn request_claimed(
    ctx: &Ctx,
    actor: UserId,
    patient_id: PatientId,
    input: NewQuote,
    claim: Option<&Claim>,
    idem: &Idem<'_, Quote>,
) -> Result<Quote> {
    patients::load(ctx, patient_id).await?;
    patients::check_hospital(ctx, input.hospital_id, "hospital_id").await?;
    let now = ctx.clock.now_bson();
    let treatment_type = input.treatment_type.trim().to_owned();
    let mut quote = Quote {
        id: QuoteId::new(),
        patient_id,
        hospital_id: input.hospital_id,
        treatment_key: treatment_type.to_lowercase(),
        treatment_type,
        disease: trimmed(input.disease),
        notes: trimmed(input.notes),
        status: QuoteStatus::Requested,
        rank: 0,
        amount: None,
        valid_until: None,
        includes: None,
        answered_at: None,
        accepted_at: None,
        treatment_id: None,
        version: 1,
        created_by: actor,
        created_at: now,
        updated_by: actor,
        updated_at: now,
    };
    quote.set_status(QuoteStatus::Requested);
    transaction!(ctx, |tx| {
        patients::hold_hospital(ctx, &mut tx, quote.hospital_id, "hospital_id").await?;
        ctx.repos.quotes.insert(tx.session()?, &quote).await?;
        tx.point("quote.request:insert")?;
        idempotency::complete(ctx, &mut tx, claim, idem, &quote).await?;
        record_history(ctx, &mut tx, None, &quote, "create", actor).await?;
        Ok(quote.clone())
    })
}

fn stale(version: i64, current: i64) -> AppError {
    AppError::Stale(format!(
        "stale version {version}: the quote is at version {current}"
    ))
}

/// Why a quote in this state cannot be answered or accepted (409), if so.
fn closed(q: &Quote, today: NaiveDate) -> Option<AppError> {
    match q.status {
        QuoteStatus::Accepted => Some(AppError::conflict("the quote is already accepted")),
        QuoteStatus::Declined => Some(AppError::conflict("the quote was declined")),
        _ if q.is_expired(today) => Some(AppError::conflict(format!(
            "the quote expired after {}; ask the hospital for a new one",
            q.valid_until.as_deref().unwrap_or("its last day")
        ))),
        _ => None,
    }
}

/// `prev` with the hospital's answer applied (not yet stamped): a received
/// quote needs its price and a last day not in the past.
fn answered(prev: &Quote, answer: &Answer, today: NaiveDate) -> Result<Quote> {
    let mut next = prev.clone();
    match answer.status {
        QuoteStatus::Received => {
            let mut details = FieldErrors::new();
            if answer.amount.is_none() {
                details.insert("amount".into(), vec!["required for a received quote".into()]);
            }
            match answer.valid_until {
                None => {
                    details.insert(
                        "valid_until".into(),
                        vec!["required for a received quote".into()],
                    );
                }
                Some(d) if d < today => {
                    details.insert("valid_until".into(), vec!["must not be in the past".into()]);
                }
                Some(_) => {}
            }
            if !details.is_empty() {
                return Err(AppError::Validation {
                    message: "a received quote needs its price and the day it holds until"
                        .into(),
                    details,
                });
            }
            next.amount = answer.amount.clone();
            next.valid_until = answer.valid_until.map(|d| d.format("%Y-%m-%d").to_string());
        }
        QuoteStatus::Declined => {
            if answer.amount.clone().is_some() {
                next.amount = answer.amount.clone();
            }
            if let Some(d) = answer.valid_until {
                next.valid_until = Some(d.format("%Y-%m-%d").to_string());
            }
        }
        other => {
            return Err(AppError::invalid_field(
                "status",
                format!(
                    "an answer is received or declined, not {}; accept a quote with POST /quotes/{{id}}/accept",
                    other.as_str()
                ),
            ))
        }
    }
    if answer.includes.is_some() {
        next.includes = trimmed(answer.includes.clone());
    }
    if answer.notes.is_some() {
        next.notes = trimmed(answer.notes.clone());
    }
    Ok(next)
}

/// Records the hospital's answer: a price valid until a day (`received`),
/// or `declined`. A received quote may be answered again (a revised price)
/// until it is accepted, declined or expired.
pub async fn answer(ctx: &Ctx, actor: UserId, id: QuoteId, answer: Answer) -> Result<Quote> {
    let prev = load(ctx, id).await?;
    if answer.version != prev.version {
        return Err(stale(answer.version, prev.version));
    }
    let today = ctx.clock.today();
    if let Some(e) = closed(&prev, today) {
        return Err(e);
    }
    let mut next = answered(&prev, &answer, today)?;
    let now = ctx.clock.now_bson();
    next.set_status(answer.status);
    next.answered_at = Some(now);
    next.version = prev.version + 1;
    next.updated_by = actor;
    next.updated_at = now;
    let action = if answer.status == QuoteStatus::Declined {
        "decline"
    } else {
        "answer"
    };
    transaction!(ctx, |tx| {
        if !ctx
            .repos
            .quotes
            .replace(tx.session()?, &next, prev.version)
            .await?
        {
            return Err(AppError::conflict(
                "the quote was changed meanwhile; reload and retry",
            ));
        }
        tx.point("quote.answer:replace")?;
        record_history(ctx, &mut tx, Some(&prev), &next, action, actor).await?;
        Ok(next.clone())
    })
}

/// The earnings of accepting `q` at the hospital's commission, or the
/// ones the request gives; 422 naming what is missing.
async fn terms(ctx: &Ctx, q: &Quote, input: &Acceptance) -> Result<(Money, Money, String)> {
    let hospital = super::hospitals::load(ctx, q.hospital_id).await?;
    let mut details = FieldErrors::new();
    let cost = q.amount.clone();
    let earnings = match (&input.earnings, hospital.commission_bps, &cost) {
        (Some(e), _, _) => Some(e.clone()),
        (None, Some(bps), Some(cost)) => Some(Money {
            amount_minor: commission(cost.amount_minor, bps),
            currency: cost.currency.clone(),
        }),
        _ => {
            details.insert(
                "earnings".into(),
                vec![format!(
                    "required: {} has no commission terms",
                    hospital.name
                )],
            );
            None
        }
    };
    let disease = trimmed(input.disease.clone()).or_else(|| q.disease.clone());
    if disease.is_none() {
        details.insert(
            "disease".into(),
            vec!["required: the quote names no disease".into()],
        );
    }
    match (cost, earnings, disease) {
        (Some(c), Some(e), Some(d)) if details.is_empty() => Ok((c, e, d)),
        _ => Err(AppError::Validation {
            message: "accepting this quote needs more".into(),
            details,
        }),
    }
}

/// Accepts a received, unexpired quote: books a planned treatment at the
/// quoted cost with the hospital's commission, assigns the patient to the
/// hospital, and declines the patient's other open quotes for the same
/// treatment.
pub async fn accept(
    ctx: &Ctx,
    actor: UserId,
    id: QuoteId,
    input: Acceptance,
    idem: Idem<'_, Booked>,
) -> Result<Created<Booked>> {
    let claim = match idempotency::claim(ctx, actor, idem.request).await? {
        Claimed::Replay(r) => return Ok(Created::Replayed(r)),
        Claimed::Proceed(c) => c,
    };
    let result = accept_claimed(ctx, actor, id, input, claim.as_ref(), &idem).await;
    idempotency::finish(ctx, claim, result).await
}

async fn accept_claimed(
    ctx: &Ctx,
    actor: UserId,
    id: QuoteId,
    input: Acceptance,
    claim: Option<&Claim>,
    idem: &Idem<'_, Booked>,
) -> Result<Booked> {
    let prev = load(ctx, id).await?;
    let now = ctx.clock.now_bson();
    if let Some(e) = closed(&prev, ctx.clock.today()) {
        return Err(e);
    }
    if prev.status == QuoteStatus::Requested {
        return Err(AppError::conflict(
            "the hospital has not answered yet; record its price first",
        ));
    }
    let (cost, earnings, disease) = terms(ctx, &prev, &input).await?;
    let planned = treatments::plan(
        ctx,
        actor,
        prev.patient_id,
        NewTreatment {
            treatment_type: prev.treatment_type.clone(),
            disease,
            hospital_id: prev.hospital_id,
            cost,
            earnings,
            status: TreatmentState::Planned,
            appointment_ids: Vec::new(),
        },
        Some(prev.id),
    )
    .await?;
    let mut quote = prev.clone();
    quote.set_status(QuoteStatus::Accepted);
    quote.accepted_at = Some(now);
    quote.treatment_id = Some(planned.treatment.id);
    quote.version = prev.version + 1;
    quote.updated_by = actor;
    quote.updated_at = now;
    let booked = Booked {
        quote,
        treatment: planned.treatment.clone(),
    };
    ctx.faults.pause("quote.accept:checked").await;
    transaction!(ctx, |tx| {
        book(ctx, &mut tx, &prev, &booked, &planned, actor).await?;
        idempotency::complete(ctx, &mut tx, claim, idem, &booked).await?;
        tx.point("quote.accept:key")?;
        // The booked treatment is the patient's (see treatments::record).
        super::holds::hold_patient(ctx, &mut tx, prev.patient_id).await?;
        decline_siblings(ctx, &mut tx, &booked.quote, actor).await?;
        super::follow::assign_in(ctx, &mut tx, prev.patient_id, prev.hospital_id, actor).await?;
        tx.point("quote.accept:assign")?;
        treatments::follow_up_recorded(ctx, &mut tx, &planned, actor).await?;
        Ok(booked.clone())
    })
}

/// The accept's gate and the treatment: the quote (guarded by its version),
/// its booking (one per patient and treatment type), the treatment, and
/// their history.
async fn book(
    ctx: &Ctx,
    tx: &mut Tx,
    prev: &Quote,
    booked: &Booked,
    planned: &Planned,
    actor: UserId,
) -> Result<()> {
    if !ctx
        .repos
        .quotes
        .replace(tx.session()?, &booked.quote, prev.version)
        .await?
    {
        return Err(AppError::conflict(
            "the quote was changed meanwhile; reload and retry",
        ));
    }
    tx.point("quote.accept:quote")?;
    let key = booking_key(prev.patient_id, &prev.treatment_key);
    if !ctx
        .repos
        .quotes
        .claim_booking(tx.session()?, &key, prev.id, booked.treatment.id)
        .await?
    {
        return Err(AppError::conflict(format!(
            "another quote for {} is already accepted for this patient",
            prev.treatment_type
        )));
    }
    tx.point("quote.accept:booking")?;
    patients::hold_hospital(ctx, tx, prev.hospital_id, "hospital_id").await?;
    ctx.repos
        .treatments
        .insert(tx.session()?, &planned.treatment)
        .await?;
    tx.point("quote.accept:treatment")?;
    treatments::record_history(ctx, tx, None, &booked.treatment, "create", actor).await?;
    record_history(ctx, tx, Some(prev), &booked.quote, "accept", actor).await
}

/// Declines the patient's other open quotes for the same treatment, each
/// with its history entry.
async fn decline_siblings(ctx: &Ctx, tx: &mut Tx, accepted: &Quote, actor: UserId) -> Result<()> {
    let now = ctx.clock.now_bson();
    for prev in ctx
        .repos
        .quotes
        .open_siblings_in(tx.session()?, accepted)
        .await?
    {
        let mut next = prev.clone();
        next.set_status(QuoteStatus::Declined);
        next.version = prev.version + 1;
        next.updated_by = actor;
        next.updated_at = now;
        if !ctx
            .repos
            .quotes
            .replace(tx.session()?, &next, prev.version)
            .await?
        {
            return Err(AppError::conflict(
                "another quote of this patient changed meanwhile; retry",
            ));
        }
        record_history(ctx, tx, Some(&prev), &next, "decline", actor).await?;
        tx.point("quote.accept:decline")?;
    }
    Ok(())
}
