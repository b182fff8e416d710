#![no_main]
use libfuzzer_sys::fuzz_target;
use snapvault_repo::keyfile::KeyFile;

fuzz_target!(|data: &[u8]| {
    if let Ok(k) = KeyFile::parse(data) {
        // Bounded parameters only: opening must fail fast or succeed, never blow up.
        if k.params.m_kib <= 64 && k.params.t <= 2 {
            let _ = k.open(b"password");
        }
    }
});
