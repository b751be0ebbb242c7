//! Sessions: login, refresh with rotation and reuse detection, logout,
//! the caller's own profile and password.

use axum::{
    extract::{Multipart, State},
    http::StatusCode,
    response::Response,
    Json,
};
use mongodb::bson::DateTime;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::Validate;

use crate::{
    auth::{cache::Principal, password, refresh},
    domain::{permission::RouteKey, user::User},
    error::{AppError, ErrorResponse},
    http::{
        accounts::{
            avatar_body_limit, avatar_response, read_single_file, AvatarUpload, UserResponse,
        },
        audit::AuditCtx,
        auth::{ClientIp, CurrentUser},
        extract::ApiJson,
    },
    state::AppState,
    workflow::{credentials, users},
};

/// Routes anyone may call (rate-limited per IP).
pub fn public_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(refresh_tokens))
}

/// Routes for a signed-in user (still subject to route permissions).
pub fn protected_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(logout))
        .routes(routes!(me, update_me))
        .routes(routes!(change_password))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(upload_my_avatar, my_avatar))
                .layer(avatar_body_limit()),
        )
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "a.yilmaz@example.com", "password": "Bosphorus-Clinic-2026"}))]
pub struct LoginRequest {
    /// Matched without regard to case; not checked as an address here.
    #[validate(length(min = 1, max = 254))]
    #[schema(min_length = 1, max_length = 254)]
    pub email: String,
    #[validate(length(min = 1, max = 1024))]
    #[schema(format = Password, min_length = 1, max_length = 1024)]
    pub password: String,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"refresh_token": "9mQ2v7Jx0bWc4Lr8TzKp1sYdHf6NaE3uGoVi5XwRkPq"}))]
pub struct RefreshRequest {
    #[validate(length(min = 1, max = 256))]
    #[schema(min_length = 1, max_length = 256)]
    pub refresh_token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub user: UserResponse,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeResponse {
    pub user: UserResponse,
    /// Every protected route this user may call.
    pub permissions: Vec<RouteKey>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"current_password": "Bosphorus-Clinic-2026", "new_password": "Anatolia-Knee-Desk-77"}))]
pub struct PasswordChange {
    #[validate(length(min = 1, max = 1024))]
    #[schema(format = Password, min_length = 1, max_length = 1024)]
    pub current_password: String,
    /// 12 to 128 characters, not the account's email (the password
    /// policy, checked after the 1..=1024 shape check).
    #[validate(length(min = 1, max = 1024))]
    #[schema(format = Password, min_length = 12, max_length = 128)]
    pub new_password: String,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Ayşe Yılmaz", "time_zone": "Europe/Istanbul"}))]
pub struct UpdateMe {
    /// 1 to 100 characters once trimmed.
    #[validate(custom(function = "crate::http::accounts::validate_name"))]
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// An IANA time zone name (`Asia/Kolkata`), matched exactly, or null
    /// for UTC. The longest name has 32 characters.
    #[serde(default, deserialize_with = "crate::http::params::nullable")]
    #[schema(value_type = Option<String>, example = "Asia/Kolkata", max_length = 32)]
    #[validate(custom(function = "crate::domain::zone::validate"))]
    pub time_zone: Option<Option<String>>,
}

fn invalid_credentials() -> AppError {
    AppError::Unauthorized("invalid email or password".into())
}

fn rate_limit(state: &AppState, ip: ClientIp) -> Result<(), AppError> {
    let ip = ip.0.unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
    state
        .auth_rate_limit
        .check(ip)
        .map_err(|retry_after_secs| AppError::RateLimited { retry_after_secs })
}

/// Issues an access token and a refresh token in `family`.
async fn issue_pair(
    state: &AppState,
    user: &User,
    family: &str,
) -> Result<TokenResponse, AppError> {
    let ttl = state.config.access_token_ttl.as_secs();
    let access_token = state.jwt.issue(
        user.id,
        user.role,
        user.token_version,
        i64::try_from(ttl).unwrap_or(900),
    )?;
    let refresh_token = refresh::generate();
    let expires_at = DateTime::from_millis(
        DateTime::now().timestamp_millis()
            + i64::try_from(state.config.refresh_token_ttl.as_millis()).unwrap_or(i64::MAX / 4),
    );
    state
        .repos
        .refresh_tokens
        .insert(user.id, family, refresh::hash(&refresh_token), expires_at)
        .await?;
    Ok(TokenResponse {
        access_token,
        refresh_token,
        token_type: "Bearer",
        expires_in: ttl,
        user: UserResponse::from(user),
    })
}

/// Log in with email and password.
///
/// Unknown email and wrong password answer identically. Ten consecutive
/// failures lock the account for 15 minutes (423).
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "Invalid email or password", body = ErrorResponse),
        (status = 403, description = "Account deactivated", body = ErrorResponse),
        (status = 422, body = ErrorResponse),
        (status = 423, description = "Account locked", body = ErrorResponse),
        (status = 429, description = "Too many attempts from this address", body = ErrorResponse),
    ))]
pub async fn login(
    State(state): State<AppState>,
    ip: ClientIp,
    ctx: AuditCtx,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Json<TokenResponse>, AppError> {
    rate_limit(&state, ip)?;
    let password = SecretString::from(body.password);
    let email = body.email.trim();
    let Some((user, hash)) = state.repos.users.credentials_by_email(email).await? else {
        let error = credentials::check_unknown(
            &state.workflows,
            &state.hasher,
            &state.unknown_accounts,
            email,
            &password,
        )
        .await;
        let action = match error {
            AppError::AccountLocked { .. } => "auth.login_locked",
            _ => "auth.login_failed",
        };
        let status = error.status_code().as_u16();
        ctx.record(&state, ctx.event(action, None, status, vec![], None))
            .await;
        return Err(error);
    };
    match credentials::check(&state.workflows, &state.hasher, &user, &hash, &password).await {
        Ok(true) => {}
        Ok(false) => {
            let error = invalid_credentials();
            return refuse(&state, &ctx, &user, "auth.login_failed", 401, error).await;
        }
        Err(error @ AppError::AccountLocked { .. }) => {
            return refuse(&state, &ctx, &user, "auth.login_locked", 423, error).await;
        }
        Err(e) => return Err(e),
    }
    if !user.active {
        let error = AppError::Forbidden("the account is deactivated".into());
        return refuse(&state, &ctx, &user, "auth.login_inactive", 403, error).await;
    }
    state.repos.users.record_successful_login(user.id).await?;
    let pair = issue_pair(&state, &user, &refresh::new_family()).await?;
    let actor = Principal::from(&user);
    let event = ctx.event(
        "auth.login",
        Some(&actor),
        200,
        vec![user.id.to_string()],
        None,
    );
    ctx.record(&state, event).await;
    Ok(Json(pair))
}

/// Records a refused login of `user` and returns its error.
async fn refuse(
    state: &AppState,
    ctx: &AuditCtx,
    user: &User,
    action: &str,
    status: u16,
    error: AppError,
) -> Result<Json<TokenResponse>, AppError> {
    let event = ctx.event(action, None, status, vec![user.id.to_string()], None);
    ctx.record(state, event).await;
    Err(error)
}

/// Exchange a refresh token for a new pair. The presented token is spent;
/// presenting a spent token again revokes its whole family.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "Unknown, expired, revoked or reused token", body = ErrorResponse),
        (status = 403, description = "Account deactivated", body = ErrorResponse),
        (status = 422, body = ErrorResponse),
        (status = 429, body = ErrorResponse),
    ))]
pub async fn refresh_tokens(
    State(state): State<AppState>,
    ip: ClientIp,
    ctx: AuditCtx,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<Json<TokenResponse>, AppError> {
    rate_limit(&state, ip)?;
    let invalid = || AppError::Unauthorized("the refresh token is invalid or expired".into());
    let tokens = &state.repos.refresh_tokens;
    let Some(stored) = tokens
        .find_by_hash(&refresh::hash(&body.refresh_token))
        .await?
    else {
        return Err(invalid());
    };
    if stored.revoked_at.is_some() {
        return Err(invalid());
    }
    let reuse = stored.spent_at.is_some() || !tokens.spend(stored.id).await?;
    if reuse {
        let revoked = tokens.revoke_family(&stored.family_id).await?;
        tracing::warn!(
            revoked,
            "refresh token reuse detected; token family revoked"
        );
        ctx.record(
            &state,
            ctx.event(
                "auth.refresh_reuse",
                None,
                401,
                vec![stored.user_id.to_string()],
                None,
            ),
        )
        .await;
        return Err(invalid());
    }
    if stored.expires_at < DateTime::now() {
        return Err(invalid());
    }
    let user = state
        .repos
        .users
        .find(stored.user_id)
        .await?
        .ok_or_else(invalid)?;
    if !user.active {
        tokens.revoke_family(&stored.family_id).await?;
        return Err(AppError::Forbidden("the account is deactivated".into()));
    }
    Ok(Json(issue_pair(&state, &user, &stored.family_id).await?))
}

/// Revoke the presented refresh token (the caller's own). Idempotent.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204, description = "Revoked"), (status = 401, body = ErrorResponse), (status = 422, body = ErrorResponse)))]
pub async fn logout(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<StatusCode, AppError> {
    state
        .repos
        .refresh_tokens
        .revoke_one(&refresh::hash(&body.refresh_token), me.id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in user and every protected route they may call.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, body = MeResponse), (status = 401, body = ErrorResponse)))]
pub async fn me(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
) -> Result<Json<MeResponse>, AppError> {
    let user = state
        .repos
        .users
        .find(me.id)
        .await?
        .ok_or_else(|| AppError::not_found("user"))?;
    let matrix = state.permissions.get(&state.repos.permissions).await?;
    let permissions = crate::http::protected_routes()
        .iter()
        .filter(|r| matrix.allows(me.role, &me.overrides, r))
        .cloned()
        .collect();
    Ok(Json(MeResponse {
        user: UserResponse::from(&user),
        permissions,
    }))
}

/// Change the signed-in user's display name or time zone.
#[utoipa::path(patch, path = "/api/v1/auth/me", tag = "auth", request_body = UpdateMe,
    responses((status = 200, body = UserResponse), (status = 422, body = ErrorResponse)))]
pub async fn update_me(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiJson(body): ApiJson<UpdateMe>,
) -> Result<Json<UserResponse>, AppError> {
    if body.name.is_none() && body.time_zone.is_none() {
        return Err(AppError::invalid_field(
            "name",
            "send at least one of name and time_zone",
        ));
    }
    let user = users::update_self(
        &state.workflows,
        me.id,
        body.name.as_deref(),
        body.time_zone,
    )
    .await?;
    state.principals.invalidate(me.id);
    Ok(Json(UserResponse::from(&user)))
}

/// Change the signed-in user's password; every session of theirs ends.
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", request_body = PasswordChange,
    responses(
        (status = 204, description = "Changed; all refresh tokens revoked, access tokens void"),
        (status = 422, description = "Current password wrong, or new one breaks the policy", body = ErrorResponse),
        (status = 423, description = "Too many wrong current passwords (the login lockout)", body = ErrorResponse),
    ))]
pub async fn change_password(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ctx: AuditCtx,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<StatusCode, AppError> {
    let user = state
        .repos
        .users
        .find(me.id)
        .await?
        .ok_or_else(|| AppError::not_found("user"))?;
    let hash = state
        .repos
        .users
        .password_hash(me.id)
        .await?
        .ok_or_else(|| AppError::not_found("user"))?;
    let current = SecretString::from(body.current_password.clone());
    if !credentials::check(&state.workflows, &state.hasher, &user, &hash, &current).await? {
        return Err(AppError::invalid_field("current_password", "is incorrect"));
    }
    password::check_policy(&body.new_password, &user.email, "new_password")?;
    if body.new_password == body.current_password {
        return Err(AppError::invalid_field(
            "new_password",
            "must differ from the current password",
        ));
    }
    let audit = ctx.event(
        "auth.password_change",
        Some(&me),
        204,
        vec![me.id.to_string()],
        None,
    );
    let password = SecretString::from(body.new_password);
    users::set_password(
        &state.workflows,
        &state.hasher,
        me.id,
        me.id,
        &password,
        audit,
    )
    .await?;
    state.principals.invalidate(me.id);
    Ok(StatusCode::NO_CONTENT)
}

/// Upload the signed-in user's profile image (PNG or JPEG, at most 2 MiB).
#[utoipa::path(put, path = "/api/v1/auth/me/avatar", tag = "auth",
    request_body(content = AvatarUpload, content_type = "multipart/form-data"),
    responses(
        (status = 200, body = UserResponse),
        (status = 413, body = ErrorResponse),
        (status = 415, body = ErrorResponse),
    ))]
pub async fn upload_my_avatar(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    multipart: Multipart,
) -> Result<Json<UserResponse>, AppError> {
    let bytes = read_single_file(multipart).await?;
    let user = users::store_avatar(&state.workflows, me.id, me.id, &bytes).await?;
    Ok(Json(UserResponse::from(&user)))
}

/// Download the signed-in user's profile image.
#[utoipa::path(get, path = "/api/v1/auth/me/avatar", tag = "auth",
    responses(
        (status = 200, description = "The image (PNG or JPEG, as uploaded)", content(
            (crate::http::dto::ImageBytes = "image/png"),
            (crate::http::dto::ImageBytes = "image/jpeg"),
        )),
        (status = 404, body = ErrorResponse),
    ))]
pub async fn my_avatar(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
) -> Result<Response, AppError> {
    Ok(avatar_response(
        users::avatar(&state.workflows, me.id).await?,
    ))
}
