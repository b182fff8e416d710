//! The remote backends against real servers on 127.0.0.1: moto's S3 and OpenSSH's sftp
//! (started by `.ci/servers.sh start`): the backend conformance suite that the local
//! backend passes too, then what only remote backends do. One test function, run in order, because the S3
//! credentials are process environment variables.

use std::path::Path;
use std::sync::Arc;

use snapvault_remote::{HostKeys, RemoteOptions};
use snapvault_repo::RepoError;
use snapvault_repo::backend::{Backend, FileKind};
use snapvault_repo::testing::backend::conformance;

fn unique(tag: &str) -> String {
    format!("{tag}-{}", hex::encode(rand::random::<[u8; 6]>()))
}

fn name_of(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// What only remote backends promise beyond the conformance suite: writing the same bytes
/// again succeeds (a retried upload whose reply was lost), other bytes are still refused.
fn retried_upload(b: &Arc<dyn Backend>, what: &str) {
    let data = b"some index bytes".to_vec();
    let n = name_of(&data);
    b.write(FileKind::Index, &n, &data).unwrap();
    b.write(FileKind::Index, &n, &data)
        .unwrap_or_else(|e| panic!("{what}: rewriting identical bytes: {e}"));
    match b.write(FileKind::Index, &n, b"other bytes") {
        Err(RepoError::FileExists(_)) => {}
        other => panic!("{what}: replacing a file must fail with FileExists, got {other:?}"),
    }
    assert_eq!(b.read(FileKind::Index, &n).unwrap(), data, "{what}");
    b.remove(FileKind::Index, &n).unwrap();
}

fn lock_race(b: &Arc<dyn Backend>, what: &str) {
    for round in 0..3 {
        let winners = snapvault_repo::lock::race_exclusive(b, 16);
        assert_eq!(winners, 1, "{what}: round {round}: {winners} winners of 16");
        assert!(
            b.list(FileKind::Lock).unwrap().is_empty(),
            "{what}: locks left behind"
        );
    }
}

/// More than one page of a listing (S3 returns at most 1000 keys a page).
fn listing_pages(b: &Arc<dyn Backend>, n: usize) {
    let names: Vec<String> = (0..n).map(|i| name_of(&i.to_le_bytes())).collect();
    std::thread::scope(|s| {
        for chunk in names.chunks(n.div_ceil(8)) {
            s.spawn(move || {
                for name in chunk {
                    b.write(FileKind::Snapshot, name, name.as_bytes()).unwrap();
                }
            });
        }
    });
    let mut listed: Vec<String> = b
        .list(FileKind::Snapshot)
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    listed.sort();
    let mut want = names;
    want.sort();
    assert_eq!(listed, want);
}

#[test]
fn remote_backends_against_real_servers() {
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if snapvault_remote::test_servers::for_test(&ws).is_none() {
        return;
    }
    let before = ssh_processes();
    exercise();
    // Every backend is dropped, so are the SFTP sessions and their ssh processes.
    snapvault_remote::shutdown();
    // A killed process takes a moment to go: allow it a few seconds. Count only
    // processes this test started (other test binaries may have run before it).
    let start = std::time::Instant::now();
    while ssh_processes() > before && start.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(
        ssh_processes() <= before,
        "ssh processes outlived their sessions"
    );
}

fn ssh_processes() -> usize {
    std::process::Command::new("pgrep")
        .args(["-f", &format!("ssh .*-i {}", env_key())])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().count())
        .unwrap_or(0)
}

fn env_key() -> String {
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    snapvault_remote::test_servers::load(&ws)
        .map(|e| e["SV_SFTP_KEY"].clone())
        .unwrap_or_default()
}

fn exercise() {
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let env = snapvault_remote::test_servers::load(&ws).unwrap_or_else(|e| panic!("{e}"));
    // SAFETY: the only test in this binary, so no other thread reads the environment yet.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "snapvault-test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "snapvault-test-secret");
        std::env::remove_var("AWS_SESSION_TOKEN");
    }
    let opts = RemoteOptions {
        retries: 2,
        ssh_key: Some(env["SV_SFTP_KEY"].clone().into()),
        host_keys: HostKeys::Strict,
        ..Default::default()
    };
    let s3 = |tag: &str| {
        let loc = format!(
            "s3:{}/{}/{}",
            env["SV_S3_ENDPOINT"],
            env["SV_S3_BUCKET"],
            unique(tag)
        );
        snapvault_remote::open(&loc, &opts).unwrap()
    };
    let sftp = |tag: &str| {
        let loc = format!(
            "sftp:{}@{}:{}:{}/{}",
            env["SV_SFTP_USER"],
            env["SV_SFTP_HOST"],
            env["SV_SFTP_PORT"],
            env["SV_SFTP_ROOT"],
            unique(tag)
        );
        snapvault_remote::open(&loc, &opts).unwrap()
    };

    // The same semantics tests as the local backend's (snapvault_repo::testing::backend).
    let b = s3("conformance");
    conformance(b.as_ref(), "s3");
    retried_upload(&b, "s3");
    let b = sftp("conformance");
    conformance(b.as_ref(), "sftp");
    retried_upload(&b, "sftp");
    lock_race(&s3("race"), "s3");
    let b = sftp("race");
    b.create_layout().unwrap();
    lock_race(&b, "sftp");
    listing_pages(&s3("pages"), 1010);

    // Through the metadata cache, a file read once is not fetched again, and it is checked.
    let cache = tempfile::tempdir().unwrap();
    let cached_opts = RemoteOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        ..opts.clone()
    };
    let loc = format!(
        "s3:{}/{}/{}",
        env["SV_S3_ENDPOINT"],
        env["SV_S3_BUCKET"],
        unique("cache")
    );
    let b = snapvault_remote::open(&loc, &cached_opts).unwrap();
    let data = b"a snapshot".to_vec();
    b.write(FileKind::Snapshot, &name_of(&data), &data).unwrap();
    assert_eq!(b.read(FileKind::Snapshot, &name_of(&data)).unwrap(), data);
    let cached: Vec<_> = walk(cache.path());
    assert_eq!(cached.len(), 1, "{cached:?}");

    // Range reads land in the caller's buffer, reused: no second copy of the range
    // (check --read-data's memory on S3), through the cache too.
    let pack: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    b.write(FileKind::Pack, &name_of(&pack), &pack).unwrap();
    let mut buf = Vec::with_capacity(pack.len());
    let at = buf.as_ptr();
    for (offset, len) in [(0usize, pack.len()), (1_000_001, 777_777)] {
        b.read_range_into(
            FileKind::Pack,
            &name_of(&pack),
            offset as u64,
            len,
            &mut buf,
        )
        .unwrap();
        assert_eq!(buf, pack[offset..offset + len], "range {offset}+{len}");
        assert_eq!(
            buf.as_ptr(),
            at,
            "range {offset}+{len}: the buffer was replaced"
        );
    }
    let e = b
        .read_range_into(FileKind::Pack, &name_of(&pack), 2_999_000, 5_000, &mut buf)
        .unwrap_err();
    assert!(e.to_string().contains("ends before byte 3004000"), "{e}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
