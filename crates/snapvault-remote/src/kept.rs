//! Small packs this process wrote, kept in memory for its own reads.
//!
//! A snapshot reads its new tree pack straight back: the vanished-photos summary and the
//! catalog walk the trees it just wrote. On S3 every one of those range reads was a request
//! (4 of a 1 GiB snapshot's 21 fixed ones, and most of a small daily snapshot's). The bytes
//! are the ones the server accepted (kept only once the write returned), sealed, and
//! verified by the reader as any read is; a pack removed by this process is forgotten.
//! Bounded: packs up to [`KEEP_MAX`], [`KEEP_TOTAL`] in all; data packs are larger and
//! never kept, except the short last pack of a small snapshot.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use snapvault_repo::RepoError;

/// The largest pack kept.
pub(crate) const KEEP_MAX: usize = 4 << 20;
/// Bytes kept at most; packs written past it are not kept.
pub(crate) const KEEP_TOTAL: usize = 16 << 20;

/// The kept packs by name, and their bytes in all.
type Packs = (HashMap<String, Arc<[u8]>>, usize);

#[derive(Default)]
pub(crate) struct Kept {
    packs: Mutex<Packs>,
}

impl Kept {
    /// Keep a copy of pack `name`, just written with `data`, if it is small and there is room.
    pub(crate) fn keep(&self, name: &str, data: &[u8]) {
        if data.len() > KEEP_MAX {
            return;
        }
        let mut g = self.packs.lock().unwrap_or_else(PoisonError::into_inner);
        let (packs, total) = &mut *g;
        if *total + data.len() <= KEEP_TOTAL && !packs.contains_key(name) {
            packs.insert(name.to_string(), Arc::from(data));
            *total += data.len();
        }
    }

    /// `len` bytes at `offset` of pack `name` into `buf`, if it is kept (None: ask the
    /// server). A range past its end is the same error a server's short answer gives.
    pub(crate) fn read_into(
        &self,
        name: &str,
        offset: u64,
        len: usize,
        buf: &mut Vec<u8>,
    ) -> Option<Result<(), RepoError>> {
        let pack = {
            let g = self.packs.lock().unwrap_or_else(PoisonError::into_inner);
            g.0.get(name)?.clone()
        };
        let range = usize::try_from(offset)
            .ok()
            .and_then(|o| pack.get(o..o.checked_add(len)?));
        Some(match range {
            Some(bytes) => {
                buf.clear();
                buf.extend_from_slice(bytes);
                Ok(())
            }
            None => Err(RepoError::corrupt(
                format!("pack {name}"),
                format!("file ends before byte {}", offset + len as u64),
            )),
        })
    }

    pub(crate) fn forget(&self, name: &str) {
        let mut g = self.packs.lock().unwrap_or_else(PoisonError::into_inner);
        let (packs, total) = &mut *g;
        if let Some(p) = packs.remove(name) {
            *total -= p.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_packs_are_kept_within_the_budget_and_forgotten_when_removed() {
        let k = Kept::default();
        let mut buf = Vec::new();
        k.keep("a", b"0123456789");
        assert!(k.read_into("a", 2, 3, &mut buf).unwrap().is_ok());
        assert_eq!(buf, b"234");
        assert!(k.read_into("a", 8, 3, &mut buf).unwrap().is_err());
        assert!(k.read_into("b", 0, 1, &mut buf).is_none());
        k.keep("big", &vec![0u8; KEEP_MAX + 1]);
        assert!(k.read_into("big", 0, 1, &mut buf).is_none());
        for i in 0..KEEP_TOTAL / KEEP_MAX {
            k.keep(&format!("p{i}"), &vec![1u8; KEEP_MAX]);
        }
        // The last one did not fit beside "a".
        let last = format!("p{}", KEEP_TOTAL / KEEP_MAX - 1);
        assert!(k.read_into(&last, 0, 1, &mut buf).is_none());
        k.forget("p0");
        k.keep(&last, &vec![1u8; KEEP_MAX]);
        assert!(k.read_into(&last, 0, 1, &mut buf).is_some());
        assert!(k.read_into("p0", 0, 1, &mut buf).is_none());
    }
}
