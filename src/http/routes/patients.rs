//! Patients: register, read, list, update (optimistic concurrency), the
//! treatment-status workflow, hospital assignment, soft delete and restore,
//! and each patient's change history and access log.

use axum::{extract::State, http::StatusCode, response::IntoResponse, Json};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use mongodb::bson::{doc, Bson, DateTime as BsonDateTime, Document};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::{Validate, ValidationError};

use crate::{
    domain::{
        iso::validate_country,
        patient::{HospitalAssignment, Patient, PatientContact, PatientStatus, TreatmentStatus},
        HospitalId, PatientId, UserId,
    },
    error::{AppError, ErrorResponse, FieldErrors},
    http::{
        audit::AuditPatients,
        auth::CurrentUser,
        dto::{page_request, Page},
        extract::{ApiJson, ApiPath, ApiQuery},
    },
    repo::{
        history::HistoryEntry,
        patients::{PatientFilter, PatientSort},
    },
    state::AppState,
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

// ---- dates -------------------------------------------------------------

/// Midnight UTC of `date`, as stored.
pub fn date_to_bson(date: NaiveDate) -> BsonDateTime {
    BsonDateTime::from_millis(
        date.and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc().timestamp_millis())
            .unwrap_or(0),
    )
}

pub fn bson_to_date(dt: BsonDateTime) -> NaiveDate {
    dt.to_chrono().date_naive()
}

fn age_on(dob: NaiveDate, today: NaiveDate) -> i32 {
    let mut age = today.year() - dob.year();
    if (today.month(), today.day()) < (dob.month(), dob.day()) {
        age -= 1;
    }
    age
}

/// Distinguishes an absent field (`None`) from an explicit `null`
/// (`Some(None)`, which clears the field).
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
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

fn validate_name(name: &str) -> Result<(), ValidationError> {
    let len = name.trim().chars().count();
    if len == 0 || len > 200 {
        return Err(
            ValidationError::new("length").with_message("must be 1 to 200 characters".into())
        );
    }
    Ok(())
}

#[derive(Debug, Clone, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactInput {
    #[validate(email(message = "must be a valid email"), length(max = 254))]
    pub email: Option<String>,
    #[validate(length(min = 3, max = 40))]
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
pub struct RegisterPatient {
    #[validate(custom(function = "validate_name"))]
    pub name: String,
    /// Age in years; give this or `date_of_birth`.
    #[validate(range(max = 130))]
    pub age: Option<u8>,
    /// `YYYY-MM-DD`; the age is derived from it.
    pub date_of_birth: Option<NaiveDate>,
    /// ISO 3166-1 alpha-2.
    #[validate(custom(function = "validate_country"))]
    pub country: String,
    #[validate(nested)]
    pub contact: Option<ContactInput>,
    /// How the inquiry reached us.
    #[validate(length(min = 1, max = 100))]
    pub source: Option<String>,
    #[validate(custom(function = "validate_conditions"))]
    pub medical_history: Option<Vec<String>>,
    /// Defaults to `inquiry`.
    pub treatment_status: Option<TreatmentStatus>,
    #[validate(length(min = 1, max = 500))]
    pub denial_reason: Option<String>,
    pub assigned_to: Option<UserId>,
    pub hospital_id: Option<HospitalId>,
    /// `YYYY-MM-DD`.
    pub next_follow_up: Option<NaiveDate>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePatient {
    /// The `version` the change is based on; a stale one is a 409.
    pub version: i64,
    #[validate(custom(function = "validate_name"))]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u8>)]
    pub age: Option<Option<u8>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, format = Date)]
    pub date_of_birth: Option<Option<NaiveDate>>,
    #[validate(custom(function = "validate_country"))]
    pub country: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<ContactInput>)]
    pub contact: Option<Option<ContactInput>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub source: Option<Option<String>>,
    #[validate(custom(function = "validate_conditions"))]
    pub medical_history: Option<Vec<String>>,
    pub treatment_status: Option<TreatmentStatus>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub denial_reason: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<UserId>)]
    pub assigned_to: Option<Option<UserId>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, format = Date)]
    pub next_follow_up: Option<Option<NaiveDate>>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignHospital {
    pub hospital_id: HospitalId,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AssignmentResponse {
    pub hospital_id: HospitalId,
    pub by: UserId,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PatientResponse {
    pub id: PatientId,
    pub name: String,
    /// Given, or derived from `date_of_birth`.
    pub age: Option<i32>,
    #[schema(value_type = Option<String>, format = Date)]
    pub date_of_birth: Option<NaiveDate>,
    pub country: String,
    pub contact: Option<PatientContact>,
    pub source: Option<String>,
    pub medical_history: Vec<String>,
    pub status: PatientStatus,
    pub treatment_status: TreatmentStatus,
    pub denial_reason: Option<String>,
    pub assigned_to: Option<UserId>,
    pub hospital_id: Option<HospitalId>,
    pub hospital_history: Vec<AssignmentResponse>,
    #[schema(value_type = Option<String>, format = Date)]
    pub next_follow_up: Option<NaiveDate>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub created_by: UserId,
    pub updated_at: DateTime<Utc>,
    pub updated_by: UserId,
}

impl From<&Patient> for PatientResponse {
    fn from(p: &Patient) -> Self {
        let dob = p.date_of_birth.map(bson_to_date);
        PatientResponse {
            id: p.id,
            name: p.name.clone(),
            age: dob.map(|d| age_on(d, Utc::now().date_naive())).or(p.age),
            date_of_birth: dob,
            country: p.country.clone(),
            contact: p.contact.clone(),
            source: p.source.clone(),
            medical_history: p.medical_history.clone(),
            status: p.status,
            treatment_status: p.treatment_status,
            denial_reason: p.denial_reason.clone(),
            assigned_to: p.assigned_to,
            hospital_id: p.hospital_id,
            hospital_history: p
                .hospital_history
                .iter()
                .map(|a| AssignmentResponse {
                    hospital_id: a.hospital_id,
                    by: a.by,
                    at: a.at.to_chrono(),
                })
                .collect(),
            next_follow_up: p.next_follow_up.map(bson_to_date),
            version: p.version,
            created_at: p.created_at.to_chrono(),
            created_by: p.created_by,
            updated_at: p.updated_at.to_chrono(),
            updated_by: p.updated_by,
        }
    }
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
    pub page: Option<u64>,
    pub per_page: Option<u64>,
    /// Name contains, case-insensitive.
    #[validate(length(max = 100))]
    pub q: Option<String>,
    #[validate(custom(function = "validate_country"))]
    pub country: Option<String>,
    /// A condition in the medical history (case-insensitive).
    #[validate(length(min = 1, max = 200))]
    pub disease: Option<String>,
    pub status: Option<PatientStatus>,
    pub treatment_status: Option<TreatmentStatus>,
    pub hospital_id: Option<HospitalId>,
    pub created_by: Option<UserId>,
    pub assigned_to: Option<UserId>,
    /// `YYYY-MM-DD` (inclusive) or RFC 3339.
    pub created_from: Option<String>,
    /// `YYYY-MM-DD` (inclusive, whole day) or RFC 3339 (exclusive).
    pub created_to: Option<String>,
    /// `created_at`, `-created_at` (default), `updated_at`, `-updated_at`, `name`, `-name`.
    #[param(value_type = Option<String>)]
    pub sort: Option<SortParam>,
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageOnly {
    pub page: Option<u64>,
    pub per_page: Option<u64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct PatientPath {
    /// The patient's id.
    pub id: PatientId,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryResponse {
    pub id: String,
    pub entity: String,
    pub entity_id: String,
    pub action: String,
    pub actor_id: UserId,
    pub at: DateTime<Utc>,
    /// `{field: {before, after}}`.
    #[schema(value_type = Object)]
    pub changes: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessLogEntry {
    pub at: DateTime<Utc>,
    pub actor_id: Option<UserId>,
    pub role: Option<String>,
    pub action: String,
    pub method: String,
    pub route: String,
    pub status: i32,
    pub request_id: String,
    pub ip: Option<String>,
}

impl From<crate::repo::audit::AuditEvent> for AccessLogEntry {
    fn from(e: crate::repo::audit::AuditEvent) -> Self {
        AccessLogEntry {
            at: e.at.to_chrono(),
            actor_id: e.actor_id,
            role: e.role,
            action: e.action,
            method: e.method,
            route: e.route,
            status: e.status,
            request_id: e.request_id,
            ip: e.ip,
        }
    }
}

/// A date bound from a query: `YYYY-MM-DD` or RFC 3339. `end_of_day`
/// turns a date into the start of the next day (an exclusive bound).
pub fn parse_bound(field: &str, raw: &str, end_of_day: bool) -> Result<BsonDateTime, AppError> {
    if let Ok(d) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        let d = if end_of_day {
            d.succ_opt().unwrap_or(d)
        } else {
            d
        };
        return Ok(date_to_bson(d));
    }
    DateTime::parse_from_rfc3339(raw)
        .map(|d| BsonDateTime::from_chrono(d.with_timezone(&Utc)))
        .map_err(|_| {
            AppError::BadRequest(format!(
                "{field} must be YYYY-MM-DD or an RFC 3339 timestamp"
            ))
        })
}

// ---- helpers -----------------------------------------------------------

fn audited(patients: &[&Patient]) -> AuditPatients {
    AuditPatients(patients.iter().map(|p| p.id.to_string()).collect())
}

pub async fn load(state: &AppState, id: PatientId) -> Result<Patient, AppError> {
    state
        .repos
        .patients
        .find(id)
        .await?
        .ok_or_else(|| AppError::not_found("patient"))
}

pub async fn check_assignee(state: &AppState, id: UserId) -> Result<(), AppError> {
    match state.repos.users.find(id).await? {
        Some(u) if u.active => Ok(()),
        Some(_) => Err(AppError::invalid_field(
            "assigned_to",
            "that user is deactivated",
        )),
        None => Err(AppError::invalid_field("assigned_to", "no such user")),
    }
}

/// 422 unless the hospital exists and is active.
pub async fn check_hospital(state: &AppState, id: HospitalId, field: &str) -> Result<(), AppError> {
    match state.repos.hospitals.find(id).await? {
        Some(h) if h.active => Ok(()),
        Some(_) => Err(AppError::invalid_field(field, "that hospital is inactive")),
        None => Err(AppError::invalid_field(field, "no such hospital")),
    }
}

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

/// Fields whose values differ between two versions of a document, as
/// `{field: {before, after}}`, leaving out bookkeeping fields.
pub fn diff(before: &Document, after: &Document, skip: &[&str]) -> Document {
    let mut changes = Document::new();
    let keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for key in keys {
        if skip.contains(&key.as_str()) {
            continue;
        }
        let (b, a) = (
            before.get(key).cloned().unwrap_or(Bson::Null),
            after.get(key).cloned().unwrap_or(Bson::Null),
        );
        if b != a {
            changes.insert(key.clone(), doc! { "before": b, "after": a });
        }
    }
    changes
}

/// Writes one history entry: `entity` `entity_id` of `patient_id` went from
/// `before` (nothing, for a create) to `after`, recording changed fields only.
#[allow(clippy::too_many_arguments)]
pub async fn record_change<T: Serialize>(
    state: &AppState,
    entity: &str,
    entity_id: String,
    patient_id: PatientId,
    before: Option<&T>,
    after: &T,
    action: &str,
    actor: UserId,
) -> Result<(), AppError> {
    let before = match before {
        Some(b) => mongodb::bson::to_document(b).map_err(AppError::internal)?,
        None => Document::new(),
    };
    let after = mongodb::bson::to_document(after).map_err(AppError::internal)?;
    let changes = diff(&before, &after, BOOKKEEPING);
    let entry = HistoryEntry::new(entity, entity_id, patient_id, action, actor, changes);
    state.repos.history.record(entry).await
}

pub const BOOKKEEPING: &[&str] = &[
    "_id",
    "version",
    "updated_at",
    "updated_by",
    "name_lower",
    "medical_history_lower",
];

/// Stores `next` over `prev` (guarded by `prev.version`) and writes history.
async fn save(
    state: &AppState,
    prev: &Patient,
    mut next: Patient,
    action: &str,
    actor: UserId,
) -> Result<Patient, AppError> {
    next.version = prev.version + 1;
    next.updated_at = BsonDateTime::now();
    next.updated_by = actor;
    if !state.repos.patients.replace(&next, prev.version).await? {
        return Err(AppError::conflict(
            "the patient was changed meanwhile; reload and retry",
        ));
    }
    let id = next.id.to_string();
    record_change(
        state,
        "patient",
        id,
        next.id,
        Some(prev),
        &next,
        action,
        actor,
    )
    .await?;
    Ok(next)
}

/// Sets a patient's next follow-up (logged appointments do this), retrying
/// if a concurrent change moved the version meanwhile.
pub async fn set_next_follow_up(
    state: &AppState,
    id: PatientId,
    date: Option<BsonDateTime>,
    actor: UserId,
) -> Result<(), AppError> {
    for _ in 0..5 {
        let prev = load(state, id).await?;
        if prev.next_follow_up == date {
            return Ok(());
        }
        let mut next = prev.clone();
        next.next_follow_up = date;
        match save(state, &prev, next, "update", actor).await {
            Err(AppError::Conflict { .. }) => continue,
            other => return other.map(|_| ()),
        }
    }
    Err(AppError::conflict(
        "the patient is changing too often; retry",
    ))
}

/// Makes the patient a repeat patient (a returning patient started another
/// treatment), retrying on concurrent changes.
pub async fn mark_repeat(state: &AppState, id: PatientId, actor: UserId) -> Result<(), AppError> {
    for _ in 0..5 {
        let prev = load(state, id).await?;
        if prev.status == PatientStatus::Repeat {
            return Ok(());
        }
        let mut next = prev.clone();
        next.status = PatientStatus::Repeat;
        match save(state, &prev, next, "update", actor).await {
            Err(AppError::Conflict { .. }) => continue,
            other => return other.map(|_| ()),
        }
    }
    Err(AppError::conflict(
        "the patient is changing too often; retry",
    ))
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

// ---- handlers ----------------------------------------------------------

/// List patients (soft-deleted ones never appear).
#[utoipa::path(get, path = "/patients", tag = "patients", params(ListPatientsQuery),
    responses((status = 200, body = Page<PatientResponse>), (status = 400, body = ErrorResponse)))]
pub async fn list_patients(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListPatientsQuery>,
) -> Result<impl IntoResponse, AppError> {
    let page = page_request(q.page, q.per_page)?;
    let created_from = q
        .created_from
        .as_deref()
        .map(|v| parse_bound("created_from", v, false))
        .transpose()?;
    let created_before = q
        .created_to
        .as_deref()
        .map(|v| parse_bound("created_to", v, true))
        .transpose()?;
    if let (Some(from), Some(to)) = (created_from, created_before) {
        if from >= to {
            return Err(AppError::BadRequest(
                "created_from must be before created_to".into(),
            ));
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
    };
    let sort = match q.sort {
        None | Some(SortParam::CreatedDesc) => PatientSort::CreatedDesc,
        Some(SortParam::CreatedAsc) => PatientSort::CreatedAsc,
        Some(SortParam::UpdatedAsc) => PatientSort::UpdatedAsc,
        Some(SortParam::UpdatedDesc) => PatientSort::UpdatedDesc,
        Some(SortParam::NameAsc) => PatientSort::NameAsc,
        Some(SortParam::NameDesc) => PatientSort::NameDesc,
    };
    let (patients, total) = state.repos.patients.list(&filter, sort, page).await?;
    let audit = audited(&patients.iter().collect::<Vec<_>>());
    let body = Page::new(
        patients.iter().map(PatientResponse::from).collect(),
        page,
        total,
    );
    Ok((axum::Extension(audit), Json(body)))
}

/// Register a patient. Status starts `new`; treatment status as given
/// (default `inquiry`).
#[utoipa::path(post, path = "/patients", tag = "patients", request_body = RegisterPatient,
    responses((status = 201, body = PatientResponse), (status = 422, body = ErrorResponse)))]
pub async fn register_patient(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiJson(body): ApiJson<RegisterPatient>,
) -> Result<impl IntoResponse, AppError> {
    let today = Utc::now().date_naive();
    if body.age.is_some() && body.date_of_birth.is_some() {
        return Err(AppError::invalid_field(
            "age",
            "give age or date_of_birth, not both",
        ));
    }
    if let Some(dob) = body.date_of_birth {
        if dob > today || age_on(dob, today) > 130 {
            return Err(AppError::invalid_field(
                "date_of_birth",
                "must be a past date within 130 years",
            ));
        }
    }
    let treatment_status = body.treatment_status.unwrap_or(TreatmentStatus::Inquiry);
    let denial_reason = body
        .denial_reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if treatment_status == TreatmentStatus::Denied && denial_reason.is_none() {
        return Err(AppError::invalid_field(
            "denial_reason",
            "is required when the treatment status is denied",
        ));
    }
    if treatment_status != TreatmentStatus::Denied && denial_reason.is_some() {
        return Err(AppError::invalid_field(
            "denial_reason",
            "only applies to denied patients",
        ));
    }
    if let Some(u) = body.assigned_to {
        check_assignee(&state, u).await?;
    }
    let now = BsonDateTime::now();
    let mut hospital_history = Vec::new();
    if let Some(h) = body.hospital_id {
        check_hospital(&state, h, "hospital_id").await?;
        hospital_history.push(HospitalAssignment {
            hospital_id: h,
            by: me.id,
            at: now,
        });
    }
    let (medical_history, medical_history_lower) =
        normalized_conditions(body.medical_history.unwrap_or_default());
    let name = body.name.trim().to_owned();
    let mut patient = Patient {
        id: PatientId::new(),
        name_lower: name.to_lowercase(),
        name,
        age: body.age.map(i32::from),
        date_of_birth: body.date_of_birth.map(date_to_bson),
        country: body.country,
        contact: body.contact.map(PatientContact::from),
        source: body.source.map(|s| s.trim().to_owned()),
        medical_history,
        medical_history_lower,
        status: PatientStatus::New,
        treatment_status,
        denial_reason,
        assigned_to: body.assigned_to,
        hospital_id: body.hospital_id,
        hospital_history,
        next_follow_up: body.next_follow_up.map(date_to_bson),
        reached: Vec::new(),
        completed_at: None,
        version: 1,
        deleted_at: None,
        deleted_by: None,
        created_at: now,
        created_by: me.id,
        updated_at: now,
        updated_by: me.id,
    };
    patient.note_reached(treatment_status, now);
    state.repos.patients.insert(&patient).await?;
    let id = patient.id.to_string();
    record_change(
        &state, "patient", id, patient.id, None, &patient, "create", me.id,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Extension(audited(&[&patient])),
        Json(PatientResponse::from(&patient)),
    ))
}

/// Read a patient.
#[utoipa::path(get, path = "/patients/{id}", tag = "patients", params(PatientPath),
    responses((status = 200, body = PatientResponse), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
pub async fn get_patient(
    State(state): State<AppState>,
    ApiPath(PatientPath { id }): ApiPath<PatientPath>,
) -> Result<Json<PatientResponse>, AppError> {
    Ok(Json(PatientResponse::from(&load(&state, id).await?)))
}

/// Update a patient. Carries `version`; a stale one is a 409 and changes
/// nothing. Treatment-status changes follow the workflow (422 names the
/// allowed ones); `denied` needs a reason.
#[utoipa::path(patch, path = "/patients/{id}", tag = "patients", params(PatientPath), request_body = UpdatePatient,
    responses(
        (status = 200, body = PatientResponse),
        (status = 404, body = ErrorResponse),
        (status = 409, description = "Stale version", body = ErrorResponse),
        (status = 422, body = ErrorResponse),
    ))]
pub async fn update_patient(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiPath(PatientPath { id }): ApiPath<PatientPath>,
    ApiJson(body): ApiJson<UpdatePatient>,
) -> Result<Json<PatientResponse>, AppError> {
    let prev = load(&state, id).await?;
    if body.version != prev.version {
        return Err(AppError::conflict(format!(
            "stale version {}: the patient is at version {}",
            body.version, prev.version
        )));
    }
    let mut next = prev.clone();
    if let Some(name) = body.name {
        next.name = name.trim().to_owned();
        next.name_lower = next.name.to_lowercase();
    }
    match (body.age, body.date_of_birth) {
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
                let today = Utc::now().date_naive();
                if d > today || age_on(d, today) > 130 {
                    return Err(AppError::invalid_field(
                        "date_of_birth",
                        "must be a past date within 130 years",
                    ));
                }
                next.age = None;
            }
            next.date_of_birth = dob.map(date_to_bson);
        }
        (None, None) => {}
    }
    if let Some(country) = body.country {
        next.country = country;
    }
    if let Some(contact) = body.contact {
        next.contact = contact.map(PatientContact::from);
    }
    if let Some(source) = body.source {
        next.source = source.map(|s| s.trim().to_owned());
    }
    if let Some(list) = body.medical_history {
        (next.medical_history, next.medical_history_lower) = normalized_conditions(list);
    }
    if let Some(assignee) = body.assigned_to {
        if let Some(u) = assignee {
            check_assignee(&state, u).await?;
        }
        next.assigned_to = assignee;
    }
    if let Some(date) = body.next_follow_up {
        next.next_follow_up = date.map(date_to_bson);
    }
    if let Some(reason) = body.denial_reason {
        next.denial_reason = reason
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
    }
    let mut action = "update";
    if let Some(status) = body.treatment_status {
        if !prev.treatment_status.can_become(status) {
            return Err(transition_error(prev.treatment_status, status));
        }
        if status != prev.treatment_status {
            action = "status_change";
            if prev.treatment_status == TreatmentStatus::Completed {
                next.status = PatientStatus::Repeat;
            }
            if prev.treatment_status == TreatmentStatus::Denied {
                next.denial_reason = None;
            }
        }
        next.treatment_status = status;
        next.note_reached(status, BsonDateTime::now());
    }
    if next.treatment_status == TreatmentStatus::Denied && next.denial_reason.is_none() {
        return Err(AppError::invalid_field(
            "denial_reason",
            "is required when the treatment status is denied",
        ));
    }
    if next.treatment_status != TreatmentStatus::Denied && next.denial_reason.is_some() {
        return Err(AppError::invalid_field(
            "denial_reason",
            "only applies to denied patients",
        ));
    }
    let saved = save(&state, &prev, next, action, me.id).await?;
    Ok(Json(PatientResponse::from(&saved)))
}

/// Soft delete: the patient disappears from every list and read (404) but
/// the data is kept and can be restored.
#[utoipa::path(delete, path = "/patients/{id}", tag = "patients", params(PatientPath),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorResponse)))]
pub async fn delete_patient(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiPath(PatientPath { id }): ApiPath<PatientPath>,
) -> Result<StatusCode, AppError> {
    let prev = load(&state, id).await?;
    let mut next = prev.clone();
    next.deleted_at = Some(BsonDateTime::now());
    next.deleted_by = Some(me.id);
    save(&state, &prev, next, "delete", me.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Undo a soft delete.
#[utoipa::path(post, path = "/patients/{id}/restore", tag = "patients", params(PatientPath),
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
    let prev = state
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
    let saved = save(&state, &prev, next, "restore", me.id).await?;
    Ok(Json(PatientResponse::from(&saved)))
}

/// Assign the patient to an active hospital; the assignment is kept in the
/// patient's hospital history.
#[utoipa::path(put, path = "/patients/{id}/hospital", tag = "patients", params(PatientPath), request_body = AssignHospital,
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
    check_hospital(&state, body.hospital_id, "hospital_id").await?;
    let prev = load(&state, id).await?;
    if prev.hospital_id == Some(body.hospital_id) {
        return Ok(Json(PatientResponse::from(&prev)));
    }
    let mut next = prev.clone();
    next.hospital_id = Some(body.hospital_id);
    next.hospital_history.push(HospitalAssignment {
        hospital_id: body.hospital_id,
        by: me.id,
        at: BsonDateTime::now(),
    });
    let saved = save(&state, &prev, next, "assign_hospital", me.id).await?;
    Ok(Json(PatientResponse::from(&saved)))
}

/// Every change to the patient and its appointments and treatments: who,
/// when, what (fields before and after), oldest first.
#[utoipa::path(get, path = "/patients/{id}/history", tag = "patients", params(PatientPath, PageOnly),
    responses((status = 200, body = Page<HistoryResponse>), (status = 404, body = ErrorResponse)))]
pub async fn patient_history(
    State(state): State<AppState>,
    ApiPath(PatientPath { id }): ApiPath<PatientPath>,
    ApiQuery(q): ApiQuery<PageOnly>,
) -> Result<Json<Page<HistoryResponse>>, AppError> {
    let page = page_request(q.page, q.per_page)?;
    load(&state, id).await?;
    let (entries, total) = state.repos.history.for_patient(id, page).await?;
    let data = entries
        .into_iter()
        .map(|e| HistoryResponse {
            id: e.id,
            entity: e.entity,
            entity_id: e.entity_id,
            action: e.action,
            actor_id: e.actor_id,
            at: e.at.to_chrono(),
            changes: Bson::Document(e.changes).into_relaxed_extjson(),
        })
        .collect();
    Ok(Json(Page::new(data, page, total)))
}

/// Who read or changed this patient's record, newest first.
#[utoipa::path(get, path = "/patients/{id}/access-log", tag = "patients", params(PatientPath, PageOnly),
    responses((status = 200, body = Page<AccessLogEntry>), (status = 404, body = ErrorResponse)))]
pub async fn access_log(
    State(state): State<AppState>,
    ApiPath(PatientPath { id }): ApiPath<PatientPath>,
    ApiQuery(q): ApiQuery<PageOnly>,
) -> Result<Json<Page<AccessLogEntry>>, AppError> {
    let page = page_request(q.page, q.per_page)?;
    load(&state, id).await?;
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
