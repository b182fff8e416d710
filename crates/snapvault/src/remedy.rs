//! The commands that mend what the core finds. The core names a step ([`Remedy`]); the
//! command names live here, so the library knows none of them (error.rs rule 3 of
//! snapvault-repo).

use snapvault_repo::Remedy;
use snapvault_repo::open::OpenWarning;

/// What to append to a finding's message for its remedy.
pub fn suffix(r: Remedy) -> &'static str {
    match r {
        Remedy::RebuildIndex => {
            " (run `snapvault repair index --apply`; without --apply it shows the plan)"
        }
        Remedy::PruneOrAdopt => {
            "; prune removes it once it is older than --unindexed-grace, `snapvault repair \
             index` adopts it"
        }
        Remedy::DropDamagedCopy => ", `repair --apply` drops the damaged one",
        Remedy::RepairOrReread => {
            " (`snapvault repair` shows what to do; `check --read-data` reads it again)"
        }
        Remedy::RewriteConfig => ": `snapvault repair --apply` rewrites the config from it",
        Remedy::RemoveKey => ": remove it with `snapvault key remove`",
        Remedy::ResealConfigCopy => {
            "; the key still opens the repository; `snapvault repair --apply` seals the config \
             in use into it"
        }
        Remedy::WriteKeyWithCopy => {
            ": `snapvault key passwd` writes a key file that holds one (the same password may \
             be given again)"
        }
    }
}

/// `message` with its remedy, if any.
pub fn with(message: &str, r: Option<Remedy>) -> String {
    match r {
        Some(r) => format!("{message}{}", suffix(r)),
        None => message.to_string(),
    }
}

/// A warning of prune's, with what to do about it.
pub fn prune_warning(w: &snapvault_repo::prune::PruneWarning) -> String {
    match w {
        snapvault_repo::prune::PruneWarning::DamagedPackKept { .. } => {
            format!("{} (run `snapvault check --read-data`)", w.describe())
        }
    }
}

/// A warning from opening the repository, with what to do about it.
pub fn open_warning(w: &OpenWarning) -> String {
    match w {
        OpenWarning::ConfigFromCopy(_) => format!(
            "{}. `snapvault repair --apply` rewrites the config from it",
            w.describe()
        ),
        OpenWarning::RememberedKeyRefused { repository } => format!(
            "{} ({}). `snapvault key forget` removes it; once the password opens the \
             repository, `snapvault key remember` keeps its key again",
            w.describe(),
            crate::remembered::file_for(repository)
                .map(|f| f.display().to_string())
                .unwrap_or_default()
        ),
        OpenWarning::KeyNotTried { key, .. } => format!(
            "{}. If you did not add it, `snapvault check` tells whether it is damaged and \
             `snapvault key remove {key}` removes it; to try it, name it: --key {key}",
            w.describe()
        ),
    }
}

/// Why an item was not restored, with what the options can do about it.
pub fn restore_problem(p: &snapvault_repo::restorer::Problem) -> String {
    use snapvault_repo::restorer::Problem;
    match p {
        Problem::FolderInTheWay { .. } => format!("{p}, even with --overwrite"),
        Problem::InTheWayOfFolder { .. } => format!("{p} (--overwrite replaces it with a folder)"),
        _ if p.overwrite_replaces() => format!("{p} (use --overwrite to replace it)"),
        Problem::SizeMismatch { .. } => format!("{p} (`snapvault check` reports it)"),
        _ => p.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use snapvault_repo::keyfile::KdfParams;
    use snapvault_repo::open::ConfigDamage;

    use super::*;

    #[test]
    fn a_damaged_pack_prune_keeps_is_for_check_to_read() {
        let pack = snapvault_repo::PackId(snapvault_repo::Id([0xab; 32]));
        let blob = snapvault_repo::BlobId(snapvault_repo::Id([0xcd; 32]));
        let w = snapvault_repo::prune::PruneWarning::DamagedPackKept { pack, blob };
        assert!(!w.describe().contains('`'));
        assert_eq!(
            prune_warning(&w),
            format!(
                "pack {} holds a damaged blob ({}); left as it is (run `snapvault check \
                 --read-data`)",
                "ab".repeat(32),
                blob.short()
            )
        );
    }

    /// The restore messages the core wrote whole before it had kinds, word for word.
    #[test]
    fn restore_problems_get_their_advice_here() {
        use snapvault_repo::restorer::Problem;
        let cases = [
            (
                Problem::FolderInTheWay { file: true },
                "a folder is in the way; snapvault does not replace folders with files, even \
                 with --overwrite",
            ),
            (
                Problem::FolderInTheWay { file: false },
                "a folder is in the way; snapvault does not replace folders, even with --overwrite",
            ),
            (
                Problem::SymlinkInTheWay,
                "a symlink is in the way; it was not followed and is left untouched (use \
                 --overwrite to replace it)",
            ),
            (
                Problem::DifferentFile,
                "a different file exists at this path; left untouched (use --overwrite to \
                 replace it)",
            ),
            (
                Problem::SomethingInTheWay,
                "something else exists at this path; left untouched (use --overwrite to \
                 replace it)",
            ),
            (
                Problem::SizeMismatch { said: 5, stored: 7 },
                "the snapshot says this file has 5 bytes, but its stored content holds 7: the \
                 snapshot is damaged or was crafted; not restored (`snapvault check` reports it)",
            ),
            (
                Problem::InTheWayOfFolder {
                    symlink_to: Some("/etc".into()),
                    below: 2,
                },
                "a symlink (to /etc) is in the way of this folder; it was not followed and \
                 nothing under it was restored; 2 item(s) under it not restored (--overwrite \
                 replaces it with a folder)",
            ),
        ];
        for (p, want) in cases {
            assert_eq!(restore_problem(&p), want);
        }
    }

    /// The core states the facts, with no command in them; the advice added here makes the
    /// same warnings as when the core wrote them whole.
    #[test]
    fn open_warnings_get_their_advice_here() {
        let key = OpenWarning::KeyNotTried {
            key: "ab12cd34".into(),
            asks: KdfParams {
                m_kib: 1 << 20,
                t: 16,
                p: 16,
            },
            usual: KdfParams {
                m_kib: 64 << 10,
                t: 3,
                p: 1,
            },
        };
        let config = OpenWarning::ConfigFromCopy(ConfigDamage {
            file: "/r/config".into(),
            reason: "it is missing".into(),
            copy_in: "77aa0011ffee".into(),
        });
        for w in [&key, &config] {
            assert!(!w.describe().contains('`'), "{}", w.describe());
        }
        assert_eq!(
            open_warning(&key),
            "key file ab12cd34 asks for 1024 MiB and 16 pass(es) of Argon2id, far more than this \
             repository's keys use (64 MiB and 3 pass(es)); it was not tried. If you did not add \
             it, `snapvault check` tells whether it is damaged and `snapvault key remove \
             ab12cd34` removes it; to try it, name it: --key ab12cd34"
        );
        assert_eq!(
            open_warning(&config),
            "the repository's config file /r/config is damaged (it is missing); using the copy \
             kept in key file 77aa0011. `snapvault repair --apply` rewrites the config from it"
        );
    }

    /// The libraries' messages name no `snapvault` command and no option: the advice is
    /// added here and in exit.rs, by kind. A scan of their source, comments and test code
    /// left out (the fake phone is a tool of its own and not scanned).
    #[test]
    fn library_messages_name_no_command_or_option() {
        let crates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut found = Vec::new();
        for c in [
            "snapvault-repo",
            "snapvault-remote",
            "snapvault-source",
            "snapvault-catalog",
            "snapvault-media",
            "snapvault-photolib",
            "snapvault-phonewire",
        ] {
            scan(&crates.join(c).join("src"), &mut found);
        }
        assert!(
            found.is_empty(),
            "library messages that name a command or an option (give the case a kind and \
             add the advice in the binary):\n{}",
            found.join("\n")
        );
    }

    /// Allowed: the command holding a lock is a fact about the holder, not advice.
    const ALLOWED: &[&str] = &["`snapvault {}` (pid"];

    fn scan(dir: &std::path::Path, found: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                if name != "tests" && name != "testing" {
                    scan(&p, found);
                }
            } else if name.ends_with(".rs") && name != "tests.rs" && name != "test_servers.rs" {
                scan_file(&p, found);
            }
        }
    }

    fn scan_file(path: &std::path::Path, found: &mut Vec<String>) {
        let text = std::fs::read_to_string(path).unwrap();
        let mut after_cfg_test = false;
        for (i, line) in text.lines().enumerate() {
            // The file's own test module (at its end).
            if after_cfg_test && line.starts_with("mod ") && line.ends_with('{') {
                break;
            }
            after_cfg_test = line.trim() == "#[cfg(test)]";
            let code = without_comment(line);
            if names_command_or_option(code) && !ALLOWED.iter().any(|a| code.contains(a)) {
                found.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
            }
        }
    }

    /// `line` up to a `//` comment (one outside a string literal).
    fn without_comment(line: &str) -> &str {
        let mut from = 0;
        while let Some(k) = line[from..].find("//").map(|k| k + from) {
            if line[..k].matches('"').count().is_multiple_of(2) {
                return &line[..k];
            }
            from = k + 2;
        }
        line
    }

    /// "`snapvault …`", or an option such as `--overwrite`.
    fn names_command_or_option(code: &str) -> bool {
        code.contains("`snapvault ")
            || code.match_indices("--").any(|(k, _)| {
                let before = code[..k].chars().next_back();
                let after = code[k + 2..].chars().next();
                matches!(before, None | Some(' ' | '(' | '`'))
                    && after.is_some_and(|c| c.is_ascii_lowercase())
            })
    }

    #[test]
    fn the_scan_sees_commands_and_options_but_not_comments() {
        assert!(names_command_or_option(
            r#""(use --overwrite to replace it)""#
        ));
        assert!(names_command_or_option(r#"   --overwrite replaces it)""#));
        assert!(names_command_or_option(r#""(run `snapvault repair`)""#));
        assert!(!names_command_or_option(without_comment(
            r#"let x = 1; // see `snapvault check --read-data`"#
        )));
        assert!(!names_command_or_option(r#""a - b", i -= 1"#));
        assert_eq!(without_comment(r#""http://x" // y"#), r#""http://x" "#);
    }
}
