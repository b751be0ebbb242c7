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

/// What a column's cells hold, besides [`Cell::Null`] where the column
/// allows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellKind {
    Text,
    Int,
    Decimal,
    Date,
    Money,
}

/// A column: its JSON key, its CSV header (they differ for money,
/// `amount_minor` in JSON and `amount` in major units in CSV) and what its
/// cells hold. Each report declares its columns once, as constants its
/// builder lays the table out with and the OpenAPI document types the
/// report's rows from ([`super::Kind::columns`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Column {
    pub key: &'static str,
    pub csv: &'static str,
    pub kind: CellKind,
    /// Whether a cell may be [`Cell::Null`].
    pub nullable: bool,
}

impl Column {
    const fn of(key: &'static str, kind: CellKind) -> Column {
        Column {
            key,
            csv: key,
            kind,
            nullable: false,
        }
    }

    pub const fn text(key: &'static str) -> Column {
        Column::of(key, CellKind::Text)
    }

    pub const fn int(key: &'static str) -> Column {
        Column::of(key, CellKind::Int)
    }

    pub const fn decimal(key: &'static str) -> Column {
        Column::of(key, CellKind::Decimal)
    }

    pub const fn date(key: &'static str) -> Column {
        Column::of(key, CellKind::Date)
    }

    pub const fn money(key: &'static str, csv: &'static str) -> Column {
        Column {
            csv,
            ..Column::of(key, CellKind::Money)
        }
    }

    /// The same column, with cells that may be [`Cell::Null`].
    pub const fn or_null(self) -> Column {
        Column {
            nullable: true,
            ..self
        }
    }

    /// Whether `cell` may stand in this column. A decimal that is not
    /// finite is written as null, so only a nullable column takes one.
    pub fn admits(&self, cell: &Cell) -> bool {
        let kind = match cell {
            Cell::Null => return self.nullable,
            Cell::Decimal(x) if !x.is_finite() => return self.nullable,
            Cell::Text(_) => CellKind::Text,
            Cell::Int(_) => CellKind::Int,
            Cell::Decimal(_) => CellKind::Decimal,
            Cell::Date(_) => CellKind::Date,
            Cell::Money(..) => CellKind::Money,
        };
        kind == self.kind
    }
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
        debug_assert!(
            self.columns.iter().zip(&row).all(|(c, v)| c.admits(v)),
            "a cell does not fit its column: {row:?} in {:?}",
            self.columns
        );
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
    fn a_column_admits_its_kind_and_null_only_when_nullable() {
        let share = Column::decimal("share");
        assert!(share.admits(&Cell::Decimal(0.5)));
        assert!(!share.admits(&Cell::Null));
        assert!(!share.admits(&Cell::Decimal(f64::NAN)));
        assert!(!share.admits(&Cell::Int(1)));
        let share = share.or_null();
        assert!(share.admits(&Cell::Null));
        assert!(share.admits(&Cell::Decimal(f64::NAN)));
        let amount = Column::money("amount_minor", "amount");
        assert_eq!((amount.key, amount.csv), ("amount_minor", "amount"));
        assert!(amount.admits(&Cell::Money(1, "EUR".into())));
        assert!(!amount.admits(&Cell::Int(1)));
    }

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
