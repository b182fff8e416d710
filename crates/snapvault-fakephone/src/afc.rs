//! The AFC server: a read-only view of the library folder as the phone's media root. Each
//! connection reads and answers requests in order while a writer puts the replies on the
//! [`crate::link::Link`] (turnaround, shared bandwidth).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::{Sock, State};
use snapvault_phonewire::afc::{
    self as wire, HEADER_LEN as AFC_HEADER_LEN, Request as AfcRequest, op, status,
};

/// Largest single `FileRefRead` served (bigger requests get a short read, like afcd).
const MAX_READ: u64 = 8 << 20;
use wire::MODE_RDONLY;

struct OpenFile {
    file: File,
    pos: u64,
}

struct Conn {
    st: Arc<State>,
    files: HashMap<u64, OpenFile>,
    next_fd: u64,
    /// File data buffers back from the writer, to be filled again.
    spare: mpsc::UnboundedReceiver<Vec<u8>>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // afcd releases a connection's handles when it goes away.
        self.st
            .open_handles
            .fetch_sub(self.files.len(), Ordering::SeqCst);
    }
}

enum Reply {
    Status(u64),
    Data(Vec<u8>),
    Fd(u64),
    Tell(u64),
}

/// Maps an AFC path onto the library; refuses to leave it.
fn resolve(root: &Path, afc_path: &str) -> Option<PathBuf> {
    let mut p = root.to_path_buf();
    for comp in afc_path.split('/') {
        match comp {
            "" | "." => {}
            ".." => return None,
            c if c.contains('\\') => return None,
            c => p.push(c),
        }
    }
    Some(p)
}

fn normalize(device_path: &str) -> String {
    device_path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

fn ns(t: io::Result<std::time::SystemTime>) -> Option<u128> {
    t.ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
}

use wire::encode_kv as kv;

fn io_status(e: &io::Error) -> u64 {
    match e.kind() {
        io::ErrorKind::NotFound => status::OBJECT_NOT_FOUND,
        io::ErrorKind::PermissionDenied => status::PERM_DENIED,
        _ => status::UNKNOWN_ERROR,
    }
}

impl Conn {
    fn path(&self, afc_path: &str) -> Result<PathBuf, u64> {
        resolve(&self.st.cfg.library, afc_path).ok_or(status::PERM_DENIED)
    }

    fn read_dir(&self, path: &str) -> Reply {
        let dir = match self.path(path) {
            Ok(p) => p,
            Err(s) => return Reply::Status(s),
        };
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
                return Reply::Status(status::INVALID_ARG);
            }
            Err(e) => return Reply::Status(io_status(&e)),
        };
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        let mut out = b".\0..\0".to_vec();
        for n in names {
            out.extend_from_slice(n.as_bytes());
            out.push(0);
        }
        Reply::Data(out)
    }

    fn file_info(&self, path: &str) -> Reply {
        let p = match self.path(path) {
            Ok(p) => p,
            Err(s) => return Reply::Status(s),
        };
        let md = match std::fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) => return Reply::Status(io_status(&e)),
        };
        let ifmt = if md.file_type().is_symlink() {
            "S_IFLNK"
        } else if md.is_dir() {
            "S_IFDIR"
        } else {
            "S_IFREG"
        };
        let mtime = ns(md.modified()).unwrap_or(0);
        let birth = ns(md.created()).unwrap_or(mtime);
        let mut pairs = vec![
            ("st_size", md.len().to_string()),
            ("st_blocks", md.len().div_ceil(512).to_string()),
            ("st_nlink", if md.is_dir() { "2" } else { "1" }.to_string()),
            ("st_ifmt", ifmt.to_string()),
            ("st_mtime", mtime.to_string()),
            ("st_birthtime", birth.to_string()),
        ];
        if md.file_type().is_symlink()
            && let Ok(t) = std::fs::read_link(&p)
        {
            pairs.push(("st_link_target", t.to_string_lossy().into_owned()));
        }
        Reply::Data(kv(&pairs))
    }

    fn dev_info(&self) -> Reply {
        Reply::Data(kv(&[
            ("Model", self.st.cfg.model.clone()),
            ("FSTotalBytes", (128u64 << 30).to_string()),
            ("FSFreeBytes", (32u64 << 30).to_string()),
            ("FSBlockSize", "4096".to_string()),
        ]))
    }

    fn open(&mut self, mode: u64, path: &str) -> Reply {
        if mode != MODE_RDONLY {
            return Reply::Status(status::PERM_DENIED);
        }
        let p = match self.path(path) {
            Ok(p) => p,
            Err(s) => return Reply::Status(s),
        };
        let dev = normalize(path);
        if self.st.cfg.icloud_only.iter().any(|c| normalize(c) == dev) {
            // The asset is listed but its original lives in iCloud only.
            return Reply::Status(status::READ_ERROR);
        }
        match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => return Reply::Status(status::OBJECT_IS_DIR),
            Ok(_) => {}
            Err(e) => return Reply::Status(io_status(&e)),
        }
        if let Some(max) = self.st.cfg.max_open_files
            && self.st.open_handles.load(Ordering::SeqCst) >= max
        {
            return Reply::Status(status::NO_RESOURCES);
        }
        match File::open(&p) {
            Ok(file) => {
                let fd = self.next_fd;
                self.next_fd += 1;
                self.files.insert(fd, OpenFile { file, pos: 0 });
                self.st.open_handles.fetch_add(1, Ordering::SeqCst);
                Reply::Fd(fd)
            }
            Err(e) => Reply::Status(io_status(&e)),
        }
    }

    fn read(&mut self, fd: u64, len: u64) -> Result<Vec<u8>, u64> {
        let f = self.files.get_mut(&fd).ok_or(status::INVALID_ARG)?;
        // Never allocate more than what is left of the file.
        let left = f
            .file
            .metadata()
            .map(|m| m.len().saturating_sub(f.pos))
            .unwrap_or(0);
        let want = len.min(MAX_READ).min(left);
        // A buffer the writer has sent already, if there is one (no new pages to fault in).
        let mut buf = self.spare.try_recv().unwrap_or_default();
        buf.clear();
        if (&mut f.file).take(want).read_to_end(&mut buf).is_err() {
            return Err(status::READ_ERROR);
        }
        f.pos += buf.len() as u64;
        Ok(buf)
    }

    fn seek(&mut self, fd: u64, whence: u64, offset: i64) -> Reply {
        let Some(f) = self.files.get_mut(&fd) else {
            return Reply::Status(status::INVALID_ARG);
        };
        let to = match whence {
            0 if offset >= 0 => SeekFrom::Start(offset as u64),
            1 => SeekFrom::Current(offset),
            2 => SeekFrom::End(offset),
            _ => return Reply::Status(status::INVALID_ARG),
        };
        match f.file.seek(to) {
            Ok(p) => {
                f.pos = p;
                Reply::Status(status::SUCCESS)
            }
            Err(_) => Reply::Status(status::INVALID_ARG),
        }
    }
}

/// A reply as header (with its header payload) and payload, kept apart so file data is not
/// copied once more.
fn packet(num: u64, r: Reply) -> (Vec<u8>, Vec<u8>) {
    match r {
        Reply::Status(code) => (
            wire::encode_reply(num, &wire::Reply::Status(code)),
            Vec::new(),
        ),
        Reply::Data(d) => {
            let h = wire::Header {
                entire_len: (AFC_HEADER_LEN + d.len()) as u64,
                this_len: AFC_HEADER_LEN as u64,
                packet_num: num,
                opcode: op::DATA,
            };
            (h.encode().to_vec(), d)
        }
        Reply::Fd(fd) => (
            wire::encode_reply(num, &wire::Reply::Opened(fd)),
            Vec::new(),
        ),
        Reply::Tell(p) => (
            wire::encode_reply(num, &wire::Reply::Position(p)),
            Vec::new(),
        ),
    }
}

/// A reply on its way out, with the time the link has carried it.
enum Out {
    /// `data`: the file bytes in it.
    Packet {
        at: Instant,
        head: Vec<u8>,
        body: Vec<u8>,
        data: usize,
    },
    /// The phone is unplugged after these bytes (the start of a packet).
    Cut { at: Instant, bytes: Vec<u8> },
}

/// How long a connection had no request to answer (the client kept none in flight).
#[derive(Default)]
struct Idle {
    since: Option<Instant>,
    total: std::time::Duration,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Replies the reader may have queued ahead of the writer.
const QUEUED_REPLIES: usize = 64;

/// Waits until the link has carried a reply. A time already past (no turnaround, no
/// bandwidth limit) costs nothing: tokio's timer rounds every deadline up to its next
/// millisecond, so even `sleep_until(now)` would hold each reply up to 1 ms, and a
/// phone "without limits" would answer no faster than one reply per timer tick.
async fn wait_until(at: Instant) {
    if at > Instant::now() {
        tokio::time::sleep_until(at).await;
    }
}

/// Writes each reply once the link has carried it.
async fn write_replies(
    mut w: WriteHalf<Sock>,
    mut rx: mpsc::Receiver<Out>,
    st: Arc<State>,
    in_flight: Arc<AtomicUsize>,
    spare: mpsc::UnboundedSender<Vec<u8>>,
    idle: Arc<Mutex<Idle>>,
) -> io::Result<()> {
    // File data served: bytes, first and last reply carrying some.
    let mut served: (u64, Option<Instant>, Option<Instant>) = (0, None, None);
    while let Some(out) = rx.recv().await {
        match out {
            Out::Packet {
                at,
                head,
                body,
                data,
            } => {
                wait_until(at).await;
                w.write_all(&head).await?;
                w.write_all(&body).await?;
                if in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
                    lock(&idle).since = Some(Instant::now());
                }
                if data > 0 {
                    let _ = spare.send(body);
                }
                if data > 0 {
                    let now = Instant::now();
                    served.0 += data as u64;
                    served.1.get_or_insert(now);
                    served.2 = Some(now);
                }
            }
            Out::Cut { at, bytes } => {
                wait_until(at).await;
                st.unplugged.store(true, Ordering::SeqCst);
                w.write_all(&bytes).await?;
                w.flush().await?;
                return Ok(());
            }
        }
    }
    if let (true, (n, Some(first), Some(last))) = (st.cfg.report, served) {
        let secs = (last - first).as_secs_f64();
        let rate = if secs > 0.0 {
            n as f64 / secs / 1e6
        } else {
            0.0
        };
        let idle = lock(&idle).total.as_secs_f64();
        eprintln!(
            "afc: {n} file bytes in {secs:.3} s ({rate:.2} MB/s) from the first to the last; \
             {idle:.3} s without a request to answer"
        );
    }
    Ok(())
}

pub(crate) async fn serve(s: Sock, st: Arc<State>) -> io::Result<()> {
    let (r, w) = tokio::io::split(s);
    let (tx, rx) = mpsc::channel(QUEUED_REPLIES);
    // Requests received and not yet answered on this connection.
    let in_flight = Arc::new(AtomicUsize::new(0));
    let idle = Arc::new(Mutex::new(Idle::default()));
    // Buffers of file data sent, back to the reader.
    let (spare_tx, spare_rx) = mpsc::unbounded_channel();
    // Requests are read and answered in order while earlier replies are still on the link.
    let (read, written) = tokio::join!(
        read_requests(r, tx, st.clone(), in_flight.clone(), spare_rx, idle.clone()),
        write_replies(w, rx, st, in_flight, spare_tx, idle)
    );
    read.and(written)
}

async fn read_requests(
    mut s: ReadHalf<Sock>,
    tx: mpsc::Sender<Out>,
    st: Arc<State>,
    in_flight: Arc<AtomicUsize>,
    spare: mpsc::UnboundedReceiver<Vec<u8>>,
    idle: Arc<Mutex<Idle>>,
) -> io::Result<()> {
    let mut conn = Conn {
        st: st.clone(),
        files: HashMap::new(),
        next_fd: 3,
        spare,
    };
    let link = &st.link;
    loop {
        let mut hdr = [0u8; AFC_HEADER_LEN];
        match s.read_exact(&mut hdr).await {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let h = wire::decode_header(&hdr, wire::MAX_REQUEST_PAYLOAD)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        // Both bounded by decode_afc_header.
        let mut hp = vec![0u8; h.header_payload_len()];
        s.read_exact(&mut hp).await?;
        let mut payload = vec![0u8; h.payload_len()];
        s.read_exact(&mut payload).await?;
        let arrived = Instant::now();
        let waiting = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        if waiting == 1 {
            let mut i = lock(&idle);
            if let Some(since) = i.since.take() {
                i.total += arrived - since;
            }
        }
        st.max_in_flight.fetch_max(waiting, Ordering::SeqCst);
        let num = h.packet_num;
        let request = wire::decode_request(&h, &hp);
        let is_read = matches!(request, Ok(AfcRequest::Read { .. }));
        let reply = match request {
            Err(_) => Reply::Status(status::OP_HEADER_INVALID),
            Ok(AfcRequest::ReadDir(p)) => conn.read_dir(&p),
            Ok(AfcRequest::GetFileInfo(p)) => conn.file_info(&p),
            Ok(AfcRequest::GetDevInfo) => conn.dev_info(),
            Ok(AfcRequest::Open { mode, path }) => conn.open(mode, &path),
            Ok(AfcRequest::Read { fd, len }) => {
                if st.cfg.stall {
                    // Keep the socket, never answer: the client's timeout must fire.
                    std::future::pending::<()>().await;
                }
                st.afc_read_ops.fetch_add(1, Ordering::SeqCst);
                st.max_read_request.fetch_max(len, Ordering::SeqCst);
                match conn.read(fd, len) {
                    Err(code) => Reply::Status(code),
                    Ok(data) => {
                        let n = data.len() as u64;
                        if let Some(limit) = st.cfg.disconnect_after_bytes {
                            let served = st.afc_bytes_served.load(Ordering::SeqCst);
                            if served + n > limit {
                                // Unplugged mid-packet: header and part of the data, then gone.
                                let part = (limit.saturating_sub(served)) as usize;
                                let mut pkt = wire::encode(num, op::DATA, &[], &data);
                                pkt.truncate(AFC_HEADER_LEN + part.min(data.len()));
                                st.afc_bytes_served.fetch_add(part as u64, Ordering::SeqCst);
                                let at = link.schedule(arrived, pkt.len());
                                let _ = tx.send(Out::Cut { at, bytes: pkt }).await;
                                return Ok(());
                            }
                        }
                        st.afc_bytes_served.fetch_add(n, Ordering::SeqCst);
                        Reply::Data(data)
                    }
                }
            }
            Ok(AfcRequest::Seek { fd, whence, offset }) => conn.seek(fd, whence, offset),
            Ok(AfcRequest::Tell { fd }) => match conn.files.get(&fd) {
                Some(f) => Reply::Tell(f.pos),
                None => Reply::Status(status::INVALID_ARG),
            },
            Ok(AfcRequest::Close { fd }) => match conn.files.remove(&fd) {
                Some(_) => {
                    st.open_handles.fetch_sub(1, Ordering::SeqCst);
                    Reply::Status(status::SUCCESS)
                }
                None => Reply::Status(status::INVALID_ARG),
            },
            Ok(AfcRequest::Other(_)) => Reply::Status(status::OP_NOT_SUPPORTED),
        };
        let data = match &reply {
            Reply::Data(d) if is_read => d.len(),
            _ => 0,
        };
        let (head, body) = packet(num, reply);
        let at = link.schedule(arrived, head.len() + body.len());
        let out = Out::Packet {
            at,
            head,
            body,
            data,
        };
        if tx.send(out).await.is_err() {
            // The writer is gone: the client closed the connection.
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_stays_inside() {
        let root = Path::new("/lib");
        assert_eq!(
            resolve(root, "/DCIM/100APPLE/A.HEIC"),
            Some(PathBuf::from("/lib/DCIM/100APPLE/A.HEIC"))
        );
        assert_eq!(resolve(root, "/"), Some(PathBuf::from("/lib")));
        assert_eq!(resolve(root, "/DCIM/../../etc/passwd"), None);
        assert_eq!(normalize("/DCIM//100APPLE/./A"), "DCIM/100APPLE/A");
    }
}
