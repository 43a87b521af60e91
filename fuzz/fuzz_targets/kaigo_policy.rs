//! The kaigo password policy in both styles: never panics, is
//! deterministic, and reports "empty" alone exactly for an empty password.
#![no_main]
use kagi::config::PolicyStyle;
use kagi::fuzzing::{check_kaigo, Violation};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &str, bool)| {
    let (password, confirmation, nist) = input;
    let style = if nist { PolicyStyle::Nist } else { PolicyStyle::Seed };
    let id = "KJ131311111111";
    let broken = check_kaigo(style, id, password, confirmation);
    assert_eq!(broken, check_kaigo(style, id, password, confirmation));
    assert_eq!(password.is_empty(), broken == [Violation::Empty]);
    if !password.is_empty() {
        assert_eq!(password != confirmation, broken.contains(&Violation::Mismatch));
    }
    for v in broken {
        assert!(!v.message().is_empty());
    }
});
