//! `Idempotency-Key` on creating POSTs: the step of [`super::protected`]
//! that reads the key and fingerprints the request, the extractor handlers
//! take it with, and the replayed response.

use std::future::Future;

use axum::{
    body::Body,
    extract::{FromRequestParts, OriginalUri, Request},
    http::{header, request::Parts, HeaderValue, Method, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::{
    error::{AppError, Result},
    state::AppState,
    workflow::idempotency::{fingerprint, Created, KeyedRequest, Replay},
};

pub const HEADER: &str = "idempotency-key";

/// The creating POSTs that honour the header (under `/api/v1`).
pub const CREATING: &[&str] = &[
    "/api/v1/patients",
    "/api/v1/patients/{id}/appointments",
    "/api/v1/patients/{id}/treatments",
    "/api/v1/hospitals",
    "/api/v1/users",
    "/api/v1/patients/{id}/documents",
];
pub const REPLAYED: &str = "idempotent-replayed";

/// 1 to 255 printable ASCII characters.
fn valid_key(key: &[u8]) -> bool {
    (1..=255).contains(&key.len()) && key.iter().all(|b| (0x20..=0x7e).contains(b))
}

/// For a POST with `Idempotency-Key` (a step of [`super::protected`]): checks
/// the key, reads the body (within the body limit) and leaves a
/// [`KeyedRequest`] for the handler.
pub async fn read_key<F>(
    state: &AppState,
    req: Request,
    next: impl FnOnce(Request) -> F,
) -> Response
where
    F: Future<Output = Response>,
{
    if req.method() != Method::POST {
        return next(req).await;
    }
    let Some(key) = req.headers().get(HEADER).cloned() else {
        return next(req).await;
    };
    if !valid_key(key.as_bytes()) {
        return AppError::BadRequest(
            "Idempotency-Key must be 1 to 255 printable ASCII characters".into(),
        )
        .into_response();
    }
    if is_multipart(req.headers()) {
        // An upload is streamed, never buffered here: its handler
        // fingerprints the file's digest and fields once it has read them
        // (`keyed_upload`).
        let key = String::from_utf8_lossy(key.as_bytes()).into_owned();
        let (mut parts, body) = req.into_parts();
        parts.extensions.insert(PendingUploadKey(key));
        return next(Request::from_parts(parts, body)).await;
    }
    let (mut parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, state.config.body_limit_bytes).await {
        Ok(b) => b,
        Err(_) => return AppError::PayloadTooLarge.into_response(),
    };
    // The full path, as the client sent it.
    let path = parts
        .extensions
        .get::<OriginalUri>()
        .map_or_else(|| parts.uri.path().to_owned(), |o| o.0.path().to_owned());
    let fingerprint = match fingerprint(
        state.config.jwt_secret_bytes(),
        parts.method.as_str(),
        &path,
        &bytes,
    ) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let keyed = KeyedRequest {
        key: String::from_utf8_lossy(key.as_bytes()).into_owned(),
        fingerprint,
    };
    parts.extensions.insert(keyed);
    next(Request::from_parts(parts, Body::from(bytes))).await
}

fn is_multipart(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/")
        })
}

/// The `Idempotency-Key` of a streamed upload, checked but not yet
/// fingerprinted.
#[derive(Debug, Clone)]
pub struct PendingUploadKey(pub String);

/// An upload's key, if it carried one.
pub struct UploadKey(pub Option<PendingUploadKey>);

impl<S: Send + Sync> FromRequestParts<S> for UploadKey {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(UploadKey(
            parts.extensions.get::<PendingUploadKey>().cloned(),
        ))
    }
}

/// The keyed request of an upload: fingerprinted like any other, over what
/// identifies the upload (`parts`: its fields and the file's SHA-256), so
/// a retry of the same file and fields replays and another file under the
/// same key is 422.
pub fn keyed_upload(
    state: &AppState,
    key: &PendingUploadKey,
    path: &str,
    parts: &[&str],
) -> Result<KeyedRequest> {
    let body = serde_json::to_vec(parts).map_err(AppError::internal)?;
    Ok(KeyedRequest {
        key: key.0.clone(),
        fingerprint: fingerprint(state.config.jwt_secret_bytes(), "POST", path, &body)?,
    })
}

/// The request's key, if it carried one.
pub struct IdempotencyKey(pub Option<KeyedRequest>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(IdempotencyKey(
            parts.extensions.get::<KeyedRequest>().cloned(),
        ))
    }
}

/// The JSON a response DTO is sent as (also what a replay sends again).
pub fn json_body<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(AppError::internal)
}

/// Where a created record lives: the `Location` of its 201 (RFC 9110
/// §10.2.2), on the first response and on every replay of it.
pub trait Located {
    /// The collection's path, e.g. `/api/v1/patients`.
    const BASE: &'static str;
    /// Where the record's id is in the response body (a JSON pointer).
    const ID_POINTER: &'static str = "/id";
    fn location_id(&self) -> String;
}

macro_rules! located {
    ($ty:ty, $base:literal) => {
        located!($ty, $base, "/id", |v: &$ty| v.id.to_string());
    };
    ($ty:ty, $base:literal, $pointer:literal, $id:expr) => {
        impl Located for $ty {
            const BASE: &'static str = $base;
            const ID_POINTER: &'static str = $pointer;
            fn location_id(&self) -> String {
                ($id)(self)
            }
        }
    };
}

located!(crate::domain::patient::Patient, "/api/v1/patients");
located!(
    crate::domain::appointment::Appointment,
    "/api/v1/appointments"
);
located!(crate::domain::treatment::Treatment, "/api/v1/treatments");
located!(crate::domain::hospital::Hospital, "/api/v1/hospitals");
located!(crate::domain::user::User, "/api/v1/users");
located!(crate::domain::quote::Quote, "/api/v1/quotes");
located!(crate::domain::document::Document, "/api/v1/documents");
// Accepting a quote creates the booked treatment.
located!(
    crate::workflow::quotes::Booked,
    "/api/v1/treatments",
    "/treatment/id",
    |b: &crate::workflow::quotes::Booked| b.treatment.id.to_string()
);

/// Sets `Location: <T::BASE>/<id>` on `res` (ids are 24 hex digits).
pub fn set_location<T: Located>(res: &mut Response, id: &str) {
    if let Ok(v) = HeaderValue::try_from(format!("{}/{id}", T::BASE)) {
        res.headers_mut().insert(header::LOCATION, v);
    }
}

/// The response to a creating request: `fresh` for something created now,
/// or the stored first response, marked as replayed; either with its
/// `Location`.
pub fn created<T: Located>(outcome: Created<T>, fresh: impl FnOnce(T) -> Response) -> Response {
    match outcome {
        Created::New(v) => {
            let id = v.location_id();
            let mut res = fresh(v);
            set_location::<T>(&mut res, &id);
            res
        }
        Created::Replayed(replay) => {
            let id = replayed_id_at(&replay, T::ID_POINTER);
            let mut res = replayed(replay);
            if let Some(id) = id {
                set_location::<T>(&mut res, &id);
            }
            res
        }
    }
}

fn replayed_id_at(replay: &Replay, pointer: &str) -> Option<String> {
    let body: serde_json::Value = serde_json::from_str(&replay.body).ok()?;
    body.pointer(pointer)?.as_str().map(str::to_owned)
}

/// The `id` in a stored response body, if it has one.
pub fn replayed_id(replay: &Replay) -> Option<String> {
    replayed_id_at(replay, "/id")
}

pub fn replayed(Replay { status, body }: Replay) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::HeaderName::from_static(REPLAYED),
                HeaderValue::from_static("true"),
            ),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::valid_key;

    #[test]
    fn keys_are_one_to_255_printable_characters() {
        assert!(valid_key(b"a"));
        assert!(valid_key(b"order 42 / retry-1"));
        assert!(valid_key(&[b'k'; 255]));
        assert!(!valid_key(b""));
        assert!(!valid_key(&[b'k'; 256]));
        assert!(!valid_key(b"tab\there"));
        assert!(!valid_key("caf\u{e9}".as_bytes()));
    }
}
