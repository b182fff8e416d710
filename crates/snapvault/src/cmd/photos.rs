//! `snapvault photos`: find photos by capture date and kind across every snapshot, and by
//! what the phone's library says of them (edited, favourite, burst, album, Recently
//! Deleted, only in iCloud).

use anyhow::Result;
use serde_json::json;
use std::collections::HashMap;

use snapvault_catalog::{DateRange, KindFilter, LibraryAsset, PhotoQuery, PhotoRow};
use snapvault_repo::text::escaped;
use snapvault_repo::{Repository, SnapshotId};

use super::Ctx;
use crate::cli::PhotosArgs;
use crate::fmt;
use crate::library::filter::{Facts, Filters};
use crate::library::gone::{Gone, Left};
use crate::library::{edit_in, stem_key};

pub fn run(ctx: &Ctx, a: PhotosArgs) -> Result<i32> {
    let dates: Option<DateRange> = a.date.as_deref().map(str::parse).transpose()?;
    let kind: Option<KindFilter> = a.kind.as_deref().map(str::parse).transpose()?;
    let filters = Filters {
        edited: a.edited,
        burst: a.burst,
        favorite: a.favorite,
        album: a.album.clone(),
        deleted: a.deleted,
    };
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
    if a.icloud_only {
        return icloud_only(ctx, &repo, &cat, &q, &filters, a.json);
    }
    // A catalog damaged inside is rebuilt from the repository and asked again.
    let mut rows = cat.retry_on_damage(&repo, &index, |c| c.photos(&q))?;
    // An edit in PhotoData/Mutations (wherever the media root sits in the snapshot) is
    // shown with its original, not as a photo of its own. (Filtered in place: a second
    // vector of rows would double the largest thing this command holds.)
    let edits: HashMap<String, String> = rows
        .iter()
        .filter_map(|r| {
            let (key, render) = edit_in(&r.latest_path)?;
            render.then(|| (key, r.latest_path.clone()))
        })
        .collect();
    rows.retain(|r| edit_in(&r.latest_path).is_none());
    let facts = Facts::load(&cat, rows.iter().map(|r| r.latest_snapshot))?;
    let edit_of = |r: &PhotoRow| edits.get(&stem_key(&r.latest_path));
    rows.retain(|r| {
        filters.pass(
            facts.get(&r.latest_snapshot, &r.latest_path),
            edit_of(r).is_some(),
        )
    });
    // The catalog's order breaks ties by content key; saying so lets the sort work in
    // place (a stable sort borrows half the rows' size again).
    rows.sort_unstable_by(|x, y| {
        x.taken
            .cmp(&y.taken)
            .then(x.latest_path.cmp(&y.latest_path))
            .then(x.content_key.cmp(&y.content_key))
    });
    // Which photos the source no longer holds (only meaningful across all snapshots).
    let gone = match &a.snapshot {
        Some(_) => None,
        None => Some(Gone::new(&repo, &cat)?),
    };
    let on_source = |r: &PhotoRow| gone.as_ref().map(|g| g.last_in(r).is_none());
    let left = |r: &PhotoRow| gone.as_ref().and_then(|g| g.last_in(r));
    if a.json {
        crate::output::json_array(rows.iter().map(|r| {
            let f = facts.get(&r.latest_snapshot, &r.latest_path);
            json!({
                "on_source": on_source(r),
                "only_in_icloud": left(r).map(|(why, _, _)| why == Left::ICloud),
                "path": r.latest_path,
                "taken": r.taken,
                "date_source": r.date_source,
                "kind": r.kind,
                "live": r.live,
                "size": r.size,
                "snapshots": r.snapshot_count,
                "latest_snapshot": r.latest_snapshot.to_hex(),
                "content_id": r.content_id,
                "backed_up": true,
                "edited": edit_of(r).is_some() || f.is_some_and(|f| f.edited),
                "edit_path": edit_of(r),
                "library": f.map(library_json),
            })
        }))?;
        return Ok(0);
    }
    for r in &rows {
        let kind = if r.live { "live" } else { r.kind.as_str() };
        let mut mark = match left(r) {
            Some((Left::ICloud, id, time)) => format!(
                "  (only in iCloud now, not deleted: last on the phone in snapshot {} of {})",
                id.short(),
                fmt::time_ns(time)
            ),
            Some((why, id, time)) => format!(
                "  (no longer {}: last in snapshot {} of {})",
                if why == Left::Folder {
                    "in the source folder"
                } else {
                    "on the phone"
                },
                id.short(),
                fmt::time_ns(time)
            ),
            None => String::new(),
        };
        if let Some(e) = edit_of(r) {
            mark.push_str(&format!("  [edited: {}]", escaped(e)));
        }
        println!(
            "{:<25} {:<6} {:>10} {:>3} snapshot(s)  {}{mark}",
            r.taken.as_deref().unwrap_or("(no date)"),
            kind,
            fmt::size(r.size),
            r.snapshot_count,
            // Names from a phone or a folder: never raw to the terminal.
            escaped(&r.latest_path)
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

/// A library asset's facts for `--json`.
fn library_json(f: &LibraryAsset) -> serde_json::Value {
    json!({
        "favorite": f.favorite,
        "hidden": f.hidden,
        "in_recently_deleted": f.trashed,
        "burst": f.burst,
        "albums": f.albums,
        "icloud_only": f.cloud_only,
    })
}

/// `--icloud-only`: the assets the newest snapshot of each phone (or the one asked for)
/// found listed in the phone's library but kept only in iCloud. They are not in the backup.
fn icloud_only(
    ctx: &Ctx,
    repo: &Repository,
    cat: &snapvault_catalog::Catalog,
    q: &PhotoQuery,
    filters: &Filters,
    json: bool,
) -> Result<i32> {
    let (all, _) = repo.snapshots()?;
    let mut newest: HashMap<String, (SnapshotId, i64)> = HashMap::new();
    for (id, s) in &all {
        let key = s.source.group_key(&s.hostname);
        let wanted = match &q.snapshots {
            Some(only) => only.contains(id),
            None => s.source.device.is_some() && q.source_key.as_ref().is_none_or(|k| *k == key),
        };
        if !wanted
            || s.library
                .as_ref()
                .is_none_or(|l| l.source != "photos.sqlite")
        {
            continue;
        }
        let n = newest.entry(key).or_insert((*id, s.time));
        if s.time > n.1 {
            *n = (*id, s.time);
        }
    }
    let mut rows: Vec<(SnapshotId, LibraryAsset)> = Vec::new();
    for (id, _) in newest.values() {
        let Some(lib) = cat.library_of(id)? else {
            continue;
        };
        for asset in lib.assets {
            let in_range = match (&q.dates, &asset.taken) {
                (None, _) => true,
                (Some(d), Some(t)) => d.contains(t),
                (Some(_), None) => false,
            };
            if asset.cloud_only && in_range && filters.pass(Some(&asset), false) {
                rows.push((*id, asset));
            }
        }
    }
    rows.sort_by(|a, b| a.1.taken.cmp(&b.1.taken).then(a.1.path.cmp(&b.1.path)));
    if json {
        crate::output::json_array(rows.iter().map(|(id, f)| {
            json!({
                "on_source": null,
                "path": f.path,
                "taken": f.taken,
                "kind": f.kind,
                "backed_up": false,
                "latest_snapshot": id.to_hex(),
                "edited": f.edited,
                "library": library_json(f),
            })
        }))?;
        return Ok(0);
    }
    if newest.is_empty() {
        ctx.say("no snapshot holds a phone's Photos library (Photos.sqlite): which photos are only in iCloud is unknown");
        return Ok(0);
    }
    for (id, f) in &rows {
        println!(
            "{:<25} {:<6} not backed up: only in iCloud (seen in snapshot {})  {}",
            f.taken.as_deref().unwrap_or("(no date)"),
            f.kind,
            id.short(),
            // From the phone's own database.
            escaped(&f.path)
        );
    }
    ctx.say(format!(
        "{} photo(s) and video(s) only in iCloud: this backup does not hold them; to back them up turn on Settings > Photos > Download and Keep Originals on the phone, wait for the download, and take a new snapshot",
        rows.len()
    ));
    Ok(0)
}
