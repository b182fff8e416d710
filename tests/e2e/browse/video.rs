//! Videos and Live Photo motion play in a real browser, with seeking (issue 20: "Live Photo
//! motion playable, video playable with seeking (HTTP range requests)"), on real videos made
//! by ffmpeg: H.264 in a QuickTime `.MOV`, as an iPhone writes them (iPhones write H.264 or
//! HEVC in `.MOV`; Debian's Chromium decodes H.264 but not HEVC, which it leaves to
//! hardware decoders, so the test checks `canPlayType` first and says so if that changes).

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;
use snapvault_media::sample;

use super::{cdp, serve};
use crate::common::*;

/// Length of the generated videos, in seconds.
const SECONDS: f64 = 2.0;
/// Where the test seeks to.
const SEEK_TO: f64 = 1.5;

/// A real 2-second, 160×120, 25 fps H.264 video in a QuickTime container (its `moov` at
/// the end, as ffmpeg writes it; 20-50 KiB), with `created` (UTC) as its creation time,
/// made by ffmpeg from one of its test patterns (`pattern`, so that two videos differ);
/// `None` when ffmpeg is not installed.
fn real_mov(dir: &Path, name: &str, pattern: &str, created: &str) -> Option<Vec<u8>> {
    let out = dir.join(name);
    let source = format!("{pattern}=size=160x120:rate=25:duration={SECONDS}");
    let done = Command::new("ffmpeg")
        .args([
            "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", &source,
        ])
        // Baseline profile, a key frame every 10 frames: quick to seek.
        .args([
            "-c:v",
            "libx264",
            "-profile:v",
            "baseline",
            "-pix_fmt",
            "yuv420p",
            "-g",
            "10",
        ])
        .args(["-metadata", &format!("creation_time={created}")])
        .args(["-f", "mov"])
        .arg(&out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    match done {
        Ok(o) if o.status.success() => Some(std::fs::read(&out).unwrap()),
        Ok(o) => panic!(
            "ffmpeg failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(_) => None,
    }
}

/// Plays `id` (a `<video>` on the current page) until it knows its length, seeks to
/// [`SEEK_TO`] and waits for `seeked`: what the page's player then reports, as JSON.
fn play_and_seek(b: &mut cdp::Browser, id: &str) -> Value {
    let js = format!(
        "(async () => {{ const v = document.getElementById('{id}'); if (!v) return JSON.stringify({{absent: true}}); \
         const failed = () => new Error('media error ' + (v.error ? v.error.code + ' ' + v.error.message : '?')); \
         const on = (ok) => new Promise((r, j) => {{ v.addEventListener(ok, r, {{once: true}}); v.addEventListener('error', () => j(failed()), {{once: true}}); }}); \
         try {{ \
           if (v.error) throw failed(); \
           if (v.readyState < 1) {{ v.load(); await on('loadedmetadata'); }} \
           const duration = v.duration; \
           const seeked = on('seeked'); v.currentTime = {SEEK_TO}; await seeked; \
           if (v.readyState < 2) await Promise.race([on('loadeddata'), on('canplay')]); \
           return JSON.stringify({{duration, time: v.currentTime, ready: v.readyState, \
             width: v.videoWidth, src: v.currentSrc}}); \
         }} catch (e) {{ return JSON.stringify({{error: String(e)}}); }} }})()"
    );
    let v = b.eval(&js);
    serde_json::from_str(v.as_str().expect("a JSON string")).expect("JSON")
}

#[test]
fn video_and_live_photo_motion_seek_in_headless_chromium() {
    let Some(exe) = cdp::find() else {
        if std::env::var_os("SNAPVAULT_REQUIRE_CHROMIUM").is_some() {
            panic!("chromium is required here (SNAPVAULT_REQUIRE_CHROMIUM) but not installed");
        }
        eprintln!(
            "skipping browse::video::video_and_live_photo_motion_seek_in_headless_chromium: chromium is not installed"
        );
        return;
    };
    let lib = CachedLibrary::new();
    let d = lib.src.join("DCIM/100APPLE");
    let (Some(motion), Some(video)) = (
        real_mov(lib.tmp.path(), "a.mov", "testsrc", "2023-09-03T08:00:00Z"),
        real_mov(lib.tmp.path(), "b.mov", "testsrc2", "2023-09-04T08:00:00Z"),
    ) else {
        if std::env::var_os("SNAPVAULT_REQUIRE_FFMPEG").is_some() {
            panic!("ffmpeg is required here (SNAPVAULT_REQUIRE_FFMPEG) but not installed");
        }
        eprintln!(
            "skipping browse::video::video_and_live_photo_motion_seek_in_headless_chromium: ffmpeg is not installed"
        );
        return;
    };
    // A Live Photo (a still and its motion, paired by name) and a video of its own.
    write_file(
        &d.join("IMG_0020.JPG"),
        &sample::jpeg(&taken("2023-09-03T10:00:00+02:00"), None, 15_000, 20),
    );
    write_file(&d.join("IMG_0020.MOV"), &motion);
    write_file(&d.join("IMG_0021.MOV"), &video);
    lib.ok(&["snapshot", lib.src.to_str().unwrap()]);

    let srv = serve(&lib.sv, &lib.cache, &[]);
    let mut b = cdp::Browser::start(&exe, &lib.tmp.path().join("chromium-profile"));
    let base = format!("http://{}", srv.addr);
    b.goto(&srv.url);
    let codecs = b.eval(
        "(() => { const v = document.createElement('video'); \
         return ['video/mp4; codecs=\"avc1.42E01E\"', 'video/mp4; codecs=\"hvc1.1.6.L93.B0\"'].map(t => v.canPlayType(t)).join(','); })()",
    );
    let codecs = codecs.as_str().unwrap_or("").to_string();
    assert!(
        codecs.starts_with("probably,") || codecs.starts_with("maybe,"),
        "this Chromium cannot play H.264 ({codecs}): the test's videos would not play"
    );
    if !codecs.ends_with(',') {
        eprintln!("note: this Chromium also plays HEVC ({codecs})");
    }
    b.page("Network.enable", serde_json::json!({}));

    for (name, id) in [("IMG_0021.MOV", "media"), ("IMG_0020.JPG", "motion")] {
        b.goto(&format!("{base}/month/2023-09"));
        let href = b.eval(&format!(
            "(() => {{ const a = document.querySelector('a.cell[title^=\"{name}\"]'); return a ? a.href : 'absent'; }})()"
        ));
        let href = href.as_str().unwrap().to_string();
        assert_ne!(href, "absent", "{name} is not in September 2023");
        b.goto(&href);
        let v = play_and_seek(&mut b, id);
        assert!(
            v.get("error").is_none() && v.get("absent").is_none(),
            "{name}: {v}"
        );
        let duration = v["duration"].as_f64().unwrap();
        assert!(
            (duration - SECONDS).abs() < 0.1,
            "{name}: the player says {duration} s, the video is {SECONDS} s: {v}"
        );
        assert!(
            (v["time"].as_f64().unwrap() - SEEK_TO).abs() < 0.1,
            "{name}: not at {SEEK_TO} s after seeking: {v}"
        );
        assert!(
            v["ready"].as_u64().unwrap() >= 2,
            "{name}: no frame at {SEEK_TO} s after seeking: {v}"
        );
        assert_eq!(v["width"], 160, "{name}: {v}");

        // The player asked for the stored video by range, and the server answered with one.
        // (Over loopback its first range, `bytes=0-`, brings the whole small file before
        // the seek; a range in the middle is checked over HTTP in
        // `browse::token_range_and_read_only_through_http`.)
        let src = v["src"].as_str().unwrap().to_string();
        let answers = b.events_until("Network.responseReceived", |p| {
            p["response"]["url"] == src.as_str() && p["response"]["status"] == 206
        });
        let ranged: Vec<&Value> = answers
            .iter()
            .filter(|p| p["response"]["url"] == src.as_str())
            .collect();
        assert!(
            ranged.iter().any(|p| p["response"]["status"] == 206
                && p["response"]["headers"]
                    .as_object()
                    .is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case("content-range")))),
            "{name}: no range answered for {src}: {ranged:?}"
        );
        let asked = b.events_until("Network.requestWillBeSent", |p| {
            p["request"]["url"] == src.as_str()
                && p["request"]["headers"]
                    .as_object()
                    .is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case("range")))
        });
        assert!(
            asked.iter().any(|p| p["request"]["url"] == src.as_str()
                && p["request"]["headers"]
                    .as_object()
                    .is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case("range")))),
            "{name}: the player sent no Range request for {src}"
        );
    }
}
