//! Repository locations: a plain path is a local folder; `s3:` and `sftp:` name remote ones.
//!
//! - `s3:https://host[:port]/bucket[/prefix]` — any S3-compatible service at that endpoint
//! - `s3:bucket[/prefix]` — AWS S3, the region from `AWS_REGION` / `AWS_DEFAULT_REGION`
//! - `sftp:user@host[:port]:/path` (or a path relative to the login folder)
//!
//! Credentials never appear in a location: they come from the environment or `~/.ssh`.

use snapvault_repo::{LocationError, RepoError};

/// A parsed remote location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteUrl {
    S3 {
        /// `None` for AWS itself (the endpoint follows from the region).
        endpoint: Option<String>,
        bucket: String,
        prefix: String,
    },
    Sftp {
        user: Option<String>,
        host: String,
        port: Option<u16>,
        path: String,
    },
}

/// Is this location a remote one (as opposed to a local folder)?
pub fn is_remote(location: &str) -> bool {
    location.starts_with("s3:") || location.starts_with("sftp:")
}

fn bad(location: &str, why: &str, form: &'static str) -> RepoError {
    LocationError::Malformed {
        location: location.to_string(),
        why: why.to_string(),
        form,
    }
    .into()
}

const S3_FORM: &str = "s3:https://host[:port]/bucket[/prefix] or s3:bucket[/prefix]";
const SFTP_FORM: &str = "sftp:user@host[:port]:/path";

impl RemoteUrl {
    pub fn parse(location: &str) -> Result<RemoteUrl, RepoError> {
        if let Some(rest) = location.strip_prefix("s3:") {
            Self::parse_s3(location, rest)
        } else if let Some(rest) = location.strip_prefix("sftp:") {
            Self::parse_sftp(location, rest)
        } else {
            Err(bad(location, "unknown scheme", "s3:… or sftp:…"))
        }
    }

    fn parse_s3(location: &str, rest: &str) -> Result<RemoteUrl, RepoError> {
        let (endpoint, path) = match rest.split_once("://") {
            Some((scheme, after)) => {
                if scheme != "https" && scheme != "http" {
                    return Err(bad(
                        location,
                        "the endpoint must be http:// or https://",
                        S3_FORM,
                    ));
                }
                let (host, path) = after.split_once('/').unwrap_or((after, ""));
                if host.is_empty() || host.contains('@') {
                    return Err(bad(
                        location,
                        "the endpoint needs a host (and credentials do not belong in it)",
                        S3_FORM,
                    ));
                }
                (Some(format!("{scheme}://{host}")), path)
            }
            None => (None, rest),
        };
        let path = path.trim_matches('/');
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        if bucket.is_empty() {
            return Err(bad(location, "no bucket given", S3_FORM));
        }
        if !bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        {
            return Err(bad(
                location,
                &format!("{bucket:?} is not a valid bucket name"),
                S3_FORM,
            ));
        }
        if prefix.split('/').any(|p| p == "." || p == "..") {
            return Err(bad(location, "the prefix may not contain . or ..", S3_FORM));
        }
        Ok(RemoteUrl::S3 {
            endpoint,
            bucket: bucket.to_string(),
            prefix: prefix.trim_end_matches('/').to_string(),
        })
    }

    fn parse_sftp(location: &str, rest: &str) -> Result<RemoteUrl, RepoError> {
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (user, hostpart) = match rest.split_once('@') {
            Some((u, h)) if !u.is_empty() && !u.contains(':') => (Some(u.to_string()), h),
            Some(_) => {
                return Err(bad(
                    location,
                    "the user name is empty or has a ':'",
                    SFTP_FORM,
                ));
            }
            None => (None, rest),
        };
        let (host, after) = hostpart
            .split_once(':')
            .ok_or_else(|| bad(location, "no ':' before the path", SFTP_FORM))?;
        if host.is_empty() {
            return Err(bad(location, "no host given", SFTP_FORM));
        }
        // `host:2222:/path` — a port, then the path.
        let (port, path) = match after.split_once(':') {
            Some((p, path)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                let port: u16 = p
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| bad(location, &format!("{p} is not a port"), SFTP_FORM))?;
                (Some(port), path)
            }
            _ => (None, after),
        };
        if path.is_empty() {
            return Err(bad(location, "no path given", SFTP_FORM));
        }
        Ok(RemoteUrl::Sftp {
            user,
            host: host.to_string(),
            port,
            path: path.trim_end_matches('/').to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(e: Option<&str>, b: &str, p: &str) -> RemoteUrl {
        RemoteUrl::S3 {
            endpoint: e.map(String::from),
            bucket: b.into(),
            prefix: p.into(),
        }
    }

    #[test]
    fn s3_forms() {
        let p = |s: &str| RemoteUrl::parse(s).unwrap();
        assert_eq!(
            p("s3:https://s3.example.net:9000/photos/family/vault"),
            s3(
                Some("https://s3.example.net:9000"),
                "photos",
                "family/vault"
            )
        );
        assert_eq!(
            p("s3:http://127.0.0.1:9010/b"),
            s3(Some("http://127.0.0.1:9010"), "b", "")
        );
        assert_eq!(p("s3:my-bucket/vault/"), s3(None, "my-bucket", "vault"));
        assert_eq!(p("s3:my-bucket"), s3(None, "my-bucket", ""));
    }

    #[test]
    fn sftp_forms() {
        let p = |s: &str| RemoteUrl::parse(s).unwrap();
        assert_eq!(
            p("sftp:ann@nas.local:2222:/srv/vault"),
            RemoteUrl::Sftp {
                user: Some("ann".into()),
                host: "nas.local".into(),
                port: Some(2222),
                path: "/srv/vault".into()
            }
        );
        assert_eq!(
            p("sftp:nas:backups/vault/"),
            RemoteUrl::Sftp {
                user: None,
                host: "nas".into(),
                port: None,
                path: "backups/vault".into()
            }
        );
    }

    #[test]
    fn bad_locations_name_the_problem() {
        for (loc, want) in [
            ("s3:", "no bucket"),
            ("s3:ftp://host/b", "http:// or https://"),
            ("s3:https://key:secret@host/b", "credentials"),
            ("s3:https://host/", "no bucket"),
            ("s3:Bad_Bucket/x", "not a valid bucket"),
            ("s3:b/../x", ". or .."),
            ("sftp:host", "no ':'"),
            ("sftp:@host:/p", "user name"),
            ("sftp:u@:/p", "no host"),
            ("sftp:u@h:99999:/p", "not a port"),
            ("sftp:u@h:", "no path"),
        ] {
            let e = RemoteUrl::parse(loc).unwrap_err().to_string();
            assert!(e.contains(want), "{loc}: {e}");
            assert!(e.contains(loc), "{loc}: {e}");
        }
        assert!(is_remote("s3:b") && is_remote("sftp:h:/p") && !is_remote("/mnt/ssd/vault"));
    }
}
