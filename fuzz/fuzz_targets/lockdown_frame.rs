//! Fuzz the lockdownd frame decoder (4-byte big-endian length + plist) that the client and
//! the fake phone share.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((_dict, used)) = snapvault_phonewire::lockdown::decode_frame(data) {
        assert!(used <= data.len());
    }
});
