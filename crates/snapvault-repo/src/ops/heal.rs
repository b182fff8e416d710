//! Healing from another repository (`repair --from REPO2`): the data a repository lost is
//! looked for, by content, among the files another repository holds, and stored here again
//! under this repository's own ids — so every snapshot that used it is whole again.
//!
//! Blob ids are keyed per repository and chunk boundaries may differ, so nothing can be
//! matched by id. The candidates are the other repository's files of the same size as a
//! lost file (those of the same name first). Each is read there (every chunk authenticated
//! as restore does) and cut two ways: at the other repository's own chunk boundaries (a
//! repository filled by `snapvault copy` keeps the source's boundaries) and by this
//! repository's chunker (the same photo snapshotted into both independently). Every piece
//! is hashed under this repository's id key; a piece whose id is a lost blob *is* that
//! blob — the keyed hash proves it — and is stored again. Nothing else is written.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::io::{self, Read};

use crossbeam_channel::Sender;

use crate::error::{Interruption, RepoError, Result, Worker};
use crate::format::blob::{self, BlobType, Compression, EncodedBlob};
use crate::format::id::BlobId;
use crate::format::tree::{NodeKind, Tree};
use crate::ops::repair::LostFile;
use crate::repository::Repository;
use crate::repository::chunker::Chunker;
use crate::repository::index::Index;
use crate::repository::walk::{TreeWalker, Visitor};

/// The repository to heal from, with its index.
pub struct Other<'a> {
    pub repo: &'a Repository,
    pub index: &'a Index,
}

#[derive(Debug, Default)]
pub struct Found {
    /// Lost blobs found (and, when a sink was given, sent to it to be stored again).
    pub blobs: HashSet<BlobId>,
    /// Files read in the other repository, and their bytes.
    pub files_read: usize,
    pub bytes_read: u64,
    /// Candidate files the other repository could not give intact (damaged there too).
    pub damaged_there: usize,
}

/// A file of the other repository that may hold lost data.
struct Candidate {
    name: String,
    size: u64,
    content: Vec<BlobId>,
    preferred: bool,
}

/// Look for the data blobs `wanted` (of `lost` files) in `other`; each one found is sent
/// to `sink` (a packer of `here`) when given. A read that fails for lack of storage stops
/// it; damage in the other repository only skips that file.
pub fn heal(
    here: &Repository,
    other: &Other<'_>,
    lost: &[LostFile],
    wanted: &HashSet<BlobId>,
    sink: Option<&Sender<EncodedBlob>>,
) -> Result<Found> {
    let mut found = Found::default();
    let state = RefCell::new(State {
        here,
        remaining: wanted.clone(),
        found: HashSet::new(),
        sink,
    });
    let chunker = Chunker::new(&here.config().chunker, here.crypto());
    for c in candidates(other, lost)? {
        let useful = {
            let st = state.borrow();
            lost.iter()
                .any(|f| f.size == c.size && f.content.iter().any(|b| st.remaining.contains(b)))
        };
        if !useful {
            continue;
        }
        match read_candidate(other, &c, &chunker, &state) {
            Ok(n) => {
                found.files_read += 1;
                found.bytes_read += n;
            }
            Err(e) if e.is_unavailable() => return Err(e),
            Err(_) => found.damaged_there += 1,
        }
        if state.borrow().remaining.is_empty() {
            break;
        }
    }
    found.blobs = state.into_inner().found;
    Ok(found)
}

/// The files of a lost file's size, each content once (its first name), noting whether
/// some copy has a lost file's name.
struct OfLostSizes<'a> {
    names: HashMap<u64, HashSet<&'a str>>,
    seen: HashMap<Vec<BlobId>, usize>,
    out: Vec<Candidate>,
}

impl Visitor for OfLostSizes<'_> {
    fn tree(&mut self, _id: &BlobId, _path: &[u8], tree: &Tree) -> Result<bool> {
        for n in &tree.nodes {
            if n.kind != NodeKind::File {
                continue;
            }
            let Some(wanted_names) = self.names.get(&n.size) else {
                continue;
            };
            let name = n.name.lossy();
            let preferred = wanted_names.contains(name.as_str());
            match self.seen.get(&n.content) {
                Some(&i) => self.out[i].preferred |= preferred,
                None => {
                    self.seen.insert(n.content.clone(), self.out.len());
                    self.out.push(Candidate {
                        name,
                        size: n.size,
                        content: n.content.clone(),
                        preferred,
                    });
                }
            }
        }
        Ok(true)
    }

    fn unreadable(&mut self, _id: &BlobId, _path: &[u8], e: RepoError) -> Result<()> {
        // A damaged folder there: its files are not candidates. Storage that cannot be
        // read stops the search.
        match e.is_unavailable() {
            true => Err(e),
            false => Ok(()),
        }
    }
}

/// The other repository's files of a lost file's size, each content once, those with a lost
/// file's name first.
fn candidates(other: &Other<'_>, lost: &[LostFile]) -> Result<Vec<Candidate>> {
    let mut names: HashMap<u64, HashSet<&str>> = HashMap::new();
    for f in lost {
        names.entry(f.size).or_default().insert(f.name.as_str());
    }
    let (snaps, bad) = other.repo.snapshots()?;
    if let Some((_, e)) = bad.into_iter().find(|(_, e)| e.is_unavailable()) {
        return Err(e);
    }
    let mut found = OfLostSizes {
        names,
        seen: HashMap::new(),
        out: Vec::new(),
    };
    let mut walker = TreeWalker::new(other.repo, other.index);
    for (_, s) in &snaps {
        walker.walk(s.tree, &mut found)?;
    }
    let mut out = found.out;
    out.sort_by(|a, b| (!a.preferred, &a.name).cmp(&(!b.preferred, &b.name)));
    Ok(out)
}

struct State<'a> {
    here: &'a Repository,
    remaining: HashSet<BlobId>,
    found: HashSet<BlobId>,
    sink: Option<&'a Sender<EncodedBlob>>,
}

impl State<'_> {
    /// A piece of the other repository's file: keep it if it is a lost blob.
    fn offer(&mut self, plain: &[u8]) -> Result<()> {
        let id = self.here.crypto().blob_id(plain);
        if !self.remaining.remove(&id) {
            return Ok(());
        }
        self.found.insert(id);
        if let Some(tx) = self.sink {
            let level = self.here.config().compression_level;
            let e = blob::encode(
                self.here.crypto(),
                id,
                BlobType::Data,
                plain,
                Compression::Try(level),
            );
            tx.send(e).map_err(|_| {
                RepoError::Interrupted(Interruption::WorkerStopped(Worker::PackWriter))
            })?;
        }
        Ok(())
    }
}

/// Read one candidate file and offer every piece of it, cut both ways. Returns its bytes.
fn read_candidate(
    other: &Other<'_>,
    c: &Candidate,
    chunker: &Chunker,
    state: &RefCell<State<'_>>,
) -> Result<u64> {
    let mut reader = FileReader {
        other,
        ids: c.content.iter(),
        cur: Vec::new(),
        pos: 0,
        state,
        error: None,
    };
    let mut stream = chunker.stream(&mut reader, Vec::new());
    let mut total = 0u64;
    loop {
        let chunk = match stream.next_chunk() {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(_) => break,
        };
        total += chunk.len() as u64;
        state.borrow_mut().offer(chunk)?;
    }
    drop(stream);
    match reader.error.take() {
        Some(e) => Err(e),
        None => Ok(total),
    }
}

/// A file of the other repository as a byte stream, one chunk in memory at a time; each
/// chunk is offered whole as it is read (the other repository's own cuts).
struct FileReader<'a, 'b> {
    other: &'a Other<'a>,
    ids: std::slice::Iter<'a, BlobId>,
    cur: Vec<u8>,
    pos: usize,
    state: &'a RefCell<State<'b>>,
    error: Option<RepoError>,
}

impl Read for FileReader<'_, '_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.cur.len() {
            let Some(id) = self.ids.next() else {
                return Ok(0);
            };
            let plain = self
                .other
                .repo
                .read_blob(self.other.index, id)
                .and_then(|p| self.state.borrow_mut().offer(&p).map(|()| p));
            match plain {
                Ok(p) => {
                    self.cur = p;
                    self.pos = 0;
                }
                Err(e) => {
                    let msg = e.to_string();
                    self.error = Some(e);
                    return Err(io::Error::other(msg));
                }
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
