//! The eight reports' typed rows, and the [`ReportsRepo`] methods that run
//! each report's pipelines and decode their results into them.

use chrono::NaiveDate;
use mongodb::bson::Document;

use super::{float, id_str, int, parts, pipelines, Range, ReportsRepo, STAGES};
use crate::{
    domain::HospitalId,
    error::Result,
    repo::{read_minor, treatments::Period},
};

/// Net ledger earnings in one period and currency.
#[derive(Debug, Clone, PartialEq)]
pub struct EarningsRow {
    pub period_start: NaiveDate,
    pub currency: String,
    pub amount_minor: i64,
    /// Credits less reversals.
    pub treatments: i64,
}

/// Patients in one group (a condition, country or status), unordered
/// unless the method says otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct PatientCount {
    pub group: String,
    pub patients: i64,
}

/// Patients per condition, and how many patients there are in all.
#[derive(Debug, Clone, PartialEq)]
pub struct DiseaseCounts {
    pub patients: i64,
    /// Unordered: see [`pipelines::patients_by_disease`].
    pub conditions: Vec<PatientCount>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CountryRow {
    pub country: String,
    pub patients: i64,
    /// Of those, how many reached `completed`.
    pub completed: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StatusRow {
    pub status: String,
    pub treatment_status: String,
    pub patients: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AgeRow {
    pub country: String,
    /// One of [`super::AGE_BANDS`] or [`super::AGE_UNKNOWN`].
    pub band: String,
    pub patients: i64,
}

/// Live patients registered in the period, by the hospital they are
/// assigned to now (`None`: not assigned).
#[derive(Debug, Clone, PartialEq)]
pub struct HospitalPatientsRow {
    pub hospital_id: Option<HospitalId>,
    pub patients: i64,
    pub completed: i64,
    /// Summed over the `completed` patients.
    pub hours_to_complete: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HospitalTreatmentsRow {
    pub hospital_id: Option<HospitalId>,
    pub status: String,
    pub currency: String,
    pub treatments: i64,
    pub cost_minor: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HospitalEarningsRow {
    pub hospital_id: Option<HospitalId>,
    pub currency: String,
    pub amount_minor: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TreatmentTypeRow {
    pub treatment_type: String,
    pub currency: String,
    /// Not cancelled.
    pub treatments: i64,
    pub completed: i64,
    pub cancelled: i64,
    /// Of those not cancelled.
    pub cost_minor: i64,
    /// Of those completed.
    pub earnings_minor: i64,
}

/// How many patients of one country reached each stage.
#[derive(Debug, Clone, PartialEq)]
pub struct FunnelStageRow {
    pub country: String,
    /// In [`STAGES`] order.
    pub reached: [i64; STAGES.len()],
}

/// Patients of one country denied now for one reason.
#[derive(Debug, Clone, PartialEq)]
pub struct DenialRow {
    pub country: String,
    pub reason: String,
    pub patients: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FunnelRows {
    /// By country.
    pub stages: Vec<FunnelStageRow>,
    /// By country, then reason.
    pub denials: Vec<DenialRow>,
}

fn hospital(key: &str) -> Option<HospitalId> {
    key.parse().ok()
}

/// Patients per condition, unordered, from groups of patients per whole
/// condition list (`_id`, `n`): each group counts once under each distinct
/// condition in its list. MongoDB gives the list as an array, the stand-in
/// as the array's JSON text (docs/mongodb-compatibility.md); any other
/// string is one condition, as `$unwind` reads it; null is none.
pub(super) fn condition_counts(rows: &[Document]) -> Vec<PatientCount> {
    use mongodb::bson::Bson;
    let mut counts: Vec<PatientCount> = Vec::new();
    for row in rows {
        let list: Vec<String> = match row.get("_id") {
            Some(Bson::Array(items)) => items
                .iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect(),
            Some(Bson::String(s)) => serde_json::from_str(s).unwrap_or_else(|_| vec![s.clone()]),
            _ => Vec::new(),
        };
        let n = int(row, "n");
        let mut seen = std::collections::HashSet::new();
        for condition in list {
            if !seen.insert(condition.clone()) {
                continue;
            }
            match counts.iter_mut().find(|c| c.group == condition) {
                Some(c) => c.patients += n,
                None => counts.push(PatientCount {
                    group: condition,
                    patients: n,
                }),
            }
        }
    }
    counts
}

pub(super) fn patient_counts<'a>(
    rows: impl IntoIterator<Item = &'a Document>,
) -> Vec<PatientCount> {
    rows.into_iter()
        .map(|r| PatientCount {
            group: id_str(r),
            patients: int(r, "n"),
        })
        .collect()
}

impl ReportsRepo {
    /// Net earnings per period start and currency, by period start.
    pub async fn earnings(&self, range: Range, period: Period) -> Result<Vec<EarningsRow>> {
        let rows = Self::run(&self.ledger, pipelines::earnings(range)).await?;
        Ok(crate::repo::treatments::summarize(&rows, period)?
            .into_iter()
            .map(|e| EarningsRow {
                period_start: e.period_start,
                currency: e.currency,
                amount_minor: e.amount_minor,
                treatments: e.treatments,
            })
            .collect())
    }

    pub async fn patients_by_disease(
        &self,
        range: Range,
        country: Option<&str>,
    ) -> Result<DiseaseCounts> {
        let pipeline = pipelines::patients_by_disease(range, country);
        let (patients, rows) = tokio::try_join!(
            async {
                let filter = pipelines::patients_filter(range, country);
                Ok(crate::db::count(&self.patients, filter).await?)
            },
            Self::run(&self.patients, pipeline),
        )?;
        Ok(DiseaseCounts {
            patients: i64::try_from(patients).unwrap_or(i64::MAX),
            conditions: condition_counts(&rows),
        })
    }

    /// By patients descending, then country.
    pub async fn patients_by_country(
        &self,
        range: Range,
        country: Option<&str>,
    ) -> Result<Vec<CountryRow>> {
        let pipeline = pipelines::patients_by_country(range, country);
        let rows = Self::run(&self.patients, pipeline).await?;
        Ok(rows
            .iter()
            .map(|r| CountryRow {
                country: id_str(r),
                patients: int(r, "patients"),
                completed: int(r, "completed"),
            })
            .collect())
    }

    pub async fn patients_by_status(
        &self,
        range: Range,
        country: Option<&str>,
    ) -> Result<Vec<StatusRow>> {
        let pipeline = pipelines::patients_by_status(range, country);
        let rows = Self::run(&self.patients, pipeline).await?;
        Ok(rows
            .iter()
            .map(|r| {
                let [status, treatment_status] = key(r);
                StatusRow {
                    status,
                    treatment_status,
                    patients: int(r, "patients"),
                }
            })
            .collect())
    }

    /// Ages as of `today`.
    pub async fn patients_by_age(
        &self,
        range: Range,
        country: Option<&str>,
        today: NaiveDate,
    ) -> Result<Vec<AgeRow>> {
        let pipeline = pipelines::patients_by_age(range, country, today);
        let rows = Self::run(&self.patients, pipeline).await?;
        Ok(rows
            .iter()
            .map(|r| {
                let [country, band] = key(r);
                AgeRow {
                    country,
                    band,
                    patients: int(r, "patients"),
                }
            })
            .collect())
    }

    pub async fn hospital_patients(&self, range: Range) -> Result<Vec<HospitalPatientsRow>> {
        let rows = Self::run(&self.patients, pipelines::hospital_patients(range)).await?;
        Ok(rows
            .iter()
            .map(|r| HospitalPatientsRow {
                hospital_id: hospital(&id_str(r)),
                patients: int(r, "patients"),
                completed: int(r, "completed"),
                hours_to_complete: float(r, "hours_to_complete"),
            })
            .collect())
    }

    pub async fn hospital_treatments(&self, range: Range) -> Result<Vec<HospitalTreatmentsRow>> {
        let rows = Self::run(&self.treatments, pipelines::hospital_treatments(range)).await?;
        rows.iter()
            .map(|r| {
                let [hospital_id, status, currency] = key(r);
                Ok(HospitalTreatmentsRow {
                    hospital_id: hospital(&hospital_id),
                    status,
                    currency,
                    treatments: int(r, "treatments"),
                    cost_minor: read_minor(r, "cost_minor")?,
                })
            })
            .collect()
    }

    pub async fn hospital_earnings(&self, range: Range) -> Result<Vec<HospitalEarningsRow>> {
        let rows = Self::run(&self.ledger, pipelines::hospital_earnings(range)).await?;
        rows.iter()
            .map(|r| {
                let [hospital_id, currency] = key(r);
                Ok(HospitalEarningsRow {
                    hospital_id: hospital(&hospital_id),
                    currency,
                    amount_minor: read_minor(r, "amount_minor")?,
                })
            })
            .collect()
    }

    /// By treatment type, then currency.
    pub async fn treatments_by_type(&self, range: Range) -> Result<Vec<TreatmentTypeRow>> {
        let rows = Self::run(&self.treatments, pipelines::treatments_by_type(range)).await?;
        let mut by_type: std::collections::BTreeMap<(String, String), TreatmentTypeRow> =
            Default::default();
        for r in &rows {
            let [status, currency, treatment_type] = key(r);
            let row = by_type
                .entry((treatment_type.clone(), currency.clone()))
                .or_insert_with(|| TreatmentTypeRow {
                    treatment_type,
                    currency,
                    treatments: 0,
                    completed: 0,
                    cancelled: 0,
                    cost_minor: 0,
                    earnings_minor: 0,
                });
            let n = int(r, "treatments");
            let add = |total: i64, more: i64| {
                total.checked_add(more).ok_or_else(|| {
                    crate::error::AppError::internal("a treatments-by-type total overflowed")
                })
            };
            match status.as_str() {
                "cancelled" => row.cancelled += n,
                "completed" => {
                    row.completed += n;
                    row.treatments += n;
                    row.cost_minor = add(row.cost_minor, read_minor(r, "cost_minor")?)?;
                    row.earnings_minor = add(row.earnings_minor, read_minor(r, "earnings_minor")?)?;
                }
                _ => {
                    row.treatments += n;
                    row.cost_minor = add(row.cost_minor, read_minor(r, "cost_minor")?)?;
                }
            }
        }
        Ok(by_type.into_values().collect())
    }

    pub async fn funnel(&self, range: Range, country: Option<&str>) -> Result<FunnelRows> {
        let stages = Self::run(&self.patients, pipelines::funnel_stages(range, country))
            .await?
            .iter()
            .map(|r| FunnelStageRow {
                country: id_str(r),
                reached: STAGES.map(|s| int(r, s.as_str())),
            })
            .collect();
        let denials = Self::run(&self.patients, pipelines::funnel_reasons(range, country))
            .await?
            .iter()
            .map(|r| {
                let [country, reason] = key(r);
                DenialRow {
                    country,
                    reason,
                    patients: int(r, "patients"),
                }
            })
            .collect();
        Ok(FunnelRows { stages, denials })
    }
}

/// The `N` parts of a row's `a|b|...` group key.
fn key<const N: usize>(r: &Document) -> [String; N] {
    let mut parts = parts(&id_str(r), N).into_iter();
    std::array::from_fn(|_| parts.next().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use mongodb::bson::doc;

    use super::*;

    #[test]
    fn a_group_key_splits_into_as_many_parts_as_asked() {
        let r = doc! { "_id": "65f0c0ffee00000000000001|completed|EUR" };
        let [hospital_id, status, currency] = key(&r);
        assert_eq!(
            hospital(&hospital_id).map(|h| h.to_string()).as_deref(),
            Some("65f0c0ffee00000000000001")
        );
        assert_eq!((status.as_str(), currency.as_str()), ("completed", "EUR"));
        let [country, reason] = key(&doc! { "_id": "DE|too|expensive" });
        assert_eq!((country.as_str(), reason.as_str()), ("DE", "too|expensive"));
        assert_eq!(hospital(""), None);
    }
}
