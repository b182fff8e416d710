use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use snapvault_catalog::DateRange;
use snapvault_repo::restorer::{self, RestoreItem, RestoreOptions, RestoreStats};
use snapvault_repo::snapshot::Snapshot;
use snapvault_repo::text::escaped;
use snapvault_repo::tree::NodeKind;
use snapvault_repo::{Repository, SnapshotId};

use super::{Ctx, io_threads};
use crate::cli::{Layout, RestoreArgs};
use crate::fmt;
use crate::include::Include;

pub fn run(ctx: &Ctx, a: RestoreArgs) -> Result<i32> {
    if a.layout == Layout::Date && a.date.is_none() {
        bail!("--layout date goes with --date");
    }
    if !a.dry_run {
        refuse_target_in_repository(ctx, &a.target)?;
    }
    if a.date.is_some() {
        return super::restore_date::run(ctx, &a);
    }
    let include = Include::new(&a.include)?;
    // The index and snapshot files are hinted to the disk while the key is derived.
    let repo = ctx.open_early(|o| o.prefetch_metadata())?;
    let _lock = crate::readonly::shared_lock(ctx, &repo, "restore")?;
    let (sid, snap) = match (&a.snapshot, &a.as_of) {
        (Some(_), Some(_)) => bail!("give either a snapshot or --as-of, not both"),
        (Some(s), None) => find(&repo, s, a.json)?,
        (None, Some(d)) => as_of(&repo, d, a.device.as_deref())?,
        (None, None) => bail!("which snapshot? give an id, `latest`, --date DATE or --as-of DATE"),
    };
    if a.as_of.is_some() {
        ctx.say(format!(
            "restoring snapshot {} of {} (the newest at or before {})",
            sid.short(),
            fmt::time_ns(snap.time),
            a.as_of.as_deref().unwrap_or_default()
        ));
    }
    warn_if_incomplete(&sid, &snap, a.json);
    let index = repo.load_index()?.index;
    if a.dry_run {
        return super::restore_list::dry_run_walk(
            ctx,
            &repo,
            &index,
            &sid,
            &snap.tree,
            include.as_ref(),
            &a,
        );
    }
    let filter = include
        .as_ref()
        .map(|i| move |p: &[u8], n: &[u8]| i.matches(p, n));
    let (items, dirs) = restorer::collect_matching(
        &repo,
        &index,
        &snap.tree,
        filter.as_ref().map(|f| f as restorer::Filter<'_>),
    )
    .with_context(|| format!("listing snapshot {}", sid.short()))?;
    if let Some(inc) = &include {
        check_include(inc, items.is_empty() && dirs.is_empty(), &sid, a.json)?;
    }
    let opts = RestoreOptions {
        target: a.target.clone(),
        include: None,
        overwrite: a.overwrite,
        dry_run: a.dry_run,
        threads: io_threads(),
    };
    let progress = crate::progress::Progress::new(
        "restore",
        crate::progress::mode(ctx.global.quiet || a.dry_run, a.json),
        crate::progress::Unit::Files,
    );
    let observer = crate::progress::RestoreProgress::new(&progress, &items);
    let stats = restorer::restore(&repo, &index, &items, &dirs, &opts, &observer);
    progress.finish();
    let stats = at_target(stats, &a.target)?;
    if a.dry_run {
        return dry_run(ctx, &items, &sid.to_hex(), a.json);
    }
    report(
        ctx,
        &stats,
        &format!("snapshot {}", sid.short()),
        &a.target,
        a.json,
    )
}

/// A warning on stderr: a line of text, or a JSON line with `--json` (docs/json.md).
pub fn warn(json: bool, message: &str) {
    if json {
        eprintln!(
            "{}",
            serde_json::json!({"type": "warning", "command": "restore", "message": message})
        );
    } else {
        eprintln!("warning: {}", escaped(message));
    }
}

/// Resolve the snapshot to restore. When `latest` passed over snapshot files that could
/// not be read and may be newer, say so, naming both.
fn find(repo: &Repository, spec: &str, json: bool) -> Result<(SnapshotId, Snapshot)> {
    let (id, snap, unreadable) = repo.find_snapshot_noting(spec)?;
    let age_of_found = (snapvault_repo::time::now_ns() - snap.time).max(0) as u64 / 1_000_000_000;
    for (name, why) in &unreadable {
        let age = repo
            .backend()
            .age_secs(snapvault_repo::backend::FileKind::Snapshot, name)
            .ok()
            .flatten();
        let when = match age {
            Some(a) if a > age_of_found => continue,
            Some(_) => "it is newer than",
            None => "it may be newer than",
        };
        warn(
            json,
            &format!(
                "snapshot file {} cannot be read ({why}); {when} snapshot {} of {}, which is \
                 restored instead as `{spec}`. `snapvault check` tells more",
                name.get(..8).unwrap_or(name),
                id.short(),
                fmt::time_ns(snap.time)
            ),
        );
    }
    Ok((id, snap))
}

/// A partial snapshot (the backup was interrupted) or one that missed unreadable files
/// restores fine, but not everything the source held: say so before restoring.
fn warn_if_incomplete(id: &SnapshotId, snap: &Snapshot, json: bool) {
    let partial = snap.tags.iter().any(|t| t == "partial");
    if partial || snap.summary.interrupted.is_some() {
        let why = snap
            .summary
            .interrupted
            .as_deref()
            .map(|w| format!(" ({w})"))
            .unwrap_or_default();
        warn(
            json,
            &format!(
                "snapshot {} is partial: the backup was interrupted{why} and holds only the {} \
                 file(s) read until then; an earlier snapshot may hold more (`snapvault snapshots`)",
                id.short(),
                snap.summary.files_total
            ),
        );
    } else if snap.incomplete {
        warn(
            json,
            &format!(
                "snapshot {} is incomplete: {} file(s) could not be read when it was taken and \
                 are not in it",
                id.short(),
                snap.summary.errors
            ),
        );
    }
}

/// Name the `--include` patterns that matched nothing; fail when nothing matched at all.
pub fn check_include(inc: &Include, nothing: bool, id: &SnapshotId, json: bool) -> Result<()> {
    let unmatched = inc.unmatched();
    let help = "a pattern without '/' matches a name at any depth, one with '/' the path \
                from the snapshot's top; `snapvault ls` shows the paths, `snapvault find NAME` \
                searches every snapshot";
    if nothing {
        let list = unmatched
            .iter()
            .map(|p| format!("'{p}'"))
            .collect::<Vec<_>>()
            .join(", ");
        bail!(
            "nothing to restore: --include {list} matched nothing in snapshot {} ({help})",
            id.short()
        );
    }
    for p in unmatched {
        warn(
            json,
            &format!("--include '{p}' matched nothing in snapshot {}", id.short()),
        );
    }
    Ok(())
}

/// Mark a restore error as being about the target, so its hint speaks of the target's
/// disk (a full target is not helped by `snapvault prune`).
pub fn at_target<T>(r: snapvault_repo::Result<T>, target: &std::path::Path) -> Result<T> {
    r.map_err(|e| {
        anyhow::Error::new(e).context(crate::exit::AtRestoreTarget(format!(
            "restoring into {} stopped",
            target.display()
        )))
    })
}

/// The newest snapshot taken on or before the end of `date` (UTC), optionally of one device.
fn as_of(repo: &Repository, date: &str, device: Option<&str>) -> Result<(SnapshotId, Snapshot)> {
    let range: DateRange = date.parse()?;
    let (_, hi) = range.day_bounds();
    let (all, _) = repo.snapshots()?;
    all.into_iter()
        .rev()
        .filter(|(_, s)| {
            device.is_none_or(|u| s.source.device.as_ref().is_some_and(|d| d.udid == u))
        })
        .find(|(_, s)| {
            let day = snapvault_repo::time::rfc3339_utc(s.unix_time());
            snapvault_catalog::day_number(&day).is_some_and(|d| d <= hi)
        })
        .ok_or_else(|| anyhow::anyhow!("no snapshot was taken at or before {date}"))
}

pub fn dry_run(ctx: &Ctx, items: &[RestoreItem], snapshot: &str, json: bool) -> Result<i32> {
    let files: Vec<&RestoreItem> = items
        .iter()
        .filter(|i| i.node.kind == NodeKind::File)
        .collect();
    let total: u64 = files.iter().map(|i| i.node.size).sum();
    if json {
        let v: Vec<_> = items
            .iter()
            .map(|i| super::restore_list::json_item(&i.path, &i.node))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"snapshot": snapshot, "files": files.len(), "bytes": total, "items": v})
            )?
        );
    } else {
        for i in items {
            println!("{}", super::restore_list::text_item(&i.path, &i.node));
        }
        ctx.say(format!(
            "would restore {} file(s), {}",
            files.len(),
            fmt::size(total)
        ));
    }
    Ok(0)
}

pub fn report(
    ctx: &Ctx,
    stats: &RestoreStats,
    source: &str,
    target: &std::path::Path,
    json: bool,
) -> Result<i32> {
    if json {
        println!(
            "{}",
            serde_json::json!({
                "snapshot": source,
                "target": target.display().to_string(),
                "files_restored": stats.files_restored,
                "files_already_right": stats.files_already_right,
                "symlinks": stats.symlinks,
                "hardlinks": stats.hardlinks,
                "special_files": stats.specials,
                "dirs": stats.dirs,
                "bytes_written": stats.bytes_written,
                "problems": stats.problems.iter().map(|(p, w)| serde_json::json!({"path": p, "problem": crate::remedy::restore_problem(w)})).collect::<Vec<_>>(),
                "notes": stats.notes.iter().map(|(p, w)| serde_json::json!({"path": p, "note": w})).collect::<Vec<_>>(),
            })
        );
    } else {
        let mut also = String::new();
        if stats.hardlinks > 0 {
            also.push_str(&format!(", {} hard link(s)", stats.hardlinks));
        }
        if stats.specials > 0 {
            also.push_str(&format!(", {} FIFO(s) or device file(s)", stats.specials));
        }
        ctx.say(format!(
            "restored {} file(s) ({}), {} already right, {} symlink(s){also}, {} folder(s) from {} into {}",
            stats.files_restored,
            fmt::size(stats.bytes_written),
            stats.files_already_right,
            stats.symlinks,
            stats.dirs,
            source,
            target.display()
        ));
        for (p, note) in &stats.notes {
            ctx.say(format!(
                "note: not recreated: {}: {}",
                escaped(p),
                escaped(note)
            ));
        }
    }
    if stats.problems.is_empty() {
        return Ok(crate::exit::OK);
    }
    // The failures last, where they are seen: everything else was restored.
    for (p, why) in &stats.problems {
        let why = crate::remedy::restore_problem(why);
        eprintln!("error: not restored: {}: {}", escaped(p), escaped(&why));
    }
    eprintln!(
        "error: {} item(s) were not restored (listed above); everything else was",
        stats.problems.len()
    );
    Ok(crate::exit::INCOMPLETE)
}

/// A restore into the repository's own folder would put the snapshot's files among the
/// repository's: a backed-up folder named `keys` lands in its `keys/` (the repository then
/// takes it for a key file), one named `config` meets its config file. Refused, wherever the
/// target lies in a local repository: symlinks and `..` resolved, and each folder on the
/// way compared with the repository's by identity (a bind mount names it otherwise).
fn refuse_target_in_repository(ctx: &Ctx, target: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Some(loc) = ctx.global.repo.as_deref() else {
        return Ok(());
    };
    if snapvault_remote::is_remote(loc) {
        return Ok(());
    }
    let (Ok(repo), Ok(md)) = (std::fs::canonicalize(loc), std::fs::metadata(loc)) else {
        return Ok(());
    };
    let target_at = resolved(target);
    let same =
        |p: &Path| std::fs::metadata(p).is_ok_and(|m| (m.dev(), m.ino()) == (md.dev(), md.ino()));
    if target_at.starts_with(&repo) || target_at.ancestors().any(same) {
        bail!(
            "the restore target {} is inside the repository {loc}: the restored files would \
             mix with the repository's own; restore into a folder outside it",
            target.display()
        );
    }
    Ok(())
}

/// `p` made absolute, folder by folder: an existing one with its symlinks resolved, one
/// still to be created appended as named, and `..` the folder above the one reached (a
/// folder restore creates is a real folder, so `missing/..` is where `missing` was made).
fn resolved(p: &Path) -> PathBuf {
    use std::path::Component;
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut at = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::Prefix(_) | Component::RootDir => at.push(c),
            Component::CurDir => {}
            Component::ParentDir => {
                at.pop();
            }
            Component::Normal(name) => {
                at.push(name);
                if let Ok(real) = std::fs::canonicalize(&at) {
                    at = real;
                }
            }
        }
    }
    at
}
