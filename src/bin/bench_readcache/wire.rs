//! The little of the MongoDB wire protocol the read cache reads: the
//! message header, and an `OP_MSG`'s command document.
//!
//! A message is a 16-byte header (length, request id, the id it responds
//! to, opcode; little-endian `i32`s), then for `OP_MSG` a `u32` of flags
//! and its sections; a section of kind 0 is one BSON document, the command
//! or the reply.

use mongodb::bson::{spec::ElementType, RawDocument, RawDocumentBuf};

pub const OP_MSG: i32 = 2013;
/// `OP_MSG` flag bits: a CRC-32C follows the sections; more messages
/// follow without a request.
const CHECKSUM_PRESENT: u32 = 1;
const MORE_TO_COME: u32 = 1 << 1;
/// The collection whose reads are kept.
const COLLECTION: &str = "patients";
/// The commands that change documents in it.
const WRITES: [&str; 4] = ["insert", "update", "delete", "findAndModify"];
/// The fields of a `find` that do not change its answer: the session, the
/// cluster time gossiped, where it may run and how long it may take.
const NOT_THE_QUERY: [&str; 6] = [
    "lsid",
    "$clusterTime",
    "$readPreference",
    "maxTimeMS",
    "comment",
    "txnNumber",
];

/// What a request is, for the cache.
#[derive(Debug, PartialEq, Eq)]
pub enum Kind {
    /// A `find` of one document of the collection by its `_id`, and what
    /// identifies its answer: the command without [`NOT_THE_QUERY`].
    Find { key: Vec<u8> },
    /// A command that changes documents in the collection, or commits a
    /// transaction (which may have).
    Write,
    /// Anything else: passed through, and no concern of the cache.
    Other,
}

fn i32_at(msg: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_le_bytes(msg.get(at..at + 4)?.try_into().ok()?))
}

/// The id of request `msg`.
pub fn request_id(msg: &[u8]) -> Option<i32> {
    i32_at(msg, 4)
}

/// The id of the request `msg` answers.
pub fn response_to(msg: &[u8]) -> Option<i32> {
    i32_at(msg, 8)
}

/// `OP_MSG`'s flags and its kind-0 document.
fn op_msg(msg: &[u8]) -> Option<(u32, &RawDocument)> {
    if i32_at(msg, 12)? != OP_MSG {
        return None;
    }
    let flags = u32::from_le_bytes(msg.get(16..20)?.try_into().ok()?);
    // Sections start after the flags; the body (kind 0) is usually first,
    // but document sequences (kind 1) may come before it.
    let end = msg.len() - if flags & CHECKSUM_PRESENT != 0 { 4 } else { 0 };
    let mut at = 20;
    while at < end {
        let kind = *msg.get(at)?;
        let len = usize::try_from(i32_at(msg, at + 1)?).ok()?;
        match kind {
            0 => {
                let doc = RawDocument::from_bytes(msg.get(at + 1..at + 1 + len)?).ok()?;
                return Some((flags, doc));
            }
            // A sequence's size counts itself and its identifier.
            1 if len > 4 => at += 1 + len,
            _ => return None,
        }
    }
    None
}

/// Sorts a request: a `find` by `_id` on the collection (kept by its
/// database and its answer's parameters), a write to it, or anything else.
pub fn classify(msg: &[u8]) -> Kind {
    let Some((flags, doc)) = op_msg(msg) else {
        return Kind::Other;
    };
    let Some(Ok((command, value))) = doc.iter().next() else {
        return Kind::Other;
    };
    if command == "commitTransaction" {
        return Kind::Write;
    }
    if value.as_str() != Some(COLLECTION) {
        return Kind::Other;
    }
    if WRITES.contains(&command) {
        return Kind::Write;
    }
    // A find inside a transaction reads what the transaction wrote.
    let in_transaction = doc.get("txnNumber").ok().flatten().is_some();
    // Reads of one patient by id only (an `_id` given as a value, not an
    // operator such as `$in`): lists and searches still go to the database.
    let by_id = doc
        .get_document("filter")
        .is_ok_and(|f| matches!(f.get("_id"), Ok(Some(v)) if v.as_document().is_none()));
    if command != "find" || !by_id || flags & MORE_TO_COME != 0 || in_transaction {
        return Kind::Other;
    }
    let mut key = RawDocumentBuf::new();
    for element in doc.iter() {
        let Ok((name, value)) = element else {
            return Kind::Other;
        };
        if !NOT_THE_QUERY.contains(&name) {
            key.append(name, value.to_raw_bson());
        }
    }
    Kind::Find {
        key: key.into_bytes(),
    }
}

/// Whether a reply can answer the same `find` again: an `OP_MSG` without
/// a checksum (the copy's header changes), `ok: 1`, and a cursor already
/// exhausted (no `getMore` will follow).
pub fn is_cacheable_reply(msg: &[u8]) -> bool {
    let Some((flags, doc)) = op_msg(msg) else {
        return false;
    };
    let ok = match doc.get("ok") {
        Ok(Some(v)) => match v.element_type() {
            ElementType::Double => v.as_f64() == Some(1.0),
            ElementType::Int32 => v.as_i32() == Some(1),
            ElementType::Int64 => v.as_i64() == Some(1),
            _ => false,
        },
        _ => false,
    };
    let exhausted = doc
        .get_document("cursor")
        .ok()
        .and_then(|c| c.get_i64("id").ok())
        == Some(0);
    flags & (CHECKSUM_PRESENT | MORE_TO_COME) == 0 && ok && exhausted
}

/// A copy of a kept reply, answering request `request_id` (a message
/// shorter than a header is copied as it is).
pub fn with_response_to(reply: &[u8], request_id: i32) -> Vec<u8> {
    let mut copy = reply.to_vec();
    if let Some(field) = copy.get_mut(8..12) {
        field.copy_from_slice(&request_id.to_le_bytes());
    }
    copy
}

#[cfg(test)]
#[path = "wire_tests.rs"]
pub(crate) mod tests;
