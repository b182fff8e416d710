//! Exit codes (documented in docs/user-guide.md) and how errors are shown.

use std::borrow::Cow;

use snapvault_repo::{KeyError, PruneError, RepoError};

use crate::drive::DriveMissing;

pub const OK: i32 = 0;
pub const ERROR: i32 = 1;
/// Usage errors are clap's exit code 2.
pub const INCOMPLETE: i32 = 3;
pub const DAMAGE: i32 = 4;
pub const NOT_FOUND: i32 = 10;
pub const LOCKED: i32 = 11;
pub const WRONG_PASSWORD: i32 = 12;
/// The command ran, but its output could not be written to stdout (a full disk, a closed
/// pipe).
pub const OUTPUT: i32 = 13;

fn repo_error(e: &anyhow::Error) -> Option<&RepoError> {
    e.chain().find_map(|c| c.downcast_ref::<RepoError>())
}

pub fn code_for(e: &anyhow::Error) -> i32 {
    if e.downcast_ref::<crate::output::StdoutFailed>().is_some() {
        return OUTPUT;
    }
    if let Some(d) = e.chain().find_map(|c| c.downcast_ref::<DriveMissing>()) {
        return if d.init { ERROR } else { NOT_FOUND };
    }
    if e.chain().any(|c| c.is::<crate::password::TypedWrong>()) {
        return WRONG_PASSWORD;
    }
    match repo_error(e) {
        Some(RepoError::NotFound(_)) => NOT_FOUND,
        Some(RepoError::Locked { .. } | RepoError::LockUnreadable { .. }) => LOCKED,
        Some(RepoError::WrongPassword) => WRONG_PASSWORD,
        _ => ERROR,
    }
}

/// The whole chain on one line, without repeating a cause already contained in its context.
pub fn message(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in e.chain() {
        let s = c.to_string();
        if parts.last().is_some_and(|p| p.contains(&s)) {
            continue;
        }
        parts.push(s);
    }
    parts.join(": ")
}

/// Context marking an error as being about a restore's target folder, not the repository
/// (see [`hint`]).
#[derive(Debug)]
pub struct AtRestoreTarget(pub String);

impl std::fmt::Display for AtRestoreTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What to do about `e`: the advice that names `snapvault` commands lives here, chosen by
/// the error's kind (the core's messages name none; see snapvault-repo's error.rs).
pub fn hint(e: &anyhow::Error) -> Option<Cow<'static, str>> {
    if let Some(n) = e
        .chain()
        .find_map(|c| c.downcast_ref::<crate::cmd::parity_check::NotRewritten>())
    {
        return Some(Cow::Owned(format!(
            "`snapvault parity set {}` (the level the repository has) computes every group's \
             parity anew from the files as they are",
            n.level
        )));
    }
    static_hint(e).map(Cow::Borrowed).or_else(|| {
        let re = repo_error(e)?;
        owned_hint(re).map(Cow::Owned)
    })
}

/// Hints that name something from the error (a snapshot id).
fn owned_hint(re: &RepoError) -> Option<String> {
    match re {
        // The step that works for the member's state, as `parity set` names it.
        RepoError::Parity(snapvault_repo::ParityError::GroupDamaged { state, .. }) => {
            let (command, does) = crate::cmd::parity::kept_advice(*state);
            Some(format!(
                "run `{command}` (it {does}), then the command again"
            ))
        }
        RepoError::Prune(PruneError::SnapshotUnreadable { snapshot, .. }) => Some(format!(
            "remove the snapshot (`snapvault forget {snapshot}`) if it is beyond repair, then \
             prune again"
        )),
        _ => None,
    }
}

fn static_hint(e: &anyhow::Error) -> Option<&'static str> {
    if e.downcast_ref::<crate::output::StdoutFailed>().is_some() {
        return Some(
            "the command itself ran to its end; send its output somewhere with room (a file on another disk, a pager) to see it",
        );
    }
    if e.downcast_ref::<AtRestoreTarget>().is_some()
        && let Some(h) = target_hint(e)
    {
        return Some(h);
    }
    if let Some(d) = e.chain().find_map(|c| c.downcast_ref::<DriveMissing>()) {
        return Some(if d.init {
            "plug in (or mount) the drive and run `snapvault init` again; --create-parents creates the folders here instead"
        } else {
            "plug in (or mount) the drive and run again"
        });
    }
    if let Some(se) = e
        .chain()
        .find_map(|c| c.downcast_ref::<snapvault_source::SourceError>())
    {
        use snapvault_source::SourceError;
        match se {
            SourceError::SeveralDevices { .. } => {
                return Some("say which one to use with --device UDID");
            }
            SourceError::UnknownDevice { .. } => {
                return Some("`snapvault devices` lists the connected iPhones");
            }
            _ => {}
        }
    }
    if e.chain().any(|c| c.is::<crate::password::TypedWrong>()) {
        return Some(
            "check Caps Lock and the keyboard layout; any password added with `snapvault key add` opens it too",
        );
    }
    let Some(re) = repo_error(e) else {
        return io_hint(e);
    };
    match re {
        RepoError::NotFound(_) => Some("run `snapvault init` to create one"),
        RepoError::Key(KeyError::ChosenNoMatch { .. }) => Some("`snapvault key list` shows them"),
        RepoError::Prune(PruneError::BlobsNotIndexed { .. }) => Some(
            "run `snapvault repair` to see whether the packs hold them; a snapshot whose data is \
             lost (one `repair` kept as the original of a `repaired` copy) is removed by \
             `snapvault repair --apply --forget-damaged`",
        ),
        RepoError::Prune(
            PruneError::TreeUnreadable { .. }
            | PruneError::PackMissing { .. }
            | PruneError::PackSize { .. },
        ) => Some("run `snapvault check`"),
        RepoError::LockUnreadable { .. } => Some(
            "if no snapvault process is running, remove it with `snapvault unlock --remove-all`",
        ),
        RepoError::Locked { .. } => Some(
            "wait for the other command to finish; if it crashed, `snapvault unlock` removes stale locks",
        ),
        // The second repository (`copy --to`, `repair --from`, `verify-device --also`).
        RepoError::WrongPassword if e.downcast_ref::<crate::cmd::second::AtSecond>().is_some() => {
            Some(
                "check SNAPVAULT_PASSWORD2 / --password-file2 / --password-command2 (that repository's own password)",
            )
        }
        RepoError::WrongPassword => {
            Some("check SNAPVAULT_PASSWORD / --password-file / --password-command")
        }
        // `check` would fail to open it the same way: say what can bring it back.
        RepoError::ConfigDamaged { .. } => Some(
            "the repository's config file is damaged and no intact copy of it is at hand: \
                 put back the file `config` from a copy of this repository (a backup of its \
                 folder or drive); nothing else in the repository needs to change",
        ),
        // An encrypted config and no key file: nothing here can open it.
        RepoError::NoKeyFiles => Some(
            "without a key file nothing can open this repository: put back the folder `keys` \
             from a copy of this repository (a backup of its folder or drive). If the repository \
             was made without encryption, its config was changed instead: put back the file \
             `config` from such a copy",
        ),
        RepoError::Auth(_) | RepoError::Corrupt { .. } | RepoError::MissingBlob(_) => {
            Some("run `snapvault check --read-data` to see what is affected")
        }
        RepoError::NoSuchSnapshot(_) | RepoError::AmbiguousSnapshot { .. } => {
            Some("`snapvault snapshots` lists the snapshots; give more of the id, or `latest`")
        }
        RepoError::SourceMissing(_) => Some(
            "check the path (a drive not mounted?); for an iPhone on USB use `snapvault snapshot iphone`",
        ),
        RepoError::AlreadyExists(_) => {
            Some("use it as it is, or give `init` an empty or new folder")
        }
        RepoError::Io { .. } => io_hint(e),
        _ => None,
    }
}

/// Hints for a restore target's disk: `prune` frees nothing there.
fn target_hint(e: &anyhow::Error) -> Option<&'static str> {
    let io = e.chain().find_map(|c| c.downcast_ref::<std::io::Error>())?;
    match io.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => Some(
            "the restore target's disk is full: free space there or restore to a disk with more \
             room (--target); the files restored so far are complete, and a re-run skips them",
        ),
        Some(libc::EROFS) => Some(
            "the restore target is mounted read-only: remount it writable or choose another --target",
        ),
        _ => None,
    }
}

/// Hints for operating-system errors anywhere in the chain: a full disk, missing rights.
fn io_hint(e: &anyhow::Error) -> Option<&'static str> {
    let io = e.chain().find_map(|c| c.downcast_ref::<std::io::Error>())?;
    match io.raw_os_error() {
        Some(libc::ENOSPC) => {
            Some("the disk is full: free space (or `snapvault prune`) and run again")
        }
        Some(libc::EROFS) => Some("the disk is mounted read-only: remount it writable"),
        Some(libc::EACCES) | Some(libc::EPERM) => {
            Some("check the permissions of the path named above (or run as its owner)")
        }
        _ => None,
    }
}

/// Show an error: `error: what failed: why` and `hint: what to do` on stderr; with `--json`
/// one JSON line instead (`{"type":"error",...}`, docs/json.md); `-v` adds each cause on
/// its own line.
pub fn report(e: &anyhow::Error, json: bool, verbose: u8) {
    let hint = hint(e);
    let hint = hint.as_deref();
    if json {
        let v = serde_json::json!({
            "type": "error",
            "message": message(e),
            "hint": hint,
            "exit_code": code_for(e),
            "causes": e.chain().map(|c| c.to_string()).collect::<Vec<_>>(),
        });
        eprintln!("{v}");
        return;
    }
    eprintln!("error: {}", message(e));
    if verbose > 0 {
        for (i, c) in e.chain().enumerate() {
            eprintln!("  {i}: {c}");
        }
        eprintln!("  exit code {}", code_for(e));
    }
    if let Some(hint) = hint {
        eprintln!("hint: {hint}");
    }
}

/// Did the user ask for JSON output (the command's `--json`)?
pub fn wants_json(c: &crate::cli::Command) -> bool {
    use crate::cli::{Command as C, ConfigCommand, KeyCommand};
    match c {
        C::Init(a) => a.json,
        C::Snapshot(a) => a.json,
        C::Snapshots(a) => a.json,
        C::Ls(a) => a.json,
        C::Restore(a) => a.json,
        C::Check(a) => a.json,
        C::Forget(a) => a.json,
        C::Prune(a) => a.json,
        C::Copy(a) => a.json,
        C::Key(KeyCommand::Add(a) | KeyCommand::Passwd(a)) => a.json,
        C::Key(KeyCommand::List { json } | KeyCommand::Remove { json, .. }) => *json,
        C::Unlock(a) => a.json,
        C::Repair(a) => a.json,
        C::Photos(a) => a.json,
        C::Find(a) => a.json,
        C::Diff(a) => a.json,
        C::Devices(a) => a.json,
        C::VerifyDevice(a) => a.json,
        C::Stats(a) => a.json,
        C::Config(ConfigCommand::Show { json }) => *json,
        #[allow(unreachable_patterns)]
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use snapvault_repo::{KeyError, LocationError, PruneError, RemoteError, RepoError};

    use super::*;

    /// The code and hint each kind gets, by kind alone: a change to a core message cannot
    /// change them, and a change to the mapping fails here.
    #[test]
    fn each_kind_maps_to_its_exit_code_and_hint() {
        let remote = RemoteError::Refused {
            location: "s3:b".into(),
            doing: "reading".into(),
            what: "the config".into(),
            detail: "connection refused".into(),
            server: "server",
        };
        let cases: Vec<(anyhow::Error, i32, Option<&str>)> = vec![
            (
                RepoError::NotFound("/r".into()).into(),
                NOT_FOUND,
                Some("run `snapvault init` to create one"),
            ),
            (
                RepoError::Locked { holder: None }.into(),
                LOCKED,
                Some("`snapvault unlock` removes stale locks"),
            ),
            (
                RepoError::Locked {
                    holder: Some(Box::new(holder())),
                }
                .into(),
                LOCKED,
                Some("wait for the other command to finish"),
            ),
            (
                RepoError::LockUnreadable {
                    file: "ab".into(),
                    marker: false,
                }
                .into(),
                LOCKED,
                Some("`snapvault unlock --remove-all`"),
            ),
            (
                RepoError::WrongPassword.into(),
                WRONG_PASSWORD,
                Some("check SNAPVAULT_PASSWORD /"),
            ),
            (
                anyhow::Error::new(RepoError::WrongPassword).context(crate::cmd::second::AtSecond(
                    "repository to heal from /r2".into(),
                )),
                WRONG_PASSWORD,
                Some("check SNAPVAULT_PASSWORD2"),
            ),
            (
                RepoError::ConfigDamaged {
                    of: None,
                    reason: "it is missing".into(),
                }
                .into(),
                ERROR,
                Some("put back the file `config`"),
            ),
            (
                RepoError::ConfigDamaged {
                    of: Some("/r".into()),
                    reason: "parameters out of range".into(),
                }
                .into(),
                ERROR,
                Some("put back the file `config`"),
            ),
            (
                RepoError::NoKeyFiles.into(),
                ERROR,
                Some("put back the folder `keys`"),
            ),
            (
                RepoError::corrupt("pack 3f", "too short").into(),
                ERROR,
                Some("snapvault check --read-data"),
            ),
            (
                RepoError::from(PruneError::SnapshotUnreadable {
                    snapshot: "ab12cd34".into(),
                    reason: "too short".into(),
                })
                .into(),
                ERROR,
                Some("`snapvault forget ab12cd34`"),
            ),
            (
                RepoError::from(PruneError::BlobsNotIndexed {
                    count: 2,
                    first: "blob 3f".into(),
                })
                .into(),
                ERROR,
                Some("`snapvault repair --apply --forget-damaged`"),
            ),
            (
                RepoError::from(PruneError::PackMissing { pack: "3f".into() }).into(),
                ERROR,
                Some("run `snapvault check`"),
            ),
            (
                RepoError::from(KeyError::ChosenNoMatch {
                    prefix: "ab".into(),
                })
                .into(),
                ERROR,
                Some("`snapvault key list` shows them"),
            ),
            (RepoError::from(KeyError::LastKey).into(), ERROR, None),
            (RepoError::from(remote).into(), ERROR, None),
            (
                RepoError::from(LocationError::NoRegion {
                    location: "s3:b".into(),
                })
                .into(),
                ERROR,
                None,
            ),
        ];
        for (e, code, want) in cases {
            assert_eq!(code_for(&e), code, "{e:#}");
            let got = hint(&e);
            match want {
                Some(w) => assert!(
                    got.as_deref().is_some_and(|h| h.contains(w)),
                    "{e:#}: hint {got:?}, want {w:?}"
                ),
                None => assert_eq!(got, None, "{e:#}"),
            }
        }
    }

    /// A parity group left as it was for a damaged member: the hint names the step that
    /// works in the member's state, the one `parity set` names for a kept group. Before:
    /// one text for every state (`repair --apply`, which leaves a member damaged beyond
    /// parity and still present as it is).
    #[test]
    fn a_damaged_group_member_gets_the_step_for_its_state() {
        use snapvault_repo::ParityError;
        use snapvault_repo::parity::store::KeptState;
        for (state, want, not) in [
            (
                KeptState::Rebuildable,
                "run `snapvault repair --apply` (it rebuilds it from this parity)",
                "--forget-damaged",
            ),
            (
                KeptState::MissingBeyond,
                "run `snapvault repair --apply` (it gives it up)",
                "--forget-damaged",
            ),
            (
                KeptState::DamagedBeyond,
                "run `snapvault repair --apply --forget-damaged` (it rescues what it can",
                "rebuilds",
            ),
        ] {
            let e: anyhow::Error = RepoError::Parity(ParityError::GroupDamaged {
                what: "pack 3f".into(),
                member: "pack 7a".into(),
                parity: "c0".into(),
                state,
            })
            .into();
            let hint = hint(&e).unwrap_or_default();
            assert!(
                hint.contains(want) && !hint.contains(not),
                "{state:?}: {hint}"
            );
            assert!(message(&e).contains(state.describe()), "{}", message(&e));
        }
    }

    fn holder() -> snapvault_repo::LockHolder {
        snapvault_repo::LockHolder {
            hostname: "nas".into(),
            username: "ann".into(),
            pid: 7,
            time: 0,
            since: "1970-01-01 00:00:00".into(),
            command: "prune".into(),
        }
    }

    /// A lock conflict says once that the repository is in use, and by whom.
    #[test]
    fn a_lock_conflict_names_its_holder_once() {
        let e: anyhow::Error = RepoError::Locked {
            holder: Some(Box::new(holder())),
        }
        .into();
        assert_eq!(
            message(&e),
            "repository is in use by `snapvault prune` (pid 7 on nas by ann) since 1970-01-01 \
             00:00:00 UTC"
        );
        let e: anyhow::Error = RepoError::Locked { holder: None }.into();
        assert_eq!(
            message(&e),
            "repository is in use: another process keeps taking the exclusive lock"
        );
    }

    /// A hint is not repeated in the message: the core's messages name no command.
    #[test]
    fn the_message_does_not_carry_the_hint() {
        let e: anyhow::Error = RepoError::NotFound("/r".into()).into();
        assert_eq!(message(&e), "there is no repository at /r");
        let e: anyhow::Error = RepoError::from(PruneError::PackSize {
            pack: "3f".into(),
            found: 1,
            indexed: 2,
        })
        .into();
        assert!(!message(&e).contains("snapvault"), "{}", message(&e));
    }

    /// Which iPhone to use: the source crate says what is wrong, the hint names the option
    /// and the command.
    #[test]
    fn choosing_an_iphone_is_advised_here() {
        use snapvault_source::SourceError;
        let several: anyhow::Error = SourceError::SeveralDevices {
            udids: vec!["a".into(), "b".into()],
        }
        .into();
        let unknown: anyhow::Error = SourceError::UnknownDevice { udid: "u1".into() }.into();
        for e in [&several, &unknown] {
            let m = message(e);
            assert!(!m.contains('`') && !m.contains("--"), "{m}");
        }
        assert_eq!(
            hint(&several).as_deref(),
            Some("say which one to use with --device UDID")
        );
        assert_eq!(
            hint(&unknown).as_deref(),
            Some("`snapvault devices` lists the connected iPhones")
        );
    }
}
