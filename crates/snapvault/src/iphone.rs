//! The iPhone as a snapshot source, read over USB through `snapvault-source`: the camera
//! roll under `/DCIM`, the edits in `/PhotoData/Mutations`, the originals in
//! `/PhotoData/CPLAssets` and the Photos database. Files are identified by their full
//! device path (the snapshot mirrors the phone's media root); folders are synthesised from
//! those paths.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use snapvault_repo::fs_source::{Source, SourceEntry, SourceFile, Unwatched};
use snapvault_repo::snapshot;
use snapvault_repo::text::escaped;
use snapvault_repo::tree::{Name, NodeKind};
use snapvault_source::{
    Device, DeviceEntry, DeviceOptions, Pairing, PairingEvent, SourceError, UsbmuxdAddress,
};

pub struct IphoneSource {
    pub device: Device,
    dirs: BTreeMap<Vec<u8>, Vec<SourceEntry>>,
    pub files: usize,
    pub bytes: u64,
    /// Of those, the files under `/PhotoData` (edits, iCloud downloads, the database).
    pub photodata_files: usize,
    /// The Photos library database files as the phone lists them.
    pub database: Vec<DeviceEntry>,
    /// A consistent private copy of the database files, served instead of the phone's.
    db_copy: Mutex<Option<DatabaseCopy>>,
}

/// The database files copied together (see `library::pull`), and their entries as copied.
pub struct DatabaseCopy {
    pub dir: tempfile::TempDir,
    pub entries: Vec<DeviceEntry>,
}

/// Connect to the phone (the only one attached, or the one with `udid`), pairing with it
/// first if it does not trust this computer.
pub fn connect(udid: Option<&str>) -> Result<Device> {
    let addr = UsbmuxdAddress::from_env()?;
    Device::connect(&addr, udid, options(true)).map_err(anyhow::Error::from)
}

/// Device options; with `pair`, a phone that does not trust this computer is paired through
/// its Trust prompt, and the user is told (on stderr) what to do and what happened.
pub fn options(pair: bool) -> DeviceOptions {
    let pairing = pair.then(|| Pairing {
        wait: Pairing::default_wait(),
        notify: Arc::new(|e: &PairingEvent<'_>| match e {
            // Once per pairing: the command waits for the user from here on.
            PairingEvent::WaitingForTrust { .. } => {
                eprintln!("Unlock your iPhone and tap “Trust” on it (waiting…)")
            }
            PairingEvent::Paired { udid, name } => {
                eprintln!(
                    "paired: {} trusts this computer now",
                    phone_name(name, udid)
                )
            }
            PairingEvent::Failed { udid, name, error } => {
                eprintln!("warning: {}: {error}", phone_name(name, udid))
            }
        }),
    });
    DeviceOptions {
        pairing,
        ..DeviceOptions::default()
    }
}

/// The phone in a message; its name and UDID come from the device, so they are escaped.
fn phone_name(name: &str, udid: &str) -> String {
    let (name, udid) = (escaped(name), escaped(udid));
    if name.is_empty() {
        format!("the iPhone {udid}")
    } else {
        format!("{name} ({udid})")
    }
}

fn dir_entry(name: &[u8]) -> SourceEntry {
    SourceEntry {
        name: Name(name.to_vec()),
        kind: NodeKind::Dir,
        mode: 0o755,
        mtime: 0,
        btime: None,
        size: 0,
        target: None,
        rdev: None,
        link: None,
        ctime: None,
        inode: None,
    }
}

fn file_entry(name: &[u8], e: &DeviceEntry) -> SourceEntry {
    SourceEntry {
        name: Name(name.to_vec()),
        kind: NodeKind::File,
        mode: 0o644,
        mtime: e.mtime_ns,
        btime: e.birthtime_ns,
        size: e.size,
        target: None,
        rdev: None,
        link: None,
        ctime: None,
        inode: None,
    }
}

/// What is backed up of `/PhotoData/Mutations`: the rendered edit and its recipe in each
/// `Adjustments` folder, nothing else (no caches, no intermediate renders).
fn is_kept_edit(path: &str) -> bool {
    let Some((_, _, render)) = snapvault_photolib::edit_of(path) else {
        return false;
    };
    render || path.ends_with("/Adjustments.plist")
}

impl IphoneSource {
    /// Lists what a snapshot of the phone holds: everything under `/DCIM`, the edits in
    /// `/PhotoData/Mutations`, the originals in `/PhotoData/CPLAssets` and the Photos
    /// database (`Photos.sqlite` with its `-wal` and `-shm`). Thumbnails and caches are
    /// never listed.
    pub fn new(device: Device) -> Result<IphoneSource> {
        let mut listing = device.list_dcim().context("listing /DCIM on the iPhone")?;
        let dcim = listing.len();
        let edits = device
            .list_under("PhotoData/Mutations")
            .context("listing the edits in /PhotoData/Mutations on the iPhone")?;
        listing.extend(edits.into_iter().filter(|e| is_kept_edit(&e.path)));
        listing.extend(
            device
                .list_under("PhotoData/CPLAssets")
                .context("listing /PhotoData/CPLAssets on the iPhone")?,
        );
        let mut database = Vec::new();
        for f in snapvault_photolib::DATABASE_FILES {
            if let Some(e) = device
                .stat(f)
                .with_context(|| format!("reading the attributes of /{f} on the iPhone"))?
            {
                database.push(e);
            }
        }
        listing.extend(database.iter().cloned());
        let photodata_files = listing.len() - dcim;
        let mut dirs: BTreeMap<Vec<u8>, Vec<SourceEntry>> = BTreeMap::new();
        dirs.insert(Vec::new(), vec![dir_entry(b"DCIM")]);
        dirs.insert(b"DCIM".to_vec(), Vec::new());
        let (mut files, mut bytes) = (0, 0);
        for e in listing {
            let path = e.path.as_bytes();
            let Some(slash) = path.iter().rposition(|&b| b == b'/') else {
                continue;
            };
            let (dir, name) = (&path[..slash], &path[slash + 1..]);
            if !(dir.starts_with(b"DCIM") || dir.starts_with(b"PhotoData")) || name.is_empty() {
                continue;
            }
            // Make sure every ancestor folder is listed in its parent.
            let comps: Vec<&[u8]> = dir.split(|&b| b == b'/').collect();
            let top = dirs.entry(Vec::new()).or_default();
            if !top.iter().any(|x| x.name.0 == comps[0]) {
                top.push(dir_entry(comps[0]));
            }
            dirs.entry(comps[0].to_vec()).or_default();
            for k in 1..comps.len() {
                let parent = comps[..k].join(&b'/');
                let list = dirs.entry(parent).or_default();
                if !list.iter().any(|x| x.name.0 == comps[k]) {
                    list.push(dir_entry(comps[k]));
                }
                dirs.entry(comps[..=k].join(&b'/')).or_default();
            }
            let list = dirs.entry(dir.to_vec()).or_default();
            list.push(file_entry(name, &e));
            files += 1;
            bytes += e.size;
        }
        // The phone gives folders no times of their own: each gets the newest time of
        // what it holds (not 1970), so `ls` shows when a folder last changed.
        let mut newest: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
        for (dir, list) in &dirs {
            let latest = list.iter().map(|e| e.mtime).max().unwrap_or(0);
            let mut p: &[u8] = dir;
            loop {
                let n = newest.entry(p.to_vec()).or_insert(latest);
                *n = (*n).max(latest);
                match p.iter().rposition(|&b| b == b'/') {
                    Some(i) => p = &p[..i],
                    None if !p.is_empty() => p = b"",
                    None => break,
                }
            }
        }
        for (dir, list) in dirs.iter_mut() {
            for e in list.iter_mut().filter(|e| e.kind == NodeKind::Dir) {
                let path = if dir.is_empty() {
                    e.name.0.clone()
                } else {
                    [dir.as_slice(), b"/", &e.name.0].concat()
                };
                e.mtime = newest.get(&path).copied().unwrap_or(0);
            }
            list.sort_by(|a, b| a.name.cmp(&b.name));
            list.dedup_by(|a, b| a.name == b.name);
        }
        Ok(IphoneSource {
            device,
            dirs,
            files,
            bytes,
            photodata_files,
            database,
            db_copy: Mutex::new(None),
        })
    }

    /// Serve the database files from `copy` from now on (a consistent set, pulled together).
    pub fn use_database_copy(&self, copy: DatabaseCopy) {
        if let Ok(mut g) = self.db_copy.lock() {
            *g = Some(copy);
        }
    }

    /// Run `f` on the database copy, if there is one.
    pub fn with_database_copy<T>(&self, f: impl FnOnce(&DatabaseCopy) -> T) -> Option<T> {
        self.db_copy.lock().ok()?.as_ref().map(f)
    }

    pub fn snapshot_source(&self) -> snapshot::Source {
        let i = self.device.info();
        snapshot::Source {
            kind: "iphone".into(),
            paths: Vec::new(),
            device: Some(snapshot::Device {
                udid: i.udid.clone(),
                name: i.name.clone(),
                model: i.model.clone(),
                ios_version: i.ios_version.clone(),
            }),
        }
    }

    /// The photos, videos, edits and sidecars on the phone (every file but the database,
    /// which changes all the time and is no photo): (device path, entry).
    pub fn media_files(&self) -> impl Iterator<Item = (String, &SourceEntry)> {
        self.files()
            .filter(|(p, _)| !snapvault_photolib::DATABASE_FILES.contains(&p.as_str()))
    }

    /// Every file of the snapshot-to-be: (device path, entry).
    pub fn files(&self) -> impl Iterator<Item = (String, &SourceEntry)> {
        self.dirs.iter().flat_map(|(dir, list)| {
            list.iter()
                .filter(|e| e.kind == NodeKind::File)
                .map(move |e| {
                    (
                        format!("{}/{}", String::from_utf8_lossy(dir), e.name.lossy()),
                        e,
                    )
                })
        })
    }
}

impl Source for IphoneSource {
    fn list(&self, dir: &[u8]) -> io::Result<Vec<SourceEntry>> {
        let mut list = self.dirs.get(dir).cloned().ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "no such folder on the phone")
        })?;
        if dir == b"PhotoData" {
            // The database as it was copied (it may have changed since it was listed).
            self.with_database_copy(|c| {
                list.retain(|e| !e.name.0.starts_with(b"Photos.sqlite"));
                for e in &c.entries {
                    if let Some((_, name)) = e.path.rsplit_once('/') {
                        list.push(file_entry(name.as_bytes(), e));
                    }
                }
                list.sort_by(|a, b| a.name.cmp(&b.name));
            });
        }
        Ok(list)
    }

    fn open(&self, path: &[u8]) -> io::Result<Box<dyn SourceFile + '_>> {
        let p = std::str::from_utf8(path)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "device path is not UTF-8"))?;
        if snapvault_photolib::DATABASE_FILES.contains(&p)
            && let Some(local) = self
                .with_database_copy(|c| p.rsplit_once('/').map(|(_, name)| c.dir.path().join(name)))
        {
            // The consistent copy, not the phone's file as it is now.
            let local = local.ok_or_else(|| io::Error::other("bad database path"))?;
            return Ok(Box::new(std::fs::File::open(local)?));
        }
        let reader = self.device.open(p).map_err(io::Error::from)?;
        Ok(Box::new(Unwatched(reader)))
    }

    fn is_fatal(&self, error: &io::Error) -> bool {
        SourceError::from_io(error).is_some_and(|e| e.is_fatal())
    }

    /// The next files are opened and read ahead on the phone, so the USB link never waits
    /// for a file to be opened.
    /// (The database files are served from their copy, not fetched again.)
    fn prefetch(&self, path: &[u8], _len: u64) {
        if let Ok(p) = std::str::from_utf8(path)
            && !snapvault_photolib::DATABASE_FILES.contains(&p)
        {
            self.device.prefetch(p);
        }
    }
}
