//! Applies `migrations/`: each collection's `$jsonSchema` validator and indexes.
//!
//! The files are declarative (the state each collection must be in), embedded
//! in the binary, and applied at every startup. Applying them is idempotent:
//! an existing collection gets its validator re-set with `collMod`, and
//! `createIndexes` with an identical specification is a no-op. Index names are
//! left to the server, so nothing depends on them.

use std::time::Duration;

use futures::TryStreamExt;
use mongodb::{
    bson::{doc, Bson, Document},
    error::{Error, ErrorKind},
    options::{IndexOptions, ValidationAction, ValidationLevel},
    Database, IndexModel,
};
use serde::Deserialize;

macro_rules! migration {
    ($name:literal) => {
        ($name, include_str!(concat!("../migrations/", $name)))
    };
}

/// Every file under `migrations/`, in the order they are applied.
const FILES: &[(&str, &str)] = &[
    migration!("users.json"),
    migration!("permissions.json"),
    migration!("refresh_tokens.json"),
    migration!("hospitals.json"),
    migration!("patients.json"),
    migration!("appointments.json"),
    migration!("treatments.json"),
    migration!("earnings.json"),
    migration!("history.json"),
    migration!("audit_events.json"),
    migration!("avatars.json"),
    migration!("idempotency_keys.json"),
    migration!("guards.json"),
    migration!("quotes.json"),
    migration!("quote_bookings.json"),
    migration!("travel.json"),
    migration!("documents.json"),
    migration!("generations.json"),
];

/// One collection's declared state.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionSpec {
    pub collection: String,
    pub validator: Option<Document>,
    #[serde(default)]
    pub indexes: Vec<IndexSpec>,
    /// Key patterns of indexes an earlier version declared and this one
    /// drops where they exist.
    #[serde(default)]
    pub retired_indexes: Vec<Document>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexSpec {
    pub key: Document,
    #[serde(default)]
    pub unique: bool,
    pub expire_after_seconds: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("migrations/{file}: {message}")]
    Invalid { file: String, message: String },
    #[error("applying migrations to {collection}: {source}")]
    Database { collection: String, source: Error },
    #[error("filling in {collection}: {message}")]
    Backfill { collection: String, message: String },
}

/// Parses every embedded migration file.
pub fn specs() -> Result<Vec<CollectionSpec>, MigrationError> {
    FILES
        .iter()
        .map(|(file, text)| {
            let spec: CollectionSpec =
                serde_json::from_str(text).map_err(|e| MigrationError::Invalid {
                    file: (*file).into(),
                    message: e.to_string(),
                })?;
            if !crate::config::valid_db_name(&spec.collection) {
                return Err(MigrationError::Invalid {
                    file: (*file).into(),
                    message: "collection names use letters, digits and underscores only".into(),
                });
            }
            Ok(spec)
        })
        .collect()
}

/// What one run did, for the startup log.
#[derive(Debug, Default)]
pub struct Report {
    pub created: Vec<String>,
    pub updated: Vec<String>,
}

/// Brings every collection to its declared state.
pub async fn run(db: &Database) -> Result<Report, MigrationError> {
    let specs = specs()?;
    let existing = db
        .list_collection_names()
        .await
        .map_err(|source| MigrationError::Database {
            collection: "*".into(),
            source,
        })?;
    let mut report = Report::default();
    for spec in &specs {
        let wrap = |source: Error| MigrationError::Database {
            collection: spec.collection.clone(),
            source,
        };
        if existing.contains(&spec.collection) {
            if let Some(validator) = &spec.validator {
                db.run_command(doc! {
                    "collMod": &spec.collection,
                    "validator": validator.clone(),
                    "validationLevel": "strict",
                    "validationAction": "error",
                })
                .await
                .map_err(wrap)?;
            }
            report.updated.push(spec.collection.clone());
        } else {
            let mut create = db.create_collection(&spec.collection);
            if let Some(validator) = &spec.validator {
                create = create
                    .validator(validator.clone())
                    .validation_level(ValidationLevel::Strict)
                    .validation_action(ValidationAction::Error);
            }
            match create.await {
                Ok(()) => report.created.push(spec.collection.clone()),
                // Another instance created it first: that is the state we want.
                Err(e) if is_namespace_exists(&e) => report.updated.push(spec.collection.clone()),
                Err(e) => return Err(wrap(e)),
            }
        }
        if !spec.retired_indexes.is_empty() {
            drop_retired(db, spec).await.map_err(wrap)?;
        }
        if !spec.indexes.is_empty() {
            let models: Vec<IndexModel> = spec.indexes.iter().map(IndexSpec::model).collect();
            db.collection::<Document>(&spec.collection)
                .create_indexes(models)
                .await
                .map_err(wrap)?;
        }
    }
    // Data kept for queries, derived from each document and written with
    // it, for the documents written before a field existed: the patients'
    // `search_text` and `birth_day`, the treatments' report keys, the
    // ledger's `booked_ms`, `booked_day` and `hospital_currency`, and the
    // appointments' `appointment_ms`.
    let failed = |collection: &str| {
        let collection = collection.to_owned();
        move |e: crate::error::AppError| MigrationError::Backfill {
            collection,
            message: e.to_string(),
        }
    };
    let treatments = crate::repo::treatments::TreatmentsRepo::new(db);
    crate::repo::patients::PatientsRepo::new(db)
        .backfill_derived()
        .await
        .map_err(failed("patients"))?;
    treatments
        .backfill_keys()
        .await
        .map_err(failed("treatments"))?;
    treatments
        .backfill_booked()
        .await
        .map_err(failed("earnings"))?;
    crate::repo::appointments::AppointmentsRepo::new(db)
        .backfill_ms()
        .await
        .map_err(failed("appointments"))?;
    // A restored patient's records held `patient_deleted: false` before the
    // mark became `true` or absent (`repo::patient_deleted_update`).
    for collection in ["appointments", "treatments"] {
        db.collection::<Document>(collection)
            .update_many(
                doc! { crate::repo::PATIENT_DELETED: false },
                crate::repo::patient_deleted_update(false),
            )
            .await
            .map_err(|e| failed(collection)(e.into()))?;
    }
    Ok(report)
}

/// Drops the indexes of `spec.collection` whose key pattern is one of its
/// `retired_indexes` (by the name the server gave them).
async fn drop_retired(db: &Database, spec: &CollectionSpec) -> Result<(), Error> {
    let coll = db.collection::<Document>(&spec.collection);
    for index in list_indexes(db, &spec.collection).await? {
        let retired = spec
            .retired_indexes
            .iter()
            .any(|key| same_key(key, &index.keys));
        let name = index.options.as_ref().and_then(|o| o.name.clone());
        if let (true, Some(name)) = (retired, name) {
            tracing::info!(collection = %spec.collection, index = %name, "dropping a retired index");
            coll.drop_index(name).await?;
        }
    }
    Ok(())
}

impl IndexSpec {
    fn model(&self) -> IndexModel {
        let options = IndexOptions::builder()
            .unique(self.unique.then_some(true))
            .expire_after(self.expire_after_seconds.map(Duration::from_secs))
            .build();
        IndexModel::builder()
            .keys(self.key.clone())
            .options(options)
            .build()
    }

    /// True when an index reported by the server has this key pattern and options.
    pub fn matches(&self, index: &IndexModel) -> bool {
        let options = index.options.as_ref();
        let unique = options.and_then(|o| o.unique).unwrap_or(false);
        let ttl = options.and_then(|o| o.expire_after).map(|d| d.as_secs());
        same_key(&self.key, &index.keys)
            && unique == self.unique
            && ttl == self.expire_after_seconds
    }
}

/// Key patterns compared field by field, in order, with numeric directions
/// compared by value (the server may answer 1 as int32, 1.0 or int64).
fn same_key(a: &Document, b: &Document) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b.iter())
            .all(|((ka, va), (kb, vb))| ka == kb && same_direction(va, vb))
}

fn same_direction(a: &Bson, b: &Bson) -> bool {
    fn num(v: &Bson) -> Option<f64> {
        match v {
            Bson::Int32(i) => Some(f64::from(*i)),
            Bson::Int64(i) => Some(*i as f64),
            Bson::Double(d) => Some(*d),
            _ => None,
        }
    }
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn is_namespace_exists(err: &Error) -> bool {
    matches!(err.kind.as_ref(), ErrorKind::Command(c) if c.code == 48)
}

/// The indexes of `collection` other than `_id`, as the server reports them.
pub async fn list_indexes(db: &Database, collection: &str) -> Result<Vec<IndexModel>, Error> {
    let indexes: Vec<IndexModel> = db
        .collection::<Document>(collection)
        .list_indexes()
        .await?
        .try_collect()
        .await?;
    Ok(indexes
        .into_iter()
        .filter(|i| !same_key(&i.keys, &doc! { "_id": 1 }))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_the_folder_is_embedded_and_parses() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .expect("migrations dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".json"))
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|(n, _)| n.to_string()).collect();
        embedded.sort();
        assert_eq!(
            on_disk, embedded,
            "every migrations/*.json must be listed in FILES"
        );
        let specs = specs().expect("all migration files parse");
        // Every collection queried by anything but `_id` declares its indexes
        // (the guards and the generations are only ever read and written by
        // `_id`).
        assert!(specs
            .iter()
            .filter(|s| !["guards", "generations"].contains(&s.collection.as_str()))
            .all(|s| !s.indexes.is_empty()));
    }

    /// Every kind of history entry the workflows write passes the
    /// collection's validator (which MongoDB enforces and the stand-in
    /// does not).
    #[test]
    fn the_history_validator_admits_every_entity() {
        use crate::workflow::history::Entity;
        let specs = specs().expect("parse");
        let history = specs
            .iter()
            .find(|s| s.collection == "history")
            .expect("history.json");
        let schema = history.validator.as_ref().expect("a validator");
        let allowed: Vec<&str> = schema
            .get_document("$jsonSchema")
            .and_then(|s| s.get_document("properties"))
            .and_then(|p| p.get_document("entity"))
            .and_then(|e| e.get_array("enum"))
            .expect("entity enum")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        let written: Vec<&str> = Entity::ALL.iter().map(|e| e.as_str()).collect();
        assert_eq!(allowed, written);
    }

    #[test]
    fn compound_key_order_is_preserved() {
        let specs = specs().expect("parse");
        let earnings = specs
            .iter()
            .find(|s| s.collection == "earnings")
            .expect("earnings");
        let keys: Vec<&str> = earnings.indexes[0].key.keys().map(String::as_str).collect();
        assert_eq!(keys, ["treatment_id", "kind", "seq"]);
    }

    #[test]
    fn index_match_ignores_numeric_width() {
        let spec = IndexSpec {
            key: doc! { "a": 1_i64, "b": -1_i64 },
            unique: true,
            expire_after_seconds: None,
        };
        let server = IndexModel::builder()
            .keys(doc! { "a": 1_i32, "b": -1.0 })
            .options(IndexOptions::builder().unique(true).build())
            .build();
        assert!(spec.matches(&server));
        let reversed = IndexModel::builder().keys(doc! { "b": -1, "a": 1 }).build();
        assert!(!spec.matches(&reversed));
    }
}
