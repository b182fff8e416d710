//! Command-line definitions. Global options work before or after the command name; every
//! help page lists the command's own options first and the global ones under their own
//! heading, then examples (cli/examples.rs).

mod examples;

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

#[derive(Args, Debug)]
pub struct DevicesArgs {
    /// Print the list as JSON (fields: docs/json.md)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct VerifyDeviceArgs {
    /// Which iPhone, when several are attached (see `snapvault devices`)
    // `--device` everywhere; `--udid` stays a hidden alias so old scripts keep working.
    #[arg(long = "device", alias = "udid", value_name = "UDID")]
    pub udid: Option<String>,
    /// Compare only with this snapshot (default: every snapshot of this phone)
    #[arg(long, value_name = "ID|latest", conflicts_with = "also")]
    pub snapshot: Option<String>,
    /// Check the index only, without reading the stored data back (fast, weaker)
    #[arg(long)]
    pub quick: bool,
    /// Also compare with this second repository (your other backup): a file is safe only
    /// when both hold it
    #[arg(long, value_name = "REPO2")]
    pub also: Option<String>,
    /// Read the password of the --also repository from this file (else SNAPVAULT_PASSWORD2)
    #[arg(long, env = "SNAPVAULT_PASSWORD_FILE2", value_name = "FILE")]
    pub password_file2: Option<PathBuf>,
    /// Run this shell command and use its output as the password of the --also repository
    #[arg(long, env = "SNAPVAULT_PASSWORD_COMMAND2", value_name = "CMD")]
    pub password_command2: Option<String>,
    /// Print the verdict and every file's state as JSON (fields: docs/json.md)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The older snapshot (id prefix or `latest`)
    pub from: String,
    /// The newer snapshot (id prefix or `latest`)
    pub to: String,
    /// Compare every file, not only photos, videos and sidecars
    #[arg(long)]
    pub all: bool,
    /// Print the differences as JSON (fields: docs/json.md)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Store data unencrypted (ids become plain BLAKE3 hashes). Not recommended.
    #[arg(long)]
    pub insecure_no_encryption: bool,
    /// zstd level for compressible data, 1-22 (default 3; or `compression` in the config,
    /// SNAPVAULT_COMPRESSION)
    #[arg(long, value_name = "LEVEL", value_parser = clap::value_parser!(i32).range(1..=22))]
    pub compression: Option<i32>,
    /// Keep Reed-Solomon parity of PERCENT % (1-50) against bit rot and lost files
    /// (docs/format.md §15 says what each level survives); change it later with
    /// `snapvault parity set`
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(0..=50))]
    pub parity: Option<u8>,
    /// Use the password even if it is trivially weak (short, common, a simple sequence)
    #[arg(long)]
    pub allow_weak_password: bool,
    /// Also create the folders above the repository's folder when they are missing (without
    /// it, a missing parent is taken for an unplugged drive)
    #[arg(long)]
    pub create_parents: bool,
    /// Print the new repository's id and settings as JSON (fields: docs/json.md)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct SnapshotArgs {
    /// Folders (or files) to back up, or `iphone` for the camera roll of an iPhone on USB
    /// (use `./iphone` for a folder of that name)
    #[arg(required = true, value_name = "PATH|iphone")]
    pub paths: Vec<PathBuf>,
    /// Which iPhone, when several are attached (see `snapvault devices`)
    // `--device` everywhere; `--udid` stays a hidden alias so old scripts keep working.
    #[arg(long = "device", alias = "udid", value_name = "UDID")]
    pub udid: Option<String>,
    /// Tag the snapshot (repeatable)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Compare against this snapshot instead of the latest one of the same source
    #[arg(long, value_name = "SNAPSHOT")]
    pub parent: Option<String>,
    /// Read every file even if unchanged since the parent snapshot
    #[arg(long)]
    pub force: bool,
    /// Date the snapshot at this UTC time instead of now ('2019-07-14' or
    /// '2019-07-14 10:30:00'): for imports of old backups, so retention policies apply
    #[arg(long, value_name = "TIME")]
    pub time: Option<String>,
    /// Leave out files and folders matching this glob (repeatable): a name like '*.tmp'
    /// anywhere, or a path with '/' like 'iPhone/DCIM/*/IMG_0*.MOV'
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Read exclude patterns from this file, one per line (repeatable)
    #[arg(long, value_name = "FILE")]
    pub exclude_file: Vec<PathBuf>,
    /// Also back up .DS_Store, Thumbs.db, ._* and other junk left out by default
    #[arg(long)]
    pub no_default_excludes: bool,
    /// Print the summary as JSON (fields: docs/json.md)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct SnapshotsArgs {
    /// Print one JSON array with an object per snapshot (fields: docs/json.md)
    #[arg(long)]
    pub json: bool,
    /// Only snapshots with this tag
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
    /// Only snapshots of this iPhone (UDID, or the phone's name)
    #[arg(long, value_name = "UDID|NAME")]
    pub device: Option<String>,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Snapshot id (prefix) or `latest`
    pub snapshot: String,
    /// Only entries under this path
    pub path: Option<String>,
    /// Sizes in bytes, not KiB/MiB/GiB
    #[arg(long)]
    pub bytes: bool,
    /// Print one JSON object per entry (fields: docs/json.md)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// Snapshot id (prefix), `latest` or `latest~N`; not needed with --date or --as-of
    pub snapshot: Option<String>,
    /// Folder to restore into (created if missing)
    #[arg(long, short = 't', value_name = "DIR")]
    pub target: PathBuf,
    /// Photos *taken* in this period, from every snapshot: 2023, 2023-07, 2023-07-14,
    /// 2023-06..2023-08, ..2022, 2024-03..
    #[arg(long, value_name = "DATE")]
    pub date: Option<String>,
    /// The whole library as it was then: the newest snapshot taken at or before DATE
    #[arg(long, value_name = "DATE", conflicts_with = "date")]
    pub as_of: Option<String>,
    /// With --date: only look in this snapshot (id prefix, `latest`)
    #[arg(long = "snapshot", value_name = "ID|latest", requires = "date")]
    pub only_snapshot: Option<String>,
    /// With --date/--as-of: only snapshots of this iPhone
    #[arg(long, value_name = "UDID")]
    pub device: Option<String>,
    /// `original`: paths as in the snapshot; `date`: YYYY/MM/name (with --date)
    #[arg(long, value_enum, default_value = "original")]
    pub layout: Layout,
    /// With --date: the originals only, without the edits made in Photos
    #[arg(long, requires = "date", conflicts_with = "edits_only")]
    pub originals_only: bool,
    /// With --date: only the edits made in Photos (with --layout date named IMG_E1234.JPG)
    #[arg(long, requires = "date")]
    pub edits_only: bool,
    /// Restore only paths matching this glob (repeatable), e.g. 'DCIM/100APPLE/*.HEIC'
    #[arg(long = "include", value_name = "GLOB")]
    pub include: Vec<String>,
    /// Replace existing files whose content differs
    #[arg(long)]
    pub overwrite: bool,
    /// Show what would be restored (and replaced), write nothing
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Print the summary as JSON (fields: docs/json.md)
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Original,
    Date,
}

#[derive(Args, Debug)]
pub struct PhotosArgs {
    /// Capture date or range: 2023, 2023-07, 2023-07-14, 2023-06..2023-08, ..2022, 2024-03..
    #[arg(long, value_name = "DATE")]
    pub date: Option<String>,
    /// photo, video or live (stills with a Live Photo video)
    #[arg(long, value_name = "KIND")]
    pub kind: Option<String>,
    /// Only this snapshot (id prefix, `latest`)
    #[arg(long, value_name = "ID|latest")]
    pub snapshot: Option<String>,
    /// Only snapshots of this iPhone
    #[arg(long, value_name = "UDID")]
    pub device: Option<String>,
    /// Only photos edited in Photos on the phone (their edit is listed beside them)
    #[arg(long)]
    pub edited: bool,
    /// Photos the phone's library lists but keeps only in iCloud: NOT in this backup
    #[arg(long)]
    pub icloud_only: bool,
    /// Only photos of a burst
    #[arg(long)]
    pub burst: bool,
    /// Only favourites
    #[arg(long)]
    pub favorite: bool,
    /// Only photos in this album (as named on the phone)
    #[arg(long, value_name = "NAME")]
    pub album: Option<String>,
    /// Only photos that were in Recently Deleted when the snapshot was taken
    #[arg(long)]
    pub deleted: bool,
    /// Print one JSON object per photo (fields: docs/json.md)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct BrowseArgs {
    /// Address to serve on (default 127.0.0.1 with a free port)
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Don't open the browser; only print the address
    #[arg(long)]
    pub no_open: bool,
    /// Only this snapshot (id prefix, `latest`)
    #[arg(long, value_name = "ID|latest")]
    pub snapshot: Option<String>,
    /// Allow a --listen address other machines can reach (anyone with the printed address
    /// can then see every photo)
    #[arg(long)]
    pub allow_remote: bool,
}

#[derive(Args, Debug)]
pub struct FindArgs {
    /// A name or glob (repeatable): without '/' it matches a file or folder name at any
    /// depth (IMG_0102.JPG, 'IMG_01*.HEIC'); with '/' the path from the snapshot's top
    #[arg(required = true, value_name = "NAME|GLOB")]
    pub patterns: Vec<String>,
    /// Match names whatever their case (img_0102.jpg finds IMG_0102.JPG)
    #[arg(long, short = 'i')]
    pub ignore_case: bool,
    /// Only snapshots of this iPhone (UDID or name)
    #[arg(long, value_name = "UDID|NAME")]
    pub device: Option<String>,
    /// Print one JSON array, an object per snapshot with matches (fields: docs/json.md)
    #[arg(long)]
    pub json: bool,
}

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

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Folder for the demo (sample library, repository, restores)
    #[arg(long, default_value = "snapvault-demo", value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Only this snapshot (id prefix, `latest`); default: the whole repository
    #[arg(long, value_name = "ID|latest")]
    pub snapshot: Option<String>,
    /// Print the figures as JSON (fields: docs/json.md)
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print the effective settings: value and origin (default, file, env or flag)
    #[command(after_help = examples::CONFIG)]
    Show {
        /// Print the settings as JSON (fields: docs/json.md)
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Args, Debug)]
pub struct ManpageArgs {
    /// Folder to write snapvault.1 and snapvault-COMMAND.1 into (created if missing)
    pub dir: PathBuf,
}
