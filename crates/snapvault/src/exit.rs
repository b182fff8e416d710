//! Exit codes (documented in docs/user-guide.md) and how errors are shown.

use snapvault_repo::RepoError;

pub const OK: i32 = 0;
pub const ERROR: i32 = 1;
/// Usage errors are clap's exit code 2.
pub const INCOMPLETE: i32 = 3;
pub const DAMAGE: i32 = 4;
pub const NOT_FOUND: i32 = 10;
pub const LOCKED: i32 = 11;
pub const WRONG_PASSWORD: i32 = 12;

fn repo_error(e: &anyhow::Error) -> Option<&RepoError> {
    e.chain().find_map(|c| c.downcast_ref::<RepoError>())
}

pub fn code_for(e: &anyhow::Error) -> i32 {
    match repo_error(e) {
        Some(RepoError::NotFound(_)) => NOT_FOUND,
        Some(RepoError::Locked(_)) => LOCKED,
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

pub fn hint(e: &anyhow::Error) -> Option<&'static str> {
    match repo_error(e)? {
        RepoError::Locked(_) => Some(
            "wait for the other command to finish; if it crashed, `snapvault unlock` removes stale locks",
        ),
        RepoError::WrongPassword => {
            Some("check SNAPVAULT_PASSWORD / --password-file / --password-command")
        }
        RepoError::Auth(_) | RepoError::Corrupt { .. } => {
            Some("run `snapvault check --read-data` to see what is affected")
        }
        _ => None,
    }
}
