//! A transport that sits under idevice and validates every frame header the phone sends
//! before idevice sees it.
//!
//! idevice 0.1.68 trusts lengths from the wire: its AFC reader computes
//! `header_payload_len - 40` and `entire_len - header_payload_len` unchecked (a debug-build
//! panic on underflow) and allocates `vec![0; len]` for any u64 length, and its lockdown reader
//! allocates whatever u32 length it is sent. Wrapping the socket in a [`FrameGuard`] bounds
//! those lengths with our own decoders ([`crate::wire`]): a bad header becomes an
//! `InvalidData` I/O error that idevice passes back up, and nothing is allocated for it.
//!
//! For lockdown, only the plaintext frames before `StartSession` can be checked; once the
//! caller arms `tls` and the phone starts its TLS handshake (a record starting with 0x16 at a
//! frame boundary), the guard steps aside (TLS records are bounded by rustls).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::wire::{afc, lockdown};

#[derive(Debug)]
enum Framing {
    Afc,
    Lockdown { tls: Arc<AtomicBool> },
}

impl Framing {
    fn header_len(&self) -> usize {
        match self {
            Framing::Afc => afc::HEADER_LEN,
            Framing::Lockdown { .. } => 4,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    Header,
    DeliverHeader,
    Body,
}

#[derive(Debug)]
pub(crate) struct FrameGuard<S> {
    inner: S,
    framing: Framing,
    state: State,
    hdr: [u8; afc::HEADER_LEN],
    have: usize,
    delivered: usize,
    body_left: u64,
    passthrough: bool,
}

impl<S> FrameGuard<S> {
    fn new(inner: S, framing: Framing) -> Self {
        FrameGuard {
            inner,
            framing,
            state: State::Header,
            hdr: [0; afc::HEADER_LEN],
            have: 0,
            delivered: 0,
            body_left: 0,
            passthrough: false,
        }
    }

    /// Guards an AFC connection (replies: 40-byte header + body).
    pub(crate) fn afc(inner: S) -> Self {
        Self::new(inner, Framing::Afc)
    }

    /// Guards a lockdown connection; set `tls` just before starting the session.
    pub(crate) fn lockdown(inner: S, tls: Arc<AtomicBool>) -> Self {
        Self::new(inner, Framing::Lockdown { tls })
    }

    fn validate(&self) -> io::Result<u64> {
        let bad = |e: crate::wire::WireError| io::Error::new(io::ErrorKind::InvalidData, e);
        match self.framing {
            Framing::Afc => Ok(
                afc::decode_header(&self.hdr[..self.have], afc::MAX_REPLY_PAYLOAD)
                    .map_err(bad)?
                    .body_len(),
            ),
            Framing::Lockdown { .. } => {
                let p = [self.hdr[0], self.hdr[1], self.hdr[2], self.hdr[3]];
                Ok(lockdown::decode_len(p).map_err(bad)? as u64)
            }
        }
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
                    let need = this.framing.header_len();
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
                        if let Framing::Lockdown { tls } = &this.framing
                            && tls.load(Ordering::SeqCst)
                            && this.hdr[0] == 0x16
                        {
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

    fn afc_packet(body: &[u8]) -> Vec<u8> {
        let mut p = Vec::new();
        for v in [afc::MAGIC, 40 + body.len() as u64, 40, 0, 2] {
            p.extend_from_slice(&v.to_le_bytes());
        }
        p.extend_from_slice(body);
        p
    }

    #[test]
    fn afc_passes_good_frames_and_stops_bad_ones() {
        rt().block_on(async {
            let (mut a, b) = tokio::io::duplex(1 << 16);
            let mut g = FrameGuard::afc(b);
            let mut wire_bytes = afc_packet(b"hello");
            wire_bytes.extend(afc_packet(b""));
            let mut bad = afc_packet(b"");
            bad[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
            wire_bytes.extend(&bad);
            a.write_all(&wire_bytes).await.unwrap();
            let mut got = vec![0u8; 45 + 40];
            g.read_exact(&mut got).await.unwrap();
            assert_eq!(&got[..], &wire_bytes[..85]);
            let mut one = [0u8; 1];
            let e = g.read(&mut one).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        });
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
