//! A hand-written decoder for trees in the form [`Tree::encode`] writes: serde_json's compact
//! output of these structs (no whitespace, no escapes in the strings snapvault writes,
//! plain integers, ids as 64 hex digits). At a million unchanged files, serde's decoder
//! (ids through `&str` and the `hex` crate, names buffered by an untagged enum, a visitor
//! per field) was ≈ 29 % of a no-change snapshot's instructions; this reads ids from hex
//! straight into their arrays and each field once.
//!
//! It is an accelerator, not a second definition of the format: it answers `None` for
//! anything outside that form — whitespace, an escape or a control character in a string,
//! `null`, a fraction or exponent, a leading zero, `-0`, a number of 20 digits or more, an
//! unknown or repeated field, a missing required one, another shape — and
//! [`Tree::decode`] then asks serde_json. So the trees accepted and every error message are
//! serde's. The contract, tested against serde_json on random and mutated trees (tests
//! below) and fuzzed (`fuzz/fuzz_targets/tree.rs`): whatever this decodes, serde_json
//! decodes to the same tree. Fields may come in any order, as serde accepts them.

use super::{MediaMeta, Name, Node, NodeKind, Tree};
use crate::format::id::{BlobId, Id};

/// The tree `b` holds, when `b` is in the compact form; `None` otherwise (not an error:
/// serde_json decides).
pub(super) fn decode(b: &[u8]) -> Option<Tree> {
    let mut p = Parser { b, i: 0 };
    p.lit(b"{\"nodes\":[")?;
    let mut nodes = Vec::new();
    if !p.eat(b']') {
        loop {
            nodes.push(p.node()?);
            if !p.eat(b',') {
                p.expect(b']')?;
                break;
            }
        }
    }
    p.expect(b'}')?;
    (p.i == b.len()).then_some(Tree { nodes })
}

/// Hex digit values (both cases, as the `hex` crate reads them); 0xff: not a digit.
const HEX: [u8; 256] = {
    let mut t = [0xff; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Classes of a string's bytes: plain ASCII, the closing quote, ASCII it cannot read
/// (backslash: an escape; control characters: serde refuses them), the rest of UTF-8.
const PLAIN: u8 = 0;
const QUOTE: u8 = 1;
const REFUSED: u8 = 2;
const HIGH: u8 = 3;
const CLASS: [u8; 256] = {
    let mut t = [PLAIN; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = match i as u8 {
            b'"' => QUOTE,
            b'\\' | 0..0x20 => REFUSED,
            0x80.. => HIGH,
            _ => PLAIN,
        };
        i += 1;
    }
    t
};

/// One byte from two hex digits.
fn byte(hi: u8, lo: u8) -> Option<u8> {
    let (h, l) = (HEX[usize::from(hi)], HEX[usize::from(lo)]);
    (h < 16 && l < 16).then_some(h << 4 | l)
}

/// Bytes from an even number of hex digits (`hex::decode`).
fn hex_bytes(h: &[u8]) -> Option<Vec<u8>> {
    if !h.len().is_multiple_of(2) {
        return None;
    }
    h.chunks_exact(2).map(|d| byte(d[0], d[1])).collect()
}

/// Fills `slot` once: serde refuses a repeated field.
fn set<T>(slot: &mut Option<T>, v: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(v);
    Some(())
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn eat(&mut self, c: u8) -> bool {
        let hit = self.b.get(self.i) == Some(&c);
        self.i += usize::from(hit);
        hit
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        self.eat(c).then_some(())
    }

    fn lit(&mut self, s: &[u8]) -> Option<()> {
        self.b.get(self.i..)?.starts_with(s).then_some(())?;
        self.i += s.len();
        Some(())
    }

    /// A string's bytes, when it holds no escape and no control character, and whether
    /// they are all ASCII (UTF-8 not checked yet).
    fn raw(&mut self) -> Option<(&'a [u8], bool)> {
        self.expect(b'"')?;
        let rest = self.b.get(self.i..)?;
        let mut high = 0;
        for (n, &c) in rest.iter().enumerate() {
            match CLASS[usize::from(c)] {
                PLAIN => {}
                HIGH => high = 1,
                QUOTE => {
                    self.i += n + 1;
                    return Some((rest.get(..n)?, high == 0));
                }
                _ => return None,
            }
        }
        None
    }

    /// A string's bytes: no escape, no control character, valid UTF-8.
    fn text(&mut self) -> Option<&'a [u8]> {
        let (s, ascii) = self.raw()?;
        (ascii || std::str::from_utf8(s).is_ok()).then_some(s)
    }

    /// An object's key and its colon. Read as bytes: a key that is not one of the plain
    /// ASCII field names (an escape in it, a control character, anything not UTF-8)
    /// matches none of them, and the caller declines.
    fn key(&mut self) -> Option<&'a [u8]> {
        self.expect(b'"')?;
        let rest = self.b.get(self.i..)?;
        let n = rest.iter().position(|&c| c == b'"')?;
        self.i += n + 1;
        self.expect(b':')?;
        rest.get(..n)
    }

    /// A non-negative integer of at most 19 digits (no overflow), no leading zero. Only `,`
    /// or `}` may follow (the caller's object checks), so a fraction or exponent goes to serde.
    fn uint(&mut self) -> Option<u64> {
        let rest = self.b.get(self.i..)?;
        let (mut v, mut n) = (0u64, 0);
        while let Some(&c) = rest.get(n).filter(|c| c.is_ascii_digit()) {
            if n == 19 {
                return None;
            }
            v = v * 10 + u64::from(c - b'0');
            n += 1;
        }
        if n == 0 || (n > 1 && rest.first() == Some(&b'0')) {
            return None;
        }
        self.i += n;
        Some(v)
    }

    /// An integer within ±`i64::MAX`; not `-0` (serde_json reads it as a float).
    fn int(&mut self) -> Option<i64> {
        let neg = self.eat(b'-');
        let v = i64::try_from(self.uint()?).ok()?;
        match (neg, v) {
            (true, 0) => None,
            (true, v) => Some(-v),
            (false, v) => Some(v),
        }
    }

    /// A blob id: 64 hex digits in a string.
    fn id(&mut self) -> Option<BlobId> {
        self.expect(b'"')?;
        let h: &[u8; 64] = self.b.get(self.i..self.i + 64)?.try_into().ok()?;
        let mut id = [0u8; 32];
        // A digit's value is below 16, a non-digit's 0xff: one test for all 64.
        let mut all = 0;
        for (o, d) in id.iter_mut().zip(h.as_chunks::<2>().0) {
            let (hi, lo) = (HEX[usize::from(d[0])], HEX[usize::from(d[1])]);
            all |= hi | lo;
            *o = hi << 4 | lo;
        }
        if all >= 16 {
            return None;
        }
        self.i += 64;
        self.expect(b'"')?;
        Some(BlobId(Id(id)))
    }

    /// `[id, …]`.
    fn ids(&mut self) -> Option<Vec<BlobId>> {
        self.expect(b'[')?;
        if self.eat(b']') {
            return Some(Vec::new());
        }
        let first = self.id()?;
        // Most files are one chunk: no room for four.
        if self.eat(b']') {
            return Some(vec![first]);
        }
        let mut v = vec![first];
        loop {
            self.expect(b',')?;
            v.push(self.id()?);
            if self.eat(b']') {
                return Some(v);
            }
        }
    }

    /// A name: a string, or `{"hex":"…"}`.
    fn name(&mut self) -> Option<Name> {
        if self.b.get(self.i) == Some(&b'{') {
            self.lit(b"{\"hex\":")?;
            let (h, _) = self.raw()?;
            self.expect(b'}')?;
            return hex_bytes(h).map(Name);
        }
        Some(Name(self.text()?.to_vec()))
    }

    fn kind(&mut self) -> Option<NodeKind> {
        Some(match self.raw()?.0 {
            b"file" => NodeKind::File,
            b"dir" => NodeKind::Dir,
            b"symlink" => NodeKind::Symlink,
            b"fifo" => NodeKind::Fifo,
            b"socket" => NodeKind::Socket,
            b"chardev" => NodeKind::CharDevice,
            b"blockdev" => NodeKind::BlockDevice,
            _ => return None,
        })
    }

    /// Calls `field` for each key of an object (at least one) until its `}`.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        self.expect(b'{')?;
        loop {
            let k = self.key()?;
            field(self, k)?;
            if !self.eat(b',') {
                return self.expect(b'}');
            }
        }
    }

    fn media(&mut self) -> Option<MediaMeta> {
        let (mut kind, mut taken, mut date_source, mut pair, mut content_id) =
            (None, None, None, None, None);
        self.object(|p, k| {
            let slot = match k {
                b"kind" => &mut kind,
                b"taken" => &mut taken,
                b"date_source" => &mut date_source,
                b"pair" => &mut pair,
                b"content_id" => &mut content_id,
                _ => return None,
            };
            set(slot, String::from_utf8(p.text()?.to_vec()).ok()?)
        })?;
        Some(MediaMeta {
            kind: kind?,
            taken,
            date_source,
            pair,
            content_id,
        })
    }

    fn node(&mut self) -> Option<Node> {
        let (mut name, mut kind, mut mode, mut mtime, mut btime) = (None, None, None, None, None);
        let (mut size, mut content, mut subtree, mut target) = (None, None, None, None);
        let (mut media, mut rdev, mut dev, mut ino) = (None, None, None, None);
        let (mut ctime, mut inode) = (None, None);
        self.object(|p, k| match k {
            b"name" => set(&mut name, p.name()?),
            b"type" => set(&mut kind, p.kind()?),
            b"mode" => set(&mut mode, u32::try_from(p.uint()?).ok()?),
            b"mtime" => set(&mut mtime, p.int()?),
            b"btime" => set(&mut btime, p.int()?),
            b"size" => set(&mut size, p.uint()?),
            b"content" => set(&mut content, p.ids()?),
            b"subtree" => set(&mut subtree, p.id()?),
            b"target" => set(&mut target, p.name()?),
            b"media" => set(&mut media, p.media()?),
            b"rdev" => set(&mut rdev, p.uint()?),
            b"dev" => set(&mut dev, p.uint()?),
            b"ino" => set(&mut ino, p.uint()?),
            b"ctime" => set(&mut ctime, p.int()?),
            b"inode" => set(&mut inode, p.uint()?),
            _ => None,
        })?;
        Some(Node {
            name: name?,
            kind: kind?,
            mode: mode?,
            mtime: mtime?,
            btime,
            size: size.unwrap_or(0),
            content: content.unwrap_or_default(),
            subtree,
            target,
            media,
            rdev,
            dev,
            ino,
            ctime,
            inode,
        })
    }
}
