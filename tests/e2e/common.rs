//! Shared helpers: running the binary (with a hang guard), generating data, comparing trees
//! and listing repository files.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, File, FileTimes};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

/// The longest any single command may take before the test fails as "hung".
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(180);

pub const PASSWORD: &str = "correct horse battery staple";

/// Path of the binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_snapvault")
}

/// A command for the binary with every inherited `SNAPVAULT_*` variable removed and stdin
/// not a terminal.
pub fn base_command() -> Command {
    let mut c = Command::new(bin());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SNAPVAULT_") {
            c.env_remove(&k);
        }
    }
    // A config file of whoever runs the tests must not change what the binary does.
    c.env("XDG_CONFIG_HOME", "/nonexistent/snapvault-e2e-config");
    c.stdin(Stdio::null());
    c
}

/// The result of one run of the binary.
#[derive(Debug)]
pub struct Out {
    /// Exit code; `None` when ended by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn both(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Wait for a child, killing it and failing the test if it takes longer than `timeout`.
pub fn wait_with_timeout(child: &mut Child, timeout: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{what}` did not finish within {timeout:?} (hang?); killed it");
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Run a prepared command to completion (stdout/stderr captured), with a hang guard.
pub fn run_command(mut cmd: Command, timeout: Duration) -> Out {
    let what = format!("{cmd:?}");
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let mut so = child.stdout.take().expect("stdout");
    let mut se = child.stderr.take().expect("stderr");
    let t1 = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let t2 = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let status = wait_with_timeout(&mut child, timeout, &what);
    let stdout = String::from_utf8_lossy(&t1.join().expect("stdout reader")).into_owned();
    let stderr = String::from_utf8_lossy(&t2.join().expect("stderr reader")).into_owned();
    let code = status.code();
    if code.is_none() {
        assert!(
            status.signal().is_some(),
            "neither exit code nor signal: {status:?}"
        );
    }
    Out {
        code,
        stdout,
        stderr,
    }
}

/// One repository as the tests drive it: where it is and which password (if any) opens it.
#[derive(Clone, Debug)]
pub struct Sv {
    pub repo: PathBuf,
    pub password: Option<String>,
}

impl Sv {
    /// A handle on a repository at `repo` (not created).
    pub fn at(repo: impl Into<PathBuf>, password: Option<&str>) -> Sv {
        Sv {
            repo: repo.into(),
            password: password.map(str::to_string),
        }
    }

    /// Create a new repository at `repo`; encrypted with [`PASSWORD`] or plain.
    pub fn init(repo: impl Into<PathBuf>, encrypted: bool) -> Sv {
        let sv = Sv::at(repo, encrypted.then_some(PASSWORD));
        let out = if encrypted {
            sv.run(&["init"])
        } else {
            sv.run(&["init", "--insecure-no-encryption"])
        };
        assert_eq!(out.code, Some(0), "init failed:\n{out}");
        assert!(sv.repo.join("config").is_file(), "init wrote no config");
        sv
    }

    /// A command with the repository in SNAPVAULT_REPOSITORY and the password (if any) in
    /// SNAPVAULT_PASSWORD.
    pub fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut c = base_command();
        c.env("SNAPVAULT_REPOSITORY", &self.repo);
        if let Some(pw) = &self.password {
            c.env("SNAPVAULT_PASSWORD", pw);
        }
        c.args(args);
        c
    }

    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Out {
        run_command(self.command(args), DEFAULT_TIMEOUT)
    }

    pub fn run_env<S: AsRef<OsStr>>(&self, args: &[S], env: &[(&str, &str)]) -> Out {
        let mut c = self.command(args);
        for (k, v) in env {
            c.env(k, v);
        }
        run_command(c, DEFAULT_TIMEOUT)
    }

    /// Run and require exit 0.
    pub fn ok<S: AsRef<OsStr>>(&self, args: &[S]) -> Out {
        let out = self.run(args);
        assert_eq!(
            out.code,
            Some(0),
            "snapvault {:?} failed:\n{out}",
            args.iter().map(|a| a.as_ref()).collect::<Vec<_>>()
        );
        out
    }

    /// `snapshot --json PATHS... EXTRA...`, exit 0, the parsed summary line.
    pub fn snapshot(&self, paths: &[&Path], extra: &[&str]) -> Value {
        let mut args: Vec<&OsStr> = vec![OsStr::new("snapshot"), OsStr::new("--json")];
        args.extend(extra.iter().map(OsStr::new));
        args.extend(paths.iter().map(|p| p.as_os_str()));
        self.ok(&args).json()
    }

    /// `snapshots --json`, parsed.
    pub fn snapshots(&self) -> Vec<Value> {
        match self.ok(&["snapshots", "--json"]).json() {
            Value::Array(v) => v,
            other => panic!("snapshots --json is not an array: {other}"),
        }
    }

    /// `restore SNAP --target DIR`, exit 0.
    pub fn restore(&self, snap: &str, target: &Path) -> Out {
        let mut args: Vec<&OsStr> = vec![OsStr::new("restore"), OsStr::new(snap)];
        args.push(OsStr::new("--target"));
        args.push(target.as_os_str());
        self.ok(&args)
    }
}

/// The summary numbers of `snapshot --json`.
pub fn summary_u64(v: &Value, field: &str) -> u64 {
    v["summary"][field]
        .as_u64()
        .unwrap_or_else(|| panic!("summary has no numeric {field}: {v}"))
}

// ---------------------------------------------------------------------------------------
// Data

/// Deterministic pseudo-random bytes (splitmix64): incompressible, reproducible.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    while out.len() < len {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn write_file(path: &Path, data: &[u8]) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
    }
    let mut f = File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    f.write_all(data)
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

pub fn write_random(path: &Path, seed: u64, len: usize) -> Vec<u8> {
    let d = random_bytes(seed, len);
    write_file(path, &d);
    d
}

pub fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// Set the mtime (and atime) of a file or folder (follows symlinks).
/// `secs` may be negative (before 1970); `nanos` is added to it.
pub fn set_mtime(path: &Path, secs: i64, nanos: u32) {
    let t = if secs >= 0 {
        SystemTime::UNIX_EPOCH + Duration::new(secs as u64, nanos)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
            + Duration::from_nanos(nanos as u64)
    };
    let f = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    f.set_times(FileTimes::new().set_modified(t).set_accessed(t))
        .unwrap_or_else(|e| panic!("set times {}: {e}", path.display()));
}

pub fn mtime_ns(md: &fs::Metadata) -> i128 {
    md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128
}

// ---------------------------------------------------------------------------------------
// Comparing trees

/// Compare two trees entry by entry: names (as bytes), types, file contents, modes, mtimes
/// (to the nanosecond) of files, folders and symlinks (the link itself), symlink targets.
/// The roots themselves are compared too. Returns every difference found.
pub fn tree_differences(expected: &Path, actual: &Path) -> Vec<String> {
    let mut diffs = Vec::new();
    compare_entry(expected, actual, Path::new("."), &mut diffs);
    diffs
}

pub fn assert_same_tree(expected: &Path, actual: &Path) {
    let d = tree_differences(expected, actual);
    assert!(
        d.is_empty(),
        "restored tree {} differs from {}:\n  {}",
        actual.display(),
        expected.display(),
        d.join("\n  ")
    );
}

fn compare_entry(e: &Path, a: &Path, rel: &Path, diffs: &mut Vec<String>) {
    let em = fs::symlink_metadata(e).unwrap_or_else(|err| panic!("stat {}: {err}", e.display()));
    let am = match fs::symlink_metadata(a) {
        Ok(m) => m,
        Err(err) => {
            diffs.push(format!("{}: missing ({err})", rel.display()));
            return;
        }
    };
    let (et, at) = (em.file_type(), am.file_type());
    let kind = |t: fs::FileType| {
        if t.is_symlink() {
            "symlink"
        } else if t.is_dir() {
            "dir"
        } else if t.is_file() {
            "file"
        } else {
            "other"
        }
    };
    if kind(et) != kind(at) {
        diffs.push(format!(
            "{}: type {} expected, found {}",
            rel.display(),
            kind(et),
            kind(at)
        ));
        return;
    }
    if mtime_ns(&em) != mtime_ns(&am) {
        diffs.push(format!(
            "{}: mtime {} expected, found {}",
            rel.display(),
            mtime_ns(&em),
            mtime_ns(&am)
        ));
    }
    if !et.is_symlink() && em.mode() & 0o7777 != am.mode() & 0o7777 {
        diffs.push(format!(
            "{}: mode {:o} expected, found {:o}",
            rel.display(),
            em.mode() & 0o7777,
            am.mode() & 0o7777
        ));
    }
    if et.is_symlink() {
        let (tl, ta) = (fs::read_link(e).unwrap(), fs::read_link(a).unwrap());
        if tl != ta {
            diffs.push(format!(
                "{}: symlink target {tl:?} expected, found {ta:?}",
                rel.display()
            ));
        }
    } else if et.is_file() {
        if em.len() != am.len() {
            diffs.push(format!(
                "{}: size {} expected, found {}",
                rel.display(),
                em.len(),
                am.len()
            ));
        } else if !same_contents(e, a) {
            diffs.push(format!("{}: contents differ", rel.display()));
        }
    } else if et.is_dir() {
        let names = |p: &Path| -> Vec<std::ffi::OsString> {
            let mut v: Vec<_> = fs::read_dir(p)
                .unwrap_or_else(|err| panic!("read_dir {}: {err}", p.display()))
                .map(|d| d.unwrap().file_name())
                .collect();
            v.sort();
            v
        };
        let (en, an) = (names(e), names(a));
        for n in &en {
            if !an.contains(n) {
                diffs.push(format!("{}: missing", rel.join(n).display()));
            } else {
                compare_entry(&e.join(n), &a.join(n), &rel.join(n), diffs);
            }
        }
        for n in &an {
            if !en.contains(n) {
                diffs.push(format!("{}: unexpected extra entry", rel.join(n).display()));
            }
        }
    }
}

fn same_contents(a: &Path, b: &Path) -> bool {
    let mut fa = File::open(a).unwrap();
    let mut fb = File::open(b).unwrap();
    let mut ba = vec![0u8; 1 << 20];
    let mut bb = vec![0u8; 1 << 20];
    loop {
        let na = read_full(&mut fa, &mut ba);
        let nb = read_full(&mut fb, &mut bb);
        if na != nb || ba[..na] != bb[..nb] {
            return false;
        }
        if na == 0 {
            return true;
        }
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]).unwrap() {
            0 => break,
            k => n += k,
        }
    }
    n
}

/// What a tree holds, by relative path: file contents, symlink targets and folders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Dir,
    File(Vec<u8>),
    Symlink(PathBuf),
}

/// The contents of a (small) tree, for remembering a state that later changes.
pub fn tree_contents(root: &Path) -> BTreeMap<PathBuf, Item> {
    fn walk(base: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, Item>) {
        let p = base.join(rel);
        let md = fs::symlink_metadata(&p).unwrap();
        let item = if md.file_type().is_symlink() {
            Item::Symlink(fs::read_link(&p).unwrap())
        } else if md.is_dir() {
            for e in fs::read_dir(&p).unwrap() {
                walk(base, &rel.join(e.unwrap().file_name()), out);
            }
            Item::Dir
        } else {
            Item::File(fs::read(&p).unwrap())
        };
        out.insert(rel.to_path_buf(), item);
    }
    let mut out = BTreeMap::new();
    walk(root, Path::new(""), &mut out);
    out
}

pub fn assert_contents(expected: &BTreeMap<PathBuf, Item>, actual_root: &Path) {
    let actual = tree_contents(actual_root);
    let show = |m: &BTreeMap<PathBuf, Item>| -> Vec<String> {
        m.iter()
            .map(|(p, i)| match i {
                Item::Dir => format!("{}/", p.display()),
                Item::File(d) => format!("{} ({} bytes)", p.display(), d.len()),
                Item::Symlink(t) => format!("{} -> {}", p.display(), t.display()),
            })
            .collect()
    };
    assert!(
        *expected == actual,
        "tree at {} differs from the expected state\nexpected: {:#?}\nactual: {:#?}",
        actual_root.display(),
        show(expected),
        show(&actual)
    );
}

// ---------------------------------------------------------------------------------------
// Repository files

/// Every entry under `root` (folders by path only; files with size, mtime and, when small,
/// contents), so a before/after comparison shows anything written, removed or modified.
pub fn listing(root: &Path) -> BTreeMap<String, String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let rd = match fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(_) => return,
        };
        for e in rd {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            let md = fs::symlink_metadata(&p).unwrap();
            if md.is_dir() {
                out.insert(rel, "dir".into());
                walk(base, &p, out);
            } else {
                let mut desc = format!(
                    "file {} bytes, mode {:o}, mtime {}",
                    md.len(),
                    md.mode() & 0o7777,
                    mtime_ns(&md)
                );
                if md.len() <= 64 * 1024 {
                    let bytes = fs::read(&p).unwrap_or_default();
                    desc.push_str(&format!(", content {}", hexish(&bytes)));
                }
                out.insert(rel, desc);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn hexish(b: &[u8]) -> String {
    // A cheap fingerprint (FNV-1a) keeps failure messages short.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b {
        h ^= x as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

pub fn assert_unchanged(before: &BTreeMap<String, String>, root: &Path, what: &str) {
    let after = listing(root);
    if *before != after {
        let mut d = Vec::new();
        for (k, v) in before {
            match after.get(k) {
                None => d.push(format!("removed {k}")),
                Some(w) if w != v => d.push(format!("modified {k}: {v} -> {w}")),
                _ => {}
            }
        }
        for k in after.keys() {
            if !before.contains_key(k) {
                d.push(format!("added {k}: {}", after[k]));
            }
        }
        panic!("{what} changed {}:\n  {}", root.display(), d.join("\n  "));
    }
}

/// Total bytes of the files under `root`.
pub fn tree_size(root: &Path) -> u64 {
    let mut total = 0;
    let Ok(rd) = fs::read_dir(root) else { return 0 };
    for e in rd {
        let e = e.unwrap();
        let md = fs::symlink_metadata(e.path()).unwrap();
        if md.is_dir() {
            total += tree_size(&e.path());
        } else {
            total += md.len();
        }
    }
    total
}

/// Pack files under REPO/data: (id, path), sorted by id.
pub fn pack_files(repo: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(repo.join("data")) else {
        return out;
    };
    for d in rd {
        let d = d.unwrap();
        if !d.file_type().unwrap().is_dir() {
            continue;
        }
        for f in fs::read_dir(d.path()).unwrap() {
            let f = f.unwrap();
            let name = f.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') {
                out.push((name, f.path()));
            }
        }
    }
    out.sort();
    out
}

/// Names of the (non-temporary) files in one repository folder, e.g. "keys", "locks".
pub fn names_in(repo: &Path, dir: &str) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(repo.join(dir))
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("snapvault-e2e-")
        .tempdir()
        .expect("tempdir")
}

/// Assert that `text` contains `needle`, showing the whole output otherwise.
#[track_caller]
pub fn assert_mentions(out: &Out, needle: &str) {
    assert!(
        out.stderr.contains(needle) || out.stdout.contains(needle),
        "expected the output to mention {needle:?}:\n{out}"
    );
}

#[track_caller]
pub fn assert_stderr_mentions(out: &Out, needle: &str) {
    assert!(
        out.stderr.contains(needle),
        "expected stderr to mention {needle:?}:\n{out}"
    );
}

#[track_caller]
pub fn assert_failed(out: &Out) {
    assert!(
        out.code.is_some() && out.code != Some(0),
        "expected a non-zero exit code:\n{out}"
    );
}

/// Every file of a repository but its locks (which come and go with each command): path
/// relative to `repo`, and full path, sorted.
pub fn files_but_locks(repo: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![repo.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(repo).unwrap().to_string_lossy().into_owned();
            if rel.starts_with("locks") {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((rel, p));
            }
        }
    }
    out.sort();
    out
}

/// A capture time written as in EXIF with its offset (`2023-07-14T18:03:11+02:00`).
pub fn taken(s: &str) -> snapvault_media::CaptureTime {
    s.parse().unwrap()
}

/// A photo library at `TMP/iPhone` (filled by the test), an unencrypted repository at
/// `TMP/repo` and a cache folder of its own at `TMP/cache` (`XDG_CACHE_HOME`), so the photo
/// catalog and the damage list a test sees are its own.
pub struct CachedLibrary {
    pub tmp: tempfile::TempDir,
    pub src: PathBuf,
    pub cache: PathBuf,
    pub sv: Sv,
}

impl CachedLibrary {
    pub fn new() -> CachedLibrary {
        let tmp = tempdir();
        CachedLibrary {
            src: tmp.path().join("iPhone"),
            cache: tmp.path().join("cache"),
            sv: Sv::init(tmp.path().join("repo"), false),
            tmp,
        }
    }

    /// `snapvault ARGS` with this cache.
    pub fn run(&self, args: &[&str]) -> Out {
        self.sv
            .run_env(args, &[("XDG_CACHE_HOME", self.cache.to_str().unwrap())])
    }

    /// [`CachedLibrary::run`], requiring exit 0.
    pub fn ok(&self, args: &[&str]) -> Out {
        let out = self.run(args);
        assert_eq!(out.code, Some(0), "snapvault {args:?} failed:\n{out}");
        out
    }
}
