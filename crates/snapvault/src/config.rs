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

use anyhow::{Context, Result, anyhow, bail};
use clap::ArgMatches;
use clap::parser::ValueSource;
use serde::{Deserialize, Serialize};

use crate::cli::{Cli, Command};

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

/// One layer's value with its origin.
type Found<T> = Option<(T, Origin)>;

/// Resolve the configuration for this run: read the file, pick the profile, fill in the
/// command line where no flag was given (environment first, then the file), and remember
/// where each setting came from.
pub fn resolve(cli: &mut Cli, matches: &ArgMatches) -> Result<()> {
    let eff = resolve_inner(cli, matches)?;
    let _ = EFFECTIVE.set(eff);
    Ok(())
}

fn from_flag_or_env(matches: &ArgMatches, id: &str, flag: &str, var: &str) -> Origin {
    match matches.value_source(id) {
        Some(ValueSource::EnvVariable) => Origin::Env(var.into()),
        Some(ValueSource::CommandLine) => Origin::Flag(flag.into()),
        _ => Origin::Default,
    }
}

fn resolve_inner(cli: &mut Cli, matches: &ArgMatches) -> Result<Effective> {
    let g = &mut cli.global;
    // The file: --config / SNAPVAULT_CONFIG (must exist), else the default location.
    let (path, explicit, file_origin) = match &g.config {
        Some(p) => (
            Some(p.clone()),
            true,
            from_flag_or_env(matches, "config", "--config", "SNAPVAULT_CONFIG"),
        ),
        None => (default_path(), false, Origin::Default),
    };
    let file = match &path {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(text) => Some(File::parse(p, &text)?),
            Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(e).with_context(|| format!("reading config file {}", p.display()));
            }
        },
        None => None,
    };
    let mut eff = Effective {
        config_file: path.as_ref().map(|p| p.display().to_string()),
        config_file_loaded: file.is_some(),
        ..Default::default()
    };
    eff.settings.push(Setting {
        name: "config_file",
        value: eff.config_file.clone(),
        origin: file_origin,
    });
    // The profile.
    let (profile_name, profile_origin) = match (&g.profile, &file) {
        (Some(p), _) => (
            Some(p.clone()),
            from_flag_or_env(matches, "profile", "--profile", "SNAPVAULT_PROFILE"),
        ),
        (None, Some(f)) if f.default_profile.is_some() => (
            f.default_profile.clone(),
            Origin::File(format!("{} (top level)", f.path.display())),
        ),
        _ => (None, Origin::Default),
    };
    let empty = Profile::default();
    let (top, prof, prof_where) = match &file {
        Some(f) => {
            let prof = match &profile_name {
                Some(n) => f.profiles.get(n).ok_or_else(|| {
                    let known: Vec<&str> = f.profiles.keys().map(String::as_str).collect();
                    anyhow!(
                        "no profile {n:?} in config file {}; it has: {}",
                        f.path.display(),
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    )
                })?,
                None => &empty,
            };
            let w = match &profile_name {
                Some(n) => format!("{} [profiles.{n}]", f.path.display()),
                None => String::new(),
            };
            (&f.top, prof, w)
        }
        None => {
            if let Some(n) = &profile_name {
                bail!(
                    "profile {n:?} was asked for, but there is no config file ({})",
                    path.as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "no HOME or XDG_CONFIG_HOME".into())
                );
            }
            (&empty, &empty, String::new())
        }
    };
    eff.profiles = file
        .as_ref()
        .map(|f| f.profiles.keys().cloned().collect())
        .unwrap_or_default();
    eff.profile = profile_name.clone();
    eff.settings.push(Setting {
        name: "profile",
        value: profile_name.clone(),
        origin: profile_origin,
    });
    let top_where = file
        .as_ref()
        .map(|f| format!("{} (top level)", f.path.display()))
        .unwrap_or_default();
    // The file's value for a key: the profile's, else the top level's.
    let pick = |get: &dyn Fn(&Profile) -> Option<String>| -> Found<String> {
        get(prof)
            .map(|v| (v, Origin::File(prof_where.clone())))
            .or_else(|| get(top).map(|v| (v, Origin::File(top_where.clone()))))
    };

    // Repository.
    let repo = match &g.repo {
        Some(r) => Some((
            r.clone(),
            from_flag_or_env(matches, "repo", "--repo", "SNAPVAULT_REPOSITORY"),
        )),
        None => pick(&|p| p.repository.as_deref().map(expand)),
    };
    if let Some((r, _)) = &repo {
        g.repo = Some(r.clone());
    }
    eff.settings.push(setting("repository", repo));

    // Password: a higher layer that says anything about the password wins as a whole.
    let password = if let Some(f) = &g.password_file {
        Some((
            format!("file {}", f.display()),
            from_flag_or_env(
                matches,
                "password_file",
                "--password-file",
                "SNAPVAULT_PASSWORD_FILE",
            ),
        ))
    } else if let Some(c) = &g.password_command {
        Some((
            format!("command {c}"),
            from_flag_or_env(
                matches,
                "password_command",
                "--password-command",
                "SNAPVAULT_PASSWORD_COMMAND",
            ),
        ))
    } else if std::env::var_os("SNAPVAULT_PASSWORD").is_some() {
        Some((
            "(hidden)".to_string(),
            Origin::Env("SNAPVAULT_PASSWORD".into()),
        ))
    } else {
        let (file_pw, cmd_pw) = if prof.password_file.is_some() || prof.password_command.is_some() {
            (&prof.password_file, &prof.password_command)
        } else {
            (&top.password_file, &top.password_command)
        };
        if file_pw.is_some() && cmd_pw.is_some() {
            bail!(
                "config file: give either password_file or password_command in one profile, not both"
            );
        }
        if let Some(f) = file_pw {
            g.password_file = Some(PathBuf::from(expand(f)));
            pick(&|p| {
                p.password_file
                    .as_deref()
                    .map(|f| format!("file {}", expand(f)))
            })
        } else if let Some(c) = cmd_pw {
            g.password_command = Some(c.clone());
            pick(&|p| p.password_command.as_ref().map(|c| format!("command {c}")))
        } else {
            None
        }
    };
    eff.settings.push(match password {
        Some(p) => setting("password", Some(p)),
        None => Setting {
            name: "password",
            value: Some("prompt (on a terminal)".into()),
            origin: Origin::Default,
        },
    });

    // Per-command settings.
    let env_device = env("SNAPVAULT_DEVICE").map(|v| (v, Origin::Env("SNAPVAULT_DEVICE".into())));
    let file_device = pick(&|p| p.device.clone());
    let device_for = |flag: &Option<String>| -> Found<String> {
        match flag {
            Some(u) => Some((u.clone(), Origin::Flag("--device".into()))),
            None => env_device.clone().or_else(|| file_device.clone()),
        }
    };
    let env_level = match env("SNAPVAULT_COMPRESSION") {
        Some(v) => Some((
            v.parse::<i32>()
                .map_err(|_| anyhow!("SNAPVAULT_COMPRESSION={v:?} is not a number (1-22)"))?,
            Origin::Env("SNAPVAULT_COMPRESSION".into()),
        )),
        None => None,
    };
    let file_level = prof
        .compression
        .map(|l| (l, Origin::File(prof_where.clone())))
        .or_else(|| {
            top.compression
                .map(|l| (l, Origin::File(top_where.clone())))
        });
    let keep = prof
        .keep
        .clone()
        .map(|k| (k, Origin::File(prof_where.clone())))
        .or_else(|| {
            top.keep
                .clone()
                .map(|k| (k, Origin::File(top_where.clone())))
        })
        .filter(|(k, _)| !k.is_empty());
    // Excludes add up: the top level's, the profile's, then the flags'.
    let mut file_excludes: Vec<(String, Origin)> = Vec::new();
    let mut file_exclude_files: Vec<(String, Origin)> = Vec::new();
    for (p, w) in [(top, &top_where), (prof, &prof_where)] {
        for e in p.excludes.iter().flatten() {
            file_excludes.push((e.clone(), Origin::File(w.clone())));
        }
        for e in p.exclude_files.iter().flatten() {
            file_exclude_files.push((expand(e), Origin::File(w.clone())));
        }
    }
    let file_defaults = prof
        .default_excludes
        .map(|d| (d, Origin::File(prof_where.clone())))
        .or_else(|| {
            top.default_excludes
                .map(|d| (d, Origin::File(top_where.clone())))
        });

    let mut device = device_for(&None);
    let mut level = env_level.clone().or(file_level.clone());
    let mut defaults_on = file_defaults.clone();
    let mut excludes = file_excludes.clone();
    let mut exclude_files = file_exclude_files.clone();
    match &mut cli.command {
        Command::Snapshot(a) => {
            device = device_for(&a.udid);
            let is_iphone = a.paths.len() == 1 && a.paths[0].as_os_str() == "iphone";
            if is_iphone && a.udid.is_none() {
                a.udid = device.as_ref().map(|d| d.0.clone());
            }
            for e in &a.exclude {
                excludes.push((e.clone(), Origin::Flag("--exclude".into())));
            }
            for f in &a.exclude_file {
                exclude_files.push((
                    f.display().to_string(),
                    Origin::Flag("--exclude-file".into()),
                ));
            }
            a.exclude = excludes.iter().map(|e| e.0.clone()).collect();
            a.exclude_file = exclude_files.iter().map(|e| PathBuf::from(&e.0)).collect();
            if a.no_default_excludes {
                defaults_on = Some((false, Origin::Flag("--no-default-excludes".into())));
            } else if defaults_on.as_ref().is_some_and(|d| !d.0) {
                a.no_default_excludes = true;
            }
        }
        Command::VerifyDevice(a) => {
            device = device_for(&a.udid);
            a.udid = device.as_ref().map(|d| d.0.clone());
        }
        Command::Init(a) => {
            if let Some(l) = a.compression {
                level = Some((l, Origin::Flag("--compression".into())));
            }
            a.compression = level.as_ref().map(|l| l.0);
        }
        Command::Forget(a) => {
            let policy_given = !a.ids.is_empty()
                || a.keep_last.is_some()
                || a.keep_hourly.is_some()
                || a.keep_daily.is_some()
                || a.keep_weekly.is_some()
                || a.keep_monthly.is_some()
                || a.keep_yearly.is_some()
                || a.keep_within.is_some()
                || a.keep_within_hourly.is_some()
                || a.keep_within_daily.is_some()
                || a.keep_within_weekly.is_some()
                || a.keep_within_monthly.is_some()
                || a.keep_within_yearly.is_some()
                || !a.keep_tag.is_empty();
            if !policy_given && let Some((k, _)) = &keep {
                let count = |n: Option<u32>| n.filter(|&n| n > 0);
                a.keep_last = count(k.last);
                a.keep_hourly = count(k.hourly);
                a.keep_daily = count(k.daily);
                a.keep_weekly = count(k.weekly);
                a.keep_monthly = count(k.monthly);
                a.keep_yearly = count(k.yearly);
                if let Some(w) = &k.within {
                    a.keep_within = Some(
                        snapvault_repo::forget::parse_span(w)
                            .map_err(|e| anyhow!("config file: keep.within = {w:?}: {e}"))?,
                    );
                }
                a.keep_tag = k.tags.clone().unwrap_or_default();
            }
        }
        _ => {}
    }
    eff.settings.push(setting("device", device));
    eff.settings.push(match level {
        Some((l, o)) => setting("compression", Some((l.to_string(), o))),
        None => Setting {
            name: "compression",
            value: Some(
                snapvault_repo::config::Config::new(true)
                    .compression_level
                    .to_string(),
            ),
            origin: Origin::Default,
        },
    });
    eff.settings
        .push(setting("keep", keep.map(|(k, o)| (k.describe(), o))));
    eff.settings.push(match defaults_on {
        Some((d, o)) => setting("default_excludes", Some((d.to_string(), o))),
        None => Setting {
            name: "default_excludes",
            value: Some("true".into()),
            origin: Origin::Default,
        },
    });
    let defaults_active =
        !matches!(&eff.settings.last(), Some(s) if s.value.as_deref() == Some("false"));
    if defaults_active {
        for d in crate::exclude::DEFAULT_EXCLUDES {
            eff.excludes.push(Setting {
                name: "exclude",
                value: Some(d.to_string()),
                origin: Origin::Default,
            });
        }
    }
    for (e, o) in excludes {
        eff.excludes.push(Setting {
            name: "exclude",
            value: Some(e),
            origin: o,
        });
    }
    for (f, o) in exclude_files {
        eff.excludes.push(Setting {
            name: "exclude_file",
            value: Some(f),
            origin: o,
        });
    }
    Ok(eff)
}

fn setting(name: &'static str, v: Found<String>) -> Setting {
    match v {
        Some((value, origin)) => Setting {
            name,
            value: Some(value),
            origin,
        },
        None => Setting {
            name,
            value: None,
            origin: Origin::Default,
        },
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
