//! Remote repositories through the real binary, against real servers on 127.0.0.1: moto's
//! S3 server and OpenSSH's sshd (started by `.ci/servers.sh start`). Tests that stop or kill
//! a server start a private one of their own, so the shared servers stay up for the others.
//! Every test here starts with `if no_servers() { return; }`: without the servers (a Mac, no
//! root) it says so in one line and skips; CI sets `SV_REQUIRE_SERVERS=1`, so there it fails.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::*;

pub(crate) fn servers() -> &'static HashMap<String, String> {
    static S: OnceLock<HashMap<String, String>> = OnceLock::new();
    S.get_or_init(|| {
        let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        snapvault_remote::test_servers::load(&ws).unwrap_or_else(|e| panic!("{e}"))
    })
}

/// True (after one line saying why) when the test servers are not running here.
pub(crate) fn no_servers() -> bool {
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    snapvault_remote::test_servers::for_test(&ws).is_none()
}

pub(crate) fn var(k: &str) -> String {
    servers().get(k).cloned().unwrap_or_else(|| {
        panic!("test server setting {k} missing: restart `.ci/servers.sh start`")
    })
}

pub(crate) fn unique(tag: &str) -> String {
    format!("{tag}-{}", hex::encode(random_bytes(now_nanos(), 6)))
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7)
}

/// A remote repository as the tests use it: its URL and the environment the binary needs.
pub(crate) struct Remote {
    pub(crate) url: String,
    pub(crate) env: Vec<(String, String)>,
    _cache: tempfile::TempDir,
}

impl Remote {
    pub(crate) fn with_url(url: String) -> Remote {
        let cache = tempdir();
        let env = vec![
            ("AWS_ACCESS_KEY_ID".into(), "snapvault-test".into()),
            (
                "AWS_SECRET_ACCESS_KEY".into(),
                "snapvault-test-secret".into(),
            ),
            ("SNAPVAULT_SFTP_KEY".into(), var("SV_SFTP_KEY")),
            ("SNAPVAULT_RETRIES".into(), "2".into()),
            ("XDG_CACHE_HOME".into(), cache.path().display().to_string()),
        ];
        Remote {
            url,
            env,
            _cache: cache,
        }
    }

    pub(crate) fn s3(tag: &str) -> Remote {
        Remote::with_url(format!(
            "s3:{}/{}/{}",
            var("SV_S3_ENDPOINT"),
            var("SV_S3_BUCKET"),
            unique(tag)
        ))
    }

    pub(crate) fn sftp(tag: &str) -> Remote {
        Remote::sftp_at(&var("SV_SFTP_PORT"), tag)
    }

    pub(crate) fn sftp_at(port: &str, tag: &str) -> Remote {
        Remote::with_url(format!(
            "sftp:{}@{}:{port}:{}/{}",
            var("SV_SFTP_USER"),
            var("SV_SFTP_HOST"),
            var("SV_SFTP_ROOT"),
            unique(tag)
        ))
    }

    /// The repository folder on the SFTP server's disk (for watching uploads).
    pub(crate) fn sftp_folder(&self) -> PathBuf {
        let (_, path) = self.url.rsplit_once(':').expect("sftp url");
        PathBuf::from(path)
    }

    pub(crate) fn set(&mut self, k: &str, v: &str) {
        self.env.retain(|(n, _)| n != k);
        self.env.push((k.into(), v.into()));
    }

    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut c = base_command();
        c.env("SNAPVAULT_REPOSITORY", &self.url);
        c.env("SNAPVAULT_PASSWORD", PASSWORD);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.args(args);
        c
    }

    pub(crate) fn run(&self, args: &[&str]) -> Out {
        run_command(self.command(args), DEFAULT_TIMEOUT)
    }

    pub(crate) fn ok(&self, args: &[&str]) -> Out {
        let out = self.run(args);
        assert_eq!(
            out.code,
            Some(0),
            "snapvault {args:?} on {}:\n{out}",
            self.url
        );
        out
    }
}

pub(crate) fn photos(root: &Path, seed: u64) {
    write_random(&root.join("DCIM/100APPLE/IMG_0001.HEIC"), seed, 3_000_000);
    write_random(
        &root.join("DCIM/100APPLE/IMG_0002.MOV"),
        seed + 1,
        2_500_000,
    );
    write_file(
        &root.join("DCIM/100APPLE/IMG_0002.AAE"),
        b"<plist>edits</plist>",
    );
    write_random(
        &root.join("DCIM/101APPLE/IMG_0101.JPG"),
        seed + 2,
        1_200_000,
    );
}

pub(crate) fn restore_matches(r: &Remote, snap: &str, src: &Path) {
    let out = tempdir();
    r.ok(&[
        "restore",
        snap,
        "--target",
        &out.path().display().to_string(),
    ]);
    let name = src.file_name().expect("source has a name");
    assert_same_tree(src, &out.path().join(name));
}

/// Everything a user does, on one remote repository.
fn everyday_cycle(r: &Remote) {
    let work = tempdir();
    let src = work.path().join("library");
    photos(&src, 11);
    r.ok(&["init"]);
    let src_s = src.display().to_string();
    r.ok(&["snapshot", &src_s]);
    write_random(&src.join("DCIM/102APPLE/IMG_0201.HEIC"), 99, 2_000_000);
    std::fs::remove_file(src.join("DCIM/101APPLE/IMG_0101.JPG")).unwrap();
    let second = r.ok(&["snapshot", "--json", &src_s]).json();
    assert!(
        second["summary"]["bytes_added"]
            .as_u64()
            .unwrap_or(u64::MAX)
            < 2_500_000,
        "{second}"
    );
    let list = r.ok(&["snapshots", "--json"]).json();
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
    restore_matches(r, "latest", &src);
    r.ok(&["check", "--read-data"]);

    // A second password opens it too.
    let mut with_new = r.command(&["key", "add"]);
    with_new.env("SNAPVAULT_NEW_PASSWORD", "second secret");
    let out = run_command(with_new, DEFAULT_TIMEOUT);
    assert_eq!(out.code, Some(0), "key add:\n{out}");
    let mut c = r.command(&["snapshots"]);
    c.env("SNAPVAULT_PASSWORD", "second secret");
    let out = run_command(c, DEFAULT_TIMEOUT);
    assert_eq!(
        out.code,
        Some(0),
        "the added key opens the repository:\n{out}"
    );

    // Retention: keep the last one, then reclaim the space; the survivor restores.
    r.ok(&["forget", "--keep-last", "1", "--allow-photo-loss"]);
    r.ok(&["prune"]);
    let list = r.ok(&["snapshots", "--json"]).json();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    r.ok(&["check", "--read-data"]);
    restore_matches(r, "latest", &src);
}

#[test]
fn s3_everyday_cycle() {
    if no_servers() {
        return;
    }
    everyday_cycle(&Remote::s3("cycle"));
}

#[test]
fn sftp_everyday_cycle() {
    if no_servers() {
        return;
    }
    everyday_cycle(&Remote::sftp("cycle"));
}

#[test]
fn s3_wrong_credentials_and_unknown_bucket() {
    if no_servers() {
        return;
    }
    // A second moto that checks every key: ours is not one it knows.
    let denied = Remote::with_url(format!(
        "s3:{}/{}/{}",
        var("SV_S3_AUTH_ENDPOINT"),
        var("SV_S3_BUCKET"),
        unique("denied")
    ));
    for args in [&["init"][..], &["snapshots"][..]] {
        let out = denied.run(args);
        assert_eq!(out.code, Some(1), "{out}");
        assert_stderr_mentions(&out, "access denied");
        assert_stderr_mentions(&out, "AWS_SECRET_ACCESS_KEY");
        assert!(
            !out.both().contains("snapvault-test-secret"),
            "secret printed:\n{out}"
        );
    }
    let nobucket = Remote::with_url(format!(
        "s3:{}/no-such-bucket-{}/vault",
        var("SV_S3_ENDPOINT"),
        now_nanos() % 1_000_000
    ));
    for args in [&["init"][..], &["snapshots"][..]] {
        let out = nobucket.run(args);
        assert_eq!(out.code, Some(1), "{out}");
        assert_stderr_mentions(&out, "does not exist");
        assert_stderr_mentions(&out, "bucket");
    }
    // A location that is not one.
    let bad = Remote::with_url("s3:https://host.example/".into());
    let out = bad.run(&["snapshots"]);
    assert_eq!(out.code, Some(1), "{out}");
    assert_stderr_mentions(&out, "no bucket given");
}

#[test]
fn sftp_wrong_key_and_unknown_host() {
    if no_servers() {
        return;
    }
    let mut r = Remote::sftp("denied");
    r.set("SNAPVAULT_SFTP_KEY", &var("SV_SFTP_STRANGER_KEY"));
    let out = r.run(&["init"]);
    assert_eq!(out.code, Some(1), "{out}");
    assert_stderr_mentions(&out, "access denied");
    // Same server under a name whose host key is not in known_hosts: strict checking refuses.
    let mut r = Remote::sftp("hostkey");
    r.url = r.url.replacen("@127.0.0.1:", "@localhost:", 1);
    let out = r.run(&["init"]);
    assert_eq!(out.code, Some(1), "{out}");
    assert_stderr_mentions(&out, "known_hosts");
    assert!(!r.sftp_folder().join("config").exists(), "init went ahead");
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub(crate) fn wait_port(port: u16, what: &str) {
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "{what} did not start on {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every process below `pid` (sshd forks one per connection), deepest first, then `pid`.
pub(crate) fn kill_tree(pid: u32) {
    let mut kids = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some(after) = stat.rsplit_once(')').map(|(_, a)| a.to_string()) else {
            continue;
        };
        let ppid: Option<u32> = after.split_whitespace().nth(1).and_then(|p| p.parse().ok());
        let me: Option<u32> = e.file_name().to_string_lossy().parse().ok();
        if let (Some(pp), Some(me)) = (ppid, me)
            && pp == pid
        {
            kids.push(me);
        }
    }
    for k in kids {
        kill_tree(k);
    }
    // SAFETY: plain kill(2) on a pid we found as a descendant of our own child.
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
}

/// A private sshd (same user, keys and host key as the shared one) on its own port.
pub(crate) fn private_sshd(port: u16, dir: &Path) -> Child {
    let d = var("SV_SERVERS_DIR");
    let cfg = dir.join("sshd_config");
    std::fs::write(
        &cfg,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_ed25519\nPidFile {}/sshd.pid\n\
             AuthenticationMethods publickey\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             UsePAM no\nPermitRootLogin no\nAllowUsers {}\nSubsystem sftp internal-sftp\n",
            dir.display(),
            var("SV_SFTP_USER")
        ),
    )
    .unwrap();
    let child = Command::new("/usr/sbin/sshd")
        .arg("-D")
        .arg("-f")
        .arg(&cfg)
        .arg("-E")
        .arg(dir.join("sshd.log"))
        .stdin(Stdio::null())
        .spawn()
        .expect("starting sshd");
    wait_port(port, "sshd");
    child
}

#[test]
fn sftp_server_killed_in_the_middle_of_a_snapshot() {
    if no_servers() {
        return;
    }
    let port = free_port();
    let state = tempdir();
    let mut sshd = private_sshd(port, state.path());
    let mut r = Remote::sftp_at(&port.to_string(), "killed");
    // Our own throwaway server on loopback, whose key is not in known_hosts.
    r.set("SNAPVAULT_SFTP_HOST_KEYS", "accept");
    r.set("SNAPVAULT_RETRIES", "1");
    r.set("SNAPVAULT_TIMEOUT", "20");
    let work = tempdir();
    let src = work.path().join("library");
    for i in 0..12u64 {
        write_random(
            &src.join(format!("DCIM/100APPLE/IMG_{i:04}.MOV")),
            500 + i,
            14_000_000,
        );
    }
    r.ok(&["init"]);
    let mut snap = r.command(&["snapshot", &src.display().to_string()]);
    snap.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = snap.spawn().expect("snapshot");
    let folder = r.sftp_folder();
    let t = Instant::now();
    // Kill it once an index checkpoint (every 4 packs on remote repositories) is written.
    while names_in(&folder, "index").is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "no index checkpoint was written"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    kill_tree(sshd.id());
    let _ = sshd.wait();
    let out = child.wait_with_output().expect("snapshot ends");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(
        out.status.code(),
        Some(0),
        "snapshot survived a dead server:\n{err}"
    );
    assert!(
        err.contains(&r.url),
        "the error names the repository:\n{err}"
    );
    assert!(err.lines().count() <= 6, "no wall of text:\n{err}");

    // The server comes back: nothing is damaged, and the snapshot goes through.
    let mut sshd = private_sshd(port, state.path());
    let check = r.run(&["check"]);
    assert_eq!(check.code, Some(0), "check after the crash:\n{check}");
    let again = r
        .ok(&["snapshot", "--json", &src.display().to_string()])
        .json();
    let added = again["summary"]["bytes_added"].as_u64().unwrap_or(u64::MAX);
    assert!(
        added <= 110_000_000,
        "the re-run uploads again what the checkpoint saved: {again}"
    );
    restore_matches(&r, "latest", &src);
    r.ok(&["check", "--read-data"]);
    kill_tree(sshd.id());
    let _ = sshd.wait();
}

#[test]
fn s3_server_hanging_in_the_middle_of_a_snapshot() {
    if no_servers() {
        return;
    }
    // A private moto (in memory), frozen with SIGSTOP and thawed with SIGCONT.
    let port = free_port();
    let venv = PathBuf::from(var("SV_SERVERS_DIR")).join("venv/bin/moto_server");
    let log = tempdir();
    let mut moto = Command::new(&venv)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::fs::File::create(log.path().join("moto.log")).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting moto");
    wait_port(port, "moto");
    let bucket = Command::new("curl")
        .args(["-sf", "-X", "PUT", &format!("http://127.0.0.1:{port}/hang")])
        .status()
        .expect("curl");
    assert!(bucket.success());
    let mut r = Remote::with_url(format!("s3:http://127.0.0.1:{port}/hang/vault"));
    r.set("SNAPVAULT_RETRIES", "1");
    r.set("SNAPVAULT_TIMEOUT", "4");
    let work = tempdir();
    let src = work.path().join("library");
    for i in 0..6u64 {
        write_random(
            &src.join(format!("DCIM/100APPLE/IMG_{i:04}.MOV")),
            700 + i,
            14_000_000,
        );
    }
    r.ok(&["init"]);
    let mut snap = r.command(&["snapshot", &src.display().to_string()]);
    snap.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = snap.spawn().expect("snapshot");
    std::thread::sleep(Duration::from_millis(700));
    // SAFETY: signals to our own child process.
    unsafe { libc::kill(moto.id() as i32, libc::SIGSTOP) };
    let out = child.wait_with_output().expect("snapshot ends");
    unsafe { libc::kill(moto.id() as i32, libc::SIGCONT) };
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(0) {
        assert!(
            err.contains(&r.url),
            "the error names the repository:\n{err}"
        );
        assert!(
            err.contains("stalled"),
            "says the connection stalled:\n{err}"
        );
    }
    let check = r.run(&["check"]);
    assert_eq!(check.code, Some(0), "check after the hang:\n{check}");
    r.ok(&["snapshot", &src.display().to_string()]);
    restore_matches(&r, "latest", &src);
    r.ok(&["check", "--read-data"]);
    let _ = moto.kill();
    let _ = moto.wait();
}

#[test]
fn copy_ssd_to_s3_to_sftp_then_restore_from_the_last() {
    if no_servers() {
        return;
    }
    let work = tempdir();
    let src = work.path().join("library");
    photos(&src, 31);
    let ssd = Sv::init(work.path().join("ssd"), true);
    ssd.snapshot(&[&src], &[]);
    let s3 = Remote::s3("copy");
    let sftp = Remote::sftp("copy");
    s3.ok(&["init"]);
    sftp.ok(&["init"]);
    let copy = |from: &[(&str, String)], to: &Remote| {
        let mut c = base_command();
        for (k, v) in from {
            c.env(k, v);
        }
        for (k, v) in &to.env {
            c.env(k, v);
        }
        c.env("SNAPVAULT_PASSWORD", PASSWORD);
        c.env("SNAPVAULT_PASSWORD2", PASSWORD);
        c.args(["copy", "--all", "--json", "--to", &to.url]);
        let out = run_command(c, DEFAULT_TIMEOUT);
        assert_eq!(out.code, Some(0), "copy to {}:\n{out}", to.url);
        out.json()
    };
    let ssd_env = [("SNAPVAULT_REPOSITORY", ssd.repo.display().to_string())];
    copy(&ssd_env, &s3);
    // Nightly again after a new photo: only what S3 lacks goes over.
    write_random(&src.join("DCIM/103APPLE/IMG_0301.HEIC"), 77, 1_500_000);
    ssd.snapshot(&[&src], &[]);
    let second = copy(&ssd_env, &s3);
    assert_eq!(
        second["skipped"].as_u64(),
        Some(1),
        "the first is not copied again: {second}"
    );
    assert_eq!(second["copied"].as_u64(), Some(1), "{second}");
    let sent = second["bytes_copied"].as_u64().unwrap_or(u64::MAX);
    assert!(
        sent < 3_000_000,
        "only the new photo (and trees) travel: {second}"
    );
    let s3_env = [("SNAPVAULT_REPOSITORY", s3.url.clone())];
    copy(&s3_env, &sftp);
    let list = sftp.ok(&["snapshots", "--json"]).json();
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
    restore_matches(&sftp, "latest", &src);
    sftp.ok(&["check", "--read-data"]);
}
