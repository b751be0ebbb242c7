//! The route-permission matrix: read it, list the protected routes, change a
//! role's rules. Changes take effect on the next request, are recorded in the
//! audit log with before/after, and may never leave the service without an
//! active admin able to manage permissions.

use axum::{extract::State, Json};
use mongodb::bson::{doc, to_bson, DateTime};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::Validate;

use crate::{
    domain::{
        permission::{Matrix, RouteKey, Rule, METHODS},
        user::{Role, User},
        UserId,
    },
    error::{AppError, ErrorResponse, FieldErrors},
    http::{
        audit::AuditCtx,
        auth::CurrentUser,
        extract::{ApiJson, ApiPath},
        protected_routes,
    },
    repo::permissions::StoredRule,
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_matrix))
        .routes(routes!(list_routes))
        .routes(routes!(set_role_rules))
}

/// The routes that must stay allowed for someone, or nobody could repair
/// the matrix through the API again.
pub fn management_routes() -> [RouteKey; 2] {
    [
        RouteKey::new("GET", "/api/v1/permissions"),
        RouteKey::new("PUT", "/api/v1/permissions/{role}"),
    ]
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleRulesResponse {
    pub role: Role,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRules {
    /// Rules to set (added, or replacing the rule for the same method and path).
    #[validate(length(min = 1, max = 500))]
    pub rules: Vec<Rule>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RolePath {
    /// `admin` or `staff`.
    pub role: String,
}

/// 422 unless every rule names a protected route with a known method, once.
pub fn check_rules_exist(rules: &[Rule], field: &str) -> Result<(), AppError> {
    let known = protected_routes();
    let mut details = FieldErrors::new();
    let mut seen = std::collections::HashSet::new();
    for (i, rule) in rules.iter().enumerate() {
        let key = rule.key();
        let problem = if !METHODS.contains(&key.method.as_str()) {
            Some(format!("unknown method '{}'", rule.method))
        } else if !known.contains(&key) {
            Some(format!("no protected route {key}"))
        } else if !seen.insert(key.clone()) {
            Some(format!("{key} appears twice"))
        } else {
            None
        };
        if let Some(p) = problem {
            details.insert(format!("{field}[{i}]"), vec![p]);
        }
    }
    if details.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation {
            message: "some rules are invalid".into(),
            details,
        })
    }
}

/// A change about to be made that could leave no admin in charge.
pub enum AdminChange {
    /// The user is deleted or deactivated.
    Removed(UserId),
    /// The user's role/overrides become these.
    User {
        id: UserId,
        role: Role,
        active: bool,
        overrides: Option<Vec<Rule>>,
    },
    /// The matrix becomes this.
    Matrix(Matrix),
}

/// 409 when, after `change`, no active admin would remain, or none could
/// still read and change the permission matrix.
pub async fn ensure_admins_remain(state: &AppState, change: AdminChange) -> Result<(), AppError> {
    let mut admins: Vec<User> = state.repos.users.active_admins().await?;
    let mut matrix = (*state.permissions.reload(&state.repos.permissions).await?).clone();
    match change {
        AdminChange::Removed(id) => admins.retain(|u| u.id != id),
        AdminChange::User {
            id,
            role,
            active,
            overrides,
        } => {
            let current = match admins.iter().find(|u| u.id == id) {
                Some(u) => Some(u.clone()),
                None => state.repos.users.find(id).await?,
            };
            admins.retain(|u| u.id != id);
            if let Some(mut user) = current {
                user.role = role;
                user.active = active;
                if let Some(o) = overrides {
                    user.permission_overrides = o;
                }
                if role == Role::Admin && active {
                    admins.push(user);
                }
            }
        }
        AdminChange::Matrix(m) => matrix = m,
    }
    if admins.is_empty() {
        return Err(AppError::conflict(
            "the last active admin cannot be removed, deactivated or demoted",
        ));
    }
    let can_manage = |u: &User| {
        management_routes()
            .iter()
            .all(|r| matrix.allows(u.role, &u.permission_overrides, r))
    };
    if !admins.iter().any(can_manage) {
        return Err(AppError::conflict(
            "refused: no active admin could manage permissions any more",
        ));
    }
    Ok(())
}

/// The whole matrix: every role's rules.
#[utoipa::path(get, path = "/permissions", tag = "permissions",
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
#[utoipa::path(get, path = "/permissions/routes", tag = "permissions",
    responses((status = 200, body = Vec<RouteKey>)))]
pub async fn list_routes() -> Json<Vec<RouteKey>> {
    Json(protected_routes().to_vec())
}

/// Set one or more rules of a role. Takes effect on the next request.
#[utoipa::path(put, path = "/permissions/{role}", tag = "permissions", params(RolePath), request_body = SetRules,
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
    let before = state
        .repos
        .permissions
        .for_role(role)
        .await?
        .map(|r| r.rules)
        .unwrap_or_default();
    let now = DateTime::now();
    let mut after = before.clone();
    let mut changes = Vec::new();
    for rule in &body.rules {
        let key = rule.key();
        let previous = after
            .iter()
            .position(|r| RouteKey::new(&r.method, &r.path) == key);
        let stored = StoredRule {
            method: key.method.clone(),
            path: key.path.clone(),
            allow: rule.allow,
            updated_at: Some(now),
            updated_by: Some(me.id),
            from_seed: false,
        };
        let was = previous.map(|i| after[i].allow);
        if was != Some(rule.allow) {
            changes.push(doc! { "method": &key.method, "path": &key.path, "before": was, "after": rule.allow });
        }
        match previous {
            Some(i) => after[i] = stored,
            None => after.push(stored),
        }
    }
    let current = state.permissions.reload(&state.repos.permissions).await?;
    let mut next = (*current).clone();
    next.roles.insert(
        role,
        after.iter().map(|r| (r.rule().key(), r.allow)).collect(),
    );
    ensure_admins_remain(&state, AdminChange::Matrix(next)).await?;

    state.repos.permissions.replace(role, after.clone()).await?;
    state.permissions.reload(&state.repos.permissions).await?;
    let details = doc! {
        "role": role.as_str(),
        "changes": to_bson(&changes).map_err(AppError::internal)?,
    };
    ctx.record(
        &state,
        ctx.event("permissions.update", Some(&me), 200, vec![], Some(details)),
    )
    .await;
    Ok(Json(RoleRulesResponse {
        role,
        rules: after.iter().map(StoredRule::rule).collect(),
    }))
}
