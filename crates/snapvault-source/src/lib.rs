//! Where snapvault's photos come from: an iPhone over USB.
//!
//! The phone is reached the way Finder/iTunes and libimobiledevice reach it: the `usbmuxd`
//! daemon multiplexes TCP-like connections over the USB cable; `lockdownd` on the phone
//! (port 62078) checks the host's pairing record, opens a TLS session and starts services;
//! the `com.apple.afc` service (Apple File Conduit) exposes `/var/mobile/Media`, whose `DCIM`
//! folder holds the camera roll. The protocol work is done by the `idevice` crate (pinned),
//! on a private single-threaded tokio runtime; this crate exposes a **synchronous** API:
//!
//! ```no_run
//! use snapvault_source::{Device, DeviceOptions, UsbmuxdAddress};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let addr = UsbmuxdAddress::from_env()?;
//! let phone = Device::connect(&addr, None, DeviceOptions::default())?;
//! for entry in phone.list_dcim()? {
//!     let mut reader = match phone.open(&entry.path) {
//!         Ok(r) => r,
//!         Err(e) if !e.is_fatal() => { eprintln!("skipped: {e}"); continue; }
//!         Err(e) => return Err(e.into()),
//!     };
//!     std::io::copy(&mut reader, &mut std::io::sink())?;
//! }
//! # Ok(()) }
//! ```
//!
//! A phone that does not trust this computer yet can be paired through its Trust prompt
//! ([`DeviceOptions::pairing`]): the pair record is made like libimobiledevice's and handed
//! to usbmuxd to keep.
//!
//! Robustness rules kept here:
//! - every device operation has a timeout ([`DeviceOptions::timeout`]);
//! - AFC is spoken by our own pipelined client (idevice's `AfcClient` waits for every reply,
//!   and its `FileDescriptor` leaks device handles and panics in debug builds when a close
//!   fails); a [`DeviceReader`] always closes its handle, also on error and drop;
//! - reads are 1–4 MiB AFC requests, several in flight at once on one pipelined connection
//!   (requests are sent without waiting for earlier replies): the next blocks, and the next
//!   files ([`Device::prefetch`]), are fetched while the caller works on the current one;
//! - bytes from usbmuxd and the phone go through bounded decoders ([`wire`], the `snapvault-phonewire` crate) before idevice
//!   or we allocate anything for them.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

mod afc;
mod connect;
mod device;
mod error;
mod guard;
mod mux;
mod pair;
mod reader;
mod runtime;

pub use connect::{list_devices, list_devices_with, list_devices_with_timeout};
pub use device::Device;
pub use error::SourceError;
pub use reader::DeviceReader;
/// The frame codecs, shared with the fake phone.
pub use snapvault_phonewire as wire;

/// Where usbmuxd listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbmuxdAddress(pub(crate) Addr);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Addr {
    /// `host:port`
    Tcp(String),
    Unix(PathBuf),
}

impl UsbmuxdAddress {
    /// The system usbmuxd socket.
    pub const DEFAULT_SOCKET: &'static str = "/var/run/usbmuxd";

    /// `USBMUXD_SOCKET_ADDRESS` (`host:port` or `UNIX:/path`, as libusbmuxd reads it), else
    /// the Unix socket `/var/run/usbmuxd`.
    pub fn from_env() -> Result<Self, SourceError> {
        match std::env::var("USBMUXD_SOCKET_ADDRESS") {
            Ok(v) if !v.trim().is_empty() => Self::parse(&v),
            _ => Ok(Self::default()),
        }
    }

    /// Parses `host:port`, `UNIX:/path` or a bare absolute path.
    pub fn parse(value: &str) -> Result<Self, SourceError> {
        let v = value.trim();
        let bad = || SourceError::InvalidAddress {
            value: value.to_string(),
        };
        if let Some(p) = v.strip_prefix("UNIX:").or_else(|| v.strip_prefix("unix:")) {
            if p.is_empty() {
                return Err(bad());
            }
            return Ok(Self::unix(p));
        }
        if v.starts_with('/') {
            return Ok(Self::unix(v));
        }
        let v = v
            .strip_prefix("TCP:")
            .or_else(|| v.strip_prefix("tcp:"))
            .unwrap_or(v);
        match v.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(Self::tcp(v))
            }
            _ => Err(bad()),
        }
    }

    /// usbmuxd over TCP, e.g. `127.0.0.1:27015`.
    pub fn tcp(host_port: impl Into<String>) -> Self {
        UsbmuxdAddress(Addr::Tcp(host_port.into()))
    }

    /// usbmuxd on a Unix socket.
    pub fn unix(path: impl Into<PathBuf>) -> Self {
        UsbmuxdAddress(Addr::Unix(path.into()))
    }
}

impl Default for UsbmuxdAddress {
    fn default() -> Self {
        if cfg!(unix) {
            Self::unix(Self::DEFAULT_SOCKET)
        } else {
            Self::tcp("127.0.0.1:27015")
        }
    }
}

impl fmt::Display for UsbmuxdAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Addr::Tcp(a) => write!(f, "{a}"),
            Addr::Unix(p) => write!(f, "UNIX:{}", p.display()),
        }
    }
}

/// An attached iPhone.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeviceInfo {
    pub udid: String,
    /// The name set on the phone ("Anna's iPhone"); empty if the phone did not say.
    pub name: String,
    /// Product type, e.g. `iPhone15,2`.
    pub model: String,
    /// iOS version, e.g. `17.5.1`.
    pub ios_version: String,
    /// This computer holds a pairing record the phone accepts (a session could be opened).
    pub paired: bool,
    /// Paired, but the phone is locked with its passcode: it refuses to share its files
    /// until it is unlocked.
    pub locked: bool,
}

/// A regular file on the phone (under `/DCIM`, or a part of `/PhotoData`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeviceEntry {
    /// Device path without leading slash: `DCIM/100APPLE/IMG_0001.HEIC`.
    pub path: String,
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// When the file appeared on the phone (capture, import or iCloud download), if known.
    pub birthtime_ns: Option<i64>,
}

/// Tuning for a [`Device`] session.
#[derive(Debug, Clone)]
pub struct DeviceOptions {
    /// Limit for every single device operation (connect steps, each AFC request).
    pub timeout: Duration,
    /// Bytes asked for in one AFC read; clamped to 64 KiB ..= 4 MiB.
    pub read_block: usize,
    /// Blocks a [`DeviceReader`] fetches ahead of the caller (at least 1); the reads for
    /// them are in flight together. Memory per open reader is about
    /// `(prefetch_blocks + 2) * read_block`.
    pub prefetch_blocks: usize,
    /// Files hinted with [`Device::prefetch`] that are opened ahead of the one being read
    /// (the nearest two are read ahead too; 0: none), so the link is not idle while the
    /// next file is opened. Each holds a handle on the phone.
    pub prefetch_files: usize,
    /// Label sent to lockdownd.
    pub label: String,
    /// Pair with a phone that does not trust this computer (no pair record, or the phone
    /// forgot it) through its Trust prompt. `None`: such a phone is
    /// [`SourceError::NotTrusted`] / [`SourceError::TrustRevoked`].
    pub pairing: Option<Pairing>,
}

/// How to pair with a phone that does not trust this computer yet.
#[derive(Clone)]
pub struct Pairing {
    /// Longest wait for the user to answer the phone's "Trust This Computer?" prompt.
    pub wait: Duration,
    /// Told what happens, so the user can be guided: called once when the prompt is up
    /// and the user must tap Trust, and when the pairing is done.
    pub notify: Arc<dyn Fn(&PairingEvent<'_>) + Send + Sync>,
}

impl Pairing {
    /// Two minutes: time to find the phone, unlock it, tap Trust and enter the passcode.
    pub const DEFAULT_WAIT: Duration = Duration::from_secs(120);

    /// The wait for a user: [`Pairing::DEFAULT_WAIT`]. Only in test builds (feature
    /// `test-faults`, which `cargo build --release` never enables) a whole number of seconds
    /// in `SNAPVAULT_TEST_TRUST_WAIT_SECS` replaces it, so the end-to-end tests of a prompt
    /// nobody answers take seconds, not minutes.
    pub fn default_wait() -> Duration {
        #[cfg(feature = "test-faults")]
        if let Some(secs) = std::env::var("SNAPVAULT_TEST_TRUST_WAIT_SECS")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            return Duration::from_secs(secs);
        }
        Self::DEFAULT_WAIT
    }
}

impl fmt::Debug for Pairing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pairing")
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

/// What happens while pairing.
#[derive(Debug)]
pub enum PairingEvent<'a> {
    /// The phone shows "Trust This Computer?" and waits for its user.
    WaitingForTrust { udid: &'a str, name: &'a str },
    /// The user tapped Trust; usbmuxd keeps the new pair record.
    Paired { udid: &'a str, name: &'a str },
    /// Pairing failed ([`list_devices_with`] only: it goes on listing; [`Device::connect`]
    /// returns the error).
    Failed {
        udid: &'a str,
        name: &'a str,
        error: &'a SourceError,
    },
}

impl DeviceOptions {
    pub const MIN_READ_BLOCK: usize = 64 * 1024;
    pub const MAX_READ_BLOCK: usize = 4 << 20;
}

impl Default for DeviceOptions {
    fn default() -> Self {
        DeviceOptions {
            timeout: Duration::from_secs(30),
            read_block: 4 << 20,
            prefetch_blocks: 2,
            prefetch_files: 4,
            label: "snapvault".into(),
            pairing: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_forms() {
        assert_eq!(
            UsbmuxdAddress::parse("127.0.0.1:27015").unwrap(),
            UsbmuxdAddress::tcp("127.0.0.1:27015")
        );
        assert_eq!(
            UsbmuxdAddress::parse("UNIX:/tmp/mux").unwrap(),
            UsbmuxdAddress::unix("/tmp/mux")
        );
        assert_eq!(
            UsbmuxdAddress::parse("/var/run/usbmuxd").unwrap(),
            UsbmuxdAddress::default()
        );
        assert_eq!(
            UsbmuxdAddress::parse("localhost:1").unwrap().to_string(),
            "localhost:1"
        );
        for bad in ["", "UNIX:", "nohost", "host:notaport", ":27015"] {
            let e = UsbmuxdAddress::parse(bad).unwrap_err();
            assert!(e.to_string().contains("host:port"), "{e}");
        }
    }
}
