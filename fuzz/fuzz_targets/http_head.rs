//! The front door's request-head parser: never panics, and what it passes
//! on has no control character, no Transfer-Encoding and one length.
#![no_main]
use kagi::fuzzing::parse_head;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    if let Ok(head) = parse_head(input) {
        assert!(head.content_length <= 16 * 1024);
        let text = std::str::from_utf8(input).expect("accepted heads are text");
        assert!(!text.to_ascii_lowercase().contains("\ntransfer-encoding"));
    }
});
