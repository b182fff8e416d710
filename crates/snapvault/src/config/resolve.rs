//! [`resolve`]: one resolver per setting, each filling the parsed command line from the
//! environment and the file where no flag was given, and saying where the value came from.
//! Precedence, lowest first: built-in default < file < environment < command-line flag.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::ArgMatches;
use clap::parser::ValueSource;

use super::{
    EFFECTIVE, Effective, File, Keep, Origin, Profile, Setting, default_path, env, expand,
};
use crate::cli::{Cli, Command, Global};

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
    let (path, file, file_origin) = read_file(g, matches)?;
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
    let (profile_name, profile_origin) = profile_name(g, matches, file.as_ref());
    let empty = Profile::default();
    let layers = Layers::new(file.as_ref(), &profile_name, path.as_deref(), &empty)?;
    eff.profiles = file
        .as_ref()
        .map(|f| f.profiles.keys().cloned().collect())
        .unwrap_or_default();
    eff.profile = profile_name.clone();
    eff.settings.push(Setting {
        name: "profile",
        value: profile_name,
        origin: profile_origin,
    });
    eff.settings.push(repository(g, matches, &layers));
    eff.settings.push(password(g, matches, &layers)?);
    eff.settings.push(device(&mut cli.command, &layers));
    eff.settings.push(compression(&mut cli.command, &layers)?);
    eff.settings.push(keep(&mut cli.command, &layers)?);
    excludes(&mut cli.command, &layers, &mut eff);
    Ok(eff)
}

/// The file: `--config` / `SNAPVAULT_CONFIG` (must exist), else the default location
/// (may be absent).
fn read_file(g: &Global, matches: &ArgMatches) -> Result<(Option<PathBuf>, Option<File>, Origin)> {
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
    Ok((path, file, file_origin))
}

/// The profile: `--profile` / `SNAPVAULT_PROFILE`, else the file's top-level `profile`.
fn profile_name(g: &Global, matches: &ArgMatches, file: Option<&File>) -> (Option<String>, Origin) {
    match (&g.profile, file) {
        (Some(p), _) => (
            Some(p.clone()),
            from_flag_or_env(matches, "profile", "--profile", "SNAPVAULT_PROFILE"),
        ),
        (None, Some(f)) if f.default_profile.is_some() => (
            f.default_profile.clone(),
            Origin::File(format!("{} (top level)", f.path.display())),
        ),
        _ => (None, Origin::Default),
    }
}

/// The file's two layers for this run: the chosen profile's table over the top level.
struct Layers<'a> {
    top: &'a Profile,
    prof: &'a Profile,
    top_where: String,
    prof_where: String,
}

impl<'a> Layers<'a> {
    /// An unknown profile, or a profile asked for without a config file, is an error.
    fn new(
        file: Option<&'a File>,
        profile_name: &Option<String>,
        path: Option<&Path>,
        empty: &'a Profile,
    ) -> Result<Layers<'a>> {
        let Some(f) = file else {
            if let Some(n) = profile_name {
                bail!(
                    "profile {n:?} was asked for, but there is no config file ({})",
                    path.map(|p| p.display().to_string())
                        .unwrap_or_else(|| "no HOME or XDG_CONFIG_HOME".into())
                );
            }
            return Ok(Layers {
                top: empty,
                prof: empty,
                top_where: String::new(),
                prof_where: String::new(),
            });
        };
        let prof = match profile_name {
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
            None => empty,
        };
        let prof_where = match profile_name {
            Some(n) => format!("{} [profiles.{n}]", f.path.display()),
            None => String::new(),
        };
        Ok(Layers {
            top: &f.top,
            prof,
            top_where: format!("{} (top level)", f.path.display()),
            prof_where,
        })
    }

    /// The file's value for a key: the profile's, else the top level's.
    fn pick<T>(&self, get: impl Fn(&Profile) -> Option<T>) -> Found<T> {
        get(self.prof)
            .map(|v| (v, Origin::File(self.prof_where.clone())))
            .or_else(|| get(self.top).map(|v| (v, Origin::File(self.top_where.clone()))))
    }
}

/// `--repo` / `SNAPVAULT_REPOSITORY`, else `repository` in the file.
fn repository(g: &mut Global, matches: &ArgMatches, f: &Layers) -> Setting {
    let repo = match &g.repo {
        Some(r) => Some((
            r.clone(),
            from_flag_or_env(matches, "repo", "--repo", "SNAPVAULT_REPOSITORY"),
        )),
        None => f.pick(|p| p.repository.as_deref().map(expand)),
    };
    if let Some((r, _)) = &repo {
        g.repo = Some(r.clone());
    }
    setting("repository", repo)
}

/// The password: a higher layer that says anything about the password wins as a whole.
fn password(g: &mut Global, matches: &ArgMatches, f: &Layers) -> Result<Setting> {
    let password = if let Some(file) = &g.password_file {
        Some((
            format!("file {}", file.display()),
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
        let (prof, top) = (f.prof, f.top);
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
        if let Some(file_pw) = file_pw {
            g.password_file = Some(PathBuf::from(expand(file_pw)));
            f.pick(|p| {
                p.password_file
                    .as_deref()
                    .map(|f| format!("file {}", expand(f)))
            })
        } else if let Some(c) = cmd_pw {
            g.password_command = Some(c.clone());
            f.pick(|p| p.password_command.as_ref().map(|c| format!("command {c}")))
        } else {
            None
        }
    };
    Ok(match password {
        Some(p) => setting("password", Some(p)),
        None => Setting {
            name: "password",
            value: Some("prompt (on a terminal)".into()),
            origin: Origin::Default,
        },
    })
}

/// The iPhone (UDID) of `snapshot iphone` and `verify-device`: `--device`, else
/// `SNAPVAULT_DEVICE`, else `device` in the file.
fn device(command: &mut Command, f: &Layers) -> Setting {
    let configured = || {
        env("SNAPVAULT_DEVICE")
            .map(|v| (v, Origin::Env("SNAPVAULT_DEVICE".into())))
            .or_else(|| f.pick(|p| p.device.clone()))
    };
    let device_for = |flag: &Option<String>| -> Found<String> {
        match flag {
            Some(u) => Some((u.clone(), Origin::Flag("--device".into()))),
            None => configured(),
        }
    };
    let device = match command {
        Command::Snapshot(a) => {
            let device = device_for(&a.udid);
            let is_iphone = a.paths.len() == 1 && a.paths[0].as_os_str() == "iphone";
            if is_iphone && a.udid.is_none() {
                a.udid = device.as_ref().map(|d| d.0.clone());
            }
            device
        }
        Command::VerifyDevice(a) => {
            let device = device_for(&a.udid);
            a.udid = device.as_ref().map(|d| d.0.clone());
            device
        }
        _ => configured(),
    };
    setting("device", device)
}

/// The zstd level of `init`: `--compression`, else `SNAPVAULT_COMPRESSION`, else
/// `compression` in the file, else the built-in default.
fn compression(command: &mut Command, f: &Layers) -> Result<Setting> {
    let env_level = match env("SNAPVAULT_COMPRESSION") {
        Some(v) => Some((
            v.parse::<i32>()
                .map_err(|_| anyhow!("SNAPVAULT_COMPRESSION={v:?} is not a number (1-22)"))?,
            Origin::Env("SNAPVAULT_COMPRESSION".into()),
        )),
        None => None,
    };
    let mut level = env_level.or_else(|| f.pick(|p| p.compression));
    if let Command::Init(a) = command {
        if let Some(l) = a.compression {
            level = Some((l, Origin::Flag("--compression".into())));
        }
        a.compression = level.as_ref().map(|l| l.0);
    }
    Ok(match level {
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
    })
}

/// The retention policy `forget` uses when it is given no policy and no ids: `keep` in the
/// file.
fn keep(command: &mut Command, f: &Layers) -> Result<Setting> {
    let keep: Found<Keep> = f.pick(|p| p.keep.clone()).filter(|(k, _)| !k.is_empty());
    if let Command::Forget(a) = command {
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
    Ok(setting("keep", keep.map(|(k, o)| (k.describe(), o))))
}

/// Excludes of `snapshot`: they add up (the top level's, the profile's, then the flags');
/// the built-in ones apply unless `--no-default-excludes` or `default_excludes = false`.
/// Pushes the `default_excludes` setting and every exclude.
fn excludes(command: &mut Command, f: &Layers, eff: &mut Effective) {
    let mut excludes: Vec<(String, Origin)> = Vec::new();
    let mut exclude_files: Vec<(String, Origin)> = Vec::new();
    for (p, w) in [(f.top, &f.top_where), (f.prof, &f.prof_where)] {
        for e in p.excludes.iter().flatten() {
            excludes.push((e.clone(), Origin::File(w.clone())));
        }
        for e in p.exclude_files.iter().flatten() {
            exclude_files.push((expand(e), Origin::File(w.clone())));
        }
    }
    let mut defaults_on = f.pick(|p| p.default_excludes);
    if let Command::Snapshot(a) = command {
        for e in &a.exclude {
            excludes.push((e.clone(), Origin::Flag("--exclude".into())));
        }
        for file in &a.exclude_file {
            exclude_files.push((
                file.display().to_string(),
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
    for (file, o) in exclude_files {
        eff.excludes.push(Setting {
            name: "exclude_file",
            value: Some(file),
            origin: o,
        });
    }
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
