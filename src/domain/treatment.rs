//! Treatments and the earnings ledger.

use mongodb::bson::DateTime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{money::Money, AppointmentId, HospitalId, PatientId, QuoteId, TreatmentId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TreatmentState {
    Planned,
    InProgress,
    Completed,
    Cancelled,
}

impl TreatmentState {
    pub fn as_str(self) -> &'static str {
        match self {
            TreatmentState::Planned => "planned",
            TreatmentState::InProgress => "in_progress",
            TreatmentState::Completed => "completed",
            TreatmentState::Cancelled => "cancelled",
        }
    }

    /// A completed treatment can only be cancelled (which reverses its
    /// earnings); a cancelled one is final.
    pub fn allowed_next(self) -> &'static [TreatmentState] {
        use TreatmentState::*;
        match self {
            Planned => &[InProgress, Completed, Cancelled],
            InProgress => &[Completed, Cancelled],
            Completed => &[Cancelled],
            Cancelled => &[],
        }
    }

    pub fn can_become(self, next: TreatmentState) -> bool {
        self == next || self.allowed_next().contains(&next)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Treatment {
    #[serde(rename = "_id")]
    pub id: TreatmentId,
    pub patient_id: PatientId,
    pub hospital_id: HospitalId,
    /// The course of treatment, e.g. "knee replacement".
    pub treatment_type: String,
    pub disease: String,
    pub cost: Money,
    /// The company's commission on this treatment.
    pub earnings: Money,
    pub status: TreatmentState,
    #[serde(default)]
    pub appointment_ids: Vec<AppointmentId>,
    /// The quote whose acceptance booked it.
    #[serde(default)]
    pub quote_id: Option<QuoteId>,
    pub started_at: Option<DateTime>,
    pub completed_at: Option<DateTime>,
    pub cancelled_at: Option<DateTime>,
    pub version: i64,
    pub created_by: UserId,
    pub created_at: DateTime,
    pub updated_by: UserId,
    pub updated_at: DateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// Earned when a treatment completed.
    Credit,
    /// Takes a credit back when a completed treatment is cancelled.
    Reversal,
}

/// One ledger line. Keyed by (treatment_id, kind, seq), written once with
/// an upsert, never updated or deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EarningEntry {
    pub treatment_id: TreatmentId,
    pub kind: EntryKind,
    pub seq: i64,
    /// Signed: reversals are negative.
    pub amount_minor: i64,
    pub currency: String,
    pub hospital_id: HospitalId,
    pub patient_id: PatientId,
    pub booked_at: DateTime,
}

#[cfg(test)]
mod tests {
    use super::TreatmentState::*;

    #[test]
    fn lifecycle() {
        assert!(Planned.can_become(Completed) && InProgress.can_become(Cancelled));
        assert!(Completed.can_become(Cancelled) && !Completed.can_become(InProgress));
        assert!(!Cancelled.can_become(Completed) && Cancelled.can_become(Cancelled));
    }
}
