//! The timeline groups months under their years, newest first, and a month's grid is in
//! capture order, not in the order of the file names (issue 20: "years and months",
//! "a grid of thumbnails in capture order").

use snapvault_media::sample;

use super::serve;
use crate::common::*;

#[test]
fn months_under_their_years_and_a_month_in_capture_order() {
    let lib = CachedLibrary::new();
    let d = lib.src.join("DCIM/100APPLE");
    // Named in one order, taken in another; one photo a year earlier.
    for (name, when, seed) in [
        ("IMG_0001.JPG", "2023-05-20T09:00:00+02:00", 1),
        ("IMG_0002.JPG", "2023-05-03T09:00:00+02:00", 2),
        ("IMG_0003.JPG", "2023-05-11T09:00:00+02:00", 3),
        ("IMG_0004.JPG", "2022-12-24T18:00:00+01:00", 4),
    ] {
        write_file(
            &d.join(name),
            &sample::jpeg(&taken(when), None, 8_000, seed),
        );
    }
    lib.ok(&["snapshot", lib.src.to_str().unwrap()]);
    let srv = serve(&lib.sv, &lib.cache, &[]);

    let (code, _, body) = srv.get("/");
    assert_eq!(code, 200);
    let page = String::from_utf8(body).unwrap();
    let at = |s: &str| {
        page.find(s)
            .unwrap_or_else(|| panic!("{s} not on the timeline:\n{page}"))
    };
    assert!(
        at("<h2>2023</h2>") < at("data-month=\"2023-05\"")
            && at("data-month=\"2023-05\"") < at("<h2>2022</h2>")
            && at("<h2>2022</h2>") < at("data-month=\"2022-12\""),
        "months not under their years, newest first:\n{page}"
    );

    let (code, _, body) = srv.get("/month/2023-05");
    assert_eq!(code, 200);
    let page = String::from_utf8(body).unwrap();
    let names: Vec<&str> = page
        .split("class=\"cell\"")
        .skip(1)
        .filter_map(|c| c.split("title=\"").nth(1))
        .filter_map(|t| t.get(..12))
        .collect();
    assert_eq!(
        names,
        ["IMG_0002.JPG", "IMG_0003.JPG", "IMG_0001.JPG"],
        "not in capture order:\n{page}"
    );
}
