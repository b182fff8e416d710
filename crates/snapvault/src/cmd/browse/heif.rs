//! HEIC pictures by a decoder installed on the system, run as a separate process (why not
//! a library in-process: docs/design.md, "HEIC thumbnails"). Looked for once on `PATH`:
//!
//! - `heif-thumbnailer` (libheif; Debian's `heif-thumbnailer` package): decodes the small
//!   thumbnail item an iPhone stores (or the image, scaled, when there is none) to PNG;
//!   with `-p`, the image itself scaled to a size; its PNG is re-encoded as JPEG here
//!   (`tojpeg.rs`);
//! - `sips` (macOS, always present): scales the image to JPEG;
//! - `heif-convert` (libheif; Debian's `libheif-examples`): decodes the whole image to JPEG.
//!
//! Two sizes are made: the grid's thumbnail ([`Size::Thumb`], the first of the three that
//! is installed) and the photo page's picture ([`Size::Screen`]: `sips`, then
//! `heif-convert`, which write JPEG themselves, then `heif-thumbnailer`). Both are always
//! JPEG, which every browser shows.
//!
//! The stored file is written (verified, a chunk at a time) to a private temporary folder in
//! the cache folder, the decoder gets [`TIMEOUT`] and, on Linux, [`MEMORY`] of address
//! space, and at most [`DECODERS`] run at once; whatever it does to itself, the server goes
//! on and shows a placeholder. What it writes is read back up to [`MAX_OUTPUT`] bytes, and
//! a PNG converted only up to [`tojpeg::MAX_PIXELS`].

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use snapvault_catalog::StoredContent;

use super::library::Library;
use super::{media, tojpeg};

/// Largest HEIC handed to a decoder (an iPhone's are 1-5 MiB).
pub const MAX_INPUT: u64 = 64 * 1024 * 1024;
/// Largest picture read back (a whole 48-megapixel image as JPEG is about 20 MiB).
pub const MAX_OUTPUT: u64 = 32 * 1024 * 1024;
/// Longest a decoder may run.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Address space a decoder may use (Linux, `RLIMIT_AS`).
#[cfg(target_os = "linux")]
const MEMORY: u64 = 2 * 1024 * 1024 * 1024;
/// Decoders running at the same time (each may hold a decoded image).
pub const DECODERS: usize = 2;
/// Longest side of a thumbnail.
const THUMB: u32 = 320;
/// Longest side of the picture on a photo page (`heif-convert` cannot scale: it writes the
/// whole image, which the browser scales).
pub const SCREEN: u32 = 2048;

/// Which picture to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// The month grid's (the embedded thumbnail item where there is one).
    Thumb,
    /// The photo page's: the image itself, at most [`SCREEN`] pixels on its longest side.
    Screen,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Thumbnailer,
    Sips,
    Convert,
}

/// An installed HEIC decoder.
#[derive(Debug)]
pub struct Decoder {
    kind: Kind,
    exe: PathBuf,
}

/// The first of `tools` found on `PATH`.
fn find(tools: [(&str, Kind); 3]) -> Option<Decoder> {
    let path = std::env::var_os("PATH")?;
    let dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    let find = |name: &str| dirs.iter().map(|d| d.join(name)).find(|p| p.is_file());
    tools
        .into_iter()
        .find_map(|(name, kind)| find(name).map(|exe| Decoder { kind, exe }))
}

/// The decoder for thumbnails found on `PATH` (looked for once).
pub fn decoder() -> Option<&'static Decoder> {
    static FOUND: OnceLock<Option<Decoder>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            find([
                ("heif-thumbnailer", Kind::Thumbnailer),
                ("sips", Kind::Sips),
                ("heif-convert", Kind::Convert),
            ])
        })
        .as_ref()
}

/// The decoder for the photo page's picture (looked for once): one that writes JPEG
/// first, a third the size of PNG for a photo.
pub fn screen_decoder() -> Option<&'static Decoder> {
    static FOUND: OnceLock<Option<Decoder>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            find([
                ("sips", Kind::Sips),
                ("heif-convert", Kind::Convert),
                ("heif-thumbnailer", Kind::Thumbnailer),
            ])
        })
        .as_ref()
}

/// What to tell a user who has no decoder.
pub const INSTALL_HINT: &str = "install libheif's heif-thumbnailer (Debian, Ubuntu: apt install heif-thumbnailer; Fedora: dnf install libheif-tools; Homebrew: brew install libheif) and restart browse";

/// A counting semaphore for [`DECODERS`] (the callers are blocking threads).
struct Slots {
    used: Mutex<usize>,
    freed: Condvar,
}

static SLOTS: Slots = Slots {
    used: Mutex::new(0),
    freed: Condvar::new(),
};

struct Slot;

impl Slots {
    fn take(&'static self) -> Slot {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used >= DECODERS {
            used = self.freed.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut used = SLOTS.used.lock().unwrap_or_else(|e| e.into_inner());
        *used = used.saturating_sub(1);
        SLOTS.freed.notify_one();
    }
}

impl Decoder {
    pub fn name(&self) -> String {
        self.exe
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    }

    /// A picture of a stored HEIC, as JPEG. `work` is a private folder for the temporary
    /// files (the cache folder, or the system's).
    pub fn render(
        &self,
        lib: &Library,
        content: &StoredContent,
        work: &Path,
        size: Size,
    ) -> io::Result<Vec<u8>> {
        if content.size > MAX_INPUT {
            return Err(io::Error::other(format!(
                "{} bytes, more than the {MAX_INPUT} handed to a decoder",
                content.size
            )));
        }
        // A folder of its own, removed with everything in it: a decoder may write more
        // than the one file asked for (older heif-convert writes depth images beside it).
        let tmp = tempfile::Builder::new().prefix(".heic-").tempdir_in(work)?;
        let inp = tmp.path().join("in.heic");
        let mut input = std::fs::File::create(&inp)?;
        media::write_all(lib, content, &mut input)?;
        drop(input);
        let name = match self.kind {
            Kind::Thumbnailer => "out.png",
            Kind::Sips | Kind::Convert => "out.jpg",
        };
        let out = tmp.path().join(name);
        let px = match size {
            Size::Thumb => THUMB,
            Size::Screen => SCREEN,
        }
        .to_string();
        let mut cmd = Command::new(&self.exe);
        match (self.kind, size) {
            (Kind::Thumbnailer, Size::Thumb) => cmd.arg("-s").arg(&px),
            // -p: the image itself, not the small thumbnail item scaled up.
            (Kind::Thumbnailer, Size::Screen) => cmd.arg("-p").arg("-s").arg(&px),
            (Kind::Sips, _) => cmd.args(["-s", "format", "jpeg", "-Z", &px]),
            (Kind::Convert, _) => cmd.args(["--quiet", "-q", &quality(size).to_string()]),
        };
        match self.kind {
            Kind::Sips => cmd.arg(&inp).arg("--out").arg(&out),
            Kind::Thumbnailer | Kind::Convert => cmd.arg(&inp).arg(&out),
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        limit_memory(&mut cmd);
        {
            let _slot = SLOTS.take();
            run(&mut cmd, &self.name())?;
        }
        let mut bytes = Vec::new();
        std::fs::File::open(&out)?
            .take(MAX_OUTPUT + 1)
            .read_to_end(&mut bytes)?;
        if bytes.is_empty() || bytes.len() as u64 > MAX_OUTPUT {
            return Err(io::Error::other(format!(
                "{} wrote {} bytes",
                self.name(),
                bytes.len()
            )));
        }
        match self.kind {
            Kind::Thumbnailer => tojpeg::from_png(&bytes, quality(size)),
            Kind::Sips | Kind::Convert => Ok(bytes),
        }
    }
}

/// JPEG quality of each size.
fn quality(size: Size) -> u8 {
    match size {
        Size::Thumb => 80,
        Size::Screen => 85,
    }
}

/// Run a decoder to its end, or kill it after [`TIMEOUT`].
fn run(cmd: &mut Command, name: &str) -> io::Result<()> {
    let mut child = cmd.spawn()?;
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return if status.success() {
                Ok(())
            } else {
                Err(io::Error::other(format!(
                    "{name} could not decode it ({status})"
                )))
            };
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other(format!(
                "{name} took more than {} s",
                TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Cap the decoder's address space, so a hostile file cannot make it take the machine's
/// memory.
#[cfg(target_os = "linux")]
fn limit_memory(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: only setrlimit (async-signal-safe) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: MEMORY,
                rlim_max: MEMORY,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn limit_memory(_: &mut Command) {}
