//! `snapvault copy`: snapshots copied into another repository with its own keys restore
//! byte-exact from there; a repeated copy sends nothing, an incremental one only the new
//! blobs; the encryption downgrade rule, wrong passwords and interruptions.

use std::path::Path;

use serde_json::Value;

use crate::common::*;

const PASSWORD2: &str = "a different password for the off-site copy";

/// `copy --to DST ARGS...` run against `src`, with DST's password (if any) in
/// SNAPVAULT_PASSWORD2.
fn copy_cmd(src: &Sv, dst: &Sv, args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut c = src.command(&["copy", "--to"]);
    c.arg(&dst.repo).args(args);
    if let Some(pw) = &dst.password {
        c.env("SNAPVAULT_PASSWORD2", pw);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    run_command(c, DEFAULT_TIMEOUT)
}

/// `copy --json ARGS...`, exit 0, the parsed summary.
fn copy_json(src: &Sv, dst: &Sv, args: &[&str]) -> Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let out = copy_cmd(src, dst, &a, &[]);
    assert_eq!(out.code, Some(0), "copy failed:\n{out}");
    out.json()
}

fn init_with(repo: &Path, password: Option<&str>) -> Sv {
    let sv = Sv::at(repo, password);
    let out = match password {
        Some(_) => sv.run(&["init"]),
        None => sv.run(&["init", "--insecure-no-encryption"]),
    };
    assert_eq!(out.code, Some(0), "init failed:\n{out}");
    sv
}

/// A small photo library: single-chunk photos, a multi-chunk video, a compressible text
/// file, an empty file, a symlink and nested folders.
fn library(root: &Path) {
    for i in 0..5u64 {
        write_random(
            &root.join(format!("DCIM/IMG_{i:04}.HEIC")),
            i,
            50_000 + i as usize * 1000,
        );
    }
    write_random(&root.join("DCIM/2023/07/IMG_0100.JPG"), 100, 300_000);
    write_random(&root.join("Videos/clip.MOV"), 200, 3_500_000);
    write_file(&root.join("notes.txt"), &b"holiday notes ".repeat(20_000));
    write_file(&root.join("empty"), b"");
    std::os::unix::fs::symlink("DCIM", root.join("camera")).expect("symlink");
}

fn u(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no numeric {field} in {v}"))
}

fn restore_and_compare(sv: &Sv, snap: &str, expected: &Path, tmp: &Path, name: &str) {
    let target = tmp.join(name);
    sv.restore(snap, &target);
    assert_same_tree(expected, &target.join(expected.file_name().expect("name")));
}

#[test]
fn copy_restores_byte_exact_checks_and_repeats_as_a_no_op() {
    let tmp = tempdir();
    let lib = tmp.path().join("photos");
    library(&lib);
    let a = Sv::init(tmp.path().join("ssd"), true);
    let b = init_with(&tmp.path().join("offsite"), Some(PASSWORD2));
    let s1 = a.snapshot(&[&lib], &[]);

    let v = copy_json(&a, &b, &["--all"]);
    assert_eq!(u(&v, "copied"), 1, "{v}");
    assert_eq!(u(&v, "skipped"), 0, "{v}");
    let row = &v["snapshots"][0];
    assert_eq!(row["source_id"], s1["id"], "{v}");
    assert_eq!(row["status"], "copied", "{v}");
    // Everything was sent: as many blobs as the first snapshot added.
    assert_eq!(
        u(row, "blobs_copied"),
        summary_u64(&s1, "blobs_added"),
        "{v}"
    );
    assert!(u(row, "bytes_copied") > 3_500_000, "{v}");

    // The copy is a snapshot of its own, with the metadata of the original.
    let (orig, copies) = (a.snapshots(), b.snapshots());
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0]["id"], row["id"]);
    assert_eq!(copies[0]["original"], s1["id"]);
    for f in [
        "time", "hostname", "username", "source", "tags", "summary", "files", "size",
    ] {
        assert_eq!(copies[0][f], orig[0][f], "{f}");
    }
    assert_ne!(
        copies[0]["tree"], orig[0]["tree"],
        "tree ids are keyed per repository"
    );

    restore_and_compare(&b, "latest", &lib, tmp.path(), "restored");
    b.ok(&["check", "--read-data"]);

    // Again: nothing to copy, and it says so (text and JSON).
    let before = listing(&b.repo.join("data"));
    let out = copy_cmd(&a, &b, &["--all"], &[]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_mentions(&out, "nothing to copy");
    let v = copy_json(&a, &b, &["--all"]);
    assert_eq!((u(&v, "copied"), u(&v, "skipped")), (0, 1), "{v}");
    assert_eq!(v["snapshots"][0]["status"], "skipped");
    assert_eq!(v["snapshots"][0]["id"], copies[0]["id"]);
    assert_eq!(u(&v, "blobs_copied"), 0);
    assert_unchanged(&before, &b.repo.join("data"), "a copy with nothing to do");
    assert_eq!(b.snapshots().len(), 1);
}

#[test]
fn incremental_copy_sends_only_the_new_blobs() {
    let tmp = tempdir();
    let lib = tmp.path().join("photos");
    library(&lib);
    let a = Sv::init(tmp.path().join("ssd"), true);
    let b = init_with(&tmp.path().join("offsite"), Some(PASSWORD2));
    a.snapshot(&[&lib], &[]);
    copy_json(&a, &b, &["--all"]);

    // New photos (one large, several chunks), one in a new folder.
    write_random(&lib.join("DCIM/IMG_0200.HEIC"), 300, 2_500_000);
    write_random(&lib.join("DCIM/2024/IMG_0300.HEIC"), 301, 40_000);
    let s2 = a.snapshot(&[&lib], &[]);
    let added = summary_u64(&s2, "blobs_added");
    let v = copy_json(&a, &b, &["--all"]);
    assert_eq!((u(&v, "copied"), u(&v, "skipped")), (1, 1), "{v}");
    let row = &v["snapshots"][1];
    assert_eq!(row["source_id"], s2["id"], "{v}");
    // Exactly what the source snapshot added: the new chunks and the changed folders.
    assert_eq!(u(row, "blobs_copied"), added, "{v}");
    // Only the new files were read from the source.
    assert_eq!(u(row, "bytes_read"), 2_540_000, "{v}");
    let sent = u(row, "bytes_copied");
    assert!(
        sent > 2_540_000 && sent < 2_540_000 * 11 / 10 + 50_000,
        "{v}"
    );
    let copies = b.snapshots();
    assert_eq!(copies.len(), 2);
    // The parent link points at the copy of the parent.
    assert_eq!(copies[1]["parent"], copies[0]["id"]);
    assert_eq!(copies[1]["original"], s2["id"]);
    restore_and_compare(&b, "latest", &lib, tmp.path(), "restored");
    b.ok(&["check", "--read-data"]);
}

#[test]
fn chain_a_to_b_to_c_restores_from_c_and_a_to_c_recognises_the_copies() {
    let tmp = tempdir();
    let lib = tmp.path().join("photos");
    library(&lib);
    let a = Sv::init(tmp.path().join("a"), true);
    let b = init_with(&tmp.path().join("b"), Some(PASSWORD2));
    let c = init_with(&tmp.path().join("c"), Some("third password"));
    let s1 = a.snapshot(&[&lib], &[]);
    copy_json(&a, &b, &["--all"]);
    let v = copy_json(&b, &c, &["latest"]);
    assert_eq!(u(&v, "copied"), 1, "{v}");
    restore_and_compare(&c, "latest", &lib, tmp.path(), "from-c");
    c.ok(&["check", "--read-data"]);
    // A copy of a copy records the first original, so A → C sees it is there already.
    assert_eq!(c.snapshots()[0]["original"], s1["id"]);
    let v = copy_json(&a, &c, &["--all"]);
    assert_eq!((u(&v, "copied"), u(&v, "skipped")), (0, 1), "{v}");
    // And back: B's copy is A's own snapshot.
    let v = copy_json(&b, &a, &["--all"]);
    assert_eq!((u(&v, "copied"), u(&v, "skipped")), (0, 1), "{v}");
}

#[test]
fn encryption_is_never_dropped_but_may_be_added() {
    let tmp = tempdir();
    let lib = tmp.path().join("photos");
    library(&lib);
    let enc = Sv::init(tmp.path().join("enc"), true);
    let plain = Sv::init(tmp.path().join("plain"), false);
    enc.snapshot(&[&lib], &[]);
    plain.snapshot(&[&lib], &[]);

    // Encrypted → unencrypted: refused, the destination untouched.
    let plain2 = Sv::init(tmp.path().join("plain2"), false);
    let before = listing(&plain2.repo);
    let out = copy_cmd(&enc, &plain2, &["--all"], &[]);
    assert_eq!(out.code, Some(1), "{out}");
    assert_stderr_mentions(&out, "NOT encrypted");
    assert_unchanged(&before, &plain2.repo, "a refused copy");
    // An unencrypted destination with a password for it: refused like `Ctx::open` does.
    let out = copy_cmd(&plain, &plain2, &["--all"], &[("SNAPVAULT_PASSWORD2", "x")]);
    assert_eq!(out.code, Some(1), "{out}");
    assert_stderr_mentions(&out, "NOT encrypted, but a password was given");
    assert_unchanged(&before, &plain2.repo, "a refused copy");

    // Unencrypted → encrypted and unencrypted → unencrypted: allowed.
    let enc2 = init_with(&tmp.path().join("enc2"), Some(PASSWORD2));
    copy_json(&plain, &enc2, &["--all"]);
    restore_and_compare(&enc2, "latest", &lib, tmp.path(), "from-enc2");
    enc2.ok(&["check", "--read-data"]);
    copy_json(&plain, &plain2, &["--all"]);
    restore_and_compare(&plain2, "latest", &lib, tmp.path(), "from-plain2");
}

#[test]
fn wrong_or_missing_destination_is_named_and_left_alone() {
    let tmp = tempdir();
    let lib = tmp.path().join("photos");
    library(&lib);
    let a = Sv::init(tmp.path().join("a"), true);
    a.snapshot(&[&lib], &[]);
    let b = init_with(&tmp.path().join("b"), Some(PASSWORD2));
    let before = listing(&b.repo);

    let wrong = Sv::at(&b.repo, Some("not the password"));
    let out = copy_cmd(&a, &wrong, &["--all"], &[]);
    assert_eq!(out.code, Some(12), "{out}");
    assert_stderr_mentions(&out, "destination repository");
    assert_stderr_mentions(&out, "wrong password");
    assert_stderr_mentions(&out, "hint: check SNAPVAULT_PASSWORD2");
    assert_unchanged(&before, &b.repo, "a copy with the wrong password");

    // No password at all, stdin not a terminal: says which variable to set.
    let none = Sv::at(&b.repo, None);
    let out = copy_cmd(&a, &none, &["--all"], &[]);
    assert_eq!(out.code, Some(1), "{out}");
    assert_stderr_mentions(&out, "SNAPVAULT_PASSWORD2");
    assert_unchanged(&before, &b.repo, "a copy without a password");

    // A wrong source password is the source's problem.
    let bad_src = Sv::at(&a.repo, Some("nope"));
    let out = copy_cmd(&bad_src, &b, &["--all"], &[]);
    assert_eq!(out.code, Some(12), "{out}");
    assert_stderr_mentions(&out, "source repository");

    let missing = Sv::at(tmp.path().join("nowhere"), Some(PASSWORD2));
    let out = copy_cmd(&a, &missing, &["--all"], &[]);
    assert_eq!(out.code, Some(10), "{out}");
    assert_stderr_mentions(&out, "destination repository");

    // Into itself: refused.
    let itself = Sv::at(&a.repo, Some(PASSWORD));
    let out = copy_cmd(&a, &itself, &["--all"], &[]);
    assert_eq!(out.code, Some(1), "{out}");
    assert_stderr_mentions(&out, "source repository itself");

    // Neither snapshots nor --all: a usage error.
    let out = copy_cmd(&a, &b, &[], &[]);
    assert_eq!(out.code, Some(2), "{out}");
    assert_stderr_mentions(&out, "--all");
    assert_unchanged(&before, &b.repo, "refused copies");
}

#[test]
fn selected_snapshots_only_with_parents_mapped_or_dropped() {
    let tmp = tempdir();
    let lib = tmp.path().join("photos");
    library(&lib);
    let a = Sv::init(tmp.path().join("a"), true);
    let b = init_with(&tmp.path().join("b"), Some(PASSWORD2));
    let s1 = a.snapshot(&[&lib], &[]);
    write_random(&lib.join("DCIM/IMG_0500.HEIC"), 500, 70_000);
    let s2 = a.snapshot(&[&lib], &["--tag", "second"]);
    write_random(&lib.join("DCIM/IMG_0501.HEIC"), 501, 70_000);
    let s3 = a.snapshot(&[&lib], &[]);
    let id = |s: &Value| s["id"].as_str().expect("id").to_string();

    // The middle one by id prefix: its parent (s1) is not in B, so the copy has none.
    let v = copy_json(&a, &b, &[&id(&s2)[..10]]);
    assert_eq!(u(&v, "copied"), 1, "{v}");
    assert_eq!(v["snapshots"][0]["source_id"], s2["id"]);
    let copies = b.snapshots();
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0]["tags"], serde_json::json!(["second"]));
    assert_eq!(copies[0]["parent"], Value::Null);

    // `latest`: its parent s2 is in B, so the link points at s2's copy.
    let v = copy_json(&a, &b, &["latest"]);
    assert_eq!(v["snapshots"][0]["source_id"], s3["id"], "{v}");
    let copies = b.snapshots();
    assert_eq!(copies.len(), 2);
    assert_eq!(copies[1]["original"], s3["id"]);
    assert_eq!(copies[1]["parent"], copies[0]["id"]);

    // The same snapshot twice, and one already there: each once, oldest first.
    let v = copy_json(&a, &b, &["latest~2", &id(&s1), "latest"]);
    let rows = v["snapshots"].as_array().expect("rows");
    assert_eq!(rows.len(), 2, "{v}");
    assert_eq!(rows[0]["source_id"], s1["id"]);
    assert_eq!(rows[0]["status"], "copied");
    assert_eq!(rows[1]["status"], "skipped");
    let out = copy_cmd(&a, &b, &["ffffffffff"], &[]);
    assert_eq!(out.code, Some(1), "{out}");
    assert_stderr_mentions(&out, "no snapshot matches");
}

#[test]
fn interrupted_copy_leaves_the_destination_valid_and_a_rerun_finishes() {
    let tmp = tempdir();
    let lib = tmp.path().join("photos");
    library(&lib);
    let a = Sv::init(tmp.path().join("a"), true);
    a.snapshot(&[&lib], &[]);
    write_random(&lib.join("Videos/clip2.MOV"), 201, 2_000_000);
    a.snapshot(&[&lib], &[]);
    let b = init_with(&tmp.path().join("b"), Some(PASSWORD2));
    // Killed at each of the first writes into B: a pack, the index, the first snapshot,
    // the second snapshot's pack…
    for n in 1..=5 {
        let spec = format!("write@{n}:kill");
        let out = copy_cmd(&a, &b, &["--all"], &[("SNAPVAULT_TEST_FAULT", &spec)]);
        assert_eq!(out.code, None, "{spec}: not killed:\n{out}");
        let check = b.run(&["check"]);
        assert_eq!(
            check.code,
            Some(0),
            "{spec}: check after the kill:\n{check}"
        );
    }
    let v = copy_json(&a, &b, &["--all"]);
    assert_eq!(u(&v, "copied") + u(&v, "skipped"), 2, "{v}");
    assert_eq!(b.snapshots().len(), 2);
    restore_and_compare(&b, "latest", &lib, tmp.path(), "restored");
    b.ok(&["check", "--read-data"]);
}
