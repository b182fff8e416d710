use std::collections::HashSet;

use anyhow::{Context, Result};
use snapvault_repo::archiver::{self, ArchiveOptions, Observer};
use snapvault_repo::fs_source::FolderSource;
use snapvault_repo::snapshot::{Snapshot, Source};
use snapvault_repo::{Repository, SnapshotId};

use super::{Ctx, threads};
use crate::cli::SnapshotArgs;
use crate::exit;
use crate::fmt;

/// Prints files that could not be read; they are left out and make the snapshot incomplete.
struct Report;

impl Observer for Report {
    fn skipped(&self, path: &[u8], error: &std::io::Error) {
        eprintln!("warning: skipped {}: {error}", String::from_utf8_lossy(path));
    }
}

/// The newest snapshot of the same source on this host: the parent for change detection.
pub fn latest_of_source(
    repo: &Repository,
    source: &Source,
) -> Result<Option<(SnapshotId, Snapshot)>> {
    let host = snapvault_repo::time::hostname();
    let key = source.group_key(&host);
    let (all, _) = repo.snapshots()?;
    Ok(all
        .into_iter()
        .rev()
        .find(|(_, s)| s.source.group_key(&s.hostname) == key))
}

pub fn run(ctx: &Ctx, a: SnapshotArgs) -> Result<i32> {
    let folder = FolderSource::new(&a.paths)?;
    let repo = ctx.open()?;
    let _lock = repo.lock(false, "snapshot")?;
    let removed = repo.backend().remove_leftover_temp_files(15 * 60).unwrap_or(0);
    if removed > 0 && ctx.global.verbose > 0 {
        eprintln!("removed {removed} leftover temporary file(s) of interrupted runs");
    }
    let source = Source::folder(folder.absolute_paths());
    let parent = match (&a.parent, a.force) {
        (_, true) => None,
        (Some(p), false) => Some(repo.find_snapshot(p)?),
        (None, false) => latest_of_source(&repo, &source)?,
    };
    let loaded = repo.load_index().context("loading the index")?;
    let opts = ArchiveOptions {
        source,
        tags: a.tags,
        parent,
        reread: HashSet::new(),
        workers: threads(),
    };
    let (id, snap) = archiver::run(
        &repo,
        loaded.index,
        &folder,
        opts,
        &Report,
        &crate::media::PhotoInspector,
    )?;
    print_summary(ctx, &id, &snap, a.json);
    Ok(if snap.incomplete { exit::INCOMPLETE } else { exit::OK })
}

pub fn print_summary(ctx: &Ctx, id: &SnapshotId, snap: &Snapshot, json: bool) {
    let s = &snap.summary;
    if json {
        let v = serde_json::json!({
            "id": id.to_hex(),
            "short_id": id.short(),
            "incomplete": snap.incomplete,
            "summary": s,
        });
        println!("{v}");
        return;
    }
    ctx.say(format!("snapshot {} saved", id.short()));
    ctx.say(format!(
        "files: {} new, {} changed, {} unchanged (not read again); {} folders",
        s.files_new, s.files_changed, s.files_unchanged, s.dirs
    ));
    ctx.say(format!(
        "read {}, added {} to the repository ({} blobs); snapshot holds {} in {} files; took {}",
        fmt::size(s.bytes_read),
        fmt::size(s.bytes_added),
        s.blobs_added,
        fmt::size(s.bytes_total),
        s.files_total,
        fmt::duration_ms(s.duration_ms)
    ));
    if snap.incomplete {
        eprintln!(
            "warning: snapshot is incomplete: {} file(s) or folder(s) could not be read (listed above)",
            s.errors
        );
    }
}
