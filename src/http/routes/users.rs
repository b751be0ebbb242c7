//! Staff accounts: list, create, read, update, delete, activate/deactivate,
//! admin password reset, avatars. Guards: nobody deactivates, demotes or
//! deletes themselves; the last active admin stays an admin; some active
//! admin must always be able to manage permissions.

use axum::{
    body::Bytes,
    extract::{DefaultBodyLimit, Multipart, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::{Validate, ValidationError};

use crate::{
    auth::password,
    domain::{
        permission::Rule,
        user::{Role, User},
        UserId,
    },
    error::{AppError, ErrorResponse},
    http::{
        audit::AuditCtx,
        auth::CurrentUser,
        dto::{page_request, Page},
        extract::{ApiJson, ApiPath, ApiQuery},
        routes::permissions::{check_rules_exist, ensure_admins_remain, AdminChange},
    },
    repo::users::{NewUser, UserChanges, UserFilter},
    state::AppState,
};

/// Largest accepted profile image.
pub const AVATAR_MAX_BYTES: usize = 2 * 1024 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user, delete_user))
        .routes(routes!(activate_user))
        .routes(routes!(deactivate_user))
        .routes(routes!(reset_password))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(upload_avatar, get_avatar))
                .layer(avatar_body_limit()),
        )
}

/// Room for the multipart framing around a maximal image.
pub fn avatar_body_limit() -> DefaultBodyLimit {
    DefaultBodyLimit::max(AVATAR_MAX_BYTES + 64 * 1024)
}

pub fn validate_name(name: &str) -> Result<(), ValidationError> {
    let len = name.trim().chars().count();
    if len == 0 || len > 100 {
        return Err(
            ValidationError::new("length").with_message("must be 1 to 100 characters".into())
        );
    }
    Ok(())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserResponse {
    pub id: UserId,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub active: bool,
    /// Per-user rules that override the role's.
    pub permissions: Vec<Rule>,
    /// Whether a profile image is set (`GET /users/{id}/avatar`).
    pub has_avatar: bool,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<UserId>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: Option<UserId>,
}

impl From<&User> for UserResponse {
    fn from(u: &User) -> Self {
        UserResponse {
            id: u.id,
            name: u.name.clone(),
            email: u.email.clone(),
            role: u.role,
            active: u.active,
            permissions: u.permission_overrides.clone(),
            has_avatar: u.avatar_file_id.is_some(),
            created_at: u.created_at.to_chrono(),
            created_by: u.created_by,
            updated_at: u.updated_at.to_chrono(),
            updated_by: u.updated_by,
        }
    }
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[validate(custom(function = "validate_name"))]
    pub name: String,
    #[validate(email(message = "must be a valid email"), length(max = 254))]
    pub email: String,
    #[schema(format = Password, min_length = 12, max_length = 128)]
    pub password: String,
    pub role: Role,
    /// Per-user overrides of the role's rules.
    #[validate(length(max = 500))]
    pub permissions: Option<Vec<Rule>>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[validate(custom(function = "validate_name"))]
    pub name: Option<String>,
    #[validate(email(message = "must be a valid email"), length(max = 254))]
    pub email: Option<String>,
    pub role: Option<Role>,
    /// Replaces the user's overrides.
    #[validate(length(max = 500))]
    pub permissions: Option<Vec<Rule>>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPassword {
    #[schema(format = Password, min_length = 12, max_length = 128)]
    pub new_password: String,
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListUsersQuery {
    pub page: Option<u64>,
    pub per_page: Option<u64>,
    pub role: Option<Role>,
    pub active: Option<bool>,
    /// Case-insensitive search in name and email.
    #[validate(length(max = 100))]
    pub q: Option<String>,
}

/// Multipart form with one file field (any name), PNG or JPEG.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AvatarUpload {
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct UserPath {
    /// The user's id.
    pub id: UserId,
}

async fn load(state: &AppState, id: UserId) -> Result<User, AppError> {
    state
        .repos
        .users
        .find(id)
        .await?
        .ok_or_else(|| AppError::not_found("user"))
}

/// Hashes and stores a new password, ends every session of the user.
pub async fn set_password(
    state: &AppState,
    id: UserId,
    new_password: &SecretString,
    by: UserId,
) -> Result<User, AppError> {
    let hash = state.hasher.hash(new_password).await?;
    let changes = UserChanges {
        password_hash: Some(hash),
        bump_token_version: true,
        ..Default::default()
    };
    let user = state.repos.users.update(id, changes, Some(by)).await?;
    end_sessions(state, id).await?;
    user.ok_or_else(|| AppError::not_found("user"))
}

/// Revokes every refresh token; the bumped token version voids access tokens,
/// and dropping the cached principal makes that take effect on the next request.
async fn end_sessions(state: &AppState, id: UserId) -> Result<(), AppError> {
    state.repos.refresh_tokens.revoke_all_for_user(id).await?;
    state.principals.invalidate(id);
    Ok(())
}

/// List staff accounts.
#[utoipa::path(get, path = "/users", tag = "users", params(ListUsersQuery),
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
    };
    let (users, total) = state.repos.users.list(&filter, page).await?;
    Ok(Json(Page::new(
        users.iter().map(UserResponse::from).collect(),
        page,
        total,
    )))
}

/// Create a staff account (there is no self-registration).
#[utoipa::path(post, path = "/users", tag = "users", request_body = CreateUser,
    responses(
        (status = 201, body = UserResponse),
        (status = 409, description = "Email taken", body = ErrorResponse),
        (status = 422, body = ErrorResponse),
    ))]
pub async fn create_user(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiJson(body): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<UserResponse>), AppError> {
    let email = body.email.trim().to_lowercase();
    password::check_policy(&body.password, &email, "password")?;
    let overrides = body.permissions.unwrap_or_default();
    check_rules_exist(&overrides, "permissions")?;
    let password_hash = state
        .hasher
        .hash(&SecretString::from(body.password))
        .await?;
    let user = state
        .repos
        .users
        .create(NewUser {
            name: body.name.trim().to_owned(),
            email,
            password_hash,
            role: body.role,
            permission_overrides: overrides,
            created_by: Some(me.id),
        })
        .await?;
    Ok((StatusCode::CREATED, Json(UserResponse::from(&user))))
}

/// Read one account.
#[utoipa::path(get, path = "/users/{id}", tag = "users", params(UserPath),
    responses((status = 200, body = UserResponse), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
pub async fn get_user(
    State(state): State<AppState>,
    ApiPath(UserPath { id }): ApiPath<UserPath>,
) -> Result<Json<UserResponse>, AppError> {
    Ok(Json(UserResponse::from(&load(&state, id).await?)))
}

/// Update name, email, role or permission overrides. A role change ends the
/// user's sessions.
#[utoipa::path(patch, path = "/users/{id}", tag = "users", params(UserPath), request_body = UpdateUser,
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
    let user = load(&state, id).await?;
    if let Some(rules) = &body.permissions {
        check_rules_exist(rules, "permissions")?;
    }
    let role_changes = body.role.is_some_and(|r| r != user.role);
    if role_changes && id == me.id {
        return Err(AppError::conflict("you cannot change your own role"));
    }
    if role_changes || body.permissions.is_some() {
        ensure_admins_remain(
            &state,
            AdminChange::User {
                id,
                role: body.role.unwrap_or(user.role),
                active: user.active,
                overrides: body.permissions.clone(),
            },
        )
        .await?;
    }
    let changes = UserChanges {
        name: body.name.map(|n| n.trim().to_owned()),
        email: body.email.map(|e| e.trim().to_lowercase()),
        role: body.role,
        permission_overrides: body.permissions.clone(),
        bump_token_version: role_changes,
        ..Default::default()
    };
    let updated = state
        .repos
        .users
        .update(id, changes, Some(me.id))
        .await?
        .ok_or_else(|| AppError::not_found("user"))?;
    if role_changes {
        end_sessions(&state, id).await?;
    }
    state.principals.invalidate(id);
    if role_changes || body.permissions.is_some() {
        let details = mongodb::bson::doc! {
            "role_before": user.role.as_str(),
            "role_after": updated.role.as_str(),
            "overrides_changed": body.permissions.is_some(),
        };
        ctx.record(
            &state,
            ctx.event(
                "users.access_change",
                Some(&me),
                200,
                vec![id.to_string()],
                Some(details),
            ),
        )
        .await;
    }
    Ok(Json(UserResponse::from(&updated)))
}

/// Delete an account.
#[utoipa::path(delete, path = "/users/{id}", tag = "users", params(UserPath),
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
    if id == me.id {
        return Err(AppError::conflict("you cannot delete your own account"));
    }
    let user = load(&state, id).await?;
    ensure_admins_remain(&state, AdminChange::Removed(id)).await?;
    end_sessions(&state, id).await?;
    if !state.repos.users.delete(id).await? {
        return Err(AppError::not_found("user"));
    }
    if let Some(file) = user.avatar_file_id {
        state.repos.avatars.delete(file).await?;
    }
    state.principals.invalidate(id);
    ctx.record(
        &state,
        ctx.event("users.delete", Some(&me), 204, vec![id.to_string()], None),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_active(
    state: &AppState,
    me: &crate::auth::cache::Principal,
    id: UserId,
    active: bool,
) -> Result<User, AppError> {
    let user = load(state, id).await?;
    if !active {
        if id == me.id {
            return Err(AppError::conflict("you cannot deactivate your own account"));
        }
        ensure_admins_remain(state, AdminChange::Removed(id)).await?;
    }
    let changes = UserChanges {
        active: Some(active),
        bump_token_version: !active && user.active,
        ..Default::default()
    };
    let updated = state
        .repos
        .users
        .update(id, changes, Some(me.id))
        .await?
        .ok_or_else(|| AppError::not_found("user"))?;
    if !active {
        end_sessions(state, id).await?;
    }
    state.principals.invalidate(id);
    Ok(updated)
}

/// Allow the account to log in again.
#[utoipa::path(post, path = "/users/{id}/activate", tag = "users", params(UserPath),
    responses((status = 200, body = UserResponse), (status = 404, body = ErrorResponse)))]
pub async fn activate_user(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ctx: AuditCtx,
    ApiPath(UserPath { id }): ApiPath<UserPath>,
) -> Result<Json<UserResponse>, AppError> {
    let user = set_active(&state, &me, id, true).await?;
    ctx.record(
        &state,
        ctx.event("users.activate", Some(&me), 200, vec![id.to_string()], None),
    )
    .await;
    Ok(Json(UserResponse::from(&user)))
}

/// Disable the account: its sessions end and its tokens stop working at once.
#[utoipa::path(post, path = "/users/{id}/deactivate", tag = "users", params(UserPath),
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
    let user = set_active(&state, &me, id, false).await?;
    ctx.record(
        &state,
        ctx.event(
            "users.deactivate",
            Some(&me),
            200,
            vec![id.to_string()],
            None,
        ),
    )
    .await;
    Ok(Json(UserResponse::from(&user)))
}

/// Set a new password for a user (admin reset); their sessions end.
#[utoipa::path(post, path = "/users/{id}/password", tag = "users", params(UserPath), request_body = ResetPassword,
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
    // Changing one's own password proves the current one (/auth/password);
    // a reset would let a stolen session take the account over.
    if id == me.id {
        return Err(AppError::conflict(
            "change your own password with POST /api/v1/auth/password",
        ));
    }
    let user = load(&state, id).await?;
    password::check_policy(&body.new_password, &user.email, "new_password")?;
    set_password(&state, id, &SecretString::from(body.new_password), me.id).await?;
    ctx.record(
        &state,
        ctx.event(
            "users.password_reset",
            Some(&me),
            204,
            vec![id.to_string()],
            None,
        ),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Upload a user's profile image (PNG or JPEG by content, at most 2 MiB).
#[utoipa::path(put, path = "/users/{id}/avatar", tag = "users", params(UserPath),
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
    store_avatar(&state, id, me.id, multipart).await.map(Json)
}

/// Download a user's profile image.
#[utoipa::path(get, path = "/users/{id}/avatar", tag = "users", params(UserPath),
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
    load_avatar(&state, id).await
}

/// The image type by its first bytes; the file name and declared type are
/// not trusted.
pub fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else {
        None
    }
}

async fn read_single_file(mut multipart: Multipart) -> Result<Bytes, AppError> {
    let too_large = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::PayloadTooLarge
        } else {
            AppError::BadRequest(format!(
                "the multipart body is malformed: {}",
                e.body_text()
            ))
        }
    };
    while let Some(mut field) = multipart.next_field().await.map_err(too_large)? {
        if field.file_name().is_none() && field.name() != Some("file") {
            continue;
        }
        let mut data = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(too_large)? {
            if data.len() + chunk.len() > AVATAR_MAX_BYTES {
                return Err(AppError::PayloadTooLarge);
            }
            data.extend_from_slice(&chunk);
        }
        return Ok(Bytes::from(data));
    }
    Err(AppError::invalid_field("file", "a file field is required"))
}

pub async fn store_avatar(
    state: &AppState,
    id: UserId,
    by: UserId,
    multipart: Multipart,
) -> Result<UserResponse, AppError> {
    load(state, id).await?;
    let bytes = read_single_file(multipart).await?;
    let Some(content_type) = sniff_image(&bytes) else {
        return Err(AppError::UnsupportedMediaType(
            "the avatar must be a PNG or JPEG image".into(),
        ));
    };
    let file_id = state.repos.avatars.store(id, content_type, &bytes).await?;
    match state.repos.users.set_avatar(id, file_id, by).await? {
        Some(previous) => {
            if let Some(old) = previous {
                state.repos.avatars.delete(old).await?;
            }
        }
        None => {
            // The user vanished meanwhile: do not leave an orphaned file.
            state.repos.avatars.delete(file_id).await?;
            return Err(AppError::not_found("user"));
        }
    }
    Ok(UserResponse::from(&load(state, id).await?))
}

pub async fn load_avatar(state: &AppState, id: UserId) -> Result<Response, AppError> {
    let user = load(state, id).await?;
    let file = user
        .avatar_file_id
        .ok_or_else(|| AppError::not_found("avatar"))?;
    let avatar = state
        .repos
        .avatars
        .load(file)
        .await?
        .ok_or_else(|| AppError::not_found("avatar"))?;
    // The type was established from the bytes at upload.
    let content_type = avatar.content_type;
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "private, max-age=300".to_owned()),
        ],
        avatar.bytes,
    )
        .into_response())
}
