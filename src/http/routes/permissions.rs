//! The route-permission matrix: read it, list the protected routes, change a
//! role's rules. Changes take effect on the next request, are recorded in the
//! audit log with before/after, and may never leave the service without an
//! active admin able to manage permissions.

use axum::{extract::State, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::Validate;

use crate::{
    domain::{permission::RouteKey, permission::Rule, user::Role},
    error::{AppError, ErrorResponse},
    http::{
        audit::AuditCtx,
        auth::CurrentUser,
        extract::{ApiJson, ApiPath},
        protected_routes,
        rules::check_rules_exist,
    },
    repo::permissions::StoredRule,
    state::AppState,
    workflow::access,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_matrix))
        .routes(routes!(list_routes))
        .routes(routes!(set_role_rules))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleRulesResponse {
    pub role: Role,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"rules": [
    {"method": "DELETE", "path": "/api/v1/hospitals/{id}", "allow": false},
    {"method": "GET", "path": "/api/v1/earnings", "allow": true}]}))]
pub struct SetRules {
    /// Rules to set (added, or replacing the rule for the same method and
    /// path), each route once.
    #[validate(length(min = 1, max = 500))]
    #[schema(min_items = 1, max_items = 500)]
    pub rules: Vec<Rule>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RolePath {
    /// `admin` or `staff`.
    pub role: String,
}

/// The whole matrix: every role's rules.
#[utoipa::path(get, path = "/api/v1/permissions", tag = "permissions",
    responses((status = 200, body = Vec<RoleRulesResponse>)))]
pub async fn get_matrix(
    State(state): State<AppState>,
) -> Result<Json<Vec<RoleRulesResponse>>, AppError> {
    let stored = state.repos.permissions.all().await?;
    let out = Role::ALL
        .iter()
        .map(|role| RoleRulesResponse {
            role: *role,
            rules: stored
                .iter()
                .find(|r| r.role == *role)
                .map(|r| r.rules.iter().map(StoredRule::rule).collect())
                .unwrap_or_default(),
        })
        .collect();
    Ok(Json(out))
}

/// Every protected route the server has (what rules can name).
#[utoipa::path(get, path = "/api/v1/permissions/routes", tag = "permissions",
    responses((status = 200, body = Vec<RouteKey>)))]
pub async fn list_routes() -> Json<Vec<RouteKey>> {
    Json(protected_routes().to_vec())
}

/// Set one or more rules of a role. Takes effect on the next request.
#[utoipa::path(put, path = "/api/v1/permissions/{role}", tag = "permissions", params(RolePath), request_body = SetRules,
    responses(
        (status = 200, body = RoleRulesResponse),
        (status = 404, description = "No such role", body = ErrorResponse),
        (status = 409, description = "No admin could manage permissions afterwards", body = ErrorResponse),
        (status = 422, body = ErrorResponse),
    ))]
pub async fn set_role_rules(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ctx: AuditCtx,
    ApiPath(RolePath { role }): ApiPath<RolePath>,
    ApiJson(body): ApiJson<SetRules>,
) -> Result<Json<RoleRulesResponse>, AppError> {
    let role = Role::parse(&role).ok_or_else(|| AppError::not_found("role"))?;
    check_rules_exist(&body.rules, "rules")?;
    let audit = ctx.event("permissions.update", Some(&me), 200, vec![], None);
    let after = access::set_role_rules(&state.workflows, me.id, role, &body.rules, audit).await?;
    state.permissions.reload(&state.repos.permissions).await?;
    Ok(Json(RoleRulesResponse {
        role,
        rules: after.iter().map(StoredRule::rule).collect(),
    }))
}
