//! Messages for storage errors: which bucket, which credential, what SSH problem — with one
//! hint — instead of OpenDAL's request dumps.

use opendal::ErrorKind;
use snapvault_repo::RepoError;
use snapvault_repo::backend::FileKind;

/// Turn an OpenDAL error into one that says what failed, where, and what to do.
pub(crate) fn explain(
    location: &str,
    target: &str,
    sftp: bool,
    doing: &str,
    what: &str,
    e: opendal::Error,
) -> RepoError {
    let detail = describe(&e);
    let has = |s: &str| detail.contains(s);
    if has("NoSuchBucket") {
        return RepoError::Remote(format!(
            "{}: the {} does not exist; create the bucket first (snapvault does not create buckets)",
            location, target
        ));
    }
    let denied = e.kind() == ErrorKind::PermissionDenied
        || has("InvalidAccessKeyId")
        || has("SignatureDoesNotMatch")
        || has("InvalidClientTokenId")
        || has("Permission denied");
    if denied {
        let hint = match sftp {
            false => {
                "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), and the bucket's policy"
            }
            true => {
                "check the SSH key (~/.ssh, ssh-agent or SNAPVAULT_SFTP_KEY), that the server accepts it, and the folder's permissions"
            }
        };
        return RepoError::Remote(format!(
            "{}: access denied while {doing} {what}: {hint}",
            location
        ));
    }
    if sftp && has("failed to connect") {
        return RepoError::Remote(format!(
            "{}: cannot log in over SSH: the host is unreachable, its host key is not in \
             ~/.ssh/known_hosts (check the fingerprint, then `ssh-keyscan -p PORT HOST >> ~/.ssh/known_hosts`, \
             or SNAPVAULT_SFTP_HOST_KEYS=add to trust it on first use), or the SSH key is refused \
             (`ssh -p PORT user@host` shows which)",
            location
        ));
    }
    if e.kind() == ErrorKind::NotFound {
        return RepoError::corrupt(
            format!("{what} in {}", location),
            "file is missing from the repository",
        );
    }
    let why = match e.kind() {
        ErrorKind::RateLimited => "the server keeps asking to slow down",
        _ if e.is_temporary() || e.is_persistent() => {
            "the server did not answer in time (after retries)"
        }
        _ => "the server refused",
    };
    RepoError::Remote(format!(
        "{}: {doing} {what} failed: {why}: {detail}",
        location
    ))
}

pub(crate) fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// "pack 3fa2…", or "the config".
pub(crate) fn what(kind: FileKind, name: &str) -> String {
    match kind {
        FileKind::Config => "the config".to_string(),
        _ => format!("{} {name}", kind.name()),
    }
}

/// An OpenDAL error without its request context (headers, ids): kind, message and causes.
pub(crate) fn describe(e: &opendal::Error) -> String {
    let mut out = format!("{}: {}", e.kind(), first_line(e.message()));
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(first_line(&s.to_string()));
        src = s.source();
    }
    if out.len() > 400 {
        let mut cut = 400;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

pub(crate) fn config_err(location: &str, e: opendal::Error) -> RepoError {
    RepoError::Invalid(format!(
        "cannot use the repository location {location}: {}",
        first_line(&e.to_string())
    ))
}
