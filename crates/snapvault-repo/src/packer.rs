//! The packer: collects sealed blobs into packs (data and tree blobs in separate packs, so
//! metadata can be read without touching photo data), writes each finished pack on a
//! writer thread, and writes index files only after the packs they name are durable.
//! An index checkpoint is written every [`CHECKPOINT_PACKS`] packs, so an interrupted
//! snapshot leaves its uploaded data reusable by the next run.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::backend::{Backend, FileKind};
use crate::blob::{BlobType, EncodedBlob};
use crate::crypto::Crypto;
use crate::error::{RepoError, Result};
use crate::id::IndexId;
use crate::index::{IndexFile, IndexedPack};
use crate::pack::PackWriter;

pub const CHECKPOINT_PACKS: usize = 32;

#[derive(Clone, Debug, Default)]
pub struct PackerStats {
    pub packs: u64,
    pub blobs: u64,
    pub bytes: u64,
    pub index_files: Vec<IndexId>,
    pub packs_written: Vec<IndexedPack>,
}

pub struct Packer {
    tx: Option<Sender<EncodedBlob>>,
    join: Option<JoinHandle<Result<PackerStats>>>,
}

impl Packer {
    pub fn start(backend: Arc<dyn Backend>, crypto: Crypto, pack_size: usize) -> Packer {
        let (tx, rx) = bounded::<EncodedBlob>(8);
        let join = std::thread::Builder::new()
            .name("packer".into())
            .spawn(move || run(backend, crypto, pack_size, rx))
            .ok();
        Packer { tx: Some(tx), join }
    }

    /// A sender for worker threads. Sending fails once the packer stopped on an error.
    pub fn sender(&self) -> Sender<EncodedBlob> {
        self.tx.clone().unwrap_or_else(|| bounded(0).0)
    }

    /// Flush everything and write the final index; returns what was written.
    pub fn finish(mut self) -> Result<PackerStats> {
        drop(self.tx.take());
        match self.join.take() {
            Some(j) => j
                .join()
                .unwrap_or_else(|_| Err(RepoError::Interrupted("packer thread panicked".into()))),
            None => Err(RepoError::Interrupted(
                "could not start the packer thread".into(),
            )),
        }
    }
}

impl Drop for Packer {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

fn run(
    backend: Arc<dyn Backend>,
    crypto: Crypto,
    pack_size: usize,
    rx: Receiver<EncodedBlob>,
) -> Result<PackerStats> {
    let (wtx, wrx) = bounded::<PackWriter>(0);
    let (b2, c2) = (backend.clone(), crypto.clone());
    let writer = std::thread::Builder::new()
        .name("pack-writer".into())
        .spawn(move || write_packs(b2, c2, wrx))
        .map_err(|e| RepoError::io("starting the pack writer", e))?;
    // Room for the sealed header, so finishing a pack never reallocates its buffer.
    let capacity = pack_size + (64 << 10);
    let mut data = PackWriter::new(capacity);
    let mut tree = PackWriter::new(0);
    let mut send_err = false;
    for blob in rx.iter() {
        let w = if blob.typ == BlobType::Tree {
            &mut tree
        } else {
            &mut data
        };
        // Close the pack before it would grow past the target size.
        if !w.is_empty() && w.len() + blob.sealed.len() > pack_size {
            let full = std::mem::replace(w, PackWriter::new(capacity));
            if wtx.send(full).is_err() {
                send_err = true;
                break;
            }
        }
        w.add(&blob);
    }
    if !send_err {
        for w in [data, tree] {
            if !w.is_empty() && wtx.send(w).is_err() {
                break;
            }
        }
    }
    drop(wtx);
    drop(rx);
    writer
        .join()
        .unwrap_or_else(|_| Err(RepoError::Interrupted("pack writer panicked".into())))
}

fn write_packs(
    backend: Arc<dyn Backend>,
    crypto: Crypto,
    rx: Receiver<PackWriter>,
) -> Result<PackerStats> {
    let mut stats = PackerStats::default();
    let mut pending: Vec<IndexedPack> = Vec::new();
    let save_index = |pending: &mut Vec<IndexedPack>, stats: &mut PackerStats| -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let f = IndexFile {
            supersedes: Vec::new(),
            packs: std::mem::take(pending),
        };
        let bytes = f.seal(&crypto);
        let id = IndexId(crate::id::Id::hash_of(&bytes));
        write_once(backend.as_ref(), FileKind::Index, &id.to_hex(), &bytes)?;
        stats.index_files.push(id);
        stats.packs_written.extend(f.packs);
        Ok(())
    };
    for w in rx.iter() {
        let (id, bytes, entries) = w.finish(&crypto);
        write_once(backend.as_ref(), FileKind::Pack, &id.to_hex(), &bytes)?;
        stats.packs += 1;
        stats.blobs += entries.len() as u64;
        stats.bytes += bytes.len() as u64;
        pending.push(IndexedPack {
            id,
            size: bytes.len() as u64,
            blobs: entries,
        });
        if pending.len() >= CHECKPOINT_PACKS {
            save_index(&mut pending, &mut stats)?;
        }
    }
    save_index(&mut pending, &mut stats)?;
    Ok(stats)
}

/// Write a file named by the hash of its bytes, unless it is already there with exactly
/// these bytes: an interrupted run of an unencrypted repository (whose packs are
/// deterministic) wrote it but not the index naming it, and the next run makes it again.
fn write_once(backend: &dyn Backend, kind: FileKind, name: &str, bytes: &[u8]) -> Result<()> {
    if backend.exists(kind, name)?
        && backend
            .read(kind, name)
            .is_ok_and(|b| crate::id::Id::hash_of(&b).to_hex() == name)
    {
        return Ok(());
    }
    backend.write(kind, name, bytes)
}
