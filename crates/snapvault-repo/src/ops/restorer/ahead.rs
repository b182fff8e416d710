//! What a restore announces to the backend before reading it ([`Backend::prefetch`]).
//!
//! On a local disk ([`Backend::read_ahead`] is 0) each thread announces the first reads of
//! the work one round of threads ahead of what it starts: the disk fetches them while this
//! work is decrypted and written. A remote backend asks for more: every read is a request
//! waiting on a server, so the restore announces the next [`Backend::read_ahead`] bytes of
//! work, in the order the threads will take it, and again half as much each time less than
//! half of that is left ahead; the backend merges neighbours in a pack into one request and
//! keeps several in flight (see `snapvault_remote::readahead`).
//!
//! [`Backend::prefetch`]: crate::storage::Backend::prefetch
//! [`Backend::read_ahead`]: crate::storage::Backend::read_ahead

use std::sync::{Mutex, PoisonError};

use super::split::{SEGMENT, Unit};
use super::{RestoreItem, Run, file};
use crate::storage::FileKind;

pub(super) struct Ahead<'a> {
    run: &'a Run<'a>,
    files: &'a [&'a RestoreItem],
    units: &'a [Unit],
    threads: usize,
    /// Bytes to keep announced ahead (0: the work one round ahead, see above).
    depth: u64,
    /// Bytes of all units before each unit; the last entry is the total.
    before: Vec<u64>,
    /// Units announced so far (the first ones, in order).
    announced: Mutex<usize>,
}

impl<'a> Ahead<'a> {
    pub fn new(
        run: &'a Run<'a>,
        files: &'a [&'a RestoreItem],
        units: &'a [Unit],
        threads: usize,
    ) -> Ahead<'a> {
        let depth = run.repo.backend().read_ahead();
        let mut before = Vec::new();
        if depth > 0 {
            before.reserve(units.len() + 1);
            let mut at = 0u64;
            for u in units {
                before.push(at);
                at += match u.part {
                    Some(_) => SEGMENT,
                    None => files.get(u.file).map_or(0, |f| f.node.size),
                };
            }
            before.push(at);
        }
        Ahead {
            run,
            files,
            units,
            threads,
            depth,
            before,
            announced: Mutex::new(0),
        }
    }

    /// Unit `u` is starting: announce what comes after it, as the backend wants.
    pub fn starting(&self, u: usize) {
        let mut batch = Vec::new();
        if self.depth == 0 {
            if let Some(later) = self.units.get(u + self.threads) {
                self.reads_of(later, file::FIRST_READS, &mut batch);
            }
        } else {
            let mut next = self
                .announced
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let Some(&from) = self.before.get(u) else {
                return;
            };
            let ahead = |n: usize| self.before.get(n).map_or(0, |b| b.saturating_sub(from));
            if *next > u && ahead(*next) >= self.depth / 2 {
                return;
            }
            while *next < self.units.len() && (*next <= u || ahead(*next) < self.depth) {
                self.reads_of(&self.units[*next], u64::MAX, &mut batch);
                *next += 1;
            }
            // Announced while the lock is held: batches reach the backend in order.
            self.run
                .repo
                .backend()
                .prefetch_many(FileKind::Pack, &batch);
            return;
        }
        self.run
            .repo
            .backend()
            .prefetch_many(FileKind::Pack, &batch);
    }

    fn reads_of(&self, unit: &Unit, budget: u64, out: &mut Vec<(String, u64, u64)>) {
        match &unit.part {
            Some((whole, k)) => whole.reads_of(self.run.index, *k, budget, out),
            None => {
                if let Some(f) = self.files.get(unit.file) {
                    file::reads_of(self.run.index, &f.node, budget, out);
                }
            }
        }
    }
}
