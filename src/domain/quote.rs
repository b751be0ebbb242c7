//! Quotes: a partner hospital's price for a patient's treatment, asked for,
//! answered, and accepted (which books the treatment) or declined.

use chrono::NaiveDate;
use mongodb::bson::DateTime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{money::Money, HospitalId, PatientId, QuoteId, TreatmentId, UserId};

/// A quote's status as stored. `expired` is never stored: a received quote
/// whose `valid_until` has passed is shown as expired (see [`Quote::shown_status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QuoteStatus {
    Requested,
    Received,
    Accepted,
    Declined,
    Expired,
}

impl QuoteStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            QuoteStatus::Requested => "requested",
            QuoteStatus::Received => "received",
            QuoteStatus::Accepted => "accepted",
            QuoteStatus::Declined => "declined",
            QuoteStatus::Expired => "expired",
        }
    }

    /// Still waiting for the patient's choice (declined when another quote
    /// for the same treatment is accepted).
    pub fn is_open(self) -> bool {
        matches!(self, QuoteStatus::Requested | QuoteStatus::Received)
    }

    /// Where a quote sorts in the comparison list: offers with a price
    /// first, then those still waiting for one, then the declined.
    pub fn rank(self) -> i32 {
        match self {
            QuoteStatus::Received | QuoteStatus::Accepted | QuoteStatus::Expired => 0,
            QuoteStatus::Requested => 1,
            QuoteStatus::Declined => 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quote {
    #[serde(rename = "_id")]
    pub id: QuoteId,
    pub patient_id: PatientId,
    pub hospital_id: HospitalId,
    pub treatment_type: String,
    /// `treatment_type` lower-cased: quotes "for the same treatment".
    pub treatment_key: String,
    pub disease: Option<String>,
    pub notes: Option<String>,
    pub status: QuoteStatus,
    /// The comparison order's first key ([`QuoteStatus::rank`]).
    pub rank: i32,
    pub amount: Option<Money>,
    /// The last day the price holds (`YYYY-MM-DD`).
    pub valid_until: Option<String>,
    pub includes: Option<String>,
    pub answered_at: Option<DateTime>,
    pub accepted_at: Option<DateTime>,
    /// The treatment accepting it booked.
    pub treatment_id: Option<TreatmentId>,
    pub version: i64,
    pub created_by: UserId,
    pub created_at: DateTime,
    pub updated_by: UserId,
    pub updated_at: DateTime,
}

impl Quote {
    /// A received quote past its `valid_until` day (in UTC).
    pub fn is_expired(&self, today: NaiveDate) -> bool {
        self.status == QuoteStatus::Received
            && self
                .valid_until
                .as_deref()
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                .is_some_and(|last| last < today)
    }

    /// The status a client sees: `expired` for a received quote past its day.
    pub fn shown_status(&self, today: NaiveDate) -> QuoteStatus {
        if self.is_expired(today) {
            QuoteStatus::Expired
        } else {
            self.status
        }
    }

    /// Sets the status and the comparison rank that goes with it.
    pub fn set_status(&mut self, status: QuoteStatus) {
        self.status = status;
        self.rank = status.rank();
    }
}

/// The commission on `cost_minor` at `bps` basis points, rounded half to
/// even to the currency's minor unit (amounts are already in minor units,
/// so this is an integer rounding whatever the currency's decimals).
pub fn commission(cost_minor: i64, bps: i32) -> i64 {
    let product = i128::from(cost_minor) * i128::from(bps);
    let (q, r) = (product.div_euclid(10_000), product.rem_euclid(10_000));
    let rounded = match r.cmp(&5_000) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q & 1),
    };
    // cost <= 10^13 and bps <= 10^4, so the result is at most the cost.
    i64::try_from(rounded).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn commission_rounds_half_to_even() {
        assert_eq!(commission(1_000_000, 1250), 125_000);
        // 0.5 of a minor unit goes to the even neighbour.
        assert_eq!(commission(1, 5000), 0);
        assert_eq!(commission(3, 5000), 2);
        assert_eq!(commission(5, 1000), 0); // 0.5
        assert_eq!(commission(15, 1000), 2); // 1.5
        assert_eq!(commission(25, 1000), 2); // 2.5
        assert_eq!(commission(26, 1000), 3); // 2.6
        assert_eq!(commission(24, 1000), 2); // 2.4
        assert_eq!(commission(0, 10_000), 0);
        assert_eq!(commission(10_000_000_000_000, 10_000), 10_000_000_000_000);
    }

    proptest! {
        #[test]
        fn commission_is_within_half_a_unit(cost in 0_i64..=10_000_000_000_000, bps in 0_i32..=10_000) {
            let exact = cost as f64 * f64::from(bps) / 10_000.0;
            let got = commission(cost, bps);
            prop_assert!((got as f64 - exact).abs() <= 0.5 + exact * 1e-12);
            prop_assert!(got <= cost);
        }
    }

    #[test]
    fn expiry_is_after_the_last_day() {
        let day = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        let mut q = Quote {
            id: QuoteId::new(),
            patient_id: PatientId::new(),
            hospital_id: HospitalId::new(),
            treatment_type: "IVF".into(),
            treatment_key: "ivf".into(),
            disease: None,
            notes: None,
            status: QuoteStatus::Received,
            rank: 0,
            amount: None,
            valid_until: Some("2026-03-01".into()),
            includes: None,
            answered_at: None,
            accepted_at: None,
            treatment_id: None,
            version: 1,
            created_by: UserId::new(),
            created_at: DateTime::now(),
            updated_by: UserId::new(),
            updated_at: DateTime::now(),
        };
        assert_eq!(q.shown_status(day("2026-03-01")), QuoteStatus::Received);
        assert_eq!(q.shown_status(day("2026-03-02")), QuoteStatus::Expired);
        q.set_status(QuoteStatus::Accepted);
        assert_eq!(q.shown_status(day("2026-03-02")), QuoteStatus::Accepted);
        assert_eq!(q.rank, 0);
    }
}
