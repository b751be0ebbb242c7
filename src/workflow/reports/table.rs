//! The flat table every report is laid out as: columns, and rows of typed
//! cells that the HTTP layer writes as JSON objects or CSV lines.

use chrono::NaiveDate;

use crate::repo::reports::PatientCount;

/// One value of a report row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Text(String),
    Int(i64),
    /// A ratio or average, rounded for display.
    Decimal(f64),
    Date(NaiveDate),
    /// Minor units; JSON keeps them, CSV writes major units.
    Money(i64, String),
}

/// A column: its JSON key and its CSV header (they differ for money,
/// `amount_minor` in JSON and `amount` in major units in CSV).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Column {
    pub key: &'static str,
    pub csv: &'static str,
}

pub const fn col(key: &'static str) -> Column {
    Column { key, csv: key }
}

pub const fn money(key: &'static str, csv: &'static str) -> Column {
    Column { key, csv }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn new(columns: &[Column]) -> Self {
        Table {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<Cell>) {
        debug_assert_eq!(row.len(), self.columns.len());
        self.rows.push(row);
    }
}

/// `n / of` to four places; no ratio of nothing.
pub fn ratio(n: i64, of: i64) -> Cell {
    if of == 0 {
        Cell::Null
    } else {
        Cell::Decimal((n as f64 / of as f64 * 10_000.0).round() / 10_000.0)
    }
}

/// The empty string is the "every country" row's key; it shows as null.
pub fn text_or_null(s: &str) -> Cell {
    if s.is_empty() {
        Cell::Null
    } else {
        Cell::Text(s.to_owned())
    }
}

/// By `patients` descending, then group: the repository returns some
/// groups unordered (see `repo::reports::pipelines::patients_by_disease`).
pub fn by_count_desc(mut rows: Vec<PatientCount>) -> Vec<PatientCount> {
    rows.sort_by(|a, b| {
        b.patients
            .cmp(&a.patients)
            .then_with(|| a.group.cmp(&b.group))
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_round_to_four_places_and_counts_rank_then_sort_by_name() {
        assert_eq!(ratio(1, 3), Cell::Decimal(0.3333));
        assert_eq!(ratio(1, 0), Cell::Null);
        let count = |group: &str, patients| PatientCount {
            group: group.into(),
            patients,
        };
        assert_eq!(
            by_count_desc(vec![count("b", 1), count("c", 2), count("a", 1)]),
            [count("c", 2), count("a", 1), count("b", 1)]
        );
    }
}
