//! Fuzz snapvault-media's decoders: EXIF/TIFF, JPEG, PNG, WebP and ISO-BMFF (HEIC, MOV/MP4)
//! read from untrusted bytes must never panic nor allocate blindly.
#![no_main]

use libfuzzer_sys::fuzz_target;

const NAMES: [&[u8]; 7] = [
    b"x.heic",
    b"x.jpg",
    b"x.mov",
    b"x.png",
    b"x.dng",
    b"DCIM/100APPLE/IMG_E0001.AAE",
    b"x",
];

fuzz_target!(|data: &[u8]| {
    for name in NAMES {
        let info = snapvault_media::inspect(name, data);
        if let Some(t) = info.capture {
            assert!(t.is_valid());
            let _ = t.to_unix_seconds();
            let _ = t.to_string();
        }
        let _ = snapvault_media::kind_of(name, data);
        let _ = snapvault_media::worth_compressing(name, data);
    }
    let _ = snapvault_media::video_metadata_offset(data);
    let _ = snapvault_media::inspect_moov(b"x.mov", data);
    let _ = snapvault_media::pair_stem(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = s.parse::<snapvault_media::CaptureTime>();
    }
});
