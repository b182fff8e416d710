//! What `verify-device` prints: one line per file that is not safe (with how many of the
//! repositories hold it when there are several), a summary that says what was compared and
//! whether stored bytes were read back, and the next step for each kind of problem.

use std::collections::HashMap;

use anyhow::Result;
use serde_json::json;
use snapvault_photolib::{Availability, Library};
use snapvault_repo::readback::ReadBack;
use snapvault_repo::snapshot::Source;
use snapvault_repo::text::escaped;

use super::stored::Stored;
use super::{FileResult, Verdict};
use crate::cli::VerifyDeviceArgs;
use crate::fmt;

fn status(v: &Verdict) -> &'static str {
    match v {
        Verdict::Holds => "safe",
        Verdict::Missing => "missing",
        Verdict::Differs => "differs",
        Verdict::Damaged(_) => "damaged",
        Verdict::Unverified(_) => "unverified",
    }
}

fn detail(v: &Verdict, single: bool) -> String {
    match v {
        Verdict::Holds => "holds it".into(),
        Verdict::Missing if single => "no snapshot of this iPhone holds it".into(),
        Verdict::Missing => "no snapshot of this iPhone there holds it".into(),
        Verdict::Differs => "the stored file at this path has other content".into(),
        Verdict::Damaged(why) => format!("the stored copy is damaged: {why}"),
        Verdict::Unverified(why) => {
            format!("the stored copy could not be read back ({why}); run again")
        }
    }
}

/// (status, detail, held by) of one file.
fn describe(f: &FileResult, stored: &[Stored]) -> (&'static str, String, Option<usize>) {
    let verdicts = match &f.verdicts {
        Err(e) => return ("unreadable", e.clone(), None),
        Ok(v) => v,
    };
    let held = verdicts.iter().filter(|v| **v == Verdict::Holds).count();
    let Some(first) = verdicts.iter().find(|v| **v != Verdict::Holds) else {
        return ("safe", String::new(), Some(held));
    };
    if stored.len() == 1 {
        return (status(first), detail(first, true), Some(held));
    }
    let parts: Vec<String> = verdicts
        .iter()
        .zip(stored)
        .filter(|(v, _)| **v != Verdict::Holds)
        .map(|(v, s)| match v {
            Verdict::Missing => format!("not in {}", s.location),
            v => format!("in {}: {}", s.location, detail(v, false)),
        })
        .collect();
    let detail = format!(
        "{}; held by {held} of {} repositories",
        parts.join("; "),
        stored.len()
    );
    (status(first), detail, Some(held))
}

/// Per asset (original's folder and name): an edit on the phone that is not safely stored,
/// with its status. A photo is safe to delete only together with its edit.
fn unsafe_edits(
    results: &[FileResult],
    stored: &[Stored],
) -> HashMap<String, (String, &'static str)> {
    let mut out = HashMap::new();
    for f in results {
        if snapvault_photolib::edit_of(&f.path).is_none() {
            continue;
        }
        let (s, _, _) = describe(f, stored);
        if s != "safe" {
            out.entry(crate::library::stem_key(&f.path))
                .or_insert((f.path.clone(), s));
        }
    }
    out
}

/// Print the result; returns whether every file is safe.
pub fn print(
    ctx: &crate::cmd::Ctx,
    a: &VerifyDeviceArgs,
    source: &Source,
    stored: &[Stored],
    checked: &[ReadBack],
    results: &[FileResult],
    library: &std::result::Result<Library, String>,
) -> Result<bool> {
    let edits = unsafe_edits(results, stored);
    let rows: Vec<(&str, &'static str, String, Option<usize>)> = results
        .iter()
        .map(|f| {
            let (s, d, h) = describe(f, stored);
            let blocked = (s == "safe" && snapvault_photolib::edit_of(&f.path).is_none())
                .then(|| edits.get(&crate::library::stem_key(&f.path)))
                .flatten();
            match blocked {
                Some((edit, st)) => (
                    f.path.as_str(),
                    "edit",
                    format!("stored, but its edit {edit} is not ({st}): delete the photo only when its edit is safe too"),
                    h,
                ),
                None => (f.path.as_str(), s, d, h),
            }
        })
        .collect();
    let icloud: Vec<(String, Option<String>)> = match library {
        Ok(lib) => {
            let mut v: Vec<_> = lib
                .assets
                .iter()
                .filter(|x| x.original == Availability::CloudOnly)
                .map(|x| (x.path(), x.taken().map(|t| t.to_string())))
                .collect();
            v.sort();
            v
        }
        Err(_) => Vec::new(),
    };
    let total = rows.len();
    let safe = rows.iter().filter(|r| r.1 == "safe").count();
    let holds = |i: usize| {
        results
            .iter()
            .filter(|f| {
                f.verdicts
                    .as_ref()
                    .is_ok_and(|v| v.get(i) == Some(&Verdict::Holds))
            })
            .count()
    };
    if a.json {
        let problems: Vec<_> = rows
            .iter()
            .zip(results)
            .filter(|(r, _)| r.1 != "safe")
            .map(|((p, s, d, h), f)| {
                let per_repo: Vec<_> = match &f.verdicts {
                    Err(_) => Vec::new(),
                    Ok(v) => v
                        .iter()
                        .zip(stored)
                        .map(|(v, st)| {
                            json!({"repository": st.location, "status": status(v),
                                   "detail": detail(v, stored.len() == 1)})
                        })
                        .collect(),
                };
                json!({"path": p, "status": s, "detail": d, "held_by": h,
                       "repositories": per_repo})
            })
            .collect();
        let repositories: Vec<_> = stored
            .iter()
            .zip(checked)
            .enumerate()
            .map(|(i, (st, rb))| {
                json!({
                    "repository": st.location,
                    "snapshots": st.snapshots.iter().map(|(id, _)| id.to_hex()).collect::<Vec<_>>(),
                    "holds": holds(i),
                    "bytes_read": rb.bytes_read,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "snapshot": stored[0].snapshots.first().map(|(id, _)| id.to_hex()),
                "device": source.device,
                "files": total,
                "safe": safe,
                "all_safe": safe == total,
                "read_back": !a.quick,
                "repositories": repositories,
                "problems": problems,
                "library": if library.is_ok() { "photos.sqlite" } else { "unknown" },
                "icloud_only": icloud.iter().map(|(p, t)| json!({"path": p, "taken": t})).collect::<Vec<_>>(),
            }))?
        );
        return Ok(safe == total);
    }
    for (p, s, d, h) in &rows {
        if *s != "safe" {
            println!("{s:<10} {}: {}", escaped(p), escaped(d));
        } else if ctx.global.verbose > 0 {
            let h = h.unwrap_or(0);
            println!(
                "{s:<10} {}: held by {h} of {} repositories",
                escaped(p),
                stored.len()
            );
        }
    }
    let how = if a.quick {
        "--quick: stored data was not read back, only the index was checked"
    } else {
        "every stored chunk read back and verified"
    };
    let compared = |st: &Stored| match st.snapshots.first() {
        Some((id, snap)) if st.snapshots.len() == 1 => {
            format!("snapshot {} of {}", id.short(), fmt::time_ns(snap.time))
        }
        Some((id, snap)) => format!(
            "{} snapshots of this iPhone, the newest {} of {}",
            st.snapshots.len(),
            id.short(),
            fmt::time_ns(snap.time)
        ),
        None => "no snapshot".into(),
    };
    if stored.len() == 1 {
        println!(
            "safe to delete: {safe} of {total} files (compared by content with {}; {how})",
            compared(&stored[0])
        );
    } else {
        let all = if stored.len() == 2 {
            "both repositories".to_string()
        } else {
            format!("all {} repositories", stored.len())
        };
        println!("safe to delete: {safe} of {total} files, held in {all} ({how})");
        for (i, st) in stored.iter().enumerate() {
            println!(
                "  {}: holds {} of {total} (compared by content with {})",
                st.location,
                holds(i),
                compared(st)
            );
        }
    }
    if a.quick {
        println!(
            "before deleting from the phone, run without --quick (or `snapvault check --read-data`) to read the stored bytes back"
        );
    }
    next_steps(results, stored);
    let blocked = rows.iter().filter(|r| r.1 == "edit").count();
    if blocked > 0 {
        println!(
            "keep the {blocked} file(s) whose edit is not safely stored on the phone until a new `snapvault snapshot iphone` holds the edit"
        );
    }
    for (p, t) in &icloud {
        println!(
            "{:<10} {}{}: not on this phone — not backed up by snapvault",
            "icloud",
            escaped(p),
            t.as_ref()
                .map(|t| format!(" (taken {t})"))
                .unwrap_or_default()
        );
    }
    if !icloud.is_empty() {
        println!(
            "{} photo(s) are only in iCloud, not on this phone: no USB backup holds them. To back them up, turn on Settings > Photos > Download and Keep Originals (turning off Optimize iPhone Storage) and wait for the download, or download those originals first; then take a new snapshot",
            icloud.len()
        );
    } else if let Err(why) = library {
        println!("photos kept only in iCloud: unknown ({why})");
    }
    Ok(safe == total)
}

/// One line of advice per kind of problem found.
fn next_steps(results: &[FileResult], stored: &[Stored]) {
    let mut kinds: Vec<(&str, usize)> = Vec::new();
    for f in results {
        let mut seen: Vec<&str> = Vec::new();
        match &f.verdicts {
            Err(_) => seen.push("unreadable"),
            Ok(v) => {
                for (v, st) in v.iter().zip(stored) {
                    let k = match v {
                        Verdict::Holds => continue,
                        Verdict::Missing | Verdict::Differs => st.location.as_str(),
                        Verdict::Damaged(_) => "damaged",
                        Verdict::Unverified(_) => "unverified",
                    };
                    if !seen.contains(&k) {
                        seen.push(k);
                    }
                }
            }
        }
        for k in seen {
            match kinds.iter_mut().find(|(kk, _)| *kk == k) {
                Some((_, n)) => *n += 1,
                None => kinds.push((k, 1)),
            }
        }
    }
    for (k, n) in kinds {
        let advice = match k {
            "unreadable" => format!(
                "keep the {n} unreadable file(s) on the phone: it could not hand them over (see docs/iphone.md on iCloud originals)"
            ),
            "damaged" => format!(
                "keep the {n} file(s) with damaged stored data on the phone: `snapvault check --read-data` records the damage, then the next `snapvault snapshot iphone` stores them again"
            ),
            "unverified" => format!(
                "keep the {n} file(s) whose stored data could not be read on the phone, and run verify-device again"
            ),
            loc if stored.first().is_some_and(|s| s.location == loc) => format!(
                "keep the {n} file(s) not stored in {loc} on the phone until a new `snapvault snapshot iphone` holds them"
            ),
            loc => format!(
                "keep the {n} file(s) not stored in {loc} on the phone until it holds them (`snapvault copy --all --to {loc}` after the next snapshot)"
            ),
        };
        println!("{advice}");
    }
}
