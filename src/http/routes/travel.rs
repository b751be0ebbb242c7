//! A patient's travel record: passport, visa, flights, accommodation,
//! companions and pickup.

use axum::{extract::State, response::IntoResponse, Json};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::{Validate, ValidationError};

use crate::{
    domain::{
        dates::{validate_date, validate_instant},
        iso::validate_country,
        permission::{RouteKey, PASSPORT_NUMBERS},
        travel::{mask_passport, Companion, Leg, Travel, Visa, VisaStatus},
        PatientId, UserId,
    },
    error::{AppError, ErrorResponse},
    http::{
        auth::CurrentUser,
        extract::{ApiJson, ApiPath},
        names,
        params::PatientPath,
        text::{validate_note, validate_text},
    },
    state::AppState,
    workflow::travel::{self, PassportInput, TravelInput},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_travel, put_travel))
}

#[derive(Debug, Clone, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PassportBody {
    /// 5 to 20 letters and digits (spaces and dashes are dropped); the
    /// masked form a reader was shown keeps the stored number.
    #[validate(length(min = 1, max = 40))]
    pub number: String,
    /// ISO 3166-1 alpha-2 of the issuing country.
    #[validate(custom(function = "validate_country"))]
    pub country: String,
    #[validate(custom(function = "validate_date"))]
    #[schema(value_type = String, format = Date)]
    pub expires_on: NaiveDate,
}

#[derive(Debug, Clone, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VisaBody {
    pub status: VisaStatus,
    #[validate(custom(function = "validate_note"))]
    pub notes: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LegBody {
    #[validate(custom(function = "validate_instant"))]
    pub at: DateTime<Utc>,
    #[validate(length(min = 2, max = 12))]
    pub flight: Option<String>,
}

fn validate_companions(list: &[Companion]) -> Result<(), ValidationError> {
    let bad = |s: &str| validate_text(s).is_err();
    if list.len() > 20 || list.iter().any(|c| bad(&c.name) || bad(&c.relation)) {
        return Err(ValidationError::new("companions").with_message(
            "at most 20 companions, each name and relation 1 to 200 characters".into(),
        ));
    }
    Ok(())
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"passport": {"number": "U12345678", "country": "GB", "expires_on": "2030-05-01"},
    "visa": {"status": "invitation_requested"}, "arrival": {"at": "2026-12-10T09:30:00Z", "flight": "TK1980"},
    "departure": {"at": "2026-12-24T18:00:00Z", "flight": "TK1979"}, "accommodation": "Hotel near the hospital",
    "companions": [{"name": "Jane Doe", "relation": "spouse"}], "pickup_arranged": false}))]
pub struct PutTravel {
    /// The record's `version`; leave it out only for the first PUT.
    pub version: Option<i64>,
    #[validate(nested)]
    pub passport: Option<PassportBody>,
    #[validate(nested)]
    pub visa: Option<VisaBody>,
    #[validate(nested)]
    pub arrival: Option<LegBody>,
    #[validate(nested)]
    pub departure: Option<LegBody>,
    #[validate(custom(function = "validate_note"))]
    pub accommodation: Option<String>,
    #[validate(custom(function = "validate_companions"))]
    pub companions: Option<Vec<Companion>>,
    pub pickup_arranged: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TravelResponse {
    pub patient_id: PatientId,
    /// `number` in full only for those the matrix lets see it
    /// (`GET /api/v1/patients/{id}/travel?passport=shown`); otherwise its
    /// last four characters.
    pub passport: Option<PassportBody>,
    pub visa: Option<VisaBody>,
    pub arrival: Option<LegBody>,
    pub departure: Option<LegBody>,
    pub accommodation: Option<String>,
    pub companions: Vec<Companion>,
    pub pickup_arranged: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub created_by: UserId,
    pub created_by_name: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: UserId,
    pub updated_by_name: Option<String>,
}

fn leg(l: &Leg) -> LegBody {
    LegBody {
        at: l.at.to_chrono(),
        flight: l.flight.clone(),
    }
}

impl TravelResponse {
    fn new(t: &Travel, show_passport: bool) -> Self {
        TravelResponse {
            patient_id: t.patient_id,
            passport: t.passport.as_ref().map(|p| PassportBody {
                number: if show_passport {
                    p.number.clone()
                } else {
                    mask_passport(&p.number)
                },
                country: p.country.clone(),
                expires_on: NaiveDate::parse_from_str(&p.expires_on, "%Y-%m-%d")
                    .unwrap_or_default(),
            }),
            visa: t.visa.as_ref().map(|v| VisaBody {
                status: v.status,
                notes: v.notes.clone(),
            }),
            arrival: t.arrival.as_ref().map(leg),
            departure: t.departure.as_ref().map(leg),
            accommodation: t.accommodation.clone(),
            companions: t.companions.clone(),
            pickup_arranged: t.pickup_arranged,
            version: t.version,
            created_at: t.created_at.to_chrono(),
            created_by: t.created_by,
            created_by_name: names::user(t.created_by),
            updated_at: t.updated_at.to_chrono(),
            updated_by: t.updated_by,
            updated_by_name: names::user(t.updated_by),
        }
    }
}

/// Whether the caller may see passport numbers in full.
async fn shows_passport(
    state: &AppState,
    me: &crate::auth::cache::Principal,
) -> Result<bool, AppError> {
    let matrix = state.permissions.get(&state.repos.permissions).await?;
    Ok(matrix.allows(
        me.role,
        &me.overrides,
        &RouteKey::new("GET", PASSPORT_NUMBERS),
    ))
}

/// The patient's travel record (404 until the first PUT).
#[utoipa::path(get, path = "/patients/{id}/travel", tag = "travel", params(PatientPath),
    responses((status = 200, body = TravelResponse), (status = 404, body = ErrorResponse)))]
pub async fn get_travel(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiPath(PatientPath { id }): ApiPath<PatientPath>,
) -> Result<impl IntoResponse, AppError> {
    let t = travel::load(&state.workflows, id)
        .await?
        .ok_or_else(|| AppError::not_found("travel record"))?;
    let show = shows_passport(&state, &me).await?;
    Ok(Json(TravelResponse::new(&t, show)))
}

/// Save the whole travel record: the first without `version`, later ones
/// with it (409 when stale or missing). The departure must follow the
/// arrival. Every change goes to the patient's history, the passport
/// number masked.
#[utoipa::path(put, path = "/patients/{id}/travel", tag = "travel", params(PatientPath),
    request_body = PutTravel,
    responses(
        (status = 200, body = TravelResponse),
        (status = 404, body = ErrorResponse),
        (status = 409, body = ErrorResponse),
        (status = 422, body = ErrorResponse),
    ))]
pub async fn put_travel(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiPath(PatientPath { id }): ApiPath<PatientPath>,
    ApiJson(body): ApiJson<PutTravel>,
) -> Result<impl IntoResponse, AppError> {
    let input = TravelInput {
        version: body.version,
        passport: body.passport.map(|p| PassportInput {
            number: p.number,
            country: p.country,
            expires_on: p.expires_on,
        }),
        visa: body.visa.map(|v| Visa {
            status: v.status,
            notes: v
                .notes
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty()),
        }),
        arrival: body.arrival.map(|l| Leg {
            at: mongodb::bson::DateTime::from_chrono(l.at),
            flight: l.flight,
        }),
        departure: body.departure.map(|l| Leg {
            at: mongodb::bson::DateTime::from_chrono(l.at),
            flight: l.flight,
        }),
        accommodation: body.accommodation,
        companions: body.companions.unwrap_or_default(),
        pickup_arranged: body.pickup_arranged.unwrap_or(false),
    };
    let t = travel::save(&state.workflows, me.id, id, input).await?;
    let show = shows_passport(&state, &me).await?;
    Ok(Json(TravelResponse::new(&t, show)))
}
