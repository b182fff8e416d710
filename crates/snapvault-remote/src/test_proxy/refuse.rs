//! A server that does not know S3's additional checksums, played by the proxy: a request
//! carrying an `x-amz-checksum-…` header is answered by the proxy itself with the refusal
//! such servers send, and nothing of it (head or body) reaches the real server. Requests
//! without such a header pass through untouched. The connection stays usable, as it does on
//! those servers (the refusal has a `Content-Length`, no `Connection: close`).
//!
//! HTTP/1.1 without pipelining (a client waits for each answer before its next request on
//! the connection), which is how snapvault's HTTP client talks.

use super::http::find;

/// How the refusal reads: what real servers answer to `x-amz-checksum-crc32c`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecksumRefusal {
    /// `400 InvalidArgument`, "Unsupported header '…' received for this API call." (Backblaze
    /// B2's S3 API).
    InvalidArgument,
    /// `501 NotImplemented`, "Header '…' with value '…' not implemented" (Cloudflare R2 before
    /// it supported the checksums; the generic S3 answer to a header it cannot honour).
    NotImplemented,
}

impl ChecksumRefusal {
    /// The whole HTTP response refusing a request that carried `header: value`.
    fn response(self, header: &str, value: &str) -> Vec<u8> {
        let (status, code, message) = match self {
            ChecksumRefusal::InvalidArgument => (
                "400 Bad Request",
                "InvalidArgument",
                format!("Unsupported header '{header}' received for this API call."),
            ),
            ChecksumRefusal::NotImplemented => (
                "501 Not Implemented",
                "NotImplemented",
                format!("Header '{header}' with value '{value}' not implemented"),
            ),
        };
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
             <Message>{message}</Message><RequestId>proxy</RequestId></Error>"
        );
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }
}

/// Follows one connection's client-to-server bytes, holding back each request's head until
/// it is whole (only then is it known whether to pass the request on).
pub(super) struct Refuser {
    how: ChecksumRefusal,
    /// Bytes of a head not yet complete.
    head: Vec<u8>,
    /// Body bytes of the current request still to come.
    body_left: u64,
    /// The current request is refused: its body is swallowed, then `answer` goes back.
    answer: Option<Vec<u8>>,
    /// A chunked body cannot be followed: pass everything on from there.
    lost: bool,
}

/// What to do with a piece of the client's bytes.
#[derive(Default)]
pub(super) struct Filtered {
    /// Pass these on to the server.
    pub forward: Vec<u8>,
    /// Send these back to the client (one refusal, once its request has fully arrived).
    pub answers: Vec<Vec<u8>>,
}

impl Refuser {
    pub(super) fn new(how: ChecksumRefusal) -> Refuser {
        Refuser {
            how,
            head: Vec::new(),
            body_left: 0,
            answer: None,
            lost: false,
        }
    }

    pub(super) fn feed(&mut self, mut data: &[u8]) -> Filtered {
        let mut out = Filtered::default();
        while !data.is_empty() {
            if self.lost {
                out.forward.extend_from_slice(data);
                break;
            }
            if self.body_left > 0 {
                let n = (self.body_left as usize).min(data.len());
                if self.answer.is_none() {
                    out.forward.extend_from_slice(&data[..n]);
                }
                self.body_left -= n as u64;
                data = &data[n..];
                if self.body_left == 0
                    && let Some(a) = self.answer.take()
                {
                    out.answers.push(a);
                }
                continue;
            }
            let held = self.head.len();
            self.head.extend_from_slice(data);
            let Some(end) = find(&self.head, b"\r\n\r\n") else {
                return out;
            };
            data = &data[end + 4 - held..];
            let mut head = std::mem::take(&mut self.head);
            head.truncate(end + 4);
            let text = String::from_utf8_lossy(&head[..end]).into_owned();
            let mut refused = None;
            for line in text.split("\r\n").skip(1) {
                let Some((k, v)) = line.split_once(':') else {
                    continue;
                };
                let (k, v) = (k.trim(), v.trim());
                if k.eq_ignore_ascii_case("content-length") {
                    self.body_left = v.parse().unwrap_or(0);
                } else if k.eq_ignore_ascii_case("transfer-encoding") {
                    self.lost = true;
                } else if k.to_ascii_lowercase().starts_with("x-amz-checksum-") {
                    refused = Some(self.how.response(&k.to_ascii_lowercase(), v));
                }
            }
            match refused {
                Some(a) if !self.lost => {
                    if self.body_left == 0 {
                        out.answers.push(a);
                    } else {
                        self.answer = Some(a);
                    }
                }
                _ => out.forward.extend_from_slice(&head),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_with_a_checksum_header_is_answered_and_not_passed_on() {
        let stream: &[u8] = b"GET /b/config HTTP/1.1\r\nHost: h\r\n\r\n\
            PUT /b/data/ab/x HTTP/1.1\r\nx-amz-checksum-crc32c: AAAAAA==\r\nContent-Length: 5\r\n\r\nhello\
            PUT /b/data/ab/x HTTP/1.1\r\nContent-MD5: XUFAKrxLKna5cZ2REBfFkg==\r\nContent-Length: 5\r\n\r\nhello";
        for piece in [1, 4, 13, stream.len()] {
            let mut r = Refuser::new(ChecksumRefusal::InvalidArgument);
            let (mut forward, mut answers) = (Vec::new(), Vec::new());
            for c in stream.chunks(piece) {
                let f = r.feed(c);
                forward.extend(f.forward);
                answers.extend(f.answers);
            }
            let want: &[u8] = b"GET /b/config HTTP/1.1\r\nHost: h\r\n\r\n\
                PUT /b/data/ab/x HTTP/1.1\r\nContent-MD5: XUFAKrxLKna5cZ2REBfFkg==\r\nContent-Length: 5\r\n\r\nhello";
            assert_eq!(
                String::from_utf8_lossy(&forward),
                String::from_utf8_lossy(want),
                "pieces of {piece}"
            );
            assert_eq!(answers.len(), 1, "pieces of {piece}");
            let a = String::from_utf8_lossy(&answers[0]);
            assert!(a.starts_with("HTTP/1.1 400 "), "{a}");
            assert!(
                a.contains("<Code>InvalidArgument</Code>")
                    && a.contains("Unsupported header 'x-amz-checksum-crc32c'"),
                "{a}"
            );
        }
    }

    #[test]
    fn not_implemented_is_a_501() {
        let mut r = Refuser::new(ChecksumRefusal::NotImplemented);
        let f = r.feed(b"PUT /x HTTP/1.1\r\nX-Amz-Checksum-Crc32c: AAAAAA==\r\n\r\n");
        assert!(f.forward.is_empty());
        let a = String::from_utf8_lossy(&f.answers[0]).into_owned();
        assert!(
            a.starts_with("HTTP/1.1 501 ") && a.contains("<Code>NotImplemented</Code>"),
            "{a}"
        );
    }
}
