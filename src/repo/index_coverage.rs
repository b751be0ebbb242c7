//! Every filter and report pipeline the repositories build, checked against
//! the indexes `migrations/` declares: the fields its filter (or its leading
//! `$match`) narrows by equality or range must include the first field of
//! a declared index, so MongoDB can walk an index instead of the
//! collection. A static check, because the local stand-in has no usable
//! `explain`. The queries that read a whole collection on purpose are
//! listed in [`BY_DESIGN`] with the reason.

use std::collections::HashMap;

use chrono::NaiveDate;
use mongodb::bson::{doc, Bson, DateTime, Document};

use super::{
    appointments::CalendarFilter,
    patients::{PatientFilter, PatientsRepo},
    reports::{pipelines, Clock, Range},
    treatments::{summary_pipeline, EarningsFilter, TreatmentListFilter},
};
use crate::{
    domain::{
        patient::{PatientStatus, TreatmentStatus},
        HospitalId, UserId,
    },
    migrate,
};

/// Queries that read every live document of their collection on purpose.
const BY_DESIGN: [(&str, &str); 3] = [
    (
        "live patients only",
        "the dashboard's totals and all-time groups: counts over every live \
         patient, kept in the report cache (docs/scale.md, rollups)",
    ),
    (
        "search only",
        "an unanchored $regex: no index serves it on either server \
         (docs/scale.md, section 9)",
    ),
    (
        "deleted patients",
        "the restore screen walks created_at order and filters \
         (docs/scale.md, section 9)",
    ),
];

/// The first field of each declared index, per collection.
fn leading_fields() -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for spec in migrate::specs().expect("migrations parse") {
        let fields = out.entry(spec.collection.clone()).or_default();
        fields.push("_id".into());
        for index in &spec.indexes {
            if let Some((first, _)) = index.key.iter().next() {
                fields.push(first.clone());
            }
        }
    }
    out
}

/// The fields `filter` narrows by equality or range: its top-level fields
/// and those of its top-level `$and` clauses, leaving out `$regex`
/// conditions (no index serves an unanchored one) and `$ne`.
fn narrowing_fields(filter: &Document) -> Vec<String> {
    let mut out = Vec::new();
    for (key, value) in filter {
        if key == "$and" {
            if let Bson::Array(clauses) = value {
                for clause in clauses.iter().filter_map(Bson::as_document) {
                    out.extend(narrowing_fields(clause));
                }
            }
            continue;
        }
        if key.starts_with('$') {
            continue;
        }
        let unindexable = value
            .as_document()
            .is_some_and(|c| c.contains_key("$regex") || c.contains_key("$ne"));
        if !unindexable {
            out.push(key.clone());
        }
    }
    out
}

/// Whether `filter` on `collection` can walk a declared index. Matching
/// only `deleted_at` (nearly always null) does not count: no index has it.
fn covered(indexes: &HashMap<String, Vec<String>>, collection: &str, filter: &Document) -> bool {
    let leading = indexes
        .get(collection)
        .unwrap_or_else(|| panic!("{collection} has no migration"));
    narrowing_fields(filter).iter().any(|f| leading.contains(f))
}

fn leading_match(pipeline: &[Document]) -> Document {
    pipeline
        .first()
        .and_then(|s| s.get_document("$match").ok())
        .cloned()
        .unwrap_or_default()
}

fn day(y: i32, m: u32, d: u32) -> DateTime {
    crate::domain::dates::date_to_bson(NaiveDate::from_ymd_opt(y, m, d).expect("date"))
}

fn range() -> Range {
    Range {
        from: Some(day(2026, 1, 1)),
        before: Some(day(2026, 7, 1)),
    }
}

/// Every patient list filter the API can build, one narrowing field at a
/// time (the combinations only add fields).
fn patient_filters() -> Vec<(&'static str, PatientFilter)> {
    let base = PatientFilter::default;
    vec![
        (
            "country",
            PatientFilter {
                country: Some("DE".into()),
                ..base()
            },
        ),
        (
            "disease",
            PatientFilter {
                disease: Some("asthma".into()),
                ..base()
            },
        ),
        (
            "status",
            PatientFilter {
                status: Some(PatientStatus::New),
                ..base()
            },
        ),
        (
            "treatment status",
            PatientFilter {
                treatment_status: Some(TreatmentStatus::Ready),
                ..base()
            },
        ),
        (
            "hospital",
            PatientFilter {
                hospital_id: Some(HospitalId::new()),
                ..base()
            },
        ),
        (
            "registered by",
            PatientFilter {
                created_by: Some(UserId::new()),
                ..base()
            },
        ),
        (
            "assigned to",
            PatientFilter {
                assigned_to: Some(UserId::new()),
                ..base()
            },
        ),
        (
            "registered from",
            PatientFilter {
                created_from: Some(day(2026, 1, 1)),
                ..base()
            },
        ),
        (
            "registered before",
            PatientFilter {
                created_before: Some(day(2026, 1, 1)),
                ..base()
            },
        ),
        (
            "search and country",
            PatientFilter {
                q: Some("smith".into()),
                country: Some("DE".into()),
                ..base()
            },
        ),
    ]
}

#[test]
fn every_narrowing_filter_leads_with_an_indexed_field() {
    let indexes = leading_fields();
    let mut uncovered = Vec::new();
    let mut check = |what: String, collection: &str, filter: Document| {
        if !covered(&indexes, collection, &filter) {
            uncovered.push(format!("{what} on {collection}: {filter}"));
        }
    };

    for (what, f) in patient_filters() {
        check(
            format!("patient list by {what}"),
            "patients",
            PatientsRepo::filter(&f),
        );
    }

    // Reports over a period: each leading $match narrows by its period
    // field.
    let r = range();
    let today = NaiveDate::from_ymd_opt(2026, 7, 1).expect("date");
    let reports: Vec<(&str, &str, Vec<Document>)> = vec![
        ("earnings", "earnings", pipelines::earnings(r)),
        (
            "patients-by-disease",
            "patients",
            pipelines::patients_by_disease(r, None),
        ),
        (
            "patients-by-country",
            "patients",
            pipelines::patients_by_country(r, None),
        ),
        (
            "patients-by-status",
            "patients",
            pipelines::patients_by_status(r, None),
        ),
        (
            "patients-by-age",
            "patients",
            pipelines::patients_by_age(r, None, today),
        ),
        (
            "hospital patients",
            "patients",
            pipelines::hospital_patients(r),
        ),
        (
            "hospital treatments",
            "treatments",
            pipelines::hospital_treatments(r),
        ),
        (
            "hospital earnings",
            "earnings",
            pipelines::hospital_earnings(r),
        ),
        (
            "treatments-by-type",
            "treatments",
            pipelines::treatments_by_type(r),
        ),
        (
            "funnel stages",
            "patients",
            pipelines::funnel_stages(r, Some("DE")),
        ),
        (
            "funnel reasons",
            "patients",
            pipelines::funnel_reasons(r, None),
        ),
        (
            "dashboard earnings",
            "earnings",
            super::reports::dashboard::earnings_by_currency(r),
        ),
        (
            "dashboard top countries",
            "patients",
            super::reports::dashboard::dashboard_top_countries(Some(r)),
        ),
        (
            "dashboard conditions",
            "patients",
            super::reports::dashboard::dashboard_diseases(Some(r)),
        ),
    ];
    for (what, collection, pipeline) in reports {
        check(
            format!("report {what}"),
            collection,
            leading_match(&pipeline),
        );
    }

    // The ledger list and its summary, by period and by hospital.
    let ledger = [
        EarningsFilter {
            from: Some(day(2026, 1, 1)),
            before: None,
            hospital_id: None,
        },
        EarningsFilter {
            from: None,
            before: None,
            hospital_id: Some(HospitalId::new()),
        },
    ];
    for f in &ledger {
        check("ledger list".into(), "earnings", f.document());
        check(
            "earnings summary".into(),
            "earnings",
            leading_match(&summary_pipeline(f.document())),
        );
    }

    // The daily screens' lists across patients, over a period.
    let calendar = CalendarFilter {
        from: Some(day(2026, 7, 1)),
        before: Some(day(2026, 7, 8)),
        ..CalendarFilter::default()
    };
    check(
        "appointment calendar".into(),
        "appointments",
        calendar.document(),
    );
    let treatments = TreatmentListFilter {
        from: Some(day(2026, 6, 1)),
        ..TreatmentListFilter::default()
    };
    check("treatment list".into(), "treatments", treatments.document());

    // A patient's deletion marks, set and cleared in the delete's and the
    // restore's transactions (and the doctor's repair).
    for collection in ["appointments", "treatments"] {
        for deleted in [true, false] {
            check(
                format!("deletion marks (deleted: {deleted})"),
                collection,
                super::patient_deleted_filter(crate::domain::PatientId::new(), deleted),
            );
        }
    }

    // The dashboard's counts, except the total (below).
    let clock = Clock {
        today: day(2026, 7, 1),
        tomorrow: day(2026, 7, 2),
        week_start: day(2026, 6, 29),
        month_start: day(2026, 7, 1),
        year_start: day(2026, 1, 1),
    };
    for (name, filter) in super::reports::dashboard::dashboard_counts(clock, Some(r)) {
        check(format!("dashboard count {name}"), "patients", filter);
    }

    assert!(
        uncovered.is_empty(),
        "no declared index leads:\n{}",
        uncovered.join("\n")
    );
}

/// The queries left out above read a whole collection on purpose; if one
/// of them gains an indexed field, it belongs in the check instead.
#[test]
fn the_whole_collection_reads_are_the_ones_named() {
    let indexes = leading_fields();
    let reads = [
        (
            "live patients only",
            PatientsRepo::filter(&PatientFilter::default()),
        ),
        (
            "search only",
            PatientsRepo::filter(&PatientFilter {
                q: Some("smith".into()),
                ..Default::default()
            }),
        ),
        (
            "deleted patients",
            PatientsRepo::filter(&PatientFilter {
                deleted: true,
                ..Default::default()
            }),
        ),
    ];
    for (what, filter) in reads {
        assert!(
            BY_DESIGN.iter().any(|(name, _)| *name == what),
            "{what} is named in BY_DESIGN"
        );
        assert!(!covered(&indexes, "patients", &filter), "{what}: {filter}");
    }
    // The dashboard's statuses (and, summed, its total) read every live
    // patient.
    let statuses = super::reports::dashboard::dashboard_statuses();
    let live = statuses[0]
        .get_document("$match")
        .expect("a leading $match");
    assert!(!covered(&indexes, "patients", live));
    assert_eq!(live, &doc! { "deleted_at": { "$eq": Bson::Null } });
}

#[test]
fn the_check_itself_tells_covered_from_not() {
    let indexes = leading_fields();
    assert!(covered(
        &indexes,
        "patients",
        &doc! { "country": { "$eq": "DE" } }
    ));
    assert!(covered(
        &indexes,
        "patients",
        &doc! { "$and": [ { "created_at": { "$gte": day(2026, 1, 1) } } ] }
    ));
    assert!(!covered(
        &indexes,
        "patients",
        &doc! { "search_text": { "$regex": "x" } }
    ));
    assert!(!covered(&indexes, "patients", &doc! { "source": "web" }));
    assert!(
        !covered(&indexes, "treatments", &doc! { "status": "completed" }),
        "not leading"
    );
}
