//! Capture dates from PNG text chunks (the `Raw profile type exif` form of ImageMagick, GIMP
//! and exiv2, plain or compressed) and from XMP, where EXIF has none.

use super::*;
use crate::sample::{self, png_chunk};

fn ct(s: &str) -> CaptureTime {
    s.parse().expect(s)
}

fn zlib(data: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec_zlib(data, 6)
}

/// `\nexif\n    LEN\n` + hex in 72-character lines, as ImageMagick writes it.
fn raw_profile(block: &[u8], upper: bool) -> Vec<u8> {
    let mut s = format!("\nexif\n{:8}\n", block.len());
    for (i, b) in block.iter().enumerate() {
        if upper {
            s.push_str(&format!("{b:02X}"));
        } else {
            s.push_str(&format!("{b:02x}"));
        }
        if i % 36 == 35 {
            s.push('\n');
        }
    }
    s.push('\n');
    s.into_bytes()
}

/// A minimal PNG: IHDR, the given chunks, an empty IDAT, IEND.
fn png(chunks: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
    let mut out = crate::png::SIGNATURE.to_vec();
    let mut ihdr = 1u32.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&1u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    for (t, d) in chunks {
        png_chunk(&mut out, t, d);
    }
    png_chunk(&mut out, b"IDAT", &zlib(&[0, 0]));
    png_chunk(&mut out, b"IEND", &[]);
    out
}

fn keyword(k: &str, rest: &[u8]) -> Vec<u8> {
    let mut v = k.as_bytes().to_vec();
    v.push(0);
    v.extend_from_slice(rest);
    v
}

fn itxt(k: &str, compressed: bool, text: &[u8]) -> Vec<u8> {
    let mut body = vec![u8::from(compressed), 0];
    body.extend_from_slice(b"\0\0");
    if compressed {
        body.extend_from_slice(&zlib(text));
    } else {
        body.extend_from_slice(text);
    }
    keyword(k, &body)
}

fn xmp_packet(inner: &str) -> Vec<u8> {
    format!(
        "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\"><rdf:Description rdf:about=\"\" xmlns:exif=\"http://ns.adobe.com/exif/1.0/\" xmlns:xmp=\"http://ns.adobe.com/xap/1.0/\">{inner}</rdf:Description></rdf:RDF></x:xmpmeta>\n<?xpacket end=\"w\"?>"
    )
    .into_bytes()
}

#[test]
fn png_raw_profile_in_every_text_chunk() {
    let c = ct("2023-07-14T18:03:11+02:00");
    let block = sample::exif_block(&c, None);
    let with_prefix = [b"Exif\0\0".as_slice(), &block].concat();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // GIMP / ImageMagick: zTXt, the APP1 payload with its Exif prefix, lowercase hex.
        ("zTXt", {
            let mut b = keyword("Raw profile type exif", &[0]);
            b.extend_from_slice(&zlib(&raw_profile(&with_prefix, false)));
            b
        }),
        // Uncompressed tEXt, the bare TIFF block, uppercase hex.
        (
            "tEXt",
            keyword("Raw profile type exif", &raw_profile(&block, true)),
        ),
        // exiv2's APP1 form in a compressed iTXt.
        (
            "iTXt",
            itxt(
                "Raw profile type APP1",
                true,
                &raw_profile(&with_prefix, false),
            ),
        ),
    ];
    for (what, body) in cases {
        let typ: [u8; 4] = what.as_bytes().try_into().unwrap();
        let f = png(&[(&typ, body)]);
        let i = inspect(b"shot.png", &f);
        assert_eq!(i.capture, Some(c), "{what}");
        assert_eq!(i.date_source, Some(DateSource::Exif), "{what}");
    }
}

#[test]
fn png_xmp_when_exif_has_no_date_and_exif_first() {
    let c = ct("2023-07-14T18:03:11+02:00");
    let packet = xmp_packet(
        "<exif:DateTimeOriginal>2023-07-14T18:03:11+02:00</exif:DateTimeOriginal><xmp:CreateDate>2024-02-02T10:00:00Z</xmp:CreateDate>",
    );
    for compressed in [false, true] {
        let f = png(&[(b"iTXt", itxt("XML:com.adobe.xmp", compressed, &packet))]);
        let i = inspect(b"export.png", &f);
        assert_eq!(i.capture, Some(c));
        assert_eq!(i.date_source, Some(DateSource::Xmp));
    }
    // Only xmp:CreateDate.
    let packet = xmp_packet(r#"<rdf:li xmp:CreateDate="2022-05-06T07:08:09-04:00"/>"#);
    let packet = String::from_utf8(packet)
        .unwrap()
        .replace("<rdf:li xmp:CreateDate", "<rdf:li  xmp:CreateDate")
        .into_bytes();
    let f = png(&[(b"iTXt", itxt("XML:com.adobe.xmp", false, &packet))]);
    assert_eq!(
        inspect(b"x.png", &f).capture,
        Some(ct("2022-05-06T07:08:09-04:00"))
    );
    // EXIF (eXIf) is preferred to XMP.
    let exif = ct("2021-01-01T12:00:00+01:00");
    let f = png(&[
        (
            b"iTXt",
            itxt(
                "XML:com.adobe.xmp",
                false,
                &xmp_packet("<exif:DateTimeOriginal>2023-07-14T18:03:11</exif:DateTimeOriginal>"),
            ),
        ),
        (b"eXIf", sample::exif_block(&exif, None)),
    ]);
    let i = inspect(b"x.png", &f);
    assert_eq!(
        (i.capture, i.date_source),
        (Some(exif), Some(DateSource::Exif))
    );
    // JPEG without EXIF, with an XMP APP1.
    let mut j = vec![0xFF, 0xD8, 0xFF, 0xE1];
    let mut app1 = b"http://ns.adobe.com/xap/1.0/\0".to_vec();
    app1.extend_from_slice(&xmp_packet(
        "<exif:DateTimeOriginal>2023-07-14T18:03:11+02:00</exif:DateTimeOriginal>",
    ));
    j.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    j.extend_from_slice(&app1);
    j.extend_from_slice(&[0xFF, 0xD9]);
    let i = inspect(b"x.jpg", &j);
    assert_eq!((i.capture, i.date_source), (Some(c), Some(DateSource::Xmp)));
}

#[test]
fn hostile_text_chunks_give_no_date_and_never_panic() {
    let c = ct("2023-07-14T18:03:11+02:00");
    let block = sample::exif_block(&c, None);
    let mut long = raw_profile(&block, false);
    // The length says more bytes than the hex holds.
    let lying = String::from_utf8(long.clone())
        .unwrap()
        .replacen(
            &format!("{:8}", block.len()),
            &format!("{:8}", block.len() + 10),
            1,
        )
        .into_bytes();
    let bad_hex = [b"\nexif\n       4\nzz11".as_slice(), b"\n"].concat();
    // A zlib bomb: far more than the inflate limit.
    let bomb = {
        let mut b = keyword("Raw profile type exif", &[0]);
        b.extend_from_slice(&zlib(&vec![b'0'; 8 << 20]));
        b
    };
    for (typ, body) in [
        (b"tEXt", keyword("Raw profile type exif", &lying)),
        (b"tEXt", keyword("Raw profile type exif", &bad_hex)),
        (b"zTXt", bomb),
        (b"zTXt", keyword("Raw profile type exif", &[0, 1, 2, 3])),
        (b"iTXt", keyword("XML:com.adobe.xmp", &[1, 0])),
    ] {
        assert_eq!(inspect(b"x.png", &png(&[(typ, body)])).capture, None);
    }
    // Every prefix of a file with text chunks inspects without panicking.
    long.extend_from_slice(b"   ");
    let f = png(&[
        (b"zTXt", {
            let mut b = keyword("Raw profile type exif", &[0]);
            b.extend_from_slice(&zlib(&long));
            b
        }),
        (
            b"iTXt",
            itxt(
                "XML:com.adobe.xmp",
                true,
                &xmp_packet("<xmp:CreateDate>2020-01-01T00:00:00Z</xmp:CreateDate>"),
            ),
        ),
    ]);
    for n in 0..f.len() {
        let _ = inspect(b"x.png", &f[..n]);
    }
    assert_eq!(inspect(b"x.png", &f).capture, Some(c));
}
