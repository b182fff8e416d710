//! `restore --dry-run` of a snapshot: what would be restored, printed as the walk finds it
//! (the rows and order [`super::restore::dry_run`] prints for a collected list), never
//! held, so a listing of a million files takes the memory of the folders open.

use std::io::Write;

use anyhow::{Context, Result};
use serde_json::Value;
use snapvault_repo::index::Index;
use snapvault_repo::restorer::{self, RestoreObserver, RestoreOptions};
use snapvault_repo::text::escaped_bytes;
use snapvault_repo::tree::{Node, NodeKind};
use snapvault_repo::{BlobId, Repository, SnapshotId};

use super::Ctx;
use super::restore::{at_target, check_include};
use crate::cli::RestoreArgs;
use crate::fmt;
use crate::include::Include;

/// One line of the text listing.
pub fn text_item(path: &[u8], n: &Node) -> String {
    format!("{:>12} {}", n.size, escaped_bytes(path))
}

/// One element of the JSON listing's `items` (docs/json.md).
pub fn json_item(path: &[u8], n: &Node) -> Value {
    let mut o = serde_json::Map::new();
    fmt::json_bytes(&mut o, "path", path);
    o.insert("size".into(), n.size.into());
    o.insert(
        "type".into(),
        serde_json::to_value(n.kind).unwrap_or_default(),
    );
    Value::Object(o)
}

/// No progress for a dry run.
struct Quiet;
impl RestoreObserver for Quiet {}

/// Files and their bytes among what is listed.
#[derive(Default)]
struct Totals {
    files: u64,
    bytes: u64,
}

impl Totals {
    fn add(&mut self, n: &Node) {
        if n.kind == NodeKind::File {
            self.files += 1;
            self.bytes += n.size;
        }
    }
}

pub fn dry_run_walk(
    ctx: &Ctx,
    repo: &Repository,
    index: &Index,
    sid: &SnapshotId,
    tree: &BlobId,
    include: Option<&Include>,
    a: &RestoreArgs,
) -> Result<i32> {
    let filter = include.map(|i| move |p: &[u8], n: &[u8]| i.matches(p, n));
    let filter = filter.as_ref().map(|f| f as restorer::Filter<'_>);
    let listing = || format!("listing snapshot {}", sid.short());
    // A first walk that only counts when the JSON's totals are needed before its items, or
    // when --include's patterns that matched nothing must be named before the listing.
    let mut counted = None;
    if a.json || include.is_some() {
        let mut t = Totals::default();
        let any = restorer::each_matching(repo, index, tree, filter, &mut |_, n| {
            t.add(n);
            Ok(())
        })
        .with_context(listing)?;
        if let Some(inc) = include {
            check_include(inc, !any, sid, a.json)?;
        }
        counted = Some(t);
    }
    let opts = RestoreOptions {
        target: a.target.clone(),
        include: None,
        overwrite: a.overwrite,
        dry_run: true,
        threads: 1,
    };
    // Only checks the target (a file there is an error, as for a real restore).
    at_target(
        restorer::restore(repo, index, &[], &[], &opts, &Quiet),
        &a.target,
    )?;
    let mut out = crate::output::buffered_stdout();
    let t = match counted {
        Some(t) if a.json => {
            json_listing(repo, index, tree, filter, &sid.to_hex(), &t, &mut out)
                .with_context(listing)?;
            t
        }
        _ => {
            let mut t = Totals::default();
            restorer::each_matching(repo, index, tree, filter, &mut |p, n| {
                t.add(n);
                writeln!(out, "{}", text_item(p, n))
                    .map_err(|e| snapvault_repo::RepoError::io("writing the listing", e))
            })
            .with_context(listing)?;
            t
        }
    };
    out.flush()?;
    if !a.json {
        ctx.say(format!(
            "would restore {} file(s), {}",
            t.files,
            fmt::size(t.bytes)
        ));
    }
    Ok(0)
}

/// The JSON listing, as `serde_json::to_string_pretty` prints the whole object, with the
/// items written as the walk finds them; the totals `t` (counted by a first walk) come
/// before the items in the object's sorted keys.
fn json_listing(
    repo: &Repository,
    index: &Index,
    tree: &BlobId,
    filter: Option<restorer::Filter<'_>>,
    snapshot: &str,
    t: &Totals,
    out: &mut dyn Write,
) -> Result<()> {
    // The object around the items, printed by serde_json with an empty list to cut at.
    let shell = serde_json::to_string_pretty(&serde_json::json!({
        "snapshot": snapshot, "files": t.files, "bytes": t.bytes, "items": []
    }))?;
    let cut = "\"items\": []";
    let at = shell
        .find(cut)
        .context("internal: no items in the dry run's JSON")?;
    let (head, tail) = shell.split_at(at + cut.len() - 2);
    let tail = tail.get(2..).unwrap_or_default();
    out.write_all(head.as_bytes())?;
    let mut first = true;
    restorer::each_matching(repo, index, tree, filter, &mut |p, n| {
        write_element(out, first, &json_item(p, n))
            .map_err(|e| snapvault_repo::RepoError::io("writing the listing", e))?;
        first = false;
        Ok(())
    })?;
    out.write_all(if first { b"[]" } else { b"\n  ]" })?;
    writeln!(out, "{tail}")?;
    Ok(())
}

/// One element of an array nested one level in a pretty-printed object.
fn write_element(out: &mut dyn Write, first: bool, v: &Value) -> std::io::Result<()> {
    out.write_all(if first { b"[\n" } else { b",\n" })?;
    let s = serde_json::to_string_pretty(v)?;
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.write_all(b"\n")?;
        }
        out.write_all(b"    ")?;
        out.write_all(line.as_bytes())?;
    }
    Ok(())
}
