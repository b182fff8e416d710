//! `snapvault find NAME|GLOB`: which snapshots hold a file or folder, and when (restic's
//! `find` as the model). Patterns match as `restore --include` does (include.rs): a bare name
//! at any depth, a path with `/` from the snapshot's top. Each tree is read and decrypted
//! once, however many snapshots share it.

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value};
use snapvault_repo::snapshot::Snapshot;
use snapvault_repo::text::escaped;
use snapvault_repo::tree::{Node, NodeKind};
use snapvault_repo::walk::{Sharing, TreeWalker, Visitor};
use snapvault_repo::{BlobId, RepoError, SnapshotId};

use super::Ctx;
use crate::cli::FindArgs;
use crate::fmt;
use crate::include::Include;

/// What one snapshot holds that matches: (path, entry), in path order.
type Matches = Vec<(Vec<u8>, Node)>;

pub fn run(ctx: &Ctx, a: FindArgs) -> Result<i32> {
    let inc = Include::build(&a.patterns, "pattern", a.ignore_case)?
        .ok_or_else(|| anyhow!("give a name or glob to find"))?;
    let repo = ctx.open()?;
    let index = repo.load_index()?.index;
    let (all, unreadable) = repo.snapshots()?;
    for (name, e) in &unreadable {
        super::restore::warn(
            a.json,
            &format!("snapshot {name} cannot be read and was not searched: {e}"),
        );
    }
    let snaps: Vec<&(SnapshotId, Snapshot)> = all
        .iter()
        .filter(|(_, s)| {
            a.device.as_ref().is_none_or(|d| {
                s.source
                    .device
                    .as_ref()
                    .is_some_and(|dev| dev.udid == *d || dev.name == *d)
            })
        })
        .collect();
    let mut trees = TreeWalker::with(&repo, &index, Sharing::EveryPath { keep: true });
    // Newest first: the copy a user most likely wants to restore.
    let mut found: Vec<(&SnapshotId, &Snapshot, Matches)> = Vec::new();
    for (id, snap) in snaps.iter().rev().map(|e| (&e.0, &e.1)) {
        let m = search(&mut trees, &inc, snap.tree)
            .with_context(|| format!("searching snapshot {}", id.short()))?;
        if !m.is_empty() {
            found.push((id, snap, m));
        }
    }
    let wanted = a
        .patterns
        .iter()
        .map(|p| format!("'{p}'"))
        .collect::<Vec<_>>()
        .join(", ");
    if found.is_empty() {
        bail!(
            "{wanted} matched nothing in any of the {} snapshot(s) searched",
            snaps.len()
        );
    }
    if a.json {
        let v: Vec<Value> = found
            .iter()
            .map(|(id, s, m)| json_snapshot(id, s, m))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    let mut total = 0;
    for (id, s, m) in &found {
        println!(
            "snapshot {} of {} ({})",
            id.short(),
            fmt::time_ns(s.time),
            source_of(s)
        );
        for (path, n) in m {
            let slash = if n.kind == NodeKind::Dir { "/" } else { "" };
            let taken = n
                .media
                .as_ref()
                .and_then(|m| m.taken.as_deref())
                .map(|t| format!("  taken {t}"))
                .unwrap_or_default();
            println!(
                "  {:>10}  {}  {}{slash}{taken}",
                if n.kind == NodeKind::File {
                    fmt::size(n.size)
                } else {
                    String::new()
                },
                fmt::time_ns(n.mtime),
                snapvault_repo::text::escaped_bytes(path)
            );
        }
        total += m.len();
    }
    ctx.say(format!(
        "{wanted}: {total} match(es) in {} of {} snapshot(s); restore one with \
         `snapvault restore {} --include '{}' --target DIR`",
        found.len(),
        snaps.len(),
        found[0].0.short(),
        a.patterns.first().map(String::as_str).unwrap_or("NAME")
    ));
    Ok(0)
}

/// Every entry under `root` that matches (a matching folder is listed and searched too),
/// in path order. `trees` walks every path and keeps the trees it loaded, so snapshots
/// sharing most of their listings read each once; repetition out of all proportion stops
/// the search (`expansion`).
fn search(trees: &mut TreeWalker, inc: &Include, root: BlobId) -> Result<Matches> {
    struct Search<'a> {
        inc: &'a Include,
        out: Matches,
    }
    impl Visitor for Search<'_> {
        fn entry(&mut self, path: &[u8], n: &Node) -> snapvault_repo::Result<bool> {
            if self.inc.matches(path, &n.name.0) {
                self.out.push((path.to_vec(), n.clone()));
            }
            Ok(true)
        }
        fn unreadable(&mut self, _: &BlobId, _: &[u8], e: RepoError) -> snapvault_repo::Result<()> {
            Err(e)
        }
    }
    let mut s = Search {
        inc,
        out: Vec::new(),
    };
    trees.walk(root, &mut s)?;
    let mut out = s.out;
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The phone's name, or the folders backed up.
fn source_of(s: &Snapshot) -> String {
    match &s.source.device {
        Some(d) => format!("iPhone \"{}\"", escaped(&d.name)),
        None => format!("{} {}", s.hostname, s.source.paths.join(", ")),
    }
}

fn json_snapshot(id: &SnapshotId, s: &Snapshot, m: &Matches) -> Value {
    let matches: Vec<Value> = m
        .iter()
        .map(|(path, n)| {
            let mut o = Map::new();
            fmt::json_bytes(&mut o, "path", path);
            o.insert(
                "type".into(),
                serde_json::to_value(n.kind).unwrap_or_default(),
            );
            o.insert("size".into(), n.size.into());
            o.insert(
                "mtime".into(),
                snapvault_repo::time::rfc3339_utc(n.mtime.div_euclid(1_000_000_000)).into(),
            );
            let taken = n.media.as_ref().and_then(|m| m.taken.clone());
            o.insert("taken".into(), taken.into());
            Value::Object(o)
        })
        .collect();
    serde_json::json!({
        "snapshot": id.to_hex(),
        "short_id": id.short(),
        "time": snapvault_repo::time::rfc3339_utc(s.unix_time()),
        "hostname": s.hostname,
        "source": s.source,
        "tags": s.tags,
        "matches": matches,
    })
}
