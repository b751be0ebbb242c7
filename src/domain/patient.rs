//! Patients: the stored document, statuses and the treatment-status workflow.

use mongodb::bson::DateTime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{HospitalId, PatientId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PatientStatus {
    New,
    Repeat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TreatmentStatus {
    Inquiry,
    Denied,
    Ready,
    Coming,
    Completed,
}

impl TreatmentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TreatmentStatus::Inquiry => "inquiry",
            TreatmentStatus::Denied => "denied",
            TreatmentStatus::Ready => "ready",
            TreatmentStatus::Coming => "coming",
            TreatmentStatus::Completed => "completed",
        }
    }

    /// Where a patient may go from here. Staying put is always allowed.
    /// `completed` never returns to `inquiry`; leaving it for `ready` starts
    /// another treatment (and makes the patient a repeat patient).
    pub fn allowed_next(self) -> &'static [TreatmentStatus] {
        use TreatmentStatus::*;
        match self {
            Inquiry => &[Ready, Denied],
            Ready => &[Coming, Denied, Inquiry],
            Coming => &[Completed, Ready, Denied],
            Denied => &[Inquiry],
            Completed => &[Ready],
        }
    }

    pub fn can_become(self, next: TreatmentStatus) -> bool {
        self == next || self.allowed_next().contains(&next)
    }

    /// The fewest steps the transition table allows from here to `target`
    /// (empty when already there): `inquiry` reaches `completed` through
    /// `ready` and `coming`.
    pub fn path_to(self, target: TreatmentStatus) -> Vec<TreatmentStatus> {
        let mut queue = std::collections::VecDeque::from([vec![self]]);
        let mut seen = vec![self];
        while let Some(path) = queue.pop_front() {
            let last = *path.last().unwrap_or(&self);
            if last == target {
                return path[1..].to_vec();
            }
            for &next in last.allowed_next() {
                if !seen.contains(&next) {
                    seen.push(next);
                    let mut longer = path.clone();
                    longer.push(next);
                    queue.push_back(longer);
                }
            }
        }
        Vec::new()
    }
}

impl PatientStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PatientStatus::New => "new",
            PatientStatus::Repeat => "repeat",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatientContact {
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// One entry of a patient's hospital assignment history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HospitalAssignment {
    pub hospital_id: HospitalId,
    pub by: UserId,
    pub at: DateTime,
}

/// The stored patient. Updates replace the whole document, guarded by
/// `version` (optimistic concurrency; see the README's compatibility notes
/// on why dates are never `$set` one by one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Patient {
    #[serde(rename = "_id")]
    pub id: PatientId,
    pub name: String,
    pub name_lower: String,
    pub age: Option<i32>,
    /// Midnight UTC of the birth date.
    pub date_of_birth: Option<DateTime>,
    pub country: String,
    pub contact: Option<PatientContact>,
    /// How the inquiry reached us (web form, referral, ...).
    pub source: Option<String>,
    #[serde(default)]
    pub medical_history: Vec<String>,
    /// Lower-cased conditions, for filtering and grouping.
    #[serde(default)]
    pub medical_history_lower: Vec<String>,
    pub status: PatientStatus,
    pub treatment_status: TreatmentStatus,
    pub denial_reason: Option<String>,
    pub assigned_to: Option<UserId>,
    pub hospital_id: Option<HospitalId>,
    #[serde(default)]
    pub hospital_history: Vec<HospitalAssignment>,
    /// Midnight UTC of the day the next follow-up is due.
    pub next_follow_up: Option<DateTime>,
    /// Every treatment status the patient has been in, in first-reached
    /// order (the funnel report counts from it; statuses can go back).
    #[serde(default)]
    pub reached: Vec<TreatmentStatus>,
    /// When the patient first reached `completed`.
    #[serde(default)]
    pub completed_at: Option<DateTime>,
    /// The passport number from the travel record, normalised (upper-case
    /// letters and digits), for the search; kept by the travel workflow and
    /// left out of the patient's history (the travel record's history
    /// holds the change, masked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passport_search: Option<String>,
    pub version: i64,
    pub deleted_at: Option<DateTime>,
    pub deleted_by: Option<UserId>,
    pub created_at: DateTime,
    pub created_by: UserId,
    pub updated_at: DateTime,
    pub updated_by: UserId,
}

impl Patient {
    /// Records that the patient is now in `status` (every patient starts as
    /// an inquiry, whatever status they were registered with).
    pub fn note_reached(&mut self, status: TreatmentStatus, at: DateTime) {
        for s in [TreatmentStatus::Inquiry, status] {
            if !self.reached.contains(&s) {
                self.reached.push(s);
            }
        }
        if status == TreatmentStatus::Completed && self.completed_at.is_none() {
            self.completed_at = Some(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TreatmentStatus::*;

    #[test]
    fn paths_follow_the_table() {
        assert_eq!(Inquiry.path_to(Completed), vec![Ready, Coming, Completed]);
        assert_eq!(Ready.path_to(Completed), vec![Coming, Completed]);
        assert_eq!(Coming.path_to(Completed), vec![Completed]);
        assert_eq!(
            Denied.path_to(Completed),
            vec![Inquiry, Ready, Coming, Completed]
        );
        assert!(Completed.path_to(Completed).is_empty());
        assert_eq!(Ready.path_to(Coming), vec![Coming]);
    }

    #[test]
    fn workflow() {
        assert!(
            Inquiry.can_become(Ready) && Ready.can_become(Coming) && Coming.can_become(Completed)
        );
        assert!(!Completed.can_become(Inquiry));
        assert!(!Inquiry.can_become(Completed));
        assert!(Completed.can_become(Ready));
        assert!(Denied.can_become(Inquiry) && !Denied.can_become(Coming));
        assert!(Coming.can_become(Coming));
    }
}
