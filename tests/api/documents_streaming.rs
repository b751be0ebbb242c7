//! Documents against a server process: a 100 MiB upload and download
//! streamed both ways (the server's peak memory stays under 100 MiB), and
//! the S3 backend against the S3-compatible test server that
//! `scripts/test.sh` starts (`TEST_S3_ENDPOINT`).

use std::time::Duration;

use futures::StreamExt;
use healthcrm::domain::user::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{
    audit::memory_kib,
    crash::Server,
    documents::BOUNDARY,
    helpers::{mongodb_uri, Session, TestApp},
};

const MIB: usize = 1024 * 1024;

/// `len` bytes of a PDF-looking file, made piece by piece (never whole).
fn pieces(len: usize, piece: usize) -> impl Iterator<Item = Vec<u8>> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut made = 0;
    std::iter::from_fn(move || {
        if made >= len {
            return None;
        }
        let n = piece.min(len - made);
        let mut buf = Vec::with_capacity(n);
        if made == 0 {
            buf.extend_from_slice(b"%PDF-1.7\n");
        }
        while buf.len() < n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf.extend_from_slice(&x.to_le_bytes());
        }
        buf.truncate(n);
        made += n;
        Some(buf)
    })
}

fn digest_of(len: usize) -> String {
    let mut h = Sha256::new();
    for p in pieces(len, MIB) {
        h.update(&p);
    }
    format!("{:x}", h.finalize())
}

/// Uploads a generated file of `len` bytes as a streamed multipart body.
async fn upload_streamed(
    http: &reqwest::Client,
    base: &str,
    s: &Session,
    patient: &str,
    len: usize,
) -> Value {
    let head = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"category\"\r\n\r\nimaging\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"ct.pdf\"\r\n\
         Content-Type: application/pdf\r\n\r\n"
    );
    let tail = format!("\r\n--{BOUNDARY}--\r\n");
    let parts = std::iter::once(head.into_bytes())
        .chain(pieces(len, MIB))
        .chain(std::iter::once(tail.into_bytes()))
        .map(Ok::<_, std::io::Error>);
    let res = http
        .post(format!("{base}/api/v1/patients/{patient}/documents"))
        .bearer_auth(&s.token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(reqwest::Body::wrap_stream(futures::stream::iter(parts)))
        .send()
        .await
        .expect("upload");
    let status = res.status();
    let body: Value = res.json().await.expect("json");
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// Downloads a document, hashing it as it arrives; its size and digest.
async fn download_streamed(
    http: &reqwest::Client,
    base: &str,
    s: &Session,
    id: &str,
) -> (usize, String) {
    let res = http
        .get(format!("{base}/api/v1/documents/{id}/content"))
        .bearer_auth(&s.token)
        .send()
        .await
        .expect("download");
    assert_eq!(res.status(), StatusCode::OK);
    let mut stream = res.bytes_stream();
    let mut h = Sha256::new();
    let mut n = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("chunk");
        n += chunk.len();
        h.update(&chunk);
    }
    (n, format!("{:x}", h.finalize()))
}

async fn patient(app: &TestApp, s: &Session) -> String {
    app.post_as(
        s,
        "/api/v1/patients",
        &json!({"name": "Scan Patient", "country": "DE"}),
    )
    .await
    .json()["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mib_document_streams_both_ways_in_under_100_mib_of_server_memory() {
    let db_name = format!("t_docs_{}", uuid::Uuid::new_v4().simple());
    let app = TestApp::spawn_on(&mongodb_uri(), &[("MONGODB_DB", &db_name)]).await;
    let staff = app.login_as(Role::Staff).await;
    let patient = patient(&app, &staff).await;
    let server = Server::start_with(
        &db_name,
        &[
            ("DOCUMENT_MAX_BYTES", &(200 * MIB).to_string()),
            (
                "DOCUMENT_STORE",
                &crate::helpers::test_document_dir(&db_name),
            ),
        ],
    )
    .await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .expect("client");
    let len = 100 * MIB;
    let doc = upload_streamed(&http, &server.base, &staff, &patient, len).await;
    let want = digest_of(len);
    assert_eq!(doc["size"], len);
    assert_eq!(doc["sha256"], want.as_str());
    let id = doc["id"].as_str().expect("id");
    let (n, got) = download_streamed(&http, &server.base, &staff, id).await;
    assert_eq!(n, len);
    assert_eq!(got, want, "the bytes come back equal");
    let peak_mib = memory_kib(server.pid(), "VmHWM:") / 1024;
    eprintln!("100 MiB up and down: server peak RSS {peak_mib} MiB");
    assert!(peak_mib < 100, "server peak RSS {peak_mib} MiB");
    let _ = std::fs::remove_dir_all(crate::helpers::test_document_dir(&db_name));
}

/// The S3-compatible server `scripts/test.sh` starts.
fn s3_endpoint() -> String {
    std::env::var("TEST_S3_ENDPOINT").expect(
        "TEST_S3_ENDPOINT is unset: run the tests with scripts/test.sh, which starts an S3-compatible server",
    )
}

/// moto checks no signature, but reads a request without one as anonymous
/// (and refuses it on a private bucket).
const MOTO_AUTH: &str = "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, \
    SignedHeaders=host, Signature=0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_s3_backend_stores_sealed_objects_in_a_bucket() {
    let endpoint = s3_endpoint();
    let bucket = std::env::var("TEST_S3_BUCKET").unwrap_or_else(|_| "healthcrm-test".into());
    let db_name = format!("t_s3_{}", uuid::Uuid::new_v4().simple());
    let prefix = format!("docs/{db_name}");
    let app = TestApp::spawn_on(&mongodb_uri(), &[("MONGODB_DB", &db_name)]).await;
    let staff = app.login_as(Role::Staff).await;
    let patient = patient(&app, &staff).await;
    let store = format!("s3://{bucket}/{prefix}");
    let server = Server::start_with(
        &db_name,
        &[
            ("DOCUMENT_STORE", &store),
            ("AWS_ENDPOINT_URL", &endpoint),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
        ],
    )
    .await;
    let http = reqwest::Client::new();
    // One small object (a single PUT) and one past the 5 MiB part size (a
    // multipart upload).
    for len in [40_000, 12 * MIB + 5] {
        let doc = upload_streamed(&http, &server.base, &staff, &patient, len).await;
        let id = doc["id"].as_str().expect("id").to_owned();
        let (n, got) = download_streamed(&http, &server.base, &staff, &id).await;
        assert_eq!((n, got), (len, digest_of(len)));
        // In the bucket: sealed, not the plaintext.
        let raw = http
            .get(format!("{endpoint}/{bucket}/{prefix}/{id}"))
            .header("authorization", MOTO_AUTH)
            .send()
            .await
            .expect("get object");
        assert_eq!(raw.status(), StatusCode::OK, "the object is in the bucket");
        let raw = raw.bytes().await.expect("bytes");
        assert!(raw.starts_with(b"HCDOC\x01"));
        assert!(raw.len() > len);
        let plain_start: Vec<u8> = pieces(len, MIB).next().unwrap()[..4096.min(len)].to_vec();
        assert!(!raw.windows(64).any(|w| w == &plain_start[64..128]));
        // Damage it in the bucket: the download says so.
        let mut bad = raw.to_vec();
        let at = bad.len() / 2;
        bad[at] ^= 0x10;
        let put = http
            .put(format!("{endpoint}/{bucket}/{prefix}/{id}"))
            .header("authorization", MOTO_AUTH)
            .body(bad)
            .send()
            .await
            .expect("put object");
        assert!(put.status().is_success());
        let res = http
            .get(format!("{}/api/v1/documents/{id}/content", server.base))
            .bearer_auth(&staff.token)
            .send()
            .await
            .expect("download");
        assert_eq!(res.status(), StatusCode::CONFLICT);
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["error"]["code"], "document_corrupted");
    }
}

#[test]
fn the_server_refuses_to_start_without_a_valid_document_key() {
    for key in [None, Some("abc"), Some("0".repeat(64).as_str())] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_healthcrm"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("MONGODB_URI", mongodb_uri())
            .env("MONGODB_DB", "t_no_document_key")
            .env("JWT_SECRET", crate::helpers::TEST_JWT_SECRET)
            .current_dir(std::env::temp_dir());
        if let Some(k) = key {
            cmd.env("DOCUMENT_KEY", k);
        }
        let out = cmd.output().expect("run the server");
        assert!(!out.status.success(), "{key:?}: the server must not start");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("DOCUMENT_KEY"), "{key:?}: {stderr}");
    }
}
