//! `snapvault verify-device`: is it safe to delete the photos from the phone? Every file
//! under /DCIM is read from the phone and compared by content with what the repository
//! holds for this phone (every snapshot of it), and the stored bytes are read back and
//! authenticated before a file is called safe. `--also REPO2` asks the same of a second
//! repository (an off-site copy): a file is safe only when both hold it.

mod matcher;
mod report;
mod stored;

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use anyhow::{Context, Result, anyhow, bail};
use snapvault_repo::readback::{self, Failure, ReadBack};
use snapvault_repo::{BlobId, Repository};

use super::Ctx;
use crate::cli::VerifyDeviceArgs;
use crate::iphone::IphoneSource;
use matcher::Matcher;
use stored::{Lookup, Stored, Version};

/// Exit code when not every file on the phone is safely in the repository (or repositories).
pub const NOT_ALL_SAFE: i32 = 5;

/// Bytes read from the phone at a time.
const READ_BUF: usize = 1 << 20;

/// How one repository stands on one phone file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Holds exactly the phone's content, read back intact (or, with --quick, indexed).
    Holds,
    Missing,
    Differs,
    Damaged(String),
    /// The stored copy could not be read back (an I/O or network error).
    Unverified(String),
}

/// One file of the phone and what each repository says about it.
pub struct FileResult {
    pub path: String,
    /// `Err`: the phone could not hand the file over.
    pub verdicts: Result<Vec<Verdict>, String>,
}

/// Before the stored bytes are read back: the version that matched, or why none did.
enum Found<'a> {
    Version(&'a Version),
    Missing,
    Differs,
    Unindexed(BlobId),
}

pub fn run(ctx: &Ctx, a: VerifyDeviceArgs) -> Result<i32> {
    let primary = ctx.open()?;
    let mut repos = vec![primary];
    if let Some(loc) = &a.also {
        let second = open_also(loc, &a)?;
        if second.config().id == repos[0].config().id {
            bail!(
                "--also {loc} is the same repository as {} (the same repository id): name your other backup",
                repos[0].backend().location()
            );
        }
        repos.push(second);
    }
    let device = crate::iphone::connect(a.udid.as_deref())?;
    let phone = IphoneSource::new(device)?;
    let source = phone.snapshot_source();
    // The phone's own list of its photos: which ones are not on it at all (only in iCloud).
    let library = crate::library::read_phone(&phone);
    if let Err(why) = &library
        && !phone.database.is_empty()
    {
        eprintln!(
            "warning: the Photos library database could not be read ({why}): photos kept only in iCloud cannot be listed"
        );
    }
    let stored: Vec<Stored> = repos
        .into_iter()
        .map(|r| Stored::load(ctx, r, &source, a.snapshot.as_deref()))
        .collect::<Result<_>>()?;
    for w in stored.iter().flat_map(|s| &s.warnings) {
        eprintln!("warning: {w}");
    }
    let files: Vec<(String, u64)> = phone.media_files().map(|(p, e)| (p, e.size)).collect();

    // Every chunk of every stored version the phone's files could be: read back (or
    // looked up, with --quick) while the phone is read.
    let wanted: Vec<HashSet<BlobId>> = stored
        .iter()
        .map(|st| {
            let mut w = HashSet::new();
            for (path, size) in &files {
                if let Lookup::Candidates(vs) = st.lookup(path, *size) {
                    w.extend(vs.iter().flat_map(|v| v.content.iter().copied()));
                }
            }
            w
        })
        .collect();
    let stop = AtomicBool::new(false);
    let threads = (super::io_threads() / stored.len()).max(2);
    let (found, checked) = std::thread::scope(|s| {
        let readers: Vec<_> = stored
            .iter()
            .zip(&wanted)
            .map(|(st, w)| {
                let stop = &stop;
                s.spawn(move || -> Result<ReadBack> {
                    if a.quick {
                        return Ok(ReadBack {
                            failed: st.quick_check(w.iter().copied())?,
                            ..Default::default()
                        });
                    }
                    readback::read_back(&st.repo, &st.index, w.iter().copied(), threads, stop)
                        .with_context(|| format!("reading back from {}", st.location))
                })
            })
            .collect();
        let found = compare_phone(&phone, &files, &stored);
        if found.is_err() {
            stop.store(true, Relaxed);
        }
        let checked: Result<Vec<ReadBack>> = readers
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow!("reading the repository back failed unexpectedly"))?
            })
            .collect();
        (found, checked)
    });
    let found = found?;
    let checked = checked?;

    let results: Vec<FileResult> = found
        .into_iter()
        .map(|(path, per_repo)| FileResult {
            path,
            verdicts: per_repo.map(|v| {
                v.into_iter()
                    .zip(&checked)
                    .map(|(f, rb)| settle(f, &rb.failed))
                    .collect()
            }),
        })
        .collect();
    let all_safe = report::print(ctx, &a, &source, &stored, &checked, &results, &library)?;
    Ok(if all_safe { 0 } else { NOT_ALL_SAFE })
}

/// The final verdict of one repository on one file, once its stored bytes were checked.
fn settle(found: Found<'_>, failed: &HashMap<BlobId, Failure>) -> Verdict {
    match found {
        Found::Missing => Verdict::Missing,
        Found::Differs => Verdict::Differs,
        Found::Unindexed(id) => Verdict::Damaged(format!(
            "chunk {} of it is not in the repository's index",
            id.short()
        )),
        Found::Version(v) => match v.content.iter().find_map(|id| failed.get(id)) {
            None => Verdict::Holds,
            Some(Failure::Damaged(why)) => Verdict::Damaged(why.clone()),
            Some(Failure::Unread(why)) => Verdict::Unverified(why.clone()),
        },
    }
}

type Compared<'a> = Vec<(String, Result<Vec<Found<'a>>, String>)>;

/// Read each file from the phone once and compare it with every candidate version in every
/// repository. An error here (the phone went away) ends the command: never a verdict on a
/// file that was not read.
fn compare_phone<'a>(
    phone: &IphoneSource,
    files: &[(String, u64)],
    stored: &'a [Stored],
) -> Result<Compared<'a>> {
    let mut buf = vec![0u8; READ_BUF];
    let mut out = Vec::with_capacity(files.len());
    for (path, size) in files {
        let lookups: Vec<Lookup<'a>> = stored.iter().map(|s| s.lookup(path, *size)).collect();
        // (repository, matcher) for every version that can be compared.
        let mut racing: Vec<(usize, Matcher<'a>)> = Vec::new();
        for (r, l) in lookups.iter().enumerate() {
            if let Lookup::Candidates(vs) = l {
                racing.extend(
                    vs.iter()
                        .filter_map(|v| Matcher::new(stored[r].repo.crypto(), v))
                        .map(|m| (r, m)),
                );
            }
        }
        let mut reader = match phone.device.open(path) {
            Ok(r) => r,
            Err(e) if !e.is_fatal() => {
                out.push((path.clone(), Err(e.to_string())));
                continue;
            }
            Err(e) => return Err(e).context("reading from the iPhone"),
        };
        let mut unreadable = None;
        while racing.iter().any(|(_, m)| m.alive()) {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let data = buf.get(..n).unwrap_or_default();
                    for (_, m) in racing.iter_mut() {
                        m.feed(data);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if snapvault_source::SourceError::from_io(&e).is_some_and(|s| s.is_fatal()) {
                        return Err(e).context("reading from the iPhone");
                    }
                    unreadable = Some(e.to_string());
                    break;
                }
            }
        }
        drop(reader);
        if let Some(e) = unreadable {
            out.push((path.clone(), Err(e)));
            continue;
        }
        let per_repo = lookups
            .iter()
            .enumerate()
            .map(|(r, l)| match l {
                Lookup::Missing => Found::Missing,
                Lookup::OtherContent => Found::Differs,
                Lookup::Candidates(vs) => {
                    if let Some((_, m)) = racing.iter().find(|(rr, m)| *rr == r && m.matched()) {
                        return Found::Version(m.version);
                    }
                    // No comparable version matched; one that could not be compared may
                    // be the phone's: that is damage, not "differs".
                    match vs.iter().filter(|v| v.lens.is_none()).find_map(|v| {
                        v.content
                            .iter()
                            .find(|id| !stored[r].index.contains(id))
                            .copied()
                    }) {
                        Some(id) => Found::Unindexed(id),
                        None => Found::Differs,
                    }
                }
            })
            .collect();
        out.push((path.clone(), Ok(per_repo)));
    }
    Ok(out)
}

/// The second repository of `--also`, opened as `copy` opens its destination (its own
/// password, the same errors and downgrade rule).
fn open_also(location: &str, a: &VerifyDeviceArgs) -> Result<Repository> {
    let second = super::second::Second {
        location,
        password_file: a.password_file2.clone(),
        password_command: a.password_command2.clone(),
        role: "second repository (--also)",
    };
    super::second::open(second, Ok)
}
