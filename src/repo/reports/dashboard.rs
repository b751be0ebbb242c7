//! The dashboard's queries: patient counts and small plain-field groups
//! (pure builders, unit-tested below), their typed results, and the
//! [`ReportsRepo`] methods that run them.

use futures::future::try_join_all;
use mongodb::bson::{doc, Bson, DateTime, Document};

use super::{add_date_range, booked_match, id_str, rows::PatientCount, Range, ReportsRepo};
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

/// The dashboard is many small queries run together rather than one
/// `$facet`: each is a count or a `$group` on a plain field, which both
/// servers answer from indexes (the stand-in runs `$facet` and expression
/// groups in Python, 30x slower; README notes).
fn live_since(field: &str, from: Option<DateTime>, before: Option<DateTime>) -> Document {
    let mut m = doc! { "deleted_at": { "$eq": Bson::Null } };
    add_date_range(&mut m, field, from, before);
    m
}

/// Named patient counts for the dashboard, each a `count` filter.
pub fn dashboard_counts(clock: Clock, period: Option<Range>) -> Vec<(&'static str, Document)> {
    let mut counts = vec![
        ("total", live_since("created_at", None, None)),
        (
            "new_this_week",
            live_since("created_at", Some(clock.week_start), None),
        ),
        (
            "new_this_month",
            live_since("created_at", Some(clock.month_start), None),
        ),
        (
            "follow_ups_due_today",
            live_since("next_follow_up", Some(clock.today), Some(clock.tomorrow)),
        ),
        (
            "follow_ups_overdue",
            live_since("next_follow_up", None, Some(clock.today)),
        ),
    ];
    if let Some(r) = period {
        counts.push(("new_in_period", live_since("created_at", r.from, r.before)));
    }
    counts
}

/// Live patients per treatment status.
pub fn dashboard_statuses() -> Vec<Document> {
    vec![
        doc! { "$match": live_since("created_at", None, None) },
        doc! { "$group": { "_id": "$treatment_status", "n": { "$sum": 1 } } },
    ]
}

/// The five countries with the most live patients (registered in `period`).
pub fn dashboard_top_countries(period: Option<Range>) -> Vec<Document> {
    let r = period.unwrap_or_default();
    vec![
        doc! { "$match": live_since("created_at", r.from, r.before) },
        doc! { "$group": { "_id": "$country", "n": { "$sum": 1 } } },
        doc! { "$sort": { "n": -1, "_id": 1 } },
        doc! { "$limit": 5 },
    ]
}

/// Live patients (registered in `period`) per condition list; the caller
/// folds the lists into conditions and keeps the top five.
pub fn dashboard_diseases(period: Option<Range>) -> Vec<Document> {
    let r = period.unwrap_or_default();
    super::pipelines::condition_lists(doc! { "$match": live_since("created_at", r.from, r.before) })
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
    /// Every count of [`dashboard_counts`], issued together.
    pub async fn patient_counts(
        &self,
        clock: Clock,
        period: Option<Range>,
    ) -> Result<PatientCounts> {
        let counts = dashboard_counts(clock, period);
        let counted = try_join_all(
            counts
                .iter()
                .map(|(_, filter)| crate::db::count(&self.patients, filter.clone())),
        )
        .await?;
        let count = |name: &str| {
            counts
                .iter()
                .zip(&counted)
                .find(|((n, _), _)| *n == name)
                .map(|(_, c)| *c as i64)
        };
        Ok(PatientCounts {
            total: count("total").unwrap_or(0),
            new_this_week: count("new_this_week").unwrap_or(0),
            new_this_month: count("new_this_month").unwrap_or(0),
            new_in_period: count("new_in_period"),
            follow_ups_due_today: count("follow_ups_due_today").unwrap_or(0),
            follow_ups_overdue: count("follow_ups_overdue").unwrap_or(0),
        })
    }

    /// Live patients per treatment status (`group`), unordered.
    pub async fn treatment_status_counts(&self) -> Result<Vec<PatientCount>> {
        let rows = Self::run(&self.patients, dashboard_statuses()).await?;
        Ok(super::rows::patient_counts(&rows))
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
                "total",
                "new_this_week",
                "new_this_month",
                "follow_ups_due_today",
                "follow_ups_overdue"
            ]
        );
        assert_eq!(
            counts[4].1,
            doc! { "deleted_at": { "$eq": Bson::Null },
            "$and": [ { "next_follow_up": { "$lt": d(2026, 11, 23) } } ] }
        );
        assert_eq!(dashboard_counts(clock, Some(range())).len(), 6);
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
