//! Bounds-checked reads from untrusted byte slices. Every helper returns `None` instead of
//! panicking when the request reaches past the end (or overflows `usize`).

/// `len` bytes at `off`, if all of them are there.
pub(crate) fn slice(d: &[u8], off: usize, len: usize) -> Option<&[u8]> {
    d.get(off..off.checked_add(len)?)
}

pub(crate) fn array<const N: usize>(d: &[u8], off: usize) -> Option<[u8; N]> {
    slice(d, off, N)?.try_into().ok()
}

pub(crate) fn be_u16(d: &[u8], off: usize) -> Option<u16> {
    array(d, off).map(u16::from_be_bytes)
}

pub(crate) fn be_u32(d: &[u8], off: usize) -> Option<u32> {
    array(d, off).map(u32::from_be_bytes)
}

pub(crate) fn be_u64(d: &[u8], off: usize) -> Option<u64> {
    array(d, off).map(u64::from_be_bytes)
}

/// Unsigned big-endian integer of `n` bytes (0, 4 or 8, as ISO-BMFF's `iloc` sizes).
pub(crate) fn be_uint(d: &[u8], off: usize, n: usize) -> Option<u64> {
    match n {
        0 => Some(0),
        4 => be_u32(d, off).map(u64::from),
        8 => be_u64(d, off),
        _ => None,
    }
}

/// Byte order of a TIFF structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endian {
    Big,
    Little,
}

impl Endian {
    pub(crate) fn u16(self, d: &[u8], off: usize) -> Option<u16> {
        let a = array(d, off)?;
        Some(match self {
            Endian::Big => u16::from_be_bytes(a),
            Endian::Little => u16::from_le_bytes(a),
        })
    }

    pub(crate) fn u32(self, d: &[u8], off: usize) -> Option<u32> {
        let a = array(d, off)?;
        Some(match self {
            Endian::Big => u32::from_be_bytes(a),
            Endian::Little => u32::from_le_bytes(a),
        })
    }
}
