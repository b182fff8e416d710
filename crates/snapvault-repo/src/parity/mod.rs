//! Reed-Solomon parity against bit rot and lost files (format.md §15): a group of member
//! files is cut into 4 KiB shards, coded in bands of at most [`MAX_BAND_SHARDS`] shards,
//! and one parity file holds each band's recovery shards plus a header naming every
//! member, its BLAKE3 and one 8-byte hash per shard. The hashes locate damage, so the code
//! only fills erasures; a rebuilt member is accepted only when its BLAKE3 matches.
//!
//! This module is pure: members and the parity file are read through closures, so the
//! same code serves the repository's backends, tests and the fuzz target.

mod chunked;
mod encode;
mod engine;
#[cfg(target_arch = "x86_64")]
mod gfni;
pub mod guard;
mod header;
pub mod layout;
mod repair;
pub mod store;
pub mod stream;
mod streamer;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_placed;
#[cfg(test)]
mod tests_stream;
#[cfg(test)]
mod tests_versions;

pub use encode::{MemberSpec, band_rows, encode, recovery_count};
pub use engine::ParityEngine;
pub use header::{Band, Locator, Member, MemberKind, ParityHeader, parity_file_header};
pub use layout::{group_packs, level_width};
pub use repair::{GroupSource, MemberState, RepairReport, repair, repair_known};

/// Bytes per shard: one disk sector of the usual size, so one bad sector or one flipped
/// byte erases exactly one shard.
pub const SHARD: usize = 4096;
/// Data shards per band (one Reed-Solomon codeword): 16 MiB, the memory a band costs.
pub const MAX_BAND_SHARDS: usize = 4096;
/// Recovery shards per band: the codec's limit (a band never has more than its data shards).
pub const MAX_RECOVERY: usize = 32768;
/// Members per group (so every band has at least one row of each member).
pub const MAX_MEMBERS: usize = MAX_BAND_SHARDS;
/// Largest member (a pack is at most the config's 1 GiB pack size; an index file 256 MiB).
pub const MAX_MEMBER_SIZE: u64 = 1 << 30;
/// Largest header a reader accepts (8 bytes per shard: 8 GiB of members).
pub const MAX_HEADER: usize = 16 << 20;
/// Highest parity level, in percent.
pub const MAX_PERCENT: u8 = crate::format::config::MAX_PARITY;

/// The locator hash new parity files record for `shard` (zero-padded to [`SHARD`] bytes).
pub fn shard_hash(shard: &[u8]) -> [u8; 8] {
    Locator::CURRENT.shard_hash(shard)
}

/// Rows (shards) of a member of `size` bytes.
pub fn rows_of(size: u64) -> u64 {
    size.div_ceil(SHARD as u64)
}

/// Bands coded at once: one per core, at most this many (each holds a band of up to 16 MiB
/// and the codec's work buffer of up to twice that).
const MAX_BAND_THREADS: usize = 4;

/// `work(state, b)` for every band `b` in `0..n`, on up to one thread per core, each thread
/// with its own `state` from `init` (a reused encoder or decoder); results in band order.
/// Bands are independent codewords, so coding them side by side gives the same bytes; the
/// first error stops the other threads at their next band.
pub(crate) fn par_bands<S, T: Send>(
    n: usize,
    init: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, usize) -> crate::error::Result<T> + Sync,
) -> crate::error::Result<Vec<T>> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .clamp(1, MAX_BAND_THREADS)
        .min(n.max(1));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let out: Mutex<Vec<(usize, crate::error::Result<T>)>> = Mutex::new(Vec::with_capacity(n));
    let run = || {
        let mut state = init();
        while !failed.load(Relaxed) {
            let b = next.fetch_add(1, Relaxed);
            if b >= n {
                break;
            }
            let r = work(&mut state, b);
            if r.is_err() {
                failed.store(true, Relaxed);
            }
            out.lock().unwrap_or_else(|e| e.into_inner()).push((b, r));
        }
    };
    if threads == 1 {
        run();
    } else {
        std::thread::scope(|s| {
            for _ in 1..threads {
                s.spawn(run);
            }
            run();
        });
    }
    let mut out = out.into_inner().unwrap_or_else(|e| e.into_inner());
    out.sort_by_key(|(b, _)| *b);
    out.into_iter().map(|(_, r)| r).collect()
}
