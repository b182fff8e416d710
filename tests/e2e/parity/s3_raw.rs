//! A repository's objects on the test S3 server read, rewritten and deleted behind
//! snapvault's back, as a provider's fault would change them. The server is moto on
//! `SV_S3_ENDPOINT`, which does not check request signatures (the one that does is on
//! `SV_S3_AUTH_ENDPOINT`): a well-formed Authorization header with any signature is enough,
//! so plain HTTP/1.0 over a socket does, with no S3 client library.

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::remote::{Remote, var};

/// The objects of one S3 repository.
pub(crate) struct Objects {
    /// `host:port` of the server.
    host: String,
    bucket: String,
    /// The repository's folder in the bucket.
    prefix: String,
}

impl Objects {
    pub(crate) fn of(r: &Remote) -> Objects {
        let endpoint = var("SV_S3_ENDPOINT");
        let host = endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let bucket = var("SV_S3_BUCKET");
        let head = format!("s3:{}/{bucket}/", endpoint.trim_end_matches('/'));
        let prefix = r
            .url
            .strip_prefix(&head)
            .unwrap_or_else(|| panic!("{} is not on {head}", r.url))
            .to_string();
        Objects {
            host,
            bucket,
            prefix,
        }
    }

    /// The key of `path` (relative to the repository, `data/ab/ab…`).
    fn key(&self, path: &str) -> String {
        format!("/{}/{}/{path}", self.bucket, self.prefix)
    }

    /// One request; the status and the body of the answer.
    fn request(&self, method: &str, target: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let mut s = TcpStream::connect(&self.host).expect("connecting to the S3 server");
        let head = format!(
            "{method} {target} HTTP/1.0\r\nHost: {}\r\nAuthorization: AWS4-HMAC-SHA256 \
             Credential=snapvault-test/20260101/us-east-1/s3/aws4_request, \
             SignedHeaders=host, Signature=00\r\nContent-Type: application/octet-stream\r\n\
             Content-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        s.write_all(head.as_bytes()).expect("request");
        s.write_all(body).expect("request body");
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).expect("answer");
        let end = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("an HTTP answer");
        let status = String::from_utf8_lossy(&answer[..end])
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .expect("a status");
        (status, answer[end + 4..].to_vec())
    }

    pub(crate) fn get(&self, path: &str) -> Vec<u8> {
        let (status, body) = self.request("GET", &self.key(path), b"");
        assert_eq!(
            status,
            200,
            "GET {path}: {}",
            String::from_utf8_lossy(&body)
        );
        body
    }

    pub(crate) fn put(&self, path: &str, data: &[u8]) {
        let (status, body) = self.request("PUT", &self.key(path), data);
        assert_eq!(
            status,
            200,
            "PUT {path}: {}",
            String::from_utf8_lossy(&body)
        );
    }

    pub(crate) fn delete(&self, path: &str) {
        let (status, body) = self.request("DELETE", &self.key(path), b"");
        assert_eq!(
            status,
            204,
            "DELETE {path}: {}",
            String::from_utf8_lossy(&body)
        );
    }

    /// The paths (relative to the repository) of the objects under `folder`.
    pub(crate) fn list(&self, folder: &str) -> Vec<String> {
        let target = format!(
            "/{}?list-type=2&prefix={}/{folder}/",
            self.bucket, self.prefix
        );
        let (status, body) = self.request("GET", &target, b"");
        let xml = String::from_utf8_lossy(&body);
        assert_eq!(status, 200, "LIST {folder}: {xml}");
        assert!(xml.contains("<IsTruncated>false</IsTruncated>"), "{xml}");
        let strip = format!("{}/", self.prefix);
        xml.split("<Key>")
            .skip(1)
            .filter_map(|k| k.split("</Key>").next())
            .map(|k| k.strip_prefix(&strip).unwrap_or(k).to_string())
            .collect()
    }
}
