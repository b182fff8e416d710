#![no_main]
use libfuzzer_sys::fuzz_target;
use snapvault_repo::config::Config;

fuzz_target!(|data: &[u8]| {
    let _ = Config::parse(data, "fuzz");
});
