#![no_main]
//! Pack trailer + header decoding (plaintext header as in an unencrypted repository).
use libfuzzer_sys::fuzz_target;
use snapvault_repo::crypto::Crypto;
use snapvault_repo::pack;

fuzz_target!(|data: &[u8]| {
    let _ = pack::parse_pack(&Crypto::Plain, data, "fuzz");
    let _ = pack::decode_header(data, data.len() as u64);
});
