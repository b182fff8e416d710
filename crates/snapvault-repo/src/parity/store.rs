//! Parity on a repository's storage (format.md §15.5): reading parity files through a
//! [`Backend`], covering files no parity covers yet, and replacing groups whose members a
//! command deleted on purpose. Commands call [`sync`] after their last write.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::Arc;

use super::encode::{MemberSpec, encode};
use super::header::{MemberKind, ParityHeader, parity_file_header};
use super::repair::{GroupSource, MemberState, RepairReport, repair_known};
use super::{MAX_MEMBERS, SHARD, layout, rows_of};
use crate::error::{RepoError, Result};
use crate::format::id::Id;
use crate::storage::{Backend, FileKind};

/// A parity file whose header was read.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub name: String,
    pub header: ParityHeader,
    /// Offset of the recovery shards.
    pub data_at: u64,
    /// Both header copies match the name (else one is damaged).
    pub both_copies: bool,
    pub size: u64,
}

/// A parity file whose header cannot be used: (name, reason).
pub type Unreadable = (String, String);

/// Every parity file: those whose header reads, and those that do not.
pub fn load(be: &dyn Backend) -> Result<(Vec<Loaded>, Vec<Unreadable>)> {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for f in be.list(FileKind::Parity)? {
        match load_one(be, &f.name, f.size) {
            Ok(l) => ok.push(l),
            Err(e) => bad.push((f.name, e.to_string())),
        }
    }
    Ok((ok, bad))
}

/// [`load`], taking the headers of `known` files (this process wrote them, so it has their
/// bytes) as they are when a file of that name and size is listed, instead of reading them
/// back: written with direct I/O, they would come from the disk.
pub fn load_known(be: &dyn Backend, known: Vec<Loaded>) -> Result<(Vec<Loaded>, Vec<Unreadable>)> {
    let mut known: HashMap<String, Loaded> =
        known.into_iter().map(|l| (l.name.clone(), l)).collect();
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for f in be.list(FileKind::Parity)? {
        if let Some(l) = known.remove(&f.name).filter(|l| l.size == f.size) {
            ok.push(l);
            continue;
        }
        match load_one(be, &f.name, f.size) {
            Ok(l) => ok.push(l),
            Err(e) => bad.push((f.name, e.to_string())),
        }
    }
    Ok((ok, bad))
}

/// The header of parity file `name` of `size` bytes.
pub fn load_one(be: &dyn Backend, name: &str, size: u64) -> Result<Loaded> {
    let read = |o: u64, l: usize| be.read_range(FileKind::Parity, name, o, l).ok();
    let (header, data_at, both_copies) = parity_file_header(name, size, read)?;
    Ok(Loaded {
        name: name.to_string(),
        header,
        data_at,
        both_copies,
        size,
    })
}

/// Split into the parity files in force and those another one supersedes.
pub fn live(all: Vec<Loaded>) -> (Vec<Loaded>, Vec<Loaded>) {
    let superseded: HashSet<String> = all
        .iter()
        .flat_map(|l| l.header.supersedes.iter().map(Id::to_hex))
        .collect();
    all.into_iter().partition(|l| !superseded.contains(&l.name))
}

/// The repository's files parity covers: (kind, name) → size.
pub fn current_files(be: &dyn Backend) -> Result<HashMap<(MemberKind, String), u64>> {
    let mut out = HashMap::new();
    for kind in [
        MemberKind::Config,
        MemberKind::Key,
        MemberKind::Snapshot,
        MemberKind::Index,
        MemberKind::Pack,
    ] {
        for f in be.list(kind.file_kind())? {
            out.insert((kind, f.name), f.size);
        }
    }
    Ok(out)
}

/// A group's members and parity file, read from a backend. A read that fails is retried
/// one shard at a time, so one unreadable sector erases one shard, not the whole range.
pub struct BackendGroup<'a> {
    pub be: &'a dyn Backend,
    pub parity: &'a Loaded,
    pub sizes: &'a HashMap<(MemberKind, String), u64>,
}

impl BackendGroup<'_> {
    fn read(&self, kind: FileKind, name: &str, offset: u64, len: usize) -> Option<Vec<u8>> {
        match self.be.read_range(kind, name, offset, len) {
            Ok(b) => Some(b),
            Err(RepoError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => None,
            Err(_) => {
                let mut out = Vec::with_capacity(len);
                let mut at = 0;
                while at < len {
                    let n = SHARD.min(len - at);
                    match self.be.read_range(kind, name, offset + at as u64, n) {
                        Ok(b) if b.len() == n => out.extend_from_slice(&b),
                        // Zeros: the shard's hash will not match, so it is erased.
                        _ => out.resize(out.len() + n, 0),
                    }
                    at += n;
                }
                Some(out)
            }
        }
    }
}

impl GroupSource for BackendGroup<'_> {
    fn member_size(&mut self, member: usize) -> Option<u64> {
        let m = self.parity.header.members.get(member)?;
        self.sizes.get(&(m.kind, m.name.clone())).copied()
    }
    fn read_member(&mut self, member: usize, offset: u64, len: usize) -> Option<Vec<u8>> {
        let m = self.parity.header.members.get(member)?;
        self.member_size(member)?;
        self.read(m.kind.file_kind(), &m.name, offset, len)
    }
    fn read_recovery(&mut self, first: u64, shards: usize) -> Option<Vec<u8>> {
        let at = self.parity.data_at + first * SHARD as u64;
        self.read(FileKind::Parity, &self.parity.name, at, shards * SHARD)
    }
}

/// Check a group against its parity (every shard read and hashed).
pub fn verify_group(
    be: &dyn Backend,
    parity: &Loaded,
    sizes: &HashMap<(MemberKind, String), u64>,
) -> Result<RepairReport> {
    verify_group_after(be, parity, sizes, &HashSet::new())
}

/// [`verify_group`] after a pass that read packs whole and found their BLAKE3 equal to
/// their name (`check --read-data`): such a pack is, byte for byte, what the parity
/// recorded when the parity names it with that hash and its size, so its shards need not
/// be read again unless a band has damage to decode. Each pack is then read once.
pub fn verify_group_after(
    be: &dyn Backend,
    parity: &Loaded,
    sizes: &HashMap<(MemberKind, String), u64>,
    intact_packs: &HashSet<String>,
) -> Result<RepairReport> {
    let known: Vec<bool> = parity
        .header
        .members
        .iter()
        .map(|m| {
            m.kind == MemberKind::Pack
                && intact_packs.contains(&m.name)
                && hex::encode(m.hash) == m.name
                && sizes.get(&(m.kind, m.name.clone())) == Some(&m.size)
        })
        .collect();
    repair_known(
        &parity.header,
        &mut BackendGroup { be, parity, sizes },
        &known,
    )
}

/// Compute and store the parity file of `members`; returns its name and size.
pub fn write_group(
    be: &dyn Backend,
    percent: u8,
    members: &[(MemberKind, String, u64)],
    supersedes: Vec<Id>,
) -> Result<(String, u64)> {
    write_group_from(be, percent, members, supersedes, &|_| None)
}

/// Where the bytes of a pack just written are still in memory (by name), if they are.
pub type Held<'a> = &'a (dyn Fn(&str) -> Option<Arc<Vec<u8>>> + Sync);

/// [`write_group`], taking the packs `held` has in memory from there instead of reading
/// them back.
pub fn write_group_from(
    be: &dyn Backend,
    percent: u8,
    members: &[(MemberKind, String, u64)],
    supersedes: Vec<Id>,
    held: Held<'_>,
) -> Result<(String, u64)> {
    let specs = MemberSpec::from_listed(members);
    let held: Vec<Option<Arc<Vec<u8>>>> = members
        .iter()
        .map(|(kind, name, size)| {
            (*kind == MemberKind::Pack)
                .then(|| held(name))
                .flatten()
                .filter(|b| b.len() as u64 == *size)
        })
        .collect();
    let (id, bytes) = encode(percent, supersedes, &specs, |i, off, len| {
        if let Some(b) = held.get(i).and_then(Option::as_ref) {
            let at = off as usize;
            if let Some(part) = b.get(at..at + len) {
                return Ok(Cow::Borrowed(part));
            }
        }
        let (kind, name, _) = &members[i];
        be.read_range(kind.file_kind(), name, off, len)
            .map(Cow::Owned)
    })?;
    let name = id.to_hex();
    match be.write(FileKind::Parity, &name, &bytes) {
        // The same group at the same level: the same bytes are there already.
        Ok(()) | Err(RepoError::FileExists(_)) => {}
        Err(e) => return Err(e),
    }
    Ok((name, bytes.len() as u64))
}

/// What [`sync`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub groups_written: usize,
    pub files_covered: usize,
    pub parity_removed: usize,
    pub bytes_written: u64,
    /// Groups left as they were because a member is damaged (repair first).
    pub groups_kept_damaged: Vec<KeptGroup>,
}

/// A group [`sync`] kept as it was for a damaged member: the facts the binary turns into
/// the command that resolves it (advice lives in the binary).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptGroup {
    /// The parity file's name.
    pub parity: String,
    /// The member, as the user reads it (`pack 1a2b3c4d`).
    pub member: String,
    pub state: KeptState,
}

/// The state of a kept group's damaged member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeptState {
    /// Damaged or missing, and parity rebuilds it.
    Rebuildable,
    /// Missing, beyond what parity rebuilds.
    MissingBeyond,
    /// Damaged beyond what parity rebuilds, and still present.
    DamagedBeyond,
}

impl KeptState {
    pub fn describe(self) -> &'static str {
        match self {
            KeptState::Rebuildable => "damaged (parity rebuilds it)",
            KeptState::MissingBeyond => "missing, beyond what parity rebuilds",
            KeptState::DamagedBeyond => "damaged beyond what parity rebuilds",
        }
    }
}

/// What [`sync`] notes of a group it keeps for its damaged `member`: the member and its
/// state (the binary names the command that resolves each state).
fn kept_group(
    l: &Loaded,
    member: &super::header::Member,
    state: &MemberState,
    files: &HashMap<(MemberKind, String), u64>,
) -> KeptGroup {
    use crate::format::text::short_name;
    let present = files.contains_key(&(member.kind, member.name.clone()));
    let state = match state {
        MemberState::Repaired { .. } => KeptState::Rebuildable,
        _ if !present => KeptState::MissingBeyond,
        _ => KeptState::DamagedBeyond,
    };
    KeptGroup {
        parity: l.name.clone(),
        member: format!(
            "{} {}",
            member.kind.file_kind().name(),
            short_name(&member.name)
        ),
        state,
    }
}

/// Which files a command changed, for [`sync`].
#[derive(Clone, Debug, Default)]
pub struct Changes {
    /// Files deleted or rewritten on purpose (their groups are rebuilt from the rest).
    pub deleted: Vec<(MemberKind, String)>,
    /// Rebuild every group (the level changed, or `parity set` regroups).
    pub rebuild_all: bool,
}

/// Bring the repository's parity up to `percent`: cover every file no parity in force
/// covers, rebuild groups that lost a member to `changes.deleted` (superseding the old
/// parity file), and delete superseded parity files. At level 0, delete all parity.
pub fn sync(
    be: &dyn Backend,
    percent: u8,
    changes: &Changes,
    progress: &mut dyn FnMut(&str),
) -> Result<SyncReport> {
    sync_known(be, percent, changes, Vec::new(), progress)
}

/// [`sync`] after a command whose parity files `known` this process wrote (the stream's,
/// [`super::guard::Guard::take_streamed`]): their headers are not read back
/// ([`load_known`]). The command waits for this update: a 2 GiB first snapshot's seven
/// headers took 40 ms to read from the disk on a loaded machine.
pub fn sync_known(
    be: &dyn Backend,
    percent: u8,
    changes: &Changes,
    known: Vec<Loaded>,
    progress: &mut dyn FnMut(&str),
) -> Result<SyncReport> {
    let mut report = SyncReport::default();
    let (all, _unreadable) = load_known(be, known)?;
    let (in_force, superseded) = live(all);
    if percent == 0 {
        for l in in_force.iter().chain(&superseded) {
            be.remove(FileKind::Parity, &l.name)?;
            report.parity_removed += 1;
        }
        return Ok(report);
    }
    let files = current_files(be)?;
    let deleted: HashSet<&(MemberKind, String)> = changes.deleted.iter().collect();
    let mut covered: HashSet<(MemberKind, String)> = HashSet::new();
    let mut stale: Vec<&Loaded> = Vec::new();
    let keys_changed = files
        .keys()
        .filter(|(k, _)| matches!(k, MemberKind::Config | MemberKind::Key))
        .any(|f| {
            !in_force.iter().any(|l| {
                l.header
                    .members
                    .iter()
                    .any(|m| m.kind == f.0 && m.name == f.1)
            })
        });
    for l in &in_force {
        let names: Vec<(MemberKind, String)> = l
            .header
            .members
            .iter()
            .map(|m| (m.kind, m.name.clone()))
            .collect();
        let is_keys = names
            .iter()
            .any(|(k, _)| matches!(k, MemberKind::Config | MemberKind::Key));
        if changes.rebuild_all
            || l.header.percent != percent
            || names.iter().any(|n| deleted.contains(n))
            || (is_keys && keys_changed)
        {
            stale.push(l);
        } else {
            covered.extend(names);
        }
    }
    // A stale group's surviving members must be intact before new parity is computed over
    // them: otherwise the damage would be baked in. Such a group is kept for `repair`.
    let mut replaced: Vec<&Loaded> = Vec::new();
    for l in stale {
        let r = verify_group(be, l, &files)?;
        let damaged = l.header.members.iter().zip(&r.members).find(|(m, st)| {
            **st != MemberState::Intact && !deleted.contains(&(m.kind, m.name.clone()))
        });
        if let Some((m, st)) = damaged {
            let kept = kept_group(l, m, st, &files);
            progress(&format!(
                "parity {}: left as it is, because {} in its group is {}",
                crate::format::text::short_name(&l.name),
                kept.member,
                kept.state.describe()
            ));
            covered.extend(l.header.members.iter().map(|m| (m.kind, m.name.clone())));
            report.groups_kept_damaged.push(kept);
        } else {
            replaced.push(l);
        }
    }
    let supersedes: Vec<Id> = replaced
        .iter()
        .filter_map(|l| l.name.parse().ok())
        .collect();
    let mut uncovered: Vec<(MemberKind, String, u64)> = files
        .iter()
        .filter(|(f, _)| !covered.contains(*f))
        .map(|((k, n), s)| (*k, n.clone(), *s))
        .collect();
    uncovered.sort();
    let groups = plan_groups(percent, uncovered);
    let total = groups.len();
    for (g, members) in groups.iter().enumerate() {
        progress(&format!(
            "parity: group {}/{total} ({} files)",
            g + 1,
            members.len()
        ));
        // The first new group names every replaced one: they stop counting as soon as one
        // replacement exists, and until then they are still in force. Every group also
        // names the old ones (replaced or superseded) it shares a member with, so it never
        // comes out byte for byte as one of them (same members at the same level, say
        // after `parity set` to the level in force): that file would be the one superseded
        // and removed as old, leaving its members uncovered.
        let mut sup = if g == 0 {
            supersedes.clone()
        } else {
            Vec::new()
        };
        for l in replaced.iter().copied().chain(&superseded) {
            let shares = l
                .header
                .members
                .iter()
                .any(|m| members.iter().any(|(k, n, _)| *k == m.kind && *n == m.name));
            if shares
                && let Ok(id) = l.name.parse::<Id>()
                && !sup.contains(&id)
            {
                sup.push(id);
            }
        }
        let (_, size) = write_group(be, percent, members, sup)?;
        report.groups_written += 1;
        report.files_covered += members.len();
        report.bytes_written += size;
    }
    // Replacements are durable now (or every member of a replaced group was deleted).
    for l in replaced {
        be.remove(FileKind::Parity, &l.name)?;
        report.parity_removed += 1;
    }
    finish(be, &superseded, report)
}

fn finish(be: &dyn Backend, superseded: &[Loaded], mut report: SyncReport) -> Result<SyncReport> {
    for l in superseded {
        be.remove(FileKind::Parity, &l.name)?;
        report.parity_removed += 1;
    }
    Ok(report)
}

/// Cut files into groups of one class each: packs as the stream cuts them
/// ([`layout::cut_packs`]: complete once P % of a group's rows cover its largest pack; an
/// incomplete last group joins the one before); index files and snapshots together; config
/// and key files together.
pub fn plan_groups(
    percent: u8,
    files: Vec<(MemberKind, String, u64)>,
) -> Vec<Vec<(MemberKind, String, u64)>> {
    let (mut packs, mut meta, mut keys) = (Vec::new(), Vec::new(), Vec::new());
    for f in files {
        match f.0 {
            MemberKind::Pack => packs.push(f),
            MemberKind::Index | MemberKind::Snapshot => meta.push(f),
            MemberKind::Config | MemberKind::Key => keys.push(f),
        }
    }
    let mut out = layout::cut_packs(percent, packs, |f| rows_of(f.2));
    out.extend(meta.chunks(MAX_MEMBERS).map(<[_]>::to_vec));
    out.extend(keys.chunks(MAX_MEMBERS).map(<[_]>::to_vec));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packs(n: usize) -> Vec<(MemberKind, String, u64)> {
        (0..n)
            .map(|i| (MemberKind::Pack, format!("{i:064x}"), 16 << 20))
            .collect()
    }

    #[test]
    fn a_short_last_pack_group_joins_the_one_before() {
        let sizes = |n| -> Vec<usize> { plan_groups(5, packs(n)).iter().map(Vec::len).collect() };
        assert_eq!(sizes(33), vec![33]);
        assert_eq!(sizes(40), vec![20, 20]);
        assert_eq!(sizes(47), vec![20, 27]);
        assert_eq!(sizes(7), vec![7]);
    }
}
