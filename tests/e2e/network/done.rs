//! The "done" for remote repositories through a faulty network: a 79 MB snapshot
//! over a 0.5 MB/s uplink and through random resets, on S3 and SFTP at once; and a check
//! through a lost connection that must not report damage.

use std::process::Stdio;
use std::time::{Duration, Instant};

use snapvault_remote::test_proxy::{Faults, Proxy};

use super::{
    assert_no_ssh_left, library, port_of, proxied, s, s3_proxy, s3_via, sftp_proxy, sftp_via,
};
use crate::common::*;
use crate::remote::{Remote, no_servers, restore_matches, var};

/// The same repository, reached directly instead of through proxy `p` (to check and
/// restore at full speed after a slow or faulty run).
pub(super) fn direct(r: &Remote, p: &Proxy) -> Remote {
    let via = format!("127.0.0.1:{}", p.port());
    let (to, sep) = if r.url.starts_with("s3:") {
        (port_of(&var("SV_S3_ENDPOINT")).to_string(), "/")
    } else {
        (var("SV_SFTP_PORT"), ":")
    };
    let url = r
        .url
        .replacen(&format!("{via}{sep}"), &format!("127.0.0.1:{to}{sep}"), 1);
    assert_ne!(url, r.url, "not a proxied location");
    Remote::with_url(url)
}

/// 25.2, the "done": a 79 MB snapshot finishes over a 0.5 MB/s uplink, on S3 and
/// SFTP at the same time, each behind its own proxy — about 160 s, the longest test here.
#[test]
fn slow_uplink_79_mb_snapshot_finishes() {
    if no_servers() {
        return;
    }
    let work = tempdir();
    let src = library(work.path(), 2100, 10, 7_900_000);
    let slow = Faults {
        bandwidth: Some(500_000),
        ..Faults::default()
    };
    let s3p = s3_proxy(slow.clone());
    let sftpp = sftp_proxy(slow);
    let s3 = s3_via(&s3p, "uplink");
    let sftp = sftp_via(&sftpp, "uplink");
    std::thread::scope(|sc| {
        for r in [&s3, &sftp] {
            let src = &src;
            sc.spawn(move || {
                r.ok(&["init"]);
                let snap = r.command(&["snapshot", &s(src)]);
                let out = run_command(snap, Duration::from_secs(1200));
                assert_eq!(out.code, Some(0), "{}:\n{out}", r.url);
            });
        }
    });
    for (r, p) in [(&s3, &s3p), (&sftp, &sftpp)] {
        let d = direct(r, p);
        d.ok(&["check", "--read-data"]);
        restore_matches(&d, "latest", &src);
    }
    assert_no_ssh_left(sftpp.port(), "uplink");
}

/// 25.1 and 25.3, the "done": a 79 MB snapshot finishes through random resets.
/// SFTP: p = 0.05 per 64 KiB relayed (the figure, a reset every 1.3 MB on average);
/// uploads resume where they broke off, and a restore through p = 0.01 completes. S3 has no
/// resumable single upload: at p = 0.05 per 64 KiB a 16 MiB PUT would get through once in
/// 500,000 tries, so there the same p is rolled per MiB (a pack gets through 44% of the
/// time) and each pack is retried until it does.
#[test]
fn random_resets_79_mb_snapshot_finishes() {
    if no_servers() {
        return;
    }
    let work = tempdir();
    let src = library(work.path(), 2200, 10, 7_900_000);
    let s3p = s3_proxy(Faults {
        reset_p: 0.05,
        reset_unit: 1 << 20,
        ..Faults::default()
    });
    let sftpp = sftp_proxy(Faults {
        reset_p: 0.05,
        ..Faults::default()
    });
    // At one roll per MiB the random resets of S3 number about 4 per run, and none or one
    // in about one run of ten: one reset in the middle of an upload is made certain.
    s3p.drop_once_after(30_000_000);
    let mut s3 = s3_via(&s3p, "resets");
    s3.set("SNAPVAULT_RETRIES", "20");
    let mut sftp = sftp_via(&sftpp, "resets");
    sftp.set("SNAPVAULT_RETRIES", "6");
    std::thread::scope(|sc| {
        for r in [&s3, &sftp] {
            let src = &src;
            sc.spawn(move || {
                r.ok(&["init"]);
                let snap = r.command(&["snapshot", &s(src)]);
                let out = run_command(snap, Duration::from_secs(900));
                assert_eq!(out.code, Some(0), "{}:\n{out}", r.url);
            });
        }
    });
    assert!(s3p.resets() >= 1, "S3: no reset at all");
    assert!(sftpp.resets() >= 20, "SFTP: only {} resets", sftpp.resets());
    sftpp.set(Faults {
        reset_p: 0.01,
        ..Faults::default()
    });
    let before = sftpp.resets();
    restore_matches(&sftp, "latest", &src);
    assert!(sftpp.resets() > before, "the restore saw no reset");
    for (r, p) in [(&s3, &s3p), (&sftp, &sftpp)] {
        direct(r, p).ok(&["check", "--read-data"]);
    }
    assert_no_ssh_left(sftpp.port(), "resets");
}

/// 25.4: `check --read-data` when the server goes away in the middle: what it could not
/// read is "not checked", never "damaged", the damage list is not touched, and the next
/// snapshot uploads nothing again.
#[test]
fn check_through_a_lost_server_reports_no_damage() {
    if no_servers() {
        return;
    }
    let work = tempdir();
    let src = library(work.path(), 2300, 3, 6_000_000);
    for backend in ["s3", "sftp"] {
        let (p, r) = proxied(backend, "lost");
        let mut d = direct(&r, &p);
        // One cache for both: the damage list the check writes is the one snapshot reads.
        let cache = r.env.iter().find(|(k, _)| k == "XDG_CACHE_HOME").cloned();
        if let Some((k, v)) = cache {
            d.set(&k, &v);
        }
        d.ok(&["init"]);
        d.ok(&["snapshot", &s(&src)]);
        // Slow enough to be caught in the middle.
        p.set(Faults {
            bandwidth: Some(2_000_000),
            ..Faults::default()
        });
        let mut check = r.command(&["check", "--read-data"]);
        check.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = check.spawn().expect("check");
        let t = Instant::now();
        while p.relayed() < 3_000_000 {
            assert!(t.elapsed() < Duration::from_secs(120), "check read nothing");
            std::thread::sleep(Duration::from_millis(20));
        }
        let port = p.port();
        drop(p); // the server is gone: refused from now on
        let out = child.wait_with_output().expect("check ends");
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            out.status.code(),
            Some(3),
            "{backend}: not reported as an incomplete check (4 would be damage):\n{text}"
        );
        assert!(text.contains("not checked: pack"), "{backend}:\n{text}");
        assert!(
            !text.lines().any(|l| l.starts_with("damaged:")),
            "{backend}:\n{text}"
        );
        let again = d.ok(&["snapshot", "--json", &s(&src)]).json();
        assert_eq!(
            again["summary"]["bytes_added"].as_u64(),
            Some(0),
            "{backend}: data uploaded again after a lost connection: {again}"
        );
        d.ok(&["check", "--read-data"]);
        assert_no_ssh_left(port, "lost");
    }
}
