//! Fuzz the usbmuxd frame decoders: the client's (replies from the usbmuxd daemon, device
//! lists) and the fake phone's (requests, through idevice's server-side message types).
#![no_main]

use libfuzzer_sys::fuzz_target;
use snapvault_source::wire as client;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = client::decode_usbmuxd_header(data) {
        assert!(h.body_len() <= client::MAX_USBMUXD_BODY);
    }
    if let Ok((_h, dict, used)) = client::decode_usbmuxd_frame(data) {
        assert!(used <= data.len());
        if let Ok(devs) = client::parse_device_list(&dict) {
            assert!(devs.len() <= client::MAX_DEVICES);
        }
        let _ = client::result_number(&dict);
    }
    if let Ok((_req, _tag, used)) = snapvault_fakephone::wire::decode_usbmuxd_frame(data) {
        assert!(used <= data.len());
    }
});
