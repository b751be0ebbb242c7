//! Treatments per patient, and the ledger entries their completion and
//! cancellation write.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::Validate;

use crate::{
    domain::{
        money::Money,
        treatment::{Treatment, TreatmentState},
        AppointmentId, HospitalId, PatientId, TreatmentId,
    },
    error::{AppError, ErrorResponse},
    http::{
        audit::AuditPatients,
        auth::CurrentUser,
        dto::{page_request, Page, TreatmentResponse},
        extract::{ApiJson, ApiPath, ApiQuery},
        idempotency::{created, json_body, IdempotencyKey},
        params::{date_window, PageOnly, PatientPath},
        text::validate_text,
        versioning::{etag, expected, stale_as_precondition, IfMatch},
    },
    repo::treatments::TreatmentListFilter,
    state::AppState,
    workflow::{
        idempotency::Idem,
        patients,
        treatments::{self, NewTreatment, TreatmentChanges},
    },
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_treatments, record_treatment))
        .routes(routes!(get_treatment, update_treatment))
        .routes(routes!(treatment_list))
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TreatmentListQuery {
    #[param(minimum = 1, maximum = 1_000_000)]
    pub page: Option<u64>,
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<u64>,
    pub status: Option<TreatmentState>,
    pub hospital_id: Option<HospitalId>,
    /// On `created_at` (recorded or booked): `YYYY-MM-DD` (inclusive) or RFC 3339.
    pub from: Option<String>,
    /// `YYYY-MM-DD` (inclusive, whole day) or RFC 3339 (exclusive).
    pub to: Option<String>,
}

/// A row of the cross-patient list: the treatment and its patient's name.
#[derive(Debug, Serialize, ToSchema)]
pub struct TreatmentRow {
    #[serde(flatten)]
    pub treatment: TreatmentResponse,
    pub patient_name: String,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"treatment_type": "total knee replacement", "disease": "osteoarthritis",
    "hospital_id": "665f1c2e8b3e4a0012345678",
    "cost": {"amount_minor": 1_250_000, "currency": "EUR"},
    "earnings": {"amount_minor": 156_250, "currency": "EUR"}, "status": "planned"}))]
pub struct RecordTreatment {
    /// The course of treatment, e.g. "knee replacement"; 1 to 200
    /// characters once trimmed.
    #[validate(custom(function = "validate_text"))]
    #[schema(min_length = 1, max_length = 200)]
    pub treatment_type: String,
    /// 1 to 200 characters once trimmed.
    #[validate(custom(function = "validate_text"))]
    #[schema(min_length = 1, max_length = 200)]
    pub disease: String,
    pub hospital_id: HospitalId,
    #[validate(nested)]
    pub cost: Money,
    /// The company's commission; same currency as `cost`, not more than it.
    #[validate(nested)]
    pub earnings: Money,
    /// Not `cancelled`.
    pub status: TreatmentState,
    /// Appointments of this patient, at most 100.
    #[validate(length(max = 100))]
    #[schema(max_items = 100)]
    pub appointment_ids: Option<Vec<AppointmentId>>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"version": 2, "status": "in_progress"}))]
pub struct UpdateTreatment {
    /// The `version` the change is based on (or send `If-Match`); a stale
    /// one is a 409.
    #[schema(maximum = 9_223_372_036_854_775_807_i64)]
    pub version: Option<i64>,
    /// 1 to 200 characters once trimmed.
    #[validate(custom(function = "validate_text"))]
    #[schema(min_length = 1, max_length = 200)]
    pub treatment_type: Option<String>,
    /// 1 to 200 characters once trimmed.
    #[validate(custom(function = "validate_text"))]
    #[schema(min_length = 1, max_length = 200)]
    pub disease: Option<String>,
    pub hospital_id: Option<HospitalId>,
    #[validate(nested)]
    pub cost: Option<Money>,
    #[validate(nested)]
    pub earnings: Option<Money>,
    pub status: Option<TreatmentState>,
    /// Appointments of this patient, at most 100.
    #[validate(length(max = 100))]
    #[schema(max_items = 100)]
    pub appointment_ids: Option<Vec<AppointmentId>>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TreatmentPath {
    /// The treatment's id.
    pub id: TreatmentId,
}

impl From<RecordTreatment> for NewTreatment {
    fn from(b: RecordTreatment) -> Self {
        NewTreatment {
            treatment_type: b.treatment_type,
            disease: b.disease,
            hospital_id: b.hospital_id,
            cost: b.cost,
            earnings: b.earnings,
            status: b.status,
            appointment_ids: b.appointment_ids.unwrap_or_default(),
        }
    }
}

impl From<UpdateTreatment> for TreatmentChanges {
    fn from(b: UpdateTreatment) -> Self {
        TreatmentChanges {
            // The handler sets the base version from `version` or If-Match.
            version: b.version.unwrap_or_default(),
            treatment_type: b.treatment_type,
            disease: b.disease,
            hospital_id: b.hospital_id,
            cost: b.cost,
            earnings: b.earnings,
            status: b.status,
            appointment_ids: b.appointment_ids,
        }
    }
}

/// A patient's treatments, newest first.
#[utoipa::path(get, path = "/api/v1/patients/{id}/treatments", tag = "treatments", params(PatientPath, PageOnly),
    responses((status = 200, body = Page<TreatmentResponse>), (status = 404, body = ErrorResponse)))]
pub async fn list_treatments(
    State(state): State<AppState>,
    ApiPath(PatientPath { id }): ApiPath<PatientPath>,
    ApiQuery(q): ApiQuery<PageOnly>,
) -> Result<Json<Page<TreatmentResponse>>, AppError> {
    let page = page_request(q.page, q.per_page)?;
    patients::load(&state.workflows, id).await?;
    let (items, total) = state.repos.treatments.for_patient(id, page).await?;
    Ok(Json(Page::new(
        items.iter().map(TreatmentResponse::from).collect(),
        page,
        total,
    )))
}

/// Record a treatment. A patient who already completed a treatment becomes
/// a repeat patient; a treatment recorded as completed is credited at once.
#[utoipa::path(post, path = "/api/v1/patients/{id}/treatments", tag = "treatments", params(PatientPath),
    request_body = RecordTreatment,
    responses((status = 201, body = TreatmentResponse), (status = 404, body = ErrorResponse), (status = 422, body = ErrorResponse)))]
pub async fn record_treatment(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    IdempotencyKey(key): IdempotencyKey,
    ApiPath(PatientPath { id }): ApiPath<PatientPath>,
    ApiJson(body): ApiJson<RecordTreatment>,
) -> Result<Response, AppError> {
    let idem = Idem {
        request: key.as_ref(),
        status: StatusCode::CREATED.as_u16(),
        render: &|t: &Treatment| json_body(&TreatmentResponse::from(t)),
    };
    let outcome = treatments::record(&state.workflows, me.id, id, body.into(), idem).await?;
    Ok(created(outcome, |t| {
        (StatusCode::CREATED, Json(TreatmentResponse::from(&t))).into_response()
    }))
}

/// Read a treatment.
#[utoipa::path(get, path = "/api/v1/treatments/{id}", tag = "treatments", params(TreatmentPath),
    responses((status = 200, body = TreatmentResponse), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
pub async fn get_treatment(
    State(state): State<AppState>,
    ApiPath(TreatmentPath { id }): ApiPath<TreatmentPath>,
) -> Result<impl IntoResponse, AppError> {
    let t = treatments::load(&state.workflows, id).await?;
    Ok((
        [etag(t.version)],
        axum::Extension(AuditPatients(vec![t.patient_id.to_string()])),
        Json(TreatmentResponse::from(&t)),
    ))
}

/// Update a treatment (with `version`). Completing it books its earnings
/// once; cancelling a completed one books a reversal. The money and hospital
/// of a completed or cancelled treatment are fixed.
#[utoipa::path(patch, path = "/api/v1/treatments/{id}", tag = "treatments", params(TreatmentPath, ("If-Match" = Option<String>, Header, description = "The record's ETag as read; in place of the body's `version`")),
    request_body = UpdateTreatment,
    responses(
        (status = 200, body = TreatmentResponse),
        (status = 404, body = ErrorResponse),
        (status = 409, description = "Stale version", body = ErrorResponse),
        (status = 412, description = "Stale If-Match", body = ErrorResponse),
        (status = 422, body = ErrorResponse),
        (status = 428, description = "Neither version nor If-Match", body = ErrorResponse),
    ))]
pub async fn update_treatment(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    if_match: IfMatch,
    ApiPath(TreatmentPath { id }): ApiPath<TreatmentPath>,
    ApiJson(body): ApiJson<UpdateTreatment>,
) -> Result<impl IntoResponse, AppError> {
    let base = expected(body.version, if_match)?;
    let mut changes = TreatmentChanges::from(body);
    changes.version = base.version;
    let next = stale_as_precondition(
        treatments::update(&state.workflows, me.id, id, changes).await,
        base.from_header,
    )?;
    Ok((
        [etag(next.version)],
        axum::Extension(AuditPatients(vec![next.patient_id.to_string()])),
        Json(TreatmentResponse::from(&next)),
    ))
}

/// Treatments across patients, newest first: `status`, `hospital_id`, and
/// `from`/`to` on when they were recorded. Soft-deleted patients' treatments
/// are left out.
#[utoipa::path(get, path = "/api/v1/treatments", tag = "treatments", params(TreatmentListQuery),
    responses((status = 200, body = Page<TreatmentRow>), (status = 400, body = ErrorResponse)))]
pub async fn treatment_list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<TreatmentListQuery>,
) -> Result<impl IntoResponse, AppError> {
    let page = page_request(q.page, q.per_page)?;
    let (from, before) = date_window(q.from.as_deref(), q.to.as_deref())?;
    let filter = TreatmentListFilter {
        status: q.status,
        hospital_id: q.hospital_id,
        from,
        before,
    };
    let (items, total) = state.repos.treatments.list(&filter, page).await?;
    let ids: Vec<PatientId> = items.iter().map(|t| t.patient_id).collect();
    let names = state.repos.patients.names_of(&ids).await?;
    let rows = items
        .iter()
        .map(|t| TreatmentRow {
            treatment: TreatmentResponse::from(t),
            patient_name: names.get(&t.patient_id).cloned().unwrap_or_default(),
        })
        .collect();
    Ok((
        axum::Extension(AuditPatients(ids.iter().map(|i| i.to_string()).collect())),
        Json(Page::new(rows, page, total)),
    ))
}
