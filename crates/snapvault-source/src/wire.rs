//! Decoders for bytes that come from outside the process (usbmuxd, the phone's lockdownd and
//! afcd), written for hostile input: every length read from the wire is bounded before any
//! allocation, malformed input is an error, never a panic. Fuzzed by
//! `fuzz/fuzz_targets/{usbmuxd,lockdown,afc}_*.rs`.

use std::collections::HashMap;

/// Largest usbmuxd reply body accepted (device lists and pair records are a few KiB).
pub const MAX_USBMUXD_BODY: usize = 1 << 20;
/// Largest lockdown plaintext frame accepted.
pub const MAX_LOCKDOWN_FRAME: usize = 1 << 20;
/// Largest AFC header payload accepted (replies carry at most a u64 or a path).
pub const MAX_AFC_HEADER_PAYLOAD: u64 = 64 * 1024;
/// Largest AFC payload accepted in one reply: the biggest read we ask for (4 MiB) with a wide
/// margin for directory listings.
pub const MAX_AFC_PAYLOAD: u64 = 32 << 20;
/// Largest number of key/value strings accepted in an AFC info reply.
pub const MAX_KV_ENTRIES: usize = 256;

pub const USBMUXD_HEADER_LEN: usize = 16;
pub const AFC_HEADER_LEN: usize = 40;
/// `"CFA6LPAA"` as a little-endian u64.
pub const AFC_MAGIC: u64 = 0x4141_504c_3641_4643;

/// Malformed bytes from usbmuxd or the phone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
    #[error("plist: {0}")]
    Plist(String),
    #[error("{0}")]
    Field(String),
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

/// The 16-byte little-endian usbmuxd header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsbmuxdHeader {
    pub size: u32,
    pub version: u32,
    pub message: u32,
    pub tag: u32,
}

impl UsbmuxdHeader {
    pub fn body_len(&self) -> usize {
        (self.size as usize).saturating_sub(USBMUXD_HEADER_LEN)
    }
}

/// Decodes and bounds a usbmuxd header: afterwards `body_len()` is safe to allocate.
pub fn decode_usbmuxd_header(b: &[u8]) -> Result<UsbmuxdHeader, WireError> {
    let h = UsbmuxdHeader {
        size: le_u32(b, 0)?,
        version: le_u32(b, 4)?,
        message: le_u32(b, 8)?,
        tag: le_u32(b, 12)?,
    };
    let max = USBMUXD_HEADER_LEN + MAX_USBMUXD_BODY;
    if (h.size as usize) < USBMUXD_HEADER_LEN || h.size as usize > max {
        return Err(WireError::Length {
            what: "usbmuxd frame",
            len: u64::from(h.size),
            max: max as u64,
        });
    }
    Ok(h)
}

/// Parses a usbmuxd plist body (XML or binary) into a dictionary.
pub fn decode_usbmuxd_body(body: &[u8]) -> Result<plist::Dictionary, WireError> {
    plist::from_bytes(body).map_err(|e| WireError::Plist(e.to_string()))
}

/// Decodes a whole usbmuxd frame from the front of `b`: header, dictionary, bytes consumed.
pub fn decode_usbmuxd_frame(
    b: &[u8],
) -> Result<(UsbmuxdHeader, plist::Dictionary, usize), WireError> {
    let h = decode_usbmuxd_header(b)?;
    let end = h.size as usize;
    let body = b.get(USBMUXD_HEADER_LEN..end).ok_or(WireError::Truncated {
        need: end,
        have: b.len(),
    })?;
    Ok((h, decode_usbmuxd_body(body)?, end))
}

/// Encodes a usbmuxd request (XML plist, version 1, message 8).
pub fn encode_usbmuxd_request(dict: &plist::Dictionary, tag: u32) -> Vec<u8> {
    let mut body = Vec::new();
    // Writing an in-memory dictionary into a Vec cannot fail.
    if plist::to_writer_xml(&mut body, dict).is_err() {
        body.clear();
    }
    let mut out = Vec::with_capacity(USBMUXD_HEADER_LEN + body.len());
    out.extend_from_slice(&((USBMUXD_HEADER_LEN + body.len()) as u32).to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&8u32.to_le_bytes());
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// A device as usbmuxd lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MuxDevice {
    pub device_id: u32,
    pub udid: String,
    pub usb: bool,
}

/// Largest number of devices accepted in a `ListDevices` reply.
pub const MAX_DEVICES: usize = 256;

/// Parses a `ListDevices` reply. Entries without a UDID or id are skipped.
pub fn parse_device_list(d: &plist::Dictionary) -> Result<Vec<MuxDevice>, WireError> {
    let list = d
        .get("DeviceList")
        .and_then(|v| v.as_array())
        .ok_or_else(|| WireError::Field("ListDevices reply has no DeviceList".into()))?;
    if list.len() > MAX_DEVICES {
        return Err(WireError::Length {
            what: "DeviceList",
            len: list.len() as u64,
            max: MAX_DEVICES as u64,
        });
    }
    let mut out = Vec::new();
    for entry in list {
        let Some(e) = entry.as_dictionary() else {
            continue;
        };
        let props = e.get("Properties").and_then(|p| p.as_dictionary());
        let id = e
            .get("DeviceID")
            .or_else(|| props.and_then(|p| p.get("DeviceID")))
            .and_then(|v| v.as_unsigned_integer())
            .and_then(|v| u32::try_from(v).ok());
        let udid = props
            .and_then(|p| p.get("SerialNumber"))
            .and_then(|v| v.as_string());
        let usb = props
            .and_then(|p| p.get("ConnectionType"))
            .and_then(|v| v.as_string())
            .is_none_or(|t| t == "USB");
        if let (Some(device_id), Some(udid)) = (id, udid)
            && !udid.is_empty()
        {
            out.push(MuxDevice {
                device_id,
                udid: udid.to_string(),
                usb,
            });
        }
    }
    Ok(out)
}

/// The `Number` of a `Result` reply, if it is one.
pub fn result_number(d: &plist::Dictionary) -> Option<u64> {
    d.get("Number").and_then(|v| v.as_unsigned_integer())
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

/// Decodes a whole lockdown frame from the front of `b`: dictionary and bytes consumed.
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
    let d = plist::from_bytes(body).map_err(|e| WireError::Plist(e.to_string()))?;
    Ok((d, 4 + len))
}

// ---------------------------------------------------------------- AFC

/// The 40-byte AFC packet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfcHeader {
    pub entire_len: u64,
    pub this_len: u64,
    pub packet_num: u64,
    pub opcode: u64,
}

impl AfcHeader {
    /// Bytes after the 40-byte header (header payload + payload).
    pub fn body_len(&self) -> u64 {
        self.entire_len - AFC_HEADER_LEN as u64
    }
}

/// Decodes and bounds an AFC reply header: afterwards `body_len()` is safe to allocate.
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
    if h.entire_len < h.this_len || h.entire_len - h.this_len > MAX_AFC_PAYLOAD {
        return Err(WireError::Length {
            what: "AFC packet",
            len: h.entire_len,
            max: h.this_len.saturating_add(MAX_AFC_PAYLOAD),
        });
    }
    Ok(h)
}

/// Splits an AFC string-list payload (`a\0b\0`) into UTF-8 strings; non-UTF-8 entries are
/// returned as `None` so callers can skip (not mangle) names they cannot address.
pub fn split_nul(payload: &[u8]) -> impl Iterator<Item = Option<&str>> {
    payload
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| std::str::from_utf8(s).ok())
}

/// Parses an AFC key/value payload (GetFileInfo, GetDeviceInfo).
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

/// File attributes from an AFC `GetFileInfo` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStat {
    pub size: u64,
    /// `S_IFREG`, `S_IFDIR`, `S_IFLNK`, …
    pub kind: String,
    /// Nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    pub birthtime_ns: Option<i64>,
}

/// Interprets a `GetFileInfo` key/value map. `st_size` and `st_ifmt` are required; times are
/// optional (a missing `st_mtime` reads as 0).
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
    fn usbmuxd_roundtrip_and_bounds() {
        let mut d = plist::Dictionary::new();
        d.insert("MessageType".into(), "ListDevices".into());
        let f = encode_usbmuxd_request(&d, 7);
        let (h, back, used) = decode_usbmuxd_frame(&f).unwrap();
        assert_eq!((h.tag, used), (7, f.len()));
        assert_eq!(back, d);
        let mut bad = f.clone();
        bad[0..4].copy_from_slice(&3u32.to_le_bytes());
        assert!(decode_usbmuxd_frame(&bad).is_err());
        bad[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_usbmuxd_frame(&bad).is_err());
        assert!(decode_usbmuxd_frame(&f[..20]).is_err());
    }

    #[test]
    fn device_list() {
        let mut props = plist::Dictionary::new();
        props.insert("SerialNumber".into(), "abc".into());
        props.insert("ConnectionType".into(), "USB".into());
        let mut e = plist::Dictionary::new();
        e.insert("DeviceID".into(), 3u64.into());
        e.insert("Properties".into(), plist::Value::Dictionary(props));
        let mut d = plist::Dictionary::new();
        d.insert(
            "DeviceList".into(),
            plist::Value::Array(vec![plist::Value::Dictionary(e), 5u64.into()]),
        );
        let l = parse_device_list(&d).unwrap();
        assert_eq!(
            l,
            vec![MuxDevice {
                device_id: 3,
                udid: "abc".into(),
                usb: true
            }]
        );
        assert!(parse_device_list(&plist::Dictionary::new()).is_err());
    }

    #[test]
    fn afc_header_bounds() {
        let mut h = Vec::new();
        for v in [AFC_MAGIC, 48, 48, 1, 1] {
            h.extend_from_slice(&u64::to_le_bytes(v));
        }
        let ok = decode_afc_header(&h).unwrap();
        assert_eq!(ok.body_len(), 8);
        let set = |i: usize, v: u64| {
            let mut b = h.clone();
            b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
            decode_afc_header(&b)
        };
        assert!(set(0, 1).is_err());
        assert!(set(2, 39).is_err()); // this_len < 40
        assert!(set(1, 47).is_err()); // entire < this
        assert!(set(1, u64::MAX).is_err()); // blind allocation
        assert!(set(2, u64::MAX).is_err());
        assert!(decode_afc_header(&h[..39]).is_err());
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
        assert_eq!(decode_lockdown_len([0, 0, 1, 0]), Ok(256));
        assert!(decode_lockdown_len([0x16, 3, 3, 0]).is_err());
    }
}
