//! The full-width normaliser: never panics, is idempotent, leaves no
//! full-width ASCII behind, and never changes the number of characters
//! but by trimming.
#![no_main]
use kagi::fuzzing::normalize_width;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    let once = normalize_width(input);
    assert_eq!(normalize_width(&once), once);
    assert!(!once.chars().any(|c| ('\u{FF01}'..='\u{FF5E}').contains(&c)));
    assert!(once.chars().count() <= input.chars().count());
});
