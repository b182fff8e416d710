//! A sample phone media root in the shape of a real one, for the emulated phone, tests and
//! `snapvault demo`:
//!
//! ```text
//! DCIM/100APPLE/IMG_nnnn.{HEIC,MOV,JPG,PNG,AAE}      camera originals (snapvault_media::sample)
//! DCIM/100APPLE/IMG_nnnn.JPG × 3                    a burst (one ZAVALANCHEUUID)
//! PhotoData/Mutations/DCIM/100APPLE/IMG_nnnn/Adjustments/{FullSizeRender.jpg,Adjustments.plist}
//!                                                   edits (with IMG_nnnn.AAE beside the original)
//! PhotoData/CPLAssets/group1/<UUID>.JPG             originals downloaded from iCloud
//! PhotoData/Mutations/PhotoData/CPLAssets/group1/<UUID>/Adjustments/…  an edit of one
//! PhotoData/Photos.sqlite (+ -wal, -shm)            the library, part of it still in the log
//! PhotoData/Thumbnails/…, PhotoData/Caches/…        derived data a backup leaves out
//! ```
//!
//! The database lists every asset above, plus iCloud-only assets (rows whose original is
//! not on the phone), two in Recently Deleted, favourites, a hidden one and two albums.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use snapvault_media::sample as media;
use snapvault_media::{CaptureTime, MediaKind};

use crate::fixture::{self, FixtureAsset};
use crate::{Generation, adjustments_dir};

/// What [`phone_library`] wrote, and what the database says about it.
#[derive(Clone, Debug)]
pub struct PhoneLibrary {
    pub root: PathBuf,
    /// Every asset row of the database (change it and call [`PhoneLibrary::write_database`]).
    pub assets: Vec<FixtureAsset>,
    /// Every file written under the root, media-root relative, sorted.
    pub files: Vec<String>,
}

impl PhoneLibrary {
    /// Rewrite `PhotoData/Photos.sqlite` (with a `-wal`) from [`PhoneLibrary::assets`].
    pub fn write_database(&self) -> io::Result<()> {
        let db = self.root.join(crate::DATABASE);
        if let Some(p) = db.parent() {
            fs::create_dir_all(p)?;
        }
        // Deterministic times, but each rewrite a minute later than the last (as a phone's
        // database is touched by every change).
        let before = fs::metadata(&db)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64);
        fixture::write(&db, Generation::Asset, &self.assets, true).map_err(io::Error::other)?;
        let newest = self
            .assets
            .iter()
            .map(|a| a.created_unix)
            .max()
            .unwrap_or(0);
        let newest = before.map_or(newest, |b| newest.max(b + 60 - 7_200));
        for f in crate::DATABASE_FILES {
            let p = self.root.join(f);
            if p.exists() {
                set_mtime(&p, newest + 7_200)?;
            }
        }
        Ok(())
    }

    /// Paths (media-root relative) of assets whose original is only in iCloud.
    pub fn icloud_only(&self) -> Vec<String> {
        self.assets
            .iter()
            .filter(|a| a.cloud_only)
            .map(|a| format!("{}/{}", a.directory, a.filename))
            .collect()
    }

    /// Paths of the originals that have a rendered edit under `PhotoData/Mutations`.
    pub fn edited(&self) -> Vec<String> {
        self.assets
            .iter()
            .filter(|a| a.adjusted && !a.cloud_only)
            .map(|a| format!("{}/{}", a.directory, a.filename))
            .filter(|p| {
                self.files
                    .iter()
                    .any(|f| f.starts_with(&adjustments_dir(p)))
            })
            .collect()
    }
}

fn set_mtime(path: &Path, secs: i64) -> io::Result<()> {
    let when = if secs >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    };
    fs::File::options()
        .write(true)
        .open(path)?
        .set_modified(when)
}

fn write(
    root: &Path,
    rel: &str,
    bytes: &[u8],
    mtime: i64,
    files: &mut Vec<String>,
) -> io::Result<()> {
    let p = root.join(rel);
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(&p, bytes)?;
    set_mtime(&p, mtime)?;
    files.push(rel.to_string());
    Ok(())
}

fn uuid(seed: u64) -> String {
    media::content_id(seed ^ 0xA55E_7000)
}

/// Write a sample phone media root under `dir` with `photos` camera photos (see the module
/// documentation for the shape). Deterministic from `seed` apart from folder times.
pub fn phone_library(dir: &Path, photos: usize, seed: u64) -> io::Result<PhoneLibrary> {
    phone_library_with(dir, photos, seed, media::Stills::Heic)
}

/// [`phone_library`] with the stills `stills` says: with [`media::Stills::Pictures`] every
/// still, edit, burst and iCloud download is a JPEG that shows a picture.
pub fn phone_library_with(
    dir: &Path,
    photos: usize,
    seed: u64,
    stills: media::Stills,
) -> io::Result<PhoneLibrary> {
    let jpeg: media::Maker = match stills {
        media::Stills::Heic => media::jpeg,
        media::Stills::Pictures => media::jpeg_picture,
    };
    let written = media::library_with(dir, photos, seed, stills)?;
    let mut files: Vec<String> = written
        .iter()
        .filter_map(|p| p.strip_prefix(dir).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let mut assets = Vec::new();
    let mut last_number = 0usize;
    let mut last_capture = CaptureTime::from_unix(1_690_000_000, Some(120));
    for rel in files.clone() {
        let Some((directory, filename)) = rel.rsplit_once('/') else {
            continue;
        };
        let bytes = fs::read(dir.join(&rel))?;
        let info = snapvault_media::inspect(filename.as_bytes(), &bytes);
        // Stills are the assets; a Live Photo's video, sidecars and IMG_E renditions belong
        // to one.
        if info.kind != MediaKind::Photo || filename.starts_with("IMG_E") {
            continue;
        }
        let Some(capture) = info.capture else {
            continue;
        };
        let stem = filename.rsplit_once('.').map_or(filename, |(s, _)| s);
        let number: usize = stem.trim_start_matches("IMG_").parse().unwrap_or_default();
        last_number = last_number.max(number);
        last_capture = last_capture.max(capture);
        let live = files
            .iter()
            .any(|f| f == &format!("{directory}/{stem}.MOV"));
        let k = assets.len();
        let mut albums = Vec::new();
        if k % 3 == 0 {
            albums.push("Holidays".to_string());
        }
        if k % 5 == 1 {
            albums.push("Family".to_string());
        }
        assets.push(FixtureAsset {
            directory: directory.to_string(),
            filename: filename.to_string(),
            uuid: uuid(seed.wrapping_add(k as u64)),
            original_filename: Some(filename.to_string()),
            created_unix: capture.to_unix_seconds(),
            tz_offset: capture.offset_minutes.map(|m| i64::from(m) * 60),
            subtype: if live {
                2
            } else if filename.ends_with(".PNG") {
                10
            } else {
                0
            },
            favorite: k % 4 == 2,
            hidden: k == 5,
            trashed: k == 3 || k == 8,
            // Apple's older edit naming (IMG_E… in DCIM) is an edit too.
            adjusted: ["HEIC", "JPG"].iter().any(|ext| {
                let e = format!("{directory}/IMG_E{}.{ext}", stem.trim_start_matches("IMG_"));
                files.contains(&e)
            }),
            albums,
            ..FixtureAsset::default()
        });
    }
    let mtime_of = |a: &FixtureAsset| a.created_unix + 3_600;

    // Edits in PhotoData/Mutations: every fourth asset, with the AAE beside the original.
    for k in (1..assets.len()).step_by(4) {
        let a = &mut assets[k];
        let path = format!("{}/{}", a.directory, a.filename);
        let adj = adjustments_dir(&path);
        let capture = CaptureTime::from_unix(a.created_unix, Some(120));
        let s = seed ^ ((k as u64) << 8);
        write(
            dir,
            &format!("{adj}/FullSizeRender.jpg"),
            &jpeg(&capture, None, 30_000, s),
            mtime_of(a),
            &mut files,
        )?;
        write(
            dir,
            &format!("{adj}/Adjustments.plist"),
            &media::aae(&capture, s ^ 1),
            mtime_of(a),
            &mut files,
        )?;
        let stem = a
            .filename
            .rsplit_once('.')
            .map_or(a.filename.as_str(), |(s, _)| s);
        let aae = format!("{}/{stem}.AAE", a.directory);
        if !files.contains(&aae) {
            write(
                dir,
                &aae,
                &media::aae(&capture, s ^ 2),
                mtime_of(a),
                &mut files,
            )?;
        }
        a.adjusted = true;
    }

    // A burst of three, right after the last photo.
    let burst_id = uuid(seed ^ 0xB0B5);
    let folder = assets
        .last()
        .map_or("DCIM/100APPLE".to_string(), |a| a.directory.clone());
    for b in 0..3 {
        let n = last_number + 1 + b;
        let capture = CaptureTime::from_unix(
            last_capture.to_unix_seconds() + 60 + b as i64,
            last_capture.offset_minutes,
        );
        let name = format!("IMG_{:04}.JPG", n % 10_000);
        let rel = format!("{folder}/{name}");
        let created = capture.to_unix_seconds();
        write(
            dir,
            &rel,
            &jpeg(&capture, None, 20_000, seed ^ 0xB0 ^ b as u64),
            created,
            &mut files,
        )?;
        assets.push(FixtureAsset {
            directory: folder.clone(),
            filename: name.clone(),
            uuid: uuid(seed ^ 0xB00 ^ b as u64),
            original_filename: Some(name),
            created_unix: created,
            tz_offset: capture.offset_minutes.map(|m| i64::from(m) * 60),
            burst: Some(burst_id.clone()),
            favorite: b == 1,
            ..FixtureAsset::default()
        });
    }

    // Originals downloaded back from iCloud sit in CPLAssets, named by their UUID.
    for c in 0..2u64 {
        let id = uuid(seed ^ 0xC91 ^ c);
        let capture = CaptureTime::from_unix(
            last_capture.to_unix_seconds() - 86_400 * (30 + c as i64),
            Some(60),
        );
        let dirname = "PhotoData/CPLAssets/group1".to_string();
        let name = format!("{id}.JPG");
        let created = capture.to_unix_seconds();
        write(
            dir,
            &format!("{dirname}/{name}"),
            &jpeg(&capture, None, 25_000, seed ^ 0xC0 ^ c),
            created,
            &mut files,
        )?;
        let mut a = FixtureAsset {
            directory: dirname,
            filename: name,
            uuid: id,
            original_filename: Some(format!("IMG_{:04}.JPG", 7000 + c)),
            created_unix: created,
            tz_offset: Some(3600),
            albums: vec!["Holidays".into()],
            ..FixtureAsset::default()
        };
        if c == 0 {
            let adj = adjustments_dir(&format!("{}/{}", a.directory, a.filename));
            write(
                dir,
                &format!("{adj}/FullSizeRender.jpg"),
                &jpeg(&capture, None, 20_000, seed ^ 0xCE),
                created + 600,
                &mut files,
            )?;
            write(
                dir,
                &format!("{adj}/Adjustments.plist"),
                &media::aae(&capture, seed ^ 0xCF),
                created + 600,
                &mut files,
            )?;
            a.adjusted = true;
        }
        assets.push(a);
    }

    // Assets whose original is only in iCloud ("Optimize iPhone Storage"): rows, no file.
    for c in 0..3u64 {
        let capture = CaptureTime::from_unix(
            last_capture.to_unix_seconds() - 86_400 * (400 + 7 * c as i64),
            Some(60),
        );
        let name = format!("IMG_{:04}.HEIC", 9000 + c);
        assets.push(FixtureAsset {
            directory: "DCIM/100APPLE".into(),
            filename: name.clone(),
            uuid: uuid(seed ^ 0x1C0 ^ c),
            original_filename: Some(name),
            created_unix: capture.to_unix_seconds(),
            tz_offset: Some(3600),
            cloud_only: true,
            favorite: c == 0,
            albums: if c == 1 {
                vec!["Family".into()]
            } else {
                Vec::new()
            },
            ..FixtureAsset::default()
        });
    }

    // Derived data a backup leaves out.
    let t = last_capture.to_unix_seconds();
    write(
        dir,
        "PhotoData/Thumbnails/V2/DCIM/100APPLE/IMG_0001.HEIC/5005.JPG",
        &media::noise(4_000, seed ^ 0x7),
        t,
        &mut files,
    )?;
    write(
        dir,
        "PhotoData/Caches/search/psi.sqlite",
        &media::noise(8_000, seed ^ 0x8),
        t,
        &mut files,
    )?;

    let lib = PhoneLibrary {
        root: dir.to_path_buf(),
        assets,
        files: Vec::new(),
    };
    lib.write_database()?;
    for f in crate::DATABASE_FILES {
        if dir.join(f).exists() {
            files.push(f.to_string());
        }
    }
    files.sort();
    files.dedup();
    Ok(PhoneLibrary { files, ..lib })
}
