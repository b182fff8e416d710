//! Removing files that parity covers so that no parity in force ever names a file removed
//! on purpose (format.md §15.5): otherwise a crash between a removal and the parity update
//! would leave parity that `repair` reads as the file being lost, and it would bring a
//! removed key file, a forgotten snapshot or a superseded index file back.
//!
//! [`Guard`] wraps a repository's backend for a command that may remove files. A key file,
//! snapshot or index file (small groups) leaves its group before it is removed: the group
//! is rebuilt without it, the new parity file superseding the old, the old one deleted, and
//! only then the file. Packs are many per group and prune removes many at once: their
//! removal waits for [`Guard::flush`], which rebuilds each of their groups once and then
//! removes them; a crash before it leaves packs no index names, which the next prune
//! removes. The config, when it is rewritten with other bytes, takes its group along.
//!
//! The packs the command writes go through the guard too: each is handed to a [`Streamer`]
//! once durable, whose thread folds it into its group's parity; a group's parity file is
//! written while the command runs once the group is final (under the command's lock, which
//! keeps prune and repair away), the run's last group as soon as the command says it writes
//! no more packs ([`Backend::packs_done`], a snapshot before its index), else by
//! [`Guard::finish_stream`] after the command: parity never holds or reads a new pack back.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use super::header::{MemberKind, parity_file_header};
use super::repair::MemberState;
use super::store::{self, Loaded};
use super::stream::{STREAM_BUDGET, ToWrite};
use super::streamer::Streamer;
use crate::error::{ParityError, RepoError, Result};
use crate::format::id::Id;
use crate::format::text::short_name;
use crate::storage::{Backend, FileInfo, FileKind, PackBuffer, testhooks};

/// A file by kind and name.
type File = (MemberKind, String);

pub struct Guard {
    inner: Arc<dyn Backend>,
    /// The parity level, once known from the config the repository opened with (see
    /// [`Guard::set_level`]); 0 = none.
    percent: Mutex<Option<u8>>,
    /// The parity files in force, read at the first removal and kept current by this guard.
    in_force: Arc<Mutex<Option<Vec<Loaded>>>>,
    /// Packs removed by the command, for [`Guard::flush`].
    pending: Mutex<Vec<String>>,
    /// Files lost beyond what parity rebuilds whose loss the command accepted
    /// ([`Guard::give_up`]): a group being rebuilt leaves them out instead of waiting for
    /// them to be whole, which they never will be.
    given_up: Mutex<HashSet<File>>,
    /// The parity of the packs the command writes, computed as they are written (once the
    /// level is known).
    streamer: OnceLock<Streamer>,
    /// The headers of the parity files the stream wrote, for the update after the command
    /// ([`Guard::take_streamed`]).
    streamed: Arc<Mutex<Vec<Loaded>>>,
}

impl Guard {
    /// `inner` at parity level `percent` (the config's, verified), its packs of up to
    /// `pack_size` bytes (the config's).
    pub fn new(inner: Arc<dyn Backend>, percent: u8, pack_size: u64) -> Guard {
        let g = Guard::unverified(inner);
        g.set_level(percent, pack_size);
        g
    }

    /// `inner` before its repository is opened: the level is not known yet (a config file
    /// read without its MAC checked may be damaged even in its `parity` field), so no
    /// parity is written at any level until [`Guard::set_level`]. Only a group that must be
    /// rebuilt meanwhile (a member removed or the config rewritten) is, at its own level.
    pub fn unverified(inner: Arc<dyn Backend>) -> Guard {
        Guard {
            inner,
            percent: Mutex::new(None),
            in_force: Arc::new(Mutex::new(None)),
            pending: Mutex::new(Vec::new()),
            given_up: Mutex::new(HashSet::new()),
            streamer: OnceLock::new(),
            streamed: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The level of the config as the opened repository verified it (its MAC, else a key
    /// file's sealed copy; format.md §15). Packs written from now on are streamed into
    /// parity at it (at the first level set: a run's groups keep one level), placed for
    /// packs of up to `pack_size` bytes (the config's).
    pub fn set_level(&self, percent: u8, pack_size: u64) {
        *lock(&self.percent) = Some(percent);
        if percent == 0 || self.streamer.get().is_some() {
            return;
        }
        let (be, list) = (self.inner.clone(), Arc::clone(&self.in_force));
        let streamed = Arc::clone(&self.streamed);
        let put = Box::new(move |w: ToWrite| put_parity(be.as_ref(), &list, &streamed, w));
        let _ = self
            .streamer
            .set(Streamer::new(percent, pack_size, STREAM_BUDGET, put));
    }

    /// The level set by [`Guard::set_level`], if any.
    pub fn level(&self) -> Option<u8> {
        *lock(&self.percent)
    }

    /// After the command, before the parity update: write the parity of the run's last
    /// group (a short tail joined to the group before). Run it holding the repository's
    /// exclusive lock.
    pub fn finish_stream(&self) -> Result<()> {
        match self.streamer.get() {
            Some(s) => s.finish(),
            None => Ok(()),
        }
    }

    /// The headers of the parity files the stream wrote so far (taken: a second call gives
    /// only later ones), for [`store::sync_known`]: written with direct I/O, they would be
    /// read back from the disk while the command waits.
    pub fn take_streamed(&self) -> Vec<Loaded> {
        std::mem::take(&mut *lock(&self.streamed))
    }

    pub fn inner(&self) -> &Arc<dyn Backend> {
        &self.inner
    }

    /// Rebuild the groups of the packs removed so far without them, then remove them;
    /// returns how many were removed. Run it holding the repository's exclusive lock.
    pub fn flush(&self) -> Result<usize> {
        let packs = std::mem::take(&mut *lock(&self.pending));
        if packs.is_empty() {
            return Ok(0);
        }
        let gone: Vec<File> = packs
            .iter()
            .map(|p| (MemberKind::Pack, p.clone()))
            .collect();
        self.regroup(&gone, &[], "removing packs")?;
        let mut n = 0;
        for p in &packs {
            match self.inner.remove(FileKind::Pack, p) {
                Ok(()) => n += 1,
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// `repair --apply` accepted the loss of `files`, damaged or missing beyond what their
    /// groups' parity rebuilds: a group rebuilt from now on (a member removed, the config
    /// rewritten) is rebuilt from its other members, leaving these out unless they read
    /// intact again. Without this, a group with one member lost beyond parity could never
    /// be rebuilt, so none of its other members could be removed (format.md §15.5): every
    /// repair, prune and `parity set` after would stop on it.
    pub fn give_up(&self, files: impl IntoIterator<Item = (MemberKind, String)>) {
        lock(&self.given_up).extend(files);
    }

    /// The parity files in force now (read once).
    fn state(&self) -> Result<MutexGuard<'_, Option<Vec<Loaded>>>> {
        let mut st = lock(&self.in_force);
        if st.is_none() {
            let (all, _unreadable) = store::load(self.inner.as_ref())?;
            *st = Some(store::live(all).0);
        }
        Ok(st)
    }

    fn covered(&self, f: &File) -> Result<bool> {
        let st = self.state()?;
        Ok(st.iter().flatten().any(|l| names(l, f)))
    }

    /// Rebuild every group in force that names a file of `gone` (to be removed) or
    /// `changed` (rewritten): without the first, with the second as it reads now. The other
    /// members must be intact; a group whose members all go is simply deleted.
    fn regroup(&self, gone: &[File], changed: &[File], what: &str) -> Result<()> {
        let mut st = self.state()?;
        let groups = st.get_or_insert_with(Vec::new);
        let gone_set: HashSet<&File> = gone.iter().collect();
        let changed_set: HashSet<&File> = changed.iter().collect();
        let given_up = lock(&self.given_up).clone();
        let affected: Vec<usize> = (0..groups.len())
            .filter(|&i| gone.iter().chain(changed).any(|f| names(&groups[i], f)))
            .collect();
        let mut written = Vec::new();
        for &i in &affected {
            let l = &groups[i];
            let mut sizes = HashMap::new();
            for m in &l.header.members {
                if let Ok(s) = self.inner.size(m.kind.file_kind(), &m.name) {
                    sizes.insert((m.kind, m.name.clone()), s);
                }
            }
            let r = store::verify_group(self.inner.as_ref(), l, &sizes)?;
            let mut keep = Vec::new();
            for (m, state) in l.header.members.iter().zip(&r.members) {
                let f = (m.kind, m.name.clone());
                if gone_set.contains(&f) {
                    continue;
                }
                if *state != MemberState::Intact && !changed_set.contains(&f) {
                    if given_up.contains(&f) {
                        continue;
                    }
                    let state = match state {
                        MemberState::Repaired { .. } => store::KeptState::Rebuildable,
                        _ if !sizes.contains_key(&f) => store::KeptState::MissingBeyond,
                        _ => store::KeptState::DamagedBeyond,
                    };
                    return Err(ParityError::GroupDamaged {
                        what: what.to_string(),
                        member: format!("{} {}", m.kind.file_kind().name(), short_name(&m.name)),
                        parity: short_name(&l.name).to_string(),
                        state,
                    }
                    .into());
                }
                let size = match sizes.get(&f) {
                    Some(s) => *s,
                    None => self.inner.size(m.kind.file_kind(), &m.name)?,
                };
                keep.push((m.kind, m.name.clone(), size));
            }
            if keep.is_empty() {
                continue;
            }
            let old: Vec<Id> = l.name.parse().ok().into_iter().collect();
            let percent = self.level().filter(|&p| p > 0).unwrap_or(l.header.percent);
            let (name, size) = store::write_group(self.inner.as_ref(), percent, &keep, old)?;
            written.push(store::load_one(self.inner.as_ref(), &name, size)?);
        }
        // The replacements are durable: the old files go (they are superseded already).
        for &i in affected.iter().rev() {
            let l = groups.remove(i);
            self.inner.remove(FileKind::Parity, &l.name)?;
        }
        groups.extend(written);
        Ok(())
    }
}

/// Store a parity file the stream computed (its members are durable); keep the guard's list
/// of parity in force current.
fn put_parity(
    be: &dyn Backend,
    in_force: &Mutex<Option<Vec<Loaded>>>,
    streamed: &Mutex<Vec<Loaded>>,
    w: ToWrite,
) -> Result<()> {
    match be.write(FileKind::Parity, &w.name, &w.bytes) {
        Ok(()) | Err(RepoError::FileExists(_)) => {}
        Err(e) => return Err(e),
    }
    testhooks::pause("parity-spooled");
    // Its header as written (read back it would be the same bytes, already checked).
    let bytes = &w.bytes;
    let read = |o: u64, l: usize| bytes.get(o as usize..o as usize + l).map(<[u8]>::to_vec);
    let (header, data_at, both_copies) = parity_file_header(&w.name, bytes.len() as u64, read)?;
    let l = Loaded {
        name: w.name.clone(),
        header,
        data_at,
        both_copies,
        size: bytes.len() as u64,
    };
    if let Some(v) = lock(in_force).as_mut()
        && !v.iter().any(|x| x.name == l.name)
    {
        v.push(l.clone());
    }
    lock(streamed).push(l);
    Ok(())
}

fn names(l: &Loaded, f: &File) -> bool {
    l.header
        .members
        .iter()
        .any(|m| m.kind == f.0 && m.name == f.1)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn is_not_found(e: &RepoError) -> bool {
    matches!(e, RepoError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}

fn member_kind(kind: FileKind) -> Option<MemberKind> {
    Some(match kind {
        FileKind::Config => MemberKind::Config,
        FileKind::Key => MemberKind::Key,
        FileKind::Snapshot => MemberKind::Snapshot,
        FileKind::Index => MemberKind::Index,
        FileKind::Pack => MemberKind::Pack,
        FileKind::Lock | FileKind::Parity => return None,
    })
}

impl Backend for Guard {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn exists(&self, kind: FileKind, name: &str) -> Result<bool> {
        self.inner.exists(kind, name)
    }
    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        self.inner.read(kind, name)
    }
    fn read_range_into(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: usize,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        self.inner.read_range_into(kind, name, offset, len, buf)
    }
    fn prefetch(&self, kind: FileKind, name: &str, offset: u64, len: u64) {
        self.inner.prefetch(kind, name, offset, len)
    }

    fn prefetch_many(&self, kind: FileKind, ranges: &[(String, u64, u64)]) {
        self.inner.prefetch_many(kind, ranges)
    }

    fn read_ahead(&self) -> u64 {
        self.inner.read_ahead()
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        self.inner.write(kind, name, data)?;
        if kind == FileKind::Pack
            && let Some(s) = self.streamer.get()
        {
            s.written(name, data);
        }
        Ok(())
    }
    /// The pack's buffer goes to the parity thread as it is (no copy); it returns to the
    /// packer's pool once folded in.
    fn write_pack(&self, name: &str, pack: PackBuffer) -> Result<()> {
        self.inner.write(FileKind::Pack, name, pack.bytes())?;
        if let Some(s) = self.streamer.get() {
            s.handed(name, pack);
        }
        Ok(())
    }
    fn keeps_packs(&self) -> usize {
        match self.streamer.get() {
            Some(_) => super::streamer::HELD,
            None => self.inner.keeps_packs(),
        }
    }
    /// The parity thread writes the last group's parity file now, beside the command's
    /// index and snapshot (every member is durable; the command's lock keeps prune and
    /// repair away, as for the groups written while the packs were).
    fn packs_done(&self) {
        if let Some(s) = self.streamer.get() {
            s.packs_done();
        }
    }
    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>> {
        self.inner.list(kind)
    }
    /// A config rewritten with other bytes than its group recorded takes the group along
    /// (a file put back as parity recorded it leaves the group as it is).
    fn replace(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        self.inner.replace(kind, name, data)?;
        let Some(mk) = member_kind(kind).filter(|k| *k == MemberKind::Config) else {
            return Ok(());
        };
        let f = (mk, name.to_string());
        let hash = *blake3::hash(data).as_bytes();
        let stale = self.state()?.iter().flatten().any(|l| {
            l.header
                .members
                .iter()
                .any(|m| m.kind == f.0 && m.name == f.1 && m.hash != hash)
        });
        if stale {
            self.regroup(&[], &[f], "the new config's parity")?;
        }
        Ok(())
    }
    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        self.inner.size(kind, name)
    }
    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        let Some(mk) = member_kind(kind) else {
            return self.inner.remove(kind, name);
        };
        let f = (mk, name.to_string());
        if !self.covered(&f)? {
            return self.inner.remove(kind, name);
        }
        if mk == MemberKind::Pack {
            lock(&self.pending).push(name.to_string());
            return Ok(());
        }
        let what = format!("{} {}", kind.name(), short_name(name));
        self.regroup(std::slice::from_ref(&f), &[], &what)?;
        self.inner.remove(kind, name)
    }
    fn age_secs(&self, kind: FileKind, name: &str) -> Result<Option<u64>> {
        self.inner.age_secs(kind, name)
    }
    fn checkpoint_packs(&self) -> usize {
        self.inner.checkpoint_packs()
    }
    fn create_layout(&self) -> Result<()> {
        self.inner.create_layout()
    }
    fn leftover_temp_files(&self) -> Result<Vec<FileInfo>> {
        self.inner.leftover_temp_files()
    }
    fn remove_leftover_temp_files(&self, min_age_secs: u64) -> Result<usize> {
        self.inner.remove_leftover_temp_files(min_age_secs)
    }
}
