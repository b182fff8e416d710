//! 15.6 through a real network: `repair --apply` with the server gone in the middle of its
//! survey stops, naming the pack and the error, and changes nothing — no pack is dropped
//! from the index, no index file is removed, no snapshot rewritten.

use std::process::Stdio;
use std::time::{Duration, Instant};

use snapvault_remote::test_proxy::Faults;

use super::done::direct;
use super::{assert_no_ssh_left, library, proxied, s};
use crate::common::*;
use crate::remote::restore_matches;

#[test]
fn repair_through_a_lost_server_changes_nothing() {
    let work = tempdir();
    let src = library(work.path(), 2400, 3, 6_000_000);
    for backend in ["s3", "sftp"] {
        let (p, r) = proxied(backend, "repair-lost");
        let d = direct(&r, &p);
        d.ok(&["init"]);
        d.ok(&["snapshot", &s(&src)]);
        let snapshots = d.ok(&["snapshots", "--json"]).json();
        // Slow enough to be caught in the middle of reading the packs.
        p.set(Faults {
            bandwidth: Some(2_000_000),
            ..Faults::default()
        });
        let mut repair = r.command(&["repair", "--apply", "--forget-damaged"]);
        repair.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = repair.spawn().expect("repair");
        let t = Instant::now();
        while p.relayed() < 3_000_000 {
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "repair read nothing"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let port = p.port();
        drop(p); // the server is gone: refused from now on
        let out = child.wait_with_output().expect("repair ends");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{backend}: repair went on:\n{err}"
        );
        for want in ["pack ", "cannot be read", "nothing was changed"] {
            assert!(err.contains(want), "{backend}: no {want:?}:\n{err}");
        }
        // Everything is as it was: the same snapshots, the index names every pack.
        assert_eq!(
            d.ok(&["snapshots", "--json"]).json(),
            snapshots,
            "{backend}"
        );
        let out = d.ok(&["check", "--read-data"]);
        assert!(out.stdout.contains("no errors found"), "{backend}:\n{out}");
        restore_matches(&d, "latest", &src);
        assert_no_ssh_left(port, "repair-lost");
    }
}
