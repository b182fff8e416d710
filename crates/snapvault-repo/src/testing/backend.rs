//! The backend conformance suite: what every [`Backend`] must do, checked the same way on
//! each (the local folder here; S3 and SFTP in `snapvault-remote/tests/servers.rs`), so the
//! layers above can rely on one set of semantics. Model: restic's `internal/backend/test`.
//!
//! The contract, as these checks state it:
//!
//! - `create_layout` may be called again on a prepared repository.
//! - `write` then `read`, `size`, `exists` and `list` of the same kind see exactly the bytes
//!   written, for every [`FileKind`], an empty file included; `list` shows only that kind.
//! - `read_range` returns exactly the bytes asked for, from the start, the middle, up to the
//!   end and over the whole file (several MiB in one range); a range that runs past the end
//!   is [`RepoError::Corrupt`] (damage, never short data); `read_range_into` leaves the
//!   buffer holding exactly the range.
//! - Files are never replaced: writing other bytes under an existing name fails with
//!   [`RepoError::FileExists`] and the file keeps its bytes. Writing the *same* bytes again
//!   may succeed (a remote backend's retried upload whose reply was lost) or fail with
//!   `FileExists`; the file is unchanged either way.
//! - Of several writers racing to create one lock file with different bytes, exactly one
//!   succeeds (the exclusive-lock marker relies on it).
//! - A missing file: `exists` is false; `read`, `read_range` and `size` fail with
//!   `Corrupt` naming the kind; `age_secs` fails or says unknown (`None`), never an age;
//!   `remove` succeeds (removal is idempotent).
//! - After `remove`, the name is gone from `exists`, `list` and `read`, and can be written
//!   again.
//! - `replace` puts new bytes in place of a file, or creates it.
//! - Names that could leave their folder or hide as temp files are refused, and nothing is
//!   written.
//! - `age_secs` of a new file is unknown or under ten minutes; a backend after ordinary
//!   writes has no leftover temp files.
//! - A pack written in pieces (`begin_pack`, appended, committed) is exactly its bytes under
//!   its name, which nothing lists or reads before the commit; committed under a taken name
//!   it is `FileExists`; a pack dropped before its commit leaves nothing listed and no
//!   temp file.

use std::collections::BTreeMap;

use crate::RepoError;
use crate::storage::{Backend, FileInfo, FileKind};

/// Run every check on `b`, a backend on an empty location (nothing written there yet).
/// `what` names the backend in failure messages. Panics at the first broken promise.
pub fn conformance(b: &dyn Backend, what: &str) {
    let t = Suite { b, what };
    t.layout();
    t.write_read_every_kind();
    t.empty_file();
    t.ranges();
    t.many_packs();
    t.no_replacement();
    t.create_race();
    t.missing_files();
    t.remove_then_write_again();
    t.replace();
    t.bad_names();
    t.age_and_temp_files();
    t.packs_in_pieces();
}

/// Deterministic, incompressible bytes.
pub fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed ^ 0x5EED_CAFE_F00D_D00D;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A content-derived name, as repositories name their files.
fn name_of(data: &[u8]) -> String {
    blake3::hash(data).to_hex().to_string()
}

const KINDS: [FileKind; 6] = [
    FileKind::Config,
    FileKind::Key,
    FileKind::Lock,
    FileKind::Snapshot,
    FileKind::Index,
    FileKind::Pack,
];

struct Suite<'a> {
    b: &'a dyn Backend,
    what: &'a str,
}

impl Suite<'_> {
    fn fail(&self, check: &str, msg: impl std::fmt::Display) -> ! {
        panic!("backend {}: {check}: {msg}", self.what)
    }

    fn ok<T>(&self, check: &str, r: crate::Result<T>) -> T {
        r.unwrap_or_else(|e| self.fail(check, e))
    }

    fn listing(&self, check: &str, kind: FileKind) -> BTreeMap<String, u64> {
        self.ok(check, self.b.list(kind))
            .into_iter()
            .map(|FileInfo { name, size }| (name, size))
            .collect()
    }

    /// `Corrupt` whose object names `kind`, as a reader reports a missing file.
    fn expect_corrupt<T: std::fmt::Debug>(&self, check: &str, kind: FileKind, r: crate::Result<T>) {
        match r {
            Err(RepoError::Corrupt { what, .. }) if what.contains(kind.name()) => {}
            other => self.fail(
                check,
                format!("expected damage naming the {}, got {other:?}", kind.name()),
            ),
        }
    }

    fn layout(&self) {
        let c = "create_layout";
        self.ok(c, self.b.create_layout());
        self.ok(c, self.b.create_layout());
        if self.ok(c, self.b.exists(FileKind::Config, "config")) {
            self.fail(c, "a new location already has a config");
        }
        for kind in KINDS {
            let l = self.listing(c, kind);
            if !l.is_empty() {
                self.fail(
                    c,
                    format!("{} listing of a new location: {l:?}", kind.name()),
                );
            }
        }
    }

    fn write_read_every_kind(&self) {
        let c = "write and read each kind";
        let mut written = BTreeMap::new();
        for (i, kind) in KINDS.into_iter().enumerate() {
            let data = pseudo_random(i as u64, 100 + 1000 * i);
            let name = match kind {
                FileKind::Config => "config".to_string(),
                _ => name_of(&data),
            };
            self.ok(c, self.b.write(kind, &name, &data));
            if !self.ok(c, self.b.exists(kind, &name)) {
                self.fail(c, format!("{} {name} written but not there", kind.name()));
            }
            if self.ok(c, self.b.read(kind, &name)) != data {
                self.fail(c, format!("{} {name} reads other bytes", kind.name()));
            }
            let size = self.ok(c, self.b.size(kind, &name));
            if size != data.len() as u64 {
                self.fail(
                    c,
                    format!("{} {name}: size {size} of {}", kind.name(), data.len()),
                );
            }
            written.insert(kind.name(), (name, data.len() as u64));
        }
        // Each listing holds its own kind's file, and nothing of the others.
        for kind in KINDS {
            let (name, size) = &written[kind.name()];
            let want = BTreeMap::from([(name.clone(), *size)]);
            let got = self.listing(c, kind);
            if got != want {
                self.fail(
                    c,
                    format!("{} listing {got:?}, expected {want:?}", kind.name()),
                );
            }
        }
        for kind in KINDS {
            let (name, _) = &written[kind.name()];
            self.ok(c, self.b.remove(kind, name));
        }
    }

    fn empty_file(&self) {
        let c = "empty file";
        let name = name_of(b"");
        self.ok(c, self.b.write(FileKind::Snapshot, &name, b""));
        if !self
            .ok(c, self.b.read(FileKind::Snapshot, &name))
            .is_empty()
        {
            self.fail(c, "reads bytes");
        }
        if self.ok(c, self.b.size(FileKind::Snapshot, &name)) != 0 {
            self.fail(c, "size is not 0");
        }
        if !self
            .ok(c, self.b.read_range(FileKind::Snapshot, &name, 0, 0))
            .is_empty()
        {
            self.fail(c, "an empty range reads bytes");
        }
        let l = self.listing(c, FileKind::Snapshot);
        if l.get(&name) != Some(&0) {
            self.fail(c, format!("listed as {l:?}"));
        }
        self.ok(c, self.b.remove(FileKind::Snapshot, &name));
    }

    fn ranges(&self) {
        let c = "range reads";
        // Several MiB and an odd length: ranges of every shape, and one over all of it.
        let pack = pseudo_random(7, (4 << 20) + 17);
        let n = name_of(&pack);
        let len = pack.len();
        self.ok(c, self.b.write(FileKind::Pack, &n, &pack));
        let cases: [(usize, usize); 6] = [
            (0, 1),
            (0, 4096),
            (1000, 5000),
            (len - 17, 17),
            (len, 0),
            (0, len),
        ];
        for (off, l) in cases {
            let got = self.ok(c, self.b.read_range(FileKind::Pack, &n, off as u64, l));
            if got.as_slice() != &pack[off..off + l] {
                self.fail(
                    c,
                    format!("{l} bytes at {off}: other bytes ({})", got.len()),
                );
            }
        }
        // The buffer of read_range_into holds exactly the range, whatever it held before.
        let mut buf = vec![0xAA; 100_000];
        self.ok(
            c,
            self.b
                .read_range_into(FileKind::Pack, &n, 3 << 20, 10, &mut buf),
        );
        if buf.as_slice() != &pack[3 << 20..(3 << 20) + 10] {
            self.fail(c, format!("read_range_into left {} bytes", buf.len()));
        }
        self.ok(
            c,
            self.b
                .read_range_into(FileKind::Pack, &n, 5, 2 << 20, &mut buf),
        );
        if buf.as_slice() != &pack[5..5 + (2 << 20)] {
            self.fail(c, "read_range_into of 2 MiB: other bytes");
        }
        // Past the end: damage, never fewer bytes than asked for.
        self.expect_corrupt(
            c,
            FileKind::Pack,
            self.b.read_range(FileKind::Pack, &n, len as u64 - 10, 11),
        );
        self.expect_corrupt(
            c,
            FileKind::Pack,
            self.b.read_range(FileKind::Pack, &n, len as u64 + 100, 1),
        );
        self.ok(c, self.b.remove(FileKind::Pack, &n));
    }

    /// Packs live in 256 folders by their first two hex digits: a listing finds them all.
    fn many_packs(&self) {
        let c = "listing many packs";
        let mut want = BTreeMap::new();
        for i in 0..40u64 {
            let data = pseudo_random(100 + i, i as usize);
            let n = name_of(&[data.as_slice(), &i.to_le_bytes()].concat());
            self.ok(c, self.b.write(FileKind::Pack, &n, &data));
            want.insert(n, data.len() as u64);
        }
        let got = self.listing(c, FileKind::Pack);
        if got != want {
            self.fail(
                c,
                format!("listed {} packs, expected {}", got.len(), want.len()),
            );
        }
        for n in want.keys() {
            self.ok(c, self.b.remove(FileKind::Pack, n));
        }
        if !self.listing(c, FileKind::Pack).is_empty() {
            self.fail(c, "packs listed after removing them all");
        }
    }

    fn no_replacement(&self) {
        let c = "no replacement";
        let data = b"some index bytes".to_vec();
        let n = name_of(&data);
        self.ok(c, self.b.write(FileKind::Index, &n, &data));
        match self.b.write(FileKind::Index, &n, b"other bytes") {
            Err(RepoError::FileExists(_)) => {}
            other => self.fail(c, format!("other bytes under an existing name: {other:?}")),
        }
        match self.b.write(FileKind::Index, &n, &data) {
            Ok(()) | Err(RepoError::FileExists(_)) => {}
            Err(e) => self.fail(c, format!("the same bytes again: {e}")),
        }
        if self.ok(c, self.b.read(FileKind::Index, &n)) != data {
            self.fail(c, "the file changed");
        }
        self.ok(c, self.b.remove(FileKind::Index, &n));
    }

    fn create_race(&self) {
        let c = "create race";
        let name = name_of(b"race");
        let results: Vec<(usize, crate::Result<()>)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let name = &name;
                    s.spawn(move || {
                        let data = format!("writer {i}").into_bytes();
                        (i, self.b.write(FileKind::Lock, name, &data))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| self.fail(c, "a writer panicked"))
                })
                .collect()
        });
        let mut winners = Vec::new();
        for (i, r) in results {
            match r {
                Ok(()) => winners.push(i),
                Err(RepoError::FileExists(_)) => {}
                Err(e) => self.fail(c, format!("writer {i}: {e}")),
            }
        }
        if winners.len() != 1 {
            self.fail(
                c,
                format!("{} of 8 writers succeeded: {winners:?}", winners.len()),
            );
        }
        let held = self.ok(c, self.b.read(FileKind::Lock, &name));
        if held != format!("writer {}", winners[0]).into_bytes() {
            self.fail(c, "the file does not hold the winner's bytes");
        }
        self.ok(c, self.b.remove(FileKind::Lock, &name));
    }

    fn missing_files(&self) {
        let c = "missing files";
        let n = name_of(b"never written");
        for kind in [FileKind::Snapshot, FileKind::Pack] {
            if self.ok(c, self.b.exists(kind, &n)) {
                self.fail(c, format!("{} exists", kind.name()));
            }
            self.expect_corrupt(c, kind, self.b.read(kind, &n));
            self.expect_corrupt(c, kind, self.b.read_range(kind, &n, 0, 1));
            self.expect_corrupt(c, kind, self.b.size(kind, &n));
            // Local and S3 fail; SFTP says "unknown". Either way, never an age.
            if let Ok(Some(a)) = self.b.age_secs(kind, &n) {
                self.fail(c, format!("a missing {} is {a} s old", kind.name()));
            }
            self.ok(c, self.b.remove(kind, &n));
        }
    }

    fn remove_then_write_again(&self) {
        let c = "remove";
        let n = name_of(b"removed");
        self.ok(c, self.b.write(FileKind::Pack, &n, b"first"));
        self.ok(c, self.b.remove(FileKind::Pack, &n));
        if self.ok(c, self.b.exists(FileKind::Pack, &n)) {
            self.fail(c, "still exists");
        }
        if self.listing(c, FileKind::Pack).contains_key(&n) {
            self.fail(c, "still listed");
        }
        self.expect_corrupt(c, FileKind::Pack, self.b.read(FileKind::Pack, &n));
        self.ok(c, self.b.write(FileKind::Pack, &n, b"second"));
        if self.ok(c, self.b.read(FileKind::Pack, &n)) != b"second" {
            self.fail(c, "written again: other bytes");
        }
        self.ok(c, self.b.remove(FileKind::Pack, &n));
    }

    fn replace(&self) {
        let c = "replace";
        self.ok(
            c,
            self.b.replace(FileKind::Config, "config", b"first config"),
        );
        self.ok(c, self.b.replace(FileKind::Config, "config", b"second"));
        if self.ok(c, self.b.read(FileKind::Config, "config")) != b"second" {
            self.fail(c, "the config does not hold the replacement");
        }
        self.ok(c, self.b.remove(FileKind::Config, "config"));
    }

    fn bad_names(&self) {
        let c = "names";
        let before: Vec<_> = KINDS.iter().map(|k| self.listing(c, *k)).collect();
        let bad = [
            (FileKind::Pack, ""),
            (FileKind::Pack, "../escape"),
            (FileKind::Snapshot, "a/b"),
            (FileKind::Index, ".tmp-12345678"),
            (FileKind::Config, "other"),
        ];
        for (kind, name) in bad {
            if self.b.write(kind, name, b"x").is_ok() {
                self.fail(c, format!("wrote {} {name:?}", kind.name()));
            }
            if self.b.read(kind, name).is_ok() {
                self.fail(c, format!("read {} {name:?}", kind.name()));
            }
        }
        let after: Vec<_> = KINDS.iter().map(|k| self.listing(c, *k)).collect();
        if before != after {
            self.fail(c, format!("refused names changed the listings: {after:?}"));
        }
    }

    fn packs_in_pieces(&self) {
        let c = "packs in pieces";
        let data = pseudo_random(77, (4 << 20) + 12_345);
        let n = name_of(&data);
        let mut sink = self.ok(c, self.b.begin_pack(data.len() as u64));
        let (first, rest) = data.split_at(4 << 20);
        self.ok(c, sink.append(first));
        if self.ok(c, self.b.exists(FileKind::Pack, &n))
            || !self.ok(c, self.b.list(FileKind::Pack)).is_empty()
        {
            self.fail(c, "the pack is seen before its commit");
        }
        self.ok(c, sink.append(rest));
        self.ok(c, sink.commit(&n));
        if self.ok(c, self.b.read(FileKind::Pack, &n)) != data {
            self.fail(c, "the bytes read back differ");
        }
        let mut again = self.ok(c, self.b.begin_pack(4));
        self.ok(c, again.append(b"other"));
        match again.commit(&n) {
            Err(RepoError::FileExists(_)) => {}
            other => self.fail(c, format!("other bytes under an existing name: {other:?}")),
        }
        let mut dropped = self.ok(c, self.b.begin_pack(data.len() as u64));
        self.ok(c, dropped.append(first));
        drop(dropped);
        let listed = self.ok(c, self.b.list(FileKind::Pack));
        if listed.len() != 1 {
            self.fail(
                c,
                format!("after a pack dropped before its commit: {listed:?}"),
            );
        }
        let left = self.ok(c, self.b.leftover_temp_files());
        if !left.is_empty() {
            self.fail(c, format!("temp files after a pack dropped: {left:?}"));
        }
        self.ok(c, self.b.remove(FileKind::Pack, &n));
    }

    fn age_and_temp_files(&self) {
        let c = "age and temp files";
        let n = name_of(b"aged");
        self.ok(c, self.b.write(FileKind::Pack, &n, b"aged"));
        match self.ok(c, self.b.age_secs(FileKind::Pack, &n)) {
            None => {}
            Some(a) if a < 600 => {}
            Some(a) => self.fail(c, format!("a new file is {a} s old")),
        }
        let left = self.ok(c, self.b.leftover_temp_files());
        if !left.is_empty() {
            self.fail(c, format!("temp files after ordinary writes: {left:?}"));
        }
        self.ok(c, self.b.remove(FileKind::Pack, &n));
    }
}
