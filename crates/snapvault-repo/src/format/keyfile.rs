//! Key files: the password only unwraps the master key.
//!
//! `keys/<random id>` is plain JSON holding the Argon2id parameters, a random salt and the
//! 96-byte master key sealed with XChaCha20-Poly1305 under the derived key. Adding a
//! password writes a new key file; changing one writes a new file and removes the old.

use serde::{Deserialize, Serialize};

use crate::error::{RepoError, Result};
use crate::format::crypto::{MASTER_KEY_LEN, MasterKey, open_with, seal_with};

/// Argon2id cost for new key files: 64 MiB, 2 passes, 1 lane (~0.2–0.4 s on one core here).
pub const DEFAULT_KDF: KdfParams = KdfParams {
    m_kib: 64 * 1024,
    t: 2,
    p: 1,
};

/// Upper bounds accepted when reading a key file, so a planted file cannot demand more
/// memory than a small machine has or unbounded work: at most 1 GiB and 16 passes (16× and
/// 8× the defaults, so at worst about 128× the default's work); beyond is refused as damaged.
const MAX_M_KIB: u32 = 1024 * 1024;
const MAX_T: u32 = 16;
const MAX_P: u32 = 16;
/// Largest key file we read.
pub(crate) const MAX_KEY_FILE: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyFile {
    pub version: u32,
    pub created: i64,
    pub hostname: String,
    pub username: String,
    pub kdf: String,
    pub params: KdfParams,
    /// hex, 16 bytes
    pub salt: String,
    /// hex: nonce ‖ sealed master key ‖ tag
    pub data: String,
    /// hex: the repository's config, sealed under the master key on its own (a second copy,
    /// so a damaged `config` file does not lock the owner out). Absent in key files written
    /// before copies were kept. Left out of `mac`, so versions that do not know the field
    /// still verify the MAC; the seal authenticates the copy.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub config: String,
    /// hex keyed-BLAKE3 MAC of the other fields under a key derived from the master key,
    /// so `check` can tell a damaged key file without knowing its password.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
}

fn derive(password: &[u8], salt: &[u8], p: KdfParams) -> Result<[u8; 32]> {
    if p.m_kib > MAX_M_KIB || p.t > MAX_T || p.p > MAX_P || p.t == 0 || p.p == 0 {
        return Err(RepoError::corrupt(
            "key file",
            format!("Argon2id parameters out of range: {p:?}"),
        ));
    }
    let params = argon2::Params::new(p.m_kib, p.t, p.p, Some(32))
        .map_err(|e| RepoError::corrupt("key file", format!("bad Argon2id parameters: {e}")))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = [0u8; 32];
    a.hash_password_into(password, salt, &mut out)
        .map_err(|e| RepoError::corrupt("key file", format!("key derivation failed: {e}")))?;
    Ok(out)
}

impl KeyFile {
    pub fn create(master: &MasterKey, password: &[u8], params: KdfParams) -> Result<KeyFile> {
        let mut salt = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
        let mut kek = derive(password, &salt, params)?;
        let mut mk = master.to_bytes();
        let sealed = seal_with(&kek, &mk);
        mk.fill(0);
        kek.fill(0);
        Ok(KeyFile {
            version: 1,
            created: crate::format::time::now_unix(),
            hostname: crate::format::time::hostname(),
            username: crate::format::time::username(),
            kdf: "argon2id".into(),
            params,
            salt: hex::encode(salt),
            data: hex::encode(sealed),
            config: String::new(),
            mac: String::new(),
        })
        .map(|mut k: KeyFile| {
            k.mac = k.compute_mac(master);
            k
        })
    }

    /// Keep a sealed copy of the config bytes `config` in this key file (the MAC does not
    /// cover it, so it can be added after [`KeyFile::create`]).
    pub fn with_config_copy(mut self, master: &MasterKey, config: &[u8]) -> KeyFile {
        self.config =
            hex::encode(crate::format::crypto::Crypto::Keyed(master.clone()).seal(config));
        self
    }

    /// The config copy's bytes: `None` when this key file has none, an error when it is
    /// damaged (not hex, or it fails its seal under `master`).
    pub fn config_copy(&self, master: &MasterKey) -> Option<Result<Vec<u8>>> {
        if self.config.is_empty() {
            return None;
        }
        let sealed = match hex::decode(&self.config) {
            Ok(s) => s,
            Err(_) => {
                return Some(Err(RepoError::corrupt("config copy", "is not hex")));
            }
        };
        Some(crate::format::crypto::Crypto::Keyed(master.clone()).open(&sealed, "config copy"))
    }

    fn compute_mac(&self, master: &MasterKey) -> String {
        let mut c = self.clone();
        c.mac.clear();
        c.config.clear();
        let bytes = serde_json::to_vec(&c).unwrap_or_default();
        crate::format::crypto::Crypto::Keyed(master.clone())
            .mac("snapvault key file mac", &bytes)
            .map(hex::encode)
            .unwrap_or_default()
    }

    /// Does this key file carry a valid MAC under `master` (its bytes are intact)?
    pub fn verify_mac(&self, master: &MasterKey) -> bool {
        !self.mac.is_empty() && self.mac == self.compute_mac(master)
    }

    pub fn parse(bytes: &[u8]) -> Result<KeyFile> {
        if bytes.len() > MAX_KEY_FILE {
            return Err(RepoError::corrupt("key file", "larger than 64 KiB"));
        }
        let k: KeyFile = serde_json::from_slice(bytes)
            .map_err(|e| RepoError::corrupt("key file", e.to_string()))?;
        if k.version != 1 || k.kdf != "argon2id" {
            return Err(RepoError::corrupt(
                "key file",
                format!("unsupported version {} / kdf {:?}", k.version, k.kdf),
            ));
        }
        Ok(k)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Unwrap the master key. A wrong password is [`RepoError::WrongPassword`]; a damaged
    /// file is [`RepoError::Corrupt`].
    pub fn open(&self, password: &[u8]) -> Result<MasterKey> {
        let salt = hex::decode(&self.salt)
            .map_err(|_| RepoError::corrupt("key file", "salt is not hex"))?;
        if salt.len() < 8 || salt.len() > 64 {
            return Err(RepoError::corrupt("key file", "salt length out of range"));
        }
        let sealed = hex::decode(&self.data)
            .map_err(|_| RepoError::corrupt("key file", "data is not hex"))?;
        if sealed.len() != MASTER_KEY_LEN + crate::format::crypto::SEAL_OVERHEAD {
            return Err(RepoError::corrupt(
                "key file",
                "sealed key has the wrong length",
            ));
        }
        let mut kek = derive(password, &salt, self.params)?;
        let plain = open_with(&kek, &sealed, "key file");
        kek.fill(0);
        let mut plain = plain.map_err(|_| RepoError::WrongPassword)?;
        let mut b = [0u8; MASTER_KEY_LEN];
        b.copy_from_slice(&plain);
        plain.fill(0);
        let k = MasterKey::from_bytes(&b);
        b.fill(0);
        Ok(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: KdfParams = KdfParams {
        m_kib: 64,
        t: 1,
        p: 1,
    };

    #[test]
    fn wrap_unwrap() {
        let mk = MasterKey::generate();
        let kf = KeyFile::create(&mk, b"secret", FAST).unwrap();
        let parsed = KeyFile::parse(&kf.to_bytes()).unwrap();
        assert_eq!(parsed.open(b"secret").unwrap().to_bytes(), mk.to_bytes());
        assert!(matches!(
            parsed.open(b"wrong"),
            Err(RepoError::WrongPassword)
        ));
    }

    #[test]
    fn hostile_params_rejected() {
        let mk = MasterKey::generate();
        let mut kf = KeyFile::create(&mk, b"pw", FAST).unwrap();
        kf.params.m_kib = u32::MAX;
        assert!(matches!(kf.open(b"pw"), Err(RepoError::Corrupt { .. })));
        // Just past each bound (refused before any work is done).
        for (m, t, p) in [(1024 * 1024 + 1, 2, 1), (64, 17, 1), (64, 2, 17)] {
            kf.params = KdfParams { m_kib: m, t, p };
            assert!(
                matches!(kf.open(b"pw"), Err(RepoError::Corrupt { .. })),
                "{m} {t} {p}"
            );
        }
        assert!(KeyFile::parse(b"{not json").is_err());
        assert!(KeyFile::parse(&vec![b' '; MAX_KEY_FILE + 1]).is_err());
    }
}
