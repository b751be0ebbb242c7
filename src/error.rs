//! The one error type of the service and its rendering in the contract's shape.
//!
//! Handlers, extractors and middleware all fail with [`AppError`]. Turning it
//! into a response puts an [`ErrorBody`] in the response extensions; the
//! `http::middleware::error_envelope` layer then writes the final body with the
//! request id and logs the cause of a 5xx exactly once, inside the request
//! span. Causes never reach the client.

use std::{collections::BTreeMap, sync::Arc};

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;
use utoipa::ToSchema;

/// Messages per field, e.g. `{"email": ["must be a valid email"]}`.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

pub type Result<T, E = AppError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    InvalidId(String),
    #[error("{0}")]
    MalformedJson(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("the access token has expired")]
    TokenExpired,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error("{message}")]
    Conflict {
        message: String,
        details: Option<FieldErrors>,
    },
    /// The update was based on an older `version` than the record's: 409
    /// `conflict` when the version came in the body, 412
    /// `precondition_failed` when it came as `If-Match`
    /// (`http::versioning`).
    #[error("{0}")]
    Stale(String),
    /// `If-Match` named another version than the record's.
    #[error("{0}")]
    PreconditionFailed(String),
    /// A versioned update sent neither `version` nor `If-Match`.
    #[error("{0}")]
    PreconditionRequired(String),
    #[error("the request body is larger than the allowed limit")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{message}")]
    Validation {
        message: String,
        details: FieldErrors,
    },
    /// The `Idempotency-Key` was used before with another request body.
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,
    /// The request with this `Idempotency-Key` is still being processed.
    #[error("a request with this Idempotency-Key is still in progress; retry shortly")]
    RequestInProgress,
    #[error("too many failed logins; the account is locked until {until}")]
    AccountLocked { until: String },
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// A dependency (the database) cannot be reached. The cause is logged, never sent.
    #[error("service unavailable: {0}")]
    ServiceUnavailable(String),
    #[error("the request took too long and was abandoned")]
    Timeout,
    /// A concurrent transaction touched the same records (the server's
    /// `TransientTransactionError`); the transaction is retried, and only
    /// one that keeps conflicting past the retry budget reaches the client.
    #[error("a concurrent change got in the way; retry")]
    WriteConflict(String),
    /// A stored document failed its integrity check (damaged, changed or
    /// missing object): 409 `document_corrupted`, never a 500.
    #[error("{0}")]
    Corrupted(String),
    /// Anything unexpected. The cause is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn status_code(&self) -> StatusCode {
        use AppError::*;
        match self {
            BadRequest(_) | InvalidId(_) | MalformedJson(_) => StatusCode::BAD_REQUEST,
            Unauthorized(_) | TokenExpired => StatusCode::UNAUTHORIZED,
            Forbidden(_) => StatusCode::FORBIDDEN,
            NotFound(_) => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Conflict { .. } | Stale(_) | WriteConflict(_) | RequestInProgress | Corrupted(_) => {
                StatusCode::CONFLICT
            }
            PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            PreconditionRequired(_) => StatusCode::PRECONDITION_REQUIRED,
            IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AccountLocked { .. } => StatusCode::LOCKED,
            RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Timeout => StatusCode::GATEWAY_TIMEOUT,
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable, machine-readable code clients switch on.
    pub fn code(&self) -> &'static str {
        use AppError::*;
        match self {
            BadRequest(_) => "bad_request",
            InvalidId(_) => "invalid_id",
            MalformedJson(_) => "malformed_json",
            Unauthorized(_) => "unauthorized",
            TokenExpired => "token_expired",
            Forbidden(_) => "forbidden",
            NotFound(_) => "not_found",
            MethodNotAllowed => "method_not_allowed",
            Conflict { .. } | Stale(_) | WriteConflict(_) => "conflict",
            PreconditionFailed(_) => "precondition_failed",
            PreconditionRequired(_) => "precondition_required",
            IdempotencyKeyReused => "idempotency_key_reused",
            RequestInProgress => "request_in_progress",
            Corrupted(_) => "document_corrupted",
            PayloadTooLarge => "payload_too_large",
            UnsupportedMediaType(_) => "unsupported_media_type",
            Validation { .. } => "validation_failed",
            AccountLocked { .. } => "account_locked",
            RateLimited { .. } => "rate_limited",
            ServiceUnavailable(_) => "service_unavailable",
            Timeout => "timeout",
            Internal(_) => "internal",
        }
    }

    pub fn not_found(what: &str) -> Self {
        AppError::NotFound(format!("{what} not found"))
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        AppError::Conflict {
            message: message.into(),
            details: None,
        }
    }

    /// A 422 about one field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut details = FieldErrors::new();
        details.insert(field.to_owned(), vec![message.clone()]);
        AppError::Validation {
            message: format!("{field}: {message}"),
            details,
        }
    }

    /// Maps a driver error, naming `field` when a unique index refused the
    /// write.
    ///
    /// The repository passes the field its unique index covers: server
    /// messages differ between MongoDB and the local stand-in (and index
    /// names are not ours to rely on), so the message is never parsed.
    pub fn unique_violation(err: mongodb::error::Error, field: &str) -> Self {
        if crate::db::is_duplicate_key(&err) {
            let mut details = FieldErrors::new();
            details.insert(field.to_owned(), vec!["is already taken".into()]);
            return AppError::Conflict {
                message: format!("{field} is already taken"),
                details: Some(details),
            };
        }
        AppError::from(err)
    }

    /// Whether retrying the whole transaction may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, AppError::WriteConflict(_))
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        AppError::Internal(cause.to_string())
    }

    fn client_message(&self) -> String {
        match self {
            AppError::Internal(_) => "an internal error occurred".into(),
            AppError::ServiceUnavailable(_) => {
                "the service is temporarily unavailable; try again shortly".into()
            }
            other => other.to_string(),
        }
    }

    fn details(&self) -> Option<FieldErrors> {
        match self {
            AppError::Validation { details, .. } => Some(details.clone()),
            AppError::Conflict { details, .. } => details.clone(),
            _ => None,
        }
    }
}

/// Every `error.code` the API answers with (a closed set in the document).
pub const ERROR_CODES: [&str; 22] = [
    "bad_request",
    "invalid_id",
    "malformed_json",
    "unauthorized",
    "token_expired",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "conflict",
    "precondition_failed",
    "precondition_required",
    "idempotency_key_reused",
    "request_in_progress",
    "document_corrupted",
    "payload_too_large",
    "unsupported_media_type",
    "validation_failed",
    "account_locked",
    "rate_limited",
    "service_unavailable",
    "timeout",
    "internal",
];

fn error_codes() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(ERROR_CODES))
        .build()
}

/// The `error` object of every error response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable snake_case code, e.g. `validation_failed`.
    #[schema(schema_with = error_codes)]
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Messages per field, when the error concerns specific fields.
    pub details: Option<FieldErrors>,
    /// The request's `x-request-id`.
    pub request_id: Option<String>,
}

/// The whole error response body: `{"error": {...}}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

/// Carried in response extensions from `AppError` to the envelope layer.
#[derive(Debug, Clone)]
pub struct RenderedError {
    pub body: ErrorBody,
    /// The internal cause of a 5xx, for the log only.
    pub cause: Option<Arc<str>>,
}

impl ErrorBody {
    /// The generic body for a status some layer produced without an `AppError`.
    pub fn for_status(status: StatusCode) -> ErrorBody {
        let (code, message) = match status {
            StatusCode::BAD_REQUEST => ("bad_request", "the request is malformed"),
            StatusCode::UNAUTHORIZED => ("unauthorized", "authentication is required"),
            StatusCode::FORBIDDEN => ("forbidden", "you may not do this"),
            StatusCode::NOT_FOUND => ("not_found", "no such route"),
            StatusCode::METHOD_NOT_ALLOWED => {
                ("method_not_allowed", "method not allowed on this route")
            }
            StatusCode::REQUEST_TIMEOUT => ("timeout", "the request took too long"),
            StatusCode::PAYLOAD_TOO_LARGE => (
                "payload_too_large",
                "the request body is larger than the limit",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                ("unsupported_media_type", "unsupported content type")
            }
            StatusCode::UNPROCESSABLE_ENTITY => ("validation_failed", "the request is invalid"),
            StatusCode::TOO_MANY_REQUESTS => ("rate_limited", "too many requests"),
            StatusCode::SERVICE_UNAVAILABLE => (
                "service_unavailable",
                "the service is temporarily unavailable",
            ),
            StatusCode::GATEWAY_TIMEOUT => ("timeout", "the request took too long"),
            s if s.is_server_error() => ("internal", "an internal error occurred"),
            _ => ("bad_request", "the request could not be processed"),
        };
        ErrorBody {
            code: code.into(),
            message: message.into(),
            details: None,
            request_id: None,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let body = ErrorBody {
            code: self.code().into(),
            message: self.client_message(),
            details: self.details(),
            request_id: None,
        };
        let cause = match &self {
            AppError::Internal(c) => Some(Arc::from(c.as_str())),
            AppError::ServiceUnavailable(c) => Some(Arc::from(c.as_str())),
            _ => None,
        };
        let mut response = (
            status,
            Json(ErrorResponse {
                error: body.clone(),
            }),
        )
            .into_response();
        if let AppError::RateLimited { retry_after_secs } = self {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs.max(1)),
            );
        }
        response
            .extensions_mut()
            .insert(RenderedError { body, cause });
        response
    }
}

/// Driver errors: a duplicate key is a 409 (repositories that know the field
/// use [`AppError::unique_violation`] to name it), an unreachable server a 503,
/// anything else an internal error.
impl From<mongodb::error::Error> for AppError {
    fn from(err: mongodb::error::Error) -> Self {
        if crate::db::is_duplicate_key(&err) {
            return AppError::conflict("a record with this value already exists");
        }
        if crate::db::is_unavailable(&err) {
            return AppError::ServiceUnavailable(format!("database unavailable: {err}"));
        }
        if err.contains_label(mongodb::error::TRANSIENT_TRANSACTION_ERROR) {
            return AppError::WriteConflict(format!("transient transaction error: {err}"));
        }
        AppError::Internal(format!("database error: {err}"))
    }
}

impl From<validator::ValidationErrors> for AppError {
    fn from(errors: validator::ValidationErrors) -> Self {
        let mut details = FieldErrors::new();
        collect_validation_errors(&errors, "", &mut details);
        let message = match details.iter().next() {
            Some((field, messages)) if details.len() == 1 => match messages.first() {
                Some(m) => format!("{field} {m}"),
                None => format!("{field} is not valid"),
            },
            _ => format!(
                "{} fields are not valid: {}",
                details.len(),
                details.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        };
        AppError::Validation { message, details }
    }
}

/// What a rule without a message of its own wants, in words: "must be 1
/// to 200 characters", "must be between 0 and 10000", never a bare rule
/// name such as `length`.
fn describe(e: &validator::ValidationError) -> String {
    let param = |k: &str| e.params.get(k).map(|v| v.to_string());
    let unit = match e.params.get("value") {
        Some(serde_json::Value::Array(_)) => "items",
        _ => "characters",
    };
    match (e.code.as_ref(), param("min"), param("max"), param("equal")) {
        ("length", _, _, Some(n)) => format!("must be exactly {n} {unit}"),
        ("length", Some(min), Some(max), _) => format!("must be {min} to {max} {unit}"),
        ("length", Some(min), None, _) => format!("must be at least {min} {unit}"),
        ("length", None, Some(max), _) => format!("must be at most {max} {unit}"),
        ("range", Some(min), Some(max), _) => format!("must be between {min} and {max}"),
        ("range", Some(min), None, _) => format!("must be at least {min}"),
        ("range", None, Some(max), _) => format!("must be at most {max}"),
        ("email", ..) => "must be a valid email".into(),
        ("url", ..) => "must be a valid URL".into(),
        ("required", ..) => "is required".into(),
        _ => "is not valid".into(),
    }
}

fn collect_validation_errors(
    errors: &validator::ValidationErrors,
    prefix: &str,
    out: &mut FieldErrors,
) {
    use validator::ValidationErrorsKind;
    for (field, kind) in errors.errors() {
        let path = if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        match kind {
            ValidationErrorsKind::Field(list) => {
                let messages = out.entry(path).or_default();
                for e in list {
                    messages.push(match &e.message {
                        Some(m) => m.to_string(),
                        None => describe(e),
                    });
                }
            }
            ValidationErrorsKind::Struct(inner) => collect_validation_errors(inner, &path, out),
            ValidationErrorsKind::List(items) => {
                for (i, inner) in items {
                    collect_validation_errors(inner, &format!("{path}[{i}]"), out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use validator::Validate;

    use super::*;

    /// One error of every kind. The match has no wildcard, so a new variant
    /// does not compile until it is added here, and so to the check below.
    fn one_of_each() -> Vec<AppError> {
        let all = vec![
            AppError::BadRequest(String::new()),
            AppError::InvalidId(String::new()),
            AppError::MalformedJson(String::new()),
            AppError::Unauthorized(String::new()),
            AppError::TokenExpired,
            AppError::Forbidden(String::new()),
            AppError::NotFound(String::new()),
            AppError::MethodNotAllowed,
            AppError::conflict(""),
            AppError::Stale(String::new()),
            AppError::PreconditionFailed(String::new()),
            AppError::PreconditionRequired(String::new()),
            AppError::PayloadTooLarge,
            AppError::UnsupportedMediaType(String::new()),
            AppError::invalid_field("f", "m"),
            AppError::IdempotencyKeyReused,
            AppError::RequestInProgress,
            AppError::AccountLocked {
                until: String::new(),
            },
            AppError::RateLimited {
                retry_after_secs: 1,
            },
            AppError::ServiceUnavailable(String::new()),
            AppError::Timeout,
            AppError::WriteConflict(String::new()),
            AppError::Corrupted(String::new()),
            AppError::Internal(String::new()),
        ];
        for e in &all {
            match e {
                AppError::BadRequest(_)
                | AppError::InvalidId(_)
                | AppError::MalformedJson(_)
                | AppError::Unauthorized(_)
                | AppError::TokenExpired
                | AppError::Forbidden(_)
                | AppError::NotFound(_)
                | AppError::MethodNotAllowed
                | AppError::Conflict { .. }
                | AppError::Stale(_)
                | AppError::PreconditionFailed(_)
                | AppError::PreconditionRequired(_)
                | AppError::PayloadTooLarge
                | AppError::UnsupportedMediaType(_)
                | AppError::Validation { .. }
                | AppError::IdempotencyKeyReused
                | AppError::RequestInProgress
                | AppError::AccountLocked { .. }
                | AppError::RateLimited { .. }
                | AppError::ServiceUnavailable(_)
                | AppError::Timeout
                | AppError::WriteConflict(_)
                | AppError::Corrupted(_)
                | AppError::Internal(_) => {}
            }
        }
        all
    }

    #[test]
    fn the_documented_error_codes_are_exactly_the_ones_answered() {
        let mut answered: Vec<String> = one_of_each().iter().map(|e| e.code().to_owned()).collect();
        for status in 400..600u16 {
            let status = StatusCode::from_u16(status).expect("status");
            if status.is_client_error() || status.is_server_error() {
                answered.push(ErrorBody::for_status(status).code);
            }
        }
        answered.sort_unstable();
        answered.dedup();
        let mut documented: Vec<String> = ERROR_CODES.iter().map(|c| (*c).to_owned()).collect();
        documented.sort_unstable();
        assert_eq!(answered, documented);
    }

    #[derive(Validate)]
    struct Rules {
        #[validate(length(min = 1, max = 200))]
        title: String,
        #[validate(length(max = 100))]
        code: String,
        #[validate(length(min = 2))]
        tags: Vec<String>,
        #[validate(range(min = 0, max = 10000))]
        bps: i64,
        #[validate(range(max = 130))]
        age: u8,
        #[validate(email)]
        email: String,
    }

    #[test]
    fn every_rule_says_what_it_wants() {
        let bad = Rules {
            title: String::new(),
            code: "x".repeat(101),
            tags: vec![],
            bps: 20_000,
            age: 200,
            email: "nope".into(),
        };
        let AppError::Validation { details, .. } = AppError::from(bad.validate().unwrap_err())
        else {
            panic!("a validation error");
        };
        let first = |k: &str| details[k][0].as_str();
        assert_eq!(first("title"), "must be 1 to 200 characters");
        assert_eq!(first("code"), "must be at most 100 characters");
        assert_eq!(first("tags"), "must be at least 2 items");
        assert_eq!(first("bps"), "must be between 0 and 10000");
        assert_eq!(first("age"), "must be at most 130");
        assert_eq!(first("email"), "must be a valid email");
    }
}
