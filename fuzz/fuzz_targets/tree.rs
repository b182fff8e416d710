#![no_main]
use libfuzzer_sys::fuzz_target;
use snapvault_repo::tree::Tree;

fuzz_target!(|data: &[u8]| {
    let got = Tree::decode(data);
    // The hand-written decoder of the compact form changes nothing: the same tree, or the
    // same error, as serde_json alone.
    let reference = Tree::decode_with_serde(data);
    assert_eq!(
        got.as_ref().map_err(|e| e.to_string()),
        reference.as_ref().map_err(|e| e.to_string())
    );
    if let Ok(t) = got {
        // Whatever decodes must re-encode to something that decodes the same.
        assert_eq!(Tree::decode(&t.encode()).ok(), Some(t));
    }
});
