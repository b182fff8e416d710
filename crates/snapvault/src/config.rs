//! The configuration file and the effective settings.
//!
//! `$XDG_CONFIG_HOME/snapvault/config.toml` (else `~/.config/snapvault/config.toml`), or
//! the file given by `--config FILE` / `SNAPVAULT_CONFIG`. Keys at the top level apply to
//! every profile; `[profiles.NAME]` tables override them for `--profile NAME` /
//! `SNAPVAULT_PROFILE` (or for the profile named by the top-level `profile = "NAME"`).
//!
//! Precedence, lowest first: built-in default < file < environment < command-line flag.
//! [`resolve`] fills the parsed command line with what the file and the environment say
//! where no flag was given, and remembers where each setting came from for
//! `snapvault config show`.
//!
//! ```toml
//! profile = "t7"                      # used when no --profile is given
//! excludes = ["*.tmp"]                # for every profile
//!
//! [profiles.t7]
//! repository = "/media/me/T7/photos"
//! password_command = "pass show snapvault/t7"
//! device = "00008110-001A2B3C4D5E6F70"
//! compression = 6
//! keep = { daily = 7, weekly = 5, monthly = 24, yearly = 10 }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Result, anyhow};
use serde::{Deserialize, Serialize};

mod resolve;

pub use resolve::resolve;

/// Keys of one profile (or of the top level).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub repository: Option<String>,
    pub password_command: Option<String>,
    pub password_file: Option<String>,
    /// The iPhone (UDID) for `snapshot iphone` and `verify-device` when several are attached.
    pub device: Option<String>,
    pub excludes: Option<Vec<String>>,
    pub exclude_files: Option<Vec<String>>,
    /// `false` turns off the built-in junk excludes (.DS_Store, Thumbs.db, ._*, …).
    pub default_excludes: Option<bool>,
    /// zstd level for `init` (1-22).
    pub compression: Option<i32>,
    /// Retention policy for `forget` when it is given no policy and no ids.
    pub keep: Option<Keep>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Keep {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hourly: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weekly: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monthly: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yearly: Option<u32>,
    /// A span like `30d`, `1y6m`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub within: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

impl Keep {
    fn is_empty(&self) -> bool {
        *self == Keep::default()
    }

    fn describe(&self) -> String {
        let mut v = Vec::new();
        for (k, n) in [
            ("last", self.last),
            ("hourly", self.hourly),
            ("daily", self.daily),
            ("weekly", self.weekly),
            ("monthly", self.monthly),
            ("yearly", self.yearly),
        ] {
            if let Some(n) = n {
                v.push(format!("{k}={n}"));
            }
        }
        if let Some(w) = &self.within {
            v.push(format!("within={w}"));
        }
        if let Some(t) = &self.tags {
            v.push(format!("tags={}", t.join(",")));
        }
        v.join(" ")
    }
}

/// Where a setting came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "origin", content = "from", rename_all = "lowercase")]
pub enum Origin {
    Default,
    /// The file and the table (`top level` or `profiles.NAME`).
    File(String),
    /// The environment variable.
    Env(String),
    /// The command-line flag.
    Flag(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Default => write!(f, "default"),
            Origin::File(w) => write!(f, "file {w}"),
            Origin::Env(v) => write!(f, "env {v}"),
            Origin::Flag(fl) => write!(f, "flag {fl}"),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Setting {
    pub name: &'static str,
    /// `null` when unset.
    pub value: Option<String>,
    #[serde(flatten)]
    pub origin: Origin,
}

/// The effective settings, with where each came from (for `config show`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Effective {
    pub config_file: Option<String>,
    /// The file was read (it exists); `false` when there is none at the default location.
    pub config_file_loaded: bool,
    pub profile: Option<String>,
    pub profiles: Vec<String>,
    pub settings: Vec<Setting>,
    pub excludes: Vec<Setting>,
}

static EFFECTIVE: OnceLock<Effective> = OnceLock::new();

/// The settings as resolved at start-up (empty before [`resolve`]).
pub fn effective() -> Effective {
    EFFECTIVE.get().cloned().unwrap_or_default()
}

fn env(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

/// The default location of the config file.
pub fn default_path() -> Option<PathBuf> {
    match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(v) => Some(PathBuf::from(v)),
        None => std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(|h| PathBuf::from(h).join(".config")),
    }
    .map(|b| b.join("snapvault").join("config.toml"))
}

/// `~/x` → `$HOME/x` (paths in the config file only; the shell expands flags).
fn expand(p: &str) -> String {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest).display().to_string(),
        _ => p.to_string(),
    }
}

/// A parsed config file.
#[derive(Debug, Default)]
pub struct File {
    pub path: PathBuf,
    pub top: Profile,
    pub default_profile: Option<String>,
    pub profiles: BTreeMap<String, Profile>,
}

impl File {
    pub fn parse(path: &Path, text: &str) -> Result<File> {
        let bad = |e: &dyn std::fmt::Display| anyhow!("config file {}: {e}", path.display());
        let mut table: toml::Table = toml::from_str(text).map_err(|e| bad(&e))?;
        let default_profile = match table.remove("profile") {
            None => None,
            Some(toml::Value::String(s)) => Some(s),
            Some(_) => return Err(bad(&"`profile` must be a string (a profile name)")),
        };
        let mut profiles = BTreeMap::new();
        match table.remove("profiles") {
            None => {}
            Some(toml::Value::Table(t)) => {
                for (name, v) in t {
                    let p = Profile::deserialize(v)
                        .map_err(|e| bad(&format!("[profiles.{name}]: {e}")))?;
                    profiles.insert(name, p);
                }
            }
            Some(_) => return Err(bad(&"`profiles` must be a table: [profiles.NAME]")),
        }
        let top = Profile::deserialize(toml::Value::Table(table)).map_err(|e| bad(&e))?;
        Ok(File {
            path: path.to_path_buf(),
            top,
            default_profile,
            profiles,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_top_level_and_profiles() {
        let f = File::parse(
            Path::new("c.toml"),
            r#"
profile = "t7"
excludes = ["*.tmp"]
[profiles.t7]
repository = "/r"
password_command = "echo pw"
device = "abc"
compression = 6
keep = { daily = 7, monthly = 24 }
[profiles.other]
repository = "/o"
"#,
        )
        .unwrap();
        assert_eq!(f.default_profile.as_deref(), Some("t7"));
        assert_eq!(f.top.excludes.as_deref(), Some(&["*.tmp".to_string()][..]));
        let t7 = &f.profiles["t7"];
        assert_eq!(t7.repository.as_deref(), Some("/r"));
        assert_eq!(t7.compression, Some(6));
        assert_eq!(t7.keep.as_ref().unwrap().describe(), "daily=7 monthly=24");
        assert_eq!(f.profiles.len(), 2);
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = File::parse(Path::new("c.toml"), "repsitory = \"/r\"\n").unwrap_err();
        assert!(e.to_string().contains("repsitory"), "{e}");
        let e =
            File::parse(Path::new("c.toml"), "[profiles.a]\nkeep = { dayly = 1 }\n").unwrap_err();
        assert!(e.to_string().contains("profiles.a"), "{e}");
        assert!(File::parse(Path::new("c.toml"), "repository = ").is_err());
    }
}
