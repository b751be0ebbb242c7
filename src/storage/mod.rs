//! The document store: encrypted objects in a directory or an
//! S3-compatible bucket (`object_store`), written and read as streams.
//!
//! Nothing here knows about patients or HTTP: the documents workflow hands
//! in plaintext piece by piece and gets plaintext back as a stream. Every
//! object is sealed (`crypt`) before it leaves the process, so the disk or
//! the bucket holds no readable byte of a document.

pub mod crypt;

use std::sync::Arc;

use bytes::Bytes;
use futures::{stream::BoxStream, StreamExt, TryStreamExt};
use object_store::{
    aws::AmazonS3Builder, local::LocalFileSystem, path::Path, GetResultPayload, ObjectStore,
    PutPayload, WriteMultipart,
};
use secrecy::{ExposeSecret, SecretBox};
use sha2::{Digest, Sha256};

use crate::{
    config::{Config, DocumentStore},
    error::{AppError, Result},
};
use crypt::{Broken, Opener, Sealer};

/// Sealed bytes held before the object store is called: a document that
/// fits is written with one PUT, a larger one as a multipart upload of
/// parts this size. S3's minimum part size; a directory takes smaller ones.
const S3_PART: usize = 5 * 1024 * 1024;
const LOCAL_PART: usize = 1024 * 1024;
/// A directory store's reads (one blocking read each).
const LOCAL_READ_CHUNK: usize = 512 * 1024;
/// Parts being uploaded at once; with the part being filled and the sealed
/// bytes not yet handed over, one upload holds about 4 parts (20 MiB on
/// S3, 4 MiB in a directory).
const PARTS_IN_FLIGHT: usize = 2;

/// The store and the master key. Cheap to clone.
#[derive(Clone)]
pub struct Vault {
    store: Arc<dyn ObjectStore>,
    prefix: Option<Path>,
    key: Arc<SecretBox<[u8; 32]>>,
    key_id: Arc<str>,
    /// The multipart part size (and the largest object written with one PUT).
    part: usize,
    /// Where the objects are, for logs and the doctor (never a secret).
    pub location: Arc<str>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("location", &self.location)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// What a finished upload wrote.
#[derive(Debug, Clone)]
pub struct Sealed {
    /// Plaintext bytes.
    pub size: u64,
    /// SHA-256 of the plaintext, hex.
    pub sha256: String,
}

fn decode_key(hex: &str) -> Option<[u8; 32]> {
    let mut key = [0u8; 32];
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        *key.get_mut(i)? = u8::from_str_radix(s, 16).ok()?;
    }
    (hex.len() == 64).then_some(key)
}

fn store_error(e: object_store::Error) -> AppError {
    tracing::error!(error = %e, "document store");
    AppError::ServiceUnavailable("the document store cannot be reached".into())
}

fn broken(object: &str, why: Broken) -> AppError {
    tracing::error!(object, ?why, "document object failed its integrity check");
    AppError::Corrupted(match why {
        Broken::NotSealed => {
            "the stored document is damaged (not a sealed object); restore it from a backup".into()
        }
        Broken::Tampered => {
            "the stored document is damaged or was changed; restore it from a backup".into()
        }
    })
}

impl Vault {
    /// The vault `config` describes; `None` without `DOCUMENT_KEY`. Creates
    /// a local directory when missing; S3 settings come from the usual
    /// `AWS_*` environment variables.
    pub fn open(config: &Config) -> std::result::Result<Option<Vault>, String> {
        let settings = &config.documents;
        let Some(hex) = &settings.key else {
            return Ok(None);
        };
        let key =
            decode_key(hex.expose_secret()).ok_or("DOCUMENT_KEY must be 64 hex characters")?;
        let key_id = {
            let digest = Sha256::new()
                .chain_update(b"healthcrm document key id:")
                .chain_update(key)
                .finalize();
            digest[..8]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        let (store, prefix, location, part): (Arc<dyn ObjectStore>, Option<Path>, String, usize) =
            match &settings.store {
                DocumentStore::Local(dir) => {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        format!("DOCUMENT_STORE {} cannot be created: {e}", dir.display())
                    })?;
                    let fs = LocalFileSystem::new_with_prefix(dir).map_err(|e| {
                        format!("DOCUMENT_STORE {} cannot be used: {e}", dir.display())
                    })?;
                    (Arc::new(fs), None, dir.display().to_string(), LOCAL_PART)
                }
                DocumentStore::S3 { bucket, prefix } => {
                    let s3 = AmazonS3Builder::from_env()
                        .with_bucket_name(bucket)
                        .build()
                        .map_err(|e| format!("DOCUMENT_STORE s3://{bucket}: {e}"))?;
                    let location = format!("s3://{bucket}/{prefix}");
                    let prefix = (!prefix.is_empty()).then(|| Path::from(prefix.as_str()));
                    (Arc::new(s3), prefix, location, S3_PART)
                }
            };
        Ok(Some(Vault {
            store,
            prefix,
            key: Arc::new(SecretBox::new(Box::new(key))),
            key_id: key_id.into(),
            part,
            location: location.into(),
        }))
    }

    /// Names the master key without revealing it, stored with each
    /// document so a wrong key is told apart from damage.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    fn path(&self, object: &str) -> Path {
        match &self.prefix {
            Some(p) => p.child(object),
            None => Path::from(object),
        }
    }

    /// Starts writing `object`.
    pub fn writer(&self, object: &str) -> Writer {
        let (sealer, header) = Sealer::new(self.key.expose_secret(), object);
        Writer {
            vault: self.clone(),
            path: self.path(object),
            sealer: Some(sealer),
            sealed: header,
            sink: Sink::Held,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// The plaintext of `object`, as it is read and opened. A damaged
    /// object ends the stream with [`AppError::Corrupted`].
    pub async fn read(&self, object: &str) -> Result<BoxStream<'static, Result<Bytes>>> {
        let got = match self.store.get(&self.path(object)).await {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => {
                tracing::error!(object, "document object missing from the store");
                return Err(AppError::Corrupted(
                    "the stored document is missing from the document store; restore it from a backup"
                        .into(),
                ));
            }
            Err(e) => return Err(store_error(e)),
        };
        struct Reading {
            inner: BoxStream<'static, Result<Bytes>>,
            opener: Option<Opener>,
            object: String,
        }
        let inner = match got.payload {
            GetResultPayload::File(file, _) => file_chunks(file),
            GetResultPayload::Stream(s) => s.map_err(store_error).boxed(),
        };
        let state = Reading {
            inner,
            opener: Some(Opener::new(self.key.expose_secret(), object)),
            object: object.to_owned(),
        };
        let plain = futures::stream::try_unfold(state, |mut st| async move {
            let Some(opener) = st.opener.as_mut() else {
                return Ok(None);
            };
            let mut out = Vec::new();
            loop {
                match st.inner.next().await {
                    Some(Ok(chunk)) => {
                        opener
                            .push(&chunk, &mut out)
                            .map_err(|b| broken(&st.object, b))?;
                        if !out.is_empty() {
                            return Ok(Some((Bytes::from(out), st)));
                        }
                    }
                    Some(Err(e)) => return Err(e),
                    None => {
                        let opener = st
                            .opener
                            .take()
                            .ok_or_else(|| AppError::internal("opened twice"))?;
                        opener.finish(&mut out).map_err(|b| broken(&st.object, b))?;
                        return Ok(Some((Bytes::from(out), st)));
                    }
                }
            }
        });
        Ok(plain.boxed())
    }
}

/// A local object's bytes in [`LOCAL_READ_CHUNK`] pieces, each one blocking
/// read (object_store's own file stream reads 8 KiB per blocking task, a
/// quarter of the speed).
fn file_chunks(file: std::fs::File) -> BoxStream<'static, Result<Bytes>> {
    futures::stream::try_unfold(file, |mut file| async move {
        let read = tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut buf = vec![0u8; LOCAL_READ_CHUNK];
            let n = file.read(&mut buf)?;
            buf.truncate(n);
            Ok::<_, std::io::Error>((buf, file))
        })
        .await
        .map_err(AppError::internal)?;
        let (buf, file) = read.map_err(|e| {
            tracing::error!(error = %e, "document store: reading a local object");
            AppError::ServiceUnavailable("the document store cannot be read".into())
        })?;
        Ok((!buf.is_empty()).then(|| (Bytes::from(buf), file)))
    })
    .boxed()
}

impl Vault {
    /// Reads `object` through and checks it opens whole to `size` bytes
    /// with SHA-256 `sha256`, holding one segment at a time.
    pub async fn verify(&self, object: &str, size: u64, sha256: &str) -> Result<()> {
        let mut stream = self.read(object).await?;
        let mut hasher = Sha256::new();
        let mut seen = 0u64;
        while let Some(chunk) = stream.try_next().await? {
            seen += chunk.len() as u64;
            hasher.update(&chunk);
        }
        let digest = format!("{:x}", hasher.finalize());
        if seen != size || digest != sha256 {
            tracing::error!(
                object,
                seen,
                size,
                "document object does not match its checksum"
            );
            return Err(AppError::Corrupted(
                "the stored document does not match its checksum; restore it from a backup".into(),
            ));
        }
        Ok(())
    }

    /// Removes `object`; a missing one is not an error.
    pub async fn remove(&self, object: &str) -> Result<()> {
        match self.store.delete(&self.path(object)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_error(e)),
        }
    }

    /// Overwrites `object` with raw bytes: tests use it to damage objects.
    #[doc(hidden)]
    pub async fn put_raw(&self, object: &str, bytes: Vec<u8>) -> Result<()> {
        self.store
            .put(&self.path(object), PutPayload::from(bytes))
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// The raw stored bytes of `object` (tests check they are sealed).
    #[doc(hidden)]
    pub async fn get_raw(&self, object: &str) -> Result<Bytes> {
        let got = self
            .store
            .get(&self.path(object))
            .await
            .map_err(store_error)?;
        got.bytes().await.map_err(store_error)
    }
}

enum Sink {
    /// Everything sealed so far is in `Writer::sealed` (under a part).
    Held,
    Multipart(WriteMultipart),
}

/// One object being written: plaintext in, sealed bytes out to the store,
/// the plaintext's size and SHA-256 kept on the way.
pub struct Writer {
    vault: Vault,
    path: Path,
    /// `None` once finished.
    sealer: Option<Sealer>,
    /// Sealed bytes not yet handed to the store.
    sealed: Vec<u8>,
    sink: Sink,
    hasher: Sha256,
    size: u64,
}

impl Writer {
    /// Plaintext bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub async fn write(&mut self, plain: &[u8]) -> Result<()> {
        let sealer = self
            .sealer
            .as_mut()
            .ok_or_else(|| AppError::internal("write after finish"))?;
        self.hasher.update(plain);
        self.size += plain.len() as u64;
        sealer.push(plain, &mut self.sealed);
        let part = self.vault.part;
        if self.sealed.len() < part {
            return Ok(());
        }
        if let Sink::Held = self.sink {
            let upload = self
                .vault
                .store
                .put_multipart(&self.path)
                .await
                .map_err(store_error)?;
            self.sink = Sink::Multipart(WriteMultipart::new_with_chunk_size(upload, part));
        }
        if let Sink::Multipart(w) = &mut self.sink {
            w.wait_for_capacity(PARTS_IN_FLIGHT)
                .await
                .map_err(store_error)?;
            w.write(&self.sealed);
            self.sealed.clear();
        }
        Ok(())
    }

    /// Seals the last segment and completes the object. A failed part
    /// aborts the multipart upload, so no incomplete upload is left.
    pub async fn finish(mut self) -> Result<Sealed> {
        let sealer = self
            .sealer
            .take()
            .ok_or_else(|| AppError::internal("finished twice"))?;
        let mut sealed = std::mem::take(&mut self.sealed);
        sealer.finish(&mut sealed);
        match std::mem::replace(&mut self.sink, Sink::Held) {
            Sink::Held => {
                self.vault
                    .store
                    .put(&self.path, PutPayload::from(sealed))
                    .await
                    .map_err(store_error)?;
            }
            Sink::Multipart(mut w) => {
                w.write(&sealed);
                if let Err(e) = w.wait_for_capacity(0).await {
                    abort_upload(w).await;
                    return Err(store_error(e));
                }
                w.finish().await.map_err(store_error)?;
            }
        }
        let hasher = std::mem::take(&mut self.hasher);
        Ok(Sealed {
            size: self.size,
            sha256: format!("{:x}", hasher.finalize()),
        })
    }

    /// Gives up: nothing of the object is left behind.
    pub async fn abort(mut self) {
        if let Sink::Multipart(w) = std::mem::replace(&mut self.sink, Sink::Held) {
            abort_upload(w).await;
        }
    }
}

async fn abort_upload(w: WriteMultipart) {
    if let Err(e) = w.abort().await {
        tracing::warn!(error = %e, "document upload not aborted cleanly");
    }
}

/// A writer dropped unfinished (the client went away, the upload timed
/// out) aborts its multipart upload in the background: a bucket keeps the
/// parts of an incomplete upload until it is aborted.
impl Drop for Writer {
    fn drop(&mut self) {
        if let Sink::Multipart(w) = std::mem::replace(&mut self.sink, Sink::Held) {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(abort_upload(w));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::decode_key;

    #[test]
    fn keys_decode_from_64_hex_characters_only() {
        let k = decode_key(&"0f".repeat(32)).unwrap();
        assert_eq!(k, [0x0f; 32]);
        assert!(decode_key(&"0f".repeat(31)).is_none());
        assert!(decode_key(&"0f".repeat(33)).is_none());
        assert!(decode_key(&"zz".repeat(32)).is_none());
    }
}
