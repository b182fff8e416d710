//! The repository config: the one plain file, readable before any password is given, so a
//! newer format or an unencrypted repository is recognised up front. In an encrypted
//! repository it carries a MAC under the master key, so a tampered config (say, switched to
//! "no encryption") is detected as soon as the repository is opened.

use serde::{Deserialize, Serialize};

use crate::error::{RepoError, Result};
use crate::format::crypto::Crypto;

/// The format version this build writes and the newest it reads.
pub(crate) const FORMAT_VERSION: u32 = 1;
pub(crate) const MAX_CONFIG_FILE: usize = 64 * 1024;
/// Highest parity level, in percent (format.md §15).
pub const MAX_PARITY: u8 = 50;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    pub min: u32,
    pub avg: u32,
    pub max: u32,
}

impl Default for ChunkerParams {
    fn default() -> Self {
        ChunkerParams {
            min: 512 * 1024,
            avg: 1024 * 1024,
            max: 8 * 1024 * 1024,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub version: u32,
    /// Random repository id (hex), names the local caches.
    pub id: String,
    pub encrypted: bool,
    pub chunker: ChunkerParams,
    /// Target size of a data pack in bytes.
    pub pack_size: u32,
    /// zstd level for compressible blobs.
    pub compression_level: i32,
    /// Parity level in percent (format.md §15); 0 = none, and then absent from the file, so
    /// configs (and their MACs) from before parity existed are unchanged.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub parity: u8,
    /// hex keyed-BLAKE3 MAC of the config with this field empty (encrypted repositories).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
}

impl Config {
    pub fn new(encrypted: bool) -> Config {
        Config {
            version: FORMAT_VERSION,
            id: crate::format::id::Id::random().to_hex(),
            encrypted,
            chunker: ChunkerParams::default(),
            pack_size: 16 * 1024 * 1024,
            compression_level: 3,
            parity: 0,
            mac: String::new(),
        }
    }

    fn unsigned_bytes(&self) -> Vec<u8> {
        let mut c = self.clone();
        c.mac.clear();
        serde_json::to_vec(&c).unwrap_or_default()
    }

    pub fn sign(&mut self, crypto: &Crypto) {
        self.mac = crypto
            .mac("snapvault config mac", &self.unsigned_bytes())
            .map(hex::encode)
            .unwrap_or_default();
    }

    pub fn verify(&self, crypto: &Crypto) -> Result<()> {
        if self.encrypted != crypto.is_encrypted() {
            return Err(RepoError::ConfigDamaged {
                of: None,
                reason: "encryption mode does not match keys".into(),
            });
        }
        if let Some(mac) = crypto.mac("snapvault config mac", &self.unsigned_bytes())
            && hex::encode(mac) != self.mac
        {
            return Err(RepoError::Auth("config".into()));
        }
        Ok(())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Parse and validate; `location` is for messages.
    pub fn parse(bytes: &[u8], location: &str) -> Result<Config> {
        if bytes.len() > MAX_CONFIG_FILE {
            return Err(RepoError::ConfigDamaged {
                of: None,
                reason: "larger than 64 KiB".into(),
            });
        }
        // Read the version first so a newer format is reported as such, not as garbage.
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let v: Version =
            serde_json::from_slice(bytes).map_err(|e| damaged(location, e.to_string()))?;
        if v.version > FORMAT_VERSION {
            return Err(RepoError::NewerVersion {
                location: location.into(),
                found: v.version,
                supported: FORMAT_VERSION,
            });
        }
        let c: Config =
            serde_json::from_slice(bytes).map_err(|e| damaged(location, e.to_string()))?;
        let ch = &c.chunker;
        let ok = c.version >= 1
            && (64..=1 << 20).contains(&ch.min)
            && (ch.min..=4 << 20).contains(&ch.avg)
            && ch.avg.is_power_of_two()
            && (ch.avg..=16 << 20).contains(&ch.max)
            && (1 << 20..=1 << 30).contains(&c.pack_size)
            && (-7..=22).contains(&c.compression_level)
            && c.parity <= MAX_PARITY;
        if !ok {
            return Err(damaged(location, "parameters out of range".into()));
        }
        // The id names the local cache folder: anything but 64 hex digits (`/home/…`,
        // `../..`) would put the cache, and the permissions snapvault sets on it, elsewhere.
        // (An unencrypted config has no MAC, so its id is whatever the folder holds.)
        if !crate::format::text::is_id_name(&c.id) {
            return Err(damaged(
                location,
                format!(
                    "its id {} is not 64 hex digits",
                    crate::format::text::short_name(&c.id)
                ),
            ));
        }
        Ok(c)
    }
}

fn damaged(location: &str, reason: String) -> RepoError {
    RepoError::ConfigDamaged {
        of: Some(location.to_string()),
        reason,
    }
}

fn is_zero(v: &u8) -> bool {
    *v == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::crypto::MasterKey;

    #[test]
    fn round_trip_and_mac() {
        let crypto = Crypto::Keyed(MasterKey::generate());
        let mut c = Config::new(true);
        c.sign(&crypto);
        let back = Config::parse(&c.to_bytes(), "x").unwrap();
        back.verify(&crypto).unwrap();
        let mut tampered = back.clone();
        tampered.pack_size += 1;
        assert!(tampered.verify(&crypto).is_err());
        let other = Crypto::Keyed(MasterKey::generate());
        assert!(back.verify(&other).is_err());
    }

    #[test]
    fn newer_version_is_reported() {
        let mut c = Config::new(false);
        c.version = 99;
        assert!(matches!(
            Config::parse(&c.to_bytes(), "x"),
            Err(RepoError::NewerVersion { found: 99, .. })
        ));
        assert!(Config::parse(b"garbage", "x").is_err());
    }

    #[test]
    fn parity_level_is_absent_at_zero_and_bounded() {
        let mut c = Config::new(false);
        assert!(!String::from_utf8_lossy(&c.to_bytes()).contains("parity"));
        c.parity = 5;
        assert_eq!(Config::parse(&c.to_bytes(), "x").unwrap().parity, 5);
        c.parity = 51;
        assert!(Config::parse(&c.to_bytes(), "x").is_err());
    }
}
