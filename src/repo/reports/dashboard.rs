//! The dashboard's queries: patient counts and small plain-field groups
//! (pure builders, unit-tested below), their typed results, and the
//! [`ReportsRepo`] methods that run them.

use futures::future::try_join_all;
use mongodb::bson::{doc, DateTime, Document};

use super::{booked_match, id_str, live_in, rows::PatientCount, Range, ReportsRepo};
use crate::{domain::money::Money, error::Result, repo::read_minor};

/// The moments the dashboard counts from.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Midnight UTC today.
    pub today: DateTime,
    pub tomorrow: DateTime,
    /// Monday of this week, midnight UTC.
    pub week_start: DateTime,
    pub month_start: DateTime,
    pub year_start: DateTime,
}

// The dashboard is many small queries run together rather than one
// `$facet`: each is a count or a `$group` on a plain field, which both
// servers answer from indexes (the stand-in runs `$facet` and expression
// groups in Python, 30x slower; README notes). Its periods are ranges on
// the patients' stored milliseconds (`created_ms`, `next_follow_up_ms`;
// `repo::patients::derived`): see [`super::in_millis`].

const CREATED_MS: &str = crate::repo::patients::CREATED_MS;
const FOLLOW_UP_MS: &str = crate::repo::patients::NEXT_FOLLOW_UP_MS;

/// Named patient counts for the dashboard, each a `count` filter. The
/// total is the sum of [`dashboard_statuses`], not counted again.
pub fn dashboard_counts(clock: Clock, period: Option<Range>) -> Vec<(&'static str, Document)> {
    let mut counts = vec![
        (
            "new_this_week",
            live_in(CREATED_MS, Some(clock.week_start), None),
        ),
        (
            "new_this_month",
            live_in(CREATED_MS, Some(clock.month_start), None),
        ),
        (
            "follow_ups_due_today",
            live_in(FOLLOW_UP_MS, Some(clock.today), Some(clock.tomorrow)),
        ),
        (
            "follow_ups_overdue",
            live_in(FOLLOW_UP_MS, None, Some(clock.today)),
        ),
    ];
    if let Some(r) = period {
        counts.push(("new_in_period", live_in(CREATED_MS, r.from, r.before)));
    }
    counts
}

/// Live patients per treatment status.
pub fn dashboard_statuses() -> Vec<Document> {
    vec![
        doc! { "$match": live_in(CREATED_MS, None, None) },
        doc! { "$group": { "_id": "$treatment_status", "n": { "$sum": 1 } } },
    ]
}

/// The five countries with the most live patients (registered in `period`).
pub fn dashboard_top_countries(period: Option<Range>) -> Vec<Document> {
    let r = period.unwrap_or_default();
    vec![
        doc! { "$match": live_in(CREATED_MS, r.from, r.before) },
        doc! { "$group": { "_id": "$country", "n": { "$sum": 1 } } },
        doc! { "$sort": { "n": -1, "_id": 1 } },
        doc! { "$limit": 5 },
    ]
}

/// Live patients (registered in `period`) per condition list; the caller
/// folds the lists into conditions and keeps the top five.
pub fn dashboard_diseases(period: Option<Range>) -> Vec<Document> {
    let r = period.unwrap_or_default();
    super::pipelines::condition_lists(doc! { "$match": live_in(CREATED_MS, r.from, r.before) })
}

/// Net ledger earnings per currency booked in `range`.
pub fn earnings_by_currency(range: Range) -> Vec<Document> {
    vec![
        booked_match(range),
        doc! { "$group": { "_id": "$currency", "amount_minor": { "$sum": "$amount_minor" } } },
        doc! { "$sort": { "_id": 1 } },
    ]
}

/// The dashboard's named patient counts.
#[derive(Debug, Clone, PartialEq)]
pub struct PatientCounts {
    pub total: i64,
    pub new_this_week: i64,
    pub new_this_month: i64,
    /// Only when the dashboard has a period.
    pub new_in_period: Option<i64>,
    pub follow_ups_due_today: i64,
    pub follow_ups_overdue: i64,
}

impl ReportsRepo {
    /// Every count of [`dashboard_counts`] and the live patients per
    /// treatment status (`group`, unordered), issued together; the total
    /// is the statuses' sum.
    pub async fn patient_counts(
        &self,
        clock: Clock,
        period: Option<Range>,
    ) -> Result<(PatientCounts, Vec<PatientCount>)> {
        let counts = dashboard_counts(clock, period);
        let counted = async {
            let filters = counts.iter().map(|(_, f)| f.clone());
            let counted =
                try_join_all(filters.map(|f| crate::db::count(&self.patients, f))).await?;
            Ok(counted)
        };
        let (counted, statuses) =
            tokio::try_join!(counted, Self::run(&self.patients, dashboard_statuses()))?;
        let statuses = super::rows::patient_counts(&statuses);
        let total = statuses
            .iter()
            .try_fold(0_i64, |sum, s| sum.checked_add(s.patients))
            .ok_or_else(|| crate::error::AppError::internal("the patient total overflowed"))?;
        let count = |name: &str| {
            counts
                .iter()
                .zip(&counted)
                .find(|((n, _), _)| *n == name)
                .map(|(_, c)| *c as i64)
        };
        let figures = PatientCounts {
            total,
            new_this_week: count("new_this_week").unwrap_or(0),
            new_this_month: count("new_this_month").unwrap_or(0),
            new_in_period: count("new_in_period"),
            follow_ups_due_today: count("follow_ups_due_today").unwrap_or(0),
            follow_ups_overdue: count("follow_ups_overdue").unwrap_or(0),
        };
        Ok((figures, statuses))
    }

    /// At most five, by patients descending, then country.
    pub async fn top_countries(&self, period: Option<Range>) -> Result<Vec<PatientCount>> {
        let rows = Self::run(&self.patients, dashboard_top_countries(period)).await?;
        Ok(super::rows::patient_counts(&rows))
    }

    /// Every condition, unordered: see [`dashboard_diseases`].
    pub async fn disease_counts(&self, period: Option<Range>) -> Result<Vec<PatientCount>> {
        let rows = Self::run(&self.patients, dashboard_diseases(period)).await?;
        Ok(super::rows::condition_counts(&rows))
    }

    /// By currency.
    pub async fn earnings_by_currency(&self, range: Range) -> Result<Vec<Money>> {
        let rows = Self::run(&self.ledger, earnings_by_currency(range)).await?;
        rows.iter()
            .map(|r| {
                Ok(Money {
                    amount_minor: read_minor(r, "amount_minor")?,
                    currency: id_str(r),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::repo::reports::testing::{range, stage_names};

    #[test]
    fn the_dashboard_queries_are_counts_and_plain_groups() {
        let d = |y, m, day| {
            DateTime::from_chrono(
                NaiveDate::from_ymd_opt(y, m, day)
                    .expect("date")
                    .and_hms_opt(0, 0, 0)
                    .expect("time")
                    .and_utc(),
            )
        };
        let clock = Clock {
            today: d(2026, 11, 23),
            tomorrow: d(2026, 11, 24),
            week_start: d(2026, 11, 23),
            month_start: d(2026, 11, 1),
            year_start: d(2026, 1, 1),
        };
        let counts = dashboard_counts(clock, None);
        let names: Vec<&str> = counts.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "new_this_week",
                "new_this_month",
                "follow_ups_due_today",
                "follow_ups_overdue"
            ]
        );
        assert_eq!(
            counts[3].1,
            doc! { "deleted_at": { "$eq": mongodb::bson::Bson::Null },
            "next_follow_up_ms": { "$lt": d(2026, 11, 23).timestamp_millis() } }
        );
        assert_eq!(dashboard_counts(clock, Some(range())).len(), 5);
        // Groups on plain fields, no expressions.
        for p in [
            dashboard_statuses(),
            dashboard_top_countries(None),
            dashboard_diseases(None),
        ] {
            let g = p
                .iter()
                .find_map(|s| s.get_document("$group").ok())
                .expect("group");
            assert!(g.get_str("_id").is_ok(), "{g}");
        }
        let earned = earnings_by_currency(range());
        assert_eq!(stage_names(&earned), ["$match", "$group", "$sort"]);
    }
}
