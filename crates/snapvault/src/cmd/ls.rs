//! `snapvault ls SNAPSHOT [PATH]`: the entries of a snapshot, by their exact name bytes.

use anyhow::{Result, bail};
use serde_json::{Map, Value};
use snapvault_repo::text::escaped_bytes;
use snapvault_repo::tree::{Node, NodeKind};
use snapvault_repo::walk::{Sharing, TreeWalker, Visitor};
use snapvault_repo::{BlobId, RepoError};

use super::Ctx;
use crate::cli::LsArgs;

/// The entries under the path asked for, and whether it was found.
struct Listing<'a> {
    prefix: &'a [u8],
    /// `prefix/`
    under_prefix: &'a [u8],
    rows: Vec<(Vec<u8>, Node)>,
    found_prefix: bool,
}

impl Visitor for Listing<'_> {
    /// Lists what is under the prefix; goes into folders under it or above it.
    fn entry(&mut self, p: &[u8], n: &Node) -> snapvault_repo::Result<bool> {
        let under = self.prefix.is_empty() || p == self.prefix || p.starts_with(self.under_prefix);
        let above = self.prefix.starts_with(&[p, b"/"].concat());
        if under {
            self.found_prefix = true;
            self.rows.push((p.to_vec(), n.clone()));
        }
        Ok(under || above)
    }

    fn unreadable(&mut self, _: &BlobId, _: &[u8], e: RepoError) -> snapvault_repo::Result<()> {
        Err(e)
    }
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
    let mut v = Listing {
        prefix: &prefix,
        under_prefix: &under_prefix,
        rows: Vec::new(),
        found_prefix: prefix.is_empty(),
    };
    // Every path, a listing shared by several folders under each; repetition out of all
    // proportion stops the listing (`expansion`).
    TreeWalker::with(&repo, &index, Sharing::EveryPath { keep: false }).walk_named(
        snap.tree,
        &format!("snapshot {}", sid.short()),
        &mut v,
    )?;
    let Listing {
        mut rows,
        found_prefix,
        ..
    } = v;
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
