//! kagi's mails: their texts from the language's catalogue (the seeds'
//! words in Japanese), and the MIME they travel in.

use crate::text::{fill, span, Texts, Unit};
use mail_send::mail_builder::headers::address::Address;
use mail_send::mail_builder::MessageBuilder;

/// A mail's subject and body before it becomes MIME.
#[derive(Clone, PartialEq, Eq)]
pub struct Letter {
    pub subject: String,
    pub body: String,
}

impl std::fmt::Debug for Letter {
    // The body may carry a code: only the subject is printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Letter")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// A letter from two texts of the catalogue with their values filled in.
fn letter(subject: &str, body: &str, values: &[(&str, &str)]) -> Letter {
    Letter {
        subject: fill(subject, values),
        body: fill(body, values),
    }
}

/// The seed's 文例 ワンタイムパスワード発行通知 (介護保険), with the real code.
pub fn kaigo_otp(t: &Texts, code: &str, lifetime_minutes: u64, helpdesk: &str) -> Letter {
    let minutes = lifetime_minutes.to_string();
    letter(
        t.m_kaigo_otp_subject,
        t.m_kaigo_otp_body,
        &[
            ("code", code),
            ("minutes", &minutes),
            ("helpdesk", helpdesk),
        ],
    )
}

/// The notice sent to the security address after a password change, so that
/// an owner who did not ask for it learns of it at once.
/// `code_cleared`: the account had a security code, which the change
/// cleared; the mail says so only then.
pub fn kaigo_password_changed(
    t: &Texts,
    notice: &Notice<'_>,
    code_cleared: bool,
    helpdesk: &str,
) -> Letter {
    let changed = if code_cleared {
        t.m_kaigo_changed_code_cleared
    } else {
        t.m_kaigo_changed_password
    };
    let more = [("changed", changed), ("helpdesk", helpdesk)];
    letter(
        t.m_kaigo_changed_subject,
        t.m_kaigo_changed_body,
        &notice.values(&more),
    )
}

/// What a "password changed" notice tells: which account, when, from
/// where, and the link that locks the account if it was not its owner.
pub struct Notice<'a> {
    pub account: &'a str,
    pub when: &'a str,
    pub client: &'a str,
    pub not_me_url: &'a str,
}

impl<'a> Notice<'a> {
    /// The notice's placeholders and their values, and `more`.
    fn values(&self, more: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut all = vec![
            ("account", self.account),
            ("when", self.when),
            ("client", self.client),
            ("not_me_url", self.not_me_url),
        ];
        all.extend_from_slice(more);
        all
    }
}

/// The seed's パスワード変更用URL mail, with the real link.
pub fn portal_reset_link(
    t: &Texts,
    link: &str,
    lifetime: &str,
    portal_url: &str,
    contact: &str,
) -> Letter {
    letter(
        t.m_portal_reset_subject,
        t.m_portal_reset_body,
        &[
            ("link", link),
            ("lifetime", lifetime),
            ("portal_url", portal_url),
            ("contact", contact),
        ],
    )
}

/// The notice that an operator changed an account's address, sent to the
/// old address and to the new one.
pub fn address_changed(
    t: &Texts,
    site_name: &str,
    account: &str,
    when: &str,
    mails: &str,
    contact: &str,
) -> Letter {
    letter(
        t.m_address_changed_subject,
        t.m_address_changed_body,
        &[
            ("site_name", site_name),
            ("account", account),
            ("when", when),
            ("mails", mails),
            ("contact", contact),
        ],
    )
}

/// The mail of a portal registration's step 1: the link that confirms the
/// address.
pub fn portal_registration_link(
    t: &Texts,
    link: &str,
    lifetime: &str,
    portal_url: &str,
    contact: &str,
) -> Letter {
    letter(
        t.m_registration_subject,
        t.m_registration_link_body,
        &[
            ("link", link),
            ("lifetime", lifetime),
            ("portal_url", portal_url),
            ("contact", contact),
        ],
    )
}

/// The mail of a registration whose address already has an account: no
/// link, the account's user name, and the way to reset its password.
pub fn portal_registration_exists(
    t: &Texts,
    user: &str,
    reset_url: &str,
    portal_url: &str,
    contact: &str,
) -> Letter {
    letter(
        t.m_registration_subject,
        t.m_registration_exists_body,
        &[
            ("user", user),
            ("reset_url", reset_url),
            ("portal_url", portal_url),
            ("contact", contact),
        ],
    )
}

/// ユーザー登録完了メール: the user name to log in with.
pub fn portal_registration_done(t: &Texts, user: &str, portal_url: &str, contact: &str) -> Letter {
    letter(
        t.m_registration_done_subject,
        t.m_registration_done_body,
        &[
            ("user", user),
            ("portal_url", portal_url),
            ("contact", contact),
        ],
    )
}

/// The notice after a portal password change.
pub fn portal_password_changed(
    t: &Texts,
    notice: &Notice<'_>,
    portal_url: &str,
    contact: &str,
) -> Letter {
    let more = [("portal_url", portal_url), ("contact", contact)];
    letter(
        t.m_portal_changed_subject,
        t.m_portal_changed_body,
        &notice.values(&more),
    )
}

/// A lifetime as the mails say it: `1時間`, `30分`, `90秒` (or in English).
pub fn lifetime(t: &Texts, secs: u64) -> String {
    if secs.is_multiple_of(3600) {
        span(t, secs / 3600, Unit::Hours)
    } else if secs.is_multiple_of(60) {
        span(t, secs / 60, Unit::Minutes)
    } else {
        span(t, secs, Unit::Seconds)
    }
}

/// The whole message as sent: UTF-8 text, encoded headers, CRLF lines.
pub fn mime(from: &str, to: &str, letter: &Letter, message_id: &str, date: u64) -> String {
    MessageBuilder::new()
        .from(mailbox(from))
        .to(mailbox(to))
        .subject(letter.subject.as_str())
        .message_id(message_id)
        .date(date as i64)
        .text_body(letter.body.replace('\n', "\r\n"))
        .write_to_string()
        .expect("writing to a String cannot fail")
}

/// `Name <addr>` or a bare `addr` as mail-builder's address type.
fn mailbox(s: &str) -> Address<'_> {
    match (s.find('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b => {
            let name = s[..a].trim().trim_matches('"');
            let addr = s[a + 1..b].trim();
            if name.is_empty() {
                Address::new_address(None::<&str>, addr)
            } else {
                Address::new_address(Some(name), addr)
            }
        }
        _ => Address::new_address(None::<&str>, s.trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::Lang;
    use mail_parser::MessageParser;

    fn ja() -> &'static Texts {
        Lang::Ja.texts()
    }

    #[test]
    fn otp_mail_is_the_seeds_text_with_the_code() {
        let l = kaigo_otp(ja(), "042137", 30, "ヘルプデスク: 0570-059-402");
        assert_eq!(l.subject, "ワンタイムパスワード発行通知 (介護保険)");
        assert!(l.body.contains("[ワンタイムパスワード]\n042137\n"));
        assert!(l
            .body
            .contains("ワンタイムパスワードの有効期間は 30 分です。"));
        assert!(l
            .body
            .contains("[問い合わせ先]\nヘルプデスク: 0570-059-402\n"));
        assert!(l
            .body
            .starts_with("介護電子請求受付システムからのお知らせです。"));
    }

    #[test]
    fn mime_is_valid_and_decodes_to_the_letter() {
        let letter = kaigo_otp(ja(), "999999", 30, "ヘルプデスク: 0570-059-402");
        let raw = mime(
            "kagi <no-reply@example.jp>",
            "mailforsecurity-001@example.jp",
            &letter,
            "7.kagi@example.jp",
            1_795_392_000,
        );
        // Headers are 7-bit: the Japanese subject is RFC 2047-encoded UTF-8.
        let head = &raw[..raw.find("\r\n\r\n").unwrap()];
        assert!(head.is_ascii(), "{head}");
        let subject_line = head.lines().find(|l| l.starts_with("Subject:")).unwrap();
        assert!(
            subject_line.to_ascii_lowercase().contains("=?utf-8?"),
            "{subject_line}"
        );
        assert!(
            head.contains("Content-Type: text/plain; charset=\"utf-8\"")
                || head.to_ascii_lowercase().contains("charset=\"utf-8\"")
                || head.to_ascii_lowercase().contains("charset=utf-8"),
            "{head}"
        );

        // A real MIME parser gets the letter back.
        let parsed = MessageParser::default().parse(raw.as_bytes()).unwrap();
        assert_eq!(parsed.subject(), Some(letter.subject.as_str()));
        let body = parsed.body_text(0).unwrap().replace("\r\n", "\n");
        assert_eq!(body.trim_end(), letter.body.trim_end());
        assert_eq!(parsed.message_id(), Some("7.kagi@example.jp"));
        assert_eq!(
            parsed.to().unwrap().first().unwrap().address(),
            Some("mailforsecurity-001@example.jp")
        );
        assert_eq!(parsed.from().unwrap().first().unwrap().name(), Some("kagi"));
        assert_eq!(parsed.date().unwrap().to_timestamp(), 1_795_392_000);
    }

    #[test]
    fn reset_link_mail_is_the_seeds_text_with_the_link() {
        let link = "https://login.example.jp/portal/passwordreset?token=ab12";
        let l = portal_reset_link(
            ja(),
            link,
            &lifetime(ja(), 3600),
            "https://login.example.jp/portal",
            "コールセンター",
        );
        assert_eq!(
            l.subject,
            "【医療機関等向け総合ポータルサイト】パスワード変更用URL"
        );
        assert!(l.body.contains("=====\n\nパスワード変更用は以下からお願いいたします。\n\nhttps://login.example.jp/portal/passwordreset?token=ab12\n\n=====\n"));
        assert!(l.body.contains("※本URLの有効期限は1時間となります。"));
        assert!(l
            .body
            .contains("■医療機関等向け総合ポータルサイト\n\nhttps://login.example.jp/portal\n"));
        assert_eq!(lifetime(ja(), 1800), "30分");
        assert_eq!(lifetime(ja(), 7200), "2時間");
        assert_eq!(lifetime(ja(), 90), "90秒");
        assert_eq!(lifetime(Lang::En.texts(), 7200), "2 hours");
    }

    #[test]
    fn every_mail_fills_every_placeholder_in_both_languages() {
        let notice = Notice {
            account: "A",
            when: "W",
            client: "C",
            not_me_url: "U",
        };
        for lang in Lang::ALL {
            let t = lang.texts();
            for l in [
                kaigo_otp(t, "1", 30, "h"),
                kaigo_password_changed(t, &notice, true, "h"),
                kaigo_password_changed(t, &notice, false, "h"),
                portal_reset_link(t, "l", "1", "p", "c"),
                address_changed(t, "s", "a", "w", "m", "c"),
                portal_registration_link(t, "l", "1", "p", "c"),
                portal_registration_exists(t, "u", "r", "p", "c"),
                portal_registration_done(t, "u", "p", "c"),
                portal_password_changed(t, &notice, "p", "c"),
            ] {
                for text in [&l.subject, &l.body] {
                    let left = text.split('{').skip(1).find(|r| {
                        r.split_once('}').is_some_and(|(n, _)| {
                            !n.is_empty() && n.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                        })
                    });
                    assert!(left.is_none(), "{lang:?}: a placeholder left in {text}");
                }
            }
        }
    }
}
