//! The proxy end to end, in front of a stand-in upstream that answers
//! every command with how many it has received before it.

use std::{
    sync::atomic::{AtomicI64, Ordering},
    time::Duration,
};

use mongodb::bson::{doc, RawDocument};
use tokio::sync::Notify;

use super::*;
use wire::tests::{find, message};

/// The upstream: how many commands it has received; when `hold` is set, a
/// `find` is not answered until `release` is notified.
#[derive(Default)]
struct Upstream {
    received: AtomicI64,
    hold: std::sync::atomic::AtomicBool,
    release: Notify,
    /// When set, each reply is preceded by a message answering request
    /// 777, which nobody sent.
    stray: std::sync::atomic::AtomicBool,
}

/// An upstream answering each command with a reply whose one document is
/// `{n}`, n counting the commands received before it.
async fn upstream() -> (String, Arc<Upstream>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let state = Arc::new(Upstream::default());
    let shared = state.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let state = shared.clone();
            tokio::spawn(async move {
                while let Ok(Some(msg)) = read_message(&mut conn).await {
                    let n = state.received.fetch_add(1, Ordering::SeqCst);
                    if matches!(classify(&msg), Kind::Find { .. })
                        && state.hold.load(Ordering::SeqCst)
                    {
                        state.release.notified().await;
                    }
                    if state.stray.load(Ordering::SeqCst) {
                        let stray = message(
                            1001,
                            777,
                            0,
                            &doc! { "cursor": { "firstBatch": [{ "n": -1_i64 }], "id": 0_i64, "ns": "crm.patients" }, "ok": 1.0 },
                        );
                        conn.write_all(&stray).await.unwrap();
                    }
                    let reply = message(
                        1000,
                        request_id(&msg).unwrap(),
                        0,
                        &doc! { "cursor": { "firstBatch": [{ "n": n }], "id": 0_i64, "ns": "crm.patients" }, "ok": 1.0 },
                    );
                    conn.write_all(&reply).await.unwrap();
                }
            });
        }
    });
    (addr, state)
}

/// A connection through a proxy in front of `upstream`, sharing `cache`.
async fn through(upstream: &str, cache: &Shared) -> TcpStream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (upstream, cache) = (upstream.to_owned(), cache.clone());
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        proxy(client, &upstream, cache).await.unwrap();
    });
    TcpStream::connect(addr).await.unwrap()
}

/// The next reply on `conn`: the id it answers and its `n`.
async fn reply(conn: &mut TcpStream) -> (i32, i64) {
    let reply = tokio::time::timeout(Duration::from_secs(5), read_message(conn))
        .await
        .expect("no reply in 5 s")
        .unwrap()
        .unwrap();
    let body = RawDocument::from_bytes(&reply[21..]).unwrap();
    let batch = body
        .get_document("cursor")
        .unwrap()
        .get_array("firstBatch")
        .unwrap();
    let first = batch.into_iter().next().unwrap().unwrap();
    let n = first.as_document().unwrap().get_i64("n").unwrap();
    (response_to(&reply).unwrap(), n)
}

/// Sends `msg` and returns its reply's answered id and `n`.
async fn ask(conn: &mut TcpStream, msg: &[u8]) -> (i32, i64) {
    conn.write_all(msg).await.unwrap();
    reply(conn).await
}

const A: &str = "6560f0c2a1b2c3d4e5f60718";
const B: &str = "6560f0c2a1b2c3d4e5f60719";

#[tokio::test]
async fn a_find_seen_once_is_answered_from_memory_until_patients_change() {
    let (up, upstream) = upstream().await;
    let cache = Shared::default();
    let mut conn = through(&up, &cache).await;

    assert_eq!(ask(&mut conn, &find(1, A)).await, (1, 0));
    // Again, on another connection too: from memory, answering each request.
    assert_eq!(ask(&mut conn, &find(2, A)).await, (2, 0));
    let mut other = through(&up, &cache).await;
    assert_eq!(ask(&mut other, &find(3, A)).await, (3, 0));
    assert_eq!(upstream.received.load(Ordering::SeqCst), 1);

    // Another patient goes up; so does anything else.
    assert_eq!(ask(&mut conn, &find(4, B)).await, (4, 1));
    let audit = message(5, 0, 0, &doc! { "insert": "audit_events", "$db": "crm" });
    assert_eq!(ask(&mut conn, &audit).await, (5, 2));
    assert_eq!(ask(&mut conn, &find(6, A)).await, (6, 0));

    // A change to patients empties the cache; so does a commit.
    let write = message(7, 0, 0, &doc! { "update": "patients", "$db": "crm" });
    assert_eq!(ask(&mut other, &write).await, (7, 3));
    assert_eq!(ask(&mut conn, &find(8, A)).await, (8, 4));
    assert_eq!(ask(&mut conn, &find(9, A)).await, (9, 4));
    let commit = message(10, 0, 0, &doc! { "commitTransaction": 1, "$db": "admin" });
    assert_eq!(ask(&mut other, &commit).await, (10, 5));
    assert_eq!(ask(&mut conn, &find(11, A)).await, (11, 6));
    assert_eq!(upstream.received.load(Ordering::SeqCst), 7);
}

#[tokio::test]
async fn a_reply_read_before_a_write_is_not_kept() {
    let (up, upstream) = upstream().await;
    let cache = Shared::default();
    let (mut reader, mut writer) = (through(&up, &cache).await, through(&up, &cache).await);
    upstream.hold.store(true, Ordering::SeqCst);
    // The find reaches the database, which holds its answer...
    reader.write_all(&find(1, A)).await.unwrap();
    while upstream.received.load(Ordering::SeqCst) < 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // ...while a write to patients goes through and is answered.
    let write = message(2, 0, 0, &doc! { "update": "patients", "$db": "crm" });
    assert_eq!(ask(&mut writer, &write).await, (2, 1));
    upstream.hold.store(false, Ordering::SeqCst);
    upstream.release.notify_one();
    assert_eq!(reply(&mut reader).await, (1, 0));
    // The answer from before the write was passed on, not kept.
    assert_eq!(ask(&mut reader, &find(3, A)).await, (3, 2));
    assert_eq!(ask(&mut reader, &find(4, A)).await, (4, 2));
}

#[tokio::test]
async fn a_message_answering_no_waiting_request_is_passed_on_and_not_kept() {
    let (up, upstream) = upstream().await;
    let cache = Shared::default();
    let mut conn = through(&up, &cache).await;
    upstream.stray.store(true, Ordering::SeqCst);
    conn.write_all(&find(1, A)).await.unwrap();
    // The stray message first (answering request 777, n = -1), then the
    // find's own reply.
    assert_eq!(reply(&mut conn).await, (777, -1));
    assert_eq!(reply(&mut conn).await, (1, 0));
    upstream.stray.store(false, Ordering::SeqCst);
    // What was kept is the find's reply.
    assert_eq!(ask(&mut conn, &find(2, A)).await, (2, 0));
    assert_eq!(upstream.received.load(Ordering::SeqCst), 1);
}
