use anyhow::Result;
use serde_json::json;

use super::Ctx;
use crate::cli::SnapshotsArgs;
use crate::fmt;

pub fn run(ctx: &Ctx, a: SnapshotsArgs) -> Result<i32> {
    let repo = ctx.open()?;
    let (all, bad) = repo.snapshots()?;
    for (name, e) in &bad {
        eprintln!("warning: snapshot {name} cannot be read: {e}");
    }
    let shown: Vec<_> = all
        .iter()
        .filter(|(_, s)| a.tag.as_ref().is_none_or(|t| s.tags.contains(t)))
        .filter(|(_, s)| {
            a.device.as_ref().is_none_or(|d| {
                s.source
                    .device
                    .as_ref()
                    .is_some_and(|dev| dev.udid == *d || dev.name == *d)
            })
        })
        .collect();
    if a.json {
        let v: Vec<_> = shown
            .iter()
            .map(|(id, s)| {
                json!({
                    "id": id.to_hex(),
                    "short_id": id.short(),
                    "time": snapvault_repo::time::rfc3339_utc(s.unix_time()),
                    "hostname": s.hostname,
                    "username": s.username,
                    "source": s.source,
                    "tags": s.tags,
                    "tree": s.tree,
                    "parent": s.parent,
                    "original": s.original,
                    "library": s.library,
                    "incomplete": s.incomplete,
                    "files": s.summary.files_total,
                    "size": s.summary.bytes_total,
                    "summary": s.summary,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    if shown.is_empty() {
        ctx.say("no snapshots");
        return Ok(0);
    }
    println!(
        "{:<9} {:<19} {:<12} {:>7} {:>10}  {:<20} source",
        "id", "time (UTC)", "host", "files", "size", "tags"
    );
    for (id, s) in &shown {
        println!(
            "{:<9} {:<19} {:<12} {:>7} {:>10}  {:<20} {}{}",
            id.short(),
            fmt::time_ns(s.time),
            s.hostname,
            s.summary.files_total,
            fmt::size(s.summary.bytes_total),
            s.tags.join(","),
            s.source.describe(),
            if s.incomplete { " (incomplete)" } else { "" }
        );
    }
    ctx.say(format!("{} snapshot(s)", shown.len()));
    Ok(0)
}
