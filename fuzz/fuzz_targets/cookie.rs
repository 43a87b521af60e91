//! The cookie parser: never panics; names and values carry no separator.
#![no_main]
use kagi::fuzzing::parse_cookies;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    for (name, value) in parse_cookies(input) {
        assert!(!name.contains(';') && !value.contains(';'));
        assert_eq!(name.trim(), name);
        assert_eq!(value.trim(), value);
    }
});
