use std::collections::HashSet;
use std::sync::Mutex;

use anyhow::{Context, Result};
use snapvault_repo::archiver::{self, ArchiveOptions, Observer};
use snapvault_repo::fs_source::{Change, FolderSource};
use snapvault_repo::index::Index;
use snapvault_repo::snapshot::{Snapshot, Source};
use snapvault_repo::text::escaped;
use snapvault_repo::tree::Node;
use snapvault_repo::{BlobId, LoadedIndex};
use snapvault_repo::{Repository, SnapshotId};

use super::{Ctx, threads};
use crate::cli::SnapshotArgs;
use crate::exit;
use crate::fmt;
use crate::photoset::{self, ContentKey, PhotoEntry};

/// Prints files that could not be read (they are left out and make the snapshot
/// incomplete) and notes which photos the new snapshot holds.
#[derive(Default)]
pub struct Report {
    /// Content keys and paths of the photos in the new snapshot.
    pub photos: Mutex<(HashSet<ContentKey>, HashSet<String>)>,
    /// Warnings are reported elsewhere (as JSON lines): only take note here.
    pub silent: bool,
    /// Phone snapshots: the Photos library read for this snapshot (or why it could not be),
    /// to be accounted against what the snapshot holds.
    pub library: Option<std::result::Result<snapvault_photolib::Library, String>>,
    /// Every file path recorded, and every path that could not be read or changed while
    /// it was read (for the account: not backed up, though recorded).
    pub stored: Mutex<(HashSet<String>, HashSet<String>)>,
}

impl Observer for Report {
    fn skipped(&self, path: &[u8], error: &std::io::Error) {
        if !self.silent {
            eprintln!(
                "warning: skipped {}: {error}",
                snapvault_repo::text::escaped_bytes(path)
            );
        }
        // Still on the source, only unreadable now: not "gone".
        if let Ok(mut p) = self.photos.lock() {
            p.1.insert(String::from_utf8_lossy(path).into_owned());
        }
        if self.library.is_some()
            && let Ok(mut s) = self.stored.lock()
        {
            s.1.insert(String::from_utf8_lossy(path).into_owned());
        }
    }

    fn changed_while_read(&self, path: &[u8], change: Change) {
        if !self.silent {
            eprintln!(
                "warning: {}: {}",
                snapvault_repo::text::escaped_bytes(path),
                crate::progress::changed_message(change)
            );
        }
        // Its bytes stored may be no version it ever had: not backed up.
        if self.library.is_some()
            && let Ok(mut s) = self.stored.lock()
        {
            s.1.insert(String::from_utf8_lossy(path).into_owned());
        }
    }

    fn annotate(&self, snapshot: &mut Snapshot) {
        if let (Some(lib), Ok(s)) = (&self.library, self.stored.lock()) {
            let backed_up: HashSet<String> = s.0.difference(&s.1).cloned().collect();
            snapshot.library = Some(crate::library::account_of(lib, &backed_up, &s.1));
        }
    }

    fn recorded(&self, dir: &[u8], node: &Node) {
        if self.library.is_some()
            && let Ok(mut s) = self.stored.lock()
        {
            s.0.insert(if dir.is_empty() {
                node.name.lossy()
            } else {
                format!("{}/{}", String::from_utf8_lossy(dir), node.name.lossy())
            });
        }
        if photoset::is_library_file(&node.media)
            && let Ok(mut p) = self.photos.lock()
        {
            p.0.insert(photoset::content_key(node));
            let path = if dir.is_empty() {
                node.name.lossy()
            } else {
                format!("{}/{}", String::from_utf8_lossy(dir), node.name.lossy())
            };
            p.1.insert(path);
        }
    }
}

/// Photos, videos and sidecars of the parent snapshot that the new snapshot no longer
/// holds, by content or by path (a photo edited in place is changed, not gone): what
/// `diff` counts as removed.
pub fn vanished(
    repo: &Repository,
    index: &Index,
    parent: &Snapshot,
    new_tree: &BlobId,
    now: &(HashSet<ContentKey>, HashSet<String>),
) -> Result<Vec<PhotoEntry>> {
    let before = photoset::library_files_changed(repo, index, &parent.tree, Some(new_tree))?;
    let mut gone: Vec<PhotoEntry> = before
        .into_iter()
        .filter(|(k, e)| !now.0.contains(k) && !now.1.contains(&e.path))
        .map(|(_, e)| e)
        .collect();
    gone.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(gone)
}

/// The snapshots to compare with, newest first: the latest of the source, and when that
/// is a `partial` one (the source went away mid-run), the ones back to the last complete
/// snapshot, so files the partial run never reached are not read again.
pub fn parents_of_source(
    repo: &Repository,
    source: &Source,
) -> Result<Vec<(SnapshotId, Snapshot)>> {
    let host = snapvault_repo::time::hostname();
    let key = source.group_key(&host);
    let (all, _) = repo.snapshots()?;
    let mut out = Vec::new();
    for (id, s) in all.into_iter().rev() {
        if s.source.group_key(&s.hostname) != key {
            continue;
        }
        let partial = s.summary.interrupted.is_some();
        out.push((id, s));
        if !partial {
            break;
        }
    }
    Ok(out)
}

pub fn run(ctx: &Ctx, a: SnapshotArgs) -> Result<i32> {
    let is_iphone = a.paths.len() == 1 && a.paths[0].as_os_str() == "iphone";
    let time = snapshot_time(a.time.as_deref())?;
    if is_iphone {
        // Before the phone is asked to trust us and list its roll.
        ctx.repo_location()?;
        let device = crate::iphone::connect(a.udid.as_deref())?;
        let phone = crate::iphone::IphoneSource::new(device)?;
        let source = phone.snapshot_source();
        if !ctx.global.quiet {
            // Every fact comes from the phone: shown escaped, never raw to the terminal.
            let i = phone.device.info();
            eprintln!(
                "iPhone {} ({} {}, iOS {}): {}",
                escaped(&i.name),
                escaped(&i.model),
                escaped(&i.udid),
                escaped(&i.ios_version),
                crate::library::photodata_words(&phone)
            );
        }
        let usb = || phone.device.bytes_transferred();
        let code = take(
            ctx,
            &phone,
            source,
            &a,
            Some(&usb),
            None,
            time,
            Some(&phone),
        )?;
        if ctx.global.verbose > 0 {
            eprintln!(
                "transferred {} from the phone",
                fmt::size(phone.device.bytes_transferred())
            );
        }
        return Ok(code);
    }
    if a.udid.is_some() {
        anyhow::bail!("--device only applies to `snapvault snapshot iphone`");
    }
    let folder = FolderSource::new(&a.paths)?;
    let source = Source::folder(folder.absolute_paths());
    let own = repository_inside(ctx, &folder)?;
    take(ctx, &folder, source, &a, None, own, time, None)
}

/// `--time` as nanoseconds since the epoch. A time in the future is refused: the snapshot
/// would stay "latest" and every retention policy would count from it.
fn snapshot_time(t: Option<&str>) -> Result<Option<i64>> {
    let Some(t) = t else { return Ok(None) };
    let secs = snapvault_repo::time::parse_utc(t).ok_or_else(|| {
        anyhow::anyhow!("--time {t:?} is not a time: use 2019-07-14 or 2019-07-14 10:30:00 (UTC)")
    })?;
    if secs > snapvault_repo::time::now_unix() {
        anyhow::bail!("--time {t:?} is in the future");
    }
    Ok(Some(secs.saturating_mul(1_000_000_000)))
}

/// Where a local repository lies inside the folders being backed up, if it does: it is
/// left out (a backup of the backup into itself only grows). The repository being one of
/// the folders named is an error.
fn repository_inside(ctx: &Ctx, folder: &FolderSource) -> Result<Option<Vec<u8>>> {
    let Some(loc) = ctx.global.repo.as_deref() else {
        return Ok(None);
    };
    if snapvault_remote::is_remote(loc) {
        return Ok(None);
    }
    match folder.tree_path_of(std::path::Path::new(loc)) {
        Some(p) if !p.contains(&b'/') => anyhow::bail!(
            "the repository {loc} is itself one of the folders to back up; back up the photos, not the repository"
        ),
        other => Ok(other),
    }
}

/// Run the snapshot pipeline on any source and report. `phone`: the source is this phone,
/// whose Photos library is accounted for.
#[allow(clippy::too_many_arguments)]
fn take(
    ctx: &Ctx,
    src: &dyn snapvault_repo::fs_source::Source,
    source: Source,
    a: &SnapshotArgs,
    transfer: Option<&(dyn Fn() -> u64 + Sync)>,
    own_repository: Option<Vec<u8>>,
    time: Option<i64>,
    phone: Option<&crate::iphone::IphoneSource>,
) -> Result<i32> {
    // Excluded entries are dropped where folders are listed: never opened, never read.
    let mut excludes =
        crate::exclude::Excludes::new(&a.exclude, &a.exclude_file, a.no_default_excludes)?;
    if let Some(p) = own_repository {
        if !a.json {
            eprintln!(
                "note: the repository is inside the source, at {}; it is left out of the snapshot",
                snapvault_repo::text::escaped_bytes(&p)
            );
        }
        excludes.add_exact(p);
    }
    let filtered = crate::exclude::Filtered::new(src, &excludes);
    let src: &dyn snapvault_repo::fs_source::Source = &filtered;
    // While the key is derived: the repository's index and snapshot files, the packs'
    // folders (listed again to clean up leftovers) and the source's first folders and files.
    let repo = ctx.open_early(|o| {
        o.prefetch_metadata();
        let _ = o.backend().leftover_temp_files();
        archiver::warm_up(src, &|| o.key_ready());
    })?;
    // From here on Ctrl-C / SIGTERM stop the run and keep what it read.
    let stop = crate::interrupt::catch();
    let lock = repo.lock(false, "snapshot")?;
    crate::interrupt::guard_lock(lock.handle());
    let removed = repo
        .backend()
        .remove_leftover_temp_files(15 * 60)
        .unwrap_or(0);
    if removed > 0 && ctx.global.verbose > 0 {
        eprintln!("removed {removed} leftover temporary file(s) of interrupted runs");
    }
    let chain = match (&a.parent, a.force) {
        (_, true) => Vec::new(),
        (Some(p), false) => vec![repo.find_snapshot(p)?],
        (None, false) => parents_of_source(&repo, &source)?,
    };
    // Vanished photos are judged against the last complete snapshot of the source.
    let parent_snap = chain.last().map(|(_, s)| s.clone());
    let mut chain = chain.into_iter();
    let parent = chain.next();
    let also: Vec<Snapshot> = chain.map(|(_, s)| s).collect();
    // Files holding blobs the last `check` found damaged are read again and stored anew.
    let damage = crate::damage::DamageList::load(&repo.config().id);
    // A snapshot of a folder asks of a data blob only whether it is stored: its index
    // keeps data blobs as bare ids (a million small files: ≈ 30 MiB less). A phone's
    // library database is read back from the parent, and damaged blobs are judged by the
    // packs holding them: those need every blob's place.
    let loaded = if phone.is_none() && damage.is_empty() {
        repo.load_index_for_snapshot()
    } else {
        repo.load_index()
    }
    .context("loading the index")?;
    if let Some((pid, p)) = &parent
        && !loaded.index.contains(&p.tree)
        && !a.json
    {
        eprintln!(
            "warning: the data of parent snapshot {} is no longer stored (pruned?); every file is read again",
            pid.short()
        );
    }
    // The Photos library: its database copied consistently (or reused from the parent),
    // read now, accounted against the snapshot's files when they are all recorded.
    let library = phone.map(|p| {
        let parents: Vec<&Snapshot> = parent.iter().map(|(_, s)| s).chain(also.iter()).collect();
        let prepared = crate::library::prepare(p, &repo, &loaded.index, &parents, a.json);
        if let Err(why) = &prepared.library
            && !p.database.is_empty()
            && !a.json
        {
            eprintln!(
                "warning: the Photos library database could not be read ({why}); the snapshot goes on, and its account counts files only"
            );
        }
        if ctx.global.verbose > 0 && !a.json && !p.database.is_empty() {
            eprintln!(
                "Photos library database: {}",
                if prepared.pulled {
                    "copied from the phone"
                } else {
                    "unchanged since the previous snapshot (not transferred)"
                }
            );
        }
        prepared.library
    });
    let opts = ArchiveOptions {
        source,
        tags: a.tags.clone(),
        parent,
        also,
        reread: damage.unhealed(&loaded.index),
        workers: threads(),
        stop: Some(stop),
        lock: Some(lock.handle()),
        time,
    };
    let mode = crate::progress::mode(ctx.global.quiet, a.json);
    let report = Report {
        silent: matches!(mode, crate::progress::Mode::Json),
        library,
        ..Report::default()
    };
    let progress = crate::progress::Progress::new("snapshot", mode, crate::progress::Unit::Files);
    let observer = crate::progress::SnapshotProgress {
        progress: &progress,
        inner: &report,
        transfer,
    };
    // The scan counts the totals beside the snapshot; the scope waits for it, so the last
    // progress line has final totals.
    // The index is loaded once: after the run only the index files written since are read.
    let index = std::sync::Arc::new(loaded.index);
    let result = std::thread::scope(|s| {
        progress.scan(s, src);
        archiver::run_shared(
            &repo,
            index.clone(),
            src,
            opts,
            &observer,
            &crate::media::PhotoInspector,
        )
    });
    progress.finish();
    let mut current = std::sync::Arc::try_unwrap(index)
        .ok()
        .map(|index| LoadedIndex {
            index,
            files: loaded.files,
        });
    let signal = crate::interrupt::received();
    let (id, snap) = match (result, signal) {
        (Ok(r), _) => r,
        // Stopped before anything was read: nothing to keep.
        (Err(e), Some(sig)) => {
            let e = anyhow::Error::from(e).context(format!(
                "{}: nothing was saved",
                crate::interrupt::describe(sig)
            ));
            crate::exit::report(&e, a.json, ctx.global.verbose);
            return Ok(crate::interrupt::exit_code(sig));
        }
        (Err(e), None) => return Err(e.into()),
    };
    if let Some(why) = lock.handle().lost() {
        eprintln!(
            "warning: {why}; every piece of data this snapshot uses was checked again and is stored"
        );
    }
    let left_out = filtered.left_out.load(std::sync::atomic::Ordering::Relaxed);
    if left_out > 0 && ctx.global.verbose > 0 {
        eprintln!("excluded {left_out} file(s) and folder(s) (see `snapvault config show`)");
    }
    // The snapshot is saved: trouble listing what vanished (a parent whose data was
    // pruned) is a warning, never a failure that would make a retry save another one.
    let gone = match (&parent_snap, &snap.summary.interrupted) {
        (Some(p), None) => {
            let now = report.photos.into_inner().unwrap_or_default();
            let listed = index_now(&repo, &mut current)
                .map_err(anyhow::Error::from)
                .and_then(|l| vanished(&repo, &l.index, p, &snap.tree, &now));
            match listed {
                Ok(g) => g,
                Err(e) => {
                    eprintln!(
                        "warning: the photos that vanished since the previous snapshot could not be listed ({})",
                        crate::exit::message(&e)
                    );
                    Vec::new()
                }
            }
        }
        _ => Vec::new(),
    };
    // A photo that left the phone because its original went to iCloud only ("Optimize
    // iPhone Storage") was not deleted: it is told apart.
    let (moved, gone): (Vec<PhotoEntry>, Vec<PhotoEntry>) = match &report.library {
        Some(Ok(lib)) => {
            let cloud = crate::library::cloud_only_stems(lib);
            gone.into_iter()
                .partition(|g| cloud.contains(&crate::library::stem_key(&g.path)))
        }
        _ => (Vec::new(), gone),
    };
    print_summary(ctx, &id, &snap, &gone, &moved, a.json, a.force);
    // Keep the photo catalog current (it is a cache: trouble here is only a warning; after
    // Ctrl-C it is left for the next command to bring up to date).
    if signal.is_none()
        && let Err(e) = index_now(&repo, &mut current)
            .map_err(anyhow::Error::from)
            .and_then(|l| {
                // The library just read is recorded as it is, not read back.
                crate::catalog::open_synced_then(&repo, &l.index, false, |cat| {
                    match (&report.library, report.stored.lock()) {
                        (Some(Ok(lib)), Ok(s)) => crate::library::catalog::record_new(
                            cat, &repo, &l.index, &id, &snap, lib, &s.0,
                        ),
                        _ => Ok(()),
                    }
                })
                .map(drop)
            })
    {
        eprintln!(
            "warning: the photo catalog was not updated ({}); it is rebuilt when needed",
            crate::exit::message(&e)
        );
    }
    if let (Some(why), Some(sig)) = (&snap.summary.interrupted, signal) {
        if !a.json {
            eprintln!(
                "{why}: kept {} file(s) in partial snapshot {}; the next run continues from it",
                snap.summary.files_total,
                id.short()
            );
        }
        return Ok(crate::interrupt::exit_code(sig));
    }
    if let Some(why) = &snap.summary.interrupted {
        anyhow::bail!(
            "the snapshot stopped early: {why}; what was read so far is saved as partial snapshot {} and the next run continues from it",
            id.short()
        );
    }
    if let Some(sig) = signal {
        // The signal came after everything was read: the snapshot is complete.
        if !a.json {
            eprintln!(
                "{}: the snapshot was already complete and is saved",
                crate::interrupt::describe(sig)
            );
        }
        return Ok(crate::interrupt::exit_code(sig));
    }
    Ok(if snap.incomplete {
        exit::INCOMPLETE
    } else {
        exit::OK
    })
}

pub fn print_summary(
    ctx: &Ctx,
    id: &SnapshotId,
    snap: &Snapshot,
    gone: &[PhotoEntry],
    moved: &[PhotoEntry],
    json: bool,
    forced: bool,
) {
    let s = &snap.summary;
    let range = photoset::taken_range(gone.iter());
    if json {
        // `interrupted` is always present here (null when the run was not), as json.md says.
        let mut summary = serde_json::to_value(s).unwrap_or_default();
        if let Some(m) = summary.as_object_mut() {
            m.insert("interrupted".into(), serde_json::json!(s.interrupted));
        }
        let v = serde_json::json!({
            "id": id.to_hex(),
            "short_id": id.short(),
            "incomplete": snap.incomplete,
            "summary": summary,
            "vanished": {
                "count": gone.len(),
                "kinds": photoset::kinds_count(kind_names(gone)).into_iter().collect::<std::collections::BTreeMap<_, _>>(),
                "taken_from": range.as_ref().map(|r| r.0.clone()),
                "taken_to": range.as_ref().map(|r| r.1.clone()),
                "paths": gone.iter().map(|g| g.path.clone()).collect::<Vec<_>>(),
                "moved_to_icloud": moved.iter().map(|g| g.path.clone()).collect::<Vec<_>>(),
            },
            "library": snap.library,
        });
        println!("{v}");
        return;
    }
    match &s.interrupted {
        Some(why) => ctx.say(format!(
            "partial snapshot {} saved: the run stopped early ({why}); it holds what was read until then",
            id.short()
        )),
        None => ctx.say(format!("snapshot {} saved", id.short())),
    }
    for line in summary_lines(s, forced, ctx.global.verbose > 0) {
        ctx.say(line);
    }
    if let Some(acc) = &snap.library {
        for line in crate::library::lines(acc) {
            ctx.say(line);
        }
    }
    if !moved.is_empty() {
        ctx.say(format!(
            "{} from the previous snapshot left the phone for iCloud (\"Optimize iPhone Storage\" keeps only a preview on the phone): not deleted, the originals are in iCloud, and earlier snapshots hold them",
            if moved.len() == 1 { "1 file".to_string() } else { format!("{} files", moved.len()) }
        ));
        for g in moved.iter().take(5) {
            ctx.say(format!("  now only in iCloud: {}", escaped(&g.path)));
        }
        if moved.len() > 5 {
            ctx.say(format!("  … and {} more", moved.len() - 5));
        }
    }
    if !gone.is_empty() {
        let taken = range
            .map(|(a, b)| format!("; taken {a}..{b}"))
            .unwrap_or_default();
        ctx.say(format!(
            "{} from the previous snapshot {} no longer on the source ({}{taken}); they stay in earlier snapshots",
            if gone.len() == 1 { "1 file".to_string() } else { format!("{} files", gone.len()) },
            if gone.len() == 1 { "is" } else { "are" },
            photoset::kinds_text(kind_names(gone))
        ));
        for g in gone.iter().take(5) {
            ctx.say(format!("  gone: {}", escaped(&g.path)));
        }
        if gone.len() > 5 {
            ctx.say(format!(
                "  … and {} more (`snapvault diff` lists them all)",
                gone.len() - 5
            ));
        }
    }
    if s.errors > 0 {
        eprintln!(
            "warning: snapshot is incomplete: {} file(s) or folder(s) could not be read, or changed while read (listed above)",
            s.errors
        );
    }
}

/// The media kind of each entry (`photo`, `video`, `sidecar`).
fn kind_names(entries: &[PhotoEntry]) -> impl Iterator<Item = Option<&str>> {
    entries
        .iter()
        .map(|e| e.media.as_ref().map(|m| m.kind.as_str()))
}

/// The two summary lines in a photo owner's words: files and bytes. `--force` reads every
/// file again without comparing, so its files are "read again", not "new"; the storage
/// internals (blobs stored) are for `-v`.
fn summary_lines(
    s: &snapvault_repo::snapshot::Summary,
    forced: bool,
    verbose: bool,
) -> [String; 2] {
    let files = if forced {
        format!(
            "files: {} read again (--force); {} folders",
            s.files_new + s.files_changed + s.files_unchanged,
            s.dirs
        )
    } else {
        format!(
            "files: {} new, {} changed, {} unchanged (not read again); {} folders",
            s.files_new, s.files_changed, s.files_unchanged, s.dirs
        )
    };
    let added = if s.bytes_added == 0 && s.bytes_read > 0 {
        "added nothing new to the repository (it held all of it already)".to_string()
    } else {
        format!("added {} to the repository", fmt::size(s.bytes_added))
    };
    let internals = if verbose {
        format!(" ({} blobs stored)", s.blobs_added)
    } else {
        String::new()
    };
    let bytes = format!(
        "read {}, {added}{internals}; snapshot holds {} in {} files; took {}",
        fmt::size(s.bytes_read),
        fmt::size(s.bytes_total),
        s.files_total,
        fmt::duration_ms(s.duration_ms)
    );
    [files, bytes]
}

/// The index as it is now: the one loaded before the snapshot, plus the index files
/// written since (this run's, or another writer's); only those are read.
fn index_now<'a>(
    repo: &Repository,
    current: &'a mut Option<LoadedIndex>,
) -> snapvault_repo::Result<&'a LoadedIndex> {
    match current {
        Some(l) => {
            repo.load_new_index_files(l)?;
            Ok(l)
        }
        None => Ok(current.insert(repo.load_index()?)),
    }
}

#[cfg(test)]
mod tests {
    use snapvault_repo::tree::{Name, NodeKind};

    use super::*;

    /// A photo that changed while it was read is recorded (its bytes read are stored) but
    /// is not counted as backed up by the library account: the phone's copy may be the only
    /// good one. Before: counted as backed up, so "safe to delete".
    #[test]
    fn a_photo_changed_while_read_is_not_counted_as_backed_up() {
        let report = Report {
            silent: true,
            library: Some(Err("no database".into())),
            ..Report::default()
        };
        let node = |name: &str| Node {
            name: Name(name.as_bytes().to_vec()),
            kind: NodeKind::File,
            mode: 0o644,
            mtime: 0,
            btime: None,
            size: 1,
            content: Vec::new(),
            subtree: None,
            target: None,
            media: None,
            rdev: None,
            dev: None,
            ino: None,
            ctime: None,
            inode: None,
        };
        for (i, change) in [
            Change::Length { listed: 9, read: 4 },
            Change::Time,
            Change::TimeSetBack,
        ]
        .into_iter()
        .enumerate()
        {
            report.changed_while_read(format!("DCIM/100APPLE/IMG_000{i}.HEIC").as_bytes(), change);
        }
        for i in 0..4 {
            report.recorded(b"DCIM/100APPLE", &node(&format!("IMG_000{i}.HEIC")));
        }
        let mut snap = Snapshot {
            version: 1,
            time: 0,
            hostname: String::new(),
            username: String::new(),
            source: Source::folder(Vec::new()),
            tags: Vec::new(),
            tree: BlobId::default(),
            parent: None,
            summary: Default::default(),
            incomplete: false,
            original: None,
            library: None,
        };
        report.annotate(&mut snap);
        let account = snap.library.unwrap();
        assert_eq!((account.backed_up, account.not_read), (1, Some(3)));
    }
}
