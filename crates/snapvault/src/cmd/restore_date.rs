//! `restore --date`: photos *taken* in a period, found in every snapshot (so photos deleted
//! from the phone since still come back), each distinct photo once under its most recent
//! path, with its Live Photo video and sidecars. `--layout date` files them as
//! `YYYY/MM/name`; two different photos with the same name both survive, and a photo's
//! companions are renamed with it so they stay paired.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::{Result, bail};
use snapvault_catalog::{DateRange, PhotoQuery, PhotoRow};
use snapvault_repo::restorer::{self, RestoreItem, RestoreOptions};
use snapvault_repo::tree::{Name, Node, NodeKind};

use super::{Ctx, io_threads};
use crate::cli::{Layout, RestoreArgs};

pub fn run(ctx: &Ctx, a: &RestoreArgs) -> Result<i32> {
    let range: DateRange = a.date.as_deref().unwrap_or_default().parse()?;
    if !a.include.is_empty() {
        bail!("--include goes with a snapshot restore, not with --date");
    }
    let repo = ctx.open()?;
    let _lock = repo.lock(false, "restore")?;
    let index = repo.load_index()?.index;
    let mut cat = crate::catalog::open_synced(&repo, &index, ctx.global.verbose > 0)?;
    let only = a.only_snapshot.as_ref().or(a.snapshot.as_ref());
    let snapshots = match only {
        Some(s) => Some(vec![repo.find_snapshot(s)?.0]),
        None => None,
    };
    let q = PhotoQuery {
        dates: Some(range),
        kind: None,
        snapshots,
        source_key: a.device.as_ref().map(|u| format!("device:{u}")),
    };
    // A catalog damaged inside is rebuilt from the repository and asked again.
    let (rows, companions) = cat.retry_on_damage(&repo, &index, |c| {
        let rows = c.photos(&q)?;
        let companions = c.companions(&q, &rows)?;
        Ok((rows, companions))
    })?;
    let items = place(&rows, &companions, a.layout);
    let label = format!("photos taken {range}");
    if a.dry_run {
        return super::restore::dry_run(ctx, &items, &label, a.json);
    }
    if items.is_empty() {
        ctx.say(format!("no photos taken {range} in the repository"));
        return Ok(0);
    }
    let opts = RestoreOptions {
        target: a.target.clone(),
        include: None,
        overwrite: a.overwrite,
        dry_run: false,
        threads: io_threads(),
    };
    let progress = crate::progress::Progress::new(
        "restore",
        crate::progress::mode(ctx.global.quiet, a.json),
        crate::progress::Unit::Files,
    );
    let observer = crate::progress::RestoreProgress::new(&progress, &items);
    let stats = restorer::restore(&repo, &index, &items, &[], &opts, &observer);
    progress.finish();
    let stats = stats?;
    super::restore::report(ctx, &stats, &label, &a.target, a.json)
}

fn split_name(path: &str) -> (&str, &str) {
    let name = path.rsplit('/').next().unwrap_or(path);
    match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    }
}

/// Decide where each photo goes. Rows and companions are grouped by pairing key (one
/// group per photo otherwise); a group moves and is renamed as a whole.
pub fn place(rows: &[PhotoRow], companions: &[PhotoRow], layout: Layout) -> Vec<RestoreItem> {
    let mut seen = HashSet::new();
    let mut groups: BTreeMap<String, Vec<&PhotoRow>> = BTreeMap::new();
    for r in rows.iter().chain(companions) {
        if !seen.insert(r.content_key.clone()) {
            continue;
        }
        let key = match &r.pair {
            Some(p) => format!("pair:{}", p),
            None => format!("content:{}", r.content_key),
        };
        groups.entry(key).or_default().push(r);
    }
    let mut taken_paths: HashMap<String, String> = HashMap::new(); // path -> content key
    let mut out = Vec::new();
    for members in groups.values() {
        // The still (or the first member in range) decides the folder.
        let primary = members
            .iter()
            .find(|m| m.kind == "photo")
            .or_else(|| members.iter().find(|m| m.kind == "video"))
            .unwrap_or(&members[0]);
        let paths: Vec<String> = match layout {
            Layout::Original => members.iter().map(|m| m.latest_path.clone()).collect(),
            Layout::Date => {
                let folder = match primary.taken.as_deref() {
                    Some(t) if t.len() >= 7 => format!("{}/{}", &t[..4], &t[5..7]),
                    _ => "undated".to_string(),
                };
                let (stem, _) = split_name(&primary.latest_path);
                let mut n = 1;
                loop {
                    let s = if n == 1 {
                        stem.to_string()
                    } else {
                        format!("{stem} ({n})")
                    };
                    let candidate: Vec<String> = members
                        .iter()
                        .map(|m| {
                            let (own_stem, ext) = split_name(&m.latest_path);
                            // Companions keep their own stem's edit prefix but follow renames.
                            let own = if own_stem == stem {
                                s.clone()
                            } else if n == 1 {
                                own_stem.to_string()
                            } else {
                                format!("{own_stem} ({n})")
                            };
                            format!("{folder}/{own}{ext}")
                        })
                        .collect();
                    let clash = candidate
                        .iter()
                        .zip(members.iter())
                        .any(|(p, m)| taken_paths.get(p).is_some_and(|k| *k != m.content_key));
                    if !clash {
                        break candidate;
                    }
                    n += 1;
                }
            }
        };
        for (p, m) in paths.into_iter().zip(members.iter()) {
            if taken_paths.contains_key(&p) {
                continue; // the same content already placed here
            }
            taken_paths.insert(p.clone(), m.content_key.clone());
            let name = p.rsplit('/').next().unwrap_or(&p).to_string();
            out.push(RestoreItem {
                path: p.into_bytes(),
                node: Node {
                    name: Name(name.into_bytes()),
                    kind: NodeKind::File,
                    mode: m.mode,
                    mtime: m.mtime,
                    btime: None,
                    size: m.size,
                    content: m.content.clone(),
                    subtree: None,
                    target: None,
                    media: None,
                },
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}
