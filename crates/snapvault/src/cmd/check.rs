use anyhow::{Result, bail};
use std::collections::HashMap;
use std::path::Path;

use snapvault_repo::PackId;
use snapvault_repo::checker::{self, CheckOptions, ReadData, Severity};
use snapvault_repo::index::Index;
use snapvault_repo::text::escaped;

use super::{Ctx, io_threads};
use crate::cli::CheckArgs;
use crate::damage::DamageList;
use crate::{exit, fmt};

pub fn parse_subset(s: &str) -> Result<ReadData> {
    if let Some(p) = s.strip_suffix('%') {
        let v: f64 = p.trim().parse().map_err(|_| {
            anyhow::anyhow!("invalid --read-data-subset {s:?}: expected like 10% or 3/7")
        })?;
        if !(0.0..=100.0).contains(&v) || v == 0.0 {
            bail!("invalid --read-data-subset {s:?}: percentage must be in (0, 100]");
        }
        return Ok(ReadData::Percent(v));
    }
    if let Some((n, m)) = s.split_once('/') {
        let (n, m): (u32, u32) = match (n.trim().parse(), m.trim().parse()) {
            (Ok(n), Ok(m)) => (n, m),
            _ => bail!("invalid --read-data-subset {s:?}: expected like 10% or 3/7"),
        };
        if m == 0 || n == 0 || n > m {
            bail!("invalid --read-data-subset {s:?}: need 1 <= n <= m");
        }
        return Ok(ReadData::Slice(n, m));
    }
    bail!("invalid --read-data-subset {s:?}: expected like 10% or 3/7")
}

pub fn run(ctx: &Ctx, a: CheckArgs) -> Result<i32> {
    let read_data = match (&a.read_data_subset, a.read_data, &a.budget) {
        (_, _, Some(b)) => ReadData::Budget(fmt::parse_duration(b)?),
        (Some(s), _, _) => parse_subset(s)?,
        (None, true, _) => ReadData::All,
        (None, false, _) => ReadData::None,
    };
    // While the key is derived: the index files, and with every pack to be read, the
    // packs listed and the first of them fetched by the disk.
    let repo = ctx.open_early(|o| {
        o.prefetch_metadata();
        if read_data == ReadData::All {
            checker::warm_up(o.backend().as_ref(), &|| o.key_ready());
        }
    })?;
    let _lock = crate::readonly::shared_lock(ctx, &repo, "check")?;
    let mut damage = DamageList::load(&repo.config().id);
    // Without a usable cache folder, `--budget` starts from nothing each time.
    let cache = crate::cache::dir(&repo.config().id);
    let state_path = cache.as_ref().map(|d| d.join("verified.json"));
    let mut state = state_path.as_deref().map(load_state).unwrap_or_default();
    // Progress only when data is read (the structure check is quick).
    let mode = match read_data {
        ReadData::None => crate::progress::Mode::Hidden,
        _ => crate::progress::mode(ctx.global.quiet, a.json),
    };
    let progress = crate::progress::Progress::new("check", mode, crate::progress::Unit::Packs);
    if read_data == ReadData::All
        && !progress.is_hidden()
        && let Ok(l) = repo.load_index()
    {
        let packs = l.index.packs();
        progress.set_totals(packs.len() as u64, packs.iter().map(|(_, s)| *s).sum());
    }
    let report = checker::check_with_index(
        &repo,
        &CheckOptions {
            read_data,
            threads: io_threads(),
            last_verified: state.clone(),
            earlier_copies: damage.copies(),
            earlier_packs: damage.packs(),
        },
        &progress,
    );
    progress.finish();
    // `index`: as check read it (damaged and unreadable index files left out).
    let (mut report, index) = report?;
    // The core names the step; the command that takes it is named here (text and JSON).
    for p in &mut report.problems {
        p.message = crate::remedy::with(&p.message, p.remedy.take());
    }
    let now = snapvault_repo::time::now_unix();
    damage.merge(&report, &index);
    let _ = damage.save(&repo.config().id);
    for p in &report.verified {
        state.insert(*p, now);
    }
    // A pack known to hold damage is not verified good, however recently it was read.
    for p in damage.damaged_packs() {
        state.remove(p);
    }
    // An index file that could not be read may name packs this index lacks.
    if !report.index_incomplete {
        state.retain(|p, _| index.has_pack(p));
    }
    if let Some(p) = &state_path {
        let _ = save_state(p, &state);
    }
    let coverage = coverage(&index, &state, now);
    // Parity: what it protects; with --read-data every group is read and damage sorted into
    // "repairable from parity" and "lost". The packs just read and found intact are not
    // read again (only parity files and damaged packs are).
    let intact: std::collections::HashSet<String> = report
        .verified
        .iter()
        .filter(|p| !report.damaged_packs.contains(p))
        .map(PackId::to_hex)
        .collect();
    let mut parity = match super::parity_check::scan(
        repo.backend().as_ref(),
        Some(super::parity::trusted_level(
            repo.backend().as_ref(),
            repo.config().parity,
            repo.crypto(),
        )),
        read_data == ReadData::All,
        false,
        &intact,
        &mut |_| {},
    ) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("note: the parity files could not be read ({e:#}); parity not checked");
            super::parity_check::ParityStatus::default()
        }
    };
    let parity_state = cache.as_ref().map(|d| d.join("parity.json"));
    parity.last_verified = parity_state.as_deref().and_then(load_parity_state);
    if parity.verified_now && parity.parity_files_unreadable.is_empty() {
        parity.last_verified = Some(now);
        if let Some(p) = &parity_state {
            let _ = crate::cache::write(
                p,
                &serde_json::to_vec(&serde_json::json!({"verified": now}))?,
            );
        }
    }
    let errors = report.errors();
    let damaged = errors > 0 || parity.damage() > 0;
    let next = damaged.then(|| {
        if parity.lost.is_empty() && !parity.repairable.is_empty() {
            let rebuild =
                "run `snapvault repair --apply`: parity rebuilds the damaged file(s) exactly";
            if errors == 0 {
                // Only parity saw the damage (an unencrypted config): no other advice applies.
                rebuild.to_string()
            } else {
                format!("{rebuild}; {}", next_step(&repo, &report))
            }
        } else {
            next_step(&repo, &report)
        }
    });
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "ok": !damaged,
                "complete": report.complete(),
                "errors": errors,
                "next": next,
                "report": report,
                "parity": parity,
            }))?
        );
    } else {
        for p in &report.problems {
            let tag = match p.severity {
                Severity::Error => "error",
                Severity::Notice => "notice",
            };
            println!("{tag}: {} {}", escaped(&p.object), escaped(&p.message));
        }
        for d in &report.damaged_files {
            let taken = d
                .taken
                .as_ref()
                .map(|t| format!(" (taken {})", snapvault_repo::text::prefix(t, 10)))
                .unwrap_or_default();
            println!(
                "damaged: {}{taken} in {} snapshot(s)",
                escaped(&d.path),
                d.snapshots.len()
            );
        }
        // In bytes; the storage internals (packs, blobs) with -v.
        if ctx.global.verbose > 0 {
            ctx.say(format!(
                "checked {} snapshot(s), {} pack(s), {} blob(s); read {} from {} pack(s)",
                report.snapshots,
                report.packs,
                report.blobs,
                fmt::size(report.bytes_read),
                report.packs_read
            ));
        } else if report.bytes_read > 0 {
            ctx.say(format!(
                "checked {} snapshot(s); read back and verified {} of stored data",
                report.snapshots,
                fmt::size(report.bytes_read)
            ));
        } else if errors > 0 {
            // Not "everything is listed as stored" below the errors saying it is not.
            ctx.say(format!("checked {} snapshot(s)", report.snapshots));
        } else {
            ctx.say(format!(
                "checked {} snapshot(s): everything they need is listed as stored \
                 (--read-data also reads it back)",
                report.snapshots
            ));
        }
        if read_data != ReadData::None
            && let Some(c) = &coverage
        {
            ctx.say(c);
        }
        not_checked(&report);
        for line in super::parity_check::describe(&parity) {
            println!("{line}");
        }
        if damaged {
            if errors > 0 {
                println!("{errors} error(s) found");
            }
            if let Some(n) = &next {
                println!("next: {n}");
            }
        } else if !report.complete() {
            println!(
                "no damage found, but the check is incomplete: {} object(s) could not be read \
                 (a disk or network error). What could not be read is neither damaged nor known \
                 to be intact, and nothing was recorded as damaged; run the check again when \
                 the storage answers",
                report.not_checked.len()
            );
        } else {
            ctx.say("no errors found");
        }
    }
    Ok(if damaged {
        exit::DAMAGE
    } else if !report.complete() {
        exit::INCOMPLETE
    } else {
        exit::OK
    })
}

/// Objects that could not be read: a few by name, then how many more.
fn not_checked(report: &checker::CheckReport) {
    const SHOWN: usize = 10;
    for n in report.not_checked.iter().take(SHOWN) {
        println!("not checked: {} {}", n.object, n.message);
    }
    if report.not_checked.len() > SHOWN {
        println!(
            "not checked: {} more object(s) that could not be read",
            report.not_checked.len() - SHOWN
        );
    }
    if report.files_not_checked > 0 {
        println!(
            "not checked: {} file(s) or folder(s) whose stored data could not be read",
            report.files_not_checked
        );
    }
}

/// What to do about the damage found: `repair` first; a repository that holds the photos
/// intact heals them (`repair --from`); once repaired copies exist, the originals are for
/// healing or `--forget-damaged`.
fn next_step(repo: &snapvault_repo::Repository, report: &checker::CheckReport) -> String {
    let damaged: std::collections::HashSet<_> = report
        .damaged_files
        .iter()
        .flat_map(|d| d.snapshots.iter().copied())
        .collect();
    let copies_exist = !damaged.is_empty()
        && repo.snapshots().is_ok_and(|(all, _)| {
            damaged
                .iter()
                .all(|s| snapvault_repo::repair::repaired_copy_of(&all, s).is_some())
        });
    let mut errors = report
        .problems
        .iter()
        .filter(|p| p.severity == checker::Severity::Error)
        .peekable();
    let only_keys = errors.peek().is_some() && errors.all(|p| p.object.starts_with("key "));
    // A damaged index file hides what it names: rebuilding it comes before anything else
    // (what looks lost may be in the packs it names).
    let index_damaged = report
        .problems
        .iter()
        .any(|p| p.severity == checker::Severity::Error && p.object.starts_with("index "));
    if index_damaged {
        "run `snapvault repair index --apply` first: it rebuilds the index from the packs \
         themselves, and what the damaged index file named is found again; then run \
         `snapvault check` again to see whether anything is still missing"
            .to_string()
    } else if only_keys {
        // The same advice as each key's line: a damaged copy of the config is sealed anew,
        // a damaged key file itself is removed.
        "run `snapvault repair --apply` for a key file whose copy of the config is damaged; \
         remove a damaged key file itself with `snapvault key remove ID` (the other keys \
         still open the repository)"
            .to_string()
    } else if copies_exist {
        "the damaged snapshot(s) already have repaired copies without the lost files (tagged \
         `repaired`). If another repository holds these photos intact (an off-site copy), \
         `snapvault repair --from OTHER_REPO --apply` stores them here again and makes the \
         snapshots whole; otherwise `snapvault repair --apply --forget-damaged` removes the \
         damaged originals"
            .to_string()
    } else {
        "run `snapvault repair` to see what can be done (it changes nothing without --apply). \
         If another repository holds these photos intact (an off-site copy), \
         `snapvault repair --from OTHER_REPO` shows what it can restore from there; a photo \
         still on its source is stored again by the next `snapvault snapshot` of it"
            .to_string()
    }
}

/// When every parity group was last read completely (local state).
fn load_parity_state(path: &Path) -> Option<i64> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    v.get("verified")?.as_i64()
}

/// When each pack was last verified (local state; an empty map when missing or unreadable).
fn load_state(path: &Path) -> HashMap<PackId, i64> {
    let Ok(bytes) = std::fs::read(path) else {
        return HashMap::new();
    };
    let raw: HashMap<String, i64> = serde_json::from_slice(&bytes).unwrap_or_default();
    raw.into_iter()
        .filter_map(|(k, v)| Some((k.parse().ok()?, v)))
        .collect()
}

fn save_state(path: &Path, state: &HashMap<PackId, i64>) -> Result<()> {
    let raw: HashMap<String, i64> = state.iter().map(|(k, v)| (k.to_hex(), *v)).collect();
    crate::cache::write(path, &serde_json::to_vec(&raw)?)
}

/// "100% of data verified within the last 23 days; oldest verification 2026-10-30".
fn coverage(index: &Index, state: &HashMap<PackId, i64>, now: i64) -> Option<String> {
    let total: u64 = index.packs().iter().map(|(_, s)| *s).sum();
    if total == 0 {
        return None;
    }
    let mut verified = 0u64;
    let mut oldest: Option<i64> = None;
    for (p, size) in index.packs() {
        if let Some(t) = state.get(p) {
            verified += size;
            oldest = Some(oldest.map_or(*t, |o| o.min(*t)));
        }
    }
    let pct = verified as f64 * 100.0 / total as f64;
    let oldest = oldest?;
    let days = ((now - oldest).max(0) as f64 / 86_400.0).ceil() as i64;
    let date = snapvault_repo::time::format_utc(oldest);
    let date = snapvault_repo::text::prefix(&date, 10);
    let mut msg = format!(
        "{pct:.0}% of data verified within the last {days} day(s); oldest verification {date}"
    );
    if verified < total {
        msg.push_str(&format!(
            "; {} not verified good yet (never read, or damaged)",
            fmt::size(total - verified)
        ));
    }
    Some(msg)
}
