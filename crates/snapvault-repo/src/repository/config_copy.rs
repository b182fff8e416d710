//! Keeping the key files' sealed copies of the config in step with the config (format.md
//! §4): whenever the config is rewritten, and when `repair --apply` finds a copy that is
//! damaged or out of date.
//!
//! A key file is never changed in place: the copy goes into a new key file (same password,
//! same wrapped master key, a new random name), then the old one is removed, as `key
//! passwd` does. That is safe on every backend (a remote one cannot replace a file
//! atomically), and a crash in between leaves two key files that both open the repository.

use crate::error::Result;
use crate::format::config::Config;
use crate::format::id::Id;
use crate::format::keyfile::KeyFile;
use crate::storage::FileKind;

/// Which key files [`crate::Repository::reseal_config_copies`] rewrites.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reseal {
    /// Every key file that can be read (the config was just rewritten).
    All,
    /// Only those whose copy is damaged or differs from the config in use.
    Stale,
}

/// A key file rewritten with the config in use: its old and its new name.
pub type Resealed = (String, String);

impl crate::Repository {
    /// Seal the config in use into the key files `which` selects; returns what was
    /// rewritten. Key files that cannot be read are left for `check` to report. The config
    /// itself must be written first (format.md §4: a crash between the two leaves copies
    /// that differ from the config, which `check` notes and `repair --apply` mends).
    pub fn reseal_config_copies(&mut self, which: Reseal) -> Result<Vec<Resealed>> {
        let crate::format::crypto::Crypto::Keyed(mk) = self.crypto().clone() else {
            return Ok(Vec::new());
        };
        let bytes = self.config().to_bytes();
        let mut out = Vec::new();
        for f in self.backend().list(FileKind::Key)? {
            let Ok(kf) = self
                .backend()
                .read(FileKind::Key, &f.name)
                .and_then(|b| KeyFile::parse(&b))
            else {
                continue;
            };
            if which == Reseal::Stale && !self.copy_is_stale(&kf, &mk) {
                continue;
            }
            let new = Id::random().to_hex();
            let kf = kf.with_config_copy(&mk, &bytes);
            self.backend().write(FileKind::Key, &new, &kf.to_bytes())?;
            self.backend().remove(FileKind::Key, &f.name)?;
            if self.key_name.as_deref() == Some(f.name.as_str()) {
                self.key_name = Some(new.clone());
            }
            out.push((f.name, new));
        }
        Ok(out)
    }

    /// The key files whose copy of the config is damaged or out of date.
    pub fn stale_config_copies(&self) -> Result<Vec<String>> {
        let crate::format::crypto::Crypto::Keyed(mk) = self.crypto() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for f in self.backend().list(FileKind::Key)? {
            if let Ok(kf) = self
                .backend()
                .read(FileKind::Key, &f.name)
                .and_then(|b| KeyFile::parse(&b))
                && self.copy_is_stale(&kf, mk)
            {
                out.push(f.name);
            }
        }
        Ok(out)
    }

    /// A copy that is there and is damaged, or reads as another config than the one in use.
    fn copy_is_stale(&self, kf: &KeyFile, mk: &crate::format::crypto::MasterKey) -> bool {
        match kf.config_copy(mk) {
            None => false,
            Some(copy) => !copy
                .and_then(|b| Config::parse(&b, "the copy"))
                .and_then(|c| c.verify(self.crypto()).map(|()| c))
                .is_ok_and(|c| &c == self.config()),
        }
    }
}
