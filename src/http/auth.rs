//! The protected routes' permission check: authenticate (401), then
//! authorize against the route-permission matrix and the user's overrides
//! (403), default deny.
//!
//! It is a step of [`super::protected`], installed with `route_layer`, so
//! it runs only for requests that matched a route: unknown paths stay 404
//! and wrong methods 405.

use std::{
    future::Future,
    net::{IpAddr, SocketAddr},
};

use axum::{
    extract::{ConnectInfo, FromRequestParts, MatchedPath, Request},
    http::{header, request::Parts, Method},
    response::{IntoResponse, Response},
};

use crate::{
    auth::cache::Principal,
    domain::{permission::RouteKey, UserId},
    error::AppError,
    state::AppState,
};

/// The authenticated caller, put in the request by [`require_permission`].
#[derive(Debug, Clone)]
pub struct CurrentUser(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<CurrentUser>()
            .cloned()
            .ok_or_else(|| AppError::Unauthorized("authentication is required".into()))
    }
}

/// The client's address: the socket peer, or what our trusted proxies
/// report (see `http::client_ip`).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let resolved = parts
            .extensions
            .get::<crate::http::client_ip::ResolvedClient>()
            .map(|c| c.0);
        Ok(ClientIp(resolved.or_else(|| {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
        })))
    }
}

fn bearer_token(parts_headers: &axum::http::HeaderMap) -> Result<&str, AppError> {
    let value = parts_headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| AppError::Unauthorized("a bearer token is required".into()))?;
    let value = value
        .to_str()
        .map_err(|_| AppError::Unauthorized("the Authorization header is malformed".into()))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| AppError::Unauthorized("expected 'Authorization: Bearer <token>'".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AppError::Unauthorized(
            "expected 'Authorization: Bearer <token>'".into(),
        ));
    }
    Ok(token.trim())
}

/// Resolves the caller from the access token and the principal cache.
pub async fn authenticate(
    state: &AppState,
    headers: &axum::http::HeaderMap,
) -> Result<Principal, AppError> {
    let claims = state.jwt.verify(bearer_token(headers)?)?;
    let id: UserId = claims
        .sub
        .parse()
        .map_err(|_| AppError::Unauthorized("the access token is invalid".into()))?;
    let principal = state
        .principals
        .get(id, &state.repos.users)
        .await?
        .ok_or_else(|| AppError::Unauthorized("the account no longer exists".into()))?;
    if !principal.active {
        return Err(AppError::Forbidden("the account is deactivated".into()));
    }
    if principal.token_version != claims.tv {
        return Err(AppError::Unauthorized(
            "the session was revoked; log in again".into(),
        ));
    }
    Ok(principal)
}

/// The route as the permission rules name it; `HEAD` is checked as `GET`.
pub fn route_key(method: &Method, path: &MatchedPath) -> RouteKey {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    RouteKey::new(method, path.as_str())
}

/// The permission check (a step of [`super::protected`]): lets an allowed
/// caller through with [`CurrentUser`] in the request, answers 401 or 403
/// otherwise, and leaves the caller on the response either way for the
/// audit step. A method the route lacks goes through unchecked, for the
/// router's 405.
pub async fn require_permission<F>(
    state: &AppState,
    mut req: Request,
    next: impl FnOnce(Request) -> F,
) -> Result<Response, AppError>
where
    F: Future<Output = Response>,
{
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| route_key(req.method(), p))
        .ok_or_else(|| AppError::internal("protected route without a matched path"))?;
    if crate::http::protected_routes()
        .binary_search(&route)
        .is_err()
    {
        // The path exists but not with this method: let the router answer 405.
        return Ok(next(req).await);
    }
    let principal = authenticate(state, req.headers()).await?;
    // Who is asking, on the request's span (the id, never the name).
    tracing::Span::current().record("user_id", tracing::field::display(principal.id));
    let matrix = state.permissions.get(&state.repos.permissions).await?;
    let caller = CurrentUser(principal.clone());
    let mut response = if matrix.allows(principal.role, &principal.overrides, &route) {
        req.extensions_mut().insert(caller.clone());
        next(req).await
    } else {
        AppError::Forbidden(format!("you may not call {route}")).into_response()
    };
    // For the audit step outside this one: who it was, allowed or not.
    response.extensions_mut().insert(caller);
    Ok(response)
}
