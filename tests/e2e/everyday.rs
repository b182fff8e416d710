//! Everyday use: progress (hidden without a terminal, JSON lines with --json), the JSON
//! output of every command, exit codes, the config file and its precedence, excludes,
//! completions and man pages, `stats`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::common::*;

fn arr<'a>(v: &'a Value, what: &str) -> &'a Vec<Value> {
    v.as_array()
        .unwrap_or_else(|| panic!("{what} is not an array: {v}"))
}

fn u(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no numeric {field:?} in {v}"))
}

fn s<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no string {field:?} in {v}"))
}

/// A small library: two photos, a video, junk, and a file in a sub-folder.
fn library(root: &Path) {
    write_random(&root.join("DCIM/IMG_0001.HEIC"), 1, 30_000);
    write_random(&root.join("DCIM/IMG_0002.JPG"), 2, 20_000);
    write_random(&root.join("DCIM/sub/IMG_0003.MOV"), 3, 50_000);
}

/// Every JSON line of stderr, parsed; panics on a line that is not JSON.
fn json_lines(out: &Out) -> Vec<Value> {
    out.stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("stderr line is not JSON ({e}): {l}\n{out}"))
        })
        .collect()
}

fn paths_in(sv: &Sv, snap: &str) -> BTreeMap<String, Value> {
    arr(&sv.ok(&["ls", snap, "--json"]).json(), "ls")
        .iter()
        .map(|e| (s(e, "path").to_string(), e.clone()))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Progress

#[test]
fn progress_is_hidden_without_a_terminal_and_json_lines_with_json() {
    let tmp = tempdir();
    let lib = tmp.path().join("lib");
    library(&lib);
    let sv = Sv::init(tmp.path().join("repo"), true);

    // stderr is a pipe: no bar, no carriage returns, nothing at all.
    let out = sv.ok(&[Path::new("snapshot"), &lib]);
    assert_eq!(out.stderr, "", "progress shown without a terminal:\n{out}");
    let target = tmp.path().join("r1");
    let out = sv.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(out.stderr, "", "{out}");
    let out = sv.ok(&["check", "--read-data"]);
    assert_eq!(out.stderr, "", "{out}");

    // --json: progress as JSON lines on stderr, the summary as JSON on stdout.
    write_random(&lib.join("DCIM/IMG_0004.HEIC"), 4, 40_000);
    let out = sv.ok(&[Path::new("snapshot"), Path::new("--json"), &lib]);
    let summary = out.json();
    assert_eq!(summary_u64(&summary, "files_new"), 1, "{summary}");
    let lines = json_lines(&out);
    assert!(
        lines.len() >= 2,
        "expected a first and a final line:\n{out}"
    );
    for l in &lines {
        assert_eq!(s(l, "type"), "progress", "{l}");
        assert_eq!(s(l, "command"), "snapshot", "{l}");
        for f in ["elapsed_ms", "done", "bytes_done", "bytes_read", "errors"] {
            u(l, f);
        }
    }
    let last = lines.last().unwrap();
    assert_eq!(last["final"], true, "{last}");
    assert_eq!(u(last, "done"), 4, "4 files processed: {last}");
    assert_eq!(u(last, "total"), 4, "{last}");
    assert_eq!(last["total_final"], true, "{last}");
    assert_eq!(u(last, "bytes_total"), 140_000, "{last}");
    assert_eq!(u(last, "bytes_done"), 140_000, "{last}");
    assert_eq!(
        u(last, "bytes_read"),
        40_000,
        "only the new file is read: {last}"
    );

    let target = tmp.path().join("r2");
    let out = sv.ok(&[
        "restore",
        "latest",
        "--json",
        "--target",
        target.to_str().unwrap(),
    ]);
    out.json();
    let last = json_lines(&out).pop().expect("a progress line");
    assert_eq!(s(&last, "command"), "restore");
    assert_eq!(u(&last, "done"), 4, "{last}");
    assert_eq!(u(&last, "bytes_done"), 140_000, "{last}");

    let out = sv.ok(&["check", "--read-data", "--json"]);
    out.json();
    let last = json_lines(&out).pop().expect("a progress line");
    assert_eq!(s(&last, "command"), "check");
    assert_eq!(s(&last, "unit"), "packs");
    assert_eq!(last["done"], last["total"], "every pack read: {last}");

    // --quiet silences progress even with --json.
    let out = sv.ok(&["check", "--read-data", "--json", "--quiet"]);
    assert_eq!(out.stderr, "", "{out}");
}

// ---------------------------------------------------------------------------------------
// JSON output of every command

#[test]
fn every_command_prints_json_that_parses() {
    let tmp = tempdir();
    let lib = tmp.path().join("lib");
    snapvault_media::sample::library(&lib, 6, 7).unwrap();
    let sv = Sv::at(tmp.path().join("repo"), Some(PASSWORD));

    let v = sv.ok(&["init", "--json"]).json();
    assert_eq!(s(&v, "id").len(), 64, "{v}");
    assert_eq!(v["encrypted"], true);
    assert_eq!(u(&v, "compression_level"), 3);
    assert!(s(&v, "location").ends_with("repo"), "{v}");

    let s1 = sv.snapshot(&[&lib], &["--tag", "one"]);
    assert_eq!(s(&s1, "id").len(), 64);
    assert!(
        s1["summary"].is_object() && s1["vanished"].is_object(),
        "{s1}"
    );
    fs::remove_file(lib.join("DCIM/100APPLE/IMG_0002.HEIC")).unwrap();
    let s2 = sv.snapshot(&[&lib], &[]);
    assert_eq!(u(&s2["vanished"], "count"), 1, "{s2}");

    let list = sv.snapshots();
    assert_eq!(list.len(), 2);

    let ls = paths_in(&sv, "latest");
    assert!(ls.contains_key("lib/DCIM/100APPLE/IMG_0001.HEIC"), "{ls:?}");

    let target = tmp.path().join("t");
    let t = target.to_str().unwrap();
    let v = sv
        .ok(&["restore", "latest", "--target", t, "--json"])
        .json();
    assert!(u(&v, "files_restored") > 0, "{v}");
    assert!(arr(&v["problems"], "problems").is_empty());
    let v = sv
        .ok(&["restore", "latest", "--target", t, "--dry-run", "--json"])
        .json();
    assert!(u(&v, "files") > 0 && v["items"].is_array(), "{v}");

    let v = sv.ok(&["check", "--json"]).json();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(u(&v, "errors"), 0);

    let v = sv.ok(&["diff", "latest~1", "latest", "--json"]).json();
    assert_eq!(arr(&v["removed"], "removed").len(), 1, "{v}");

    let v = sv.ok(&["photos", "--json"]).json();
    assert!(!arr(&v, "photos").is_empty());

    let v = sv.ok(&["stats", "--json"]).json();
    assert_eq!(u(&v, "snapshots"), 2, "{v}");

    let v = sv.ok(&["config", "show", "--json"]).json();
    assert!(v["settings"].is_array(), "{v}");

    let keys = sv.ok(&["key", "list", "--json"]).json();
    assert_eq!(arr(&keys, "keys").len(), 1);
    let v = sv.run_env(
        &["key", "add", "--json"],
        &[("SNAPVAULT_NEW_PASSWORD", "second horse")],
    );
    assert_eq!(v.code, Some(0), "{v}");
    let added = s(&v.json(), "added").to_string();
    assert_eq!(added.len(), 64);
    let v = sv.ok(&["key", "remove", &added[..8], "--json"]).json();
    assert_eq!(s(&v, "removed"), added);
    let out = sv.run_env(
        &["key", "passwd", "--json"],
        &[("SNAPVAULT_NEW_PASSWORD", "third horse")],
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.json()["changed"], true);
    let sv = Sv::at(&sv.repo, Some("third horse"));

    let v = sv.ok(&["unlock", "--json"]).json();
    assert!(v["removed"].is_array() && v["kept"].is_array(), "{v}");

    let v = sv.ok(&["repair", "--json"]).json();
    assert!(v.is_object(), "{v}");

    // Errors with --json: one JSON line on stderr.
    let out = sv.run(&["ls", "ffffffff", "--json"]);
    assert_eq!(out.code, Some(1), "{out}");
    let lines = json_lines(&out);
    let err = lines.last().expect("an error line");
    assert_eq!(s(err, "type"), "error");
    assert!(s(err, "message").contains("no snapshot matches"), "{err}");
    assert_eq!(u(err, "exit_code"), 1);
}

// ---------------------------------------------------------------------------------------
// Exit codes

#[test]
fn exit_codes_per_situation() {
    let tmp = tempdir();
    let lib = tmp.path().join("lib");
    library(&lib);

    // 10: no repository there.
    let missing = Sv::at(tmp.path().join("nothing"), Some(PASSWORD));
    let out = missing.run(&["snapshots"]);
    assert_eq!(out.code, Some(10), "{out}");
    assert_stderr_mentions(&out, "snapvault init");

    let sv = Sv::init(tmp.path().join("repo"), true);
    // 0
    sv.snapshot(&[&lib], &[]);
    // 2: usage.
    let out = sv.run(&["snapshots", "--no-such-flag"]);
    assert_eq!(out.code, Some(2), "{out}");
    let out = sv.run(&["completions", "tcsh"]);
    assert_eq!(out.code, Some(2), "{out}");
    // 1: an ordinary error (the target is a file).
    let file = tmp.path().join("a-file");
    fs::write(&file, b"x").unwrap();
    let out = sv.run(&["restore", "latest", "--target", file.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(!out.stderr.contains("panicked") && !out.stderr.contains("backtrace"));
    // 12: wrong password, with a hint.
    let wrong = Sv::at(&sv.repo, Some("not the password"));
    let out = wrong.run(&["snapshots"]);
    assert_eq!(out.code, Some(12), "{out}");
    assert_stderr_mentions(&out, "hint:");
    // -v adds the causes and the exit code.
    let out = wrong.run(&["snapshots", "-v"]);
    assert_eq!(out.code, Some(12), "{out}");
    assert_stderr_mentions(&out, "exit code 12");
    // 11: locked by another process.
    let repo = snapvault_repo::Repository::open(
        std::sync::Arc::new(snapvault_repo::backend::LocalBackend::new(&sv.repo)),
        || Ok(PASSWORD.as_bytes().to_vec()),
    )
    .unwrap();
    let guard = repo.lock(true, "prune").unwrap();
    let out = sv.run(&[Path::new("snapshot"), &lib]);
    assert_eq!(out.code, Some(11), "{out}");
    assert_stderr_mentions(&out, "unlock");
    drop(guard);
    // 4: check finds damage.
    let packs = pack_files(&sv.repo);
    let (_, pack) = packs.first().expect("a pack");
    let mut bytes = fs::read(pack).unwrap();
    let mid = bytes.len() / 3;
    bytes[mid] ^= 0xff;
    fs::write(pack, bytes).unwrap();
    let out = sv.run(&["check", "--read-data"]);
    assert_eq!(out.code, Some(4), "{out}");
}

// ---------------------------------------------------------------------------------------
// Configuration

fn write_config(path: &Path, text: &str) {
    write_file(path, text.as_bytes());
}

#[test]
fn config_file_env_and_flags_in_order_of_precedence() {
    let tmp = tempdir();
    let xdg = tmp.path().join("xdg");
    let cfg = xdg.join("snapvault/config.toml");
    let file_repo = tmp.path().join("file-repo");
    let pwfile = tmp.path().join("pw");
    fs::write(&pwfile, format!("{PASSWORD}\n")).unwrap();
    write_config(
        &cfg,
        &format!(
            r#"
excludes = ["*.tmp"]
repository = "{}"
password_file = "{}"
compression = 9

[profiles.travel]
repository = "{}"
device = "00008030-AAAA"
keep = {{ daily = 7, monthly = 24 }}
"#,
            file_repo.display(),
            pwfile.display(),
            tmp.path().join("travel-repo").display()
        ),
    );
    // No repository, no password in the environment: everything comes from the file.
    let bare = |args: &[&str], env: &[(&str, &str)]| {
        let mut c = base_command();
        c.env("XDG_CONFIG_HOME", &xdg);
        for (k, v) in env {
            c.env(k, v);
        }
        c.args(args);
        run_command(c, DEFAULT_TIMEOUT)
    };
    let out = bare(&["init", "--json"], &[]);
    assert_eq!(out.code, Some(0), "{out}");
    let v = out.json();
    assert_eq!(
        u(&v, "compression_level"),
        9,
        "compression from the file: {v}"
    );
    assert!(
        file_repo.join("config").is_file(),
        "init used the file's repository"
    );
    let lib = tmp.path().join("lib");
    library(&lib);
    write_random(&lib.join("DCIM/scratch.tmp"), 9, 100);
    let out = bare(&["snapshot", "--json", lib.to_str().unwrap()], &[]);
    assert_eq!(out.code, Some(0), "{out}");
    let out = bare(&["ls", "latest", "--json"], &[]);
    assert_eq!(out.code, Some(0), "{out}");
    let ls = out.json();
    let listed: Vec<&str> = arr(&ls, "ls").iter().map(|e| s(e, "path")).collect();
    assert!(
        !listed.iter().any(|p| p.ends_with(".tmp")),
        "file excludes: {listed:?}"
    );
    assert!(
        listed.iter().any(|p| p.ends_with("IMG_0001.HEIC")),
        "{listed:?}"
    );

    // Precedence for the repository: file < env < flag.
    let show = |args: &[&str], env: &[(&str, &str)]| {
        let mut e: Vec<(&str, &str)> = vec![("XDG_CONFIG_HOME", xdg.to_str().unwrap())];
        e.extend_from_slice(env);
        let mut c = base_command();
        for (k, v) in &e {
            c.env(k, v);
        }
        let mut a = vec!["config", "show", "--json"];
        a.extend_from_slice(args);
        c.args(&a);
        let out = run_command(c, DEFAULT_TIMEOUT);
        assert_eq!(out.code, Some(0), "{out}");
        arr(&out.json()["settings"], "settings")
            .iter()
            .map(|x| {
                (
                    s(x, "name").to_string(),
                    (x["value"].clone(), s(x, "origin").to_string()),
                )
            })
            .collect::<HashMap<_, _>>()
    };
    let m = show(&[], &[]);
    assert_eq!(m["repository"].0, file_repo.to_str().unwrap());
    assert_eq!(m["repository"].1, "file");
    assert_eq!(m["password"].1, "file");
    assert_eq!(m["compression"], (Value::from("9"), "file".to_string()));
    let m = show(
        &[],
        &[
            ("SNAPVAULT_REPOSITORY", "/from/env"),
            ("SNAPVAULT_COMPRESSION", "4"),
        ],
    );
    assert_eq!(
        m["repository"],
        (Value::from("/from/env"), "env".to_string())
    );
    assert_eq!(m["compression"], (Value::from("4"), "env".to_string()));
    let m = show(
        &["--repo", "/from/flag"],
        &[("SNAPVAULT_REPOSITORY", "/from/env")],
    );
    assert_eq!(
        m["repository"],
        (Value::from("/from/flag"), "flag".to_string())
    );
    // The password: the environment's beats the file's.
    let m = show(&[], &[("SNAPVAULT_PASSWORD", "x")]);
    assert_eq!(m["password"].1, "env");
    let m = show(&["--password-command", "echo x"], &[]);
    assert_eq!(m["password"].1, "flag");

    // A profile overrides the top level; the top level still supplies the rest.
    let m = show(&["--profile", "travel"], &[]);
    assert!(s_val(&m["repository"].0).ends_with("travel-repo"));
    assert_eq!(m["profile"], (Value::from("travel"), "flag".to_string()));
    assert_eq!(
        m["device"],
        (Value::from("00008030-AAAA"), "file".to_string())
    );
    assert_eq!(m["keep"].0, "daily=7 monthly=24");
    assert_eq!(m["compression"].0, "9");
    let m = show(
        &[],
        &[
            ("SNAPVAULT_PROFILE", "travel"),
            ("SNAPVAULT_DEVICE", "ENVUDID"),
        ],
    );
    assert_eq!(m["profile"].1, "env");
    assert_eq!(m["device"], (Value::from("ENVUDID"), "env".to_string()));

    // The text form names each origin too.
    let mut c = base_command();
    c.env("XDG_CONFIG_HOME", &xdg)
        .env("SNAPVAULT_REPOSITORY", "/from/env");
    c.args(["config", "show"]);
    let out = run_command(c, DEFAULT_TIMEOUT);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("env SNAPVAULT_REPOSITORY"), "{out}");
    assert!(out.stdout.contains("*.tmp"), "{out}");
    assert!(out.stdout.contains(".DS_Store"), "{out}");

    // Mistakes are reported with the file's name.
    let out = bare(&["snapshots", "--profile", "nope"], &[]);
    assert_eq!(out.code, Some(1), "{out}");
    assert_stderr_mentions(&out, "no profile \"nope\"");
    assert_stderr_mentions(&out, "travel");
    let bad = tmp.path().join("bad.toml");
    write_config(&bad, "repositry = \"/x\"\n");
    let out = bare(&["snapshots", "--config", bad.to_str().unwrap()], &[]);
    assert_eq!(out.code, Some(1), "{out}");
    assert_stderr_mentions(&out, "bad.toml");
    assert_stderr_mentions(&out, "repositry");
    let out = bare(&["snapshots", "--config", "/does/not/exist.toml"], &[]);
    assert_eq!(out.code, Some(1), "{out}");
}

fn s_val(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

// ---------------------------------------------------------------------------------------
// Excludes

#[test]
fn excludes_defaults_globs_files_and_opt_out() {
    let tmp = tempdir();
    let lib = tmp.path().join("lib");
    library(&lib);
    for junk in [
        "DCIM/.DS_Store",
        "DCIM/sub/._IMG_0003.MOV",
        "DCIM/Thumbs.db",
        "DCIM/desktop.ini",
        ".Spotlight-V100/store.db",
        "DCIM/cache/x.tmp",
        "DCIM/edit.psd",
        "raw/big.dng",
    ] {
        write_random(&lib.join(junk), 5, 1000);
    }
    // The config-free repository, no XDG config: only flags matter.
    let sv = Sv::init(tmp.path().join("repo"), false);
    let nocfg = tmp.path().join("no-config");
    let run = |args: &[&str]| {
        let out = sv.run_env(args, &[("XDG_CONFIG_HOME", nocfg.to_str().unwrap())]);
        assert_eq!(out.code, Some(0), "{out}");
        out
    };
    let excl_file = tmp.path().join("excludes.txt");
    fs::write(&excl_file, "# raw files stay on the laptop\n\nraw\n*.psd\n").unwrap();
    let l = lib.to_str().unwrap();
    run(&["snapshot", l]);
    let p1 = paths_in(&sv, "latest");
    for junk in [
        ".DS_Store",
        "._IMG_0003.MOV",
        "Thumbs.db",
        "desktop.ini",
        ".Spotlight-V100",
    ] {
        assert!(
            !p1.keys().any(|p| p.ends_with(junk)),
            "{junk} was kept: {:?}",
            p1.keys()
        );
    }
    assert!(p1.contains_key("lib/DCIM/cache/x.tmp"));
    assert!(p1.contains_key("lib/raw/big.dng"));

    run(&[
        "snapshot",
        "--exclude",
        "*.tmp",
        "--exclude",
        "lib/DCIM/sub/*.MOV",
        "--exclude-file",
        excl_file.to_str().unwrap(),
        l,
    ]);
    let p2 = paths_in(&sv, "latest");
    for gone in [
        "lib/DCIM/cache/x.tmp",
        "lib/DCIM/sub/IMG_0003.MOV",
        "lib/raw",
        "lib/raw/big.dng",
        "lib/DCIM/edit.psd",
    ] {
        assert!(!p2.contains_key(gone), "{gone} was kept: {:?}", p2.keys());
    }
    assert!(p2.contains_key("lib/DCIM/cache"), "the folder itself stays");
    assert!(p2.contains_key("lib/DCIM/IMG_0001.HEIC"));

    run(&["snapshot", "--no-default-excludes", l]);
    let p3 = paths_in(&sv, "latest");
    assert!(p3.contains_key("lib/DCIM/.DS_Store"), "{:?}", p3.keys());
    assert!(p3.contains_key("lib/DCIM/sub/._IMG_0003.MOV"));

    // An excluded file is never opened: an unreadable one does not make the snapshot
    // incomplete (as root every file is readable, so this part then proves less).
    let locked = lib.join("DCIM/locked.tmp");
    write_random(&locked, 6, 100);
    set_mode(&locked, 0o000);
    let out = run(&["snapshot", "--json", "--exclude", "*.tmp", l]);
    assert_eq!(out.json()["incomplete"], false, "{out}");

    let out = sv.run(&["snapshot", "--exclude", "[", l]);
    assert_eq!(out.code, Some(1), "{out}");
    assert_stderr_mentions(&out, "invalid exclude pattern");
}

// ---------------------------------------------------------------------------------------
// Completions and man pages

#[test]
fn completions_for_three_shells_and_man_pages() {
    for (shell, marker) in [
        ("bash", "complete"),
        ("zsh", "#compdef"),
        ("fish", "complete -c snapvault"),
    ] {
        let out = run_command(
            {
                let mut c = base_command();
                c.args(["completions", shell]);
                c
            },
            DEFAULT_TIMEOUT,
        );
        assert_eq!(out.code, Some(0), "{out}");
        assert!(out.stdout.contains(marker), "{shell}: no {marker:?}");
        for word in ["snapshot", "restore", "stats", "exclude", "profile"] {
            assert!(out.stdout.contains(word), "{shell} completion lacks {word}");
        }
    }
    let tmp = tempdir();
    let dir = tmp.path().join("man/man1");
    let mut c = base_command();
    c.arg("manpage").arg(&dir);
    let out = run_command(c, DEFAULT_TIMEOUT);
    assert_eq!(out.code, Some(0), "{out}");
    let names: HashSet<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for page in [
        "snapvault.1",
        "snapvault-snapshot.1",
        "snapvault-restore.1",
        "snapvault-check.1",
        "snapvault-stats.1",
        "snapvault-key-add.1",
        "snapvault-config-show.1",
    ] {
        assert!(names.contains(page), "no {page} in {names:?}");
    }
    let main = fs::read_to_string(dir.join("snapvault-snapshot.1")).unwrap();
    assert!(main.contains(".TH"), "not roff");
    assert!(main.contains("exclude"), "options missing");
}

// ---------------------------------------------------------------------------------------
// stats

#[test]
fn stats_figures_match_the_repository() {
    let tmp = tempdir();
    let lib = tmp.path().join("lib");
    snapvault_media::sample::library(&lib, 14, 3).unwrap();
    // The same photo a second time under another name: one photo, stored once.
    fs::copy(
        lib.join("DCIM/100APPLE/IMG_0001.HEIC"),
        lib.join("DCIM/100APPLE/copy of IMG_0001.HEIC"),
    )
    .unwrap();
    let sv = Sv::init(tmp.path().join("repo"), true);
    sv.snapshot(&[&lib], &[]);
    sv.snapshot(&[&lib], &[]);

    // What the snapshot holds, independently of stats: files, media kinds and dates.
    let ls = paths_in(&sv, "latest");
    let mut contents: HashMap<Vec<u8>, (String, Option<String>)> = HashMap::new();
    let mut total = 0u64;
    for (p, e) in &ls {
        if s(e, "type") != "file" {
            continue;
        }
        let bytes = fs::read(tmp.path().join(p)).unwrap();
        total += bytes.len() as u64;
        let kind = e["media"]["kind"].as_str().unwrap_or("other").to_string();
        let taken = e["media"]["taken"].as_str().map(|t| t[..7].to_string());
        contents.insert(bytes, (kind, taken));
    }
    let unique: u64 = contents.keys().map(|b| b.len() as u64).sum();
    let count = |k: &str| contents.values().filter(|(kind, _)| kind == k).count() as u64;
    let mut months: BTreeMap<String, u64> = BTreeMap::new();
    for (kind, taken) in contents.values() {
        if let (true, Some(t)) = (kind == "photo" || kind == "video", taken) {
            *months.entry(t.clone()).or_default() += 1;
        }
    }
    assert!(
        count("photo") >= 14 && count("video") >= 5,
        "sample changed?"
    );

    let v = sv.ok(&["stats", "--json"]).json();
    assert_eq!(u(&v, "snapshots"), 2);
    assert!(v["snapshot"].is_null());
    assert_eq!(u(&v, "original_bytes"), 2 * total, "{v}");
    assert_eq!(u(&v, "unique_bytes"), unique, "{v}");
    assert_eq!(u(&v, "photos"), count("photo"), "{v}");
    assert_eq!(u(&v, "videos"), count("video"), "{v}");
    let got: BTreeMap<String, u64> = arr(&v["by_month"], "by_month")
        .iter()
        .map(|m| (s(m, "month").to_string(), u(m, "photos") + u(m, "videos")))
        .collect();
    assert_eq!(got, months, "histogram by month");
    let years: u64 = arr(&v["by_year"], "by_year")
        .iter()
        .map(|y| u(y, "photos") + u(y, "videos"))
        .sum();
    assert_eq!(years, count("photo") + count("video"));
    let dedup = v["dedup_ratio"].as_f64().unwrap();
    let want = (2 * total) as f64 / unique as f64;
    assert!((dedup - want).abs() < 0.01, "dedup {dedup} vs {want}");
    let stored = u(&v, "stored_bytes");
    assert!(
        stored > unique / 2 && stored < unique * 2,
        "stored {stored} of {unique}"
    );
    let on_disk = tree_size(&sv.repo);
    assert_eq!(u(&v["repository"], "size_on_disk"), on_disk, "{v}");
    assert!(v["compression_ratio"].as_f64().unwrap() > 0.5);

    // One snapshot: counted once.
    let one = sv.ok(&["stats", "--snapshot", "latest", "--json"]).json();
    assert_eq!(u(&one, "snapshots"), 1);
    assert_eq!(u(&one, "original_bytes"), total);
    assert_eq!(s(&one, "snapshot").len(), 64);

    // The terminal form: figures and bars.
    let out = sv.ok(&["stats"]);
    assert!(out.stdout.contains("deduplication"), "{out}");
    assert!(out.stdout.contains("2023"), "{out}");
    assert!(out.stdout.contains('█'), "no bars:\n{out}");
}

/// A stray file in `index/` (a `notes.txt`, a half-copied `….part`) is not an index file: every
/// command leaves it out, and so does the count of index files (its bytes still take space).
#[test]
fn stats_counts_only_index_files_as_index_files() {
    let tmp = tempdir();
    let lib = tmp.path().join("lib");
    write_random(&lib.join("a.bin"), 1, 5000);
    let sv = Sv::init(tmp.path().join("repo"), true);
    sv.snapshot(&[&lib], &[]);
    let real = fs::read_dir(sv.repo.join("index")).unwrap().count() as u64;
    assert!(real >= 1);
    write_file(&sv.repo.join("index/notes.txt"), b"not an index file");
    let v = sv.ok(&["stats", "--json"]).json();
    assert_eq!(u(&v["repository"], "index_files"), real, "{v}");
    assert_eq!(
        u(&v["repository"], "size_on_disk"),
        tree_size(&sv.repo),
        "{v}"
    );
}

#[test]
fn forget_uses_the_retention_policy_of_the_config_file() {
    let tmp = tempdir();
    let cfg = tmp.path().join("snapvault.toml");
    write_file(&cfg, b"[profiles.p]\nkeep = { last = 1 }\n");
    let lib = tmp.path().join("lib");
    library(&lib);
    let sv = Sv::init(tmp.path().join("repo"), false);
    for _ in 0..3 {
        sv.snapshot(&[&lib], &[]);
    }
    let c = cfg.to_str().unwrap();
    let out = sv.run(&[
        "forget",
        "--dry-run",
        "--json",
        "--config",
        c,
        "--profile",
        "p",
    ]);
    assert_eq!(out.code, Some(0), "{out}");
    let v = out.json();
    assert_eq!(
        arr(&v["remove"], "remove").len(),
        2,
        "keep last 1 of 3: {v}"
    );
    // A policy on the command line replaces the file's.
    let out = sv.run(&[
        "forget",
        "--dry-run",
        "--json",
        "--config",
        c,
        "--profile",
        "p",
        "--keep-last",
        "2",
    ]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(arr(&out.json()["remove"], "remove").len(), 1);
    assert_eq!(sv.snapshots().len(), 3, "a dry run removes nothing");
}

#[test]
fn progress_bar_is_drawn_on_a_terminal() {
    // `script` (util-linux) runs the command on a pseudo-terminal; macOS's BSD `script`
    // takes other options (and fails `--version`).
    if !std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        use std::io::Write;
        let _ = std::io::stderr().write_all(
            b"skipped progress_bar_is_drawn_on_a_terminal: no util-linux `script` for a terminal\n",
        );
        return;
    }
    let tmp = tempdir();
    let lib = tmp.path().join("lib");
    for i in 0..12 {
        write_random(&lib.join(format!("IMG_{i:04}.HEIC")), i, 3_000_000);
    }
    let sv = Sv::init(tmp.path().join("repo"), false);
    let cmd = format!(
        "{} snapshot {}; {} check --read-data",
        bin(),
        lib.display(),
        bin()
    );
    let mut c = sv.command(&["-qec", &cmd, "/dev/null"]);
    c.env_remove("SNAPVAULT_NO_PROGRESS").env("TERM", "xterm");
    let mut c2 = std::process::Command::new("script");
    c2.args(c.get_args());
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => c2.env(k, v),
            None => c2.env_remove(k),
        };
    }
    c2.stdin(std::process::Stdio::null());
    let out = run_command(c2, DEFAULT_TIMEOUT);
    assert_eq!(out.code, Some(0), "{out}");
    let text = out.stdout.replace('\r', "\n");
    assert!(
        text.contains("snapshot ") && text.contains("saved"),
        "{out}"
    );
    assert!(
        text.contains(" files") && text.contains('%'),
        "no progress bar on a terminal:\n{text}"
    );
    // check's bar speaks of bytes, not of packs (24.8).
    let check = text.split("saved").nth(1).unwrap_or_default();
    assert!(
        check.contains('%') && !check.contains("packs"),
        "no progress for check:\n{text}"
    );
}
