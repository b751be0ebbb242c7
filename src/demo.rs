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

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rand::{rngs::StdRng, Rng, SeedableRng};
use secrecy::SecretString;

use crate::{
    auth::password::Hasher,
    domain::{
        appointment::AppointmentStatus,
        hospital::{Contact, Hospital},
        money::Money,
        patient::{PatientContact, TreatmentStatus},
        quote::QuoteStatus,
        role::Role,
        travel::{Leg, Visa, VisaStatus},
        treatment::TreatmentState,
        PatientId, TreatmentId, UserId,
    },
    error::{AppError, Result},
    repo::users::NewUser,
    workflow::{
        appointments::{self, NewAppointment},
        hospitals::{self, NewHospital},
        idempotency::{Created, Idem},
        patients::{self, NewPatient, PatientChanges},
        quotes::{self, Acceptance, Answer, NewQuote},
        travel::{self, TravelInput},
        treatments::{self, NewTreatment, TreatmentChanges},
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

const STAFF: [(&str, &str); 4] = [
    ("Amira Haddad", "amira.haddad"),
    ("Lukas Becker", "lukas.becker"),
    ("Priya Nair", "priya.nair"),
    ("Tomás Ruiz", "tomas.ruiz"),
];

/// A treatment a hospital offers: its specialty, the disease it treats and
/// its price range in major units.
struct Offer {
    specialty: &'static str,
    treatment: &'static str,
    disease: &'static str,
    price: (i64, i64),
}

const OFFERS: [Offer; 12] = [
    Offer {
        specialty: "orthopaedics",
        treatment: "knee replacement",
        disease: "Knee osteoarthritis",
        price: (7_000, 14_000),
    },
    Offer {
        specialty: "orthopaedics",
        treatment: "hip replacement",
        disease: "Hip osteoarthritis",
        price: (8_000, 15_000),
    },
    Offer {
        specialty: "orthopaedics",
        treatment: "spinal fusion",
        disease: "Degenerative disc disease",
        price: (12_000, 22_000),
    },
    Offer {
        specialty: "cardiology",
        treatment: "coronary bypass",
        disease: "Coronary artery disease",
        price: (12_000, 25_000),
    },
    Offer {
        specialty: "cardiology",
        treatment: "angioplasty with stent",
        disease: "Coronary artery disease",
        price: (5_000, 9_000),
    },
    Offer {
        specialty: "ophthalmology",
        treatment: "cataract surgery",
        disease: "Cataract",
        price: (1_200, 3_000),
    },
    Offer {
        specialty: "ophthalmology",
        treatment: "LASIK",
        disease: "Myopia",
        price: (1_000, 2_500),
    },
    Offer {
        specialty: "dentistry",
        treatment: "dental implants",
        disease: "Tooth loss",
        price: (2_000, 8_000),
    },
    Offer {
        specialty: "bariatrics",
        treatment: "gastric sleeve",
        disease: "Obesity",
        price: (5_000, 9_000),
    },
    Offer {
        specialty: "fertility",
        treatment: "IVF cycle",
        disease: "Infertility",
        price: (4_000, 8_000),
    },
    Offer {
        specialty: "hair restoration",
        treatment: "hair transplant",
        disease: "Androgenetic alopecia",
        price: (1_800, 4_000),
    },
    Offer {
        specialty: "oncology",
        treatment: "proton therapy",
        disease: "Prostate cancer",
        price: (20_000, 40_000),
    },
];

struct DemoHospital {
    name: &'static str,
    city: &'static str,
    country: &'static str,
    specialties: &'static [&'static str],
    /// `None`: no commission terms yet (the earnings are agreed per quote).
    commission_bps: Option<i32>,
    currency: &'static str,
    contact: (&'static str, &'static str, &'static str),
}

const HOSPITALS: [DemoHospital; 15] = [
    DemoHospital {
        name: "Bosphorus Medical Center",
        city: "Istanbul",
        country: "TR",
        specialties: &["orthopaedics", "cardiology", "bariatrics", "oncology"],
        commission_bps: Some(1500),
        currency: "EUR",
        contact: (
            "Elif Demir",
            "international@bosphorus-medical.example",
            "+90 212 555 0101",
        ),
    },
    DemoHospital {
        name: "Anatolia Orthopaedic Hospital",
        city: "Antalya",
        country: "TR",
        specialties: &["orthopaedics"],
        commission_bps: Some(1800),
        currency: "EUR",
        contact: (
            "Murat Kaya",
            "patients@anatolia-ortho.example",
            "+90 242 555 0144",
        ),
    },
    DemoHospital {
        name: "Aegean Eye & Dental Institute",
        city: "Izmir",
        country: "TR",
        specialties: &["ophthalmology", "dentistry", "hair restoration"],
        commission_bps: Some(2000),
        currency: "EUR",
        contact: (
            "Zeynep Arslan",
            "care@aegean-eye.example",
            "+90 232 555 0170",
        ),
    },
    DemoHospital {
        name: "Deccan Heart Institute",
        city: "Hyderabad",
        country: "IN",
        specialties: &["cardiology", "oncology"],
        commission_bps: Some(1200),
        currency: "USD",
        contact: (
            "Ravi Menon",
            "intl@deccan-heart.example",
            "+91 40 5550 1200",
        ),
    },
    DemoHospital {
        name: "Marina Multispeciality Hospital",
        city: "Chennai",
        country: "IN",
        specialties: &["orthopaedics", "fertility", "bariatrics", "ophthalmology"],
        commission_bps: Some(1000),
        currency: "USD",
        contact: (
            "Lakshmi Iyer",
            "global@marina-hospital.example",
            "+91 44 5550 3300",
        ),
    },
    DemoHospital {
        name: "Chao Phraya International Hospital",
        city: "Bangkok",
        country: "TH",
        specialties: &["cardiology", "orthopaedics", "fertility", "oncology"],
        commission_bps: Some(1300),
        currency: "USD",
        contact: (
            "Siriporn Chai",
            "referrals@chaophraya-intl.example",
            "+66 2 555 0199",
        ),
    },
    DemoHospital {
        name: "Andaman Wellness Hospital",
        city: "Phuket",
        country: "TH",
        specialties: &["dentistry", "hair restoration", "bariatrics"],
        commission_bps: None,
        currency: "USD",
        contact: (
            "Niran Wong",
            "welcome@andaman-wellness.example",
            "+66 76 555 0123",
        ),
    },
    DemoHospital {
        name: "Rhein Klinik",
        city: "Düsseldorf",
        country: "DE",
        specialties: &["oncology", "orthopaedics", "cardiology"],
        commission_bps: Some(800),
        currency: "EUR",
        contact: (
            "Dr. Jana Vogel",
            "international@rhein-klinik.example",
            "+49 211 555 0100",
        ),
    },
    DemoHospital {
        name: "Clínica Mediterránea",
        city: "Barcelona",
        country: "ES",
        specialties: &["fertility", "ophthalmology", "dentistry"],
        commission_bps: Some(1100),
        currency: "EUR",
        contact: (
            "Marta Soler",
            "pacientes@clinica-mediterranea.example",
            "+34 93 555 0150",
        ),
    },
    DemoHospital {
        name: "Hospital Bajío Internacional",
        city: "Guadalajara",
        country: "MX",
        specialties: &["bariatrics", "orthopaedics", "cardiology"],
        commission_bps: Some(1400),
        currency: "USD",
        contact: (
            "Carlos Méndez",
            "international@bajio-hospital.example",
            "+52 33 5550 0110",
        ),
    },
    DemoHospital {
        name: "Frontera Dental & Surgical",
        city: "Tijuana",
        country: "MX",
        specialties: &["dentistry", "bariatrics"],
        commission_bps: Some(1700),
        currency: "USD",
        contact: (
            "Ana Robles",
            "hola@frontera-dental.example",
            "+52 664 555 0177",
        ),
    },
    DemoHospital {
        name: "Han River Medical Center",
        city: "Seoul",
        country: "KR",
        specialties: &["oncology", "cardiology", "ophthalmology"],
        commission_bps: Some(1000),
        currency: "USD",
        contact: ("Kim Min-ji", "global@hanriver-mc.example", "+82 2 555 0133"),
    },
    DemoHospital {
        name: "Gangnam Restoration Clinic",
        city: "Seoul",
        country: "KR",
        specialties: &["hair restoration", "dentistry"],
        commission_bps: Some(1900),
        currency: "USD",
        contact: (
            "Park Ji-ho",
            "intl@gangnam-restoration.example",
            "+82 2 555 0188",
        ),
    },
    DemoHospital {
        name: "Danube Dental Clinic",
        city: "Budapest",
        country: "HU",
        specialties: &["dentistry"],
        commission_bps: Some(2000),
        currency: "EUR",
        contact: ("Réka Szabó", "info@danube-dental.example", "+36 1 555 0160"),
    },
    DemoHospital {
        name: "Buda Hills Eye Hospital",
        city: "Budapest",
        country: "HU",
        specialties: &["ophthalmology", "orthopaedics"],
        commission_bps: Some(1500),
        currency: "EUR",
        contact: (
            "Gábor Tóth",
            "patients@budahills-eye.example",
            "+36 1 555 0190",
        ),
    },
];

/// Where patients write in from: country, dialling code, and the name
/// pool to draw from.
const COUNTRIES: [(&str, &str, usize); 20] = [
    ("GB", "+44 7700 9", 0),
    ("IE", "+353 85 55", 0),
    ("US", "+1 202 555", 0),
    ("CA", "+1 613 555", 0),
    ("AU", "+61 491 57", 0),
    ("NZ", "+64 21 555", 0),
    ("DE", "+49 151 555", 1),
    ("NL", "+31 6 5555", 1),
    ("BE", "+32 470 55", 1),
    ("CH", "+41 79 555", 1),
    ("FR", "+33 6 5555", 1),
    ("SE", "+46 70 555", 2),
    ("NO", "+47 40 555", 2),
    ("DK", "+45 20 555", 2),
    ("AE", "+971 50 555", 3),
    ("SA", "+966 50 555", 3),
    ("KW", "+965 5555", 3),
    ("QA", "+974 3355", 3),
    ("NG", "+234 803 555", 4),
    ("KE", "+254 712 555", 4),
];

const NAMES: [(&[&str], &[&str]); 5] = [
    (
        &[
            "James", "Mary", "Oliver", "Emily", "Jack", "Sophie", "Liam", "Grace", "Noah", "Chloe",
        ],
        &[
            "Smith", "Walsh", "Brown", "Taylor", "Murphy", "Wilson", "Clarke", "Evans", "Kelly",
            "Reid",
        ],
    ),
    (
        &[
            "Lukas", "Anna", "Daan", "Lotte", "Jonas", "Léa", "Hugo", "Marie", "Felix", "Emma",
        ],
        &[
            "Müller", "Jansen", "Peeters", "Dubois", "Schmid", "de Vries", "Fischer", "Lambert",
            "Weber", "Bakker",
        ],
    ),
    (
        &[
            "Lars", "Ingrid", "Erik", "Astrid", "Magnus", "Sofie", "Anders", "Freja", "Nils",
            "Maja",
        ],
        &[
            "Nielsen",
            "Olsen",
            "Johansson",
            "Hansen",
            "Lindqvist",
            "Berg",
            "Larsen",
            "Andersson",
            "Dahl",
            "Holm",
        ],
    ),
    (
        &[
            "Ahmed", "Fatima", "Omar", "Layla", "Khalid", "Noura", "Yousef", "Mariam", "Hassan",
            "Aisha",
        ],
        &[
            "Al-Sayed",
            "Haddad",
            "Al-Mansouri",
            "Khan",
            "Al-Otaibi",
            "Nasser",
            "Al-Kuwari",
            "Saleh",
            "Hamdan",
            "Farouk",
        ],
    ),
    (
        &[
            "Chinedu", "Ngozi", "Tunde", "Amara", "Kamau", "Wanjiru", "Emeka", "Achieng", "Segun",
            "Zawadi",
        ],
        &[
            "Okafor", "Adeyemi", "Mwangi", "Otieno", "Eze", "Njoroge", "Balogun", "Kiprop",
            "Okonkwo", "Wambui",
        ],
    ),
];

const SOURCES: [&str; 7] = [
    "website",
    "referral",
    "google ads",
    "facebook",
    "whatsapp",
    "partner clinic",
    "health fair",
];

const DENIALS: [&str; 4] = [
    "Not a surgical candidate: BMI above the hospitals' limit",
    "Reports show the condition needs treatment at home first",
    "Chose to be treated at home",
    "No quote within the patient's budget",
];

const DAY: i64 = 86_400;

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

/// One patient's story, drawn from its own seeded generator so that every
/// run draws the same one whatever was loaded before.
struct Story<'a> {
    rng: StdRng,
    index: usize,
    now: DateTime<Utc>,
    /// The moment of the last step.
    clock: DateTime<Utc>,
    name: String,
    email: String,
    country: &'static str,
    phone: String,
    hospitals: &'a [Hospital],
    coordinator: UserId,
    patient: Option<PatientId>,
}

/// Plain ASCII for an e-mail's local part.
fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'ü' => 'u',
            'é' => 'e',
            _ => c,
        })
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_lowercase()
}

fn pick<'s, T>(rng: &mut StdRng, items: &'s [T]) -> &'s T {
    &items[rng.random_range(0..items.len())]
}

impl<'a> Story<'a> {
    fn new(index: usize, now: DateTime<Utc>, staff: &[UserId], hospitals: &'a [Hospital]) -> Self {
        let mut rng =
            StdRng::seed_from_u64(SEED ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let (country, dial, pool) = COUNTRIES[index % COUNTRIES.len()];
        let (first, last) = NAMES[pool];
        let (f, l) = (*pick(&mut rng, first), *pick(&mut rng, last));
        let email = format!("{}.{}.{:03}@{DOMAIN}", ascii(f), ascii(l), index + 1);
        let phone = format!("{dial}{:04}", index % 10_000);
        // Registered at a working hour within the span, more often recently
        // (the business grows).
        let back = SPAN_DAYS as f64 * rng.random::<f64>().powf(1.4);
        let day = (now - Duration::seconds((back * DAY as f64) as i64)).date_naive();
        let clock = day
            .and_hms_opt(rng.random_range(7..18), rng.random_range(0..60), 0)
            .map(|t| t.and_utc())
            .unwrap_or(now)
            .min(now - Duration::hours(2));
        let coordinator = *pick(&mut rng, staff);
        Story {
            rng,
            index,
            now,
            clock,
            name: format!("{f} {l}"),
            email,
            country,
            phone,
            hospitals,
            coordinator,
            patient: None,
        }
    }

    /// Moves the story on by `days` (a range, drawn); `None` when that is
    /// past today, where the story stops.
    fn after(&mut self, days: std::ops::Range<i64>) -> Option<DateTime<Utc>> {
        let secs = self
            .rng
            .random_range(days.start * DAY..days.end * DAY)
            .max(3600);
        let next = self.clock + Duration::seconds(secs);
        if next > self.now - Duration::hours(1) {
            return None;
        }
        self.clock = next;
        Some(next)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random::<f64>() < p
    }

    fn ctx(&self, ctx: &Ctx) -> Ctx {
        at(ctx, self.clock)
    }

    fn id(&self) -> Result<PatientId> {
        self.patient
            .ok_or_else(|| AppError::internal("a demo step before the patient exists"))
    }

    async fn tell(&mut self, ctx: &Ctx, s: &mut Summary) -> Result<()> {
        let offer = pick(&mut self.rng, &OFFERS);
        let mut history = vec![offer.disease.to_owned()];
        if self.chance(0.3) {
            history.push(
                (*pick(
                    &mut self.rng,
                    &[
                        "Hypertension",
                        "Type 2 diabetes",
                        "Asthma",
                        "Hypothyroidism",
                    ],
                ))
                .to_owned(),
            );
        }
        let patient = new(patients::register(
            &self.ctx(ctx),
            self.coordinator,
            NewPatient {
                name: self.name.clone(),
                age: Some(self.rng.random_range(24..79)),
                date_of_birth: None,
                country: self.country.into(),
                contact: Some(PatientContact {
                    email: Some(self.email.clone()),
                    phone: Some(self.phone.clone()),
                }),
                source: Some((*pick(&mut self.rng, &SOURCES)).to_owned()),
                medical_history: history,
                treatment_status: None,
                denial_reason: None,
                assigned_to: Some(self.coordinator),
                hospital_id: None,
                next_follow_up: None,
            },
            Idem::none(),
        )
        .await?)?;
        self.patient = Some(patient.id);
        if self
            .discuss(
                ctx,
                s,
                format!(
                    "First call: asked about {} for {}.",
                    offer.treatment,
                    offer.disease.to_lowercase()
                ),
                0..2,
                2..8,
            )
            .await?
            .is_none()
        {
            return Ok(());
        }
        let roll = self.rng.random::<f64>();
        if roll < 0.22 {
            // Still deciding: a discussion or two, a follow-up booked.
            for _ in 0..self.rng.random_range(0..3) {
                if self
                    .discuss(
                        ctx,
                        s,
                        "Sent the medical reports checklist; waiting for the MRI.".into(),
                        3..20,
                        3..25,
                    )
                    .await?
                    .is_none()
                {
                    break;
                }
            }
            return Ok(());
        }
        if roll < 0.34 {
            if self
                .discuss(
                    ctx,
                    s,
                    "Reviewed the reports with the patient.".into(),
                    2..15,
                    2..10,
                )
                .await?
                .is_none()
            {
                return Ok(());
            }
            if self.after(1..7).is_none() {
                return Ok(());
            }
            let reason = (*pick(&mut self.rng, &DENIALS)).to_owned();
            self.set_status(ctx, TreatmentStatus::Denied, Some(reason))
                .await?;
            return Ok(());
        }
        self.quotes(ctx, s, offer).await
    }

    /// Logs a discussion `days` after the last step, booking the next
    /// follow-up `follow` days after it. `None` when the story has reached
    /// today.
    async fn discuss(
        &mut self,
        ctx: &Ctx,
        s: &mut Summary,
        notes: String,
        days: std::ops::Range<i64>,
        follow: std::ops::Range<i64>,
    ) -> Result<Option<()>> {
        if self.after(days).is_none() {
            return Ok(None);
        }
        let next = self.clock.date_naive() + Duration::days(self.rng.random_range(follow));
        appointments::log(
            &self.ctx(ctx),
            self.coordinator,
            self.id()?,
            NewAppointment {
                hospital_id: None,
                appointment_date: Some(self.clock),
                discussion_notes: notes,
                next_follow_up: Some(next),
                status: AppointmentStatus::Completed,
            },
            Idem::none(),
        )
        .await?;
        s.appointments += 1;
        Ok(Some(()))
    }

    async fn set_status(
        &mut self,
        ctx: &Ctx,
        status: TreatmentStatus,
        denial_reason: Option<String>,
    ) -> Result<()> {
        let id = self.id()?;
        let current = patients::load(ctx, id).await?;
        patients::update(
            &self.ctx(ctx),
            self.coordinator,
            id,
            PatientChanges {
                version: current.version,
                treatment_status: Some(status),
                denial_reason: denial_reason.map(Some),
                ..Default::default()
            },
        )
        .await?;
        Ok(())
    }

    /// Quotes from up to three hospitals offering the treatment; the
    /// cheapest received one accepted in time, most of the time.
    async fn quotes(&mut self, ctx: &Ctx, s: &mut Summary, offer: &Offer) -> Result<()> {
        let mut able: Vec<&Hospital> = self
            .hospitals
            .iter()
            .filter(|h| h.specialties.iter().any(|sp| sp == offer.specialty))
            .collect();
        let mut asked = Vec::new();
        let wanted = self.rng.random_range(1..4).min(able.len());
        for _ in 0..wanted {
            if self.after(0..3).is_none() {
                break;
            }
            let h = able.remove(self.rng.random_range(0..able.len()));
            let q = new(quotes::request(
                &self.ctx(ctx),
                self.coordinator,
                self.id()?,
                NewQuote {
                    hospital_id: h.id,
                    treatment_type: offer.treatment.into(),
                    disease: Some(offer.disease.into()),
                    notes: Some("Reports and imaging attached.".into()),
                },
                Idem::none(),
            )
            .await?)?;
            s.quotes += 1;
            asked.push((q, h));
        }
        // The answers, in the order they come back.
        let mut received = Vec::new();
        for (q, h) in &asked {
            if self.after(1..8).is_none() {
                return Ok(());
            }
            let price = self.rng.random_range(offer.price.0..=offer.price.1) / 50 * 50;
            let accepted_price = self.chance(0.87);
            let valid = self.clock.date_naive() + Duration::days(self.rng.random_range(21..61));
            let answer = if accepted_price {
                Answer {
                    version: q.version,
                    status: QuoteStatus::Received,
                    amount: Some(Money {
                        amount_minor: price * 100,
                        currency: h.currency.clone().unwrap_or_else(|| "USD".into()),
                    }),
                    valid_until: Some(valid),
                    includes: Some(format!(
                        "{}, {} nights' stay, airport transfers, interpreter",
                        offer.treatment,
                        self.rng.random_range(3..10)
                    )),
                    notes: None,
                }
            } else {
                Answer {
                    version: q.version,
                    status: QuoteStatus::Declined,
                    amount: None,
                    valid_until: None,
                    includes: None,
                    notes: Some("The surgeon declined after reviewing the reports.".into()),
                }
            };
            let answered = quotes::answer(&self.ctx(ctx), self.coordinator, q.id, answer).await?;
            if accepted_price {
                received.push((answered, *h, valid, price));
            }
        }
        if received.is_empty() {
            let _ = self
                .discuss(
                    ctx,
                    s,
                    "No hospital could offer the treatment; looking for another option.".into(),
                    1..5,
                    7..30,
                )
                .await?;
            return Ok(());
        }
        if self
            .discuss(
                ctx,
                s,
                format!("Went through {} quote(s) with the patient.", received.len()),
                0..4,
                2..10,
            )
            .await?
            .is_none()
        {
            return Ok(());
        }
        if self.chance(0.15) {
            // Thinking it over: the quotes run out unless the patient
            // comes back in time.
            return Ok(());
        }
        received.sort_by_key(|(_, _, _, price)| *price);
        let (quote, hospital, valid, price) = received.swap_remove(0);
        let Some(when) = self.after(0..10) else {
            return Ok(());
        };
        if when.date_naive() > valid {
            return Ok(());
        }
        let earnings = hospital.commission_bps.is_none().then(|| Money {
            amount_minor: price * 100 / 10,
            currency: quote
                .amount
                .as_ref()
                .map(|m| m.currency.clone())
                .unwrap_or_default(),
        });
        let booked = new(quotes::accept(
            &self.ctx(ctx),
            self.coordinator,
            quote.id,
            Acceptance {
                earnings,
                disease: None,
            },
            Idem::none(),
        )
        .await?)?;
        s.treatments += 1;
        self.set_status(ctx, TreatmentStatus::Ready, None).await?;
        self.trip(ctx, s, hospital, booked.treatment.id, offer)
            .await
    }

    /// The trip: the consultation booked, the travel record, then the
    /// treatment started and completed as the days pass (or cancelled).
    async fn trip(
        &mut self,
        ctx: &Ctx,
        s: &mut Summary,
        hospital: &Hospital,
        treatment: TreatmentId,
        offer: &Offer,
    ) -> Result<()> {
        let day = (self.clock + Duration::days(self.rng.random_range(14..60)))
            .date_naive()
            .and_hms_opt(9, 0, 0)
            .map(|t| t.and_utc())
            .unwrap_or(self.clock);
        let consultation = new(appointments::log(
            &self.ctx(ctx),
            self.coordinator,
            self.id()?,
            NewAppointment {
                hospital_id: Some(hospital.id),
                appointment_date: Some(day),
                discussion_notes: format!(
                    "Pre-operative consultation for the {} at {}.",
                    offer.treatment, hospital.name
                ),
                next_follow_up: Some(day.date_naive() + Duration::days(1)),
                status: AppointmentStatus::Scheduled,
            },
            Idem::none(),
        )
        .await?)?;
        s.appointments += 1;
        if self.after(1..6).is_none() {
            return Ok(());
        }
        let stay = self.rng.random_range(5..15);
        let visa = match self.country {
            "NG" | "KE" => {
                if day - Duration::days(10) < self.now {
                    VisaStatus::Granted
                } else {
                    VisaStatus::Applied
                }
            }
            "AE" | "SA" | "KW" | "QA" if hospital.country == "IN" => VisaStatus::Granted,
            _ => VisaStatus::NotNeeded,
        };
        travel::save(
            &self.ctx(ctx),
            self.coordinator,
            self.id()?,
            TravelInput {
                version: None,
                passport: Some(travel::PassportInput {
                    number: format!(
                        "{}{:08}",
                        (b'A' + (self.index % 26) as u8) as char,
                        self.rng.random_range(0..100_000_000u32)
                    ),
                    country: self.country.into(),
                    expires_on: NaiveDate::from_ymd_opt(
                        2030 + (self.index % 6) as i32,
                        1 + (self.index % 12) as u32,
                        15,
                    )
                    .unwrap_or(NaiveDate::MAX),
                }),
                visa: Some(Visa {
                    status: visa,
                    notes: None,
                }),
                arrival: Some(Leg {
                    at: mongodb::bson::DateTime::from_chrono(day - Duration::hours(20)),
                    flight: Some(format!("TK{}", 1000 + self.index)),
                }),
                departure: Some(Leg {
                    at: mongodb::bson::DateTime::from_chrono(day + Duration::days(stay)),
                    flight: Some(format!("TK{}", 2000 + self.index)),
                }),
                accommodation: Some(format!("Partner hotel near {}", hospital.name)),
                companions: Vec::new(),
                pickup_arranged: self.chance(0.8),
            },
        )
        .await?;
        s.trips += 1;
        if self.chance(0.07) {
            // Called off before travelling.
            if self.after(1..7).is_some() && self.clock < day {
                self.move_treatment(ctx, treatment, TreatmentState::Cancelled)
                    .await?;
            }
            return Ok(());
        }
        if day > self.now - Duration::hours(1) {
            return Ok(());
        }
        self.clock = day;
        let current = appointments::load(ctx, consultation.id).await?;
        appointments::update(
            &self.ctx(ctx),
            self.coordinator,
            consultation.id,
            appointments::AppointmentChanges {
                version: current.version,
                status: Some(AppointmentStatus::Completed),
                ..Default::default()
            },
        )
        .await?;
        self.move_treatment(ctx, treatment, TreatmentState::InProgress)
            .await?;
        if self.after(1..8).is_none() {
            return Ok(());
        }
        self.move_treatment(ctx, treatment, TreatmentState::Completed)
            .await?;
        if self
            .discuss(
                ctx,
                s,
                format!(
                    "Aftercare call: recovering well after the {}.",
                    offer.treatment
                ),
                10..30,
                30..90,
            )
            .await?
            .is_none()
        {
            return Ok(());
        }
        if self.chance(0.04) {
            // A complication refunded: the credit is reversed.
            if self.after(1..10).is_some() {
                self.move_treatment(ctx, treatment, TreatmentState::Cancelled)
                    .await?;
            }
            return Ok(());
        }
        if self.chance(0.15) {
            self.returning(ctx, s, hospital).await?;
        }
        Ok(())
    }

    /// A returning patient's second treatment at the same hospital.
    async fn returning(&mut self, ctx: &Ctx, s: &mut Summary, hospital: &Hospital) -> Result<()> {
        let offers: Vec<&Offer> = OFFERS
            .iter()
            .filter(|o| hospital.specialties.iter().any(|sp| sp == o.specialty))
            .collect();
        let offer = *pick(&mut self.rng, &offers);
        if self.after(30..150).is_none() {
            return Ok(());
        }
        let currency = hospital.currency.clone().unwrap_or_else(|| "USD".into());
        let price = self.rng.random_range(offer.price.0..=offer.price.1) / 50 * 50;
        let bps = i64::from(hospital.commission_bps.unwrap_or(1000));
        let treatment = new(treatments::record(
            &self.ctx(ctx),
            self.coordinator,
            self.id()?,
            NewTreatment {
                treatment_type: offer.treatment.into(),
                disease: offer.disease.into(),
                hospital_id: hospital.id,
                cost: Money {
                    amount_minor: price * 100,
                    currency: currency.clone(),
                },
                earnings: Money {
                    amount_minor: price * bps / 100,
                    currency,
                },
                status: TreatmentState::Planned,
                appointment_ids: Vec::new(),
            },
            Idem::none(),
        )
        .await?)?;
        s.treatments += 1;
        if self.after(10..40).is_none() {
            return Ok(());
        }
        self.move_treatment(ctx, treatment.id, TreatmentState::Completed)
            .await
    }

    async fn move_treatment(
        &mut self,
        ctx: &Ctx,
        id: TreatmentId,
        status: TreatmentState,
    ) -> Result<()> {
        let current = treatments::load(ctx, id).await?;
        treatments::update(
            &self.ctx(ctx),
            self.coordinator,
            id,
            TreatmentChanges {
                version: current.version,
                status: Some(status),
                ..Default::default()
            },
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_demo_hospital_offers_something_and_every_offer_has_a_hospital() {
        for h in &HOSPITALS {
            assert!(
                h.specialties
                    .iter()
                    .any(|sp| OFFERS.iter().any(|o| o.specialty == *sp)),
                "{}",
                h.name
            );
        }
        for o in &OFFERS {
            assert!(
                HOSPITALS
                    .iter()
                    .any(|h| h.specialties.contains(&o.specialty)),
                "{}",
                o.treatment
            );
        }
        let countries: HashSet<&str> = HOSPITALS.iter().map(|h| h.country).collect();
        assert_eq!(countries.len(), 8);
        let from: HashSet<&str> = COUNTRIES.iter().map(|c| c.0).collect();
        assert_eq!(from.len(), 20);
    }

    #[test]
    fn the_stories_are_the_same_on_every_run_and_keyed_by_distinct_emails() {
        let now = Utc::now();
        let staff = [UserId::new(), UserId::new()];
        let a: Vec<String> = (0..PATIENTS)
            .map(|i| Story::new(i, now, &staff, &[]).email)
            .collect();
        let b: Vec<String> = (0..PATIENTS)
            .map(|i| Story::new(i, now, &staff, &[]).email)
            .collect();
        assert_eq!(a, b);
        assert_eq!(a.iter().collect::<HashSet<_>>().len(), PATIENTS);
        let oldest = (0..PATIENTS)
            .map(|i| Story::new(i, now, &staff, &[]).clock)
            .min()
            .unwrap_or(now);
        assert!(now - oldest > Duration::days(400), "spread over the span");
    }
}
