//! `snapvault diff A B`: photos added, removed and changed between two snapshots.
//! Added and removed are by content (a photo moved to another folder is neither);
//! changed means the same path now holds different content. A photo that left the phone
//! because its original went to iCloud ("Optimize iPhone Storage": the phone's library of
//! snapshot B still lists it, only in iCloud) is not removed: it is listed apart.

use std::collections::{HashMap, HashSet};

use anyhow::Result;
use serde_json::json;

use super::Ctx;
use crate::cli::DiffArgs;
use crate::fmt;
use crate::photoset::{self, ContentKey};

pub fn run(ctx: &Ctx, a: DiffArgs) -> Result<i32> {
    let repo = ctx.open()?;
    let (ida, sa) = repo.find_snapshot(&a.from)?;
    let (idb, sb) = repo.find_snapshot(&a.to)?;
    let index = repo.load_index()?.index;
    let keep = |n: &snapvault_repo::tree::Node| a.all || photoset::is_library_file(&n.media);
    let files_a: Vec<_> = photoset::files_of(&repo, &index, &sa.tree)?
        .into_iter()
        .filter(|(_, n)| keep(n))
        .collect();
    let files_b: Vec<_> = photoset::files_of(&repo, &index, &sb.tree)?
        .into_iter()
        .filter(|(_, n)| keep(n))
        .collect();
    let keys_a: HashSet<ContentKey> = files_a
        .iter()
        .map(|(_, n)| photoset::content_key(n))
        .collect();
    let keys_b: HashSet<ContentKey> = files_b
        .iter()
        .map(|(_, n)| photoset::content_key(n))
        .collect();
    let by_path_a: HashMap<&str, ContentKey> = files_a
        .iter()
        .map(|(p, n)| (p.as_str(), photoset::content_key(n)))
        .collect();
    let by_path_b: HashMap<&str, ContentKey> = files_b
        .iter()
        .map(|(p, n)| (p.as_str(), photoset::content_key(n)))
        .collect();
    let row = |p: &str, n: &snapvault_repo::tree::Node| json!({"path": p, "size": n.size, "kind": n.media.as_ref().map(|m| m.kind.clone()), "taken": n.media.as_ref().and_then(|m| m.taken.clone())});
    let added: Vec<_> = files_b
        .iter()
        .filter(|(p, n)| {
            let k = photoset::content_key(n);
            !keys_a.contains(&k) && by_path_a.get(p.as_str()).is_none_or(|old| *old == k)
        })
        .collect();
    let left: Vec<_> = files_a
        .iter()
        .filter(|(p, n)| {
            let k = photoset::content_key(n);
            !keys_b.contains(&k) && !by_path_b.contains_key(p.as_str())
        })
        .collect();
    let cloud = icloud_stems(ctx, &repo, &index, &idb, &sb)?;
    let (to_icloud, removed): (Vec<_>, Vec<_>) = left
        .into_iter()
        .partition(|(p, _)| cloud.contains(&crate::library::stem_key(p)));
    let changed: Vec<_> = files_b
        .iter()
        .filter(|(p, n)| {
            by_path_a
                .get(p.as_str())
                .is_some_and(|old| *old != photoset::content_key(n))
        })
        .collect();
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "from": ida.to_hex(),
                "to": idb.to_hex(),
                "added": added.iter().map(|(p, n)| row(p, n)).collect::<Vec<_>>(),
                "removed": removed.iter().map(|(p, n)| row(p, n)).collect::<Vec<_>>(),
                "changed": changed.iter().map(|(p, n)| row(p, n)).collect::<Vec<_>>(),
                "to_icloud": to_icloud.iter().map(|(p, n)| row(p, n)).collect::<Vec<_>>(),
            }))?
        );
        return Ok(0);
    }
    for (sign, list) in [
        ("+", &added),
        ("-", &removed),
        ("M", &changed),
        ("i", &to_icloud),
    ] {
        for (p, n) in list.iter() {
            let taken = n
                .media
                .as_ref()
                .and_then(|m| m.taken.clone())
                .unwrap_or_default();
            let note = if sign == "i" {
                "  (now only in iCloud, not deleted)"
            } else {
                ""
            };
            // Names from a phone or a folder: never raw to the terminal.
            println!(
                "{sign} {}  {}  {taken}{note}",
                snapvault_repo::text::escaped(p),
                fmt::size(n.size)
            );
        }
    }
    // Each count says what it is made of, so it can be matched with the snapshot summary.
    let counted = |list: &[&(String, snapvault_repo::tree::Node)], what: &str| {
        let kinds = photoset::kinds_text(
            list.iter()
                .map(|(_, n)| n.media.as_ref().map(|m| m.kind.as_str())),
        );
        if list.is_empty() {
            format!("0 {what}")
        } else {
            format!("{} {what} ({kinds})", list.len())
        }
    };
    let icloud = if to_icloud.is_empty() {
        String::new()
    } else {
        format!(
            ", {} (their originals are in iCloud; earlier snapshots hold them)",
            counted(&to_icloud, "now only in iCloud, not on the phone")
        )
    };
    ctx.say(format!(
        "{} → {}: {}, {}, {}{icloud}",
        ida.short(),
        idb.short(),
        counted(&added, "added"),
        counted(&removed, "removed"),
        counted(&changed, "changed")
    ));
    Ok(0)
}

/// The assets snapshot `b`'s Photos library keeps only in iCloud, as
/// [`crate::library::stem_key`]s (none for a folder snapshot or one without a library).
/// The catalog holds them; if it cannot, a warning says the split is not made.
fn icloud_stems(
    ctx: &Ctx,
    repo: &snapvault_repo::Repository,
    index: &snapvault_repo::index::Index,
    id: &snapvault_repo::SnapshotId,
    b: &snapvault_repo::snapshot::Snapshot,
) -> Result<HashSet<String>> {
    if b.source.device.is_none()
        || b.library
            .as_ref()
            .is_none_or(|l| l.source != "photos.sqlite")
    {
        return Ok(HashSet::new());
    }
    let lib = crate::catalog::open_synced(repo, index, ctx.global.verbose > 0)
        .and_then(|cat| Ok(cat.library_of(id)?));
    match lib {
        Ok(Some(l)) => Ok(l
            .assets
            .iter()
            .filter(|a| a.cloud_only)
            .map(|a| crate::library::stem_key(&a.path))
            .collect()),
        Ok(None) => Ok(HashSet::new()),
        Err(e) => {
            eprintln!(
                "warning: the phone library of snapshot {} could not be read ({}); photos now only in iCloud are counted as removed",
                id.short(),
                crate::exit::message(&e)
            );
            Ok(HashSet::new())
        }
    }
}
