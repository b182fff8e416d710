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
    EncodedBlob {
        id,
        typ,
        raw_len: plain.len() as u32,
        compressed: is_compressed,
        sealed: crypto.seal(payload),
    }
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
    let payload = crypto.open(sealed, &what)?;
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
    fn plain_repo_detects_changed_bytes() {
        let c = Crypto::Plain;
        let d = b"0123456789".repeat(10);
        let id = c.blob_id(&d);
        let mut e = encode(&c, id, BlobType::Data, &d, Compression::Never);
        e.sealed[5] ^= 1;
        assert!(decode(&c, &id, false, e.raw_len, &e.sealed).is_err());
    }
}
