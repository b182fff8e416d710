//! Security properties of the repository library (threat model: docs/security.md):
//! every sealed object authenticates, ids and chunk boundaries are per repository, files
//! are owner-only, a wrong password changes nothing, stored blob lengths are padded.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rand::{RngCore, SeedableRng};
use snapvault_repo::archiver::{self, ArchiveOptions, NoHooks};
use snapvault_repo::backend::FileKind;
use snapvault_repo::blob;
use snapvault_repo::chunker::Chunker;
use snapvault_repo::config::{ChunkerParams, Config};
use snapvault_repo::crypto::{Crypto, MasterKey, SEAL_OVERHEAD};
use snapvault_repo::fs_source::FolderSource;
use snapvault_repo::index::{Index, IndexFile};
use snapvault_repo::keyfile::{KdfParams, KeyFile};
use snapvault_repo::lock::LockInfo;
use snapvault_repo::pack;
use snapvault_repo::snapshot::Snapshot;
use snapvault_repo::testing::{FAST_KDF, flipped, folder_options, local, noise, write};
use snapvault_repo::{RepoError, Repository, SnapshotId};

const PW: &[u8] = b"a password nobody guesses";
const FAST: KdfParams = FAST_KDF;

fn init(root: &Path) -> Repository {
    Repository::init(local(root), Some(PW), FAST).unwrap()
}

fn open(root: &Path) -> Repository {
    Repository::open(local(root), || Ok(PW.to_vec())).unwrap()
}

fn snapshot(repo: &Repository, src: &Path) -> SnapshotId {
    let folder = FolderSource::new(&[src.to_path_buf()]).unwrap();
    let index = repo.load_index().unwrap().index;
    let opts = ArchiveOptions {
        tags: vec!["tag".into()],
        ..folder_options(&folder)
    };
    archiver::run(repo, index, &folder, opts, &NoHooks, &NoHooks)
        .unwrap()
        .0
}

/// An encrypted repository with one snapshot of a few files (two of several chunks) and
/// one folder level.
fn sample_repo(dir: &Path) -> (PathBuf, Repository) {
    let src = dir.join("src");
    write(&src.join("IMG_0001.HEIC"), &noise(1, 300_000));
    write(&src.join("sub/IMG_0002.JPG"), &noise(2, 2_500_000));
    write(&src.join("notes.txt"), &b"compressible text ".repeat(5000));
    let root = dir.join("repo");
    let repo = init(&root);
    snapshot(&repo, &src);
    (root, repo)
}

fn is_auth(r: &Result<impl std::fmt::Debug, RepoError>) -> bool {
    matches!(r, Err(RepoError::Auth(_)))
}

/// One flipped bit at every byte of every snapshot, index file and lock: an authentication
/// error every time, never a decoded object.
#[test]
fn flipped_bits_in_snapshots_index_files_and_locks_fail_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let (root, repo) = sample_repo(dir.path());
    let be = repo.backend().clone();
    let crypto = repo.crypto();
    let _lock = repo.lock(false, "snapshot").unwrap();
    let mut checked = 0;
    for (kind, open) in [
        (
            FileKind::Snapshot,
            (&|c: &Crypto, b: &[u8]| Snapshot::open(c, b, "s").map(|_| ()))
                as &dyn Fn(&Crypto, &[u8]) -> Result<(), RepoError>,
        ),
        (FileKind::Index, &|c: &Crypto, b: &[u8]| {
            IndexFile::open(c, b, "i").map(|_| ())
        }),
        (FileKind::Lock, &|c: &Crypto, b: &[u8]| {
            LockInfo::decode(c, b, "l").map(|_| ())
        }),
    ] {
        let files = be.list(kind).unwrap();
        assert!(!files.is_empty(), "no {kind:?} file");
        for f in files {
            let bytes = be.read(kind, &f.name).unwrap();
            open(crypto, &bytes).unwrap();
            for i in 0..bytes.len() {
                let bad = flipped(&bytes, i, i);
                let r = open(crypto, &bad);
                assert!(
                    is_auth(&r),
                    "{kind:?} {}: bit flip at byte {i}: {r:?}",
                    f.name
                );
                checked += 1;
            }
            // Truncated or extended: an error, never a panic or a decoded object.
            for cut in [0, 1, 23, 24, 39, 40, bytes.len() - 1] {
                assert!(
                    open(crypto, &bytes[..cut]).is_err(),
                    "{kind:?} cut at {cut}"
                );
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(open(crypto, &longer).is_err());
        }
    }
    // Through the repository, a changed snapshot file is refused by its name already.
    let (sid, _) = repo.find_snapshot("latest").unwrap();
    let p = root.join("snapshots").join(sid.to_hex());
    let bytes = std::fs::read(&p).unwrap();
    std::fs::remove_file(&p).unwrap();
    std::fs::write(&p, flipped(&bytes, bytes.len() / 2, 3)).unwrap();
    assert!(repo.load_snapshot(&sid).is_err());
    assert!(checked > 1000, "{checked}");
}

/// Packs: a flipped bit in the sealed header is an authentication error for the whole
/// pack; in a blob, an authentication error for that blob (the header still reads).
#[test]
fn flipped_bits_in_packs_fail_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let (_root, repo) = sample_repo(dir.path());
    let be = repo.backend();
    let crypto = repo.crypto();
    let packs = be.list(FileKind::Pack).unwrap();
    assert!(packs.len() >= 2, "data and tree packs");
    let mut blobs_checked = 0;
    for f in packs {
        let bytes = be.read(FileKind::Pack, &f.name).unwrap();
        let entries = pack::parse_pack(crypto, &bytes, "p").unwrap();
        let data_len: usize = entries.iter().map(|e| e.length as usize).sum();
        // Every byte of the sealed header and the trailer.
        for i in data_len..bytes.len() {
            let r = pack::parse_pack(crypto, &flipped(&bytes, i, i), "p");
            if i < bytes.len() - 4 {
                assert!(is_auth(&r), "pack {}: header byte {i}: {r:?}", f.name);
            } else {
                assert!(r.is_err(), "pack {}: trailer byte {i}", f.name);
            }
        }
        // Blobs: the nonce, the tag, the first and last bytes, and a spread in between.
        for e in &entries {
            let (start, len) = (e.offset as usize, e.length as usize);
            let stored = &bytes[start..start + len];
            blob::decode(crypto, &e.id, e.compressed, e.raw_len, stored).unwrap();
            let mut positions: Vec<usize> = (0..64.min(len)).collect();
            positions.extend(len.saturating_sub(64)..len);
            positions.extend((0..len).step_by(len / 50 + 1));
            for i in positions {
                let r = blob::decode(
                    crypto,
                    &e.id,
                    e.compressed,
                    e.raw_len,
                    &flipped(stored, i, i),
                );
                assert!(
                    is_auth(&r),
                    "blob {}: byte {i} of {len}: {r:?}",
                    e.id.short()
                );
            }
            // The whole pack still opens: damage stays local to the blob.
            let mut damaged = bytes.clone();
            damaged[start + len / 2] ^= 0x10;
            assert_eq!(pack::parse_pack(crypto, &damaged, "p").unwrap(), entries);
            blobs_checked += 1;
        }
    }
    assert!(blobs_checked >= 5, "{blobs_checked}");
}

/// Config: the MAC covers every field; a flipped bit is refused (as JSON, as out of range,
/// or as an authentication error) and never yields a usable, different config.
#[test]
fn flipped_bits_in_the_config_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    let repo = init(&root);
    let bytes = std::fs::read(root.join("config")).unwrap();
    let mut auth = 0;
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let bad = flipped(&bytes, i, bit);
            match Config::parse(&bad, "x") {
                Err(_) => {}
                Ok(c) => {
                    let r = c.verify(repo.crypto());
                    assert!(
                        is_auth(&r),
                        "bit {bit} of byte {i} ({:?}) gives a config that verifies: {c:?}",
                        bytes[i] as char
                    );
                    auth += 1;
                }
            }
        }
    }
    assert!(auth > 100, "{auth} flips reached the MAC check");
    // Through `open`: a flipped MAC digit is detected, and the repository runs on the
    // sealed copy its key file keeps — the original config, never the flipped one.
    let text = String::from_utf8(bytes.clone()).unwrap();
    let at = text.find("\"mac\": \"").unwrap() + 8;
    let bad = flipped(&bytes, at, 0);
    std::fs::remove_file(root.join("config")).unwrap();
    std::fs::write(root.join("config"), &bad).unwrap();
    let opened = Repository::open(local(&root), || Ok(PW.to_vec())).unwrap();
    let damage = opened.config_damage().expect("damage not noticed");
    assert!(damage.reason.contains("MAC"), "{damage:?}");
    assert_eq!(opened.config(), repo.config());
    // Without the copy (a key file of an older snapvault) it stays an error naming it.
    for k in std::fs::read_dir(root.join("keys")).unwrap() {
        let p = k.unwrap().path();
        let mut kf = KeyFile::parse(&std::fs::read(&p).unwrap()).unwrap();
        kf.config.clear();
        std::fs::remove_file(&p).unwrap();
        std::fs::write(&p, kf.to_bytes()).unwrap();
    }
    let r = Repository::open(local(&root), || Ok(PW.to_vec())).map(|_| ());
    assert!(
        matches!(&r, Err(RepoError::ConfigDamaged { of: None, reason }) if reason.contains("no key file holds a copy")),
        "{r:?}"
    );
}

/// The config copy in a key file: a flipped bit anywhere in it fails its seal, so it is
/// never used, and the key file still opens (its MAC leaves the copy out, for older
/// versions' sake).
#[test]
fn flipped_bits_in_a_config_copy_never_yield_a_config() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    let repo = init(&root);
    let Crypto::Keyed(mk) = repo.crypto() else {
        panic!("not encrypted")
    };
    let kf = KeyFile::create(mk, PW, FAST)
        .unwrap()
        .with_config_copy(mk, &repo.config().to_bytes());
    assert!(kf.verify_mac(mk));
    assert_eq!(
        kf.config_copy(mk).unwrap().unwrap(),
        repo.config().to_bytes()
    );
    let sealed = hex::decode(&kf.config).unwrap();
    for i in 0..sealed.len() {
        for bit in [0, 3, 7] {
            let mut k = kf.clone();
            k.config = hex::encode(flipped(&sealed, i, bit));
            assert!(k.verify_mac(mk));
            assert!(k.config_copy(mk).unwrap().is_err(), "byte {i} bit {bit}");
        }
    }
}

/// Key files: the salt, the parameters and the wrapped key are bound to the password — a
/// flipped bit there never opens (a wrong-password or corruption error, never another key).
/// The informational fields (`hostname`, `username`, `created`) and the MAC itself do not
/// stop the key from opening, but the key file's MAC then fails, so `check` reports it.
#[test]
fn flipped_bits_in_key_files_never_unwrap_a_key_and_fail_the_mac() {
    let mk = MasterKey::generate();
    let kf = KeyFile::create(&mk, PW, FAST).unwrap();
    assert!(kf.verify_mac(&mk));
    let bytes = kf.to_bytes();
    let (mut refused, mut opened) = (0, 0);
    for i in 0..bytes.len() {
        let bad = flipped(&bytes, i, i);
        match KeyFile::parse(&bad).and_then(|k| k.open(PW).map(|m| (k, m))) {
            Err(RepoError::WrongPassword | RepoError::Corrupt { .. }) => refused += 1,
            Err(e) => panic!("byte {i}: unexpected error {e}"),
            Ok((k, m)) => {
                assert_eq!(m.to_bytes(), mk.to_bytes(), "byte {i}: a different key!");
                assert!(
                    !k.verify_mac(&mk),
                    "bit flip at byte {i} ({:?}) opens and passes the MAC",
                    bytes[i] as char
                );
                opened += 1;
            }
        }
    }
    assert!(refused > 200 && opened > 0, "{refused} {opened}");
}

/// The same photo in two repositories: unrelated blob ids, different chunk boundaries.
#[test]
fn same_photos_in_two_repositories_share_no_ids_or_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let big = noise(7, 24 << 20);
    write(&src.join("VIDEO_0001.MOV"), &big);
    write(&src.join("IMG_0001.HEIC"), &noise(8, 200_000));
    let mut lengths = Vec::new();
    let mut ids: Vec<HashSet<[u8; 32]>> = Vec::new();
    for name in ["a", "b"] {
        let repo = init(&dir.path().join(name));
        let sid = snapshot(&repo, &src);
        let index = repo.load_index().unwrap().index;
        ids.push(index.blobs().map(|(id, _)| *id.as_bytes()).collect());
        let snap = repo.load_snapshot(&sid).unwrap();
        let root = repo.load_tree(&index, &snap.tree).unwrap();
        let lib = repo
            .load_tree(&index, &root.nodes[0].subtree.unwrap())
            .unwrap();
        let video = lib
            .nodes
            .iter()
            .find(|n| n.name.0 == b"VIDEO_0001.MOV")
            .unwrap();
        assert!(video.content.len() >= 8, "{} chunks", video.content.len());
        let l: Vec<u32> = video
            .content
            .iter()
            .map(|id| index.get(id).unwrap().raw_len)
            .collect();
        assert_eq!(l.iter().map(|&x| x as usize).sum::<usize>(), big.len());
        lengths.push(l);
    }
    assert!(ids[0].is_disjoint(&ids[1]), "a blob id is shared");
    assert_ne!(lengths[0], lengths[1], "same chunk boundaries in both");
    // Not merely shifted: most cut points differ.
    let cuts = |l: &[u32]| -> HashSet<u64> {
        l.iter()
            .scan(0u64, |s, &x| {
                *s += x as u64;
                Some(*s)
            })
            .collect()
    };
    let (a, b) = (cuts(&lengths[0]), cuts(&lengths[1]));
    let shared = a.intersection(&b).count();
    assert!(
        shared * 4 <= a.len(),
        "{shared} of {} cut points shared",
        a.len()
    );
}

/// Every file and folder the repository creates is owner-only, whatever the umask.
#[test]
fn repository_files_and_folders_are_owner_only() {
    // SAFETY: umask only changes this process's default creation mode.
    let old = unsafe { libc::umask(0) };
    let dir = tempfile::tempdir().unwrap();
    let result = std::panic::catch_unwind(|| {
        let (root, repo) = sample_repo(dir.path());
        repo.add_key(b"second", FAST).unwrap();
        let _lock = repo.lock(false, "snapshot").unwrap();
        let mut bad = Vec::new();
        let mut seen = 0;
        fn walk(p: &Path, bad: &mut Vec<String>, seen: &mut usize) {
            for e in std::fs::read_dir(p).unwrap().flatten() {
                let md = std::fs::symlink_metadata(e.path()).unwrap();
                let want = if md.is_dir() { 0o700 } else { 0o600 };
                *seen += 1;
                if md.mode() & 0o7777 != want {
                    bad.push(format!("{} {:o}", e.path().display(), md.mode() & 0o7777));
                }
                if md.is_dir() {
                    walk(&e.path(), bad, seen);
                }
            }
        }
        walk(&root, &mut bad, &mut seen);
        let md = std::fs::metadata(&root).unwrap();
        if md.mode() & 0o7777 != 0o700 {
            bad.push(format!("repository folder {:o}", md.mode() & 0o7777));
        }
        (bad, seen)
    });
    unsafe { libc::umask(old) };
    let (bad, seen) = result.unwrap();
    assert!(seen > 10, "{seen}");
    assert!(bad.is_empty(), "not owner-only: {bad:#?}");
}

/// A wrong password changes nothing: key files keep their bytes and modification times.
#[test]
fn wrong_password_leaves_key_files_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    let repo = init(&root);
    repo.add_key(b"second", FAST).unwrap();
    let state = || -> Vec<(PathBuf, Vec<u8>, i64, i64)> {
        let mut v: Vec<_> = std::fs::read_dir(root.join("keys"))
            .unwrap()
            .flatten()
            .map(|e| {
                let md = e.metadata().unwrap();
                (
                    e.path(),
                    std::fs::read(e.path()).unwrap(),
                    md.mtime(),
                    md.mtime_nsec(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = state();
    assert_eq!(before.len(), 2);
    std::thread::sleep(std::time::Duration::from_millis(20));
    for _ in 0..3 {
        let r = Repository::open(local(&root), || Ok(b"wrong".to_vec()));
        assert!(matches!(r, Err(RepoError::WrongPassword)), "{:?}", r.err());
    }
    assert_eq!(state(), before);
    assert!(local(&root).leftover_temp_files().unwrap().is_empty());
    open(&root);
    assert_eq!(state(), before, "a successful open changes nothing either");
}

/// Stored blob lengths are padding buckets (`blob::padded_len`: Padmé with two more bits of
/// precision) in an encrypted repository, so a pack holding one photo does not give away its
/// size to the byte.
#[test]
fn stored_blob_lengths_are_padded() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let size = 2_345_678;
    write(&src.join("IMG_1234.HEIC"), &noise(9, size));
    let root = dir.path().join("repo");
    let repo = init(&root);
    snapshot(&repo, &src);
    let index: Index = repo.load_index().unwrap().index;
    let mut data_blobs = 0;
    for (_, loc) in index.blobs() {
        let l = loc.length as usize;
        assert_eq!(blob::padded_len(l), l, "stored length {l} is not a bucket");
        data_blobs += 1;
    }
    assert!(data_blobs >= 2);
    // The data pack: its size minus the fixed overheads is not the photo's size.
    let be = repo.backend();
    let mut found = false;
    for f in be.list(FileKind::Pack).unwrap() {
        let bytes = be.read(FileKind::Pack, &f.name).unwrap();
        let entries = pack::parse_pack(repo.crypto(), &bytes, "p").unwrap();
        if entries.iter().any(|e| e.typ == blob::BlobType::Data) {
            let n = entries.len();
            let unpadded = size + n * (SEAL_OVERHEAD + 42) + 9 + SEAL_OVERHEAD + 4;
            assert!(bytes.len() > unpadded, "{} vs {unpadded}", bytes.len());
            found = true;
        }
    }
    assert!(found);
}

/// Padmé (Nikitin et al., PETS 2019): round `l` up so only the top ~log2(log2 l) bits vary.
fn padme(l: u64) -> u64 {
    if l < 4 {
        return l;
    }
    let e = 63 - l.leading_zeros() as u64;
    let s = 64 - e.leading_zeros() as u64;
    let last = e - s;
    let mask = (1u64 << last) - 1;
    (l + mask) & !mask
}

fn round_up(l: u64, m: u64) -> u64 {
    l.div_ceil(m) * m
}

/// The cost of padding sealed blobs (or whole packs) for a library of 1–4 MB photos.
/// Run with `cargo test -p snapvault-repo --test security -- --ignored padding_cost --nocapture`.
#[test]
#[ignore = "measurement for docs/security.md"]
fn padding_cost() {
    let crypto = Crypto::Keyed(MasterKey::generate());
    let chunker = Chunker::new(&ChunkerParams::default(), &crypto);
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let photos = 300;
    let (mut raw, mut plain, mut k64, mut pad, mut blobs) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut fine = 0u64;
    let mut per_photo: Vec<(u64, u64)> = Vec::new();
    let pack_size = 16u64 << 20;
    let (mut pack_plain, mut pack_padded, mut cur) = (0u64, 0u64, 0u64);
    let mut cur_n = 0u64;
    let header = |n: u64| 9 + 42 * n + SEAL_OVERHEAD as u64 + 4;
    for i in 0..photos {
        let size = 1_000_000 + (rng.next_u64() % 3_000_001) as usize;
        let data = noise(i, size);
        raw += size as u64;
        let mut photo_padme = 0;
        for ch in chunker.split(&data) {
            let sealed = ch.len() as u64 + SEAL_OVERHEAD as u64;
            plain += sealed;
            k64 += round_up(sealed, 64 << 10);
            pad += padme(sealed);
            fine += blob::padded_len(sealed as usize) as u64;
            photo_padme += padme(sealed);
            blobs += 1;
            if cur > 0 && cur + sealed > pack_size {
                pack_plain += cur + header(cur_n);
                pack_padded += padme(cur + header(cur_n));
                cur = 0;
                cur_n = 0;
            }
            cur += sealed;
            cur_n += 1;
        }
        per_photo.push((size as u64, photo_padme));
    }
    pack_plain += cur + header(cur_n);
    pack_padded += padme(cur + header(cur_n));
    let pct = |x: u64| (x as f64 / plain as f64 - 1.0) * 100.0;
    println!(
        "{photos} photos, {:.1} MiB, {blobs} blobs (avg {:.0} KiB)",
        raw as f64 / 1048576.0,
        plain as f64 / blobs as f64 / 1024.0
    );
    println!("sealed blobs, unpadded:         {plain} bytes");
    println!("each blob to a multiple of 64 KiB: +{:.2} %", pct(k64));
    println!("each blob Padmé:                 +{:.2} %", pct(pad));
    println!(
        "each blob padded_len (Padmé + {} bits, written now): +{:.2} %",
        blob::PAD_EXTRA_BITS,
        pct(fine)
    );
    println!(
        "whole packs Padmé:               +{:.2} % (packs unpadded {pack_plain}, padded {pack_padded})",
        (pack_padded as f64 / pack_plain as f64 - 1.0) * 100.0
    );
    // A single-photo pack: how much does its size still say about the photo's size?
    let worst = per_photo
        .iter()
        .map(|(s, p)| (*p as f64 / *s as f64 - 1.0) * 100.0)
        .fold(0.0f64, f64::max);
    println!("largest per-photo Padmé overhead: {worst:.2} %");
}
