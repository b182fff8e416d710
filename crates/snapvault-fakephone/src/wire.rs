//! Frame decoders for the three protocols the fake phone serves, written for untrusted input:
//! every length read from the wire is bounded before anything is allocated, and malformed
//! input is an error, never a panic. Each has a fuzz target (`fuzz/fuzz_targets/*`).
//!
//! - usbmuxd: 16-byte little-endian header `{size incl. header, version, message, tag}` + plist.
//! - lockdownd: 4-byte **big-endian** length + plist (XML or binary).
//! - AFC: 40-byte little-endian header `{magic, entire_len, this_len, packet_num, opcode}`,
//!   then `this_len - 40` bytes of header payload, then `entire_len - this_len` bytes of payload.

use idevice::usbmuxd::{RawPacket, server::UsbmuxdServerRequest};

/// Largest usbmuxd plist body accepted (requests are a few hundred bytes; pair records ~4 KiB).
pub const MAX_USBMUXD_BODY: usize = 1 << 20;
/// Largest lockdown plist frame accepted.
pub const MAX_LOCKDOWN_FRAME: usize = 1 << 20;
/// Largest AFC header payload accepted (a path plus a few u64 arguments).
pub const MAX_AFC_HEADER_PAYLOAD: u64 = 64 * 1024;
/// Largest AFC trailing payload accepted in a request (we serve a read-only library, so
/// requests never carry bulk data; keep a margin for tolerance).
pub const MAX_AFC_REQUEST_PAYLOAD: u64 = 1 << 20;

/// `"CFA6LPAA"` read as a little-endian u64.
pub const AFC_MAGIC: u64 = 0x4141_504c_3641_4643;
pub const AFC_HEADER_LEN: usize = 40;
pub const USBMUXD_HEADER_LEN: usize = 16;

/// A malformed frame.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("frame truncated: need {need} bytes, have {have}")]
    Truncated { need: usize, have: usize },
    #[error("{what} length {len} out of bounds (max {max})")]
    Length {
        what: &'static str,
        len: u64,
        max: u64,
    },
    #[error("bad AFC magic {0:#018x}")]
    Magic(u64),
    #[error("unsupported usbmuxd message type {0} (only 8 = plist)")]
    MessageType(u32),
    #[error("plist: {0}")]
    Plist(String),
    #[error("usbmuxd request: {0}")]
    Request(String),
    #[error("AFC request: {0}")]
    Afc(String),
}

fn le_u32(b: &[u8], at: usize) -> Result<u32, WireError> {
    let s = b.get(at..at + 4).ok_or(WireError::Truncated {
        need: at + 4,
        have: b.len(),
    })?;
    let mut a = [0u8; 4];
    a.copy_from_slice(s);
    Ok(u32::from_le_bytes(a))
}

fn le_u64(b: &[u8], at: usize) -> Result<u64, WireError> {
    let s = b.get(at..at + 8).ok_or(WireError::Truncated {
        need: at + 8,
        have: b.len(),
    })?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Ok(u64::from_le_bytes(a))
}

// ---------------------------------------------------------------- usbmuxd

/// The 16-byte usbmuxd header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsbmuxdHeader {
    pub size: u32,
    pub version: u32,
    pub message: u32,
    pub tag: u32,
}

impl UsbmuxdHeader {
    /// Bytes of plist that follow the header.
    pub fn body_len(&self) -> usize {
        (self.size as usize).saturating_sub(USBMUXD_HEADER_LEN)
    }
}

/// Decodes and bounds a usbmuxd header (first 16 bytes of `b`).
pub fn decode_usbmuxd_header(b: &[u8]) -> Result<UsbmuxdHeader, WireError> {
    let h = UsbmuxdHeader {
        size: le_u32(b, 0)?,
        version: le_u32(b, 4)?,
        message: le_u32(b, 8)?,
        tag: le_u32(b, 12)?,
    };
    let size = h.size as usize;
    if !(USBMUXD_HEADER_LEN..=USBMUXD_HEADER_LEN + MAX_USBMUXD_BODY).contains(&size) {
        return Err(WireError::Length {
            what: "usbmuxd frame",
            len: u64::from(h.size),
            max: (USBMUXD_HEADER_LEN + MAX_USBMUXD_BODY) as u64,
        });
    }
    if h.message != 8 {
        return Err(WireError::MessageType(h.message));
    }
    Ok(h)
}

/// Parses the plist body of a usbmuxd frame into idevice's server-side request type.
pub fn decode_usbmuxd_body(
    header: &UsbmuxdHeader,
    body: &[u8],
) -> Result<UsbmuxdServerRequest, WireError> {
    if body.len() != header.body_len() {
        return Err(WireError::Truncated {
            need: header.body_len(),
            have: body.len(),
        });
    }
    let dict: plist::Dictionary =
        plist::from_bytes(body).map_err(|e| WireError::Plist(e.to_string()))?;
    let packet = RawPacket {
        size: header.size,
        version: header.version,
        message: header.message,
        tag: header.tag,
        plist: dict,
    };
    UsbmuxdServerRequest::decode(&packet).map_err(|e| WireError::Request(e.to_string()))
}

/// Decodes one whole usbmuxd request frame from the front of `b`; returns the request, its tag
/// and the number of bytes consumed.
pub fn decode_usbmuxd_frame(b: &[u8]) -> Result<(UsbmuxdServerRequest, u32, usize), WireError> {
    let h = decode_usbmuxd_header(b)?;
    let end = h.size as usize;
    let body = b.get(USBMUXD_HEADER_LEN..end).ok_or(WireError::Truncated {
        need: end,
        have: b.len(),
    })?;
    Ok((decode_usbmuxd_body(&h, body)?, h.tag, end))
}

// ---------------------------------------------------------------- lockdown

/// Bounds a lockdown frame length prefix (big-endian).
pub fn decode_lockdown_len(prefix: [u8; 4]) -> Result<usize, WireError> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len > MAX_LOCKDOWN_FRAME {
        return Err(WireError::Length {
            what: "lockdown frame",
            len: len as u64,
            max: MAX_LOCKDOWN_FRAME as u64,
        });
    }
    Ok(len)
}

/// Parses a lockdown plist body (must be a dictionary).
pub fn decode_lockdown_body(body: &[u8]) -> Result<plist::Dictionary, WireError> {
    plist::from_bytes(body).map_err(|e| WireError::Plist(e.to_string()))
}

/// Decodes one whole lockdown frame from the front of `b`; returns the dictionary and the
/// number of bytes consumed.
pub fn decode_lockdown_frame(b: &[u8]) -> Result<(plist::Dictionary, usize), WireError> {
    let prefix: [u8; 4] =
        b.get(..4)
            .and_then(|s| s.try_into().ok())
            .ok_or(WireError::Truncated {
                need: 4,
                have: b.len(),
            })?;
    let len = decode_lockdown_len(prefix)?;
    let body = b.get(4..4 + len).ok_or(WireError::Truncated {
        need: 4 + len,
        have: b.len(),
    })?;
    Ok((decode_lockdown_body(body)?, 4 + len))
}

/// Encodes a lockdown frame (XML plist, like lockdownd).
pub fn encode_lockdown_frame(dict: &plist::Dictionary) -> Vec<u8> {
    let mut body = Vec::new();
    // Serialising an in-memory dictionary to a Vec cannot fail.
    if plist::to_writer_xml(&mut body, dict).is_err() {
        body.clear();
    }
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

// ---------------------------------------------------------------- AFC

/// AFC operation codes used by the emulator.
pub mod op {
    pub const STATUS: u64 = 0x01;
    pub const DATA: u64 = 0x02;
    pub const READ_DIR: u64 = 0x03;
    pub const GET_FILE_INFO: u64 = 0x0A;
    pub const GET_DEV_INFO: u64 = 0x0B;
    pub const FILE_OPEN: u64 = 0x0D;
    pub const FILE_OPEN_RES: u64 = 0x0E;
    pub const FILE_READ: u64 = 0x0F;
    pub const FILE_SEEK: u64 = 0x11;
    pub const FILE_TELL: u64 = 0x12;
    pub const FILE_TELL_RES: u64 = 0x13;
    pub const FILE_CLOSE: u64 = 0x14;
}

/// AFC status codes used by the emulator.
pub mod status {
    pub const SUCCESS: u64 = 0;
    pub const UNKNOWN_ERROR: u64 = 1;
    pub const OP_HEADER_INVALID: u64 = 2;
    pub const NO_RESOURCES: u64 = 3;
    pub const READ_ERROR: u64 = 4;
    pub const INVALID_ARG: u64 = 7;
    pub const OBJECT_NOT_FOUND: u64 = 8;
    pub const OBJECT_IS_DIR: u64 = 9;
    pub const PERM_DENIED: u64 = 10;
    pub const OP_NOT_SUPPORTED: u64 = 15;
}

/// The 40-byte AFC packet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfcHeader {
    pub entire_len: u64,
    pub this_len: u64,
    pub packet_num: u64,
    pub opcode: u64,
}

impl AfcHeader {
    pub fn header_payload_len(&self) -> usize {
        (self.this_len - AFC_HEADER_LEN as u64) as usize
    }
    pub fn payload_len(&self) -> usize {
        (self.entire_len - self.this_len) as usize
    }
    pub fn encode(&self) -> [u8; AFC_HEADER_LEN] {
        let mut out = [0u8; AFC_HEADER_LEN];
        for (i, v) in [
            AFC_MAGIC,
            self.entire_len,
            self.this_len,
            self.packet_num,
            self.opcode,
        ]
        .into_iter()
        .enumerate()
        {
            out[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        out
    }
}

/// Decodes and bounds an AFC request header: after this, `header_payload_len()` and
/// `payload_len()` are safe to allocate.
pub fn decode_afc_header(b: &[u8]) -> Result<AfcHeader, WireError> {
    let magic = le_u64(b, 0)?;
    if magic != AFC_MAGIC {
        return Err(WireError::Magic(magic));
    }
    let h = AfcHeader {
        entire_len: le_u64(b, 8)?,
        this_len: le_u64(b, 16)?,
        packet_num: le_u64(b, 24)?,
        opcode: le_u64(b, 32)?,
    };
    let min = AFC_HEADER_LEN as u64;
    if h.this_len < min || h.this_len - min > MAX_AFC_HEADER_PAYLOAD {
        return Err(WireError::Length {
            what: "AFC header",
            len: h.this_len,
            max: min + MAX_AFC_HEADER_PAYLOAD,
        });
    }
    if h.entire_len < h.this_len || h.entire_len - h.this_len > MAX_AFC_REQUEST_PAYLOAD {
        return Err(WireError::Length {
            what: "AFC packet",
            len: h.entire_len,
            max: h.this_len.saturating_add(MAX_AFC_REQUEST_PAYLOAD),
        });
    }
    Ok(h)
}

/// A decoded AFC request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfcRequest {
    ReadDir(String),
    GetFileInfo(String),
    GetDevInfo,
    Open { mode: u64, path: String },
    Read { fd: u64, len: u64 },
    Seek { fd: u64, whence: u64, offset: i64 },
    Tell { fd: u64 },
    Close { fd: u64 },
    Other(u64),
}

fn afc_path(b: &[u8]) -> Result<String, WireError> {
    // libimobiledevice sends a trailing NUL, idevice does not.
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    std::str::from_utf8(&b[..end])
        .map(str::to_owned)
        .map_err(|_| WireError::Afc("path is not UTF-8".into()))
}

/// Decodes a request from its header and header payload.
pub fn decode_afc_request(h: &AfcHeader, header_payload: &[u8]) -> Result<AfcRequest, WireError> {
    let hp = header_payload;
    Ok(match h.opcode {
        op::READ_DIR => AfcRequest::ReadDir(afc_path(hp)?),
        op::GET_FILE_INFO => AfcRequest::GetFileInfo(afc_path(hp)?),
        op::GET_DEV_INFO => AfcRequest::GetDevInfo,
        op::FILE_OPEN => AfcRequest::Open {
            mode: le_u64(hp, 0)?,
            path: afc_path(hp.get(8..).unwrap_or_default())?,
        },
        op::FILE_READ => AfcRequest::Read {
            fd: le_u64(hp, 0)?,
            len: le_u64(hp, 8)?,
        },
        op::FILE_SEEK => AfcRequest::Seek {
            fd: le_u64(hp, 0)?,
            whence: le_u64(hp, 8)?,
            offset: le_u64(hp, 16)? as i64,
        },
        op::FILE_TELL => AfcRequest::Tell { fd: le_u64(hp, 0)? },
        op::FILE_CLOSE => AfcRequest::Close { fd: le_u64(hp, 0)? },
        other => AfcRequest::Other(other),
    })
}

/// Decodes one whole AFC request packet from the front of `b` (header, header payload,
/// payload); returns the header, the request and the number of bytes consumed.
pub fn decode_afc_packet(b: &[u8]) -> Result<(AfcHeader, AfcRequest, usize), WireError> {
    let h = decode_afc_header(b)?;
    let this = AFC_HEADER_LEN + h.header_payload_len();
    let end = this + h.payload_len();
    if b.len() < end {
        return Err(WireError::Truncated {
            need: end,
            have: b.len(),
        });
    }
    let req = decode_afc_request(&h, &b[AFC_HEADER_LEN..this])?;
    Ok((h, req, end))
}

/// Encodes a reply packet.
pub fn encode_afc(packet_num: u64, opcode: u64, header_payload: &[u8], payload: &[u8]) -> Vec<u8> {
    let this_len = (AFC_HEADER_LEN + header_payload.len()) as u64;
    let h = AfcHeader {
        entire_len: this_len + payload.len() as u64,
        this_len,
        packet_num,
        opcode,
    };
    let mut out = Vec::with_capacity(h.entire_len as usize);
    out.extend_from_slice(&h.encode());
    out.extend_from_slice(header_payload);
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn afc_roundtrip_and_bounds() {
        let mut hp = 1u64.to_le_bytes().to_vec();
        hp.extend_from_slice(b"/DCIM/100APPLE/IMG_0001.HEIC\0");
        let pkt = encode_afc(7, op::FILE_OPEN, &hp, &[]);
        let (h, req, used) = decode_afc_packet(&pkt).unwrap();
        assert_eq!(used, pkt.len());
        assert_eq!(h.packet_num, 7);
        assert_eq!(
            req,
            AfcRequest::Open {
                mode: 1,
                path: "/DCIM/100APPLE/IMG_0001.HEIC".into()
            }
        );
        // this_len < 40, entire < this, huge payload, bad magic, truncated: all errors.
        let mut bad = pkt.clone();
        bad[16..24].copy_from_slice(&3u64.to_le_bytes());
        assert!(decode_afc_packet(&bad).is_err());
        let mut bad = pkt.clone();
        bad[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode_afc_packet(&bad).is_err());
        let mut bad = pkt.clone();
        bad[8..16].copy_from_slice(&41u64.to_le_bytes());
        assert!(decode_afc_packet(&bad).is_err());
        bad = pkt.clone();
        bad[0] ^= 1;
        assert!(matches!(decode_afc_packet(&bad), Err(WireError::Magic(_))));
        assert!(decode_afc_packet(&pkt[..50]).is_err());
        // A read with a short header payload is an error, not a panic.
        let pkt = encode_afc(1, op::FILE_READ, &[1, 2, 3], &[]);
        assert!(decode_afc_packet(&pkt).is_err());
    }

    #[test]
    fn usbmuxd_bounds() {
        let mut f = Vec::new();
        f.extend_from_slice(&5u32.to_le_bytes());
        f.extend_from_slice(&[1, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0]);
        f.extend_from_slice(&[0u8; 16]);
        assert!(decode_usbmuxd_frame(&f).is_err());
        f[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_usbmuxd_frame(&f).is_err());
        f[0..4].copy_from_slice(&32u32.to_le_bytes());
        assert!(matches!(decode_usbmuxd_frame(&f), Err(WireError::Plist(_))));
        let body = b"<?xml version=\"1.0\"?><plist version=\"1.0\"><dict><key>MessageType</key><string>ListDevices</string></dict></plist>";
        let mut f = Vec::new();
        f.extend_from_slice(&((16 + body.len()) as u32).to_le_bytes());
        f.extend_from_slice(&[1, 0, 0, 0, 8, 0, 0, 0, 9, 0, 0, 0]);
        f.extend_from_slice(body);
        let (req, tag, used) = decode_usbmuxd_frame(&f).unwrap();
        assert!(matches!(req, UsbmuxdServerRequest::ListDevices));
        assert_eq!((tag, used), (9, f.len()));
    }

    #[test]
    fn lockdown_bounds() {
        let mut d = plist::Dictionary::new();
        d.insert("Request".into(), "QueryType".into());
        let f = encode_lockdown_frame(&d);
        let (back, used) = decode_lockdown_frame(&f).unwrap();
        assert_eq!(used, f.len());
        assert_eq!(back, d);
        assert!(decode_lockdown_frame(&[0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode_lockdown_frame(&[0, 0, 0, 9, 1]).is_err());
        assert!(decode_lockdown_frame(&[0, 0, 0, 1, b'x']).is_err());
    }
}
