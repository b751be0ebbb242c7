//! Partner hospitals: CRUD with filters, the patients assigned to each.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::{Validate, ValidationError};

use crate::{
    domain::{
        hospital::{Contact, Hospital},
        iso::{validate_country, validate_currency},
        HospitalId,
    },
    error::{AppError, ErrorResponse},
    http::{
        audit::AuditPatients,
        auth::CurrentUser,
        dto::{page_request, Page, PatientResponse},
        extract::{ApiJson, ApiPath, ApiQuery},
        idempotency::{created, json_body, IdempotencyKey},
        params::PageOnly,
        text::validate_text,
    },
    repo::{
        hospitals::{HospitalChanges, HospitalFilter},
        patients::{PatientFilter, PatientSort},
    },
    state::AppState,
    workflow::{
        hospitals::{self, NewHospital},
        idempotency::Idem,
    },
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_hospitals, create_hospital))
        .routes(routes!(get_hospital, update_hospital, delete_hospital))
        .routes(routes!(hospital_patients))
}

fn validate_specialties(list: &[String]) -> Result<(), ValidationError> {
    if list.len() > 100
        || list
            .iter()
            .any(|s| s.trim().is_empty() || s.chars().count() > 100)
    {
        return Err(ValidationError::new("specialties")
            .with_message("at most 100 specialties of 1 to 100 characters".into()));
    }
    Ok(())
}

/// `specialties` as [`validate_specialties`] takes it.
fn specialties_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(100)),
        )
        .max_items(Some(100))
        .description(Some(
            "At most 100 specialties, each at most 100 characters and not blank.",
        ))
        .build()
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Anadolu Orthopaedic Hospital", "location": "Istanbul, Ataşehir",
    "country": "TR", "contact": {"person": "Dr. Elif Demir",
    "email": "international@anadolu-ortho.example.com", "phone": "+90 216 555 0134"},
    "specialties": ["orthopaedics", "joint replacement", "sports medicine"],
    "commission_bps": 1250, "currency": "EUR", "active": true}))]
pub struct CreateHospital {
    /// 1 to 200 characters once trimmed.
    #[validate(custom(function = "validate_text"))]
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// City or address; 1 to 200 characters once trimmed.
    #[validate(custom(function = "validate_text"))]
    #[schema(min_length = 1, max_length = 200)]
    pub location: String,
    /// ISO 3166-1 alpha-2, upper case.
    #[validate(custom(function = "validate_country"))]
    #[schema(min_length = 2, max_length = 2, pattern = "^[A-Z]{2}$", example = "TR")]
    pub country: String,
    #[validate(nested)]
    pub contact: Option<Contact>,
    #[validate(custom(function = "validate_specialties"))]
    #[schema(schema_with = specialties_schema)]
    pub specialties: Option<Vec<String>>,
    /// Default commission in basis points (0..=10000; 1250 = 12.5 %).
    /// Optional until quotes need it: accepting a quote of a hospital
    /// without commission terms needs the earnings in the request.
    #[validate(range(min = 0, max = 10000))]
    #[schema(minimum = 0, maximum = 10000)]
    pub commission_bps: Option<i32>,
    /// ISO 4217 currency the hospital quotes in, upper case.
    #[validate(custom(function = "validate_currency"))]
    #[schema(
        min_length = 3,
        max_length = 3,
        pattern = "^[A-Z]{3}$",
        example = "EUR"
    )]
    pub currency: Option<String>,
    /// Defaults to true.
    pub active: Option<bool>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"location": "Istanbul, Kadıköy", "commission_bps": 1500,
    "specialties": ["orthopaedics", "joint replacement", "spine surgery"]}))]
pub struct UpdateHospital {
    /// 1 to 200 characters once trimmed.
    #[validate(custom(function = "validate_text"))]
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    /// 1 to 200 characters once trimmed.
    #[validate(custom(function = "validate_text"))]
    #[schema(min_length = 1, max_length = 200)]
    pub location: Option<String>,
    /// ISO 3166-1 alpha-2, upper case.
    #[validate(custom(function = "validate_country"))]
    #[schema(min_length = 2, max_length = 2, pattern = "^[A-Z]{2}$", example = "TR")]
    pub country: Option<String>,
    #[validate(nested)]
    pub contact: Option<Contact>,
    #[validate(custom(function = "validate_specialties"))]
    #[schema(schema_with = specialties_schema)]
    pub specialties: Option<Vec<String>>,
    /// Basis points, 0..=10000.
    #[validate(range(min = 0, max = 10000))]
    #[schema(minimum = 0, maximum = 10000)]
    pub commission_bps: Option<i32>,
    /// ISO 4217, upper case.
    #[validate(custom(function = "validate_currency"))]
    #[schema(
        min_length = 3,
        max_length = 3,
        pattern = "^[A-Z]{3}$",
        example = "EUR"
    )]
    pub currency: Option<String>,
    pub active: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HospitalResponse {
    pub id: HospitalId,
    pub name: String,
    pub location: String,
    pub country: String,
    pub contact: Option<Contact>,
    pub specialties: Vec<String>,
    pub commission_bps: Option<i32>,
    pub currency: Option<String>,
    pub active: bool,
    /// Live (not deleted) patients currently assigned.
    pub patients_assigned: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl HospitalResponse {
    fn new(h: &Hospital, patients_assigned: u64) -> Self {
        HospitalResponse {
            id: h.id,
            name: h.name.clone(),
            location: h.location.clone(),
            country: h.country.clone(),
            contact: h.contact.clone(),
            specialties: h.specialties.clone(),
            commission_bps: h.commission_bps,
            currency: h.currency.clone(),
            active: h.active,
            patients_assigned,
            created_at: h.created_at.to_chrono(),
            updated_at: h.updated_at.to_chrono(),
        }
    }
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListHospitalsQuery {
    #[param(minimum = 1, maximum = 1_000_000)]
    pub page: Option<u64>,
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<u64>,
    /// Name contains, case-insensitive.
    #[validate(length(max = 100))]
    #[param(max_length = 100)]
    pub q: Option<String>,
    /// ISO 3166-1 alpha-2, upper case.
    #[validate(custom(function = "validate_country"))]
    #[param(pattern = "^[A-Z]{2}$")]
    pub country: Option<String>,
    pub active: Option<bool>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct HospitalPath {
    /// The hospital's id.
    pub id: HospitalId,
}

impl From<CreateHospital> for NewHospital {
    fn from(b: CreateHospital) -> Self {
        NewHospital {
            name: b.name,
            location: b.location,
            country: b.country,
            contact: b.contact,
            specialties: b.specialties.unwrap_or_default(),
            commission_bps: b.commission_bps,
            currency: b.currency,
            active: b.active.unwrap_or(true),
        }
    }
}

/// List hospitals.
#[utoipa::path(get, path = "/api/v1/hospitals", tag = "hospitals", params(ListHospitalsQuery),
    responses((status = 200, body = Page<HospitalResponse>), (status = 400, body = ErrorResponse)))]
pub async fn list_hospitals(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListHospitalsQuery>,
) -> Result<Json<Page<HospitalResponse>>, AppError> {
    let page = page_request(q.page, q.per_page)?;
    let filter = HospitalFilter {
        q: q.q,
        country: q.country,
        active: q.active,
    };
    let (items, total) = state.repos.hospitals.list(&filter, page).await?;
    let ids: Vec<_> = items.iter().map(|h| h.id).collect();
    let assigned: std::collections::HashMap<_, _> = state
        .repos
        .patients
        .count_assigned_each(&ids)
        .await?
        .into_iter()
        .collect();
    Ok(Json(Page::new(
        items
            .iter()
            .map(|h| HospitalResponse::new(h, assigned.get(&h.id).copied().unwrap_or(0)))
            .collect(),
        page,
        total,
    )))
}

/// Add a partner hospital. Names are unique per country (ignoring case).
#[utoipa::path(post, path = "/api/v1/hospitals", tag = "hospitals", request_body = CreateHospital,
    responses(
        (status = 201, body = HospitalResponse),
        (status = 409, description = "Same name in the same country", body = ErrorResponse),
        (status = 422, body = ErrorResponse),
    ))]
pub async fn create_hospital(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<CreateHospital>,
) -> Result<Response, AppError> {
    let idem = Idem {
        request: key.as_ref(),
        status: StatusCode::CREATED.as_u16(),
        render: &|h: &Hospital| json_body(&HospitalResponse::new(h, 0)),
    };
    let outcome = hospitals::create(&state.workflows, me.id, body.into(), idem).await?;
    Ok(created(outcome, |h| {
        (StatusCode::CREATED, Json(HospitalResponse::new(&h, 0))).into_response()
    }))
}

/// Read a hospital, with the number of patients assigned to it.
#[utoipa::path(get, path = "/api/v1/hospitals/{id}", tag = "hospitals", params(HospitalPath),
    responses((status = 200, body = HospitalResponse), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
pub async fn get_hospital(
    State(state): State<AppState>,
    ApiPath(HospitalPath { id }): ApiPath<HospitalPath>,
) -> Result<Json<HospitalResponse>, AppError> {
    let hospital = hospitals::load(&state.workflows, id).await?;
    let assigned = state.repos.patients.count_assigned(id).await?;
    Ok(Json(HospitalResponse::new(&hospital, assigned)))
}

/// Update a hospital (deactivate it with `{"active": false}`).
#[utoipa::path(patch, path = "/api/v1/hospitals/{id}", tag = "hospitals", params(HospitalPath), request_body = UpdateHospital,
    responses(
        (status = 200, body = HospitalResponse),
        (status = 404, body = ErrorResponse),
        (status = 409, body = ErrorResponse),
        (status = 422, body = ErrorResponse),
    ))]
pub async fn update_hospital(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiPath(HospitalPath { id }): ApiPath<HospitalPath>,
    ApiJson(body): ApiJson<UpdateHospital>,
) -> Result<Json<HospitalResponse>, AppError> {
    let changes = HospitalChanges {
        name: body.name,
        location: body.location,
        country: body.country,
        contact: body.contact.map(Some),
        specialties: body.specialties,
        commission_bps: body.commission_bps,
        currency: body.currency,
        active: body.active,
    };
    let updated = hospitals::update(&state.workflows, me.id, id, changes).await?;
    let assigned = state.repos.patients.count_assigned(id).await?;
    Ok(Json(HospitalResponse::new(&updated, assigned)))
}

/// Delete a hospital nobody refers to; otherwise 409 (deactivate it instead).
#[utoipa::path(delete, path = "/api/v1/hospitals/{id}", tag = "hospitals", params(HospitalPath),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, body = ErrorResponse),
        (status = 409, description = "Patients or treatments refer to it", body = ErrorResponse),
    ))]
pub async fn delete_hospital(
    State(state): State<AppState>,
    ApiPath(HospitalPath { id }): ApiPath<HospitalPath>,
) -> Result<StatusCode, AppError> {
    hospitals::delete(&state.workflows, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The live patients assigned to a hospital.
#[utoipa::path(get, path = "/api/v1/hospitals/{id}/patients", tag = "hospitals", params(HospitalPath, PageOnly),
    responses((status = 200, body = Page<PatientResponse>), (status = 404, body = ErrorResponse)))]
pub async fn hospital_patients(
    State(state): State<AppState>,
    ApiPath(HospitalPath { id }): ApiPath<HospitalPath>,
    ApiQuery(q): ApiQuery<PageOnly>,
) -> Result<impl IntoResponse, AppError> {
    let page = page_request(q.page, q.per_page)?;
    hospitals::load(&state.workflows, id).await?;
    let filter = PatientFilter {
        deleted: false,
        hospital_id: Some(id),
        ..Default::default()
    };
    let (patients, total) = state
        .repos
        .patients
        .list(&filter, PatientSort::NameAsc, page)
        .await?;
    let audit = AuditPatients(patients.iter().map(|p| p.id.to_string()).collect());
    let body = Page::new(
        patients.iter().map(PatientResponse::from).collect(),
        page,
        total,
    );
    Ok((axum::Extension(audit), Json(body)))
}
