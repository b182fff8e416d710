//! One file's content back onto the disk: read its blobs with as few range reads as
//! possible, verify each against its id, write under a temporary name in the same folder,
//! sync it (or leave that to a batch: see [`super::batch`]), set mode and times on the open
//! file, and rename into place.

use std::io;

use crate::error::{IoContext, RepoError, Result};
use crate::format::blob;
use crate::format::id::BlobId;
use crate::format::tree::Node;
use crate::repository::Repository;
use crate::repository::chunker::Chunker;
use crate::repository::index::{BlobLocation, Index};
use crate::storage::FileKind;
use crate::storage::direct_io::DirectWriter;

use super::dirs::{self, Dir, Entry};
use super::problem::Problem;

/// Largest single range read while restoring.
const MAX_READ: u64 = 32 << 20;

pub enum Outcome {
    Written(u64),
    AlreadyRight,
    Refused(Problem),
}

/// The end (exclusive) of the run of blobs starting at `locs[i]` that one range read can
/// fetch: neighbours in the same pack, at most [`MAX_READ`] bytes in all.
fn run_end(locs: &[BlobLocation], i: usize) -> usize {
    let first = locs[i];
    let mut end = first.offset as u64 + first.length as u64;
    let mut j = i + 1;
    while j < locs.len()
        && locs[j].pack == first.pack
        && locs[j].offset as u64 == end
        && end - first.offset as u64 + locs[j].length as u64 <= MAX_READ
    {
        end += locs[j].length as u64;
        j += 1;
    }
    j
}

/// The range reads of a file (see [`run_end`]) that start within its first `budget` bytes
/// ([`FIRST_READS`]: the first ones), as (pack, offset, length), added to `out`.
pub fn reads_of(index: &Index, node: &Node, budget: u64, out: &mut Vec<(String, u64, u64)>) {
    let locs: Vec<BlobLocation> = node
        .content
        .iter()
        .map_while(|id| index.get(id).copied())
        .collect();
    reads_of_locs(index, &locs, budget, out);
}

/// What is announced of a file one round of threads ahead on a local disk.
pub const FIRST_READS: u64 = MAX_READ;

/// The range reads of the blobs at `locs` that start within the first `budget` bytes, as
/// (pack, offset, length), added to `out`.
pub fn reads_of_locs(
    index: &Index,
    locs: &[BlobLocation],
    mut budget: u64,
    out: &mut Vec<(String, u64, u64)>,
) {
    let mut i = 0;
    while i < locs.len() && budget > 0 {
        let j = run_end(locs, i);
        let (first, last) = (locs[i], locs[j - 1]);
        let (start, end) = (first.offset as u64, last.offset as u64 + last.length as u64);
        out.push((index.pack_of(&first).to_hex(), start, end - start));
        budget = budget.saturating_sub(end - start);
        i = j;
    }
}

/// Errors that will hit every file alike: stop the restore instead of listing them all.
pub(crate) fn disk_trouble(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull
            | io::ErrorKind::ReadOnlyFilesystem
            | io::ErrorKind::QuotaExceeded
    )
}

/// What [`already_right`] found at a file's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// Not this content (or not a regular file).
    Different,
    /// This content, now with the node's mode and time.
    Right,
    /// This content, but the file has other names (hard links) and its mode or time
    /// differ from the node's: its inode is shared with names restore may not change
    /// (perhaps outside the target), so it is left as it is and the name gets a new file.
    Shared,
}

/// Does the regular file `name` in `dir` already hold exactly these chunks? Then give it
/// the node's mode and time (through the descriptor just checked) — unless another name
/// shares its inode: changing it there would change that name too ([`Found::Shared`]).
pub(crate) fn already_right(
    chunker: &Chunker,
    repo: &Repository,
    node: &Node,
    dir: &Dir,
    name: &[u8],
) -> io::Result<Found> {
    use std::os::unix::fs::MetadataExt;
    let f = dir.open_file(name)?;
    let md = f.metadata()?;
    if !md.is_file() || md.len() != node.size {
        return Ok(Found::Different);
    }
    let mut stream = chunker.stream(&f, Vec::new());
    let mut i = 0;
    while let Some(c) = stream.next_chunk()? {
        if node.content.get(i) != Some(&repo.crypto().blob_id(c)) {
            return Ok(Found::Different);
        }
        i += 1;
    }
    if i != node.content.len() {
        return Ok(Found::Different);
    }
    let mtime = md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128;
    let meta_right = md.mode() & 0o7777 == node.mode & 0o7777 && mtime == node.mtime as i128;
    if meta_right {
        return Ok(Found::Right);
    }
    if md.nlink() > 1 {
        return Ok(Found::Shared);
    }
    dirs::set_meta(&f, node.mode, node.mtime);
    Ok(Found::Right)
}

/// Restore `node` as `name` in `dir` (`shown` names it in messages) through the temporary
/// name `tmp` ([`super::temp`]), synced and renamed into place before this returns.
#[allow(clippy::too_many_arguments)]
pub fn restore(
    repo: &Repository,
    index: &Index,
    chunker: &Chunker,
    dir: &Dir,
    name: &[u8],
    tmp: Vec<u8>,
    shown: &str,
    node: &Node,
    overwrite: bool,
    buf: &mut Vec<u8>,
) -> Result<Outcome> {
    let staged = stage(
        repo, index, chunker, dir, name, tmp, shown, node, overwrite, buf, true,
    )?;
    match staged {
        Staged::Done(outcome) => Ok(outcome),
        Staged::Temp { tmp, bytes } => {
            rename_into_place(dir, &tmp, name, shown).map(|()| Outcome::Written(bytes))
        }
    }
}

/// Rename the durable temporary file `tmp` to `name`; if that fails, remove it.
pub fn rename_into_place(dir: &Dir, tmp: &[u8], name: &[u8], shown: &str) -> Result<()> {
    dir.rename(tmp, name).or_else(|e| {
        let _ = dir.remove_file(tmp);
        Err(e).ctx(|| format!("renaming into {shown}"))
    })
}

/// What [`stage`] left.
pub enum Staged {
    /// Nothing written: the file is already right, or it is refused.
    Done(Outcome),
    /// The whole content, verified, with its mode and times, under the temporary name
    /// `tmp` beside the target (closed); renaming it into place is the caller's.
    Temp { tmp: Vec<u8>, bytes: u64 },
}

/// Write `node`'s content under the temporary name `tmp` in `dir`, synced first if `sync`
/// (else the caller makes it durable before renaming: see [`super::batch`]). On failure
/// the temporary file is removed.
#[allow(clippy::too_many_arguments)]
pub fn stage(
    repo: &Repository,
    index: &Index,
    chunker: &Chunker,
    dir: &Dir,
    name: &[u8],
    tmp: Vec<u8>,
    shown: &str,
    node: &Node,
    overwrite: bool,
    buf: &mut Vec<u8>,
    sync: bool,
) -> Result<Staged> {
    let (tmp, f, locs) =
        match prepare(repo, index, chunker, dir, name, tmp, shown, node, overwrite)? {
            Prepared::Done(outcome) => return Ok(Staged::Done(outcome)),
            Prepared::Write { tmp, file, locs } => (tmp, file, locs),
        };
    let mut w = DirectWriter::new(f, node.size);
    let result = write_blobs(
        repo,
        index,
        &node.content,
        &locs,
        0..u64::MAX,
        &mut w,
        shown,
        buf,
    )
    .and_then(|()| {
        let finished = if sync {
            w.finish()
        } else {
            w.finish_unsynced()
        };
        finished.ctx(|| format!("syncing {shown}"))
    });
    match result {
        Ok((f, bytes)) => {
            dirs::set_meta(&f, node.mode, node.mtime);
            Ok(Staged::Temp { tmp, bytes })
        }
        Err(e) => {
            let _ = dir.remove_file(&tmp);
            Err(e)
        }
    }
}

/// What [`prepare`] decided.
pub enum Prepared {
    /// Nothing to write: the file is already right, or it is refused.
    Done(Outcome),
    /// Write the blobs at `locs` into `file`, the new temporary file `tmp` beside the
    /// target; then rename it into place (or remove it on failure).
    Write {
        tmp: Vec<u8>,
        file: std::fs::File,
        locs: Vec<BlobLocation>,
    },
}

/// Everything before a file's bytes are written: what is in the way, every blob resolved
/// (so a missing blob leaves no partial file), the size checked, the temporary file `tmp`
/// made (a leftover of that name removed first).
#[allow(clippy::too_many_arguments)]
pub fn prepare(
    repo: &Repository,
    index: &Index,
    chunker: &Chunker,
    dir: &Dir,
    name: &[u8],
    tmp: Vec<u8>,
    shown: &str,
    node: &Node,
    overwrite: bool,
) -> Result<Prepared> {
    let there = dir.entry(name).ctx(|| format!("checking {shown}"))?;
    let refused = |why| Ok(Prepared::Done(Outcome::Refused(why)));
    match there {
        Entry::Missing => {}
        Entry::Dir => return refused(Problem::FolderInTheWay { file: true }),
        Entry::File { .. } => match already_right(chunker, repo, node, dir, name) {
            Ok(Found::Right) => return Ok(Prepared::Done(Outcome::AlreadyRight)),
            // The same bytes under a new inode: nothing is lost, the other names keep theirs.
            Ok(Found::Shared) => {}
            _ if !overwrite => return refused(Problem::DifferentFile),
            _ => {}
        },
        Entry::Symlink if !overwrite => return refused(Problem::SymlinkInTheWay),
        _ if !overwrite => return refused(Problem::DifferentFile),
        _ => {}
    }
    let locs = locations(index, node)?;
    // A snapshot writes a file's size from the bytes it stored: a difference is damage or
    // a crafted tree, and the file would not come back as the snapshot describes it.
    let stored: u64 = locs.iter().map(|l| l.raw_len as u64).sum();
    if stored != node.size {
        return refused(Problem::SizeMismatch {
            said: node.size,
            stored,
        });
    }
    // Usually nothing is there: a leftover of an interrupted restore is removed only when
    // found in the way (one call per file fewer).
    let file = match dir.create_new(&tmp) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            dir.remove_if_there(&tmp)
                .ctx(|| format!("removing a leftover temporary file beside {shown}"))?;
            dir.create_new(&tmp)
        }
        other => other,
    }
    .ctx(|| format!("creating a temporary file beside {shown}"))?;
    Ok(Prepared::Write { tmp, file, locs })
}

/// Where each blob of `node` is stored, in order; a blob the index lacks is an error.
pub fn locations(index: &Index, node: &Node) -> Result<Vec<BlobLocation>> {
    node.content
        .iter()
        .map(|id| {
            index
                .get(id)
                .copied()
                .ok_or_else(|| RepoError::MissingBlob(id.to_hex()))
        })
        .collect()
}

/// Write the bytes `range` (counted from the start of `ids[0]`) of the blobs `ids`, stored
/// at `locs`, through `w`: each blob read (neighbours with one range read), verified against
/// its id, and cut to the range. A blob that straddles the range's edge is read and
/// verified whole.
#[allow(clippy::too_many_arguments)]
pub fn write_blobs(
    repo: &Repository,
    index: &Index,
    ids: &[BlobId],
    locs: &[BlobLocation],
    range: std::ops::Range<u64>,
    w: &mut DirectWriter,
    shown: &str,
    buf: &mut Vec<u8>,
) -> Result<()> {
    // Where the blob being written starts, counted like `range`.
    let mut at = 0u64;
    let mut i = 0;
    while i < locs.len() {
        // One read for the neighbouring blobs of the same pack.
        let j = run_end(locs, i);
        let (first, last) = (locs[i], locs[j - 1]);
        let end = last.offset as u64 + last.length as u64;
        let pack = index.pack_of(&first);
        repo.backend().read_range_into(
            FileKind::Pack,
            &pack.to_hex(),
            first.offset as u64,
            (end - first.offset as u64) as usize,
            buf,
        )?;
        let data = &mut *buf;
        for (id, loc) in ids[i..j].iter().zip(&locs[i..j]) {
            let s = (loc.offset - first.offset) as usize;
            // Opened in place in the range just read: no allocation or copy per blob.
            let Some(sealed) = data.get_mut(s..s + loc.length as usize) else {
                return Err(RepoError::corrupt(
                    format!("blob {}", id.to_hex()),
                    "outside the range read",
                ));
            };
            let plain = match blob::decode_in_place(
                repo.crypto(),
                id,
                loc.compressed(),
                loc.raw_len,
                sealed,
            ) {
                Ok(p) => p,
                // This copy is damaged: another copy (healed by a later snapshot) may be good.
                Err(e) if index.locations(id).len() > 1 => {
                    std::borrow::Cow::Owned(repo.read_blob(index, id).map_err(|_| e)?)
                }
                Err(e) => return Err(e),
            };
            let len = plain.len() as u64;
            let lo = range.start.saturating_sub(at).min(len) as usize;
            let hi = range.end.saturating_sub(at).min(len) as usize;
            // Runs of zero blocks become holes: a sparse file comes back sparse.
            if let Some(part) = plain.get(lo..hi) {
                w.write_sparse(part).ctx(|| format!("writing {shown}"))?;
            }
            at += len;
        }
        i = j;
    }
    Ok(())
}
