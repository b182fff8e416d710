//! Messages for S3 storage errors: which bucket, which credential, which network failure —
//! with one hint — instead of OpenDAL's request dumps. (SFTP's are in `sftp/login.rs`.)

use opendal::ErrorKind;
use snapvault_repo::backend::FileKind;
use snapvault_repo::{LocationError, RemoteError, RepoError};

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
    let (location, doing, what) = (location.to_string(), doing.to_string(), what.to_string());
    if let Some(n) = net_error(&e) {
        return network(
            n.failure,
            location,
            doing,
            what,
            n.detail.clone(),
            "server",
            retries,
        )
        .into();
    }
    let detail = describe(&e);
    let has = |s: &str| detail.contains(s);
    if has("NoSuchBucket") {
        return RemoteError::NoBucket {
            location,
            target: target.to_string(),
        }
        .into();
    }
    let denied = e.kind() == ErrorKind::PermissionDenied
        || has("InvalidAccessKeyId")
        || has("SignatureDoesNotMatch")
        || has("InvalidClientTokenId");
    if denied {
        return RemoteError::S3Denied {
            location,
            doing,
            what,
        }
        .into();
    }
    if e.kind() == ErrorKind::NotFound {
        return RepoError::corrupt(
            format!("{what} in {location}"),
            "file is missing from the repository",
        );
    }
    match e.kind() {
        ErrorKind::RateLimited => RemoteError::Throttled {
            location,
            doing,
            what,
            detail,
            retries,
        },
        _ if e.is_temporary() => RemoteError::ServerFailing {
            location,
            doing,
            what,
            detail,
            retries,
        },
        _ => RemoteError::ServerRefused {
            location,
            doing,
            what,
            detail,
        },
    }
    .into()
}

/// A network failure (S3's or SFTP's) as its kind; `server` names what should answer.
pub(crate) fn network(
    failure: Failure,
    location: String,
    doing: String,
    what: String,
    detail: String,
    server: &'static str,
    retries: usize,
) -> RemoteError {
    match failure {
        Failure::Stalled => RemoteError::Stalled {
            location,
            doing,
            what,
            detail,
        },
        Failure::Refused => RemoteError::Refused {
            location,
            doing,
            what,
            detail,
            server,
        },
        Failure::Transient => RemoteError::GaveUp {
            location,
            doing,
            what,
            detail,
            retries,
        },
        Failure::Permanent => RemoteError::Failed {
            location,
            doing,
            what,
            detail,
        },
    }
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
    LocationError::Unusable {
        location: location.to_string(),
        detail: first_line(&e.to_string()).to_string(),
    }
    .into()
}
