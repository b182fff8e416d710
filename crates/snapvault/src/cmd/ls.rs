use anyhow::{Result, bail};
use serde_json::json;
use snapvault_repo::tree::NodeKind;

use super::Ctx;
use crate::cli::LsArgs;

pub fn run(ctx: &Ctx, a: LsArgs) -> Result<i32> {
    let repo = ctx.open()?;
    let (sid, snap) = repo.find_snapshot(&a.snapshot)?;
    let index = repo.load_index()?.index;
    let prefix = a
        .path
        .as_deref()
        .unwrap_or("")
        .trim_matches('/')
        .to_string();
    let mut rows = Vec::new();
    let mut stack = vec![(snap.tree, String::new())];
    let mut found_prefix = prefix.is_empty();
    while let Some((tid, path)) = stack.pop() {
        let tree = repo.load_tree(&index, &tid)?;
        for n in tree.nodes.into_iter().rev() {
            let p = if path.is_empty() {
                n.name.lossy()
            } else {
                format!("{path}/{}", n.name.lossy())
            };
            let under = prefix.is_empty() || p == prefix || p.starts_with(&format!("{prefix}/"));
            let above = prefix.starts_with(&format!("{p}/"));
            if under {
                found_prefix = true;
            }
            if let (NodeKind::Dir, Some(sub)) = (n.kind, n.subtree)
                && (under || above)
            {
                stack.push((sub, p.clone()));
            }
            if under {
                rows.push((p, n));
            }
        }
    }
    if !found_prefix {
        bail!("path {prefix:?} is not in snapshot {}", sid.short());
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    if a.json {
        let v: Vec<_> = rows
            .iter()
            .map(|(p, n)| {
                json!({
                    "path": p,
                    "type": n.kind,
                    "size": n.size,
                    "mode": format!("{:o}", n.mode),
                    "mtime": snapvault_repo::time::rfc3339_utc(n.mtime.div_euclid(1_000_000_000)),
                    "target": n.target.as_ref().map(|t| t.lossy()),
                    "media": n.media,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    for (p, n) in rows {
        let t = match n.kind {
            NodeKind::Dir => 'd',
            NodeKind::File => '-',
            NodeKind::Symlink => 'l',
        };
        let link = n
            .target
            .map(|t| format!(" -> {}", t.lossy()))
            .unwrap_or_default();
        println!(
            "{t}{:04o} {:>12} {} {p}{link}",
            n.mode & 0o7777,
            n.size,
            crate::fmt::time_ns(n.mtime)
        );
    }
    let _ = ctx;
    Ok(0)
}
