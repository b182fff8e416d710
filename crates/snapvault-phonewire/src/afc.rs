//! AFC (Apple File Conduit) packets: a 40-byte little-endian header, a header payload
//! (arguments: paths, handles, lengths) and a payload (data, listings).

use std::collections::HashMap;

use crate::{WireError, le_u64};

pub const HEADER_LEN: usize = 40;
/// `"CFA6LPAA"` read as a little-endian u64.
pub const MAGIC: u64 = 0x4141_504c_3641_4643;
/// Largest header payload accepted (a path plus a few u64 arguments).
pub const MAX_HEADER_PAYLOAD: u64 = 64 * 1024;
/// Largest payload accepted in a reply: the biggest read the client asks for (4 MiB), with a
/// wide margin for directory listings.
pub const MAX_REPLY_PAYLOAD: u64 = 32 << 20;
/// Largest payload accepted in a request: requests to a read-only library carry no bulk data.
pub const MAX_REQUEST_PAYLOAD: u64 = 1 << 20;
/// Largest number of key/value pairs accepted in an info reply.
pub const MAX_KV_ENTRIES: usize = 256;

/// Operation codes.
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

/// Status codes.
pub mod status {
    pub const SUCCESS: u64 = 0;
    pub const UNKNOWN_ERROR: u64 = 1;
    pub const OP_HEADER_INVALID: u64 = 2;
    pub const NO_RESOURCES: u64 = 3;
    pub const READ_ERROR: u64 = 4;
    pub const WRITE_ERROR: u64 = 5;
    pub const UNKNOWN_PACKET_TYPE: u64 = 6;
    pub const INVALID_ARG: u64 = 7;
    pub const OBJECT_NOT_FOUND: u64 = 8;
    pub const OBJECT_IS_DIR: u64 = 9;
    pub const PERM_DENIED: u64 = 10;
    pub const OP_NOT_SUPPORTED: u64 = 15;
    pub const IO_ERROR: u64 = 19;
}

/// `FileRefOpen` mode: read only.
pub const MODE_RDONLY: u64 = 1;

/// The 40-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub entire_len: u64,
    pub this_len: u64,
    pub packet_num: u64,
    pub opcode: u64,
}

impl Header {
    pub fn header_payload_len(&self) -> usize {
        (self.this_len - HEADER_LEN as u64) as usize
    }

    pub fn payload_len(&self) -> usize {
        (self.entire_len - self.this_len) as usize
    }

    /// Bytes after the 40-byte header (header payload + payload).
    pub fn body_len(&self) -> u64 {
        self.entire_len - HEADER_LEN as u64
    }

    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        for (i, v) in [
            MAGIC,
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

/// Decodes and bounds a header; `max_payload` is [`MAX_REPLY_PAYLOAD`] or
/// [`MAX_REQUEST_PAYLOAD`]. Afterwards both lengths are safe to allocate.
pub fn decode_header(b: &[u8], max_payload: u64) -> Result<Header, WireError> {
    let magic = le_u64(b, 0)?;
    if magic != MAGIC {
        return Err(WireError::Magic(magic));
    }
    let h = Header {
        entire_len: le_u64(b, 8)?,
        this_len: le_u64(b, 16)?,
        packet_num: le_u64(b, 24)?,
        opcode: le_u64(b, 32)?,
    };
    let min = HEADER_LEN as u64;
    if h.this_len < min || h.this_len - min > MAX_HEADER_PAYLOAD {
        return Err(WireError::Length {
            what: "AFC header",
            len: h.this_len,
            max: min + MAX_HEADER_PAYLOAD,
        });
    }
    if h.entire_len < h.this_len || h.entire_len - h.this_len > max_payload {
        return Err(WireError::Length {
            what: "AFC packet",
            len: h.entire_len,
            max: h.this_len.saturating_add(max_payload),
        });
    }
    Ok(h)
}

/// Encodes a packet (request or reply).
pub fn encode(packet_num: u64, opcode: u64, header_payload: &[u8], payload: &[u8]) -> Vec<u8> {
    let this_len = (HEADER_LEN + header_payload.len()) as u64;
    let h = Header {
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

// ---------------------------------------------------------------- requests

/// A request, as the phone decodes it and the client encodes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
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

fn path_arg(b: &[u8]) -> Result<String, WireError> {
    // libimobiledevice sends a trailing NUL, idevice does not.
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    std::str::from_utf8(&b[..end])
        .map(str::to_owned)
        .map_err(|_| WireError::Field("AFC path is not UTF-8".into()))
}

impl Request {
    /// Opcode and header payload.
    pub fn encode_args(&self) -> (u64, Vec<u8>) {
        let words = |v: &[u64]| v.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<u8>>();
        match self {
            Request::ReadDir(p) => (op::READ_DIR, p.as_bytes().to_vec()),
            Request::GetFileInfo(p) => (op::GET_FILE_INFO, p.as_bytes().to_vec()),
            Request::GetDevInfo => (op::GET_DEV_INFO, Vec::new()),
            Request::Open { mode, path } => {
                let mut hp = words(&[*mode]);
                hp.extend_from_slice(path.as_bytes());
                (op::FILE_OPEN, hp)
            }
            Request::Read { fd, len } => (op::FILE_READ, words(&[*fd, *len])),
            Request::Seek { fd, whence, offset } => {
                (op::FILE_SEEK, words(&[*fd, *whence, *offset as u64]))
            }
            Request::Tell { fd } => (op::FILE_TELL, words(&[*fd])),
            Request::Close { fd } => (op::FILE_CLOSE, words(&[*fd])),
            Request::Other(code) => (*code, Vec::new()),
        }
    }

    /// The whole request packet.
    pub fn encode(&self, packet_num: u64) -> Vec<u8> {
        let (opcode, hp) = self.encode_args();
        encode(packet_num, opcode, &hp, &[])
    }
}

/// Decodes a request from its header and header payload.
pub fn decode_request(h: &Header, header_payload: &[u8]) -> Result<Request, WireError> {
    let hp = header_payload;
    Ok(match h.opcode {
        op::READ_DIR => Request::ReadDir(path_arg(hp)?),
        op::GET_FILE_INFO => Request::GetFileInfo(path_arg(hp)?),
        op::GET_DEV_INFO => Request::GetDevInfo,
        op::FILE_OPEN => Request::Open {
            mode: le_u64(hp, 0)?,
            path: path_arg(hp.get(8..).unwrap_or_default())?,
        },
        op::FILE_READ => Request::Read {
            fd: le_u64(hp, 0)?,
            len: le_u64(hp, 8)?,
        },
        op::FILE_SEEK => Request::Seek {
            fd: le_u64(hp, 0)?,
            whence: le_u64(hp, 8)?,
            offset: le_u64(hp, 16)? as i64,
        },
        op::FILE_TELL => Request::Tell { fd: le_u64(hp, 0)? },
        op::FILE_CLOSE => Request::Close { fd: le_u64(hp, 0)? },
        other => Request::Other(other),
    })
}

/// Decodes one whole request packet from the front of `b`: header, request, bytes consumed.
pub fn decode_request_packet(b: &[u8]) -> Result<(Header, Request, usize), WireError> {
    let h = decode_header(b, MAX_REQUEST_PAYLOAD)?;
    let this = HEADER_LEN + h.header_payload_len();
    let end = this + h.payload_len();
    if b.len() < end {
        return Err(WireError::Truncated {
            need: end,
            have: b.len(),
        });
    }
    let req = decode_request(&h, &b[HEADER_LEN..this])?;
    Ok((h, req, end))
}

// ---------------------------------------------------------------- replies

/// A decoded reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `Status` with its code (0 = success).
    Status(u64),
    /// `Data`: file bytes, a listing or key/value pairs.
    Data(Vec<u8>),
    /// `FileRefOpenResult`: the handle.
    Opened(u64),
    /// `FileRefTellResult`: the position.
    Position(u64),
}

/// Interprets a reply from its header and body (header payload followed by payload).
pub fn decode_reply(h: &Header, mut body: Vec<u8>) -> Result<Reply, WireError> {
    let hp_len = h.header_payload_len();
    if body.len() != hp_len + h.payload_len() {
        return Err(WireError::Truncated {
            need: hp_len + h.payload_len(),
            have: body.len(),
        });
    }
    let word = |b: &[u8]| le_u64(b, 0);
    Ok(match h.opcode {
        op::STATUS => Reply::Status(word(&body)?),
        // Without a header payload the body is the data: no copy, no new buffer.
        op::DATA if hp_len == 0 => Reply::Data(body),
        op::DATA => Reply::Data(body.split_off(hp_len)),
        op::FILE_OPEN_RES => Reply::Opened(word(&body)?),
        op::FILE_TELL_RES => Reply::Position(word(&body)?),
        other => {
            return Err(WireError::Field(format!(
                "unexpected AFC reply opcode {other:#x}"
            )));
        }
    })
}

/// Encodes a reply packet.
pub fn encode_reply(packet_num: u64, reply: &Reply) -> Vec<u8> {
    match reply {
        Reply::Status(code) => encode(packet_num, op::STATUS, &code.to_le_bytes(), &[]),
        Reply::Data(d) => encode(packet_num, op::DATA, &[], d),
        Reply::Opened(fd) => encode(packet_num, op::FILE_OPEN_RES, &fd.to_le_bytes(), &[]),
        Reply::Position(p) => encode(packet_num, op::FILE_TELL_RES, &p.to_le_bytes(), &[]),
    }
}

/// Splits a string-list payload (`a\0b\0`) into UTF-8 strings; non-UTF-8 entries are
/// `None` so callers can skip (not mangle) names they cannot address.
pub fn split_nul(payload: &[u8]) -> impl Iterator<Item = Option<&str>> {
    payload
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| std::str::from_utf8(s).ok())
}

/// Encodes key/value pairs (`k\0v\0…`), as GetFileInfo and GetDeviceInfo reply.
pub fn encode_kv(pairs: &[(&str, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

/// Parses a key/value payload.
pub fn parse_kv(payload: &[u8]) -> Result<HashMap<String, String>, WireError> {
    let strings: Vec<&[u8]> = payload
        .split(|b| *b == 0)
        .take(2 * MAX_KV_ENTRIES + 2)
        .collect();
    let mut map = HashMap::new();
    for pair in strings.chunks(2) {
        if let [k, v] = pair
            && !k.is_empty()
        {
            let k = String::from_utf8_lossy(k).into_owned();
            let v = String::from_utf8_lossy(v).into_owned();
            map.insert(k, v);
        }
    }
    if map.len() > MAX_KV_ENTRIES {
        return Err(WireError::Length {
            what: "AFC info entries",
            len: map.len() as u64,
            max: MAX_KV_ENTRIES as u64,
        });
    }
    Ok(map)
}

/// File attributes from a `GetFileInfo` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStat {
    pub size: u64,
    /// `S_IFREG`, `S_IFDIR`, `S_IFLNK`, …
    pub kind: String,
    /// Nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    pub birthtime_ns: Option<i64>,
}

/// Interprets a `GetFileInfo` map. `st_size` and `st_ifmt` are required; times are optional
/// (a missing `st_mtime` reads as 0).
pub fn parse_file_stat(map: &HashMap<String, String>) -> Result<FileStat, WireError> {
    let num = |k: &str| -> Result<Option<i64>, WireError> {
        match map.get(k) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| WireError::Field(format!("{k} is not a number: {v:.40}"))),
        }
    };
    let size = map
        .get("st_size")
        .ok_or_else(|| WireError::Field("GetFileInfo reply has no st_size".into()))?
        .trim()
        .parse::<u64>()
        .map_err(|_| WireError::Field("st_size is not a number".into()))?;
    let kind = map
        .get("st_ifmt")
        .ok_or_else(|| WireError::Field("GetFileInfo reply has no st_ifmt".into()))?
        .clone();
    Ok(FileStat {
        size,
        kind,
        mtime_ns: num("st_mtime")?.unwrap_or(0),
        birthtime_ns: num("st_birthtime")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_roundtrip_and_bounds() {
        let open = Request::Open {
            mode: 1,
            path: "/DCIM/100APPLE/IMG_0001.HEIC".into(),
        };
        let pkt = open.encode(7);
        let (h, req, used) = decode_request_packet(&pkt).unwrap();
        assert_eq!((h.packet_num, req, used), (7, open, pkt.len()));
        // A trailing NUL (libimobiledevice) is not part of the path.
        let mut hp = 1u64.to_le_bytes().to_vec();
        hp.extend_from_slice(b"/DCIM\0");
        let (_, req, _) = decode_request_packet(&encode(1, op::FILE_OPEN, &hp, &[])).unwrap();
        assert!(matches!(req, Request::Open { path, .. } if path == "/DCIM"));
        // this_len < 40, entire < this, huge payload, bad magic, truncated: all errors.
        let set = |at: usize, v: u64| {
            let mut b = pkt.clone();
            b[at..at + 8].copy_from_slice(&v.to_le_bytes());
            decode_request_packet(&b)
        };
        assert!(set(16, 3).is_err());
        assert!(set(8, u64::MAX).is_err());
        assert!(set(8, 41).is_err());
        assert!(matches!(set(0, 1), Err(WireError::Magic(_))));
        assert!(decode_request_packet(&pkt[..50]).is_err());
        // A read with a short header payload is an error, not a panic.
        assert!(decode_request_packet(&encode(1, op::FILE_READ, &[1, 2, 3], &[])).is_err());
    }

    #[test]
    fn reply_header_bounds() {
        let mut h = Vec::new();
        for v in [MAGIC, 48, 48, 1, 1] {
            h.extend_from_slice(&u64::to_le_bytes(v));
        }
        assert_eq!(decode_header(&h, MAX_REPLY_PAYLOAD).unwrap().body_len(), 8);
        let set = |i: usize, v: u64| {
            let mut b = h.clone();
            b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
            decode_header(&b, MAX_REPLY_PAYLOAD)
        };
        assert!(set(2, 39).is_err());
        assert!(set(1, 47).is_err());
        assert!(set(1, u64::MAX).is_err());
        assert!(set(2, u64::MAX).is_err());
        assert!(decode_header(&h[..39], MAX_REPLY_PAYLOAD).is_err());
    }

    #[test]
    fn replies() {
        for r in [
            Reply::Status(8),
            Reply::Data(b"abc".to_vec()),
            Reply::Opened(3),
            Reply::Position(9),
        ] {
            let p = encode_reply(4, &r);
            let h = decode_header(&p, MAX_REPLY_PAYLOAD).unwrap();
            assert_eq!(decode_reply(&h, p[HEADER_LEN..].to_vec()).unwrap(), r);
        }
        let p = encode(1, op::STATUS, &[1], &[]);
        let h = decode_header(&p, MAX_REPLY_PAYLOAD).unwrap();
        assert!(decode_reply(&h, p[HEADER_LEN..].to_vec()).is_err());
    }

    #[test]
    fn kv_and_stat() {
        let m = parse_kv(b"st_size\x0012\x00st_ifmt\x00S_IFREG\x00st_mtime\x00-5\x00odd").unwrap();
        let s = parse_file_stat(&m).unwrap();
        assert_eq!((s.size, s.kind.as_str(), s.mtime_ns), (12, "S_IFREG", -5));
        assert_eq!(s.birthtime_ns, None);
        let m = parse_kv(b"st_size\x00x\x00st_ifmt\x00S_IFREG\x00").unwrap();
        assert!(parse_file_stat(&m).is_err());
        assert!(parse_file_stat(&HashMap::new()).is_err());
        let names: Vec<_> = split_nul(b".\0..\0a\0\xff\0").collect();
        assert_eq!(names, vec![Some("."), Some(".."), Some("a"), None]);
        assert_eq!(
            parse_kv(&encode_kv(&[("a", "1".into())])).unwrap()["a"],
            "1"
        );
    }
}
