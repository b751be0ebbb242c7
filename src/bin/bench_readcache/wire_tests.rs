//! Tests of the wire format the read cache reads, on messages built here.

use mongodb::bson::{doc, oid::ObjectId, Document};

use super::*;

/// `body` as BSON bytes.
fn bytes(body: &Document) -> Vec<u8> {
    let mut out = Vec::new();
    body.to_writer(&mut out).unwrap();
    out
}

/// An `OP_MSG` of `sections` (each a kind byte and its bytes), with
/// `flags`.
fn sections(request_id: i32, response_to: i32, flags: u32, sections: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut msg = Vec::new();
    msg.extend_from_slice(&0i32.to_le_bytes());
    msg.extend_from_slice(&request_id.to_le_bytes());
    msg.extend_from_slice(&response_to.to_le_bytes());
    msg.extend_from_slice(&OP_MSG.to_le_bytes());
    msg.extend_from_slice(&flags.to_le_bytes());
    for (kind, section) in sections {
        msg.push(*kind);
        msg.extend_from_slice(section);
    }
    if flags & CHECKSUM_PRESENT != 0 {
        msg.extend_from_slice(&[0, 0, 0, 0]);
    }
    let len = i32::try_from(msg.len()).unwrap();
    msg[..4].copy_from_slice(&len.to_le_bytes());
    msg
}

/// An `OP_MSG` carrying `body`, with `flags`.
pub(crate) fn message(request_id: i32, response_to: i32, flags: u32, body: &Document) -> Vec<u8> {
    sections(request_id, response_to, flags, &[(0, bytes(body))])
}

/// A find of patient `id`, as the service sends it (its ids are hex).
fn find_doc(id: &str) -> Document {
    doc! { "find": "patients", "filter": { "deleted_at": { "$eq": null }, "_id": id }, "limit": 1, "$db": "crm", "lsid": { "id": 1 } }
}

pub(crate) fn find(request_id: i32, id: &str) -> Vec<u8> {
    message(request_id, 0, 0, &find_doc(id))
}

fn key(msg: &[u8]) -> Vec<u8> {
    match classify(msg) {
        Kind::Find { key } => key,
        other => panic!("not a find: {other:?}"),
    }
}

const A: &str = "6560f0c2a1b2c3d4e5f60718";
const B: &str = "6560f0c2a1b2c3d4e5f60719";

#[test]
fn a_find_by_id_is_kept_by_its_query_not_its_session() {
    let a = find(7, A);
    assert_eq!(request_id(&a), Some(7));
    let mut same = find_doc(A);
    same.insert("lsid", doc! { "id": 2 });
    same.insert("$clusterTime", doc! { "clusterTime": 5 });
    same.insert("maxTimeMS", 100);
    assert_eq!(key(&a), key(&message(8, 0, 0, &same)));
    assert_ne!(key(&a), key(&find(7, B)));
    // By ObjectId too.
    let oid = doc! { "find": "patients", "filter": { "_id": ObjectId::new() }, "$db": "crm" };
    assert!(matches!(
        classify(&message(1, 0, 0, &oid)),
        Kind::Find { .. }
    ));
    // Everything else in the command is part of the question.
    for (field, value) in [
        ("$db", mongodb::bson::Bson::from("other")),
        ("projection", doc! { "name": 1 }.into()),
        ("limit", 2.into()),
        ("sort", doc! { "name": 1 }.into()),
        ("skip", 1.into()),
        ("collation", doc! { "locale": "de" }.into()),
    ] {
        let mut other = find_doc(A);
        other.insert(field, value);
        assert_ne!(key(&a), key(&message(9, 0, 0, &other)), "{field}");
    }
}

#[test]
fn writes_commits_and_other_commands_are_told_apart() {
    let write = |cmd: &str| message(1, 0, 0, &doc! { cmd: "patients", "$db": "crm" });
    for cmd in ["insert", "update", "delete", "findAndModify"] {
        assert_eq!(classify(&write(cmd)), Kind::Write, "{cmd}");
    }
    let commit = doc! { "commitTransaction": 1, "txnNumber": 3_i64, "$db": "admin" };
    assert_eq!(classify(&message(1, 0, 0, &commit)), Kind::Write);
    // An insert's documents in a sequence (kind 1) before its body.
    let mut sequence = Vec::new();
    let docs = bytes(&doc! { "_id": 1 });
    let size = i32::try_from(4 + "documents\0".len() + docs.len()).unwrap();
    sequence.extend_from_slice(&size.to_le_bytes());
    sequence.extend_from_slice(b"documents\0");
    sequence.extend_from_slice(&docs);
    let insert = sections(
        1,
        0,
        0,
        &[
            (1, sequence),
            (0, bytes(&doc! { "insert": "patients", "$db": "crm" })),
        ],
    );
    assert_eq!(classify(&insert), Kind::Write);
    // A checksum after the sections.
    let checked = message(1, 0, CHECKSUM_PRESENT, &find_doc(A));
    assert_eq!(key(&checked), key(&find(2, A)));

    let other = [
        message(
            1,
            0,
            0,
            &doc! { "find": "audit_events", "filter": { "_id": A }, "$db": "crm" },
        ),
        message(1, 0, 0, &doc! { "insert": "audit_events", "$db": "crm" }),
        message(1, 0, 0, &doc! { "hello": 1, "$db": "admin" }),
        message(
            1,
            0,
            0,
            &doc! { "find": "patients", "filter": { "country": "DE" }, "$db": "crm" },
        ),
        message(
            1,
            0,
            0,
            &doc! { "find": "patients", "filter": { "_id": { "$in": [A, B] } }, "$db": "crm" },
        ),
        // Inside a transaction, a find reads the transaction's writes.
        message(
            1,
            0,
            0,
            &doc! { "find": "patients", "filter": { "_id": A }, "txnNumber": 3_i64, "$db": "crm" },
        ),
        message(1, 0, MORE_TO_COME, &find_doc(A)),
        sections(1, 0, 0, &[(2, bytes(&find_doc(A)))]),
        {
            let mut m = find(1, A);
            m[12..16].copy_from_slice(&2004i32.to_le_bytes());
            m
        },
    ];
    for m in other {
        assert_eq!(classify(&m), Kind::Other);
    }
}

#[test]
fn a_cut_or_lying_message_is_no_concern_of_the_cache_and_never_a_panic() {
    let whole = find(1, A);
    for n in 0..whole.len() {
        assert_eq!(classify(&whole[..n]), Kind::Other, "cut at {n}");
        assert!(!is_cacheable_reply(&whole[..n]));
        let _ = with_response_to(&whole[..n], 3);
    }
    for size in [-1_i32, 0, 3, i32::MAX] {
        let mut m = sections(1, 0, 0, &[(1, size.to_le_bytes().to_vec())]);
        m.extend_from_slice(&bytes(&find_doc(A)));
        assert_eq!(classify(&m), Kind::Other, "sequence of size {size}");
    }
}

#[test]
fn only_a_successful_exhausted_reply_is_kept_and_its_copy_answers_the_new_request() {
    let reply = |ok: mongodb::bson::Bson, cursor_id: i64, flags: u32| {
        message(
            40,
            7,
            flags,
            &doc! { "cursor": { "firstBatch": [{ "name": "A" }], "id": cursor_id, "ns": "crm.patients" }, "ok": ok },
        )
    };
    let good = reply(1.0.into(), 0, 0);
    assert!(is_cacheable_reply(&good));
    assert!(is_cacheable_reply(&reply(1.into(), 0, 0)));
    assert!(!is_cacheable_reply(&reply(0.0.into(), 0, 0)));
    assert!(!is_cacheable_reply(&reply(1.0.into(), 12, 0)));
    assert!(!is_cacheable_reply(&reply(1.0.into(), 0, MORE_TO_COME)));
    assert!(!is_cacheable_reply(&reply(1.0.into(), 0, CHECKSUM_PRESENT)));
    assert_eq!(response_to(&good), Some(7));
    let copy = with_response_to(&good, 99);
    assert_eq!(response_to(&copy), Some(99));
    assert_eq!(copy[..8], good[..8]);
    assert_eq!(copy[12..], good[12..]);
}
