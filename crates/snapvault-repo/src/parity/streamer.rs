//! The run's [`Feeder`] on a thread of its own, so the pack writers hand over each pack and
//! go on: the encoding runs beside the snapshot (which leaves part of a second core idle)
//! instead of holding a writer. A pack written through [`crate::storage::Backend::write_pack`]
//! is handed over in its own buffer (no copy; the buffer returns to the packer's pool once
//! folded in), any other is copied into a recycled buffer; at most [`IN_FLIGHT`] wait, so
//! a parity thread that falls behind slows the writers rather than filling memory.

use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;

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
        join: JoinHandle<(Feeder, Put)>,
    },
    /// Finished, or the thread could not start: later packs are covered after the command.
    Done,
}

impl Streamer {
    pub fn new(percent: u8, budget: usize, put: Put) -> Streamer {
        Streamer {
            percent,
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
        let mut feeder = Feeder::new(self.percent, self.budget);
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
                (feeder, put)
            });
        match spawned {
            Ok(join) => State::Running {
                tx,
                free,
                free_tx,
                join,
            },
            Err(_) => State::Done,
        }
    }

    /// Wait until every pack handed over is folded in, then store the parity of the run's
    /// last group. Later packs are no longer streamed.
    pub fn finish(&self) -> Result<()> {
        let st = std::mem::replace(&mut *self.lock(), State::Done);
        let State::Running { tx, join, .. } = st else {
            return Ok(());
        };
        drop(tx);
        let (mut feeder, mut put) = join
            .join()
            .map_err(|_| ParityError::Codec("the parity thread panicked".into()))?;
        match feeder.finish() {
            Some(w) => put(w),
            None => Ok(()),
        }
    }
}
