//! One patient's story: each step through the workflows at its moment.

mod trip;

use chrono::{DateTime, Duration, Utc};
use rand::{rngs::StdRng, Rng, SeedableRng};

use super::{at, data::*, new, Summary, DAY, DOMAIN, SEED, SPAN_DAYS};
use crate::{
    domain::{
        appointment::AppointmentStatus,
        hospital::Hospital,
        money::Money,
        patient::{PatientContact, TreatmentStatus},
        quote::QuoteStatus,
        PatientId, UserId,
    },
    error::{AppError, Result},
    workflow::{
        appointments::{self, NewAppointment},
        idempotency::Idem,
        patients::{self, NewPatient, PatientChanges},
        quotes::{self, Acceptance, Answer, NewQuote},
        Ctx,
    },
};

/// One patient's story, drawn from its own seeded generator so that every
/// run draws the same one whatever was loaded before.
pub(super) struct Story<'a> {
    rng: StdRng,
    index: usize,
    now: DateTime<Utc>,
    /// The moment of the last step.
    pub(super) clock: DateTime<Utc>,
    name: String,
    pub(super) email: String,
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
    pub(super) fn new(
        index: usize,
        now: DateTime<Utc>,
        staff: &[UserId],
        hospitals: &'a [Hospital],
    ) -> Self {
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

    pub(super) async fn tell(&mut self, ctx: &Ctx, s: &mut Summary) -> Result<()> {
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
}

#[cfg(test)]
#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::{super::PATIENTS, *};

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
