#![no_main]
use libfuzzer_sys::fuzz_target;
use snapvault_repo::crypto::Crypto;
use snapvault_repo::index::IndexFile;

fuzz_target!(|data: &[u8]| {
    let _ = IndexFile::decode(data);
    let _ = IndexFile::open(&Crypto::Plain, data, "fuzz");
});
