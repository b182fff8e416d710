#![no_main]
use libfuzzer_sys::fuzz_target;
use snapvault_repo::crypto::Crypto;
use snapvault_repo::snapshot::Snapshot;

fuzz_target!(|data: &[u8]| {
    let _ = Snapshot::open(&Crypto::Plain, data, "fuzz");
});
