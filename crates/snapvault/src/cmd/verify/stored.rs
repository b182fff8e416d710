//! What one repository holds for a phone: every distinct file version, by device path, of
//! every snapshot of that phone (or of the one snapshot asked for). A photo counts as
//! stored when *any* of those snapshots holds it: after a partial snapshot, the complete one
//! before it still holds what the partial run never reached.

use std::collections::{HashMap, HashSet};

use anyhow::{Context, Result, bail};
use snapvault_repo::backend::FileKind;
use snapvault_repo::index::Index;
use snapvault_repo::lock::LockGuard;
use snapvault_repo::readback::Failure;
use snapvault_repo::snapshot::{Snapshot, Source};
use snapvault_repo::tree::{Node, NodeKind};
use snapvault_repo::walk::{Sharing, TreeWalker, Visitor, shown};
use snapvault_repo::{BlobId, RepoError, Repository, SnapshotId};

/// One stored version of a file: its chunk ids and, when every chunk is in the index, the
/// length of each chunk (where the phone's bytes are cut to compare them).
pub struct Version {
    pub size: u64,
    pub content: Vec<BlobId>,
    pub lens: Option<Vec<u32>>,
}

/// What a repository can say about one path of a given size.
pub enum Lookup<'a> {
    /// No snapshot of the phone holds a file at this path.
    Missing,
    /// Files at this path are stored, none of this size: other content for sure.
    OtherContent,
    /// Stored versions of this size, to be compared with the phone's bytes.
    Candidates(Vec<&'a Version>),
}

pub struct Stored {
    pub location: String,
    pub repo: Repository,
    pub index: Index,
    /// The snapshots compared with, newest first.
    pub snapshots: Vec<(SnapshotId, Snapshot)>,
    /// Folders that could not be read (their files count as not stored).
    pub warnings: Vec<String>,
    files: HashMap<String, Vec<Version>>,
    _lock: Option<LockGuard>,
}

impl Stored {
    /// Lock `repo` (shared) and gather every file version its snapshots of `source` hold;
    /// `only` narrows that to one snapshot (`latest` = the newest of the phone).
    pub fn load(
        ctx: &crate::cmd::Ctx,
        repo: Repository,
        source: &Source,
        only: Option<&str>,
    ) -> Result<Stored> {
        let location = repo.backend().location();
        let lock = crate::readonly::shared_lock(ctx, &repo, "verify-device")?;
        let index = repo.load_index()?.index;
        let key = source.group_key("");
        let (all, _) = repo.snapshots()?;
        let mut mine: Vec<(SnapshotId, Snapshot)> = all
            .into_iter()
            .rev()
            .filter(|(_, s)| s.source.group_key(&s.hostname) == key)
            .collect();
        match only {
            None => {}
            Some("latest") => mine.truncate(1),
            Some(spec) => mine = vec![repo.find_snapshot(spec)?],
        }
        if mine.is_empty() {
            bail!(
                "{location} holds no snapshot of this iPhone ({}) yet: run `snapvault snapshot iphone` \
                 (or `snapvault copy --all --to {location}` for a second repository) first",
                source.describe()
            );
        }
        let mut stored = Stored {
            location,
            repo,
            index,
            snapshots: mine,
            warnings: Vec::new(),
            files: HashMap::new(),
            _lock: lock,
        };
        stored.walk()?;
        Ok(stored)
    }

    /// Collect the distinct (path, content) pairs of every snapshot: a walk of every
    /// path, where a folder listing already walked at the same path (in another snapshot:
    /// most of them) is not entered again.
    fn walk(&mut self) -> Result<()> {
        let mut walker =
            TreeWalker::with(&self.repo, &self.index, Sharing::EveryPath { keep: false });
        let mut v = Versions {
            location: &self.location,
            index: &self.index,
            snapshot: SnapshotId::default(),
            seen: HashSet::new(),
            files: &mut self.files,
            warnings: &mut self.warnings,
        };
        for (sid, snap) in &self.snapshots {
            v.snapshot = *sid;
            if v.seen.insert((snap.tree, Vec::new())) {
                walker.walk_named(snap.tree, &format!("snapshot {}", sid.short()), &mut v)?;
            }
        }
        Ok(())
    }

    pub fn lookup(&self, path: &str, size: u64) -> Lookup<'_> {
        let Some(versions) = self.files.get(path) else {
            return Lookup::Missing;
        };
        let same: Vec<&Version> = versions.iter().filter(|v| v.size == size).collect();
        if same.is_empty() {
            Lookup::OtherContent
        } else {
            Lookup::Candidates(same)
        }
    }

    /// The index-only test of `--quick`: a blob passes when it is indexed and its pack
    /// file is present at the size the index records. Returns the blobs that fail.
    pub fn quick_check(
        &self,
        blobs: impl IntoIterator<Item = BlobId>,
    ) -> Result<HashMap<BlobId, Failure>> {
        let present: HashMap<String, u64> = self
            .repo
            .backend()
            .list(FileKind::Pack)
            .with_context(|| format!("listing the packs of {}", self.location))?
            .into_iter()
            .map(|f| (f.name, f.size))
            .collect();
        let mut failed = HashMap::new();
        for id in blobs {
            let why = match self.index.get(&id) {
                None => "a chunk of it is not in the repository's index".to_string(),
                Some(loc) => {
                    let (pack, size) = self.index.pack(loc.pack);
                    match present.get(&pack.to_hex()) {
                        None => format!("pack {} is missing from the repository", pack.short()),
                        Some(s) if *s != size => {
                            format!("pack {} has {s} bytes, the index says {size}", pack.short())
                        }
                        Some(_) => continue,
                    }
                }
            };
            failed.insert(id, Failure::Damaged(why));
        }
        Ok(failed)
    }
}

/// Gathers the file versions of [`Stored::walk`].
struct Versions<'a> {
    location: &'a str,
    index: &'a Index,
    snapshot: SnapshotId,
    /// (listing, path) pairs entered already.
    seen: HashSet<(BlobId, Vec<u8>)>,
    files: &'a mut HashMap<String, Vec<Version>>,
    warnings: &'a mut Vec<String>,
}

impl Visitor for Versions<'_> {
    fn entry(&mut self, path: &[u8], n: &Node) -> snapvault_repo::Result<bool> {
        match (n.kind, n.subtree) {
            (NodeKind::Dir, Some(sub)) => return Ok(self.seen.insert((sub, path.to_vec()))),
            (NodeKind::File, _) => {}
            _ => return Ok(false),
        }
        let versions = self.files.entry(shown(path)).or_default();
        if !versions
            .iter()
            .any(|v| v.size == n.size && v.content == n.content)
        {
            let lens = n
                .content
                .iter()
                .map(|id| self.index.get(id).map(|l| l.raw_len))
                .collect();
            versions.push(Version {
                size: n.size,
                content: n.content.clone(),
                lens,
            });
        }
        Ok(false)
    }

    fn unreadable(&mut self, _: &BlobId, path: &[u8], e: RepoError) -> snapvault_repo::Result<()> {
        let at = if path.is_empty() {
            "/".into()
        } else {
            shown(path)
        };
        self.warnings.push(format!(
            "{}: snapshot {}: the listing of {at} cannot be read ({e}); files under it count as not stored there",
            self.location,
            self.snapshot.short()
        ));
        Ok(())
    }
}
