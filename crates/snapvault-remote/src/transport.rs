//! The HTTP transport under OpenDAL's S3 service: reqwest, with time limits on *lack of
//! progress* rather than on a request's total duration.
//!
//! A request is abandoned when no data has moved for the stall period: no piece of the body
//! taken by the connection, no byte of the response. A 16 MiB upload at 60 kB/s takes four
//! minutes and is fine; a server that stops answering is noticed after the stall period.
//! Failures carry a [`NetError`] saying which it was (refused, stalled, lost), so the retry
//! policy and the final message can tell them apart.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use http::{Request, Response};
use opendal::{Buffer, ErrorKind, HttpBody, HttpTransport};
use tokio::time::{Instant, Sleep};

use crate::retry::Failure;

/// Pieces an upload body is handed to the connection in: the unit of visible progress.
const PIECE: usize = 64 << 10;

/// A network failure, attached as the source of the OpenDAL error it becomes.
#[derive(Debug, thiserror::Error)]
#[error("{detail}")]
pub(crate) struct NetError {
    pub failure: Failure,
    pub detail: String,
}

impl NetError {
    fn into_opendal(self) -> opendal::Error {
        let temporary = self.failure != Failure::Permanent;
        let msg = self.detail.clone();
        let e = opendal::Error::new(ErrorKind::Unexpected, msg).set_source(self);
        if temporary { e.set_temporary() } else { e }
    }
}

/// The [`NetError`] behind an OpenDAL error, if the network was the problem.
pub(crate) fn net_error(e: &opendal::Error) -> Option<&NetError> {
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(n) = s.downcast_ref::<NetError>() {
            return Some(n);
        }
        src = s.source();
    }
    None
}

/// Cloned for each operator of one backend: the clones share one connection pool.
#[derive(Clone)]
pub(crate) struct Transport {
    client: reqwest::Client,
    stall: Duration,
}

impl Transport {
    pub fn new(stall: Duration) -> Result<Transport, String> {
        let b = reqwest::Client::builder()
            .connect_timeout(stall)
            // An idle connection waiting for an answer over a dead link is noticed too.
            .tcp_keepalive(stall.min(Duration::from_secs(30)))
            .tcp_keepalive_interval(Duration::from_secs(10))
            .tcp_keepalive_retries(3)
            .pool_idle_timeout(Duration::from_secs(30));
        // The kernel gives up on a connection whose sent data stays unacknowledged this long
        // (otherwise it retransmits for about 15 minutes).
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let b = b.tcp_user_timeout(stall);
        let client = b
            .build()
            .map_err(|e| format!("starting the HTTP client: {e}"))?;
        Ok(Transport { client, stall })
    }

    fn stalled(&self) -> opendal::Error {
        NetError {
            failure: Failure::Stalled,
            detail: format!("no data moved for {} s", self.stall.as_secs()),
        }
        .into_opendal()
    }

    fn send_error(&self, e: reqwest::Error, url: &reqwest::Url) -> opendal::Error {
        let at = match (url.host_str(), url.port_or_known_default()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => url.to_string(),
        };
        let io = io_kind(&e);
        let (failure, detail) =
            if e.is_connect() && io == Some(std::io::ErrorKind::ConnectionRefused) {
                (
                    Failure::Refused,
                    format!("connection refused: nothing accepts connections at {at}"),
                )
            } else if e.is_connect() && e.is_timeout() {
                (
                    Failure::Stalled,
                    format!(
                        "could not connect to {at} within {} s (no answer)",
                        self.stall.as_secs()
                    ),
                )
            } else if e.is_connect() {
                (
                    Failure::Refused,
                    format!("cannot connect to {at}: {}", chain(&e)),
                )
            } else if io == Some(std::io::ErrorKind::TimedOut) {
                // The kernel's TCP_USER_TIMEOUT: sent data went unacknowledged.
                (
                    Failure::Stalled,
                    format!(
                        "no data moved for {} s (the connection to {at} timed out)",
                        self.stall.as_secs()
                    ),
                )
            } else if e.is_builder() {
                (Failure::Permanent, format!("bad request: {}", chain(&e)))
            } else {
                (
                    Failure::Transient,
                    format!("connection lost: {}", chain(&e)),
                )
            };
        NetError { failure, detail }.into_opendal()
    }
}

/// The innermost I/O error kind behind a reqwest error.
fn io_kind(e: &reqwest::Error) -> Option<std::io::ErrorKind> {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut kind = None;
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            kind = Some(io.kind());
        }
        src = s.source();
    }
    kind
}

/// An error and its causes on one line, the innermost last ("connection reset by peer").
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        src = s.source();
    }
    parts.join(": ")
}

/// How a request's body is going: when it last moved and how fast it drains.
///
/// "Handed over" is not "sent": the kernel and the HTTP client buffer megabytes (loopback
/// and fast links grow socket buffers to 4 MiB), taken in a burst and then again only as
/// room frees up, in gaps of seconds on a slow link. So silence is allowed for the stall
/// period *plus* the time the buffers may need to drain: what was handed over (at most
/// [`MAX_BUFFERED`]) at the pace the body was taken once the buffers were full, or at
/// [`FLOOR_RATE`] when that pace is not known yet. A dead link is found sooner by the
/// kernel: `TCP_USER_TIMEOUT` (the stall period) ends a connection whose data goes
/// unacknowledged.
struct Watch {
    start: Instant,
    state: std::sync::Mutex<Pace>,
}

#[derive(Default)]
struct Pace {
    /// Milliseconds since `start` of the last progress, and bytes handed over by then.
    last_ms: u64,
    sent: u64,
    /// The first piece taken after a pause: the buffers were full (time, bytes by then).
    full: Option<(u64, u64)>,
}

/// What the kernel and the HTTP client may hold of a body handed over.
const MAX_BUFFERED: u64 = 9 << 19;
/// The slowest link assumed while the pace of a body is not known.
const FLOOR_RATE: u64 = 32 << 10;
/// A pause this long between pieces means the buffers were full.
const PAUSE_MS: u64 = 50;

impl Watch {
    fn new() -> Watch {
        Watch {
            start: Instant::now(),
            state: std::sync::Mutex::new(Pace::default()),
        }
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn pace(&self) -> std::sync::MutexGuard<'_, Pace> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `n` bytes of the body were handed over (0: a byte of the answer arrived).
    fn moved(&self, n: u64) {
        let now = self.now_ms();
        let mut p = self.pace();
        if n > 0 && p.full.is_none() && p.sent > 0 && now - p.last_ms >= PAUSE_MS {
            p.full = Some((now, p.sent));
        }
        p.sent += n;
        p.last_ms = now;
    }

    fn deadline(&self, stall: Duration) -> Instant {
        let p = self.pace();
        let rate = match p.full {
            Some((t, b)) if p.last_ms >= t + 200 => (p.sent - b) * 1000 / (p.last_ms - t),
            Some(_) => 0,
            // No pause at all: the link keeps up with the buffers.
            None if p.last_ms >= 200 => p.sent * 1000 / p.last_ms,
            None => 0,
        };
        let drain = p.sent.min(MAX_BUFFERED) as f64 / rate.max(FLOOR_RATE) as f64;
        self.start + Duration::from_millis(p.last_ms) + Duration::from_secs_f64(drain) + stall
    }

    async fn stalled(&self, stall: Duration) {
        loop {
            let deadline = self.deadline(stall);
            tokio::time::sleep_until(deadline).await;
            if Instant::now() >= self.deadline(stall) {
                return;
            }
        }
    }
}

/// A request body handed to the connection piece by piece, each piece counting as progress.
struct Upload {
    rest: Buffer,
    current: Bytes,
    left: u64,
    watch: Arc<Watch>,
}

impl http_body::Body for Upload {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        while this.current.is_empty() {
            match this.rest.next() {
                Some(b) => this.current = b,
                None => return Poll::Ready(None),
            }
        }
        let n = this.current.len().min(PIECE);
        let piece = this.current.split_to(n);
        this.left -= n as u64;
        this.watch.moved(n as u64);
        Poll::Ready(Some(Ok(http_body::Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.left)
    }
}

/// A response body that fails as stalled when no bytes arrive for the stall period.
struct Download<S> {
    inner: S,
    stall: Duration,
    timer: Pin<Box<Sleep>>,
    stalled: Option<opendal::Error>,
    lost: fn(reqwest::Error) -> opendal::Error,
}

impl<S> Stream for Download<S>
where
    S: Stream<Item = reqwest::Result<Bytes>> + Unpin,
{
    type Item = opendal::Result<Buffer>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(b))) => {
                let next = Instant::now() + this.stall;
                this.timer.as_mut().reset(next);
                Poll::Ready(Some(Ok(Buffer::from(b))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err((this.lost)(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(this.stalled.take().map(Err)),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

fn body_lost(e: reqwest::Error) -> opendal::Error {
    let failure = match io_kind(&e) {
        Some(std::io::ErrorKind::TimedOut) => Failure::Stalled,
        _ => Failure::Transient,
    };
    NetError {
        failure,
        detail: format!("connection lost while receiving: {}", chain(&e)),
    }
    .into_opendal()
}

impl HttpTransport for Transport {
    async fn fetch(&self, req: Request<Buffer>) -> opendal::Result<Response<HttpBody>> {
        let (parts, body) = req.into_parts();
        let is_head = parts.method == http::Method::HEAD;
        let url = reqwest::Url::parse(&parts.uri.to_string()).map_err(|e| {
            opendal::Error::new(ErrorKind::Unexpected, "request url is invalid").set_source(e)
        })?;
        let watch = Arc::new(Watch::new());
        let mut rb = self
            .client
            .request(parts.method, url.clone())
            .headers(parts.headers)
            .version(parts.version);
        if !body.is_empty() {
            let left = body.len() as u64;
            rb = rb.body(reqwest::Body::wrap(Upload {
                rest: body,
                current: Bytes::new(),
                left,
                watch: watch.clone(),
            }));
        }
        let resp = tokio::select! {
            r = rb.send() => r.map_err(|e| self.send_error(e, &url))?,
            _ = watch.stalled(self.stall) => return Err(self.stalled()),
        };
        let length = if is_head || resp.headers().contains_key(http::header::CONTENT_ENCODING) {
            None
        } else {
            resp.content_length()
        };
        let mut out = Response::builder()
            .status(resp.status())
            .version(resp.version())
            .extension(parts.uri);
        if let Some(h) = out.headers_mut() {
            h.extend(resp.headers().iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let stream = Download {
            inner: resp.bytes_stream(),
            stall: self.stall,
            timer: Box::pin(tokio::time::sleep(self.stall)),
            stalled: Some(self.stalled()),
            lost: body_lost,
        };
        out.body(HttpBody::new(stream, length)).map_err(|e| {
            opendal::Error::new(ErrorKind::Unexpected, "building the response").set_source(e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_is_allowed_for_the_stall_period_plus_draining_the_buffers() {
        let stall = Duration::from_secs(5);
        let w = Watch::new();
        assert_eq!(w.deadline(stall), w.start + stall);
        let at = |last_ms, sent, full| {
            let mut p = w.pace();
            *p = Pace {
                last_ms,
                sent,
                full,
            };
        };
        // 4 MiB taken at once, nothing since: the pace is unknown, the floor is assumed.
        at(1, 4 << 20, None);
        assert_eq!(
            w.deadline(stall),
            w.start + Duration::from_millis(1 + 128_000) + stall
        );
        // Then 2 MiB more over 2 s once the buffers were full: 1 MiB/s, so 4.5 MiB drain
        // in 4.5 s.
        at(2001, 6 << 20, Some((1, 4 << 20)));
        assert_eq!(
            w.deadline(stall),
            w.start + Duration::from_millis(2001 + 4500) + stall
        );
    }
}
