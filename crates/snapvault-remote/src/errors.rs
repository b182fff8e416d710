//! Messages for S3 storage errors: which bucket, which credential, which network failure —
//! with one hint — instead of OpenDAL's request dumps. (SFTP's are in `sftp/login.rs`.)

use opendal::ErrorKind;
use snapvault_repo::RepoError;
use snapvault_repo::backend::FileKind;

use crate::retry::Failure;
use crate::transport::net_error;

/// Turn an OpenDAL (S3) error into one that says what failed, where, and what to do.
pub(crate) fn explain(
    location: &str,
    target: &str,
    retries: usize,
    doing: &str,
    what: &str,
    e: opendal::Error,
) -> RepoError {
    if let Some(n) = net_error(&e) {
        let d = &n.detail;
        return RepoError::Remote(match n.failure {
            Failure::Stalled => format!(
                "{location}: {doing} {what} failed: the connection stalled twice in a row (the \
                 second time a new one): {d}: the server or the network stopped answering"
            ),
            Failure::Refused => format!(
                "{location}: {doing} {what} failed: {d} (is the server running, and is the \
                 address right?)"
            ),
            Failure::Transient => {
                format!("{location}: {doing} {what} failed: {d} (gave up after {retries} retries)")
            }
            Failure::Permanent => format!("{location}: {doing} {what} failed: {d}"),
        });
    }
    let detail = describe(&e);
    let has = |s: &str| detail.contains(s);
    if has("NoSuchBucket") {
        return RepoError::Remote(format!(
            "{location}: the {target} does not exist; create the bucket first (snapvault does not create buckets)"
        ));
    }
    let denied = e.kind() == ErrorKind::PermissionDenied
        || has("InvalidAccessKeyId")
        || has("SignatureDoesNotMatch")
        || has("InvalidClientTokenId");
    if denied {
        return RepoError::Remote(format!(
            "{location}: access denied while {doing} {what}: check AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), and the bucket's policy"
        ));
    }
    if e.kind() == ErrorKind::NotFound {
        return RepoError::corrupt(
            format!("{what} in {location}"),
            "file is missing from the repository",
        );
    }
    let why = match e.kind() {
        ErrorKind::RateLimited => {
            format!("the server kept asking to slow down (gave up after {retries} retries)")
        }
        _ if e.is_temporary() => {
            format!("the server kept failing (gave up after {retries} retries)")
        }
        _ => "the server refused".to_string(),
    };
    RepoError::Remote(format!(
        "{location}: {doing} {what} failed: {why}: {detail}"
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
