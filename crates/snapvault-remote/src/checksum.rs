//! Which integrity checksum an S3 `PUT` carries, and what to do when the server will not
//! take it.
//!
//! CRC32C (`x-amz-checksum-crc32c`) by default: S3 refuses a body damaged in transit as it
//! does with `Content-MD5`, and it costs next to nothing (MD5 of every pack was half of an
//! S3 snapshot's CPU). But S3-compatible servers that predate S3's additional checksums
//! refuse any request carrying the header — Backblaze B2 answers 400 InvalidArgument
//! "Unsupported header …", Cloudflare R2 answered 501 NotImplemented — so every upload
//! would fail. Such a refusal makes the backend send the request again with `Content-MD5`
//! (which every S3-compatible server knows) and, if that works, use `Content-MD5` for the
//! rest of the command, saying so once on stderr. `SNAPVAULT_S3_CHECKSUM=md5` chooses
//! `Content-MD5` from the start.

use opendal::ErrorKind;

use crate::transport::net_error;

/// The checksum header of a `PUT`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Checksum {
    /// `x-amz-checksum-crc32c`, falling back to `Content-MD5` on a server that refuses it.
    #[default]
    Crc32c,
    /// `Content-MD5` always.
    Md5,
}

impl Checksum {
    /// OpenDAL's name for it (`S3::checksum_algorithm`).
    pub(crate) fn algorithm(self) -> &'static str {
        match self {
            Checksum::Crc32c => "crc32c",
            Checksum::Md5 => "md5",
        }
    }

    pub(crate) fn parse(v: &str) -> Option<Checksum> {
        match v.to_ascii_lowercase().as_str() {
            "crc32c" => Some(Checksum::Crc32c),
            "md5" => Some(Checksum::Md5),
            _ => None,
        }
    }
}

/// S3 error codes with which a server refuses a request for a header it does not know.
const REFUSING_CODES: [&str; 3] = ["NotImplemented", "InvalidArgument", "InvalidRequest"];

/// Did the server refuse the request because of its checksum header (as opposed to the
/// checksum not matching the body, a missing bucket, a denied key, a failing server)? The
/// answer only decides whether the same `PUT` is tried once more with `Content-MD5`: a
/// wrong yes costs one request, and the error of the first try is the one reported.
pub(crate) fn refuses_checksum(e: &opendal::Error) -> bool {
    if net_error(e).is_some() || e.is_temporary() || e.kind() != ErrorKind::Unexpected {
        return false;
    }
    let m = e.message();
    let has_code = |c: &str| m.contains(&format!("code: \"{c}\""));
    // BadDigest: the server checked the checksum and the body did not match it.
    if has_code("BadDigest") {
        return false;
    }
    REFUSING_CODES.iter().any(|c| has_code(c))
        || m.to_ascii_lowercase().contains("checksum")
        || e.to_string().contains("status: 501")
}

/// The one line a command prints when it falls back.
pub(crate) fn notice(target: &str, e: &opendal::Error) -> String {
    format!(
        "snapvault: {target} does not take S3's CRC32C checksum header ({}): sending \
         Content-MD5 instead for the rest of this command (SNAPVAULT_S3_CHECKSUM=md5 skips \
         the first try)",
        crate::errors::describe(e)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3_error(code: &str, message: &str) -> opendal::Error {
        // As OpenDAL's S3 service words an error response it could parse.
        opendal::Error::new(
            ErrorKind::Unexpected,
            format!(
                "S3Error {{ code: \"{code}\", message: \"{message}\", resource: \"\", request_id: \"x\" }}"
            ),
        )
    }

    #[test]
    fn refusals_of_the_header_are_told_from_other_failures() {
        for (code, message) in [
            (
                "InvalidArgument",
                "Unsupported header 'x-amz-checksum-crc32c' received for this API call.",
            ),
            (
                "NotImplemented",
                "Header 'x-amz-checksum-crc32c' with value 'AAAAAA==' not implemented",
            ),
            ("InvalidRequest", "x-amz-checksum-crc32c is not supported"),
            ("UnknownHeader", "x-amz-checksum-crc32c"),
        ] {
            assert!(refuses_checksum(&s3_error(code, message)), "{code}");
        }
        for (code, message) in [
            (
                "BadDigest",
                "The Content-MD5 or checksum value you specified did not match what we received.",
            ),
            ("AccessDenied", "Access Denied"),
            ("NoSuchBucket", "The specified bucket does not exist"),
        ] {
            assert!(!refuses_checksum(&s3_error(code, message)), "{code}");
        }
        let slow = s3_error("SlowDown", "checksum").set_temporary();
        assert!(!refuses_checksum(&slow));
        let denied = opendal::Error::new(ErrorKind::PermissionDenied, "checksum");
        assert!(!refuses_checksum(&denied));
    }

    #[test]
    fn choices_parse() {
        assert_eq!(Checksum::parse("MD5"), Some(Checksum::Md5));
        assert_eq!(Checksum::parse("crc32c"), Some(Checksum::Crc32c));
        assert_eq!(Checksum::parse("sha1"), None);
    }
}
