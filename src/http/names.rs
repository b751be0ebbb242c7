//! The names beside the ids: a request to a protected route runs with one
//! snapshot of the name cache ([`crate::workflow::names`]) in scope, and the
//! response types fill their `*_name` fields from it while they are built.
//!
//! The snapshot is request-scoped (a tokio task-local set by [`scope`]), so
//! the many `From` conversions that build responses need no extra argument,
//! and a page of rows costs no query at all. Built outside a request (a
//! test, a background task), a response simply has no names.

use std::{future::Future, sync::Arc};

use axum::{extract::Request, response::Response};

use crate::{
    domain::{HospitalId, UserId},
    state::AppState,
    workflow::names::Names,
};

tokio::task_local! {
    static NAMES: Arc<Names>;
}

/// The protected routes' last step ([`super::protected`]): runs the rest of
/// the request with the current names.
pub async fn scope<F>(state: &AppState, req: Request, next: impl FnOnce(Request) -> F) -> Response
where
    F: Future<Output = Response>,
{
    let names = state.workflows.names.get(&state.repos).await;
    NAMES.scope(names, next(req)).await
}

/// The display name of user `id`, when known in this request.
pub fn user(id: UserId) -> Option<String> {
    NAMES.try_with(|n| n.user(id)).ok().flatten()
}

/// [`user`] of an optional id.
pub fn user_opt(id: Option<UserId>) -> Option<String> {
    id.and_then(user)
}

/// The name of hospital `id`, when known in this request.
pub fn hospital(id: HospitalId) -> Option<String> {
    NAMES.try_with(|n| n.hospital(id)).ok().flatten()
}

/// [`hospital`] of an optional id.
pub fn hospital_opt(id: Option<HospitalId>) -> Option<String> {
    id.and_then(hospital)
}
