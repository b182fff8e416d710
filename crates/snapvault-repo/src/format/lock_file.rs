//! Lock files: `locks/<random id>`, sealed JSON naming the process that holds a lock. How
//! locks are taken, refreshed and judged stale is `repository::lock`.

use serde::{Deserialize, Serialize};

use crate::error::{RepoError, Result};
use crate::format::crypto::Crypto;

/// Largest lock file accepted.
const MAX_LOCK_FILE: usize = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub hostname: String,
    pub username: String,
    pub pid: u32,
    /// Unix seconds when written (refreshed).
    pub time: i64,
    pub exclusive: bool,
    pub command: String,
}

impl LockInfo {
    pub fn seal(&self, crypto: &Crypto) -> Vec<u8> {
        crypto.seal(&serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn decode(crypto: &Crypto, sealed: &[u8], name: &str) -> Result<LockInfo> {
        if sealed.len() > MAX_LOCK_FILE {
            return Err(RepoError::corrupt(format!("lock {name}"), "too large"));
        }
        let plain = crypto.open(sealed, &format!("lock {name}"))?;
        serde_json::from_slice(&plain)
            .map_err(|e| RepoError::corrupt(format!("lock {name}"), e.to_string()))
    }
}
