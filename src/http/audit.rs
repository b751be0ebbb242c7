//! Building audit events from the request they describe.

use axum::{
    extract::{FromRequestParts, MatchedPath},
    http::request::Parts,
};
use mongodb::bson::{oid::ObjectId, DateTime, Document};

use super::{auth::ClientIp, middleware::RequestId};
use crate::{auth::cache::Principal, repo::audit::AuditEvent, state::AppState};

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
        AuditEvent {
            id: ObjectId::new(),
            at: DateTime::now(),
            actor_id: actor.map(|p| p.id),
            role: actor.map(|p| p.role.as_str().to_owned()),
            action: action.to_owned(),
            method: self.method.clone(),
            route: self.route.clone(),
            status: i32::from(status),
            target_ids,
            patient_ids: Vec::new(),
            request_id: self.request_id.clone(),
            ip: self.ip.clone(),
            details,
        }
    }

    /// Writes the event; a failure is logged and does not fail the request
    /// that already happened.
    pub async fn record(&self, state: &AppState, event: AuditEvent) {
        if let Err(e) = state.repos.audit.record(event).await {
            tracing::error!(error = %e, action = %self.route, "audit event could not be written");
        }
    }
}
