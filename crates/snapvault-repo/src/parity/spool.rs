//! The packs a command has just written, kept in memory so their parity is computed from
//! the same bytes instead of reading them back (issue 21's cost: packs are written past the
//! page cache, so a read-back is a second pass over the disk; on S3/SFTP a second download).
//!
//! Groups are cut as packs arrive: once [`Spool`] holds two groups' worth (2 × *K*), the
//! first *K* become a group whose parity is written at once, while the command still runs
//! (under its lock, after the packs are durable: format.md §15.5), and their bytes are
//! dropped. What is held at the end — *K* to 2*K* − 1 packs, or fewer when the command wrote
//! fewer — is the last group, covered after the command. So groups come out as
//! [`super::store::plan_groups`] cuts them and memory holds at most 2*K* − 1 packs, never
//! more than [`SPOOL_BUDGET`]: a pack that would pass it is not kept (its parity reads it
//! back later, as before).
//!
//! The buffers of a covered group come back ([`Spool::recycle`]) and hold the next packs:
//! a fresh 16 MiB buffer per pack cost 4,096 page faults (about 0.24 CPU-s per GiB of
//! packs), so a long first snapshot faults in at most 2*K* buffers, not one per pack.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::MAX_MEMBERS;

/// Most bytes of packs held at once (two groups of 20 packs of 16 MiB at 5 % fit).
pub const SPOOL_BUDGET: usize = 640 << 20;

/// Packs written by the running command, with their bytes, in the order written.
#[derive(Debug)]
pub struct Spool {
    /// Packs per group (⌈100 / percent⌉).
    per_group: usize,
    budget: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    order: Vec<String>,
    bytes: HashMap<String, Arc<Vec<u8>>>,
    held: usize,
    /// Buffers of covered groups, for the next packs (at most one group's worth).
    free: Vec<Vec<u8>>,
}

/// A group cut from the spool: its packs' names and bytes, in the order written.
pub type SpooledGroup = Vec<(String, Arc<Vec<u8>>)>;

impl Spool {
    pub fn new(percent: u8, budget: usize) -> Spool {
        Spool {
            per_group: 100usize
                .div_ceil(usize::from(percent.max(1)))
                .clamp(1, MAX_MEMBERS),
            budget,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keep pack `name` (durable now) with its bytes; returns a group to cover now when two
    /// groups' worth are held. A pack that does not fit in the budget is not kept.
    pub fn written(&self, name: &str, data: &[u8]) -> Option<SpooledGroup> {
        let mut st = self.lock();
        if st.held + data.len() > self.budget || st.bytes.contains_key(name) {
            return None;
        }
        st.held += data.len();
        st.order.push(name.to_string());
        let mut buf = st.free.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(data);
        st.bytes.insert(name.to_string(), Arc::new(buf));
        if st.order.len() < 2 * self.per_group || 2 * self.per_group > MAX_MEMBERS {
            return None;
        }
        let names: Vec<String> = st.order.drain(..self.per_group).collect();
        let mut group = Vec::with_capacity(names.len());
        for n in names {
            if let Some(b) = st.bytes.remove(&n) {
                st.held -= b.len();
                group.push((n, b));
            }
        }
        Some(group)
    }

    /// Take back the buffers of a group whose parity is written (those no one else holds),
    /// to hold the next packs in.
    pub fn recycle(&self, group: SpooledGroup) {
        let mut st = self.lock();
        for (_, bytes) in group {
            if st.free.len() >= self.per_group {
                break;
            }
            if let Ok(buf) = Arc::try_unwrap(bytes) {
                st.free.push(buf);
            }
        }
    }

    /// The bytes of pack `name` as written, if held.
    pub fn get(&self, name: &str) -> Option<Arc<Vec<u8>>> {
        self.lock().bytes.get(name).cloned()
    }

    /// Drop what is held (its parity is written).
    pub fn clear(&self) {
        *self.lock() = State::default();
    }

    /// Packs held now.
    pub fn len(&self) -> usize {
        self.lock().order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_cut_at_two_groups_held_and_the_tail_stays() {
        // 50 %: groups of 2 packs; a group is cut when 4 are held.
        let s = Spool::new(50, 1 << 20);
        let cut: Vec<Option<usize>> = (0..7)
            .map(|i| s.written(&format!("p{i}"), &[i as u8; 10]).map(|g| g.len()))
            .collect();
        assert_eq!(cut, [None, None, None, Some(2), None, Some(2), None]);
        // p4, p5, p6 are held: the last group (K to 2K - 1 packs).
        assert_eq!(s.len(), 3);
        assert!(s.get("p0").is_none() && s.get("p6").is_some());
    }

    #[test]
    fn a_covered_groups_buffers_hold_the_next_packs() {
        let s = Spool::new(50, 1 << 20);
        let mut group = None;
        for i in 0..4 {
            group = s.written(&format!("p{i}"), &[i as u8; 1000]);
        }
        let group = group.expect("a group is cut at four packs");
        s.recycle(group);
        // A short pack lands in a recycled buffer (already faulted in), not a new one.
        assert!(s.written("p4", &[4; 10]).is_none());
        let p4 = s.get("p4").unwrap();
        assert_eq!(*p4, vec![4u8; 10]);
        assert!(p4.capacity() >= 1000, "capacity {}", p4.capacity());
    }

    #[test]
    fn the_budget_bounds_what_is_held() {
        let s = Spool::new(50, 25);
        for i in 0..5 {
            assert!(s.written(&format!("p{i}"), &[0; 10]).is_none());
        }
        assert_eq!(s.len(), 2, "a third pack of 10 bytes would pass 25");
    }
}
