//! Appointments (every discussion and follow-up logged per patient) and the
//! follow-up work queue.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::{Validate, ValidationError};

use crate::{
    domain::{
        appointment::{Appointment, AppointmentStatus},
        dates::{bson_to_date, date_to_bson, validate_date, validate_instant},
        patient::TreatmentStatus,
        zone, AppointmentId, HospitalId, PatientId, UserId,
    },
    error::{AppError, ErrorResponse},
    http::{
        audit::AuditPatients,
        auth::CurrentUser,
        dto::{page_request, Page},
        extract::{ApiJson, ApiPath, ApiQuery},
        idempotency::{created, json_body, IdempotencyKey},
        names,
        params::{date_window, nullable, renamed, zone_of, PageOnly, PatientPath},
        versioning::{etag, expected, stale_as_precondition, IfMatch},
    },
    repo::appointments::CalendarFilter,
    state::AppState,
    workflow::{
        appointments::{self, AppointmentChanges, NewAppointment},
        idempotency::Idem,
        patients,
    },
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_appointments, log_appointment))
        .routes(routes!(get_appointment, update_appointment))
        .routes(routes!(follow_ups))
        .routes(routes!(appointment_calendar))
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CalendarQuery {
    #[param(minimum = 1, maximum = 1_000_000)]
    pub page: Option<u64>,
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<u64>,
    /// On `appointment_date`: `YYYY-MM-DD` (inclusive) or RFC 3339.
    pub from: Option<String>,
    /// `YYYY-MM-DD` (inclusive, whole day) or RFC 3339 (exclusive).
    pub to: Option<String>,
    /// Appointments of the patients assigned to this user.
    pub assigned_to: Option<UserId>,
    pub hospital_id: Option<HospitalId>,
    pub status: Option<AppointmentStatus>,
}

/// A calendar row: the appointment and its patient's name.
#[derive(Debug, Serialize, ToSchema)]
pub struct CalendarAppointment {
    #[serde(flatten)]
    pub appointment: AppointmentResponse,
    pub patient_name: String,
}

fn validate_notes(notes: &str) -> Result<(), ValidationError> {
    let len = notes.trim().chars().count();
    if len == 0 || len > 10_000 {
        return Err(
            ValidationError::new("length").with_message("must be 1 to 10000 characters".into())
        );
    }
    Ok(())
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"appointment_date": "2026-11-24T10:30:00Z",
    "discussion_notes": "Video call with Mr Becker and his daughter. MRI of the right knee received; \
        the orthopaedic team suggests a total knee replacement. Asked for quotes from Istanbul \
        and Bangkok; he prefers to travel in March.",
    "next_follow_up": "2026-12-03", "status": "completed"}))]
pub struct LogAppointment {
    pub hospital_id: Option<HospitalId>,
    /// RFC 3339, in 1900 ..= 2200.
    #[validate(custom(function = "validate_instant"))]
    pub appointment_date: Option<DateTime<Utc>>,
    /// 1 to 10000 characters once trimmed.
    #[validate(custom(function = "validate_notes"))]
    #[schema(min_length = 1, max_length = 10000)]
    pub discussion_notes: String,
    /// `YYYY-MM-DD`, in 1900 ..= 2200; also becomes the patient's next follow-up.
    #[validate(custom(function = "validate_date"))]
    pub next_follow_up: Option<NaiveDate>,
    pub status: AppointmentStatus,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"version": 1, "status": "missed", "next_follow_up": "2026-12-05"}))]
pub struct UpdateAppointment {
    /// The `version` the change is based on (or send `If-Match`); a stale
    /// one is a 409.
    #[schema(maximum = 9_223_372_036_854_775_807_i64)]
    pub version: Option<i64>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<HospitalId>)]
    pub hospital_id: Option<Option<HospitalId>>,
    /// RFC 3339, in 1900 ..= 2200.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, format = DateTime)]
    #[validate(custom(function = "validate_instant"))]
    pub appointment_date: Option<Option<DateTime<Utc>>>,
    /// 1 to 10000 characters once trimmed.
    #[validate(custom(function = "validate_notes"))]
    #[schema(min_length = 1, max_length = 10000)]
    pub discussion_notes: Option<String>,
    /// `YYYY-MM-DD`, in 1900 ..= 2200.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, format = Date)]
    #[validate(custom(function = "validate_date"))]
    pub next_follow_up: Option<Option<NaiveDate>>,
    pub status: Option<AppointmentStatus>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AppointmentResponse {
    pub id: AppointmentId,
    pub patient_id: PatientId,
    pub hospital_id: Option<HospitalId>,
    pub hospital_name: Option<String>,
    pub appointment_date: Option<DateTime<Utc>>,
    pub discussion_notes: String,
    #[schema(value_type = Option<String>, format = Date)]
    pub next_follow_up: Option<NaiveDate>,
    pub status: AppointmentStatus,
    pub version: i64,
    /// Who logged it.
    pub created_by: UserId,
    pub created_by_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_by: UserId,
    pub updated_by_name: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Appointment> for AppointmentResponse {
    fn from(a: &Appointment) -> Self {
        AppointmentResponse {
            id: a.id,
            patient_id: a.patient_id,
            hospital_id: a.hospital_id,
            hospital_name: names::hospital_opt(a.hospital_id),
            appointment_date: a.appointment_date.map(|d| d.to_chrono()),
            discussion_notes: a.discussion_notes.clone(),
            next_follow_up: a.next_follow_up.map(bson_to_date),
            status: a.status,
            version: a.version,
            created_by: a.created_by,
            created_by_name: names::user(a.created_by),
            created_at: a.created_at.to_chrono(),
            updated_by: a.updated_by,
            updated_by_name: names::user(a.updated_by),
            updated_at: a.updated_at.to_chrono(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AppointmentPath {
    /// The appointment's id.
    pub id: AppointmentId,
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FollowUpQuery {
    #[param(minimum = 1, maximum = 1_000_000)]
    pub page: Option<u64>,
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<u64>,
    /// Only this staff member's patients.
    pub assigned_to: Option<UserId>,
    /// Due until this `YYYY-MM-DD` (1900 ..= 2200, inclusive); default
    /// today (due and overdue).
    #[validate(custom(function = "validate_date"))]
    #[param(value_type = Option<String>, format = Date)]
    pub to: Option<NaiveDate>,
    /// Deprecated: the old name of `to`, accepted until v2.
    #[validate(custom(function = "validate_date"))]
    #[param(value_type = Option<String>, format = Date)]
    pub due_before: Option<NaiveDate>,
    /// Only follow-ups due before today.
    pub overdue: Option<bool>,
    /// IANA time zone (`Asia/Kolkata`) that decides what "today" is;
    /// default the caller's profile `time_zone`, else UTC.
    #[param(max_length = 32)]
    pub tz: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FollowUp {
    pub patient_id: PatientId,
    pub name: String,
    pub country: String,
    pub treatment_status: TreatmentStatus,
    pub assigned_to: Option<UserId>,
    pub assigned_to_name: Option<String>,
    #[schema(value_type = String, format = Date)]
    pub next_follow_up: NaiveDate,
    /// Due before today.
    pub overdue: bool,
}

impl From<LogAppointment> for NewAppointment {
    fn from(b: LogAppointment) -> Self {
        NewAppointment {
            hospital_id: b.hospital_id,
            appointment_date: b.appointment_date,
            discussion_notes: b.discussion_notes,
            next_follow_up: b.next_follow_up,
            status: b.status,
        }
    }
}

impl From<UpdateAppointment> for AppointmentChanges {
    fn from(b: UpdateAppointment) -> Self {
        AppointmentChanges {
            // The handler sets the base version from `version` or If-Match.
            version: b.version.unwrap_or_default(),
            hospital_id: b.hospital_id,
            appointment_date: b.appointment_date,
            discussion_notes: b.discussion_notes,
            next_follow_up: b.next_follow_up,
            status: b.status,
        }
    }
}

/// A patient's appointments, newest first.
#[utoipa::path(get, path = "/api/v1/patients/{id}/appointments", tag = "appointments", params(PatientPath, PageOnly),
    responses((status = 200, body = Page<AppointmentResponse>), (status = 404, body = ErrorResponse)))]
pub async fn list_appointments(
    State(state): State<AppState>,
    ApiPath(PatientPath { id }): ApiPath<PatientPath>,
    ApiQuery(q): ApiQuery<PageOnly>,
) -> Result<Json<Page<AppointmentResponse>>, AppError> {
    let page = page_request(q.page, q.per_page)?;
    patients::load(&state.workflows, id).await?;
    let (items, total) = state.repos.appointments.for_patient(id, page).await?;
    Ok(Json(Page::new(
        items.iter().map(AppointmentResponse::from).collect(),
        page,
        total,
    )))
}

/// Log an appointment or discussion. `next_follow_up` also becomes the
/// patient's next follow-up due.
#[utoipa::path(post, path = "/api/v1/patients/{id}/appointments", tag = "appointments", params(PatientPath),
    request_body = LogAppointment,
    responses((status = 201, body = AppointmentResponse), (status = 404, body = ErrorResponse), (status = 422, body = ErrorResponse)))]
pub async fn log_appointment(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    IdempotencyKey(key): IdempotencyKey,
    ApiPath(PatientPath { id }): ApiPath<PatientPath>,
    ApiJson(body): ApiJson<LogAppointment>,
) -> Result<Response, AppError> {
    let idem = Idem {
        request: key.as_ref(),
        status: StatusCode::CREATED.as_u16(),
        render: &|a: &Appointment| json_body(&AppointmentResponse::from(a)),
    };
    let outcome = appointments::log(&state.workflows, me.id, id, body.into(), idem).await?;
    Ok(created(outcome, |a| {
        (StatusCode::CREATED, Json(AppointmentResponse::from(&a))).into_response()
    }))
}

/// Read an appointment.
#[utoipa::path(get, path = "/api/v1/appointments/{id}", tag = "appointments", params(AppointmentPath),
    responses((status = 200, body = AppointmentResponse), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
pub async fn get_appointment(
    State(state): State<AppState>,
    ApiPath(AppointmentPath { id }): ApiPath<AppointmentPath>,
) -> Result<impl IntoResponse, AppError> {
    let a = appointments::load(&state.workflows, id).await?;
    Ok((
        [etag(a.version)],
        axum::Extension(AuditPatients(vec![a.patient_id.to_string()])),
        Json(AppointmentResponse::from(&a)),
    ))
}

/// Update an appointment (with `version`). A new `next_follow_up` also
/// becomes the patient's next follow-up due.
#[utoipa::path(patch, path = "/api/v1/appointments/{id}", tag = "appointments", params(AppointmentPath, ("If-Match" = Option<String>, Header, description = "The record's ETag as read; in place of the body's `version`")),
    request_body = UpdateAppointment,
    responses(
        (status = 200, body = AppointmentResponse),
        (status = 404, body = ErrorResponse),
        (status = 409, description = "Stale version", body = ErrorResponse),
        (status = 412, description = "Stale If-Match", body = ErrorResponse),
        (status = 422, body = ErrorResponse),
        (status = 428, description = "Neither version nor If-Match", body = ErrorResponse),
    ))]
pub async fn update_appointment(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    if_match: IfMatch,
    ApiPath(AppointmentPath { id }): ApiPath<AppointmentPath>,
    ApiJson(body): ApiJson<UpdateAppointment>,
) -> Result<impl IntoResponse, AppError> {
    let base = expected(body.version, if_match)?;
    let mut changes = AppointmentChanges::from(body);
    changes.version = base.version;
    let next = stale_as_precondition(
        appointments::update(&state.workflows, me.id, id, changes).await,
        base.from_header,
    )?;
    Ok((
        [etag(next.version)],
        axum::Extension(AuditPatients(vec![next.patient_id.to_string()])),
        Json(AppointmentResponse::from(&next)),
    ))
}

/// The follow-up work queue: patients whose next follow-up is due (today or
/// earlier by default), oldest first.
#[utoipa::path(get, path = "/api/v1/follow-ups", tag = "appointments", params(FollowUpQuery),
    responses((status = 200, body = Page<FollowUp>), (status = 400, body = ErrorResponse)))]
pub async fn follow_ups(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<FollowUpQuery>,
    CurrentUser(me): CurrentUser,
) -> Result<impl IntoResponse, AppError> {
    let page = page_request(q.page, q.per_page)?;
    let tz = zone_of(q.tz.as_deref(), &me)?;
    let today = zone::today(state.workflows.clock.now(), tz);
    let (_, due_until) = renamed("to", q.to, "due_before", q.due_before)?;
    let limit_day = if q.overdue == Some(true) {
        today
    } else {
        let last = due_until.unwrap_or(today);
        last.succ_opt().unwrap_or(last)
    };
    let (items, total) = state
        .repos
        .patients
        .follow_ups(date_to_bson(limit_day), q.assigned_to, page)
        .await?;
    let data: Vec<FollowUp> = items
        .iter()
        .filter_map(|p| {
            let due = bson_to_date(p.next_follow_up?);
            Some(FollowUp {
                patient_id: p.id,
                name: p.name.clone(),
                country: p.country.clone(),
                treatment_status: p.treatment_status,
                assigned_to: p.assigned_to,
                assigned_to_name: names::user_opt(p.assigned_to),
                next_follow_up: due,
                overdue: due < today,
            })
        })
        .collect();
    let audit = AuditPatients(items.iter().map(|p| p.id.to_string()).collect());
    Ok((axum::Extension(audit), Json(Page::new(data, page, total))))
}

/// Dated appointments across patients, earliest first (the calendar):
/// `from`/`to` on `appointment_date`, the patients `assigned_to` a user,
/// `hospital_id`, `status`. Soft-deleted patients' appointments are left out.
#[utoipa::path(get, path = "/api/v1/appointments", tag = "appointments", params(CalendarQuery),
    responses((status = 200, body = Page<CalendarAppointment>), (status = 400, body = ErrorResponse)))]
pub async fn appointment_calendar(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<CalendarQuery>,
) -> Result<impl IntoResponse, AppError> {
    let page = page_request(q.page, q.per_page)?;
    let (from, before) = date_window(q.from.as_deref(), q.to.as_deref())?;
    let patients = &state.repos.patients;
    let filter = CalendarFilter {
        from,
        before,
        hospital_id: q.hospital_id,
        status: q.status,
        patients: match q.assigned_to {
            Some(user) => Some(patients.ids_assigned_to(user).await?),
            None => None,
        },
    };
    let (items, total) = state.repos.appointments.calendar(&filter, page).await?;
    let ids: Vec<PatientId> = items.iter().map(|a| a.patient_id).collect();
    let names = patients.names_of(&ids).await?;
    let rows = items
        .iter()
        .map(|a| CalendarAppointment {
            appointment: AppointmentResponse::from(a),
            patient_name: names.get(&a.patient_id).cloned().unwrap_or_default(),
        })
        .collect();
    Ok((
        axum::Extension(AuditPatients(ids.iter().map(|i| i.to_string()).collect())),
        Json(Page::new(rows, page, total)),
    ))
}
