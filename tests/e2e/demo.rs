//! README's first command runs `snapvault demo`: it must work on a machine with no phone.

use crate::common::*;

#[test]
fn demo_runs_end_to_end_on_the_emulated_iphone() {
    let tmp = tempdir();
    let dir = tmp.path().join("demo");
    let mut c = base_command();
    c.env("XDG_CACHE_HOME", tmp.path().join("cache"));
    c.args(["demo", "--dir", dir.to_str().unwrap()]);
    let out = run_command(c, DEFAULT_TIMEOUT);
    assert_eq!(out.code, Some(0), "{out}");
    for step in [
        "$ snapvault snapshot iphone",
        "library: ",
        "only in iCloud (not on this phone)",
        "no longer on the source",
        "now only in iCloud: DCIM/100APPLE/IMG_0005.JPG",
        "$ snapvault restore --date 2023-07",
        "byte-for-byte identical",
        "is restored beside it as edited-",
        "not on this phone — not backed up by snapvault",
        "safe to delete: ",
        "no errors found",
        "snapvault browse --repo ",
    ] {
        assert!(
            out.stdout.contains(step),
            "demo output lacks {step:?}:\n{out}"
        );
    }
    // The browse command it ends with shows the demo's photos: every still has a real
    // thumbnail (no "could not read" or "install a decoder" placeholder); only videos get
    // one.
    let sv = Sv::at(dir.join("repo"), Some(PASSWORD));
    let srv = crate::browse::serve(&sv, &tmp.path().join("cache"), &[]);
    let months = crate::browse::months_of(&srv, "all");
    assert!(months.len() > 3, "{months:?}");
    let mut stills = 0;
    for m in &months {
        let (code, _, page) = srv.get(&format!("/month/{m}"));
        assert_eq!(code, 200);
        let page = String::from_utf8(page).unwrap();
        for cell in page.split("<a class=\"cell\"").skip(1) {
            let link = crate::browse::photo_links(cell).remove(0);
            let key = link.rsplit('/').next().unwrap();
            let (code, head, _) = srv.get(&format!("/thumb/{key}"));
            assert_eq!(code, 200, "{head}");
            let placeholder = head
                .to_ascii_lowercase()
                .contains("x-snapvault-placeholder");
            if cell.contains(">VIDEO<") {
                continue;
            }
            stills += 1;
            assert!(
                !placeholder,
                "{m}: a placeholder instead of a thumbnail for {}",
                cell.split("title=\"").nth(1).unwrap_or(cell)
            );
        }
    }
    assert!(stills > 10, "{stills} stills");
    in_chromium(&srv, tmp.path(), &months);
    drop(srv);

    // Running it again replaces the earlier demo folder instead of failing.
    let mut c = base_command();
    c.env("XDG_CACHE_HOME", tmp.path().join("cache"));
    c.args(["demo", "--dir", dir.to_str().unwrap()]);
    assert_eq!(run_command(c, DEFAULT_TIMEOUT).code, Some(0));
}

/// Where Chromium is installed (CI has it): every picture on every month page of the demo
/// decodes, and the stills are pictures (320 pixels wide), not grey squares.
/// `SNAPVAULT_SCREENSHOTS=DIR` keeps the timeline and the fullest month as
/// `browse-timeline.png` and `browse-month.png` (how docs/ has them).
fn in_chromium(srv: &crate::browse::Server, tmp: &std::path::Path, months: &[String]) {
    let Some(exe) = crate::browse::cdp::find() else {
        eprintln!("skipping the browser part of demo: chromium is not installed");
        return;
    };
    let mut b = crate::browse::cdp::Browser::start(&exe, &tmp.join("chromium-profile"));
    let shots = std::env::var_os("SNAPVAULT_SCREENSHOTS").map(std::path::PathBuf::from);
    b.goto(&srv.url);
    if let Some(d) = &shots {
        std::fs::write(d.join("browse-timeline.png"), b.screenshot()).unwrap();
    }
    let base = srv.url.split("/?").next().unwrap().to_string();
    let mut fullest = (0, String::new());
    for m in months {
        b.goto(&format!("{base}/month/{m}"));
        let imgs = b.eval(
            "Promise.all([...document.images].map(i => i.complete ? 0 : new Promise(r => { i.onload = i.onerror = r; })))\
             .then(() => JSON.stringify([...document.images].map(i => [i.alt, i.naturalWidth])))",
        );
        let imgs: Vec<(String, u32)> = serde_json::from_str(imgs.as_str().unwrap()).unwrap();
        for (alt, w) in &imgs {
            assert!(*w > 0, "{m}: the thumbnail of {alt} did not decode");
            if alt.contains(".JPG ") {
                assert_eq!(*w, 320, "{m}: {alt} is not a picture");
            }
        }
        if imgs.len() > fullest.0 {
            fullest = (imgs.len(), m.clone());
        }
    }
    if let Some(d) = &shots {
        b.goto(&format!("{base}/month/{}", fullest.1));
        std::fs::write(d.join("browse-month.png"), b.screenshot()).unwrap();
    }
}
