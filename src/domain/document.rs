//! A patient's document: its category, the file types accepted (known by
//! their first bytes, never by the client's word), and the stored metadata.
//! The bytes themselves are in the document store (`crate::storage`),
//! encrypted.

use mongodb::bson::DateTime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{DocumentId, PatientId, TreatmentId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Passport,
    MedicalReport,
    Imaging,
    Visa,
    Invoice,
    Consent,
    Other,
}

impl Category {
    pub const ALL: [Category; 7] = [
        Category::Passport,
        Category::MedicalReport,
        Category::Imaging,
        Category::Visa,
        Category::Invoice,
        Category::Consent,
        Category::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Passport => "passport",
            Category::MedicalReport => "medical_report",
            Category::Imaging => "imaging",
            Category::Visa => "visa",
            Category::Invoice => "invoice",
            Category::Consent => "consent",
            Category::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// The file types a case file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileType {
    Pdf,
    Jpeg,
    Png,
    Webp,
    Dicom,
}

/// Bytes needed to recognise every accepted type (DICOM's `DICM` sits at
/// offset 128).
pub const SNIFF_LEN: usize = 132;

impl FileType {
    /// The type `head` (the file's first bytes, up to [`SNIFF_LEN`]) starts
    /// like, if it is one of the accepted ones.
    pub fn sniff(head: &[u8]) -> Option<FileType> {
        if head.starts_with(b"%PDF-") {
            Some(FileType::Pdf)
        } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(FileType::Jpeg)
        } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(FileType::Png)
        } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
            Some(FileType::Webp)
        } else if head.len() >= SNIFF_LEN && &head[128..132] == b"DICM" {
            Some(FileType::Dicom)
        } else {
            None
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            FileType::Pdf => "application/pdf",
            FileType::Jpeg => "image/jpeg",
            FileType::Png => "image/png",
            FileType::Webp => "image/webp",
            FileType::Dicom => "application/dicom",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            FileType::Pdf => "pdf",
            FileType::Jpeg => "jpg",
            FileType::Png => "png",
            FileType::Webp => "webp",
            FileType::Dicom => "dcm",
        }
    }
}

/// A download name that is safe in a `Content-Disposition` header and on
/// any file system: the client's base name reduced to letters, digits,
/// `-`, `_` and `.`, at most 100 characters, with the stored type's
/// extension (whatever the client called it). `document.<ext>` when
/// nothing usable is left.
pub fn safe_file_name(raw: Option<&str>, ty: FileType) -> String {
    let base = raw.unwrap_or("").rsplit(['/', '\\']).next().unwrap_or("");
    let stem = match base.rfind('.') {
        Some(dot) if dot > 0 => &base[..dot],
        _ => base,
    };
    let mut clean = String::new();
    for c in stem.chars() {
        if clean.len() >= 100 {
            break;
        }
        match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' => clean.push(c),
            '.' | ' ' if !clean.is_empty() && !clean.ends_with('_') => clean.push('_'),
            _ => {}
        }
    }
    let clean = clean.trim_matches('_');
    let stem = if clean.is_empty() { "document" } else { clean };
    format!("{stem}.{}", ty.extension())
}

/// How a document's object is sealed: AES-256-GCM in the STREAM
/// construction (`crate::storage::crypt`), under the key whose id is
/// `key_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sealing {
    pub alg: String,
    pub key_id: String,
}

/// The stored metadata of one document (the `documents` collection).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    #[serde(rename = "_id")]
    pub id: DocumentId,
    pub patient_id: PatientId,
    pub category: Category,
    pub title: Option<String>,
    pub treatment_id: Option<TreatmentId>,
    /// The safe download name (see [`safe_file_name`]).
    pub file_name: String,
    pub file_type: FileType,
    /// Plaintext bytes.
    pub size: i64,
    /// SHA-256 of the plaintext, hex; checked on every download.
    pub sha256: String,
    /// The object's name in the document store.
    pub object: String,
    pub sealing: Sealing,
    pub created_at: DateTime,
    pub created_by: UserId,
    pub deleted_at: Option<DateTime>,
    pub deleted_by: Option<UserId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dicom() -> Vec<u8> {
        let mut d = vec![0u8; 128];
        d.extend_from_slice(b"DICM\x02\x00");
        d
    }

    #[test]
    fn types_are_known_by_their_first_bytes() {
        assert_eq!(FileType::sniff(b"%PDF-1.7\n"), Some(FileType::Pdf));
        assert_eq!(
            FileType::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(FileType::Jpeg)
        );
        assert_eq!(
            FileType::sniff(b"\x89PNG\r\n\x1a\n\0\0"),
            Some(FileType::Png)
        );
        assert_eq!(
            FileType::sniff(b"RIFF\x10\0\0\0WEBPVP8 "),
            Some(FileType::Webp)
        );
        assert_eq!(FileType::sniff(&dicom()), Some(FileType::Dicom));
        for bad in [
            &b"MZ\x90\0"[..],
            b"",
            b"RIFF\0\0\0\0WAVE",
            b"%PD",
            b"GIF89a",
            &[0u8; 131],
        ] {
            assert_eq!(FileType::sniff(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn download_names_are_safe_and_carry_the_stored_type() {
        let pdf = FileType::Pdf;
        assert_eq!(safe_file_name(Some("scan.png"), pdf), "scan.pdf");
        assert_eq!(safe_file_name(Some("../../etc/passwd"), pdf), "passwd.pdf");
        assert_eq!(
            safe_file_name(Some("C:\\x\\Report 2026.v2.PDF"), pdf),
            "Report_2026_v2.pdf"
        );
        assert_eq!(safe_file_name(Some("\"; evil=1\r\n.pdf"), pdf), "evil1.pdf");
        assert_eq!(safe_file_name(Some("Ünïcødé.pdf"), pdf), "ncd.pdf");
        assert_eq!(safe_file_name(None, FileType::Dicom), "document.dcm");
        assert_eq!(safe_file_name(Some(".hidden"), pdf), "hidden.pdf");
        assert!(safe_file_name(Some(&"a".repeat(500)), pdf).len() <= 104);
    }

    #[test]
    fn categories_round_trip() {
        for c in Category::ALL {
            assert_eq!(Category::parse(c.as_str()), Some(c));
        }
        assert_eq!(Category::parse("x-ray"), None);
    }
}
