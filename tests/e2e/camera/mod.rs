//! The whole camera roll end to end (issue 17): the real binary against the emulated phone
//! serving a media root in a real phone's shape (`snapvault_photolib::sample`): edits in
//! `PhotoData/Mutations`, originals in `PhotoData/CPLAssets`, a burst, iCloud-only assets and
//! `PhotoData/Photos.sqlite` with part of it still in its `-wal`.

mod account;
mod photos;
mod pull;
mod restore;
mod verify;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use snapvault_fakephone::{FakePhone, FakePhoneConfig};
use snapvault_photolib::sample::{PhoneLibrary, phone_library};

use crate::common::{DEFAULT_TIMEOUT, Out, Sv, run_command, tempdir};

/// A sample phone, a plain repository and scratch space.
pub struct Lab {
    pub tmp: tempfile::TempDir,
    /// The phone's media root.
    pub lib: PathBuf,
    pub phone_lib: PhoneLibrary,
    pub sv: Sv,
}

impl Lab {
    pub fn new(photos: usize, seed: u64) -> Lab {
        let tmp = tempdir();
        let lib = tmp.path().join("phone");
        fs::create_dir_all(&lib).unwrap();
        let phone_lib = phone_library(&lib, photos, seed).expect("sample phone library");
        let sv = Sv::init(tmp.path().join("repo"), false);
        Lab {
            tmp,
            lib,
            phone_lib,
            sv,
        }
    }

    pub fn cfg(&self) -> FakePhoneConfig {
        FakePhoneConfig::new(&self.lib)
    }

    pub fn start(&self) -> FakePhone {
        FakePhone::start(self.cfg()).expect("start the fake iPhone")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    pub fn run(&self, phone: &FakePhone, args: &[&str]) -> Out {
        let mut c = self.sv.command(args);
        c.env("USBMUXD_SOCKET_ADDRESS", phone.usbmuxd_address());
        run_command(c, DEFAULT_TIMEOUT)
    }

    #[track_caller]
    pub fn ok(&self, phone: &FakePhone, args: &[&str]) -> Out {
        let out = self.run(phone, args);
        assert_eq!(out.code, Some(0), "snapvault {args:?} failed:\n{out}");
        out
    }

    /// `snapshot iphone --json`, exit 0, parsed.
    #[track_caller]
    pub fn snapshot(&self, phone: &FakePhone) -> Value {
        self.ok(phone, &["snapshot", "iphone", "--json"]).json()
    }
}

/// Every file under `root`, by path relative to it.
pub fn files_under(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd {
            let p = e.unwrap().path();
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                out.insert(rel, fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Is this derived data a backup leaves out?
pub fn is_cache(path: &str) -> bool {
    path.starts_with("PhotoData/Thumbnails/") || path.starts_with("PhotoData/Caches/")
}
