//! The test vectors of docs/format.md §14, computed by the code and compared with the values
//! the document prints (the test reads the document), so the format spec and the code
//! cannot drift apart: gear tables, chunk boundaries and a sealed blob.

use std::collections::HashMap;

use crate::format::blob::{self, BlobType, Compression};
use crate::format::config::ChunkerParams;
use crate::format::crypto::{Crypto, MASTER_KEY_LEN, MasterKey, NONCE_LEN, seal_in_place_under};

const FORMAT_MD: &str = include_str!("../../../docs/format.md");
const SECTION: &str = "## 14. Test vectors";

/// `label: value` lines of the first ```text block of §14.
fn documented() -> HashMap<String, String> {
    let section = FORMAT_MD
        .split_once(SECTION)
        .map(|(_, rest)| rest)
        .expect("docs/format.md has no test vector section");
    let block = section
        .split_once("```text\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(block, _)| block)
        .expect("§14 has no ```text block");
    block
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Bytes `from, from+1, …` (the keys and nonce of the vectors).
fn counting<const N: usize>(from: u8) -> [u8; N] {
    std::array::from_fn(|i| from.wrapping_add(i as u8))
}

fn master() -> Crypto {
    Crypto::Keyed(MasterKey::from_bytes(&counting::<MASTER_KEY_LEN>(0)))
}

fn gear_bytes(g: &[u64; 256]) -> Vec<u8> {
    g.iter().flat_map(|v| v.to_le_bytes()).collect()
}

const CHUNK_INPUT: &str = "snapvault chunker test vector";
const CHUNK_INPUT_LEN: usize = 4 << 20;
const BLOB_PLAINTEXT: &str = "snapvault format test vector.";

fn computed() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, crypto) in [("plain", Crypto::Plain), ("keyed", master())] {
        let g = crypto.gear_table();
        out.push((
            format!("{name} gear bytes 0..32"),
            hex::encode(&gear_bytes(&g)[..32]),
        ));
        out.push((format!("{name} gear[0]"), format!("{:#018x}", g[0])));
        out.push((format!("{name} gear[255]"), format!("{:#018x}", g[255])));
    }

    let mut input = vec![0u8; CHUNK_INPUT_LEN];
    blake3::Hasher::new()
        .update(CHUNK_INPUT.as_bytes())
        .finalize_xof()
        .fill(&mut input);
    let chunker =
        crate::repository::chunker::Chunker::new(&ChunkerParams::default(), &Crypto::Plain);
    let lengths: Vec<String> = chunker
        .split(&input)
        .iter()
        .map(|c| c.len().to_string())
        .collect();
    out.push(("plain chunk lengths".into(), lengths.join(", ")));

    // The blob as the writer lays it out (payload ‖ zero padding), sealed under the fixed
    // nonce by the real sealing code.
    let crypto = master();
    let plain = BLOB_PLAINTEXT.as_bytes();
    let id = crypto.blob_id(plain);
    let written = blob::encode(&crypto, id, BlobType::Data, plain, Compression::Never);
    assert!(!written.compressed);
    let mut opened = crypto
        .open(&written.sealed, "vector")
        .expect("the blob just written opens");
    assert_eq!(
        opened.len() + crate::format::crypto::SEAL_OVERHEAD,
        written.sealed.len()
    );
    let mut buf = vec![0u8; NONCE_LEN];
    buf.append(&mut opened);
    let data_key: [u8; 32] = counting(0);
    seal_in_place_under(&data_key, &counting::<NONCE_LEN>(0x60), &mut buf);
    // What a reader does with it: open, check the padding and the id.
    let read = blob::decode(&crypto, &id, false, plain.len() as u32, &buf).expect("decodes");
    assert_eq!(read, plain);
    out.push(("blob id".into(), id.to_hex()));
    out.push(("sealed length".into(), buf.len().to_string()));
    out.push(("sealed blob".into(), hex::encode(&buf)));
    out
}

#[test]
fn format_md_vectors_match_the_code() {
    let doc = documented();
    let mut wrong = Vec::new();
    for (label, value) in computed() {
        match doc.get(&label) {
            Some(v) if *v == value => {}
            Some(v) => wrong.push(format!("{label}: the code gives {value}, the doc says {v}")),
            None => wrong.push(format!(
                "{label}: missing from the doc; the code gives {value}"
            )),
        }
    }
    assert!(
        wrong.is_empty(),
        "docs/format.md §14:\n{}",
        wrong.join("\n")
    );
}
