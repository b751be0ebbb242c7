//! The document store's settings: `DOCUMENT_KEY`, `DOCUMENT_STORE`,
//! `DOCUMENT_MAX_BYTES`.

use std::path::PathBuf;

use secrecy::SecretString;

/// Where documents are kept (`DOCUMENT_STORE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentStore {
    /// A directory (`.local/documents`, `/srv/docs` or `file:///srv/docs`).
    Local(PathBuf),
    /// `s3://bucket/prefix`, with the usual `AWS_*` settings from the
    /// environment (region, credentials, `AWS_ENDPOINT_URL` for an
    /// S3-compatible server).
    S3 { bucket: String, prefix: String },
}

#[derive(Debug, Clone)]
pub struct DocumentSettings {
    /// 32 bytes as 64 hex characters; `None` when unset (the server then
    /// refuses to start; tools that never touch documents run without it).
    pub key: Option<SecretString>,
    pub store: DocumentStore,
    /// Largest accepted document, in bytes.
    pub max_bytes: u64,
    /// How long one upload or download may take
    /// (`DOCUMENT_UPLOAD_TIMEOUT_SECS`): the file streams within the
    /// request, so `REQUEST_TIMEOUT_SECS` would cut a large scan on a slow
    /// line.
    pub upload_timeout: std::time::Duration,
}

pub const DEFAULT_MAX_BYTES: u64 = 25 * 1024 * 1024;
/// 40 GiB: far beyond any scan, and within what one S3 multipart upload
/// of 5 MiB parts holds (10,000 parts, 48.8 GiB, less the sealing's 16
/// bytes per 64 KiB).
pub const MAX_MAX_BYTES: u64 = 40 * 1024 * 1024 * 1024;

pub fn parse(get: &impl Fn(&str) -> Option<String>, errors: &mut Vec<String>) -> DocumentSettings {
    let key = get("DOCUMENT_KEY");
    if let Some(k) = &key {
        if k.len() != 64 || !k.bytes().all(|b| b.is_ascii_hexdigit()) {
            errors.push(format!(
                "DOCUMENT_KEY must be 64 hex characters (32 random bytes, e.g. `openssl rand -hex 32`), not {} characters",
                k.len()
            ));
        } else if k.bytes().all(|b| b == b'0') {
            errors.push("DOCUMENT_KEY is all zeros; set 32 random bytes".into());
        }
    }
    let store = match get("DOCUMENT_STORE") {
        None => DocumentStore::Local(PathBuf::from(".local/documents")),
        Some(raw) => parse_store(&raw).unwrap_or_else(|e| {
            errors.push(e);
            DocumentStore::Local(PathBuf::from(".local/documents"))
        }),
    };
    let max_bytes = match get("DOCUMENT_MAX_BYTES").map(|v| v.parse::<u64>()) {
        None => DEFAULT_MAX_BYTES,
        Some(Ok(n)) if (1024..=MAX_MAX_BYTES).contains(&n) => n,
        Some(_) => {
            errors.push(format!(
                "DOCUMENT_MAX_BYTES must be a whole number of bytes between 1024 and {MAX_MAX_BYTES}"
            ));
            DEFAULT_MAX_BYTES
        }
    };
    let upload_secs = match get("DOCUMENT_UPLOAD_TIMEOUT_SECS").map(|v| v.parse::<u64>()) {
        None => 600,
        Some(Ok(n)) if (1..=86_400).contains(&n) => n,
        Some(_) => {
            errors.push("DOCUMENT_UPLOAD_TIMEOUT_SECS must be between 1 and 86400".into());
            600
        }
    };
    DocumentSettings {
        key: key.map(SecretString::from),
        store,
        max_bytes,
        upload_timeout: std::time::Duration::from_secs(upload_secs),
    }
}

fn parse_store(raw: &str) -> Result<DocumentStore, String> {
    if let Some(rest) = raw.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid_bucket {
            return Err(format!(
                "DOCUMENT_STORE bucket '{bucket}' must be 3 to 63 lower-case letters, digits, dots or dashes"
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|s| s == ".." || s == ".") {
            return Err("DOCUMENT_STORE prefix may not contain '.' or '..' segments".into());
        }
        return Ok(DocumentStore::S3 {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        });
    }
    if let Some(path) = raw.strip_prefix("file://") {
        if !path.starts_with('/') {
            return Err(
                "DOCUMENT_STORE file:// URLs need an absolute path (file:///srv/docs)".into(),
            );
        }
        return Ok(DocumentStore::Local(PathBuf::from(path)));
    }
    if raw.contains("://") {
        return Err(format!(
            "DOCUMENT_STORE must be a directory, file:///abs/path or s3://bucket/prefix, not '{raw}'"
        ));
    }
    Ok(DocumentStore::Local(PathBuf::from(raw)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> (DocumentSettings, Vec<String>) {
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        };
        let mut errors = Vec::new();
        let s = parse(&get, &mut errors);
        (s, errors)
    }

    #[test]
    fn defaults_are_a_local_directory_and_25_mib() {
        let (s, errors) = settings(&[]);
        assert!(errors.is_empty());
        assert!(s.key.is_none());
        assert_eq!(s.store, DocumentStore::Local(".local/documents".into()));
        assert_eq!(s.max_bytes, 25 * 1024 * 1024);
    }

    #[test]
    fn stores_are_directories_file_urls_or_buckets() {
        for (raw, want) in [
            ("/srv/docs", DocumentStore::Local("/srv/docs".into())),
            ("file:///srv/docs", DocumentStore::Local("/srv/docs".into())),
            (
                "s3://crm-docs/prod/files/",
                DocumentStore::S3 {
                    bucket: "crm-docs".into(),
                    prefix: "prod/files".into(),
                },
            ),
            (
                "s3://crm-docs",
                DocumentStore::S3 {
                    bucket: "crm-docs".into(),
                    prefix: String::new(),
                },
            ),
        ] {
            let (s, errors) = settings(&[("DOCUMENT_STORE", raw)]);
            assert!(errors.is_empty(), "{raw}: {errors:?}");
            assert_eq!(s.store, want, "{raw}");
        }
        for bad in [
            "file://rel/path",
            "gs://bucket",
            "s3://UPPER",
            "s3://b",
            "s3://bucket/../x",
        ] {
            let (_, errors) = settings(&[("DOCUMENT_STORE", bad)]);
            assert_eq!(errors.len(), 1, "{bad}");
            assert!(errors[0].contains("DOCUMENT_STORE"), "{bad}: {errors:?}");
        }
    }

    #[test]
    fn keys_are_64_hex_characters_and_not_zero() {
        let good = "a".repeat(64);
        assert!(settings(&[("DOCUMENT_KEY", &good)]).1.is_empty());
        for bad in [
            "abc".to_string(),
            "g".repeat(64),
            "0".repeat(64),
            "a".repeat(65),
        ] {
            let (_, errors) = settings(&[("DOCUMENT_KEY", &bad)]);
            assert_eq!(errors.len(), 1, "{bad}");
            assert!(errors[0].contains("DOCUMENT_KEY"));
        }
    }

    #[test]
    fn the_size_limit_is_bounded() {
        assert_eq!(
            settings(&[("DOCUMENT_MAX_BYTES", "104857600")]).0.max_bytes,
            100 << 20
        );
        for bad in ["0", "12", "lots", "-1", "99999999999999999"] {
            let (_, errors) = settings(&[("DOCUMENT_MAX_BYTES", bad)]);
            assert_eq!(errors.len(), 1, "{bad}");
        }
    }
}
