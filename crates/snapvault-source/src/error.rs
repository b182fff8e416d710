use std::io;

/// Everything that can go wrong talking to an iPhone. Each message says what to do.
///
/// [`SourceError::Unreadable`] concerns one file and leaves the session usable: skip the file,
/// count it, go on. Everything else ends the session ([`SourceError::is_fatal`]).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(
        "usbmuxd is not running at {addr} ({reason}); on Linux install and start it \
         (`sudo systemctl start usbmuxd`, or plug the iPhone in again so udev starts it), \
         on macOS it is part of the system; set USBMUXD_SOCKET_ADDRESS if it listens elsewhere"
    )]
    UsbmuxdNotRunning { addr: String, reason: String },

    #[error(
        "USBMUXD_SOCKET_ADDRESS={value:?} is not valid: use host:port (e.g. 127.0.0.1:27015) \
         or UNIX:/path/to/socket"
    )]
    InvalidAddress { value: String },

    #[error(
        "no iPhone found: connect it with a USB cable (not just a charger cable), unlock it, \
         and run again"
    )]
    NoDevice,

    #[error(
        "several iPhones are connected ({}), and which one to use was not said",
        shown(&udids.join(", "))
    )]
    SeveralDevices { udids: Vec<String> },

    #[error(
        "no connected iPhone has UDID {}: check the cable and the UDID",
        shown(udid)
    )]
    UnknownDevice { udid: String },

    #[error(
        "this computer is not trusted by the iPhone: unlock your iPhone and tap Trust, \
         then run again"
    )]
    NotTrusted,

    #[error(
        "the iPhone no longer trusts this computer (its trust settings were reset): unplug it, \
         plug it in again, unlock it and tap Trust; if no prompt appears, remove this \
         computer's old pairing record (`idevicepair unpair`) and try again"
    )]
    TrustRevoked,

    #[error("the iPhone is locked with its passcode: unlock it, keep it unlocked, and run again")]
    Locked,

    #[error(
        "“Don't Trust” was tapped on the iPhone, so it does not share its files with this \
         computer: to be asked again, unplug the iPhone and plug it in again, unlock it, run \
         again and tap “Trust”"
    )]
    TrustDenied,

    #[error(
        "nobody tapped “Trust” on the iPhone {} within {secs} s: unlock the iPhone, run again \
         and tap “Trust” when it asks “Trust This Computer?” (if it does not ask, unplug it \
         and plug it in again)",
        phone_label(name, udid)
    )]
    TrustTimeout {
        secs: u64,
        /// As the phone calls itself (untrusted: shown escaped).
        name: String,
        udid: String,
    },

    #[error(
        "the iPhone is locked, so it cannot ask whether to trust this computer: unlock it \
         with its passcode, run again and tap “Trust”"
    )]
    LockedForPairing,

    #[error(
        "cannot read {} on the iPhone ({}); if it is kept only in iCloud, turn on \
         Settings > Photos > Download and Keep Originals, or open it once on the phone; \
         the file was skipped",
        shown(path),
        shown(reason)
    )]
    Unreadable {
        /// As the phone named it (untrusted: shown escaped).
        path: String,
        reason: String,
    },

    #[error(
        "the iPhone disconnected: check the cable, keep the phone unlocked, and run again \
         (what was already read is kept)"
    )]
    Disconnected,

    #[error(
        "the iPhone stopped answering ({} timed out): unlock it, check the cable, and run \
         again",
        shown(op)
    )]
    Timeout { op: String },

    #[error(
        "unexpected answer from the iPhone or usbmuxd: {}; unplug the iPhone, plug it in \
         again and run again",
        shown(.0)
    )]
    Protocol(String),

    #[error("I/O error talking to the iPhone: {0}")]
    Io(#[from] io::Error),
}

/// A phone as named in a message: `“NAME” (UDID)`, or the UDID alone. Both come from the
/// device, so they are [`shown`] escaped.
pub(crate) fn phone_label(name: &str, udid: &str) -> String {
    if name.is_empty() {
        shown(udid)
    } else {
        format!("“{}” ({})", shown(name), shown(udid))
    }
}

/// Text from the device (a name, a UDID, a file path, an error it sent) as it appears in
/// a message: control characters (and the Unicode controls that reorder text) escaped —
/// the rule of snapvault-repo's `text::escaped`, which this crate does not depend on — so
/// a crafted name can neither forge a line of output nor drive the terminal. Every
/// message of [`SourceError`] shows such text through here; the fields keep it exact.
fn shown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

impl SourceError {
    /// `false` only for errors that concern a single file ([`SourceError::Unreadable`]): the
    /// session goes on. `true` means stop using this [`crate::Device`].
    pub fn is_fatal(&self) -> bool {
        !matches!(self, SourceError::Unreadable { .. })
    }

    /// The `SourceError` inside an I/O error returned by [`crate::DeviceReader`]'s `Read`.
    pub fn from_io(e: &io::Error) -> Option<&SourceError> {
        e.get_ref().and_then(|i| i.downcast_ref::<SourceError>())
    }

    fn io_kind(&self) -> io::ErrorKind {
        match self {
            SourceError::Timeout { .. } => io::ErrorKind::TimedOut,
            SourceError::Disconnected => io::ErrorKind::ConnectionAborted,
            SourceError::Protocol(_) => io::ErrorKind::InvalidData,
            SourceError::Io(e) => e.kind(),
            _ => io::ErrorKind::Other,
        }
    }
}

impl From<SourceError> for io::Error {
    /// Wraps the error (recover it with [`SourceError::from_io`]).
    fn from(e: SourceError) -> io::Error {
        io::Error::new(e.io_kind(), e)
    }
}

/// The part of a fatal error we remember to answer later calls on a dead session.
#[derive(Debug, Clone)]
pub(crate) enum Fatal {
    Disconnected,
    Timeout(String),
    Protocol(String),
}

impl Fatal {
    pub(crate) fn to_error(&self) -> SourceError {
        match self {
            Fatal::Disconnected => SourceError::Disconnected,
            Fatal::Timeout(op) => SourceError::Timeout { op: op.clone() },
            Fatal::Protocol(m) => SourceError::Protocol(m.clone()),
        }
    }

    pub(crate) fn of(e: &SourceError) -> Fatal {
        match e {
            SourceError::Timeout { op } => Fatal::Timeout(op.clone()),
            SourceError::Protocol(m) => Fatal::Protocol(m.clone()),
            _ => Fatal::Disconnected,
        }
    }
}

fn is_disconnect(kind: io::ErrorKind) -> bool {
    matches!(
        kind,
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::NotConnected
            | io::ErrorKind::WriteZero
    )
}

/// Maps an I/O error on a device connection.
pub(crate) fn from_device_io(e: io::Error) -> SourceError {
    if e.kind() == io::ErrorKind::InvalidData {
        SourceError::Protocol(e.to_string())
    } else if is_disconnect(e.kind()) {
        SourceError::Disconnected
    } else {
        SourceError::Io(e)
    }
}

/// Maps an idevice error from lockdown or AFC.
pub(crate) fn from_idevice(e: idevice::IdeviceError) -> SourceError {
    use idevice::IdeviceError as E;
    match e {
        E::Socket(io) => from_device_io(io),
        E::InvalidHostID => SourceError::TrustRevoked,
        E::DeviceLocked => SourceError::Locked,
        E::NoEstablishedConnection => SourceError::Disconnected,
        E::UnknownErrorType(s) if s.starts_with("PasswordProtected") => SourceError::Locked,
        E::UnknownErrorType(s) if s.starts_with("InvalidHostID") => SourceError::TrustRevoked,
        other => SourceError::Protocol(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text the phone sent (a file name, a UDID, a path in an error) is shown escaped in
    /// every message; the fields keep it exact.
    #[test]
    fn text_from_the_phone_is_shown_escaped_in_every_message() {
        let evil = "IMG\u{1b}[31m\r\nsnapshot 00000000 saved\u{202e}";
        let shown = "IMG\\u{1b}[31m\\r\\nsnapshot 00000000 saved\\u{202e}";
        let errors = [
            SourceError::Unreadable {
                path: evil.into(),
                reason: evil.into(),
            },
            SourceError::Protocol(format!("attributes of {evil}")),
            SourceError::Timeout {
                op: format!("reading {evil}"),
            },
            SourceError::SeveralDevices {
                udids: vec![evil.into(), "b".into()],
            },
            SourceError::UnknownDevice { udid: evil.into() },
            SourceError::TrustTimeout {
                secs: 1,
                name: evil.into(),
                udid: evil.into(),
            },
        ];
        for e in errors {
            let m = e.to_string();
            assert!(
                !m.contains('\u{1b}') && !m.contains('\r') && !m.contains('\n'),
                "{e:?} shown raw: {m}"
            );
            assert!(m.contains(shown), "{e:?}: {m}");
        }
        let e = SourceError::Unreadable {
            path: evil.into(),
            reason: String::new(),
        };
        assert!(matches!(e, SourceError::Unreadable { path, .. } if path == evil));
    }
}
