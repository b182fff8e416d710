//! The walker of the snapshot pipeline (on the calling thread): lists each directory of
//! the source, reuses the parent snapshot's node of an unchanged file, and reads and chunks
//! the changed ones, sending chunks to the workers and directories to the finalizer.

use super::lookahead::{Entries, HINT_AGAIN, Lookahead};
use super::reading::{APART_BYTES, FileJob, ReadFailure, Reading};
use super::reuse::{self, Folder, Parent, Same, node_from};
use super::*;

pub(super) struct Walker<'a> {
    pub(super) repo: &'a Repository,
    pub(super) source: &'a dyn Source,
    pub(super) shared: &'a Shared,
    pub(super) observer: &'a dyn Observer,
    /// Reads the files this thread reads itself (the small ones).
    pub(super) reading: Reading<'a>,
    /// The reader threads' queue of larger files (none: this thread reads every file).
    pub(super) files: Option<Sender<FileJob<'a>>>,
    /// Set by a reader thread when the source went away (or a stop came) mid-file.
    pub(super) read_fatal: &'a Mutex<Option<String>>,
    pub(super) dir_tx: Sender<Folder>,
    pub(super) reread: &'a HashSet<BlobId>,
    /// Set when the source went away: the walk stops and the snapshot keeps what it has.
    pub(super) fatal: Option<String>,
    /// Polled between entries and chunks: a stop request ends the walk like `fatal`.
    pub(super) stop: Option<&'a Stop>,
    /// Read-ahead across folders (first snapshots and re-imports).
    pub(super) lookahead: Lookahead<'a>,
}

pub(super) fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        return name.to_vec();
    }
    let mut p = dir.to_vec();
    p.push(b'/');
    p.extend_from_slice(name);
    p
}

/// The node named `name` in `tree`.
fn find_in<'t>(tree: &'t Tree, name: &crate::format::tree::Name) -> Option<&'t Node> {
    let i = tree.nodes.binary_search_by(|n| n.name.cmp(name)).ok()?;
    tree.nodes.get(i)
}

impl Walker<'_> {
    fn aborted(&self) -> Result<()> {
        if self.shared.abort.load(Relaxed) {
            return Err(Interruption::Aborted.into());
        }
        Ok(())
    }

    /// Walk `dir` depth-first; its directory job is sent after all of its subdirectories'.
    /// `parents`: the trees of this folder in the parent snapshot (and older ones).
    pub(super) fn walk(&mut self, dir: &[u8], parents: Vec<Parent>) -> Result<()> {
        let entries = match self.lookahead.list(self.source, dir) {
            Ok(e) => e,
            Err(e) if self.source.is_fatal(&e) => {
                self.fatal = Some(e.to_string());
                Default::default()
            }
            Err(e) if !dir.is_empty() => {
                self.shared.stats.errors.fetch_add(1, Relaxed);
                self.observer.skipped(dir, &e);
                Default::default()
            }
            Err(e) => return Err(RepoError::io("listing the source", e)),
        };
        // Folders below the ones named on the command line (or the phone's top folders):
        // the roots are what was backed up, not folders found in it.
        if dir.contains(&b'/') {
            self.shared.stats.dirs.fetch_add(1, Relaxed);
        }
        let same = reuse::matching(&entries, &parents, |e, old| {
            self.unchanged(e, Some(old)).is_some()
        });
        let folder = match same {
            Some(k) => self.walk_same(dir, &entries, parents, k)?,
            None => Folder::Built(dir.to_vec(), self.walk_built(dir, &entries, &parents)?),
        };
        // The finalizer waits for this folder's files: their chunks go to the workers first.
        if !self.reading.hand_over() || self.dir_tx.send(folder).is_err() {
            self.aborted()?;
            return Err(Interruption::WorkerStopped(Worker::TreeWriter).into());
        }
        Ok(())
    }

    /// Should the walk stop before the next entry (the source went away, a stop came)?
    fn stopping(&mut self) -> Result<bool> {
        self.aborted()?;
        if self.fatal.is_none() {
            self.fatal = self.stop.and_then(Stop::reason);
        }
        if self.fatal.is_none() {
            self.fatal = self.read_fatal.lock().ok().and_then(|f| f.clone());
        }
        Ok(self.fatal.is_some())
    }

    /// Walk the subfolder `e` of `dir` (the `i`th of `entries`) against its trees in
    /// `parents`.
    fn walk_below(
        &mut self,
        dir: &[u8],
        entries: &Entries,
        i: usize,
        parents: &[Parent],
    ) -> Result<()> {
        let e = &entries[i];
        let subs: Vec<Parent> = parents
            .iter()
            .filter_map(|p| find_in(&p.tree, &e.name))
            .filter(|o| o.kind == NodeKind::Dir)
            .filter_map(|o| o.subtree)
            .filter_map(|id| {
                let tree = self.repo.load_tree(&self.shared.index, &id).ok()?;
                Some(Parent { id, tree })
            })
            .collect();
        self.lookahead.enter(dir, entries, i);
        let walked = self.walk(&join(dir, &e.name.0), subs);
        self.lookahead.leave();
        walked
    }

    /// A folder listed exactly as `parents[k]` (see `reuse`): its files are unchanged,
    /// only its subfolders are walked; no node is built.
    fn walk_same(
        &mut self,
        dir: &[u8],
        entries: &Entries,
        mut parents: Vec<Parent>,
        k: usize,
    ) -> Result<Folder> {
        let (mut files, mut bytes) = (0, 0);
        let mut path = dir.to_vec();
        if !dir.is_empty() {
            path.push(b'/');
        }
        let base = path.len();
        let mut done = entries.len();
        for (i, e) in entries.iter().enumerate() {
            if self.stopping()? {
                done = i;
                break;
            }
            match e.kind {
                NodeKind::Dir => self.walk_below(dir, entries, i, &parents)?,
                NodeKind::File => {
                    path.truncate(base);
                    path.extend_from_slice(&e.name.0);
                    self.observer.file_unchanged(&path, e.size);
                    files += 1;
                    bytes += e.size;
                }
                _ => {}
            }
        }
        let st = &self.shared.stats;
        st.files_unchanged.fetch_add(files, Relaxed);
        st.files_total.fetch_add(files, Relaxed);
        st.bytes_total.fetch_add(bytes, Relaxed);
        let parent = parents.swap_remove(k);
        if done < entries.len() {
            return Ok(Folder::Built(
                dir.to_vec(),
                reuse::built(&parent.tree, done),
            ));
        }
        Ok(Folder::Same(Same {
            dir: dir.to_vec(),
            parent,
        }))
    }

    /// A folder that differs from its trees in `parents` (or has none): every node is
    /// built, changed and new files are read.
    fn walk_built(
        &mut self,
        dir: &[u8],
        entries: &Entries,
        parents: &[Parent],
    ) -> Result<Vec<Pending>> {
        let mut pending = Vec::with_capacity(entries.len());
        let olds: Vec<Option<&Node>> = entries
            .iter()
            .map(|e| parents.iter().find_map(|p| find_in(&p.tree, &e.name)))
            .collect();
        // Decided once per file: unchanged files are neither hinted nor read.
        let unchanged: Vec<Option<&Node>> = entries
            .iter()
            .zip(&olds)
            .map(|(e, old)| self.unchanged(e, *old))
            .collect();
        let to_read: Vec<bool> = entries
            .iter()
            .zip(&unchanged)
            .map(|(e, u)| e.kind == NodeKind::File && u.is_none())
            .collect();
        let mut ahead = 0;
        // The budget this folder last hinted past its end with (see `HINT_AGAIN`).
        let mut hinted_beyond: Option<u64> = None;
        for (i, e) in entries.iter().enumerate() {
            if self.stopping()? {
                break;
            }
            match e.kind {
                NodeKind::Dir => {
                    self.walk_below(dir, entries, i, parents)?;
                    pending.push(Pending::Dir(node_from(e, None)));
                }
                // Symlinks and special files: recorded as they are, nothing to read.
                NodeKind::Symlink
                | NodeKind::Fifo
                | NodeKind::Socket
                | NodeKind::CharDevice
                | NodeKind::BlockDevice => pending.push(Pending::Ready(node_from(e, None))),
                NodeKind::File => {
                    if to_read[i] {
                        let left = self.prefetch_after(dir, entries, &to_read, i, &mut ahead);
                        let rest = entries.get(i + 1..).unwrap_or_default();
                        if left > 0
                            && hinted_beyond.is_none_or(|h| left >= h.saturating_add(HINT_AGAIN))
                        {
                            self.lookahead.hint(self.source, dir, rest, left);
                            hinted_beyond = Some(left);
                        }
                    }
                    let path = join(dir, &e.name.0);
                    if let Some(p) = self.file(&path, e, olds[i], unchanged[i])? {
                        pending.push(p);
                    }
                }
            }
        }
        Ok(pending)
    }

    /// The previous snapshot's node for `e` when the file has not changed since (the
    /// listing says so: [`reuse::same_file`]), all its blobs still stored and none marked
    /// for re-reading.
    fn unchanged<'n>(&self, e: &SourceEntry, old: Option<&'n Node>) -> Option<&'n Node> {
        old.filter(|o| {
            reuse::same_file(e, o)
                && o.content
                    .iter()
                    .all(|id| self.shared.index.contains(id) && !self.reread.contains(id))
                && o.content.len() as u64 <= e.size.max(1)
        })
    }

    /// Keep the source fetching up to [`PREFETCH_BYTES`] of the files after `entries[i]`
    /// that will be read, so the disk works while this thread chunks. `ahead` is the first
    /// entry not yet hinted. Returns the budget left once every file of the folder is
    /// hinted (for the folders after it), else 0.
    fn prefetch_after(
        &mut self,
        dir: &[u8],
        entries: &[SourceEntry],
        to_read: &[bool],
        i: usize,
        ahead: &mut usize,
    ) -> u64 {
        *ahead = (*ahead).max(i + 1);
        let queued: u64 = (i + 1..*ahead)
            .filter(|&k| to_read[k])
            .map(|k| entries[k].size.min(PREFETCH_BYTES))
            .sum();
        let mut budget = PREFETCH_BYTES.saturating_sub(queued);
        while *ahead < entries.len() && budget > 0 {
            let k = *ahead;
            if to_read[k] {
                let len = entries[k].size.min(PREFETCH_BYTES);
                if len > budget && k > i + 1 {
                    break;
                }
                if !self
                    .lookahead
                    .ahead(self.source, join(dir, &entries[k].name.0), len)
                {
                    break;
                }
                budget = budget.saturating_sub(len);
            }
            *ahead += 1;
        }
        if *ahead < entries.len() { 0 } else { budget }
    }

    fn file(
        &mut self,
        path: &[u8],
        e: &SourceEntry,
        old: Option<&Node>,
        unchanged: Option<&Node>,
    ) -> Result<Option<Pending>> {
        let st = &self.shared.stats;
        if let Some(o) = unchanged {
            self.observer.file_unchanged(path, e.size);
            st.files_unchanged.fetch_add(1, Relaxed);
            st.files_total.fetch_add(1, Relaxed);
            st.bytes_total.fetch_add(e.size, Relaxed);
            return Ok(Some(Pending::Ready(node_from(e, Some(o)))));
        }
        self.observer.file_started(path, e.size);
        let opened = match self.lookahead.take(path) {
            Some(held) => Ok(held),
            None => self.source.open(path),
        };
        let reader = match opened {
            Ok(r) => r,
            Err(err) if self.source.is_fatal(&err) => {
                self.fatal = Some(err.to_string());
                return Ok(None);
            }
            Err(err) => {
                st.errors.fetch_add(1, Relaxed);
                self.observer.skipped(path, &err);
                return Ok(None);
            }
        };
        let slot = Arc::new(FileSlot::default());
        let mut node = node_from(e, None);
        if e.size >= APART_BYTES
            && let Some(files) = &self.files
        {
            let job = FileJob {
                path: path.to_vec(),
                reader,
                slot: slot.clone(),
                entry: e.clone(),
                changed: old.is_some(),
            };
            // The batch of this thread's chunks first: a reader thread may wait for the
            // byte budget they hold (see `repository::budget`).
            if !self.reading.hand_over() || files.send(job).is_err() {
                self.aborted()?;
                return Err(Interruption::Aborted.into());
            }
            return Ok(Some(Pending::File(node, slot)));
        }
        match self.reading.read_chunks(path, reader, &slot, e) {
            Ok((total, media)) => {
                node.media = media;
                let wake = slot.state.lock().map_or(true, |mut s| {
                    s.done_reading = true;
                    s.waiting
                });
                if wake {
                    slot.cv.notify_all();
                }
                node.size = total;
            }
            Err(ReadFailure::Source(err)) if self.source.is_fatal(&err) => {
                self.fatal = Some(err.to_string());
                return Ok(None);
            }
            Err(ReadFailure::Source(err)) => {
                st.errors.fetch_add(1, Relaxed);
                self.observer.skipped(path, &err);
                return Ok(None);
            }
            Err(ReadFailure::Stopped(why)) => {
                self.fatal = Some(why);
                return Ok(None);
            }
            Err(ReadFailure::Repo(err)) => return Err(err),
        }
        if old.is_some() {
            st.files_changed.fetch_add(1, Relaxed);
        } else {
            st.files_new.fetch_add(1, Relaxed);
        }
        st.files_total.fetch_add(1, Relaxed);
        st.bytes_total.fetch_add(node.size, Relaxed);
        Ok(Some(Pending::File(node, slot)))
    }
}
