//! The part of a story after a quote is accepted: the consultation, the
//! trip, the treatment started and completed (or cancelled), aftercare and
//! a returning patient's second treatment.

use chrono::{Duration, NaiveDate};
use rand::Rng;

use super::{pick, Story};
use crate::{
    demo::{
        data::{Offer, OFFERS},
        new, Summary,
    },
    domain::{
        appointment::AppointmentStatus,
        hospital::Hospital,
        money::Money,
        travel::{Leg, Visa, VisaStatus},
        treatment::TreatmentState,
        TreatmentId,
    },
    error::Result,
    workflow::{
        appointments::{self, NewAppointment},
        idempotency::Idem,
        travel::{self, TravelInput},
        treatments::{self, NewTreatment, TreatmentChanges},
        Ctx,
    },
};

impl Story<'_> {
    /// The trip: the consultation booked, the travel record, then the
    /// treatment started and completed as the days pass (or cancelled).
    pub(super) async fn trip(
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

    pub(super) async fn move_treatment(
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
