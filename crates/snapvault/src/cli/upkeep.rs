//! Options of the commands that keep the repository sound and copied: check, forget,
//! prune, copy, repair, parity, key and unlock.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::examples;

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Also read, decrypt and verify every blob
    #[arg(long)]
    pub read_data: bool,
    /// Read a subset: `10%` or `n/m` (slice n of m)
    #[arg(long, value_name = "SUBSET", conflicts_with = "read_data")]
    pub read_data_subset: Option<String>,
    /// Rolling verification: read the packs verified least recently, for at most this long
    /// (e.g. 10m); repeated runs cover everything
    #[arg(long, value_name = "DURATION", conflicts_with_all = ["read_data", "read_data_subset"])]
    pub budget: Option<String>,
    /// Print the report as JSON (fields: docs/json.md)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ForgetArgs {
    /// Snapshots to remove (id prefixes), instead of a policy
    #[arg(value_name = "ID")]
    pub ids: Vec<String>,
    /// Keep the N newest snapshots (`unlimited`: all)
    #[arg(long, value_name = "N", value_parser = snapvault_repo::forget::parse_count)]
    pub keep_last: Option<u32>,
    /// Keep the newest snapshot of each of the last N hours that have one
    #[arg(long, value_name = "N", value_parser = snapvault_repo::forget::parse_count)]
    pub keep_hourly: Option<u32>,
    /// Keep the newest snapshot of each of the last N days that have one (UTC days)
    #[arg(long, value_name = "N", value_parser = snapvault_repo::forget::parse_count)]
    pub keep_daily: Option<u32>,
    /// Keep the newest snapshot of each of the last N weeks that have one (ISO weeks)
    #[arg(long, value_name = "N", value_parser = snapvault_repo::forget::parse_count)]
    pub keep_weekly: Option<u32>,
    /// Keep the newest snapshot of each of the last N months that have one
    #[arg(long, value_name = "N", value_parser = snapvault_repo::forget::parse_count)]
    pub keep_monthly: Option<u32>,
    /// Keep the newest snapshot of each of the last N years that have one
    #[arg(long, value_name = "N", value_parser = snapvault_repo::forget::parse_count)]
    pub keep_yearly: Option<u32>,
    /// Keep every snapshot within this span of the newest one: 30d, 2w, 1y6m, 12h
    #[arg(long, value_name = "SPAN", value_parser = snapvault_repo::forget::parse_span)]
    pub keep_within: Option<snapvault_repo::forget::Span>,
    /// Keep the newest snapshot of each hour within this span of the newest one
    #[arg(long, value_name = "SPAN", value_parser = snapvault_repo::forget::parse_span)]
    pub keep_within_hourly: Option<snapvault_repo::forget::Span>,
    /// Keep the newest snapshot of each day within this span of the newest one
    #[arg(long, value_name = "SPAN", value_parser = snapvault_repo::forget::parse_span)]
    pub keep_within_daily: Option<snapvault_repo::forget::Span>,
    /// Keep the newest snapshot of each week within this span of the newest one
    #[arg(long, value_name = "SPAN", value_parser = snapvault_repo::forget::parse_span)]
    pub keep_within_weekly: Option<snapvault_repo::forget::Span>,
    /// Keep the newest snapshot of each month within this span of the newest one
    #[arg(long, value_name = "SPAN", value_parser = snapvault_repo::forget::parse_span)]
    pub keep_within_monthly: Option<snapvault_repo::forget::Span>,
    /// Keep the newest snapshot of each year within this span of the newest one
    #[arg(long, value_name = "SPAN", value_parser = snapvault_repo::forget::parse_span)]
    pub keep_within_yearly: Option<snapvault_repo::forget::Span>,
    /// Keep snapshots having all these tags (comma-separated, repeatable; '' = untagged)
    #[arg(long, value_name = "TAGS")]
    pub keep_tag: Vec<String>,
    /// Apply the policy per group: source (default: the device, or host + paths), host,
    /// paths, tags, comma-separated; '' for one group
    #[arg(long, value_name = "GROUPING", default_value = "source", value_parser = snapvault_repo::forget::parse_group_by)]
    pub group_by: snapvault_repo::forget::GroupBy,
    /// Forget even if some photos would then be in no remaining snapshot
    #[arg(long)]
    pub allow_photo_loss: bool,
    /// Prune afterwards (when snapshots were removed)
    #[arg(long)]
    pub prune: bool,
    /// Show what would be removed (and pruned); change nothing
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Print the decision for every snapshot as JSON (fields: docs/json.md)
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub prune_opts: PruneOpts,
}

#[derive(Args, Debug, Clone)]
pub struct PruneOpts {
    /// Unused space to leave in partly used packs: a share of the repository (5%), a size
    /// (200MiB, 0) or `unlimited`
    #[arg(long, value_name = "LIMIT", default_value = "5%", value_parser = snapvault_repo::prune::parse_max_unused)]
    pub max_unused: snapvault_repo::prune::MaxUnused,
    /// Repack at most this much in one run (e.g. 2GiB), or `unlimited`
    #[arg(long, value_name = "SIZE", default_value = "unlimited")]
    pub max_repack: String,
    /// Delete packs that no index names only when older than this (e.g. 1h, 30m, 0)
    #[arg(long, value_name = "AGE", default_value = "1h", value_parser = snapvault_repo::prune::parse_age)]
    pub unindexed_grace: u64,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    #[command(flatten)]
    pub opts: PruneOpts,
    /// Show the plan; change nothing
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Print the plan and what was freed as JSON (fields: docs/json.md)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct CopyArgs {
    /// Snapshots to copy: id prefixes, `latest`, `latest~N`
    #[arg(value_name = "SNAPSHOT")]
    pub snapshots: Vec<String>,
    /// Copy every snapshot (those the destination has already are skipped)
    #[arg(long, conflicts_with = "snapshots")]
    pub all: bool,
    /// The destination repository: a folder, or an `s3:` or `sftp:` URL
    #[arg(long, value_name = "REPO2")]
    pub to: String,
    /// Read the destination's password from this file (else SNAPVAULT_PASSWORD2)
    #[arg(long, env = "SNAPVAULT_PASSWORD_FILE2", value_name = "FILE")]
    pub password_file2: Option<PathBuf>,
    /// Run this shell command and use the first line of its output as the destination's
    /// password
    #[arg(long, env = "SNAPVAULT_PASSWORD_COMMAND2", value_name = "CMD")]
    pub password_command2: Option<String>,
    /// Print a summary as JSON (fields: docs/json.md)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RepairArgs {
    /// Only this part (default: the whole plan)
    #[arg(value_enum)]
    pub part: Option<RepairPart>,
    /// Carry out the plan (without it, only show it)
    #[arg(long)]
    pub apply: bool,
    /// Only show the plan, change nothing (what repair does without --apply)
    #[arg(long, short = 'n', conflicts_with = "apply")]
    pub dry_run: bool,
    /// Remove the original damaged snapshots once repaired copies exist
    #[arg(long)]
    pub forget_damaged: bool,
    /// Heal from this other repository (an off-site copy): lost or damaged photo data it
    /// holds intact is found by content and stored here again
    #[arg(long, value_name = "REPO2")]
    pub from: Option<String>,
    /// Read the password of the --from repository from this file (else SNAPVAULT_PASSWORD2)
    #[arg(long, env = "SNAPVAULT_PASSWORD_FILE2", value_name = "FILE")]
    pub password_file2: Option<PathBuf>,
    /// Run this shell command and use its output as the password of the --from repository
    #[arg(long, env = "SNAPVAULT_PASSWORD_COMMAND2", value_name = "CMD")]
    pub password_command2: Option<String>,
    /// Print the plan as JSON (fields: docs/json.md)
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum RepairPart {
    /// Rebuild the index from the pack headers; rescue intact blobs of damaged packs
    Index,
    /// Write snapshots without the files whose data is lost
    Snapshots,
}

#[derive(Subcommand, Debug)]
pub enum ParityCommand {
    /// Add, change or remove (0) parity: writes the level into the config and rebuilds
    /// every group's parity in one pass, with progress
    #[command(after_help = examples::PARITY_SET)]
    Set {
        /// Percent of parity, 0-50 (0 removes all parity)
        #[arg(value_parser = clap::value_parser!(u8).range(0..=50))]
        percent: u8,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Add a password (asked for, or from --new-password-file / SNAPVAULT_NEW_PASSWORD)
    #[command(after_help = examples::KEY_ADD)]
    Add(NewPasswordArgs),
    /// List keys
    #[command(after_help = examples::KEY_LIST)]
    List {
        /// Print the keys as JSON (fields: docs/json.md)
        #[arg(long)]
        json: bool,
    },
    /// Remove a key by id (prefix); the last key and the key in use are refused
    #[command(after_help = examples::KEY_REMOVE)]
    Remove {
        /// The key's id (prefix), as `snapvault key list` shows it
        id: String,
        /// Show which key would be removed; change nothing
        #[arg(long, short = 'n')]
        dry_run: bool,
        /// Print the removed key's id as JSON (fields: docs/json.md)
        #[arg(long)]
        json: bool,
    },
    /// Change the password in use
    #[command(after_help = examples::KEY_PASSWD)]
    Passwd(NewPasswordArgs),
    /// Keep this repository's key on this computer, so commands here skip the password
    #[command(
        long_about = "Keep this repository's master key in a file on this computer \
($XDG_CONFIG_HOME/snapvault/keys/, owner-only), opened once with the password: later \
commands on this repository need no password and skip the key derivation. Anyone who can \
read that file can read the backup (docs/security.md §3); `key forget` removes it.",
        after_help = examples::KEY_REMEMBER
    )]
    Remember,
    /// Remove the key `key remember` kept on this computer for this repository
    #[command(visible_alias = "forget-remembered", after_help = examples::KEY_REMEMBER)]
    Forget,
}

#[derive(Args, Debug)]
pub struct NewPasswordArgs {
    /// Read the new password from this file (first line)
    #[arg(long, value_name = "FILE")]
    pub new_password_file: Option<PathBuf>,
    /// Use the new password even if it is trivially weak (short, common, a simple sequence)
    #[arg(long)]
    pub allow_weak_password: bool,
    /// Print the new key's id as JSON (fields: docs/json.md)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct UnlockArgs {
    /// Remove every lock, not just stale ones (only when you are sure nothing runs)
    #[arg(long)]
    pub remove_all: bool,
    /// Show which locks would be removed; change nothing
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Print the removed and kept locks as JSON (fields: docs/json.md)
    #[arg(long)]
    pub json: bool,
}
