//! What the users and auth routes share: the user as clients see it, and
//! profile-image upload and download.

use axum::{
    body::Bytes,
    extract::{DefaultBodyLimit, Multipart},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use validator::ValidationError;

use crate::{
    domain::{
        permission::Rule,
        user::{Role, User},
        UserId,
    },
    error::AppError,
    repo::avatars::Avatar,
};

/// Largest accepted profile image.
pub const AVATAR_MAX_BYTES: usize = 2 * 1024 * 1024;

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
    /// IANA time zone for "today" on the follow-up queue, the dashboard and
    /// the reports (null: UTC); a request's `tz` wins over it.
    pub time_zone: Option<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<UserId>,
    pub created_by_name: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: Option<UserId>,
    pub updated_by_name: Option<String>,
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
            time_zone: u.time_zone.clone(),
            created_at: u.created_at.to_chrono(),
            created_by: u.created_by,
            created_by_name: crate::http::names::user_opt(u.created_by),
            updated_at: u.updated_at.to_chrono(),
            updated_by: u.updated_by,
            updated_by_name: crate::http::names::user_opt(u.updated_by),
        }
    }
}

/// Multipart form with one file field (any name), PNG or JPEG.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AvatarUpload {
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

pub async fn read_single_file(mut multipart: Multipart) -> Result<Bytes, AppError> {
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

/// The stored image with the type established from its bytes at upload
/// (`Cache-Control: no-store` is added to every API response).
pub fn avatar_response(avatar: Avatar) -> Response {
    ([(header::CONTENT_TYPE, avatar.content_type)], avatar.bytes).into_response()
}
