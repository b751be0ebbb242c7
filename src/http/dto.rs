//! Response and query shapes shared by several resources.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    domain::{
        dates::{age_on, bson_to_date},
        money::Money,
        patient::{Patient, PatientContact, PatientStatus, TreatmentStatus},
        treatment::{Treatment, TreatmentState},
        AppointmentId, HospitalId, PatientId, QuoteId, TreatmentId, UserId,
    },
    error::AppError,
    http::names,
    repo::PageRequest,
};

pub const DEFAULT_PER_PAGE: u64 = 20;
pub const MAX_PER_PAGE: u64 = 100;

/// One page of a list: `{data, page, per_page, total}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub page: u64,
    pub per_page: u64,
    pub total: u64,
}

impl<T> Page<T> {
    pub fn new(data: Vec<T>, req: PageRequest, total: u64) -> Self {
        Page {
            data,
            page: req.page,
            per_page: req.per_page,
            total,
        }
    }
}

/// Validates `page` (>= 1) and `per_page` (1..=100); defaults 1 and 20.
pub fn page_request(page: Option<u64>, per_page: Option<u64>) -> Result<PageRequest, AppError> {
    let page = page.unwrap_or(1);
    let per_page = per_page.unwrap_or(DEFAULT_PER_PAGE);
    if page == 0 || page > 1_000_000 {
        return Err(AppError::BadRequest(
            "page must be between 1 and 1000000".into(),
        ));
    }
    if per_page == 0 || per_page > MAX_PER_PAGE {
        return Err(AppError::BadRequest(format!(
            "per_page must be between 1 and {MAX_PER_PAGE}"
        )));
    }
    Ok(PageRequest { page, per_page })
}

/// `{"status": "..."}` for simple acknowledgements.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Ack {
    pub status: String,
}

/// Raw image bytes, as the OpenAPI document describes a download.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct ImageBytes(pub Vec<u8>);

/// A file's raw bytes, as the OpenAPI document describes a download.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct FileBytes(pub Vec<u8>);

#[derive(Debug, Serialize, ToSchema)]
pub struct AssignmentResponse {
    pub hospital_id: HospitalId,
    pub hospital_name: Option<String>,
    pub by: UserId,
    pub by_name: Option<String>,
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
    pub assigned_to_name: Option<String>,
    pub hospital_id: Option<HospitalId>,
    pub hospital_name: Option<String>,
    pub hospital_history: Vec<AssignmentResponse>,
    #[schema(value_type = Option<String>, format = Date)]
    pub next_follow_up: Option<NaiveDate>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub created_by: UserId,
    pub created_by_name: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: UserId,
    pub updated_by_name: Option<String>,
    /// When it was soft-deleted (only on the restore screen's rows).
    pub deleted_at: Option<DateTime<Utc>>,
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
            assigned_to_name: names::user_opt(p.assigned_to),
            hospital_id: p.hospital_id,
            hospital_name: names::hospital_opt(p.hospital_id),
            hospital_history: p
                .hospital_history
                .iter()
                .map(|a| AssignmentResponse {
                    hospital_id: a.hospital_id,
                    hospital_name: names::hospital(a.hospital_id),
                    by: a.by,
                    by_name: names::user(a.by),
                    at: a.at.to_chrono(),
                })
                .collect(),
            next_follow_up: p.next_follow_up.map(bson_to_date),
            version: p.version,
            created_at: p.created_at.to_chrono(),
            created_by: p.created_by,
            created_by_name: names::user(p.created_by),
            updated_at: p.updated_at.to_chrono(),
            updated_by: p.updated_by,
            updated_by_name: names::user(p.updated_by),
            deleted_at: p.deleted_at.map(|d| d.to_chrono()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessLogEntry {
    pub at: DateTime<Utc>,
    pub actor_id: Option<UserId>,
    pub actor_name: Option<String>,
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
            actor_name: names::user_opt(e.actor_id),
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

/// An audit event as `GET /audit` shows it: what the access log shows, plus
/// the ids it concerned and its details (a permission or account change's
/// before and after, a refused-call tally's `count`, `from` and `to`).
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    #[serde(flatten)]
    pub entry: AccessLogEntry,
    /// The ids in the request's path (only well-formed ones are kept).
    pub target_ids: Vec<String>,
    /// The patients whose data the request read or changed.
    pub patient_ids: Vec<String>,
    /// Non-sensitive specifics; dates as `{"$date": "<RFC 3339>"}`.
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

impl From<crate::repo::audit::AuditEvent> for AuditEntry {
    fn from(mut e: crate::repo::audit::AuditEvent) -> Self {
        let target_ids = std::mem::take(&mut e.target_ids);
        let patient_ids = std::mem::take(&mut e.patient_ids);
        let details = e
            .details
            .take()
            .map(|d| mongodb::bson::Bson::Document(d).into_relaxed_extjson());
        AuditEntry {
            entry: AccessLogEntry::from(e),
            target_ids,
            patient_ids,
            details,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TreatmentResponse {
    pub id: TreatmentId,
    pub patient_id: PatientId,
    pub hospital_id: HospitalId,
    pub hospital_name: Option<String>,
    pub treatment_type: String,
    pub disease: String,
    pub cost: Money,
    pub earnings: Money,
    pub status: TreatmentState,
    pub appointment_ids: Vec<AppointmentId>,
    /// The quote whose acceptance booked it.
    pub quote_id: Option<QuoteId>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_by: UserId,
    pub created_by_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_by: UserId,
    pub updated_by_name: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Treatment> for TreatmentResponse {
    fn from(t: &Treatment) -> Self {
        TreatmentResponse {
            id: t.id,
            patient_id: t.patient_id,
            hospital_id: t.hospital_id,
            hospital_name: names::hospital(t.hospital_id),
            treatment_type: t.treatment_type.clone(),
            disease: t.disease.clone(),
            cost: t.cost.clone(),
            earnings: t.earnings.clone(),
            status: t.status,
            appointment_ids: t.appointment_ids.clone(),
            quote_id: t.quote_id,
            started_at: t.started_at.map(|d| d.to_chrono()),
            completed_at: t.completed_at.map(|d| d.to_chrono()),
            cancelled_at: t.cancelled_at.map(|d| d.to_chrono()),
            version: t.version,
            created_by: t.created_by,
            created_by_name: names::user(t.created_by),
            created_at: t.created_at.to_chrono(),
            updated_by: t.updated_by,
            updated_by_name: names::user(t.updated_by),
            updated_at: t.updated_at.to_chrono(),
        }
    }
}
