//! Fuzz the AFC decoders: the client's reply-header bound check (what `snapvault-source`
//! puts under idevice), its file-info and directory-listing parsers, and the fake phone's
//! request decoder. Untrusted bytes must never panic nor allocate blindly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snapvault_source::wire as client;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = client::decode_afc_header(data) {
        // Whatever passes the check is safe to allocate.
        assert!(h.body_len() <= client::MAX_AFC_HEADER_PAYLOAD + client::MAX_AFC_PAYLOAD);
        assert!(h.this_len >= client::AFC_HEADER_LEN as u64 && h.entire_len >= h.this_len);
    }
    if let Ok(map) = client::parse_kv(data) {
        assert!(map.len() <= client::MAX_KV_ENTRIES);
        let _ = client::parse_file_stat(&map);
    }
    for name in client::split_nul(data) {
        let _ = name.map(str::len);
    }
    if let Ok((h, _req, used)) = snapvault_fakephone::wire::decode_afc_packet(data) {
        assert!(used <= data.len());
        assert!(h.this_len <= h.entire_len);
    }
});
