//! Where the throwaway test servers are (for this crate's and the binary's tests): the
//! variables `.ci/servers.sh start` writes to `target/test-servers/env`, or the same
//! variables already in the environment.
//!
//! A test that needs the servers starts with [`for_test`]: where they are not running (a
//! Mac, a Linux machine without root, a plain `cargo test`), the test prints one line saying
//! why and passes without doing anything. `.ci/test` sets `SV_REQUIRE_SERVERS=1` once it has
//! started them (and CI refuses to go on without them), so there a missing server fails the
//! test instead of skipping it.

use std::collections::HashMap;
use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

/// The settings when the servers answer. Otherwise `None`, after one line on stderr naming
/// the test and the reason; with `SV_REQUIRE_SERVERS=1` it panics with the reason instead.
pub fn for_test(workspace: &Path) -> Option<HashMap<String, String>> {
    let reason = match load(workspace) {
        Ok(vars) => match unreachable(&vars) {
            None => return Some(vars),
            Some(r) => r,
        },
        Err(r) => r,
    };
    if std::env::var("SV_REQUIRE_SERVERS").is_ok_and(|v| v == "1") {
        panic!("SV_REQUIRE_SERVERS=1 but the test servers are not usable: {reason}");
    }
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a remote-repository test");
    // Straight to stderr, in one write: the test harness only shows what `eprintln!` prints
    // when a test fails.
    let line = format!("skipped {test}: no S3/SFTP test servers ({reason})\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    None
}

/// Why the S3 or SFTP server cannot be reached, if it cannot.
fn unreachable(vars: &HashMap<String, String>) -> Option<String> {
    let s3 = vars.get("SV_S3_ENDPOINT").map(|e| {
        let rest = e.split_once("://").map_or(e.as_str(), |(_, r)| r);
        rest.split('/').next().unwrap_or(rest).to_string()
    });
    let sftp = match (vars.get("SV_SFTP_HOST"), vars.get("SV_SFTP_PORT")) {
        (Some(h), Some(p)) => Some(format!("{h}:{p}")),
        _ => None,
    };
    for (what, addr) in [("S3", s3), ("SFTP", sftp)] {
        let Some(addr) = addr else {
            return Some(format!("no {what} address in the settings"));
        };
        let answers = addr.to_socket_addrs().ok().is_some_and(|mut a| {
            a.any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
        });
        if !answers {
            return Some(format!("nothing listens at {addr} for {what}"));
        }
    }
    None
}

/// The settings, or a message saying how to start the servers.
pub fn load(workspace: &Path) -> Result<HashMap<String, String>, String> {
    let mut vars = HashMap::new();
    if let Ok(s3) = std::env::var("SV_S3_ENDPOINT") {
        vars.insert("SV_S3_ENDPOINT".to_string(), s3);
        for (k, v) in std::env::vars() {
            if k.starts_with("SV_") {
                vars.insert(k, v);
            }
        }
        return Ok(vars);
    }
    let file = workspace.join("target/test-servers/env");
    let text = std::fs::read_to_string(&file).map_err(|e| {
        format!(
            "the remote-repository tests need the test servers, and {} cannot be read ({e}): \
             run `bash .ci/servers.sh setup && bash .ci/servers.sh start` (as root) first",
            file.display()
        )
    })?;
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=') {
            vars.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    for k in [
        "SV_S3_ENDPOINT",
        "SV_S3_BUCKET",
        "SV_SFTP_HOST",
        "SV_SFTP_PORT",
        "SV_SFTP_USER",
        "SV_SFTP_KEY",
        "SV_SFTP_ROOT",
    ] {
        if !vars.contains_key(k) {
            return Err(format!(
                "{} lacks {k}: restart the servers with `bash .ci/servers.sh start`",
                file.display()
            ));
        }
    }
    Ok(vars)
}
