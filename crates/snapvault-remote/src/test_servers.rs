//! Where the throwaway test servers are (for this crate's and the binary's tests): the
//! variables `.ci/servers.sh start` writes to `target/test-servers/env`, or the same
//! variables already in the environment.

use std::collections::HashMap;
use std::path::Path;

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
