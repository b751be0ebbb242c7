//! Typed ids: an `ObjectId` per entity, shown to clients as 24-char hex.

use std::{fmt, str::FromStr};

use mongodb::bson::oid::ObjectId;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! typed_id {
    ($name:ident, $what:literal) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub ObjectId);

        impl $name {
            pub fn new() -> Self {
                $name(ObjectId::new())
            }
            pub fn oid(&self) -> ObjectId {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0.to_hex())
            }
        }

        impl FromStr for $name {
            type Err = crate::error::AppError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                ObjectId::parse_str(s).map($name).map_err(|_| {
                    crate::error::AppError::InvalidId(format!(
                        "'{}' is not a valid {} id (24 hex characters)",
                        s.chars().take(40).collect::<String>(),
                        $what
                    ))
                })
            }
        }

        /// A 24-hex string both in the API's JSON and in stored documents
        /// (`_id` and references alike): see the README's compatibility notes.
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0.to_hex())
            }
        }

        /// Parsed from the string in place (raw BSON and JSON lend it), not
        /// copied into a `String` first: a page of patients reads hundreds.
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Hex;
                impl serde::de::Visitor<'_> for Hex {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(concat!("a ", $what, " id (24 hex characters)"))
                    }
                    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<$name, E> {
                        ObjectId::parse_str(s).map($name).map_err(|_| {
                            E::custom(concat!(
                                "must be a valid ",
                                $what,
                                " id (24 hex characters)"
                            ))
                        })
                    }
                }
                d.deserialize_str(Hex)
            }
        }

        impl From<$name> for mongodb::bson::Bson {
            fn from(id: $name) -> Self {
                mongodb::bson::Bson::String(id.0.to_hex())
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some("^[0-9a-f]{24}$"))
                    .description(Some(concat!("A ", $what, " id: 24 hex characters")))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

typed_id!(UserId, "user");
typed_id!(HospitalId, "hospital");
typed_id!(PatientId, "patient");
typed_id!(AppointmentId, "appointment");
typed_id!(TreatmentId, "treatment");
typed_id!(QuoteId, "quote");
typed_id!(DocumentId, "document");

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Wrapper {
        id: UserId,
    }

    #[test]
    fn ids_are_hex_in_json_and_object_ids_in_documents() {
        let id = UserId::new();
        let json = serde_json::to_string(&id).expect("json");
        assert_eq!(json, format!("\"{}\"", id.0.to_hex()));
        let back: UserId = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, id);
        let doc = mongodb::bson::doc! { "id": id };
        assert_eq!(doc.get_str("id").ok(), Some(id.to_string().as_str()));
        let stored = mongodb::bson::to_document(&Wrapper { id }).expect("bson");
        assert_eq!(stored.get_str("id").ok(), Some(id.to_string().as_str()));
        assert!("nope".parse::<UserId>().is_err());
        assert!(serde_json::from_str::<UserId>("\"zz\"").is_err());
    }

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Read {
        id: UserId,
    }

    #[test]
    fn ids_read_from_raw_bson_documents_and_json_alike() {
        let id = UserId::new();
        let doc = mongodb::bson::doc! { "id": id.to_string() };
        // Raw BSON (what the driver decodes a reply from) lends the string.
        let raw = mongodb::bson::to_vec(&doc).expect("bytes");
        let from_raw: Read = mongodb::bson::from_slice(&raw).expect("raw");
        assert_eq!(from_raw.id, id);
        // A `Document` and an owned JSON string hand it over owned.
        let from_doc: Read = mongodb::bson::from_document(doc).expect("document");
        assert_eq!(from_doc.id, id);
        let json = serde_json::json!({ "id": id.to_string() });
        assert_eq!(serde_json::from_value::<Read>(json).expect("json").id, id);

        let bad = mongodb::bson::to_vec(&mongodb::bson::doc! { "id": "zz" }).expect("bytes");
        let err = mongodb::bson::from_slice::<Read>(&bad).expect_err("not hex");
        assert!(err.to_string().contains("must be a valid user id"), "{err}");
        let err = serde_json::from_str::<Read>(r#"{"id": 7}"#).expect_err("a number");
        assert!(err.to_string().contains("expected a user id"), "{err}");
    }
}
