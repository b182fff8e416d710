//! The iPhone's Photos library database, `PhotoData/Photos.sqlite`: which assets the library
//! holds, where each original lives, whether it is on the phone or only in iCloud, in
//! Recently Deleted, edited, a favourite, part of a burst, in which albums.
//!
//! A backup made over USB only sees files. The database is what says which photos the phone
//! does *not* hand over (originals kept only in iCloud with "Optimize iPhone Storage"), so a
//! backup can tell its user what it does not hold ([`account`]).
//!
//! The database is read with SQLite from a **private copy** ([`read_copy_of`]): the file and
//! its `-wal`/`-shm` are copied into a temporary folder first, because opening a WAL
//! database replays and checkpoints its log, which would change the very bytes being backed
//! up. The schema is Core Data's and changes between iOS versions; what is relied on, and
//! where each fact comes from, is in `docs/iphone.md`. Anything the database does not say
//! (a column missing in this iOS version, a value never seen) is *unknown*, never guessed:
//! the account then says "unknown" rather than a wrong number.
//!
//! [`fixture`] writes databases of two schema generations (`ZGENERICASSET` of iOS ≤ 13,
//! `ZASSET` of iOS 14 and later) for tests, benchmarks and the sample library ([`sample`]).

pub mod fixture;
mod read;
pub mod sample;

use std::collections::HashSet;

pub use read::{MAX_ASSETS, read, read_copy_of};

/// Core Data dates count seconds from 2001-01-01T00:00:00Z.
pub const CORE_DATA_EPOCH: i64 = 978_307_200;

/// Where the database sits under the phone's media root, and its companions.
pub const DATABASE: &str = "PhotoData/Photos.sqlite";
pub const DATABASE_FILES: [&str; 3] = [
    "PhotoData/Photos.sqlite",
    "PhotoData/Photos.sqlite-wal",
    "PhotoData/Photos.sqlite-shm",
];

/// Why a database could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error("Photos.sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("Photos.sqlite: {0}")]
    Io(#[from] std::io::Error),
    /// Neither table generation (or not the columns needed to find files).
    #[error("Photos.sqlite has a schema snapvault does not know: {0}")]
    UnknownSchema(String),
    #[error("Photos.sqlite lists more than {0} assets")]
    TooLarge(usize),
}

/// Which table holds the assets: the schema generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generation {
    /// `ZGENERICASSET` (iOS 13 and earlier; Photos 5 on macOS).
    GenericAsset,
    /// `ZASSET` (iOS 14 and later).
    Asset,
}

impl Generation {
    pub fn table(self) -> &'static str {
        match self {
            Generation::GenericAsset => "ZGENERICASSET",
            Generation::Asset => "ZASSET",
        }
    }
}

/// Is the original on the phone?
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Availability {
    /// `ZINTERNALRESOURCE.ZLOCALAVAILABILITY = 1` for the original.
    Local,
    /// `ZLOCALAVAILABILITY = -1`: the original is only in iCloud.
    CloudOnly,
    /// The database does not say (no resource table, no original resource row, another value).
    Unknown,
}

/// Photo or video (`ZKIND`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssetKind {
    Photo,
    Video,
    Unknown,
}

impl AssetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AssetKind::Photo => "photo",
            AssetKind::Video => "video",
            AssetKind::Unknown => "unknown",
        }
    }
}

/// One asset of the library. `None` in a flag: the database does not say.
#[derive(Clone, Debug, PartialEq)]
pub struct Asset {
    /// `Z_PK`.
    pub pk: i64,
    pub uuid: Option<String>,
    /// `ZDIRECTORY` as stored (`DCIM/100APPLE`, `PhotoData/CPLAssets/group12`, …).
    pub directory: String,
    /// `ZFILENAME` (`IMG_0001.HEIC`).
    pub filename: String,
    /// `ZADDITIONALASSETATTRIBUTES.ZORIGINALFILENAME`.
    pub original_filename: Option<String>,
    /// `ZDATECREATED`, Core Data seconds.
    pub created: Option<f64>,
    /// `ZADDITIONALASSETATTRIBUTES.ZTIMEZONEOFFSET`: seconds east of UTC where it was taken.
    pub tz_offset: Option<i64>,
    pub kind: AssetKind,
    /// `ZKINDSUBTYPE`: 1 panorama, 2 Live Photo, 10 screenshot, 100 video, 101 slo-mo, …
    pub subtype: Option<i64>,
    /// `ZTRASHEDSTATE = 1`: in Recently Deleted.
    pub trashed: Option<bool>,
    pub hidden: Option<bool>,
    pub favorite: Option<bool>,
    /// `ZAVALANCHEUUID`: the burst it belongs to.
    pub burst: Option<String>,
    /// `ZHASADJUSTMENTS = 1`: edited in Photos.
    pub adjusted: Option<bool>,
    pub original: Availability,
    /// Titles of the user albums (`ZGENERICALBUM.ZKIND = 2`) holding it.
    pub albums: Vec<String>,
}

impl Asset {
    /// The original's path under the media root (`DCIM/100APPLE/IMG_0001.HEIC`). A
    /// directory given relative to `PhotoData` (`CPLAssets/…`) is put under it.
    pub fn path(&self) -> String {
        let dir = self.directory.trim_matches('/');
        let dir = if dir.starts_with("CPLAssets/") || dir == "CPLAssets" {
            format!("PhotoData/{dir}")
        } else {
            dir.to_string()
        };
        if dir.is_empty() {
            self.filename.clone()
        } else {
            format!("{dir}/{}", self.filename)
        }
    }

    /// The folder in which Photos keeps its edit of this asset:
    /// `PhotoData/Mutations/<original's folder>/<name without extension>/Adjustments`.
    pub fn adjustments_dir(&self) -> String {
        adjustments_dir(&self.path())
    }

    /// Capture time as the wall time where it was taken (UTC when the offset is unknown).
    pub fn taken(&self) -> Option<snapvault_media::CaptureTime> {
        let secs = self.created_unix()?;
        let offset = self
            .tz_offset
            .filter(|o| o.abs() <= 18 * 3600 && o % 60 == 0)
            .map(|o| (o / 60) as i16);
        Some(snapvault_media::CaptureTime::from_unix(secs, offset))
    }

    /// Capture time as Unix seconds.
    pub fn created_unix(&self) -> Option<i64> {
        let c = self.created.filter(|c| c.is_finite())?;
        let secs = c.floor();
        if secs.abs() > 1e12 {
            return None;
        }
        Some(secs as i64 + CORE_DATA_EPOCH)
    }
}

/// `PhotoData/Mutations/<dir>/<stem>/Adjustments` for the original at `path`.
pub fn adjustments_dir(path: &str) -> String {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    let stem = match name.rfind('.') {
        Some(i) if i > 0 => &name[..i],
        _ => name,
    };
    if dir.is_empty() {
        format!("PhotoData/Mutations/{stem}/Adjustments")
    } else {
        format!("PhotoData/Mutations/{dir}/{stem}/Adjustments")
    }
}

/// For a path inside `PhotoData/Mutations/…/Adjustments/`: the original's folder and stem
/// (`DCIM/100APPLE`, `IMG_0001`) and whether it is the rendered edit (`FullSizeRender.*`).
pub fn edit_of(path: &str) -> Option<(&str, &str, bool)> {
    let rest = path.strip_prefix("PhotoData/Mutations/")?;
    let (dir_stem, file) = rest.split_once("/Adjustments/")?;
    if file.contains('/') {
        return None;
    }
    let (dir, stem) = dir_stem.rsplit_once('/')?;
    let render = file.starts_with("FullSizeRender.");
    Some((dir, stem, render))
}

/// The whole library as the database describes it.
#[derive(Clone, Debug)]
pub struct Library {
    pub generation: Generation,
    pub assets: Vec<Asset>,
    /// What the database did not say (missing columns or tables), in words.
    pub unknowns: Vec<String>,
}

/// How a snapshot stands against the library.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Account {
    pub assets: u64,
    /// The original is in the snapshot.
    pub backed_up: u64,
    /// Not in the snapshot, and the database says the original is only in iCloud.
    pub icloud_only: u64,
    /// Not in the snapshot, and the database says it is on the phone (or does not say):
    /// the file could not be read, or is not where the database says.
    pub not_read: u64,
    /// In Recently Deleted (counted in the numbers above too); `None`: unknown.
    pub recently_deleted: Option<u64>,
    /// Edited in Photos; `None`: unknown.
    pub edited: Option<u64>,
    /// Edited assets whose rendered edit is in the snapshot.
    pub edits_backed_up: u64,
    /// Whether iCloud-only could be told at all (the resource table was there).
    pub availability_known: bool,
}

/// The account of `lib` against the files a snapshot holds (paths under the media root).
pub fn account(lib: &Library, stored: &HashSet<String>) -> Account {
    let mut a = Account {
        availability_known: !lib
            .assets
            .iter()
            .all(|x| x.original == Availability::Unknown),
        ..Account::default()
    };
    let renders = edited_stems(stored.iter().map(String::as_str));
    let stems: HashSet<&str> = stored
        .iter()
        .map(|p| p.rsplit_once('.').map_or(p.as_str(), |(s, _)| s))
        .collect();
    let mut deleted = Some(0u64);
    let mut edited = Some(0u64);
    for x in &lib.assets {
        a.assets += 1;
        if stored.contains(&x.path()) {
            a.backed_up += 1;
        } else if x.original == Availability::CloudOnly {
            a.icloud_only += 1;
        } else {
            a.not_read += 1;
        }
        deleted = match (deleted, x.trashed) {
            (Some(n), Some(t)) => Some(n + u64::from(t)),
            _ => None,
        };
        let has_render = renders.contains(&x.adjustments_dir())
            || e_rendition(&x.path()).is_some_and(|e| stems.contains(e.as_str()));
        // A render on the phone is an edit even where the flag is missing.
        let is_edited = match x.adjusted {
            Some(e) => Some(e || has_render),
            None if has_render => Some(true),
            None => None,
        };
        edited = match (edited, is_edited) {
            (Some(n), Some(e)) => Some(n + u64::from(e)),
            _ => None,
        };
        if has_render {
            a.edits_backed_up += 1;
        }
    }
    a.recently_deleted = deleted;
    a.edited = edited;
    a
}

/// Apple's edited rendition beside an original, without extension: `DCIM/100APPLE/IMG_0009.HEIC`
/// → `DCIM/100APPLE/IMG_E0009` (what iOS wrote into DCIM for some edits, and what Image
/// Capture names an edit).
pub fn e_rendition(path: &str) -> Option<String> {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    let (prefix, num) = stem.rsplit_once('_')?;
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(if dir.is_empty() {
        format!("{prefix}_E{num}")
    } else {
        format!("{dir}/{prefix}_E{num}")
    })
}

/// The `…/Adjustments` folders that hold a rendered edit, among `paths`.
pub fn edited_stems<'a>(paths: impl Iterator<Item = &'a str>) -> HashSet<String> {
    paths
        .filter(|p| matches!(edit_of(p), Some((_, _, true))))
        .filter_map(|p| p.rsplit_once('/').map(|(d, _)| d.to_string()))
        .collect()
}

#[cfg(test)]
mod tests;
