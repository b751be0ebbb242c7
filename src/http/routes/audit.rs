//! The audit log, read-only: nothing in the API changes or deletes an event.

use axum::{extract::State, Json};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::Validate;

use crate::http::{dto::AuditEntry, params::parse_bound};
use crate::{
    domain::{PatientId, UserId},
    error::{AppError, ErrorResponse},
    http::{
        dto::{page_request, Page},
        extract::ApiQuery,
    },
    repo::audit::AuditFilter,
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit))
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    #[param(minimum = 1, maximum = 1_000_000)]
    pub page: Option<u64>,
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<u64>,
    pub actor_id: Option<UserId>,
    pub patient_id: Option<PatientId>,
    /// e.g. `patients.read`, `auth.login`, `permissions.update`.
    #[validate(length(min = 1, max = 100))]
    #[param(min_length = 1, max_length = 100)]
    pub action: Option<String>,
    /// `YYYY-MM-DD` (inclusive) or RFC 3339.
    pub from: Option<String>,
    /// `YYYY-MM-DD` (inclusive, whole day) or RFC 3339 (exclusive).
    pub to: Option<String>,
}

/// Audit events, newest first, with the ids they concern and their details.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Page<AuditEntry>), (status = 400, body = ErrorResponse)))]
pub async fn list_audit(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Page<AuditEntry>>, AppError> {
    let page = page_request(q.page, q.per_page)?;
    let from = q
        .from
        .as_deref()
        .map(|v| parse_bound("from", v, false))
        .transpose()?;
    let before =
        q.to.as_deref()
            .map(|v| parse_bound("to", v, true))
            .transpose()?;
    if let (Some(f), Some(b)) = (from, before) {
        if f >= b {
            return Err(AppError::BadRequest("from must be before to".into()));
        }
    }
    let filter = AuditFilter {
        actor_id: q.actor_id,
        patient_id: q.patient_id.map(|p| p.to_string()),
        action: q.action,
        from,
        before,
    };
    let (events, total) = state.repos.audit.list(&filter, page).await?;
    Ok(Json(Page::new(
        events.into_iter().map(AuditEntry::from).collect(),
        page,
        total,
    )))
}
