//! The protected routes' middleware, in one layer. Its steps, outermost
//! first:
//!
//! 1. the audit trail ([`audit::record_access`]), outside the permission
//!    check, so refused attempts are recorded too;
//! 2. authentication and the permission check ([`auth::require_permission`]);
//!    its 401 or 403 is the response the audit step sees;
//! 3. the `Idempotency-Key`, read only once the caller is allowed in
//!    ([`idempotency::read_key`]);
//! 4. the names snapshot, taken last, for allowed calls ([`names::scope`]).
//!
//! Each step takes the rest of the request as a plain function rather than
//! being a layer of its own: the steps nest as one future, with no boxed
//! service, boxed future or clone of the route's inner stack per step.

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{audit, auth, idempotency, names};
use crate::state::AppState;

/// Runs a request to a protected route through the steps above.
pub async fn steps(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let state = &state;
    audit::record_access(state, req, move |req| async move {
        auth::require_permission(state, req, move |req| async move {
            idempotency::read_key(state, req, move |req| {
                names::scope(state, req, move |req| next.run(req))
            })
            .await
        })
        .await
        .unwrap_or_else(IntoResponse::into_response)
    })
    .await
}
