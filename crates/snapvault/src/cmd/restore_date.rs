//! `restore --date`: photos *taken* in a period, found in every snapshot (so photos deleted
//! from the phone since still come back), each distinct photo once under its most recent
//! path, with its Live Photo video and sidecars. `--layout date` files them as
//! `YYYY/MM/name`; two different photos with the same name both survive, and a photo's
//! companions are renamed with it so they stay paired.
//!
//! The catalog (a cache) only selects: each photo it names is looked up in its snapshot's
//! own tree, which supplies the exact name bytes, the chunks, mode and times. A catalog
//! that disagrees with the repository is rebuilt and asked again.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::{Result, anyhow, bail};
use snapvault_catalog::{Catalog, DateRange, PhotoQuery, PhotoRow};
use snapvault_repo::index::Index;
use snapvault_repo::restorer::{self, RestoreItem, RestoreOptions};
use snapvault_repo::tree::{Name, Node, NodeKind, Tree};
use snapvault_repo::{BlobId, Id, Repository, SnapshotId};

use super::restore_edits::Side;
use super::{Ctx, io_threads};
use crate::cli::{Layout, RestoreArgs};

pub fn run(ctx: &Ctx, a: &RestoreArgs) -> Result<i32> {
    let range: DateRange = a.date.as_deref().unwrap_or_default().parse()?;
    let include = crate::include::Include::new(&a.include)?;
    // The index and snapshot files are hinted to the disk while the key is derived.
    let repo = ctx.open_early(|o| o.prefetch_metadata())?;
    let _lock = crate::readonly::shared_lock(ctx, &repo, "restore")?;
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
    let ask = |c: &Catalog| -> snapvault_catalog::Result<(Vec<PhotoRow>, Vec<PhotoRow>)> {
        let rows = c.photos(&q)?;
        let companions = c.companions(&q, &rows)?;
        Ok((rows, companions))
    };
    // A catalog damaged inside is rebuilt from the repository and asked again.
    let (rows, companions) = cat.retry_on_damage(&repo, &index, ask)?;
    let found = match look_up(&repo, &index, rows.iter().chain(&companions))? {
        Ok(found) => found,
        Err(why) => {
            eprintln!(
                "note: the photo catalog disagrees with the repository ({why}); rebuilding it"
            );
            cat.recreate(&format!("disagreed with the repository: {why}"))?;
            cat.sync(&repo, &index)?;
            let (rows, companions) = ask(&cat)?;
            look_up(&repo, &index, rows.iter().chain(&companions))?.map_err(|why| {
                anyhow!(
                    "the photo catalog disagrees with the repository even after a rebuild: {why}"
                )
            })?
        }
    };
    let found: Vec<Found> = match &include {
        None => found,
        Some(inc) => {
            // A photo's Live Photo video and sidecars come with it.
            let hit: Vec<bool> = found.iter().map(|f| inc.matches_path(&f.path)).collect();
            let pairs: HashSet<String> = found
                .iter()
                .zip(&hit)
                .filter(|(_, h)| **h)
                .filter_map(|(f, _)| f.pair.clone())
                .collect();
            let kept: Vec<Found> = found
                .into_iter()
                .zip(hit)
                .filter(|(f, h)| *h || f.pair.as_ref().is_some_and(|p| pairs.contains(p)))
                .map(|(f, _)| f)
                .collect();
            let nothing = kept.is_empty();
            check_include_by_date(inc, nothing, &range, a.json)?;
            kept
        }
    };
    let side = match (a.originals_only, a.edits_only) {
        (true, _) => Side::Originals,
        (_, true) => Side::Edits,
        _ => Side::Both,
    };
    let found = super::restore_edits::with_edits(&repo, &index, found, a.layout, side)?;
    let items = place(&found, a.layout);
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
    let stats = super::restore::at_target(stats, &a.target)?;
    super::restore::report(ctx, &stats, &label, &a.target, a.json)
}

/// As [`super::restore::check_include`], for the photos taken in `range`.
fn check_include_by_date(
    inc: &crate::include::Include,
    nothing: bool,
    range: &DateRange,
    json: bool,
) -> Result<()> {
    let unmatched = inc.unmatched();
    if nothing {
        let list = unmatched
            .iter()
            .map(|p| format!("'{p}'"))
            .collect::<Vec<_>>()
            .join(", ");
        bail!("nothing to restore: --include {list} matched none of the photos taken {range}");
    }
    for p in unmatched {
        super::restore::warn(
            json,
            &format!("--include '{p}' matched none of the photos taken {range}"),
        );
    }
    Ok(())
}

/// A selected photo as its snapshot's own tree records it.
#[derive(Clone, Debug)]
pub struct Found {
    pub content_key: String,
    /// `photo`, `video`, `sidecar`.
    pub kind: String,
    pub taken: Option<String>,
    pub pair: Option<String>,
    /// Its path in that snapshot, exactly (an edit put beside its original: that path).
    pub path: Vec<u8>,
    pub node: Node,
    /// The root tree of the snapshot it was found in.
    pub root: BlobId,
}

/// The content key of a file node: hex BLAKE3 of its chunk ids (as the catalog's).
pub fn content_key_of(node: &Node) -> String {
    let mut ids = Vec::with_capacity(node.content.len() * 32);
    for id in &node.content {
        ids.extend_from_slice(id.as_bytes());
    }
    Id::hash_of(&ids).to_hex()
}

/// Look every row up in the tree of its latest snapshot. `Ok(Err(why))`: the catalog
/// names something the tree does not hold (the catalog is stale or was tampered with).
fn look_up<'a>(
    repo: &Repository,
    index: &Index,
    rows: impl Iterator<Item = &'a PhotoRow>,
) -> Result<std::result::Result<Vec<Found>, String>> {
    let mut roots: HashMap<SnapshotId, BlobId> = HashMap::new();
    let mut trees: HashMap<BlobId, Tree> = HashMap::new();
    let mut out = Vec::new();
    for r in rows {
        let root = match roots.get(&r.latest_snapshot) {
            Some(t) => *t,
            None => {
                let t = repo.load_snapshot(&r.latest_snapshot)?.tree;
                roots.insert(r.latest_snapshot, t);
                t
            }
        };
        let shown = &r.latest_path;
        let Some(node) = find_file(repo, index, &mut trees, root, &r.latest_path_bytes)? else {
            return Ok(Err(format!(
                "{shown} is not a file in snapshot {}",
                r.latest_snapshot.short()
            )));
        };
        let mut ids = Vec::with_capacity(node.content.len() * 32);
        for id in &node.content {
            ids.extend_from_slice(id.as_bytes());
        }
        if Id::hash_of(&ids).to_hex() != r.content_key {
            return Ok(Err(format!(
                "{shown} in snapshot {} has other content",
                r.latest_snapshot.short()
            )));
        }
        let media = node.media.clone().unwrap_or_default();
        out.push(Found {
            content_key: r.content_key.clone(),
            kind: if media.kind.is_empty() {
                r.kind.clone()
            } else {
                media.kind
            },
            taken: media.taken.or_else(|| r.taken.clone()),
            pair: media.pair,
            path: r.latest_path_bytes.clone(),
            node,
            root,
        });
    }
    Ok(Ok(out))
}

/// The file node at `path` under the tree `root`, or None when there is none.
fn find_file(
    repo: &Repository,
    index: &Index,
    trees: &mut HashMap<BlobId, Tree>,
    root: BlobId,
    path: &[u8],
) -> Result<Option<Node>> {
    let mut tree_id = root;
    let mut parts = path.split(|&b| b == b'/').peekable();
    while let Some(part) = parts.next() {
        let tree = match trees.entry(tree_id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(repo.load_tree(index, &tree_id)?)
            }
        };
        let Ok(k) = tree
            .nodes
            .binary_search_by(|n| n.name.0.as_slice().cmp(part))
        else {
            return Ok(None);
        };
        let node = &tree.nodes[k];
        match (parts.peek().is_none(), node.kind, node.subtree) {
            (true, NodeKind::File, _) => return Ok(Some(node.clone())),
            (false, NodeKind::Dir, Some(sub)) => tree_id = sub,
            _ => return Ok(None),
        }
    }
    Ok(None)
}

/// `(stem, extension)` of the last component of `path`: `IMG_0001`, `.HEIC`.
fn split_name(path: &[u8]) -> (&[u8], &[u8]) {
    let name = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    match name.iter().rposition(|&b| b == b'.') {
        Some(i) if i > 0 => name.split_at(i),
        _ => (name, b""),
    }
}

/// `stem (n)`, or `stem` for n = 1.
fn numbered(stem: &[u8], n: usize) -> Vec<u8> {
    if n == 1 {
        return stem.to_vec();
    }
    [stem, format!(" ({n})").as_bytes()].concat()
}

/// `YYYY/MM` of a capture time, or `undated`.
fn month_folder(taken: Option<&str>) -> String {
    match taken.and_then(|t| Some((t.get(..4)?, t.get(5..7)?))) {
        Some((y, m)) if y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) => {
            format!("{y}/{m}")
        }
        _ => "undated".to_string(),
    }
}

/// Decide where each photo goes. Photos and companions are grouped by pairing key (one
/// group per photo otherwise); a group moves and is renamed as a whole.
pub fn place(found: &[Found], layout: Layout) -> Vec<RestoreItem> {
    let mut seen = HashSet::new();
    let mut groups: BTreeMap<String, Vec<&Found>> = BTreeMap::new();
    for r in found {
        if !seen.insert(r.content_key.clone()) {
            continue;
        }
        let key = match &r.pair {
            Some(p) => format!("pair:{}", p),
            None => format!("content:{}", r.content_key),
        };
        groups.entry(key).or_default().push(r);
    }
    let mut taken_paths: HashMap<Vec<u8>, String> = HashMap::new(); // path -> content key
    let mut out = Vec::new();
    for members in groups.values() {
        // The still (or the first member in range) decides the folder.
        let primary = members
            .iter()
            .find(|m| m.kind == "photo")
            .or_else(|| members.iter().find(|m| m.kind == "video"))
            .unwrap_or(&members[0]);
        let paths: Vec<Vec<u8>> = match layout {
            Layout::Original => members.iter().map(|m| m.path.clone()).collect(),
            Layout::Date => {
                let folder = month_folder(primary.taken.as_deref());
                let (stem, _) = split_name(&primary.path);
                let mut n = 1;
                loop {
                    let candidate: Vec<Vec<u8>> = members
                        .iter()
                        .map(|m| {
                            let (own_stem, ext) = split_name(&m.path);
                            // Companions keep their own stem's edit prefix but follow renames.
                            let own = if own_stem == stem {
                                numbered(stem, n)
                            } else {
                                numbered(own_stem, n)
                            };
                            [folder.as_bytes(), b"/", &own, ext].concat()
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
            let name = p.rsplit(|&b| b == b'/').next().unwrap_or(&p).to_vec();
            let mut node = m.node.clone();
            node.name = Name(name);
            out.push(RestoreItem { path: p, node });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}
