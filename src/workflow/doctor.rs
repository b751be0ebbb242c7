//! The consistency checker: the invariants that span collections, checked
//! over the whole database, with the safe repairs.
//!
//! Transactions make each workflow all-or-nothing on MongoDB. Two cases
//! are still worth a check: a database that did not roll back a dead
//! process's transaction (the local stand-in keeps such writes), and data
//! written before transactions or by hand. The checker reads everything
//! once, prints each violation, and with `repair` books missing ledger
//! entries (idempotently, like a completion does) and sets the deletion
//! marks of appointments and treatments from their patient; everything
//! else it only reports, because fixing it needs a person's judgement.

use std::collections::{HashMap, HashSet};

use futures::TryStreamExt;
use mongodb::bson::Bson;

use super::{follow, treatments, Ctx};
use crate::{
    domain::{
        patient::{Patient, TreatmentStatus},
        treatment::{EntryKind, Treatment},
        HospitalId, PatientId, TreatmentId, UserId,
    },
    error::Result,
    transaction,
};

/// One broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Stable name of the invariant, e.g. `missing_credit`.
    pub kind: &'static str,
    /// What and where, for a person.
    pub detail: String,
    /// The checker can fix it safely (and did, when repairing).
    pub repairable: bool,
}

/// What a check found, and what a repair did.
#[derive(Debug, Default)]
pub struct Report {
    pub violations: Vec<Violation>,
    pub repaired: Vec<String>,
    pub treatments: usize,
    pub patients: usize,
}

impl Report {
    /// Violations the repair did not (or could not) fix.
    pub fn remaining(&self) -> usize {
        let fixed = if self.repaired.is_empty() {
            0
        } else {
            self.violations.iter().filter(|v| v.repairable).count()
        };
        self.violations.len() - fixed
    }
}

/// A record (`what` `id`) whose patient does not exist, deleted or not.
fn missing_patient(what: &str, id: &dyn std::fmt::Display, patient: PatientId) -> Violation {
    violation(
        "missing_patient",
        format!("{what} {id} belongs to patient {patient}, which does not exist"),
        false,
    )
}

fn violation(kind: &'static str, detail: String, repairable: bool) -> Violation {
    Violation {
        kind,
        detail,
        repairable,
    }
}

/// Checks every invariant; with `repair`, books the ledger entries that are
/// missing and sets disagreeing deletion marks from their patient.
/// (`Report::remaining` then counts every repairable violation as fixed,
/// also one whose patient disappeared before its repair: the next check
/// shows it.)
pub async fn check(ctx: &Ctx, repair: bool) -> Result<Report> {
    let mut report = Report::default();
    let hospitals: HashSet<HospitalId> = ctx
        .repos
        .hospitals
        .all()
        .await?
        .into_iter()
        .map(|h| h.id)
        .collect();
    let users: HashSet<UserId> = ctx.repos.users.all_ids().await?.into_iter().collect();
    let patients = check_patients(ctx, &hospitals, &users, &mut report).await?;
    let short = check_ledger(ctx, &hospitals, &patients.all, &mut report).await?;
    check_appointments(ctx, &hospitals, &patients.all, &mut report).await?;
    let marks = check_marks(ctx, &patients, &mut report).await?;
    if repair {
        for t in short {
            transaction!(ctx, |tx| treatments::settle(ctx, &mut tx, &t).await)?;
            report.repaired.push(format!(
                "booked the missing ledger entries of treatment {}",
                t.id
            ));
        }
        for id in marks {
            let marked = transaction!(ctx, |tx| remark(ctx, &mut tx, id).await)?;
            report
                .repaired
                .extend(marked.map(|(deleted, changed)| remarked(id, deleted, changed)));
        }
    }
    Ok(report)
}

/// The deletion marks of appointments and treatments against their
/// patients ([`crate::repo::mark_disagreements`]); returns the patients
/// whose marks need setting or clearing. (A record of a patient that does
/// not exist at all is a `missing_patient`, for a person.)
async fn check_marks(
    ctx: &Ctx,
    patients: &Patients,
    report: &mut Report,
) -> Result<Vec<PatientId>> {
    let deleted = &patients.deleted;
    let mut out = std::collections::BTreeSet::new();
    for (what, (unmarked, marked)) in [
        (
            "appointments",
            ctx.repos.appointments.mark_disagreements(deleted).await?,
        ),
        (
            "treatments",
            ctx.repos.treatments.mark_disagreements(deleted).await?,
        ),
    ] {
        for p in &unmarked {
            report.violations.push(violation(
                "unmarked_record",
                format!("patient {p} is deleted, but some of its {what} lack the deletion mark (they show in the lists across patients)"),
                true,
            ));
        }
        for p in marked.iter().filter(|p| patients.all.contains(p)) {
            report.violations.push(violation(
                "stale_mark",
                format!("patient {p} is not deleted, but some of its {what} carry the deletion mark (they are hidden from the lists across patients)"),
                true,
            ));
        }
        out.extend(unmarked);
        out.extend(marked.into_iter().filter(|p| patients.all.contains(p)));
    }
    Ok(out.into_iter().collect())
}

/// What a repair of patient `id`'s marks did: `changed` records now carry
/// the mark (`deleted`) or no longer do. None may change when the patient
/// was deleted or restored between the check and the repair, whose own
/// marking did the work.
fn remarked(id: PatientId, deleted: bool, changed: u64) -> String {
    match (changed, deleted) {
        (0, _) => format!(
            "patient {id}'s appointments and treatments already agreed with the patient when repaired: nothing changed"
        ),
        (n, true) => format!(
            "set the deletion mark on {n} of patient {id}'s appointments and treatments"
        ),
        (n, false) => format!(
            "cleared the deletion mark from {n} of patient {id}'s appointments and treatments"
        ),
    }
}

/// Sets the marks of patient `id`'s records from the patient as `tx` reads
/// it (deleted or not meanwhile) and says how many changed; `None` if the
/// patient is gone. The read is a write
/// ([`crate::repo::patients::PatientsRepo::touch_in`]), so on MongoDB a
/// delete or restore running beside the repair conflicts with it rather
/// than having its marks undone.
async fn remark(ctx: &Ctx, tx: &mut super::tx::Tx, id: PatientId) -> Result<Option<(bool, u64)>> {
    let Some(p) = ctx.repos.patients.touch_in(tx.session()?, id).await? else {
        return Ok(None);
    };
    let deleted = p.deleted_at.is_some();
    let changed = follow::mark_records(ctx, tx, id, deleted).await?;
    Ok(Some((deleted, changed)))
}

/// Ledger against treatments; returns the treatments short of an entry.
async fn check_ledger(
    ctx: &Ctx,
    hospitals: &HashSet<HospitalId>,
    patients: &HashSet<PatientId>,
    report: &mut Report,
) -> Result<Vec<Treatment>> {
    let mut booked = Booked::new();
    let mut entries = ctx.repos.treatments.scan_ledger().await?;
    while let Some(e) = entries.try_next().await? {
        let slot = booked
            .entry((e.treatment_id, e.kind))
            .or_insert((0, e.currency.clone(), 0));
        slot.0 += e.amount_minor;
        slot.2 += 1;
    }
    let mut short = Vec::new();
    let mut seen = HashSet::new();
    let mut cursor = ctx.repos.treatments.scan().await?;
    while let Some(t) = cursor.try_next().await? {
        report.treatments += 1;
        seen.insert(t.id);
        if !patients.contains(&t.patient_id) {
            report
                .violations
                .push(missing_patient("treatment", &t.id, t.patient_id));
        }
        if !hospitals.contains(&t.hospital_id) {
            report.violations.push(violation(
                "missing_hospital",
                format!(
                    "treatment {} names hospital {}, which does not exist",
                    t.id, t.hospital_id
                ),
                false,
            ));
        }
        if check_entries(&t, &booked, report) {
            short.push(t);
        }
    }
    for (treatment, kind) in booked.keys() {
        if !seen.contains(treatment) {
            report.violations.push(violation(
                "orphan_entry",
                format!(
                    "a {} is booked for treatment {treatment}, which does not exist",
                    crate::repo::treatments::kind_str(*kind)
                ),
                false,
            ));
        }
    }
    Ok(short)
}

/// Ledger entries booked per (treatment, kind): their sum, currency, count.
type Booked = HashMap<(TreatmentId, EntryKind), (i64, String, usize)>;

/// Checks one treatment's entries; true when some are missing.
fn check_entries(t: &Treatment, booked: &Booked, report: &mut Report) -> bool {
    let due = treatments::entries_due(t);
    let mut lacking = false;
    for entry in &due {
        match booked.get(&(t.id, entry.kind)) {
            None => {
                lacking = true;
                let kind = match entry.kind {
                    EntryKind::Credit => "missing_credit",
                    EntryKind::Reversal => "missing_reversal",
                };
                report.violations.push(violation(
                    kind,
                    format!(
                        "treatment {} is {} but has no {}",
                        t.id,
                        t.status.as_str(),
                        crate::repo::treatments::kind_str(entry.kind)
                    ),
                    true,
                ));
            }
            Some((sum, currency, n))
                if *sum != entry.amount_minor || *currency != entry.currency || *n != 1 =>
            {
                report.violations.push(violation(
                    "ledger_mismatch",
                    format!(
                        "treatment {}: {} entries of {} {currency} booked as {}, expected one of {} {}",
                        t.id,
                        n,
                        sum,
                        crate::repo::treatments::kind_str(entry.kind),
                        entry.amount_minor,
                        entry.currency
                    ),
                    false,
                ));
            }
            Some(_) => {}
        }
    }
    for kind in [EntryKind::Credit, EntryKind::Reversal] {
        if booked.contains_key(&(t.id, kind)) && !due.iter().any(|e| e.kind == kind) {
            report.violations.push(violation(
                "unexpected_entry",
                format!(
                    "treatment {} is {} but has a {}",
                    t.id,
                    t.status.as_str(),
                    crate::repo::treatments::kind_str(kind)
                ),
                false,
            ));
        }
    }
    lacking
}

/// The treatment statuses each patient's history says they reached.
async fn statuses_in_history(
    ctx: &Ctx,
) -> Result<HashMap<crate::domain::PatientId, (bool, HashSet<String>)>> {
    let mut out: HashMap<_, (bool, HashSet<String>)> = HashMap::new();
    let mut cursor = ctx.repos.history.scan_patient_entries().await?;
    while let Some(e) = cursor.try_next().await? {
        let slot = out.entry(e.patient_id).or_default();
        if e.action == "create" {
            slot.0 = true;
        }
        if let Ok(change) = e.changes.get_document("treatment_status") {
            if let Some(Bson::String(after)) = change.get("after") {
                slot.1.insert(after.clone());
            }
        }
    }
    Ok(out)
}

/// Every patient's id, and the soft-deleted ones'.
#[derive(Default)]
struct Patients {
    all: HashSet<PatientId>,
    deleted: HashSet<PatientId>,
}

/// Checks every patient.
async fn check_patients(
    ctx: &Ctx,
    hospitals: &HashSet<HospitalId>,
    users: &HashSet<UserId>,
    report: &mut Report,
) -> Result<Patients> {
    let history = statuses_in_history(ctx).await?;
    let mut patients = Patients::default();
    let mut cursor = ctx.repos.patients.scan().await?;
    while let Some(p) = cursor.try_next().await? {
        report.patients += 1;
        patients.all.insert(p.id);
        if p.deleted_at.is_some() {
            patients.deleted.insert(p.id);
        }
        let (created, statuses) = history.get(&p.id).cloned().unwrap_or_default();
        if !created {
            report.violations.push(violation(
                "missing_history",
                format!("patient {} has no create entry in its history", p.id),
                false,
            ));
        }
        // Patients stored before `reached` existed have none: nothing to
        // compare (the reports read their current status instead).
        if p.reached.is_empty() {
            check_references(&p, hospitals, users, report);
            continue;
        }
        let reached: HashSet<&str> = p.reached.iter().map(|s| s.as_str()).collect();
        for s in &statuses {
            if !reached.contains(s.as_str()) {
                report.violations.push(violation(
                    "reached_mismatch",
                    format!("patient {}: history shows {s}, reached does not", p.id),
                    false,
                ));
            }
        }
        if p.completed_at.is_some() != reached.contains(TreatmentStatus::Completed.as_str()) {
            report.violations.push(violation(
                "completed_at_mismatch",
                format!("patient {}: completed_at and reached disagree", p.id),
                false,
            ));
        }
        check_references(&p, hospitals, users, report);
    }
    Ok(patients)
}

/// The patient's hospital and the staff member it is assigned to exist.
/// (`created_by` and `updated_by` record who acted, and may name an account
/// deleted since: that is history, not a broken reference.)
fn check_references(
    p: &Patient,
    hospitals: &HashSet<HospitalId>,
    users: &HashSet<UserId>,
    report: &mut Report,
) {
    if let Some(h) = p.hospital_id.filter(|h| !hospitals.contains(h)) {
        report.violations.push(violation(
            "missing_hospital",
            format!(
                "patient {} is assigned to hospital {h}, which does not exist",
                p.id
            ),
            false,
        ));
    }
    if let Some(u) = p.assigned_to.filter(|u| !users.contains(u)) {
        report.violations.push(violation(
            "missing_user",
            format!(
                "patient {}: assigned_to names user {u}, which does not exist",
                p.id
            ),
            false,
        ));
    }
}

async fn check_appointments(
    ctx: &Ctx,
    hospitals: &HashSet<HospitalId>,
    patients: &HashSet<PatientId>,
    report: &mut Report,
) -> Result<()> {
    let mut cursor = ctx.repos.appointments.scan().await?;
    while let Some(a) = cursor.try_next().await? {
        if !patients.contains(&a.patient_id) {
            report
                .violations
                .push(missing_patient("appointment", &a.id, a.patient_id));
        }
        if let Some(h) = a.hospital_id.filter(|h| !hospitals.contains(h)) {
            report.violations.push(violation(
                "missing_hospital",
                format!(
                    "appointment {} names hospital {h}, which does not exist",
                    a.id
                ),
                false,
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repair_says_what_it_changed() {
        let id = PatientId::new();
        assert_eq!(
            remarked(id, true, 3),
            format!("set the deletion mark on 3 of patient {id}'s appointments and treatments")
        );
        assert_eq!(
            remarked(id, false, 1),
            format!(
                "cleared the deletion mark from 1 of patient {id}'s appointments and treatments"
            )
        );
        for deleted in [true, false] {
            let said = remarked(id, deleted, 0);
            assert!(said.ends_with("nothing changed"), "{said}");
            assert!(
                !said.contains("set the") && !said.contains("cleared"),
                "{said}"
            );
        }
    }
}
