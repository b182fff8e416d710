//! Verifying one pack read whole: its name, its header and every blob the index names in
//! it.
//!
//! In an encrypted repository an intact pack is proven without hashing it whole: when its
//! sealed header opens, the blobs it lists fill the bytes before it exactly, the index names
//! exactly those blobs, and every one of them opens and matches its id, then every byte of
//! the pack has been authenticated under the repository's key and the bytes are a pack this
//! repository wrote with these blobs at these places. The pack's BLAKE3 (its name) was
//! about a fifth of `check --read-data`'s CPU (issue 23.2); it is computed only when
//! something fails, on the pack read again (the blobs were opened in place), and then the
//! report is the one the full check gives (`full_check`). docs/design.md ("Checking a
//! pack's bytes") lists what each step catches.

use super::data::{Read, read_pack};
use crate::format::blob;
use crate::format::id::{BlobId, Id, PackId};
use crate::format::pack::{self, PackEntry};
use crate::repository::Repository;
use crate::repository::index::BlobLocation;

/// Problems found in one pack: (object, message, blobs hurt).
pub(super) type PackFindings = Vec<(String, String, Vec<BlobId>)>;

/// A pack's header as decoded from the whole pack, or why it could not be.
pub(super) type HeaderRead = std::result::Result<Vec<PackEntry>, String>;

/// Verify the pack `id` (`size` bytes on storage) held at `at..at + len` of `buf`: the
/// problems found and the header decoded. `buf` may be read into again.
pub(super) fn verify_pack(
    repo: &Repository,
    (id, size): (&PackId, u64),
    indexed: &[(BlobId, BlobLocation)],
    buf: &mut Vec<u8>,
    (at, len): (usize, usize),
) -> (PackFindings, HeaderRead) {
    let Some(bytes) = buf.get_mut(at..at + len) else {
        return (Vec::new(), Err("read out of its buffer".into()));
    };
    if !repo.crypto().is_encrypted() {
        return full_check(repo, id, indexed, bytes);
    }
    let object = format!("pack {}", id.to_hex());
    let header = match pack::parse_pack(repo.crypto(), bytes, &object) {
        Ok(h) if covers(&h, indexed) => h,
        // A damaged header, or an index that does not name exactly the header's blobs:
        // the full check, on the bytes as they are (nothing was opened in place yet).
        _ => return full_check(repo, id, indexed, bytes),
    };
    let bad = open_all(repo, indexed, bytes, true);
    if bad.is_empty() {
        return (Vec::new(), Ok(header));
    }
    // Damage: the bytes were opened in place, so the name is checked on a second read,
    // and what is reported is what the full check finds there.
    match read_pack(repo, id, size, buf) {
        Read::Bytes { at, len } => match buf.get_mut(at..at + len) {
            Some(bytes) => full_check(repo, id, indexed, bytes),
            None => (Vec::new(), Err("read out of its buffer".into())),
        },
        Read::Gone(msg) | Read::Unavailable(msg) => {
            let mut out = failed_blobs(&object, bad);
            out.push((
                object,
                format!("was not read again to compare it with its name: it {msg}"),
                Vec::new(),
            ));
            (out, Ok(header))
        }
    }
}

/// Does the index name exactly the blobs of the header, at the same places? Then opening
/// every indexed blob opens every byte before the header, each once: the header's blobs
/// fill that part of the pack one after the other (`pack::decode_header`).
fn covers(header: &[PackEntry], indexed: &[(BlobId, BlobLocation)]) -> bool {
    header.len() == indexed.len()
        && header
            .iter()
            .zip(indexed)
            .all(|(h, (id, l))| (h.id, h.offset, h.length) == (*id, l.offset, l.length))
}

/// The check of a pack as it always was: its BLAKE3 against its name, its header, every
/// blob the index names in it.
fn full_check(
    repo: &Repository,
    id: &PackId,
    indexed: &[(BlobId, BlobLocation)],
    bytes: &mut [u8],
) -> (PackFindings, HeaderRead) {
    let object = format!("pack {}", id.to_hex());
    let mut out = Vec::new();
    if Id::hash_of(bytes) != id.0 {
        out.push((
            object.clone(),
            "is damaged: its content does not match its name".to_string(),
            Vec::new(),
        ));
    }
    let header = pack::parse_pack(repo.crypto(), bytes, &object);
    if let Err(e) = &header {
        out.push((
            object.clone(),
            format!("header is damaged: {e}"),
            Vec::new(),
        ));
    }
    // Verify every blob the index points at (the index is what restore uses). When the
    // index's ranges do not overlap (always, unless it is damaged), every blob is opened in
    // place in the pack: no allocation or copy per blob.
    let disjoint = indexed
        .windows(2)
        .all(|w| w[0].1.offset as u64 + w[0].1.length as u64 <= w[1].1.offset as u64);
    let bad = open_all(repo, indexed, bytes, disjoint);
    out.extend(failed_blobs(&object, bad));
    (out, header.map_err(|e| e.to_string()))
}

/// Open and verify every blob `indexed` names in `bytes` (in place when `in_place`, which
/// the ranges must then allow: no two overlap); the blobs that fail.
fn open_all(
    repo: &Repository,
    indexed: &[(BlobId, BlobLocation)],
    bytes: &mut [u8],
    in_place: bool,
) -> Vec<BlobId> {
    let crypto = repo.crypto();
    let mut bad = Vec::new();
    for (bid, loc) in indexed {
        let start = loc.offset as usize;
        let end = start + loc.length as usize;
        let ok = match bytes.get_mut(start..end) {
            None => false,
            Some(sealed) if in_place => {
                blob::decode_in_place(crypto, bid, loc.compressed(), loc.raw_len, sealed).is_ok()
            }
            Some(sealed) => {
                blob::decode(crypto, bid, loc.compressed(), loc.raw_len, sealed).is_ok()
            }
        };
        if !ok {
            bad.push(*bid);
        }
    }
    bad
}

/// The finding for the blobs of a pack that fail verification (none when `bad` is empty).
fn failed_blobs(object: &str, bad: Vec<BlobId>) -> PackFindings {
    if bad.is_empty() {
        return Vec::new();
    }
    let list: Vec<String> = bad.iter().take(5).map(|b| b.short()).collect();
    vec![(
        object.to_string(),
        format!(
            "{} blob(s) fail verification ({}{})",
            bad.len(),
            list.join(", "),
            if bad.len() > 5 { ", …" } else { "" }
        ),
        bad,
    )]
}
