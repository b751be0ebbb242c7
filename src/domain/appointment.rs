//! Appointments: each logged discussion or visit with a patient.

use mongodb::bson::DateTime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AppointmentId, HospitalId, PatientId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AppointmentStatus {
    Scheduled,
    Completed,
    Cancelled,
    Missed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Appointment {
    #[serde(rename = "_id")]
    pub id: AppointmentId,
    pub patient_id: PatientId,
    pub hospital_id: Option<HospitalId>,
    pub appointment_date: Option<DateTime>,
    pub discussion_notes: String,
    /// Midnight UTC of the follow-up day.
    pub next_follow_up: Option<DateTime>,
    pub status: AppointmentStatus,
    pub version: i64,
    pub created_by: UserId,
    pub created_at: DateTime,
    pub updated_by: UserId,
    pub updated_at: DateTime,
}
