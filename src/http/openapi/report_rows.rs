//! The schema of each report's rows in the OpenAPI document, typed from
//! the columns the report builders lay their tables out with, so the two
//! cannot drift: `FunnelReportRow`, ... as components, and
//! `ReportResponse.rows` as a `oneOf` of them.

use crate::workflow::reports::{CellKind, Column, Kind};

#[cfg(doc)]
use crate::http::routes::reports::cell_json;

/// The schema of a column's JSON values, after [`cell_json`].
fn cell_schema(c: &Column) -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, SchemaType, Type};
    let (ty, format, description) = match c.kind {
        CellKind::Text => (Type::String, None, None),
        CellKind::Int => (Type::Integer, Some(KnownFormat::Int64), None),
        CellKind::Decimal => (
            Type::Number,
            Some(KnownFormat::Double),
            Some("Rounded: ratios to four places, days to one"),
        ),
        CellKind::Date => (Type::String, Some(KnownFormat::Date), None),
        CellKind::Money => (
            Type::Integer,
            Some(KnownFormat::Int64),
            Some("Minor units (cents) of the row's `currency`; the CSV form gives major units"),
        ),
    };
    let ty: SchemaType = if c.nullable {
        [ty, Type::Null].into_iter().collect()
    } else {
        ty.into()
    };
    ObjectBuilder::new()
        .schema_type(ty)
        .format(format.map(SchemaFormat::KnownFormat))
        .description(description)
        .build()
}

/// `FunnelReportRow` for `funnel`: the component schema of a report's rows.
pub fn row_schema_name(kind: Kind) -> String {
    let words = kind.name().split('-').map(|w| {
        let mut cs = w.chars();
        cs.next()
            .map(|c| c.to_ascii_uppercase().to_string() + cs.as_str())
            .unwrap_or_default()
    });
    format!("{}ReportRow", words.collect::<String>())
}

fn row_description(kind: Kind) -> &'static str {
    match kind {
        Kind::Earnings => {
            "Net earnings in one period (`period_start`: the first day of the week, \
             month or year) and currency; every period of the range has a row per \
             currency seen"
        }
        Kind::PatientsByDisease => {
            "Patients with one condition; `share` of the patients with any condition"
        }
        Kind::PatientsByCountry => {
            "Patients of one country, and how many of them completed a treatment"
        }
        Kind::PatientsByStatus => "Patients with one status and treatment status",
        Kind::PatientsByAge => "Patients in one age band, of one country (`country` null: all)",
        Kind::HospitalPerformance => {
            "One hospital in one currency; a hospital with no money has one row with \
             `currency`, `revenue_minor` and `earnings_minor` null. \
             `avg_days_to_complete` is null while none of its patients has completed"
        }
        Kind::TreatmentsByType => "Treatments of one type in one currency",
        Kind::Funnel => {
            "Patients of one country (`country` null: all) who reached one stage \
             (`reason` null), or who are denied for one reason (`stage` `denied`); \
             `share_of_previous` is null for the first stage"
        }
    }
}

/// The schema of one report's rows, from the columns its builder uses.
fn row_schema(kind: Kind) -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
    let mut row = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(row_description(kind)))
        .additional_properties(Some(AdditionalProperties::FreeForm(false)));
    for c in kind.columns() {
        row = row.property(c.key, cell_schema(c)).required(c.key);
    }
    row.build()
}

/// Every report's row schema under its [`row_schema_name`], for the
/// document's components.
pub fn row_schemas() -> impl Iterator<Item = (String, utoipa::openapi::Object)> {
    Kind::ALL
        .into_iter()
        .map(|k| (row_schema_name(k), row_schema(k)))
}

/// `rows` in the document: each is one of the reports' row schemas.
pub fn rows() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::{
        schema::{ArrayBuilder, OneOfBuilder},
        Ref,
    };
    let one_of = Kind::ALL.into_iter().fold(OneOfBuilder::new(), |o, k| {
        o.item(Ref::from_schema_name(row_schema_name(k)))
    });
    ArrayBuilder::new().items(one_of).build()
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::{http::routes::reports::cell_json, workflow::reports::Cell};

    #[test]
    fn each_report_has_a_row_schema_of_its_columns_typed_as_written() {
        assert_eq!(
            row_schema_name(Kind::PatientsByAge),
            "PatientsByAgeReportRow"
        );
        for kind in Kind::ALL {
            let schema = serde_json::to_value(row_schema(kind)).expect("schema");
            let keys: Vec<&str> = kind.columns().iter().map(|c| c.key).collect();
            assert_eq!(schema["required"], serde_json::json!(keys), "{kind:?}");
            assert_eq!(schema["additionalProperties"], false);
            for c in kind.columns() {
                let sample = match c.kind {
                    CellKind::Text => Cell::Text("x".into()),
                    CellKind::Int => Cell::Int(1),
                    CellKind::Decimal => Cell::Decimal(0.5),
                    CellKind::Date => Cell::Date(chrono::NaiveDate::MIN),
                    CellKind::Money => Cell::Money(1, "EUR".into()),
                };
                let json_type = match cell_json(&sample) {
                    Value::String(_) => "string",
                    Value::Number(n) if n.is_i64() => "integer",
                    Value::Number(_) => "number",
                    other => panic!("{other:?}"),
                };
                let want = if c.nullable {
                    serde_json::json!([json_type, "null"])
                } else {
                    serde_json::json!(json_type)
                };
                assert_eq!(schema["properties"][c.key]["type"], want, "{}", c.key);
            }
        }
    }
}
