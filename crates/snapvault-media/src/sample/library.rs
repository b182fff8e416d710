//! Whole sample libraries: folders of photos, Live Photos, videos and edits laid out like a camera roll.

use super::*;

/// One item of a sample library, before it is written.
pub(super) struct Planned {
    rel: String,
    bytes: Vec<u8>,
    capture: CaptureTime,
}

/// Capture time of photo `i` (1-based) of `n`: spread over about sixteen months from March
/// 2023, in daytime, mostly in Central European time (CET/CEST by season) with trips to New
/// York and Tokyo.
pub(super) fn library_capture(i: usize, n: usize, rng: &mut Rng) -> CaptureTime {
    let start = CaptureTime {
        year: 2023,
        month: 3,
        day: 4,
        hour: 0,
        minute: 0,
        second: 0,
        offset_minutes: None,
    }
    .to_unix_seconds();
    let span_days = 480i64;
    let day = (i as i64 - 1) * span_days / (n.max(2) as i64 - 1);
    let tod = 8 * 3600 + rng.below(13 * 3600) as i64;
    let wall = CaptureTime::from_unix(start + day * 86_400 + tod, None);
    let offset = if i % 11 == 5 {
        -240
    } else if i % 13 == 8 {
        540
    } else if (4..=10).contains(&wall.month) {
        120
    } else {
        60
    };
    wall.with_offset(Some(offset))
}

/// A sample still: (capture, content id, payload length, seed) → the file.
pub type Maker = fn(&CaptureTime, Option<&str>, usize, u64) -> Vec<u8>;

/// What the camera stills of a sample [`library`] are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Stills {
    /// HEIC, as an iPhone's (with a grey 8×8 JPEG every tenth): their coded image is noise,
    /// so no decoder shows them. Tests.
    #[default]
    Heic,
    /// JPEG pictures that decode ([`jpeg_picture`]) where the other has HEIC and JPEG: for a
    /// library a person looks at (`snapvault demo`, then `browse`).
    Pictures,
}

/// Write a small iPhone-like library under `dir` and return the paths written, sorted
/// ([`library_with`] HEIC stills).
pub fn library(dir: &Path, photos: usize, seed: u64) -> io::Result<Vec<PathBuf>> {
    library_with(dir, photos, seed, Stills::Heic)
}

/// Write a small iPhone-like library under `dir` and return the paths written, sorted.
///
/// `DCIM/100APPLE/IMG_0001.HEIC` … with, for photo `i` (1-based):
/// - `i % 10 == 4`: a JPEG (`IMG_000i.JPG`); `i % 10 == 7`: a PNG screenshot;
/// - otherwise a HEIC, which for odd `i` is a Live Photo: `IMG_000i.MOV` beside it with the
///   same content id and capture time;
/// - `i % 10 == 3`: an edit sidecar `IMG_000i.AAE`; `i % 10 == 9`: an edited rendition
///   `IMG_E000i.HEIC` plus `IMG_O000i.AAE` (newer iOS naming);
/// - every 1000 photos start a new folder (`101APPLE`, …).
///
/// Capture dates spread over 2023–2024 with UTC offsets; sizes are tens to a few hundred KB;
/// every file's mtime is set to its capture instant. Deterministic from `seed` (apart from
/// the directory and file times). With [`Stills::Pictures`] every HEIC above is a JPEG
/// picture instead (`IMG_000i.JPG`, `IMG_E000i.JPG`), and so is the tenth JPEG.
pub fn library_with(
    dir: &Path,
    photos: usize,
    seed: u64,
    stills: Stills,
) -> io::Result<Vec<PathBuf>> {
    let (ext, still): (&str, Maker) = match stills {
        Stills::Heic => ("HEIC", heic),
        Stills::Pictures => ("JPG", jpeg_picture),
    };
    let jpg: Maker = match stills {
        Stills::Heic => jpeg,
        Stills::Pictures => jpeg_picture,
    };
    let mut rng = Rng::new(seed);
    let mut planned = Vec::new();
    for i in 1..=photos {
        let capture = library_capture(i, photos, &mut rng);
        let folder = format!("DCIM/{}APPLE", 100 + (i - 1) / 1000);
        let num = i % 10_000;
        let s = seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
        let kb = |rng: &mut Rng, lo: u64, hi: u64| (lo + rng.below(hi - lo)) as usize * 1024;
        let mut add = |name: String, bytes: Vec<u8>| {
            planned.push(Planned {
                rel: format!("{folder}/{name}"),
                bytes,
                capture,
            });
        };
        match i % 10 {
            4 => add(
                format!("IMG_{num:04}.JPG"),
                jpg(&capture, None, kb(&mut rng, 50, 200), s),
            ),
            7 => add(
                format!("IMG_{num:04}.PNG"),
                png(&capture, kb(&mut rng, 20, 60), s),
            ),
            _ => {
                let live = i % 2 == 1;
                let id = live.then(|| content_id(s));
                add(
                    format!("IMG_{num:04}.{ext}"),
                    still(&capture, id.as_deref(), kb(&mut rng, 40, 160), s),
                );
                if let Some(id) = &id {
                    add(
                        format!("IMG_{num:04}.MOV"),
                        mov(&capture, Some(id), kb(&mut rng, 80, 300), s ^ 1),
                    );
                }
            }
        }
        let edited =
            CaptureTime::from_unix(capture.to_unix_seconds() + 3_600, capture.offset_minutes);
        match i % 10 {
            3 => add(format!("IMG_{num:04}.AAE"), aae(&edited, s ^ 2)),
            9 => {
                add(
                    format!("IMG_E{num:04}.{ext}"),
                    still(&capture, None, kb(&mut rng, 40, 160), s ^ 3),
                );
                add(format!("IMG_O{num:04}.AAE"), aae(&edited, s ^ 2));
            }
            _ => {}
        }
    }
    let mut paths = Vec::with_capacity(planned.len());
    for p in planned {
        let path = dir.join(&p.rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&path, &p.bytes)?;
        let secs = p.capture.to_unix_seconds();
        let when = if secs >= 0 {
            SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64)
        } else {
            SystemTime::UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
        };
        fs::File::options()
            .write(true)
            .open(&path)?
            .set_modified(when)?;
        paths.push(path);
    }
    paths.sort();
    Ok(paths)
}
