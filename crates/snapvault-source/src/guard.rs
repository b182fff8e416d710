//! A transport that sits under idevice's lockdown client and validates every frame header
//! the phone sends before idevice sees it.
//!
//! idevice 0.1.68 trusts lengths from the wire: its lockdown reader allocates whatever u32
//! length it is sent. Wrapping the socket in a [`FrameGuard`] bounds those lengths with our
//! own decoder ([`crate::wire`]): a bad header becomes an `InvalidData` I/O error that
//! idevice passes back up, and nothing is allocated for it. (AFC does not go through
//! idevice: [`crate::afc`] decodes its frames itself.)
//!
//! Only the plaintext frames before `StartSession` can be checked; once the caller arms
//! `tls` and the phone starts its TLS handshake (a record starting with 0x16 at a frame
//! boundary), the guard steps aside (TLS records are bounded by rustls).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::wire::lockdown;

/// A lockdown frame's length prefix.
const HEADER_LEN: usize = 4;

#[derive(Debug, PartialEq, Eq)]
enum State {
    Header,
    DeliverHeader,
    Body,
}

#[derive(Debug)]
pub(crate) struct FrameGuard<S> {
    inner: S,
    tls: Arc<AtomicBool>,
    state: State,
    hdr: [u8; HEADER_LEN],
    have: usize,
    delivered: usize,
    body_left: u64,
    passthrough: bool,
}

impl<S> FrameGuard<S> {
    /// Guards a lockdown connection; set `tls` just before starting the session.
    pub(crate) fn lockdown(inner: S, tls: Arc<AtomicBool>) -> Self {
        FrameGuard {
            inner,
            tls,
            state: State::Header,
            hdr: [0; HEADER_LEN],
            have: 0,
            delivered: 0,
            body_left: 0,
            passthrough: false,
        }
    }

    fn validate(&self) -> io::Result<u64> {
        let bad = |e: crate::wire::WireError| io::Error::new(io::ErrorKind::InvalidData, e);
        Ok(lockdown::decode_len(self.hdr).map_err(bad)? as u64)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FrameGuard<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if this.passthrough && this.state != State::DeliverHeader {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            match this.state {
                State::Header => {
                    let need = HEADER_LEN;
                    while this.have < need {
                        let mut rb = ReadBuf::new(&mut this.hdr[this.have..need]);
                        ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
                        let n = rb.filled().len();
                        if n == 0 {
                            if this.have == 0 {
                                return Poll::Ready(Ok(())); // clean EOF between frames
                            }
                            return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
                        }
                        this.have += n;
                        if this.tls.load(Ordering::SeqCst) && this.hdr[0] == 0x16 {
                            // The phone started its TLS handshake: step aside.
                            this.passthrough = true;
                            break;
                        }
                    }
                    if !this.passthrough {
                        this.body_left = this.validate()?;
                    }
                    this.delivered = 0;
                    this.state = State::DeliverHeader;
                }
                State::DeliverHeader => {
                    let n = buf.remaining().min(this.have - this.delivered);
                    buf.put_slice(&this.hdr[this.delivered..this.delivered + n]);
                    this.delivered += n;
                    if this.delivered == this.have {
                        this.have = 0;
                        this.state = State::Body;
                    }
                    return Poll::Ready(Ok(()));
                }
                State::Body => {
                    if this.body_left == 0 {
                        this.state = State::Header;
                        continue;
                    }
                    let max = (buf.remaining() as u64).min(this.body_left) as usize;
                    let dst = buf.initialize_unfilled_to(max);
                    let mut rb = ReadBuf::new(dst);
                    ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
                    let n = rb.filled().len();
                    if n == 0 {
                        return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
                    }
                    buf.advance(n);
                    this.body_left -= n as u64;
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FrameGuard<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
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

    #[test]
    fn lockdown_bounds_then_steps_aside_for_tls() {
        rt().block_on(async {
            let (mut a, b) = tokio::io::duplex(1 << 16);
            let tls = Arc::new(AtomicBool::new(false));
            let mut g = FrameGuard::lockdown(b, tls.clone());
            a.write_all(&[0, 0, 0, 2, b'h', b'i']).await.unwrap();
            let mut got = [0u8; 6];
            g.read_exact(&mut got).await.unwrap();
            tls.store(true, Ordering::SeqCst);
            a.write_all(&[0x16, 3, 3, 0xff, 0xff, 1]).await.unwrap();
            let mut got = [0u8; 6];
            g.read_exact(&mut got).await.unwrap();
            assert_eq!(got, [0x16, 3, 3, 0xff, 0xff, 1]);

            let (mut a, b) = tokio::io::duplex(1 << 16);
            let mut g = FrameGuard::lockdown(b, Arc::new(AtomicBool::new(false)));
            a.write_all(&[0x7f, 0, 0, 0]).await.unwrap();
            let mut got = [0u8; 4];
            assert_eq!(
                g.read_exact(&mut got).await.unwrap_err().kind(),
                io::ErrorKind::InvalidData
            );
        });
    }
}
