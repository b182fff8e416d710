//! Fuzz the usbmuxd frame decoders that the client (replies, device lists) and the fake
//! phone (requests in both protocol versions) share.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snapvault_phonewire::usbmuxd;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = usbmuxd::decode_header(data) {
        assert!(h.body_len() <= usbmuxd::MAX_BODY);
    }
    if let Ok((_h, dict, used)) = usbmuxd::decode_frame(data) {
        assert!(used <= data.len());
        if let Ok(devs) = usbmuxd::parse_device_list(&dict) {
            assert!(devs.len() <= usbmuxd::MAX_DEVICES);
        }
        let _ = usbmuxd::result_number(&dict);
    }
    if let Ok((_req, _h, used)) = usbmuxd::decode_request_frame(data) {
        assert!(used <= data.len());
    }
});
