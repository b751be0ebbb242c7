//! A patient's travel record: passport, visa, flights, accommodation,
//! companions and pickup; and the arrivals board across patients.

use axum::{
    extract::State,
    response::{IntoResponse, Response},
    Extension, Json,
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::{Validate, ValidationError};

use crate::{
    domain::{
        dates::{validate_date, validate_instant},
        iso::validate_country,
        permission::{RouteKey, PASSPORT_NUMBERS},
        travel::{mask_passport, Companion, Leg, Travel, Visa, VisaStatus, Warning},
        HospitalId, PatientId, UserId,
    },
    error::{AppError, ErrorResponse},
    http::{
        audit::AuditPatients,
        auth::CurrentUser,
        dto::{page_request, Page},
        extract::{ApiJson, ApiPath, ApiQuery},
        names,
        params::{date_window, PatientPath},
        text::{validate_note, validate_text},
        versioning::{etag, expected, stale_as_precondition, IfMatch},
    },
    state::AppState,
    workflow::{
        arrivals,
        travel::{self, PassportInput, TravelInput},
    },
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_travel, put_travel))
        .routes(routes!(arrivals))
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ArrivalsQuery {
    #[param(minimum = 1, maximum = 1_000_000)]
    pub page: Option<u64>,
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<u64>,
    /// On the arrival time: `YYYY-MM-DD` (inclusive, UTC) or RFC 3339;
    /// default the start of today (UTC).
    pub from: Option<String>,
    /// `YYYY-MM-DD` (inclusive, whole day) or RFC 3339 (exclusive);
    /// default the end of the 14th day after `from`'s. At most 92 days
    /// after `from`.
    pub to: Option<String>,
}

/// A row of the arrivals board.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArrivalRow {
    pub patient_id: PatientId,
    pub patient_name: String,
    pub arrival_at: DateTime<Utc>,
    pub flight: Option<String>,
    pub departure_at: Option<DateTime<Utc>>,
    pub hospital_id: Option<HospitalId>,
    pub hospital_name: Option<String>,
    pub assigned_to: Option<UserId>,
    pub assigned_to_name: Option<String>,
    /// `null` when no visa status is recorded.
    pub visa_status: Option<VisaStatus>,
    pub pickup_arranged: bool,
    pub warnings: Vec<Warning>,
}

/// The coordinator's board: live patients arriving in `from`..`to`
/// (default today and the next 14 days), earliest first, with their warnings as of
/// today (UTC): `passport_expires_soon` (within 6 months of the departure),
/// `visa_not_granted` (14 days before arrival), `no_pickup` (3 days
/// before), `no_treatment` (none recorded, or only cancelled ones).
#[utoipa::path(get, path = "/api/v1/arrivals", tag = "travel", params(ArrivalsQuery),
    responses((status = 200, body = Page<ArrivalRow>), (status = 400, body = ErrorResponse)))]
pub async fn arrivals(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ArrivalsQuery>,
) -> Result<Response, AppError> {
    let page = page_request(q.page, q.per_page)?;
    let (from, before) = date_window(q.from.as_deref(), q.to.as_deref())?;
    let board = arrivals::board(&state.workflows, from, before).await?;
    let total = board.len() as u64;
    let rows: Vec<ArrivalRow> = board
        .into_iter()
        .skip(usize::try_from(page.skip()).unwrap_or(usize::MAX))
        .take(usize::try_from(page.per_page).unwrap_or(100))
        .filter_map(|a| {
            let arrival = a.travel.arrival.as_ref()?;
            Some(ArrivalRow {
                patient_id: a.patient.id,
                patient_name: a.patient.name.clone(),
                arrival_at: arrival.at.to_chrono(),
                flight: arrival.flight.clone(),
                departure_at: a.travel.departure.as_ref().map(|d| d.at.to_chrono()),
                hospital_id: a.patient.hospital_id,
                hospital_name: a.patient.hospital_id.and_then(names::hospital),
                assigned_to: a.patient.assigned_to,
                assigned_to_name: names::user_opt(a.patient.assigned_to),
                visa_status: a.travel.visa.as_ref().map(|v| v.status),
                pickup_arranged: a.travel.pickup_arranged,
                warnings: a.warnings,
            })
        })
        .collect();
    let shown = rows.iter().map(|r| r.patient_id.to_string()).collect();
    Ok((
        Extension(AuditPatients(shown)),
        Json(Page::new(rows, page, total)),
    )
        .into_response())
}

#[derive(Debug, Clone, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PassportBody {
    /// 5 to 20 letters and digits (spaces and dashes are dropped); the
    /// masked form a reader was shown keeps the stored number.
    #[validate(length(min = 1, max = 40))]
    #[schema(min_length = 1, max_length = 40)]
    pub number: String,
    /// ISO 3166-1 alpha-2 of the issuing country, upper case.
    #[validate(custom(function = "validate_country"))]
    #[schema(min_length = 2, max_length = 2, pattern = "^[A-Z]{2}$", example = "DE")]
    pub country: String,
    /// `YYYY-MM-DD`, in 1900 ..= 2200.
    #[validate(custom(function = "validate_date"))]
    #[schema(value_type = String, format = Date)]
    pub expires_on: NaiveDate,
}

#[derive(Debug, Clone, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VisaBody {
    pub status: VisaStatus,
    #[validate(custom(function = "validate_note"))]
    #[schema(max_length = 2000)]
    pub notes: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LegBody {
    /// RFC 3339, in 1900 ..= 2200.
    #[validate(custom(function = "validate_instant"))]
    pub at: DateTime<Utc>,
    #[validate(length(min = 2, max = 12))]
    #[schema(min_length = 2, max_length = 12, example = "TK1636")]
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
#[schema(example = json!({"passport": {"number": "C01X00T47", "country": "DE", "expires_on": "2031-05-01"},
    "visa": {"status": "not_needed"}, "arrival": {"at": "2027-03-08T13:45:00Z", "flight": "TK1636"},
    "departure": {"at": "2027-03-22T07:30:00Z", "flight": "TK1635"},
    "accommodation": "Hotel next to Anadolu Orthopaedic Hospital, Ataşehir, 14 nights",
    "companions": [{"name": "Anna Becker", "relation": "daughter"}], "pickup_arranged": true}))]
pub struct PutTravel {
    /// The record's `version`; leave it out only for the first PUT.
    #[schema(maximum = 9_223_372_036_854_775_807_i64)]
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
    #[schema(max_length = 2000)]
    pub accommodation: Option<String>,
    /// At most 20.
    #[validate(custom(function = "validate_companions"))]
    #[schema(max_items = 20)]
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
#[utoipa::path(get, path = "/api/v1/patients/{id}/travel", tag = "travel", params(PatientPath),
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
    Ok(([etag(t.version)], Json(TravelResponse::new(&t, show))))
}

/// Save the whole travel record: the first without `version`, later ones
/// with it (409 when stale or missing). The departure must follow the
/// arrival. Every change goes to the patient's history, the passport
/// number masked.
#[utoipa::path(put, path = "/api/v1/patients/{id}/travel", tag = "travel", params(PatientPath, ("If-Match" = Option<String>, Header, description = "The record's ETag as read; in place of the body's `version`")),
    request_body = PutTravel,
    responses(
        (status = 200, body = TravelResponse),
        (status = 404, body = ErrorResponse),
        (status = 409, body = ErrorResponse),
        (status = 412, description = "Stale If-Match", body = ErrorResponse),
        (status = 422, body = ErrorResponse),
        (status = 428, description = "The record exists and neither version nor If-Match was sent", body = ErrorResponse),
    ))]
pub async fn put_travel(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    if_match: IfMatch,
    ApiPath(PatientPath { id }): ApiPath<PatientPath>,
    ApiJson(body): ApiJson<PutTravel>,
) -> Result<impl IntoResponse, AppError> {
    // The first PUT names no version; later ones must (428 otherwise,
    // decided by the workflow, which knows whether the record exists).
    let base = match (body.version, if_match.0) {
        (None, None) => None,
        (v, _) => Some(expected(v, if_match)?),
    };
    let input = TravelInput {
        version: base.map(|b| b.version),
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
    let t = stale_as_precondition(
        travel::save(&state.workflows, me.id, id, input).await,
        base.is_some_and(|b| b.from_header),
    )?;
    let show = shows_passport(&state, &me).await?;
    Ok(([etag(t.version)], Json(TravelResponse::new(&t, show))))
}
