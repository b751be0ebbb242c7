//! Staff accounts: list, create, read, update, delete, activate/deactivate,
//! admin password reset, avatars. Guards: nobody deactivates, demotes or
//! deletes themselves; the last active admin stays an admin; some active
//! admin must always be able to manage permissions.

use axum::{
    extract::{Multipart, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use secrecy::SecretString;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::Validate;

use crate::{
    auth::cache::Principal,
    domain::{
        permission::Rule,
        user::{Role, User},
        UserId,
    },
    error::{AppError, ErrorResponse},
    http::{
        accounts::{
            avatar_body_limit, avatar_response, read_single_file, validate_name, AvatarUpload,
            UserResponse,
        },
        audit::AuditCtx,
        auth::CurrentUser,
        dto::{page_request, Page},
        extract::{ApiJson, ApiPath, ApiQuery},
        idempotency::{created, json_body, IdempotencyKey},
        rules::check_rules_exist,
    },
    repo::users::UserFilter,
    state::AppState,
    workflow::{
        idempotency::Idem,
        users::{self, AccountChanges, NewAccount},
    },
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user, delete_user))
        .routes(routes!(activate_user))
        .routes(routes!(deactivate_user))
        .routes(routes!(reset_password))
        .routes(routes!(directory))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(upload_avatar, get_avatar))
                .layer(avatar_body_limit()),
        )
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Priya Nair", "email": "priya.nair@example.com",
    "password": "Kerala-Desk-2026!", "role": "staff",
    "permissions": [{"method": "GET", "path": "/api/v1/audit", "allow": true}]}))]
pub struct CreateUser {
    /// 1 to 100 characters once trimmed.
    #[validate(custom(function = "validate_name"))]
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    #[validate(email(message = "must be a valid email"), length(max = 254))]
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// 12 to 128 characters, not the account's email.
    #[schema(format = Password, min_length = 12, max_length = 128)]
    pub password: String,
    pub role: Role,
    /// Per-user overrides of the role's rules, each route once.
    #[validate(length(max = 500))]
    #[schema(max_items = 500)]
    pub permissions: Option<Vec<Rule>>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Priya Nair-Menon", "role": "admin", "permissions": []}))]
pub struct UpdateUser {
    /// 1 to 100 characters once trimmed.
    #[validate(custom(function = "validate_name"))]
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    #[validate(email(message = "must be a valid email"), length(max = 254))]
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
    pub role: Option<Role>,
    /// Replaces the user's overrides, each route once.
    #[validate(length(max = 500))]
    #[schema(max_items = 500)]
    pub permissions: Option<Vec<Rule>>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"new_password": "Chao-Phraya-Ward-31"}))]
pub struct ResetPassword {
    /// 12 to 128 characters, not the account's email.
    #[schema(format = Password, min_length = 12, max_length = 128)]
    pub new_password: String,
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListUsersQuery {
    #[param(minimum = 1, maximum = 1_000_000)]
    pub page: Option<u64>,
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<u64>,
    pub role: Option<Role>,
    pub active: Option<bool>,
    /// Case-insensitive search in name and email.
    #[validate(length(max = 100))]
    #[param(max_length = 100)]
    pub q: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct UserPath {
    /// The user's id.
    pub id: UserId,
}

impl From<UpdateUser> for AccountChanges {
    fn from(b: UpdateUser) -> Self {
        AccountChanges {
            name: b.name,
            email: b.email,
            role: b.role,
            permissions: b.permissions,
        }
    }
}

/// List staff accounts.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(ListUsersQuery),
    responses((status = 200, body = Page<UserResponse>), (status = 400, body = ErrorResponse)))]
pub async fn list_users(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListUsersQuery>,
) -> Result<Json<Page<UserResponse>>, AppError> {
    let page = page_request(q.page, q.per_page)?;
    let filter = UserFilter {
        role: q.role,
        active: q.active,
        q: q.q,
        name_only: false,
    };
    let (users, total) = state.repos.users.list(&filter, page).await?;
    Ok(Json(Page::new(
        users.iter().map(UserResponse::from).collect(),
        page,
        total,
    )))
}

/// Create a staff account (there is no self-registration).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUser,
    responses(
        (status = 201, body = UserResponse),
        (status = 409, description = "Email taken", body = ErrorResponse),
        (status = 422, body = ErrorResponse),
    ))]
pub async fn create_user(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<CreateUser>,
) -> Result<Response, AppError> {
    let overrides = body.permissions.unwrap_or_default();
    check_rules_exist(&overrides, "permissions")?;
    let input = NewAccount {
        name: body.name,
        email: body.email,
        password: SecretString::from(body.password),
        role: body.role,
        overrides,
    };
    let idem = Idem {
        request: key.as_ref(),
        status: StatusCode::CREATED.as_u16(),
        render: &|u: &User| json_body(&UserResponse::from(u)),
    };
    let outcome = users::create(&state.workflows, &state.hasher, me.id, input, idem).await?;
    Ok(created(outcome, |u| {
        (StatusCode::CREATED, Json(UserResponse::from(&u))).into_response()
    }))
}

/// Read one account.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(UserPath),
    responses((status = 200, body = UserResponse), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
pub async fn get_user(
    State(state): State<AppState>,
    ApiPath(UserPath { id }): ApiPath<UserPath>,
) -> Result<Json<UserResponse>, AppError> {
    Ok(Json(UserResponse::from(
        &users::load(&state.workflows, id).await?,
    )))
}

/// Update name, email, role or permission overrides. A role change ends the
/// user's sessions.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", params(UserPath), request_body = UpdateUser,
    responses(
        (status = 200, body = UserResponse),
        (status = 404, body = ErrorResponse),
        (status = 409, description = "Email taken, self-demotion, or no admin would remain", body = ErrorResponse),
        (status = 422, body = ErrorResponse),
    ))]
pub async fn update_user(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ctx: AuditCtx,
    ApiPath(UserPath { id }): ApiPath<UserPath>,
    ApiJson(body): ApiJson<UpdateUser>,
) -> Result<Json<UserResponse>, AppError> {
    if let Some(rules) = &body.permissions {
        check_rules_exist(rules, "permissions")?;
    }
    let audit = ctx.event(
        "users.access_change",
        Some(&me),
        200,
        vec![id.to_string()],
        None,
    );
    let updated = users::update(&state.workflows, me.id, id, body.into(), audit).await?;
    state.principals.invalidate(id);
    Ok(Json(UserResponse::from(&updated)))
}

/// Delete an account.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", params(UserPath),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, body = ErrorResponse),
        (status = 409, description = "Self-deletion, or the last admin", body = ErrorResponse),
    ))]
pub async fn delete_user(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ctx: AuditCtx,
    ApiPath(UserPath { id }): ApiPath<UserPath>,
) -> Result<StatusCode, AppError> {
    let audit = ctx.event("users.delete", Some(&me), 204, vec![id.to_string()], None);
    users::delete(&state.workflows, me.id, id, audit).await?;
    state.principals.invalidate(id);
    Ok(StatusCode::NO_CONTENT)
}

async fn set_active(
    state: &AppState,
    me: &Principal,
    ctx: &AuditCtx,
    id: UserId,
    active: bool,
) -> Result<Json<UserResponse>, AppError> {
    let action = if active {
        "users.activate"
    } else {
        "users.deactivate"
    };
    let audit = ctx.event(action, Some(me), 200, vec![id.to_string()], None);
    let user = users::set_active(&state.workflows, me.id, id, active, audit).await?;
    state.principals.invalidate(id);
    Ok(Json(UserResponse::from(&user)))
}

/// Allow the account to log in again.
#[utoipa::path(post, path = "/api/v1/users/{id}/activate", tag = "users", params(UserPath),
    responses((status = 200, body = UserResponse), (status = 404, body = ErrorResponse)))]
pub async fn activate_user(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ctx: AuditCtx,
    ApiPath(UserPath { id }): ApiPath<UserPath>,
) -> Result<Json<UserResponse>, AppError> {
    set_active(&state, &me, &ctx, id, true).await
}

/// Disable the account: its sessions end and its tokens stop working at once.
#[utoipa::path(post, path = "/api/v1/users/{id}/deactivate", tag = "users", params(UserPath),
    responses(
        (status = 200, body = UserResponse),
        (status = 404, body = ErrorResponse),
        (status = 409, description = "Self-deactivation, or the last admin", body = ErrorResponse),
    ))]
pub async fn deactivate_user(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ctx: AuditCtx,
    ApiPath(UserPath { id }): ApiPath<UserPath>,
) -> Result<Json<UserResponse>, AppError> {
    set_active(&state, &me, &ctx, id, false).await
}

/// Set a new password for a user (admin reset); their sessions end.
#[utoipa::path(post, path = "/api/v1/users/{id}/password", tag = "users", params(UserPath), request_body = ResetPassword,
    responses((status = 204, description = "Reset"), (status = 404, body = ErrorResponse),
        (status = 409, description = "Your own password: change it with /auth/password", body = ErrorResponse),
        (status = 422, body = ErrorResponse)))]
pub async fn reset_password(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ctx: AuditCtx,
    ApiPath(UserPath { id }): ApiPath<UserPath>,
    ApiJson(body): ApiJson<ResetPassword>,
) -> Result<StatusCode, AppError> {
    let audit = ctx.event(
        "users.password_reset",
        Some(&me),
        204,
        vec![id.to_string()],
        None,
    );
    let password = SecretString::from(body.new_password);
    users::reset_password(&state.workflows, &state.hasher, me.id, id, &password, audit).await?;
    state.principals.invalidate(id);
    Ok(StatusCode::NO_CONTENT)
}

/// Upload a user's profile image (PNG or JPEG by content, at most 2 MiB).
#[utoipa::path(put, path = "/api/v1/users/{id}/avatar", tag = "users", params(UserPath),
    request_body(content = AvatarUpload, content_type = "multipart/form-data"),
    responses(
        (status = 200, body = UserResponse),
        (status = 404, body = ErrorResponse),
        (status = 413, body = ErrorResponse),
        (status = 415, body = ErrorResponse),
    ))]
pub async fn upload_avatar(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiPath(UserPath { id }): ApiPath<UserPath>,
    multipart: Multipart,
) -> Result<Json<UserResponse>, AppError> {
    let bytes = read_single_file(multipart).await?;
    let user = users::store_avatar(&state.workflows, id, me.id, &bytes).await?;
    Ok(Json(UserResponse::from(&user)))
}

/// Download a user's profile image.
#[utoipa::path(get, path = "/api/v1/users/{id}/avatar", tag = "users", params(UserPath),
    responses(
        (status = 200, description = "The image (PNG or JPEG, as uploaded)", content(
            (crate::http::dto::ImageBytes = "image/png"),
            (crate::http::dto::ImageBytes = "image/jpeg"),
        )),
        (status = 404, body = ErrorResponse),
    ))]
pub async fn get_avatar(
    State(state): State<AppState>,
    ApiPath(UserPath { id }): ApiPath<UserPath>,
) -> Result<Response, AppError> {
    Ok(avatar_response(users::avatar(&state.workflows, id).await?))
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DirectoryQuery {
    #[param(minimum = 1, maximum = 1_000_000)]
    pub page: Option<u64>,
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<u64>,
    pub role: Option<Role>,
    /// Name contains, case-insensitive.
    #[validate(length(max = 100))]
    #[param(max_length = 100)]
    pub q: Option<String>,
}

/// A colleague, as the assignee picker shows them.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct DirectoryEntry {
    pub id: UserId,
    pub name: String,
    pub role: Role,
    /// `GET` it for the profile image; null when none is set.
    pub avatar_url: Option<String>,
}

/// Active users, for picking an assignee (readable by staff; no e-mail,
/// permissions or login state).
#[utoipa::path(get, path = "/api/v1/directory", tag = "users", params(DirectoryQuery),
    responses((status = 200, body = Page<DirectoryEntry>), (status = 400, body = ErrorResponse)))]
pub async fn directory(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DirectoryQuery>,
) -> Result<Json<Page<DirectoryEntry>>, AppError> {
    let page = page_request(q.page, q.per_page)?;
    let filter = UserFilter {
        role: q.role,
        active: Some(true),
        q: q.q,
        name_only: true,
    };
    let (users, total) = state.repos.users.list(&filter, page).await?;
    let rows = users
        .iter()
        .map(|u| DirectoryEntry {
            id: u.id,
            name: u.name.clone(),
            role: u.role,
            avatar_url: u
                .avatar_file_id
                .map(|_| format!("/api/v1/users/{}/avatar", u.id)),
        })
        .collect();
    Ok(Json(Page::new(rows, page, total)))
}
