//! A patient's documents: multipart upload streamed to the document
//! store, metadata, audited download, soft delete and restore.

use axum::{
    body::Body,
    extract::{
        multipart::{Field, MultipartError, MultipartRejection},
        DefaultBodyLimit, Multipart, OriginalUri, State,
    },
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Extension, Json,
};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::Validate;

use crate::{
    domain::{
        document::{Category, Document, FileType},
        permission::{RouteKey, DELETED_DOCUMENTS},
        DocumentId, PatientId, TreatmentId, UserId,
    },
    error::{AppError, ErrorResponse},
    http::{
        audit::AuditPatients,
        auth::CurrentUser,
        dto::{page_request, FileBytes, Page},
        extract::{ApiPath, ApiQuery},
        idempotency::{created, json_body, keyed_upload, UploadKey},
        names,
        params::PatientPath,
        text::validate_text,
    },
    repo::documents::DocumentFilter,
    state::AppState,
    workflow::{
        documents::{self, Staged, Upload},
        idempotency::Idem,
    },
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        // The file's own limit (`DOCUMENT_MAX_BYTES`) is enforced as it
        // streams; text fields are capped one by one and their number is
        // bounded, so the body limit that buffers JSON does not apply.
        .routes(routes!(list_documents, upload_document))
        .layer(DefaultBodyLimit::disable())
        .routes(routes!(get_document, delete_document))
        .routes(routes!(download_document))
        .routes(routes!(restore_document))
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListDocumentsQuery {
    #[param(minimum = 1, maximum = 1_000_000)]
    pub page: Option<u64>,
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<u64>,
    pub category: Option<Category>,
    /// Deleted documents only (to restore one); needs the permission
    /// `GET /api/v1/patients/{id}/documents?deleted=true` (admin by default).
    pub deleted: Option<bool>,
}

/// The multipart form of an upload.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DocumentUpload {
    /// PDF, JPEG, PNG, WebP or DICOM, recognised by its content; at most
    /// `DOCUMENT_MAX_BYTES` (25 MiB by default).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    category: Category,
    /// At most 200 characters once trimmed; a blank title is no title.
    #[schema(max_length = 200)]
    title: Option<String>,
    /// A treatment of this patient the document belongs to.
    treatment_id: Option<TreatmentId>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentResponse {
    pub id: DocumentId,
    pub patient_id: PatientId,
    pub category: Category,
    pub title: Option<String>,
    pub treatment_id: Option<TreatmentId>,
    /// The download's file name: the uploaded name made safe, with the
    /// extension of the type found in the content.
    pub file_name: String,
    pub file_type: FileType,
    pub content_type: String,
    pub size: i64,
    /// SHA-256 of the content, hex; checked on every download.
    pub sha256: String,
    pub created_at: DateTime<Utc>,
    pub created_by: UserId,
    pub created_by_name: Option<String>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub deleted_by: Option<UserId>,
    pub deleted_by_name: Option<String>,
}

impl From<&Document> for DocumentResponse {
    fn from(d: &Document) -> Self {
        DocumentResponse {
            id: d.id,
            patient_id: d.patient_id,
            category: d.category,
            title: d.title.clone(),
            treatment_id: d.treatment_id,
            file_name: d.file_name.clone(),
            file_type: d.file_type,
            content_type: d.file_type.mime().into(),
            size: d.size,
            sha256: d.sha256.clone(),
            created_at: d.created_at.to_chrono(),
            created_by: d.created_by,
            created_by_name: names::user(d.created_by),
            deleted_at: d.deleted_at.map(|t| t.to_chrono()),
            deleted_by: d.deleted_by,
            deleted_by_name: names::user_opt(d.deleted_by),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DocumentPath {
    /// The document's id.
    pub id: DocumentId,
}

fn audited<T: IntoResponse>(patient: PatientId, body: T) -> Response {
    (Extension(AuditPatients(vec![patient.to_string()])), body).into_response()
}

/// A patient's documents, newest first.
#[utoipa::path(get, path = "/api/v1/patients/{id}/documents", tag = "documents",
    params(PatientPath, ListDocumentsQuery),
    responses((status = 200, body = Page<DocumentResponse>), (status = 403, body = ErrorResponse),
        (status = 404, body = ErrorResponse)))]
pub async fn list_documents(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiPath(PatientPath { id }): ApiPath<PatientPath>,
    ApiQuery(q): ApiQuery<ListDocumentsQuery>,
) -> Result<Response, AppError> {
    let page = page_request(q.page, q.per_page)?;
    let deleted = q.deleted == Some(true);
    if deleted {
        let matrix = state.permissions.get(&state.repos.permissions).await?;
        let key = RouteKey::new("GET", DELETED_DOCUMENTS);
        if !matrix.allows(me.role, &me.overrides, &key) {
            return Err(AppError::Forbidden(format!("you may not call {key}")));
        }
    }
    let filter = DocumentFilter {
        category: q.category,
        deleted,
    };
    let (items, total) = documents::list(&state.workflows, id, filter, page).await?;
    let data = items.iter().map(DocumentResponse::from).collect();
    Ok(audited(id, Json(Page::new(data, page, total))))
}

/// Text fields of an upload: each at most this long.
const FIELD_MAX: usize = 1024;
/// Fields per upload at most (the file and three text fields, with room
/// for clients that add an empty one).
const FIELDS_MAX: usize = 8;

fn multipart_error(e: MultipartError) -> AppError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::PayloadTooLarge
    } else {
        AppError::BadRequest(format!(
            "the multipart body is malformed: {}",
            e.body_text()
        ))
    }
}

async fn read_text(mut field: Field<'_>, name: &str) -> Result<String, AppError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if bytes.len() + chunk.len() > FIELD_MAX {
            return Err(AppError::invalid_field(name, "is too long"));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| AppError::invalid_field(name, "must be UTF-8 text"))
}

/// The text fields, as sent.
#[derive(Default)]
struct Fields {
    category: Option<String>,
    title: Option<String>,
    treatment_id: Option<String>,
    file_name: Option<String>,
}

impl Fields {
    fn upload(self) -> Result<Upload, AppError> {
        let category = match self.category.as_deref().map(str::trim) {
            None | Some("") => return Err(AppError::invalid_field("category", "is required")),
            Some(c) => Category::parse(c).ok_or_else(|| {
                AppError::invalid_field(
                    "category",
                    "must be one of passport, medical_report, imaging, visa, invoice, consent, other",
                )
            })?,
        };
        let title = self.title.filter(|t| !t.trim().is_empty());
        if let Some(t) = &title {
            validate_text(t)
                .map_err(|_| AppError::invalid_field("title", "must be 1 to 200 characters"))?;
        }
        let treatment_id = match self.treatment_id.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(t) => Some(t.parse::<TreatmentId>().map_err(|_| {
                AppError::invalid_field(
                    "treatment_id",
                    "must be a treatment id (24 hex characters)",
                )
            })?),
        };
        Ok(Upload {
            category,
            title,
            treatment_id,
            file_name: self.file_name,
        })
    }
}

/// Reads the form, streaming `file` into the store as it arrives.
async fn read_form(
    state: &AppState,
    patient: PatientId,
    mut form: Multipart,
) -> Result<(Fields, Option<Staged>), (AppError, Option<Staged>)> {
    let mut fields = Fields::default();
    let mut staged: Option<Staged> = None;
    let mut seen = 0;
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => return Ok((fields, staged)),
            Err(e) => return Err((multipart_error(e), staged)),
        };
        seen += 1;
        if seen > FIELDS_MAX {
            return Err((AppError::BadRequest("too many form fields".into()), staged));
        }
        let name = field.name().unwrap_or("").to_owned();
        let read = match name.as_str() {
            "file" if staged.is_some() => {
                Err(AppError::invalid_field("file", "send one file per upload"))
            }
            "file" => {
                fields.file_name = field.file_name().map(str::to_owned);
                let chunks = field.map(|c| c.map_err(multipart_error));
                match documents::stage(&state.workflows, patient, std::pin::pin!(chunks)).await {
                    Ok(s) => {
                        staged = Some(s);
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            "category" => read_text(field, "category")
                .await
                .map(|v| fields.category = Some(v)),
            "title" => read_text(field, "title")
                .await
                .map(|v| fields.title = Some(v)),
            "treatment_id" => read_text(field, "treatment_id")
                .await
                .map(|v| fields.treatment_id = Some(v)),
            other => Err(AppError::invalid_field(
                if other.is_empty() { "form" } else { other },
                "unknown field (expected file, category, title, treatment_id)",
            )),
        };
        if let Err(e) = read {
            return Err((e, staged));
        }
    }
}

/// Upload a document (multipart/form-data). The type is judged by the
/// content (415 otherwise), the size by `DOCUMENT_MAX_BYTES` (413); the
/// file is sealed as it streams to the store.
#[utoipa::path(post, path = "/api/v1/patients/{id}/documents", tag = "documents", params(PatientPath),
    request_body(content = DocumentUpload, content_type = "multipart/form-data"),
    responses((status = 201, body = DocumentResponse), (status = 404, body = ErrorResponse),
        (status = 413, body = ErrorResponse), (status = 415, body = ErrorResponse),
        (status = 422, body = ErrorResponse)))]
pub async fn upload_document(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    UploadKey(key): UploadKey,
    OriginalUri(uri): OriginalUri,
    ApiPath(PatientPath { id }): ApiPath<PatientPath>,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, AppError> {
    let form = form.map_err(|_| {
        AppError::UnsupportedMediaType("send the document as multipart/form-data".into())
    })?;
    let (fields, staged) = match read_form(&state, id, form).await {
        Ok(read) => read,
        Err((e, staged)) => {
            if let Some(s) = staged {
                documents::discard(s).await;
            }
            return Err(e);
        }
    };
    let Some(staged) = staged else {
        return Err(AppError::invalid_field("file", "a file field is required"));
    };
    let prepared = fields.upload().and_then(|upload| {
        let keyed = key
            .as_ref()
            .map(|k| {
                let treatment = upload.treatment_id.map(|t| t.to_string());
                keyed_upload(
                    &state,
                    k,
                    uri.path(),
                    &[
                        upload.category.as_str(),
                        upload.title.as_deref().unwrap_or(""),
                        treatment.as_deref().unwrap_or(""),
                        upload.file_name.as_deref().unwrap_or(""),
                        &staged.sealed.sha256,
                    ],
                )
            })
            .transpose()?;
        Ok((upload, keyed))
    });
    let (upload, keyed) = match prepared {
        Ok(p) => p,
        Err(e) => {
            documents::discard(staged).await;
            return Err(e);
        }
    };
    let render = |d: &Document| json_body(&DocumentResponse::from(d));
    let idem = Idem {
        request: keyed.as_ref(),
        status: StatusCode::CREATED.as_u16(),
        render: &render,
    };
    let outcome = documents::register(&state.workflows, me.id, staged, upload, idem).await?;
    Ok(audited(
        id,
        created(outcome, |d| {
            (StatusCode::CREATED, Json(DocumentResponse::from(&d))).into_response()
        }),
    ))
}

/// A document's metadata.
#[utoipa::path(get, path = "/api/v1/documents/{id}", tag = "documents", params(DocumentPath),
    responses((status = 200, body = DocumentResponse), (status = 404, body = ErrorResponse)))]
pub async fn get_document(
    State(state): State<AppState>,
    ApiPath(DocumentPath { id }): ApiPath<DocumentPath>,
) -> Result<Response, AppError> {
    let d = documents::load(&state.workflows, id).await?;
    Ok(audited(d.patient_id, Json(DocumentResponse::from(&d))))
}

/// Download a document: an audited read of the patient's data, checked
/// against its stored checksum first (409 `document_corrupted` when the
/// stored object is damaged or missing).
#[utoipa::path(get, path = "/api/v1/documents/{id}/content", tag = "documents", params(DocumentPath),
    responses(
        (status = 200, description = "The file, as an attachment", content(
            (FileBytes = "application/pdf"), (FileBytes = "image/jpeg"), (FileBytes = "image/png"),
            (FileBytes = "image/webp"), (FileBytes = "application/dicom")),
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"<the name it was uploaded with>\"`"))),
        (status = 404, body = ErrorResponse),
        (status = 409, description = "The stored object is damaged or missing (`document_corrupted`)", body = ErrorResponse),
    ))]
pub async fn download_document(
    State(state): State<AppState>,
    ApiPath(DocumentPath { id }): ApiPath<DocumentPath>,
) -> Result<Response, AppError> {
    let dl = documents::download(&state.workflows, id).await?;
    let d = &dl.document;
    let disposition = format!("attachment; filename=\"{}\"", d.file_name);
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static(d.file_type.mime()),
        ),
        (header::CONTENT_LENGTH, HeaderValue::from(d.size)),
        (
            header::CONTENT_DISPOSITION,
            HeaderValue::from_str(&disposition).map_err(AppError::internal)?,
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ];
    let patient = d.patient_id;
    // Fused: the gzip layer may poll once more after the end (see http::csv).
    Ok(audited(
        patient,
        (headers, Body::from_stream(dl.body.fuse())),
    ))
}

/// Soft-delete a document (admin by default); it can be restored.
#[utoipa::path(delete, path = "/api/v1/documents/{id}", tag = "documents", params(DocumentPath),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorResponse)))]
pub async fn delete_document(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiPath(DocumentPath { id }): ApiPath<DocumentPath>,
) -> Result<Response, AppError> {
    let d = documents::delete(&state.workflows, me.id, id).await?;
    Ok(audited(d.patient_id, StatusCode::NO_CONTENT))
}

/// Undo a document's delete.
#[utoipa::path(post, path = "/api/v1/documents/{id}/restore", tag = "documents", params(DocumentPath),
    responses((status = 200, body = DocumentResponse), (status = 404, body = ErrorResponse)))]
pub async fn restore_document(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiPath(DocumentPath { id }): ApiPath<DocumentPath>,
) -> Result<Response, AppError> {
    let d = documents::restore(&state.workflows, me.id, id).await?;
    Ok(audited(d.patient_id, Json(DocumentResponse::from(&d))))
}
