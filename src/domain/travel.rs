//! A patient's trip: passport, visa, flights, accommodation, companions.

use mongodb::bson::DateTime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{PatientId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VisaStatus {
    NotNeeded,
    InvitationRequested,
    InvitationSent,
    Applied,
    Granted,
    Refused,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Passport {
    /// Upper-case letters and digits.
    pub number: String,
    /// ISO 3166-1 alpha-2 of the issuing country.
    pub country: String,
    /// `YYYY-MM-DD`.
    pub expires_on: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Visa {
    pub status: VisaStatus,
    pub notes: Option<String>,
}

/// A flight in or out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Leg {
    pub at: DateTime,
    pub flight: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Companion {
    /// 1 to 200 characters once trimmed (`PUT .../travel` checks it).
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// E.g. "spouse", "daughter", "interpreter"; 1 to 200 characters once
    /// trimmed.
    #[schema(min_length = 1, max_length = 200)]
    pub relation: String,
}

/// The stored travel record, one per patient (`_id` is the patient's id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Travel {
    #[serde(rename = "_id")]
    pub patient_id: PatientId,
    pub passport: Option<Passport>,
    pub visa: Option<Visa>,
    pub arrival: Option<Leg>,
    pub departure: Option<Leg>,
    pub accommodation: Option<String>,
    #[serde(default)]
    pub companions: Vec<Companion>,
    pub pickup_arranged: bool,
    pub version: i64,
    pub created_at: DateTime,
    pub created_by: UserId,
    pub updated_at: DateTime,
    pub updated_by: UserId,
}

/// What the arrivals board flags on a trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Warning {
    /// The passport expires within 6 months of the departure (of the
    /// arrival when no departure is set), as many countries refuse entry;
    /// also when no passport is on file.
    PassportExpiresSoon,
    /// The visa is neither granted nor unneeded and the arrival is 14 days
    /// away or less.
    VisaNotGranted,
    /// No pickup arranged and the arrival is 3 days away or less.
    NoPickup,
    /// The patient has no treatment recorded (none, or only cancelled ones).
    NoTreatment,
}

/// Days before the arrival from which a missing visa is flagged.
pub const VISA_WARNING_DAYS: i64 = 14;
/// Days before the arrival from which a missing pickup is flagged.
pub const PICKUP_WARNING_DAYS: i64 = 3;
/// Months a passport must stay valid after the departure.
pub const PASSPORT_VALID_MONTHS: u32 = 6;

impl Travel {
    /// The board's warnings for this trip on `today` (UTC dates).
    pub fn warnings(&self, has_treatment: bool, today: chrono::NaiveDate) -> Vec<Warning> {
        let mut out = Vec::new();
        let Some(arrival) = self.arrival.as_ref().map(|a| a.at.to_chrono().date_naive()) else {
            return out;
        };
        let leaves = self
            .departure
            .as_ref()
            .map_or(arrival, |d| d.at.to_chrono().date_naive());
        let must_last = leaves
            .checked_add_months(chrono::Months::new(PASSPORT_VALID_MONTHS))
            .unwrap_or(leaves);
        let expires = self
            .passport
            .as_ref()
            .and_then(|p| chrono::NaiveDate::parse_from_str(&p.expires_on, "%Y-%m-%d").ok());
        // No passport (or no expiry) on file cannot be shown valid either.
        if expires.is_none_or(|e| e < must_last) {
            out.push(Warning::PassportExpiresSoon);
        }
        let days_left = (arrival - today).num_days();
        let visa_ok = self
            .visa
            .as_ref()
            .is_some_and(|v| matches!(v.status, VisaStatus::Granted | VisaStatus::NotNeeded));
        if !visa_ok && days_left <= VISA_WARNING_DAYS {
            out.push(Warning::VisaNotGranted);
        }
        if !self.pickup_arranged && days_left <= PICKUP_WARNING_DAYS {
            out.push(Warning::NoPickup);
        }
        if !has_treatment {
            out.push(Warning::NoTreatment);
        }
        out
    }
}

/// A passport number as shown to someone the matrix does not let see it:
/// its last four characters.
pub fn mask_passport(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    let keep = chars.len().min(4);
    let shown: String = chars[chars.len() - keep..].iter().collect();
    format!("{}{shown}", "*".repeat(chars.len() - keep))
}

/// The stored form of a typed passport number: upper-case, without spaces
/// or dashes; `None` unless 5 to 20 letters and digits remain.
pub fn normalize_passport(raw: &str) -> Option<String> {
    let n: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (n.len() >= 5 && n.len() <= 20 && n.chars().all(|c| c.is_ascii_alphanumeric())).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trip(
        arrive: &str,
        depart: Option<&str>,
        expires: &str,
        visa: VisaStatus,
        pickup: bool,
    ) -> Travel {
        let at = |d: &str| Leg {
            at: DateTime::parse_rfc3339_str(format!("{d}T10:00:00Z")).unwrap(),
            flight: None,
        };
        Travel {
            patient_id: PatientId::new(),
            passport: Some(Passport {
                number: "X1234567".into(),
                country: "GB".into(),
                expires_on: expires.into(),
            }),
            visa: Some(Visa {
                status: visa,
                notes: None,
            }),
            arrival: Some(at(arrive)),
            departure: depart.map(at),
            accommodation: None,
            companions: vec![],
            pickup_arranged: pickup,
            version: 1,
            created_at: DateTime::now(),
            created_by: UserId::new(),
            updated_at: DateTime::now(),
            updated_by: UserId::new(),
        }
    }

    #[test]
    fn each_warning_starts_on_its_day() {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let good = trip(
            "2026-03-20",
            Some("2026-04-01"),
            "2026-10-01",
            VisaStatus::Granted,
            true,
        );
        assert_eq!(good.warnings(true, today), vec![]);
        // Passport: must last 6 months past the departure (2026-10-01).
        let t = trip(
            "2026-03-20",
            Some("2026-04-01"),
            "2026-09-30",
            VisaStatus::Granted,
            true,
        );
        assert_eq!(t.warnings(true, today), vec![Warning::PassportExpiresSoon]);
        // ... or past the arrival when there is no departure.
        let t = trip("2026-03-20", None, "2026-09-20", VisaStatus::Granted, true);
        assert_eq!(t.warnings(true, today), vec![]);
        // Visa: from 14 days before the arrival.
        let t = trip("2026-03-15", None, "2030-01-01", VisaStatus::Applied, true);
        assert_eq!(t.warnings(true, today), vec![Warning::VisaNotGranted]);
        let t = trip("2026-03-16", None, "2030-01-01", VisaStatus::Applied, true);
        assert_eq!(t.warnings(true, today), vec![]);
        let t = trip(
            "2026-03-02",
            None,
            "2030-01-01",
            VisaStatus::NotNeeded,
            true,
        );
        assert_eq!(t.warnings(true, today), vec![]);
        // Pickup: from 3 days before.
        let t = trip("2026-03-04", None, "2030-01-01", VisaStatus::Granted, false);
        assert_eq!(t.warnings(true, today), vec![Warning::NoPickup]);
        let t = trip("2026-03-05", None, "2030-01-01", VisaStatus::Granted, false);
        assert_eq!(t.warnings(true, today), vec![]);
        // No treatment, whatever the date.
        assert_eq!(good.warnings(false, today), vec![Warning::NoTreatment]);
        // No passport on file.
        let mut t = good.clone();
        t.passport = None;
        assert_eq!(t.warnings(true, today), vec![Warning::PassportExpiresSoon]);
    }

    #[test]
    fn passports_are_normalised_and_masked() {
        assert_eq!(
            normalize_passport("u 1234-5678").as_deref(),
            Some("U12345678")
        );
        assert_eq!(normalize_passport("abc"), None);
        assert_eq!(normalize_passport("U1234$5678"), None);
        assert_eq!(mask_passport("U12345678"), "*****5678");
        assert_eq!(mask_passport("AB1"), "AB1");
    }
}
