//! Blobs: the unit of deduplication. A data blob is one chunk of a file; a tree blob is one
//! directory listing. Each is (optionally) zstd-compressed, then sealed on its own so that a
//! single blob can be fetched with one range read and verified against its id.

use serde::{Deserialize, Serialize};

use crate::error::{RepoError, Result};
use crate::format::crypto::Crypto;
use crate::format::id::BlobId;

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

/// Extra bits of precision over Padmé used when padding sealed blobs ([`padded_len`]):
/// a 1 MiB blob is rounded up to a multiple of 8 KiB instead of Padmé's 32 KiB
/// (docs/security.md §5 has the trade: ≈ +0.3 % of space instead of ≈ +1.2 %).
pub const PAD_EXTRA_BITS: u32 = 2;

/// zstd contexts, kept per thread: creating a context costs as much as a 64 KiB trial.
struct ZstdContexts {
    trial: Option<zstd::bulk::Compressor<'static>>,
    full: Option<(i32, zstd::bulk::Compressor<'static>)>,
    decompressor: Option<zstd::bulk::Decompressor<'static>>,
    /// Output of the trial (at most [`SAMPLE`] bytes).
    scratch: Vec<u8>,
}

thread_local! {
    static ZSTD: std::cell::RefCell<ZstdContexts> = const {
        std::cell::RefCell::new(ZstdContexts {
            trial: None,
            full: None,
            decompressor: None,
            scratch: Vec::new(),
        })
    };
}

/// Does a fast trial on a sample suggest zstd will shrink `plain` by at least 3%?
fn looks_compressible(plain: &[u8]) -> bool {
    if plain.len() <= SAMPLE * 2 {
        return true;
    }
    let mid = plain.len() / 2;
    let sample = &plain[mid - SAMPLE / 2..mid + SAMPLE / 2];
    ZSTD.with(|z| {
        let Ok(mut z) = z.try_borrow_mut() else {
            return false;
        };
        let z = &mut *z;
        if z.trial.is_none() {
            z.trial = zstd::bulk::Compressor::new(1).ok();
        }
        let Some(ctx) = z.trial.as_mut() else {
            return false;
        };
        // An output that does not fit in 97 % of the sample fails: not worth it.
        let room = sample.len() * 97 / 100;
        z.scratch.clear();
        z.scratch.reserve_exact(room);
        matches!(ctx.compress_to_buffer(sample, &mut z.scratch), Ok(n) if n < room)
    })
}

/// zstd at `level` when the compression setting and a trial say so; `Some` only when
/// the frame is smaller than `plain`.
fn try_compress(plain: &[u8], compression: Compression) -> Option<Vec<u8>> {
    let Compression::Try(level) = compression else {
        return None;
    };
    if plain.len() < 64 || !looks_compressible(plain) {
        return None;
    }
    ZSTD.with(|z| {
        let mut z = z.try_borrow_mut().ok()?;
        if z.full.as_ref().is_none_or(|(l, _)| *l != level) {
            z.full = Some((level, zstd::bulk::Compressor::new(level).ok()?));
        }
        let (_, ctx) = z.full.as_mut()?;
        let mut out = Vec::with_capacity(plain.len());
        match ctx.compress_to_buffer(plain, &mut out) {
            Ok(n) if n < plain.len() => Some(out),
            _ => None,
        }
    })
}

fn decompress(frame: &[u8], raw_len: usize) -> std::io::Result<Vec<u8>> {
    ZSTD.with(|z| {
        let Ok(mut z) = z.try_borrow_mut() else {
            return zstd::bulk::decompress(frame, raw_len);
        };
        if z.decompressor.is_none() {
            z.decompressor = Some(zstd::bulk::Decompressor::new()?);
        }
        match z.decompressor.as_mut() {
            Some(d) => d.decompress(frame, raw_len),
            None => zstd::bulk::decompress(frame, raw_len),
        }
    })
}

/// The stored length of a blob whose payload (plaintext or zstd frame) is `payload_len`.
pub(crate) fn stored_len(crypto: &Crypto, payload_len: usize) -> usize {
    if crypto.is_encrypted() {
        padded_len(payload_len + crypto.overhead())
    } else {
        payload_len
    }
}

/// A plaintext in a buffer laid out for sealing in place: room for the nonce in front and
/// capacity for the padding and the tag behind, so [`encode_in_place`] neither allocates
/// nor copies a blob stored uncompressed.
pub struct PlainBuf {
    buf: Vec<u8>,
    head: usize,
}

impl PlainBuf {
    /// Copy `plain` into a new buffer.
    pub fn new(crypto: &Crypto, plain: &[u8]) -> PlainBuf {
        Self::new_in(crypto, plain, Vec::new())
    }

    /// Copy `plain` into `reuse`, keeping its allocation when it fits (and is not much more
    /// than twice the size needed, so a recycled large buffer does not pin memory). New
    /// buffers are rounded up to whole MiB so that they fit most later chunks too.
    pub fn new_in(crypto: &Crypto, plain: &[u8], mut reuse: Vec<u8>) -> PlainBuf {
        const ROUND: usize = 1 << 20;
        let head = crypto.headroom();
        let need = Self::len_for(crypto, plain.len());
        if reuse.capacity() < need || reuse.capacity() > need.saturating_mul(2) + ROUND {
            let cap = if need > ROUND / 16 {
                need.next_multiple_of(ROUND)
            } else {
                need
            };
            reuse = Vec::with_capacity(cap);
        }
        reuse.clear();
        reuse.resize(head, 0);
        reuse.extend_from_slice(plain);
        PlainBuf { buf: reuse, head }
    }

    /// The bytes a plaintext of `len` bytes fills in its buffer once sealed (headroom,
    /// padding and tag included): what the snapshot pipeline charges its byte budget.
    pub(crate) fn len_for(crypto: &Crypto, len: usize) -> usize {
        crypto.headroom().max(stored_len(crypto, len))
    }

    pub fn plain(&self) -> &[u8] {
        &self.buf[self.head..]
    }

    /// The allocation back, for reuse.
    pub(crate) fn into_vec(self) -> Vec<u8> {
        self.buf
    }
}

pub fn encode(
    crypto: &Crypto,
    id: BlobId,
    typ: BlobType,
    plain: &[u8],
    compression: Compression,
) -> EncodedBlob {
    let compressed = try_compress(plain, compression);
    let payload = compressed.as_deref().unwrap_or(plain);
    let mut buf = Vec::with_capacity(stored_len(crypto, payload.len()));
    buf.resize(crypto.headroom(), 0);
    buf.extend_from_slice(payload);
    seal_buffer(crypto, id, typ, buf, plain.len(), compressed.is_some())
}

/// [`encode`] on a plaintext already laid out for sealing: the same result, without an
/// allocation or copy when the blob is stored uncompressed.
pub fn encode_in_place(
    crypto: &Crypto,
    id: BlobId,
    typ: BlobType,
    plain: PlainBuf,
    compression: Compression,
) -> EncodedBlob {
    let raw_len = plain.plain().len();
    let compressed = try_compress(plain.plain(), compression);
    let mut buf = plain.buf;
    if let Some(c) = &compressed {
        buf.truncate(plain.head);
        buf.extend_from_slice(c);
    }
    seal_buffer(crypto, id, typ, buf, raw_len, compressed.is_some())
}

/// `buf` = headroom ‖ payload: pad (encrypted repositories) and seal in place.
fn seal_buffer(
    crypto: &Crypto,
    id: BlobId,
    typ: BlobType,
    mut buf: Vec<u8>,
    raw_len: usize,
    compressed: bool,
) -> EncodedBlob {
    if crypto.is_encrypted() {
        // Pad with zeros inside the seal so the stored length is a bucket of
        // `padded_len` (docs/security.md §5: chunk and file sizes are blurred).
        let head = crypto.headroom();
        let payload = buf.len() - head;
        let target = padded_len(payload + crypto.overhead()) - crypto.overhead();
        buf.resize(head + target, 0);
        crypto.seal_in_place(&mut buf);
    }
    EncodedBlob {
        id,
        typ,
        raw_len: raw_len as u32,
        compressed,
        sealed: buf,
    }
}

/// Padmé (Nikitin et al., PETS 2019): round `len` up so that only its top
/// ⌊log2 ⌊log2 len⌋⌋ + 1 bits vary; at most +12 % (tiny sizes), about +3 % at 1 MiB.
/// Blobs written before [`PAD_EXTRA_BITS`] existed have these lengths.
pub fn padme(len: usize) -> usize {
    padme_with(len, 0)
}

/// The stored length of a sealed blob of `len` bytes: Padmé with [`PAD_EXTRA_BITS`] more
/// bits of precision (the top ⌊log2 ⌊log2 len⌋⌋ + 3 bits vary): at most +2.4 % (tiny
/// blobs), at most +0.8 % from 64 KiB up (about +0.4 % on average).
pub fn padded_len(len: usize) -> usize {
    padme_with(len, PAD_EXTRA_BITS)
}

/// Padmé with `extra` more bits of precision (`extra = 0` is Padmé).
pub(crate) fn padme_with(len: usize, extra: u32) -> usize {
    if len < 4 {
        return len;
    }
    let e = usize::BITS - 1 - len.leading_zeros(); // ⌊log2 len⌋
    let s = u32::BITS - e.leading_zeros(); // ⌊log2 e⌋ + 1
    let mask = (1usize << e.saturating_sub(s + extra)) - 1;
    (len + mask) & !mask
}

/// Where the payload ends inside an opened blob, checking that only zero padding follows.
fn body_len(
    crypto: &Crypto,
    what: &str,
    compressed: bool,
    raw_len: u32,
    payload: &[u8],
) -> Result<usize> {
    // An encrypted blob may carry zero padding after its payload (see `encode`).
    let body_len = if compressed {
        zstd::zstd_safe::find_frame_compressed_size(payload)
            .map_err(|_| RepoError::corrupt(what, "zstd: no complete frame"))?
    } else {
        (raw_len as usize).min(payload.len())
    };
    if body_len != payload.len()
        && (!crypto.is_encrypted() || payload[body_len..].iter().any(|&b| b != 0))
    {
        return Err(RepoError::corrupt(
            what,
            "unexpected bytes after the payload",
        ));
    }
    Ok(body_len)
}

fn verify(crypto: &Crypto, id: &BlobId, raw_len: u32, plain: &[u8], what: &str) -> Result<()> {
    if plain.len() != raw_len as usize {
        return Err(RepoError::corrupt(
            what,
            format!("length {} instead of {raw_len}", plain.len()),
        ));
    }
    if crypto.blob_id(plain) != *id {
        return Err(RepoError::corrupt(what, "content does not match its id"));
    }
    Ok(())
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
    let body = body_len(crypto, &what, compressed, raw_len, &payload)?;
    let plain = if compressed {
        decompress(&payload[..body], raw_len as usize)
            .map_err(|e| RepoError::corrupt(&what, format!("zstd: {e}")))?
    } else {
        payload.truncate(body);
        payload
    };
    verify(crypto, id, raw_len, &plain, &what)?;
    Ok(plain)
}

/// [`decode`] in place: the blob is opened inside `sealed` and an uncompressed plaintext is
/// returned as a slice of it (no allocation, no copy). `sealed` is garbage afterwards.
pub fn decode_in_place<'a>(
    crypto: &Crypto,
    id: &BlobId,
    compressed: bool,
    raw_len: u32,
    sealed: &'a mut [u8],
) -> Result<std::borrow::Cow<'a, [u8]>> {
    use std::borrow::Cow;
    let what = format!("blob {}", id.to_hex());
    if raw_len as usize > MAX_BLOB_LEN {
        return Err(RepoError::corrupt(what, "length out of range"));
    }
    let payload: &'a [u8] = crypto.open_in_place(sealed, &what)?;
    let body = body_len(crypto, &what, compressed, raw_len, payload)?;
    let plain = if compressed {
        Cow::Owned(
            decompress(&payload[..body], raw_len as usize)
                .map_err(|e| RepoError::corrupt(&what, format!("zstd: {e}")))?,
        )
    } else {
        Cow::Borrowed(&payload[..body])
    };
    verify(crypto, id, raw_len, &plain, &what)?;
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::crypto::{MasterKey, SEAL_OVERHEAD};

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
    fn padded_len_buckets() {
        assert_eq!(padded_len(3), 3);
        assert_eq!(padded_len(1 << 20), 1 << 20);
        assert_eq!(
            padded_len((1 << 20) + 1),
            (1 << 20) + ((32 << 10) >> PAD_EXTRA_BITS)
        );
        for len in (1..9_000_000).step_by(997) {
            let p = padded_len(len);
            assert!(p >= len && p <= padme(len), "{len} -> {p}");
            assert!((p - len) * 8 <= len + 8, "{len} -> {p}");
            if len >= 64 << 10 {
                // At most 1/2^(5 + extra bits): 1/128 = 0.8 % with two extra bits.
                assert!((p - len) << (5 + PAD_EXTRA_BITS) <= len, "{len} -> {p}");
            }
            assert_eq!(padded_len(p), p, "{len}: buckets are fixed points");
        }
    }

    #[test]
    fn in_place_matches_copying() {
        let text = b"photo ".repeat(50_000);
        let mut noise = vec![0u8; 1_000_003];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut noise);
        for c in [Crypto::Keyed(MasterKey::generate()), Crypto::Plain] {
            for (data, comp) in [(&text[..], true), (&noise[..], false), (&b""[..], false)] {
                let id = c.blob_id(data);
                let a = encode(&c, id, BlobType::Data, data, Compression::Try(3));
                // A recycled buffer of another size is fine too.
                let p = PlainBuf::new_in(&c, data, vec![7u8; 1_500_000]);
                assert_eq!(p.plain(), data);
                let b = encode_in_place(&c, id, BlobType::Data, p, Compression::Try(3));
                assert_eq!((a.compressed, a.raw_len), (comp, data.len() as u32));
                assert_eq!((b.compressed, b.raw_len), (comp, data.len() as u32));
                assert_eq!(a.sealed.len(), b.sealed.len());
                for e in [&a, &b] {
                    assert_eq!(decode(&c, &id, comp, e.raw_len, &e.sealed).unwrap(), data);
                    let mut s = e.sealed.clone();
                    let got = decode_in_place(&c, &id, comp, e.raw_len, &mut s).unwrap();
                    assert_eq!(&got[..], data);
                    let mut bad = e.sealed.clone();
                    if let Some(x) = bad.get_mut(e.sealed.len() / 2) {
                        *x ^= 1;
                        assert!(decode_in_place(&c, &id, comp, e.raw_len, &mut bad).is_err());
                    }
                }
                if c.is_encrypted() {
                    assert_eq!(padded_len(b.sealed.len()), b.sealed.len());
                } else {
                    assert_eq!(&b.sealed[..], if comp { &a.sealed[..] } else { data });
                }
            }
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
            assert_eq!(padded_len(e.sealed.len()), e.sealed.len());
            assert_eq!(decode(&c, &id, comp, e.raw_len, &e.sealed).unwrap(), data);
            // Non-zero padding, or padding in a blob sealed without any, is refused.
            let mut payload = c.open(&e.sealed, "x").unwrap();
            payload.push(1);
            let bad = c.seal(&payload);
            assert!(decode(&c, &id, comp, e.raw_len, &bad).is_err());
            let body = if comp {
                zstd::bulk::compress(data, 3).unwrap()
            } else {
                data.to_vec()
            };
            // Blobs written with Padmé buckets (before PAD_EXTRA_BITS) still read.
            let mut old = body.clone();
            old.resize(padme(old.len() + SEAL_OVERHEAD) - SEAL_OVERHEAD, 0);
            assert_eq!(
                decode(&c, &id, comp, e.raw_len, &c.seal(&old)).unwrap(),
                data
            );
            // Blobs written before padding existed still read.
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
