//! Options of the commands that find and compare photos: photos, browse, find, diff,
//! devices and verify-device.

use std::path::PathBuf;

use clap::Args;

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
