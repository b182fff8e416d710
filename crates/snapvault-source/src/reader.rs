//! Reading one file: a producer task on the session's runtime keeps up to
//! `prefetch_blocks` reads of the file in flight on the pipelined connection, hands the
//! blocks to the caller's [`DeviceReader`] and always closes the device handle. A file
//! opened ahead waits, open, until it is allowed to read.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::DeviceOptions;
use crate::afc::{OpError, Pending};
use crate::device::Shared;
use crate::error::SourceError;
use crate::runtime::Runtime;

enum Msg {
    Data(Vec<u8>),
    Eof,
    Err(SourceError),
}

/// Reads one file ahead of its consumer, within the credits it gets (one per block; the
/// reads for them are in flight together), and always closes the device handle.
struct Producer {
    shared: Arc<Shared>,
    /// The handle, or `None` to open the file first (a file opened ahead).
    fd: Option<u64>,
    afc_path: String,
    path: String,
    block: usize,
    credits: Arc<Semaphore>,
    tx: mpsc::Sender<Msg>,
    opened: Option<mpsc::SyncSender<Result<(), OpError>>>,
}

impl Producer {
    /// Reads the file, queues its close and tells the reader how it ended. Returns the
    /// close still in flight: the reader need not wait for it (the phone handles requests in
    /// order, so the handle is free before anything sent later), and the phone's handle
    /// count catches up a turnaround later.
    async fn run(mut self) -> Option<Pending> {
        let fd = match self.fd {
            Some(fd) => fd,
            None => {
                let r = self.shared.open(&self.afc_path).await;
                let fd = r.as_ref().ok().copied();
                if let Some(tx) = self.opened.take() {
                    let _ = tx.send(r.map(|_| ()));
                }
                fd?
            }
        };
        let end = self.read(fd).await;
        // A dead connection needs no close: the phone drops its handles with it.
        let close = self.shared.send_close(fd, &self.path).ok();
        if let Some(m) = end {
            let _ = self.tx.send(m);
        }
        close
    }

    /// Reads until the end of the file, an error, or the reader is dropped (`None`).
    async fn read(&self, fd: u64) -> Option<Msg> {
        let mut in_flight: VecDeque<Pending> = VecDeque::new();
        loop {
            // Every credit the reader gave back is a read on its way.
            loop {
                let permit = if in_flight.is_empty() {
                    // Nothing in flight: wait for room; closed means the reader was dropped.
                    match self.credits.acquire().await {
                        Ok(p) => p,
                        Err(_) => return None,
                    }
                } else {
                    match self.credits.try_acquire() {
                        Ok(p) => p,
                        Err(tokio::sync::TryAcquireError::NoPermits) => break,
                        Err(tokio::sync::TryAcquireError::Closed) => return None,
                    }
                };
                permit.forget();
                match self.shared.send_read(fd, self.block, &self.path) {
                    Ok(p) => in_flight.push_back(p),
                    Err(e) => return Some(Msg::Err(e.for_file(&self.path))),
                }
            }
            let Some(next) = in_flight.pop_front() else {
                continue;
            };
            // While this reply is on its way, a credit the reader gives back goes out as a
            // read at once, not only after this reply arrived: else a block consumed while
            // the next one is still coming would leave a single read in flight, and every
            // block would wait for the phone's turnaround (the loopback pull's pace).
            let reply = self.shared.read(next, self.block, &self.path);
            tokio::pin!(reply);
            let reply = loop {
                tokio::select! {
                    biased;
                    r = &mut reply => break r,
                    permit = self.credits.acquire() => match permit {
                        Ok(p) => {
                            p.forget();
                            match self.shared.send_read(fd, self.block, &self.path) {
                                Ok(p) => in_flight.push_back(p),
                                Err(e) => return Some(Msg::Err(e.for_file(&self.path))),
                            }
                        }
                        Err(_) => return None,
                    },
                }
            };
            // The reads still in flight after the end get empty replies; nobody waits for them.
            match reply {
                Ok(d) if d.is_empty() => return Some(Msg::Eof),
                Ok(d) => {
                    if self.tx.send(Msg::Data(d)).is_err() {
                        return None;
                    }
                }
                Err(e) => return Some(Msg::Err(e.for_file(&self.path))),
            }
        }
    }
}

/// A file being read from the phone; `std::io::Read`. The next blocks are fetched while the
/// caller works. At its end, and when it is dropped, the device handle is closed: the close
/// is on its way before the end is reported or the drop returns (waiting for that is
/// bounded by the session timeout).
///
/// I/O errors carry a [`SourceError`] ([`SourceError::from_io`]): `Unreadable` means skip
/// this file, anything else means the session is over.
pub struct DeviceReader {
    afc_path: String,
    path: String,
    rx: Option<mpsc::Receiver<Msg>>,
    credits: Arc<Semaphore>,
    done: mpsc::Receiver<()>,
    /// For a file opened ahead: whether the open worked (taken by [`DeviceReader::opened`]).
    opened: Option<mpsc::Receiver<Result<(), OpError>>>,
    cur: Vec<u8>,
    pos: usize,
    finished: bool,
    /// Reads are allowed (a file opened ahead is not read until it is needed soon).
    reading: bool,
    wait: Duration,
    shared: Arc<Shared>,
    _rt: Arc<Runtime>,
}

impl std::fmt::Debug for DeviceReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceReader")
            .field("path", &self.path)
            .finish()
    }
}

impl DeviceReader {
    /// Starts reading `afc_path` (handle `fd`, or opening it first when `None`); with
    /// `read == false` the file is only opened, and read from [`DeviceReader::read_ahead`]
    /// on.
    pub(crate) fn start(
        rt: &Arc<Runtime>,
        shared: &Arc<Shared>,
        opts: &DeviceOptions,
        afc_path: String,
        fd: Option<u64>,
        read: bool,
    ) -> DeviceReader {
        let path = afc_path.trim_start_matches('/').to_string();
        let credits = Arc::new(Semaphore::new(if read { opts.prefetch_blocks } else { 0 }));
        let (tx, rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        let (opened_tx, opened_rx) = match fd {
            Some(_) => (None, None),
            None => {
                let (t, r) = mpsc::sync_channel(1);
                (Some(t), Some(r))
            }
        };
        let task = Producer {
            shared: shared.clone(),
            fd,
            afc_path: afc_path.clone(),
            path: path.clone(),
            block: opts.read_block,
            credits: credits.clone(),
            tx,
            opened: opened_tx,
        };
        let sh = shared.clone();
        rt.handle.spawn(async move {
            let close = task.run().await;
            let _ = done_tx.send(());
            if let Some(c) = close {
                let _ = c.reply(&sh.afc).await;
            }
        });
        DeviceReader {
            afc_path,
            path,
            rx: Some(rx),
            credits,
            done: done_rx,
            opened: opened_rx,
            cur: Vec::new(),
            pos: 0,
            finished: false,
            reading: read,
            wait: opts.timeout * 2 + Duration::from_secs(5),
            shared: shared.clone(),
            _rt: rt.clone(),
        }
    }

    pub(crate) fn afc_path(&self) -> &str {
        &self.afc_path
    }

    /// Lets a file that was only opened ahead start reading (`blocks` reads in flight).
    pub(crate) fn read_ahead(&mut self, blocks: usize) {
        if !self.reading {
            self.reading = true;
            self.credits.add_permits(blocks);
        }
    }

    /// For a file opened ahead: waits for the open's outcome.
    pub(crate) fn opened(mut self) -> Result<DeviceReader, OpError> {
        let Some(rx) = self.opened.take() else {
            return Ok(self);
        };
        match rx.recv_timeout(self.wait) {
            Ok(Ok(())) => Ok(self),
            Ok(Err(e)) => Err(e),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(OpError::Fatal(SourceError::Timeout {
                op: format!("opening {}", self.path),
            })),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(OpError::Fatal(SourceError::Disconnected))
            }
        }
    }

    /// Device path being read (`DCIM/…`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The next block as the phone sent it (no copy), `None` at end of file.
    pub fn next_block(&mut self) -> Result<Option<Vec<u8>>, SourceError> {
        if self.pos < self.cur.len() {
            let rest = self.cur.split_off(self.pos);
            self.cur.clear();
            self.pos = 0;
            return Ok(Some(rest));
        }
        if self.finished {
            return Ok(None);
        }
        let Some(rx) = &self.rx else {
            return Ok(None);
        };
        let msg = match rx.recv_timeout(self.wait) {
            Ok(m) => m,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                self.finished = true;
                return Err(SourceError::Timeout {
                    op: format!("reading {}", self.path),
                });
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                self.finished = true;
                return Err(SourceError::Disconnected);
            }
        };
        match msg {
            Msg::Data(d) => {
                self.credits.add_permits(1);
                Ok(Some(d))
            }
            Msg::Eof => {
                self.finished = true;
                Ok(None)
            }
            Msg::Err(e) => {
                self.finished = true;
                Err(e)
            }
        }
    }
}

impl io::Read for DeviceReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.pos >= self.cur.len() {
            match self.next_block()? {
                Some(b) => {
                    let done = std::mem::replace(&mut self.cur, b);
                    self.shared.afc.recycle(done);
                    self.pos = 0;
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Drop for DeviceReader {
    fn drop(&mut self) {
        // Stop the producer (closed credits, closed channel), then wait until it has sent
        // the close of the device handle.
        self.credits.close();
        self.rx = None;
        self.shared.afc.recycle(std::mem::take(&mut self.cur));
        let _ = self.done.recv_timeout(self.wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::afc::AfcConn;
    use crate::wire::afc::{self as wire, Reply, Request};
    use std::sync::atomic::AtomicU64;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    const BLOCK: usize = 64 * 1024;

    /// The next request the client sent, `None` once it has gone.
    async fn request(phone: &mut DuplexStream) -> Option<(u64, Request)> {
        let mut hdr = [0u8; wire::HEADER_LEN];
        phone.read_exact(&mut hdr).await.ok()?;
        let h = wire::decode_header(&hdr, wire::MAX_REQUEST_PAYLOAD).ok()?;
        let mut rest = vec![0u8; h.body_len() as usize];
        phone.read_exact(&mut rest).await.ok()?;
        let hp = rest.get(..h.header_payload_len())?;
        Some((h.packet_num, wire::decode_request(&h, hp).ok()?))
    }

    async fn reply(phone: &mut DuplexStream, num: u64, r: Reply) {
        let _ = phone.write_all(&wire::encode_reply(num, &r)).await;
    }

    /// The reader takes a block while the next one is still coming: the read its credit
    /// pays for goes out at once, before that next block's reply, so the reads in flight
    /// stay as many as the credits.
    #[test]
    fn a_block_taken_sends_its_read_before_the_next_reply_arrives() {
        let rt = Runtime::start().unwrap();
        let (phone, host) = tokio::io::duplex(1 << 20);
        let timeout = Duration::from_secs(30);
        let afc = rt
            .run(async move { Ok(AfcConn::start(Box::new(host), timeout)) })
            .unwrap();
        let shared = Arc::new(Shared {
            afc,
            bytes: AtomicU64::new(0),
        });
        let (seen_tx, seen_rx) = mpsc::channel();
        rt.handle.spawn(async move {
            let mut phone = phone;
            let (first, _) = request(&mut phone).await.unwrap();
            let (second, _) = request(&mut phone).await.unwrap();
            reply(&mut phone, first, Reply::Data(vec![1; BLOCK])).await;
            // Block 2 is not answered until the read for block 3 came (or 10 s passed).
            let third = tokio::time::timeout(Duration::from_secs(10), request(&mut phone))
                .await
                .ok()
                .flatten();
            let _ = seen_tx.send(third.is_some());
            reply(&mut phone, second, Reply::Data(vec![2; BLOCK])).await;
            // The end of the file for every later read; the close succeeds.
            let mut next = third;
            loop {
                match next {
                    Some((n, Request::Read { .. })) => {
                        reply(&mut phone, n, Reply::Data(Vec::new())).await
                    }
                    Some((n, _)) => reply(&mut phone, n, Reply::Status(0)).await,
                    None => break,
                }
                next = request(&mut phone).await;
            }
        });
        let opts = DeviceOptions {
            read_block: BLOCK,
            prefetch_blocks: 2,
            ..DeviceOptions::default()
        };
        let mut r = DeviceReader::start(&rt, &shared, &opts, "/DCIM/A".into(), Some(3), true);
        // Busy elsewhere (chunking the file before, say) while block 1 arrives: the
        // producer is waiting for block 2 when the credit comes back. (Without this pause
        // the reader may take block 1 before the producer looks for credits again.)
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(r.next_block().unwrap(), Some(vec![1; BLOCK]));
        assert!(
            seen_rx.recv().unwrap(),
            "the read paid for by block 1 waited for block 2's reply"
        );
        assert_eq!(r.next_block().unwrap(), Some(vec![2; BLOCK]));
        assert_eq!(r.next_block().unwrap(), None);
    }
}
