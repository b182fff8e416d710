//! Fuzz the lockdownd frame decoders (4-byte big-endian length + plist), client and fake
//! phone side.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((_dict, used)) = snapvault_source::wire::decode_lockdown_frame(data) {
        assert!(used <= data.len());
    }
    if let Ok((_dict, used)) = snapvault_fakephone::wire::decode_lockdown_frame(data) {
        assert!(used <= data.len());
    }
});
