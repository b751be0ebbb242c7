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
    servers((url = "/", description = "The server that serves this document")),
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

/// An error response in the contract's shape.
fn error(description: &str) -> utoipa::openapi::Response {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorResponse")))
                .build(),
        )
        .build()
}

/// Documents the `Idempotency-Key` header, and the 409 and 422 it can
/// cause, on every creating POST.
pub fn document_idempotency(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{
        path::{ParameterBuilder, ParameterIn},
        schema::{ObjectBuilder, Type},
        RefOr, Required,
    };
    for path in super::idempotency::CREATING {
        let Some(op) = doc
            .paths
            .paths
            .get_mut(*path)
            .and_then(|item| item.post.as_mut())
        else {
            continue;
        };
        let header = ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "1-255 printable characters. The same key, user and body within 24 h \
                 replays the first response (header `idempotent-replayed: true`) and \
                 creates nothing; the same key with another body is 422 \
                 `idempotency_key_reused`; one still running is 409 `request_in_progress`.",
            ))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(255)),
            ))
            .build();
        op.parameters.get_or_insert_with(Vec::new).push(header);
        if let Some(RefOr::T(created)) = op.responses.responses.get_mut("201") {
            created.headers.insert(
                "idempotent-replayed".to_owned(),
                response_header(
                    Type::String,
                    "`true` when this is the stored first response to the same key",
                ),
            );
        }
        let responses = &mut op.responses.responses;
        responses.insert(
            "409".to_owned(),
            error("Conflict (`conflict`), or the same Idempotency-Key is still being processed (`request_in_progress`)").into(),
        );
        responses.insert(
            "422".to_owned(),
            error("Breaks a rule (`validation_failed`), or the Idempotency-Key was used with another body (`idempotency_key_reused`)").into(),
        );
    }
}

/// Documents the response headers set outside the handlers' own
/// annotations, so that a client generated from the document, and the CORS
/// test that checks the exposed headers against it, see them:
/// `x-request-id` on every response (the edge's `request_id` layer),
/// `Location` on every 201 (`idempotency::created`, the only way a handler
/// answers 201), `Retry-After` on every 429 (`AppError::RateLimited`, the
/// only 429), `ETag` on every 304 (`freshness::not_modified`, the only
/// 304), and `ETag` on the 200 of a versioned record's read and of each
/// change that takes its `If-Match` (`versioning::etag`). Runs after
/// every other pass has added its responses.
pub fn document_response_headers(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{path::ParameterIn, schema::Type, RefOr};
    let takes_if_match = |op: &utoipa::openapi::path::Operation| {
        op.parameters.iter().flatten().any(|p| {
            p.parameter_in == ParameterIn::Header && p.name.eq_ignore_ascii_case("if-match")
        })
    };
    for item in doc.paths.paths.values_mut() {
        let versioned = super::operations(item)
            .into_iter()
            .any(|(_, op)| takes_if_match(op));
        for (method, op) in super::operations(item) {
            if versioned && (method == "GET" || takes_if_match(op)) {
                if let Some(RefOr::T(ok)) = op.responses.responses.get_mut("200") {
                    ok.headers.entry("ETag".to_owned()).or_insert_with(|| {
                        response_header(
                            Type::String,
                            "The record's version as read or saved; send it as If-Match \
                             to change the record only if no one else has since",
                        )
                    });
                }
            }
            for (status, response) in op.responses.responses.iter_mut() {
                let RefOr::T(response) = response else {
                    continue;
                };
                response
                    .headers
                    .entry(super::middleware::X_REQUEST_ID.as_str().to_owned())
                    .or_insert_with(|| {
                        response_header(
                            Type::String,
                            "The request's id: the caller's own `x-request-id` when it is \
                             1-64 ASCII letters, digits, `-`, `_` or `.`, otherwise a new UUID; \
                             logged and audited with the request",
                        )
                    });
                let (name, value) = match status.as_str() {
                    "201" => (
                        "Location",
                        response_header(Type::String, "The created record's path, to read it"),
                    ),
                    "429" => (
                        "Retry-After",
                        response_header(Type::Integer, "Seconds until a retry can succeed"),
                    ),
                    "304" => (
                        "ETag",
                        response_header(
                            Type::String,
                            "The current ETag, the one If-None-Match named",
                        ),
                    ),
                    _ => continue,
                };
                response.headers.entry(name.to_owned()).or_insert(value);
            }
        }
    }
}

/// A documented response header of type `kind`.
fn response_header(
    kind: utoipa::openapi::schema::Type,
    description: &str,
) -> utoipa::openapi::header::Header {
    use utoipa::openapi::{header::HeaderBuilder, schema::ObjectBuilder};
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(kind))
        .description(Some(description))
        .build()
}

/// Adds the error responses any operation can give, so the document lists
/// every status a client can see: 400 (bad query, path or id), 500, 503
/// (database unreachable) and 504 (timeout) everywhere; 401 and 403 on
/// operations behind authentication; 413, 415 and 422 on operations with a
/// request body. Responses an operation documents itself are kept.
pub fn document_common_errors(doc: &mut utoipa::openapi::OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        if !path.starts_with(super::API_PREFIX) || path == super::OPENAPI_PATH {
            continue;
        }
        for (_, op) in super::operations(item) {
            let mut statuses = vec![
                (
                    "400",
                    "Malformed query, path or id (`bad_request`, `invalid_id`)",
                ),
                (
                    "500",
                    "Unexpected failure (`internal`); never carries internals",
                ),
                (
                    "503",
                    "The database cannot be reached (`service_unavailable`)",
                ),
                ("504", "The request took too long (`timeout`)"),
            ];
            if op.security.is_some() {
                statuses.push(("401", "Missing, invalid or expired token"));
                statuses.push(("403", "Not allowed by route permissions, or inactive user"));
            }
            if op.request_body.is_some() {
                statuses.push(("413", "Body over the size limit (`payload_too_large`)"));
                statuses.push(("415", "Wrong content type (`unsupported_media_type`)"));
                statuses.push((
                    "422",
                    "Well-formed body that breaks a rule (`validation_failed`)",
                ));
            }
            for (status, description) in statuses {
                op.responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error(description).into());
            }
        }
    }
}

/// The two routes outside the API that the server itself serves: the docs
/// page and `/metrics` (with its own bearer token, `METRICS_TOKEN`).
pub fn document_operator_routes(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{
        header::HeaderBuilder,
        path::{OperationBuilder, PathItemBuilder},
        schema::{ObjectBuilder, Type},
        security::SecurityRequirement,
        ContentBuilder, HttpMethod, ResponseBuilder,
    };
    let text = |media: &str, description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                media,
                ContentBuilder::new()
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                    .build(),
            )
            .build()
    };
    let docs = OperationBuilder::new()
        .tag("meta")
        .operation_id(Some("docs_page"))
        .summary(Some(
            "The API reference page (Swagger UI), served by this binary",
        ))
        .response("200", text("text/html", "The page"))
        .response(
            "303",
            ResponseBuilder::new()
                .description("Redirect from `/docs` to `/docs/`")
                .header(
                    "location",
                    HeaderBuilder::new()
                        .schema(ObjectBuilder::new().schema_type(Type::String))
                        .build(),
                )
                .build(),
        )
        .build();
    doc.paths.paths.insert(
        super::DOCS_PATH.to_owned(),
        PathItemBuilder::new()
            .operation(HttpMethod::Get, docs)
            .build(),
    );

    let components = doc.components.get_or_insert_with(Default::default);
    let scheme = Http::new(HttpAuthScheme::Bearer);
    components.add_security_scheme("metrics_token", SecurityScheme::Http(scheme));
    let metrics = OperationBuilder::new()
        .tag("meta")
        .operation_id(Some("metrics"))
        .summary(Some(
            "Prometheus metrics, with the METRICS_TOKEN as bearer token",
        ))
        .description(Some(
            "Request counts and latencies by route template, database command latency, \
             audit queue depth, password-hash queue wait and cache lookups. No label or \
             value names a patient or a user.",
        ))
        .security(SecurityRequirement::new(
            "metrics_token",
            Vec::<String>::new(),
        ))
        .response(
            "200",
            text("text/plain", "The Prometheus text format (0.0.4)"),
        )
        .response(
            "401",
            error("Missing or wrong METRICS_TOKEN (`unauthorized`)"),
        )
        .response("404", error("While METRICS_TOKEN is unset (`not_found`)"))
        .build();
    doc.paths.paths.insert(
        super::routes::metrics::METRICS_PATH.to_owned(),
        PathItemBuilder::new()
            .operation(HttpMethod::Get, metrics)
            .build(),
    );
}

/// Marks the renamed query parameters' old names deprecated
/// (`params::DEPRECATED_PARAMS`).
pub fn document_deprecated_params(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::Deprecated;
    for (path, name) in super::params::DEPRECATED_PARAMS {
        let Some(op) = doc
            .paths
            .paths
            .get_mut(path)
            .and_then(|item| item.get.as_mut())
        else {
            continue;
        };
        for param in op.parameters.iter_mut().flatten() {
            if param.name == name {
                param.deprecated = Some(Deprecated::True);
            }
        }
    }
}

/// Adds each report's row schema (`FunnelReportRow`, ...), which
/// `ReportResponse.rows` refers to: typed from the columns the report
/// builders use, so the two cannot drift.
pub fn document_report_rows(doc: &mut utoipa::openapi::OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    for (name, schema) in report_rows::row_schemas() {
        components.schemas.insert(name, schema.into());
    }
}

pub mod report_rows;
#[cfg(test)]
mod tests;
