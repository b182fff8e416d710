//! The key remembered on this computer (`key remember`, docs/security.md §3): a
//! repository's master key in a file of the user's config folder, so that commands on it
//! skip the password and Argon2id (64 MiB, most of a no-change snapshot's time). Opt-in:
//! whoever can read the file can read the backup, as with bupstash's key file or a
//! password kept in restic's `--password-file`.
//!
//! `$XDG_CONFIG_HOME/snapvault/keys/<repository id>.key` (else `~/.config/…`), folder 0700,
//! file 0600, written atomically. A file that is a symlink, not the owner's only, not
//! whole (its checksum) or for another repository is not used: a warning names it and
//! the fix, and the password is asked for as if nothing were remembered.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use snapvault_repo::crypto::MasterKey;
use snapvault_repo::text::is_id_name;

/// The file format's version, and the context of its checksum.
const VERSION: u32 = 1;
const CHECK_CONTEXT: &str = "snapvault remembered key v1";
/// A remembered-key file is about 400 bytes; anything much larger is not one.
const MAX_LEN: u64 = 4096;
const KEY_LEN: usize = 96;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    version: u32,
    /// The repository id (the config's `id`): the file is only for that repository.
    repository: String,
    /// Where the repository was when the key was remembered (for people reading the file).
    location: String,
    remembered: String,
    /// The 96-byte master key (`data_key ‖ id_key ‖ chunker_key`), hex.
    master_key: String,
    /// BLAKE3 `derive_key(CHECK_CONTEXT)` of `repository ‖ master key`: a truncated or
    /// changed file is refused before any of it is used.
    check: String,
}

/// What is remembered for a repository id.
pub enum Lookup {
    /// Nothing: no file.
    Nothing,
    Key(MasterKey),
    /// A file that must not be used; the message names it, why, and the fix.
    Unusable(String),
}

/// The folder of remembered keys.
pub fn dir() -> Option<PathBuf> {
    match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(v) => Some(PathBuf::from(v)),
        None => std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(|h| PathBuf::from(h).join(".config")),
    }
    .map(|b| b.join("snapvault").join("keys"))
}

/// The file for a repository id (`None` for an id that is not one: it is part of a path).
pub fn file_for(id: &str) -> Option<PathBuf> {
    is_id_name(id)
        .then(dir)
        .flatten()
        .map(|d| d.join(format!("{id}.key")))
}

fn checksum(id: &str, key: &[u8]) -> String {
    let mut h = blake3::Hasher::new_derive_key(CHECK_CONTEXT);
    h.update(id.as_bytes());
    h.update(key);
    h.finalize().to_hex().to_string()
}

/// Is anything (a file, a link, a folder) at the remembered-key path of `id`?
pub fn exists(id: &str) -> bool {
    file_for(id).is_some_and(|f| fs::symlink_metadata(f).is_ok())
}

/// The key remembered for repository `id`, after every check but the repository's own
/// (its config's MAC, done when opening).
pub fn load(id: &str) -> Lookup {
    let Some(file) = file_for(id) else {
        return Lookup::Nothing;
    };
    match read(&file, id) {
        Ok(Some(k)) => Lookup::Key(k),
        Ok(None) => Lookup::Nothing,
        Err(e) => Lookup::Unusable(format!(
            "the remembered key file {} is not used: {e}",
            file.display()
        )),
    }
}

fn read(file: &Path, id: &str) -> Result<Option<MasterKey>> {
    let dir = file.parent().context("no folder")?;
    // A folder others can write lets them swap the file: refuse it as ssh refuses ~/.ssh.
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => bail!("its folder cannot be read ({e})"),
        Ok(m) if m.file_type().is_symlink() || !m.is_dir() => bail!(
            "its folder {} is a symbolic link or not a folder; remove it and run `snapvault \
             key remember` again",
            dir.display()
        ),
        Ok(m) if m.mode() & 0o022 != 0 || m.uid() != euid() => bail!(
            "its folder {} can be written by other users or is not yours; fix it with \
             `chmod 700 {}`",
            dir.display(),
            dir.display()
        ),
        Ok(_) => {}
    }
    let mut f = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(file)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => bail!(
            "it is a symbolic link (a remembered key must be a plain file); remove it with \
             `snapvault key forget` and run `snapvault key remember` again"
        ),
        Err(e) => bail!("it cannot be read ({e})"),
    };
    let md = f.metadata().context("reading its metadata")?;
    if !md.is_file() {
        bail!("it is not a regular file; remove it and run `snapvault key remember` again");
    }
    if md.mode() & 0o077 != 0 || md.uid() != euid() {
        bail!(
            "it can be read or written by other users (mode {:03o}) or is not yours: anyone \
             who reads it can read the backup. Fix it with `chmod 600 {}`, or remove it with \
             `snapvault key forget`",
            md.mode() & 0o777,
            file.display()
        );
    }
    let mut bytes = Vec::new();
    (&mut f)
        .take(MAX_LEN + 1)
        .read_to_end(&mut bytes)
        .context("reading it")?;
    let parsed = parse(&bytes, id);
    bytes.fill(0);
    parsed.map(Some)
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn parse(bytes: &[u8], id: &str) -> Result<MasterKey> {
    let not_one = || {
        anyhow!(
            "it is not a remembered key (damaged or cut short); remove it with `snapvault key \
             forget` and run `snapvault key remember` again"
        )
    };
    if bytes.len() as u64 > MAX_LEN {
        return Err(not_one());
    }
    let mut s: Stored = serde_json::from_slice(bytes).map_err(|_| not_one())?;
    let mut key = [0u8; KEY_LEN];
    let ok = s.version == VERSION
        && hex::decode_to_slice(&s.master_key, &mut key).is_ok()
        && s.check == checksum(&s.repository, &key);
    s.master_key.clear();
    if !ok {
        key.fill(0);
        return Err(not_one());
    }
    if s.repository != id {
        key.fill(0);
        bail!(
            "it holds the key of another repository ({}); remove it with `snapvault key \
             forget`",
            snapvault_repo::text::short_name(&s.repository)
        );
    }
    let mk = MasterKey::from_bytes(&key);
    key.fill(0);
    Ok(mk)
}

/// Remember `key` for repository `id` (found at `location`): written to a temporary file
/// (0600, never through a link), synced, renamed over the old one, the folder synced.
pub fn store(id: &str, location: &str, key: &MasterKey) -> Result<PathBuf> {
    let file = file_for(id).ok_or_else(|| {
        anyhow!("no folder for remembered keys: neither XDG_CONFIG_HOME nor HOME is set")
    })?;
    let dir = file.parent().context("no folder")?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let md = fs::symlink_metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    if md.file_type().is_symlink() || !md.is_dir() || md.uid() != euid() {
        bail!(
            "{} is a symbolic link, not a folder, or not yours; remove it first",
            dir.display()
        );
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("making {} owner-only", dir.display()))?;
    let mut bytes = key.to_bytes();
    let stored = Stored {
        version: VERSION,
        repository: id.to_string(),
        location: location.to_string(),
        remembered: snapvault_repo::time::rfc3339_utc(snapvault_repo::time::now_unix()),
        master_key: hex::encode(bytes),
        check: checksum(id, &bytes),
    };
    bytes.fill(0);
    let mut text = serde_json::to_vec_pretty(&stored)?;
    text.push(b'\n');
    let tmp = dir.join(format!(".{id}.key.{}.tmp", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
        fs::rename(&tmp, &file)?;
        fs::File::open(dir)?.sync_all()
    })();
    text.fill(0);
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing {}", file.display()));
    }
    Ok(file)
}

/// Remove what is remembered for repository `id` (a link or a folder in its place too):
/// the file, or `None` when there was none.
pub fn forget(id: &str) -> Result<Option<PathBuf>> {
    let Some(file) = file_for(id) else {
        return Ok(None);
    };
    let removed = match fs::symlink_metadata(&file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Ok(m) if m.is_dir() => fs::remove_dir(&file),
        _ => fs::remove_file(&file),
    };
    removed.with_context(|| format!("removing {}", file.display()))?;
    if let Some(dir) = file.parent() {
        let _ = fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(Some(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_key_parses_back_and_any_change_is_refused() {
        let id = "ab".repeat(32);
        let mk = MasterKey::generate();
        let bytes = mk.to_bytes();
        let s = Stored {
            version: VERSION,
            repository: id.clone(),
            location: "/r".into(),
            remembered: "2026-12-07T00:00:00Z".into(),
            master_key: hex::encode(bytes),
            check: checksum(&id, &bytes),
        };
        let text = serde_json::to_vec(&s).unwrap();
        let back = parse(&text, &id).unwrap();
        assert_eq!(back.to_bytes(), bytes);
        assert!(parse(&text, &"cd".repeat(32)).is_err(), "another id");
        for cut in [0, 1, text.len() / 2, text.len() - 1] {
            assert!(parse(&text[..cut], &id).is_err(), "cut at {cut}");
        }
        let mut v: serde_json::Value = serde_json::from_slice(&text).unwrap();
        v["master_key"] = hex::encode([0u8; KEY_LEN]).into();
        assert!(parse(&serde_json::to_vec(&v).unwrap(), &id).is_err());
    }
}
