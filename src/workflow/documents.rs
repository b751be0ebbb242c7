//! A patient's documents: a file streamed into the document store
//! (recognised by its first bytes, size-limited, sealed on the way), its
//! metadata and history written in one transaction, audited downloads
//! checked against the stored checksum, soft delete and restore.
//!
//! An upload is two steps: [`stage`] writes the object, [`register`]
//! records it. The object is written first so the record never points at
//! bytes that are not there; a failed or replayed registration removes the
//! object again ([`discard`]).

use bytes::Bytes;
use futures::{stream::BoxStream, Stream, StreamExt};
use serde::Serialize;

use super::{
    history::{self, Change, Entity},
    idempotency::{self, Claim, Claimed, Created, Idem},
    patients, Ctx,
};
use crate::{
    domain::{
        document::{safe_file_name, Category, Document, FileType, Sealing, SNIFF_LEN},
        DocumentId, PatientId, TreatmentId, UserId,
    },
    error::{AppError, Result},
    repo::{documents::DocumentFilter, PageRequest},
    storage::{Sealed, Vault, Writer},
    transaction,
};

/// The sealing every new object gets (`storage::crypt`).
pub const ALG: &str = "aes-256-gcm-stream-hkdf-sha256-64k";

fn vault(ctx: &Ctx) -> Result<&Vault> {
    ctx.vault.as_ref().ok_or_else(|| {
        AppError::ServiceUnavailable("documents are not configured (DOCUMENT_KEY is unset)".into())
    })
}

/// A file in the store, not yet recorded. Dropped without being recorded
/// or discarded (the request was cancelled), it removes its object in the
/// background.
#[derive(Debug)]
pub struct Staged {
    pub id: DocumentId,
    pub patient_id: PatientId,
    pub file_type: FileType,
    pub sealed: Sealed,
    vault: Vault,
    /// Set once the object is recorded or removed.
    settled: bool,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let (vault, object) = (self.vault.clone(), self.id.to_string());
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = vault.remove(&object).await {
                    tracing::warn!(error = %e, object, "abandoned document object not removed");
                }
            });
        }
    }
}

/// What the client said about the file.
#[derive(Debug, Clone)]
pub struct Upload {
    pub category: Category,
    pub title: Option<String>,
    pub treatment_id: Option<TreatmentId>,
    /// The client's file name (only its safe base name is kept).
    pub file_name: Option<String>,
}

/// Streams `chunks` into the store for `patient`: 415 unless the first
/// bytes are an accepted type, 413 past `DOCUMENT_MAX_BYTES`, 422 when
/// empty. Nothing is left in the store when it fails.
pub async fn stage<S>(ctx: &Ctx, patient: PatientId, mut chunks: S) -> Result<Staged>
where
    S: Stream<Item = Result<Bytes>> + Unpin,
{
    let vault = vault(ctx)?;
    patients::load(ctx, patient).await?;
    let id = DocumentId::new();
    let max = ctx.config.documents.max_bytes;
    let mut head: Vec<u8> = Vec::with_capacity(SNIFF_LEN);
    let mut writer: Option<(Writer, FileType)> = None;
    let outcome: Result<()> = async {
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            let (w, _) = match writer.as_mut() {
                Some(w) => w,
                None => {
                    head.extend_from_slice(&chunk);
                    if head.len() < SNIFF_LEN {
                        continue;
                    }
                    let w = writer.insert((vault.writer(&id.to_string()), sniff(&head)?));
                    check_size(head.len() as u64, max)?;
                    w.0.write(&std::mem::take(&mut head)).await?;
                    continue;
                }
            };
            check_size(w.size() + chunk.len() as u64, max)?;
            w.write(&chunk).await?;
        }
        Ok(())
    }
    .await;
    if let Err(e) = outcome {
        if let Some((w, _)) = writer {
            w.abort().await;
        }
        return Err(e);
    }
    let (w, file_type) = match writer {
        Some(w) => w,
        None if head.is_empty() => {
            return Err(AppError::invalid_field("file", "the file is empty"))
        }
        None => {
            let ty = sniff(&head)?;
            let mut w = vault.writer(&id.to_string());
            w.write(&head).await?;
            (w, ty)
        }
    };
    let sealed = w.finish().await?;
    Ok(Staged {
        id,
        patient_id: patient,
        file_type,
        sealed,
        vault: vault.clone(),
        settled: false,
    })
}

fn sniff(head: &[u8]) -> Result<FileType> {
    FileType::sniff(head).ok_or_else(|| {
        AppError::UnsupportedMediaType(
            "the file is not a PDF, JPEG, PNG, WebP or DICOM file (judged by its content, not its name)"
                .into(),
        )
    })
}

fn check_size(size: u64, max: u64) -> Result<()> {
    if size > max {
        return Err(AppError::PayloadTooLarge);
    }
    Ok(())
}

/// Removes a staged object that will not be recorded.
pub async fn discard(mut staged: Staged) {
    staged.settled = true;
    if let Err(e) = staged.vault.remove(&staged.id.to_string()).await {
        // An object without a record is never served; it only takes space.
        tracing::warn!(error = %e, document = %staged.id, "staged document object not removed");
    }
}

/// After a failed registration: removes the object unless the record was
/// written after all (a commit whose outcome was unknown). When even that
/// cannot be told, the object stays: an object without a record only
/// takes space, a record without its object is a lost document.
async fn discard_unless_recorded(ctx: &Ctx, mut staged: Staged) {
    match ctx.repos.documents.find(staged.id).await {
        Ok(None) => discard(staged).await,
        Ok(Some(_)) => staged.settled = true,
        Err(e) => {
            tracing::warn!(error = %e, document = %staged.id, "kept a staged object: its record could not be checked");
            staged.settled = true;
        }
    }
}

/// What history shows of a document (never its storage details).
#[derive(Serialize)]
struct Entry<'a> {
    category: Category,
    title: &'a Option<String>,
    treatment_id: Option<TreatmentId>,
    file_name: &'a str,
    file_type: FileType,
    size: i64,
    deleted_at: Option<mongodb::bson::DateTime>,
}

impl<'a> From<&'a Document> for Entry<'a> {
    fn from(d: &'a Document) -> Self {
        Entry {
            category: d.category,
            title: &d.title,
            treatment_id: d.treatment_id,
            file_name: &d.file_name,
            file_type: d.file_type,
            size: d.size,
            deleted_at: d.deleted_at,
        }
    }
}

async fn record_history(
    ctx: &Ctx,
    tx: &mut super::tx::Tx,
    before: Option<&Document>,
    after: &Document,
    action: &'static str,
    actor: UserId,
) -> Result<()> {
    let before = before.map(Entry::from);
    history::record(
        ctx,
        tx,
        Change {
            entity: Entity::Document,
            entity_id: after.id.to_string(),
            patient_id: after.patient_id,
            before: before.as_ref(),
            after: &Entry::from(after),
            action,
            actor,
        },
    )
    .await
}

/// Records a staged file: its metadata and history in one transaction
/// (with the idempotency record). The object is removed when this fails or
/// replays an earlier upload.
pub async fn register(
    ctx: &Ctx,
    actor: UserId,
    mut staged: Staged,
    upload: Upload,
    idem: Idem<'_, Document>,
) -> Result<Created<Document>> {
    let claim = match idempotency::claim(ctx, actor, idem.request).await {
        Ok(Claimed::Proceed(c)) => c,
        Ok(Claimed::Replay(r)) => {
            discard(staged).await;
            return Ok(Created::Replayed(r));
        }
        Err(e) => {
            discard(staged).await;
            return Err(e);
        }
    };
    let result = register_claimed(ctx, actor, &staged, upload, claim.as_ref(), &idem).await;
    match &result {
        Ok(_) => staged.settled = true,
        Err(_) => discard_unless_recorded(ctx, staged).await,
    }
    idempotency::finish(ctx, claim, result).await
}

async fn register_claimed(
    ctx: &Ctx,
    actor: UserId,
    staged: &Staged,
    upload: Upload,
    claim: Option<&Claim>,
    idem: &Idem<'_, Document>,
) -> Result<Document> {
    let vault = vault(ctx)?;
    patients::load(ctx, staged.patient_id).await?;
    if let Some(t) = upload.treatment_id {
        let belongs = ctx
            .repos
            .treatments
            .find(t)
            .await?
            .is_some_and(|t| t.patient_id == staged.patient_id);
        if !belongs {
            return Err(AppError::invalid_field(
                "treatment_id",
                "must be a treatment of this patient",
            ));
        }
    }
    let size = i64::try_from(staged.sealed.size).map_err(AppError::internal)?;
    let doc = Document {
        id: staged.id,
        patient_id: staged.patient_id,
        category: upload.category,
        title: upload
            .title
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty()),
        treatment_id: upload.treatment_id,
        file_name: safe_file_name(upload.file_name.as_deref(), staged.file_type),
        file_type: staged.file_type,
        size,
        sha256: staged.sealed.sha256.clone(),
        object: staged.id.to_string(),
        sealing: Sealing {
            alg: ALG.into(),
            key_id: vault.key_id().into(),
        },
        created_at: ctx.clock.now_bson(),
        created_by: actor,
        deleted_at: None,
        deleted_by: None,
    };
    transaction!(ctx, |tx| {
        ctx.repos.documents.insert(tx.session()?, &doc).await?;
        tx.point("document.register:insert")?;
        idempotency::complete(ctx, &mut tx, claim, idem, &doc).await?;
        record_history(ctx, &mut tx, None, &doc, "create", actor).await?;
        Ok(doc.clone())
    })
}

/// A live document of a live patient, or 404.
pub async fn load(ctx: &Ctx, id: DocumentId) -> Result<Document> {
    let doc = ctx
        .repos
        .documents
        .find(id)
        .await?
        .filter(|d| d.deleted_at.is_none())
        .ok_or_else(|| AppError::not_found("document"))?;
    let patient = doc.patient_id;
    patients::of_live_patient(ctx, doc, patient, "document").await
}

/// A page of the live patient's documents, newest first.
pub async fn list(
    ctx: &Ctx,
    patient: PatientId,
    filter: DocumentFilter,
    page: PageRequest,
) -> Result<(Vec<Document>, u64)> {
    patients::load(ctx, patient).await?;
    ctx.repos.documents.for_patient(patient, filter, page).await
}

/// A document's bytes, ready to stream.
pub struct Download {
    pub document: Document,
    pub body: BoxStream<'static, Result<Bytes>>,
}

/// The document's plaintext. The object is first read through and checked
/// (every segment's tag, the size and the SHA-256 of the plaintext), so a
/// damaged object is a 409 `document_corrupted` before any byte is sent;
/// the second read that is streamed is authenticated segment by segment
/// again.
pub async fn download(ctx: &Ctx, id: DocumentId) -> Result<Download> {
    let vault = vault(ctx)?;
    let doc = load(ctx, id).await?;
    if doc.sealing.key_id != vault.key_id() {
        tracing::error!(document = %doc.id, stored = %doc.sealing.key_id, current = vault.key_id(),
            "document sealed under another DOCUMENT_KEY");
        return Err(AppError::ServiceUnavailable(
            "the document was sealed under another DOCUMENT_KEY".into(),
        ));
    }
    let size = u64::try_from(doc.size).map_err(AppError::internal)?;
    vault.verify(&doc.object, size, &doc.sha256).await?;
    let body = vault.read(&doc.object).await?;
    Ok(Download {
        document: doc,
        body,
    })
}

/// Soft-deletes a document (its object stays, for restore); the document
/// as it was.
pub async fn delete(ctx: &Ctx, actor: UserId, id: DocumentId) -> Result<Document> {
    let prev = load(ctx, id).await?;
    let mut next = prev.clone();
    next.deleted_at = Some(ctx.clock.now_bson());
    next.deleted_by = Some(actor);
    transaction!(ctx, |tx| {
        if !ctx
            .repos
            .documents
            .set_deleted(tx.session()?, &next)
            .await?
        {
            return Err(AppError::not_found("document"));
        }
        tx.point("document.delete:mark")?;
        record_history(ctx, &mut tx, Some(&prev), &next, "delete", actor).await?;
        Ok(prev.clone())
    })
}

/// Undoes a delete (404 unless the document is deleted and its patient live).
pub async fn restore(ctx: &Ctx, actor: UserId, id: DocumentId) -> Result<Document> {
    let prev = ctx
        .repos
        .documents
        .find(id)
        .await?
        .filter(|d| d.deleted_at.is_some())
        .ok_or_else(|| AppError::not_found("deleted document"))?;
    let patient = prev.patient_id;
    let prev = patients::of_live_patient(ctx, prev, patient, "deleted document").await?;
    let mut next = prev.clone();
    next.deleted_at = None;
    next.deleted_by = None;
    transaction!(ctx, |tx| {
        if !ctx
            .repos
            .documents
            .set_deleted(tx.session()?, &next)
            .await?
        {
            return Err(AppError::not_found("deleted document"));
        }
        tx.point("document.restore:mark")?;
        record_history(ctx, &mut tx, Some(&prev), &next, "restore", actor).await?;
        Ok(next.clone())
    })
}
