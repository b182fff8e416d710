//! Before the key is there: the packs listed and the first of them hinted to the disk, while
//! the password's key is derived (`repository::pending`). Reading a pack needs no key,
//! verifying it does; on a cold cache the disk was idle for the whole derivation. Every
//! pack is read by a full `check --read-data`, so what is hinted is read from the page
//! cache later (`storage::direct_read` takes the cached path for a pack mostly cached).
//! Bounded by [`WARM_BYTES`], and no hint once the key is ready, so a wrong password
//! costs at most that much reading.

use crate::storage::{Backend, FileKind};

/// Pack bytes hinted at most: about what a fast SSD reads in the 0.1 s of a default
/// derivation.
pub const WARM_BYTES: u64 = 128 << 20;

/// List the packs (the later listing is then served from the kernel's cache) and hint the
/// first ones in listing order until [`WARM_BYTES`] or `stop`. Only on storage that reads
/// ahead on its own (a local disk); returns the bytes hinted.
pub fn warm_up(backend: &dyn Backend, stop: &dyn Fn() -> bool) -> u64 {
    if backend.read_ahead() != 0 || stop() {
        return 0;
    }
    let Ok(packs) = backend.list(FileKind::Pack) else {
        return 0;
    };
    let mut hinted = 0;
    for p in packs {
        if hinted >= WARM_BYTES || stop() {
            break;
        }
        let len = p.size.min(WARM_BYTES - hinted);
        backend.prefetch(FileKind::Pack, &p.name, 0, len);
        hinted += len;
    }
    hinted
}
