//! `snapvault photos`: find photos by capture date and kind across every snapshot.

use anyhow::Result;
use serde_json::json;
use snapvault_catalog::{DateRange, KindFilter, PhotoQuery};

use super::Ctx;
use crate::cli::PhotosArgs;
use crate::fmt;

pub fn run(ctx: &Ctx, a: PhotosArgs) -> Result<i32> {
    let dates: Option<DateRange> = a.date.as_deref().map(str::parse).transpose()?;
    let kind: Option<KindFilter> = a.kind.as_deref().map(str::parse).transpose()?;
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
    // A catalog damaged inside is rebuilt from the repository and asked again.
    let mut rows = cat.retry_on_damage(&repo, &index, |c| c.photos(&q))?;
    rows.sort_by(|x, y| {
        x.taken
            .cmp(&y.taken)
            .then(x.latest_path.cmp(&y.latest_path))
    });
    if a.json {
        let v: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({
                    "path": r.latest_path,
                    "taken": r.taken,
                    "date_source": r.date_source,
                    "kind": r.kind,
                    "live": r.live,
                    "size": r.size,
                    "snapshots": r.snapshot_count,
                    "latest_snapshot": r.latest_snapshot.to_hex(),
                    "content_id": r.content_id,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    for r in &rows {
        let kind = if r.live { "live" } else { r.kind.as_str() };
        println!(
            "{:<25} {:<6} {:>10} {:>3} snapshot(s)  {}",
            r.taken.as_deref().unwrap_or("(no date)"),
            kind,
            fmt::size(r.size),
            r.snapshot_count,
            r.latest_path
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
