//! Trees: one blob per directory, listing its entries sorted by name. Stored as JSON
//! (compressed like any blob) so the format is easy to read with an independent tool.
//! Names are bytes: a UTF-8 name is a JSON string, any other is `{"hex": "..."}`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{RepoError, Result};
use crate::format::id::BlobId;

mod compact;
#[cfg(test)]
mod tests_compact;

/// A file name or symlink target as raw bytes (names need not be UTF-8 on Unix).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Name(pub Vec<u8>);

impl Name {
    pub fn lossy(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.lossy())
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Self {
        Name(s.as_bytes().to_vec())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum NameRepr {
    Utf8(String),
    Bytes { hex: String },
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(t) => NameRepr::Utf8(t.to_string()).serialize(s),
            Err(_) => NameRepr::Bytes {
                hex: hex::encode(&self.0),
            }
            .serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match NameRepr::deserialize(d)? {
            NameRepr::Utf8(s) => Ok(Name(s.into_bytes())),
            NameRepr::Bytes { hex } => hex::decode(hex).map(Name).map_err(serde::de::Error::custom),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    File,
    Dir,
    Symlink,
    /// A named pipe: recreated empty by restore.
    Fifo,
    /// A Unix socket: recorded, not recreated (it belongs to a running program).
    Socket,
    /// Device files, with their device number in `rdev`: recreated where allowed (root).
    #[serde(rename = "chardev")]
    CharDevice,
    #[serde(rename = "blockdev")]
    BlockDevice,
}

impl NodeKind {
    /// FIFOs, sockets and devices: no content, no subtree, nothing to read.
    pub(crate) fn is_special(self) -> bool {
        matches!(
            self,
            NodeKind::Fifo | NodeKind::Socket | NodeKind::CharDevice | NodeKind::BlockDevice
        )
    }
}

/// Photo metadata recorded for a file (filled in by the photo-aware layer through
/// `archiver::Inspector`). The repository stores it; of its fields it reads only `kind`
/// ([`MediaMeta::is_photo`]) and `taken` (shown with a lost or damaged photo).
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MediaMeta {
    /// photo, video, sidecar, other
    pub kind: String,
    /// Local capture time as recorded, with offset when known: `2023-07-14T18:03:11+02:00`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taken: Option<String>,
    /// exif, quicktime, birthtime, mtime
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_source: Option<String>,
    /// Live Photo / sidecar pairing key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair: Option<String>,
    /// Apple's content identifier, when the file carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_id: Option<String>,
}

impl MediaMeta {
    /// Does this file count as a photo for `forget`'s photo-loss guard? Photos, videos and
    /// their sidecars do; `other` (and any kind a newer version may add) does not.
    pub fn is_photo(&self) -> bool {
        matches!(self.kind.as_str(), "photo" | "video" | "sidecar")
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub name: Name,
    #[serde(rename = "type")]
    pub kind: NodeKind,
    pub mode: u32,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime: i64,
    /// Birth (creation) time where the filesystem or device reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub btime: Option<i64>,
    #[serde(default)]
    pub size: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<BlobId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtree: Option<BlobId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Name>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<MediaMeta>,
    /// Devices: the device number (`st_rdev`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdev: Option<u64>,
    /// Files with more than one hard link: the file system's device and inode numbers when
    /// the snapshot was taken. Files of one snapshot sharing both were one file; restore
    /// links them again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ino: Option<u64>,
    /// Files from a local folder: the status change time (`st_ctime`, ns) when listed. Set
    /// by every write, rename, chmod or new link, and not settable by a program, so a
    /// file rewritten with its size and mtime kept is still seen to have changed. Read only
    /// by the snapshot's change test; absent (older trees, the iPhone source): not compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctime: Option<i64>,
    /// Files from a local folder: the inode number when listed, whatever the link count.
    /// Read only by the change test (another file under an old name has another inode);
    /// unlike `ino`, never a reason for restore to link files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inode: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

/// Is this a name that is safe to create inside a restore target?
pub(crate) fn is_safe_name(n: &[u8]) -> bool {
    !n.is_empty() && n != b"." && n != b".." && !n.contains(&b'/') && !n.contains(&0)
}

impl Tree {
    pub fn sort(&mut self) {
        self.nodes.sort_by(|a, b| a.name.cmp(&b.name));
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decode and validate: names are safe path components, unique and sorted; each node
    /// has what its kind needs. A hostile tree cannot make restore write outside its target.
    /// Trees in the compact form snapvault writes are read by a hand-written decoder
    /// (`tree/compact.rs`); anything else by serde_json, which alone decides what is refused.
    pub fn decode(b: &[u8]) -> Result<Tree> {
        let t = match compact::decode(b) {
            Some(t) => t,
            None => from_json(b)?,
        };
        t.validated()
    }

    /// [`Tree::decode`] through serde_json alone: the reference the compact decoder is
    /// compared with (tests, fuzz target `tree`).
    #[doc(hidden)]
    pub fn decode_with_serde(b: &[u8]) -> Result<Tree> {
        from_json(b)?.validated()
    }

    /// The rules of docs/format.md §8 beyond the JSON's shape, after either decoder.
    fn validated(self) -> Result<Tree> {
        for (i, n) in self.nodes.iter().enumerate() {
            if !is_safe_name(&n.name.0) {
                return Err(RepoError::corrupt(
                    "tree",
                    format!("unsafe name {:?}", n.name),
                ));
            }
            if i > 0 && self.nodes[i - 1].name >= n.name {
                return Err(RepoError::corrupt("tree", "names not sorted or not unique"));
            }
            let plain = n.subtree.is_none() && n.target.is_none() && n.content.is_empty();
            let ok = match n.kind {
                NodeKind::Dir => n.subtree.is_some() && n.content.is_empty(),
                NodeKind::File => n.subtree.is_none(),
                NodeKind::Symlink => n.target.is_some() && n.content.is_empty(),
                NodeKind::CharDevice | NodeKind::BlockDevice => plain && n.rdev.is_some(),
                NodeKind::Fifo | NodeKind::Socket => plain,
            } && (n.rdev.is_none()
                || matches!(n.kind, NodeKind::CharDevice | NodeKind::BlockDevice))
                && (n.dev.is_some() == n.ino.is_some())
                && (n.ino.is_none() || n.kind == NodeKind::File)
                && ((n.ctime.is_none() && n.inode.is_none()) || n.kind == NodeKind::File);
            if !ok {
                return Err(RepoError::corrupt(
                    "tree",
                    format!("{:?} is missing what a {:?} needs", n.name, n.kind),
                ));
            }
        }
        Ok(self)
    }
}

fn from_json(b: &[u8]) -> Result<Tree> {
    serde_json::from_slice(b).map_err(|e| RepoError::corrupt("tree", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::id::Id;
    use proptest::prelude::*;

    fn node(name: &[u8], kind: NodeKind) -> Node {
        Node {
            name: Name(name.to_vec()),
            kind,
            mode: 0o644,
            mtime: 1_700_000_000_123_456_789,
            btime: Some(1_600_000_000_000_000_000),
            size: 10,
            content: if kind == NodeKind::File {
                vec![BlobId(Id::random())]
            } else {
                vec![]
            },
            subtree: (kind == NodeKind::Dir).then(|| BlobId(Id::random())),
            target: (kind == NodeKind::Symlink).then(|| Name(b"../x\xff".to_vec())),
            media: None,
            rdev: matches!(kind, NodeKind::CharDevice | NodeKind::BlockDevice).then_some(259),
            dev: (kind == NodeKind::File).then_some(66306),
            ino: (kind == NodeKind::File).then_some(1_234_567),
            ctime: (kind == NodeKind::File).then_some(1_700_000_001_000_000_007),
            inode: (kind == NodeKind::File).then_some(1_234_567),
        }
    }

    proptest! {
        #[test]
        fn tree_round_trip(names in proptest::collection::btree_set(proptest::collection::vec(1u8..=255, 1..20), 0..10)) {
            let mut t = Tree::default();
            for (i, n) in names.iter().enumerate() {
                let mut n = n.clone();
                n.retain(|&b| b != b'/');
                if !is_safe_name(&n) || t.nodes.iter().any(|x| x.name.0 == n) { continue; }
                let kind = [
                    NodeKind::File,
                    NodeKind::Dir,
                    NodeKind::Symlink,
                    NodeKind::Fifo,
                    NodeKind::Socket,
                    NodeKind::CharDevice,
                    NodeKind::BlockDevice,
                ][i % 7];
                t.nodes.push(node(&n, kind));
            }
            t.sort();
            let back = Tree::decode(&t.encode()).unwrap();
            prop_assert_eq!(back, t);
        }

        #[test]
        fn decoder_survives_garbage(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Tree::decode(&b);
        }
    }

    #[test]
    fn unsafe_names_rejected() {
        for bad in [&b".."[..], b".", b"a/b", b""] {
            let t = Tree {
                nodes: vec![node(bad, NodeKind::File)],
            };
            assert!(Tree::decode(&t.encode()).is_err(), "{bad:?}");
        }
        let t = Tree {
            nodes: vec![node(b"b", NodeKind::File), node(b"a", NodeKind::File)],
        };
        assert!(Tree::decode(&t.encode()).is_err());
    }

    /// Trees written before special files and hard links were recorded still decode; a
    /// node with fields its kind cannot have is refused.
    #[test]
    fn old_trees_decode_and_misplaced_fields_are_refused() {
        let id = "00".repeat(32);
        let old = format!(
            r#"{{"nodes":[{{"name":"a","type":"file","mode":420,"mtime":0,"size":1,"content":["{id}"]}}]}}"#
        );
        let t = Tree::decode(old.as_bytes()).unwrap();
        assert_eq!(
            (t.nodes[0].dev, t.nodes[0].ino, t.nodes[0].rdev),
            (None, None, None)
        );
        assert_eq!((t.nodes[0].ctime, t.nodes[0].inode), (None, None));
        for bad in [
            r#"{"nodes":[{"name":"p","type":"fifo","mode":420,"mtime":0,"rdev":5}]}"#,
            r#"{"nodes":[{"name":"d","type":"chardev","mode":420,"mtime":0}]}"#,
            r#"{"nodes":[{"name":"s","type":"socket","mode":420,"mtime":0,"target":"x"}]}"#,
            r#"{"nodes":[{"name":"f","type":"file","mode":420,"mtime":0,"ino":5}]}"#,
            r#"{"nodes":[{"name":"d","type":"dir","mode":493,"mtime":0,"subtree":"00000000000000000000000000000000000000000000000000000000000000ff","ctime":1}]}"#,
            r#"{"nodes":[{"name":"l","type":"symlink","mode":511,"mtime":0,"target":"x","inode":7}]}"#,
        ] {
            assert!(Tree::decode(bad.as_bytes()).is_err(), "{bad}");
        }
        let ok = r#"{"nodes":[{"name":"d","type":"blockdev","mode":432,"mtime":0,"rdev":2049}]}"#;
        assert_eq!(
            Tree::decode(ok.as_bytes()).unwrap().nodes[0].rdev,
            Some(2049)
        );
    }

    /// The change-test fields as written (format.md §8): a file with one name has its
    /// `ctime` and `inode` but no `dev`/`ino`, so restore links nothing; the bytes are
    /// pinned, both decoders read them, and encoding gives them back.
    #[test]
    fn change_test_fields_are_pinned() {
        let id = "ab".repeat(32);
        let json = format!(
            r#"{{"nodes":[{{"name":"IMG_0001.HEIC","type":"file","mode":420,"mtime":1700000000000000000,"size":60000,"content":["{id}"],"ctime":1700000123456789012,"inode":4295032833}},{{"name":"IMG_0002.HEIC","type":"file","mode":420,"mtime":1700000000000000000,"size":60000,"content":["{id}"],"dev":66306,"ino":917505,"ctime":1700000123456789013,"inode":917505}}]}}"#
        );
        let t = Tree::decode(json.as_bytes()).unwrap();
        assert_eq!(t, Tree::decode_with_serde(json.as_bytes()).unwrap());
        assert!(
            compact::decode(json.as_bytes()).is_some(),
            "the fast decoder reads it"
        );
        let (a, b) = (&t.nodes[0], &t.nodes[1]);
        assert_eq!(
            (a.ctime, a.inode, a.dev, a.ino),
            (
                Some(1_700_000_123_456_789_012),
                Some(4_295_032_833),
                None,
                None
            )
        );
        assert_eq!(
            (b.ctime, b.inode, b.dev, b.ino),
            (
                Some(1_700_000_123_456_789_013),
                Some(917_505),
                Some(66306),
                Some(917_505)
            )
        );
        assert_eq!(String::from_utf8(t.encode()).unwrap(), json);
    }

    #[test]
    fn non_utf8_names_survive() {
        let t = Tree {
            nodes: vec![node(b"caf\xe9.jpg", NodeKind::File)],
        };
        let json = String::from_utf8(t.encode()).unwrap();
        assert!(json.contains("\"hex\""));
        assert_eq!(Tree::decode(json.as_bytes()).unwrap(), t);
    }
}
