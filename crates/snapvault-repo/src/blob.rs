//! Blobs: the unit of deduplication. A data blob is one chunk of a file; a tree blob is one
//! directory listing. Each is (optionally) zstd-compressed, then sealed on its own so that a
//! single blob can be fetched with one range read and verified against its id.

use serde::{Deserialize, Serialize};

use crate::crypto::Crypto;
use crate::error::{RepoError, Result};
use crate::id::BlobId;

/// The largest blob plaintext we accept when decoding (max chunk is 16 MiB; trees are capped).
pub const MAX_BLOB_LEN: usize = 64 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobType {
    Data = 0,
    Tree = 1,
}

impl BlobType {
    pub fn from_u8(b: u8) -> Option<BlobType> {
        match b {
            0 => Some(BlobType::Data),
            1 => Some(BlobType::Tree),
            _ => None,
        }
    }
}

/// Whether zstd is worth a try for a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Already-compressed media (HEIC, JPEG, MOV…): store as is.
    Never,
    /// Try: a cheap trial on a sample decides, and the result is kept only when smaller.
    Try(i32),
}

/// A sealed blob ready for a pack.
pub struct EncodedBlob {
    pub id: BlobId,
    pub typ: BlobType,
    /// Length of the plaintext.
    pub raw_len: u32,
    pub compressed: bool,
    pub sealed: Vec<u8>,
}

const SAMPLE: usize = 64 * 1024;

/// Does a fast trial on a sample suggest zstd will shrink `plain` by at least 3%?
fn looks_compressible(plain: &[u8]) -> bool {
    if plain.len() <= SAMPLE * 2 {
        return true;
    }
    let mid = plain.len() / 2;
    let sample = &plain[mid - SAMPLE / 2..mid + SAMPLE / 2];
    match zstd::bulk::compress(sample, 1) {
        Ok(c) => c.len() < sample.len() * 97 / 100,
        Err(_) => false,
    }
}

pub fn encode(
    crypto: &Crypto,
    id: BlobId,
    typ: BlobType,
    plain: &[u8],
    compression: Compression,
) -> EncodedBlob {
    let mut compressed = None;
    if let Compression::Try(level) = compression
        && plain.len() >= 64
        && looks_compressible(plain)
        && let Ok(c) = zstd::bulk::compress(plain, level)
        && c.len() < plain.len()
    {
        compressed = Some(c);
    }
    let (payload, is_compressed) = match &compressed {
        Some(c) => (c.as_slice(), true),
        None => (plain, false),
    };
    let sealed = if crypto.is_encrypted() {
        // Pad with zeros inside the seal so the stored length is a Padmé bucket
        // (docs/security.md: chunk and file sizes are blurred, ~1.2 % of space).
        let target = padme(payload.len() + crypto.overhead()) - crypto.overhead();
        let mut padded = Vec::with_capacity(target);
        padded.extend_from_slice(payload);
        padded.resize(target, 0);
        crypto.seal(&padded)
    } else {
        crypto.seal(payload)
    };
    EncodedBlob {
        id,
        typ,
        raw_len: plain.len() as u32,
        compressed: is_compressed,
        sealed,
    }
}

/// Padmé (Nikitin et al., PETS 2019): round `len` up so that only its top
/// ⌊log2 ⌊log2 len⌋⌋ + 1 bits vary; at most +12 % (tiny sizes), about +3 % at 1 MiB.
pub fn padme(len: usize) -> usize {
    if len < 4 {
        return len;
    }
    let e = usize::BITS - 1 - len.leading_zeros(); // ⌊log2 len⌋
    let s = u32::BITS - e.leading_zeros(); // ⌊log2 e⌋ + 1
    let mask = (1usize << (e - s)) - 1;
    (len + mask) & !mask
}

/// Open, decompress and verify one stored blob. Any damage is an error naming the blob.
pub fn decode(
    crypto: &Crypto,
    id: &BlobId,
    compressed: bool,
    raw_len: u32,
    sealed: &[u8],
) -> Result<Vec<u8>> {
    let what = format!("blob {}", id.to_hex());
    if raw_len as usize > MAX_BLOB_LEN {
        return Err(RepoError::corrupt(what, "length out of range"));
    }
    let mut payload = crypto.open(sealed, &what)?;
    // An encrypted blob may carry zero padding after its payload (see `encode`).
    let body_len = if compressed {
        zstd::zstd_safe::find_frame_compressed_size(&payload)
            .map_err(|_| RepoError::corrupt(&what, "zstd: no complete frame"))?
    } else {
        (raw_len as usize).min(payload.len())
    };
    if body_len != payload.len() {
        if !crypto.is_encrypted() || payload[body_len..].iter().any(|&b| b != 0) {
            return Err(RepoError::corrupt(
                &what,
                "unexpected bytes after the payload",
            ));
        }
        payload.truncate(body_len);
    }
    let plain = if compressed {
        zstd::bulk::decompress(&payload, raw_len as usize)
            .map_err(|e| RepoError::corrupt(&what, format!("zstd: {e}")))?
    } else {
        payload
    };
    if plain.len() != raw_len as usize {
        return Err(RepoError::corrupt(
            &what,
            format!("length {} instead of {raw_len}", plain.len()),
        ));
    }
    if crypto.blob_id(&plain) != *id {
        return Err(RepoError::corrupt(&what, "content does not match its id"));
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;

    #[test]
    fn round_trip_compressible_and_not() {
        let c = Crypto::Keyed(MasterKey::generate());
        let text = b"photo ".repeat(100_000);
        let id = c.blob_id(&text);
        let e = encode(&c, id, BlobType::Data, &text, Compression::Try(3));
        assert!(e.compressed && e.sealed.len() < text.len() / 10);
        assert_eq!(decode(&c, &id, true, e.raw_len, &e.sealed).unwrap(), text);

        let mut noise = vec![0u8; 300_000];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut noise);
        let id = c.blob_id(&noise);
        let e = encode(&c, id, BlobType::Data, &noise, Compression::Try(3));
        assert!(!e.compressed);
        assert_eq!(decode(&c, &id, false, e.raw_len, &e.sealed).unwrap(), noise);
        // Wrong id is detected even when the seal is intact.
        let other = c.blob_id(b"other");
        assert!(decode(&c, &other, false, e.raw_len, &e.sealed).is_err());
    }

    #[test]
    fn padme_buckets() {
        assert_eq!(padme(0), 0);
        assert_eq!(padme(3), 3);
        assert_eq!(padme(104), 104); // e = 6, s = 3: multiples of 8
        assert_eq!(padme(97), 104);
        assert_eq!(padme(1 << 20), 1 << 20);
        assert_eq!(padme((1 << 20) + 1), (1 << 20) + (1 << 15));
        for len in (1..5_000_000).step_by(997) {
            let p = padme(len);
            assert!(p >= len && p - len <= len / 8 + 1, "{len} -> {p}");
            assert_eq!(padme(p), p, "{len}: buckets are fixed points");
        }
    }

    #[test]
    fn encrypted_blobs_are_padded_and_strict() {
        let c = Crypto::Keyed(MasterKey::generate());
        let text = b"photo ".repeat(50_000);
        let mut noise = vec![0u8; 1_000_003];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut noise);
        for (data, comp) in [(&text[..], true), (&noise[..], false), (&b"x"[..], false)] {
            let id = c.blob_id(data);
            let e = encode(&c, id, BlobType::Data, data, Compression::Try(3));
            assert_eq!(e.compressed, comp);
            assert_eq!(padme(e.sealed.len()), e.sealed.len());
            assert_eq!(decode(&c, &id, comp, e.raw_len, &e.sealed).unwrap(), data);
            // Non-zero padding, or padding in a blob sealed without any, is refused.
            let mut payload = c.open(&e.sealed, "x").unwrap();
            payload.push(1);
            let bad = c.seal(&payload);
            assert!(decode(&c, &id, comp, e.raw_len, &bad).is_err());
            // Blobs written before padding existed still read.
            let body = if comp {
                zstd::bulk::compress(data, 3).unwrap()
            } else {
                data.to_vec()
            };
            assert_eq!(
                decode(&c, &id, comp, e.raw_len, &c.seal(&body)).unwrap(),
                data
            );
        }
        // Unencrypted repositories: no padding written, none accepted.
        let id = Crypto::Plain.blob_id(&noise);
        let e = encode(
            &Crypto::Plain,
            id,
            BlobType::Data,
            &noise,
            Compression::Never,
        );
        assert_eq!(e.sealed.len(), noise.len());
        let mut padded = e.sealed.clone();
        padded.push(0);
        assert!(decode(&Crypto::Plain, &id, false, e.raw_len, &padded).is_err());
    }

    #[test]
    fn plain_repo_detects_changed_bytes() {
        let c = Crypto::Plain;
        let d = b"0123456789".repeat(10);
        let id = c.blob_id(&d);
        let mut e = encode(&c, id, BlobType::Data, &d, Compression::Never);
        e.sealed[5] ^= 1;
        assert!(decode(&c, &id, false, e.raw_len, &e.sealed).is_err());
    }
}
