//! A byte budget: a counting semaphore of bytes, for the chunk buffers of the snapshot
//! pipeline.
//!
//! The walker and the reader threads charge each chunk buffer (its whole allocation)
//! before they copy a chunk into it; the charge travels with the chunk as a [`Permit`] to
//! the worker, and with its sealed blob to the packer, and is given back when the blob has
//! been copied into a pack (or when the worker finds the chunk already stored, or when the
//! chunk is dropped on an error). So the chunk bytes in flight between reading and the
//! packs are bounded by bytes, whatever the queues' lengths in chunks and the chunks'
//! sizes: counts of batches bounded them before, and with two reader threads beside the
//! walker the queues held up to 30 MiB more (issue 23).
//!
//! The bound: [`Budget::in_use`] never exceeds `max(limit, the largest single charge)`.
//! A charge that fits is granted at once; one that does not waits until enough is given
//! back, and a charge larger than the whole limit waits until nothing else is charged
//! and then goes alone (so one oversized chunk cannot wedge the pipeline). With a limit of
//! at least the largest buffer a chunk can need, the bound is the limit itself.
//!
//! A thread must never wait for the budget while it holds permits nothing else will give
//! back (chunks it has not yet handed on): the callers hand over their batch first.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How often a waiting charge asks whether to give up (the run failed or was stopped).
const POLL: Duration = Duration::from_millis(50);

/// Charges and give-backs are atomic operations (two a chunk, a million chunks at a
/// million small files); the lock and condition variable serve only a thread that waits.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: usize,
    used: AtomicUsize,
    waiting: AtomicUsize,
    lock: Mutex<()>,
    freed: Condvar,
}

/// Bytes charged to a [`Budget`], given back when dropped. Permits of the same budget
/// merge ([`Permit::join`]), so a bundle of blobs carries one.
#[derive(Debug, Default)]
pub(crate) struct Permit {
    budget: Option<Arc<Budget>>,
    bytes: usize,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Arc<Budget> {
        Arc::new(Budget {
            limit,
            used: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            lock: Mutex::new(()),
            freed: Condvar::new(),
        })
    }

    /// Bytes charged and not yet given back.
    #[cfg(test)]
    pub(crate) fn in_use(&self) -> usize {
        self.used.load(SeqCst)
    }

    /// Charge `bytes` if that fits now: within the limit, or alone.
    pub(crate) fn try_charge(self: &Arc<Self>, bytes: usize) -> Option<Permit> {
        let mut used = self.used.load(SeqCst);
        loop {
            if used != 0 && used.saturating_add(bytes) > self.limit {
                return None;
            }
            match self
                .used
                .compare_exchange_weak(used, used + bytes, SeqCst, SeqCst)
            {
                Ok(_) => {
                    return Some(Permit {
                        budget: Some(self.clone()),
                        bytes,
                    });
                }
                Err(now) => used = now,
            }
        }
    }

    /// Charge `bytes`, waiting until they fit; `None` if `give_up` says so meanwhile
    /// (asked every 50 ms: the run failed, nothing may be given back).
    pub(crate) fn charge(
        self: &Arc<Self>,
        bytes: usize,
        give_up: impl Fn() -> bool,
    ) -> Option<Permit> {
        if let Some(p) = self.try_charge(bytes) {
            return Some(p);
        }
        let mut guard = self.lock.lock().ok()?;
        // Counted before trying again, so a give-back after the failed try sees a waiter
        // (and takes the lock to notify, which it cannot while this thread tests).
        self.waiting.fetch_add(1, SeqCst);
        let permit = loop {
            if let Some(p) = self.try_charge(bytes) {
                break Some(p);
            }
            if give_up() {
                break None;
            }
            match self.freed.wait_timeout(guard, POLL) {
                Ok((g, _)) => guard = g,
                Err(_) => {
                    self.waiting.fetch_sub(1, SeqCst);
                    return None;
                }
            }
        };
        self.waiting.fetch_sub(1, SeqCst);
        permit
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, SeqCst);
        if self.waiting.load(SeqCst) > 0 {
            drop(self.lock.lock());
            self.freed.notify_all();
        }
    }
}

impl Permit {
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Take `other`'s bytes into this permit (both are given back together).
    pub(crate) fn join(&mut self, mut other: Permit) {
        let Some(theirs) = other.budget.take() else {
            return;
        };
        match &self.budget {
            Some(ours) if Arc::ptr_eq(ours, &theirs) => self.bytes += other.bytes,
            Some(_) => {
                // Another budget (never in the pipeline): give those bytes back at once.
                theirs.give_back(other.bytes);
            }
            None => {
                self.budget = Some(theirs);
                self.bytes = other.bytes;
            }
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(b) = self.budget.take()
            && self.bytes > 0
        {
            b.give_back(self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};

    use super::*;

    #[test]
    fn charges_past_the_limit_wait_for_bytes_given_back() {
        let b = Budget::new(10);
        let a = b.try_charge(6).unwrap();
        let c = b.try_charge(4).unwrap();
        assert_eq!(b.in_use(), 10);
        assert!(b.try_charge(1).is_none(), "full");
        drop(a);
        assert_eq!(b.in_use(), 4);
        assert!(b.try_charge(7).is_none(), "4 + 7 > 10");
        let d = b.try_charge(6).unwrap();
        drop((c, d));
        assert_eq!(b.in_use(), 0);
    }

    #[test]
    fn a_charge_larger_than_the_limit_goes_alone() {
        let b = Budget::new(10);
        let small = b.try_charge(1).unwrap();
        assert!(b.try_charge(25).is_none(), "waits for the 1 byte");
        drop(small);
        let big = b.try_charge(25).unwrap();
        assert_eq!(b.in_use(), 25);
        assert!(b.try_charge(1).is_none(), "nothing beside it");
        drop(big);
        assert_eq!(b.in_use(), 0);
    }

    #[test]
    fn joined_permits_give_back_their_sum_once() {
        let b = Budget::new(100);
        let mut all = Permit::default();
        for n in [5, 7, 11] {
            all.join(b.try_charge(n).unwrap());
        }
        all.join(Permit::default());
        assert_eq!((all.bytes(), b.in_use()), (23, 23));
        drop(all);
        assert_eq!(b.in_use(), 0);
        // A permit of another budget is given back to it at once, not carried.
        let other = Budget::new(100);
        let mut p = b.try_charge(3).unwrap();
        p.join(other.try_charge(9).unwrap());
        assert_eq!((p.bytes(), b.in_use(), other.in_use()), (3, 3, 0));
    }

    #[test]
    fn a_waiting_charge_gives_up_when_told() {
        let b = Budget::new(10);
        let _held = b.try_charge(10).unwrap();
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let w = s.spawn(|| b.charge(5, || stop.load(SeqCst)).is_none());
            stop.store(true, SeqCst);
            assert!(w.join().unwrap(), "gave up");
        });
        assert_eq!(b.in_use(), 10);
    }

    /// The guard of the bound: producers charging chunks of every size at once, consumers
    /// giving them back in any order, and the bytes in use never pass the limit (checked
    /// by the consumers while they hold the permits).
    #[test]
    fn many_threads_never_hold_more_than_the_limit() {
        const LIMIT: usize = 1000;
        let b = Budget::new(LIMIT);
        let (tx, rx) = crossbeam_channel::bounded::<Permit>(64);
        let peak = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for t in 0..3usize {
                let (b, tx, peak) = (b.clone(), tx.clone(), &peak);
                s.spawn(move || {
                    for i in 0..2000usize {
                        let n = 1 + (i * 37 + t * 101) % LIMIT;
                        let p = b.charge(n, || false).unwrap();
                        peak.fetch_max(b.in_use(), SeqCst);
                        tx.send(p).unwrap();
                    }
                });
            }
            drop(tx);
            for _ in 0..2 {
                let (b, rx, peak) = (b.clone(), rx.clone(), &peak);
                s.spawn(move || {
                    let mut held = Vec::new();
                    for i in 0.. {
                        let p = match rx.try_recv() {
                            Ok(p) => p,
                            // Nothing held while waiting, as the pipeline's stages.
                            Err(_) => {
                                held.clear();
                                match rx.recv() {
                                    Ok(p) => p,
                                    Err(_) => break,
                                }
                            }
                        };
                        held.push(p);
                        peak.fetch_max(b.in_use(), SeqCst);
                        // Keep a few at times, so permits are given back out of order.
                        if i % 3 == 0 {
                            held.clear();
                        }
                    }
                });
            }
        });
        assert_eq!(b.in_use(), 0, "every byte given back");
        let peak = peak.load(SeqCst);
        assert!(peak <= LIMIT, "{peak} bytes in use, limit {LIMIT}");
        assert!(
            peak > LIMIT / 2,
            "the test never filled the budget ({peak})"
        );
    }
}
