//! Snapshot manifests: `snapshots/<blake3 of file>`, sealed JSON, written last.

use serde::{Deserialize, Serialize};

use crate::error::{RepoError, Result};
use crate::format::crypto::Crypto;
use crate::format::id::{BlobId, SnapshotId};

pub(crate) const MAX_SNAPSHOT_FILE: usize = 16 << 20;

/// Where a snapshot's files came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// "folder" or "iphone".
    pub kind: String,
    /// Folder snapshots: the absolute paths backed up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// Device snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<Device>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub udid: String,
    pub name: String,
    pub model: String,
    pub ios_version: String,
}

impl Source {
    pub fn folder(paths: Vec<String>) -> Self {
        Source {
            kind: "folder".into(),
            paths,
            device: None,
        }
    }

    /// A key that groups snapshots of the same source (for parents, forget, restore --date).
    pub fn group_key(&self, hostname: &str) -> String {
        match &self.device {
            Some(d) => format!("device:{}", d.udid),
            None => format!("{}:{}", hostname, self.paths.join("\0")),
        }
    }

    /// The source in a message or listing. The phone's name and UDID came from the device
    /// and the paths from the file system: shown escaped ([`crate::format::text::escaped`]).
    pub fn describe(&self) -> String {
        use crate::format::text::escaped;
        match &self.device {
            Some(d) => format!("{} ({})", escaped(&d.name), escaped(&d.udid)),
            None => self
                .paths
                .iter()
                .map(|p| escaped(p))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unchanged: u64,
    /// Folders below the top-level ones (the folders named on the command line, the
    /// phone's `DCIM`).
    pub dirs: u64,
    pub files_total: u64,
    /// Bytes of all files in the snapshot.
    pub bytes_total: u64,
    /// Bytes read from the source.
    pub bytes_read: u64,
    /// Bytes added to the repository (sealed, compressed).
    pub bytes_added: u64,
    pub blobs_added: u64,
    pub errors: u64,
    pub duration_ms: u64,
    /// Why the snapshot stopped early (the source went away); it then holds what was
    /// read until that moment and is tagged `partial`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub version: u32,
    /// Nanoseconds since the Unix epoch.
    pub time: i64,
    pub hostname: String,
    pub username: String,
    pub source: Source,
    #[serde(default)]
    pub tags: Vec<String>,
    pub tree: BlobId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<SnapshotId>,
    pub summary: Summary,
    /// Some files could not be read; they are missing from this snapshot.
    #[serde(default)]
    pub incomplete: bool,
    /// Written by `copy`: the snapshot this one is a copy of (in another repository). A
    /// copy of a copy keeps the first one's id, so copies along a chain are recognised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<SnapshotId>,
    /// Phone snapshots: how the snapshot stands against the phone's photo library (what
    /// the source says it holds). Absent in older snapshots and folder snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub library: Option<LibraryAccount>,
}

/// An account of a source's own list of what it holds (a phone's Photos library) against
/// the files of the snapshot. The repository stores it and never interprets it; `None` in
/// a count means the source did not say.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LibraryAccount {
    /// Where the account comes from: `photos.sqlite` (the phone's library database) or
    /// `files` (the database could not be read: the files alone).
    pub source: String,
    /// The database's schema (`ZASSET`, `ZGENERICASSET`), when it was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Assets the library lists (with `source: files`: photo and video files found).
    pub assets: u64,
    /// Of those, held by this snapshot.
    pub backed_up: u64,
    /// Not on the phone: only in iCloud ("Optimize iPhone Storage").
    #[serde(default)]
    pub icloud_only: Option<u64>,
    /// Listed as on the phone (or unknown), but not in the snapshot: not read.
    #[serde(default)]
    pub not_read: Option<u64>,
    /// In Recently Deleted (counted in the numbers above too).
    #[serde(default)]
    pub recently_deleted: Option<u64>,
    /// Edited in Photos, and of those the ones whose edit the snapshot holds.
    #[serde(default)]
    pub edited: Option<u64>,
    #[serde(default)]
    pub edits_backed_up: Option<u64>,
    /// Why the database could not be used, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The tag `repair` gives the copy it writes of a damaged snapshot (without its lost files).
pub const REPAIRED_TAG: &str = "repaired";

/// The order of a repository's history: oldest first; at the same time a repaired copy
/// after the snapshot it was made from, so `latest` is the copy that restores whole (the
/// original names lost data); then by id, so the order is stable.
pub fn history_order(
    a: (&SnapshotId, &Snapshot),
    b: (&SnapshotId, &Snapshot),
) -> std::cmp::Ordering {
    let repaired = |s: &Snapshot| s.tags.iter().any(|t| t == REPAIRED_TAG);
    a.1.time
        .cmp(&b.1.time)
        .then(repaired(a.1).cmp(&repaired(b.1)))
        .then(a.0.cmp(b.0))
}

impl Snapshot {
    pub fn seal(&self, crypto: &Crypto) -> Vec<u8> {
        crypto.seal(&serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn open(crypto: &Crypto, sealed: &[u8], what: &str) -> Result<Snapshot> {
        if sealed.len() > MAX_SNAPSHOT_FILE {
            return Err(RepoError::corrupt(what, "snapshot file too large"));
        }
        let plain = crypto.open(sealed, what)?;
        let s: Snapshot =
            serde_json::from_slice(&plain).map_err(|e| RepoError::corrupt(what, e.to_string()))?;
        if s.version != 1 {
            return Err(RepoError::corrupt(
                what,
                format!("unknown version {}", s.version),
            ));
        }
        Ok(s)
    }

    pub fn unix_time(&self) -> i64 {
        self.time.div_euclid(1_000_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::crypto::MasterKey;
    use crate::format::id::Id;
    use proptest::prelude::*;

    fn sample(tags: Vec<String>) -> Snapshot {
        Snapshot {
            version: 1,
            time: 1_700_000_000_000_000_000,
            hostname: "h".into(),
            username: "u".into(),
            source: Source::folder(vec!["/photos".into()]),
            tags,
            tree: BlobId(Id::random()),
            parent: Some(SnapshotId(Id::random())),
            summary: Summary::default(),
            incomplete: false,
            original: None,
            library: None,
        }
    }

    /// A repaired copy has its original's time: it sorts after it whatever the two ids,
    /// so `latest` restores the copy, not the original that names lost data.
    #[test]
    fn a_repaired_copy_is_later_in_history_than_its_original() {
        let original = sample(vec!["trip".into()]);
        let mut copy = original.clone();
        copy.tags.push(REPAIRED_TAG.into());
        let low = SnapshotId(Id([0; 32]));
        let high = SnapshotId(Id([0xff; 32]));
        for (oid, cid) in [(low, high), (high, low)] {
            let mut h = [(cid, copy.clone()), (oid, original.clone())];
            h.sort_by(|a, b| history_order((&a.0, &a.1), (&b.0, &b.1)));
            assert_eq!(h[1].0, cid);
            h.reverse();
            h.sort_by(|a, b| history_order((&a.0, &a.1), (&b.0, &b.1)));
            assert_eq!(h[1].0, cid);
        }
        let mut newer = original.clone();
        newer.time += 1;
        let mut h = [(low, newer), (high, copy)];
        h.sort_by(|a, b| history_order((&a.0, &a.1), (&b.0, &b.1)));
        assert_eq!(h[1].0, low, "time first");
    }

    proptest! {
        #[test]
        fn round_trip(tags in proptest::collection::vec(".{0,10}", 0..4)) {
            let c = Crypto::Keyed(MasterKey::generate());
            let s = sample(tags);
            prop_assert_eq!(Snapshot::open(&c, &s.seal(&c), "s").unwrap(), s);
        }

        #[test]
        fn garbage_is_an_error(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            prop_assert!(Snapshot::open(&Crypto::Plain, &b, "s").is_err() || !b.is_empty());
        }
    }

    /// Snapshots written before `library` existed read unchanged; one with it round-trips.
    #[test]
    fn library_account_is_optional() {
        let old = r#"{"version":1,"time":5,"hostname":"h","username":"u","source":{"kind":"iphone","device":{"udid":"U","name":"n","model":"m","ios_version":"17"}},"tags":[],"tree":"0000000000000000000000000000000000000000000000000000000000000000","summary":{"files_new":0,"files_changed":0,"files_unchanged":0,"dirs":0,"files_total":0,"bytes_total":0,"bytes_read":0,"bytes_added":0,"blobs_added":0,"errors":0,"duration_ms":0}}"#;
        let s = Snapshot::open(&Crypto::Plain, old.as_bytes(), "s").unwrap();
        assert_eq!(s.library, None);
        let mut s = sample(vec![]);
        s.library = Some(LibraryAccount {
            source: "photos.sqlite".into(),
            schema: Some("ZASSET".into()),
            assets: 10,
            backed_up: 8,
            icloud_only: Some(2),
            not_read: Some(0),
            recently_deleted: Some(1),
            edited: None,
            edits_backed_up: None,
            note: None,
        });
        let c = Crypto::Keyed(MasterKey::generate());
        assert_eq!(Snapshot::open(&c, &s.seal(&c), "s").unwrap(), s);
    }

    #[test]
    fn flipped_bit_is_auth_error() {
        let c = Crypto::Keyed(MasterKey::generate());
        let mut b = sample(vec![]).seal(&c);
        b[30] ^= 4;
        assert!(matches!(
            Snapshot::open(&c, &b, "s"),
            Err(RepoError::Auth(_))
        ));
    }
}
