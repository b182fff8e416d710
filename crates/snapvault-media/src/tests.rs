//! Cross-format tests: samples round-trip through `inspect`, cut and damaged input never
//! panics, fallback chain, pairing, kinds, compression advice.

use proptest::prelude::*;

use super::*;
use crate::sample::{self, ExifPlace};

const ID: &str = "7A5E2F0C-1B3D-4E5F-8A9B-0C1D2E3F4A5B";

fn ct(s: &str) -> CaptureTime {
    s.parse().expect(s)
}

fn jpeg_with_app1(tiff: &[u8]) -> Vec<u8> {
    let mut f = vec![0xFF, 0xD8, 0xFF, 0xE1];
    f.extend_from_slice(&((tiff.len() + 8) as u16).to_be_bytes());
    f.extend_from_slice(b"Exif\0\0");
    f.extend_from_slice(tiff);
    f.extend_from_slice(&[0xFF, 0xD9]);
    f
}

fn info(kind: MediaKind, capture: CaptureTime, source: DateSource, id: Option<&str>) -> MediaInfo {
    MediaInfo {
        kind,
        capture: Some(capture),
        date_source: Some(source),
        content_id: id.map(str::to_owned),
    }
}

#[test]
fn jpeg_round_trip() {
    for (s, id) in [
        ("2023-07-14T18:03:11+02:00", Some(ID)),
        ("2024-01-02T03:04:05-05:30", None),
        ("2023-12-31T23:59:59", Some(ID)),
        ("2023-12-31T23:59:59", Some("ABC")),
        ("2023-12-31T23:59:59", Some("ABCD")),
        ("2023-12-31T23:59:59", Some("ABCDE")),
    ] {
        let c = ct(s);
        let f = sample::jpeg(&c, id, 70_000, 1);
        assert!(f.len() > 70_000);
        assert_eq!(
            inspect(b"DCIM/100APPLE/IMG_0001.JPG", &f),
            info(MediaKind::Photo, c, DateSource::Exif, id)
        );
    }
}

#[test]
fn heic_round_trip() {
    let c = ct("2023-07-14T18:03:11+02:00");
    for place in [ExifPlace::Mdat, ExifPlace::Idat] {
        for id in [Some(ID), None] {
            let f = sample::heic_with(place, &c, id, 10_000, 2);
            assert_eq!(
                inspect(b"IMG_0001.HEIC", &f),
                info(MediaKind::Photo, c, DateSource::Exif, id)
            );
        }
    }
    assert_eq!(format_of(b"", &sample::heic(&c, None, 0, 0)), Format::Heif);
}

#[test]
fn png_tiff_round_trip() {
    let c = ct("2024-03-09T10:11:12+01:00");
    let p = sample::png(&c, 5_000, 3);
    assert_eq!(
        inspect(b"IMG_0007.PNG", &p),
        info(MediaKind::Photo, c, DateSource::Exif, None)
    );
    let t = sample::tiff(&c, 5_000, 3);
    assert_eq!(
        inspect(b"scan.dng", &t),
        info(MediaKind::Photo, c, DateSource::Exif, None)
    );
}

#[test]
fn little_endian_exif_and_fallback_tags() {
    let c = ct("2023-05-06T07:08:09-03:00");
    let f = jpeg_with_app1(&sample::exif_block_with(false, &c, Some(ID)));
    assert_eq!(
        inspect(b"a.jpg", &f),
        info(MediaKind::Photo, c, DateSource::Exif, Some(ID))
    );
    // Only IFD0 DateTime + OffsetTime.
    let f = jpeg_with_app1(&sample::exif_block_modified_only(&c));
    assert_eq!(inspect(b"a.jpg", &f).capture, Some(c));
    let f = jpeg_with_app1(&sample::exif_block_modified_only(&c.with_offset(None)));
    assert_eq!(inspect(b"a.jpg", &f).capture, Some(c.with_offset(None)));
}

#[test]
fn video_round_trip() {
    let c = ct("2023-07-14T18:03:11+02:00");
    let m = sample::mov(&c, Some(ID), 50_000, 4);
    assert_eq!(
        inspect(b"IMG_0001.MOV", &m),
        info(MediaKind::Video, c, DateSource::QuickTime, Some(ID))
    );
    // MP4 has only mvhd: the UTC instant.
    let m = sample::mp4(&c, 50_000, 4);
    let got = inspect(b"VID_1.mp4", &m);
    assert_eq!(
        got,
        info(
            MediaKind::Video,
            ct("2023-07-14T16:03:11+00:00"),
            DateSource::QuickTime,
            None
        )
    );
    assert_eq!(
        got.capture.map(|t| t.to_unix_seconds()),
        Some(c.to_unix_seconds())
    );
    // No offset in the creationdate key: none in the result.
    let local = c.with_offset(None);
    assert_eq!(
        inspect(b"a.mov", &sample::mov(&local, None, 10, 4)).capture,
        Some(local)
    );
}

#[test]
fn moov_beyond_head() {
    let c = ct("2023-07-14T18:03:11+02:00");
    let m = sample::mov(&c, Some(ID), 20_000, 5);
    let moov = m.windows(4).rposition(|w| w == b"moov").expect("moov") - 4;
    for cut in [40, 100, moov, moov + 10, m.len() - 1] {
        let head = &m[..cut];
        if cut <= moov + 10 {
            assert_eq!(inspect(b"IMG_0001.MOV", head).capture, None, "{cut}");
        }
        assert_eq!(video_metadata_offset(head), Some(moov as u64), "{cut}");
    }
    assert_eq!(video_metadata_offset(&m), None);
    assert_eq!(video_metadata_offset(&sample::mp4(&c, 100, 1)), None);
    assert_eq!(video_metadata_offset(&sample::heic(&c, None, 100, 1)), None);
    assert_eq!(
        inspect_moov(b"IMG_0001.MOV", &m[moov..]),
        info(MediaKind::Video, c, DateSource::QuickTime, Some(ID))
    );
}

#[test]
fn sidecar_and_others() {
    let c = ct("2023-07-14T18:03:11+02:00");
    let a = sample::aae(&c, 1);
    assert!(a.starts_with(b"<?xml"));
    assert_eq!(
        inspect(b"IMG_0001.AAE", &a),
        MediaInfo {
            kind: MediaKind::Sidecar,
            ..MediaInfo::default()
        }
    );
    assert_eq!(inspect(b"notes.txt", b"hello").kind, MediaKind::Other);
    assert_eq!(inspect(b"", b"").kind, MediaKind::Other);
}

/// Every sample format, small, with the capture time `inspect` must find.
type Sample = (&'static [u8], Vec<u8>, CaptureTime, Option<&'static str>);

fn samples() -> Vec<Sample> {
    let c = ct("2023-07-14T18:03:11+02:00");
    vec![
        (
            &b"a.jpg"[..],
            sample::jpeg(&c, Some(ID), 300, 1),
            c,
            Some(ID),
        ),
        (b"a.heic", sample::heic(&c, Some(ID), 300, 2), c, Some(ID)),
        (
            b"a.heic",
            sample::heic_with(ExifPlace::Idat, &c, Some(ID), 300, 2),
            c,
            Some(ID),
        ),
        (b"a.png", sample::png(&c, 300, 3), c, None),
        (b"a.tif", sample::tiff(&c, 300, 4), c, None),
        (b"a.mov", sample::mov(&c, Some(ID), 300, 5), c, Some(ID)),
        (b"a.mp4", sample::mp4(&c, 300, 6), c.to_utc(), None),
    ]
}

#[test]
fn every_prefix_gives_none_or_the_right_answer() {
    for (name, f, want, id) in samples() {
        for n in 0..=f.len() {
            let got = inspect(name, &f[..n]);
            if let Some(t) = got.capture {
                // A video cut inside its metadata may still offer mvhd: same instant in UTC.
                assert!(
                    t == want || t == want.to_utc(),
                    "{} cut at {n}: {t}",
                    String::from_utf8_lossy(name)
                );
            }
            if let Some(g) = &got.content_id {
                assert_eq!(Some(g.as_str()), id);
            }
        }
        let full = inspect(name, &f);
        assert_eq!(
            full.capture,
            Some(want),
            "{}",
            String::from_utf8_lossy(name)
        );
        assert_eq!(full.content_id.as_deref(), id);
    }
}

#[test]
fn hostile_structures() {
    let c = ct("2023-07-14T18:03:11+02:00");
    // TIFF whose Exif IFD pointer points back at IFD0, with a huge entry count.
    let mut t = b"MM\0*\0\0\0\x08\xff\xff".to_vec();
    t.extend_from_slice(&[0x87, 0x69, 0, 4, 0, 0, 0, 1, 0, 0, 0, 8]);
    assert_eq!(inspect(b"x.tif", &t).capture, None);
    // Values pointing far outside, counts that overflow.
    let mut t = b"II*\0\x08\0\0\0\x02\0".to_vec();
    t.extend_from_slice(&[
        0x32, 0x01, 2, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    ]);
    t.extend_from_slice(&[0x69, 0x87, 4, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(inspect(b"x.tif", &t).capture, None);
    // Boxes: 64-bit size beyond everything, size 0, size smaller than its header.
    for b in [
        &b"\0\0\0\x01moov\xff\xff\xff\xff\xff\xff\xff\xff\0\0\0\x08mvhd"[..],
        b"\0\0\0\0moov\0\0\0\0mvhd",
        b"\0\0\0\x04moov",
        b"\0\0\0\x10ftypqt  \0\0\0\0\0\0\0\x01moov\0\0\0\0\0\0\0\x01",
    ] {
        let i = inspect(b"x.mov", b);
        assert_eq!(i.capture, None);
        let _ = video_metadata_offset(b);
    }
    // HEIC whose iloc extents point past the end of the data.
    let mut h = sample::heic(&c, None, 100, 1);
    let iloc = h.windows(4).position(|w| w == b"iloc").expect("iloc");
    // Exif item (id 2) offset field: after 4 v/f, sizes(2), count(2), item 1 (14 bytes),
    // id(2), dref(2), extent count(2).
    let off = iloc + 4 + 4 + 2 + 2 + 14 + 6;
    h[off..off + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(inspect(b"x.heic", &h).capture, None);
    // JPEG segment lengths below 2, and an APP1 cut short.
    assert_eq!(
        inspect(b"x.jpg", b"\xff\xd8\xff\xe1\0\x01Exif").capture,
        None
    );
    assert_eq!(
        inspect(b"x.jpg", b"\xff\xd8\xff\xe1\xff\xffExif\0\0MM").capture,
        None
    );
    // PNG chunk with a length beyond 2^31.
    let mut p = crate::png::SIGNATURE.to_vec();
    p.extend_from_slice(b"\xff\xff\xff\xffeXIf");
    assert_eq!(inspect(b"x.png", &p).capture, None);
}

#[test]
fn fallback_chain() {
    let c = ct("2023-07-14T18:03:11+02:00");
    let from_exif = info(MediaKind::Photo, c, DateSource::Exif, None);
    assert_eq!(
        with_fallback(from_exif.clone(), Some(1), 2, Some(60)),
        from_exif
    );

    let bare = MediaInfo {
        kind: MediaKind::Photo,
        ..MediaInfo::default()
    };
    let b = with_fallback(bare.clone(), Some(1_689_350_591), 1_700_000_000, Some(120));
    assert_eq!(b.capture, Some(c));
    assert_eq!(b.date_source, Some(DateSource::BirthTime));

    let m = with_fallback(bare.clone(), None, 1_689_350_591, None);
    assert_eq!(m.capture, Some(ct("2023-07-14T16:03:11")));
    assert_eq!(m.date_source, Some(DateSource::Mtime));
    // A zero birth time means "not recorded".
    let m = with_fallback(bare, Some(0), 1_689_350_591, Some(120));
    assert_eq!(m.capture, Some(c));
    assert_eq!(m.date_source, Some(DateSource::Mtime));
    // The video whose moov is beyond the head falls back too.
    let head = &sample::mov(&c, None, 10_000, 1)[..4096];
    let v = with_fallback(inspect(b"a.MOV", head), Some(5), 6, None);
    assert_eq!(v.date_source, Some(DateSource::BirthTime));
    assert_eq!(v.kind, MediaKind::Video);
}

#[test]
fn pair_stems() {
    let s = |p: &[u8]| pair_stem(p).map(|v| String::from_utf8(v).expect("utf8"));
    let want = Some("DCIM/100APPLE/IMG_0001".to_owned());
    for p in [
        &b"DCIM/100APPLE/IMG_0001.HEIC"[..],
        b"DCIM/100APPLE/IMG_0001.MOV",
        b"DCIM/100APPLE/IMG_0001.AAE",
        b"DCIM/100APPLE/IMG_0001.jpg",
        b"DCIM/100APPLE/IMG_E0001.HEIC",
        b"DCIM/100APPLE/IMG_E0001.MOV",
        b"DCIM/100APPLE/IMG_O0001.AAE",
    ] {
        assert_eq!(s(p), want, "{}", String::from_utf8_lossy(p));
    }
    assert_eq!(s(b"IMG_0001.HEIC"), Some("IMG_0001".into()));
    assert_eq!(
        s(b"DCIM\\101APPLE\\IMG_0002.MOV"),
        Some("DCIM\\101APPLE\\IMG_0002".into())
    );
    assert_eq!(s(b"a/IMG_0001 (1).HEIC"), Some("a/IMG_0001 (1)".into()));
    assert_eq!(s(b"a/photo.final.jpg"), Some("a/photo.final".into()));
    // Not an edit prefix: letters after E/O, lowercase, nothing after the E.
    assert_eq!(s(b"a/IMG_EDIT.jpg"), Some("a/IMG_EDIT".into()));
    assert_eq!(s(b"a/IMG_e0001.jpg"), Some("a/IMG_e0001".into()));
    assert_eq!(s(b"a/IMG_E.jpg"), Some("a/IMG_E".into()));
    assert_eq!(s(b"a/E0001.jpg"), Some("a/E0001".into()));
    // Different folders do not pair.
    assert_ne!(s(b"a/IMG_0001.HEIC"), s(b"b/IMG_0001.MOV"));
    for p in [
        &b"notes.txt"[..],
        b"IMG_0001",
        b"a/.HEIC",
        b"",
        b"/",
        b"a.b/c",
    ] {
        assert_eq!(s(p), None, "{}", String::from_utf8_lossy(p));
    }
}

#[test]
fn kinds() {
    let c = ct("2023-07-14T18:03:11+02:00");
    let heic = sample::heic(&c, None, 0, 0);
    let jpg = sample::jpeg(&c, None, 0, 0);
    let mov = sample::mov(&c, None, 0, 0);
    for (name, head, want) in [
        (&b"IMG_0001.HEIC"[..], &b""[..], MediaKind::Photo),
        (b"x.JPG", &heic, MediaKind::Photo),
        (b"x.mov", b"", MediaKind::Video),
        (b"x.mp4", &mov, MediaKind::Video),
        (b"x.jpg", &mov, MediaKind::Video),
        (b"IMG_0001.AAE", b"<?xml", MediaKind::Sidecar),
        (b"x.xmp", &jpg, MediaKind::Sidecar),
        (b"notes.txt", b"hello", MediaKind::Other),
        (b"noext", &jpg, MediaKind::Photo),
        (b"x.txt", crate::png::SIGNATURE, MediaKind::Photo),
        (b"x.DNG", b"II*\0\x08\0\0\0", MediaKind::Photo),
        (b"song.m4a", b"\0\0\0\x14ftypM4A \0\0\0\0", MediaKind::Other),
        (b"x.mkv", b"\x1a\x45\xdf\xa3", MediaKind::Video),
    ] {
        assert_eq!(
            kind_of(name, head),
            want,
            "{}",
            String::from_utf8_lossy(name)
        );
    }
    let j = serde_json::to_string(&[MediaKind::Photo, MediaKind::Sidecar]).expect("json");
    assert_eq!(j, r#"["photo","sidecar"]"#);
    let j = serde_json::to_string(&[
        DateSource::Exif,
        DateSource::QuickTime,
        DateSource::BirthTime,
        DateSource::Mtime,
    ])
    .expect("json");
    assert_eq!(j, r#"["exif","quicktime","birth_time","mtime"]"#);
    for k in [
        MediaKind::Photo,
        MediaKind::Video,
        MediaKind::Sidecar,
        MediaKind::Other,
    ] {
        assert_eq!(serde_json::to_string(&k).expect("json"), format!("\"{k}\""));
    }
    for d in [
        DateSource::Exif,
        DateSource::QuickTime,
        DateSource::BirthTime,
        DateSource::Mtime,
    ] {
        assert_eq!(serde_json::to_string(&d).expect("json"), format!("\"{d}\""));
    }
    let i = info(MediaKind::Photo, c, DateSource::Exif, Some(ID));
    let j = serde_json::to_string(&i).expect("json");
    assert_eq!(serde_json::from_str::<MediaInfo>(&j).expect("back"), i);
}

#[test]
fn compression_advice() {
    let c = ct("2023-07-14T18:03:11+02:00");
    for (name, f) in [
        (&b"a.jpg"[..], sample::jpeg(&c, None, 100, 1)),
        (b"a.heic", sample::heic(&c, None, 100, 1)),
        (b"a.png", sample::png(&c, 100, 1)),
        (b"a.mov", sample::mov(&c, None, 100, 1)),
        (b"a.mp4", sample::mp4(&c, 100, 1)),
        (b"a.zip", b"PK\x03\x04".to_vec()),
        (b"a.HEIC", Vec::new()),
    ] {
        assert!(
            !worth_compressing(name, &f),
            "{}",
            String::from_utf8_lossy(name)
        );
    }
    let tiff = sample::tiff(&c, 100, 1);
    assert!(worth_compressing(b"a.dng", &tiff));
    // The same TIFF marked as JPEG-compressed (7, lossless JPEG in DNG).
    let pat = [0x03, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00];
    let at = tiff
        .windows(10)
        .position(|w| w == pat)
        .expect("compression tag");
    let mut dng = tiff.clone();
    dng[at + 8] = 7;
    assert!(!worth_compressing(b"a.dng", &dng));
    for (name, f) in [
        (&b"IMG_0001.AAE"[..], sample::aae(&c, 1)),
        (b"a.bin", vec![0; 100]),
        (b"a.txt", b"hello".to_vec()),
        (b"a.tif", Vec::new()),
    ] {
        assert!(
            worth_compressing(name, &f),
            "{}",
            String::from_utf8_lossy(name)
        );
    }
}

#[test]
fn sample_library() {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = sample::library(dir.path(), 20, 7).expect("library");
    let rel: Vec<String> = paths
        .iter()
        .map(|p| {
            p.strip_prefix(dir.path())
                .expect("under dir")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    for want in [
        "DCIM/100APPLE/IMG_0001.HEIC",
        "DCIM/100APPLE/IMG_0001.MOV",
        "DCIM/100APPLE/IMG_0002.HEIC",
        "DCIM/100APPLE/IMG_0003.AAE",
        "DCIM/100APPLE/IMG_0004.JPG",
        "DCIM/100APPLE/IMG_0007.PNG",
        "DCIM/100APPLE/IMG_E0009.HEIC",
        "DCIM/100APPLE/IMG_O0009.AAE",
    ] {
        assert!(rel.iter().any(|r| r == want), "{want} missing from {rel:?}");
    }
    let mut infos = Vec::new();
    let mut months = std::collections::BTreeSet::new();
    for (p, r) in paths.iter().zip(&rel) {
        let bytes = std::fs::read(p).expect("read");
        assert!(bytes.len() < 400 * 1024, "{r} is {} bytes", bytes.len());
        let i = inspect(r.as_bytes(), &bytes);
        let mtime = std::fs::metadata(p)
            .and_then(|m| m.modified())
            .expect("mtime")
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs() as i64;
        if i.kind == MediaKind::Sidecar {
            assert_eq!(i.capture, None);
        } else {
            let t = i
                .capture
                .unwrap_or_else(|| panic!("{r} has no capture time"));
            assert!(t.offset_minutes.is_some(), "{r}");
            assert_eq!(mtime, t.to_unix_seconds(), "{r}");
            assert!((2023..=2024).contains(&t.year), "{r}: {t}");
            months.insert((t.year, t.month));
        }
        infos.push((r.clone(), i));
    }
    assert!(months.len() >= 6, "{months:?}");
    // Every MOV pairs with its HEIC, by name and by content id; every AAE with a photo.
    for (r, i) in &infos {
        let stem = pair_stem(r.as_bytes()).expect("stem");
        if r.ends_with(".MOV") || r.ends_with(".AAE") {
            let photo = infos.iter().find(|(o, oi)| {
                oi.kind == MediaKind::Photo && pair_stem(o.as_bytes()).as_ref() == Some(&stem)
            });
            let (_, photo) = photo.unwrap_or_else(|| panic!("{r} has no photo"));
            if i.kind == MediaKind::Video {
                assert!(i.content_id.is_some());
                assert_eq!(photo.content_id, i.content_id, "{r}");
                assert_eq!(photo.capture, i.capture, "{r}");
            }
        }
    }
    // Deterministic.
    let dir2 = tempfile::tempdir().expect("tempdir");
    let paths2 = sample::library(dir2.path(), 20, 7).expect("library");
    assert_eq!(paths.len(), paths2.len());
    for (a, b) in paths.iter().zip(&paths2) {
        assert_eq!(std::fs::read(a).expect("a"), std::fs::read(b).expect("b"));
    }
}

const NAMES: [&[u8]; 7] = [
    b"x.heic", b"x.jpg", b"x.mov", b"x.png", b"x.dng", b"x.aae", b"x",
];

fn poke(data: &[u8]) {
    for name in NAMES {
        let i = inspect(name, data);
        if let Some(t) = i.capture {
            assert!(t.is_valid(), "{t:?}");
        }
        let _ = worth_compressing(name, data);
        let _ = kind_of(name, data);
    }
    let _ = video_metadata_offset(data);
    let _ = inspect_moov(b"x.mov", data);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn damaged_samples_never_panic(
        which in 0usize..7,
        flips in proptest::collection::vec((any::<usize>(), 1u8..), 1..12),
        cut in any::<usize>(),
    ) {
        let mut f = samples().swap_remove(which).1;
        let len = f.len();
        for (pos, x) in flips {
            f[pos % len] ^= x;
        }
        poke(&f);
        poke(&f[..cut % (len + 1)]);
    }

    #[test]
    fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        poke(&data);
        let _ = pair_stem(&data);
    }

    #[test]
    fn garbage_behind_magic_never_panics(
        magic in 0usize..6,
        data in proptest::collection::vec(any::<u8>(), 0..1024),
    ) {
        let prefixes: [&[u8]; 6] = [
            b"\xff\xd8\xff",
            b"MM\0*\0\0\0\x08",
            b"II*\0\x08\0\0\0",
            b"\x89PNG\r\n\x1a\n",
            b"\0\0\0\x18ftypheic\0\0\0\0mif1heic",
            b"RIFF\0\0\0\0WEBP",
        ];
        let mut f = prefixes[magic].to_vec();
        f.extend_from_slice(&data);
        poke(&f);
    }

    #[test]
    fn capture_time_string_round_trip(
        secs in -62_167_219_200i64..=253_402_300_799,
        offset in proptest::option::of(-1080i16..=1080),
    ) {
        let c = CaptureTime::from_unix(secs, offset);
        prop_assert!(c.is_valid());
        prop_assert_eq!(c.to_string().parse::<CaptureTime>(), Ok(c));
        if (-62_167_219_200 + 86_400..=253_402_300_799 - 86_400).contains(&secs) {
            prop_assert_eq!(c.to_unix_seconds(), secs);
        }
    }

    #[test]
    fn ordering_matches_wall_time(a in 0i64..4_000_000_000, b in 0i64..4_000_000_000) {
        let (x, y) = (CaptureTime::from_unix(a, None), CaptureTime::from_unix(b, None));
        prop_assert_eq!(x.cmp(&y), a.cmp(&b));
    }
}
