//! Fuzz the AFC decoders of `snapvault-phonewire`, which both ends use: the reply-header
//! bound check and reply decoder (the client), the file-info and directory-listing parsers,
//! and the request decoder (the fake phone). Untrusted bytes must never panic nor allocate
//! blindly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snapvault_phonewire::afc;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = afc::decode_header(data, afc::MAX_REPLY_PAYLOAD) {
        // Whatever passes the check is safe to allocate.
        assert!(h.body_len() <= afc::MAX_HEADER_PAYLOAD + afc::MAX_REPLY_PAYLOAD);
        assert!(h.this_len >= afc::HEADER_LEN as u64 && h.entire_len >= h.this_len);
        if let Some(body) = data.get(afc::HEADER_LEN..afc::HEADER_LEN + h.body_len() as usize) {
            let _ = afc::decode_reply(&h, body.to_vec());
        }
    }
    if let Ok(map) = afc::parse_kv(data) {
        assert!(map.len() <= afc::MAX_KV_ENTRIES);
        let _ = afc::parse_file_stat(&map);
    }
    for name in afc::split_nul(data) {
        let _ = name.map(str::len);
    }
    if let Ok((h, _req, used)) = afc::decode_request_packet(data) {
        assert!(used <= data.len());
        assert!(h.this_len <= h.entire_len);
    }
});
