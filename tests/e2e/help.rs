//! Every `--help` page (issue 24.9): the command's own options first and the global ones
//! under their own heading, `--json` described, examples, one name for the phone, and a dry
//! run wherever something is removed.

use crate::common::*;

fn help(args: &[&str]) -> String {
    let mut c = base_command();
    c.args(args).arg("--help");
    let out = run_command(c, DEFAULT_TIMEOUT);
    assert_eq!(out.code, Some(0), "{args:?} --help:\n{out}");
    out.stdout
}

/// The commands listed on the top-level page (without `help`).
fn commands(top: &str) -> Vec<String> {
    let list = top
        .split("Commands:")
        .nth(1)
        .expect("a Commands: section")
        .split("\n\n")
        .next()
        .unwrap();
    list.lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// The text of one help section (`Options:`, `Global options:`, `Examples:`), up to the
/// next heading (an unindented line ending in ':').
fn section<'a>(page: &'a str, heading: &str) -> Option<&'a str> {
    let start = page.find(&format!("\n{heading}:\n"))? + heading.len() + 3;
    let rest = &page[start..];
    let mut pos = 0;
    for l in rest.split_inclusive('\n') {
        let t = l.trim_end();
        if !t.is_empty() && !t.starts_with(' ') && t.ends_with(':') {
            break;
        }
        pos += l.len();
    }
    Some(&rest[..pos])
}

/// Every page, keyed by the command words (`["key", "add"]`).
fn all_pages() -> Vec<(Vec<String>, String)> {
    let top = help(&[]);
    let mut pages = Vec::new();
    for c in commands(&top) {
        let page = help(&[&c]);
        if page.contains("\nCommands:\n") {
            for sub in commands(&page) {
                let p = help(&[&c, &sub]);
                pages.push((vec![c.clone(), sub], p));
            }
        } else {
            pages.push((vec![c], page));
        }
    }
    pages
}

#[test]
fn help_pages_group_global_options_describe_json_and_show_examples() {
    let top = help(&[]);
    let snapshot_line = top
        .lines()
        .find(|l| l.trim_start().starts_with("snapshot "))
        .expect("snapshot in the command list");
    assert!(
        snapshot_line.contains("iPhone"),
        "the top-level list should say snapshot backs up an iPhone: {snapshot_line}"
    );
    assert!(
        section(&top, "Global options").is_some_and(|s| s.contains("--repo")),
        "top-level page: --repo under Global options:\n{top}"
    );

    let pages = all_pages();
    assert!(pages.len() >= 20, "only {} pages found", pages.len());
    for (words, page) in &pages {
        let name = words.join(" ");
        let global = section(page, "Global options")
            .unwrap_or_else(|| panic!("`{name} --help` has no Global options heading:\n{page}"));
        for g in [
            "--repo",
            "--password-file",
            "--quiet",
            "--verbose",
            "--profile",
        ] {
            assert!(
                global.contains(g),
                "`{name} --help`: {g} not under Global options"
            );
        }
        let own = section(page, "Options").unwrap_or("");
        for g in ["--repo", "--password-file", "--quiet", "--profile"] {
            assert!(
                !own.contains(&format!("{g} ")) && !own.contains(&format!("{g}\n")),
                "`{name} --help`: global {g} among the command's own options:\n{own}"
            );
        }
        // The command's own options come before the global ones.
        if let (Some(o), Some(g)) = (page.find("\nOptions:\n"), page.find("\nGlobal options:\n")) {
            assert!(o < g, "`{name} --help`: own options after the global ones");
        }
        let lines: Vec<&str> = own.lines().collect();
        for (i, line) in lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.contains("--json"))
        {
            // Short help: the description follows on the line; long help: on the next one.
            let mut described = line.split("--json").nth(1).unwrap_or("").trim();
            if described.is_empty() {
                described = lines.get(i + 1).map_or("", |l| l.trim());
            }
            assert!(
                !described.is_empty(),
                "`{name} --help`: --json has no description: {line:?}"
            );
        }
        let examples = section(page, "Examples")
            .unwrap_or_else(|| panic!("`{name} --help` has no Examples:\n{page}"));
        assert!(
            examples
                .lines()
                .any(|l| l.trim_start().starts_with("snapvault ")),
            "`{name} --help`: examples without a command line:\n{examples}"
        );
        assert!(
            !page.contains("--udid"),
            "`{name} --help` still names the phone --udid"
        );
    }
}

#[test]
fn one_name_for_the_phone_and_a_dry_run_wherever_something_is_removed() {
    for cmd in [
        &["snapshot"][..],
        &["verify-device"],
        &["photos"],
        &["restore"],
        &["snapshots"],
    ] {
        let page = help(cmd);
        assert!(
            section(&page, "Options").is_some_and(|s| s.contains("--device")),
            "{cmd:?}: the phone is --device:\n{page}"
        );
    }
    for cmd in [
        &["forget"][..],
        &["prune"],
        &["restore"],
        &["unlock"],
        &["key", "remove"],
        &["repair"],
    ] {
        let page = help(cmd);
        assert!(
            page.contains("-n, --dry-run"),
            "{cmd:?} removes something but has no -n, --dry-run:\n{page}"
        );
    }
    // forget acts at once, repair only with --apply: both pages say so.
    let forget = help(&["forget"]);
    assert!(
        forget.contains("at once"),
        "forget --help must say it acts at once:\n{forget}"
    );
    let repair = help(&["repair"]);
    assert!(
        repair.contains("changes nothing"),
        "repair --help must say it changes nothing without --apply:\n{repair}"
    );

    // The old name still works in scripts: `--udid` is accepted (a hidden alias), so this is
    // the command's own complaint, not a usage error.
    let tmp = tempdir();
    let sv = Sv::at(tmp.path().join("repo"), None);
    let out = sv.run(&["snapshot", "--udid", "0000", tmp.path().to_str().unwrap()]);
    assert_ne!(out.code, Some(2), "--udid must still parse:\n{out}");
    assert_stderr_mentions(&out, "--device");
}

#[test]
fn dry_runs_of_unlock_and_key_remove_change_nothing() {
    let tmp = tempdir();
    let sv = Sv::init(tmp.path().join("repo"), true);
    let lock = sv.repo.join("locks").join("0".repeat(64));
    write_file(&lock, b"not a lock anyone can read");
    let out = sv.ok(&["unlock", "--remove-all", "-n"]);
    assert!(lock.exists(), "unlock -n removed a lock:\n{out}");
    assert!(out.stdout.contains("would remove"), "{out}");
    std::fs::remove_file(&lock).unwrap();

    let keys_before = std::fs::read_dir(sv.repo.join("keys")).unwrap().count();
    let add = sv.run_env(
        &["key", "add"],
        &[("SNAPVAULT_NEW_PASSWORD", "another horse")],
    );
    assert_eq!(add.code, Some(0), "{add}");
    let list = sv.ok(&["key", "list", "--json"]).json();
    let spare = list
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["current"] == false)
        .expect("the added key")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = sv.ok(&["key", "remove", &spare, "--dry-run"]);
    assert!(out.stdout.contains("would remove"), "{out}");
    let keys_after = std::fs::read_dir(sv.repo.join("keys")).unwrap().count();
    assert_eq!(
        keys_after,
        keys_before + 1,
        "key remove --dry-run removed the key"
    );
}

/// The exit-code table of docs/user-guide.md lists exactly the codes the binary uses: every
/// `const …: i32` exit code in its sources, clap's 2, and 128 + SIGINT / SIGTERM for an
/// interrupted snapshot.
#[test]
fn the_exit_code_table_matches_the_codes_in_use() {
    use std::collections::BTreeSet;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root.join("src"), &mut files);
    let mut used: BTreeSet<i32> = [2, 128 + 2, 128 + 15].into();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let exit_module = f.ends_with("exit.rs");
        for line in text.lines().map(str::trim) {
            // `pub const NOT_ALL_SAFE: i32 = 5;` and exit.rs's table of constants.
            let Some(rest) = line.strip_prefix("pub const ") else {
                continue;
            };
            let Some((name, value)) = rest.split_once(": i32 = ") else {
                continue;
            };
            let is_exit = exit_module || name.contains("SAFE") || name.contains("EXIT");
            if let (true, Ok(v)) = (is_exit, value.trim_end_matches(';').parse::<i32>()) {
                used.insert(v);
            }
        }
    }
    let guide = std::fs::read_to_string(root.join("../../docs/user-guide.md")).unwrap();
    let table = guide
        .split("## Exit codes")
        .nth(1)
        .expect("an Exit codes section");
    let listed: BTreeSet<i32> = table
        .lines()
        .take_while(|l| !l.starts_with("## "))
        .filter_map(|l| l.strip_prefix("| ")?.split(' ').next()?.parse().ok())
        .collect();
    assert_eq!(
        listed, used,
        "docs/user-guide.md's exit-code table (left) and the codes in use (right) differ"
    );
}
