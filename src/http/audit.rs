//! The audit trail: events built from the request they describe, and the
//! step of [`super::protected`] that records every call to a protected
//! route.
//!
//! The step runs outside the permission check, so refused attempts are
//! recorded as well as successful ones. Events carry who (actor, role,
//! client IP), what (method, route template, action, target ids, patient
//! ids), the outcome status and the request id, never bodies: no medical
//! details, passwords or tokens. They are written after the response is
//! ready, through the bounded writer of `audit_log`. Calls refused without
//! a valid token are tallied per client and minute there instead of being
//! an event each, and path parameters are kept only when they are
//! well-formed ids, so nobody without a token can grow the trail or plant
//! an entry in a patient's access log.

use std::future::Future;

use axum::{
    extract::{FromRequestParts, MatchedPath, RawPathParams, Request},
    http::request::Parts,
    response::Response,
};
use mongodb::bson::{oid::ObjectId, DateTime, Document};

use super::{
    auth::{ClientIp, CurrentUser},
    middleware::RequestId,
    per_route::PerRoute,
};
use crate::{
    auth::{cache::Principal, rate_limit::ClientKey},
    repo::audit::AuditEvent,
    state::AppState,
};

/// Set by handlers on their response: the patients whose data the request
/// read or changed (e.g. every patient on a returned list page).
#[derive(Debug, Clone, Default)]
pub struct AuditPatients(pub Vec<String>);

/// `resource.verb` for a route, e.g. `GET /api/v1/patients/{id}` ->
/// `patients.read`, `POST /api/v1/patients/{id}/restore` -> `patients.restore`.
pub fn action_name(method: &str, route: &str) -> String {
    let segments: Vec<&str> = route
        .trim_start_matches("/api/v1/")
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let ends_with_param = segments.last().is_some_and(|s| s.starts_with('{'));
    let names: Vec<&str> = segments
        .iter()
        .copied()
        .filter(|s| !s.starts_with('{'))
        .collect();
    let resource = names.first().copied().unwrap_or("root");
    let sub = if names.len() > 1 {
        names[1..].join(".")
    } else {
        String::new()
    };
    let verb = match (method, ends_with_param, sub.is_empty()) {
        ("GET", true, _) => "read",
        ("GET", false, true) => "list",
        ("GET", false, false) => "read",
        ("POST", _, true) => "create",
        ("PATCH", _, _) => "update",
        ("PUT", _, _) => "set",
        ("DELETE", _, _) => "delete",
        _ => "",
    };
    match (sub.is_empty(), verb.is_empty()) {
        (true, _) => format!("{resource}.{verb}"),
        (false, true) => format!("{resource}.{sub}"),
        (false, false) if method == "POST" => format!("{resource}.{sub}"),
        (false, false) => format!("{resource}.{sub}.{verb}"),
    }
}

/// [`action_name`] of a route, worked out once per route and method and
/// kept: this runs for every request to a protected route.
fn route_action(method: &str, route: &str) -> String {
    static KEPT: PerRoute<String, String> = PerRoute::new();
    KEPT.get(route, method, || action_name(method, route))
}

/// A path parameter worth keeping: an id (24 hex digits) or a role name.
/// Anything else a client typed into the path is not stored.
fn well_formed(name: &str, value: &str) -> bool {
    if name == "role" {
        return crate::domain::user::Role::parse(value).is_some();
    }
    value.len() == 24 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Records one audit event per request to a protected route.
pub async fn record_access<F>(
    state: &AppState,
    req: Request,
    next: impl FnOnce(Request) -> F,
) -> Response
where
    F: Future<Output = Response>,
{
    let (mut parts, body) = req.into_parts();
    let ctx = match AuditCtx::from_request_parts(&mut parts, state).await {
        Ok(c) => c,
        Err(never) => match never {},
    };
    let client = ClientIp::from_request_parts(&mut parts, state)
        .await
        .map(|c| c.0)
        .unwrap_or(None);
    let params: Vec<(String, String)> = RawPathParams::from_request_parts(&mut parts, state)
        .await
        .map(|p| {
            p.iter()
                .filter(|(k, v)| well_formed(k, v))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    // The writer's slot is taken before the handler runs: once the handler
    // has done its work, its event is handed over without another wait, so
    // a client that gives up cannot leave a read or a change unrecorded.
    // When every slot is busy the request waits here (back-pressure).
    let slot = state.audit.slot().await;
    let response = next(Request::from_parts(parts, body)).await;

    let actor = response
        .extensions()
        .get::<CurrentUser>()
        .map(|c| c.0.clone());
    let status = response.status().as_u16();
    let Some(actor) = actor else {
        // No valid token (a 401, a deactivated account's 403, or a method
        // the route lacks): a tally, not an event (see `audit_log`).
        drop(slot);
        let client = client.map(ClientKey::of);
        state
            .audit
            .refused(client, &ctx.method, &ctx.route, status)
            .await;
        return response;
    };
    let mut patient_ids = response
        .extensions()
        .get::<AuditPatients>()
        .map(|p| p.0.clone())
        .unwrap_or_default();
    if patient_ids.is_empty() && ctx.route.starts_with("/api/v1/patients/{id}") {
        patient_ids.extend(
            params
                .iter()
                .filter(|(k, _)| k == "id")
                .map(|(_, v)| v.clone()),
        );
    }
    let target_ids = params.into_iter().map(|(_, v)| v).take(4).collect();
    let action = route_action(&ctx.method, &ctx.route);
    let mut event = ctx.into_event(action, Some(&actor), status, target_ids, None);
    event.patient_ids = patient_ids;
    state.audit.submit_in(slot, vec![event]);
    response
}

/// Who asked what, captured from the request for its audit event.
#[derive(Debug, Clone)]
pub struct AuditCtx {
    pub method: String,
    pub route: String,
    pub request_id: String,
    pub ip: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for AuditCtx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ClientIp(ip) = ClientIp::from_request_parts(parts, state).await?;
        Ok(AuditCtx {
            method: parts.method.to_string(),
            route: parts
                .extensions
                .get::<MatchedPath>()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default(),
            request_id: parts
                .extensions
                .get::<RequestId>()
                .map(|r| r.0.to_string())
                .unwrap_or_default(),
            ip: ip.map(|i| i.to_string()),
        })
    }
}

impl AuditCtx {
    pub fn event(
        &self,
        action: &str,
        actor: Option<&Principal>,
        status: u16,
        target_ids: Vec<String>,
        details: Option<Document>,
    ) -> AuditEvent {
        self.clone()
            .into_event(action.to_owned(), actor, status, target_ids, details)
    }

    /// [`Self::event`], taking the context's strings instead of copying
    /// them (the audit step's one event per request).
    pub fn into_event(
        self,
        action: String,
        actor: Option<&Principal>,
        status: u16,
        target_ids: Vec<String>,
        details: Option<Document>,
    ) -> AuditEvent {
        AuditEvent {
            id: ObjectId::new(),
            at: DateTime::now(),
            actor_id: actor.map(|p| p.id),
            role: actor.map(|p| p.role.as_str().to_owned()),
            action,
            method: self.method,
            route: self.route,
            status: i32::from(status),
            target_ids,
            patient_ids: Vec::new(),
            request_id: self.request_id,
            ip: self.ip,
            details,
        }
    }

    /// Writes the event; a failure is logged and does not fail the request
    /// that already happened.
    pub async fn record(&self, state: &AppState, event: AuditEvent) {
        let _turn = state.workflows.gate.shared().await;
        if let Err(e) = state.repos.audit.record(event).await {
            tracing::error!(error = %e, route = %self.route, "audit event could not be written");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_named_per_route_and_method_every_time() {
        let patient = "/api/v1/patients/{id}";
        for _ in 0..2 {
            // The second round answers from what the first kept: a name
            // kept by route alone would give the DELETE the GET's name.
            assert_eq!(route_action("GET", patient), "patients.read");
            assert_eq!(route_action("DELETE", patient), "patients.delete");
            assert_eq!(route_action("GET", "/api/v1/patients"), "patients.list");
            assert_eq!(
                route_action("POST", "/api/v1/patients/{id}/restore"),
                "patients.restore"
            );
        }
        assert_eq!(action_name("PATCH", patient), "patients.update");
    }
}
