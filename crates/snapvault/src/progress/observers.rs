//! The per-command adapters: the library's observer hooks of snapshot, restore, check, copy
//! and prune, turned into the engine's counters, phases and warnings.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;

use serde_json::json;
use snapvault_repo::archiver::Observer;
use snapvault_repo::checker::CheckObserver;
use snapvault_repo::copy::CopyObserver;
use snapvault_repo::fs_source::Change;
use snapvault_repo::prune::PruneObserver;
use snapvault_repo::restorer::RestoreObserver;
use snapvault_repo::tree::{Node, NodeKind};

use super::render::emit_json;
use super::{Mode, Progress};

/// The snapshot observer: counts for the progress display and forwards every hook to the
/// command's own observer (which prints skipped files and collects photo keys).
pub struct SnapshotProgress<'a> {
    pub progress: &'a Progress,
    pub inner: &'a dyn Observer,
    /// Bytes moved over USB so far (the iPhone), read as the data streams in.
    pub transfer: Option<&'a (dyn Fn() -> u64 + Sync)>,
}

impl SnapshotProgress<'_> {
    /// A warning about one file: counted, a JSON line in JSON mode, and handed to the inner
    /// observer (which prints it in text mode, out of the progress bar's way; in JSON mode it
    /// only takes note).
    fn warn(&self, path: &[u8], message: impl FnOnce() -> String, inner: impl Fn()) {
        self.progress.inner.errors.fetch_add(1, Relaxed);
        match self.progress.mode() {
            Mode::Json => {
                emit_json(&json!({
                    "type": "warning",
                    "command": self.progress.inner.command,
                    "path": String::from_utf8_lossy(path),
                    "message": message(),
                }));
                inner();
            }
            Mode::Bar => match &self.progress.inner.bar {
                Some(b) => b.suspend(inner),
                None => inner(),
            },
            Mode::Hidden => inner(),
        }
    }
}

impl Observer for SnapshotProgress<'_> {
    fn annotate(&self, snapshot: &mut snapvault_repo::snapshot::Snapshot) {
        self.inner.annotate(snapshot);
    }

    fn file_started(&self, path: &[u8], size: u64) {
        self.progress.set_current(path);
        self.progress.inner.items_done.fetch_add(1, Relaxed);
        self.inner.file_started(path, size);
    }

    fn file_unchanged(&self, path: &[u8], size: u64) {
        self.progress.item_done(size);
        self.inner.file_unchanged(path, size);
    }

    fn bytes_read(&self, n: u64) {
        self.progress.inner.bytes_read.fetch_add(n, Relaxed);
        self.progress.inner.bytes_done.fetch_add(n, Relaxed);
        if let Some(t) = self.transfer
            && !self.progress.is_hidden()
        {
            self.progress.set_transfer(t());
        }
        self.inner.bytes_read(n);
    }

    fn skipped(&self, path: &[u8], error: &std::io::Error) {
        // Not being processed any more: only the warning names it.
        if let Ok(mut c) = self.progress.inner.current.lock() {
            c.clear();
        }
        self.warn(
            path,
            || format!("skipped: {error}"),
            || self.inner.skipped(path, error),
        );
    }

    fn changed_while_read(&self, path: &[u8], change: Change) {
        self.warn(
            path,
            || changed_message(change),
            || self.inner.changed_while_read(path, change),
        );
    }

    fn recorded(&self, dir: &[u8], node: &Node) {
        self.inner.recorded(dir, node);
    }
}

/// What a file that changed while it was read is told as (text and JSON alike).
pub fn changed_message(change: Change) -> String {
    match change {
        Change::Length { listed, read } => format!(
            "changed while it was read: listed at {listed} bytes, {read} read; the {read} bytes \
             read are stored (maybe no version the file ever had) and the next snapshot reads \
             it again"
        ),
        Change::Time => "changed while it was read: written since it was listed (its \
             modification time moved); the bytes read are stored (maybe no version the file \
             ever had) and the next snapshot reads it again"
            .into(),
        Change::TimeSetBack => "changed while it was read: its status changed while it was \
             read (written with its modification time set back, or its mode or links \
             changed); the bytes read are stored (maybe no version the file ever had) and \
             the next snapshot reads it again (its change time differs)"
            .into(),
    }
}

/// Restore: files restored (or found already right) and their bytes.
pub struct RestoreProgress<'a> {
    pub progress: &'a Progress,
    sizes: HashMap<Vec<u8>, u64>,
}

impl<'a> RestoreProgress<'a> {
    pub fn new(progress: &'a Progress, items: &[snapvault_repo::restorer::RestoreItem]) -> Self {
        let files: Vec<_> = items
            .iter()
            .filter(|i| i.node.kind == NodeKind::File)
            .collect();
        progress.set_totals(files.len() as u64, files.iter().map(|i| i.node.size).sum());
        let sizes = if progress.is_hidden() {
            HashMap::new()
        } else {
            files
                .iter()
                .map(|i| (i.path.clone(), i.node.size))
                .collect()
        };
        RestoreProgress { progress, sizes }
    }
}

impl RestoreObserver for RestoreProgress<'_> {
    fn file_restored(&self, path: &[u8], bytes: u64) {
        let size = self.sizes.get(path).copied().unwrap_or(bytes);
        self.progress.set_current(path);
        self.progress.inner.bytes_read.fetch_add(bytes, Relaxed);
        self.progress.item_done(size);
    }
}

impl CheckObserver for Progress {
    fn pack_read(&self, bytes: u64) {
        self.inner.bytes_read.fetch_add(bytes, Relaxed);
        self.item_done(bytes);
    }
}

/// Copy: the snapshot being copied as the phase; data blobs done (copied, or known to be in
/// the destination) with their sizes; bytes read from the source.
impl CopyObserver for Progress {
    fn learning(&self, pairs: usize) {
        self.set_phase(&format!("comparing {pairs} earlier copies"));
    }

    fn snapshot_started(&self, n: usize, of: usize, source: &snapvault_repo::SnapshotId) {
        self.set_phase(&format!("snapshot {}/{of} {}", n + 1, source.short()));
    }

    fn blob_done(&self, size: u64, read: u64) {
        self.inner.bytes_read.fetch_add(read, Relaxed);
        self.item_done(size);
    }
}

/// Prune: phases and packs rewritten; warnings go above the bar. `verbose` also prints
/// each phase as a line.
pub struct PruneProgress<'a> {
    pub progress: &'a Progress,
    pub verbose: bool,
}

impl PruneObserver for PruneProgress<'_> {
    fn step(&self, what: &str) {
        self.progress.set_phase(what);
        if self.verbose {
            self.progress.println(&format!("{what}…"));
        }
    }

    fn pack_done(&self, bytes: u64) {
        self.progress.inner.bytes_read.fetch_add(bytes, Relaxed);
        self.progress.item_done(bytes);
    }

    fn warning(&self, w: &snapvault_repo::prune::PruneWarning) {
        let what = crate::remedy::prune_warning(w);
        let what = what.as_str();
        if self.progress.mode() == Mode::Json {
            emit_json(&json!({"type": "warning", "command": "prune", "message": what}));
        } else {
            self.progress.println(&format!("warning: {what}"));
        }
    }
}
