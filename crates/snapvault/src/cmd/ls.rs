//! `snapvault ls SNAPSHOT [PATH]`: the entries of a snapshot, by their exact name bytes.

use anyhow::{Result, bail};
use serde_json::{Map, Value};
use snapvault_repo::expansion::Expansion;
use snapvault_repo::text::escaped_bytes;
use snapvault_repo::tree::{Node, NodeKind};

use super::Ctx;
use crate::cli::LsArgs;

/// `dir/name`, or `name` at the top.
fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        return name.to_vec();
    }
    [dir, b"/", name].concat()
}

pub fn run(ctx: &Ctx, a: LsArgs) -> Result<i32> {
    let repo = ctx.open()?;
    let (sid, snap) = repo.find_snapshot(&a.snapshot)?;
    let index = repo.load_index()?.index;
    let prefix = a
        .path
        .as_deref()
        .unwrap_or("")
        .trim_matches('/')
        .as_bytes()
        .to_vec();
    let mut under_prefix = prefix.clone();
    under_prefix.push(b'/');
    let mut rows: Vec<(Vec<u8>, Node)> = Vec::new();
    let mut stack = vec![(snap.tree, Vec::new())];
    let mut found_prefix = prefix.is_empty();
    // Shared folder listings repeated out of all proportion stop the listing (`expansion`).
    let mut exp = Expansion::new(format!("snapshot {}", sid.short()));
    while let Some((tid, path)) = stack.pop() {
        let tree = repo.load_tree(&index, &tid)?;
        exp.enter(&tid, tree.nodes.len());
        for n in tree.nodes.into_iter().rev() {
            exp.path()?;
            let p = join(&path, &n.name.0);
            let under = prefix.is_empty() || p == prefix || p.starts_with(&under_prefix);
            let above = prefix.starts_with(&[p.as_slice(), b"/"].concat());
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
        bail!(
            "path {:?} is not in snapshot {}",
            String::from_utf8_lossy(&prefix),
            sid.short()
        );
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    if a.json {
        let v: Vec<Value> = rows.iter().map(|(p, n)| json_row(p, n)).collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    for (p, n) in rows {
        let t = match n.kind {
            NodeKind::Dir => 'd',
            NodeKind::File => '-',
            NodeKind::Symlink => 'l',
            NodeKind::Fifo => 'p',
            NodeKind::Socket => 's',
            NodeKind::CharDevice => 'c',
            NodeKind::BlockDevice => 'b',
        };
        let link = n
            .target
            .map(|t| format!(" -> {}", escaped_bytes(&t.0)))
            .unwrap_or_default();
        let size = match (n.kind, a.bytes) {
            (NodeKind::File, true) => n.size.to_string(),
            (NodeKind::File, false) => crate::fmt::size(n.size),
            _ => String::new(),
        };
        let taken = n
            .media
            .as_ref()
            .and_then(|m| m.taken.as_deref())
            .map(|t| format!("  taken {t}"))
            .unwrap_or_default();
        println!(
            "{t}{:04o} {size:>10} {} {}{link}{taken}",
            n.mode & 0o7777,
            crate::fmt::time_ns(n.mtime),
            escaped_bytes(&p)
        );
    }
    let _ = ctx;
    Ok(0)
}

/// One entry for `ls --json` (docs/json.md): names that are not UTF-8 also as hex.
fn json_row(path: &[u8], n: &Node) -> Value {
    let mut o = Map::new();
    crate::fmt::json_bytes(&mut o, "path", path);
    o.insert(
        "type".into(),
        serde_json::to_value(n.kind).unwrap_or_default(),
    );
    o.insert("size".into(), n.size.into());
    o.insert("mode".into(), format!("{:o}", n.mode).into());
    o.insert(
        "mtime".into(),
        snapvault_repo::time::rfc3339_utc(n.mtime.div_euclid(1_000_000_000)).into(),
    );
    match &n.target {
        Some(t) => crate::fmt::json_bytes(&mut o, "target", &t.0),
        None => {
            o.insert("target".into(), Value::Null);
        }
    }
    o.insert(
        "media".into(),
        serde_json::to_value(&n.media).unwrap_or_default(),
    );
    Value::Object(o)
}
