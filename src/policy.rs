//! Password policies, one rule at a time, each with the message a user sees.

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
}

impl Violation {
    /// The sentence shown on the page.
    pub fn message(self) -> String {
        match self {
            Violation::Empty => "新しいパスワードを入力してください。".into(),
            Violation::Length { min, max } => {
                format!("パスワードは{min}文字～{max}文字で入力してください。")
            }
            Violation::Charset => {
                "パスワードに使用できない文字が含まれています。英字、数字及び記号(!#$%&()*+,-./:;<=>?@[^_`{|}~)のみ使用できます。".into()
            }
            Violation::NoLetter => "パスワードには英字を少なくとも1文字含めてください。".into(),
            Violation::NoDigit => "パスワードには数字を少なくとも1文字含めてください。".into(),
            Violation::SameAsUserId => "ユーザIDと同じパスワードは入力できません。".into(),
            Violation::Mismatch => {
                "新しいパスワードと新しいパスワード(確認用)が一致しません。".into()
            }
            Violation::NoUpper => "パスワードには大文字を少なくとも1文字含めてください。".into(),
            Violation::NoLower => "パスワードには小文字を少なくとも1文字含めてください。".into(),
            Violation::Unprintable => "パスワードに使用できない文字が含まれています。".into(),
            Violation::ReentryMismatch => "パスワードとパスワードの再入力が一致しません。".into(),
            Violation::PortalLength => "パスワードは8文字以上100文字以内で入力してください。".into(),
        }
    }
}

/// Checks a new kaigo password: 8–16 characters of A–Z a–z 0–9 and the
/// listed symbols, at least one letter and one digit, not the user ID, and
/// equal to its confirmation. Every rule broken is reported.
pub fn check_kaigo(user_id: &str, password: &str, confirmation: &str) -> Vec<Violation> {
    if password.is_empty() {
        return vec![Violation::Empty];
    }
    let mut broken = Vec::new();
    let len = password.chars().count();
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
    if password == user_id {
        broken.push(Violation::SameAsUserId);
    }
    if password != confirmation {
        broken.push(Violation::Mismatch);
    }
    broken
}

/// Checks a new portal password: 8–100 characters, at least one
/// upper-case letter, one lower-case letter and one digit, no control
/// characters, and equal to its re-entry.
pub fn check_portal(password: &str, reentry: &str) -> Vec<Violation> {
    if password.is_empty() {
        return vec![Violation::Empty];
    }
    let mut broken = Vec::new();
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
    if password != reentry {
        broken.push(Violation::ReentryMismatch);
    }
    broken
}

#[cfg(test)]
mod portal_tests {
    use super::Violation::*;
    use super::*;

    fn check(p: &str) -> Vec<Violation> {
        check_portal(p, p)
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
            check_portal("PortalDemo2026", "PortalDemo2027"),
            vec![ReentryMismatch]
        );
        assert_eq!(check("aaaa"), vec![PortalLength, NoUpper, NoDigit]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Violation::*;

    const ID: &str = "KJ131311111111";

    fn check(p: &str) -> Vec<Violation> {
        check_kaigo(ID, p, p)
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
        assert_eq!(check("abc123"), vec![Length { min: 8, max: 16 }]);
        assert_eq!(check("abcdefgh123456789"), vec![Length { min: 8, max: 16 }]);
        assert_eq!(check("abcd 1234"), vec![Charset]);
        assert_eq!(check("abcd\"1234"), vec![Charset]);
        assert_eq!(check("パスワード1234a"), vec![Charset]);
        assert_eq!(check("12345678"), vec![NoLetter]);
        assert_eq!(check("abcdefgh"), vec![NoDigit]);
        assert_eq!(check(ID), vec![SameAsUserId]);
        assert_eq!(
            check_kaigo(ID, "kaigoNew2026", "kaigoNew2027"),
            vec![Mismatch]
        );
        assert_eq!(
            check("!!!"),
            vec![Length { min: 8, max: 16 }, NoLetter, NoDigit]
        );
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
        ];
        let messages: std::collections::HashSet<String> = all.iter().map(|v| v.message()).collect();
        assert_eq!(messages.len(), all.len());
    }
}
