//! Restore: trees back into files, every blob verified against its id on the way.
//!
//! Files are restored in parallel; each file's blobs are fetched with as few range reads as
//! possible (neighbouring blobs of one pack in one read). A file is written to a temporary
//! name beside its target and renamed into place when complete, so an interrupted restore
//! never leaves a half-written file under the real name, and a re-run skips files that are
//! already right (same content by chunk ids). An existing file with other content is left
//! alone unless `overwrite` is set.

use std::ffi::{CString, OsStr};
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use globset::GlobSet;

use crate::backend::FileKind;
use crate::blob;
use crate::chunker::Chunker;
use crate::direct_io::DirectWriter;
use crate::error::{IoContext, RepoError, Result};
use crate::id::BlobId;
use crate::index::{BlobLocation, Index};
use crate::repository::Repository;
use crate::tree::{Node, NodeKind};

/// Largest single range read while restoring.
const MAX_READ: u64 = 32 << 20;

pub struct RestoreOptions {
    pub target: PathBuf,
    /// Only entries whose path (or an ancestor's path) matches are restored.
    pub include: Option<GlobSet>,
    pub overwrite: bool,
    pub dry_run: bool,
    pub threads: usize,
}

/// One file or symlink to restore, with its path relative to the target.
#[derive(Clone, Debug)]
pub struct RestoreItem {
    pub path: Vec<u8>,
    pub node: Node,
}

pub trait RestoreObserver: Sync {
    fn file_restored(&self, _path: &[u8], _bytes: u64) {}
}
impl RestoreObserver for crate::archiver::NoHooks {}

#[derive(Debug, Default)]
pub struct RestoreStats {
    pub files_restored: u64,
    pub files_already_right: u64,
    pub symlinks: u64,
    pub dirs: u64,
    pub bytes_written: u64,
    /// (path, problem): files not restored.
    pub problems: Vec<(String, String)>,
}

fn matches(include: &Option<GlobSet>, path: &[u8]) -> bool {
    let Some(g) = include else { return true };
    let mut prefix_end = path.len();
    loop {
        let p = Path::new(OsStr::from_bytes(&path[..prefix_end]));
        if g.is_match(p) {
            return true;
        }
        match path[..prefix_end].iter().rposition(|&b| b == b'/') {
            Some(i) => prefix_end = i,
            None => return false,
        }
    }
}

/// Collect files, symlinks and directories of a tree (depth first).
pub fn collect(
    repo: &Repository,
    index: &Index,
    tree: &BlobId,
    include: &Option<GlobSet>,
) -> Result<(Vec<RestoreItem>, Vec<RestoreItem>)> {
    let mut items = Vec::new();
    let mut dirs = Vec::new();
    walk(repo, index, tree, b"", include, &mut items, &mut dirs)?;
    Ok((items, dirs))
}

fn walk(
    repo: &Repository,
    index: &Index,
    tree: &BlobId,
    prefix: &[u8],
    include: &Option<GlobSet>,
    items: &mut Vec<RestoreItem>,
    dirs: &mut Vec<RestoreItem>,
) -> Result<()> {
    let t = repo.load_tree(index, tree)?;
    for n in t.nodes {
        let mut path = prefix.to_vec();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(&n.name.0);
        match (n.kind, n.subtree) {
            (NodeKind::Dir, Some(sub)) => {
                let before = items.len();
                walk(repo, index, &sub, &path, include, items, dirs)?;
                if items.len() > before || matches(include, &path) {
                    dirs.push(RestoreItem { path, node: n });
                }
            }
            _ => {
                if matches(include, &path) {
                    items.push(RestoreItem { path, node: n });
                }
            }
        }
    }
    Ok(())
}

pub fn restore(
    repo: &Repository,
    index: &Index,
    items: &[RestoreItem],
    dirs: &[RestoreItem],
    opts: &RestoreOptions,
    observer: &dyn RestoreObserver,
) -> Result<RestoreStats> {
    if let Ok(md) = fs::symlink_metadata(&opts.target)
        && !md.is_dir()
    {
        return Err(RepoError::Invalid(format!(
            "restore target {} exists and is not a folder",
            opts.target.display()
        )));
    }
    let mut stats = RestoreStats::default();
    if opts.dry_run {
        return Ok(stats);
    }
    fs::create_dir_all(&opts.target).ctx(|| format!("creating {}", opts.target.display()))?;
    // Create every folder first (parents of items too), owner-writable until the end.
    for it in items.iter().chain(dirs) {
        let p = target_path(&opts.target, &it.path);
        let d = if it.node.kind == NodeKind::Dir {
            p.as_path()
        } else {
            p.parent().unwrap_or(&opts.target)
        };
        fs::create_dir_all(d).ctx(|| format!("creating {}", d.display()))?;
    }
    let chunker = Chunker::new(&repo.config().chunker, repo.crypto());
    let next = AtomicUsize::new(0);
    let restored = AtomicU64::new(0);
    let right = AtomicU64::new(0);
    let bytes = AtomicU64::new(0);
    let problems = Mutex::new(Vec::new());
    let fatal: Mutex<Option<RepoError>> = Mutex::new(None);
    let files: Vec<&RestoreItem> = items
        .iter()
        .filter(|i| i.node.kind == NodeKind::File)
        .collect();
    std::thread::scope(|s| {
        for _ in 0..opts.threads.max(1) {
            s.spawn(|| {
                // This thread's read buffer, reused for every range it reads.
                let mut buf = Vec::new();
                loop {
                    let i = next.fetch_add(1, Relaxed);
                    let Some(item) = files.get(i) else { break };
                    // The file about one round ahead: its packs come off the disk while
                    // this one is decrypted and written.
                    if let Some(later) = files.get(i + opts.threads.max(1)) {
                        prefetch_file(repo, index, &later.node);
                    }
                    let path = target_path(&opts.target, &item.path);
                    match restore_file(repo, index, &chunker, item, &path, opts.overwrite, &mut buf)
                    {
                        Ok(Outcome::Written(n)) => {
                            restored.fetch_add(1, Relaxed);
                            bytes.fetch_add(n, Relaxed);
                            observer.file_restored(&item.path, n);
                        }
                        Ok(Outcome::AlreadyRight) => {
                            right.fetch_add(1, Relaxed);
                            observer.file_restored(&item.path, 0);
                        }
                        Ok(Outcome::Refused(why)) => {
                            if let Ok(mut p) = problems.lock() {
                                p.push((String::from_utf8_lossy(&item.path).into_owned(), why));
                            }
                        }
                        Err(RepoError::Io { context, source }) if disk_trouble(&source) => {
                            // The target disk is full or read-only: stop, don't spray errors.
                            let e = RepoError::Io { context, source };
                            if let Ok(mut f) = fatal.lock() {
                                f.get_or_insert(e);
                            }
                            next.store(usize::MAX / 2, Relaxed);
                        }
                        Err(e) => {
                            if let Ok(mut p) = problems.lock() {
                                p.push((
                                    String::from_utf8_lossy(&item.path).into_owned(),
                                    e.to_string(),
                                ));
                            }
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = fatal.into_inner().ok().flatten() {
        return Err(e);
    }
    for it in items.iter().filter(|i| i.node.kind == NodeKind::Symlink) {
        let p = target_path(&opts.target, &it.path);
        let target = it.node.target.clone().unwrap_or_default();
        match fs::symlink_metadata(&p) {
            Ok(md) if md.file_type().is_symlink() => {
                if fs::read_link(&p).ok().as_deref()
                    == Some(Path::new(OsStr::from_bytes(&target.0)))
                {
                    stats.symlinks += 1;
                    continue;
                }
                if !opts.overwrite {
                    stats.problems.push((
                        it.node.name.lossy(),
                        "a different symlink exists; use --overwrite".into(),
                    ));
                    continue;
                }
                fs::remove_file(&p).ctx(|| format!("removing {}", p.display()))?;
            }
            Ok(_) => {
                if !opts.overwrite {
                    stats.problems.push((
                        String::from_utf8_lossy(&it.path).into_owned(),
                        "something else exists at this path; use --overwrite".into(),
                    ));
                    continue;
                }
                fs::remove_file(&p).ctx(|| format!("removing {}", p.display()))?;
            }
            Err(_) => {}
        }
        std::os::unix::fs::symlink(OsStr::from_bytes(&target.0), &p)
            .ctx(|| format!("creating symlink {}", p.display()))?;
        set_times(&p, &it.node, true);
        stats.symlinks += 1;
    }
    // Folders last, deepest first, so creating their contents doesn't change their times.
    for d in dirs.iter().rev() {
        let p = target_path(&opts.target, &d.path);
        let _ = fs::set_permissions(&p, fs::Permissions::from_mode(d.node.mode & 0o7777));
        set_times(&p, &d.node, false);
        stats.dirs += 1;
    }
    stats.files_restored = restored.into_inner();
    stats.files_already_right = right.into_inner();
    stats.bytes_written = bytes.into_inner();
    stats
        .problems
        .extend(problems.into_inner().unwrap_or_default());
    Ok(stats)
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

/// Ask the backend to start fetching the first range reads of a file (see [`run_end`]).
fn prefetch_file(repo: &Repository, index: &Index, node: &Node) {
    let locs: Vec<BlobLocation> = node
        .content
        .iter()
        .map_while(|id| index.get(id).copied())
        .collect();
    let mut budget = MAX_READ;
    let mut i = 0;
    while i < locs.len() && budget > 0 {
        let j = run_end(&locs, i);
        let (first, last) = (locs[i], locs[j - 1]);
        let (start, end) = (first.offset as u64, last.offset as u64 + last.length as u64);
        repo.backend().prefetch(
            FileKind::Pack,
            &index.pack_of(&first).to_hex(),
            start,
            end - start,
        );
        budget = budget.saturating_sub(end - start);
        i = j;
    }
}

/// Errors that will hit every file alike: stop the restore instead of listing them all.
fn disk_trouble(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull
            | io::ErrorKind::ReadOnlyFilesystem
            | io::ErrorKind::QuotaExceeded
    )
}

pub fn target_path(target: &Path, rel: &[u8]) -> PathBuf {
    target.join(OsStr::from_bytes(rel))
}

enum Outcome {
    Written(u64),
    AlreadyRight,
    Refused(String),
}

/// Does the file at `path` already hold exactly these chunks?
fn already_right(
    chunker: &Chunker,
    repo: &Repository,
    node: &Node,
    path: &Path,
) -> io::Result<bool> {
    let md = fs::metadata(path)?;
    if !md.is_file() || md.len() != node.size {
        return Ok(false);
    }
    let f = fs::File::open(path)?;
    let mut stream = chunker.stream(f, Vec::new());
    let mut i = 0;
    while let Some(c) = stream.next_chunk()? {
        if node.content.get(i) != Some(&repo.crypto().blob_id(c)) {
            return Ok(false);
        }
        i += 1;
    }
    Ok(i == node.content.len())
}

fn restore_file(
    repo: &Repository,
    index: &Index,
    chunker: &Chunker,
    item: &RestoreItem,
    path: &Path,
    overwrite: bool,
    buf: &mut Vec<u8>,
) -> Result<Outcome> {
    let node = &item.node;
    if fs::symlink_metadata(path).is_ok() {
        if already_right(chunker, repo, node, path).unwrap_or(false) {
            set_meta(path, node);
            return Ok(Outcome::AlreadyRight);
        }
        if !overwrite {
            return Ok(Outcome::Refused(
                "a different file exists at this path; left untouched (use --overwrite to replace it)".into(),
            ));
        }
    }
    // Resolve every blob before writing anything, so a missing blob leaves no partial file.
    let mut locs = Vec::with_capacity(node.content.len());
    for id in &node.content {
        let loc = index
            .get(id)
            .ok_or_else(|| RepoError::MissingBlob(id.to_hex()))?;
        locs.push(*loc);
    }
    let name = path
        .file_name()
        .map(|n| n.as_bytes().to_vec())
        .unwrap_or_default();
    // A short, stable temporary name (any legal file name still fits beside it), so a
    // re-run reuses the leftover of an interrupted one.
    let tmp_name =
        format!(".snapvault-restore-{}", &blake3::hash(&name).to_hex()[..16]).into_bytes();
    let tmp = path.with_file_name(OsStr::from_bytes(&tmp_name));
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .ctx(|| format!("creating {}", tmp.display()))?;
    // Large files go past the page cache (see `direct_io`), small ones the ordinary way.
    let mut f = DirectWriter::new(f, node.size);
    let result = (|| -> Result<u64> {
        let mut written = 0u64;
        let mut i = 0;
        while i < locs.len() {
            // One read for the neighbouring blobs of the same pack.
            let j = run_end(&locs, i);
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
            for (id, loc) in node.content[i..j].iter().zip(&locs[i..j]) {
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
                f.write_all(&plain)
                    .ctx(|| format!("writing {}", tmp.display()))?;
                written += plain.len() as u64;
            }
            i = j;
        }
        f.finish().ctx(|| format!("syncing {}", tmp.display()))?;
        Ok(written)
    })();
    match result {
        Ok(n) => {
            fs::rename(&tmp, path).ctx(|| format!("renaming into {}", path.display()))?;
            set_meta(path, node);
            Ok(Outcome::Written(n))
        }
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn set_meta(path: &Path, node: &Node) {
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(node.mode & 0o7777));
    set_times(path, node, false);
}

fn set_times(path: &Path, node: &Node, nofollow: bool) {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return;
    };
    let ts = libc::timespec {
        tv_sec: node.mtime.div_euclid(1_000_000_000) as libc::time_t,
        tv_nsec: node.mtime.rem_euclid(1_000_000_000) as _,
    };
    let times = [ts, ts];
    let flags = if nofollow {
        libc::AT_SYMLINK_NOFOLLOW
    } else {
        0
    };
    // SAFETY: valid C string and a two-element timespec array, as utimensat requires.
    unsafe {
        libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), flags);
    }
}
