//! Issue 21's proof on S3: a repository with 5 % parity whose objects the provider damages
//! — bytes flipped in a pack, a 4 KiB range zeroed in an index file and in a snapshot, a
//! pack deleted — rewritten through the server's own API behind snapvault's back:
//! `check --read-data` names each as repairable from parity, `repair --apply` rebuilds it,
//! a second check is clean and the latest snapshot restores byte for byte.

use super::s3_raw::Objects;
use super::*;
use crate::remote::{Remote, no_servers, restore_matches};

/// The repository's packs, index files and snapshots, by path.
fn files(o: &Objects) -> HashSet<String> {
    ["data", "index", "snapshots"]
        .iter()
        .flat_map(|f| o.list(f))
        .collect()
}

/// "kind name" of the object at `path`, as `check --json` names it.
fn label(path: &str) -> String {
    let kind = match path.split('/').next() {
        Some("data") => "pack",
        Some("index") => "index",
        Some("snapshots") => "snapshot",
        other => panic!("{other:?}"),
    };
    format!("{kind} {}", path.rsplit('/').next().unwrap())
}

/// Of `paths`, the one in `folder` with the most bytes.
fn biggest(o: &Objects, paths: &HashSet<String>, folder: &str) -> String {
    paths
        .iter()
        .filter(|p| p.starts_with(&format!("{folder}/")))
        .max_by_key(|p| o.get(p).len())
        .unwrap_or_else(|| panic!("nothing in {folder}: {paths:?}"))
        .clone()
}

/// Zero the first 4 KiB of the object (all of it when it is smaller), keeping its length.
fn zero_sector(o: &Objects, path: &str) {
    let mut b = o.get(path);
    let end = b.len().min(SHARD);
    b[..end].fill(0);
    o.put(path, &b);
}

#[test]
fn s3_objects_damaged_by_the_provider_are_repaired_from_parity() {
    if no_servers() {
        return;
    }
    let work = tempdir();
    let src = work.path().join("library");
    library(&src);
    let src_s = src.display().to_string();
    let r = Remote::s3("parity-damage");
    let o = Objects::of(&r);
    r.ok(&["init", "--parity", "5"]);
    r.ok(&["snapshot", &src_s]);
    let first = files(&o);
    write_random(&src.join("DCIM/IMG_0004.MOV"), 4, 1_500_000);
    r.ok(&["snapshot", &src_s]);
    let second: HashSet<String> = files(&o).difference(&first).cloned().collect();
    // Each snapshot's packs form a group, and its index file and manifest another: the
    // damage goes to four groups, each within what its parity repairs.
    let flipped = biggest(&o, &first, "data");
    let mut b = o.get(&flipped);
    for at in [b.len() / 5, b.len() / 2, b.len() * 4 / 5] {
        b[at] ^= 0x5a;
    }
    o.put(&flipped, &b);
    let index = biggest(&o, &first, "index");
    zero_sector(&o, &index);
    let snapshot = biggest(&o, &second, "snapshots");
    zero_sector(&o, &snapshot);
    let deleted = biggest(&o, &second, "data");
    o.delete(&deleted);
    let damaged: HashSet<String> = [&flipped, &index, &snapshot, &deleted]
        .iter()
        .map(|p| label(p))
        .collect();

    let out = r.run(&["check", "--read-data", "--json"]);
    assert_eq!(out.code, Some(4), "{out}");
    let v = out.json();
    assert_eq!(names(&v, "repairable"), damaged, "{v}");
    assert!(names(&v, "lost").is_empty(), "{v}");
    let out = r.ok(&["repair", "--apply"]);
    for d in &damaged {
        assert_mentions(&out, &format!("repaired from parity: {d}"));
    }
    let second = r.run(&["check", "--read-data", "--json"]);
    assert_eq!(second.code, Some(0), "{second}\nafter repair:\n{out}");
    let v = second.json();
    assert!(names(&v, "repairable").is_empty() && names(&v, "lost").is_empty());
    for p in [&flipped, &index, &snapshot, &deleted] {
        let b = o.get(p);
        assert_eq!(
            blake3::hash(&b).to_hex().as_str(),
            label(p).split(' ').nth(1).unwrap()
        );
    }
    restore_matches(&r, "latest", &src);
}
