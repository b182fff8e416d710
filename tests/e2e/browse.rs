//! `snapvault browse` (issue 20): the read-only web view of the backup, through the real
//! binary and, where Chromium is installed (CI installs it), a real headless browser.

pub mod cdp;
mod month;
mod video;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use snapvault_media::sample;

use crate::common::*;

/// A small library over three months: a JPEG with an embedded EXIF thumbnail (July), one
/// without and edited in Photos (June), a HEIC Live Photo with its video (August), a video
/// (August).
struct Lib(CachedLibrary);

impl std::ops::Deref for Lib {
    type Target = CachedLibrary;
    fn deref(&self) -> &CachedLibrary {
        &self.0
    }
}

impl Lib {
    fn new() -> Lib {
        let lib = Lib(CachedLibrary::new());
        let d = lib.src.join("DCIM/100APPLE");
        write_file(
            &d.join("IMG_0001.JPG"),
            &sample::jpeg_with_thumbnail(&taken("2023-07-14T18:03:11+02:00"), 30_000, 1),
        );
        write_file(
            &d.join("IMG_0002.JPG"),
            &sample::jpeg(&taken("2023-06-30T12:00:00-04:00"), None, 15_000, 2),
        );
        // IMG_0002 was edited in Photos: its render and the edit's description, where the
        // phone keeps them (the folder is a copy of the phone's media root).
        let edit = lib
            .src
            .join("PhotoData/Mutations/DCIM/100APPLE/IMG_0002/Adjustments");
        write_file(
            &edit.join("FullSizeRender.jpg"),
            &sample::jpeg(&taken("2023-06-30T12:00:00-04:00"), None, 12_000, 6),
        );
        write_file(&edit.join("Adjustments.plist"), b"<plist></plist>");
        let cid = sample::content_id(3);
        write_file(
            &d.join("IMG_0003.HEIC"),
            &sample::heic(&taken("2023-08-02T09:30:00+02:00"), Some(&cid), 20_000, 3),
        );
        write_file(
            &d.join("IMG_0003.MOV"),
            &sample::mov(&taken("2023-08-02T09:30:00+02:00"), Some(&cid), 40_000, 4),
        );
        write_file(
            &d.join("IMG_0004.MP4"),
            &sample::mp4(&taken("2023-08-05T10:00:00+02:00"), 50_000, 5),
        );
        lib.ok(&["snapshot", lib.src.to_str().unwrap()]);
        lib
    }

    fn file(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.src.join("DCIM/100APPLE").join(name)).unwrap()
    }

    /// `snapvault browse --no-open ARGS`, until its address is printed.
    fn serve(&self, args: &[&str]) -> Server {
        serve(&self.sv, &self.cache, args)
    }
}

/// `snapvault browse --no-open ARGS` on `sv`'s repository with `cache` as the cache home,
/// until its address is printed.
pub fn serve(sv: &Sv, cache: &Path, args: &[&str]) -> Server {
    serve_env(sv, cache, args, &[])
}

/// [`serve`] with more environment variables.
pub fn serve_env(sv: &Sv, cache: &Path, args: &[&str], env: &[(&str, &Path)]) -> Server {
    let mut a = vec!["--no-open"];
    a.extend_from_slice(args);
    browse(sv, cache, &a, env)
}

/// `snapvault browse ARGS` with `env`, until its address is printed.
fn browse(sv: &Sv, cache: &Path, args: &[&str], env: &[(&str, &Path)]) -> Server {
    let mut a = vec!["browse"];
    a.extend_from_slice(args);
    let mut cmd = sv.command(&a);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.env("XDG_CACHE_HOME", cache)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("starting snapvault browse");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = match rx.recv_timeout(DEFAULT_TIMEOUT) {
        Ok(l) => l,
        Err(_) => {
            let _ = child.kill();
            panic!("snapvault browse printed no address");
        }
    };
    let url = line.trim().to_string();
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("not an address: {url:?}"));
    let (addr, query) = rest.split_once("/?token=").expect("token in the address");
    Server {
        child,
        url: url.clone(),
        addr: addr.to_string(),
        token: query.to_string(),
    }
}

pub struct Server {
    child: Child,
    pub url: String,
    addr: String,
    token: String,
}

/// One HTTP/1.1 exchange over a fresh connection: (status, head, body).
fn http(addr: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("connecting to the server");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).expect("reading the answer");
    let split = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&all[..split]).into_owned();
    let body = all[split + 4..].to_vec();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    (status, head, body)
}

impl Server {
    pub fn get(&self, path: &str) -> (u16, String, Vec<u8>) {
        let cookie = format!("snapvault_{}={}", self.port(), self.token);
        http(&self.addr, path, &[("Cookie", &cookie)])
    }

    fn port(&self) -> &str {
        self.addr.rsplit(':').next().unwrap()
    }

    /// Ctrl-C: the exit code and stderr.
    fn interrupt(mut self) -> (Option<i32>, String) {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGINT);
        }
        let status = wait_with_timeout(&mut self.child, DEFAULT_TIMEOUT, "browse after Ctrl-C");
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        (status.code(), err)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The content keys a month page links to, in order.
pub fn photo_links(html: &str) -> Vec<String> {
    html.split("href=\"/photo/")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn token_range_and_read_only_through_http() {
    let lib = Lib::new();
    let before = listing(&lib.sv.repo);
    let srv = lib.serve(&[]);
    assert!(srv.addr.starts_with("127.0.0.1:"), "{}", srv.url);
    assert_eq!(srv.token.len(), 64, "{}", srv.url);

    // No token, a wrong one, a foreign Host: 403, for pages and for files alike.
    assert_eq!(http(&srv.addr, "/", &[]).0, 403);
    assert_eq!(http(&srv.addr, "/?token=00", &[]).0, 403);
    let wrong = format!("/?token={}", "0".repeat(64));
    assert_eq!(http(&srv.addr, &wrong, &[]).0, 403);
    let with_token = format!("/?token={}", srv.token);
    assert_eq!(
        http(&srv.addr, &with_token, &[("Host", "evil.example")]).0,
        403
    );
    // The token in the address: a redirect that sets the cookie.
    let (code, head, _) = http(&srv.addr, &with_token, &[]);
    assert_eq!(code, 303, "{head}");
    let h = head.to_ascii_lowercase();
    assert!(h.contains("set-cookie: snapvault_"), "{head}");
    assert!(
        h.contains("httponly") && h.contains("samesite=strict"),
        "{head}"
    );

    // Timeline: the three months, with photo, Live Photo and video counts; the page may
    // load nothing from anywhere else.
    let (code, head, body) = srv.get("/");
    assert_eq!(code, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-security-policy: default-src 'none'"),
        "{head}"
    );
    let page = String::from_utf8(body).unwrap();
    for m in ["2023-06", "2023-07", "2023-08"] {
        assert!(
            page.contains(&format!("data-month=\"{m}\"")),
            "{m}:\n{page}"
        );
    }
    assert!(
        page.contains("<b>August 2023</b><span>1 photo (1 Live) · 1 video</span>"),
        "{page}"
    );
    assert!(
        !page.contains("://"),
        "an outside address on the page:\n{page}"
    );
    let (_, _, month) = srv.get("/month/2023-07");
    let keys = photo_links(&String::from_utf8(month).unwrap());
    assert_eq!(keys.len(), 1, "{keys:?}");
    let key = keys[0].rsplit('/').next().unwrap().to_string();
    assert_eq!(http(&srv.addr, &format!("/original/{key}"), &[]).0, 403);
    assert_eq!(http(&srv.addr, &format!("/thumb/{key}"), &[]).0, 403);

    // The original, byte-exact; a range of it; the embedded thumbnail.
    let want = lib.file("IMG_0001.JPG");
    let (code, head, got) = srv.get(&format!("/original/{key}?download=1"));
    assert_eq!(code, 200, "{head}");
    assert!(
        got == want,
        "download differs ({} vs {} bytes)",
        got.len(),
        want.len()
    );
    assert!(head.contains("IMG_0001.JPG"), "{head}");
    let cookie = format!("snapvault_{}={}", srv.port(), srv.token);
    let (code, head, part) = http(
        &srv.addr,
        &format!("/original/{key}"),
        &[("Cookie", &cookie), ("Range", "bytes=100-20099")],
    );
    assert_eq!(code, 206, "{head}");
    assert!(part == want[100..20100], "range differs");
    let (code, head, thumb) = srv.get(&format!("/thumb/{key}"));
    assert_eq!(code, 200, "{head}");
    assert!(
        head.contains("image/jpeg") && thumb.starts_with(&[0xFF, 0xD8]),
        "{head}"
    );
    assert!(thumb.len() < 2000, "the embedded thumbnail, not the photo");
    // Made once, then kept in the cache folder, never in the repository.
    let thumbs: Vec<_> = walk_files(&lib.cache)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    assert_eq!(thumbs.len(), 1, "{thumbs:?}");

    // The photo page: date with offset, camera, the snapshot holding it, the path.
    let (code, _, body) = srv.get(&format!("/photo/{}", keys[0]));
    assert_eq!(code, 200);
    let page = String::from_utf8(body).unwrap();
    let size = format!("({} bytes)", want.len());
    for want in [
        "2023-07-14 18:03:11 (UTC+02:00)",
        "Apple iPhone 15 Pro",
        size.as_str(),
        "Snapshots holding it (1)",
        "<dt>First seen</dt>",
        "<dt>Last seen</dt>",
        "iPhone/DCIM/100APPLE/IMG_0001.JPG",
    ] {
        assert!(page.contains(want), "photo page lacks {want:?}:\n{page}");
    }
    assert!(
        !page.contains("://"),
        "an outside address on the page:\n{page}"
    );

    // A key of no photo, a bad month: 404, not a crash.
    assert_eq!(srv.get(&format!("/original/{}", "ab".repeat(32))).0, 404);
    assert_eq!(srv.get("/original/zz").0, 404);
    assert_eq!(srv.get("/month/2023-13").0, 404);

    let (code, err) = srv.interrupt();
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("stopped serving"), "{err}");
    assert_unchanged(&before, &lib.sv.repo, "browse");
}

/// Did the server send this file whole: status 200 and every byte its length announced?
/// An aborted answer may end in a reset that loses even the headers: not whole either.
fn served_whole(addr: &str, path: &str, cookie: &str) -> bool {
    let mut s = TcpStream::connect(addr).expect("connecting to the server");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut all = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        all.extend_from_slice(&buf[..n]);
    }
    let Some(split) = all.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&all[..split]).to_ascii_lowercase();
    let len: Option<usize> = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok());
    head.starts_with("http/1.1 200") && len == Some(all.len() - split - 4)
}

/// A byte of the largest pack (the photos' data) goes bad, and `check --read-data` finds it.
fn damage_and_check(lib: &Lib) {
    let pack = pack_files(&lib.sv.repo)
        .into_iter()
        .map(|(_, p)| p)
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .expect("a pack");
    // Three places: which file's blob lies at one offset depends on the order the pack was
    // filled in (threads); one flip can land in a small sidecar whose photo's page links
    // only the photo and its motion, which then serve whole (seen once in a full run).
    for at in [4, 2] {
        crate::repair::flip(&pack, |n| n / at);
    }
    crate::repair::flip(&pack, |n| n / 4 * 3);
    let out = lib.run(&["check", "--read-data"]);
    assert_eq!(out.code, Some(4), "{out}");
}

#[test]
fn vanished_and_damaged_filters() {
    let lib = Lib::new();
    // IMG_0002 (June) is deleted on the phone; the next snapshot no longer has it.
    std::fs::remove_file(lib.src.join("DCIM/100APPLE/IMG_0002.JPG")).unwrap();
    let out = lib.run(&["snapshot", lib.src.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{out}");
    damage_and_check(&lib);

    let srv = lib.serve(&[]);
    assert_eq!(months_of(&srv, "vanished"), ["2023-06"]);
    let damaged = months_of(&srv, "damaged");
    assert!(
        !damaged.is_empty(),
        "check found damage, the filter shows none"
    );
    assert!(months_of(&srv, "all").len() == 3);
    // Downloading what is damaged (the photo, or its Live Photo video) fails instead of
    // ending short as if complete.
    let m = &damaged[0];
    let (_, _, page) = srv.get(&format!("/month/{m}?f=damaged"));
    let page = String::from_utf8(page).unwrap();
    assert!(page.contains("DAMAGED"), "{page}");
    let cookie = format!("snapvault_{}={}", srv.port(), srv.token);
    let mut originals = Vec::new();
    for link in photo_links(&page) {
        let (_, _, p) = srv.get(&format!("/photo/{link}"));
        let p = String::from_utf8(p).unwrap();
        // The download link (every photo) and the picture or motion shown.
        originals.extend(
            p.split("/original/")
                .skip(1)
                .filter_map(|s| s.split(['"', '?']).next())
                .map(str::to_string),
        );
    }
    assert!(
        !originals.is_empty(),
        "no originals on the damaged photos' pages"
    );
    let failed = originals
        .iter()
        .any(|k| !served_whole(&srv.addr, &format!("/original/{k}"), &cookie));
    assert!(failed, "every original of a damaged photo was served whole");
}

/// The months the timeline lists (with `?f=FILTER`).
pub fn months_of(srv: &Server, filter: &str) -> Vec<String> {
    let (code, _, body) = srv.get(&format!("/?f={filter}"));
    assert_eq!(code, 200);
    String::from_utf8(body)
        .unwrap()
        .split("data-month=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn a_snapshot_taken_while_serving_shows_on_the_next_page() {
    let lib = Lib::new();
    let srv = lib.serve(&[]);
    assert_eq!(months_of(&srv, "all"), ["2023-08", "2023-07", "2023-06"]);
    // A photo of January 2024 arrives, and the June one is deleted, while the server runs.
    write_file(
        &lib.src.join("DCIM/101APPLE/IMG_0101.JPG"),
        &sample::jpeg_with_thumbnail(&taken("2024-01-02T10:00:00+01:00"), 20_000, 11),
    );
    std::fs::remove_file(lib.src.join("DCIM/100APPLE/IMG_0002.JPG")).unwrap();
    let out = lib.run(&["snapshot", lib.src.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        months_of(&srv, "all"),
        ["2024-01", "2023-08", "2023-07", "2023-06"],
        "the new snapshot's month is not on the timeline"
    );
    assert_eq!(months_of(&srv, "vanished"), ["2023-06"]);
    let (code, _, body) = srv.get("/month/2024-01");
    assert_eq!(code, 200);
    let keys = photo_links(&String::from_utf8(body).unwrap());
    assert_eq!(keys.len(), 1, "{keys:?}");
    let key = keys[0].rsplit('/').next().unwrap();
    let (code, head, thumb) = srv.get(&format!("/thumb/{key}"));
    assert_eq!(code, 200, "{head}");
    assert!(thumb.starts_with(&[0xFF, 0xD8]), "{head}");
    let (code, _, body) = srv.get(&format!("/photo/{}", keys[0]));
    assert_eq!(code, 200);
    assert!(
        String::from_utf8(body)
            .unwrap()
            .contains("Snapshots holding it (1)")
    );
}

#[test]
fn one_snapshot_with_the_snapshot_option() {
    let lib = Lib::new();
    write_file(
        &lib.src.join("DCIM/101APPLE/IMG_0101.JPG"),
        &sample::jpeg_with_thumbnail(&taken("2024-01-02T10:00:00+01:00"), 20_000, 11),
    );
    lib.ok(&["snapshot", lib.src.to_str().unwrap()]);
    let srv = lib.serve(&["--snapshot", "latest~1"]);
    assert_eq!(months_of(&srv, "all"), ["2023-08", "2023-07", "2023-06"]);
    let (_, _, page) = srv.get("/");
    let page = String::from_utf8(page).unwrap();
    assert!(page.contains("<span class=\"scope\">snapshot "), "{page}");
    // Vanished means "in an older snapshot, not in the newest": not for one snapshot.
    assert!(!page.contains("Vanished from the phone"), "{page}");
    drop(srv);
    let srv = lib.serve(&["--snapshot", "latest"]);
    assert_eq!(
        months_of(&srv, "all"),
        ["2024-01", "2023-08", "2023-07", "2023-06"]
    );
    drop(srv);
    let srv = lib.serve(&[]);
    let (_, _, page) = srv.get("/");
    let page = String::from_utf8(page).unwrap();
    assert!(
        page.contains("<span class=\"scope\">all snapshots</span>"),
        "{page}"
    );
}

/// Without `--no-open` the printed address goes to the desktop's opener (`xdg-open`; here
/// a script that writes down what it was given).
#[cfg(not(target_os = "macos"))]
#[test]
fn opens_the_browser_unless_no_open() {
    use std::os::unix::fs::PermissionsExt;
    let lib = Lib::new();
    let bin = lib.tmp.path().join("opener");
    let opened = lib.tmp.path().join("opened");
    write_file(
        &bin.join("xdg-open"),
        format!(
            "#!/bin/sh\necho \"$1\" > {}.tmp && mv {0}.tmp {0}\n",
            opened.display()
        )
        .as_bytes(),
    );
    std::fs::set_permissions(bin.join("xdg-open"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = std::env::join_paths(
        std::iter::once(bin.clone())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let srv = browse(&lib.sv, &lib.cache, &[], &[("PATH", Path::new(&path))]);
    let deadline = std::time::Instant::now() + DEFAULT_TIMEOUT;
    while !opened.exists() {
        assert!(std::time::Instant::now() < deadline, "xdg-open was not run");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(std::fs::read_to_string(&opened).unwrap().trim(), srv.url);
}

#[test]
fn damage_check_finds_while_serving_shows_on_the_next_page() {
    let lib = Lib::new();
    let srv = lib.serve(&[]);
    assert_eq!(months_of(&srv, "damaged"), Vec::<String>::new());
    damage_and_check(&lib);
    assert!(
        !months_of(&srv, "damaged").is_empty(),
        "check found damage while the server ran; the damaged filter shows none"
    );
    assert_eq!(months_of(&srv, "all").len(), 3);
}

fn walk_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn heic_without_a_decoder_is_a_placeholder_that_says_what_to_install() {
    let lib = Lib::new();
    let empty = lib.tmp.path().join("no-tools");
    std::fs::create_dir_all(&empty).unwrap();
    let srv = serve_env(&lib.sv, &lib.cache, &[], &[("PATH", &empty)]);
    let (_, _, body) = srv.get("/month/2023-08");
    let html = String::from_utf8(body).unwrap();
    let link = html
        .split("href=\"/photo/")
        .skip(1)
        .find(|s| s.contains("title=\"IMG_0003.HEIC"))
        .and_then(|s| s.split('"').next())
        .expect("the HEIC in August");
    let key = link.rsplit('/').next().unwrap();
    let (code, head, svg) = srv.get(&format!("/thumb/{key}"));
    assert_eq!(code, 200, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("x-snapvault-placeholder: 1"),
        "{head}"
    );
    let svg = String::from_utf8(svg).unwrap();
    assert!(svg.contains("heif-thumbnailer"), "{svg}");
    let (code, err) = srv.interrupt();
    assert_eq!(code, Some(130), "{err}");
    assert!(
        err.contains("note: no HEIC decoder found") && err.contains("apt install heif-thumbnailer"),
        "{err}"
    );
}

#[test]
fn remote_listen_needs_allow_remote() {
    let lib = Lib::new();
    let out = lib.run(&["browse", "--no-open", "--listen", "0.0.0.0:0"]);
    assert_eq!(out.code, Some(1), "{out}");
    assert_stderr_mentions(&out, "--allow-remote");
    let out = lib.run(&["browse", "--no-open", "--listen", "nowhere"]);
    assert_eq!(out.code, Some(1), "{out}");
    assert_stderr_mentions(&out, "not an address");

    // With --allow-remote it serves, and says what that exposes.
    let srv = lib.serve(&["--listen", "0.0.0.0:0", "--allow-remote"]);
    let port = srv.port().to_string();
    let local = format!("127.0.0.1:{port}");
    assert_eq!(http(&local, "/", &[]).0, 403, "no token");
    let with_token = format!("/?token={}", srv.token);
    assert_eq!(http(&local, &with_token, &[]).0, 303);
    let (code, err) = srv.interrupt();
    assert_eq!(code, Some(130), "{err}");
    assert!(
        err.contains("reachable from other machines")
            && err.contains("see and download every photo")
            && err.contains("unencrypted"),
        "{err}"
    );
}

#[test]
fn in_headless_chromium() {
    let Some(exe) = cdp::find() else {
        if std::env::var_os("SNAPVAULT_REQUIRE_CHROMIUM").is_some() {
            panic!("chromium is required here (SNAPVAULT_REQUIRE_CHROMIUM) but not installed");
        }
        eprintln!("skipping browse::in_headless_chromium: chromium is not installed");
        return;
    };
    let lib = Lib::new();
    let srv = lib.serve(&[]);
    let mut b = cdp::Browser::start(&exe, &lib.tmp.path().join("chromium-profile"));
    let base = format!("http://{}", srv.addr);

    // The printed address: the timeline lists the library's months; the token went into
    // a cookie the page's scripts cannot read, and out of the address bar.
    b.goto(&srv.url);
    let v = b.eval(
        "JSON.stringify({months: [...document.querySelectorAll('a.month')].map(a => a.dataset.month), \
         cookie: document.cookie, href: location.href})",
    );
    let v: serde_json::Value = serde_json::from_str(v.as_str().unwrap()).unwrap();
    assert_eq!(
        v["months"],
        serde_json::json!(["2023-08", "2023-07", "2023-06"]),
        "{v}"
    );
    assert_eq!(v["cookie"], "", "{v}");
    assert_eq!(v["href"], format!("{base}/"), "{v}");

    // A month: every thumbnail decodes.
    for m in ["2023-06", "2023-07", "2023-08"] {
        b.goto(&format!("{base}/month/{m}"));
        let imgs = b.eval(
            "Promise.all([...document.images].map(i => i.complete ? 0 : new Promise(r => { i.onload = i.onerror = r; })))\
             .then(() => JSON.stringify([...document.images].map(i => [i.getAttribute('src'), i.naturalWidth])))",
        );
        let imgs: Vec<(String, u32)> = serde_json::from_str(imgs.as_str().unwrap()).unwrap();
        assert!(!imgs.is_empty(), "{m}: no thumbnails");
        for (src, w) in &imgs {
            assert!(*w > 0, "{m}: thumbnail {src} did not decode");
        }
        let marks =
            b.eval("[...document.querySelectorAll('.badge')].map(e => e.textContent).join(',')");
        if m == "2023-06" {
            // The edited photo once, marked; its render is not a photo of its own.
            assert_eq!(marks, "EDITED", "edit marked");
            assert_eq!(imgs.len(), 1, "{imgs:?}");
        }
        if m == "2023-08" {
            assert_eq!(marks, "LIVE,VIDEO", "Live Photo and video marked");
        }
    }

    // The photo page: its capture date with the offset; the original downloads byte-exact.
    b.goto(&format!("{base}/month/2023-07"));
    let href = b.eval("document.querySelector('a.cell').href");
    b.goto(href.as_str().unwrap());
    assert_eq!(
        b.eval("document.getElementById('taken').textContent"),
        "2023-07-14 18:03:11 (UTC+02:00)"
    );
    assert_eq!(
        b.eval("document.getElementById('media').naturalWidth > 0"),
        true,
        "the photo itself shows"
    );
    let hex = b.eval(
        "fetch(document.getElementById('download').href).then(r => r.arrayBuffer())\
         .then(b => [...new Uint8Array(b)].map(x => x.toString(16).padStart(2, '0')).join(''))",
    );
    let want: String = lib
        .file("IMG_0001.JPG")
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect();
    assert!(
        hex.as_str() == Some(want.as_str()),
        "downloaded original differs"
    );

    // The edited photo's page shows the edit beside the original.
    b.goto(&format!("{base}/month/2023-06"));
    let href = b.eval("document.querySelector('a.cell').href");
    b.goto(href.as_str().unwrap());
    let edit = b.eval(
        "(() => { const i = document.getElementById('edit'); if (!i) return 'none'; \
         return i.complete ? i.naturalWidth > 0 : new Promise(r => { i.onload = () => r(i.naturalWidth > 0); i.onerror = () => r(false); }); })()",
    );
    assert_eq!(edit, true, "the edit shows on its original's page");

    // The Live Photo's page plays its motion.
    b.goto(&format!("{base}/month/2023-08"));
    let href = b.eval("document.querySelector('a.cell').href");
    b.goto(href.as_str().unwrap());
    // The sample MOV holds no playable frames, so what is checked here is that the page has
    // the motion video and the server gives the browser a range of it; real videos play and
    // seek in `browse::video`.
    let motion = b.eval(
        "(() => { const v = document.getElementById('motion'); if (!v) return 'none'; \
         return fetch(v.src, {headers: {Range: 'bytes=0-99'}}) \
           .then(r => r.arrayBuffer().then(b => r.status + ' ' + r.headers.get('content-type') + ' ' + b.byteLength)); })()",
    );
    assert_eq!(motion, "206 video/quicktime 100", "Live Photo motion");

    // Without the cookie: 403.
    assert_eq!(
        b.eval("fetch('/', {credentials: 'omit'}).then(r => r.status)"),
        403
    );

    // A real HEIC (an HEVC-coded image with an HEVC thumbnail item, made by libheif's
    // heif-enc): its thumbnail is decoded, not a placeholder.
    let Some(heic) = real_heic(lib.tmp.path()) else {
        if std::env::var_os("SNAPVAULT_REQUIRE_HEIF").is_some() {
            panic!("heif-enc is required here (SNAPVAULT_REQUIRE_HEIF) but not installed");
        }
        eprintln!(
            "skipping the HEIC part of browse::in_headless_chromium: heif-enc (Debian's libheif-examples) is not installed"
        );
        return;
    };
    write_file(&lib.src.join("DCIM/100APPLE/IMG_0005.HEIC"), &heic);
    let out = lib.run(&["snapshot", lib.src.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{out}");
    b.goto(&format!("{base}/"));
    let months = b.eval(
        "JSON.stringify([...document.querySelectorAll('a.month')].map(a => a.dataset.month))",
    );
    let months: Vec<String> = serde_json::from_str(months.as_str().unwrap()).unwrap();
    let mut seen = None;
    let mut heic_month = None;
    for m in &months {
        b.goto(&format!("{base}/month/{m}"));
        let got = b.eval(
            "(() => { const i = document.querySelector('a.cell[title^=\"IMG_0005.HEIC\"] img'); if (!i) return 'absent'; \
             const loaded = i.complete ? Promise.resolve() : new Promise(r => { i.onload = i.onerror = r; }); \
             return loaded.then(() => fetch(i.src)).then(r => r.arrayBuffer().then(b => JSON.stringify({w: i.naturalWidth, \
               type: r.headers.get('content-type'), placeholder: r.headers.get('x-snapvault-placeholder'), \
               magic: [...new Uint8Array(b).slice(0, 2)]}))); })()",
        );
        if got != "absent" {
            seen = Some(got);
            heic_month = Some(m.clone());
            break;
        }
    }
    let got = seen.expect("the HEIC is in no month");
    let v: serde_json::Value = serde_json::from_str(got.as_str().unwrap()).unwrap();
    assert!(
        v["w"].as_u64().unwrap() > 0,
        "HEIC thumbnail did not decode: {v}"
    );
    assert!(
        v["placeholder"].is_null() && v["type"] != "image/svg+xml",
        "a placeholder instead of the decoded HEIC thumbnail: {v}"
    );
    // JPEG, which every browser shows (issue 20: "browsers without HEIC support get JPEG").
    assert!(
        v["type"] == "image/jpeg" && v["magic"] == serde_json::json!([0xFF, 0xD8]),
        "the HEIC thumbnail is not a JPEG: {v}"
    );

    // Its page shows the picture at screen size (decoded by the same tools), not the
    // thumbnail: the test picture is wider than any thumbnail.
    b.goto(&format!("{base}/month/{}", heic_month.unwrap()));
    let href = b.eval("document.querySelector('a.cell[title^=\"IMG_0005.HEIC\"]').href");
    b.goto(href.as_str().unwrap());
    let width = b.eval(
        "(() => { const i = document.getElementById('media'); \
         return i.complete ? i.naturalWidth : new Promise(r => { i.onload = i.onerror = () => r(i.naturalWidth); }); })()",
    );
    assert_eq!(
        width, HEIC_WIDTH,
        "the HEIC's photo page shows {width} pixels wide, not the picture at screen size"
    );
    let screen = b.eval(
        "fetch(document.getElementById('media').src).then(r => r.arrayBuffer() \
         .then(b => r.headers.get('content-type') + ' ' + [...new Uint8Array(b).slice(0, 2)]))",
    );
    assert_eq!(
        screen, "image/jpeg 255,216",
        "the HEIC's screen-size picture"
    );
}

/// The width of [`real_heic`]'s picture: more than a thumbnail's 320 pixels, less than
/// the 2048 of a screen-size picture, so the photo page shows it whole.
const HEIC_WIDTH: usize = 640;

/// A real HEIC made by libheif's `heif-enc` from a generated 640×480 picture (Y4M), with a
/// 48-pixel thumbnail item; `None` when heif-enc is not installed.
fn real_heic(dir: &Path) -> Option<Vec<u8>> {
    let (w, h) = (HEIC_WIDTH, HEIC_WIDTH * 3 / 4);
    let mut y4m = format!("YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 C420jpeg\nFRAME\n").into_bytes();
    y4m.extend((0..h).flat_map(|y| (0..w).map(move |x| ((x * 3 + y * 2) % 256) as u8)));
    y4m.extend(std::iter::repeat_n(100u8, w / 2 * h / 2));
    y4m.extend(std::iter::repeat_n(160u8, w / 2 * h / 2));
    let input = dir.join("picture.y4m");
    let output = dir.join("picture.heic");
    std::fs::write(&input, y4m).unwrap();
    let done = std::process::Command::new("heif-enc")
        .args(["-q", "60", "-t", "48", "-o"])
        .arg(&output)
        .arg(&input)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match done {
        Ok(s) if s.success() => Some(std::fs::read(&output).unwrap()),
        Ok(s) => panic!("heif-enc failed ({s})"),
        Err(_) => None,
    }
}
