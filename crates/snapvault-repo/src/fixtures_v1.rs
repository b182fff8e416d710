//! The frozen format-v1 repositories (`tests/fixtures/format-v1/`, written by an earlier
//! snapvault) decoded object by object with this crate's decoders alone — no repository,
//! no backend, no CLI — so a change to any decoder that breaks reading version 1 fails a
//! test naming the object kind and file. The end-to-end tests (`tests/e2e/fixtures/`)
//! drive the same fixtures through the binary.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::blob::{self, BlobType};
use crate::config::Config;
use crate::crypto::Crypto;
use crate::id::BlobId;
use crate::index::IndexFile;
use crate::keyfile::KeyFile;
use crate::pack::{self, PackEntry};
use crate::snapshot::Snapshot;
use crate::tree::{NodeKind, Tree};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/format-v1")
}

fn files_in(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    for e in rd {
        let e = e.expect("read_dir");
        if e.file_type().expect("file type").is_dir() {
            out.extend(files_in(&e.path()));
        } else {
            let name = e.file_name().to_string_lossy().into_owned();
            out.push((name, fs::read(e.path()).expect("read fixture file")));
        }
    }
    out.sort();
    out
}

/// The expectations the end-to-end tests use: snapshot ids and, per snapshot, the files'
/// paths and BLAKE3s.
fn expected(name: &str) -> serde_json::Value {
    let p = root().join(format!("{name}.json"));
    serde_json::from_slice(&fs::read(&p).expect("fixture manifest")).expect("manifest JSON")
}

/// The name of every content-addressed file is the BLAKE3 of its bytes.
fn check_name(kind: &str, name: &str, bytes: &[u8]) {
    assert_eq!(
        blake3::hash(bytes).to_hex().as_str(),
        name,
        "format v1 {kind} {name}: name is not the BLAKE3 of its bytes"
    );
}

/// Decode every object of fixture `name` and compare what it holds with the manifest.
fn decode_fixture(name: &str, password: Option<&str>) {
    let repo = root().join(name);
    let config_bytes = fs::read(repo.join("config")).expect("fixture config");
    let config = Config::parse(&config_bytes, name)
        .unwrap_or_else(|e| panic!("format v1 config of {name}: {e}"));
    assert_eq!(config.version, 1, "format v1 config: version");
    assert_eq!(
        config.encrypted,
        password.is_some(),
        "format v1 config: encrypted"
    );
    assert_eq!(
        (config.chunker.min, config.chunker.avg, config.chunker.max),
        (512 << 10, 1 << 20, 8 << 20),
        "format v1 config: chunker"
    );

    // Key files: parse, MAC, unwrap with the password, the config copy they carry.
    let keys = files_in(&repo.join("keys"));
    let crypto = match password {
        None => {
            assert!(
                keys.is_empty(),
                "format v1: unencrypted fixture with key files"
            );
            Crypto::Plain
        }
        Some(pw) => {
            assert_eq!(keys.len(), 1, "format v1 fixture {name}: one key file");
            let (kname, kbytes) = &keys[0];
            let kf = KeyFile::parse(kbytes)
                .unwrap_or_else(|e| panic!("format v1 key file {kname}: {e}"));
            let master = kf
                .open(pw.as_bytes())
                .unwrap_or_else(|e| panic!("format v1 key file {kname}: unwrap: {e}"));
            assert!(kf.verify_mac(&master), "format v1 key file {kname}: MAC");
            let copy = kf
                .config_copy(&master)
                .expect("format v1 key file: config copy present")
                .unwrap_or_else(|e| panic!("format v1 key file {kname}: config copy: {e}"));
            assert_eq!(
                copy, config_bytes,
                "format v1 key file {kname}: config copy"
            );
            Crypto::Keyed(master)
        }
    };
    config
        .verify(&crypto)
        .unwrap_or_else(|e| panic!("format v1 config of {name}: MAC: {e}"));

    // Index files: name, seal, binary layout.
    let mut indexed: HashMap<String, Vec<PackEntry>> = HashMap::new();
    for (iname, bytes) in files_in(&repo.join("index")) {
        check_name("index file", &iname, &bytes);
        let f = IndexFile::open(&crypto, &bytes, &iname)
            .unwrap_or_else(|e| panic!("format v1 index file {iname}: {e}"));
        for p in f.packs {
            indexed.insert(p.id.to_hex(), p.blobs);
        }
    }

    // Packs: name, trailer, sealed header; entries as the index says; every blob decodes.
    let mut blobs: HashMap<BlobId, (BlobType, Vec<u8>)> = HashMap::new();
    let packs = files_in(&repo.join("data"));
    assert_eq!(
        packs.len(),
        indexed.len(),
        "format v1 {name}: packs vs index"
    );
    for (pname, bytes) in packs {
        check_name("pack", &pname, &bytes);
        let entries = pack::parse_pack(&crypto, &bytes, &pname)
            .unwrap_or_else(|e| panic!("format v1 pack header of {pname}: {e}"));
        assert_eq!(
            Some(&entries),
            indexed.get(&pname),
            "format v1 pack {pname}: header and index disagree"
        );
        for e in entries {
            let at = e.offset as usize;
            let sealed = bytes.get(at..at + e.length as usize).unwrap_or_else(|| {
                panic!(
                    "format v1 pack {pname}: blob {} outside the pack",
                    e.id.to_hex()
                )
            });
            let plain = blob::decode(&crypto, &e.id, e.compressed, e.raw_len, sealed)
                .unwrap_or_else(|err| panic!("format v1 blob {} in {pname}: {err}", e.id.to_hex()));
            blobs.insert(e.id, (e.typ, plain));
        }
    }

    // Snapshots and their trees; every file's content against the manifest's BLAKE3.
    let want = expected(name);
    let want_snaps = want["snapshots"].as_array().expect("manifest snapshots");
    let snaps = files_in(&repo.join("snapshots"));
    assert_eq!(
        snaps.len(),
        want_snaps.len(),
        "format v1 {name}: snapshot count"
    );
    for w in want_snaps {
        let sid = w["id"].as_str().expect("snapshot id");
        let (_, bytes) = snaps
            .iter()
            .find(|(n, _)| n == sid)
            .unwrap_or_else(|| panic!("format v1 snapshot {sid} missing"));
        check_name("snapshot", sid, bytes);
        let snap = Snapshot::open(&crypto, bytes, sid)
            .unwrap_or_else(|e| panic!("format v1 snapshot {sid}: {e}"));
        let mut files: HashMap<String, String> = HashMap::new();
        walk(&blobs, &snap.tree, String::new(), &mut files);
        for e in w["entries"].as_array().expect("manifest entries") {
            let Some(hash) = e["blake3"].as_str() else {
                continue;
            };
            let path = e["path"].as_str().expect("path");
            assert_eq!(
                files.get(path).map(String::as_str),
                Some(hash),
                "format v1 snapshot {sid}: content of {path}"
            );
        }
        assert_eq!(
            files.len(),
            w["entries"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["blake3"].is_string())
                .count(),
            "format v1 snapshot {sid}: number of files"
        );
    }
}

/// Decode tree `id` and below; record each file's path and the BLAKE3 of its content.
fn walk(
    blobs: &HashMap<BlobId, (BlobType, Vec<u8>)>,
    id: &BlobId,
    dir: String,
    files: &mut HashMap<String, String>,
) {
    let (typ, bytes) = blobs
        .get(id)
        .unwrap_or_else(|| panic!("format v1 tree {} not in any pack", id.to_hex()));
    assert_eq!(
        *typ,
        BlobType::Tree,
        "format v1 tree {}: blob type",
        id.to_hex()
    );
    let tree =
        Tree::decode(bytes).unwrap_or_else(|e| panic!("format v1 tree {}: {e}", id.to_hex()));
    for n in tree.nodes {
        let path = if dir.is_empty() {
            n.name.lossy()
        } else {
            format!("{dir}/{}", n.name.lossy())
        };
        match n.kind {
            NodeKind::Dir => {
                let sub = n.subtree.expect("format v1 tree: folder without subtree");
                walk(blobs, &sub, path, files);
            }
            NodeKind::File => {
                let mut h = blake3::Hasher::new();
                for c in &n.content {
                    let (typ, plain) = blobs
                        .get(c)
                        .unwrap_or_else(|| panic!("format v1 data blob {} missing", c.to_hex()));
                    assert_eq!(*typ, BlobType::Data, "format v1 data blob {}", c.to_hex());
                    h.update(plain);
                }
                files.insert(path, h.finalize().to_hex().to_string());
            }
            _ => {}
        }
    }
}

#[test]
fn encrypted_fixture_decodes() {
    decode_fixture("encrypted", Some("snapvault format-v1 fixture"));
}

#[test]
fn plain_fixture_decodes() {
    decode_fixture("plain", None);
}
