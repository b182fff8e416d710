//! The HTTP/1.1 requests a client sends through the proxy, one line each ("PUT /bucket/…"),
//! read off the client's byte stream: a request's head up to the blank line, then as many
//! body bytes as its `Content-Length` says. Tests count them (requests per pack), never
//! time them. A body sent `chunked` cannot be followed: the connection's later requests are
//! then recorded as one "?" line, so a count never passes by accident.

/// Follows one connection's client-to-server bytes.
#[derive(Default)]
pub(super) struct RequestLog {
    head: Vec<u8>,
    /// Body bytes still to skip before the next request's head.
    body_left: u64,
    /// Where in the current body one byte is to be flipped (see `Proxy::flip_a_byte_of_next`).
    flip_at: Option<u64>,
    lost: bool,
}

/// Heads larger than this are not HTTP from our client: stop following.
const MAX_HEAD: usize = 64 << 10;

impl RequestLog {
    /// Take the next bytes the client sent; push each request line completed in them. The
    /// first request whose line starts with what `flip` holds (taken then) has a byte in
    /// the middle of its body flipped, in `data`, before it is passed on.
    pub(super) fn feed(
        &mut self,
        mut data: &mut [u8],
        out: &mut Vec<String>,
        flip: &std::sync::Mutex<Option<String>>,
    ) {
        while !data.is_empty() && !self.lost {
            if self.body_left > 0 {
                let n = (self.body_left as usize).min(data.len());
                self.body_left -= n as u64;
                if let Some(at) = self.flip_at {
                    match data.get_mut(at as usize) {
                        Some(b) if (at as usize) < n => {
                            *b ^= 0x40;
                            self.flip_at = None;
                        }
                        _ => self.flip_at = Some(at - n as u64),
                    }
                }
                data = &mut data[n..];
                continue;
            }
            // Look for the end of the head in what is held plus the new bytes.
            let held = self.head.len();
            self.head.extend_from_slice(data);
            let Some(end) = find(&self.head, b"\r\n\r\n") else {
                if self.head.len() > MAX_HEAD {
                    self.lose(out);
                }
                return;
            };
            let used = end + 4 - held;
            data = &mut data[used..];
            let head = std::mem::take(&mut self.head);
            let head = String::from_utf8_lossy(&head[..end]);
            let mut lines = head.split("\r\n");
            let line = lines.next().unwrap_or("").to_string();
            let mut wanted = flip.lock().unwrap_or_else(|p| p.into_inner());
            let damage = wanted
                .as_ref()
                .is_some_and(|w| line.starts_with(w.as_str()));
            if damage {
                *wanted = None;
            }
            drop(wanted);
            out.push(line);
            for l in lines {
                let Some((k, v)) = l.split_once(':') else {
                    continue;
                };
                let (k, v) = (k.trim(), v.trim());
                if k.eq_ignore_ascii_case("content-length") {
                    self.body_left = v.parse().unwrap_or(0);
                    if damage && self.body_left > 0 {
                        self.flip_at = Some(self.body_left / 2);
                    }
                } else if k.eq_ignore_ascii_case("transfer-encoding")
                    && v.to_ascii_lowercase().contains("chunked")
                {
                    self.lose(out);
                }
            }
        }
    }

    fn lose(&mut self, out: &mut Vec<String>) {
        self.lost = true;
        out.push("?".into());
    }
}

/// Where `needle` first stands in `hay` (a head's blank line).
pub(super) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_split_at_their_bodies_in_any_pieces() {
        let stream = b"PUT /b/data/ab/x HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n\
                       0123\r\n\r\n89HEAD /b/data/ab/x HTTP/1.1\r\nHost: h\r\n\r\n\
                       GET /b/config HTTP/1.1\r\ncontent-length: 0\r\n\r\n";
        for piece in [1, 3, 7, stream.len()] {
            let mut log = RequestLog::default();
            let mut out = Vec::new();
            let flip = std::sync::Mutex::new(Some("PUT /b/data/".to_string()));
            let mut sent = stream.to_vec();
            for c in sent.chunks_mut(piece) {
                log.feed(c, &mut out, &flip);
            }
            // The PUT's body, "0123\r\n\r\n89", has its middle byte (the 6th) flipped.
            let mut want = stream.to_vec();
            let body = find(stream, b"0123").unwrap();
            want[body + 5] ^= 0x40;
            assert_eq!(sent, want, "pieces of {piece}");
            assert_eq!(
                out,
                [
                    "PUT /b/data/ab/x HTTP/1.1",
                    "HEAD /b/data/ab/x HTTP/1.1",
                    "GET /b/config HTTP/1.1"
                ],
                "pieces of {piece}"
            );
        }
    }

    #[test]
    fn a_chunked_body_is_not_followed() {
        let mut log = RequestLog::default();
        let mut out = Vec::new();
        log.feed(
            &mut b"PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nGET \r\n0\r\n\r\n"
                .to_vec(),
            &mut out,
            &std::sync::Mutex::new(None),
        );
        assert_eq!(out, ["PUT /x HTTP/1.1", "?"]);
    }
}
