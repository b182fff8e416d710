//! The catalog against a real repository built through the library: snapshots of a folder
//! whose photos come, go and move, with a test inspector that dates files from a table.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use snapvault_catalog::{Catalog, DateRange, KindFilter, PhotoQuery, PhotoRow};
use snapvault_repo::archiver::{self, ArchiveOptions, Inspector, NoHooks};
use snapvault_repo::backend::FileKind;
use snapvault_repo::fs_source::{FolderSource, SourceEntry};
use snapvault_repo::snapshot::Snapshot;
use snapvault_repo::testing::{FAST_KDF, folder_options, local};
use snapvault_repo::tree::MediaMeta;
use snapvault_repo::{Repository, SnapshotId};

/// Capture times by file name; kind by extension; pairing key = path without extension.
struct TestInspector(HashMap<&'static str, &'static str>);

impl Inspector for TestInspector {
    fn inspect(&self, path: &[u8], _head: &[u8], e: &SourceEntry) -> Option<MediaMeta> {
        let name = e.name.lossy();
        let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
        let kind = match ext.as_str() {
            "heic" | "jpg" => "photo",
            "mov" => "video",
            "aae" => "sidecar",
            _ => return None,
        };
        let path = String::from_utf8_lossy(path).into_owned();
        Some(MediaMeta {
            kind: kind.into(),
            taken: self.0.get(name.as_str()).map(|s| s.to_string()),
            date_source: Some("exif".into()),
            pair: path.rsplit_once('.').map(|(stem, _)| stem.to_string()),
            content_id: None,
        })
    }
}

fn dates() -> HashMap<&'static str, &'static str> {
    HashMap::from([
        ("IMG_0001.HEIC", "2023-07-14T10:00:00+02:00"),
        ("IMG_0001.MOV", "2023-07-14T10:00:01+02:00"),
        ("IMG_0002.JPG", "2023-06-30T23:59:59"),
        // Local date 2022-12-31 although it is 2023 in UTC.
        ("IMG_0003.HEIC", "2022-12-31T23:30:00-05:00"),
        ("IMG_0100.MOV", "2024-03-01T08:00:00+01:00"),
        ("IMG_0101.HEIC", "2024-03-05T12:00:00+01:00"),
        // A Live Photo whose video is a second later, across a month boundary.
        ("IMG_0200.HEIC", "2023-07-31T23:59:59+02:00"),
        ("IMG_0200.MOV", "2023-08-01T00:00:00+02:00"),
        ("OTHER.JPG", "2023-07-20T09:00:00"),
    ])
}

struct Env {
    _dir: tempfile::TempDir,
    root: PathBuf,
    repo: Repository,
    inspector: TestInspector,
    /// Last snapshot per source folder, as parent for the next.
    parents: HashMap<PathBuf, (SnapshotId, Snapshot)>,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let repo = Repository::init(local(&root.join("repo")), None, FAST_KDF).unwrap();
        Env {
            _dir: dir,
            root,
            repo,
            inspector: TestInspector(dates()),
            parents: HashMap::new(),
        }
    }

    fn src(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Write a file with distinct content derived from its name (and a variant).
    fn put(&self, rel: &str, variant: u8) {
        let p = self.src(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        let mut data = format!("content of {rel} v{variant}\n").into_bytes();
        data.resize(3000 + rel.len() * 7, variant);
        fs::write(p, data).unwrap();
    }

    fn snapshot(&mut self, folder: &str) -> SnapshotId {
        let path = self.src(folder);
        let source = FolderSource::new(std::slice::from_ref(&path)).unwrap();
        let index = self.repo.load_index().unwrap().index;
        let opts = ArchiveOptions {
            parent: self.parents.get(&path).cloned(),
            ..folder_options(&source)
        };
        let (id, snap) =
            archiver::run(&self.repo, index, &source, opts, &NoHooks, &self.inspector).unwrap();
        self.parents.insert(path, (id, snap));
        id
    }

    fn catalog_path(&self) -> PathBuf {
        self.root.join("cache").join("catalog.sqlite")
    }

    fn sync(&self, cat: &mut Catalog) -> snapvault_catalog::SyncStats {
        let index = self.repo.load_index().unwrap().index;
        cat.sync(&self.repo, &index).unwrap()
    }
}

fn names(rows: &[PhotoRow]) -> Vec<String> {
    let mut v: Vec<String> = rows
        .iter()
        .map(|r| r.latest_path.rsplit('/').next().unwrap().to_string())
        .collect();
    v.sort();
    v
}

fn query(dates: Option<&str>, kind: Option<KindFilter>) -> PhotoQuery {
    PhotoQuery {
        dates: dates.map(|d| d.parse::<DateRange>().unwrap()),
        kind,
        ..PhotoQuery::default()
    }
}

fn by_name<'a>(rows: &'a [PhotoRow], name: &str) -> &'a PhotoRow {
    rows.iter()
        .find(|r| r.latest_path.ends_with(&format!("/{name}")))
        .unwrap_or_else(|| panic!("{name} not in {:?}", names(rows)))
}

/// Three snapshots of `lib`: IMG_0002 deleted before the second, IMG_0003 moved, new
/// photos added; one snapshot of another source `other`.
fn build() -> (Env, [SnapshotId; 4]) {
    let mut env = Env::new();
    for f in [
        "lib/DCIM/100APPLE/IMG_0001.HEIC",
        "lib/DCIM/100APPLE/IMG_0001.MOV",
        "lib/DCIM/100APPLE/IMG_0001.AAE",
        "lib/DCIM/100APPLE/IMG_0002.JPG",
        "lib/DCIM/100APPLE/IMG_0003.HEIC",
        "lib/DCIM/101APPLE/IMG_0100.MOV",
        "lib/notes.txt",
        "other/OTHER.JPG",
    ] {
        env.put(f, 1);
    }
    let s1 = env.snapshot("lib");
    fs::remove_file(env.src("lib/DCIM/100APPLE/IMG_0002.JPG")).unwrap();
    fs::create_dir_all(env.src("lib/Archive")).unwrap();
    fs::rename(
        env.src("lib/DCIM/100APPLE/IMG_0003.HEIC"),
        env.src("lib/Archive/IMG_0003.HEIC"),
    )
    .unwrap();
    env.put("lib/DCIM/101APPLE/IMG_0101.HEIC", 1);
    let s2 = env.snapshot("lib");
    env.put("lib/DCIM/102APPLE/IMG_0200.HEIC", 1);
    env.put("lib/DCIM/102APPLE/IMG_0200.MOV", 1);
    let s3 = env.snapshot("lib");
    let s4 = env.snapshot("other");
    (env, [s1, s2, s3, s4])
}

#[test]
fn queries_across_snapshot_history() {
    let (env, [s1, s2, s3, s4]) = build();
    let mut cat = Catalog::open(&env.catalog_path()).unwrap();
    assert!(cat.recreated().is_none());
    let stats = env.sync(&mut cat);
    assert_eq!(stats.snapshots_added, 4);
    assert!(stats.failed.is_empty(), "{:?}", stats.failed);

    let all = cat.photos(&PhotoQuery::default()).unwrap();
    // The same rows, unordered (what browse's timeline counts).
    let mut unordered = cat.photos_unordered(&PhotoQuery::default()).unwrap();
    unordered.sort_by(|a, b| a.content_key.cmp(&b.content_key));
    let mut sorted = all.clone();
    sorted.sort_by(|a, b| a.content_key.cmp(&b.content_key));
    assert_eq!(unordered, sorted);
    assert_eq!(
        names(&all),
        [
            "IMG_0001.HEIC",
            "IMG_0001.MOV",
            "IMG_0002.JPG",
            "IMG_0003.HEIC",
            "IMG_0100.MOV",
            "IMG_0101.HEIC",
            "IMG_0200.HEIC",
            "IMG_0200.MOV",
            "OTHER.JPG"
        ],
        "sidecars and non-media files are not photos"
    );
    // Ordered by capture time.
    let taken: Vec<_> = all.iter().map(|r| r.taken.clone().unwrap()).collect();
    let mut sorted = taken.clone();
    sorted.sort();
    assert_eq!(taken, sorted);

    let table: &[(&str, &[&str])] = &[
        (
            "2023",
            &[
                "IMG_0001.HEIC",
                "IMG_0001.MOV",
                "IMG_0002.JPG",
                "IMG_0200.HEIC",
                "IMG_0200.MOV",
                "OTHER.JPG",
            ],
        ),
        (
            "2023-07",
            &[
                "IMG_0001.HEIC",
                "IMG_0001.MOV",
                "IMG_0200.HEIC",
                "OTHER.JPG",
            ],
        ),
        ("2023-07-14", &["IMG_0001.HEIC", "IMG_0001.MOV"]),
        ("2023-07-31", &["IMG_0200.HEIC"]),
        ("2023-06-30", &["IMG_0002.JPG"]),
        (
            "2023-06..2023-07",
            &[
                "IMG_0001.HEIC",
                "IMG_0001.MOV",
                "IMG_0002.JPG",
                "IMG_0200.HEIC",
                "OTHER.JPG",
            ],
        ),
        (
            "2023-07-15..2023-08-01",
            &["IMG_0200.HEIC", "IMG_0200.MOV", "OTHER.JPG"],
        ),
        ("..2022", &["IMG_0003.HEIC"]),
        ("..2022-12-31", &["IMG_0003.HEIC"]),
        ("2024-03..", &["IMG_0100.MOV", "IMG_0101.HEIC"]),
        ("2024-03-02..", &["IMG_0101.HEIC"]),
        ("2019", &[]),
    ];
    for (d, want) in table {
        let got = cat.photos(&query(Some(d), None)).unwrap();
        assert_eq!(names(&got), *want, "--date {d}");
    }

    let kinds: &[(KindFilter, &[&str])] = &[
        (
            KindFilter::Video,
            &["IMG_0001.MOV", "IMG_0100.MOV", "IMG_0200.MOV"],
        ),
        (KindFilter::Live, &["IMG_0001.HEIC", "IMG_0200.HEIC"]),
        (
            KindFilter::Photo,
            &[
                "IMG_0001.HEIC",
                "IMG_0002.JPG",
                "IMG_0003.HEIC",
                "IMG_0101.HEIC",
                "IMG_0200.HEIC",
                "OTHER.JPG",
            ],
        ),
    ];
    for (k, want) in kinds {
        assert_eq!(
            names(&cat.photos(&query(None, Some(*k))).unwrap()),
            *want,
            "{k}"
        );
    }
    let live_july = cat
        .photos(&query(Some("2023-07"), Some(KindFilter::Live)))
        .unwrap();
    assert_eq!(names(&live_july), ["IMG_0001.HEIC", "IMG_0200.HEIC"]);
    assert!(live_july.iter().all(|r| r.live));
    assert!(!by_name(&all, "IMG_0003.HEIC").live);

    // Deleted from the source before the latest snapshot: still found, in the old one.
    let gone = by_name(&all, "IMG_0002.JPG");
    assert_eq!(gone.latest_snapshot, s1);
    assert_eq!(gone.snapshot_count, 1);
    assert_eq!(gone.latest_path, "lib/DCIM/100APPLE/IMG_0002.JPG");
    assert_eq!(gone.kind, "photo");
    // Moved: the most recent path, counted in all three snapshots of lib.
    let moved = by_name(&all, "IMG_0003.HEIC");
    assert_eq!(moved.latest_path, "lib/Archive/IMG_0003.HEIC");
    assert_eq!(moved.latest_snapshot, s3);
    assert_eq!(moved.snapshot_count, 3);
    let first = by_name(&all, "IMG_0001.HEIC");
    assert_eq!(first.snapshot_count, 3);
    assert_eq!(first.latest_snapshot, s3);
    assert_eq!(first.pair.as_deref(), Some("lib/DCIM/100APPLE/IMG_0001"));
    assert_eq!(first.taken.as_deref(), Some("2023-07-14T10:00:00+02:00"));
    assert_eq!(first.date_source.as_deref(), Some("exif"));
    let newer = by_name(&all, "IMG_0101.HEIC");
    assert_eq!((newer.snapshot_count, newer.latest_snapshot), (2, s3));
    let other = by_name(&all, "OTHER.JPG");
    assert_eq!((other.snapshot_count, other.latest_snapshot), (1, s4));
    assert_eq!(other.latest_path, "other/OTHER.JPG");
    let snap3 = env.repo.load_snapshot(&s3).unwrap();
    assert_eq!(first.latest_time, snap3.time);

    // The content ids restore the exact bytes; size and mode come along.
    let index = env.repo.load_index().unwrap().index;
    for r in &all {
        let mut bytes = Vec::new();
        for b in &r.content {
            bytes.extend(env.repo.read_blob(&index, b).unwrap());
        }
        // (IMG_0002 is no longer on disk; the others are where the catalog says.)
        if let Ok(d) = fs::read(env.src(&r.latest_path)) {
            assert_eq!(bytes, d, "{}", r.latest_path);
        }
        assert_eq!(bytes.len() as u64, r.size);
        assert_eq!(r.mode & 0o400, 0o400);
        assert_eq!(r.content_key.len(), 64);
    }

    // Restricted to one snapshot: what it held, where it held it.
    let only1 = PhotoQuery {
        snapshots: Some(vec![s1]),
        ..PhotoQuery::default()
    };
    let rows = cat.photos(&only1).unwrap();
    assert_eq!(
        names(&rows),
        [
            "IMG_0001.HEIC",
            "IMG_0001.MOV",
            "IMG_0002.JPG",
            "IMG_0003.HEIC",
            "IMG_0100.MOV"
        ]
    );
    assert!(
        rows.iter()
            .all(|r| r.snapshot_count == 1 && r.latest_snapshot == s1)
    );
    assert_eq!(
        by_name(&rows, "IMG_0003.HEIC").latest_path,
        "lib/DCIM/100APPLE/IMG_0003.HEIC"
    );
    let two = PhotoQuery {
        snapshots: Some(vec![s1, s2]),
        dates: Some("..2022".parse().unwrap()),
        ..PhotoQuery::default()
    };
    let rows = cat.photos(&two).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].snapshot_count, rows[0].latest_snapshot), (2, s2));
    assert_eq!(rows[0].latest_path, "lib/Archive/IMG_0003.HEIC");
    let unknown = PhotoQuery {
        snapshots: Some(vec![SnapshotId::default()]),
        ..PhotoQuery::default()
    };
    assert!(
        cat.photos(&unknown)
            .unwrap_err()
            .to_string()
            .contains("not in the photo catalog")
    );

    // Restricted to one source.
    let snap4 = env.repo.load_snapshot(&s4).unwrap();
    let by_source = PhotoQuery {
        source_key: Some(snap4.source.group_key(&snap4.hostname)),
        ..PhotoQuery::default()
    };
    assert_eq!(names(&cat.photos(&by_source).unwrap()), ["OTHER.JPG"]);
    let lib_key = snap3.source.group_key(&snap3.hostname);
    let lib_july = PhotoQuery {
        source_key: Some(lib_key),
        dates: Some("2023-07".parse().unwrap()),
        ..PhotoQuery::default()
    };
    let rows = cat.photos(&lib_july).unwrap();
    assert_eq!(
        names(&rows),
        ["IMG_0001.HEIC", "IMG_0001.MOV", "IMG_0200.HEIC"]
    );

    // Companions: the sidecar and the Live video dated into August come along.
    let comp = cat.companions(&lib_july, &rows).unwrap();
    assert_eq!(names(&comp), ["IMG_0001.AAE", "IMG_0200.MOV"]);
    assert_eq!(by_name(&comp, "IMG_0001.AAE").kind, "sidecar");
    assert!(by_name(&comp, "IMG_0001.AAE").taken.is_none());
    // Within the selection only: in snapshot 1 there was no IMG_0200 at all.
    let comp1 = cat
        .companions(&only1, &cat.photos(&only1).unwrap())
        .unwrap();
    assert_eq!(names(&comp1), ["IMG_0001.AAE"]);
    assert!(cat.companions(&lib_july, &[]).unwrap().is_empty());
}

fn snapshot_answers(cat: &Catalog, snaps: &[SnapshotId]) -> BTreeMap<String, Vec<PhotoRow>> {
    let mut out = BTreeMap::new();
    let mut qs = vec![
        ("all".to_string(), PhotoQuery::default()),
        ("2023-07".to_string(), query(Some("2023-07"), None)),
        ("video".to_string(), query(None, Some(KindFilter::Video))),
        ("live".to_string(), query(None, Some(KindFilter::Live))),
    ];
    for s in snaps {
        qs.push((
            format!("snap {s}"),
            PhotoQuery {
                snapshots: Some(vec![*s]),
                ..PhotoQuery::default()
            },
        ));
    }
    for (name, q) in qs {
        let rows = cat.photos(&q).unwrap();
        let comp = cat.companions(&q, &rows).unwrap();
        out.insert(name.clone(), rows);
        out.insert(format!("{name} companions"), comp);
    }
    out
}

#[test]
fn deleted_or_damaged_catalog_is_rebuilt_identically() {
    let (env, snaps) = build();
    let path = env.catalog_path();
    let mut cat = Catalog::open(&path).unwrap();
    env.sync(&mut cat);
    let before = snapshot_answers(&cat, &snaps);
    let counts = cat.counts().unwrap();
    assert_eq!(counts.snapshots, 4);
    drop(cat);

    // Deleted: reopened empty, sync rebuilds the same answers.
    fs::remove_file(&path).unwrap();
    let mut cat = Catalog::open(&path).unwrap();
    assert_eq!(cat.counts().unwrap().snapshots, 0);
    assert!(cat.photos(&PhotoQuery::default()).unwrap().is_empty());
    let stats = env.sync(&mut cat);
    assert_eq!(stats.snapshots_added, 4);
    assert_eq!(snapshot_answers(&cat, &snaps), before);
    assert_eq!(cat.counts().unwrap(), counts);
    drop(cat);

    // Garbage: open recovers.
    fs::write(
        &path,
        b"this is not a database, just some junk bytes".repeat(100),
    )
    .unwrap();
    let mut cat = Catalog::open(&path).unwrap();
    assert!(cat.recreated().is_some());
    env.sync(&mut cat);
    assert_eq!(snapshot_answers(&cat, &snaps), before);
    drop(cat);

    // Truncated in the middle: open recovers too.
    let len = fs::metadata(&path).unwrap().len();
    assert!(len > 8192);
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..(len / 2) as usize]).unwrap();
    let mut cat = Catalog::open(&path).unwrap();
    assert!(cat.recreated().is_some());
    env.sync(&mut cat);
    assert_eq!(snapshot_answers(&cat, &snaps), before);

    // A catalog of another repository is emptied, not mixed in.
    let other = Env::new();
    let stats = other.sync(&mut cat);
    assert!(stats.reset);
    assert_eq!(cat.counts().unwrap(), Default::default());
    let stats = env.sync(&mut cat);
    assert!(stats.reset);
    assert_eq!(snapshot_answers(&cat, &snaps), before);
}

#[test]
fn sync_follows_the_repository() {
    let (mut env, [s1, s2, s3, s4]) = build();
    let mut cat = Catalog::open(&env.catalog_path()).unwrap();
    let first = env.sync(&mut cat);
    assert_eq!(first.snapshots_added, 4);

    // Nothing new: nothing done.
    let again = env.sync(&mut cat);
    assert!(!again.changed(), "{again:?}");

    // An unchanged source: the new snapshot's root tree is known, no tree is read.
    let s5 = env.snapshot("lib");
    let stats = env.sync(&mut cat);
    assert_eq!(stats.snapshots_added, 1);
    assert_eq!(
        (stats.added.trees, stats.added.files, stats.added.photos),
        (0, 0, 0)
    );
    let all = cat.photos(&PhotoQuery::default()).unwrap();
    assert_eq!(by_name(&all, "IMG_0001.HEIC").snapshot_count, 4);
    assert_eq!(by_name(&all, "IMG_0001.HEIC").latest_snapshot, s5);

    // One new photo in one folder: only that folder and its ancestors are new trees
    // (lib root, lib/DCIM, lib/DCIM/102APPLE), and only one photo.
    env.put("lib/DCIM/102APPLE/IMG_0201.HEIC", 1);
    let _s6 = env.snapshot("lib");
    let stats = env.sync(&mut cat);
    assert_eq!(stats.added.trees, 4, "{stats:?}");
    assert_eq!(stats.added.photos, 1, "{stats:?}");
    assert_eq!(
        stats.added.files, 3,
        "the changed folder's media files: {stats:?}"
    );

    // Snapshots forgotten in the repository disappear from the catalog, with what only
    // they held.
    let before = cat.counts().unwrap();
    for s in [s1, s5] {
        env.repo
            .backend()
            .remove(FileKind::Snapshot, &s.to_hex())
            .unwrap();
    }
    let stats = env.sync(&mut cat);
    assert_eq!(stats.snapshots_removed, 2);
    assert_eq!(stats.snapshots_added, 0);
    let after = cat.counts().unwrap();
    assert_eq!(after.snapshots, before.snapshots - 2);
    assert!(after.trees < before.trees, "{before:?} → {after:?}");
    let all = cat.photos(&PhotoQuery::default()).unwrap();
    assert!(
        !names(&all).contains(&"IMG_0002.JPG".to_string()),
        "only the forgotten snapshot held it"
    );
    assert_eq!(by_name(&all, "IMG_0003.HEIC").snapshot_count, 3);
    let only1 = PhotoQuery {
        snapshots: Some(vec![s1]),
        ..PhotoQuery::default()
    };
    assert!(cat.photos(&only1).is_err());

    // The incrementally maintained catalog equals one rebuilt from scratch.
    let fresh_path = env.root.join("fresh.sqlite");
    let mut fresh = Catalog::open(&fresh_path).unwrap();
    env.sync(&mut fresh);
    let live = [s2, s3, s4];
    assert_eq!(
        snapshot_answers(&cat, &live),
        snapshot_answers(&fresh, &live)
    );
    assert_eq!(cat.counts().unwrap(), fresh.counts().unwrap());
}

#[test]
fn default_path_is_per_repository() {
    let p = snapvault_catalog::default_path("0123abcd").unwrap();
    assert!(
        p.ends_with(Path::new("snapvault/catalog-0123abcd.sqlite")),
        "{p:?}"
    );
    assert!(snapvault_catalog::default_path("../etc").is_err());
}

/// Overwrite the root page of `table` with garbage (the catalog must be closed).
fn smash(path: &Path, table: &str) {
    let (root, page): (i64, i64) = {
        let c = rusqlite::Connection::open(path).unwrap();
        let root = c
            .query_row(
                "SELECT rootpage FROM sqlite_master WHERE name = ?1",
                [table],
                |r| r.get(0),
            )
            .unwrap();
        let page = c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
        (root, page)
    };
    let mut bytes = fs::read(path).unwrap();
    let at = ((root - 1) * page) as usize;
    for (i, b) in bytes[at..at + page as usize].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37) ^ 0x5a;
    }
    fs::write(path, bytes).unwrap();
}

#[test]
fn damage_inside_the_photo_tables_is_repaired() {
    let (env, snaps) = build();
    let path = env.catalog_path();
    let index = env.repo.load_index().unwrap().index;
    let mut cat = Catalog::open(&path).unwrap();
    env.sync(&mut cat);
    let before = snapshot_answers(&cat, &snaps);
    drop(cat);

    // A damaged `files` page: the query is answered from a rebuilt catalog.
    smash(&path, "files");
    let mut cat = Catalog::open(&path).unwrap();
    let all = cat
        .retry_on_damage(&env.repo, &index, |c| c.photos(&PhotoQuery::default()))
        .unwrap();
    assert_eq!(all, before["all"]);
    assert!(cat.recreated().is_some());
    assert_eq!(snapshot_answers(&cat, &snaps), before);
    assert_eq!(cat.verify().unwrap(), None);
    drop(cat);

    // The full check finds damage in `contents` and starts afresh.
    smash(&path, "contents");
    let mut cat = Catalog::open(&path).unwrap();
    let problem = cat.verify().unwrap();
    assert!(problem.is_some());
    assert_eq!(cat.counts().unwrap().snapshots, 0);
    env.sync(&mut cat);
    assert_eq!(snapshot_answers(&cat, &snaps), before);
    drop(cat);

    // Damage in a small table is caught when opening.
    smash(&path, "snapshot_dirs");
    let mut cat = Catalog::open(&path).unwrap();
    assert!(cat.recreated().is_some());
    env.sync(&mut cat);
    assert_eq!(snapshot_answers(&cat, &snaps), before);
}

/// Reads trees from the repository, except one that "cannot be read".
struct Flaky<'a> {
    repo: &'a Repository,
    index: &'a snapvault_repo::index::Index,
    broken: snapvault_repo::BlobId,
}

impl snapvault_repo::walk::TreeSource for Flaky<'_> {
    fn load_tree(
        &self,
        id: &snapvault_repo::BlobId,
    ) -> Result<snapvault_repo::tree::Tree, snapvault_repo::RepoError> {
        if *id == self.broken {
            return Err(snapvault_repo::RepoError::MissingBlob(id.to_hex()));
        }
        self.repo.load_tree(self.index, id)
    }
}

#[test]
fn unreadable_snapshot_is_skipped_then_retried() {
    let (env, [s1, s2, s3, s4]) = build();
    let index = env.repo.load_index().unwrap().index;
    let (snaps, _) = env.repo.snapshots().unwrap();
    // Snapshot 3's new folder (102APPLE) cannot be read.
    let s3_tree = env.repo.load_snapshot(&s3).unwrap().tree;
    let mut t = env.repo.load_tree(&index, &s3_tree).unwrap();
    for part in ["lib", "DCIM", "102APPLE"] {
        let sub = t
            .nodes
            .iter()
            .find(|n| n.name.lossy() == part)
            .unwrap()
            .subtree
            .unwrap();
        if part == "102APPLE" {
            let flaky = Flaky {
                repo: &env.repo,
                index: &index,
                broken: sub,
            };
            let mut cat = Catalog::open(&env.catalog_path()).unwrap();
            let stats = cat
                .sync_with(&env.repo.config().id, &flaky, &snaps, &[], &|_| false)
                .unwrap();
            assert_eq!(stats.snapshots_added, 3);
            assert_eq!(stats.failed.len(), 1);
            assert_eq!(stats.failed[0].0, s3);
            assert!(
                stats.failed[0].1.contains(&sub.to_hex()),
                "{:?}",
                stats.failed
            );
            // Nothing of the failed snapshot was kept; the others answer.
            let all = cat.photos(&PhotoQuery::default()).unwrap();
            assert!(!names(&all).contains(&"IMG_0200.HEIC".to_string()));
            assert_eq!(by_name(&all, "IMG_0001.HEIC").snapshot_count, 2);
            assert_eq!(by_name(&all, "IMG_0001.HEIC").latest_snapshot, s2);
            assert!(
                cat.photos(&PhotoQuery {
                    snapshots: Some(vec![s3]),
                    ..PhotoQuery::default()
                })
                .is_err()
            );
            // The next sync picks it up.
            let stats = env.sync(&mut cat);
            assert_eq!((stats.snapshots_added, stats.snapshots_removed), (1, 0));
            let all = cat.photos(&PhotoQuery::default()).unwrap();
            assert_eq!(by_name(&all, "IMG_0001.HEIC").snapshot_count, 3);
            assert_eq!(by_name(&all, "IMG_0200.HEIC").latest_snapshot, s3);
            assert_eq!(by_name(&all, "OTHER.JPG").latest_snapshot, s4);
            assert_eq!(by_name(&all, "IMG_0002.JPG").latest_snapshot, s1);
            return;
        }
        t = env.repo.load_tree(&index, &sub).unwrap();
    }
    unreachable!();
}

#[test]
fn two_processes_syncing_at_once_agree() {
    let (env, snaps) = build();
    let path = env.catalog_path();
    // Create it first so that both open the same valid file.
    drop(Catalog::open(&path).unwrap());
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut cat = Catalog::open(&path).unwrap();
                    let stats = env.sync(&mut cat);
                    (stats.snapshots_added, snapshot_answers(&cat, &snaps))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results[0].0 + results[1].0, 4, "each snapshot indexed once");
    assert_eq!(results[0].1, results[1].1);
    let fresh = env.root.join("fresh.sqlite");
    let mut cat = Catalog::open(&fresh).unwrap();
    env.sync(&mut cat);
    assert_eq!(snapshot_answers(&cat, &snaps), results[0].1);
}

/// A phone library is stored once per database content, shared by the snapshots that hold
/// it, and goes with the last of them.
#[test]
fn library_facts_are_shared_and_dropped_with_their_snapshots() {
    use snapvault_catalog::LibraryAsset;
    let (mut env, [s1, s2, ..]) = build();
    let s5 = env.snapshot("lib");
    let mut cat = Catalog::open(&env.catalog_path()).unwrap();
    env.sync(&mut cat);
    let pending: Vec<SnapshotId> = cat
        .snapshots_without_library()
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert!(
        pending.contains(&s1) && pending.contains(&s5),
        "{pending:?}"
    );
    let fav = LibraryAsset {
        path: "DCIM/100APPLE/IMG_0001.HEIC".into(),
        kind: "photo".into(),
        taken: Some("2023-07-14T18:03:11+02:00".into()),
        favorite: true,
        albums: vec!["Holidays".into(), "Family".into()],
        ..LibraryAsset::default()
    };
    let cloud = LibraryAsset {
        path: "DCIM/100APPLE/IMG_9000.HEIC".into(),
        kind: "photo".into(),
        cloud_only: true,
        trashed: true,
        burst: Some("B1".into()),
        ..LibraryAsset::default()
    };
    let assets = [fav.clone(), cloud.clone()];
    cat.set_library(&s1, r#"{"assets":2}"#, Some((b"db-1", "ZASSET", &assets)))
        .unwrap();
    assert!(cat.has_library_db(b"db-1").unwrap());
    // A second snapshot with the same database: its assets are not written again.
    cat.set_library(&s5, r#"{"assets":2}"#, Some((b"db-1", "", &[])))
        .unwrap();
    cat.set_library(&s2, "null", None).unwrap();
    let mut got = cat.library_of(&s5).unwrap().expect("recorded").assets;
    got.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(got, vec![fav, cloud]);
    assert_eq!(
        cat.library_of(&s2).unwrap().expect("recorded").assets,
        vec![]
    );
    let pending = cat.snapshots_without_library().unwrap();
    assert!(pending.iter().all(|(id, _)| ![s1, s2, s5].contains(id)));

    // Forget s1: s5 still holds the database. Forget s5 too: it goes.
    env.repo
        .backend()
        .remove(FileKind::Snapshot, &s1.to_hex())
        .unwrap();
    env.sync(&mut cat);
    assert!(cat.has_library_db(b"db-1").unwrap());
    assert_eq!(cat.library_of(&s5).unwrap().expect("kept").assets.len(), 2);
    env.repo
        .backend()
        .remove(FileKind::Snapshot, &s5.to_hex())
        .unwrap();
    env.sync(&mut cat);
    assert!(!cat.has_library_db(b"db-1").unwrap());
    assert!(cat.library_of(&s5).unwrap().is_none());
}
