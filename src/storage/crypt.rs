//! The sealed object format: AES-256-GCM in the STREAM construction
//! (Hoang, Reyhanitabar, Rogaway, Vizár 2015; RustCrypto's `aead::stream`).
//!
//! ```text
//! magic "HCDOC\x01" (6) | salt (32) | segment 0 | segment 1 | ... | last segment
//! ```
//!
//! Each segment is 64 KiB of plaintext plus its 16-byte tag; the last one
//! (possibly short, possibly empty) is sealed with the "last" flag, so a
//! truncated object, reordered or dropped segments, and any flipped bit
//! fail to open. The key of each object is derived with HKDF-SHA256 from
//! the master key, the object's random salt and its name, so no two
//! objects share a key (the all-zero nonce prefix is then safe) and an
//! object copied over another's name does not open.

use aes_gcm::{
    aead::stream::{DecryptorBE32, EncryptorBE32},
    Aes256Gcm, KeyInit,
};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

/// Plaintext bytes per segment.
pub const SEGMENT: usize = 64 * 1024;
const TAG: usize = 16;
const MAGIC: &[u8; 6] = b"HCDOC\x01";
const SALT: usize = 32;
pub const HEADER: usize = MAGIC.len() + SALT;
/// Nonce prefix of StreamBE32 over a 96-bit nonce: 7 bytes.
const NONCE_PREFIX: [u8; 7] = [0; 7];

/// Why an object does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broken {
    /// Not in this format at all (or cut inside its header).
    NotSealed,
    /// A segment failed authentication: changed, truncated, reordered, or
    /// sealed under another key or for another object.
    Tampered,
}

fn cipher(master: &[u8; 32], salt: &[u8], object: &str) -> Aes256Gcm {
    let hk = Hkdf::<Sha256>::new(Some(salt), master);
    let mut key = Zeroizing::new([0u8; 32]);
    let info = [b"healthcrm document v1:".as_slice(), object.as_bytes()].concat();
    // 32 bytes is far below HKDF-SHA256's limit of 255 * 32: cannot fail.
    hk.expand(&info, key.as_mut_slice())
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    Aes256Gcm::new(key.as_slice().into())
}

/// Seals plaintext pushed in pieces of any size.
pub struct Sealer {
    enc: EncryptorBE32<Aes256Gcm>,
    pending: Vec<u8>,
}

impl Sealer {
    /// A sealer for `object`, and the header to write before its output.
    pub fn new(master: &[u8; 32], object: &str) -> (Sealer, Vec<u8>) {
        let mut salt = [0u8; SALT];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut salt);
        let enc = EncryptorBE32::from_aead(cipher(master, &salt, object), &NONCE_PREFIX.into());
        let header = [MAGIC.as_slice(), &salt].concat();
        (
            Sealer {
                enc,
                pending: Vec::with_capacity(SEGMENT + TAG),
            },
            header,
        )
    }

    /// Appends the sealed form of every segment `data` completes to `out`.
    /// A full segment is held back until more data shows it is not the last.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<u8>) {
        while !data.is_empty() {
            if self.pending.len() == SEGMENT {
                self.seal_pending(out);
            }
            let take = (SEGMENT - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
    }

    fn seal_pending(&mut self, out: &mut Vec<u8>) {
        // In-place sealing into a Vec fails only if the buffer cannot grow
        // or the 32-bit segment counter runs out: 2^32 segments of 64 KiB
        // (256 TiB), far past any document the upload limit lets in.
        self.enc
            .encrypt_next_in_place(&[], &mut self.pending)
            .expect("a Vec buffer can take the tag");
        out.extend_from_slice(&self.pending);
        self.pending.clear();
    }

    /// Seals the last segment into `out`.
    pub fn finish(self, out: &mut Vec<u8>) {
        let mut last = self.pending;
        self.enc
            .encrypt_last_in_place(&[], &mut last)
            .expect("a Vec buffer can take the tag");
        out.extend_from_slice(&last);
    }
}

/// Opens a sealed object pushed in pieces of any size.
pub struct Opener {
    master: Zeroizing<[u8; 32]>,
    object: String,
    dec: Option<DecryptorBE32<Aes256Gcm>>,
    buf: Vec<u8>,
}

impl Opener {
    pub fn new(master: &[u8; 32], object: &str) -> Opener {
        Opener {
            master: Zeroizing::new(*master),
            object: object.to_owned(),
            dec: None,
            buf: Vec::with_capacity(SEGMENT + TAG),
        }
    }

    /// Appends the plaintext of every segment `data` completes to `out`.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<u8>) -> Result<(), Broken> {
        if self.dec.is_none() {
            let take = (HEADER - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() < HEADER {
                return Ok(());
            }
            if &self.buf[..MAGIC.len()] != MAGIC {
                return Err(Broken::NotSealed);
            }
            let aead = cipher(&self.master, &self.buf[MAGIC.len()..HEADER], &self.object);
            self.dec = Some(DecryptorBE32::from_aead(aead, &NONCE_PREFIX.into()));
            self.buf.clear();
        }
        while !data.is_empty() {
            if self.buf.len() == SEGMENT + TAG {
                self.open_buffered(out)?;
            }
            let take = (SEGMENT + TAG - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(())
    }

    fn open_buffered(&mut self, out: &mut Vec<u8>) -> Result<(), Broken> {
        let dec = self.dec.as_mut().ok_or(Broken::NotSealed)?;
        dec.decrypt_next_in_place(&[], &mut self.buf)
            .map_err(|_| Broken::Tampered)?;
        out.extend_from_slice(&self.buf);
        self.buf.clear();
        Ok(())
    }

    /// Opens the last segment into `out`: the object is whole and intact.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<(), Broken> {
        let dec = self.dec.take().ok_or(Broken::NotSealed)?;
        let mut last = std::mem::take(&mut self.buf);
        dec.decrypt_last_in_place(&[], &mut last)
            .map_err(|_| Broken::Tampered)?;
        out.extend_from_slice(&last);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    fn seal(data: &[u8], piece: usize) -> Vec<u8> {
        let (mut s, mut out) = Sealer::new(&KEY, "obj");
        for chunk in data.chunks(piece.max(1)) {
            s.push(chunk, &mut out);
        }
        s.finish(&mut out);
        out
    }

    fn open(sealed: &[u8], piece: usize, key: &[u8; 32], object: &str) -> Result<Vec<u8>, Broken> {
        let mut o = Opener::new(key, object);
        let mut out = Vec::new();
        for chunk in sealed.chunks(piece.max(1)) {
            o.push(chunk, &mut out)?;
        }
        o.finish(&mut out)?;
        Ok(out)
    }

    #[test]
    fn round_trips_at_every_segment_boundary_and_piece_size() {
        for len in [
            0,
            1,
            SEGMENT - 1,
            SEGMENT,
            SEGMENT + 1,
            3 * SEGMENT,
            3 * SEGMENT + 17,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            for piece in [1000, 7919, SEGMENT, SEGMENT + TAG, 1 << 20] {
                let sealed = seal(&data, piece);
                // The last segment may be full; an empty file is one empty segment.
                let segments = len.div_ceil(SEGMENT).max(1);
                assert_eq!(sealed.len(), HEADER + len + segments * TAG, "len {len}");
                assert_eq!(
                    open(&sealed, piece, &KEY, "obj").unwrap(),
                    data,
                    "len {len}"
                );
            }
        }
    }

    #[test]
    fn the_sealed_bytes_do_not_show_the_plaintext() {
        let data = b"%PDF-1.7 patient: Jane Doe, diagnosis: ...".repeat(100);
        let sealed = seal(&data, 4096);
        assert!(!sealed.windows(8).any(|w| w == b"Jane Doe"));
        assert_ne!(seal(&data, 4096), sealed, "a fresh salt per object");
    }

    #[test]
    fn any_change_truncation_or_wrong_key_fails() {
        let data: Vec<u8> = (0..(2 * SEGMENT + 100)).map(|i| i as u8).collect();
        let sealed = seal(&data, 50_000);
        for at in [
            0,
            HEADER,
            HEADER + 10,
            HEADER + SEGMENT + TAG + 5,
            sealed.len() - 1,
        ] {
            let mut bad = sealed.clone();
            bad[at] ^= 0x01;
            assert!(open(&bad, 9000, &KEY, "obj").is_err(), "flip at {at}");
        }
        // Cut after the first whole segment: it would open as a shorter file
        // without the last-segment flag.
        let cut = &sealed[..HEADER + SEGMENT + TAG];
        assert_eq!(open(cut, 9000, &KEY, "obj"), Err(Broken::Tampered));
        assert_eq!(
            open(&sealed[..10], 9000, &KEY, "obj"),
            Err(Broken::NotSealed)
        );
        assert_eq!(open(&sealed, 9000, &[8; 32], "obj"), Err(Broken::Tampered));
        assert_eq!(open(&sealed, 9000, &KEY, "other"), Err(Broken::Tampered));
        assert_eq!(open(&data, 9000, &KEY, "obj"), Err(Broken::NotSealed));
    }
}
