//! The run's [`Feeder`] on a thread of its own, so the pack writers hand over each pack and
//! go on: the encoding runs beside the snapshot (which leaves part of a second core idle)
//! instead of holding a writer. A pack written through [`crate::storage::Backend::write_pack`]
//! is handed over in its own buffer (no copy; the buffer returns to the packer's pool once
//! folded in), any other is copied into a recycled buffer; at most [`IN_FLIGHT`] wait, so
//! a parity thread that falls behind slows the writers rather than filling memory.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

use crossbeam_channel::{Receiver, Sender, bounded};

use super::stream::{Feeder, ToWrite};
use crate::error::{ParityError, Result};
use crate::storage::PackBuffer;

/// Stores a parity file the feeder computed (its members are durable).
pub type Put = Box<dyn FnMut(ToWrite) -> Result<()> + Send>;

/// Packs waiting for the parity thread.
const IN_FLIGHT: usize = 2;
/// Pack buffers the parity thread may hold at once: those waiting and the one it codes.
pub const HELD: usize = IN_FLIGHT + 1;

pub struct Streamer {
    percent: u8,
    /// The config's pack size: it fixes how the stream places packs (format.md §15.5).
    pack_size: u64,
    budget: usize,
    state: Mutex<State>,
}

enum State {
    /// No pack yet (the thread starts with the first).
    Idle(Put),
    Running {
        tx: Sender<(String, PackBuffer)>,
        free: Receiver<Vec<u8>>,
        /// Where copied packs' buffers go back to (for `free`).
        free_tx: Sender<Vec<u8>>,
        done: Receiver<Result<()>>,
    },
    /// The command writes no more packs ([`Streamer::packs_done`]): the thread is writing
    /// the last group's parity file; later packs are covered after the command.
    Closing(Receiver<Result<()>>),
    /// Finished, or the thread could not start: later packs are covered after the command.
    Done,
}

impl Streamer {
    pub fn new(percent: u8, pack_size: u64, budget: usize, put: Put) -> Streamer {
        Streamer {
            percent,
            pack_size,
            budget,
            state: Mutex::new(State::Idle(put)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Pack `name` is durable with `data`: hand a copy to the parity thread (in the order
    /// written, which is the order of the group's members).
    pub fn written(&self, name: &str, data: &[u8]) {
        self.send(name, |free, free_tx| {
            let mut buf = free.try_recv().unwrap_or_default();
            buf.clear();
            buf.extend_from_slice(data);
            PackBuffer::new(buf, 0, Some(free_tx.clone()))
        });
    }

    /// Pack `name` is durable in `pack`: hand it to the parity thread as it is.
    pub fn handed(&self, name: &str, pack: PackBuffer) {
        self.send(name, |_, _| pack);
    }

    fn send(
        &self,
        name: &str,
        pack: impl FnOnce(&Receiver<Vec<u8>>, &Sender<Vec<u8>>) -> PackBuffer,
    ) {
        let mut st = self.lock();
        if let State::Idle(_) = *st {
            let State::Idle(put) = std::mem::replace(&mut *st, State::Done) else {
                return;
            };
            *st = self.start(put);
        }
        let State::Running {
            tx, free, free_tx, ..
        } = &*st
        else {
            return;
        };
        if tx.send((name.to_string(), pack(free, free_tx))).is_err() {
            *st = State::Done;
        }
    }

    fn start(&self, put: Put) -> State {
        let (tx, rx) = bounded::<(String, PackBuffer)>(IN_FLIGHT);
        let (free_tx, free) = bounded(IN_FLIGHT + 1);
        let (percent, pack_size, budget) = (self.percent, self.pack_size, self.budget);
        // The thread's outcome, sent before it frees its band buffers (some 105 MiB at
        // 5 %): the command need not wait for that.
        let (done_tx, done) = bounded::<Result<()>>(1);
        let spawned = std::thread::Builder::new()
            .name("parity".into())
            .spawn(move || {
                // Made here, not on the pack writer handing over the first pack: the
                // codec's tables take a while (95 ms on a loaded machine).
                let mut feeder = Feeder::new(percent, pack_size, budget);
                let last = code(&rx, &mut feeder, put);
                let _ = done_tx.send(last);
                // The band buffers are freed now, the command going on.
                drop(feeder);
            });
        match spawned {
            Ok(_detached) => State::Running {
                tx,
                free,
                free_tx,
                done,
            },
            Err(_) => State::Done,
        }
    }

    /// The command writes no more packs (every one it wrote is durable and handed over):
    /// the parity thread folds in what it holds and writes the last group's parity file at
    /// once, beside the rest of the command (its index and snapshot files), instead of
    /// after it. A pack written after this is not streamed: it is covered after the
    /// command, read back.
    pub fn packs_done(&self) {
        let mut st = self.lock();
        if let State::Running { .. } = *st
            && let State::Running { tx, done, .. } = std::mem::replace(&mut *st, State::Done)
        {
            drop(tx);
            *st = State::Closing(done);
        }
    }

    /// Wait until every pack handed over is folded in and the parity of the run's last
    /// group is stored. Later packs are no longer streamed.
    pub fn finish(&self) -> Result<()> {
        let done = match std::mem::replace(&mut *self.lock(), State::Done) {
            State::Running { tx, done, .. } => {
                drop(tx);
                done
            }
            State::Closing(done) => done,
            State::Idle(_) | State::Done => return Ok(()),
        };
        // No outcome: the thread ended without sending one (it panicked).
        done.recv()
            .map_err(|_| ParityError::Codec("the parity thread panicked".into()))?
    }
}

/// The parity thread's work: fold each pack into its group as it comes, and hand each
/// parity file to a thread of its own that stores it, so that a file's write and sync
/// (some 20 MiB at 5 % with 16 MiB packs) never hold up the packs queued behind it: with
/// [`IN_FLIGHT`] packs waiting, the pack writers would wait in [`Streamer::handed`], and
/// the whole snapshot with them. Returns the outcome of storing the run's last group's
/// file (a file that fails mid-run stops the stream: the rest is covered after the
/// command).
fn code(rx: &Receiver<(String, PackBuffer)>, feeder: &mut Feeder, put: Put) -> Result<()> {
    let failed = AtomicBool::new(false);
    // A file waiting while the one before is stored: the next is a group of packs away.
    let (files, to_store) = bounded::<(ToWrite, bool)>(1);
    std::thread::scope(|s| {
        let storing = std::thread::Builder::new()
            .name("parity-store".into())
            .spawn_scoped(s, || store(to_store, put, &failed));
        if storing.is_err() {
            feeder.stop();
        }
        for (name, buf) in rx {
            if failed.load(Relaxed) {
                feeder.stop();
            }
            match feeder.written(&name, buf.bytes()) {
                Ok(Some(w)) => {
                    if files.send((w, false)).is_err() {
                        feeder.stop();
                    }
                }
                Ok(None) => {}
                Err(_) => feeder.stop(),
            }
            drop(buf);
        }
        // No more packs: the last group's parity, while the command goes on (its index
        // and snapshot) or waits in `finish`.
        if failed.load(Relaxed) {
            feeder.stop();
        }
        if let Some(w) = feeder.finish() {
            let _ = files.send((w, true));
        }
        drop(files);
        match storing {
            Ok(h) => h.join().unwrap_or_else(|_| {
                Err(ParityError::Codec("the parity thread panicked".into()).into())
            }),
            Err(_) => Ok(()),
        }
    })
}

/// Store the parity files `files` brings, in order; `failed` once one could not be. The
/// outcome is the run's last file's (flagged `true`).
fn store(files: Receiver<(ToWrite, bool)>, mut put: Put, failed: &AtomicBool) -> Result<()> {
    let mut last = Ok(());
    for (w, is_last) in files {
        let r = put(w);
        if r.is_err() {
            failed.store(true, Relaxed);
        }
        if is_last {
            last = r;
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crossbeam_channel::unbounded;

    use super::*;
    use crate::parity::{SHARD, group_packs};

    /// While a group's parity file is being stored, the packs behind it are folded in (and
    /// their buffers given back): a slow write does not hold up the pack writers. Before,
    /// the file was stored on the parity thread: with it waiting, the queue filled and the
    /// next pack's hand-over waited too (here until the store gave up after a minute).
    #[test]
    fn packs_are_folded_while_a_parity_file_is_stored() {
        let percent = 34;
        // The first file is the first group's, once the second is complete; then the
        // queue's worth of packs and more.
        let n = 2 * group_packs(percent) + IN_FLIGHT + 2;
        let (back_tx, back) = unbounded::<Vec<u8>>();
        let (folded_tx, folded) = unbounded::<usize>();
        let mut first = true;
        let put: Put = Box::new(move |_| {
            if std::mem::take(&mut first) {
                let deadline = Instant::now() + Duration::from_secs(60);
                let mut got = 0;
                while got < n && back.recv_deadline(deadline).is_ok() {
                    got += 1;
                }
                let _ = folded_tx.send(got);
            }
            Ok(())
        });
        let s = Streamer::new(percent, 1 << 20, usize::MAX, put);
        for i in 0..n {
            let mut data = vec![7u8; 3 * SHARD + 7];
            data[..8].copy_from_slice(&(i as u64).to_le_bytes());
            let name = blake3::hash(&data).to_hex().to_string();
            s.handed(&name, PackBuffer::new(data, 0, Some(back_tx.clone())));
        }
        s.finish().unwrap();
        assert_eq!(
            folded.try_recv(),
            Ok(n),
            "every pack folded in while the first file was being stored"
        );
    }
}
