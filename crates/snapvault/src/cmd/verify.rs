//! `snapvault verify-device`: is it safe to delete the photos from the phone? Every file
//! under /DCIM is read from the phone, chunked and hashed exactly as a snapshot would, and
//! compared with the snapshot's stored chunk ids — no shortcut on names, sizes or dates.

use std::collections::HashMap;
use std::io::Read;

use anyhow::{Context, Result};
use serde_json::json;
use snapvault_repo::chunker::Chunker;
use snapvault_repo::tree::Node;

use super::Ctx;
use crate::cli::VerifyDeviceArgs;
use crate::iphone::IphoneSource;
use crate::{fmt, photoset};

/// Exit code when not every file on the phone is safely in the snapshot.
pub const NOT_ALL_SAFE: i32 = 5;

pub fn run(ctx: &Ctx, a: VerifyDeviceArgs) -> Result<i32> {
    let repo = ctx.open()?;
    let device = crate::iphone::connect(a.udid.as_deref())?;
    let phone = IphoneSource::new(device)?;
    let source = phone.snapshot_source();
    let (sid, snap) = match &a.snapshot {
        Some(s) if s != "latest" => repo.find_snapshot(s)?,
        _ => super::snapshot::latest_of_source(&repo, &source)?.with_context(|| {
            format!(
                "no snapshot of this iPhone ({}) yet: run `snapvault snapshot iphone` first",
                source.describe()
            )
        })?,
    };
    let _lock = crate::readonly::shared_lock(ctx, &repo, "verify-device")?;
    let index = repo.load_index()?.index;
    let stored: HashMap<String, Node> = photoset::files_of(&repo, &index, &snap.tree)?
        .into_iter()
        .collect();
    // The data must really be there: every pack the index names must exist at its size.
    let present: HashMap<String, u64> = repo
        .backend()
        .list(snapvault_repo::backend::FileKind::Pack)?
        .into_iter()
        .map(|f| (f.name, f.size))
        .collect();
    let stored_ok = |id: &snapvault_repo::BlobId| {
        index.get(id).is_some_and(|loc| {
            let (pack, size) = index.pack(loc.pack);
            present.get(&pack.to_hex()) == Some(&size)
        })
    };
    let chunker = Chunker::new(&repo.config().chunker, repo.crypto());
    let mut buf = Vec::new();
    let (mut safe, mut total) = (0usize, 0usize);
    let mut problems: Vec<(String, &'static str, String)> = Vec::new();
    let files: Vec<(String, u64)> = phone.files().map(|(p, e)| (p, e.size)).collect();
    for (path, size) in files {
        total += 1;
        let Some(node) = stored.get(&path) else {
            // Tell an original the phone cannot hand over (iCloud-only) from one not yet backed up.
            match phone.device.open(&path) {
                Err(e) if !e.is_fatal() => problems.push((path, "unreadable", e.to_string())),
                Err(e) => return Err(e).context("reading from the iPhone"),
                Ok(_) => problems.push((path, "missing", "not in the snapshot".into())),
            }
            continue;
        };
        let reader: Box<dyn Read + Send> = match phone.device.open(&path) {
            Ok(r) => Box::new(r),
            Err(e) if !e.is_fatal() => {
                problems.push((path, "unreadable", e.to_string()));
                continue;
            }
            Err(e) => return Err(e).context("reading from the iPhone"),
        };
        let mut stream = chunker.stream(reader, std::mem::take(&mut buf));
        let mut ids = Vec::new();
        let mut failed = None;
        loop {
            match stream.next_chunk() {
                Ok(Some(c)) => ids.push(repo.crypto().blob_id(c)),
                Ok(None) => break,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        buf = stream.into_buffer();
        if let Some(e) = failed {
            if snapvault_source::SourceError::from_io(&e).is_some_and(|s| s.is_fatal()) {
                return Err(e).context("reading from the iPhone");
            }
            problems.push((path, "unreadable", e.to_string()));
            continue;
        }
        if ids != node.content || node.size != size {
            problems.push((
                path,
                "differs",
                "the phone's file differs from the stored one".into(),
            ));
        } else if let Some(missing) = ids.iter().find(|id| !stored_ok(id)) {
            problems.push((
                path,
                "damaged",
                format!(
                    "stored chunk {} is missing from the repository",
                    missing.short()
                ),
            ));
        } else {
            safe += 1;
        }
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "snapshot": sid.to_hex(),
                "device": source.device,
                "files": total,
                "safe": safe,
                "all_safe": safe == total,
                "problems": problems.iter().map(|(p, k, m)| json!({"path": p, "status": k, "detail": m})).collect::<Vec<_>>(),
            }))?
        );
    } else {
        for (p, k, m) in &problems {
            println!("{k:<10} {p}: {m}");
        }
        println!(
            "safe to delete: {safe} of {total} files (compared by content with snapshot {} of {})",
            sid.short(),
            fmt::time_ns(snap.time)
        );
        if safe < total {
            println!(
                "keep the {} file(s) listed above on the phone until a new snapshot holds them",
                total - safe
            );
        }
    }
    let _ = ctx;
    Ok(if safe == total { 0 } else { NOT_ALL_SAFE })
}
