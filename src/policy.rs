//! Password policies, one rule at a time, each with the message a user sees.
//! Each site has the seed's style (its composition rules and lengths) and a
//! NIST SP 800-63B style (15 to 64 characters, no composition rules); both
//! refuse the 10,000 most common passwords and, for kaigo, the user ID and
//! the office number.

use crate::config::PolicyStyle;
use std::collections::HashSet;
use std::sync::OnceLock;

/// SecLists' `10k-most-common.txt` (see docs/security.md), one per line.
const COMMON: &str = include_str!("../data/common-passwords.txt");

/// Whether `password` is on the common list, ignoring case.
pub fn is_common(password: &str) -> bool {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    let set = SET.get_or_init(|| COMMON.lines().filter(|l| !l.is_empty()).collect());
    set.contains(password.to_lowercase().as_str())
}

/// The NIST style's lengths (SP 800-63B: at least 15 for a single factor,
/// at least 64 allowed).
const NIST_MIN: usize = 15;
const NIST_MAX: usize = 64;

/// The symbols the kaigo system accepts, as its screen lists them.
pub const KAIGO_SYMBOLS: &str = "!#$%&()*+,-./:;<=>?@[^_`{|}~";

/// One broken rule of a password policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    Empty,
    Length {
        min: usize,
        max: usize,
    },
    Charset,
    NoLetter,
    NoDigit,
    SameAsUserId,
    Mismatch,
    NoUpper,
    NoLower,
    /// A control character (the portal accepts any printable character).
    Unprintable,
    /// The portal's re-entry differs.
    ReentryMismatch,
    /// The portal's length rule, worded as its screen words it.
    PortalLength,
    /// On the list of the most common passwords.
    Common,
    /// Holds the kaigo office number.
    ContainsOffice,
}

impl Violation {
    /// The sentence shown on the page, in the catalogue's language.
    pub fn message(self, t: &crate::text::Texts) -> String {
        use crate::text::fill;
        match self {
            Violation::Empty => t.v_empty.into(),
            Violation::Length { min, max } => fill(
                t.v_length,
                &[("min", &min.to_string()), ("max", &max.to_string())],
            ),
            Violation::Charset => fill(t.v_charset, &[("symbols", KAIGO_SYMBOLS)]),
            Violation::NoLetter => t.v_no_letter.into(),
            Violation::NoDigit => t.v_no_digit.into(),
            Violation::SameAsUserId => t.k_rule_user_id.into(),
            Violation::Mismatch => t.v_mismatch.into(),
            Violation::NoUpper => t.v_no_upper.into(),
            Violation::NoLower => t.v_no_lower.into(),
            Violation::Unprintable => t.v_unprintable.into(),
            Violation::ReentryMismatch => t.v_reentry_mismatch.into(),
            Violation::PortalLength => t.v_portal_length.into(),
            Violation::Common => t.v_common.into(),
            Violation::ContainsOffice => t.v_contains_office.into(),
        }
    }

    /// The field a violation is about: the confirmation for a mismatch,
    /// else the new password (the ids of the reset forms).
    pub fn field(self) -> &'static str {
        match self {
            Violation::Mismatch | Violation::ReentryMismatch => "pw2",
            _ => "pw",
        }
    }
}

/// Checks a new kaigo password. Seed style: 8–16 characters of A–Z a–z
/// 0–9 and the listed symbols, at least one letter and one digit. NIST
/// style: 15–64 characters of any kind but control characters. Both: not
/// common, not the user ID, not holding the office number, and equal to
/// its confirmation. Every rule broken is reported.
pub fn check_kaigo(
    style: PolicyStyle,
    user_id: &str,
    password: &str,
    confirmation: &str,
) -> Vec<Violation> {
    if password.is_empty() {
        return vec![Violation::Empty];
    }
    let mut broken = Vec::new();
    let len = password.chars().count();
    match style {
        PolicyStyle::Seed => {
            if !(8..=16).contains(&len) {
                broken.push(Violation::Length { min: 8, max: 16 });
            }
            if !password
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || KAIGO_SYMBOLS.contains(c))
            {
                broken.push(Violation::Charset);
            }
            if !password.chars().any(|c| c.is_ascii_alphabetic()) {
                broken.push(Violation::NoLetter);
            }
            if !password.chars().any(|c| c.is_ascii_digit()) {
                broken.push(Violation::NoDigit);
            }
        }
        PolicyStyle::Nist => nist_rules(password, &mut broken),
    }
    if is_common(password) {
        broken.push(Violation::Common);
    }
    if password == user_id {
        broken.push(Violation::SameAsUserId);
    }
    // A user ID is KJ + billing prefecture + the 10-digit office number.
    if let Some(office) = user_id.get(4..).filter(|o| o.len() == 10) {
        if password.contains(office) {
            broken.push(Violation::ContainsOffice);
        }
    }
    if password != confirmation {
        broken.push(Violation::Mismatch);
    }
    broken
}

fn nist_rules(password: &str, broken: &mut Vec<Violation>) {
    if !(NIST_MIN..=NIST_MAX).contains(&password.chars().count()) {
        broken.push(Violation::Length {
            min: NIST_MIN,
            max: NIST_MAX,
        });
    }
    if password.chars().any(char::is_control) {
        broken.push(Violation::Unprintable);
    }
}

/// Checks a new portal password. Seed style: 8–100 characters, at least
/// one upper-case letter, one lower-case letter and one digit, no control
/// characters. NIST style: 15–64 characters, no control characters. Both:
/// not common, and equal to its re-entry.
pub fn check_portal(style: PolicyStyle, password: &str, reentry: &str) -> Vec<Violation> {
    if password.is_empty() {
        return vec![Violation::Empty];
    }
    let mut broken = Vec::new();
    match style {
        PolicyStyle::Seed => {
            if !(8..=100).contains(&password.chars().count()) {
                broken.push(Violation::PortalLength);
            }
            if password.chars().any(char::is_control) {
                broken.push(Violation::Unprintable);
            }
            if !password.chars().any(|c| c.is_ascii_uppercase()) {
                broken.push(Violation::NoUpper);
            }
            if !password.chars().any(|c| c.is_ascii_lowercase()) {
                broken.push(Violation::NoLower);
            }
            if !password.chars().any(|c| c.is_ascii_digit()) {
                broken.push(Violation::NoDigit);
            }
        }
        PolicyStyle::Nist => nist_rules(password, &mut broken),
    }
    if is_common(password) {
        broken.push(Violation::Common);
    }
    if password != reentry {
        broken.push(Violation::ReentryMismatch);
    }
    broken
}

/// The shortest operator password: an operator can do more than any user.
pub const OPERATOR_MIN: usize = 12;

/// Checks a new operator password: the portal's seed rules, at least
/// `OPERATOR_MIN` characters.
pub fn check_operator(password: &str, reentry: &str) -> Vec<Violation> {
    let mut broken = check_portal(PolicyStyle::Seed, password, reentry);
    let len = password.chars().count();
    if !password.is_empty() && len < OPERATOR_MIN {
        broken.retain(|v| *v != Violation::PortalLength);
        broken.insert(
            0,
            Violation::Length {
                min: OPERATOR_MIN,
                max: 100,
            },
        );
    }
    broken
}

#[cfg(test)]
mod portal_tests {
    use super::Violation::*;
    use super::*;

    fn check(p: &str) -> Vec<Violation> {
        check_portal(PolicyStyle::Seed, p, p)
    }

    #[test]
    fn operator_passwords_are_portal_passwords_of_twelve_or_more() {
        assert_eq!(
            check_operator("OperatorDemo2026", "OperatorDemo2026"),
            vec![]
        );
        assert_eq!(
            check_operator("Short1Pass", "Short1Pass"),
            vec![Length { min: 12, max: 100 }]
        );
        assert!(check_operator("alllowercase12", "alllowercase12").contains(&NoUpper));
    }

    #[test]
    fn portal_rules() {
        assert_eq!(check("PortalDemo2026"), vec![]);
        assert_eq!(check("Aa1あいうえお漢字"), vec![]);
        assert_eq!(check(""), vec![Empty]);
        assert_eq!(check("Aa1"), vec![PortalLength]);
        assert_eq!(check(&format!("Aa1{}", "x".repeat(98))), vec![PortalLength]);
        assert_eq!(check(&format!("Aa1{}", "x".repeat(97))), vec![]);
        assert_eq!(check("portaldemo2026"), vec![NoUpper]);
        assert_eq!(check("PORTALDEMO2026"), vec![NoLower]);
        assert_eq!(check("PortalDemo"), vec![NoDigit]);
        assert_eq!(check("Portal\u{7}Demo2026"), vec![Unprintable]);
        assert_eq!(
            check_portal(PolicyStyle::Seed, "PortalDemo2026", "PortalDemo2027"),
            vec![ReentryMismatch]
        );
        assert_eq!(check("aqzx"), vec![PortalLength, NoUpper, NoDigit]);
        assert_eq!(check("Password1"), vec![Common]);
        assert_eq!(check("Qwerty123"), vec![Common]);
        let nist = |p: &str| check_portal(PolicyStyle::Nist, p, p);
        assert_eq!(nist("correct horse battery staple"), vec![]);
        assert_eq!(nist("PortalDemo2026"), vec![Length { min: 15, max: 64 }]);
        assert_eq!(nist(&"x".repeat(65)), vec![Length { min: 15, max: 64 }]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Violation::*;

    const ID: &str = "KJ131311111111";

    fn check(p: &str) -> Vec<Violation> {
        check_kaigo(PolicyStyle::Seed, ID, p, p)
    }

    #[test]
    fn accepts_good_passwords() {
        assert_eq!(check("kaigoNew2026"), vec![]);
        assert_eq!(check("a1!#$%&()*+,-./"), vec![]);
        assert_eq!(check("12345678a"), vec![]);
        assert_eq!(check("a`{|}~^_[@?>=<;1"), vec![]);
    }

    #[test]
    fn names_each_broken_rule() {
        assert_eq!(check(""), vec![Empty]);
        assert_eq!(check("abq723"), vec![Length { min: 8, max: 16 }]);
        assert_eq!(check("abcdefgh123456789"), vec![Length { min: 8, max: 16 }]);
        assert_eq!(check("abcd 1234"), vec![Charset]);
        assert_eq!(check("abcd\"1234"), vec![Charset]);
        assert_eq!(check("パスワード1234a"), vec![Charset]);
        assert_eq!(check("39475812"), vec![NoLetter]);
        assert_eq!(check("qbcdzfgh"), vec![NoDigit]);
        assert_eq!(check(ID), vec![SameAsUserId, ContainsOffice]);
        assert_eq!(
            check_kaigo(PolicyStyle::Seed, ID, "kaigoNew2026", "kaigoNew2027"),
            vec![Mismatch]
        );
        assert_eq!(
            check("!!!"),
            vec![Length { min: 8, max: 16 }, NoLetter, NoDigit]
        );
        assert_eq!(check("password1"), vec![Common]);
        assert_eq!(check("abc12345"), vec![Common]);
        assert_eq!(check("x1311111111"), vec![ContainsOffice]);
        let nist = |p: &str| check_kaigo(PolicyStyle::Nist, ID, p, p);
        assert_eq!(nist("a long phrase with spaces"), vec![]);
        assert_eq!(nist("kaigoNew2026"), vec![Length { min: 15, max: 64 }]);
        assert_eq!(nist("my office 1311111111"), vec![ContainsOffice]);
    }

    #[test]
    fn the_common_list_is_whole() {
        assert_eq!(COMMON.lines().count(), 10_000);
        assert!(is_common("password") && is_common("PASSWORD") && is_common("eyphed"));
        assert!(!is_common("kaigoNew2026"));
    }

    #[test]
    fn every_rule_has_its_own_message() {
        let all = [
            Empty,
            Length { min: 8, max: 16 },
            Charset,
            NoLetter,
            NoDigit,
            SameAsUserId,
            Mismatch,
            Common,
            ContainsOffice,
            NoUpper,
            NoLower,
            Unprintable,
            ReentryMismatch,
            PortalLength,
        ];
        for lang in crate::text::Lang::ALL {
            let t = lang.texts();
            let messages: std::collections::HashSet<String> =
                all.iter().map(|v| v.message(t)).collect();
            assert_eq!(messages.len(), all.len(), "{lang:?}");
        }
    }
}
