//! Treatments per patient, and the ledger entries their completion and
//! cancellation write.

use axum::{extract::State, http::StatusCode, response::IntoResponse, Json};
use chrono::{DateTime, Utc};
use mongodb::bson::DateTime as BsonDateTime;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::{Validate, ValidationError};

use super::patients::{self, check_hospital, PageOnly, PatientPath};
use crate::{
    domain::{
        money::Money,
        patient::{PatientStatus, TreatmentStatus},
        treatment::{EarningEntry, EntryKind, Treatment, TreatmentState},
        AppointmentId, HospitalId, PatientId, TreatmentId, UserId,
    },
    error::{AppError, ErrorResponse, FieldErrors},
    http::{
        audit::AuditPatients,
        auth::CurrentUser,
        dto::{page_request, Page},
        extract::{ApiJson, ApiPath, ApiQuery},
    },
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_treatments, record_treatment))
        .routes(routes!(get_treatment, update_treatment))
}

fn validate_text(s: &str) -> Result<(), ValidationError> {
    let len = s.trim().chars().count();
    if len == 0 || len > 200 {
        return Err(
            ValidationError::new("length").with_message("must be 1 to 200 characters".into())
        );
    }
    Ok(())
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordTreatment {
    /// The course of treatment, e.g. "knee replacement".
    #[validate(custom(function = "validate_text"))]
    pub treatment_type: String,
    #[validate(custom(function = "validate_text"))]
    pub disease: String,
    pub hospital_id: HospitalId,
    #[validate(nested)]
    pub cost: Money,
    /// The company's commission; same currency as `cost`, not more than it.
    #[validate(nested)]
    pub earnings: Money,
    pub status: TreatmentState,
    #[validate(length(max = 100))]
    pub appointment_ids: Option<Vec<AppointmentId>>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTreatment {
    /// The `version` the change is based on; a stale one is a 409.
    pub version: i64,
    #[validate(custom(function = "validate_text"))]
    pub treatment_type: Option<String>,
    #[validate(custom(function = "validate_text"))]
    pub disease: Option<String>,
    pub hospital_id: Option<HospitalId>,
    #[validate(nested)]
    pub cost: Option<Money>,
    #[validate(nested)]
    pub earnings: Option<Money>,
    pub status: Option<TreatmentState>,
    #[validate(length(max = 100))]
    pub appointment_ids: Option<Vec<AppointmentId>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TreatmentResponse {
    pub id: TreatmentId,
    pub patient_id: PatientId,
    pub hospital_id: HospitalId,
    pub treatment_type: String,
    pub disease: String,
    pub cost: Money,
    pub earnings: Money,
    pub status: TreatmentState,
    pub appointment_ids: Vec<AppointmentId>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    pub updated_by: UserId,
    pub updated_at: DateTime<Utc>,
}

impl From<&Treatment> for TreatmentResponse {
    fn from(t: &Treatment) -> Self {
        TreatmentResponse {
            id: t.id,
            patient_id: t.patient_id,
            hospital_id: t.hospital_id,
            treatment_type: t.treatment_type.clone(),
            disease: t.disease.clone(),
            cost: t.cost.clone(),
            earnings: t.earnings.clone(),
            status: t.status,
            appointment_ids: t.appointment_ids.clone(),
            started_at: t.started_at.map(|d| d.to_chrono()),
            completed_at: t.completed_at.map(|d| d.to_chrono()),
            cancelled_at: t.cancelled_at.map(|d| d.to_chrono()),
            version: t.version,
            created_by: t.created_by,
            created_at: t.created_at.to_chrono(),
            updated_by: t.updated_by,
            updated_at: t.updated_at.to_chrono(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TreatmentPath {
    /// The treatment's id.
    pub id: TreatmentId,
}

fn check_money(cost: &Money, earnings: &Money) -> Result<(), AppError> {
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

async fn check_appointments(
    state: &AppState,
    patient: PatientId,
    ids: &[AppointmentId],
) -> Result<(), AppError> {
    for id in ids {
        match state.repos.appointments.find(*id).await? {
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
fn stamp(t: &mut Treatment, prev: Option<TreatmentState>, now: BsonDateTime) {
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

/// Makes the ledger match the treatment: a credit once completed, and a
/// reversal once a completed treatment is cancelled. Idempotent.
async fn settle(state: &AppState, t: &Treatment) -> Result<(), AppError> {
    let Some(completed_at) = t.completed_at else {
        return Ok(());
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
    if matches!(
        t.status,
        TreatmentState::Completed | TreatmentState::Cancelled
    ) {
        state
            .repos
            .treatments
            .book(&entry(
                EntryKind::Credit,
                t.earnings.amount_minor,
                completed_at,
            ))
            .await?;
    }
    if t.status == TreatmentState::Cancelled {
        let at = t.cancelled_at.unwrap_or(completed_at);
        state
            .repos
            .treatments
            .book(&entry(EntryKind::Reversal, -t.earnings.amount_minor, at))
            .await?;
    }
    Ok(())
}

async fn record_history(
    state: &AppState,
    before: Option<&Treatment>,
    after: &Treatment,
    action: &str,
    actor: UserId,
) -> Result<(), AppError> {
    let id = after.id.to_string();
    patients::record_change(
        state,
        "treatment",
        id,
        after.patient_id,
        before,
        after,
        action,
        actor,
    )
    .await
}

/// The treatment, if its patient is live.
async fn load(state: &AppState, id: TreatmentId) -> Result<Treatment, AppError> {
    let t = state
        .repos
        .treatments
        .find(id)
        .await?
        .ok_or_else(|| AppError::not_found("treatment"))?;
    patients::load(state, t.patient_id)
        .await
        .map_err(|_| AppError::not_found("treatment"))?;
    Ok(t)
}

/// A patient's treatments, newest first.
#[utoipa::path(get, path = "/patients/{id}/treatments", tag = "treatments", params(PatientPath, PageOnly),
    responses((status = 200, body = Page<TreatmentResponse>), (status = 404, body = ErrorResponse)))]
pub async fn list_treatments(
    State(state): State<AppState>,
    ApiPath(PatientPath { id }): ApiPath<PatientPath>,
    ApiQuery(q): ApiQuery<PageOnly>,
) -> Result<Json<Page<TreatmentResponse>>, AppError> {
    let page = page_request(q.page, q.per_page)?;
    patients::load(&state, id).await?;
    let (items, total) = state.repos.treatments.for_patient(id, page).await?;
    Ok(Json(Page::new(
        items.iter().map(TreatmentResponse::from).collect(),
        page,
        total,
    )))
}

/// Record a treatment. A patient who already completed a treatment becomes
/// a repeat patient; a treatment recorded as completed is credited at once.
#[utoipa::path(post, path = "/patients/{id}/treatments", tag = "treatments", params(PatientPath),
    request_body = RecordTreatment,
    responses((status = 201, body = TreatmentResponse), (status = 404, body = ErrorResponse), (status = 422, body = ErrorResponse)))]
pub async fn record_treatment(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiPath(PatientPath { id }): ApiPath<PatientPath>,
    ApiJson(body): ApiJson<RecordTreatment>,
) -> Result<(StatusCode, Json<TreatmentResponse>), AppError> {
    let patient = patients::load(&state, id).await?;
    check_money(&body.cost, &body.earnings)?;
    check_hospital(&state, body.hospital_id, "hospital_id").await?;
    let appointment_ids = body.appointment_ids.unwrap_or_default();
    check_appointments(&state, id, &appointment_ids).await?;
    let returning = patient.treatment_status == TreatmentStatus::Completed
        || state.repos.treatments.has_completed(id).await?;

    let now = BsonDateTime::now();
    let mut treatment = Treatment {
        id: TreatmentId::new(),
        patient_id: id,
        hospital_id: body.hospital_id,
        treatment_type: body.treatment_type.trim().to_owned(),
        disease: body.disease.trim().to_owned(),
        cost: body.cost,
        earnings: body.earnings,
        status: body.status,
        appointment_ids,
        started_at: None,
        completed_at: None,
        cancelled_at: None,
        version: 1,
        created_by: me.id,
        created_at: now,
        updated_by: me.id,
        updated_at: now,
    };
    if treatment.status == TreatmentState::Cancelled {
        return Err(AppError::invalid_field(
            "status",
            "a new treatment cannot start cancelled",
        ));
    }
    stamp(&mut treatment, None, now);
    state.repos.treatments.insert(&treatment).await?;
    record_history(&state, None, &treatment, "create", me.id).await?;
    settle(&state, &treatment).await?;
    if returning && patient.status != PatientStatus::Repeat {
        patients::mark_repeat(&state, id, me.id).await?;
    }
    Ok((
        StatusCode::CREATED,
        Json(TreatmentResponse::from(&treatment)),
    ))
}

/// Read a treatment.
#[utoipa::path(get, path = "/treatments/{id}", tag = "treatments", params(TreatmentPath),
    responses((status = 200, body = TreatmentResponse), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
pub async fn get_treatment(
    State(state): State<AppState>,
    ApiPath(TreatmentPath { id }): ApiPath<TreatmentPath>,
) -> Result<impl IntoResponse, AppError> {
    let t = load(&state, id).await?;
    Ok((
        axum::Extension(AuditPatients(vec![t.patient_id.to_string()])),
        Json(TreatmentResponse::from(&t)),
    ))
}

/// Update a treatment (with `version`). Completing it books its earnings
/// once; cancelling a completed one books a reversal. The money and hospital
/// of a completed or cancelled treatment are fixed.
#[utoipa::path(patch, path = "/treatments/{id}", tag = "treatments", params(TreatmentPath),
    request_body = UpdateTreatment,
    responses(
        (status = 200, body = TreatmentResponse),
        (status = 404, body = ErrorResponse),
        (status = 409, description = "Stale version", body = ErrorResponse),
        (status = 422, body = ErrorResponse),
    ))]
pub async fn update_treatment(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiPath(TreatmentPath { id }): ApiPath<TreatmentPath>,
    ApiJson(body): ApiJson<UpdateTreatment>,
) -> Result<impl IntoResponse, AppError> {
    let prev = load(&state, id).await?;
    if body.version != prev.version {
        // A retried request that already went through: make sure the ledger
        // is settled, then report the conflict as usual.
        settle(&state, &prev).await?;
        return Err(AppError::conflict(format!(
            "stale version {}: the treatment is at version {}",
            body.version, prev.version
        )));
    }
    let settled = matches!(
        prev.status,
        TreatmentState::Completed | TreatmentState::Cancelled
    );
    let money_change = body.cost.as_ref().is_some_and(|c| *c != prev.cost)
        || body.earnings.as_ref().is_some_and(|e| *e != prev.earnings)
        || body.hospital_id.is_some_and(|h| h != prev.hospital_id);
    if settled && money_change {
        return Err(AppError::invalid_field(
            "status",
            "the cost, earnings and hospital of a completed or cancelled treatment are fixed",
        ));
    }
    let mut next = prev.clone();
    if let Some(v) = body.treatment_type {
        next.treatment_type = v.trim().to_owned();
    }
    if let Some(v) = body.disease {
        next.disease = v.trim().to_owned();
    }
    if let Some(h) = body.hospital_id {
        if h != prev.hospital_id {
            check_hospital(&state, h, "hospital_id").await?;
        }
        next.hospital_id = h;
    }
    if let Some(c) = body.cost {
        next.cost = c;
    }
    if let Some(e) = body.earnings {
        next.earnings = e;
    }
    check_money(&next.cost, &next.earnings)?;
    if let Some(ids) = body.appointment_ids {
        check_appointments(&state, prev.patient_id, &ids).await?;
        next.appointment_ids = ids;
    }
    if let Some(s) = body.status {
        if !prev.status.can_become(s) {
            return Err(transition_error(prev.status, s));
        }
        next.status = s;
    }
    let now = BsonDateTime::now();
    stamp(&mut next, Some(prev.status), now);
    next.version = prev.version + 1;
    next.updated_by = me.id;
    next.updated_at = now;
    if !state.repos.treatments.replace(&next, prev.version).await? {
        return Err(AppError::conflict(
            "the treatment was changed meanwhile; reload and retry",
        ));
    }
    let action = if next.status != prev.status {
        "status_change"
    } else {
        "update"
    };
    record_history(&state, Some(&prev), &next, action, me.id).await?;
    settle(&state, &next).await?;
    Ok((
        axum::Extension(AuditPatients(vec![next.patient_id.to_string()])),
        Json(TreatmentResponse::from(&next)),
    ))
}
