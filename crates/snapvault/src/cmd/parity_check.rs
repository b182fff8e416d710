//! Parity in `check` and `repair` (docs/format.md §15.4): every group read and compared
//! with its shard hashes; damaged files sorted into "repairable from parity" and "lost";
//! with `repair --apply`, repaired files written back atomically (new file, sync, rename)
//! and each repair logged. Works without the password: parity files are plain.

use std::collections::HashSet;

use anyhow::Result;
use serde::Serialize;
use snapvault_repo::backend::{Backend, FileKind};
use snapvault_repo::config::Config;
use snapvault_repo::parity::store::{self, Loaded};
use snapvault_repo::parity::{MemberKind, MemberState};
use snapvault_repo::text::short_name;

/// A damaged file and how many of its 4 KiB sectors (shards) are damaged.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub kind: &'static str,
    pub name: String,
    pub damaged_sectors: usize,
}

/// "pack 3f2a… (2 damaged 4 KiB sector(s))": how `check` and `repair` name a finding.
impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} ({} damaged 4 KiB sector(s))",
            self.kind, self.name, self.damaged_sectors
        )
    }
}

/// What parity protects and, after a read pass, what it found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ParityStatus {
    /// The configured level in percent (0: none).
    pub level: u8,
    pub parity_files: usize,
    pub parity_bytes: u64,
    pub files_protected: usize,
    pub bytes_protected: u64,
    pub files_unprotected: usize,
    /// Every group was read in this run.
    pub verified_now: bool,
    /// Unix time of the last complete read of every group (local state), if any.
    pub last_verified: Option<i64>,
    pub repairable: Vec<Finding>,
    pub repaired: Vec<Finding>,
    pub lost: Vec<Finding>,
    /// Parity files with damaged recovery data or header copy (rewritten by repair).
    pub parity_files_damaged: Vec<String>,
    /// Parity files whose header cannot be used at all.
    pub parity_files_unreadable: Vec<String>,
}

impl ParityStatus {
    pub fn is_active(&self) -> bool {
        self.level > 0 || self.parity_files > 0
    }
    /// Damage that parity found (repairable or not).
    pub fn damage(&self) -> usize {
        self.repairable.len() + self.lost.len()
    }
}

pub fn kind_name(k: MemberKind) -> &'static str {
    match k {
        MemberKind::Config => "config",
        MemberKind::Key => "key",
        MemberKind::Snapshot => "snapshot",
        MemberKind::Index => "index",
        MemberKind::Pack => "pack",
    }
}

/// The member kind [`kind_name`] names `name`.
pub fn kind_named(name: &str) -> Option<MemberKind> {
    [
        MemberKind::Config,
        MemberKind::Key,
        MemberKind::Snapshot,
        MemberKind::Index,
        MemberKind::Pack,
    ]
    .into_iter()
    .find(|k| kind_name(*k) == name)
}

/// Read what parity covers; with `read`, verify every group; with `apply`, also write back
/// what it can rebuild. `log` gets one line per repair. `trusted` is the level of the
/// config the repository opened with (its MAC checked, else a key file's sealed copy):
/// the config file itself may be what is damaged, even in its `parity` field; without
/// it (the repository does not open) the parity files are looked at whatever the file says.
/// `intact_packs`: packs read whole just before and found intact (check's
/// read pass), not read again unless a band needs them to rebuild damage.
pub fn scan(
    be: &dyn Backend,
    trusted: Option<u8>,
    read: bool,
    apply: bool,
    intact_packs: &HashSet<String>,
    log: &mut dyn FnMut(String),
) -> Result<ParityStatus> {
    let level = trusted.or_else(|| {
        be.read(FileKind::Config, "config")
            .ok()
            .and_then(|b| Config::parse(&b, &be.location()).ok())
            .map(|c| c.parity)
    });
    let mut st = ParityStatus {
        level: level.unwrap_or(0),
        ..ParityStatus::default()
    };
    // No parity configured: nothing to list.
    if trusted == Some(0) {
        return Ok(st);
    }
    let (all, bad) = store::load(be)?;
    st.parity_files_unreadable = bad.into_iter().map(|(n, _)| n).collect();
    let (live, _superseded) = store::live(all);
    let files = store::current_files(be)?;
    let mut covered = HashSet::new();
    for l in &live {
        st.parity_files += 1;
        st.parity_bytes += l.size;
        for m in &l.header.members {
            if covered.insert((m.kind, m.name.clone())) {
                st.bytes_protected += m.size;
            }
        }
    }
    st.files_protected = covered.len();
    st.files_unprotected = files.keys().filter(|f| !covered.contains(*f)).count();
    if !read {
        return Ok(st);
    }
    let mut reported = HashSet::new();
    for l in &live {
        verify_one(
            be,
            l,
            (&files, intact_packs),
            apply,
            log,
            &mut st,
            &mut reported,
        )?;
    }
    st.verified_now = true;
    Ok(st)
}

fn verify_one(
    be: &dyn Backend,
    l: &Loaded,
    (files, intact_packs): (
        &std::collections::HashMap<(MemberKind, String), u64>,
        &HashSet<String>,
    ),
    apply: bool,
    log: &mut dyn FnMut(String),
    st: &mut ParityStatus,
    reported: &mut HashSet<(MemberKind, String)>,
) -> Result<()> {
    let r = store::verify_group_after(be, l, files, intact_packs)?;
    let mut all_fixed = true;
    for (m, state) in l.header.members.iter().zip(r.members) {
        let key = (m.kind, m.name.clone());
        let finding = |damaged| Finding {
            kind: kind_name(m.kind),
            name: m.name.clone(),
            damaged_sectors: damaged,
        };
        match state {
            MemberState::Intact => {}
            MemberState::Repaired {
                damaged_shards,
                bytes,
            } => {
                if !reported.insert(key) {
                    continue;
                }
                if apply {
                    write_back(be, m.kind.file_kind(), &m.name, &bytes)?;
                    let f = finding(damaged_shards);
                    log(format!(
                        "repaired from parity: {f}, from parity file {}",
                        short_name(&l.name)
                    ));
                    st.repaired.push(f);
                } else {
                    st.repairable.push(finding(damaged_shards));
                }
            }
            MemberState::Lost { damaged_shards } => {
                all_fixed = false;
                if reported.insert(key) {
                    st.lost.push(finding(damaged_shards));
                }
            }
        }
    }
    if r.recovery_damaged > 0 || !l.both_copies {
        st.parity_files_damaged.push(l.name.clone());
        if apply && all_fixed {
            rewrite_parity(be, l, st.level)?;
            log(format!(
                "rewrote parity file {} ({} damaged recovery sector(s){})",
                l.name,
                r.recovery_damaged,
                if l.both_copies {
                    ""
                } else {
                    ", a damaged header copy"
                }
            ));
        }
    }
    Ok(())
}

/// A damaged parity file whose group, its members repaired, computes to other parity than
/// the file recorded: it is kept as it is (the hint names the way on, see exit.rs).
#[derive(Debug)]
pub struct NotRewritten {
    pub parity: String,
    /// The repository's parity level.
    pub level: u8,
}

impl std::fmt::Display for NotRewritten {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "parity file {}: its group no longer reads as recorded; not rewritten",
            self.parity
        )
    }
}

impl std::error::Error for NotRewritten {}

/// Put `bytes` in place of a damaged or missing file: a new file, synced, renamed over the
/// old one where the storage can (a local folder); remote storage removes, then writes.
fn write_back(be: &dyn Backend, kind: FileKind, name: &str, bytes: &[u8]) -> Result<()> {
    if be.exists(kind, name)? {
        be.replace(kind, name, bytes)?;
    } else {
        be.write(kind, name, bytes)?;
    }
    Ok(())
}

/// Compute a group's parity again from its (now intact) members: the same bytes, so the
/// same name; it replaces the damaged file. When they read otherwise, the way on is to
/// compute every group's parity anew at the repository's `level`.
fn rewrite_parity(be: &dyn Backend, l: &Loaded, level: u8) -> Result<()> {
    let members: Vec<(MemberKind, String, u64)> = l
        .header
        .members
        .iter()
        .map(|m| (m.kind, m.name.clone(), m.size))
        .collect();
    let specs: Vec<_> = members
        .iter()
        .map(|(kind, name, size)| snapvault_repo::parity::MemberSpec {
            kind: *kind,
            name: name.clone(),
            size: *size,
        })
        .collect();
    let (id, bytes) = snapvault_repo::parity::encode(
        l.header.percent,
        l.header.supersedes.clone(),
        &specs,
        |i, off, len| {
            let (kind, name, _) = &members[i];
            be.read_range(kind.file_kind(), name, off, len)
        },
    )?;
    if id.to_hex() == l.name {
        be.replace(FileKind::Parity, &l.name, &bytes)?;
    } else {
        // Members read differently from what the parity recorded: keep the old file.
        return Err(NotRewritten {
            parity: short_name(&l.name).to_string(),
            level,
        }
        .into());
    }
    Ok(())
}

/// The text lines `check` prints about parity.
pub fn describe(st: &ParityStatus) -> Vec<String> {
    let mut out = Vec::new();
    if !st.is_active() {
        return out;
    }
    let when = st.last_verified.map_or("never".to_string(), |t| {
        snapvault_repo::text::prefix(&snapvault_repo::time::format_utc(t), 10).to_string()
    });
    out.push(format!(
        "parity: {} %, {} file(s) ({}) protected by {} parity file(s) ({}); all parity last \
         verified: {when}",
        st.level,
        st.files_protected,
        crate::fmt::size(st.bytes_protected),
        st.parity_files,
        crate::fmt::size(st.parity_bytes),
    ));
    if st.files_unprotected > 0 {
        out.push(format!(
            "parity: {} file(s) not protected yet (the next snapshot or `snapvault parity set \
             {}` covers them)",
            st.files_unprotected, st.level
        ));
    }
    out.extend(
        st.repairable
            .iter()
            .map(|f| format!("repairable from parity: {f}")),
    );
    out.extend(
        st.lost
            .iter()
            .map(|f| format!("lost (beyond what parity repairs): {f}")),
    );
    for n in &st.parity_files_damaged {
        out.push(format!(
            "parity file {n} is damaged (its group is still checked; `snapvault repair --apply` \
             rewrites it)"
        ));
    }
    for n in &st.parity_files_unreadable {
        out.push(format!(
            "parity file {n} cannot be used (neither header copy is intact): `snapvault parity \
             set {}` rebuilds parity",
            st.level
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use snapvault_repo::backend::LocalBackend;

    use super::*;

    /// A damaged parity file whose group computes to other parity (a member rewritten
    /// since) is kept, and the error names the way on. Before: no next step.
    #[test]
    fn a_parity_file_that_cannot_be_rewritten_names_the_next_step() {
        let dir = tempfile::tempdir().unwrap();
        let be = LocalBackend::new(dir.path());
        let names: Vec<String> = (1..=3u8).map(|i| format!("{i:02x}").repeat(32)).collect();
        for (i, n) in names.iter().enumerate() {
            be.write(FileKind::Pack, n, &vec![i as u8; 10_000]).unwrap();
        }
        let members: Vec<_> = names
            .iter()
            .map(|n| (MemberKind::Pack, n.clone(), 10_000))
            .collect();
        let (name, size) = store::write_group(&be, 5, &members, Vec::new()).unwrap();
        let l = store::load_one(&be, &name, size).unwrap();
        be.replace(FileKind::Pack, &names[0], &[9u8; 10_000])
            .unwrap();
        let e = rewrite_parity(&be, &l, 5).unwrap_err();
        let hint = crate::exit::hint(&e).unwrap_or_default();
        assert!(
            hint.contains("`snapvault parity set 5`"),
            "{e:#}: hint {hint:?}"
        );
    }
}
