//! `snapvault repair [index|snapshots] [--from REPO2] [--apply]`: shows the plan, applies
//! it with --apply. The plan comes from reading and verifying every pack in storage (a
//! survey), so it acts on exactly what is damaged and judges loss by what the packs hold,
//! not by the index. `--from` first looks for the lost data in another repository (by
//! content) and stores what it finds here again; only what is still lost after that is
//! left out of repaired copies. Repair converges: run again, it changes nothing.

use std::collections::HashSet;

use anyhow::{Context, Result, bail};
use snapvault_repo::backend::FileKind;
use snapvault_repo::config_copy::Reseal;
use snapvault_repo::heal::{self, Other};
use snapvault_repo::packer::Packer;
use snapvault_repo::repair::{self, Parts, RepairPlan};
use snapvault_repo::survey::{self, OldIndex, Survey};
use snapvault_repo::text::escaped;
use snapvault_repo::{BlobId, Repository};

use super::{Ctx, io_threads};
use crate::cli::{RepairArgs, RepairPart};
use crate::damage::DamageList;

pub fn run(ctx: &Ctx, a: RepairArgs) -> Result<i32> {
    let parts = match a.part {
        None => Parts {
            index: true,
            snapshots: true,
        },
        Some(RepairPart::Index) => Parts {
            index: true,
            snapshots: false,
        },
        Some(RepairPart::Snapshots) => Parts {
            index: false,
            snapshots: true,
        },
    };
    // Parity first: every file it rebuilds is then intact for the steps below. Its
    // write-backs run under the exclusive lock, so no other command removes or adds a file
    // meanwhile; when the repository does not open (its config or key files may be what is
    // damaged), parity rebuilds first without the lock: nothing else can open it either.
    let early = match ctx.open() {
        Ok(repo) => {
            let lock = repo.lock(true, "repair")?;
            Some((repo, lock))
        }
        Err(_) => None,
    };
    let apply = a.apply && !a.dry_run;
    let json = a.json;
    let trusted = early
        .as_ref()
        .map(|(repo, _)| super::parity::level_in_force(repo));
    let none = HashSet::new();
    // Files rebuilt from parity are put back beneath the guard: they are what their
    // groups recorded, so no parity changes (a pack is not streamed again as a new one).
    let location = ctx.repo_location()?;
    let storage = match super::parity::beneath_guard(&location) {
        Some(b) => b,
        None => ctx.backend()?,
    };
    let parity =
        super::parity_check::scan(storage.as_ref(), trusted, true, apply, &none, &mut |l| {
            if json {
                eprintln!(
                    "{}",
                    serde_json::json!({"type": "parity_repair", "message": l})
                );
            } else {
                println!("{l}");
            }
        })?;
    if apply {
        // Running `repair --apply` accepts what parity cannot rebuild: the steps below
        // rescue what they can of it and remove it, and a group with such a member is
        // rebuilt from its other members when one of them leaves.
        super::parity::given_up(
            &location,
            parity
                .lost
                .iter()
                .filter_map(|f| Some((super::parity_check::kind_named(f.kind)?, f.name.clone())))
                .collect(),
        );
    }
    if !json {
        for f in &parity.repairable {
            ctx.say(format!("would repair from parity: {f}"));
        }
        for f in &parity.lost {
            ctx.say(beyond_parity(f, apply));
        }
    }
    let (mut repo, _lock) = match early {
        Some(held) => held,
        None => {
            let repo = ctx.open()?;
            let lock = repo.lock(true, "repair")?;
            (repo, lock)
        }
    };
    let other = match &a.from {
        Some(loc) => Some(open_other(ctx, &repo, loc, &a)?),
        None => None,
    };
    let config_pending = config(ctx, &mut repo, a.apply && !a.dry_run, a.json)?;
    if !a.json {
        ctx.say("reading and verifying every pack to find what is damaged…");
    }
    let progress = crate::progress::Progress::new(
        "check",
        crate::progress::mode(ctx.global.quiet, a.json),
        crate::progress::Unit::Packs,
    );
    if !progress.is_hidden()
        && let Ok(packs) = repo.backend().list(FileKind::Pack)
    {
        progress.set_totals(packs.len() as u64, packs.iter().map(|p| p.size).sum());
    }
    let mut old = survey::load_old_index(&repo)?;
    let found = survey::survey(&repo, &old.index, io_threads(), &progress);
    progress.finish();
    let mut found = found?;
    let mut plan = repair::plan(&repo, &found, &old)?;
    if !parts.index && plan.rebuild_index && !plan.snapshots.is_empty() {
        bail!(
            "the index does not match what the packs hold, so snapshots cannot be judged yet; \
             nothing was changed: run `snapvault repair index --apply` first (or `snapvault repair --apply`)"
        );
    }
    let mut healed = 0;
    if let Some(o) = &other {
        let before = plan;
        plan = heal_from(ctx, &repo, o, &mut found, &mut old, &before, a.apply)?;
        healed = healed_paths(&before, &plan).len();
        if !a.json {
            show_heal(ctx, o, &before, &plan, a.apply);
        }
    }
    if !a.json {
        for f in &plan.foreign_packs {
            ctx.say(format!(
                "file {} in data/: not this repository's (it does not open with this \
                 repository's key and no index names it); left in place, as prune leaves it: \
                 delete it yourself if you do not need it",
                f.to_hex()
            ));
        }
    }
    if a.json && !a.apply {
        println!("{}", serde_json::to_string_pretty(&plan)?);
        return Ok(0);
    }
    if !plan.has_work(parts, a.forget_damaged) {
        if healed == 0 {
            let from = other.as_ref().map(|o| o.location.as_str());
            nothing_to_do(ctx, &plan, from, config_pending);
        }
        if a.apply {
            record_damage(&repo, &plan, &found, a.forget_damaged && parts.snapshots);
            accept_lost(&repo, &parity)?;
        }
        return Ok(0);
    }
    show_plan(&plan, &found, parts, a.forget_damaged, a.apply);
    if !a.apply {
        ctx.say(
            "nothing was changed: this is only the plan; run again with --apply to carry it out",
        );
        return Ok(0);
    }
    if parts.index && !parts.snapshots && !plan.snapshots.is_empty() {
        eprintln!(
            "note: {} snapshot(s) use data no pack holds intact; run `snapvault repair snapshots --apply` too",
            plan.snapshots.len()
        );
    }
    let out = repair::apply(&repo, &found, &plan, parts, a.forget_damaged)?;
    accept_lost(&repo, &parity)?;
    record_damage(&repo, &plan, &found, a.forget_damaged && parts.snapshots);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        ctx.say(format!(
            "repaired: {} blob(s) rescued, {} dropped, {} pack(s) removed, {} index file(s) replaced, {} snapshot(s) written, {} removed",
            out.blobs_rescued, out.blobs_dropped, out.packs_removed, out.index_files_replaced,
            out.snapshots_written.len(), out.snapshots_removed
        ));
    }
    let to_write = plan
        .snapshots
        .iter()
        .any(|f| !f.root_lost && f.repaired_copy.is_none());
    if out.snapshots_written.is_empty() && parts.snapshots && to_write {
        bail!("no repaired snapshot could be written");
    }
    Ok(0)
}

/// What becomes of a file parity cannot rebuild. Its group's parity could still rebuild
/// it, or the others, from an exact copy of one of the lost files put back at its place
/// (a file-level backup of the repository's folder), and only until `--apply` gives the
/// loss up and rebuilds the group without them; `--from` cannot help there (it stores
/// what it finds in new packs), so the plan says so first (format.md §15.5).
fn beyond_parity(f: &super::parity_check::Finding, apply: bool) -> String {
    if apply {
        return format!(
            "beyond parity: {f}; given up: the steps below rescue what they can of it, and its \
             parity group is rebuilt without it"
        );
    }
    let at = match f.kind {
        "pack" => format!("data/{}/{}", f.name.get(..2).unwrap_or(""), f.name),
        "snapshot" => format!("snapshots/{}", f.name),
        "index" => format!("index/{}", f.name),
        "key" => format!("keys/{}", f.name),
        _ => f.name.clone(),
    };
    format!(
        "beyond parity: {f}; `--apply` gives it up (the steps below rescue what they can) and \
         rebuilds its parity group without it. If a copy of it, or of another file its group \
         lost, exists (a backup of the repository's folder), put it back first ({at}) and run \
         `snapvault repair --apply`: parity then rebuilds the rest"
    )
}

/// Packs parity could not rebuild that are gone and that no index names once repair has
/// applied its plan: their loss is accepted, so the parity update regroups without them.
fn accept_lost(repo: &Repository, parity: &super::parity_check::ParityStatus) -> Result<()> {
    let index = repo.load_index()?.index;
    let mut gone = Vec::new();
    for f in parity.lost.iter().filter(|f| f.kind == "pack") {
        let Ok(id) = f.name.parse::<snapvault_repo::PackId>() else {
            continue;
        };
        if !index.has_pack(&id) && !repo.backend().exists(FileKind::Pack, &f.name)? {
            gone.push((snapvault_repo::parity::MemberKind::Pack, f.name.clone()));
        }
    }
    super::parity::loss_accepted(&repo.backend().location(), gone);
    Ok(())
}

/// The repository to heal from, opened and locked (shared).
struct OtherRepo {
    location: String,
    repo: Repository,
    index: snapvault_repo::index::Index,
    _lock: Option<snapvault_repo::lock::LockGuard>,
}

fn open_other(ctx: &Ctx, here: &Repository, loc: &str, a: &RepairArgs) -> Result<OtherRepo> {
    let second = super::second::Second {
        location: loc,
        password_file: a.password_file2.clone(),
        password_command: a.password_command2.clone(),
        role: "repository to heal from",
    };
    let repo = super::second::open(second, Ok)?;
    let location = repo.backend().location();
    if repo.config().id == here.config().id {
        bail!(
            "--from {loc} is this repository itself (the same repository id): name your other backup"
        );
    }
    let lock = crate::readonly::shared_lock(ctx, &repo, "repair --from")
        .with_context(|| format!("repository to heal from {location}"))?;
    let index = repo
        .load_index()
        .with_context(|| format!("loading the index of {location}"))?
        .index;
    Ok(OtherRepo {
        location,
        repo,
        index,
        _lock: lock,
    })
}

/// Look for the lost data in the other repository. With `store`, what is found is stored
/// here again (its packs and index file written, and added to `found` and `old` as the
/// survey would have seen them); the plan returned is made after that. Without, the plan
/// returned counts what was found as stored: what `--apply` would leave.
fn heal_from(
    ctx: &Ctx,
    repo: &Repository,
    o: &OtherRepo,
    found: &mut Survey,
    old: &mut OldIndex,
    plan: &RepairPlan,
    store: bool,
) -> Result<RepairPlan> {
    let wanted: HashSet<BlobId> = plan.lost_data(&found.index);
    if wanted.is_empty() {
        return Ok(repair::plan(repo, found, old)?);
    }
    ctx.say(format!(
        "looking for {} lost file(s) in {}, by content…",
        plan.lost_files.len(),
        o.location
    ));
    let other = Other {
        repo: &o.repo,
        index: &o.index,
    };
    let context = || format!("healing from {}", o.location);
    if !store {
        let got =
            heal::heal(repo, &other, &plan.lost_files, &wanted, None).with_context(context)?;
        return Ok(repair::plan_with(repo, found, old, &got.blobs)?);
    }
    let packer = Packer::start(
        repo.backend().clone(),
        repo.crypto().clone(),
        repo.config().pack_size as usize,
    );
    let tx = packer.sender();
    let got = heal::heal(repo, &other, &plan.lost_files, &wanted, Some(&tx));
    drop(tx);
    // Packs written are indexed even when the search failed half-way: a rerun reuses them.
    let written = packer.finish()?;
    got.with_context(context)?;
    for p in &written.packs_written {
        found.index.add_pack(p.id, p.size, &p.blobs);
        found.intact.push(p.clone());
        old.index.add_pack(p.id, p.size, &p.blobs);
    }
    old.files.extend(written.index_files.iter().copied());
    Ok(repair::plan(repo, found, old)?)
}

/// Paths (per snapshot) that were lost before healing and are not after.
fn healed_paths(before: &RepairPlan, after: &RepairPlan) -> Vec<String> {
    let mut out = Vec::new();
    for f in &before.snapshots {
        let still: HashSet<&String> = after
            .snapshots
            .iter()
            .find(|g| g.snapshot == f.snapshot)
            .map(|g| g.removed.iter().collect())
            .unwrap_or_default();
        for p in &f.removed {
            if !still.contains(p) && !out.contains(p) {
                out.push(p.clone());
            }
        }
    }
    out
}

fn show_heal(ctx: &Ctx, o: &OtherRepo, before: &RepairPlan, after: &RepairPlan, applied: bool) {
    let healed = healed_paths(before, after);
    let lost: HashSet<&String> = before.snapshots.iter().flat_map(|f| &f.removed).collect();
    let mut left: Vec<&String> = after
        .snapshots
        .iter()
        .flat_map(|f| &f.removed)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    left.sort();
    if lost.is_empty() {
        return;
    }
    let verb = if applied {
        "stored here again from"
    } else {
        "found intact in"
    };
    for p in &healed {
        println!("healed: {} ({verb} {})", escaped(p), o.location);
    }
    for p in &left {
        println!("not found in {}: {}", o.location, escaped(p));
    }
    ctx.say(format!(
        "{} of {} damaged file(s) {verb} {}",
        healed.len(),
        lost.len(),
        o.location
    ));
    if !applied && !healed.is_empty() {
        ctx.say("with --apply they are stored here again, and the snapshots holding them are whole again");
    }
}

fn nothing_to_do(ctx: &Ctx, plan: &RepairPlan, from: Option<&str>, config_pending: bool) {
    let waiting: Vec<String> = plan
        .snapshots
        .iter()
        .filter_map(|f| {
            f.repaired_copy
                .map(|c| format!("{} (repaired copy {})", f.snapshot.short(), c.short()))
        })
        .collect();
    if waiting.is_empty() {
        ctx.say(if config_pending {
            "nothing else to repair: every pack is intact and the index and snapshots agree \
             with them; run again with --apply to rewrite the config"
        } else {
            "nothing to repair: every pack is intact and the index and snapshots agree with them"
        });
        return;
    }
    if config_pending {
        ctx.say("the config is to be rewritten: run again with --apply");
    }
    ctx.say(format!(
        "nothing to repair, nothing was changed: every pack is intact, and the {} damaged \
         snapshot(s) already have their repaired copies without the lost files: {}",
        waiting.len(),
        waiting.join(", ")
    ));
    let heal = match from {
        Some(loc) => format!("{loc} does not hold the lost files; another repository that does"),
        None => "another repository that holds the lost files intact".to_string(),
    };
    ctx.say(format!(
        "the originals still name the lost files: {heal} heals them (`snapvault repair --from \
         OTHER_REPO --apply`); `snapvault repair --apply --forget-damaged` removes them, keeping \
         the repaired copies"
    ));
}

fn show_plan(plan: &RepairPlan, found: &Survey, parts: Parts, forget: bool, apply: bool) {
    if parts.index {
        for d in &found.damaged {
            println!(
                "pack {}: damaged ({}); its {} intact blob(s) are copied to a new pack, then it is removed",
                d.id.short(),
                d.reason,
                d.rescuable.len()
            );
        }
        for f in &plan.damaged_index_files {
            println!("index file {}: damaged", f.short());
        }
        for p in &plan.adopt_packs {
            println!(
                "pack {}: not in any index; added to the rebuilt index",
                p.short()
            );
        }
        if plan.rebuild_index {
            println!(
                "index: rebuilt from what the packs hold, replacing {} index file(s)",
                plan.replace_index.len()
            );
        }
    }
    if !parts.snapshots {
        return;
    }
    let will = if apply { "" } else { " (with --apply)" };
    for f in &plan.snapshots {
        if f.root_lost {
            println!(
                "snapshot {}: its root folder listing is lost; it cannot be repaired{}",
                f.snapshot.short(),
                if forget { " and will be removed" } else { "" }
            );
            continue;
        }
        if let Some(c) = f.repaired_copy {
            println!(
                "snapshot {}: its repaired copy {} exists already; {}",
                f.snapshot.short(),
                c.short(),
                if forget {
                    "the original is removed"
                } else {
                    "nothing more to do (--forget-damaged removes the original)"
                }
            );
            continue;
        }
        println!(
            "snapshot {}: a repaired copy without {} damaged file(s) is written{}",
            f.snapshot.short(),
            f.removed.len(),
            if forget {
                "; the original is removed"
            } else {
                "; the original is kept (use --forget-damaged to remove it)"
            }
        );
        for r in &f.removed {
            println!("  lost: {}", escaped(r));
        }
    }
    for r in &plan.redundant_copies {
        let why = if r.original_whole {
            format!("its original {} is whole again", r.of.short())
        } else {
            format!("it is identical to {}", r.of.short())
        };
        println!(
            "snapshot {}: a repaired copy no longer needed ({why}); removed{will}",
            r.copy.short()
        );
    }
    for n in &plan.unreadable_snapshots {
        println!(
            "snapshot file {}: unreadable{}",
            n.get(..8).unwrap_or(n),
            if forget { "; removed" } else { "" }
        );
    }
    if plan.snapshots.iter().any(|f| f.repaired_copy.is_none()) {
        println!(
            "a lost photo that is still on its source is stored again by the next `snapvault snapshot` of that source; \
             one that another repository holds intact, by `snapvault repair --from OTHER_REPO --apply`"
        );
    }
}

/// Keep the damage list in step with what the repair left: copies it dropped are gone, and
/// what the snapshots kept still lack stays recorded as lost.
fn record_damage(repo: &Repository, plan: &RepairPlan, found: &Survey, forget: bool) {
    let id = &repo.config().id;
    let mut list = DamageList::load(id);
    if let Ok(loaded) = repo.load_index() {
        list.normalize(&loaded.index);
    }
    if forget {
        list.set_lost([]);
    } else {
        list.set_lost(plan.lost_data(&found.index));
    }
    let _ = list.save(id);
}

/// A damaged config file is rewritten from the key file copy the repository opened with,
/// and key files whose copy is damaged or out of date get the config in use (with
/// `apply`); returns whether that is still to do.
fn config(
    ctx: &Ctx,
    repo: &mut snapvault_repo::Repository,
    apply: bool,
    json: bool,
) -> Result<bool> {
    let rewrite = rewrite_config(ctx, repo, apply, json)?;
    let stale = repo.stale_config_copies()?;
    if stale.is_empty() {
        return Ok(rewrite);
    }
    if !apply {
        if !json {
            for k in &stale {
                ctx.say(format!(
                    "key {}: its copy of the config is damaged or out of date; --apply seals \
                     the config in use into it",
                    short(k)
                ));
            }
        }
        return Ok(true);
    }
    for (old, new) in repo.reseal_config_copies(Reseal::Stale)? {
        if !json {
            ctx.say(format!(
                "key {}: written anew as key {} with the config in use",
                short(&old),
                short(&new)
            ));
        }
    }
    Ok(rewrite)
}

fn short(name: &str) -> &str {
    name.get(..8).unwrap_or(name)
}

fn rewrite_config(
    ctx: &Ctx,
    repo: &mut snapvault_repo::Repository,
    apply: bool,
    json: bool,
) -> Result<bool> {
    let Some(d) = repo.config_damage().cloned() else {
        return Ok(false);
    };
    let from = d.copy_in.get(..8).unwrap_or(&d.copy_in).to_string();
    if !apply {
        if !json {
            ctx.say(format!(
                "config: damaged ({}); --apply rewrites it from the copy kept in key file {from}",
                d.reason
            ));
        }
        return Ok(true);
    }
    repo.rewrite_config()?;
    if !json {
        ctx.say(format!(
            "config: rewritten from the copy kept in key file {from} (it was damaged: {})",
            d.reason
        ));
    }
    Ok(false)
}
