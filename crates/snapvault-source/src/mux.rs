//! A small usbmuxd client with bounded framing (see [`crate::wire`]). Used instead of
//! idevice's `UsbmuxdConnection`, whose reader subtracts 16 from the wire size unchecked and
//! allocates any u32 length; after `Connect` the raw socket is handed to idevice.

use std::io;
use std::time::Duration;

use idevice::ReadWrite;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::SourceError;
use crate::wire::usbmuxd::{self, MuxDevice};
use crate::{Addr, UsbmuxdAddress};

use usbmuxd::result::{
    BADDEV as RESULT_BADDEV, CONNREFUSED as RESULT_CONNREFUSED, OK as RESULT_OK,
};

pub(crate) type Socket = Box<dyn ReadWrite>;

pub(crate) async fn timed<T>(
    limit: Duration,
    op: &str,
    f: impl Future<Output = Result<T, SourceError>>,
) -> Result<T, SourceError> {
    match tokio::time::timeout(limit, f).await {
        Ok(r) => r,
        Err(_) => Err(SourceError::Timeout { op: op.to_string() }),
    }
}

async fn open(addr: &UsbmuxdAddress) -> Result<Socket, SourceError> {
    let not_running = |e: io::Error| SourceError::UsbmuxdNotRunning {
        addr: addr.to_string(),
        reason: e.to_string(),
    };
    Ok(match &addr.0 {
        Addr::Tcp(a) => {
            let s = tokio::net::TcpStream::connect(a.as_str())
                .await
                .map_err(not_running)?;
            let _ = s.set_nodelay(true);
            Box::new(s)
        }
        #[cfg(unix)]
        Addr::Unix(p) => Box::new(
            tokio::net::UnixStream::connect(p)
                .await
                .map_err(not_running)?,
        ),
        #[cfg(not(unix))]
        Addr::Unix(p) => {
            return Err(not_running(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("Unix sockets are not available here ({})", p.display()),
            )));
        }
    })
}

fn mux_io(e: io::Error) -> SourceError {
    if e.kind() == io::ErrorKind::InvalidData {
        SourceError::Protocol(format!("usbmuxd: {e}"))
    } else {
        SourceError::Protocol(format!("usbmuxd closed the connection: {e}"))
    }
}

async fn request(
    s: &mut Socket,
    dict: plist::Dictionary,
    tag: u32,
) -> Result<plist::Dictionary, SourceError> {
    s.write_all(&usbmuxd::encode_plist(&dict, tag))
        .await
        .map_err(mux_io)?;
    s.flush().await.map_err(mux_io)?;
    loop {
        let mut hdr = [0u8; usbmuxd::HEADER_LEN];
        s.read_exact(&mut hdr).await.map_err(mux_io)?;
        let h = usbmuxd::decode_header(&hdr)
            .map_err(|e| SourceError::Protocol(format!("usbmuxd: {e}")))?;
        // Bounded by decode_usbmuxd_header.
        let mut body = vec![0u8; h.body_len()];
        s.read_exact(&mut body).await.map_err(mux_io)?;
        let d = usbmuxd::decode_body(&body)
            .map_err(|e| SourceError::Protocol(format!("usbmuxd: {e}")))?;
        // usbmuxd echoes our tag; anything else is an unsolicited broadcast: skip it.
        if h.tag == tag {
            return Ok(d);
        }
    }
}

fn msg(kind: &str) -> plist::Dictionary {
    let mut d = plist::Dictionary::new();
    d.insert("MessageType".into(), kind.into());
    d.insert("ClientVersionString".into(), "snapvault".into());
    d.insert("ProgName".into(), "snapvault".into());
    d.insert("kLibUSBMuxVersion".into(), 3u64.into());
    d
}

/// Devices attached over USB (network-paired devices are left out).
pub(crate) async fn list(addr: &UsbmuxdAddress) -> Result<Vec<MuxDevice>, SourceError> {
    let mut s = open(addr).await?;
    let reply = request(&mut s, msg("ListDevices"), 1).await?;
    let mut devs = usbmuxd::parse_device_list(&reply)
        .map_err(|e| SourceError::Protocol(format!("usbmuxd: {e}")))?;
    devs.retain(|d| d.usb);
    devs.sort_by(|a, b| a.udid.cmp(&b.udid));
    devs.dedup_by(|a, b| a.udid == b.udid);
    Ok(devs)
}

/// The host's pair record for `udid`, or `None` if usbmuxd has none (not trusted yet).
pub(crate) async fn pair_record(
    addr: &UsbmuxdAddress,
    udid: &str,
) -> Result<Option<Vec<u8>>, SourceError> {
    let mut s = open(addr).await?;
    let mut m = msg("ReadPairRecord");
    m.insert("PairRecordID".into(), udid.into());
    let reply = request(&mut s, m, 2).await?;
    match reply.get("PairRecordData") {
        Some(plist::Value::Data(d)) => Ok(Some(d.clone())),
        _ => Ok(None),
    }
}

/// Opens a raw pipe to `port` on the device.
pub(crate) async fn connect(
    addr: &UsbmuxdAddress,
    device_id: u32,
    port: u16,
) -> Result<Socket, SourceError> {
    let mut s = open(addr).await?;
    let mut m = msg("Connect");
    m.insert("DeviceID".into(), u64::from(device_id).into());
    // usbmuxd wants the port in network byte order.
    m.insert("PortNumber".into(), u64::from(port.to_be()).into());
    let reply = request(&mut s, m, 3).await?;
    match usbmuxd::result_number(&reply) {
        Some(RESULT_OK) => Ok(s),
        Some(RESULT_BADDEV) => Err(SourceError::Disconnected),
        Some(RESULT_CONNREFUSED) => Err(SourceError::Protocol(format!(
            "the iPhone refused a connection to port {port}"
        ))),
        other => Err(SourceError::Protocol(format!(
            "usbmuxd Connect answered {other:?}"
        ))),
    }
}

/// usbmuxd's system BUID: pair records made on this host carry it as `SystemBUID`.
pub(crate) async fn read_buid(addr: &UsbmuxdAddress) -> Result<String, SourceError> {
    let mut s = open(addr).await?;
    let reply = request(&mut s, msg("ReadBUID"), 4).await?;
    match reply.get("BUID").and_then(|v| v.as_string()) {
        Some(b) if !b.is_empty() => Ok(b.to_string()),
        _ => Err(SourceError::Protocol(
            "usbmuxd did not tell its BUID (ReadBUID)".into(),
        )),
    }
}

/// Hands a new pair record to usbmuxd to keep (`SavePairRecord`).
pub(crate) async fn save_pair_record(
    addr: &UsbmuxdAddress,
    udid: &str,
    device_id: u32,
    record: Vec<u8>,
) -> Result<(), SourceError> {
    let mut s = open(addr).await?;
    let mut m = msg("SavePairRecord");
    m.insert("PairRecordID".into(), udid.into());
    m.insert("PairRecordData".into(), plist::Value::Data(record));
    m.insert("DeviceID".into(), u64::from(device_id).into());
    let reply = request(&mut s, m, 5).await?;
    match usbmuxd::result_number(&reply) {
        Some(RESULT_OK) => Ok(()),
        other => Err(SourceError::Protocol(format!(
            "usbmuxd did not keep the new pairing record (SavePairRecord answered {other:?})"
        ))),
    }
}
