//! `snapvault copy --to REPO2 [SNAPSHOT...|--all]`: copy snapshots into another repository
//! with its own keys, sending only the blobs it lacks (see `snapvault_repo::copy`).

use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::CommandFactory;
use serde_json::json;
use snapvault_repo::copy::{self, CopyResult, Outcome, Repos};
use snapvault_repo::{Repository, SnapshotId};

use super::Ctx;
use crate::cli::CopyArgs;
use crate::fmt;

pub fn run(ctx: &Ctx, a: CopyArgs) -> Result<i32> {
    if a.snapshots.is_empty() && !a.all {
        let mut cmd = crate::cli::Cli::command();
        cmd.build();
        let sub = cmd.find_subcommand_mut("copy").cloned();
        let mut sub = sub.unwrap_or(cmd);
        sub.error(
            clap::error::ErrorKind::MissingRequiredArgument,
            "which snapshots? name them (ids, `latest`, `latest~N`) or pass --all",
        )
        .exit();
    }
    let src_loc = ctx.repo_location()?;
    let src = ctx
        .open()
        .with_context(|| format!("source repository {src_loc}"))?;
    let dst = open_destination(&a)?;
    let dst_loc = dst.backend().location();
    if src.config().id == dst.config().id {
        bail!(
            "{dst_loc} is the source repository itself (the same repository id): copy needs another repository"
        );
    }
    if src.crypto().is_encrypted() && !dst.crypto().is_encrypted() {
        bail!(
            "the destination repository at {dst_loc} is NOT encrypted, but the source is: refusing to \
             write its photos in the clear (an encrypted destination may have been replaced). Copy into \
             an encrypted repository (`snapvault init` without --insecure-no-encryption)"
        );
    }
    let _src_lock = crate::readonly::shared_lock(ctx, &src, "copy")
        .with_context(|| format!("source repository {src_loc}"))?;
    let _dst_lock = dst
        .lock(false, "copy")
        .with_context(|| format!("destination repository {dst_loc}"))?;
    let _ = dst.backend().remove_leftover_temp_files(15 * 60);

    let (all, bad) = src
        .snapshots()
        .with_context(|| format!("source repository {src_loc}"))?;
    for (name, e) in &bad {
        eprintln!("warning: source snapshot {name} cannot be read: {e}");
    }
    let selected =
        select(&src, &all, &a).with_context(|| format!("source repository {src_loc}"))?;
    let src_index = src
        .load_index()
        .with_context(|| format!("loading the index of the source repository {src_loc}"))?
        .index;
    let dst_index = dst
        .load_index()
        .with_context(|| format!("loading the index of the destination repository {dst_loc}"))?
        .index;

    let started = Instant::now();
    let mode = crate::progress::mode(ctx.global.quiet, a.json);
    let progress = crate::progress::Progress::new("copy", mode, crate::progress::Unit::Blobs);
    let repos = Repos {
        src: &src,
        src_index: &src_index,
        dst: &dst,
        dst_index,
    };
    let result = copy::copy(repos, &all, &selected, &progress);
    progress.finish();
    let results =
        result.with_context(|| format!("copying from {src_loc} to the destination {dst_loc}"))?;
    report(ctx, &a, &results, &src_loc, &dst_loc, started)?;
    damage_note(&dst, &src_loc, &dst_loc);
    Ok(crate::exit::OK)
}

/// `copy` adds snapshots the destination lacks; it does not replace data a `check` found
/// damaged or lost there. Say so, and what does.
fn damage_note(dst: &Repository, src_loc: &str, dst_loc: &str) {
    let list = crate::damage::DamageList::load(&dst.config().id);
    if !list.knows_damage() {
        return;
    }
    let (copies, packs) = list.counts();
    let lost = list.lost_count();
    eprintln!(
        "note: the last `check` of {dst_loc} found damaged or lost data there ({copies} damaged \
         and {lost} lost piece(s) of photo data, {packs} damaged pack(s)); `copy` adds only the \
         snapshots it lacks and does not replace damaged data. To store it again from \
         {src_loc} if it holds it intact: `snapvault --repo {dst_loc} repair --from {src_loc} --apply`"
    );
}

/// The destination, opened with its own password (SNAPVAULT_PASSWORD2, --password-file2,
/// --password-command2 or a prompt), with the same downgrade rule as the source.
fn open_destination(a: &CopyArgs) -> Result<Repository> {
    let second = super::second::Second {
        location: &a.to,
        password_file: a.password_file2.clone(),
        password_command: a.password_command2.clone(),
        role: "destination repository",
    };
    // Test builds only (`snapvault_repo::testhooks`): `SNAPVAULT_TEST_FAULT=write@3:kill`
    // kills the process at the 3rd write of a pack, index file or snapshot into the
    // destination.
    super::second::open(second, |backend| super::parity::with_faults(&a.to, backend))
}

/// The source snapshots to copy, oldest first, each once.
fn select(
    src: &Repository,
    all: &[(SnapshotId, snapvault_repo::snapshot::Snapshot)],
    a: &CopyArgs,
) -> Result<Vec<SnapshotId>> {
    if a.all {
        return Ok(all.iter().map(|(id, _)| *id).collect());
    }
    let mut picked = Vec::new();
    for spec in &a.snapshots {
        let (id, _) = src.find_snapshot(spec)?;
        picked.push(id);
    }
    let order = |id: &SnapshotId| all.iter().position(|(i, _)| i == id);
    picked.sort_by_key(|id| (order(id), *id));
    picked.dedup();
    Ok(picked)
}

fn report(
    ctx: &Ctx,
    a: &CopyArgs,
    results: &[CopyResult],
    src_loc: &str,
    dst_loc: &str,
    started: Instant,
) -> Result<()> {
    let copied = results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Copied(_)))
        .count();
    let skipped = results.len() - copied;
    let blobs: u64 = results.iter().map(|r| r.stats.blobs_copied).sum();
    let bytes: u64 = results.iter().map(|r| r.stats.bytes_copied).sum();
    let read: u64 = results.iter().map(|r| r.stats.bytes_read).sum();
    if a.json {
        let rows: Vec<_> = results
            .iter()
            .map(|r| {
                let (status, id) = match r.outcome {
                    Outcome::Copied(id) => ("copied", id),
                    Outcome::Skipped(id) => ("skipped", id),
                };
                json!({
                    "source_id": r.source.to_hex(),
                    "status": status,
                    "id": id.to_hex(),
                    "short_id": id.short(),
                    "blobs_copied": r.stats.blobs_copied,
                    "bytes_copied": r.stats.bytes_copied,
                    "blobs_read": r.stats.blobs_read,
                    "bytes_read": r.stats.bytes_read,
                })
            })
            .collect();
        let v = json!({
            "source": src_loc,
            "destination": dst_loc,
            "snapshots": rows,
            "copied": copied,
            "skipped": skipped,
            "blobs_copied": blobs,
            "bytes_copied": bytes,
            "bytes_read": read,
            "duration_ms": started.elapsed().as_millis() as u64,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    for r in results {
        match r.outcome {
            Outcome::Copied(id) => ctx.say(format!(
                "snapshot {} copied as {}: {} added{}",
                r.source.short(),
                id.short(),
                fmt::size(r.stats.bytes_copied),
                internals(ctx, r.stats.blobs_copied)
            )),
            Outcome::Skipped(id) if ctx.global.verbose > 0 => ctx.say(format!(
                "snapshot {} skipped: the destination has it already as {}",
                r.source.short(),
                id.short()
            )),
            Outcome::Skipped(_) => {}
        }
    }
    if results.is_empty() {
        ctx.say("nothing to copy: the source repository has no snapshots");
    } else if copied == 0 {
        ctx.say(format!(
            "nothing to copy: {dst_loc} has all {skipped} selected snapshot(s) already"
        ));
    } else {
        ctx.say(format!(
            "copied {copied} snapshot(s) to {dst_loc} ({skipped} already there): {} added{}, {} read; took {}",
            fmt::size(bytes),
            internals(ctx, blobs),
            fmt::size(read),
            fmt::duration_ms(started.elapsed().as_millis() as u64)
        ));
    }
    Ok(())
}

/// ` (N blobs)` with -v; storage internals stay out of everyday output.
fn internals(ctx: &Ctx, blobs: u64) -> String {
    if ctx.global.verbose > 0 {
        format!(" ({blobs} blobs)")
    } else {
        String::new()
    }
}
