//! `snapvault forget`: remove snapshots by a retention policy or by id, refusing to lose the
//! last copy of a photo unless told to (see docs/forget-prune.md).

use std::collections::{BTreeMap, HashSet};

use anyhow::{Context, Result, bail};
use serde_json::json;
use snapvault_repo::backend::FileKind;
use snapvault_repo::forget::{self, Candidate, Decision, PhotoLoss, Policy};
use snapvault_repo::snapshot::Snapshot;
use snapvault_repo::text::escaped;
use snapvault_repo::{SnapshotId, time};

use super::Ctx;
use crate::cli::ForgetArgs;
use crate::fmt;

/// How many lost photos are listed by name.
const SHOWN: usize = 10;

fn policy_of(a: &ForgetArgs) -> Policy {
    let z = |s: Option<forget::Span>| s.unwrap_or_default();
    Policy {
        last: a.keep_last.unwrap_or(0),
        hourly: a.keep_hourly.unwrap_or(0),
        daily: a.keep_daily.unwrap_or(0),
        weekly: a.keep_weekly.unwrap_or(0),
        monthly: a.keep_monthly.unwrap_or(0),
        yearly: a.keep_yearly.unwrap_or(0),
        within: z(a.keep_within),
        within_hourly: z(a.keep_within_hourly),
        within_daily: z(a.keep_within_daily),
        within_weekly: z(a.keep_within_weekly),
        within_monthly: z(a.keep_within_monthly),
        within_yearly: z(a.keep_within_yearly),
        tags: a
            .keep_tag
            .iter()
            .map(|t| t.split(',').map(|x| x.trim().to_string()).collect())
            .collect(),
    }
}

/// A snapshot id given on the command line: a unique prefix of a readable snapshot, or of an
/// unreadable snapshot file (so a damaged snapshot can be forgotten).
fn resolve(spec: &str, all: &[(SnapshotId, Snapshot)], bad: &[String]) -> Result<SnapshotId> {
    let p = spec.trim().to_ascii_lowercase();
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("{spec:?} is not a snapshot id (prefix)");
    }
    let mut hits: Vec<SnapshotId> = all
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| id.to_hex().starts_with(&p))
        .collect();
    for name in bad.iter().filter(|n| n.starts_with(&p)) {
        if let Ok(id) = name.parse() {
            hits.push(id);
        }
    }
    match hits.as_slice() {
        [one] => Ok(*one),
        [] => bail!("no snapshot matches {spec:?}"),
        many => bail!(
            "snapshot id prefix {spec:?} is ambiguous: it matches {} snapshots",
            many.len()
        ),
    }
}

struct Row {
    id: SnapshotId,
    group: String,
    decision: Decision,
}

pub fn run(ctx: &Ctx, a: ForgetArgs) -> Result<i32> {
    let policy = policy_of(&a);
    if policy.is_empty() && a.ids.is_empty() {
        bail!(
            "no policy and no snapshot ids given: refusing to remove anything. Use --keep-last, \
             --keep-daily, --keep-within … or name the snapshots to forget"
        );
    }
    if !policy.is_empty() && !a.ids.is_empty() {
        bail!("give either snapshot ids or a policy (--keep-*), not both");
    }
    let prune_opts = super::prune::options(&a.prune_opts)?;
    let repo = super::prune::open(ctx)?;
    let lock = repo.lock(true, "forget")?;
    for s in &lock.stale {
        eprintln!(
            "note: ignoring a stale lock of {} (remove it with `snapvault unlock`)",
            s.describe()
        );
    }
    let (all, bad) = repo.snapshots()?;
    let bad_names: Vec<String> = bad.iter().map(|(n, _)| n.clone()).collect();
    for (name, e) in &bad {
        eprintln!("warning: snapshot {name} cannot be read ({e}); the policy leaves it alone");
    }

    // Decide.
    let mut rows: Vec<Row> = Vec::new();
    let mut removed_unreadable: Vec<SnapshotId> = Vec::new();
    if !a.ids.is_empty() {
        let mut chosen: HashSet<SnapshotId> = HashSet::new();
        for spec in &a.ids {
            chosen.insert(resolve(spec, &all, &bad_names)?);
        }
        for (id, _) in &all {
            let go = chosen.remove(id);
            rows.push(Row {
                id: *id,
                group: "given on the command line".into(),
                decision: Decision {
                    keep: !go,
                    reasons: if go { vec![] } else { vec!["not named".into()] },
                },
            });
        }
        removed_unreadable.extend(chosen);
    } else {
        let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, (_, s)) in all.iter().enumerate() {
            groups.entry(a.group_by.key(s)).or_default().push(i);
        }
        let now = time::now_ns();
        for (key, members) in groups {
            let cands: Vec<Candidate> = members
                .iter()
                .map(|&i| Candidate {
                    time: all[i].1.time,
                    tags: &all[i].1.tags,
                })
                .collect();
            for (&i, d) in members.iter().zip(forget::apply(&policy, now, &cands)) {
                rows.push(Row {
                    id: all[i].0,
                    group: key.clone(),
                    decision: d,
                });
            }
        }
    }
    let by_id: BTreeMap<SnapshotId, &Snapshot> = all.iter().map(|(id, s)| (*id, s)).collect();
    let removed: Vec<(SnapshotId, &Snapshot)> = rows
        .iter()
        .filter(|r| !r.decision.keep)
        .map(|r| (r.id, by_id[&r.id]))
        .collect();
    let remaining: Vec<&Snapshot> = rows
        .iter()
        .filter(|r| r.decision.keep)
        .map(|r| by_id[&r.id])
        .collect();

    if !a.json {
        if a.ids.is_empty() {
            ctx.say(format!("policy: {}", policy.describe()));
        }
        print_rows(ctx, &rows, &by_id, a.ids.is_empty());
        for id in &removed_unreadable {
            ctx.say(format!("remove {} (unreadable snapshot)", id.short()));
        }
    }

    // Photo safety.
    let mut loss = PhotoLoss::default();
    if !removed.is_empty() {
        let index = repo.load_index().context("loading the index")?.index;
        loss = forget::photos_lost(&repo, &index, &remaining, &removed)?;
    }
    let refused = !loss.is_safe() && !a.allow_photo_loss;
    if !a.json {
        print_loss(&loss, refused);
    }
    let n_remove = removed.len() + removed_unreadable.len();
    let mut out = json!({
        "policy": if a.ids.is_empty() { Some(policy.describe()) } else { None },
        "dry_run": a.dry_run,
        "snapshots": rows.iter().map(|r| {
            let s = by_id[&r.id];
            json!({
                "id": r.id.to_hex(),
                "short_id": r.id.short(),
                "time": time::rfc3339_utc(s.unix_time()),
                "hostname": s.hostname,
                "source": s.source,
                "tags": s.tags,
                "group": r.group,
                "keep": r.decision.keep,
                "reasons": r.decision.reasons,
            })
        }).collect::<Vec<_>>(),
        "remove": removed.iter().map(|(id, _)| id.to_hex())
            .chain(removed_unreadable.iter().map(|id| id.to_hex())).collect::<Vec<_>>(),
        "photo_loss": loss,
        "refused": refused,
        "removed": 0,
        "prune": null,
    });
    if refused {
        if a.json {
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        bail!(
            "refusing to forget: {} photo(s) would then be in no snapshot{}. Restore them first, \
             or pass --allow-photo-loss to forget anyway",
            loss.lost.len(),
            if loss.unverifiable > 0 {
                " (or cannot be checked)"
            } else {
                ""
            }
        );
    }
    if n_remove == 0 {
        if !a.json {
            ctx.say("nothing to remove");
        } else {
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        return Ok(crate::exit::OK);
    }
    if a.dry_run {
        if !a.json {
            ctx.say(format!(
                "would remove {} (dry run: nothing changed)",
                plural(n_remove, "snapshot")
            ));
        }
        if a.prune {
            let ignore: HashSet<SnapshotId> = removed
                .iter()
                .map(|(id, _)| *id)
                .chain(removed_unreadable.iter().copied())
                .collect();
            if !a.json {
                ctx.say("prune would then:");
            }
            out["prune"] =
                super::prune::prune_locked(ctx, &repo, &prune_opts, &ignore, true, a.json)?;
        }
        if a.json {
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        return Ok(crate::exit::OK);
    }
    for id in removed.iter().map(|(id, _)| id).chain(&removed_unreadable) {
        repo.backend()
            .remove(FileKind::Snapshot, &id.to_hex())
            .with_context(|| format!("removing snapshot {}", id.short()))?;
    }
    out["removed"] = json!(n_remove);
    if !a.json {
        // forget acts at once (unlike repair, which only plans without --apply): say so.
        ctx.say(format!(
            "removed {} (--dry-run previews without removing){}",
            plural(n_remove, "snapshot"),
            if a.prune {
                ""
            } else {
                "; `snapvault prune` frees their space"
            }
        ));
    }
    if a.prune {
        if !a.json {
            ctx.say("pruning:");
        }
        out["prune"] =
            super::prune::prune_locked(ctx, &repo, &prune_opts, &HashSet::new(), false, a.json)?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(crate::exit::OK)
}

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

fn print_rows(ctx: &Ctx, rows: &[Row], by_id: &BTreeMap<SnapshotId, &Snapshot>, policy: bool) {
    let mut current: Option<&str> = None;
    for r in rows {
        if !policy && r.decision.keep {
            continue;
        }
        if policy && current != Some(r.group.as_str()) {
            current = Some(&r.group);
            let members: Vec<&Row> = rows.iter().filter(|x| x.group == r.group).collect();
            let keep = members.iter().filter(|x| x.decision.keep).count();
            ctx.say(format!(
                "\n{}: keep {}, remove {}",
                r.group,
                keep,
                members.len() - keep
            ));
        }
        let s = by_id[&r.id];
        let what = if r.decision.keep {
            format!("keep    {}", r.decision.reasons.join(", "))
        } else {
            "remove".to_string()
        };
        let tags = if s.tags.is_empty() {
            String::new()
        } else {
            format!("[{}] ", s.tags.join(","))
        };
        ctx.say(format!(
            "  {}  {}  {tags}{what}",
            r.id.short(),
            fmt::time_ns(s.time)
        ));
    }
    if policy {
        ctx.say("");
    }
}

fn print_loss(loss: &PhotoLoss, refused: bool) {
    for p in &loss.problems {
        eprintln!("warning: {}", escaped(p));
    }
    if loss.lost.is_empty() {
        return;
    }
    // The day of a `taken` from a stored tree (which may hold anything).
    let day = |t: &str| snapvault_repo::text::prefix(t, 10).to_string();
    let range = match (&loss.first_taken, &loss.last_taken) {
        (Some(a), Some(b)) if day(a) == day(b) => format!(", taken {}", day(a)),
        (Some(a), Some(b)) => format!(", taken {} … {}", day(a), day(b)),
        _ => String::new(),
    };
    let tag = if refused { "error" } else { "warning" };
    eprintln!(
        "{tag}: {} photo(s) ({}{range}) are in no remaining snapshot and would be lost:",
        loss.lost.len(),
        fmt::size(loss.bytes)
    );
    for p in loss.lost.iter().take(SHOWN) {
        let taken = p
            .taken
            .as_deref()
            .map(|t| format!(" taken {t}"))
            .unwrap_or_default();
        eprintln!(
            "  {}  ({}{taken}, in snapshot {})",
            escaped(&p.path),
            p.kind,
            p.snapshot.short()
        );
    }
    if loss.lost.len() > SHOWN {
        eprintln!("  … and {} more", loss.lost.len() - SHOWN);
    }
    if refused {
        print_restore_hint(loss);
    }
}

/// How to get exactly the listed photos back before forgetting: one `restore --include`
/// per snapshot holding them; when there are too many to name, the photos taken in their
/// date range (or the whole snapshot when no date is known).
fn print_restore_hint(loss: &PhotoLoss) {
    let Some(first) = loss.lost.first() else {
        return;
    };
    eprintln!("hint: get them back first (replace DIR by a folder of yours):");
    if loss.lost.len() <= SHOWN {
        let mut by_snapshot: Vec<(SnapshotId, Vec<&str>)> = Vec::new();
        for p in &loss.lost {
            match by_snapshot.iter_mut().find(|(s, _)| *s == p.snapshot) {
                Some((_, paths)) => paths.push(&p.path),
                None => by_snapshot.push((p.snapshot, vec![&p.path])),
            }
        }
        for (snap, paths) in by_snapshot {
            let includes: Vec<String> = paths
                .iter()
                .map(|p| format!("--include {}", shell_quote(p)))
                .collect();
            eprintln!(
                "  snapvault restore {} --target DIR {}",
                snap.short(),
                includes.join(" ")
            );
        }
        return;
    }
    match (&loss.first_taken, &loss.last_taken) {
        (Some(a), Some(b)) => eprintln!(
            "  snapvault restore --date {}..{} --target DIR   # every photo taken then, from any snapshot",
            a.get(..10).unwrap_or(a),
            b.get(..10).unwrap_or(b)
        ),
        _ => eprintln!(
            "  snapvault restore {} --target DIR   # the whole snapshot; --include GLOB narrows it",
            first.snapshot.short()
        ),
    }
}

/// `s` as one shell word: single quotes, with any `'` inside written as `'\''`; a name
/// holding control characters in `$'…'` with them escaped (bash, zsh, ksh), so the hint
/// can be pasted and prints no raw control byte.
fn shell_quote(s: &str) -> String {
    if s.chars().any(char::is_control) {
        let mut q = String::from("$'");
        for c in s.chars() {
            match c {
                '\\' => q.push_str("\\\\"),
                '\'' => q.push_str("\\'"),
                c if c.is_control() => {
                    let mut b = [0u8; 4];
                    for x in c.encode_utf8(&mut b).bytes() {
                        q.push_str(&format!("\\x{x:02x}"));
                    }
                }
                c => q.push(c),
            }
        }
        q.push('\'');
        return q;
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}
