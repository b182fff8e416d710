//! The run's [`Feeder`] on a thread of its own, so the pack writers hand over each pack and
//! go on: the encoding runs beside the snapshot (which leaves part of a second core idle)
//! instead of holding a writer. A pack written through [`crate::storage::Backend::write_pack`]
//! is handed over in its own buffer (no copy; the buffer returns to the packer's pool once
//! folded in), any other is copied into a recycled buffer; at most [`IN_FLIGHT`] wait, so
//! a parity thread that falls behind slows the writers rather than filling memory.

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

    fn start(&self, mut put: Put) -> State {
        let (tx, rx) = bounded::<(String, PackBuffer)>(IN_FLIGHT);
        let (free_tx, free) = bounded(IN_FLIGHT + 1);
        let mut feeder = Feeder::new(self.percent, self.pack_size, self.budget);
        // The thread's outcome, sent before it frees its band buffers (some 105 MiB at
        // 5 %): the command need not wait for that.
        let (done_tx, done) = bounded::<Result<()>>(1);
        let spawned = std::thread::Builder::new()
            .name("parity".into())
            .spawn(move || {
                for (name, buf) in rx {
                    let done = match feeder.written(&name, buf.bytes()) {
                        Ok(Some(w)) => put(w),
                        Ok(None) => Ok(()),
                        Err(e) => Err(e),
                    };
                    if done.is_err() {
                        feeder.stop();
                    }
                    drop(buf);
                }
                // No more packs: the last group's parity, on this thread, while the
                // command goes on (its index and snapshot) or waits in `finish`.
                let last = match feeder.finish() {
                    Some(w) => put(w),
                    None => Ok(()),
                };
                let _ = done_tx.send(last);
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
