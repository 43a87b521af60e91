//! The portal password policy in both styles: never panics, is
//! deterministic, and reports "empty" alone exactly for an empty password.
#![no_main]
use kagi::config::PolicyStyle;
use kagi::fuzzing::{check_portal, Violation};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &str, bool)| {
    let (password, reentry, nist) = input;
    let style = if nist { PolicyStyle::Nist } else { PolicyStyle::Seed };
    let broken = check_portal(style, password, reentry);
    assert_eq!(broken, check_portal(style, password, reentry));
    assert_eq!(password.is_empty(), broken == [Violation::Empty]);
    if !password.is_empty() {
        assert_eq!(password != reentry, broken.contains(&Violation::ReentryMismatch));
    }
});
