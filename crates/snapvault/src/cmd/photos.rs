//! `snapvault photos`: find photos by capture date and kind across every snapshot.

use anyhow::Result;
use serde_json::json;
use std::collections::HashMap;

use snapvault_catalog::{DateRange, KindFilter, PhotoQuery, PhotoRow};
use snapvault_repo::{Repository, SnapshotId};

use super::Ctx;
use crate::cli::PhotosArgs;
use crate::fmt;

pub fn run(ctx: &Ctx, a: PhotosArgs) -> Result<i32> {
    let dates: Option<DateRange> = a.date.as_deref().map(str::parse).transpose()?;
    let kind: Option<KindFilter> = a.kind.as_deref().map(str::parse).transpose()?;
    let repo = ctx.open()?;
    let index = repo.load_index()?.index;
    let mut cat = crate::catalog::open_synced(&repo, &index, ctx.global.verbose > 0)?;
    let snapshots = match &a.snapshot {
        Some(s) => Some(vec![repo.find_snapshot(s)?.0]),
        None => None,
    };
    let q = PhotoQuery {
        dates,
        kind,
        snapshots,
        source_key: a.device.as_ref().map(|u| format!("device:{u}")),
    };
    // A catalog damaged inside is rebuilt from the repository and asked again.
    let mut rows = cat.retry_on_damage(&repo, &index, |c| c.photos(&q))?;
    rows.sort_by(|x, y| {
        x.taken
            .cmp(&y.taken)
            .then(x.latest_path.cmp(&y.latest_path))
    });
    // Which photos the source no longer holds (only meaningful across all snapshots).
    let gone = match &a.snapshot {
        Some(_) => None,
        None => Some(Gone::new(&repo)?),
    };
    let on_source = |r: &PhotoRow| gone.as_ref().map(|g| g.last_in(r).is_none());
    if a.json {
        let v: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({
                    "on_source": on_source(r),
                    "path": r.latest_path,
                    "taken": r.taken,
                    "date_source": r.date_source,
                    "kind": r.kind,
                    "live": r.live,
                    "size": r.size,
                    "snapshots": r.snapshot_count,
                    "latest_snapshot": r.latest_snapshot.to_hex(),
                    "content_id": r.content_id,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    for r in &rows {
        let kind = if r.live { "live" } else { r.kind.as_str() };
        let mark = match gone.as_ref().and_then(|g| g.last_in(r)) {
            Some((what, id, time)) => format!(
                "  (no longer {what}: last in snapshot {} of {})",
                id.short(),
                fmt::time_ns(time)
            ),
            None => String::new(),
        };
        println!(
            "{:<25} {:<6} {:>10} {:>3} snapshot(s)  {}{mark}",
            r.taken.as_deref().unwrap_or("(no date)"),
            kind,
            fmt::size(r.size),
            r.snapshot_count,
            r.latest_path
        );
    }
    let total: u64 = rows.iter().map(|r| r.size).sum();
    ctx.say(format!(
        "{} photo(s) and video(s), {}",
        rows.len(),
        fmt::size(total)
    ));
    Ok(0)
}

/// The newest complete snapshot of each source, to tell photos still on the phone (or in
/// the folder) from photos only the backups hold. A partial or incomplete snapshot does
/// not count: a photo it lacks may simply not have been read.
struct Gone {
    /// Snapshot → (its source's key, its time, phone or folder).
    of: HashMap<SnapshotId, (String, i64, bool)>,
    /// Source key → time of its newest complete snapshot.
    newest: HashMap<String, i64>,
}

impl Gone {
    fn new(repo: &Repository) -> Result<Gone> {
        let (all, _) = repo.snapshots()?;
        let mut of = HashMap::new();
        let mut newest: HashMap<String, i64> = HashMap::new();
        for (id, s) in &all {
            let key = s.source.group_key(&s.hostname);
            of.insert(*id, (key.clone(), s.time, s.source.device.is_some()));
            if !s.incomplete {
                let n = newest.entry(key).or_insert(s.time);
                *n = (*n).max(s.time);
            }
        }
        Ok(Gone { of, newest })
    }

    /// For a photo its source no longer holds: ("on the phone" or "in the source folder",
    /// the last snapshot holding it, that snapshot's time).
    fn last_in(&self, r: &PhotoRow) -> Option<(&'static str, SnapshotId, i64)> {
        let (key, time, phone) = self.of.get(&r.latest_snapshot)?;
        let newest = self.newest.get(key)?;
        (newest > time).then(|| {
            let what = if *phone {
                "on the phone"
            } else {
                "in the source folder"
            };
            (what, r.latest_snapshot, *time)
        })
    }
}
