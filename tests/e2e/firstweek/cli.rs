//! The command line as a first-week user meets it: an unplugged drive (24.2), passwords
//! (24.7), progress (24.5), everyday words (24.8), and small confusions (24.11).

use crate::common::*;

/// With the drive's folder absent, snapvault names the missing drive folder instead of
/// suggesting `init`, and `init` does not create the missing path on the internal disk
/// unless asked (24.2).
#[test]
fn an_unplugged_drive_is_named_and_init_does_not_create_its_folder() {
    let tmp = tempdir();
    let media = tmp.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    let t7 = media.join("T7");
    let sv = Sv::at(t7.join("photos"), Some(PASSWORD));
    let said = format!("{} does not exist — is the drive plugged in?", t7.display());

    let out = sv.run(&["snapshots"]);
    assert_eq!(out.code, Some(10), "{out}");
    assert_stderr_mentions(&out, &said);
    assert!(
        !out.stderr.contains("snapvault init"),
        "an unplugged drive must not lead to init:\n{out}"
    );

    // The off-site copy's drive, unplugged.
    let home = Sv::init(tmp.path().join("home-repo"), true);
    let dst = t7.join("offsite");
    let out = home.run_env(
        &["copy", "--all", "--to", dst.to_str().unwrap()],
        &[("SNAPVAULT_PASSWORD2", PASSWORD)],
    );
    assert_eq!(out.code, Some(10), "{out}");
    assert_stderr_mentions(&out, &said);

    let out = sv.run(&["init"]);
    assert_failed(&out);
    assert_stderr_mentions(&out, &said);
    assert_stderr_mentions(&out, "--create-parents");
    assert!(!t7.exists(), "init created the missing drive folder");

    let out = sv.run(&["init", "--create-parents"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(t7.join("photos/config").is_file());

    // Only the repository's own folder missing, its parent there: no drive question, and
    // init creates it as before.
    let out = Sv::at(media.join("photos"), Some(PASSWORD)).run(&["snapshots"]);
    assert_eq!(out.code, Some(10), "{out}");
    assert_stderr_mentions(&out, "there is no repository at");
    let out = Sv::at(media.join("photos"), Some(PASSWORD)).run(&["init"]);
    assert_eq!(out.code, Some(0), "{out}");
}
