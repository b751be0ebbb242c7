//! `seed --demo`: a realistic small data set to explore the API with.
//!
//! Fifteen partner hospitals in eight countries with their commission
//! terms, four coordinators, and 300 patients from 20 countries whose
//! stories run over the last 18 months: discussions logged, quotes asked
//! for, answered, declined, left to expire and accepted, treatments planned,
//! started, completed (with their ledger credits) and cancelled (a few after
//! completion, with the reversal), trips booked, returning patients.
//!
//! Everything is written through the workflows, each step at its own moment
//! (a workflow context whose clock is fixed at the step's time), so the
//! records, their history, the funnel stages and the ledger are exactly
//! what the API would have written on those days.
//!
//! Idempotent: the coordinators are found by e-mail, the hospitals by name
//! and country, and the patients by their e-mail; whatever exists is kept
//! and the rest is added. The stories come from a fixed seed, patient by
//! patient, so a second run (or a run after an interrupted one) adds only
//! the patients still missing. An interruption can leave the one patient it
//! was writing with a shorter story; every step is its own transaction, so
//! no record is ever half-written. It refuses to run beside patients that
//! the demo did not register unless forced.

use chrono::{DateTime, Duration, Utc};
use secrecy::SecretString;

use crate::{
    auth::password::Hasher,
    domain::{
        hospital::{Contact, Hospital},
        role::Role,
        UserId,
    },
    error::{AppError, Result},
    repo::users::NewUser,
    workflow::{
        hospitals::{self, NewHospital},
        idempotency::{Created, Idem},
        Clock, Ctx,
    },
};

/// The domain of every demo e-mail (RFC 2606 reserves `.example`).
pub const DOMAIN: &str = "demo.healthcrm.example";
/// How many patients a full demo has.
pub const PATIENTS: usize = 300;
/// How far back the stories start.
const SPAN_DAYS: i64 = 540;
const SEED: u64 = 0x5eed_2026;

pub struct Options {
    /// Load even though the database has patients the demo did not make.
    pub force: bool,
    /// The end of the stories (now, except in tests).
    pub now: DateTime<Utc>,
    /// How many patients (the first `patients` of the fixed list).
    pub patients: usize,
}

/// What a run added (and found already there).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub staff_added: usize,
    pub hospitals_added: usize,
    pub patients_added: usize,
    pub patients_kept: usize,
    pub appointments: usize,
    pub quotes: usize,
    pub treatments: usize,
    pub trips: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "demo: added {} coordinator(s), {} hospital(s) and {} patient(s) \
             ({} appointment(s), {} quote(s), {} treatment(s), {} trip(s)); \
             {} demo patient(s) were already there",
            self.staff_added,
            self.hospitals_added,
            self.patients_added,
            self.appointments,
            self.quotes,
            self.treatments,
            self.trips,
            self.patients_kept
        )
    }
}

const DAY: i64 = 86_400;

mod data;
mod story;

use data::{HOSPITALS, STAFF};
use story::Story;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(
        "the database has {0} patient(s) the demo did not register; \
         run with --force to add the demo data beside them"
    )]
    RealPatients(u64),
    #[error(transparent)]
    App(#[from] AppError),
}

/// Loads the demo data set (see the module docs).
pub async fn run(
    ctx: &Ctx,
    hasher: &Hasher,
    opts: &Options,
) -> std::result::Result<Summary, DemoError> {
    let mut summary = Summary::default();
    let start = opts.now - Duration::days(SPAN_DAYS + 30);
    let staff = staff(ctx, hasher, &mut summary).await?;
    let others = ctx
        .repos
        .patients
        .count_registered_by_others(&staff)
        .await?;
    if others > 0 && !opts.force {
        return Err(DemoError::RealPatients(others));
    }
    let admin = staff[0];
    let hospitals = hospitals(&at(ctx, start), admin, &mut summary).await?;
    let loaded = ctx.repos.patients.emails_registered_by(&staff).await?;
    for i in 0..opts.patients.min(PATIENTS) {
        let mut story = Story::new(i, opts.now, &staff, &hospitals);
        if loaded.contains(&story.email) {
            summary.patients_kept += 1;
            continue;
        }
        story.tell(ctx, &mut summary).await?;
        summary.patients_added += 1;
    }
    Ok(summary)
}

/// `ctx` with its clock stopped at `when`.
fn at(ctx: &Ctx, when: DateTime<Utc>) -> Ctx {
    Ctx {
        clock: Clock::fixed(when),
        ..ctx.clone()
    }
}

/// The coordinators, created when missing with a random password nobody
/// knows (an admin sets one through the API to sign in as them).
async fn staff(ctx: &Ctx, hasher: &Hasher, summary: &mut Summary) -> Result<Vec<UserId>> {
    let mut ids = Vec::new();
    for (name, local) in STAFF {
        let email = format!("{local}@{DOMAIN}");
        if let Some((user, _)) = ctx.repos.users.credentials_by_email(&email).await? {
            ids.push(user.id);
            continue;
        }
        let password = SecretString::from(uuid::Uuid::new_v4().simple().to_string().repeat(2));
        let user = ctx
            .repos
            .users
            .create(NewUser {
                name: name.into(),
                email,
                password_hash: hasher.hash(&password).await?,
                role: Role::Staff,
                permission_overrides: Vec::new(),
                created_by: None,
            })
            .await?;
        summary.staff_added += 1;
        ids.push(user.id);
    }
    ctx.names.invalidate();
    Ok(ids)
}

/// The partner hospitals, created when missing (matched by name and
/// country, as the API keeps them unique).
async fn hospitals(ctx: &Ctx, actor: UserId, summary: &mut Summary) -> Result<Vec<Hospital>> {
    let existing = ctx.repos.hospitals.all().await?;
    let mut out = Vec::new();
    for h in &HOSPITALS {
        let found = existing
            .iter()
            .find(|e| e.country == h.country && e.name_lower == h.name.to_lowercase());
        if let Some(found) = found {
            out.push(found.clone());
            continue;
        }
        let created = hospitals::create(
            ctx,
            actor,
            NewHospital {
                name: h.name.into(),
                location: h.city.into(),
                country: h.country.into(),
                contact: Some(Contact {
                    person: Some(h.contact.0.into()),
                    email: Some(h.contact.1.into()),
                    phone: Some(h.contact.2.into()),
                }),
                specialties: h.specialties.iter().map(|s| (*s).to_owned()).collect(),
                commission_bps: h.commission_bps,
                currency: Some(h.currency.into()),
                active: true,
            },
            Idem::none(),
        )
        .await?;
        summary.hospitals_added += 1;
        out.push(new(created)?);
    }
    Ok(out)
}

fn new<T>(created: Created<T>) -> Result<T> {
    match created {
        Created::New(v) => Ok(v),
        Created::Replayed(_) => Err(AppError::internal("a demo write without a key replayed")),
    }
}
