//! Read-ahead of pack ranges on remote storage.
//!
//! A restore reads each file's blobs with one range read per run of neighbours, one read at
//! a time per thread: on S3 every read is a request that waits on the server, and a file of
//! a few MiB is one request however large its pack. So callers announce what they will read
//! next ([`Backend::prefetch_many`], in the order they will read it, [`Backend::read_ahead`]
//! bytes ahead) and this layer
//!
//! - merges announced ranges of one pack that follow each other (gaps up to [`GAP`]) into
//!   one request of at most [`MAX_WINDOW`] bytes: a "window";
//! - fetches windows in the background, [`FETCHERS`] requests in flight, while the windows
//!   held stay within [`Limits::held`] (their buffers reused);
//! - serves a read inside a window (fetched or in flight) from memory. A read of an
//!   announced range no window has taken yet takes it (and its neighbours) itself when
//!   the limit allows (else waits for room); any other read goes to the server as before.
//!
//! A window is dropped once its announced bytes have all been read, or when the budget is
//! needed and nobody has read from it for [`STALE`] (announced, then not read: a file that
//! was already right). A window whose request failed is dropped and its readers read for
//! themselves, so errors and retries are the backend's own. Bytes are served as the
//! backend returned them; verifying them stays the caller's job, as for any read.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use snapvault_repo::RepoError;
use snapvault_repo::backend::{Backend, FileInfo, FileKind, PackBuffer};

/// Requests in flight in the background: four keep a loopback S3 server busy (two left a
/// quiet 1 GiB restore waiting on it: 4.4 s, four 1.35 s; docs/benchmarks.md).
pub(crate) const FETCHERS: usize = 4;
/// Largest merged request (a pack is 16 MiB).
pub(crate) const MAX_WINDOW: u64 = 16 << 20;
/// Unannounced bytes between two announced ranges that are read along rather than costing
/// a second request.
pub(crate) const GAP: u64 = 256 << 10;
/// A fetched window nobody read from for this long may give its room to the next one.
const STALE: Duration = Duration::from_secs(2);
/// Announced ranges kept at most (further announcements are ignored).
const MAX_PENDING: usize = 1 << 16;
/// How far down the announced ranges a window looks for neighbours in its pack.
const MERGE_LOOKAHEAD: usize = 1 << 14;

pub struct ReadAhead {
    shared: Arc<Shared>,
    /// Small packs this process wrote, read back from memory ([`crate::kept`]).
    kept: crate::kept::Kept,
}

/// How much a [`ReadAhead`] holds and asks for.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Bytes of windows held at once (fetched, or in flight, or spare buffers).
    pub held: u64,
    /// Bytes callers announce ahead ([`Backend::read_ahead`]): more than `held`, so the
    /// ranges of a pack are mostly announced before its window is taken.
    pub announce: u64,
}

struct Shared {
    inner: Arc<dyn Backend>,
    limits: Limits,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Announced ranges no window covers yet, in the order announced.
    pending: VecDeque<Span>,
    windows: Vec<Window>,
    held: u64,
    /// Buffers of dropped windows, for the next ones (no fresh 16 MiB allocations).
    spare: Vec<Vec<u8>>,
    /// Full-size windows that fit in [`Limits::held`].
    max_windows: usize,
    fetchers: usize,
    closed: bool,
    /// Requests for windows (background and on demand), for tests.
    requests: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Span {
    pack: String,
    start: u64,
    end: u64,
}

struct Window {
    span: Span,
    /// None while the request is in flight; `Err` when it failed.
    data: Option<Result<Vec<u8>, ()>>,
    /// Announced bytes not read yet.
    unread: u64,
    touched: Instant,
}

impl Window {
    fn covers(&self, pack: &str, start: u64, end: u64) -> bool {
        self.span.pack == pack && self.span.start <= start && end <= self.span.end
    }
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl State {
    /// Take the announced range at `i` into a new window (in flight), with every other
    /// announced range of its pack among the next [`MERGE_LOOKAHEAD`] that overlaps it or
    /// lies within [`GAP`] of it, in either direction (whatever the order they were
    /// announced in: a pack holds files in the order the snapshot's threads stored them),
    /// while the window stays within [`MAX_WINDOW`]. Returns the window's span.
    fn take_window(&mut self, i: usize) -> Option<Span> {
        let seed = self.pending.get(i)?.clone();
        let mut near: Vec<(u64, u64, usize)> = self
            .pending
            .iter()
            .enumerate()
            .take(MERGE_LOOKAHEAD.max(i + 1))
            .filter(|(_, s)| s.pack == seed.pack)
            .map(|(k, s)| (s.start, s.end, k))
            .collect();
        near.sort_unstable();
        let at = near.iter().position(|n| n.2 == i)?;
        let (mut start, mut end) = (seed.start, seed.end);
        let (mut lo, mut hi) = (at, at + 1);
        // Forward from the seed, then backward, while the window stays within its cap.
        while let Some(&(s, e, _)) = near.get(hi) {
            if s > end + GAP || e.max(end) - start > MAX_WINDOW {
                break;
            }
            end = end.max(e);
            hi += 1;
        }
        while lo > 0 {
            let (s, e, _) = near[lo - 1];
            if e + GAP < start || end - s.min(start) > MAX_WINDOW {
                break;
            }
            start = start.min(s);
            end = end.max(e);
            lo -= 1;
        }
        let mut taken: Vec<usize> = near[lo..hi].iter().map(|n| n.2).collect();
        taken.sort_unstable();
        let unread = near[lo..hi].iter().map(|n| n.1 - n.0).sum();
        let mut k = 0;
        let mut t = taken.iter().peekable();
        self.pending.retain(|_| {
            let drop = t.peek().is_some_and(|&&x| x == k);
            if drop {
                t.next();
            }
            k += 1;
            !drop
        });
        let span = Span {
            pack: seed.pack,
            start,
            end,
        };
        self.held += end - start;
        self.requests += 1;
        self.windows.push(Window {
            span: span.clone(),
            data: None,
            unread,
            touched: Instant::now(),
        });
        Some(span)
    }

    fn drop_window(&mut self, w: usize) {
        let gone = self.windows.swap_remove(w);
        self.held -= gone.span.end - gone.span.start;
        // Kept while windows and spare buffers together stay within what may be held.
        if let Some(Ok(buf)) = gone.data
            && self.windows.len() + self.spare.len() < self.max_windows
        {
            self.spare.push(buf);
        }
    }

    /// Make room for `len` more bytes by dropping fetched windows nobody read lately.
    fn room_for(&mut self, len: u64, budget: u64) -> bool {
        if self.held == 0 || self.held + len <= budget {
            return true;
        }
        let now = Instant::now();
        while self.held + len > budget {
            let stale = self
                .windows
                .iter()
                .position(|w| matches!(w.data, Some(Ok(_))) && now - w.touched >= STALE);
            match stale {
                Some(w) => self.drop_window(w),
                None => return false,
            }
        }
        true
    }
}

impl Shared {
    /// Fetch `span` and publish it to its window (or its failure).
    fn fetch(&self, span: &Span) {
        let mut buf = lock(&self.state).spare.pop().unwrap_or_default();
        let got = self.inner.read_range_into(
            FileKind::Pack,
            &span.pack,
            span.start,
            (span.end - span.start) as usize,
            &mut buf,
        );
        let mut st = lock(&self.state);
        if let Some(w) = st.windows.iter_mut().find(|w| &w.span == span) {
            w.data = Some(got.map(|()| buf).map_err(|_| ()));
            w.touched = Instant::now();
        }
        drop(st);
        self.changed.notify_all();
    }

    /// A background fetcher: the oldest announced range, with its neighbours, while the
    /// budget allows.
    fn fetcher(self: Arc<Self>) {
        let mut st = lock(&self.state);
        loop {
            if st.closed {
                return;
            }
            // Room for the largest window the merge may make.
            match st.pending.front().map(|_| MAX_WINDOW) {
                Some(len) if st.room_for(len, self.limits.held) => {
                    let Some(span) = st.take_window(0) else {
                        continue;
                    };
                    drop(st);
                    self.fetch(&span);
                    st = lock(&self.state);
                }
                // Over budget: wait for reads (or for a window to go stale).
                Some(_) => {
                    st = self
                        .changed
                        .wait_timeout(st, STALE / 4)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                None => {
                    st = self
                        .changed
                        .wait(st)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
    }
}

impl ReadAhead {
    /// Read-ahead over `inner` within `limits`.
    pub fn new(inner: Arc<dyn Backend>, limits: Limits) -> ReadAhead {
        ReadAhead {
            shared: Arc::new(Shared {
                inner,
                limits,
                state: Mutex::new(State {
                    max_windows: (limits.held / MAX_WINDOW).max(1) as usize,
                    ..State::default()
                }),
                changed: Condvar::new(),
            }),
            kept: crate::kept::Kept::default(),
        }
    }

    /// Window requests made so far (background and on demand).
    pub fn requests(&self) -> u64 {
        lock(&self.shared.state).requests
    }

    /// Serve `[offset, offset + len)` of `pack` from a window, taking an announced range
    /// for one if needed; false if it is neither in a window nor announced (or the
    /// window's request failed): the caller reads it for itself.
    fn serve_from_window(&self, pack: &str, offset: u64, len: usize, buf: &mut Vec<u8>) -> bool {
        let end = offset + len as u64;
        let sh = &self.shared;
        let mut st = lock(&sh.state);
        loop {
            if let Some(w) = st.windows.iter().position(|w| w.covers(pack, offset, end)) {
                let win = &mut st.windows[w];
                match &win.data {
                    None => {
                        st = sh.changed.wait(st).unwrap_or_else(PoisonError::into_inner);
                        continue;
                    }
                    Some(Err(())) => {
                        st.drop_window(w);
                        drop(st);
                        sh.changed.notify_all();
                        return false;
                    }
                    Some(Ok(data)) => {
                        let from = (offset - win.span.start) as usize;
                        let Some(part) = data.get(from..from + len) else {
                            return false;
                        };
                        buf.clear();
                        buf.extend_from_slice(part);
                        win.unread = win.unread.saturating_sub(len as u64);
                        win.touched = Instant::now();
                        if win.unread == 0 {
                            st.drop_window(w);
                            drop(st);
                            sh.changed.notify_all();
                        }
                        return true;
                    }
                }
            }
            // Announced but not taken yet: take it (and its neighbours) now if there is
            // room; else wait for room or for a fetcher to take it (windows held are
            // read by the other threads or go stale: the wait ends).
            let Some(i) = st
                .pending
                .iter()
                .position(|s| s.pack == pack && s.start <= offset && end <= s.end)
            else {
                return false;
            };
            if !st.room_for(MAX_WINDOW, sh.limits.held) {
                st = sh
                    .changed
                    .wait_timeout(st, STALE / 4)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
                continue;
            }
            let Some(span) = st.take_window(i) else {
                return false;
            };
            drop(st);
            sh.fetch(&span);
            st = lock(&sh.state);
        }
    }

    /// Queue `ranges` of packs (name, offset, length) for the fetchers, at once: a fetcher
    /// sees the whole batch when it merges neighbours.
    fn announce(&self, ranges: &[(String, u64, u64)]) {
        let sh = &self.shared;
        let mut st = lock(&sh.state);
        for (pack, offset, len) in ranges {
            let (offset, len) = (*offset, *len);
            if len == 0 {
                continue;
            }
            let end = offset + len;
            if let Some(w) = st.windows.iter_mut().find(|w| w.covers(pack, offset, end)) {
                w.unread += len;
                continue;
            }
            if st.pending.len() >= MAX_PENDING {
                break;
            }
            st.pending.push_back(Span {
                pack: pack.clone(),
                start: offset,
                end,
            });
        }
        while st.fetchers < FETCHERS && !st.pending.is_empty() {
            let shared = sh.clone();
            let spawned = std::thread::Builder::new()
                .name("snapvault-readahead".into())
                .spawn(move || shared.fetcher());
            if spawned.is_err() {
                break;
            }
            st.fetchers += 1;
        }
        drop(st);
        sh.changed.notify_all();
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        let mut st = lock(&self.shared.state);
        st.closed = true;
        st.pending.clear();
        drop(st);
        self.shared.changed.notify_all();
    }
}

impl Backend for ReadAhead {
    fn location(&self) -> String {
        self.shared.inner.location()
    }

    fn exists(&self, kind: FileKind, name: &str) -> Result<bool, RepoError> {
        self.shared.inner.exists(kind, name)
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>, RepoError> {
        self.shared.inner.read(kind, name)
    }

    fn read_range_into(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: usize,
        buf: &mut Vec<u8>,
    ) -> Result<(), RepoError> {
        if kind == FileKind::Pack {
            if let Some(r) = self.kept.read_into(name, offset, len, buf) {
                return r;
            }
            if self.serve_from_window(name, offset, len, buf) {
                return Ok(());
            }
        }
        self.shared
            .inner
            .read_range_into(kind, name, offset, len, buf)
    }

    fn prefetch(&self, kind: FileKind, name: &str, offset: u64, len: u64) {
        if kind == FileKind::Pack {
            self.announce(&[(name.to_string(), offset, len)]);
        }
    }

    fn prefetch_many(&self, kind: FileKind, ranges: &[(String, u64, u64)]) {
        if kind == FileKind::Pack {
            self.announce(ranges);
        }
    }

    fn read_ahead(&self) -> u64 {
        self.shared.limits.announce
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<(), RepoError> {
        self.shared.inner.write(kind, name, data)?;
        if kind == FileKind::Pack {
            self.kept.keep(name, data);
        }
        Ok(())
    }

    fn write_pack(&self, name: &str, pack: PackBuffer) -> Result<(), RepoError> {
        let small = (pack.bytes().len() <= crate::kept::KEEP_MAX).then(|| pack.bytes().to_vec());
        self.shared.inner.write_pack(name, pack)?;
        if let Some(data) = small {
            self.kept.keep(name, &data);
        }
        Ok(())
    }

    fn keeps_packs(&self) -> usize {
        self.shared.inner.keeps_packs()
    }

    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>, RepoError> {
        self.shared.inner.list(kind)
    }

    fn replace(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<(), RepoError> {
        self.shared.inner.replace(kind, name, data)
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64, RepoError> {
        self.shared.inner.size(kind, name)
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<(), RepoError> {
        if kind == FileKind::Pack {
            self.kept.forget(name);
        }
        self.shared.inner.remove(kind, name)
    }

    fn age_secs(&self, kind: FileKind, name: &str) -> Result<Option<u64>, RepoError> {
        self.shared.inner.age_secs(kind, name)
    }

    fn checkpoint_packs(&self) -> usize {
        self.shared.inner.checkpoint_packs()
    }

    fn create_layout(&self) -> Result<(), RepoError> {
        self.shared.inner.create_layout()
    }

    fn leftover_temp_files(&self) -> Result<Vec<FileInfo>, RepoError> {
        self.shared.inner.leftover_temp_files()
    }

    fn remove_leftover_temp_files(&self, min_age_secs: u64) -> Result<usize, RepoError> {
        self.shared.inner.remove_leftover_temp_files(min_age_secs)
    }
}

#[cfg(test)]
mod tests;
