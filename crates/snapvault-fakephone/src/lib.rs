//! A loopback iPhone for tests and demos.
//!
//! [`FakePhone::start`] runs, on its own thread and tokio runtime, everything an unmodified
//! usbmuxd client (the `idevice` crate, libimobiledevice) talks to when it reads a phone's
//! camera roll:
//!
//! - **usbmuxd** over TCP on `127.0.0.1` (`ListDevices`, `Listen`, `ReadBUID`,
//!   `ReadPairRecord`, `SavePairRecord`, `Connect`; the binary protocol's `Listen` and
//!   `Connect` too), with the frame codecs of `snapvault-phonewire`;
//! - **lockdownd** as strict as a phone's (`QueryType`; `GetValue` with a small public set
//!   before a session and domains inside one; `Pair` through the Trust prompt; `StartSession`
//!   followed by a TLS 1.2 session that requires a client certificate chaining to the paired
//!   host's root; `StartService com.apple.afc` on a fresh port, honouring the escrow bag on a
//!   locked phone; `StopSession`), with RSA-2048 pair records in Apple's format;
//! - **AFC** serving a local folder as the phone's media root, so `LIB/DCIM/100APPLE/x.HEIC`
//!   appears as `/DCIM/100APPLE/x.HEIC` (ReadDir, GetFileInfo, GetDeviceInfo, FileRefOpen,
//!   FileRefRead, FileRefSeek, FileRefTell, FileRefClose). Read-only.
//!
//! Faults are injected through [`FakePhoneConfig`]: not paired, trust revoked, locked,
//! unplugged after N bytes, stalled reads, iCloud-only originals and a cap on open file
//! handles. The link is a clock: a turnaround per reply and a bandwidth shared by all
//! connections (replies leave in order; requests may be pipelined). Counters
//! ([`FakePhone::afc_bytes_served`], [`FakePhone::open_handles`], …) let tests assert what
//! went over the wire.
//!
//! Point a client at it with `USBMUXD_SOCKET_ADDRESS=<FakePhone::usbmuxd_address()>`.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

mod afc;
mod link;
mod lockdownd;
mod mux;
mod pairing;
mod phone;
mod tls;

/// What the fake phone looks like and which faults it injects.
#[derive(Debug, Clone)]
pub struct FakePhoneConfig {
    /// Folder served as the phone's media root (`/var/mobile/Media`).
    pub library: PathBuf,
    pub udid: String,
    /// `DeviceName`, e.g. "Anna's iPhone".
    pub name: String,
    /// `ProductType`, e.g. "iPhone15,2".
    pub model: String,
    /// `ProductVersion`, e.g. "17.5.1".
    pub ios_version: String,
    /// usbmuxd holds a pair record for the device and the phone trusts it (else
    /// `ReadPairRecord` fails and the phone does not know the host: "not trusted").
    pub paired: bool,
    /// The device forgot the host (`StartSession` → `InvalidHostID`).
    pub trust_revoked: bool,
    /// The emulated user taps Trust this long after the Trust prompt appeared (the first
    /// `Pair` request from an untrusted host); `None`: nobody taps (`Pair` stays
    /// `PairingDialogResponsePending`).
    pub trust_after: Option<std::time::Duration>,
    /// The emulated user taps Don't Trust instead (after `trust_after`, default at once):
    /// `Pair` → `UserDeniedPairing`.
    pub deny_trust: bool,
    /// Passcode locked (`StartService` → `PasswordProtected` unless the request carries the
    /// pair record's escrow bag; `Pair` → `PasswordProtected`).
    pub locked: bool,
    /// usbmuxd's pair record has no `EscrowBag` (a record some tools make, or one from before
    /// the phone handed bags out): nothing can start a service while the phone is locked.
    pub record_without_escrow_bag: bool,
    /// Cut the AFC connection (mid-packet) once this many file bytes were served, and
    /// disappear from usbmuxd's device list like an unplugged phone.
    pub disconnect_after_bytes: Option<u64>,
    /// Never answer `FileRefRead` (the socket stays open).
    pub stall: bool,
    /// The link's bandwidth: AFC replies (file data above all) take their size at this many
    /// bytes per second, shared by all connections.
    pub bytes_per_sec: Option<u64>,
    /// Turnaround per AFC reply: each leaves this long after its request arrived (a client
    /// that waits for every reply pays it every time; one that keeps requests in flight
    /// does not).
    pub latency: Option<std::time::Duration>,
    /// Device paths (`DCIM/100APPLE/IMG_0003.HEIC`, leading slash optional) that are listed
    /// but fail to open, like originals kept only in iCloud ("Optimize iPhone Storage").
    pub icloud_only: Vec<String>,
    /// afcd's limit on open file handles (`NoResources` past it).
    pub max_open_files: Option<usize>,
    /// Print one line per AFC connection on stderr when it ends: the file bytes it served
    /// and the time from its first to its last reply carrying file data (benchmarks).
    pub report: bool,
    /// How many devices usbmuxd reports (0 = none attached). Device 1 uses `udid`/`name`;
    /// device *n* uses `udid-n` and `name (n)`; all serve the same library.
    pub devices: usize,
}

impl Default for FakePhoneConfig {
    /// A healthy phone; set `library` before starting it.
    fn default() -> Self {
        FakePhoneConfig::new(PathBuf::new())
    }
}

impl FakePhoneConfig {
    /// A healthy, paired, unlocked iPhone serving `library`.
    pub fn new(library: impl Into<PathBuf>) -> Self {
        FakePhoneConfig {
            library: library.into(),
            udid: "00008110-001A2B3C4D5E801E".into(),
            name: "Test iPhone".into(),
            model: "iPhone15,2".into(),
            ios_version: "17.5.1".into(),
            paired: true,
            trust_revoked: false,
            trust_after: None,
            deny_trust: false,
            locked: false,
            record_without_escrow_bag: false,
            disconnect_after_bytes: None,
            stall: false,
            bytes_per_sec: None,
            latency: None,
            icloud_only: Vec::new(),
            max_open_files: None,
            report: false,
            devices: 1,
        }
    }

    /// UDID of device `index` (0-based).
    pub fn device_udid(&self, index: usize) -> String {
        if index == 0 {
            self.udid.clone()
        } else {
            format!("{}-{}", self.udid, index + 1)
        }
    }

    /// Name of device `index` (0-based).
    pub fn device_name(&self, index: usize) -> String {
        if index == 0 {
            self.name.clone()
        } else {
            format!("{} ({})", self.name, index + 1)
        }
    }
}

/// A connection to the fake usbmuxd (TCP or a Unix socket).
pub(crate) trait Stream:
    tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send
{
}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}
pub(crate) type Sock = Box<dyn Stream>;

/// Where the fake usbmuxd listens.
pub(crate) enum Listener {
    Tcp(tokio::net::TcpListener),
    #[cfg(unix)]
    Unix(tokio::net::UnixListener),
}

impl Listener {
    pub(crate) async fn accept(&self) -> io::Result<Sock> {
        Ok(match self {
            Listener::Tcp(l) => {
                let (s, _) = l.accept().await?;
                let _ = s.set_nodelay(true);
                Box::new(s)
            }
            #[cfg(unix)]
            Listener::Unix(l) => Box::new(l.accept().await?.0),
        })
    }
}

/// A listener bound before the runtime runs.
enum Bound {
    Tcp(std::net::TcpListener),
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixListener),
}

/// Shared state and counters.
pub(crate) struct State {
    pub cfg: FakePhoneConfig,
    pub afc_bytes_served: AtomicU64,
    pub afc_read_ops: AtomicU64,
    pub max_read_request: AtomicU64,
    /// Most AFC requests one connection had waiting for their replies at once.
    pub max_in_flight: AtomicUsize,
    pub open_handles: AtomicUsize,
    pub unplugged: AtomicBool,
    pub connections: AtomicU64,
    pub material: Arc<pairing::Material>,
    /// The USB link all AFC replies go over.
    pub link: link::Link,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// usbmuxd's pair records, by UDID.
    records: Mutex<HashMap<String, Vec<u8>>>,
    /// What each attached phone remembers.
    phones: Vec<Mutex<phone::Phone>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl State {
    pub(crate) fn records(&self) -> MutexGuard<'_, HashMap<String, Vec<u8>>> {
        lock(&self.records)
    }

    /// Device `index` (callers got it from the attached-device checks).
    pub(crate) fn phone(&self, index: usize) -> MutexGuard<'_, phone::Phone> {
        lock(&self.phones[index.min(self.phones.len().saturating_sub(1))])
    }
}

/// A running fake phone. Dropping it (or [`FakePhone::stop`]) shuts it down and closes every
/// connection.
pub struct FakePhone {
    addr: String,
    state: Arc<State>,
    stop_tx: tokio::sync::watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl FakePhone {
    /// Binds usbmuxd on a free port of 127.0.0.1 and starts serving on a background thread.
    pub fn start(cfg: FakePhoneConfig) -> io::Result<FakePhone> {
        Self::start_on(cfg, 0)
    }

    /// Like [`FakePhone::start`], on a chosen port (0 = any free port).
    pub fn start_on(cfg: FakePhoneConfig, port: u16) -> io::Result<FakePhone> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?.to_string();
        Self::serve(cfg, Bound::Tcp(listener), addr)
    }

    /// Like [`FakePhone::start`], with usbmuxd on a Unix socket at `path` (as the system's
    /// usbmuxd listens); the address is `UNIX:PATH`.
    #[cfg(unix)]
    pub fn start_unix(cfg: FakePhoneConfig, path: &std::path::Path) -> io::Result<FakePhone> {
        let listener = std::os::unix::net::UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        Self::serve(
            cfg,
            Bound::Unix(listener),
            format!("UNIX:{}", path.display()),
        )
    }

    fn serve(cfg: FakePhoneConfig, bound: Bound, addr: String) -> io::Result<FakePhone> {
        let meta = std::fs::metadata(&cfg.library)?;
        if !meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("library {} is not a directory", cfg.library.display()),
            ));
        }
        let material = pairing::material()?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut records = HashMap::new();
        let mut phones = Vec::new();
        for i in 0..cfg.devices.max(1) {
            let udid = cfg.device_udid(i);
            let mut trusted = None;
            if cfg.paired {
                let bag = !cfg.record_without_escrow_bag;
                records.insert(udid.clone(), pairing::pair_record(&material, &udid, bag));
                if !cfg.trust_revoked {
                    trusted = Some(phone::Trusted {
                        host_id: pairing::HOST_ID.into(),
                        root_der: material.record.root_cert_der.clone(),
                        escrow_bag: material.escrow_bag.clone(),
                    });
                }
            }
            phones.push(Mutex::new(phone::Phone::new(trusted)));
        }
        let state = Arc::new(State {
            records: Mutex::new(records),
            phones,
            link: link::Link::new(cfg.latency, cfg.bytes_per_sec),
            cfg,
            afc_bytes_served: AtomicU64::new(0),
            afc_read_ops: AtomicU64::new(0),
            max_read_request: AtomicU64::new(0),
            max_in_flight: AtomicUsize::new(0),
            open_handles: AtomicUsize::new(0),
            unplugged: AtomicBool::new(false),
            connections: AtomicU64::new(0),
            material,
            shutdown: stop_rx,
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let st = state.clone();
        let thread = std::thread::Builder::new()
            .name("fakephone".into())
            .spawn(move || {
                rt.block_on(async move {
                    let listener = match bound {
                        Bound::Tcp(l) => tokio::net::TcpListener::from_std(l).map(Listener::Tcp),
                        #[cfg(unix)]
                        Bound::Unix(l) => tokio::net::UnixListener::from_std(l).map(Listener::Unix),
                    };
                    match listener {
                        Ok(l) => mux::serve(l, st).await,
                        Err(e) => eprintln!("fakephone: cannot listen: {e}"),
                    }
                });
                // Dropping the runtime cancels every connection task.
            })?;
        Ok(FakePhone {
            addr,
            state,
            stop_tx,
            thread: Some(thread),
        })
    }

    /// `127.0.0.1:PORT` (or `UNIX:PATH`), the value for `USBMUXD_SOCKET_ADDRESS`.
    pub fn usbmuxd_address(&self) -> String {
        self.addr.clone()
    }

    /// File bytes served by AFC `FileRefRead` so far.
    pub fn afc_bytes_served(&self) -> u64 {
        self.state.afc_bytes_served.load(Ordering::SeqCst)
    }

    /// AFC file handles currently open (all connections).
    pub fn open_handles(&self) -> usize {
        self.state.open_handles.load(Ordering::SeqCst)
    }

    /// Number of `FileRefRead` requests answered.
    pub fn afc_read_ops(&self) -> u64 {
        self.state.afc_read_ops.load(Ordering::SeqCst)
    }

    /// Largest length asked for in one `FileRefRead`.
    pub fn max_read_request(&self) -> u64 {
        self.state.max_read_request.load(Ordering::SeqCst)
    }

    /// Most AFC requests one connection had sent before the replies to the earlier ones
    /// left the phone (1: a client that waits for every reply).
    pub fn max_requests_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    /// usbmuxd connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Whether the phone "was unplugged" (after `disconnect_after_bytes`).
    pub fn unplugged(&self) -> bool {
        self.state.unplugged.load(Ordering::SeqCst)
    }

    /// Shuts the phone down and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.stop_tx.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for FakePhone {
    fn drop(&mut self) {
        self.shutdown();
    }
}
