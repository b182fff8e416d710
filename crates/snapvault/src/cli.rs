//! Command-line definitions. Global options work before or after the command name; every
//! help page lists the command's own options first and the global ones under their own
//! heading, then examples (cli/examples.rs). Each command's options live with its kin:
//! cli/backup.rs (init, snapshot, snapshots, ls, restore), cli/upkeep.rs (check, forget,
//! prune, copy, repair, parity, key, unlock), cli/photos.rs (photos, browse, find, diff,
//! devices, verify-device), cli/tools.rs (demo, stats, config, completions, manpage).

mod backup;
mod examples;
mod photos;
mod tools;
mod upkeep;

pub use backup::{InitArgs, Layout, LsArgs, RestoreArgs, SnapshotArgs, SnapshotsArgs};
pub use photos::{BrowseArgs, DevicesArgs, DiffArgs, FindArgs, PhotosArgs, VerifyDeviceArgs};
pub use tools::{
    CompletionShell, CompletionsArgs, ConfigCommand, DemoArgs, ManpageArgs, StatsArgs,
};
pub use upkeep::{
    CheckArgs, CopyArgs, ForgetArgs, KeyCommand, NewPasswordArgs, ParityCommand, PruneArgs,
    PruneOpts, RepairArgs, RepairPart, UnlockArgs,
};

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The help heading of the options every command takes.
const GLOBAL: &str = "Global options";

#[derive(Parser, Debug)]
#[command(
    name = "snapvault",
    version,
    about = "Deduplicating, encrypted snapshot backups for photo libraries",
    long_about = "snapvault backs up photo libraries (an iPhone over USB or any folder) into an \
encrypted, deduplicating repository on an external drive, keeps every snapshot, restores \
byte-exact, and audits every byte.\n\nThe repository comes from --repo or SNAPVAULT_REPOSITORY; \
the password from SNAPVAULT_PASSWORD, --password-file, --password-command or a prompt.",
    after_help = examples::TOP
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
#[command(next_help_heading = GLOBAL)]
pub struct Global {
    /// Repository location: a folder, s3:https://host[:port]/bucket[/prefix], s3:bucket[/prefix] (AWS) or sftp:user@host[:port]:/path
    #[arg(
        short = 'r',
        long,
        global = true,
        env = "SNAPVAULT_REPOSITORY",
        value_name = "REPO"
    )]
    pub repo: Option<String>,
    /// Read the password from this file (first line)
    #[arg(
        long,
        global = true,
        env = "SNAPVAULT_PASSWORD_FILE",
        value_name = "FILE"
    )]
    pub password_file: Option<PathBuf>,
    /// Run this shell command and use the first line of its output as the password (e.g.
    /// 'pass show snapvault')
    #[arg(
        long,
        global = true,
        env = "SNAPVAULT_PASSWORD_COMMAND",
        value_name = "CMD"
    )]
    pub password_command: Option<String>,
    /// Concurrent connections to a remote repository (default: 8 for S3, 4 for SFTP)
    #[arg(long, global = true, env = "SNAPVAULT_CONNECTIONS", value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub connections: Option<u16>,
    /// When another command holds a conflicting lock (a prune), wait up to this long for it (e.g. 10m) instead of stopping
    #[arg(
        long,
        global = true,
        env = "SNAPVAULT_RETRY_LOCK",
        value_name = "DURATION"
    )]
    pub retry_lock: Option<String>,
    /// Open the repository with this key file only (a name or unique prefix from `snapvault
    /// key list`), even one whose Argon2id cost is far above the others'
    #[arg(long, global = true, value_name = "ID")]
    pub key: Option<String>,
    /// Don't lock the repository while reading it (a read-only one is read without a lock
    /// anyway). Only when nothing else changes it meanwhile
    #[arg(long, global = true)]
    pub no_lock: bool,
    /// Print only errors
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More detail
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Configuration file (default: $XDG_CONFIG_HOME/snapvault/config.toml)
    #[arg(long, global = true, env = "SNAPVAULT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Use this profile of the configuration file
    #[arg(long, global = true, env = "SNAPVAULT_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new repository (encrypted unless --insecure-no-encryption)
    #[command(after_help = examples::INIT)]
    Init(InitArgs),
    /// Back up an iPhone (over USB) or folders into a new snapshot
    #[command(after_help = examples::SNAPSHOT)]
    Snapshot(SnapshotArgs),
    /// List snapshots
    #[command(after_help = examples::SNAPSHOTS)]
    Snapshots(SnapshotsArgs),
    /// List the files in a snapshot
    #[command(after_help = examples::LS)]
    Ls(LsArgs),
    /// Restore a snapshot (or part of it) into a folder
    #[command(after_help = examples::RESTORE)]
    Restore(RestoreArgs),
    /// Verify the repository's structure, and with --read-data every byte
    #[command(after_help = examples::CHECK)]
    Check(CheckArgs),
    /// Remove snapshots at once, by a retention policy or by id (preview with -n); refuses to
    /// lose the last copy of a photo
    #[command(
        long_about = "Remove snapshots by a retention policy or by id. forget acts at once: \
the snapshots are gone when it returns (their data stays until `prune`). Preview with \
--dry-run (-n) first. It refuses when a photo would then be in no snapshot at all \
(--allow-photo-loss overrides).",
        after_help = examples::FORGET
    )]
    Forget(ForgetArgs),
    /// Reclaim the space of data that no snapshot uses any more (preview with -n)
    #[command(after_help = examples::PRUNE)]
    Prune(PruneArgs),
    /// Copy snapshots into another repository (the off-site copy), sending only what it lacks
    #[command(after_help = examples::COPY)]
    Copy(CopyArgs),
    /// Manage the passwords that open the repository
    #[command(subcommand, after_help = examples::KEY)]
    Key(KeyCommand),
    /// Reed-Solomon parity against bit rot and lost files: set the level (rebuilds it)
    #[command(subcommand, after_help = examples::PARITY)]
    Parity(ParityCommand),
    /// Remove stale locks left by crashed processes
    #[command(after_help = examples::UNLOCK)]
    Unlock(UnlockArgs),
    /// Fix a damaged repository: shows the plan and changes nothing unless --apply
    #[command(
        long_about = "Fix a damaged repository: rebuild the index, rescue intact data, \
rewrite snapshots without what is lost. Without --apply, repair only shows its plan and \
changes nothing (unlike forget, which acts at once). With --from REPO2, lost photo data that \
another repository holds intact is stored here again first, so the snapshots become whole.",
        after_help = examples::REPAIR
    )]
    Repair(RepairArgs),
    /// Find photos by capture date and kind, across every snapshot
    #[command(after_help = examples::PHOTOS)]
    Photos(PhotosArgs),
    /// Look at the backup by month in a web browser (read-only, local, token-protected)
    #[command(after_help = examples::BROWSE)]
    Browse(BrowseArgs),
    /// Find files and folders by name or glob: every snapshot and date that holds a match
    #[command(after_help = examples::FIND)]
    Find(FindArgs),
    /// Photos added, removed and changed between two snapshots
    #[command(after_help = examples::DIFF)]
    Diff(DiffArgs),
    /// List iPhones and iPads connected over USB
    #[command(after_help = examples::DEVICES)]
    Devices(DevicesArgs),
    /// Is it safe to delete the photos from the phone? Compares every file by content
    #[command(after_help = examples::VERIFY_DEVICE)]
    VerifyDevice(VerifyDeviceArgs),
    /// Run a demonstration on a generated sample library (no repository needed)
    #[command(after_help = examples::DEMO)]
    Demo(DemoArgs),
    /// Repository size, deduplication and compression, photos and videos by month
    #[command(after_help = examples::STATS)]
    Stats(StatsArgs),
    /// Show the effective configuration and where each setting comes from
    #[command(subcommand, after_help = examples::CONFIG)]
    Config(ConfigCommand),
    /// Print a shell completion script (bash, zsh or fish) to stdout
    #[command(after_help = examples::COMPLETIONS)]
    Completions(CompletionsArgs),
    /// Write man pages (one per command) into a folder
    #[command(after_help = examples::MANPAGE)]
    Manpage(ManpageArgs),
}
