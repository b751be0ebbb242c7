//! Money: integer minor units and an ISO 4217 currency, never floats.
//!
//! An amount a request carries is at most [`MAX_AMOUNT_MINOR`] (10^13 minor
//! units: 100 billion in a two-decimal currency). Sums are then safe by
//! count: an `i64` holds 922,337 such amounts at the cap, far more than
//! any report adds up; [`sum`] still checks, and a total read back from
//! MongoDB that did not fit is an error rather than a wrong figure
//! (`repo::read_minor`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::{Validate, ValidationError};

use super::iso::validate_currency;

/// The largest amount, in minor units, a request may carry.
pub const MAX_AMOUNT_MINOR: i64 = 10_000_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Money {
    /// Minor units (cents): 125000 = 1250.00. From 0 to 10^13.
    #[validate(custom(function = "validate_amount"))]
    #[schema(minimum = 0, maximum = 10_000_000_000_000_i64, example = 1_250_000)]
    pub amount_minor: i64,
    /// ISO 4217, upper case, e.g. `EUR`.
    #[validate(custom(function = "validate_currency"))]
    #[schema(
        min_length = 3,
        max_length = 3,
        pattern = "^[A-Z]{3}$",
        example = "EUR"
    )]
    pub currency: String,
}

/// validator hook: `0 ..= MAX_AMOUNT_MINOR`.
pub fn validate_amount(amount_minor: i64) -> Result<(), ValidationError> {
    if amount_minor < 0 {
        Err(ValidationError::new("range").with_message("must not be negative".into()))
    } else if amount_minor > MAX_AMOUNT_MINOR {
        Err(ValidationError::new("range")
            .with_message("must be at most 10000000000000 (10^13 minor units)".into()))
    } else {
        Ok(())
    }
}

/// The sum of `amounts`, or `None` when it does not fit in an `i64`.
pub fn sum(amounts: impl IntoIterator<Item = i64>) -> Option<i64> {
    amounts.into_iter().try_fold(0_i64, i64::checked_add)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn amounts_stop_at_ten_to_the_thirteenth() {
        assert!(validate_amount(0).is_ok());
        assert!(validate_amount(MAX_AMOUNT_MINOR).is_ok());
        assert!(validate_amount(MAX_AMOUNT_MINOR + 1).is_err());
        assert!(validate_amount(-1).is_err());
        assert!(validate_amount(i64::MIN).is_err());
        let m = Money {
            amount_minor: MAX_AMOUNT_MINOR + 1,
            currency: "EUR".into(),
        };
        let errors = m.validate().expect_err("too large");
        assert!(errors.field_errors().contains_key("amount_minor"));
        assert_eq!(sum([i64::MAX, 1]), None);
        assert_eq!(sum([i64::MAX, -1, 1]), Some(i64::MAX));
    }

    proptest! {
        #[test]
        fn any_amount_validates_or_is_refused(a in any::<i64>()) {
            prop_assert_eq!(validate_amount(a).is_ok(), (0..=MAX_AMOUNT_MINOR).contains(&a));
        }

        #[test]
        fn sums_are_exact_or_none(v in proptest::collection::vec(any::<i64>(), 0..40)) {
            let exact: i128 = v.iter().map(|&a| i128::from(a)).sum();
            prop_assert_eq!(sum(v.iter().copied()), i64::try_from(exact).ok().filter(|_| {
                // checked_add stops at the first partial sum out of range.
                v.iter().try_fold(0_i128, |acc, &a| {
                    let next = acc + i128::from(a);
                    i64::try_from(next).ok().map(|_| next)
                }).is_some()
            }));
        }
    }
}
