//! Patients: register, read, list, update (optimistic concurrency), the
//! treatment-status workflow, hospital assignment, soft delete and restore,
//! and each patient's change history and access log.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use chrono::{DateTime, NaiveDate, Utc};
use mongodb::bson::{doc, Bson};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::{Validate, ValidationError};

use crate::domain::permission::{RouteKey, DELETED_PATIENTS};
use crate::{
    domain::{
        dates::validate_date,
        iso::validate_country,
        patient::{Patient, PatientContact, PatientStatus, TreatmentStatus},
        HospitalId, UserId,
    },
    error::{AppError, ErrorResponse},
    http::{
        audit::AuditPatients,
        auth::CurrentUser,
        dto::{page_request, AccessLogEntry, Page, PatientResponse},
        extract::{ApiJson, ApiPath, ApiQuery},
        idempotency::{created, json_body, replayed_id, IdempotencyKey},
        params::{nullable, parse_bound, renamed, PageOnly, PatientPath},
        text::validate_text,
        versioning::{etag, expected, stale_as_precondition, IfMatch},
    },
    repo::patients::{PatientFilter, PatientSort},
    state::AppState,
    workflow::{
        idempotency::{Created, Idem},
        patients::{self, NewPatient, PatientChanges},
    },
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_patients, register_patient))
        .routes(routes!(get_patient, update_patient, delete_patient))
        .routes(routes!(restore_patient))
        .routes(routes!(assign_hospital))
        .routes(routes!(patient_history))
        .routes(routes!(access_log))
}

// ---- DTOs --------------------------------------------------------------

fn validate_conditions(list: &[String]) -> Result<(), ValidationError> {
    if list.len() > 50 {
        return Err(ValidationError::new("length").with_message("at most 50 conditions".into()));
    }
    if list
        .iter()
        .any(|c| c.trim().is_empty() || c.chars().count() > 200)
    {
        return Err(ValidationError::new("length")
            .with_message("each condition must be 1 to 200 characters".into()));
    }
    Ok(())
}

/// `medical_history` as [`validate_conditions`] takes it.
fn conditions_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(200)),
        )
        .max_items(Some(50))
        .description(Some(
            "At most 50 conditions, each at most 200 characters and not blank.",
        ))
        .build()
}

#[derive(Debug, Clone, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactInput {
    #[validate(email(message = "must be a valid email"), length(max = 254))]
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
    #[validate(length(min = 3, max = 40))]
    #[schema(min_length = 3, max_length = 40)]
    pub phone: Option<String>,
}

impl From<ContactInput> for PatientContact {
    fn from(c: ContactInput) -> Self {
        PatientContact {
            email: c.email.map(|e| e.trim().to_lowercase()),
            phone: c.phone,
        }
    }
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Klaus Becker", "age": 64, "country": "DE",
    "contact": {"email": "klaus.becker@example.de", "phone": "+49 89 1234 5678"},
    "source": "website inquiry form",
    "medical_history": ["osteoarthritis of the right knee", "type 2 diabetes, controlled"],
    "treatment_status": "inquiry", "next_follow_up": "2026-12-03"}))]
pub struct RegisterPatient {
    /// 1 to 200 characters once trimmed.
    #[validate(custom(function = "validate_text"))]
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Age in years; give this or `date_of_birth`.
    #[validate(range(max = 130))]
    #[schema(minimum = 0, maximum = 130)]
    pub age: Option<u8>,
    /// `YYYY-MM-DD`, in the past and within 130 years (and in 1900 ..=
    /// 2200); the age is derived from it.
    #[validate(custom(function = "validate_date"))]
    pub date_of_birth: Option<NaiveDate>,
    /// ISO 3166-1 alpha-2, upper case.
    #[validate(custom(function = "validate_country"))]
    #[schema(min_length = 2, max_length = 2, pattern = "^[A-Z]{2}$", example = "DE")]
    pub country: String,
    #[validate(nested)]
    pub contact: Option<ContactInput>,
    /// How the inquiry reached us.
    #[validate(length(min = 1, max = 100))]
    #[schema(min_length = 1, max_length = 100)]
    pub source: Option<String>,
    #[validate(custom(function = "validate_conditions"))]
    #[schema(schema_with = conditions_schema)]
    pub medical_history: Option<Vec<String>>,
    /// Defaults to `inquiry`.
    pub treatment_status: Option<TreatmentStatus>,
    /// Required with `denied`, refused otherwise.
    #[validate(length(min = 1, max = 500))]
    #[schema(min_length = 1, max_length = 500)]
    pub denial_reason: Option<String>,
    pub assigned_to: Option<UserId>,
    pub hospital_id: Option<HospitalId>,
    /// `YYYY-MM-DD`, in 1900 ..= 2200.
    #[validate(custom(function = "validate_date"))]
    pub next_follow_up: Option<NaiveDate>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"version": 3, "treatment_status": "ready",
    "contact": {"email": "klaus.becker@example.de", "phone": "+49 170 1234567"},
    "medical_history": ["osteoarthritis of the right knee", "type 2 diabetes, controlled",
        "penicillin allergy"],
    "next_follow_up": "2027-01-12"}))]
pub struct UpdatePatient {
    /// The `version` the change is based on (or send `If-Match`); a stale
    /// one is a 409.
    #[schema(maximum = 9_223_372_036_854_775_807_i64)]
    pub version: Option<i64>,
    /// 1 to 200 characters once trimmed.
    #[validate(custom(function = "validate_text"))]
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u8>, minimum = 0, maximum = 130)]
    #[validate(range(max = 130))]
    pub age: Option<Option<u8>>,
    /// `YYYY-MM-DD`, in the past and within 130 years (and in 1900 ..=
    /// 2200).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, format = Date)]
    #[validate(custom(function = "validate_date"))]
    pub date_of_birth: Option<Option<NaiveDate>>,
    /// ISO 3166-1 alpha-2, upper case.
    #[validate(custom(function = "validate_country"))]
    #[schema(min_length = 2, max_length = 2, pattern = "^[A-Z]{2}$", example = "DE")]
    pub country: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<ContactInput>)]
    #[validate(nested)]
    pub contact: Option<Option<ContactInput>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 100)]
    #[validate(length(min = 1, max = 100))]
    pub source: Option<Option<String>>,
    #[validate(custom(function = "validate_conditions"))]
    #[schema(schema_with = conditions_schema)]
    pub medical_history: Option<Vec<String>>,
    pub treatment_status: Option<TreatmentStatus>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 500)]
    #[validate(length(min = 1, max = 500))]
    pub denial_reason: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<UserId>)]
    pub assigned_to: Option<Option<UserId>>,
    /// `YYYY-MM-DD`, in 1900 ..= 2200.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, format = Date)]
    #[validate(custom(function = "validate_date"))]
    pub next_follow_up: Option<Option<NaiveDate>>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"hospital_id": "665f1c2e8b3e4a0012345678"}))]
pub struct AssignHospital {
    pub hospital_id: HospitalId,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
pub enum SortParam {
    #[serde(rename = "created_at")]
    CreatedAsc,
    #[serde(rename = "-created_at")]
    CreatedDesc,
    #[serde(rename = "updated_at")]
    UpdatedAsc,
    #[serde(rename = "-updated_at")]
    UpdatedDesc,
    #[serde(rename = "name")]
    NameAsc,
    #[serde(rename = "-name")]
    NameDesc,
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListPatientsQuery {
    #[param(minimum = 1, maximum = 1_000_000)]
    pub page: Option<u64>,
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<u64>,
    /// Name contains, case-insensitive.
    #[validate(length(max = 100))]
    #[param(max_length = 100)]
    pub q: Option<String>,
    /// ISO 3166-1 alpha-2, upper case.
    #[validate(custom(function = "validate_country"))]
    #[param(pattern = "^[A-Z]{2}$")]
    pub country: Option<String>,
    /// A condition in the medical history (case-insensitive).
    #[validate(length(min = 1, max = 200))]
    #[param(min_length = 1, max_length = 200)]
    pub disease: Option<String>,
    pub status: Option<PatientStatus>,
    pub treatment_status: Option<TreatmentStatus>,
    pub hospital_id: Option<HospitalId>,
    pub created_by: Option<UserId>,
    pub assigned_to: Option<UserId>,
    /// Registered from: `YYYY-MM-DD` (inclusive) or RFC 3339.
    pub from: Option<String>,
    /// Registered until: `YYYY-MM-DD` (inclusive, whole day) or RFC 3339
    /// (exclusive).
    pub to: Option<String>,
    /// Deprecated: the old name of `from`, accepted until v2.
    pub created_from: Option<String>,
    /// Deprecated: the old name of `to`, accepted until v2.
    pub created_to: Option<String>,
    /// `created_at`, `-created_at` (default), `updated_at`, `-updated_at`, `name`, `-name`.
    #[param(inline)]
    pub sort: Option<SortParam>,
    /// Soft-deleted patients only (the restore screen); needs the
    /// permission `GET /api/v1/patients?deleted=true` (admin by default).
    pub deleted: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryResponse {
    pub id: String,
    pub entity: String,
    pub entity_id: String,
    pub action: String,
    pub actor_id: UserId,
    pub actor_name: Option<String>,
    pub at: DateTime<Utc>,
    /// `{field: {before, after}}`.
    #[schema(value_type = Object)]
    pub changes: serde_json::Value,
}

// ---- helpers -----------------------------------------------------------

fn audited(patients: &[&Patient]) -> AuditPatients {
    AuditPatients(patients.iter().map(|p| p.id.to_string()).collect())
}

impl From<RegisterPatient> for NewPatient {
    fn from(b: RegisterPatient) -> Self {
        NewPatient {
            name: b.name,
            age: b.age,
            date_of_birth: b.date_of_birth,
            country: b.country,
            contact: b.contact.map(PatientContact::from),
            source: b.source,
            medical_history: b.medical_history.unwrap_or_default(),
            treatment_status: b.treatment_status,
            denial_reason: b.denial_reason,
            assigned_to: b.assigned_to,
            hospital_id: b.hospital_id,
            next_follow_up: b.next_follow_up,
        }
    }
}

impl From<UpdatePatient> for PatientChanges {
    fn from(b: UpdatePatient) -> Self {
        PatientChanges {
            // The handler sets the base version from `version` or If-Match.
            version: b.version.unwrap_or_default(),
            name: b.name,
            age: b.age,
            date_of_birth: b.date_of_birth,
            country: b.country,
            contact: b.contact.map(|c| c.map(PatientContact::from)),
            source: b.source,
            medical_history: b.medical_history,
            treatment_status: b.treatment_status,
            denial_reason: b.denial_reason,
            assigned_to: b.assigned_to,
            next_follow_up: b.next_follow_up,
        }
    }
}

// ---- handlers ----------------------------------------------------------

/// List patients (soft-deleted ones never appear).
#[utoipa::path(get, path = "/api/v1/patients", tag = "patients", params(ListPatientsQuery),
    responses((status = 200, body = Page<PatientResponse>), (status = 400, body = ErrorResponse)))]
pub async fn list_patients(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiQuery(q): ApiQuery<ListPatientsQuery>,
) -> Result<impl IntoResponse, AppError> {
    let page = page_request(q.page, q.per_page)?;
    if q.deleted == Some(true) {
        let matrix = state.permissions.get(&state.repos.permissions).await?;
        let key = RouteKey::new("GET", DELETED_PATIENTS);
        if !matrix.allows(me.role, &me.overrides, &key) {
            return Err(AppError::Forbidden(format!("you may not call {key}")));
        }
    }
    let (from_name, from) = renamed("from", q.from, "created_from", q.created_from)?;
    let (to_name, to) = renamed("to", q.to, "created_to", q.created_to)?;
    let created_from = from
        .as_deref()
        .map(|v| parse_bound(from_name, v, false))
        .transpose()?;
    let created_before = to
        .as_deref()
        .map(|v| parse_bound(to_name, v, true))
        .transpose()?;
    if let (Some(from), Some(to)) = (created_from, created_before) {
        if from >= to {
            return Err(AppError::BadRequest(format!(
                "{from_name} must be before {to_name}"
            )));
        }
    }
    let filter = PatientFilter {
        q: q.q,
        country: q.country,
        disease: q.disease,
        status: q.status,
        treatment_status: q.treatment_status,
        hospital_id: q.hospital_id,
        created_by: q.created_by,
        assigned_to: q.assigned_to,
        created_from,
        created_before,
        deleted: q.deleted.unwrap_or(false),
    };
    let sort = match q.sort {
        None | Some(SortParam::CreatedDesc) => PatientSort::CreatedDesc,
        Some(SortParam::CreatedAsc) => PatientSort::CreatedAsc,
        Some(SortParam::UpdatedAsc) => PatientSort::UpdatedAsc,
        Some(SortParam::UpdatedDesc) => PatientSort::UpdatedDesc,
        Some(SortParam::NameAsc) => PatientSort::NameAsc,
        Some(SortParam::NameDesc) => PatientSort::NameDesc,
    };
    let (rows, total) = state.repos.patients.list(&filter, sort, page).await?;
    let audit = audited(&rows.iter().collect::<Vec<_>>());
    let body = Page::new(
        rows.iter().map(PatientResponse::from).collect(),
        page,
        total,
    );
    Ok((axum::Extension(audit), Json(body)))
}

/// Register a patient. Status starts `new`; treatment status as given
/// (default `inquiry`).
#[utoipa::path(post, path = "/api/v1/patients", tag = "patients", request_body = RegisterPatient,
    responses((status = 201, body = PatientResponse), (status = 422, body = ErrorResponse)))]
pub async fn register_patient(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<RegisterPatient>,
) -> Result<Response, AppError> {
    let idem = Idem {
        request: key.as_ref(),
        status: StatusCode::CREATED.as_u16(),
        render: &|p: &Patient| json_body(&PatientResponse::from(p)),
    };
    let outcome = patients::register(&state.workflows, me.id, body.into(), idem).await?;
    // A replay shows the patient again: its access log says so too.
    let audit = match &outcome {
        Created::New(patient) => audited(&[patient]),
        Created::Replayed(replay) => AuditPatients(replayed_id(replay).into_iter().collect()),
    };
    let res = created(outcome, |patient| {
        (StatusCode::CREATED, Json(PatientResponse::from(&patient))).into_response()
    });
    Ok((axum::Extension(audit), res).into_response())
}

/// Read a patient.
#[utoipa::path(get, path = "/api/v1/patients/{id}", tag = "patients", params(PatientPath),
    responses((status = 200, body = PatientResponse), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
pub async fn get_patient(
    State(state): State<AppState>,
    ApiPath(PatientPath { id }): ApiPath<PatientPath>,
) -> Result<impl IntoResponse, AppError> {
    let p = patients::load(&state.workflows, id).await?;
    Ok(([etag(p.version)], Json(PatientResponse::from(&p))))
}

/// Update a patient. Carries `version`; a stale one is a 409 and changes
/// nothing. Treatment-status changes follow the workflow (422 names the
/// allowed ones); `denied` needs a reason.
#[utoipa::path(patch, path = "/api/v1/patients/{id}", tag = "patients", params(PatientPath, ("If-Match" = Option<String>, Header, description = "The record's ETag as read; in place of the body's `version`")), request_body = UpdatePatient,
    responses(
        (status = 200, body = PatientResponse),
        (status = 404, body = ErrorResponse),
        (status = 409, description = "Stale version", body = ErrorResponse),
        (status = 412, description = "Stale If-Match", body = ErrorResponse),
        (status = 422, body = ErrorResponse),
        (status = 428, description = "Neither version nor If-Match", body = ErrorResponse),
    ))]
pub async fn update_patient(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    if_match: IfMatch,
    ApiPath(PatientPath { id }): ApiPath<PatientPath>,
    ApiJson(body): ApiJson<UpdatePatient>,
) -> Result<impl IntoResponse, AppError> {
    let base = expected(body.version, if_match)?;
    let mut changes = PatientChanges::from(body);
    changes.version = base.version;
    let saved = stale_as_precondition(
        patients::update(&state.workflows, me.id, id, changes).await,
        base.from_header,
    )?;
    Ok(([etag(saved.version)], Json(PatientResponse::from(&saved))))
}

/// Soft delete: the patient disappears from every list and read (404) but
/// the data is kept and can be restored.
#[utoipa::path(delete, path = "/api/v1/patients/{id}", tag = "patients", params(PatientPath),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorResponse)))]
pub async fn delete_patient(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiPath(PatientPath { id }): ApiPath<PatientPath>,
) -> Result<StatusCode, AppError> {
    patients::delete(&state.workflows, me.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Undo a soft delete.
#[utoipa::path(post, path = "/api/v1/patients/{id}/restore", tag = "patients", params(PatientPath),
    responses(
        (status = 200, body = PatientResponse),
        (status = 404, body = ErrorResponse),
        (status = 409, description = "Not deleted", body = ErrorResponse),
    ))]
pub async fn restore_patient(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiPath(PatientPath { id }): ApiPath<PatientPath>,
) -> Result<Json<PatientResponse>, AppError> {
    let saved = patients::restore(&state.workflows, me.id, id).await?;
    Ok(Json(PatientResponse::from(&saved)))
}

/// Assign the patient to an active hospital; the assignment is kept in the
/// patient's hospital history.
#[utoipa::path(put, path = "/api/v1/patients/{id}/hospital", tag = "patients", params(PatientPath), request_body = AssignHospital,
    responses(
        (status = 200, body = PatientResponse),
        (status = 404, body = ErrorResponse),
        (status = 422, description = "No such or inactive hospital", body = ErrorResponse),
    ))]
pub async fn assign_hospital(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiPath(PatientPath { id }): ApiPath<PatientPath>,
    ApiJson(body): ApiJson<AssignHospital>,
) -> Result<Json<PatientResponse>, AppError> {
    let saved = patients::assign_hospital(&state.workflows, me.id, id, body.hospital_id).await?;
    Ok(Json(PatientResponse::from(&saved)))
}

/// Every change to the patient and its appointments and treatments: who,
/// when, what (fields before and after), oldest first.
#[utoipa::path(get, path = "/api/v1/patients/{id}/history", tag = "patients", params(PatientPath, PageOnly),
    responses((status = 200, body = Page<HistoryResponse>), (status = 404, body = ErrorResponse)))]
pub async fn patient_history(
    State(state): State<AppState>,
    ApiPath(PatientPath { id }): ApiPath<PatientPath>,
    ApiQuery(q): ApiQuery<PageOnly>,
) -> Result<Json<Page<HistoryResponse>>, AppError> {
    let page = page_request(q.page, q.per_page)?;
    patients::load(&state.workflows, id).await?;
    let (entries, total) = state.repos.history.for_patient(id, page).await?;
    let data = entries
        .into_iter()
        .map(|e| HistoryResponse {
            id: e.id,
            entity: e.entity,
            entity_id: e.entity_id,
            action: e.action,
            actor_name: crate::http::names::user(e.actor_id),
            actor_id: e.actor_id,
            at: e.at.to_chrono(),
            changes: Bson::Document(e.changes).into_relaxed_extjson(),
        })
        .collect();
    Ok(Json(Page::new(data, page, total)))
}

/// Who read or changed this patient's record, newest first.
#[utoipa::path(get, path = "/api/v1/patients/{id}/access-log", tag = "patients", params(PatientPath, PageOnly),
    responses((status = 200, body = Page<AccessLogEntry>), (status = 404, body = ErrorResponse)))]
pub async fn access_log(
    State(state): State<AppState>,
    ApiPath(PatientPath { id }): ApiPath<PatientPath>,
    ApiQuery(q): ApiQuery<PageOnly>,
) -> Result<Json<Page<AccessLogEntry>>, AppError> {
    let page = page_request(q.page, q.per_page)?;
    patients::load(&state.workflows, id).await?;
    let filter = crate::repo::audit::AuditFilter {
        patient_id: Some(id.to_string()),
        ..Default::default()
    };
    let (events, total) = state.repos.audit.list(&filter, page).await?;
    Ok(Json(Page::new(
        events.into_iter().map(AccessLogEntry::from).collect(),
        page,
        total,
    )))
}
