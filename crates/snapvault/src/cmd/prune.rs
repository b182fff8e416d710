//! `snapvault prune`: reclaim the space of data no snapshot uses (see docs/forget-prune.md).

use std::collections::HashSet;

use anyhow::{Result, anyhow};
use serde_json::json;
use snapvault_repo::prune::{self, MaxUnused, PruneOptions, PruneReport, PruneStats};
use snapvault_repo::{RepoError, Repository, SnapshotId};

use super::Ctx;
use crate::cli::{PruneArgs, PruneOpts};
use crate::fmt;

/// Open the repository for forget/prune. In test builds (`snapvault_repo::testhooks`),
/// `SNAPVAULT_TEST_FAULT=write+remove@5:kill` makes the 5th write or remove of a pack, index
/// file or snapshot kill the process; a release build has no such hook.
pub fn open(ctx: &Ctx) -> Result<Repository> {
    if !snapvault_repo::testhooks::faults_requested() {
        return ctx.open();
    }
    let loc = ctx.repo_location()?;
    let backend = super::parity::with_faults(&loc, ctx.backend()?)?;
    let loc = backend.location();
    let src = ctx.password_source();
    let repo = Repository::open(backend, || {
        src.get(&format!("repository {loc}"), false)
            .map_err(|e| RepoError::PasswordUnavailable(crate::exit::message(&e)))
    })?;
    // As `ctx.open` does: without the keys the parity update after the command would take
    // it for one that never opened the repository and skip itself.
    super::parity::opened(&loc, &repo);
    Ok(repo)
}

pub fn options(o: &PruneOpts) -> Result<PruneOptions> {
    Ok(PruneOptions {
        max_unused: o.max_unused,
        max_repack: prune::parse_max_repack(&o.max_repack)
            .map_err(|e| anyhow!("--max-repack: {e}"))?,
        unindexed_min_age: o.unindexed_grace,
    })
}

pub fn run(ctx: &Ctx, a: PruneArgs) -> Result<i32> {
    let opts = options(&a.opts)?;
    let repo = open(ctx)?;
    let lock = repo.lock(true, "prune")?;
    for s in &lock.stale {
        eprintln!(
            "note: ignoring a stale lock of {} (remove it with `snapvault unlock`)",
            s.describe()
        );
    }
    let v = prune_locked(ctx, &repo, &opts, &HashSet::new(), a.dry_run, a.json)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    }
    Ok(crate::exit::OK)
}

fn n(v: u64, one: &str) -> String {
    format!("{v} {one}{}", if v == 1 { "" } else { "s" })
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "0%".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

/// The plan in bytes: what is in use, what no snapshot needs, what will be freed. `-v` adds
/// the storage internals (packs, blobs, trees).
fn print_plan(ctx: &Ctx, st: &PruneStats, opts: &PruneOptions) {
    if st.foreign_files > 0 {
        ctx.say(format!(
            "{} in data/ not made by this repository: left alone (`snapvault check` names them)",
            n(st.foreign_files, "file")
        ));
    }
    if ctx.global.verbose > 0 {
        print_plan_internals(ctx, st, opts);
        return;
    }
    let dups = if st.duplicate_bytes > 0 {
        format!(" (of it {} stored twice)", fmt::size(st.duplicate_bytes))
    } else {
        String::new()
    };
    ctx.say(format!(
        "{} in use by {}; {} no longer needed by any snapshot{dups}",
        fmt::size(st.used_bytes),
        n(st.snapshots as u64, "snapshot"),
        fmt::size(st.unused_bytes),
    ));
    if st.unindexed_packs > 0 {
        ctx.say(format!(
            "{} left over by interrupted runs ({} old enough to delete)",
            fmt::size(st.unindexed_bytes),
            n(st.unindexed_remove_packs, "file"),
        ));
    }
    if st.remove_packs + st.repack_packs > 0 {
        let rewrite = if st.repack_packs > 0 {
            format!(
                ", and rewrite {} to drop the unused parts (copying {} still in use)",
                fmt::size(st.repack_bytes),
                fmt::size(st.repack_copy_bytes)
            )
        } else {
            String::new()
        };
        ctx.say(format!(
            "plan: delete {} of files holding only unused data{rewrite}",
            fmt::size(st.remove_bytes)
        ));
    }
    let limit = match opts.max_unused {
        MaxUnused::Unlimited => "unlimited".to_string(),
        MaxUnused::Percent(p) => format!("{p}%"),
        MaxUnused::Bytes(b) => fmt::size(b),
    };
    ctx.say(format!(
        "afterwards {} unused ({} of {}; --max-unused {limit})",
        fmt::size(st.unused_after_bytes),
        pct(st.unused_after_bytes, st.used_bytes + st.unused_after_bytes),
        fmt::size(st.used_bytes + st.unused_after_bytes),
    ));
}

fn print_plan_internals(ctx: &Ctx, st: &PruneStats, opts: &PruneOptions) {
    ctx.say(format!(
        "{} in use ({} trees walked), {} in {} with {} index files",
        n(st.snapshots as u64, "snapshot"),
        st.trees,
        fmt::size(st.pack_bytes),
        n(st.packs, "pack"),
        st.index_files
    ));
    ctx.say(format!(
        "used:      {}, {}",
        n(st.used_blobs, "blob"),
        fmt::size(st.used_bytes)
    ));
    let dups = if st.duplicate_blobs > 0 {
        format!(
            " (of which {} stored twice, {})",
            n(st.duplicate_blobs, "blob"),
            fmt::size(st.duplicate_bytes)
        )
    } else {
        String::new()
    };
    ctx.say(format!(
        "unused:    {}, {}{dups}",
        n(st.unused_blobs, "blob"),
        fmt::size(st.unused_bytes)
    ));
    if st.unindexed_packs > 0 {
        ctx.say(format!(
            "unindexed: {}, {} (no index names them; {} old enough to delete)",
            n(st.unindexed_packs, "pack"),
            fmt::size(st.unindexed_bytes),
            st.unindexed_remove_packs
        ));
    }
    ctx.say(format!(
        "plan:      remove {} ({}), repack {} ({}, copying {} in {}), keep {}",
        n(st.remove_packs, "pack"),
        fmt::size(st.remove_bytes),
        n(st.repack_packs, "pack"),
        fmt::size(st.repack_bytes),
        fmt::size(st.repack_copy_bytes),
        n(st.repack_blobs, "blob"),
        n(st.keep_packs, "pack"),
    ));
    let limit = match opts.max_unused {
        MaxUnused::Unlimited => "unlimited".to_string(),
        MaxUnused::Percent(p) => format!("{p}%"),
        MaxUnused::Bytes(b) => fmt::size(b),
    };
    ctx.say(format!(
        "after:     {} unused ({} of {}; limit {limit})",
        fmt::size(st.unused_after_bytes),
        pct(st.unused_after_bytes, st.used_bytes + st.unused_after_bytes),
        fmt::size(st.used_bytes + st.unused_after_bytes),
    ));
}

fn print_report(ctx: &Ctx, r: &PruneReport) {
    if ctx.global.verbose > 0 {
        ctx.say(format!(
            "wrote {} ({}) and {}; removed {} and {} ({})",
            n(r.packs_written, "pack"),
            fmt::size(r.bytes_written),
            n(r.index_files_written as u64, "index file"),
            n(r.index_files_removed as u64, "index file"),
            n(r.packs_removed, "pack"),
            fmt::size(r.bytes_removed),
        ));
    }
    if !r.damaged_packs_kept.is_empty() {
        eprintln!(
            "warning: {} holding damaged data left in place; run `snapvault check --read-data`",
            n(r.damaged_packs_kept.len() as u64, "file")
        );
    }
    let freed = if r.bytes_freed >= 0 {
        fmt::size(r.bytes_freed as u64)
    } else {
        format!("-{}", fmt::size(r.bytes_freed.unsigned_abs()))
    };
    ctx.say(format!("space freed: {freed}"));
}

/// Plan (and unless `dry_run`, carry out) a prune; the caller holds the exclusive lock.
/// Prints in text mode; returns the JSON description either way.
pub fn prune_locked(
    ctx: &Ctx,
    repo: &Repository,
    opts: &PruneOptions,
    ignore: &HashSet<SnapshotId>,
    dry_run: bool,
    json: bool,
) -> Result<serde_json::Value> {
    // A bar on a terminal, JSON lines with --json; -v also prints each step.
    let bar = crate::progress::Progress::new(
        "prune",
        crate::progress::mode(ctx.global.quiet, json),
        crate::progress::Unit::Packs,
    );
    let progress = crate::progress::PruneProgress {
        progress: &bar,
        verbose: ctx.global.verbose > 0 && !json,
    };
    if !dry_run {
        crate::damage::refuse_if_repair_pending(repo, "prune")?;
    }
    let plan = prune::plan(repo, opts, ignore, &progress)?;
    let stats = plan.stats.clone();
    if !json {
        bar.suspend(|| print_plan(ctx, &stats, opts));
    }
    if dry_run {
        if !json {
            if plan.is_noop() {
                ctx.say("nothing to prune");
            } else {
                ctx.say(format!(
                    "would free about {} (dry run: nothing changed)",
                    fmt::size(stats.estimated_freed)
                ));
            }
        }
        return Ok(json!({"dry_run": true, "plan": stats, "done": null}));
    }
    if plan.is_noop() {
        if !json {
            ctx.say("nothing to prune");
        }
        return Ok(json!({"dry_run": false, "plan": stats, "done": PruneReport::default()}));
    }
    let report = prune::execute(repo, plan, &progress);
    bar.finish();
    let report = report?;
    if !json {
        print_report(ctx, &report);
    }
    Ok(json!({"dry_run": false, "plan": stats, "done": report}))
}
