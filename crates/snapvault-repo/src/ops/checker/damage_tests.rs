//! Every kind of damage to a pack's bytes is reported as the full check (the pack's BLAKE3
//! against its name first) reports it, in an encrypted and a plain repository: an intact
//! encrypted pack is proven by its authenticated header and blobs instead
//! (`checker/verify.rs`), and the name is checked whenever anything fails.

use std::path::Path;

use super::*;
use crate::format::crypto::Crypto;
use crate::ops::observe::NoHooks;
use crate::ops::test_support::{create_small_repo, noise_library, open, snapshot};

fn options() -> CheckOptions {
    CheckOptions {
        read_data: ReadData::All,
        threads: 3,
        last_verified: Default::default(),
        earlier_copies: Vec::new(),
        earlier_packs: Vec::new(),
    }
}

/// Six photos of 500,000 random bytes.
fn repo(dir: &Path, encrypted: bool) -> std::path::PathBuf {
    let root = dir.join("repo");
    create_small_repo(&root, encrypted);
    let lib = noise_library(dir, 6, 500_000);
    snapshot(&open(&root), &lib, &[]);
    root
}

/// A way to damage a pack's bytes (given another pack's bytes), and what check must say.
type Damage = (
    &'static str,
    fn(&mut Vec<u8>, (&[u8], &[PackEntry], &Crypto)),
    &'static [&'static str],
);

const NAME: &str = "does not match its name";

const DAMAGES: &[Damage] = &[
    (
        "a bit in a blob",
        |b, _| b[100_000] ^= 4,
        &[NAME, "fail verification"],
    ),
    (
        "a bit in the sealed header",
        |b, _| {
            let n = b.len();
            b[n - 20] ^= 1
        },
        &[NAME, "header is damaged"],
    ),
    (
        "a bit in the trailer",
        |b, _| {
            let n = b.len();
            b[n - 4] ^= 1
        },
        &[NAME, "header is damaged"],
    ),
    (
        "a byte appended",
        |b, _| b.push(0),
        &[NAME, "header is damaged"],
    ),
    (
        "the last byte cut",
        |b, _| {
            b.pop();
        },
        &[NAME, "header is damaged"],
    ),
    // Sealed by the same key, opens fine: only the blob's id tells.
    (
        "a blob sealed again by the same key",
        |b, (_, entries, crypto)| reseal_a_blob(b, entries, crypto),
        &[NAME, "1 blob(s) fail verification"],
    ),
    (
        "another pack's bytes under its name",
        |b, (other, _, _)| *b = other.to_vec(),
        &[NAME],
    ),
];

/// Put in the place of the first uncompressed blob another plaintext of its length, sealed
/// by the same key and padded to the same stored length: it opens, and only its id tells.
fn reseal_a_blob(b: &mut [u8], entries: &[PackEntry], crypto: &Crypto) {
    let e = entries
        .iter()
        .find(|e| !e.compressed)
        .expect("a blob stored as is");
    let (at, len) = (e.offset as usize, e.length as usize);
    let mut plain = vec![0u8; len - crypto.overhead()];
    plain[..e.raw_len as usize].fill(7);
    let sealed = crypto.seal(&plain);
    assert_eq!(sealed.len(), len);
    b[at..at + len].copy_from_slice(&sealed);
}

fn pack_files(root: &Path) -> Vec<(String, std::path::PathBuf)> {
    let repo = open(root);
    let mut packs: Vec<_> = repo
        .backend()
        .list(FileKind::Pack)
        .unwrap()
        .into_iter()
        .map(|f| (f.size, f.name))
        .collect();
    packs.sort();
    packs
        .into_iter()
        .rev()
        .map(|(_, n)| {
            let p = root.join("data").join(&n[..2]).join(&n);
            (n, p)
        })
        .collect()
}

#[test]
fn every_damage_to_a_pack_is_reported_as_the_full_check_reports_it() {
    for encrypted in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let root = repo(dir.path(), encrypted);
        let packs = pack_files(&root);
        // The largest: the data pack of the six photos; the next: the tree pack.
        let (name, path) = &packs[0];
        let good = std::fs::read(path).unwrap();
        let other = std::fs::read(&packs[1].1).unwrap();
        let id: PackId = name.parse().unwrap();
        let crypto = open(&root).crypto().clone();
        let entries = crate::format::pack::parse_pack(&crypto, &good, "p").unwrap();
        let r = check(&open(&root), &options(), &NoHooks).unwrap();
        assert_eq!(r.errors(), 0, "intact: {:?}", r.problems);
        for (what, damage, says) in DAMAGES {
            let mut bytes = good.clone();
            damage(&mut bytes, (&other, &entries, &crypto));
            std::fs::write(path, &bytes).unwrap();
            let r = check(&open(&root), &options(), &NoHooks).unwrap();
            let about: Vec<&str> = r
                .problems
                .iter()
                .filter(|p| p.object == format!("pack {name}"))
                .map(|p| p.message.as_str())
                .collect();
            // Unsealed, a plain header's damage may read as the index disagreeing with it.
            let says = if encrypted { *says } else { &[NAME][..] };
            for s in says {
                assert!(
                    about.iter().any(|m| m.contains(s)),
                    "encrypted {encrypted}, {what}: no {s:?} in {about:?}"
                );
            }
            assert!(
                r.damaged_packs.contains(&id),
                "encrypted {encrypted}, {what}"
            );
            if says.iter().any(|s| s.contains("fail verification")) {
                assert!(!r.bad_blobs.is_empty(), "encrypted {encrypted}, {what}");
            }
            std::fs::write(path, &good).unwrap();
        }
    }
}
