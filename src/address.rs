//! The one rule for what a mail address is, wherever one is typed: a
//! recovery form, a config file, an import. A leaf: it names nothing of
//! kagi's, so that the config below everything can use it.

/// The longest address SMTP carries (RFC 5321's path limit less the
/// brackets).
pub const MAX_LEN: usize = 254;

/// `local@domain`: one `@`, something on both sides, at most 254
/// characters, no white space and no control characters (so no line break
/// can reach a mail header).
pub fn is_plausible(s: &str) -> bool {
    s.len() <= MAX_LEN
        && !s.contains(|c: char| c.is_whitespace() || c.is_control())
        && s.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'))
}

/// `Name <local@domain>` or `local@domain`, as a From line is written: one
/// line, and a plausible address inside.
pub fn is_plausible_mailbox(s: &str) -> bool {
    !s.contains(['\r', '\n']) && is_plausible(envelope(s))
}

/// The bare address of `Name <addr>` or `addr`, for the SMTP envelope.
pub fn envelope(s: &str) -> &str {
    match (s.find('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b => s[a + 1..b].trim(),
        _ => s.trim(),
    }
}

/// The form addresses are compared and keyed in: trimmed, ASCII letters in
/// lower case. (The domain is case-blind; a local part in practice is too.)
pub fn normalize(s: &str) -> String {
    s.trim().to_ascii_lowercase()
}

/// Whether two addresses are the same under `normalize`.
pub fn same(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plausible_addresses() {
        assert!(is_plausible("mailforsecurity-001@example.jp"));
        assert!(!is_plausible("a@b\r\nBcc: c@d"));
        assert!(!is_plausible("no-at-sign"));
        assert!(!is_plausible("a b@c"));
        assert!(!is_plausible("@example.jp"));
        assert!(!is_plausible("a@"));
        assert!(!is_plausible("a@b@c"));
        assert!(!is_plausible(&format!("{}@example.jp", "a".repeat(250))));
    }

    #[test]
    fn mailboxes_and_envelopes() {
        assert!(is_plausible_mailbox("kagi <no-reply@example.jp>"));
        assert!(is_plausible_mailbox("no-reply@example.jp"));
        assert!(!is_plausible_mailbox("a@b\r\nBcc: x@y"));
        assert!(!is_plausible_mailbox("kagi <>"));
        assert_eq!(envelope("kagi <a@b.jp>"), "a@b.jp");
        assert_eq!(envelope(" a@b.jp "), "a@b.jp");
    }

    #[test]
    fn comparison_ignores_case_and_spaces() {
        assert!(same(" A@Example.JP", "a@example.jp "));
        assert_eq!(normalize(" A@Example.JP "), "a@example.jp");
        assert!(!same("a@example.jp", "b@example.jp"));
    }
}
