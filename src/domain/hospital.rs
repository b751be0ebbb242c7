//! Partner hospitals.

use mongodb::bson::DateTime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::{HospitalId, UserId};

/// How to reach a hospital's international patient office.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    #[validate(length(max = 100))]
    #[schema(max_length = 100)]
    pub person: Option<String>,
    #[validate(email(message = "must be a valid email"), length(max = 254))]
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
    #[validate(length(min = 3, max = 40))]
    #[schema(min_length = 3, max_length = 40)]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hospital {
    #[serde(rename = "_id")]
    pub id: HospitalId,
    pub name: String,
    /// For the (country, name) uniqueness that ignores case.
    pub name_lower: String,
    pub location: String,
    pub country: String,
    pub contact: Option<Contact>,
    #[serde(default)]
    pub specialties: Vec<String>,
    /// Default commission in basis points (1250 = 12.5 %); none until the
    /// terms are agreed (accepting a quote then needs the earnings typed in).
    #[serde(default)]
    pub commission_bps: Option<i32>,
    /// The currency the hospital quotes in, when known.
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(deserialize_with = "crate::db::lenient_bool")]
    pub active: bool,
    pub created_at: DateTime,
    pub created_by: Option<UserId>,
    pub updated_at: DateTime,
    pub updated_by: Option<UserId>,
}
