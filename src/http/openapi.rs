//! The OpenAPI 3.1 document: the base declared here, every path and schema
//! contributed by the handlers' own `#[utoipa::path]` annotations as they are
//! registered with the router, so the served document matches the routes.

use utoipa::{
    openapi::security::{Http, HttpAuthScheme, SecurityScheme},
    Modify, OpenApi,
};

use crate::error::{ErrorBody, ErrorResponse};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "healthcrm",
        description = "CRM backend for a medical-tourism facilitator. Errors always use the \
                       `ErrorResponse` shape; every response carries `x-request-id`."
    ),
    components(schemas(ErrorResponse, ErrorBody)),
    modifiers(&BearerAuth),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "meta", description = "This document"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}
