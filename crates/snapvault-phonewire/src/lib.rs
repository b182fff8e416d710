//! The byte formats spoken with an iPhone, in one place for both ends: snapvault's client
//! (`snapvault-source`) and the loopback phone (`snapvault-fakephone`) encode and decode
//! every frame with these functions, and the fuzz targets (`fuzz/fuzz_targets/{usbmuxd,
//! lockdown,afc}_*.rs`) exercise them.
//!
//! - [`usbmuxd`]: 16-byte little-endian header `{size incl. header, version, message, tag}`,
//!   then an XML/binary plist (version 1, message 8) or a binary struct (version 0).
//! - [`lockdown`]: 4-byte **big-endian** length + plist.
//! - [`afc`]: 40-byte little-endian header `{magic, entire_len, this_len, packet_num,
//!   opcode}`, then `this_len - 40` bytes of header payload, then `entire_len - this_len`
//!   bytes of payload.
//! - `pairing` (feature `pairing`): pair records as pairing hosts make them.
//!
//! Written for hostile input: every length read from the wire is bounded before anything is
//! allocated for it, and malformed input is an error, never a panic.

pub mod afc;
pub mod lockdown;
#[cfg(feature = "pairing")]
pub mod pairing;
pub mod usbmuxd;

/// Malformed bytes from the other end.
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

pub(crate) fn le_u32(b: &[u8], at: usize) -> Result<u32, WireError> {
    let s = b.get(at..at + 4).ok_or(WireError::Truncated {
        need: at + 4,
        have: b.len(),
    })?;
    let mut a = [0u8; 4];
    a.copy_from_slice(s);
    Ok(u32::from_le_bytes(a))
}

pub(crate) fn le_u64(b: &[u8], at: usize) -> Result<u64, WireError> {
    let s = b.get(at..at + 8).ok_or(WireError::Truncated {
        need: at + 8,
        have: b.len(),
    })?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Ok(u64::from_le_bytes(a))
}

/// XML plist bytes of a dictionary (what usbmuxd and lockdownd send).
pub fn xml(dict: &plist::Dictionary) -> Vec<u8> {
    let mut body = Vec::new();
    // Writing an in-memory dictionary into a Vec cannot fail.
    if plist::to_writer_xml(&mut body, dict).is_err() {
        body.clear();
    }
    body
}

/// Parses a plist (XML or binary) that must be a dictionary.
pub fn dict_from(body: &[u8]) -> Result<plist::Dictionary, WireError> {
    plist::from_bytes(body).map_err(|e| WireError::Plist(e.to_string()))
}
