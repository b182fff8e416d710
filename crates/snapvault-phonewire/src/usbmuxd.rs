//! usbmuxd frames: a 16-byte little-endian header, then a plist (protocol version 1, message
//! 8, what every current client sends) or a binary struct (version 0, the original protocol
//! that older clients speak: `Connect` and `Listen` only).

use crate::{WireError, dict_from, le_u32, xml};

/// Largest frame body accepted (device lists and pair records are a few KiB).
pub const MAX_BODY: usize = 1 << 20;
pub const HEADER_LEN: usize = 16;

/// Header `version` of the binary protocol.
pub const VERSION_BINARY: u32 = 0;
/// Header `version` of the plist protocol.
pub const VERSION_PLIST: u32 = 1;

/// Header `message` values.
pub mod message {
    pub const RESULT: u32 = 1;
    pub const CONNECT: u32 = 2;
    pub const LISTEN: u32 = 3;
    pub const DEVICE_ADD: u32 = 4;
    pub const DEVICE_REMOVE: u32 = 5;
    pub const PLIST: u32 = 8;
}

/// `Result` numbers.
pub mod result {
    pub const OK: u64 = 0;
    pub const BADCOMMAND: u64 = 1;
    pub const BADDEV: u64 = 2;
    pub const CONNREFUSED: u64 = 3;
    pub const BADVERSION: u64 = 6;
}

/// The 16-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub size: u32,
    pub version: u32,
    pub message: u32,
    pub tag: u32,
}

impl Header {
    /// Bytes after the header.
    pub fn body_len(&self) -> usize {
        (self.size as usize).saturating_sub(HEADER_LEN)
    }

    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        for (i, v) in [self.size, self.version, self.message, self.tag]
            .into_iter()
            .enumerate()
        {
            out[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
        }
        out
    }
}

/// Decodes and bounds a header: afterwards `body_len()` is safe to allocate.
pub fn decode_header(b: &[u8]) -> Result<Header, WireError> {
    let h = Header {
        size: le_u32(b, 0)?,
        version: le_u32(b, 4)?,
        message: le_u32(b, 8)?,
        tag: le_u32(b, 12)?,
    };
    let max = HEADER_LEN + MAX_BODY;
    if !(HEADER_LEN..=max).contains(&(h.size as usize)) {
        return Err(WireError::Length {
            what: "usbmuxd frame",
            len: u64::from(h.size),
            max: max as u64,
        });
    }
    Ok(h)
}

/// Parses a plist body into a dictionary.
pub fn decode_body(body: &[u8]) -> Result<plist::Dictionary, WireError> {
    dict_from(body)
}

/// Decodes one whole plist frame from the front of `b`: header, dictionary, bytes consumed.
pub fn decode_frame(b: &[u8]) -> Result<(Header, plist::Dictionary, usize), WireError> {
    let h = decode_header(b)?;
    let end = h.size as usize;
    let body = b.get(HEADER_LEN..end).ok_or(WireError::Truncated {
        need: end,
        have: b.len(),
    })?;
    Ok((h, decode_body(body)?, end))
}

/// Encodes a plist frame (version 1, message 8); requests and replies look the same.
pub fn encode_plist(dict: &plist::Dictionary, tag: u32) -> Vec<u8> {
    let body = xml(dict);
    let h = Header {
        size: (HEADER_LEN + body.len()) as u32,
        version: VERSION_PLIST,
        message: message::PLIST,
        tag,
    };
    let mut out = h.encode().to_vec();
    out.extend_from_slice(&body);
    out
}

/// Encodes a binary (version 0) `Result` reply.
pub fn encode_result_v0(tag: u32, number: u32) -> Vec<u8> {
    let h = Header {
        size: HEADER_LEN as u32 + 4,
        version: VERSION_BINARY,
        message: message::RESULT,
        tag,
    };
    let mut out = h.encode().to_vec();
    out.extend_from_slice(&number.to_le_bytes());
    out
}

/// Length of a binary device record: id, product id, 256-byte serial, padding, location.
const DEVICE_RECORD_LEN: usize = 4 + 2 + 256 + 2 + 4;

/// Encodes a binary (version 0) `DeviceAdd` message, sent to `Listen`ers.
pub fn encode_device_add_v0(device_id: u32, product_id: u16, udid: &str, location: u32) -> Vec<u8> {
    let h = Header {
        size: (HEADER_LEN + DEVICE_RECORD_LEN) as u32,
        version: VERSION_BINARY,
        message: message::DEVICE_ADD,
        tag: 0,
    };
    let mut out = h.encode().to_vec();
    out.extend_from_slice(&device_id.to_le_bytes());
    out.extend_from_slice(&product_id.to_le_bytes());
    let mut serial = [0u8; 256];
    let n = udid.len().min(255);
    serial[..n].copy_from_slice(&udid.as_bytes()[..n]);
    out.extend_from_slice(&serial);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&location.to_le_bytes());
    out
}

// ---------------------------------------------------------------- requests (server side)

/// A client's request, from either protocol version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    ListDevices,
    Listen,
    ReadBuid,
    ReadPairRecord {
        id: String,
    },
    SavePairRecord {
        id: String,
        data: Vec<u8>,
    },
    DeletePairRecord {
        id: String,
    },
    /// `port` in host byte order (the wire carries it in network order).
    Connect {
        device_id: u32,
        port: u16,
    },
    ListListeners,
    /// A request this decoder does not know (plist `MessageType`, or `#N` for a binary
    /// message number).
    Other(String),
}

fn string(d: &plist::Dictionary, key: &str) -> Result<String, WireError> {
    d.get(key)
        .and_then(|v| v.as_string())
        .map(str::to_owned)
        .ok_or_else(|| WireError::Field(format!("usbmuxd request without {key}")))
}

fn unsigned(d: &plist::Dictionary, key: &str) -> Result<u64, WireError> {
    d.get(key)
        .and_then(|v| v.as_unsigned_integer())
        .ok_or_else(|| WireError::Field(format!("usbmuxd request without {key}")))
}

/// Decodes a request from its header and body.
pub fn decode_request(h: &Header, body: &[u8]) -> Result<Request, WireError> {
    if body.len() != h.body_len() {
        return Err(WireError::Truncated {
            need: h.body_len(),
            have: body.len(),
        });
    }
    if h.version == VERSION_BINARY {
        return Ok(match h.message {
            message::LISTEN => Request::Listen,
            message::CONNECT => {
                let port = body
                    .get(4..6)
                    .map(|p| u16::from_be_bytes([p[0], p[1]]))
                    .ok_or(WireError::Truncated {
                        need: 6,
                        have: body.len(),
                    })?;
                Request::Connect {
                    device_id: le_u32(body, 0)?,
                    port,
                }
            }
            other => Request::Other(format!("#{other}")),
        });
    }
    if h.message != message::PLIST {
        return Ok(Request::Other(format!("#{}", h.message)));
    }
    let d = decode_body(body)?;
    let kind = string(&d, "MessageType")?;
    Ok(match kind.as_str() {
        "ListDevices" => Request::ListDevices,
        "Listen" => Request::Listen,
        "ReadBUID" => Request::ReadBuid,
        "ListListeners" => Request::ListListeners,
        "ReadPairRecord" => Request::ReadPairRecord {
            id: string(&d, "PairRecordID")?,
        },
        "DeletePairRecord" => Request::DeletePairRecord {
            id: string(&d, "PairRecordID")?,
        },
        "SavePairRecord" => Request::SavePairRecord {
            id: string(&d, "PairRecordID")?,
            data: match d.get("PairRecordData") {
                Some(plist::Value::Data(b)) => b.clone(),
                _ => return Err(WireError::Field("SavePairRecord without data".into())),
            },
        },
        "Connect" => Request::Connect {
            device_id: u32::try_from(unsigned(&d, "DeviceID")?)
                .map_err(|_| WireError::Field("DeviceID out of range".into()))?,
            // Sent as htons(port) in an integer.
            port: u16::try_from(unsigned(&d, "PortNumber")?)
                .map_err(|_| WireError::Field("PortNumber out of range".into()))?
                .swap_bytes(),
        },
        _ => Request::Other(kind),
    })
}

/// Decodes one whole request from the front of `b`: request, header, bytes consumed.
pub fn decode_request_frame(b: &[u8]) -> Result<(Request, Header, usize), WireError> {
    let h = decode_header(b)?;
    let end = h.size as usize;
    let body = b.get(HEADER_LEN..end).ok_or(WireError::Truncated {
        need: end,
        have: b.len(),
    })?;
    Ok((decode_request(&h, body)?, h, end))
}

// ---------------------------------------------------------------- replies (client side)

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

#[cfg(test)]
mod tests {
    use super::*;

    fn dict(pairs: &[(&str, plist::Value)]) -> plist::Dictionary {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn plist_roundtrip_and_bounds() {
        let d = dict(&[("MessageType", "ListDevices".into())]);
        let f = encode_plist(&d, 7);
        let (h, back, used) = decode_frame(&f).unwrap();
        assert_eq!((h.tag, used, &back), (7, f.len(), &d));
        let (req, _, _) = decode_request_frame(&f).unwrap();
        assert_eq!(req, Request::ListDevices);
        let mut bad = f.clone();
        bad[0..4].copy_from_slice(&3u32.to_le_bytes());
        assert!(decode_frame(&bad).is_err());
        bad[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_frame(&bad).is_err());
        assert!(decode_frame(&f[..20]).is_err());
    }

    #[test]
    fn connect_in_both_versions() {
        let d = dict(&[
            ("MessageType", "Connect".into()),
            ("DeviceID", 3u64.into()),
            ("PortNumber", u64::from(62078u16.to_be()).into()),
        ]);
        let (req, _, _) = decode_request_frame(&encode_plist(&d, 1)).unwrap();
        let want = Request::Connect {
            device_id: 3,
            port: 62078,
        };
        assert_eq!(req, want);
        let mut v0 = Vec::new();
        for v in [24u32, 0, message::CONNECT, 5] {
            v0.extend_from_slice(&v.to_le_bytes());
        }
        v0.extend_from_slice(&3u32.to_le_bytes());
        v0.extend_from_slice(&62078u16.to_be_bytes());
        v0.extend_from_slice(&[0, 0]);
        let (req, h, _) = decode_request_frame(&v0).unwrap();
        assert_eq!((req, h.tag), (want, 5));
        assert!(decode_request_frame(&v0[..20]).is_err());
        let r = encode_result_v0(5, 3);
        assert_eq!(r.len(), 20);
        assert_eq!(decode_header(&r).unwrap().message, message::RESULT);
        assert_eq!(encode_device_add_v0(1, 0x12a8, "abc", 9).len(), 16 + 268);
    }

    #[test]
    fn device_list() {
        let props = dict(&[
            ("SerialNumber", "abc".into()),
            ("ConnectionType", "USB".into()),
        ]);
        let e = dict(&[
            ("DeviceID", 3u64.into()),
            ("Properties", plist::Value::Dictionary(props)),
        ]);
        let d = dict(&[(
            "DeviceList",
            plist::Value::Array(vec![plist::Value::Dictionary(e), 5u64.into()]),
        )]);
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
}
