#![no_main]
//! Blob decoding — zstd frame, padding, length and id checks — on stored bytes as an
//! unencrypted repository holds them (the payload itself). The first byte picks
//! compressed or not, the next four the claimed plaintext length.
use libfuzzer_sys::fuzz_target;
use snapvault_repo::blob;
use snapvault_repo::crypto::Crypto;

fuzz_target!(|data: &[u8]| {
    let p = blob::padme(data.len());
    assert!(p >= data.len() && blob::padme(p) == p);
    if data.len() < 5 {
        return;
    }
    let compressed = data[0] & 1 == 1;
    // Up to 4 MiB: decoding may allocate the claimed length, bounded by MAX_BLOB_LEN.
    let raw_len = u32::from_le_bytes([data[1], data[2], data[3], data[4]]) % (4 << 20);
    let stored = &data[5..];
    let c = Crypto::Plain;
    // The id of the stored bytes: an uncompressed blob of the right length decodes.
    let id = c.blob_id(stored);
    if let Ok(plain) = blob::decode(&c, &id, compressed, raw_len, stored) {
        assert_eq!(plain.len(), raw_len as usize);
        assert_eq!(c.blob_id(&plain), id);
    }
});
