#!/usr/bin/env python3
"""How long until the first screen of thumbnails is visible in a real browser
(docs/benchmarks.md, `snapvault browse`).

    python3 benches/first_screen.py [SNAPVAULT_BINARY] [RUNS]

Makes the sample library with `snapvault demo` (its repository, in a scratch folder),
starts `snapvault browse --no-open` on it, and drives headless Chromium (Debian's
`chromium`) through the DevTools protocol over a pipe. For the month with the most photos
it loads the month page RUNS times (default 5) with the browser's cache off and reports,
from the start of navigation (`performance.now()` in the page), when every thumbnail in
the 1000×700 window had loaded and decoded (`complete` and `naturalWidth > 0`). The first
load has an empty thumbnail cache (thumbnails are made, HEIC decoded); the rest are
served from it. Everything is removed at the end.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

# Recorded in the page: when every thumbnail in the window has decoded.
PROBE = """
(() => {
  const done = () => {
    const imgs = [...document.images].filter(i => {
      const r = i.getBoundingClientRect();
      return r.bottom > 0 && r.top < innerHeight && r.right > 0 && r.left < innerWidth;
    });
    if (imgs.length && imgs.every(i => i.complete && i.naturalWidth > 0)) {
      window.__firstScreen = {ms: performance.now(), images: imgs.length};
    } else {
      setTimeout(done, 2);
    }
  };
  document.addEventListener('DOMContentLoaded', done);
})();
"""


class Browser:
    def __init__(self, exe, profile):
        to_r, self.to_w = os.pipe()
        self.from_r, from_w = os.pipe()

        def fds():
            # Above 4 first, so that placing one cannot close the other.
            a, b = os.dup2(to_r, 100), os.dup2(from_w, 101)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions",
             "--disable-background-networking", "--disable-sync", "--hide-scrollbars",
             "--window-size=1000,700", "--remote-debugging-pipe",
             f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=fds, close_fds=False)
        os.close(to_r)
        os.close(from_w)
        self.buf = b""
        self.next = 0
        self.session = None
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.call("Target.attachToTarget",
                                 targetId=page["targetId"], flatten=True)["sessionId"]

    def call(self, method, **params):
        self.next += 1
        msg = {"id": self.next, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            msg["sessionId"] = self.session
        os.write(self.to_w, json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in self.buf:
                chunk = os.read(self.from_r, 1 << 16)
                if not chunk:
                    raise RuntimeError("chromium closed the pipe")
                self.buf += chunk
            raw, self.buf = self.buf.split(b"\0", 1)
            m = json.loads(raw)
            if m.get("id") == self.next:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})

    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, awaitPromise=True, returnByValue=True)
        return r.get("result", {}).get("value")

    def close(self):
        self.proc.kill()
        self.proc.wait()


def main():
    binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/snapvault")
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        sys.exit("chromium is not installed")
    work = tempfile.mkdtemp(prefix="snapvault-first-screen-")
    server = None
    browser = None
    try:
        subprocess.run([binary, "demo", "--dir", os.path.join(work, "demo")], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env={**os.environ, "XDG_CACHE_HOME": os.path.join(work, "demo-cache")})
        env = {**os.environ, "SNAPVAULT_REPOSITORY": os.path.join(work, "demo", "repo"),
               "SNAPVAULT_PASSWORD": "correct horse battery staple",
               "XDG_CACHE_HOME": os.path.join(work, "cache")}
        server = subprocess.Popen([binary, "browse", "--no-open"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        url = server.stdout.readline().strip()
        base = url.split("/?token=")[0]
        browser = Browser(exe, os.path.join(work, "profile"))
        browser.call("Page.enable")
        browser.call("Network.enable")
        browser.call("Network.setCacheDisabled", cacheDisabled=True)
        browser.call("Page.navigate", url=url)
        time.sleep(0.5)
        months = browser.eval(
            "JSON.stringify([...document.querySelectorAll('a.month')].map(a => "
            "[a.dataset.month, a.querySelector('span').textContent]))")
        counts = [(m, sum(int(n) for n in re.findall(r"(\d+) (?:photo|video)", c)))
                  for m, c in json.loads(months)]
        month, n = max(counts, key=lambda x: x[1])
        browser.call("Page.addScriptToEvaluateOnNewDocument", source=PROBE)
        print(f"month {month}: {n} photos and videos; window 1000x700")
        for i in range(runs):
            browser.call("Page.navigate", url=f"{base}/month/{month}")
            got = None
            for _ in range(1000):
                got = browser.eval("JSON.stringify(window.__firstScreen || null)")
                if got and got != "null":
                    break
                time.sleep(0.01)
            r = json.loads(got)
            label = "cold thumbnail cache" if i == 0 else "thumbnails cached"
            print(f"  load {i + 1} ({label}): {r['images']} thumbnails visible "
                  f"after {r['ms']:.0f} ms")
    finally:
        if browser:
            browser.close()
        if server:
            server.kill()
            server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
