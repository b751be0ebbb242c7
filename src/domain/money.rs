//! Money: integer minor units and an ISO 4217 currency, never floats.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::iso::validate_currency;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Money {
    /// Minor units (cents): 125000 = 1250.00.
    #[validate(range(min = 0, message = "must not be negative"))]
    pub amount_minor: i64,
    /// ISO 4217, e.g. `EUR`.
    #[validate(custom(function = "validate_currency"))]
    pub currency: String,
}
