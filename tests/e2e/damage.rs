//! The damage list: what one `check` found stays known until it is re-read intact or
//! healed (issue 15.4).

use crate::common::*;
use crate::repair::{Lab, flip};

fn damage_a_blob(lab: &Lab) -> std::path::PathBuf {
    let p = lab.data_pack();
    flip(&p, |n| n / 3);
    p
}

#[test]
fn later_checks_that_read_less_do_not_forget_damage() {
    let lab = Lab::new();
    damage_a_blob(&lab);
    let out = lab.run(&["check", "--read-data"]);
    assert_eq!(out.code, Some(4), "{out}");
    // A quick check and a 1/1000 subset read (not the damaged pack, in all likelihood)
    // still know about the damage.
    for args in [&["check"][..], &["check", "--read-data-subset", "1/1000"]] {
        let out = lab.run(args);
        assert_eq!(out.code, Some(4), "{args:?} forgot the damage:\n{out}");
        assert!(out.stdout.contains("earlier check"), "{out}");
    }
    // So the next snapshot still stores the damaged photo again from the source.
    let s = lab
        .ok(&["snapshot", "--json", lab.src.to_str().unwrap()])
        .json();
    assert!(summary_u64(&s, "files_changed") >= 1, "{s}");
    assert!(lab.restore_latest("healed").is_empty());
}

#[test]
fn a_damaged_pack_loses_its_verified_time() {
    let lab = Lab::new();
    let out = lab.ok(&["check", "--read-data"]);
    assert!(out.stdout.contains("100% of data verified"), "{out}");
    damage_a_blob(&lab);
    let out = lab.run(&["check", "--read-data"]);
    assert_eq!(out.code, Some(4), "{out}");
    assert!(
        !out.stdout.contains("100% of data verified"),
        "a damaged pack still counts as verified:\n{out}"
    );
}

#[test]
fn healed_blobs_are_stored_once() {
    let lab = Lab::new();
    damage_a_blob(&lab);
    assert_eq!(lab.run(&["check", "--read-data"]).code, Some(4));
    let src = lab.src.to_str().unwrap();
    let s = lab.ok(&["snapshot", "--json", src]).json();
    assert!(summary_u64(&s, "files_changed") >= 1, "{s}");
    // Healed: the next snapshot reads and stores nothing again.
    let s = lab.ok(&["snapshot", "--json", src]).json();
    assert_eq!(summary_u64(&s, "files_changed"), 0, "stored again: {s}");
}

#[test]
fn damage_read_again_intact_is_cleared() {
    let lab = Lab::new();
    let pack = damage_a_blob(&lab);
    assert_eq!(lab.run(&["check", "--read-data"]).code, Some(4));
    // The byte was wrong only for a while (a loose cable): flipped back, it reads intact.
    flip(&pack, |n| n / 3);
    let out = lab.ok(&["check", "--read-data"]);
    assert!(out.stdout.contains("no errors found"), "{out}");
    assert!(out.stdout.contains("100% of data verified"), "{out}");
    lab.ok(&["check"]);
    lab.ok(&["prune"]);
}
