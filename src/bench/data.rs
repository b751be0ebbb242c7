//! A realistic synthetic data set for the benchmarks, written straight into
//! the database in the stored shape (loading 100,000 patients through HTTP
//! would measure the loader, not the reads).

use mongodb::{bson::DateTime, Database};
use rand::{rngs::StdRng, Rng};
use secrecy::SecretString;

use crate::{
    auth::password::Hasher,
    domain::{
        appointment::{Appointment, AppointmentStatus},
        hospital::Hospital,
        money::Money,
        patient::{Patient, PatientStatus, TreatmentStatus},
        treatment::{EarningEntry, EntryKind, Treatment, TreatmentState},
        user::Role,
        AppointmentId, HospitalId, PatientId, TreatmentId, UserId,
    },
    repo::{
        generations::Source,
        users::{NewUser, UsersRepo},
    },
};

pub const COUNTRIES: [&str; 12] = [
    "GB", "DE", "NL", "US", "CA", "FR", "IE", "SE", "NO", "DK", "AE", "SA",
];
pub const DISEASES: [&str; 10] = [
    "Knee osteoarthritis",
    "Hip dysplasia",
    "Coronary artery disease",
    "Cataract",
    "Obesity",
    "Tooth loss",
    "Infertility",
    "Scoliosis",
    "Kidney stones",
    "Hair loss",
];
const TREATMENTS: [&str; 8] = [
    "knee replacement",
    "hip replacement",
    "bypass surgery",
    "cataract surgery",
    "gastric sleeve",
    "dental implants",
    "IVF cycle",
    "hair transplant",
];
const STATUSES: [TreatmentStatus; 5] = [
    TreatmentStatus::Inquiry,
    TreatmentStatus::Ready,
    TreatmentStatus::Coming,
    TreatmentStatus::Completed,
    TreatmentStatus::Denied,
];
const FIRST: [&str; 10] = [
    "James", "Mary", "Ahmed", "Sofia", "Lars", "Emma", "Omar", "Anna", "John", "Fatima",
];
const LAST: [&str; 10] = [
    "Smith", "Jansen", "Müller", "Brown", "Nielsen", "Khan", "Dubois", "Olsen", "Walsh", "Haddad",
];
pub const STAFF_PASSWORD: &str = "benchmark staff passphrase";
const DAY_MS: i64 = 86_400_000;

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// Inserts `items` into `collection` in their stored form (`stored`, the
/// repositories' own, so the derived fields are there as the API writes
/// them); nothing for none.
async fn insert_stored<T>(
    db: &Database,
    collection: &str,
    items: &[T],
    stored: impl Fn(&T) -> crate::error::Result<mongodb::bson::Document>,
) -> Result<(), String> {
    if items.is_empty() {
        return Ok(());
    }
    let docs = items
        .iter()
        .map(stored)
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    db.collection::<mongodb::bson::Document>(collection)
        .insert_many(docs)
        .await
        .map_err(err)?;
    Ok(())
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// `n` partner hospitals.
pub async fn hospitals(db: &Database, admin: UserId, n: usize) -> Result<Vec<HospitalId>, String> {
    let docs: Vec<Hospital> = (0..n)
        .map(|i| Hospital {
            id: HospitalId::new(),
            name: format!("Hospital {i}"),
            name_lower: format!("hospital {i}"),
            location: "Istanbul".into(),
            country: "TR".into(),
            contact: None,
            specialties: vec![],
            commission_bps: Some(1000),
            currency: Some("EUR".into()),
            active: true,
            created_at: DateTime::now(),
            created_by: Some(admin),
            updated_at: DateTime::now(),
            updated_by: Some(admin),
        })
        .collect();
    let ids = docs.iter().map(|h| h.id).collect();
    db.collection::<Hospital>("hospitals")
        .insert_many(docs)
        .await
        .map_err(err)?;
    counted(db, &[Source::Hospitals]).await?;
    Ok(ids)
}

/// Counts the writes made straight to `sources` in the generations
/// document, as every writer in the server does: a running server's report
/// cache then computes its figures again.
pub async fn counted(db: &Database, sources: &[Source]) -> Result<(), String> {
    let repo = crate::repo::generations::GenerationsRepo::new(db);
    let mut session = db.client().start_session().await.map_err(err)?;
    for s in sources {
        repo.bump(&mut session, *s).await.map_err(err)?;
    }
    Ok(())
}

/// `n` staff accounts with [`STAFF_PASSWORD`]; returns their ids and emails.
pub async fn staff(
    db: &Database,
    admin: UserId,
    n: usize,
) -> Result<Vec<(UserId, String)>, String> {
    let hasher = Hasher::new(2, std::time::Duration::from_secs(30));
    let hash = hasher
        .hash(&SecretString::from(STAFF_PASSWORD))
        .await
        .map_err(err)?;
    let users = UsersRepo::new(db);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let email = format!("staff{i}@bench.example.com");
        let user = users
            .create(NewUser {
                name: format!("Staff {i}"),
                email: email.clone(),
                password_hash: hash.clone(),
                role: Role::Staff,
                permission_overrides: Vec::new(),
                created_by: Some(admin),
            })
            .await
            .map_err(err)?;
        out.push((user.id, email));
    }
    Ok(out)
}

/// How much to generate per patient.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub appointments: usize,
    pub treatments: usize,
}

/// The passport number of the `n`th generated patient (unique per `n`).
pub fn bench_passport(n: usize) -> String {
    format!("U{n:08}")
}

/// The phone number of the `n`th generated patient (unique per `n`).
pub fn bench_phone(n: usize) -> String {
    format!("+90 53{} {:07}", n % 10, n)
}

pub fn patient(rng: &mut StdRng, n: usize, by: UserId, hospitals: &[HospitalId]) -> Patient {
    let name = format!("{} {} {n}", pick(rng, &FIRST), pick(rng, &LAST));
    let conditions: Vec<String> = (0..rng.random_range(0..3))
        .map(|_| (*pick(rng, &DISEASES)).to_owned())
        .collect();
    let status = *pick(rng, &STATUSES);
    let created = DateTime::from_millis(
        DateTime::now().timestamp_millis() - rng.random_range(0..(365 * DAY_MS)),
    );
    let mut p = Patient {
        id: PatientId::new(),
        name_lower: name.to_lowercase(),
        name,
        age: Some(rng.random_range(1..90)),
        date_of_birth: None,
        country: (*pick(rng, &COUNTRIES)).to_owned(),
        contact: Some(crate::domain::patient::PatientContact {
            email: Some(format!("patient{n}@example.test")),
            phone: Some(bench_phone(n)),
        }),
        source: Some("web form".into()),
        medical_history_lower: conditions.iter().map(|c| c.to_lowercase()).collect(),
        medical_history: conditions,
        status: PatientStatus::New,
        treatment_status: status,
        denial_reason: (status == TreatmentStatus::Denied).then(|| "not a candidate".to_owned()),
        assigned_to: Some(by),
        hospital_id: Some(*pick(rng, hospitals)),
        hospital_history: Vec::new(),
        next_follow_up: None,
        reached: Vec::new(),
        completed_at: None,
        version: 1,
        deleted_at: None,
        deleted_by: None,
        passport_search: Some(bench_passport(n)),
        created_at: created,
        created_by: by,
        updated_at: created,
        updated_by: by,
    };
    let done = DateTime::from_millis(created.timestamp_millis() + rng.random_range(0..60) * DAY_MS);
    p.note_reached(status, done);
    p
}

fn later(rng: &mut StdRng, after: DateTime) -> DateTime {
    let now = DateTime::now().timestamp_millis();
    let from = after.timestamp_millis().min(now);
    DateTime::from_millis(rng.random_range(from..=now))
}

/// Loads patients `first..first + count`, with their appointments and
/// treatments (and the ledger entries completed and cancelled treatments
/// imply), in batches. Returns the new patients' ids.
pub async fn load(
    db: &Database,
    rng: &mut StdRng,
    first: usize,
    count: usize,
    shape: Shape,
    by: UserId,
    hospitals: &[HospitalId],
) -> Result<Vec<PatientId>, String> {
    const BATCH: usize = 1_000;
    let mut ids = Vec::with_capacity(count);
    let mut done = 0;
    while done < count {
        let n = (count - done).min(BATCH);
        let patients: Vec<Patient> = (0..n)
            .map(|i| patient(rng, first + done + i, by, hospitals))
            .collect();
        let mut appointments = Vec::new();
        let mut treatments = Vec::new();
        let mut ledger = Vec::new();
        for p in &patients {
            for _ in 0..shape.appointments {
                let at = later(rng, p.created_at);
                appointments.push(Appointment {
                    id: AppointmentId::new(),
                    patient_id: p.id,
                    hospital_id: p.hospital_id,
                    appointment_date: Some(at),
                    discussion_notes: "Discussed options, costs and travel dates.".into(),
                    next_follow_up: None,
                    status: AppointmentStatus::Completed,
                    version: 1,
                    created_by: by,
                    created_at: at,
                    updated_by: by,
                    updated_at: at,
                });
            }
            for _ in 0..shape.treatments {
                let hospital = *pick(rng, hospitals);
                let currency = if rng.random_range(0..4) == 0 {
                    "USD"
                } else {
                    "EUR"
                };
                let cost = rng.random_range(100_000..5_000_000_i64);
                let earned = cost / 10;
                let money = |amount_minor| Money {
                    amount_minor,
                    currency: currency.into(),
                };
                let created = later(rng, p.created_at);
                let status = *pick(
                    rng,
                    &[
                        TreatmentState::Planned,
                        TreatmentState::InProgress,
                        TreatmentState::Completed,
                        TreatmentState::Completed,
                        TreatmentState::Cancelled,
                    ],
                );
                let completed = matches!(
                    status,
                    TreatmentState::Completed | TreatmentState::Cancelled
                )
                .then(|| later(rng, created));
                let cancelled = (status == TreatmentState::Cancelled)
                    .then(|| later(rng, completed.unwrap_or(created)));
                let t = Treatment {
                    id: TreatmentId::new(),
                    patient_id: p.id,
                    hospital_id: hospital,
                    treatment_type: (*pick(rng, &TREATMENTS)).to_owned(),
                    disease: p
                        .medical_history
                        .first()
                        .cloned()
                        .unwrap_or_else(|| "unspecified".into()),
                    cost: money(cost),
                    earnings: money(earned),
                    status,
                    appointment_ids: Vec::new(),
                    quote_id: None,
                    started_at: None,
                    completed_at: completed,
                    cancelled_at: cancelled,
                    version: 1,
                    created_by: by,
                    created_at: created,
                    updated_by: by,
                    updated_at: created,
                };
                let entry = |kind, amount_minor, booked_at| EarningEntry {
                    treatment_id: t.id,
                    kind,
                    seq: 0,
                    amount_minor,
                    currency: currency.into(),
                    hospital_id: hospital,
                    patient_id: p.id,
                    booked_at,
                };
                if let Some(at) = completed {
                    ledger.push(entry(EntryKind::Credit, earned, at));
                }
                if let Some(at) = cancelled {
                    ledger.push(entry(EntryKind::Reversal, -earned, at));
                }
                treatments.push(t);
            }
        }
        ids.extend(patients.iter().map(|p| p.id));
        insert_stored(db, "patients", &patients, crate::repo::patients::stored).await?;
        let appointment = crate::repo::appointments::stored;
        insert_stored(db, "appointments", &appointments, appointment).await?;
        let treatment = crate::repo::treatments::stored_treatment;
        insert_stored(db, "treatments", &treatments, treatment).await?;
        insert_stored(
            db,
            "earnings",
            &ledger,
            crate::repo::treatments::stored_entry,
        )
        .await?;
        done += n;
    }
    counted(db, &Source::ALL).await?;
    Ok(ids)
}
