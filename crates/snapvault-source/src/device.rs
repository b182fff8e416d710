//! The session: a private tokio runtime thread and one AFC connection shared by listing and
//! all readers (connecting is in [`crate::connect`]).

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use idevice::IdeviceError;
use idevice::afc::AfcClient;
use idevice::afc::errors::AfcError;
use idevice::afc::opcode::AfcOpcode;
use idevice::afc::packet::AfcPacket;
use tokio::sync::Semaphore;

use crate::connect::connect_async;
use crate::error::{Fatal, SourceError, from_idevice};
use crate::wire::afc as wire;
use crate::{DeviceEntry, DeviceInfo, DeviceOptions, UsbmuxdAddress};
/// Deepest folder nesting walked under a root (/DCIM, /PhotoData/Mutations, …).
const MAX_DEPTH: usize = 8;
/// Most files accepted from one walk.
const MAX_ENTRIES: usize = 5_000_000;
/// `AfcFopenMode::RdOnly`.
const MODE_RDONLY: u64 = 1;

// ---------------------------------------------------------------- runtime

/// The private runtime: one thread driving a current-thread tokio runtime.
pub(crate) struct Runtime {
    handle: tokio::runtime::Handle,
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Runtime {
    pub(crate) fn start() -> Result<Arc<Runtime>, SourceError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = rt.handle().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("snapvault-iphone".into())
            .spawn(move || {
                rt.block_on(async {
                    let _ = rx.await;
                });
                // Dropping `rt` here cancels the remaining tasks and closes their sockets.
            })?;
        Ok(Arc::new(Runtime {
            handle,
            stop: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        }))
    }

    /// Runs `fut` on the runtime and waits for it. Every future given here bounds its own
    /// device operations with timeouts.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, SourceError>> + Send + 'static,
    ) -> Result<T, SourceError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().unwrap_or(Err(SourceError::Disconnected))
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.get_mut().ok().and_then(|s| s.take()) {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.get_mut().ok().and_then(|t| t.take())
            && t.thread().id() != std::thread::current().id()
        {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------- AFC operations

/// What an AFC request can end in.
enum OpError {
    /// The phone answered with an AFC status code: this request failed, the connection is fine.
    Status(AfcError),
    /// The connection is gone or out of step; the session is over.
    Fatal(SourceError),
}

impl OpError {
    fn for_file(self, path: &str) -> SourceError {
        match self {
            OpError::Status(e) => SourceError::Unreadable {
                path: path.to_string(),
                reason: afc_reason(&e),
            },
            OpError::Fatal(e) => e,
        }
    }
}

fn afc_reason(e: &AfcError) -> String {
    match e {
        AfcError::ReadError | AfcError::IoError => {
            "the phone could not read it; originals kept only in iCloud fail like this".into()
        }
        AfcError::ObjectNotFound => "it is no longer on the phone".into(),
        AfcError::PermDenied => "permission denied".into(),
        AfcError::NoResources => "the phone ran out of file handles".into(),
        AfcError::ObjectIsDir => "it is a folder".into(),
        other => format!("AFC error: {other}"),
    }
}

/// State shared by the session's sync side and its runtime tasks.
struct Shared {
    afc: tokio::sync::Mutex<Option<AfcClient>>,
    fatal: Mutex<Option<Fatal>>,
    bytes: AtomicU64,
    timeout: Duration,
}

impl Shared {
    fn fatal(&self) -> Option<Fatal> {
        match self.fatal.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn set_fatal(&self, f: Fatal) {
        let mut g = match self.fatal.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if g.is_none() {
            *g = Some(f);
        }
    }

    /// One AFC request/reply, under the connection lock and the per-operation timeout.
    async fn op(&self, what: &str, opcode: AfcOpcode, hp: Vec<u8>) -> Result<AfcPacket, OpError> {
        let mut guard = self.afc.lock().await;
        if let Some(f) = self.fatal() {
            return Err(OpError::Fatal(f.to_error()));
        }
        let Some(client) = guard.as_mut() else {
            return Err(OpError::Fatal(SourceError::Disconnected));
        };
        let err = match tokio::time::timeout(self.timeout, client.send_op(opcode, hp, Vec::new()))
            .await
        {
            Ok(Ok(p)) => return Ok(p),
            // A status reply: the request failed, the stream is still in step.
            Ok(Err(IdeviceError::Afc(e)))
                if !matches!(e, AfcError::UnknownOpcode | AfcError::InvalidMagic) =>
            {
                return Err(OpError::Status(e));
            }
            Ok(Err(e)) => from_idevice(e),
            Err(_) => SourceError::Timeout { op: what.into() },
        };
        // Gone, or out of step after a cancelled request: drop the connection for good.
        *guard = None;
        self.set_fatal(Fatal::of(&err));
        Err(OpError::Fatal(err))
    }

    async fn read_dir(&self, dir: &str) -> Result<Vec<String>, OpError> {
        let p = self
            .op(
                &format!("listing {dir}"),
                AfcOpcode::ReadDir,
                dir.as_bytes().to_vec(),
            )
            .await?;
        Ok(wire::split_nul(&p.payload)
            .flatten()
            .filter(|n| *n != "." && *n != ".." && !n.contains('/'))
            .map(str::to_owned)
            .collect())
    }

    async fn stat(&self, path: &str) -> Result<wire::FileStat, OpError> {
        let p = self
            .op(
                &format!("reading attributes of {path}"),
                AfcOpcode::GetFileInfo,
                path.as_bytes().to_vec(),
            )
            .await?;
        let protocol = |e: crate::wire::WireError| {
            OpError::Fatal(SourceError::Protocol(format!("attributes of {path}: {e}")))
        };
        wire::parse_file_stat(&wire::parse_kv(&p.payload).map_err(protocol)?).map_err(protocol)
    }

    async fn open(&self, path: &str) -> Result<u64, OpError> {
        let mut hp = MODE_RDONLY.to_le_bytes().to_vec();
        hp.extend_from_slice(path.as_bytes());
        let p = self
            .op(&format!("opening {path}"), AfcOpcode::FileOpen, hp)
            .await?;
        match p.header_payload.get(..8) {
            Some(b) if p.header.operation == AfcOpcode::FileOpenRes => {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Ok(u64::from_le_bytes(a))
            }
            _ => Err(OpError::Fatal(SourceError::Protocol(format!(
                "opening {path}: unexpected reply {:?}",
                p.header.operation
            )))),
        }
    }

    async fn read(&self, fd: u64, len: usize, path: &str) -> Result<Vec<u8>, OpError> {
        let mut hp = fd.to_le_bytes().to_vec();
        hp.extend_from_slice(&(len as u64).to_le_bytes());
        let p = self
            .op(&format!("reading {path}"), AfcOpcode::Read, hp)
            .await?;
        if p.payload.len() > len {
            return Err(OpError::Fatal(SourceError::Protocol(format!(
                "reading {path}: asked for {len} bytes, got {}",
                p.payload.len()
            ))));
        }
        self.bytes
            .fetch_add(p.payload.len() as u64, Ordering::Relaxed);
        Ok(p.payload)
    }

    async fn close(&self, fd: u64, path: &str) -> Result<(), OpError> {
        self.op(
            &format!("closing {path}"),
            AfcOpcode::FileClose,
            fd.to_le_bytes().to_vec(),
        )
        .await
        .map(|_| ())
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
            Err(OpError::Status(AfcError::ObjectNotFound)) if dir == root => return Ok(out),
            Err(OpError::Status(e)) if dir == root => {
                return Err(SourceError::Protocol(format!("cannot list /{root}: {e}")));
            }
            // A subfolder that vanished or cannot be listed: nothing to back up in it.
            Err(OpError::Status(_)) => continue,
            Err(OpError::Fatal(e)) => return Err(e),
        };
        for name in names {
            let path = format!("{dir}/{name}");
            let st = match sh.stat(&format!("/{path}")).await {
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
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// One regular file's entry, `None` when it is not there (or not a regular file).
async fn stat_file(sh: Arc<Shared>, path: String) -> Result<Option<DeviceEntry>, SourceError> {
    match sh.stat(&format!("/{path}")).await {
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

// ---------------------------------------------------------------- Device

/// An open session with one iPhone: lockdown done, one AFC connection.
pub struct Device {
    info: DeviceInfo,
    shared: Arc<Shared>,
    opts: DeviceOptions,
    rt: Arc<Runtime>,
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
        let (info, client) = rt.run(connect_async(
            addr.clone(),
            udid.map(str::to_owned),
            opts.clone(),
        ))?;
        let shared = Arc::new(Shared {
            afc: tokio::sync::Mutex::new(Some(client)),
            fatal: Mutex::new(None),
            bytes: AtomicU64::new(0),
            timeout: opts.timeout,
        });
        Ok(Device {
            info,
            shared,
            opts,
            rt,
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

    /// Opens one file for reading. A file the phone cannot read (iCloud-only original,
    /// deleted meanwhile) is [`SourceError::Unreadable`] and the session goes on.
    pub fn open(&self, path: &str) -> Result<DeviceReader, SourceError> {
        let afc = afc_path(path).ok_or_else(|| SourceError::Unreadable {
            path: path.to_string(),
            reason: "not a valid device path".into(),
        })?;
        let display = afc.trim_start_matches('/').to_string();
        let sh = self.shared.clone();
        let (p, d) = (afc.clone(), display.clone());
        let fd = self
            .rt
            .run(async move { sh.open(&p).await.map_err(|e| e.for_file(&d)) })?;

        let credits = Arc::new(Semaphore::new(self.opts.prefetch_blocks));
        let (tx, rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        let task = Producer {
            shared: self.shared.clone(),
            fd,
            path: display.clone(),
            block: self.opts.read_block,
            credits: credits.clone(),
            tx,
        };
        self.rt.handle.spawn(async move {
            task.run().await;
            let _ = done_tx.send(());
        });
        Ok(DeviceReader {
            path: display,
            rx: Some(rx),
            credits,
            done: done_rx,
            cur: Vec::new(),
            pos: 0,
            finished: false,
            wait: self.opts.timeout * 2 + Duration::from_secs(5),
            _rt: self.rt.clone(),
        })
    }

    /// File bytes received from the phone in this session.
    pub fn bytes_transferred(&self) -> u64 {
        self.shared.bytes.load(Ordering::Relaxed)
    }
}

// ---------------------------------------------------------------- reading

enum Msg {
    Data(Vec<u8>),
    Eof,
    Err(SourceError),
}

/// Reads one file ahead of its consumer, within the credits it gets, and always closes the
/// device handle.
struct Producer {
    shared: Arc<Shared>,
    fd: u64,
    path: String,
    block: usize,
    credits: Arc<Semaphore>,
    tx: mpsc::Sender<Msg>,
}

impl Producer {
    async fn run(self) {
        let end = loop {
            // Wait for room; a closed semaphore means the reader was dropped.
            match self.credits.acquire().await {
                Ok(p) => p.forget(),
                Err(_) => break None,
            }
            match self.shared.read(self.fd, self.block, &self.path).await {
                Ok(d) if d.is_empty() => break Some(Msg::Eof),
                Ok(d) => {
                    if self.tx.send(Msg::Data(d)).is_err() {
                        break None;
                    }
                }
                Err(e) => break Some(Msg::Err(e.for_file(&self.path))),
            }
        };
        // Close before reporting the end, so a reader that saw EOF has released the handle.
        // A dead connection needs no close: the phone drops its handles with it.
        if self.shared.fatal().is_none() {
            let _ = self.shared.close(self.fd, &self.path).await;
        }
        if let Some(m) = end {
            let _ = self.tx.send(m);
        }
    }
}

/// A file being read from the phone; `std::io::Read`. The next blocks are fetched while the
/// caller works. Dropping it closes the device handle (waiting for that, bounded by the
/// session timeout).
///
/// I/O errors carry a [`SourceError`] ([`SourceError::from_io`]): `Unreadable` means skip
/// this file, anything else means the session is over.
pub struct DeviceReader {
    path: String,
    rx: Option<mpsc::Receiver<Msg>>,
    credits: Arc<Semaphore>,
    done: mpsc::Receiver<()>,
    cur: Vec<u8>,
    pos: usize,
    finished: bool,
    wait: Duration,
    _rt: Arc<Runtime>,
}

impl std::fmt::Debug for DeviceReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceReader")
            .field("path", &self.path)
            .finish()
    }
}

impl DeviceReader {
    /// Device path being read (`DCIM/…`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The next block as the phone sent it (no copy), `None` at end of file.
    pub fn next_block(&mut self) -> Result<Option<Vec<u8>>, SourceError> {
        if self.pos < self.cur.len() {
            let rest = self.cur.split_off(self.pos);
            self.cur.clear();
            self.pos = 0;
            return Ok(Some(rest));
        }
        if self.finished {
            return Ok(None);
        }
        let Some(rx) = &self.rx else {
            return Ok(None);
        };
        let msg = match rx.recv_timeout(self.wait) {
            Ok(m) => m,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                self.finished = true;
                return Err(SourceError::Timeout {
                    op: format!("reading {}", self.path),
                });
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                self.finished = true;
                return Err(SourceError::Disconnected);
            }
        };
        match msg {
            Msg::Data(d) => {
                self.credits.add_permits(1);
                Ok(Some(d))
            }
            Msg::Eof => {
                self.finished = true;
                Ok(None)
            }
            Msg::Err(e) => {
                self.finished = true;
                Err(e)
            }
        }
    }
}

impl io::Read for DeviceReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.pos >= self.cur.len() {
            match self.next_block()? {
                Some(b) => {
                    self.cur = b;
                    self.pos = 0;
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Drop for DeviceReader {
    fn drop(&mut self) {
        // Stop the producer (closed credits, closed channel), then wait until it has closed
        // the device handle.
        self.credits.close();
        self.rx = None;
        let _ = self.done.recv_timeout(self.wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::FrameGuard;
    use idevice::Idevice;

    /// A hostile phone whose AFC reply claims impossible lengths: idevice alone would
    /// underflow (debug panic) or allocate exabytes; through the guard it is a clean,
    /// fatal protocol error, and later calls fail fast.
    #[test]
    fn hostile_afc_lengths_are_a_protocol_error() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for (entire, this) in [(u64::MAX, 40), (40, 8), (1 << 40, 48), (47, 48)] {
            rt.block_on(async {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let (phone, host) = tokio::io::duplex(1 << 16);
                let client = AfcClient::new(Idevice::new(Box::new(FrameGuard::afc(host)), "t"));
                let shared = Shared {
                    afc: tokio::sync::Mutex::new(Some(client)),
                    fatal: Mutex::new(None),
                    bytes: AtomicU64::new(0),
                    timeout: Duration::from_secs(5),
                };
                let evil = tokio::spawn(async move {
                    let mut phone = phone;
                    let mut req = [0u8; 56];
                    phone.read_exact(&mut req).await.unwrap();
                    let mut reply = Vec::new();
                    for v in [wire::MAGIC, entire, this, 0, 2] {
                        reply.extend_from_slice(&v.to_le_bytes());
                    }
                    reply.extend_from_slice(&[0u8; 64]);
                    let _ = phone.write_all(&reply).await;
                    phone
                });
                match shared.read(3, 1 << 20, "DCIM/x").await {
                    Err(OpError::Fatal(SourceError::Protocol(m))) => {
                        assert!(m.contains("AFC"), "{m}")
                    }
                    Err(OpError::Fatal(e)) => panic!("{e}"),
                    Err(OpError::Status(e)) => panic!("{e}"),
                    Ok(_) => panic!("accepted entire={entire} this={this}"),
                }
                assert!(matches!(
                    shared.read(3, 1, "DCIM/x").await,
                    Err(OpError::Fatal(SourceError::Protocol(_)))
                ));
                let _ = evil.await;
            });
        }
    }

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
