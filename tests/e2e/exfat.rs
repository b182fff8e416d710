//! Restore onto a real case-insensitive file system (issue 19.5): exFAT, as external drives
//! shared between Macs and PCs are formatted, mounted through FUSE (`exfat-fuse`) from a
//! small image. Two photos whose names differ only in case must both come back.
//!
//! Needs `/dev/fuse`, `mkfs.exfat` (exfatprogs) and `mount.exfat-fuse` (exfat-fuse); as
//! root the image is attached to a loop device first (exfat-fuse asks for a block device
//! then). Without them the test says why in one line and passes, unless
//! `SNAPVAULT_REQUIRE_EXFAT` is set (CI sets it), when it fails.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// An exFAT file system mounted at `dir`; unmounted (and its loop device detached) on
/// drop, whether the test passed or panicked.
pub(crate) struct Exfat {
    pub(crate) dir: PathBuf,
    loop_device: Option<String>,
}

impl Drop for Exfat {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.dir)
            .output()
            .is_ok_and(|o| o.status.success());
        if !unmounted {
            let _ = Command::new("fusermount").arg("-u").arg(&self.dir).output();
        }
        if let Some(dev) = &self.loop_device {
            let _ = Command::new("losetup").arg("-d").arg(dev).output();
        }
    }
}

/// Run a tool; Err says what is missing or what it said.
fn run(cmd: &mut Command) -> Result<String, String> {
    let what = format!("{cmd:?}");
    match cmd.output() {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        Ok(o) => Err(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!("{what}: not installed")),
        Err(e) => Err(format!("{what}: {e}")),
    }
}

/// A fresh 32 MiB exFAT file system under `tmp`, mounted; Err says why there is none.
pub(crate) fn mount(tmp: &Path) -> Result<Exfat, String> {
    if !Path::new("/dev/fuse").exists() {
        return Err("/dev/fuse does not exist (no FUSE)".into());
    }
    let img = tmp.join("exfat.img");
    fs::File::create(&img)
        .and_then(|f| f.set_len(32 << 20))
        .map_err(|e| format!("image: {e}"))?;
    run(Command::new("mkfs.exfat").arg(&img))?;
    let dir = tmp.join("exfat");
    fs::create_dir_all(&dir).map_err(|e| format!("mount point: {e}"))?;
    // As a user exfat-fuse mounts the image itself; as root it wants a block device.
    if run(Command::new("mount.exfat-fuse").arg(&img).arg(&dir)).is_ok() {
        return Ok(Exfat {
            dir,
            loop_device: None,
        });
    }
    let dev = run(Command::new("losetup").args(["-f", "--show"]).arg(&img))?;
    let mounted = Exfat {
        dir,
        loop_device: Some(dev.clone()),
    };
    run(Command::new("mount.exfat-fuse").arg(&dev).arg(&mounted.dir))?;
    Ok(mounted)
}

/// The exFAT mount, or None after saying why the test is skipped (a failure when
/// `SNAPVAULT_REQUIRE_EXFAT` is set).
pub(crate) fn mount_or_skip(tmp: &Path, test: &str) -> Option<Exfat> {
    match mount(tmp) {
        Ok(m) => Some(m),
        Err(why) if std::env::var_os("SNAPVAULT_REQUIRE_EXFAT").is_some() => {
            panic!("exFAT is required here (SNAPVAULT_REQUIRE_EXFAT) but cannot be mounted: {why}")
        }
        Err(why) => {
            eprintln!("skipping {test}: no exFAT through FUSE here ({why})");
            None
        }
    }
}

/// `IMG_0001.JPG` and `img_0001.jpg` in one folder, restored onto exFAT: the second comes
/// back as `img_0001 (2).jpg`, a note names it, both are byte-exact; restoring again with
/// `--overwrite` overwrites neither.
#[test]
fn photos_whose_names_differ_only_in_case_both_come_back_on_exfat() {
    let tmp = tempdir();
    let Some(exfat) = mount_or_skip(tmp.path(), "exfat::photos_whose_names_differ_only_in_case")
    else {
        return;
    };
    let src = tmp.path().join("src");
    let upper = write_random(&src.join("DCIM/IMG_0001.JPG"), 1, 5_000);
    let lower = write_random(&src.join("DCIM/img_0001.jpg"), 2, 300_000);
    let other = write_random(&src.join("DCIM/IMG_0002.JPG"), 3, 7_000);
    let sv = Sv::init(tmp.path().join("repo"), true);
    sv.snapshot(&[&src], &[]);

    let target = exfat.dir.join("restored");
    let t = target.to_str().unwrap();
    let dcim = target.join("src/DCIM");
    let check = |out: &Out| {
        assert_eq!(fs::read(dcim.join("IMG_0001.JPG")).unwrap(), upper, "{out}");
        assert_eq!(
            fs::read(dcim.join("img_0001 (2).jpg")).unwrap(),
            lower,
            "{out}"
        );
        assert_eq!(fs::read(dcim.join("IMG_0002.JPG")).unwrap(), other, "{out}");
        assert_eq!(fs::read_dir(&dcim).unwrap().count(), 3, "{out}");
    };
    let out = sv.ok(&["restore", "latest", "--target", t]);
    check(&out);
    assert!(out.stdout.contains("only in case"), "{out}");
    assert_mentions(&out, "img_0001 (2).jpg");

    let out = sv.ok(&["restore", "latest", "--target", t, "--overwrite"]);
    check(&out);
}
