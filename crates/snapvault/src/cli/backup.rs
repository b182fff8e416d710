//! Options of the commands that make and read back snapshots: init, snapshot, snapshots,
//! ls and restore.

use std::path::PathBuf;

use clap::Args;

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
