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
    pub name: String,
    /// E.g. "spouse", "daughter", "interpreter".
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
