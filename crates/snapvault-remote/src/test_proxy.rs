//! A fault-injecting TCP proxy for tests: put it between snapvault and a real server (moto,
//! sshd) on 127.0.0.1 and make the network misbehave the way a home uplink does — drop a
//! connection after N bytes, add delay, stall (keep connections open but move nothing),
//! reset connections at random, cap the bandwidth. Faults can be changed while traffic flows.
//!
//! Blocking std threads only (two per connection), so it runs in any test without a runtime.
//! Resets are real TCP resets (`SO_LINGER` 0), so the client sees `ECONNRESET`/`EPIPE`.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

mod http;
mod refuse;

pub use refuse::ChecksumRefusal;

/// The unit the random reset is rolled for: the model, "p per 64 KiB relayed".
pub const RESET_UNIT: u64 = 64 << 10;

/// What the proxy does to traffic. `Faults::default()` relays faithfully.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Every connection is reset once it has relayed this many bytes (both directions).
    pub drop_each_after: Option<u64>,
    /// Added latency before each piece of data is passed on.
    pub delay: Duration,
    /// Probability that a connection is reset, rolled for every `reset_unit` bytes it
    /// relays in either direction.
    pub reset_p: f64,
    /// The unit `reset_p` is rolled for; 0 means [`RESET_UNIT`] (64 KiB).
    pub reset_unit: u64,
    /// Bytes per second for all connections and both directions together.
    pub bandwidth: Option<u64>,
    /// Play a server that does not know S3's checksums: a request carrying an
    /// `x-amz-checksum-…` header is refused this way by the proxy and never passed on.
    pub refuse_checksums: Option<ChecksumRefusal>,
}

struct Shared {
    faults: Faults,
    /// One-shot: when the proxy's total traffic reaches this, the connection relaying at
    /// that moment is reset.
    drop_once_at: Option<u64>,
    /// Once the proxy's total traffic reaches this, it stalls.
    stall_at: Option<u64>,
    /// When the bandwidth cap lets the next byte through.
    next_free: Instant,
    conns: Vec<Arc<Conn>>,
}

struct State {
    shared: Mutex<Shared>,
    stalled: AtomicBool,
    closed: AtomicBool,
    /// Bytes relayed by all connections.
    total: AtomicU64,
    resets: AtomicU64,
    accepted: AtomicU64,
    /// Every HTTP request line clients sent, in order (see [`Proxy::requests`]).
    requests: Mutex<Vec<String>>,
    /// One-shot: the body of the next request whose line starts with this gets one byte
    /// flipped on its way (see [`Proxy::flip_a_byte_of_next`]).
    flip: Mutex<Option<String>>,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct Conn {
    client: TcpStream,
    server: TcpStream,
    dead: AtomicBool,
    relayed: AtomicU64,
}

impl Conn {
    /// A TCP reset on both sides: linger 0 and the sockets close once both threads let go.
    /// True only for the call that reset it: both directions' threads may cross a limit at
    /// once, and the connection is one reset, counted once.
    fn reset(&self) -> bool {
        if self.dead.swap(true, Ordering::SeqCst) {
            return false;
        }
        for s in [&self.client, &self.server] {
            linger_zero(s);
            // SHUT_RD sends nothing on the wire; it only wakes the thread reading.
            let _ = s.shutdown(Shutdown::Read);
        }
        true
    }
}

fn linger_zero(s: &TcpStream) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket we own, with a correctly sized value.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// Small socket buffers, so that a bandwidth cap or a stall pushes back on the sender at
/// once instead of after megabytes of kernel buffering (as a real slow link does).
fn small_buffers(fd: i32) {
    let size: libc::c_int = 128 << 10;
    for opt in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
        // SAFETY: setsockopt on a socket we own, with a correctly sized value.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                &size as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

/// A proxy listening on a port of 127.0.0.1, relaying to `upstream`. Dropping it resets
/// every connection and stops listening (later connections are refused).
pub struct Proxy {
    port: u16,
    state: Arc<State>,
    accepter: Option<thread::JoinHandle<()>>,
}

impl Proxy {
    pub fn start(upstream: SocketAddr, faults: Faults) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        small_buffers(listener.as_raw_fd());
        let port = listener.local_addr()?.port();
        let state = Arc::new(State {
            shared: Mutex::new(Shared {
                faults,
                drop_once_at: None,
                stall_at: None,
                next_free: Instant::now(),
                conns: Vec::new(),
            }),
            stalled: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            total: AtomicU64::new(0),
            resets: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            requests: Mutex::new(Vec::new()),
            flip: Mutex::new(None),
        });
        let st = state.clone();
        let accepter = thread::Builder::new()
            .name(format!("proxy-{port}"))
            .spawn(move || accept_loop(listener, upstream, st))?;
        Ok(Proxy {
            port,
            state,
            accepter: Some(accepter),
        })
    }

    /// A proxy in front of `127.0.0.1:port`.
    pub fn to_local(port: u16, faults: Faults) -> std::io::Result<Proxy> {
        Proxy::start(SocketAddr::from(([127, 0, 0, 1], port)), faults)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Replace the faults (for connections already open too).
    pub fn set(&self, faults: Faults) {
        self.state.lock().faults = faults;
    }

    /// Once `n` more bytes have gone through the proxy, the connection carrying them is
    /// reset (once).
    pub fn drop_once_after(&self, n: u64) {
        let now = self.state.total.load(Ordering::SeqCst);
        self.state.lock().drop_once_at = Some(now + n);
    }

    /// Stop moving data, on open and new connections alike, once the proxy as a whole has
    /// relayed `n` more bytes (0: now). Connections stay open: a black hole.
    pub fn stall_after(&self, n: u64) {
        let now = self.state.total.load(Ordering::SeqCst);
        if n == 0 {
            self.state.stalled.store(true, Ordering::SeqCst);
        } else {
            self.state.lock().stall_at = Some(now + n);
        }
    }

    /// Move data again after a stall.
    pub fn resume(&self) {
        self.state.lock().stall_at = None;
        self.state.stalled.store(false, Ordering::SeqCst);
    }

    /// Reset every open connection now.
    pub fn reset_all(&self) {
        let conns = std::mem::take(&mut self.state.lock().conns);
        for c in conns {
            if c.reset() {
                self.state.resets.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    /// Connections reset so far (by faults or [`Proxy::reset_all`]).
    pub fn resets(&self) -> u64 {
        self.state.resets.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.state.accepted.load(Ordering::SeqCst)
    }

    /// Bytes relayed so far, both directions.
    pub fn relayed(&self) -> u64 {
        self.state.total.load(Ordering::SeqCst)
    }

    /// The HTTP/1.1 request lines clients have sent so far ("PUT /bucket/data/… HTTP/1.1"),
    /// in the order they were sent, connections interleaved; "?" where a connection could
    /// not be followed (a chunked body). For S3 through the proxy: what each command asks.
    /// Damage in transit, once: one byte in the middle of the body of the next request
    /// whose request line starts with `line_start` ("PUT /bucket/repo/data/") is flipped.
    pub fn flip_a_byte_of_next(&self, line_start: &str) {
        *self.state.flip.lock().unwrap_or_else(|p| p.into_inner()) = Some(line_start.into());
    }

    pub fn requests(&self) -> Vec<String> {
        self.state
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.closed.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees `closed` and drops the listener; once it has
        // ended, connecting is refused.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.accepter.take() {
            let _ = t.join();
        }
        self.reset_all();
    }
}

fn accept_loop(listener: TcpListener, upstream: SocketAddr, st: Arc<State>) {
    for incoming in listener.incoming() {
        if st.closed.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = incoming else { continue };
        st.accepted.fetch_add(1, Ordering::SeqCst);
        let st = st.clone();
        // Connect upstream off the accept thread: a stalled upstream must not block accepts.
        let _ = thread::Builder::new()
            .name("proxy-conn".into())
            .spawn(move || open(client, upstream, st));
    }
}

fn open(client: TcpStream, upstream: SocketAddr, st: Arc<State>) {
    let Ok(server) = TcpStream::connect(upstream) else {
        // Upstream refused: the client sees a reset, as if the proxy were not there.
        linger_zero(&client);
        return;
    };
    small_buffers(server.as_raw_fd());
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let conn = Arc::new(Conn {
        client,
        server,
        dead: AtomicBool::new(false),
        relayed: AtomicU64::new(0),
    });
    {
        let mut sh = st.lock();
        sh.conns.retain(|c| !c.dead.load(Ordering::SeqCst));
        sh.conns.push(conn.clone());
    }
    let (conn2, st2) = (conn.clone(), st.clone());
    let up = thread::Builder::new()
        .name("proxy-up".into())
        .spawn(move || relay(c2, &conn2.server, &conn2, &st2, true));
    relay(s2, &conn.client, &conn, &st, false);
    if let Ok(t) = up {
        let _ = t.join();
    }
    // The last references go: the sockets close (with a reset if `Conn::reset` ran).
    st.lock().conns.retain(|c| !Arc::ptr_eq(c, &conn));
}

/// Copy `from` → `to` until either side ends, applying the faults. `up`: the client's
/// side, whose HTTP requests are logged.
fn relay(mut from: TcpStream, to: &TcpStream, conn: &Conn, st: &State, up: bool) {
    let mut buf = vec![0u8; 64 << 10];
    let mut log = http::RequestLog::default();
    let mut refuser: Option<refuse::Refuser> = None;
    let mut lines = Vec::new();
    let mut since_roll = 0u64;
    let _ = to.set_write_timeout(Some(Duration::from_millis(200)));
    while !conn.dead.load(Ordering::SeqCst) {
        if st.stalled.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(20));
            continue;
        }
        let (delay, bandwidth) = {
            let sh = st.lock();
            if up && refuser.is_none() {
                refuser = sh.faults.refuse_checksums.map(refuse::Refuser::new);
            }
            (sh.faults.delay, sh.faults.bandwidth)
        };
        // Under a cap, read little at a time so the pace is even.
        let want = match bandwidth {
            Some(b) => (b / 20).clamp(1024, 16 << 10) as usize,
            None => buf.len(),
        };
        let n = match from.read(&mut buf[..want]) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if !delay.is_zero() {
            thread::sleep(delay);
        }
        if let Some(b) = bandwidth {
            pace(st, n as u64, b);
        }
        while st.stalled.load(Ordering::SeqCst) && !conn.dead.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(20));
        }
        if up {
            log.feed(&mut buf[..n], &mut lines, &st.flip);
            if !lines.is_empty() {
                st.requests
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .append(&mut lines);
            }
        }
        match refuser.as_mut() {
            Some(r) => {
                let f = r.feed(&buf[..n]);
                if !write_all(to, &f.forward, conn) {
                    break;
                }
                if !f.answers.iter().all(|a| write_all(&conn.client, a, conn)) {
                    break;
                }
            }
            None if !write_all(to, &buf[..n], conn) => break,
            None => {}
        }
        let before = conn.relayed.fetch_add(n as u64, Ordering::SeqCst);
        let total = st.total.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
        since_roll += n as u64;
        if faults_fire(st, before + n as u64, total, &mut since_roll) {
            if conn.reset() {
                st.resets.fetch_add(1, Ordering::SeqCst);
            }
            break;
        }
    }
    // The other direction ends too: a half-open connection would only confuse the client.
    if !conn.dead.load(Ordering::SeqCst) {
        let _ = to.shutdown(Shutdown::Write);
    }
}

/// Decide after each piece whether this connection is cut now (and start a stall).
fn faults_fire(st: &State, relayed: u64, total: u64, since_roll: &mut u64) -> bool {
    let mut sh = st.lock();
    if let Some(at) = sh.stall_at
        && total >= at
    {
        sh.stall_at = None;
        st.stalled.store(true, Ordering::SeqCst);
    }
    if sh.drop_once_at.is_some_and(|at| total >= at) {
        sh.drop_once_at = None;
        return true;
    }
    if sh.faults.drop_each_after.is_some_and(|n| relayed >= n) {
        return true;
    }
    let p = sh.faults.reset_p;
    let unit = match sh.faults.reset_unit {
        0 => RESET_UNIT,
        u => u,
    };
    while *since_roll >= unit {
        *since_roll -= unit;
        if p > 0.0 && rand::random::<f64>() < p {
            return true;
        }
    }
    false
}

/// Wait until the shared bandwidth budget lets `n` bytes through.
fn pace(st: &State, n: u64, bytes_per_sec: u64) {
    let wait_until = {
        let mut sh = st.lock();
        let now = Instant::now();
        let start = sh.next_free.max(now);
        let cost = Duration::from_secs_f64(n as f64 / bytes_per_sec.max(1) as f64);
        sh.next_free = start + cost;
        sh.next_free
    };
    let now = Instant::now();
    if wait_until > now {
        thread::sleep(wait_until - now);
    }
}

/// Write everything unless the connection is reset meanwhile (a stalled reader on the other
/// side must not keep this thread from noticing).
fn write_all(mut to: &TcpStream, mut data: &[u8], conn: &Conn) -> bool {
    while !data.is_empty() {
        if conn.dead.load(Ordering::SeqCst) {
            return false;
        }
        match to.write(data) {
            Ok(0) => return false,
            Ok(n) => data = &data[n..],
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on a free port.
    fn echo() -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        thread::spawn(move || {
            for s in l.incoming().flatten() {
                thread::spawn(move || {
                    let mut r = s.try_clone().unwrap();
                    let mut w = s;
                    let _ = std::io::copy(&mut r, &mut w);
                });
            }
        });
        port
    }

    /// Send `n` bytes through and read the echo back; the byte count that came back.
    fn roundtrip(port: u16, n: usize) -> std::io::Result<usize> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(20)))?;
        let mut r = s.try_clone()?;
        let data: Vec<u8> = (0..n).map(|i| i as u8).collect();
        let w = thread::spawn(move || {
            let mut s = s;
            let _ = s.write_all(&data);
            let _ = s.shutdown(Shutdown::Write);
        });
        let mut got = Vec::new();
        let res = r.read_to_end(&mut got);
        let _ = w.join();
        res.map(|_| got.len())
    }

    #[test]
    fn relays_faithfully_by_default() {
        let p = Proxy::to_local(echo(), Faults::default()).unwrap();
        assert_eq!(roundtrip(p.port(), 1 << 20).unwrap(), 1 << 20);
        assert_eq!(p.relayed(), 2 << 20);
        assert_eq!(p.resets(), 0);
    }

    #[test]
    fn drops_each_connection_after_n_bytes_with_a_reset() {
        let faults = Faults {
            drop_each_after: Some(100_000),
            ..Faults::default()
        };
        let p = Proxy::to_local(echo(), faults).unwrap();
        let r = roundtrip(p.port(), 1 << 20);
        match r {
            Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
            Ok(n) => assert!(n < 1 << 20, "the connection was not cut: {n}"),
        }
        assert_eq!(p.resets(), 1);
        // The one-shot drop cuts one connection only.
        p.set(Faults::default());
        p.drop_once_after(10_000);
        assert!(roundtrip(p.port(), 100_000).map_or(true, |n| n < 100_000));
        assert_eq!(roundtrip(p.port(), 100_000).unwrap(), 100_000);
    }

    #[test]
    fn resets_at_random() {
        let faults = Faults {
            reset_p: 1.0,
            ..Faults::default()
        };
        let p = Proxy::to_local(echo(), faults).unwrap();
        assert!(roundtrip(p.port(), 1 << 20).map_or(true, |n| n < 1 << 20));
        assert!(p.resets() >= 1);
    }

    #[test]
    fn caps_bandwidth_and_stalls() {
        let faults = Faults {
            bandwidth: Some(400_000),
            ..Faults::default()
        };
        let p = Proxy::to_local(echo(), faults).unwrap();
        let t = Instant::now();
        assert_eq!(roundtrip(p.port(), 200_000).unwrap(), 200_000);
        // 400 kB in both directions at 400 kB/s: at least (nearly) a second.
        assert!(
            t.elapsed() >= Duration::from_millis(900),
            "{:?}",
            t.elapsed()
        );
        p.set(Faults::default());
        p.stall_after(0);
        let s = TcpStream::connect(("127.0.0.1", p.port())).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        (&s).write_all(b"hello").unwrap();
        let mut b = [0u8; 5];
        let e = (&s).read(&mut b).unwrap_err();
        assert!(matches!(
            e.kind(),
            ErrorKind::WouldBlock | ErrorKind::TimedOut
        ));
        p.resume();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        (&s).read_exact(&mut b).unwrap();
        assert_eq!(&b, b"hello");
    }

    #[test]
    fn refuses_once_dropped() {
        let p = Proxy::to_local(echo(), Faults::default()).unwrap();
        let port = p.port();
        drop(p);
        let e = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    }
}
