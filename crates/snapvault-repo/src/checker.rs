//! `check`: structure (index ↔ pack headers ↔ snapshots ↔ trees) and, with read-data, every
//! blob decrypted and verified. Every problem names the object; damaged or missing blobs are
//! mapped back to the files and snapshots they hurt.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use serde::Serialize;

use crate::backend::FileKind;
use crate::blob;
use crate::error::{RepoError, Result};
use crate::id::{BlobId, Id, PackId, SnapshotId};
use crate::index::{Index, IndexFile};
use crate::pack::{self, PackEntry};
use crate::repository::{Repository, parallel_map};
use crate::tree::NodeKind;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ReadData {
    None,
    All,
    /// Slice `n` of `m` (1-based), chosen deterministically by pack id.
    Slice(u32, u32),
    /// About this percentage of packs, chosen by pack id.
    Percent(f64),
    /// Rolling verification: packs verified least recently first, until the time is up.
    Budget(std::time::Duration),
}

impl ReadData {
    pub fn selects(&self, pack: &PackId) -> bool {
        let v = u32::from_le_bytes([pack.0.0[0], pack.0.0[1], pack.0.0[2], pack.0.0[3]]);
        match *self {
            ReadData::None => false,
            ReadData::All => true,
            ReadData::Slice(n, m) => m > 0 && v % m == n.saturating_sub(1) % m,
            ReadData::Percent(p) => (v as f64 / u32::MAX as f64) * 100.0 < p,
            ReadData::Budget(_) => true,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The repository is damaged: check fails.
    Error,
    /// Worth knowing, harmless (leftovers of interrupted runs, duplicates).
    Notice,
}

#[derive(Clone, Debug, Serialize)]
pub struct Problem {
    pub severity: Severity,
    /// What is wrong, e.g. `pack 3f2a…`, `snapshot 91bc…`, `key 77aa…`.
    pub object: String,
    pub message: String,
}

/// A file hurt by damage, with every snapshot that holds the damaged version.
#[derive(Clone, Debug, Serialize)]
pub struct DamagedFile {
    pub path: String,
    pub snapshots: Vec<SnapshotId>,
    pub taken: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct CheckReport {
    pub problems: Vec<Problem>,
    pub damaged_files: Vec<DamagedFile>,
    /// Blobs that are missing or fail verification.
    #[serde(skip)]
    pub bad_blobs: HashSet<BlobId>,
    /// Damaged stored copies (blob, pack) found by reading data: `repair` drops exactly these.
    #[serde(skip)]
    pub bad_copies: Vec<(BlobId, PackId)>,
    /// Packs whose every byte was read and verified in this run (for rolling verification).
    #[serde(skip)]
    pub verified: Vec<PackId>,
    /// Packs present but damaged (wrong size, bad header, wrong hash, bad blobs).
    #[serde(skip)]
    pub damaged_packs: HashSet<PackId>,
    /// Packs that no index mentions.
    #[serde(skip)]
    pub unindexed_packs: Vec<PackId>,
    /// Packs the index names that are not in the repository.
    #[serde(skip)]
    pub missing_packs: HashSet<PackId>,
    pub snapshots: usize,
    pub packs: usize,
    pub packs_read: usize,
    pub blobs: usize,
    pub bytes_read: u64,
}

impl CheckReport {
    pub fn errors(&self) -> usize {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .count()
    }

    fn error(&mut self, object: String, message: impl Into<String>) {
        self.problems.push(Problem {
            severity: Severity::Error,
            object,
            message: message.into(),
        });
    }

    fn notice(&mut self, object: String, message: impl Into<String>) {
        self.problems.push(Problem {
            severity: Severity::Notice,
            object,
            message: message.into(),
        });
    }
}

/// A problem found reading a pack: (pack, object, message, blobs hurt).
type PackProblem = (PackId, String, String, Vec<BlobId>);

pub trait CheckObserver: Sync {
    fn pack_read(&self, _bytes: u64) {}
}
impl CheckObserver for crate::archiver::NoHooks {}

pub struct CheckOptions {
    pub read_data: ReadData,
    pub threads: usize,
    /// When each pack was last verified (Unix seconds), for [`ReadData::Budget`].
    pub last_verified: HashMap<PackId, i64>,
    /// Damage earlier checks found: damaged copies (blob, pack) and damaged packs. What this
    /// run does not read again is still reported, so a check that reads less never
    /// forgets it.
    pub earlier_copies: Vec<(BlobId, PackId)>,
    pub earlier_packs: Vec<PackId>,
}

pub fn check(
    repo: &Repository,
    opts: &CheckOptions,
    obs: &dyn CheckObserver,
) -> Result<CheckReport> {
    let be = repo.backend();
    let crypto = repo.crypto();
    let mut r = CheckReport::default();

    for (error, object, message) in crate::open::audit(repo)? {
        match error {
            true => r.error(object, message),
            false => r.notice(object, message),
        }
    }
    for t in be.leftover_temp_files()? {
        r.notice(
            format!("file {}", t.name),
            format!("leftover temporary file of an interrupted write ({} bytes); the next snapshot removes it", t.size),
        );
    }

    // Index files, one by one, so one damaged file doesn't hide the others.
    let mut index = Index::new();
    for f in be.list(FileKind::Index)? {
        let what = format!("index {}", f.name);
        let loaded = be.read(FileKind::Index, &f.name).and_then(|b| {
            if Id::hash_of(&b).to_hex() != f.name {
                return Err(RepoError::corrupt(&what, "content does not match its name"));
            }
            IndexFile::open(crypto, &b, &what)
        });
        match loaded {
            Ok(file) => index.add_file(&file),
            Err(e) => r.error(what, format!("{e} (run `snapvault repair index`)")),
        }
    }
    for (id, loc) in index.duplicates() {
        r.notice(
            format!("blob {}", id.to_hex()),
            format!(
                "stored twice (also in pack {}); harmless, prune removes the copy",
                index.pack_of(loc).to_hex()
            ),
        );
    }

    // Packs: present, right size, header agrees with the index.
    let listed: HashMap<String, u64> = be
        .list(FileKind::Pack)?
        .into_iter()
        .map(|f| (f.name, f.size))
        .collect();
    let per_pack = index.entries_of_pack();
    r.packs = index.packs().len();
    let mut missing_packs: HashSet<PackId> = HashSet::new();
    let header_results = parallel_map(index.packs(), |(id, size)| {
        let name = id.to_hex();
        match listed.get(&name) {
            None => Err(format!(
                "is missing (its {} blobs are lost unless stored elsewhere)",
                "indexed"
            )),
            Some(&actual) if actual != *size => Err(format!(
                "has {actual} bytes but the index says {size} (truncated or damaged)"
            )),
            Some(_) => read_header(repo, id, *size).map_err(|e| e.to_string()),
        }
    });
    for (pos, ((id, _), res)) in index.packs().iter().zip(header_results).enumerate() {
        let object = format!("pack {}", id.to_hex());
        match res {
            Err(msg) => {
                if !listed.contains_key(&id.to_hex()) {
                    missing_packs.insert(*id);
                } else {
                    r.damaged_packs.insert(*id);
                }
                for (b, _) in &per_pack[pos] {
                    r.bad_blobs.insert(*b);
                }
                r.error(object, msg);
            }
            Ok(header) => {
                let mut from_header: Vec<(BlobId, u32, u32)> =
                    header.iter().map(|e| (e.id, e.offset, e.length)).collect();
                from_header.sort_by_key(|e| e.1);
                let from_index: Vec<(BlobId, u32, u32)> = per_pack[pos]
                    .iter()
                    .map(|(b, l)| (*b, l.offset, l.length))
                    .collect();
                if from_header != from_index {
                    r.damaged_packs.insert(*id);
                    let header_ids: HashSet<_> = from_header.iter().collect();
                    for e in &from_index {
                        if !header_ids.contains(e) {
                            r.bad_blobs.insert(e.0);
                        }
                    }
                    r.error(
                        object,
                        "the index disagrees with the pack header (run `snapvault repair index`)",
                    );
                }
            }
        }
    }
    let mut names: Vec<(&String, &u64)> = listed.iter().collect();
    names.sort();
    for (name, size) in names {
        let known = name
            .parse::<PackId>()
            .map(|p| index.has_pack(&p))
            .unwrap_or(false);
        if known {
            continue;
        }
        // What prune does with it decides what is said: it removes only our own packs.
        match name.parse::<PackId>() {
            Ok(p) if is_own_pack(repo, name, *size) => {
                r.unindexed_packs.push(p);
                r.notice(
                    format!("pack {name}"),
                    "is not in any index (left by an interrupted run; prune removes it once \
                     it is older than --unindexed-grace, `repair index` adopts it)",
                );
            }
            _ => r.notice(
                format!("file {name}"),
                "in data/ is not a pack of this repository: left alone (prune never removes \
                 it); delete it yourself if you do not need it",
            ),
        }
    }
    r.blobs = index.blob_count();

    // Snapshots and their trees.
    let (snaps, bad_snaps) = repo.snapshots()?;
    r.snapshots = snaps.len();
    for (name, e) in bad_snaps {
        r.error(format!("snapshot {name}"), format!("cannot be read: {e}"));
    }

    // Read all data of the selected packs.
    if opts.read_data != ReadData::None {
        let mut selected: Vec<(usize, PackId, u64)> = index
            .packs()
            .iter()
            .enumerate()
            .filter(|(_, (id, _))| opts.read_data.selects(id))
            // The size on storage, not the index's: bytes appended to a pack must be read
            // (and fail its hash) too.
            .filter_map(|(i, (id, _))| listed.get(&id.to_hex()).map(|size| (i, *id, *size)))
            .collect();
        let deadline = match opts.read_data {
            ReadData::Budget(d) => {
                // Least recently verified first; never verified first of all.
                selected.sort_by_key(|(_, id, _)| {
                    (opts.last_verified.get(id).copied().unwrap_or(0), *id)
                });
                Some(std::time::Instant::now() + d)
            }
            _ => None,
        };
        let next = AtomicUsize::new(0);
        let found: Mutex<Vec<PackProblem>> = Mutex::new(Vec::new());
        let done: Mutex<Vec<PackId>> = Mutex::new(Vec::new());
        let bytes = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..opts.threads.max(1) {
                s.spawn(|| {
                    // This thread's read buffer, reused for every pack.
                    let mut buf = Vec::new();
                    loop {
                        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                            break;
                        }
                        let i = next.fetch_add(1, Relaxed);
                        let Some(&(pos, id, size)) = selected.get(i) else {
                            break;
                        };
                        let (n, probs) = read_pack(repo, &id, size, &per_pack[pos], &mut buf);
                        bytes.fetch_add(n, Relaxed);
                        obs.pack_read(n);
                        if let Ok(mut f) = found.lock() {
                            f.extend(probs.into_iter().map(|(o, m, b)| (id, o, m, b)));
                        }
                        if let Ok(mut d) = done.lock() {
                            d.push(id);
                        }
                    }
                });
            }
        });
        r.verified = done.into_inner().unwrap_or_default();
        r.packs_read = r.verified.len();
        r.bytes_read = bytes.into_inner();
        for (pack, object, msg, blobs) in found.into_inner().unwrap_or_default() {
            r.damaged_packs.insert(pack);
            r.bad_copies.extend(blobs.iter().map(|b| (*b, pack)));
            r.bad_blobs.extend(blobs);
            r.error(object, msg);
        }
        // A blob stored again by a later snapshot (healing) has a good copy elsewhere: the
        // files holding it are fine; only the damaged copy remains for `repair` to drop.
        let bad_copies: HashSet<(BlobId, PackId)> = r.bad_copies.iter().copied().collect();
        let healed: Vec<BlobId> = r
            .bad_blobs
            .iter()
            .filter(|b| {
                index.locations(b).iter().any(|l| {
                    let p = index.pack_of(l);
                    !bad_copies.contains(&(**b, p)) && !missing_packs.contains(&p)
                })
            })
            .copied()
            .collect();
        for b in healed {
            r.bad_blobs.remove(&b);
            r.notice(
                format!("blob {}", b.to_hex()),
                "has a damaged copy but also a good one; restore uses the good copy, `repair --apply` drops the damaged one",
            );
        }
    }

    earlier_damage(&mut r, &index, opts);

    // Walk every snapshot's trees; map bad and missing blobs to files.
    let mut seen_trees: HashSet<BlobId> = HashSet::new();
    let mut damaged: BTreeMap<String, DamagedFile> = BTreeMap::new();
    let mut tree_problems: Vec<(String, String)> = Vec::new();
    for (sid, snap) in &snaps {
        let mut stack = vec![(snap.tree, String::new())];
        while let Some((tid, path)) = stack.pop() {
            let first_visit = seen_trees.insert(tid);
            let tree = match repo.load_tree(&index, &tid) {
                Ok(t) => t,
                Err(e) => {
                    if first_visit || r.bad_blobs.contains(&tid) {
                        let shown = if path.is_empty() {
                            "/".to_string()
                        } else {
                            path.clone()
                        };
                        tree_problems.push((
                            format!("snapshot {}", sid.to_hex()),
                            format!("tree of {shown} cannot be read: {e}"),
                        ));
                    }
                    r.bad_blobs.insert(tid);
                    continue;
                }
            };
            for n in tree.nodes {
                let p = if path.is_empty() {
                    n.name.lossy()
                } else {
                    format!("{path}/{}", n.name.lossy())
                };
                match n.kind {
                    NodeKind::Dir => {
                        if let Some(sub) = n.subtree {
                            stack.push((sub, p));
                        }
                    }
                    NodeKind::File => {
                        let missing = n.content.iter().any(|b| !index.contains(b));
                        let bad = missing || n.content.iter().any(|b| r.bad_blobs.contains(b));
                        if missing && first_visit {
                            tree_problems.push((
                                format!("snapshot {}", sid.to_hex()),
                                format!("{p}: data blob missing from the index"),
                            ));
                        }
                        if bad {
                            let d = damaged.entry(p.clone()).or_insert_with(|| DamagedFile {
                                path: p,
                                snapshots: Vec::new(),
                                taken: n.media.as_ref().and_then(|m| m.taken.clone()),
                            });
                            if !d.snapshots.contains(sid) {
                                d.snapshots.push(*sid);
                            }
                        }
                    }
                    // Symlinks, FIFOs, sockets, devices: no data.
                    _ => {}
                }
            }
        }
    }
    for (o, m) in tree_problems {
        r.error(o, m);
    }
    r.damaged_files = damaged.into_values().collect();
    r.missing_packs = missing_packs;
    Ok(r)
}

/// Report the damage earlier checks found in packs this run did not read, and count their
/// damaged blobs (those without a good copy) as bad, so the files they hurt are named.
fn earlier_damage(r: &mut CheckReport, index: &Index, opts: &CheckOptions) {
    let read: HashSet<PackId> = r.verified.iter().copied().collect();
    let unseen = |p: &PackId| {
        index.has_pack(p)
            && !read.contains(p)
            && !r.damaged_packs.contains(p)
            && !r.missing_packs.contains(p)
    };
    let mut per_pack: BTreeMap<PackId, usize> = BTreeMap::new();
    for p in opts.earlier_packs.iter().filter(|p| unseen(p)) {
        per_pack.entry(*p).or_default();
    }
    let mut known: HashSet<(BlobId, PackId)> = r.bad_copies.iter().copied().collect();
    for (b, p) in opts.earlier_copies.iter().filter(|(_, p)| unseen(p)) {
        *per_pack.entry(*p).or_default() += 1;
        known.insert((*b, *p));
    }
    let packs: HashSet<PackId> = per_pack.keys().copied().collect();
    for (b, _) in opts
        .earlier_copies
        .iter()
        .filter(|(_, p)| packs.contains(p))
    {
        let good_copy = index.locations(b).iter().any(|l| {
            let p = index.pack_of(l);
            !known.contains(&(*b, p)) && !packs.contains(&p)
        });
        if !good_copy {
            r.bad_blobs.insert(*b);
        }
    }
    for (p, blobs) in per_pack {
        let what = match blobs {
            0 => "is damaged".to_string(),
            n => format!("holds {n} damaged blob(s)"),
        };
        r.error(
            format!("pack {}", p.to_hex()),
            format!(
                "{what}, found by an earlier check and not read this time (`snapvault repair` \
                 shows what to do; `check --read-data` reads it again)"
            ),
        );
    }
}

/// Is the file `name` (of `size` bytes) in `data/` a pack of this repository — left by an
/// interrupted run — rather than a file someone else put there? Its name must be a pack id
/// and its header must open under this repository's key (in an unencrypted repository:
/// decode as a pack header). `prune` removes nothing else, and `check` says so.
pub fn is_own_pack(repo: &Repository, name: &str, size: u64) -> bool {
    match name.parse::<PackId>() {
        Ok(id) if id.to_hex() == name => read_header(repo, &id, size).is_ok(),
        _ => false,
    }
}

/// Read and decode a pack's header using only its trailer.
pub fn read_header(repo: &Repository, id: &PackId, size: u64) -> Result<Vec<PackEntry>> {
    let name = id.to_hex();
    let be = repo.backend();
    if size < 4 {
        return Err(RepoError::corrupt(format!("pack {name}"), "too short"));
    }
    let t = be.read_range(FileKind::Pack, &name, size - 4, 4)?;
    let (start, len) = pack::header_location(size, [t[0], t[1], t[2], t[3]])?;
    let sealed = be.read_range(FileKind::Pack, &name, start, len)?;
    let plain = repo
        .crypto()
        .open(&sealed, &format!("header of pack {name}"))?;
    pack::decode_header(&plain, start)
}

/// Read one whole pack, check its name, header and every blob. Returns bytes read and
/// problems as (object, message, blobs hurt).
fn read_pack(
    repo: &Repository,
    id: &PackId,
    size: u64,
    indexed: &[(BlobId, crate::index::BlobLocation)],
    buf: &mut Vec<u8>,
) -> (u64, Vec<(String, String, Vec<BlobId>)>) {
    let name = id.to_hex();
    let object = format!("pack {name}");
    let mut out = Vec::new();
    let bytes = match repo
        .backend()
        .read_range_into(FileKind::Pack, &name, 0, size as usize, buf)
    {
        Ok(()) => buf,
        Err(e) => {
            let blobs = indexed.iter().map(|(b, _)| *b).collect();
            return (0, vec![(object, format!("cannot be read: {e}"), blobs)]);
        }
    };
    if Id::hash_of(bytes) != id.0 {
        out.push((
            object.clone(),
            "is damaged: its content does not match its name".to_string(),
            Vec::new(),
        ));
    }
    if let Err(e) = pack::parse_pack(repo.crypto(), bytes, &object) {
        out.push((
            object.clone(),
            format!("header is damaged: {e}"),
            Vec::new(),
        ));
    }
    // Verify every blob the index points at (the index is what restore uses). The pack is
    // read once and, when the index's ranges do not overlap (always, unless it is damaged),
    // every blob is opened in place in it: no allocation or copy per blob.
    let disjoint = indexed
        .windows(2)
        .all(|w| w[0].1.offset as u64 + w[0].1.length as u64 <= w[1].1.offset as u64);
    let mut bad = Vec::new();
    for (bid, loc) in indexed {
        let start = loc.offset as usize;
        let end = start + loc.length as usize;
        let ok = match bytes.get_mut(start..end) {
            None => false,
            Some(sealed) if disjoint => {
                blob::decode_in_place(repo.crypto(), bid, loc.compressed(), loc.raw_len, sealed)
                    .is_ok()
            }
            Some(sealed) => {
                blob::decode(repo.crypto(), bid, loc.compressed(), loc.raw_len, sealed).is_ok()
            }
        };
        if !ok {
            bad.push(*bid);
        }
    }
    if !bad.is_empty() {
        let list: Vec<String> = bad.iter().take(5).map(|b| b.short()).collect();
        out.push((
            object,
            format!(
                "{} blob(s) fail verification ({}{})",
                bad.len(),
                list.join(", "),
                if bad.len() > 5 { ", …" } else { "" }
            ),
            bad,
        ));
    }
    (bytes.len() as u64, out)
}
