#![no_main]
use libfuzzer_sys::fuzz_target;
use snapvault_repo::tree::Tree;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = Tree::decode(data) {
        // Whatever decodes must re-encode to something that decodes the same.
        assert_eq!(Tree::decode(&t.encode()).ok(), Some(t));
    }
});
