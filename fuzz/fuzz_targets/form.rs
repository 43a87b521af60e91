//! The urlencoded form parser: never panics; what it accepts survives a
//! round trip through encoding.
#![no_main]
use kagi::fuzzing::{has_repeated_name, parse_urlencoded};
use libfuzzer_sys::fuzz_target;

fn encode(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

fuzz_target!(|input: &str| {
    if let Some(pairs) = parse_urlencoded(input) {
        let again: String = pairs
            .iter()
            .map(|(n, v)| format!("{}={}", encode(n), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let reparsed = parse_urlencoded(&again).expect("an encoded form parses");
        // Empty names with empty values are dropped by the join; compare the rest.
        let kept: Vec<_> = pairs.iter().filter(|(n, v)| !(n.is_empty() && v.is_empty())).collect();
        let back: Vec<_> = reparsed.iter().filter(|(n, v)| !(n.is_empty() && v.is_empty())).collect();
        assert_eq!(kept, back);
        let _ = has_repeated_name(&pairs);
    }
});
