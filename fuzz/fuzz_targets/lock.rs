#![no_main]
use libfuzzer_sys::fuzz_target;
use snapvault_repo::crypto::Crypto;
use snapvault_repo::lock::LockInfo;

fuzz_target!(|data: &[u8]| {
    let _ = LockInfo::decode(&Crypto::Plain, data, "fuzz");
});
