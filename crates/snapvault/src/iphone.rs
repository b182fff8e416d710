//! The iPhone as a snapshot source: the camera roll under `/DCIM`, read over USB through
//! `snapvault-source`. Files are identified by their full device path; folders are
//! synthesised from those paths.

use std::collections::BTreeMap;
use std::io::{self, Read};

use anyhow::{Context, Result};
use snapvault_repo::fs_source::{Source, SourceEntry};
use snapvault_repo::snapshot;
use snapvault_repo::tree::{Name, NodeKind};
use snapvault_source::{Device, DeviceOptions, SourceError, UsbmuxdAddress};

pub struct IphoneSource {
    pub device: Device,
    dirs: BTreeMap<Vec<u8>, Vec<SourceEntry>>,
    pub files: usize,
    pub bytes: u64,
}

/// Connect to the phone (the only one attached, or the one with `udid`).
pub fn connect(udid: Option<&str>) -> Result<Device> {
    let addr = UsbmuxdAddress::from_env()?;
    Device::connect(&addr, udid, DeviceOptions::default()).map_err(anyhow::Error::from)
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
    }
}

impl IphoneSource {
    pub fn new(device: Device) -> Result<IphoneSource> {
        let listing = device.list_dcim().context("listing /DCIM on the iPhone")?;
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
            if !dir.starts_with(b"DCIM") || name.is_empty() {
                continue;
            }
            // Make sure every ancestor folder is listed in its parent.
            let comps: Vec<&[u8]> = dir.split(|&b| b == b'/').collect();
            for k in 1..comps.len() {
                let parent = comps[..k].join(&b'/');
                let list = dirs.entry(parent).or_default();
                if !list.iter().any(|x| x.name.0 == comps[k]) {
                    list.push(dir_entry(comps[k]));
                }
                dirs.entry(comps[..=k].join(&b'/')).or_default();
            }
            let list = dirs.entry(dir.to_vec()).or_default();
            list.push(SourceEntry {
                name: Name(name.to_vec()),
                kind: NodeKind::File,
                mode: 0o644,
                mtime: e.mtime_ns,
                btime: e.birthtime_ns,
                size: e.size,
                target: None,
                rdev: None,
                link: None,
            });
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
        })
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

    /// Every file on the phone: (device path, size).
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
        self.dirs
            .get(dir)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such folder on the phone"))
    }

    fn open(&self, path: &[u8]) -> io::Result<Box<dyn Read + Send + '_>> {
        let p = std::str::from_utf8(path)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "device path is not UTF-8"))?;
        let reader = self.device.open(p).map_err(io::Error::from)?;
        Ok(Box::new(reader))
    }

    fn is_fatal(&self, error: &io::Error) -> bool {
        SourceError::from_io(error).is_some_and(|e| e.is_fatal())
    }
}
