//! Parity on a remote repository (S3, SFTP): covered, checked, and a lost pack rebuilt.

use super::*;

#[test]
fn parity_on_sftp_and_s3_covers_and_repairs() {
    use crate::remote::{Remote, no_servers, restore_matches};
    if no_servers() {
        return;
    }
    let work = tempdir();
    let src = work.path().join("library");
    library(&src);
    let src_s = src.display().to_string();
    for r in [Remote::s3("parity"), Remote::sftp("parity")] {
        r.ok(&["init", "--parity", "10"]);
        r.ok(&["snapshot", &src_s]);
        let v = r.ok(&["check", "--read-data", "--json"]).json();
        assert_eq!(v["parity"]["files_unprotected"], 0, "{}: {v}", r.url);
        assert!(v["parity"]["parity_files"].as_u64().unwrap() > 0, "{v}");
        assert!(
            v["parity"]["repairable"].as_array().unwrap().is_empty(),
            "{v}"
        );
        restore_matches(&r, "latest", &src);
    }
    // On SFTP the repository is a folder this machine can reach: lose a pack there.
    let r = Remote::sftp("parity-lost");
    r.ok(&["init", "--parity", "10"]);
    r.ok(&["snapshot", &src_s]);
    let folder = r.sftp_folder();
    let (pack, path) = pack_files(&folder)
        .into_iter()
        .max_by_key(|(_, p)| std::fs::metadata(p).unwrap().len())
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    let out = r.run(&["check", "--read-data", "--json"]);
    assert_eq!(out.code, Some(4), "{out}");
    let v = out.json();
    assert!(
        names(&v, "repairable").contains(&format!("pack {pack}")),
        "{v}"
    );
    let out = r.ok(&["repair", "--apply"]);
    assert_mentions(&out, &format!("repaired from parity: pack {pack}"));
    r.ok(&["check", "--read-data"]);
    restore_matches(&r, "latest", &src);
}
