//! Logging in over SSH: the `ssh` command line (host keys, keep-alives, no multiplexing)
//! and what a failed login was really about, read from ssh's own messages.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openssh_sftp_client::{Sftp, SftpOptions};
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

use super::spawn::spawn;
use crate::HostKeys;
use crate::retry::Failure;

/// Where and how to log in.
#[derive(Clone, Debug)]
pub(crate) struct Login {
    pub host: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub key: Option<PathBuf>,
    pub host_keys: HostKeys,
    /// snapvault's own known-hosts file (host keys trusted with `add`).
    pub known_hosts: Option<PathBuf>,
    pub stall: Duration,
}

/// Why an SSH/SFTP step failed, and what to tell the user.
#[derive(Clone, Debug)]
pub(crate) struct Problem {
    pub failure: Failure,
    pub kind: ProblemKind,
    pub detail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProblemKind {
    NotFound,
    Denied,
    /// The server said no to this request (SSH_FX_FAILURE and the like).
    Refused,
    /// The connection or the login failed.
    Network,
}

impl Problem {
    pub fn net(failure: Failure, detail: impl Into<String>) -> Problem {
        Problem {
            failure,
            kind: ProblemKind::Network,
            detail: detail.into(),
        }
    }
}

/// One logged-in SFTP session: the ssh child (killed when this is dropped) and what it
/// said on stderr.
pub(crate) struct Session {
    pub sftp: Sftp,
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Session {
    /// Is the ssh process still there?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// ssh's last words, if the connection broke: "Timeout, server not responding", …
    pub fn last_words(&self) -> String {
        let s = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
        s.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_string()
    }
}

fn quoted(p: &str) -> String {
    format!("\"{}\"", p.replace('"', ""))
}

impl Login {
    fn at(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.clone(),
        }
    }

    /// How ssh records this host in a known-hosts file: `host` or `[host]:port`.
    fn known_hosts_name(&self) -> String {
        match self.port {
            Some(p) if p != 22 => format!("[{}]:{p}", self.host),
            _ => self.host.clone(),
        }
    }

    fn own_known_hosts(&self) -> Option<String> {
        self.known_hosts
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned())
    }

    fn command(&self) -> Command {
        let mut c = Command::new("ssh");
        let secs = self.stall.as_secs().max(1);
        let mut opts = vec![
            "BatchMode=yes".to_string(),
            // One process per connection, nothing detached, nothing left in a folder.
            "ControlMaster=no".into(),
            "ControlPath=none".into(),
            "ForwardAgent=no".into(),
            "ForwardX11=no".into(),
            "ClearAllForwardings=yes".into(),
            "PermitLocalCommand=no".into(),
            "RequestTTY=no".into(),
            // Never rewrite a known-hosts file behind the user's back.
            "UpdateHostKeys=no".into(),
            "HashKnownHosts=no".into(),
            format!("ConnectTimeout={secs}"),
            // ssh itself notices a silent server after about one stall period.
            format!("ServerAliveInterval={}", (secs / 3).max(1)),
            "ServerAliveCountMax=3".into(),
        ];
        let user_files = "\"~/.ssh/known_hosts\" \"~/.ssh/known_hosts2\"";
        let own = self.own_known_hosts();
        match self.host_keys {
            HostKeys::Strict => {
                opts.push("StrictHostKeyChecking=yes".into());
                opts.push(match &own {
                    Some(o) => format!("UserKnownHostsFile={user_files} {}", quoted(o)),
                    None => format!("UserKnownHostsFile={user_files}"),
                });
            }
            HostKeys::Add => {
                // New keys go to the first file: snapvault's own, never ~/.ssh/known_hosts.
                opts.push("StrictHostKeyChecking=accept-new".into());
                opts.push(match &own {
                    Some(o) => format!("UserKnownHostsFile={} {user_files}", quoted(o)),
                    None => "UserKnownHostsFile=/dev/null".into(),
                });
            }
            HostKeys::Accept => {
                opts.push("StrictHostKeyChecking=no".into());
                opts.push("UserKnownHostsFile=/dev/null".into());
            }
        }
        for o in opts {
            c.arg("-o").arg(o);
        }
        c.args(["-x", "-a", "-T", "-e", "none"]);
        if let Some(p) = self.port {
            c.arg("-p").arg(p.to_string());
        }
        if let Some(u) = &self.user {
            c.arg("-l").arg(u);
        }
        if let Some(k) = &self.key {
            c.arg("-i").arg(k);
        }
        c.args(["-s", "--", &self.host, "sftp"]);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Log in and start SFTP. Returns the session and, when a host key was trusted for the
    /// first time (`add`), a sentence saying so.
    pub async fn connect(&self) -> Result<(Session, Option<String>), Problem> {
        if self.host_keys == HostKeys::Add
            && let Some(dir) = self.known_hosts.as_ref().and_then(|p| p.parent())
        {
            use std::os::unix::fs::DirBuilderExt;
            let _ = std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir);
        }
        let mut child = spawn(self.command()).await.map_err(|e| {
            let detail = if e.kind() == std::io::ErrorKind::NotFound {
                "the `ssh` program is not installed (SFTP repositories need OpenSSH's client)"
                    .to_string()
            } else {
                format!("cannot start ssh: {e}")
            };
            Problem {
                failure: Failure::Permanent,
                kind: ProblemKind::Network,
                detail,
            }
        })?;
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(err) = child.stderr.take() {
            let buf = stderr.clone();
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(err).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    if let Ok(mut b) = buf.lock()
                        && b.len() < 16 << 10
                    {
                        b.push_str(&l);
                        b.push('\n');
                    }
                }
            });
        }
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(Problem::net(
                Failure::Transient,
                "ssh started without pipes",
            ));
        };
        let started =
            tokio::time::timeout(self.stall, Sftp::new(stdin, stdout, SftpOptions::new())).await;
        let sftp = match started {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                // ssh has ended or is ending: let it finish saying why.
                let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
                // The stderr task may still be copying the last lines.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let said = stderr.lock().map(|s| s.clone()).unwrap_or_default();
                return Err(self.why(&said, &e.to_string()));
            }
            Err(_) => {
                let said = stderr.lock().map(|s| s.clone()).unwrap_or_default();
                let last = said.lines().last().unwrap_or("").trim().to_string();
                return Err(Problem::net(
                    Failure::Stalled,
                    format!(
                        "the SSH login at {} made no progress for {} s{}",
                        self.at(),
                        self.stall.as_secs(),
                        if last.is_empty() {
                            String::new()
                        } else {
                            format!(" (ssh: {last})")
                        }
                    ),
                ));
            }
        };
        let said = stderr.lock().map(|s| s.clone()).unwrap_or_default();
        let notice =
            (self.host_keys == HostKeys::Add && said.contains("Permanently added")).then(|| {
                format!(
                    "trusted the SSH host key of {} seen for the first time \
                     (SNAPVAULT_SFTP_HOST_KEYS=add) and recorded it in {}; \
                     `ssh-keygen -lF '{}' -f {}` shows its fingerprint",
                    self.known_hosts_name(),
                    self.own_known_hosts().unwrap_or_default(),
                    self.known_hosts_name(),
                    self.own_known_hosts().unwrap_or_default(),
                )
            });
        if let Ok(mut s) = stderr.lock() {
            s.clear();
        }
        Ok((
            Session {
                sftp,
                child,
                stderr,
            },
            notice,
        ))
    }

    /// A failed login, from what ssh said on stderr.
    fn why(&self, said: &str, sftp_error: &str) -> Problem {
        let has = |s: &str| said.contains(s);
        let last = said
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty() && !l.starts_with("Warning: Permanently added"))
            .unwrap_or("")
            .trim();
        let at = self.at();
        let name = self.known_hosts_name();
        let files = match (self.host_keys, self.own_known_hosts()) {
            (HostKeys::Accept, _) => "none (SNAPVAULT_SFTP_HOST_KEYS=accept)".to_string(),
            (_, Some(o)) => format!("~/.ssh/known_hosts and {o}"),
            (_, None) => "~/.ssh/known_hosts".to_string(),
        };
        let (failure, kind, detail) = if has("Connection refused") {
            (
                Failure::Refused,
                ProblemKind::Network,
                format!("connection refused: nothing accepts SSH connections at {at}"),
            )
        } else if has("Could not resolve hostname") {
            (
                Failure::Permanent,
                ProblemKind::Network,
                format!("cannot find the host {}: {last}", self.host),
            )
        } else if has("IDENTIFICATION HAS CHANGED") || has("has changed and you have requested") {
            (
                Failure::Permanent,
                ProblemKind::Network,
                format!(
                    "the SSH host key of {name} has CHANGED since it was recorded (in {files}): \
                     someone may be intercepting the connection. If the server was reinstalled, \
                     check the new key's fingerprint with its owner, then remove the old one \
                     with `ssh-keygen -R '{name}' -f FILE`"
                ),
            )
        } else if has("Host key verification failed") || has("host key is known") {
            (
                Failure::Permanent,
                ProblemKind::Network,
                format!(
                    "the SSH host key of {name} is not known (looked in {files}): compare its \
                     fingerprint with the one the server's owner gives you, then add it with \
                     `ssh-keyscan -p PORT HOST >> ~/.ssh/known_hosts`, or run once with \
                     SNAPVAULT_SFTP_HOST_KEYS=add to trust it on first use"
                ),
            )
        } else if has("Permission denied") || has("Too many authentication failures") {
            (
                Failure::Permanent,
                ProblemKind::Denied,
                format!(
                    "access denied: the server at {at} refused the SSH key ({last}); check \
                     SNAPVAULT_SFTP_KEY (or ~/.ssh/id_*, ssh-agent) and the user name"
                ),
            )
        } else if has("timed out") || has("Timeout, server") {
            (
                Failure::Stalled,
                ProblemKind::Network,
                format!(
                    "no answer from {at} within {} s ({last})",
                    self.stall.as_secs()
                ),
            )
        } else if has("No route to host") || has("Network is unreachable") {
            (
                Failure::Refused,
                ProblemKind::Network,
                format!("the network cannot reach {at}: {last}"),
            )
        } else if has("subsystem request failed") {
            (
                Failure::Permanent,
                ProblemKind::Refused,
                format!("the SSH server at {at} offers no SFTP: {last}"),
            )
        } else if has("reset")
            || has("Connection closed")
            || has("closed by remote host")
            || has("kex_exchange_identification")
            || has("Broken pipe")
        {
            (
                Failure::Transient,
                ProblemKind::Network,
                format!("the connection to {at} was reset during the SSH login ({last})"),
            )
        } else if last.is_empty() {
            (
                Failure::Transient,
                ProblemKind::Network,
                format!("the SSH connection to {at} ended during login ({sftp_error})"),
            )
        } else {
            (
                Failure::Transient,
                ProblemKind::Network,
                format!("the SSH login at {at} failed: {last}"),
            )
        };
        Problem {
            failure,
            kind,
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(keys: HostKeys) -> Login {
        Login {
            host: "nas.local".into(),
            port: Some(2222),
            user: Some("ann".into()),
            key: None,
            host_keys: keys,
            known_hosts: Some("/home/ann/.config/snapvault/known_hosts".into()),
            stall: Duration::from_secs(60),
        }
    }

    fn args(l: &Login) -> Vec<String> {
        l.command()
            .as_std()
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn accepted_keys_go_to_snapvaults_own_file_only() {
        let add = args(&login(HostKeys::Add)).join(" ");
        assert!(add.contains("StrictHostKeyChecking=accept-new"), "{add}");
        assert!(
            add.contains("UserKnownHostsFile=\"/home/ann/.config/snapvault/known_hosts\" \"~/.ssh/known_hosts\""),
            "{add}"
        );
        let accept = args(&login(HostKeys::Accept)).join(" ");
        assert!(accept.contains("UserKnownHostsFile=/dev/null"), "{accept}");
        let strict = args(&login(HostKeys::Strict)).join(" ");
        assert!(strict.contains("StrictHostKeyChecking=yes"), "{strict}");
        for a in [&add, &accept, &strict] {
            assert!(a.contains("ControlMaster=no") && a.contains("UpdateHostKeys=no"));
            assert!(a.ends_with("-s -- nas.local sftp"), "{a}");
        }
    }

    #[test]
    fn login_failures_name_their_cause() {
        let l = login(HostKeys::Strict);
        let cases = [
            (
                "ssh: connect to host nas.local port 2222: Connection refused\n",
                Failure::Refused,
                "connection refused",
            ),
            (
                "kex_exchange_identification: read: Connection reset by peer\n",
                Failure::Transient,
                "reset during the SSH login",
            ),
            (
                "No ED25519 host key is known for [nas.local]:2222 and you have requested strict checking.\nHost key verification failed.\n",
                Failure::Permanent,
                "is not known",
            ),
            (
                "ann@nas.local: Permission denied (publickey).\n",
                Failure::Permanent,
                "access denied",
            ),
            (
                "ssh: connect to host nas.local port 2222: Connection timed out\n",
                Failure::Stalled,
                "no answer",
            ),
        ];
        for (said, failure, words) in cases {
            let p = l.why(said, "eof");
            assert_eq!(p.failure, failure, "{said}");
            assert!(p.detail.contains(words), "{said} -> {}", p.detail);
        }
    }
}
