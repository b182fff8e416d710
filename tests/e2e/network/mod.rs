//! Remote repositories through a faulty network: the fault-injecting proxy
//! (`snapvault_remote::test_proxy`) sits between the binary and the real test servers (moto
//! for S3, sshd for SFTP) and drops, stalls, resets or slows the connections.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use snapvault_remote::test_proxy::{Faults, Proxy};

mod checksum;
mod done;
mod repair;
mod requests;

use crate::common::*;
use crate::remote::{
    Remote, free_port, kill_tree, no_servers, private_sshd, restore_matches, unique, var,
};

/// A server process this test started, killed (with what it forked) when the test ends,
/// passed or not: a leftover sshd would hold the test harness's output open.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        kill_tree(self.0.id());
        let _ = self.0.wait();
    }
}

fn port_of(endpoint: &str) -> u16 {
    endpoint
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no port in {endpoint}"))
}

fn s3_proxy(faults: Faults) -> Proxy {
    Proxy::to_local(port_of(&var("SV_S3_ENDPOINT")), faults).expect("proxy")
}

fn sftp_proxy(faults: Faults) -> Proxy {
    let port = var("SV_SFTP_PORT").parse().expect("SFTP port");
    Proxy::to_local(port, faults).expect("proxy")
}

/// An S3 repository reached through `p`.
fn s3_via(p: &Proxy, tag: &str) -> Remote {
    Remote::with_url(format!(
        "s3:http://127.0.0.1:{}/{}/{}",
        p.port(),
        var("SV_S3_BUCKET"),
        unique(tag)
    ))
}

/// An SFTP repository reached through `p` (a throwaway port: its host key is accepted).
fn sftp_via(p: &Proxy, tag: &str) -> Remote {
    let mut r = Remote::sftp_at(&p.port().to_string(), tag);
    r.set("SNAPVAULT_SFTP_HOST_KEYS", "accept");
    r
}

/// A repository on `backend` ("s3" or "sftp") reached through a new proxy that injects
/// no faults yet (tests set them later, `Proxy::set`).
fn proxied(backend: &str, tag: &str) -> (Proxy, Remote) {
    if backend == "s3" {
        let p = s3_proxy(Faults::default());
        let r = s3_via(&p, tag);
        (p, r)
    } else {
        let p = sftp_proxy(Faults::default());
        let r = sftp_via(&p, tag);
        (p, r)
    }
}

/// `n` photo-sized files of random bytes under `root/DCIM`.
fn library(root: &Path, seed: u64, n: u64, size: usize) -> PathBuf {
    let src = root.join("library");
    for i in 0..n {
        write_random(
            &src.join(format!("DCIM/100APPLE/IMG_{i:04}.MOV")),
            seed + i,
            size,
        );
    }
    src
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// `ssh` processes talking to `port` (found by their command line), wherever their parent.
fn ssh_processes(port: u16) -> Vec<u32> {
    let port = port.to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmd
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_ssh = args
            .first()
            .is_some_and(|a| a == "ssh" || a.ends_with("/ssh"));
        let ours = args
            .iter()
            .any(|a| *a == port || a.ends_with(&format!(":{port}")));
        if is_ssh && ours {
            out.push(pid);
        }
    }
    out
}

/// Wait (at most a minute: a hang guard, not a speed check) for every `ssh` process of
/// `port` to end; fail naming the survivors.
fn assert_no_ssh_left(port: u16, what: &str) {
    let t = Instant::now();
    loop {
        let left = ssh_processes(port);
        if left.is_empty() {
            return;
        }
        if t.elapsed() > Duration::from_secs(60) {
            let detail: Vec<String> = left
                .iter()
                .map(|p| {
                    let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
                    format!("{p}: {}", String::from_utf8_lossy(&cmd).replace('\0', " "))
                })
                .collect();
            // Ours to clean up: they were started by this test's binary.
            for p in &left {
                // SAFETY: kill(2) on ssh processes this test caused to exist.
                unsafe { libc::kill(*p as i32, libc::SIGKILL) };
            }
            panic!(
                "{what}: ssh processes outlived snapvault:\n{}",
                detail.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// 25.1: a reset in the middle of an S3 upload is retried like any other transient error
/// (it used to kill the process with SIGPIPE: exit 141, nothing on stderr, lock left).
#[test]
fn s3_reset_in_an_upload_is_retried() {
    if no_servers() {
        return;
    }
    let proxy = s3_proxy(Faults::default());
    let r = s3_via(&proxy, "reset");
    r.ok(&["init"]);
    let work = tempdir();
    let src = library(work.path(), 900, 3, 7_000_000);
    proxy.drop_once_after(3_000_000);
    let out = r.run(&["snapshot", &s(&src)]);
    assert_eq!(out.code, Some(0), "snapshot through a reset:\n{out}");
    assert_eq!(proxy.resets(), 1);
    // copy --to s3: through a reset too.
    let ssd = Sv::init(work.path().join("ssd"), true);
    ssd.snapshot(&[&src], &[]);
    proxy.drop_once_after(2_000_000);
    let mut c = base_command();
    for (k, v) in &r.env {
        c.env(k, v);
    }
    c.env("SNAPVAULT_REPOSITORY", s(&ssd.repo));
    c.env("SNAPVAULT_PASSWORD", PASSWORD);
    c.env("SNAPVAULT_PASSWORD2", PASSWORD);
    c.args(["copy", "--all", "--to", &r.url]);
    let out = run_command(c, DEFAULT_TIMEOUT);
    assert_eq!(out.code, Some(0), "copy through a reset:\n{out}");
    assert_eq!(proxy.resets(), 2);
    r.ok(&["check", "--read-data"]);
    restore_matches(&r, "latest", &src);
}

/// 25.8: nothing listens on the port: say so, without minutes of retries.
#[test]
fn refused_ports_are_named_quickly() {
    if no_servers() {
        return;
    }
    let port = free_port();
    let s3 = Remote::with_url(format!(
        "s3:http://127.0.0.1:{port}/{}/x",
        var("SV_S3_BUCKET")
    ));
    let mut sftp = Remote::sftp_at(&port.to_string(), "refused");
    sftp.set("SNAPVAULT_SFTP_HOST_KEYS", "accept");
    for r in [&s3, &sftp] {
        // The default retries; the guard is a hang guard: retrying a refused port for
        // minutes is the bug.
        let mut c = r.command(&["snapshots"]);
        c.env_remove("SNAPVAULT_RETRIES");
        let out = run_command(c, Duration::from_secs(60));
        assert_eq!(out.code, Some(1), "{}:\n{out}", r.url);
        assert_stderr_mentions(&out, "connection refused");
        assert_stderr_mentions(&out, &r.url);
        for guess in ["did not answer", "known_hosts", "key is refused"] {
            assert!(!out.stderr.contains(guess), "{}: a guess:\n{out}", r.url);
        }
    }
    assert_no_ssh_left(port, "refused");
}

/// 25.8: a server that stops moving data is given up on (here after 2 × 5 s without a
/// byte), and the message says it stalled — not "did not answer", not damage.
#[test]
fn stalls_are_detected_and_named() {
    if no_servers() {
        return;
    }
    let work = tempdir();
    let src = library(work.path(), 950, 2, 6_000_000);
    let s3p = s3_proxy(Faults::default());
    let sftpp = sftp_proxy(Faults::default());
    let mut s3 = s3_via(&s3p, "stall");
    let mut sftp = sftp_via(&sftpp, "stall");
    for (r, p) in [(&mut s3, &s3p), (&mut sftp, &sftpp)] {
        r.ok(&["init"]);
        r.set("SNAPVAULT_TIMEOUT", "5");
        p.stall_after(1_000_000);
        let out = run_command(r.command(&["snapshot", &s(&src)]), Duration::from_secs(90));
        assert_eq!(out.code, Some(1), "{}:\n{out}", r.url);
        assert_stderr_mentions(&out, "stalled");
        assert_stderr_mentions(&out, "5 s");
        assert_stderr_mentions(&out, &r.url);
        p.resume();
        r.ok(&["check"]);
    }
    assert_no_ssh_left(sftpp.port(), "stall");
}

/// 25.2: an upload that keeps moving is never cut off by the timeout, however long it
/// takes (a 5 MB pack at 1 MB/s with SNAPVAULT_TIMEOUT=3), on S3 and SFTP at once.
#[test]
fn slow_uploads_that_progress_are_not_timed_out() {
    if no_servers() {
        return;
    }
    let work = tempdir();
    let src = library(work.path(), 970, 1, 5_000_000);
    let slow = Faults {
        bandwidth: Some(1_000_000),
        ..Faults::default()
    };
    let s3p = s3_proxy(slow.clone());
    let sftpp = sftp_proxy(slow);
    let mut s3 = s3_via(&s3p, "slow");
    let mut sftp = sftp_via(&sftpp, "slow");
    std::thread::scope(|sc| {
        for r in [&mut s3, &mut sftp] {
            let src = &src;
            sc.spawn(move || {
                r.ok(&["init"]);
                r.set("SNAPVAULT_TIMEOUT", "3");
                r.ok(&["snapshot", &s(src)]);
            });
        }
    });
    sftp.ok(&["check", "--read-data"]);
    restore_matches(&s3, "latest", &src);
    assert_no_ssh_left(sftpp.port(), "slow");
}

/// 25.3 and 25.7: one dropped SFTP connection in the middle of a pack: snapvault logs in
/// again and carries on; no temp file is left, and no upload grew past its size.
#[test]
fn sftp_dropped_connection_is_resumed() {
    if no_servers() {
        return;
    }
    let proxy = sftp_proxy(Faults::default());
    let r = sftp_via(&proxy, "drop");
    r.ok(&["init"]);
    let work = tempdir();
    let src = library(work.path(), 990, 3, 7_000_000);
    proxy.drop_once_after(5_000_000);
    let out = r.run(&["snapshot", &s(&src)]);
    assert_eq!(
        out.code,
        Some(0),
        "snapshot through a dropped connection:\n{out}"
    );
    assert_eq!(proxy.resets(), 1);
    let temp: Vec<_> = walk(&r.sftp_folder())
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".tmp-"))
        })
        .collect();
    assert!(temp.is_empty(), "temp files left: {temp:?}");
    // A restore through a dropped connection finishes too.
    proxy.drop_once_after(4_000_000);
    restore_matches(&r, "latest", &src);
    assert_eq!(proxy.resets(), 2);
    r.ok(&["check", "--read-data"]);
    assert_no_ssh_left(proxy.port(), "drop");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
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

/// 25.3: a connection reset during login is retried, and if it keeps happening the
/// message says the connection was reset — not a guess between three causes.
#[test]
fn sftp_reset_during_login_is_named() {
    if no_servers() {
        return;
    }
    let proxy = sftp_proxy(Faults {
        drop_each_after: Some(1500),
        ..Faults::default()
    });
    let r = sftp_via(&proxy, "login");
    let out = run_command(r.command(&["snapshots"]), Duration::from_secs(90));
    assert_eq!(out.code, Some(1), "{out}");
    assert_stderr_mentions(&out, "reset");
    assert!(
        !out.stderr.contains("known_hosts") && !out.stderr.contains("refused"),
        "names one cause, the real one:\n{out}"
    );
    assert!(proxy.connections() > 1, "login was not retried");
    assert_no_ssh_left(proxy.port(), "login");
}

/// 25.3: sshd restarted within a few seconds in the middle of a snapshot: snapvault
/// reconnects and the snapshot finishes.
#[test]
fn sftp_server_restarted_during_a_snapshot() {
    if no_servers() {
        return;
    }
    let port = free_port();
    let state = tempdir();
    let sshd = Killed(private_sshd(port, state.path()));
    // A slow link keeps the snapshot running while the server restarts.
    let proxy = Proxy::to_local(
        port,
        Faults {
            bandwidth: Some(4_000_000),
            ..Faults::default()
        },
    )
    .expect("proxy");
    let mut r = sftp_via(&proxy, "restart");
    // The default retries: through the proxy, a server that is down resets the connection
    // (the proxy accepted it) instead of refusing it.
    r.set("SNAPVAULT_RETRIES", "6");
    r.ok(&["init"]);
    let work = tempdir();
    let src = library(work.path(), 1010, 3, 7_000_000);
    let mut snap = r.command(&["snapshot", &s(&src)]);
    snap.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = snap.spawn().expect("snapshot");
    let t = Instant::now();
    while proxy.relayed() < 4_000_000 {
        assert!(t.elapsed() < Duration::from_secs(120), "no upload started");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(sshd);
    std::thread::sleep(Duration::from_secs(2));
    let _sshd = Killed(private_sshd(port, state.path()));
    let out = child.wait_with_output().expect("snapshot ends");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "snapshot across a restart:\n{err}"
    );
    r.ok(&["check", "--read-data"]);
    restore_matches(&r, "latest", &src);
    assert_no_ssh_left(proxy.port(), "restart");
}

/// 25.5: whatever ends snapvault — SIGTERM, SIGINT, SIGKILL — no ssh process outlives it,
/// none carries a secret in its environment, and no state folder is left behind.
#[test]
fn sftp_no_child_outlives_snapvault_or_inherits_secrets() {
    if no_servers() {
        return;
    }
    let work = tempdir();
    let src = library(work.path(), 1030, 2, 6_000_000);
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGKILL] {
        let proxy = sftp_proxy(Faults {
            bandwidth: Some(2_000_000),
            ..Faults::default()
        });
        let mut r = sftp_via(&proxy, "signals");
        r.set("AWS_SECRET_ACCESS_KEY", "a-secret-that-must-not-leak");
        let home = tempdir();
        r.set("HOME", &s(home.path()));
        r.ok(&["init"]);
        let mut cmd = r.command(&["snapshot", &s(&src)]);
        cmd.env_remove("XDG_STATE_HOME");
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = cmd.spawn().expect("snapshot");
        let t = Instant::now();
        let mut seen = Vec::new();
        while seen.is_empty() || proxy.relayed() < 1_000_000 {
            assert!(t.elapsed() < Duration::from_secs(120), "no ssh started");
            seen = ssh_processes(proxy.port());
            std::thread::sleep(Duration::from_millis(20));
        }
        for pid in &seen {
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            let env = String::from_utf8_lossy(&env);
            for secret in ["SNAPVAULT_PASSWORD", "AWS_SECRET_ACCESS_KEY"] {
                assert!(
                    !env.split('\0')
                        .any(|kv| kv.starts_with(&format!("{secret}="))),
                    "ssh {pid} inherited {secret}"
                );
            }
        }
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(child.id() as i32, sig) };
        let _ = wait_with_timeout(&mut child, Duration::from_secs(120), "snapshot");
        assert_no_ssh_left(proxy.port(), &format!("signal {sig}"));
        let state: Vec<_> = walk(home.path())
            .into_iter()
            .chain(dirs_in(home.path()))
            .filter(|p| p.to_string_lossy().contains(".ssh-connection"))
            .collect();
        assert!(state.is_empty(), "signal {sig}: state left: {state:?}");
        let _ = r.run(&["unlock"]);
    }
}

fn dirs_in(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(dirs_in(&p));
            out.push(p);
        }
    }
    out
}

/// A private sshd on 127.0.0.2 (a name no other test records) with a host key of its own.
fn sshd_with_new_host_key(port: u16, dir: &Path) -> std::process::Child {
    let key = dir.join("host_ed25519");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", ""])
        .arg("-f")
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(st.success());
    let cfg = dir.join("sshd_config");
    std::fs::write(
        &cfg,
        format!(
            "Port {port}\nListenAddress 127.0.0.2\nHostKey {}\nPidFile {}/sshd.pid\n\
             AuthenticationMethods publickey\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             UsePAM no\nPermitRootLogin no\nAllowUsers {}\nSubsystem sftp internal-sftp\n",
            key.display(),
            dir.display(),
            var("SV_SFTP_USER")
        ),
    )
    .expect("sshd_config");
    let child = Command::new("/usr/sbin/sshd")
        .arg("-D")
        .arg("-f")
        .arg(&cfg)
        .arg("-E")
        .arg(dir.join("sshd.log"))
        .stdin(Stdio::null())
        .spawn()
        .expect("starting sshd");
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.2", port)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(60), "sshd did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

/// The account's own known_hosts, which ssh reads whatever $HOME says.
fn users_known_hosts() -> PathBuf {
    // SAFETY: getpwuid returns a pointer into static storage, read at once.
    let home = unsafe {
        let pw = libc::getpwuid(libc::getuid());
        assert!(!pw.is_null());
        std::ffi::CStr::from_ptr((*pw).pw_dir)
            .to_string_lossy()
            .into_owned()
    };
    PathBuf::from(home).join(".ssh/known_hosts")
}

/// 25.6: `accept` trusts a key for that run only; `add` records it in snapvault's own
/// known-hosts file and says so; ~/.ssh/known_hosts is never written.
#[test]
fn sftp_host_keys_stay_in_snapvaults_own_file() {
    if no_servers() {
        return;
    }
    let port = free_port();
    let dir = tempdir();
    let sshd = Killed(sshd_with_new_host_key(port, dir.path()));
    let config = tempdir();
    let mut r = Remote::with_url(format!(
        "sftp:{}@127.0.0.2:{port}:{}/{}",
        var("SV_SFTP_USER"),
        var("SV_SFTP_ROOT"),
        unique("hostkeys")
    ));
    r.set("XDG_CONFIG_HOME", &s(config.path()));
    r.set("SNAPVAULT_SFTP_HOST_KEYS", "accept");
    r.ok(&["init"]);
    r.set("SNAPVAULT_SFTP_HOST_KEYS", "strict");
    let out = r.run(&["snapshots"]);
    assert_eq!(
        out.code,
        Some(1),
        "a key accepted once is trusted later:\n{out}"
    );
    assert_stderr_mentions(&out, "host key");
    r.set("SNAPVAULT_SFTP_HOST_KEYS", "add");
    let out = r.ok(&["snapshots"]);
    let own = config.path().join("snapvault/known_hosts");
    assert_stderr_mentions(&out, &s(&own));
    let recorded = std::fs::read_to_string(&own).unwrap_or_default();
    assert!(
        recorded.contains(&format!("[127.0.0.2]:{port}")),
        "{recorded}"
    );
    r.set("SNAPVAULT_SFTP_HOST_KEYS", "strict");
    let out = r.ok(&["snapshots"]);
    assert!(!out.stderr.contains("added"), "said twice:\n{out}");
    let theirs = std::fs::read_to_string(users_known_hosts()).unwrap_or_default();
    assert!(
        !theirs.contains(&format!("[127.0.0.2]:{port}")),
        "written into {}",
        users_known_hosts().display()
    );
    drop(sshd);
    assert_no_ssh_left(port, "hostkeys");
}
