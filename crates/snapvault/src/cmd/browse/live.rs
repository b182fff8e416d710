//! The server's view of the repository, kept current: before each page it lists the
//! repository's `snapshots` folder (one directory listing, or one LIST request on remote
//! storage) and looks at the damage list's time and length (one `stat` in the cache
//! folder), and when either changed — a snapshot taken, forgotten or pruned, or a `check`
//! that found (or cleared) damage while the server runs — it loads the index again, brings
//! the catalog up to date and makes a new [`Library`], then answers from that one. Requests
//! already running keep the view they started with; thumbnails and originals use the
//! current view without looking.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use snapvault_catalog::Catalog;
use snapvault_repo::backend::FileKind;
use snapvault_repo::index::Index;
use snapvault_repo::{Repository, SnapshotId};

use super::library::{Counts, Library};

pub struct Live {
    repo: Arc<Repository>,
    /// `--snapshot`: the one shown, whatever else arrives.
    snapshots: Option<Vec<SnapshotId>>,
    /// `-v`: say how long each new view took to make.
    verbose: bool,
    /// What the current view was made from (held while a new one is made, so two pages
    /// arriving together make it once).
    seen: Mutex<Seen>,
    current: RwLock<Arc<Library>>,
}

/// What a view was made from: the repository's snapshot names and the damage list's stamp.
#[derive(PartialEq, Eq)]
struct Seen {
    names: Vec<String>,
    damage: Option<(std::time::SystemTime, u64)>,
}

impl Seen {
    fn now(repo: &Repository) -> Result<Seen> {
        Ok(Seen {
            names: snapshot_names(repo)?,
            damage: crate::damage::stamp(&repo.config().id),
        })
    }
}

/// The names in the repository's `snapshots` folder, sorted.
fn snapshot_names(repo: &Repository) -> Result<Vec<String>> {
    let mut names: Vec<String> = repo
        .backend()
        .list(FileKind::Snapshot)
        .context("listing the repository's snapshots")?
        .into_iter()
        .map(|f| f.name)
        .collect();
    names.sort_unstable();
    Ok(names)
}

impl Live {
    /// The first view, with its timeline made (so the first page is quick and a catalog
    /// that cannot answer fails at start).
    pub fn start(
        repo: Arc<Repository>,
        index: Index,
        catalog: Catalog,
        snapshots: Option<Vec<SnapshotId>>,
        verbose: bool,
    ) -> Result<Live> {
        // Before the view is made: a check finishing meanwhile shows on the next page.
        let seen = Seen::now(&repo)?;
        let (start, cpu) = (Instant::now(), thread_cpu_ms());
        let lib = Library::new(repo.clone(), index, catalog, snapshots.clone())?;
        let rows = lib.timeline()?.all.values().map(Counts::total).sum::<u64>();
        if verbose {
            eprintln!(
                "browse: timeline of {rows} photos and videos made in {:.1} ms{}",
                start.elapsed().as_secs_f64() * 1000.0,
                cpu_note(cpu)
            );
        }
        Ok(Live {
            repo,
            snapshots,
            verbose,
            seen: Mutex::new(seen),
            current: RwLock::new(Arc::new(lib)),
        })
    }

    /// The current view, as it is (for thumbnails and originals: a photo's bytes do not
    /// change when snapshots arrive).
    pub fn get(&self) -> Result<Arc<Library>> {
        self.current.read().map(|l| l.clone()).map_err(|_| {
            anyhow!("the server's view of the repository is unusable after an earlier failure")
        })
    }

    /// The view for a page: made again first if the repository's snapshots or the damage
    /// list changed.
    pub fn fresh(&self) -> Result<Arc<Library>> {
        let now = Seen::now(&self.repo)?;
        let mut seen = self.seen.lock().map_err(|_| {
            anyhow!("the server's view of the repository is unusable after an earlier failure")
        })?;
        if *seen == now {
            return self.get();
        }
        let start = Instant::now();
        let index = self.repo.load_index()?.index;
        let catalog = crate::catalog::open_synced(&self.repo, &index, self.verbose)?;
        let synced = start.elapsed();
        let cpu = thread_cpu_ms();
        let lib = Library::new(self.repo.clone(), index, catalog, self.snapshots.clone())?;
        lib.timeline()?;
        if self.verbose {
            eprintln!(
                "browse: the snapshots or the damage list changed; index and catalog read again in {:.1} ms, timeline made in {:.1} ms{}",
                synced.as_secs_f64() * 1000.0,
                (start.elapsed() - synced).as_secs_f64() * 1000.0,
                cpu_note(cpu)
            );
        }
        let lib = Arc::new(lib);
        let mut cur = self.current.write().map_err(|_| {
            anyhow!("the server's view of the repository is unusable after an earlier failure")
        })?;
        *cur = lib.clone();
        *seen = now;
        Ok(lib)
    }
}

/// CPU time of the calling thread so far, in ms (for `-v`; wall time on a busy machine
/// says little).
#[cfg(unix)]
fn thread_cpu_ms() -> Option<f64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0;
    ok.then(|| ts.tv_sec as f64 * 1000.0 + ts.tv_nsec as f64 / 1e6)
}

#[cfg(not(unix))]
fn thread_cpu_ms() -> Option<f64> {
    None
}

/// `(CPU 47.9 ms)` since `before`, or nothing where it is not known.
fn cpu_note(before: Option<f64>) -> String {
    match (before, thread_cpu_ms()) {
        (Some(a), Some(b)) => format!(" (CPU {:.1} ms)", b - a),
        _ => String::new(),
    }
}
