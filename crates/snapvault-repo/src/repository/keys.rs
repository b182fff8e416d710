//! The passwords that open a repository: listing, adding, removing and changing key
//! files. Each key file seals the master key, and a copy of the config (format.md §4).

use crate::error::{KeyError, Result};
use crate::format::crypto::{Crypto, MasterKey};
use crate::format::id::Id;
use crate::format::keyfile::{KdfParams, KeyFile};
use crate::repository::Repository;
use crate::storage::FileKind;

/// A key file as listed by `key list`.
#[derive(Clone, Debug)]
pub struct KeySummary {
    pub name: String,
    pub file: Option<KeyFile>,
    pub current: bool,
}

impl Repository {
    pub fn list_keys(&self) -> Result<Vec<KeySummary>> {
        let mut out = Vec::new();
        for f in self.backend.list(FileKind::Key)? {
            let file = self
                .backend
                .read(FileKind::Key, &f.name)
                .and_then(|b| KeyFile::parse(&b))
                .ok();
            out.push(KeySummary {
                current: self.key_name.as_deref() == Some(f.name.as_str()),
                name: f.name,
                file,
            });
        }
        Ok(out)
    }

    fn master(&self) -> Result<&MasterKey> {
        match &self.crypto {
            Crypto::Keyed(k) => Ok(k),
            Crypto::Plain => Err(KeyError::NotEncrypted.into()),
        }
    }

    /// Add a password; returns the new key file's name.
    pub fn add_key(&self, password: &[u8], kdf: KdfParams) -> Result<String> {
        let mk = self.master()?;
        let kf = KeyFile::create(mk, password, kdf)?.with_config_copy(mk, &self.config.to_bytes());
        let name = Id::random().to_hex();
        self.backend.write(FileKind::Key, &name, &kf.to_bytes())?;
        Ok(name)
    }

    /// Remove a key by name or unique prefix. The last key, and the key in use, are refused.
    pub fn remove_key(&self, prefix: &str) -> Result<String> {
        let target = self.key_to_remove(prefix)?;
        self.backend.remove(FileKind::Key, &target)?;
        Ok(target)
    }

    /// The key `remove_key(prefix)` would remove, with the same refusals; removes nothing
    /// (for `key remove --dry-run`).
    pub fn key_to_remove(&self, prefix: &str) -> Result<String> {
        self.master()?;
        let keys = self.backend.list(FileKind::Key)?;
        let matching: Vec<_> = keys.iter().filter(|k| k.name.starts_with(prefix)).collect();
        let target = match (prefix.is_empty(), matching.as_slice()) {
            (false, [one]) => one.name.clone(),
            (_, []) | (true, _) => {
                return Err(KeyError::NoMatch {
                    prefix: prefix.to_string(),
                }
                .into());
            }
            _ => {
                return Err(KeyError::Ambiguous {
                    prefix: prefix.to_string(),
                    count: matching.len(),
                }
                .into());
            }
        };
        if keys.len() <= 1 {
            return Err(KeyError::LastKey.into());
        }
        if self.key_name.as_deref() == Some(target.as_str()) {
            return Err(KeyError::InUse { name: target }.into());
        }
        Ok(target)
    }

    /// Change the current password: write a new key file, then remove the old one.
    pub fn change_password(&mut self, password: &[u8], kdf: KdfParams) -> Result<String> {
        let new_name = self.add_key(password, kdf)?;
        if let Some(old) = self.key_name.replace(new_name.clone()) {
            self.backend.remove(FileKind::Key, &old)?;
        }
        Ok(new_name)
    }
}
