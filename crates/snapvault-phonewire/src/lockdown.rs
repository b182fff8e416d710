//! lockdownd frames: a 4-byte big-endian length, then a plist dictionary.

use crate::{WireError, dict_from, xml};

/// Largest lockdown frame accepted (pair records and value dictionaries are a few KiB).
pub const MAX_FRAME: usize = 1 << 20;

/// Bounds a frame's length prefix: afterwards the length is safe to allocate.
pub fn decode_len(prefix: [u8; 4]) -> Result<usize, WireError> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len > MAX_FRAME {
        return Err(WireError::Length {
            what: "lockdown frame",
            len: len as u64,
            max: MAX_FRAME as u64,
        });
    }
    Ok(len)
}

/// Parses a frame body (XML or binary plist dictionary).
pub fn decode_body(body: &[u8]) -> Result<plist::Dictionary, WireError> {
    dict_from(body)
}

/// Decodes one whole frame from the front of `b`: the dictionary and the bytes consumed.
pub fn decode_frame(b: &[u8]) -> Result<(plist::Dictionary, usize), WireError> {
    let prefix: [u8; 4] =
        b.get(..4)
            .and_then(|s| s.try_into().ok())
            .ok_or(WireError::Truncated {
                need: 4,
                have: b.len(),
            })?;
    let len = decode_len(prefix)?;
    let body = b.get(4..4 + len).ok_or(WireError::Truncated {
        need: 4 + len,
        have: b.len(),
    })?;
    Ok((decode_body(body)?, 4 + len))
}

/// Encodes a frame (XML plist, as lockdownd and libimobiledevice send).
pub fn encode_frame(dict: &plist::Dictionary) -> Vec<u8> {
    let body = xml(dict);
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// The `Error` string of a reply, if it has one.
pub fn error_of(d: &plist::Dictionary) -> Option<&str> {
    d.get("Error").and_then(|v| v.as_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_bounds() {
        let mut d = plist::Dictionary::new();
        d.insert("Request".into(), "QueryType".into());
        let f = encode_frame(&d);
        let (back, used) = decode_frame(&f).unwrap();
        assert_eq!((back, used), (d, f.len()));
        assert!(decode_frame(&[0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode_frame(&[0, 0, 0, 9, 1]).is_err());
        assert!(decode_frame(&[0, 0, 0, 1, b'x']).is_err());
        assert_eq!(decode_len([0, 0, 1, 0]), Ok(256));
        // A TLS record where a frame was expected is out of bounds, not an allocation.
        assert!(decode_len([0x16, 3, 3, 0]).is_err());
    }
}
