//! Opening an encrypted repository: which key files to try, in what order (a planted key
//! file must not cost every command a minute and a gigabyte), and what to do when the
//! config file is damaged (each key file keeps a sealed copy of it).

use crate::error::{KeyError, Remedy, RepoError, Result};
use crate::format::config::Config;
use crate::format::crypto::{Crypto, MasterKey};
use crate::format::keyfile::{KdfParams, KeyFile};
use crate::storage::{Backend, FileKind};

/// A key file whose Argon2id memory or work is more than this many times the repository's
/// own (see [`reference_params`]) is not tried unless named: a 4× margin lets a key made
/// with somewhat stronger settings through, and keeps a planted key at the format's limit
/// (1 GiB, 16 passes: 128× the default's work) from costing more than a few default tries.
pub(crate) const OUT_OF_LINE_FACTOR: u64 = 4;

/// How [`crate::Repository::open_with`] opens a repository.
#[derive(Default)]
pub struct OpenOptions<'a> {
    /// Try only the key file with this name (or unique prefix), whatever its cost.
    pub key: Option<&'a str>,
    /// Told what the user should know: key files not tried, a config read from a copy.
    pub warn: Option<&'a (dyn Fn(&OpenWarning) + Sync)>,
    /// The master key kept on this computer for the repository with this id (`key
    /// remember`), if any. Used instead of the password — no Argon2id — when the config
    /// file's MAC checks with it; otherwise [`OpenWarning::RememberedKeyRefused`] and the
    /// password, as if nothing were remembered (docs/security.md §3).
    pub remembered: Option<&'a RememberedLookup<'a>>,
}

/// Finds the key remembered for a repository id (see [`OpenOptions::remembered`]).
pub type RememberedLookup<'a> = dyn Fn(&str) -> Option<MasterKey> + Sync + 'a;

impl OpenOptions<'_> {
    pub(crate) fn warn(&self, w: OpenWarning) {
        if let Some(f) = self.warn {
            f(&w);
        }
    }
}

/// What opening a repository tells the user. [`OpenWarning::describe`] states the facts;
/// the advice (which command mends it) is the CLI's.
#[derive(Clone, Debug)]
pub enum OpenWarning {
    /// The file `config` is damaged and a key file's copy is in use: applying repair
    /// rewrites the file from it.
    ConfigFromCopy(ConfigDamage),
    /// A key file asks for far more Argon2id than the repository's keys (a planted one?),
    /// so it was not tried; `key` is its name as shown (8 characters), which `--key` takes.
    KeyNotTried {
        key: String,
        asks: KdfParams,
        usual: KdfParams,
    },
    /// The key remembered for the repository with this id does not check against its
    /// config: the repository was replaced, or the config is damaged. Not used.
    RememberedKeyRefused { repository: String },
}

impl OpenWarning {
    pub fn describe(&self) -> String {
        match self {
            OpenWarning::ConfigFromCopy(d) => d.describe(),
            OpenWarning::KeyNotTried { key, asks, usual } => format!(
                "key file {key} asks for {} of Argon2id, far more than this repository's keys \
                 use ({}); it was not tried",
                describe(asks),
                describe(usual)
            ),
            OpenWarning::RememberedKeyRefused { .. } => "the key remembered on this computer \
                does not open this repository (the config's MAC does not check with it: the \
                repository was replaced or made anew, or its config is damaged); it was not \
                used"
                .to_string(),
        }
    }
}

/// The file `config` could not be used; the repository runs on a key file's copy of it.
#[derive(Clone, Debug)]
pub struct ConfigDamage {
    /// The damaged file, for messages (`<location>/config`).
    pub file: String,
    /// Why the file is unusable (missing, not a config, fails its MAC).
    pub reason: String,
    /// The key file whose copy is in use.
    pub copy_in: String,
}

impl ConfigDamage {
    pub fn describe(&self) -> String {
        format!(
            "the repository's config file {} is damaged ({}); using the copy kept in key file {}",
            self.file,
            self.reason,
            short(&self.copy_in)
        )
    }
}

fn short(name: &str) -> &str {
    name.get(..8).unwrap_or(name)
}

/// Memory (KiB) and work (KiB × passes) of a key file's Argon2id parameters.
fn cost(p: &KdfParams) -> (u64, u64) {
    (p.m_kib as u64, p.m_kib as u64 * p.t as u64)
}

fn describe(p: &KdfParams) -> String {
    format!("{} MiB and {} pass(es)", p.m_kib / 1024, p.t)
}

/// The repository's own key parameters: those shared by the most key files; on a tie the
/// cheaper. Planting more key files than the owner has moves it, but the cheapest keys are
/// still tried first, so the right password still opens at the owner's cost.
pub(crate) fn reference_params(files: &[(String, KeyFile)]) -> Option<KdfParams> {
    let mut counts: Vec<(KdfParams, usize)> = Vec::new();
    for (_, f) in files {
        match counts.iter_mut().find(|(p, _)| *p == f.params) {
            Some((_, n)) => *n += 1,
            None => counts.push((f.params, 1)),
        }
    }
    counts
        .into_iter()
        .min_by_key(|(p, n)| (std::cmp::Reverse(*n), cost(p).1, cost(p).0))
        .map(|(p, _)| p)
}

/// Does `p` cost far more than `reference` (memory or work beyond [`OUT_OF_LINE_FACTOR`]×)?
pub(crate) fn out_of_line(p: &KdfParams, reference: &KdfParams) -> bool {
    let (m, w) = cost(p);
    let (rm, rw) = cost(reference);
    m > rm.saturating_mul(OUT_OF_LINE_FACTOR) || w > rw.saturating_mul(OUT_OF_LINE_FACTOR)
}

/// The key file that opened, the master key, and every key file that could be read.
pub(crate) type Unwrapped = (String, MasterKey, Vec<(String, KeyFile)>);

/// The key files to try with a password, chosen before any Argon2id runs (reading them
/// needs no key): every key file that could be read, the positions of those to try in
/// the order to try them, and the first reason one could not be used.
pub(crate) struct Candidates {
    files: Vec<(String, KeyFile)>,
    order: Vec<usize>,
    unusable: Option<RepoError>,
}

/// Choose the key files to try: those in line with the repository's own parameters,
/// cheapest first; the others are skipped with a warning naming them, unless `opts.key`
/// names one. Reads and warns, derives nothing.
pub(crate) fn candidates(backend: &dyn Backend, opts: &OpenOptions) -> Result<Candidates> {
    let names = backend.list(FileKind::Key)?;
    let mut files = Vec::new();
    let mut unusable = None;
    for k in &names {
        match backend
            .read(FileKind::Key, &k.name)
            .and_then(|b| KeyFile::parse(&b))
        {
            Ok(f) => files.push((k.name.clone(), f)),
            Err(e) => {
                unusable.get_or_insert(e);
            }
        }
    }
    let mut order: Vec<usize> = match opts.key {
        Some(prefix) => vec![named(&names, &files, prefix)?],
        None => {
            let reference = reference_params(&files);
            let mut keep = Vec::new();
            for (i, (name, f)) in files.iter().enumerate() {
                match &reference {
                    Some(r) if out_of_line(&f.params, r) => opts.warn(OpenWarning::KeyNotTried {
                        key: short(name).to_string(),
                        asks: f.params,
                        usual: *r,
                    }),
                    _ => keep.push(i),
                }
            }
            keep
        }
    };
    order.sort_by_key(|&i| {
        let (m, w) = cost(&files[i].1.params);
        (w, m, i)
    });
    Ok(Candidates {
        files,
        order,
        unusable,
    })
}

impl Candidates {
    /// Try the chosen key files with `password` in order (Argon2id each), stopping at the
    /// first that opens. Returns the key file used, the master key and every key file that
    /// could be read (for the config copies). Runs on its own thread while a command
    /// starts the work that needs no key ([`crate::repository::pending`]).
    pub(crate) fn unwrap(self, password: &[u8]) -> Result<Unwrapped> {
        let Candidates {
            files,
            order,
            mut unusable,
        } = self;
        // "Wrong password" only if some key could be tried with it; otherwise say why none
        // could (an unreadable or damaged key file is not a forgotten password).
        let mut tried = false;
        for i in order {
            match files[i].1.open(password) {
                Ok(mk) => {
                    let name = files[i].0.clone();
                    return Ok((name, mk, files));
                }
                Err(RepoError::WrongPassword) => tried = true,
                Err(e) => {
                    unusable.get_or_insert(e);
                }
            }
        }
        Err(match unusable {
            Some(e) if !tried => e,
            _ => RepoError::WrongPassword,
        })
    }
}

/// The one key file `--key prefix` names.
fn named(
    names: &[crate::storage::FileInfo],
    files: &[(String, KeyFile)],
    prefix: &str,
) -> Result<usize> {
    let matching: Vec<&str> = names
        .iter()
        .map(|n| n.name.as_str())
        .filter(|n| !prefix.is_empty() && n.starts_with(prefix))
        .collect();
    match matching.as_slice() {
        [] => Err(KeyError::ChosenNoMatch {
            prefix: prefix.to_string(),
        }
        .into()),
        [one] => files.iter().position(|(n, _)| n == one).ok_or_else(|| {
            RepoError::corrupt(format!("key {one}"), "cannot be read or is not a key file")
        }),
        _ => Err(KeyError::ChosenAmbiguous {
            prefix: prefix.to_string(),
            count: matching.len(),
        }
        .into()),
    }
}

/// The config to run with: the file when it is intact, else the first intact copy, the
/// key file that opened the repository's first. `file` is how reading the file went.
pub(crate) fn settle_config(
    crypto: &Crypto,
    location: &str,
    file: Result<Config>,
    opened_with: &str,
    keys: &[(String, KeyFile)],
) -> Result<(Config, Option<ConfigDamage>)> {
    let reason = match file.and_then(|c| c.verify(crypto).map(|()| c)) {
        Ok(c) => return Ok((c, None)),
        Err(RepoError::Auth(_)) => "it fails its MAC: its bytes were changed".to_string(),
        Err(RepoError::NotFound(_)) => "it is missing".to_string(),
        Err(RepoError::ConfigDamaged { reason, .. }) => reason,
        Err(e) => e.to_string(),
    };
    let Crypto::Keyed(master) = crypto else {
        return Err(RepoError::ConfigDamaged { of: None, reason });
    };
    let mut order: Vec<&(String, KeyFile)> = keys.iter().collect();
    order.sort_by_key(|(n, _)| n != opened_with);
    let mut copies = 0;
    for (name, kf) in order {
        let Some(bytes) = kf.config_copy(master) else {
            continue;
        };
        copies += 1;
        let copy = bytes.and_then(|b| Config::parse(&b, &format!("the copy in key file {name}")));
        if let Ok(c) = copy.and_then(|c| c.verify(crypto).map(|()| c)) {
            let damage = ConfigDamage {
                file: format!("{}/config", location.trim_end_matches('/')),
                reason,
                copy_in: name.clone(),
            };
            return Ok((c, Some(damage)));
        }
    }
    let why = match copies {
        0 => "no key file holds a copy of it (key files written before snapvault kept \
              copies have none)"
            .to_string(),
        n => format!("the {n} copies kept in key files are damaged too"),
    };
    Err(RepoError::ConfigDamaged {
        of: None,
        reason: format!("{reason}; {why}"),
    })
}

/// How much a finding of `audit` weighs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Damage: check fails.
    Error,
    Notice,
    /// Could not be read (an I/O or network error): not checked, and not damage.
    NotRead,
}

/// What `check` finds in the key files and the config: (level, object, message, and the
/// step that mends it).
pub type Finding = (Level, String, String, Option<Remedy>);

/// Audit the key files and the config: every key file readable and its MAC intact, every
/// config copy intact and equal to the config in use, the config file itself intact.
pub(crate) fn audit(repo: &crate::Repository) -> Result<Vec<Finding>> {
    let be = repo.backend();
    let mut out: Vec<Finding> = Vec::new();
    if let Some(d) = repo.config_damage() {
        out.push((
            Level::Error,
            "config".into(),
            format!(
                "is damaged ({}); snapvault runs on the copy kept in key file {}",
                d.reason,
                short(&d.copy_in)
            ),
            Some(Remedy::RewriteConfig),
        ));
    }
    let master = match repo.crypto() {
        Crypto::Keyed(k) => Some(k),
        Crypto::Plain => None,
    };
    let mut with_copy = 0;
    let keys = be.list(FileKind::Key)?;
    for k in &keys {
        let object = format!("key {}", k.name);
        let kf = match be
            .read(FileKind::Key, &k.name)
            .and_then(|b| KeyFile::parse(&b))
        {
            Ok(kf) => kf,
            Err(e) if e.is_unavailable() => {
                out.push((
                    Level::NotRead,
                    object,
                    format!("could not be read: {e}"),
                    None,
                ));
                continue;
            }
            Err(e) => {
                out.push((
                    Level::Error,
                    object,
                    format!("unusable: {e}; other keys still work"),
                    None,
                ));
                continue;
            }
        };
        let Some(master) = master else { continue };
        if !kf.verify_mac(master) {
            out.push((
                Level::Error,
                object.clone(),
                "is damaged (its contents changed); other keys still work".into(),
                Some(Remedy::RemoveKey),
            ));
        }
        let copy = match kf.config_copy(master) {
            None => continue,
            Some(c) => c,
        };
        with_copy += 1;
        let copy = copy
            .and_then(|b| Config::parse(&b, "the copy"))
            .and_then(|c| c.verify(repo.crypto()).map(|()| c));
        match copy {
            Err(e) => out.push((
                Level::Error,
                object,
                format!("its copy of the config is damaged ({e})"),
                Some(Remedy::ResealConfigCopy),
            )),
            // Sealed under the master key, so it was this repository's config once: a
            // config change that was interrupted before it reached every key file.
            Ok(c) if &c != repo.config() => out.push((
                Level::Notice,
                object,
                "its copy of the config is out of date (a change of the config was \
                 interrupted)"
                    .into(),
                Some(Remedy::ResealConfigCopy),
            )),
            Ok(_) => {}
        }
    }
    if master.is_some() && with_copy == 0 && !keys.is_empty() {
        out.push((
            Level::Notice,
            "config".into(),
            "no key file holds a copy of it (key files written by older snapvault versions \
             have none), so a damaged config file would lock you out"
                .into(),
            Some(Remedy::WriteKeyWithCopy),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(m_kib: u32, t: u32) -> KdfParams {
        KdfParams { m_kib, t, p: 1 }
    }

    fn files(params: &[KdfParams]) -> Vec<(String, KeyFile)> {
        let mk = MasterKey::generate();
        params
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let mut f = KeyFile::create(&mk, b"pw", p(8, 1)).unwrap();
                f.params = *q;
                (format!("{i:064}"), f)
            })
            .collect()
    }

    #[test]
    fn the_most_common_parameters_are_the_reference_ties_to_the_cheaper() {
        let d = p(65536, 2);
        let huge = p(1 << 20, 16);
        assert_eq!(reference_params(&files(&[d, huge, d])), Some(d));
        assert_eq!(reference_params(&files(&[huge, d])), Some(d));
        assert_eq!(reference_params(&files(&[huge])), Some(huge));
        assert_eq!(reference_params(&[]), None);
        assert!(out_of_line(&huge, &d));
        assert!(out_of_line(&p(65536, 9), &d));
        assert!(!out_of_line(&p(4 * 65536, 2), &d));
        assert!(!out_of_line(&p(32768, 1), &d));
    }
}
