//! The AFC connection, pipelined. afcd answers the requests of one connection in order, so
//! a client need not wait for a reply before sending the next request: with several reads
//! in flight the phone's turnaround (and the computer's) is paid once, not per request —
//! usbmuxd went from 3.5 to 23.8 MB/s only by keeping 3 reads in flight
//! (`libimobiledevice/usbmuxd#9`). idevice's `AfcClient` waits for every reply, so the
//! session speaks AFC itself, with the shared codecs of `snapvault-phonewire` (every length
//! bounded before anything is allocated).
//!
//! A writer task sends the requests in the order they were queued; a reader task hands each
//! reply to the request waiting at the front of the queue (the packet numbers must match).
//! Anything that puts the stream out of step — a bad frame, a lost connection, a phone that
//! sends nothing for the whole timeout — ends the connection for every waiting and later
//! request ([`Fatal`]).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Fatal, SourceError, from_device_io};
use crate::mux::Socket;
use crate::wire::afc::{self as wire, Reply, Request, status};

/// What an AFC request can end in.
#[derive(Debug)]
pub(crate) enum OpError {
    /// The phone answered with an AFC status code: this request failed, the connection is
    /// fine.
    Status(u64),
    /// The connection is gone or out of step; the session is over.
    Fatal(SourceError),
}

impl OpError {
    pub(crate) fn for_file(self, path: &str) -> SourceError {
        match self {
            OpError::Status(code) => SourceError::Unreadable {
                path: path.to_string(),
                reason: reason(code),
            },
            OpError::Fatal(e) => e,
        }
    }
}

/// A status code in words.
pub(crate) fn reason(code: u64) -> String {
    match code {
        status::READ_ERROR | status::IO_ERROR => {
            "the phone could not read it; originals kept only in iCloud fail like this".into()
        }
        status::OBJECT_NOT_FOUND => "it is no longer on the phone".into(),
        status::PERM_DENIED => "permission denied".into(),
        status::NO_RESOURCES => "the phone ran out of file handles".into(),
        status::OBJECT_IS_DIR => "it is a folder".into(),
        other => format!("AFC error {other}"),
    }
}

struct Waiter {
    num: u64,
    tx: oneshot::Sender<Reply>,
}

struct Queue {
    next: u64,
    waiting: VecDeque<Waiter>,
    /// Set once; every later request fails with it.
    fatal: Option<Fatal>,
}

/// One AFC connection shared by the whole session.
pub(crate) struct AfcConn {
    /// Request frames for the writer task, queued in the same lock as their waiters.
    frames: mpsc::UnboundedSender<Vec<u8>>,
    queue: Mutex<Queue>,
    /// Bytes received so far: a reply that takes long is not a stalled phone while bytes
    /// arrive.
    received: AtomicU64,
    timeout: Duration,
    /// File data buffers the readers are done with, filled again by the next replies (no
    /// fresh megabytes for the kernel to fault in and hand back for every block).
    spare: Mutex<Vec<Vec<u8>>>,
}

/// Replies this large take a recycled buffer.
const RECYCLE_MIN: usize = 64 * 1024;
/// Buffers kept for recycling.
const SPARE_BUFFERS: usize = 8;

/// A request sent; its reply is awaited with [`Pending::reply`].
pub(crate) struct Pending {
    rx: oneshot::Receiver<Reply>,
    what: String,
}

impl AfcConn {
    /// Starts the reader and writer tasks on the current runtime.
    pub(crate) fn start(sock: Socket, timeout: Duration) -> std::sync::Arc<AfcConn> {
        let (r, w) = tokio::io::split(sock);
        let (frames, rx) = mpsc::unbounded_channel();
        let conn = std::sync::Arc::new(AfcConn {
            frames,
            queue: Mutex::new(Queue {
                next: 1,
                waiting: VecDeque::new(),
                fatal: None,
            }),
            received: AtomicU64::new(0),
            timeout,
            spare: Mutex::new(Vec::new()),
        });
        let c = conn.clone();
        tokio::spawn(async move {
            let e = write_frames(w, rx).await;
            c.fail(Fatal::of(&e));
        });
        let c = conn.clone();
        tokio::spawn(async move {
            let e = read_replies(r, &c).await;
            c.fail(Fatal::of(&e));
        });
        conn
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The error that ended the connection, if it has ended.
    pub(crate) fn fatal(&self) -> Option<Fatal> {
        self.queue().fatal.clone()
    }

    /// Ends the connection: every waiting request and every later one fails with `f` (the
    /// first reason is kept).
    pub(crate) fn fail(&self, f: Fatal) {
        let mut q = self.queue();
        if q.fatal.is_none() {
            q.fatal = Some(f);
        }
        // Dropping the senders wakes the waiters.
        q.waiting.clear();
    }

    /// Takes back a file data buffer for a later reply.
    pub(crate) fn recycle(&self, buf: Vec<u8>) {
        if buf.capacity() >= RECYCLE_MIN {
            let mut spare = self.spare.lock().unwrap_or_else(|p| p.into_inner());
            if spare.len() < SPARE_BUFFERS {
                spare.push(buf);
            }
        }
    }

    fn buffer(&self, len: usize) -> Vec<u8> {
        let mut buf = if len >= RECYCLE_MIN {
            let mut spare = self.spare.lock().unwrap_or_else(|p| p.into_inner());
            spare.pop().unwrap_or_default()
        } else {
            Vec::new()
        };
        buf.clear();
        buf.reserve_exact(len);
        buf
    }

    fn ended(&self) -> SourceError {
        self.fatal()
            .map(|f| f.to_error())
            .unwrap_or(SourceError::Disconnected)
    }

    /// Queues a request without waiting for its reply; `what` names it in a timeout.
    pub(crate) fn send(&self, req: &Request, what: String) -> Result<Pending, OpError> {
        let mut q = self.queue();
        if let Some(f) = &q.fatal {
            return Err(OpError::Fatal(f.to_error()));
        }
        let num = q.next;
        q.next += 1;
        let (tx, rx) = oneshot::channel();
        // In the queue's lock, so frames go out in the order of the waiters.
        if self.frames.send(req.encode(num)).is_err() {
            drop(q);
            return Err(OpError::Fatal(self.ended()));
        }
        q.waiting.push_back(Waiter { num, tx });
        Ok(Pending { rx, what })
    }

    /// One request and its reply.
    pub(crate) async fn request(&self, req: &Request, what: String) -> Result<Reply, OpError> {
        self.send(req, what)?.reply(self).await
    }
}

impl Pending {
    /// The reply; a status other than success is [`OpError::Status`]. Times out only when
    /// the phone has sent nothing at all for the connection's timeout.
    pub(crate) async fn reply(self, conn: &AfcConn) -> Result<Reply, OpError> {
        let mut rx = self.rx;
        loop {
            let before = conn.received.load(Ordering::Relaxed);
            match tokio::time::timeout(conn.timeout, &mut rx).await {
                Ok(Ok(Reply::Status(code))) if code != status::SUCCESS => {
                    return Err(OpError::Status(code));
                }
                Ok(Ok(reply)) => return Ok(reply),
                Ok(Err(_)) => return Err(OpError::Fatal(conn.ended())),
                Err(_) if conn.received.load(Ordering::Relaxed) != before => continue,
                Err(_) => {
                    let e = SourceError::Timeout { op: self.what };
                    conn.fail(Fatal::of(&e));
                    return Err(OpError::Fatal(conn.ended()));
                }
            }
        }
    }
}

async fn write_frames(
    mut w: WriteHalf<Socket>,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
) -> SourceError {
    while let Some(frame) = rx.recv().await {
        if let Err(e) = w.write_all(&frame).await {
            return from_device_io(e);
        }
        // Flush only when nothing else is queued: several requests go out together.
        if rx.is_empty()
            && let Err(e) = w.flush().await
        {
            return from_device_io(e);
        }
    }
    SourceError::Disconnected
}

fn protocol(e: impl std::fmt::Display) -> SourceError {
    SourceError::Protocol(format!("AFC: {e}"))
}

/// Reads replies and hands each to its waiter until the connection fails.
async fn read_replies(mut r: ReadHalf<Socket>, conn: &AfcConn) -> SourceError {
    loop {
        let mut hdr = [0u8; wire::HEADER_LEN];
        if let Err(e) = r.read_exact(&mut hdr).await {
            return from_device_io(e);
        }
        let h = match wire::decode_header(&hdr, wire::MAX_REPLY_PAYLOAD) {
            Ok(h) => h,
            Err(e) => return protocol(e),
        };
        // Bounded by decode_header; read piecewise (into the spare capacity: no zeroing of
        // megabytes) so a long reply counts as progress.
        let len = h.body_len() as usize;
        let mut body = conn.buffer(len);
        while body.len() < len {
            let left = (len - body.len()) as u64;
            match (&mut r).take(left).read_buf(&mut body).await {
                Ok(0) => return SourceError::Disconnected,
                Ok(n) => {
                    conn.received.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) => return from_device_io(e),
            }
        }
        conn.received
            .fetch_add(wire::HEADER_LEN as u64, Ordering::Relaxed);
        let reply = match wire::decode_reply(&h, body) {
            Ok(r) => r,
            Err(e) => return protocol(e),
        };
        let waiter = conn.queue().waiting.pop_front();
        match waiter {
            Some(w) if w.num == h.packet_num => {
                // A waiter that gave up (a reader dropped half-way) just drops the reply.
                let _ = w.tx.send(reply);
            }
            Some(w) => {
                return protocol(format!(
                    "reply {} where the reply to request {} was due",
                    h.packet_num, w.num
                ));
            }
            None => return protocol(format!("reply {} to no request", h.packet_num)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// A hostile phone whose AFC reply claims impossible lengths: a clean, fatal protocol
    /// error (nothing allocated for it), and later requests fail fast.
    #[test]
    fn hostile_lengths_are_a_protocol_error() {
        for (entire, this) in [(u64::MAX, 40), (40, 8), (1 << 40, 48), (47, 48)] {
            rt().block_on(async {
                let (phone, host) = tokio::io::duplex(1 << 16);
                let conn = AfcConn::start(Box::new(host), Duration::from_secs(5));
                let evil = tokio::spawn(async move {
                    let mut phone = phone;
                    let mut req = [0u8; 56];
                    phone.read_exact(&mut req).await.unwrap();
                    let mut reply = Vec::new();
                    for v in [wire::MAGIC, entire, this, 1, 2] {
                        reply.extend_from_slice(&v.to_le_bytes());
                    }
                    reply.extend_from_slice(&[0u8; 64]);
                    let _ = phone.write_all(&reply).await;
                    phone
                });
                let read = Request::Read {
                    fd: 3,
                    len: 1 << 20,
                };
                match conn.request(&read, "reading x".into()).await {
                    Err(OpError::Fatal(SourceError::Protocol(m))) => {
                        assert!(m.contains("AFC"), "{m}")
                    }
                    other => panic!("accepted entire={entire} this={this}: {other:?}"),
                }
                assert!(matches!(
                    conn.send(&read, "again".into()),
                    Err(OpError::Fatal(SourceError::Protocol(_)))
                ));
                let _ = evil.await;
            });
        }
    }

    /// Requests go out before earlier replies came back, and each reply reaches its own
    /// request; a reply out of order ends the connection.
    #[test]
    fn replies_are_matched_in_order_and_out_of_order_is_fatal() {
        rt().block_on(async {
            let (mut phone, host) = tokio::io::duplex(1 << 16);
            let conn = AfcConn::start(Box::new(host), Duration::from_secs(5));
            let a = conn.send(&Request::Tell { fd: 1 }, "a".into()).unwrap();
            let b = conn.send(&Request::Tell { fd: 2 }, "b".into()).unwrap();
            // Both requests reach the phone before it answers either.
            let mut reqs = [0u8; 2 * 48];
            phone.read_exact(&mut reqs).await.unwrap();
            for (num, pos) in [(1, 10u64), (2, 20)] {
                let p = wire::encode_reply(num, &Reply::Position(pos));
                phone.write_all(&p).await.unwrap();
            }
            assert_eq!(a.reply(&conn).await.unwrap(), Reply::Position(10));
            assert_eq!(b.reply(&conn).await.unwrap(), Reply::Position(20));
            let c = conn.send(&Request::Close { fd: 1 }, "c".into()).unwrap();
            let mut req = [0u8; 48];
            phone.read_exact(&mut req).await.unwrap();
            phone
                .write_all(&wire::encode_reply(9, &Reply::Status(0)))
                .await
                .unwrap();
            assert!(matches!(
                c.reply(&conn).await,
                Err(OpError::Fatal(SourceError::Protocol(_)))
            ));
        });
    }
}
