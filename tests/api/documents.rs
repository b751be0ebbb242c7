//! Patient documents through the API: types judged by content, the size
//! limit, sealed storage, checked and audited downloads, soft delete and
//! restore, the matrix, idempotent uploads.

use axum::{
    body::Body,
    http::{header, Method, Request, StatusCode},
};
use healthcrm::domain::user::Role;
use mongodb::bson::{doc, Document};
use serde_json::{json, Value};

use crate::{
    helpers::{test_document_dir, Session, TestApp, TestResponse},
    treatments::{world, World},
};

pub const BOUNDARY: &str = "hcrm-test-boundary-7d1e";

/// A multipart body: text fields, then the file (when given).
pub fn form(fields: &[(&str, &str)], file: Option<(&str, &[u8])>) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    if let Some((file_name, bytes)) = file {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

pub fn pdf(marker: &str, len: usize) -> Vec<u8> {
    let mut b = format!("%PDF-1.7\n% {marker}\n").into_bytes();
    let mut x: u32 = 0x9e37_79b9;
    while b.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b.push((x & 0xff) as u8);
    }
    b.truncate(len);
    b
}

async fn upload_with(
    app: &TestApp,
    s: &Session,
    patient: &str,
    body: Vec<u8>,
    key: Option<&str>,
) -> TestResponse {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(format!("/api/v1/patients/{patient}/documents"))
        .header(header::AUTHORIZATION, format!("Bearer {}", s.token))
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        );
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    app.request(req.body(Body::from(body)).expect("request"))
        .await
}

async fn upload(w: &World, s: &Session, category: &str, name: &str, bytes: &[u8]) -> TestResponse {
    let body = form(&[("category", category)], Some((name, bytes)));
    upload_with(&w.app, s, &w.patient, body, None).await
}

async fn uploaded(w: &World, name: &str, bytes: &[u8]) -> Value {
    let res = upload(w, &w.staff, "medical_report", name, bytes).await;
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
    res.json()
}

fn object_file(app: &TestApp, id: &str) -> std::path::PathBuf {
    std::path::Path::new(&test_document_dir(&app.config.mongodb_db)).join(id)
}

fn stored_objects(app: &TestApp) -> usize {
    std::fs::read_dir(test_document_dir(&app.config.mongodb_db))
        .map(|d| d.filter_map(Result::ok).count())
        .unwrap_or(0)
}

async fn document_count(app: &TestApp) -> u64 {
    app.db
        .collection::<Document>("documents")
        .count_documents(doc! {})
        .await
        .expect("count")
}

#[tokio::test]
async fn a_document_round_trips_sealed_at_rest_and_its_download_is_audited() {
    let w = world().await;
    let bytes = pdf("Jane Doe: MRI report, left knee", 300_000);
    let title = "MRI report";
    let body = form(
        &[("category", "imaging"), ("title", title)],
        Some(("../MRI Knee (final).pdf", &bytes)),
    );
    let res = upload_with(&w.app, &w.staff, &w.patient, body, None).await;
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
    let doc = res.json();
    let id = doc["id"].as_str().expect("id").to_owned();
    assert_eq!(doc["category"], "imaging");
    assert_eq!(doc["title"], title);
    assert_eq!(doc["file_type"], "pdf");
    assert_eq!(doc["content_type"], "application/pdf");
    assert_eq!(doc["file_name"], "MRI_Knee_final.pdf");
    assert_eq!(doc["size"], 300_000);
    assert!(doc["created_by_name"].is_string());

    // At rest: neither the plaintext nor any part of it.
    let raw = std::fs::read(object_file(&w.app, &id)).expect("stored object");
    assert!(raw.len() > bytes.len(), "sealed: header and tags added");
    assert!(!raw.windows(8).any(|win| win == b"Jane Doe"));
    assert!(!raw.windows(64).any(|win| win == &bytes[1000..1064]));

    let res = w
        .app
        .get_as(&w.staff, &format!("/api/v1/documents/{id}/content"))
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(
        res.body.as_ref(),
        bytes.as_slice(),
        "the bytes come back equal"
    );
    assert_eq!(res.headers[header::CONTENT_TYPE], "application/pdf");
    assert_eq!(
        res.headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"MRI_Knee_final.pdf\""
    );
    assert_eq!(res.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(res.headers[header::CONTENT_LENGTH], "300000");

    let meta = w
        .app
        .get_as(&w.staff, &format!("/api/v1/documents/{id}"))
        .await
        .json();
    assert_eq!(meta["sha256"], doc["sha256"]);
    let list = w
        .app
        .get_as(
            &w.staff,
            &format!("/api/v1/patients/{}/documents", w.patient),
        )
        .await
        .json();
    assert_eq!(list["total"], 1);
    assert_eq!(list["data"][0]["id"], id.as_str());

    // The download is in the patient's access log, with who read it.
    w.app.settle_background().await;
    let log = w
        .app
        .get_as(
            &w.admin,
            &format!("/api/v1/patients/{}/access-log", w.patient),
        )
        .await
        .json();
    let downloads: Vec<&Value> = log["data"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "documents.content.read")
        .collect();
    assert_eq!(downloads.len(), 1, "{log}");
    assert_eq!(downloads[0]["actor_id"], w.staff.id.to_string());
    assert_eq!(downloads[0]["status"], 200);

    // History has the upload.
    let history = w
        .app
        .get_as(&w.staff, &format!("/api/v1/patients/{}/history", w.patient))
        .await
        .json();
    assert!(
        history["data"]
            .as_array()
            .expect("entries")
            .iter()
            .any(|e| e["entity"] == "document"
                && e["action"] == "create"
                && e["entity_id"] == id.as_str()),
        "{history}"
    );
}

#[tokio::test]
async fn types_are_judged_by_content_not_by_name() {
    let w = world().await;
    // A PDF named .png is stored as the PDF it is.
    let doc = uploaded(&w, "scan.png", &pdf("renamed", 2000)).await;
    assert_eq!(doc["file_type"], "pdf");
    assert_eq!(doc["file_name"], "scan.pdf");
    // Each accepted type.
    let mut dicom = vec![0u8; 128];
    dicom.extend_from_slice(b"DICM\x02\x00\x00\x00UL");
    let mut webp = b"RIFF\x24\x00\x00\x00WEBPVP8 ".to_vec();
    webp.resize(64, 0);
    for (bytes, ty) in [
        (b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00".to_vec(), "jpeg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR".to_vec(), "png"),
        (webp, "webp"),
        (dicom, "dicom"),
    ] {
        let doc = uploaded(&w, "file.bin", &bytes).await;
        assert_eq!(doc["file_type"], ty);
    }
    // An executable named .pdf is refused, and nothing is kept of it.
    let before = stored_objects(&w.app);
    let mut exe = b"MZ\x90\x00\x03\x00\x00\x00".to_vec();
    exe.resize(5000, 0x41);
    upload(&w, &w.staff, "medical_report", "report.pdf", &exe)
        .await
        .assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    // Short files are judged too (an unknown 10-byte file, an empty one).
    upload(&w, &w.staff, "other", "a.pdf", b"hello.pdf!")
        .await
        .assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    upload(&w, &w.staff, "other", "a.pdf", b"")
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(stored_objects(&w.app), before);
    assert_eq!(document_count(&w.app).await, 5);
}

#[tokio::test]
async fn the_size_limit_is_413_and_keeps_nothing() {
    let app = TestApp::spawn_with(&[("DOCUMENT_MAX_BYTES", "65536")]).await;
    let staff = app.login_as(Role::Staff).await;
    let patient = app
        .post_as(
            &staff,
            "/api/v1/patients",
            &json!({"name": "Big Scan", "country": "DE"}),
        )
        .await
        .json()["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let at_limit = form(
        &[("category", "imaging")],
        Some(("a.pdf", &pdf("x", 65_536))),
    );
    let res = upload_with(&app, &staff, &patient, at_limit, None).await;
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
    let over = form(
        &[("category", "imaging")],
        Some(("b.pdf", &pdf("x", 65_537))),
    );
    upload_with(&app, &staff, &patient, over, None)
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    // The form around the file is bounded too: 200 KiB before the first
    // boundary (which a multipart parser would otherwise buffer).
    let mut padded = vec![b'x'; 200 * 1024];
    padded.extend(form(
        &[("category", "imaging")],
        Some(("c.pdf", &pdf("x", 100))),
    ));
    upload_with(&app, &staff, &patient, padded, None)
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert_eq!(document_count(&app).await, 1);
    assert_eq!(stored_objects(&app), 1, "the refused upload left no object");
}

#[tokio::test]
async fn bad_forms_get_a_clear_4xx_and_leave_nothing() {
    let w = world().await;
    let file = pdf("form", 1000);
    let path = format!("/api/v1/patients/{}/documents", w.patient);
    for (fields, field) in [
        (vec![], "category"),
        (vec![("category", "x-ray")], "category"),
        (vec![("category", "imaging"), ("colour", "blue")], "colour"),
        (
            vec![("category", "imaging"), ("treatment_id", "nope")],
            "treatment_id",
        ),
        (
            vec![
                ("category", "imaging"),
                ("treatment_id", "0123456789abcdef01234567"),
            ],
            "treatment_id",
        ),
        (
            vec![("category", "imaging"), ("title", &"t".repeat(300))],
            "title",
        ),
    ] {
        let res = upload_with(
            &w.app,
            &w.staff,
            &w.patient,
            form(&fields, Some(("f.pdf", &file))),
            None,
        )
        .await;
        res.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(
            res.json()["error"]["details"][field].is_array(),
            "{field}: {:?}",
            res.json()
        );
    }
    // No file at all.
    upload_with(
        &w.app,
        &w.staff,
        &w.patient,
        form(&[("category", "imaging")], None),
        None,
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    // Not multipart.
    w.app
        .post_as(&w.staff, &path, &json!({"category": "imaging"}))
        .await
        .assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    // A body cut short.
    let mut cut = form(&[("category", "imaging")], Some(("f.pdf", &file)));
    cut.truncate(cut.len() - 40);
    upload_with(&w.app, &w.staff, &w.patient, cut, None)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    // A patient that does not exist.
    let body = form(&[("category", "imaging")], Some(("f.pdf", &file)));
    upload_with(&w.app, &w.staff, "0123456789abcdef01234567", body, None)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(document_count(&w.app).await, 0);
    assert_eq!(stored_objects(&w.app), 0);
}

#[tokio::test]
async fn a_damaged_or_missing_object_is_409_document_corrupted() {
    let w = world().await;
    let bytes = pdf("damage", 200_000);
    let flipped = uploaded(&w, "a.pdf", &bytes).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let missing = uploaded(&w, "b.pdf", &bytes).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let swapped = uploaded(&w, "c.pdf", &bytes).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // One bit deep inside the object (past the first segment).
    let path = object_file(&w.app, &flipped);
    let mut raw = std::fs::read(&path).expect("object");
    raw[150_000] ^= 0x04;
    std::fs::write(&path, raw).expect("write");
    std::fs::remove_file(object_file(&w.app, &missing)).expect("remove");
    // Another document's object copied over this one's.
    std::fs::copy(object_file(&w.app, &flipped), object_file(&w.app, &swapped)).expect("copy");

    for id in [&flipped, &missing, &swapped] {
        let res = w
            .app
            .get_as(&w.staff, &format!("/api/v1/documents/{id}/content"))
            .await;
        res.assert_error(StatusCode::CONFLICT, "document_corrupted");
        assert!(res.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("backup"));
    }
}

#[tokio::test]
async fn deletes_are_admin_only_soft_and_restorable() {
    let w = world().await;
    let id = uploaded(&w, "consent.pdf", &pdf("consent", 5000)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let doc_path = format!("/api/v1/documents/{id}");
    let list_path = format!("/api/v1/patients/{}/documents", w.patient);
    w.app
        .delete_as(&w.staff, &doc_path)
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    let res = w.app.delete_as(&w.admin, &doc_path).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    for p in [doc_path.clone(), format!("{doc_path}/content")] {
        w.app
            .get_as(&w.staff, &p)
            .await
            .assert_error(StatusCode::NOT_FOUND, "not_found");
    }
    assert_eq!(w.app.get_as(&w.staff, &list_path).await.json()["total"], 0);
    w.app
        .get_as(&w.staff, &format!("{list_path}?deleted=true"))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    let deleted = w
        .app
        .get_as(&w.admin, &format!("{list_path}?deleted=true"))
        .await
        .json();
    assert_eq!(deleted["total"], 1);
    assert!(deleted["data"][0]["deleted_at"].is_string());
    assert_eq!(deleted["data"][0]["deleted_by"], w.admin.id.to_string());
    assert!(
        object_file(&w.app, &id).exists(),
        "the bytes stay for a restore"
    );

    w.app
        .post_as(&w.staff, &format!("{doc_path}/restore"), &json!({}))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    let res = w
        .app
        .post_as(&w.admin, &format!("{doc_path}/restore"), &json!({}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    assert!(res.json()["deleted_at"].is_null());
    w.app
        .post_as(&w.admin, &format!("{doc_path}/restore"), &json!({}))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    let res = w.app.get_as(&w.staff, &format!("{doc_path}/content")).await;
    assert_eq!(res.status, StatusCode::OK);

    let history = w
        .app
        .get_as(&w.staff, &format!("/api/v1/patients/{}/history", w.patient))
        .await
        .json();
    let actions: Vec<&str> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entity"] == "document")
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in ["create", "delete", "restore"] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
}

#[tokio::test]
async fn a_deleted_patients_documents_are_unreachable_until_restore() {
    let w = world().await;
    let id = uploaded(&w, "passport.jpg", b"\xFF\xD8\xFF\xE0 passport scan").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let patient = format!("/api/v1/patients/{}", w.patient);
    assert_eq!(
        w.app.delete_as(&w.admin, &patient).await.status,
        StatusCode::NO_CONTENT
    );
    for p in [
        format!("/api/v1/documents/{id}"),
        format!("/api/v1/documents/{id}/content"),
        format!("{patient}/documents"),
    ] {
        w.app
            .get_as(&w.admin, &p)
            .await
            .assert_error(StatusCode::NOT_FOUND, "not_found");
    }
    w.app
        .delete_as(&w.admin, &format!("/api/v1/documents/{id}"))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    upload(&w, &w.staff, "other", "x.pdf", &pdf("x", 100))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    let res = w
        .app
        .post_as(&w.admin, &format!("{patient}/restore"), &json!({}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    let res = w
        .app
        .get_as(&w.staff, &format!("/api/v1/documents/{id}/content"))
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body.as_ref(), b"\xFF\xD8\xFF\xE0 passport scan");
}

#[tokio::test]
async fn a_document_may_name_a_treatment_of_its_patient_and_lists_filter_by_category() {
    let w = world().await;
    let treatment = w
        .app
        .post_as(
            &w.staff,
            &format!("/api/v1/patients/{}/treatments", w.patient),
            &json!({"treatment_type": "knee replacement", "disease": "osteoarthritis", "hospital_id": w.hospital,
                    "cost": {"amount_minor": 1_200_000, "currency": "EUR"},
                    "earnings": {"amount_minor": 150_000, "currency": "EUR"}, "status": "planned"}),
        )
        .await
        .json()["id"]
        .as_str()
        .expect("treatment")
        .to_owned();
    let body = form(
        &[("category", "invoice"), ("treatment_id", &treatment)],
        Some(("inv.pdf", &pdf("invoice", 800))),
    );
    let res = upload_with(&w.app, &w.staff, &w.patient, body, None).await;
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.json());
    assert_eq!(res.json()["treatment_id"], treatment.as_str());
    uploaded(&w, "r.pdf", &pdf("report", 800)).await;
    let list = |q: &'static str| {
        let path = format!("/api/v1/patients/{}/documents{q}", w.patient);
        let app = &w.app;
        let staff = &w.staff;
        async move { app.get_as(staff, &path).await }
    };
    assert_eq!(list("").await.json()["total"], 2);
    let invoices = list("?category=invoice").await.json();
    assert_eq!(invoices["total"], 1);
    assert_eq!(invoices["data"][0]["category"], "invoice");
    list("?category=x-ray")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "bad_request");
}

#[tokio::test]
async fn an_upload_with_an_idempotency_key_is_stored_once() {
    let w = world().await;
    let bytes = pdf("retry", 10_000);
    let body = || form(&[("category", "medical_report")], Some(("r.pdf", &bytes)));
    let first = upload_with(&w.app, &w.staff, &w.patient, body(), Some("upload-1")).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = upload_with(&w.app, &w.staff, &w.patient, body(), Some("upload-1")).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.json()["id"], first.json()["id"]);
    let other = form(
        &[("category", "medical_report")],
        Some(("r.pdf", &pdf("other", 10_000))),
    );
    upload_with(&w.app, &w.staff, &w.patient, other, Some("upload-1"))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused");
    assert_eq!(document_count(&w.app).await, 1);
    assert_eq!(
        stored_objects(&w.app),
        1,
        "replays and refusals keep no object"
    );
}

/// A download through the gzip layer (a PDF is compressible), which polls
/// the body once more after its end (see `reports::csv_reports_*`). Today's
/// download stream would survive that even unfused (checked); the route
/// fuses it anyway, and this keeps gzip downloads working.
#[tokio::test]
async fn a_download_streams_through_compression() {
    let w = world().await;
    let bytes = pdf("compressed download", 200_000);
    let id = uploaded(&w, "scan.pdf", &bytes).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let req = Request::get(format!("/api/v1/documents/{id}/content"))
        .header(header::AUTHORIZATION, format!("Bearer {}", w.staff.token))
        .header(header::ACCEPT_ENCODING, "gzip")
        .body(Body::empty())
        .expect("request");
    let res = w.app.request(req).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.header("content-encoding"), Some("gzip"));
    assert_eq!(res.body.get(..2), Some(&[0x1f, 0x8b][..]));
}
