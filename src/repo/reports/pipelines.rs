//! The eight period reports' aggregation pipelines, each built by a pure
//! function (unit-tested below) so its shape can be read and checked
//! without a server.

use chrono::{Months, NaiveDate};
use mongodb::bson::{doc, Bson, Document};

use super::{booked_in, booked_match, live_in, recorded_match, Range};
use crate::{
    domain::patient::TreatmentStatus,
    repo::{patients, treatments},
};

/// Live (not soft-deleted) patients registered in `range`, optionally from
/// one country.
pub fn patients_match(range: Range, country: Option<&str>) -> Document {
    let mut m = live_in(patients::CREATED_MS, range.from, range.before);
    if let Some(c) = country {
        m.insert("country", c);
    }
    doc! { "$match": m }
}

/// `$concat` of several string expressions with `|` between them.
fn key(parts: &[Bson]) -> Bson {
    let mut items = Vec::with_capacity(parts.len() * 2);
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            items.push(Bson::String("|".into()));
        }
        // A missing field would make the whole `$concat` null.
        items.push(Bson::Document(doc! { "$ifNull": [p.clone(), ""] }));
    }
    Bson::Document(doc! { "$concat": items })
}

/// A `$group` on the `|`-joined key of `parts`, with the key made by a
/// `$project` first: the stand-in groups on a plain field in SQL but on a
/// `$concat` expression in Python, 10x slower (docs/mongodb-compatibility.md).
/// Where the parts are the same for every report, the key is stored with
/// the document instead (the treatments' and the ledger's).
fn group_on_key(parts: &[Bson], mut group: Document) -> [Document; 2] {
    group.insert("_id", "$k");
    [
        doc! { "$project": { "k": key(parts) } },
        doc! { "$group": group },
    ]
}

fn field(path: &str) -> Bson {
    Bson::String(format!("${path}"))
}

/// `$cond` in its object form: the stand-in runs it in SQL and the array
/// form (`[if, then, else]`) in Python, 10x slower (docs/mongodb-compatibility.md);
/// MongoDB reads both the same.
fn cond(r#if: impl Into<Bson>, then: impl Into<Bson>, r#else: impl Into<Bson>) -> Document {
    doc! { "$cond": { "if": r#if.into(), "then": then.into(), "else": r#else.into() } }
}

fn count_if(test: Document) -> Document {
    doc! { "$sum": cond(test, 1, 0) }
}

/// The main funnel stages in order; `denied` branches off it.
pub const FUNNEL: [TreatmentStatus; 4] = [
    TreatmentStatus::Inquiry,
    TreatmentStatus::Ready,
    TreatmentStatus::Coming,
    TreatmentStatus::Completed,
];

/// True when the patient reached `stage` or a later main stage (a patient
/// registered as `coming` has passed `ready`). Documents written before
/// `reached` existed count by their current status.
pub fn reached_expr(stage: TreatmentStatus) -> Document {
    let statuses: Vec<Bson> = if stage == TreatmentStatus::Denied {
        vec![Bson::String("denied".into())]
    } else {
        FUNNEL
            .iter()
            .skip_while(|s| **s != stage)
            .map(|s| Bson::String(s.as_str().into()))
            .collect()
    };
    let mut any: Vec<Bson> = statuses
        .iter()
        .map(|s| Bson::Document(doc! { "$in": [s.clone(), { "$ifNull": ["$reached", []] }] }))
        .collect();
    any.push(Bson::Document(
        doc! { "$in": ["$treatment_status", statuses] },
    ));
    doc! { "$or": any }
}

/// [`FUNNEL`] then `denied`: the order of a funnel row's stage counts.
pub const STAGES: [TreatmentStatus; 5] = [
    FUNNEL[0],
    FUNNEL[1],
    FUNNEL[2],
    FUNNEL[3],
    TreatmentStatus::Denied,
];

/// Earnings series: net amount and net treatment count per period start
/// and currency, from the ledger (reversals are negative entries).
pub fn earnings(range: Range) -> Vec<Document> {
    crate::repo::treatments::summary_pipeline(booked_in(range))
}

/// Patients per condition list: the caller counts each list's patients
/// once under each condition in it ([`super::rows::condition_counts`]), so
/// a patient with two conditions counts in both and a condition listed
/// twice counts once. Grouped on the list itself because `$unwind` makes
/// the stand-in copy every whole patient document once per condition (0.4 s
/// at 10,000 patients, against 0.08 s for this); the lists are few (one per
/// combination of conditions). The number of patients the shares are of is
/// counted apart, with [`patients_filter`].
pub fn patients_by_disease(range: Range, country: Option<&str>) -> Vec<Document> {
    condition_lists(patients_match(range, country))
}

/// `matched` then a group per whole `medical_history_lower` list.
pub fn condition_lists(matched: Document) -> Vec<Document> {
    vec![
        matched,
        doc! { "$group": { "_id": "$medical_history_lower", "n": { "$sum": 1 } } },
    ]
}

/// The filter of [`patients_match`], for a `count` of the same patients.
pub fn patients_filter(range: Range, country: Option<&str>) -> Document {
    patients_match(range, country)
        .get_document("$match")
        .cloned()
        .unwrap_or_default()
}

/// Patients per country, and how many of them completed a treatment.
pub fn patients_by_country(range: Range, country: Option<&str>) -> Vec<Document> {
    vec![
        patients_match(range, country),
        doc! { "$group": {
            "_id": "$country",
            "patients": { "$sum": 1 },
            "completed": count_if(reached_expr(TreatmentStatus::Completed)),
        } },
        doc! { "$sort": { "patients": -1, "_id": 1 } },
    ]
}

/// Patients per `status|treatment_status`.
pub fn patients_by_status(range: Range, country: Option<&str>) -> Vec<Document> {
    let [project, group] = group_on_key(
        &[field("status"), field("treatment_status")],
        doc! { "patients": { "$sum": 1 } },
    );
    vec![
        patients_match(range, country),
        project,
        group,
        doc! { "$sort": { "_id": 1 } },
    ]
}

/// Age bands, youngest first, with the lowest age in each.
pub const AGE_BANDS: [(&str, u32); 5] = [
    ("0-17", 0),
    ("18-34", 18),
    ("35-49", 35),
    ("50-64", 50),
    ("65+", 65),
];
pub const AGE_UNKNOWN: &str = "unknown";

/// The latest birth date of someone at least `years` old on `today`; a
/// cut-off before chrono's calendar is its first day, which no stored
/// date of birth precedes.
fn born_by(today: NaiveDate, years: u32) -> String {
    years
        .checked_mul(12)
        .and_then(|months| today.checked_sub_months(Months::new(months)))
        .unwrap_or(NaiveDate::MIN)
        .format("%Y-%m-%d")
        .to_string()
}

/// Patients per `country|band`. The band comes from the date of birth when
/// there is one (exact on `today`), else from the age given at registration.
/// The key is made by one `$project` from the stored `birth_day`
/// (`repo::patients::birth_day`), compared with the cut-off days as text.
pub fn patients_by_age(range: Range, country: Option<&str>, today: NaiveDate) -> Vec<Document> {
    let mut by_day = Vec::new();
    let mut by_age = Vec::new();
    for (band, min) in AGE_BANDS.iter().rev() {
        by_day.push(Bson::Document(doc! {
            "case": { "$lte": ["$birth_day", born_by(today, *min)] }, "then": *band,
        }));
        by_age.push(Bson::Document(doc! {
            "case": { "$gte": [{ "$ifNull": ["$age", -1] }, i64::from(*min)] }, "then": *band,
        }));
    }
    let band = cond(
        doc! { "$eq": [{ "$ifNull": ["$birth_day", ""] }, ""] },
        doc! { "$switch": { "branches": by_age, "default": AGE_UNKNOWN } },
        doc! { "$switch": { "branches": by_day, "default": AGE_UNKNOWN } },
    );
    vec![
        patients_match(range, country),
        doc! { "$project": { "k": { "$concat": [
            { "$ifNull": ["$country", ""] }, "|", band,
        ] } } },
        doc! { "$group": { "_id": "$k", "patients": { "$sum": 1 } } },
        doc! { "$sort": { "_id": 1 } },
    ]
}

/// Per hospital: live patients registered in the period and now assigned
/// to it, how many of them completed, and the total hours from inquiry
/// (registration) to first completion of those. Summed and counted rather
/// than `$avg`: the stand-in averages a null `$dateDiff` as 0.
pub fn hospital_patients(range: Range) -> Vec<Document> {
    let completed = doc! { "$in": ["completed", { "$ifNull": ["$reached", []] }] };
    let hours = doc! { "$dateDiff": {
    "startDate": "$created_at", "endDate": "$completed_at", "unit": "hour" } };
    // The group key and both figures made by a `$project`, then summed as
    // plain fields: grouping on the `$ifNull` expression kept the stand-in
    // on its slow path (2.1 s -> 0.3 s over 10,000 patients).
    vec![
        patients_match(range, None),
        doc! { "$project": {
            "h": { "$ifNull": ["$hospital_id", ""] },
            "done": cond(completed.clone(), 1, 0),
            "hours": cond(completed, hours, 0),
        } },
        doc! { "$group": {
            "_id": "$h",
            "patients": { "$sum": 1 },
            "completed": { "$sum": "$done" },
            "hours_to_complete": { "$sum": "$hours" },
        } },
    ]
}

/// Treatments recorded in the period per `hospital|status|currency` (the
/// stored `by_hospital`), with their total cost.
pub fn hospital_treatments(range: Range) -> Vec<Document> {
    vec![
        recorded_match(range),
        doc! { "$group": {
            "_id": format!("${}", treatments::BY_HOSPITAL),
            "treatments": { "$sum": 1 },
            "cost_minor": { "$sum": "$cost.amount_minor" },
        } },
    ]
}

/// Net ledger earnings booked in the period per `hospital|currency` (the
/// stored `hospital_currency`).
pub fn hospital_earnings(range: Range) -> Vec<Document> {
    vec![
        booked_match(range),
        doc! { "$group": {
            "_id": format!("${}", treatments::HOSPITAL_CURRENCY),
            "amount_minor": { "$sum": "$amount_minor" },
        } },
    ]
}

/// Treatments recorded in the period per `status|currency|type` (the
/// stored `by_type`): how many, their cost and their earnings. The
/// repository folds the statuses into the report's columns. Plain sums of
/// plain fields: the stand-in runs that in SQL, and a `$cond` per
/// treatment in each sum took it three times as long.
pub fn treatments_by_type(range: Range) -> Vec<Document> {
    vec![
        recorded_match(range),
        doc! { "$group": {
            "_id": format!("${}", treatments::BY_TYPE),
            "treatments": { "$sum": 1 },
            "cost_minor": { "$sum": "$cost.amount_minor" },
            "earnings_minor": { "$sum": "$earnings.amount_minor" },
        } },
    ]
}

/// The funnel per country: how many reached each stage, and were ever
/// denied. Two pipelines rather than one `$facet`: the stand-in copies a
/// `$facet`'s input through Python (docs/mongodb-compatibility.md).
pub fn funnel_stages(range: Range, country: Option<&str>) -> Vec<Document> {
    let mut stages = doc! { "_id": "$country" };
    for s in FUNNEL
        .iter()
        .chain(std::iter::once(&TreatmentStatus::Denied))
    {
        stages.insert(s.as_str(), count_if(reached_expr(*s)));
    }
    vec![
        patients_match(range, country),
        doc! { "$group": stages },
        doc! { "$sort": { "_id": 1 } },
    ]
}

/// The reasons of the patients denied now, per `country|reason`.
pub fn funnel_reasons(range: Range, country: Option<&str>) -> Vec<Document> {
    let mut m = patients_match(range, country);
    if let Ok(filter) = m.get_document_mut("$match") {
        filter.insert("treatment_status", "denied");
    }
    let [project, group] = group_on_key(
        &[field("country"), field("denial_reason")],
        doc! { "patients": { "$sum": 1 } },
    );
    vec![m, project, group, doc! { "$sort": { "_id": 1 } }]
}

#[cfg(test)]
mod tests {
    use chrono::Datelike;
    use proptest::prelude::*;

    use super::*;
    use crate::repo::reports::testing::{range, stage_names};

    /// The leading `$match` bounds the period field, a time in ms, with one
    /// range, and excludes soft-deleted patients where `live`.
    fn assert_leading_period_match(p: &[Document], field: &str, live: bool) {
        let m = p[0].get_document("$match").expect("leading $match");
        assert_eq!(
            m.get_document(field),
            Ok(&doc! { "$gte": 1_000_i64, "$lt": 2_000_i64 })
        );
        assert_eq!(m.contains_key("deleted_at"), live);
        assert!(!m.contains_key("$and"), "no date clauses: {m}");
    }

    #[test]
    fn every_pipeline_opens_with_a_match_on_its_period_field() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 23).expect("date");
        for p in [
            patients_by_disease(range(), None),
            patients_by_country(range(), None),
            patients_by_status(range(), None),
            patients_by_age(range(), None, today),
            hospital_patients(range()),
            funnel_stages(range(), None),
            funnel_reasons(range(), None),
        ] {
            assert_leading_period_match(&p, "created_ms", true);
        }
        for p in [hospital_treatments(range()), treatments_by_type(range())] {
            assert_leading_period_match(&p, "created_ms", false);
        }
        for p in [hospital_earnings(range()), earnings(range())] {
            assert_leading_period_match(&p, "booked_ms", false);
        }
    }

    #[test]
    fn an_open_range_matches_everything_live() {
        let p = patients_by_status(Range::default(), Some("DE"));
        assert_eq!(
            p[0],
            doc! { "$match": { "deleted_at": { "$eq": Bson::Null }, "country": "DE" } }
        );
        assert_eq!(
            hospital_earnings(Range::default())[0],
            doc! { "$match": {} }
        );
    }

    #[test]
    fn group_keys_are_plain_fields_made_by_a_project() {
        let p = patients_by_status(Range::default(), None);
        assert_eq!(stage_names(&p), ["$match", "$project", "$group", "$sort"]);
        let k = p[1]
            .get_document("$project")
            .expect("project")
            .get_document("k")
            .expect("k");
        assert_eq!(
            k,
            &doc! { "$concat": [
                { "$ifNull": ["$status", ""] }, "|", { "$ifNull": ["$treatment_status", ""] },
            ] }
        );
        let group = p[2].get_document("$group").expect("group");
        assert_eq!(group.get_str("_id"), Ok("$k"));
        // The treatments and the ledger group on keys stored with them.
        for (p, stored) in [
            (hospital_treatments(Range::default()), "$by_hospital"),
            (treatments_by_type(Range::default()), "$by_type"),
            (hospital_earnings(Range::default()), "$hospital_currency"),
        ] {
            assert_eq!(stage_names(&p), ["$match", "$group"]);
            let g = p[1].get_document("$group").expect("group");
            assert_eq!(g.get_str("_id"), Ok(stored));
        }
    }

    #[test]
    fn disease_counts_each_condition_once_per_patient() {
        let p = patients_by_disease(Range::default(), Some("DE"));
        assert_eq!(stage_names(&p), ["$match", "$group"]);
        assert_eq!(
            p[1].get_document("$group").expect("group").get_str("_id"),
            Ok("$medical_history_lower")
        );
        assert_eq!(
            &patients_filter(Range::default(), Some("DE")),
            p[0].get_document("$match").expect("match"),
            "the count is of the same patients"
        );
        // The lists as MongoDB gives them (arrays) and as the stand-in does
        // (JSON text), a list naming a condition twice, an empty list, a
        // missing one and a plain string.
        let rows = [
            doc! { "_id": ["asthma", "gout"], "n": 3 },
            doc! { "_id": "[\"gout\",\"gout\"]", "n": 2 },
            doc! { "_id": [], "n": 7 },
            doc! { "_id": Bson::Null, "n": 1 },
            doc! { "_id": "[not json", "n": 4 },
        ];
        let mut counts: Vec<(String, i64)> = super::super::rows::condition_counts(&rows)
            .into_iter()
            .map(|c| (c.group, c.patients))
            .collect();
        counts.sort();
        assert_eq!(
            counts,
            [
                ("[not json".to_owned(), 4),
                ("asthma".to_owned(), 3),
                ("gout".to_owned(), 5)
            ]
        );
    }

    #[test]
    fn reaching_a_stage_includes_later_stages() {
        let e = reached_expr(TreatmentStatus::Ready);
        let any = e.get_array("$or").expect("$or");
        // ready, coming, completed in `reached`, or the current status.
        assert_eq!(any.len(), 4);
        assert_eq!(
            any[3].as_document().expect("doc"),
            &doc! { "$in": ["$treatment_status", ["ready", "coming", "completed"]] }
        );
        let denied = reached_expr(TreatmentStatus::Denied);
        assert_eq!(denied.get_array("$or").expect("$or").len(), 2);
    }

    #[test]
    fn age_bands_are_exact_birth_date_cut_offs() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 23).expect("date");
        assert_eq!(born_by(today, 18), "2008-11-23");
        assert_eq!(born_by(today, 0), "2026-11-23");
        // A leap day clamps to the 28th in a common year.
        let leap = NaiveDate::from_ymd_opt(2028, 2, 29).expect("date");
        assert_eq!(born_by(leap, 1), "2027-02-28");
        let p = patients_by_age(Range::default(), None, today);
        assert_eq!(stage_names(&p), ["$match", "$project", "$group", "$sort"]);
        let key = p[1]
            .get_document("$project")
            .expect("project")
            .get_document("k")
            .expect("k")
            .get_array("$concat")
            .expect("concat");
        let by_dob = key[2]
            .as_document()
            .expect("band")
            .get_document("$cond")
            .expect("cond")
            .get_document("else")
            .expect("else")
            .get_document("$switch")
            .expect("switch")
            .get_array("branches")
            .expect("branches");
        // Oldest band first, so the first matching cut-off wins.
        assert_eq!(
            by_dob[0].as_document().expect("doc"),
            &doc! { "case": { "$lte": ["$birth_day", "1961-11-23"] }, "then": "65+" }
        );
        assert_eq!(by_dob.len(), AGE_BANDS.len());
    }

    proptest! {
        #[test]
        fn age_cut_offs_never_panic(
            days in NaiveDate::MIN.num_days_from_ce()..=NaiveDate::MAX.num_days_from_ce(),
            years in any::<u32>(),
        ) {
            let Some(today) = NaiveDate::from_num_days_from_ce_opt(days) else {
                return Ok(());
            };
            let cut = born_by(today, years);
            prop_assert!(!cut.is_empty());
            if (1900..=2200).contains(&today.year()) && years <= 130 {
                let parsed = NaiveDate::parse_from_str(&cut, "%Y-%m-%d");
                prop_assert!(parsed.is_ok_and(|d| d <= today), "{}", cut);
            }
            let _ = patients_by_age(Range::default(), Some("DE"), today);
        }
    }

    #[test]
    fn treatments_by_type_groups_plain_sums_per_status() {
        let p = treatments_by_type(Range::default());
        let g = p[1].get_document("$group").expect("group");
        assert_eq!(
            g.get_document("cost_minor"),
            Ok(&doc! { "$sum": "$cost.amount_minor" })
        );
        assert_eq!(
            g.get_document("earnings_minor"),
            Ok(&doc! { "$sum": "$earnings.amount_minor" })
        );
        // No `$cond` left: every accumulator sums a plain field or 1.
        for (name, acc) in g.iter().filter(|(k, _)| *k != "_id") {
            let sum = acc.as_document().and_then(|d| d.get("$sum")).expect(name);
            assert!(sum.as_document().is_none(), "{name}: {sum}");
        }
    }
}
