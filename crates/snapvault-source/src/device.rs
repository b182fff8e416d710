//! The session: one pipelined AFC connection ([`crate::afc`]) shared by listing and all
//! readers, on the session's private runtime (connecting is in [`crate::connect`], reading
//! a file in [`crate::reader`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::afc::{AfcConn, OpError, Pending};
use crate::connect::connect_async;
use crate::error::SourceError;
use crate::reader::DeviceReader;
use crate::runtime::Runtime;
use crate::wire::afc::{self as wire, Reply, Request, status};
use crate::{DeviceEntry, DeviceInfo, DeviceOptions, UsbmuxdAddress};

/// Deepest folder nesting walked under a root (/DCIM, /PhotoData/Mutations, …).
const MAX_DEPTH: usize = 8;
/// Most files accepted from one walk.
const MAX_ENTRIES: usize = 5_000_000;
/// Attribute requests of one folder kept in flight while listing.
const STAT_WINDOW: usize = 64;
/// Hinted files remembered (the ones not started yet).
const MAX_HINTS: usize = 1024;
/// Of the files opened ahead, how many nearest ones are read ahead too (memory: each holds
/// up to `prefetch_blocks` blocks). The ones further ahead only wait open, so that their
/// reads can go out without waiting for an open's reply, behind the data still on its way.
const READ_AHEAD_FILES: usize = 2;

/// State shared by the session's sync side and its runtime tasks.
pub(crate) struct Shared {
    pub(crate) afc: Arc<AfcConn>,
    /// File bytes received.
    pub(crate) bytes: AtomicU64,
}

fn unexpected(what: &str, r: &Reply) -> OpError {
    OpError::Fatal(SourceError::Protocol(format!(
        "{what}: unexpected AFC reply {r:?}"
    )))
}

impl Shared {
    async fn read_dir(&self, dir: &str) -> Result<Vec<String>, OpError> {
        let what = format!("listing {dir}");
        match self
            .afc
            .request(&Request::ReadDir(dir.into()), what.clone())
            .await?
        {
            Reply::Data(payload) => Ok(wire::split_nul(&payload)
                .flatten()
                .filter(|n| *n != "." && *n != ".." && !n.contains('/'))
                .map(str::to_owned)
                .collect()),
            other => Err(unexpected(&what, &other)),
        }
    }

    fn send_stat(&self, path: &str) -> Result<Pending, OpError> {
        self.afc.send(
            &Request::GetFileInfo(path.into()),
            format!("reading attributes of {path}"),
        )
    }

    async fn stat(&self, pending: Pending, path: &str) -> Result<wire::FileStat, OpError> {
        let protocol = |e: &dyn std::fmt::Display| {
            OpError::Fatal(SourceError::Protocol(format!("attributes of {path}: {e}")))
        };
        match pending.reply(&self.afc).await? {
            Reply::Data(payload) => {
                let kv = wire::parse_kv(&payload).map_err(|e| protocol(&e))?;
                wire::parse_file_stat(&kv).map_err(|e| protocol(&e))
            }
            other => Err(protocol(&format!("unexpected reply {other:?}"))),
        }
    }

    pub(crate) async fn open(&self, path: &str) -> Result<u64, OpError> {
        let what = format!("opening {path}");
        let req = Request::Open {
            mode: wire::MODE_RDONLY,
            path: path.into(),
        };
        match self.afc.request(&req, what.clone()).await? {
            Reply::Opened(fd) => Ok(fd),
            other => Err(unexpected(&what, &other)),
        }
    }

    /// Queues a read of up to `len` bytes at the file's position (reads of one handle are
    /// answered in order, so several can be in flight).
    pub(crate) fn send_read(&self, fd: u64, len: usize, path: &str) -> Result<Pending, OpError> {
        self.afc.send(
            &Request::Read {
                fd,
                len: len as u64,
            },
            format!("reading {path}"),
        )
    }

    pub(crate) async fn read(
        &self,
        pending: Pending,
        len: usize,
        path: &str,
    ) -> Result<Vec<u8>, OpError> {
        match pending.reply(&self.afc).await? {
            Reply::Data(d) if d.len() <= len => {
                self.bytes.fetch_add(d.len() as u64, Ordering::Relaxed);
                Ok(d)
            }
            Reply::Data(d) => Err(OpError::Fatal(SourceError::Protocol(format!(
                "reading {path}: asked for {len} bytes, got {}",
                d.len()
            )))),
            other => Err(unexpected(&format!("reading {path}"), &other)),
        }
    }

    /// Queues the close of a handle; the reply is awaited with [`Pending::reply`].
    pub(crate) fn send_close(&self, fd: u64, path: &str) -> Result<Pending, OpError> {
        self.afc
            .send(&Request::Close { fd }, format!("closing {path}"))
    }
}

/// Every regular file under `root` (`DCIM`, `PhotoData/CPLAssets`, …), sorted by path. A
/// missing `root` is an empty list; a subfolder that cannot be listed is left out.
async fn walk(sh: Arc<Shared>, root: String) -> Result<Vec<DeviceEntry>, SourceError> {
    let mut out = Vec::new();
    let mut dirs = vec![(root.clone(), 0usize)];
    while let Some((dir, depth)) = dirs.pop() {
        let names = match sh.read_dir(&format!("/{dir}")).await {
            Ok(n) => n,
            // Nothing there at all (no camera roll, no edits yet).
            Err(OpError::Status(status::OBJECT_NOT_FOUND)) if dir == root => return Ok(out),
            Err(OpError::Status(code)) if dir == root => {
                return Err(SourceError::Protocol(format!(
                    "cannot list /{root}: {}",
                    crate::afc::reason(code)
                )));
            }
            // A subfolder that vanished or cannot be listed: nothing to back up in it.
            Err(OpError::Status(_)) => continue,
            Err(OpError::Fatal(e)) => return Err(e),
        };
        // The attributes of a folder's entries are asked for together, a window at a time.
        for window in names.chunks(STAT_WINDOW) {
            let mut asked = Vec::with_capacity(window.len());
            for name in window {
                let path = format!("{dir}/{name}");
                let pending = sh.send_stat(&format!("/{path}")).map_err(fatal_only)?;
                asked.push((path, pending));
            }
            for (path, pending) in asked {
                let st = match sh.stat(pending, &path).await {
                    Ok(s) => s,
                    // Deleted between listing and stat.
                    Err(OpError::Status(_)) => continue,
                    Err(OpError::Fatal(e)) => return Err(e),
                };
                match st.kind.as_str() {
                    "S_IFDIR" if depth < MAX_DEPTH => dirs.push((path, depth + 1)),
                    "S_IFREG" => {
                        if out.len() >= MAX_ENTRIES {
                            return Err(SourceError::Protocol(format!(
                                "more than {MAX_ENTRIES} files under /{root}"
                            )));
                        }
                        out.push(DeviceEntry {
                            path,
                            size: st.size,
                            mtime_ns: st.mtime_ns,
                            birthtime_ns: st.birthtime_ns,
                        });
                    }
                    _ => {} // symlinks, sockets, too deep
                }
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// One regular file's entry, `None` when it is not there (or not a regular file).
async fn stat_file(sh: Arc<Shared>, path: String) -> Result<Option<DeviceEntry>, SourceError> {
    let afc = format!("/{path}");
    let pending = sh.send_stat(&afc).map_err(fatal_only)?;
    match sh.stat(pending, &afc).await {
        Ok(st) if st.kind == "S_IFREG" => Ok(Some(DeviceEntry {
            path,
            size: st.size,
            mtime_ns: st.mtime_ns,
            birthtime_ns: st.birthtime_ns,
        })),
        Ok(_) | Err(OpError::Status(_)) => Ok(None),
        Err(OpError::Fatal(e)) => Err(e),
    }
}

/// Sending only fails when the connection is over.
fn fatal_only(e: OpError) -> SourceError {
    e.for_file("")
}

// ---------------------------------------------------------------- Device

/// Files hinted with [`Device::prefetch`]: the ones not started yet, and the readers
/// already fetching (in hint order).
#[derive(Default)]
struct Ahead {
    hints: VecDeque<String>,
    started: VecDeque<DeviceReader>,
}

/// An open session with one iPhone: lockdown done, one AFC connection.
pub struct Device {
    info: DeviceInfo,
    shared: Arc<Shared>,
    opts: DeviceOptions,
    rt: Arc<Runtime>,
    ahead: Mutex<Ahead>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device").field("info", &self.info).finish()
    }
}

/// Accepts `DCIM/x`, `/DCIM/x`; refuses `..` and empty paths. Returns the AFC path.
fn afc_path(path: &str) -> Option<String> {
    let mut out = String::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c if c.contains('\0') => return None,
            c => {
                out.push('/');
                out.push_str(c);
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

impl Device {
    /// Connects to the iPhone with `udid`, or to the only attached one.
    ///
    /// Errors: [`SourceError::UsbmuxdNotRunning`], [`SourceError::NoDevice`],
    /// [`SourceError::SeveralDevices`] (no `udid` given), [`SourceError::UnknownDevice`],
    /// [`SourceError::NotTrusted`], [`SourceError::TrustRevoked`], [`SourceError::Locked`],
    /// [`SourceError::Timeout`], …
    pub fn connect(
        addr: &UsbmuxdAddress,
        udid: Option<&str>,
        opts: DeviceOptions,
    ) -> Result<Device, SourceError> {
        let mut opts = opts;
        opts.read_block = opts
            .read_block
            .clamp(DeviceOptions::MIN_READ_BLOCK, DeviceOptions::MAX_READ_BLOCK);
        opts.prefetch_blocks = opts.prefetch_blocks.max(1);
        let rt = Runtime::start()?;
        let (info, afc) = rt.run(connect_async(
            addr.clone(),
            udid.map(str::to_owned),
            opts.clone(),
        ))?;
        let shared = Arc::new(Shared {
            afc,
            bytes: AtomicU64::new(0),
        });
        Ok(Device {
            info,
            shared,
            opts,
            rt,
            ahead: Mutex::new(Ahead::default()),
        })
    }

    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// Walks `/DCIM` (all `1nnAPPLE`, `1nnCLOUD`, `1nnIMPRT` and other subfolders) and
    /// returns its regular files sorted by path. No `/DCIM` → empty list.
    pub fn list_dcim(&self) -> Result<Vec<DeviceEntry>, SourceError> {
        self.list_under("DCIM")
    }

    /// Every regular file under the folder `root` of the media root (`PhotoData/CPLAssets`),
    /// sorted by path; a missing folder gives an empty list.
    pub fn list_under(&self, root: &str) -> Result<Vec<DeviceEntry>, SourceError> {
        let root = afc_path(root)
            .ok_or_else(|| SourceError::Protocol(format!("{root:?} is not a valid device path")))?;
        let root = root.trim_start_matches('/').to_string();
        self.rt.run(walk(self.shared.clone(), root))
    }

    /// The entry of one regular file (`PhotoData/Photos.sqlite`), `None` when it is absent.
    pub fn stat(&self, path: &str) -> Result<Option<DeviceEntry>, SourceError> {
        let Some(p) = afc_path(path) else {
            return Ok(None);
        };
        let p = p.trim_start_matches('/').to_string();
        self.rt.run(stat_file(self.shared.clone(), p))
    }

    fn ahead(&self) -> MutexGuard<'_, Ahead> {
        self.ahead.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A hint that `path` will be opened soon, after the files hinted before it: from the
    /// next [`Device::open`] on, up to [`DeviceOptions::prefetch_files`] of them are opened
    /// ahead and the nearest two are read ahead, so the link never waits for a file to be
    /// opened.
    pub fn prefetch(&self, path: &str) {
        let Some(afc) = afc_path(path) else {
            return;
        };
        let mut a = self.ahead();
        let known = a.hints.contains(&afc) || a.started.iter().any(|r| r.afc_path() == afc);
        if a.hints.len() < MAX_HINTS && !known {
            a.hints.push_back(afc);
        }
    }

    /// Opens one file for reading. A file the phone cannot read (iCloud-only original,
    /// deleted meanwhile) is [`SourceError::Unreadable`] and the session goes on.
    pub fn open(&self, path: &str) -> Result<DeviceReader, SourceError> {
        let afc = afc_path(path).ok_or_else(|| SourceError::Unreadable {
            path: path.to_string(),
            reason: "not a valid device path".into(),
        })?;
        let mut a = self.ahead();
        // Files hinted before this one were not opened after all: stop fetching them.
        if let Some(i) = a.hints.iter().position(|h| *h == afc) {
            a.hints.drain(..=i);
        }
        let mut prefetched = None;
        if let Some(i) = a.started.iter().position(|r| r.afc_path() == afc) {
            a.started.drain(..i);
            prefetched = a.started.pop_front();
        }
        let reader = match prefetched.map(|r| r.opened()) {
            Some(Ok(mut r)) => {
                r.read_ahead(self.opts.prefetch_blocks);
                Ok(r)
            }
            // Opening it ahead failed (a handle limit, say): open it now, for its own error.
            Some(Err(OpError::Status(_))) | None => self.open_now(&afc),
            Some(Err(e)) => Err(e),
        };
        let reader = match reader {
            // The phone's handles are taken by files opened ahead: give them back (their
            // closes go out before this open), try again.
            Err(OpError::Status(status::NO_RESOURCES)) if !a.started.is_empty() => {
                let dropped: Vec<_> = a.started.drain(..).collect();
                for r in dropped.iter().rev() {
                    a.hints.push_front(r.afc_path().to_string());
                }
                drop(dropped);
                self.open_now(&afc)
            }
            r => r,
        }
        .map_err(|e| e.for_file(afc.trim_start_matches('/')))?;
        while a.started.len() < self.opts.prefetch_files {
            let Some(next) = a.hints.pop_front() else {
                break;
            };
            a.started.push_back(DeviceReader::start(
                &self.rt,
                &self.shared,
                &self.opts,
                next,
                None,
                false,
            ));
        }
        for r in a.started.iter_mut().take(READ_AHEAD_FILES) {
            r.read_ahead(self.opts.prefetch_blocks);
        }
        Ok(reader)
    }

    fn open_now(&self, afc: &str) -> Result<DeviceReader, OpError> {
        let sh = self.shared.clone();
        let p = afc.to_string();
        let fd = self.rt.run_op(async move { sh.open(&p).await })?;
        Ok(DeviceReader::start(
            &self.rt,
            &self.shared,
            &self.opts,
            afc.to_string(),
            Some(fd),
            true,
        ))
    }

    /// File bytes received from the phone in this session.
    pub fn bytes_transferred(&self) -> u64 {
        self.shared.bytes.load(Ordering::Relaxed)
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        // Readers fetching ahead close their handles before the session ends.
        let started: Vec<_> = self.ahead().started.drain(..).collect();
        drop(started);
        // Closes go out without waiting for their replies; one last request, answered after
        // them, makes sure the phone has released every handle when the session ends.
        if self.shared.afc.fatal().is_none() {
            let sh = self.shared.clone();
            let _ = self.rt.run_op(async move {
                sh.afc
                    .request(&Request::GetDevInfo, "finishing".into())
                    .await
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_safety() {
        fn send<T: Send>() {}
        fn sync<T: Sync>() {}
        send::<Device>();
        sync::<Device>();
        send::<DeviceReader>();
        send::<SourceError>();
        sync::<SourceError>();
    }

    #[test]
    fn device_paths() {
        assert_eq!(
            afc_path("DCIM/100APPLE/A.HEIC").as_deref(),
            Some("/DCIM/100APPLE/A.HEIC")
        );
        assert_eq!(afc_path("/DCIM//A").as_deref(), Some("/DCIM/A"));
        assert_eq!(afc_path("DCIM/../etc"), None);
        assert_eq!(afc_path("/"), None);
    }
}
