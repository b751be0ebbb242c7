//! Quotes: ask hospitals for a price, record their answers, compare them
//! side by side and accept one (which books the treatment).

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::Validate;

use crate::{
    domain::{
        dates::validate_date,
        money::Money,
        quote::{Quote, QuoteStatus},
        HospitalId, PatientId, QuoteId, TreatmentId, UserId,
    },
    error::{AppError, ErrorResponse},
    http::{
        audit::AuditPatients,
        auth::CurrentUser,
        dto::{page_request, Page, TreatmentResponse},
        extract::{ApiJson, ApiPath, ApiQuery, MaybeJson},
        idempotency::{created, json_body, IdempotencyKey},
        names,
        params::{PageOnly, PatientPath},
        text::{validate_note, validate_text},
        versioning::{etag, expected, stale_as_precondition, IfMatch},
    },
    state::AppState,
    workflow::{
        idempotency::Idem,
        patients,
        quotes::{self, Acceptance, Answer, Booked, NewQuote},
    },
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_quotes, request_quote))
        .routes(routes!(get_quote, answer_quote))
        .routes(routes!(accept_quote))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"hospital_id": "665f1c2e8b3e4a0012345678",
    "treatment_type": "knee replacement", "disease": "osteoarthritis",
    "notes": "Right knee; MRI from 2026-11-10 attached to the patient's documents."}))]
pub struct RequestQuote {
    /// An active hospital.
    pub hospital_id: HospitalId,
    /// The treatment priced, e.g. "knee replacement"; quotes for the same
    /// type (ignoring case) are compared and declined together. 1 to 200
    /// characters once trimmed.
    #[validate(custom(function = "validate_text"))]
    #[schema(min_length = 1, max_length = 200)]
    pub treatment_type: String,
    /// 1 to 200 characters once trimmed.
    #[validate(custom(function = "validate_text"))]
    #[schema(min_length = 1, max_length = 200)]
    pub disease: Option<String>,
    #[validate(custom(function = "validate_note"))]
    #[schema(max_length = 2000)]
    pub notes: Option<String>,
}

/// The hospital's answer, as `received` or `declined`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnswerStatus {
    Received,
    Declined,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"version": 1, "status": "received",
    "amount": {"amount_minor": 1_250_000, "currency": "EUR"}, "valid_until": "2030-06-30",
    "includes": "surgery, implant, 5 nights in hospital, airport transfers"}))]
pub struct AnswerQuote {
    /// The `version` the answer is based on (or send `If-Match`); a stale
    /// one is a 409.
    #[schema(maximum = 9_223_372_036_854_775_807_i64)]
    pub version: Option<i64>,
    pub status: AnswerStatus,
    /// The price; required when `received`.
    #[validate(nested)]
    pub amount: Option<Money>,
    /// The last day the price holds (`YYYY-MM-DD`, in 1900 ..= 2200);
    /// required when `received`, and then not in the past.
    #[validate(custom(function = "validate_date"))]
    pub valid_until: Option<NaiveDate>,
    /// What the price covers.
    #[validate(custom(function = "validate_note"))]
    #[schema(max_length = 2000)]
    pub includes: Option<String>,
    #[validate(custom(function = "validate_note"))]
    #[schema(max_length = 2000)]
    pub notes: Option<String>,
}

#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"earnings": {"amount_minor": 156_250, "currency": "EUR"}}))]
pub struct AcceptQuote {
    /// The company's commission; required when the hospital has no
    /// commission terms, and overrides them when given.
    #[validate(nested)]
    pub earnings: Option<Money>,
    /// The treatment's disease; required when the quote names none. 1 to
    /// 200 characters once trimmed.
    #[validate(custom(function = "validate_text"))]
    #[schema(min_length = 1, max_length = 200)]
    pub disease: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QuoteResponse {
    pub id: QuoteId,
    pub patient_id: PatientId,
    pub hospital_id: HospitalId,
    pub hospital_name: Option<String>,
    pub treatment_type: String,
    pub disease: Option<String>,
    pub notes: Option<String>,
    /// `expired` for a received quote past `valid_until`.
    pub status: QuoteStatus,
    /// Whether the price no longer holds (past `valid_until`, not accepted).
    pub expired: bool,
    pub amount: Option<Money>,
    pub valid_until: Option<NaiveDate>,
    pub includes: Option<String>,
    pub answered_at: Option<DateTime<Utc>>,
    pub accepted_at: Option<DateTime<Utc>>,
    /// The treatment accepting it booked.
    pub treatment_id: Option<TreatmentId>,
    pub version: i64,
    pub created_by: UserId,
    pub created_by_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_by: UserId,
    pub updated_by_name: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl QuoteResponse {
    fn new(q: &Quote, today: NaiveDate) -> Self {
        QuoteResponse {
            id: q.id,
            patient_id: q.patient_id,
            hospital_id: q.hospital_id,
            hospital_name: names::hospital(q.hospital_id),
            treatment_type: q.treatment_type.clone(),
            disease: q.disease.clone(),
            notes: q.notes.clone(),
            status: q.shown_status(today),
            expired: q.is_expired(today),
            amount: q.amount.clone(),
            valid_until: q
                .valid_until
                .as_deref()
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()),
            includes: q.includes.clone(),
            answered_at: q.answered_at.map(|d| d.to_chrono()),
            accepted_at: q.accepted_at.map(|d| d.to_chrono()),
            treatment_id: q.treatment_id,
            version: q.version,
            created_by: q.created_by,
            created_by_name: names::user(q.created_by),
            created_at: q.created_at.to_chrono(),
            updated_by: q.updated_by,
            updated_by_name: names::user(q.updated_by),
            updated_at: q.updated_at.to_chrono(),
        }
    }
}

/// An accepted quote and the planned treatment it booked.
#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptedResponse {
    pub quote: QuoteResponse,
    pub treatment: TreatmentResponse,
}

impl AcceptedResponse {
    fn new(b: &Booked, today: NaiveDate) -> Self {
        AcceptedResponse {
            quote: QuoteResponse::new(&b.quote, today),
            treatment: TreatmentResponse::from(&b.treatment),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct QuotePath {
    /// The quote's id.
    pub id: QuoteId,
}

/// A patient's quotes in comparison order: priced offers first, by currency
/// then amount (expired ones marked), then those awaiting an answer, then
/// the declined.
#[utoipa::path(get, path = "/api/v1/patients/{id}/quotes", tag = "quotes", params(PatientPath, PageOnly),
    responses((status = 200, body = Page<QuoteResponse>), (status = 404, body = ErrorResponse)))]
pub async fn list_quotes(
    State(state): State<AppState>,
    ApiPath(PatientPath { id }): ApiPath<PatientPath>,
    ApiQuery(q): ApiQuery<PageOnly>,
) -> Result<Json<Page<QuoteResponse>>, AppError> {
    let page = page_request(q.page, q.per_page)?;
    patients::load(&state.workflows, id).await?;
    let (items, total) = state.repos.quotes.for_patient(id, page).await?;
    let today = state.workflows.clock.today();
    Ok(Json(Page::new(
        items.iter().map(|q| QuoteResponse::new(q, today)).collect(),
        page,
        total,
    )))
}

/// Ask a hospital for a price (status `requested`).
#[utoipa::path(post, path = "/api/v1/patients/{id}/quotes", tag = "quotes", params(PatientPath),
    request_body = RequestQuote,
    responses((status = 201, body = QuoteResponse), (status = 404, body = ErrorResponse), (status = 422, body = ErrorResponse)))]
pub async fn request_quote(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    IdempotencyKey(key): IdempotencyKey,
    ApiPath(PatientPath { id }): ApiPath<PatientPath>,
    ApiJson(body): ApiJson<RequestQuote>,
) -> Result<Response, AppError> {
    let today = state.workflows.clock.today();
    let render = move |q: &Quote| json_body(&QuoteResponse::new(q, today));
    let idem = Idem {
        request: key.as_ref(),
        status: StatusCode::CREATED.as_u16(),
        render: &render,
    };
    let input = NewQuote {
        hospital_id: body.hospital_id,
        treatment_type: body.treatment_type,
        disease: body.disease,
        notes: body.notes,
    };
    let outcome = quotes::request(&state.workflows, me.id, id, input, idem).await?;
    Ok(created(outcome, |q| {
        (StatusCode::CREATED, Json(QuoteResponse::new(&q, today))).into_response()
    }))
}

/// Read a quote.
#[utoipa::path(get, path = "/api/v1/quotes/{id}", tag = "quotes", params(QuotePath),
    responses((status = 200, body = QuoteResponse), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
pub async fn get_quote(
    State(state): State<AppState>,
    ApiPath(QuotePath { id }): ApiPath<QuotePath>,
) -> Result<impl IntoResponse, AppError> {
    let q = quotes::load(&state.workflows, id).await?;
    Ok((
        [etag(q.version)],
        axum::Extension(AuditPatients(vec![q.patient_id.to_string()])),
        Json(QuoteResponse::new(&q, state.workflows.clock.today())),
    ))
}

/// Record the hospital's answer (with `version`): `received` with `amount`
/// and `valid_until`, or `declined`. 409 once accepted, declined or expired.
#[utoipa::path(patch, path = "/api/v1/quotes/{id}", tag = "quotes", params(QuotePath, ("If-Match" = Option<String>, Header, description = "The record's ETag as read; in place of the body's `version`")),
    request_body = AnswerQuote,
    responses(
        (status = 200, body = QuoteResponse),
        (status = 404, body = ErrorResponse),
        (status = 409, description = "Stale version, or the quote is closed", body = ErrorResponse),
        (status = 412, description = "Stale If-Match", body = ErrorResponse),
        (status = 422, body = ErrorResponse),
        (status = 428, description = "Neither version nor If-Match", body = ErrorResponse),
    ))]
pub async fn answer_quote(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    if_match: IfMatch,
    ApiPath(QuotePath { id }): ApiPath<QuotePath>,
    ApiJson(body): ApiJson<AnswerQuote>,
) -> Result<impl IntoResponse, AppError> {
    let base = expected(body.version, if_match)?;
    let answer = Answer {
        version: base.version,
        status: match body.status {
            AnswerStatus::Received => QuoteStatus::Received,
            AnswerStatus::Declined => QuoteStatus::Declined,
        },
        amount: body.amount,
        valid_until: body.valid_until,
        includes: body.includes,
        notes: body.notes,
    };
    let q = stale_as_precondition(
        quotes::answer(&state.workflows, me.id, id, answer).await,
        base.from_header,
    )?;
    Ok((
        [etag(q.version)],
        axum::Extension(AuditPatients(vec![q.patient_id.to_string()])),
        Json(QuoteResponse::new(&q, state.workflows.clock.today())),
    ))
}

/// Accept a received quote: in one transaction, a `planned` treatment at the
/// quoted cost with earnings at the hospital's `commission_bps` (rounded
/// half to even to the minor unit), the patient assigned to the hospital,
/// and the patient's other open quotes for the treatment declined. 409 when
/// the quote is expired, declined, unanswered or already accepted (or
/// another quote for the treatment was); 422 names what is missing. The
/// body is optional.
#[utoipa::path(post, path = "/api/v1/quotes/{id}/accept", tag = "quotes", params(QuotePath),
    request_body(content = AcceptQuote, description = "Optional"),
    responses(
        (status = 201, body = AcceptedResponse),
        (status = 404, body = ErrorResponse),
        (status = 409, body = ErrorResponse),
        (status = 422, body = ErrorResponse),
    ))]
pub async fn accept_quote(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    IdempotencyKey(key): IdempotencyKey,
    ApiPath(QuotePath { id }): ApiPath<QuotePath>,
    MaybeJson(body): MaybeJson<AcceptQuote>,
) -> Result<Response, AppError> {
    let body = body.unwrap_or_default();
    let today = state.workflows.clock.today();
    let render = move |b: &Booked| json_body(&AcceptedResponse::new(b, today));
    let idem = Idem {
        request: key.as_ref(),
        status: StatusCode::CREATED.as_u16(),
        render: &render,
    };
    let input = Acceptance {
        earnings: body.earnings,
        disease: body.disease,
    };
    let outcome = quotes::accept(&state.workflows, me.id, id, input, idem).await?;
    Ok(created(outcome, |b| {
        let patient = b.quote.patient_id.to_string();
        (
            StatusCode::CREATED,
            axum::Extension(AuditPatients(vec![patient])),
            Json(AcceptedResponse::new(&b, today)),
        )
            .into_response()
    }))
}
