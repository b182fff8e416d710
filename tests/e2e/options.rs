//! Global options work before or after the command name; the repository and the password
//! come from options or the environment.

use crate::common::*;

#[test]
fn repo_option_before_or_after_the_command() {
    let tmp = tempdir();
    let src = tmp.path().join("photos");
    write_random(&src.join("a.jpg"), 1, 1000);
    let sv = Sv::init(tmp.path().join("repo"), false);
    sv.snapshot(&[&src], &["--tag", "t1"]);
    let repo = sv.repo.to_str().unwrap();

    let run = |args: &[&str]| {
        // No SNAPVAULT_REPOSITORY: the option alone must find the repository.
        let mut c = base_command();
        c.args(args);
        let out = run_command(c, DEFAULT_TIMEOUT);
        assert_eq!(out.code, Some(0), "{args:?}:\n{out}");
        out.stdout
    };
    let before = run(&["--repo", repo, "snapshots", "--json"]);
    let after = run(&["snapshots", "--json", "--repo", repo]);
    let short_before = run(&["-r", repo, "snapshots", "--json"]);
    let short_after = run(&["snapshots", "-r", repo, "--json"]);
    let list: serde_json::Value = serde_json::from_str(&before).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(before, after);
    assert_eq!(before, short_before);
    assert_eq!(before, short_after);

    // --quiet after the command.
    let q = run(&["snapshot", src.to_str().unwrap(), "--quiet", "--repo", repo]);
    assert_eq!(q.trim(), "", "--quiet prints nothing on success");

    // The option wins over the environment variable.
    let mut c = sv.command(&["snapshots", "--json", "--repo", repo]);
    c.env("SNAPVAULT_REPOSITORY", tmp.path().join("elsewhere"));
    let out = run_command(c, DEFAULT_TIMEOUT);
    assert_eq!(out.code, Some(0), "{out}");

    // Neither option nor variable: a clear error.
    let mut c = base_command();
    c.args(["snapshots"]);
    let out = run_command(c, DEFAULT_TIMEOUT);
    assert_failed(&out);
    assert_stderr_mentions(&out, "no repository given");
}

#[test]
fn password_file_option_before_or_after_the_command() {
    let tmp = tempdir();
    let sv = Sv::init(tmp.path().join("repo"), true);
    let pwfile = tmp.path().join("pw");
    write_file(&pwfile, format!("{PASSWORD}\n").as_bytes());
    let repo = sv.repo.to_str().unwrap();
    let pw = pwfile.to_str().unwrap();
    for args in [
        vec!["--password-file", pw, "--repo", repo, "snapshots"],
        vec!["snapshots", "--password-file", pw, "--repo", repo],
        vec!["--repo", repo, "snapshots", "--password-file", pw],
    ] {
        let mut c = base_command();
        c.args(&args);
        let out = run_command(c, DEFAULT_TIMEOUT);
        assert_eq!(out.code, Some(0), "{args:?}:\n{out}");
    }
    // --password-command works too, and a wrong one is a wrong password.
    let mut c = base_command();
    c.args(["snapshots", "--repo", repo, "--password-command"]);
    c.arg(format!("echo '{PASSWORD}'"));
    let out = run_command(c, DEFAULT_TIMEOUT);
    assert_eq!(out.code, Some(0), "{out}");
    let mut c = base_command();
    c.args([
        "--password-command",
        "echo nope",
        "snapshots",
        "--repo",
        repo,
    ]);
    let out = run_command(c, DEFAULT_TIMEOUT);
    assert_eq!(out.code, Some(12), "{out}");
}

#[test]
fn help_describes_every_command() {
    let mut c = base_command();
    c.arg("--help");
    let out = run_command(c, DEFAULT_TIMEOUT);
    assert_eq!(out.code, Some(0), "{out}");
    for cmd in [
        "init",
        "snapshot",
        "snapshots",
        "ls",
        "restore",
        "check",
        "key",
        "unlock",
    ] {
        assert!(
            out.stdout.lines().any(|l| l.trim_start().starts_with(cmd)),
            "--help does not list {cmd}:\n{out}"
        );
        let mut c = base_command();
        c.args([cmd, "--help"]);
        let sub = run_command(c, DEFAULT_TIMEOUT);
        assert_eq!(sub.code, Some(0), "{cmd} --help:\n{sub}");
        assert!(sub.stdout.contains("Usage:"), "{cmd} --help:\n{sub}");
    }
    let mut c = base_command();
    c.args(["snapshot", "--no-such-option"]);
    let out = run_command(c, DEFAULT_TIMEOUT);
    assert_eq!(out.code, Some(2), "usage error exit code:\n{out}");
}
