//! A headless Chromium driven through the DevTools protocol over a pipe
//! (`--remote-debugging-pipe`: JSON messages ending in NUL on fds 3 and 4), so the test
//! needs no WebSocket client and no port of its own.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long one DevTools call may take before the test fails (a hang guard, not a timing
/// assertion).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The Chromium binary (Debian's `chromium`), if installed.
pub fn find() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|n| std::env::split_paths(&path).map(move |d| d.join(n)))
        .find(|p| p.is_file())
}

pub struct Browser {
    child: Child,
    to: std::io::PipeWriter,
    from: mpsc::Receiver<Value>,
    next_id: u64,
    session: String,
    /// Events (messages without an id) received while waiting for answers, oldest first.
    events: Vec<Value>,
}

impl Browser {
    pub fn start(exe: &Path, profile: &Path) -> Browser {
        let (their_in, to) = std::io::pipe().expect("pipe");
        let (from_r, their_out) = std::io::pipe().expect("pipe");
        // Above 3 and 4 first, so that placing one cannot close the other.
        // SAFETY: duplicating descriptors this function owns.
        let (fd_in, fd_out) = unsafe {
            (
                libc::fcntl(their_in.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10),
                libc::fcntl(their_out.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10),
            )
        };
        assert!(fd_in >= 10 && fd_out >= 10, "fcntl(F_DUPFD_CLOEXEC) failed");
        let mut cmd = Command::new(exe);
        cmd.args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1000,700",
            "--remote-debugging-pipe",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // SAFETY: only dup2 (async-signal-safe) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(fd_in, 3) < 0 || libc::dup2(fd_out, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("starting chromium");
        drop((their_in, their_out));
        // SAFETY: closing the duplicates made above, which nothing else uses.
        unsafe {
            libc::close(fd_in);
            libc::close(fd_out);
        }
        let (tx, from) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(from_r);
            loop {
                let mut buf = Vec::new();
                match r.read_until(0, &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                buf.pop();
                if let Ok(v) = serde_json::from_slice::<Value>(&buf)
                    && tx.send(v).is_err()
                {
                    return;
                }
            }
        });
        let mut b = Browser {
            child,
            to,
            from,
            next_id: 0,
            session: String::new(),
            events: Vec::new(),
        };
        let target = b.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let id = target["targetId"].as_str().expect("targetId").to_string();
        let att = b.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": id, "flatten": true}),
        );
        b.session = att["sessionId"].as_str().expect("sessionId").to_string();
        b.page("Page.enable", json!({}));
        b.page("Runtime.enable", json!({}));
        b
    }

    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).expect("json");
        bytes.push(0);
        self.to.write_all(&bytes).expect("writing to chromium");
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self
                .from
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("chromium did not answer {method} in {CALL_TIMEOUT:?}"));
            if v["id"].as_u64() == Some(id) {
                if let Some(e) = v.get("error") {
                    panic!("chromium: {method} failed: {e}");
                }
                return v["result"].clone();
            }
            if v.get("method").is_some() {
                self.events.push(v);
            }
        }
    }

    /// Waits (up to [`CALL_TIMEOUT`], a hang guard) until an event `method` whose params
    /// satisfy `want` has arrived; every `method` event received so far, oldest first.
    pub fn events_until(&mut self, method: &str, want: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            while let Ok(v) = self.from.try_recv() {
                if v.get("method").is_some() {
                    self.events.push(v);
                }
            }
            let seen: Vec<Value> = self
                .events
                .iter()
                .filter(|e| e["method"] == method)
                .map(|e| e["params"].clone())
                .collect();
            if seen.iter().any(&want) || Instant::now() > deadline {
                return seen;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A call in the page's session.
    pub fn page(&mut self, method: &str, params: Value) -> Value {
        let s = self.session.clone();
        self.call(Some(&s), method, params)
    }

    /// Go to `url` and wait until the page (and its images) have loaded.
    pub fn goto(&mut self, url: &str) {
        self.page("Page.navigate", json!({"url": url}));
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            let state = self.eval("document.readyState + ' ' + location.href");
            let s = state.as_str().unwrap_or("");
            if s.starts_with("complete ") && !s.contains("about:blank") {
                return;
            }
            assert!(Instant::now() < deadline, "page {url} did not load: {s}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Evaluate a JavaScript expression (promises awaited); its value, as JSON.
    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.page(
            "Runtime.evaluate",
            json!({"expression": expr, "awaitPromise": true, "returnByValue": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("javascript failed: {e}\n{expr}");
        }
        r["result"]["value"].clone()
    }

    /// A PNG of the viewport.
    pub fn screenshot(&mut self) -> Vec<u8> {
        let r = self.page("Page.captureScreenshot", json!({"format": "png"}));
        base64_decode(r["data"].as_str().expect("screenshot data"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let clean: Vec<u8> = s.bytes().filter(|&c| c != b'=' && c != b'\n').collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c) << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len().saturating_sub(1)]);
    }
    out
}
