//! The one history writer: every change to a patient, appointment or
//! treatment is recorded as the fields that differ, inside the transaction
//! of the change itself.

use mongodb::bson::{doc, Bson, Document};
use serde::Serialize;

use super::{tx::Tx, Ctx};
use crate::{
    domain::{PatientId, UserId},
    error::{AppError, Result},
    repo::history::HistoryEntry,
};

/// Fields that change on every save and say nothing about what changed.
pub const BOOKKEEPING: &[&str] = &[
    "_id",
    "version",
    "updated_at",
    "updated_by",
    "name_lower",
    "medical_history_lower",
    "passport_search",
];

/// Fields whose values differ between two versions of a document, as
/// `{field: {before, after}}`, leaving out the `skip` fields.
pub fn diff(before: &Document, after: &Document, skip: &[&str]) -> Document {
    let mut changes = Document::new();
    let keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for key in keys {
        if skip.contains(&key.as_str()) {
            continue;
        }
        let (b, a) = (
            before.get(key).cloned().unwrap_or(Bson::Null),
            after.get(key).cloned().unwrap_or(Bson::Null),
        );
        if b != a {
            changes.insert(key.clone(), doc! { "before": b, "after": a });
        }
    }
    changes
}

/// What changed: `entity` `entity_id` of `patient_id` went from `before`
/// (nothing, for a create) to `after` by `action`.
pub struct Change<'a, T> {
    pub entity: Entity,
    pub entity_id: String,
    pub patient_id: PatientId,
    pub before: Option<&'a T>,
    pub after: &'a T,
    pub action: &'static str,
    pub actor: UserId,
}

/// What a history entry is about. The `history` collection's validator
/// (`migrations/history.json`) lists the same names; a test keeps them equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Patient,
    Appointment,
    Treatment,
    Quote,
    Travel,
    Document,
}

impl Entity {
    pub const ALL: [Entity; 6] = [
        Entity::Patient,
        Entity::Appointment,
        Entity::Treatment,
        Entity::Quote,
        Entity::Travel,
        Entity::Document,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Entity::Patient => "patient",
            Entity::Appointment => "appointment",
            Entity::Treatment => "treatment",
            Entity::Quote => "quote",
            Entity::Travel => "travel",
            Entity::Document => "document",
        }
    }
}

/// Builds the history entry of `change` (changed fields only).
pub fn entry<T: Serialize>(ctx: &Ctx, change: Change<'_, T>) -> Result<HistoryEntry> {
    let before = match change.before {
        Some(b) => mongodb::bson::to_document(b).map_err(AppError::internal)?,
        None => Document::new(),
    };
    let after = mongodb::bson::to_document(change.after).map_err(AppError::internal)?;
    let changes = diff(&before, &after, BOOKKEEPING);
    Ok(HistoryEntry::new(
        change.entity.as_str(),
        change.entity_id,
        change.patient_id,
        change.action,
        change.actor,
        changes,
        ctx.clock.now_bson(),
    ))
}

/// Writes the history entry of `change` in `tx`.
pub async fn record<T: Serialize>(ctx: &Ctx, tx: &mut Tx, change: Change<'_, T>) -> Result<()> {
    let entry = entry(ctx, change)?;
    ctx.repos.history.record(tx.session()?, entry).await
}
