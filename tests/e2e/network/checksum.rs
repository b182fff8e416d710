//! S3-compatible servers that do not know S3's additional checksums: snapvault's `PUT`s carry
//! `x-amz-checksum-crc32c`, which such a server refuses (Backblaze B2: 400 InvalidArgument
//! "Unsupported header …"; Cloudflare R2 before it had them: 501 NotImplemented). The proxy
//! plays that server in front of moto. Every upload must still succeed — with `Content-MD5`
//! instead, said once per command — and the data must verify; `SNAPVAULT_S3_CHECKSUM=md5`
//! skips the first try.

use std::collections::HashSet;

use snapvault_remote::test_proxy::{ChecksumRefusal, Faults};

use super::{library, s, s3_proxy, s3_via};
use crate::common::*;
use crate::remote::{no_servers, restore_matches};

/// The fallback's one line on stderr.
const NOTICE: &str = "sending Content-MD5 instead";

/// (`PUT` request lines, distinct objects put) among `lines`.
fn puts(lines: &[String]) -> (usize, usize) {
    let puts: Vec<&String> = lines.iter().filter(|l| l.starts_with("PUT ")).collect();
    let objects: HashSet<&str> = puts.iter().filter_map(|l| l.split(' ').nth(1)).collect();
    (puts.len(), objects.len())
}

#[test]
fn s3_uploads_fall_back_to_content_md5_on_a_server_refusing_checksum_headers() {
    if no_servers() {
        return;
    }
    let proxy = s3_proxy(Faults {
        refuse_checksums: Some(ChecksumRefusal::InvalidArgument),
        ..Faults::default()
    });
    let r = s3_via(&proxy, "no-checksums");
    let init = r.ok(&["init"]);
    assert_eq!(init.stderr.matches(NOTICE).count(), 1, "{init}");
    let work = tempdir();
    // 18 MB of photos: two data packs or more, a tree pack, an index, a snapshot.
    let src = library(work.path(), 8100, 3, 6_000_000);
    let before = proxy.requests().len();
    let snap = r.ok(&["snapshot", &s(&src)]);
    let lines = proxy.requests().split_off(before);
    assert_eq!(snap.stderr.matches(NOTICE).count(), 1, "said once:\n{snap}");
    // One refused PUT (the command's first), then every object once with Content-MD5.
    let (sent, objects) = puts(&lines);
    assert!(objects >= 4, "{lines:#?}");
    assert_eq!(sent, objects + 1, "{lines:#?}");
    r.ok(&["check", "--read-data"]);
    restore_matches(&r, "latest", &src);
}

#[test]
fn s3_checksum_md5_is_a_choice_and_a_501_falls_back_too() {
    if no_servers() {
        return;
    }
    let proxy = s3_proxy(Faults {
        refuse_checksums: Some(ChecksumRefusal::NotImplemented),
        ..Faults::default()
    });
    let mut r = s3_via(&proxy, "md5-chosen");
    r.set("SNAPVAULT_S3_CHECKSUM", "sha1");
    let bad = r.run(&["init"]);
    assert_ne!(bad.code, Some(0), "{bad}");
    assert!(
        bad.stderr.contains("SNAPVAULT_S3_CHECKSUM") && bad.stderr.contains("md5"),
        "{bad}"
    );
    r.set("SNAPVAULT_S3_CHECKSUM", "md5");
    let before = proxy.requests().len();
    let init = r.ok(&["init"]);
    let work = tempdir();
    let src = library(work.path(), 8200, 2, 5_000_000);
    let snap = r.ok(&["snapshot", &s(&src)]);
    let lines = proxy.requests().split_off(before);
    assert!(!init.both().contains(NOTICE) && !snap.both().contains(NOTICE));
    let (sent, objects) = puts(&lines);
    assert_eq!(sent, objects, "chosen MD5: nothing refused:\n{lines:#?}");
    // Without the choice, the 501 makes the command fall back the same way.
    r.set("SNAPVAULT_S3_CHECKSUM", "crc32c");
    write_random(&src.join("DCIM/100APPLE/IMG_9999.HEIC"), 8299, 3_000_000);
    let again = r.ok(&["snapshot", &s(&src)]);
    assert_eq!(again.stderr.matches(NOTICE).count(), 1, "{again}");
    r.ok(&["check", "--read-data"]);
    restore_matches(&r, "latest", &src);
}
