//! The texts of kagi's mails, in the seeds' words, and the MIME they travel in.

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

/// The seed's 文例 ワンタイムパスワード発行通知 (介護保険), with the real code.
pub fn kaigo_otp(code: &str, lifetime_minutes: u64, helpdesk: &str) -> Letter {
    Letter {
        subject: "ワンタイムパスワード発行通知 (介護保険)".into(),
        body: format!(
            "介護電子請求受付システムからのお知らせです。
電子請求受付システムのワンタイムパスワードが発行されました。

[ワンタイムパスワード]
{code}

ワンタイムパスワードの有効期間は {lifetime_minutes} 分です。
ワンタイムパスワード入力画面の操作説明に従い、ワンタイムパスワードを入力してください。
※処理を中断してしまった場合、再度セキュリティ用メールアドレスを設定してください。

メール内容に心当たりがない場合、このメールは破棄するようお願いします。

[問い合わせ先]
{helpdesk}

本メールはシステムが自動的に送信しております。
本メールへ返信にてお問い合わせいただいてもご回答できませんので、予めご了承くださいますようお願い申し上げます。
"
        ),
    }
}

/// The notice sent to the security address after a password change, so that
/// an owner who did not ask for it learns of it at once.
/// `code_cleared`: the account had a security code, which the change
/// cleared; the mail says so only then.
pub fn kaigo_password_changed(notice: &Notice<'_>, code_cleared: bool, helpdesk: &str) -> Letter {
    let Notice {
        account,
        when,
        client,
        not_me_url,
    } = notice;
    let changed = if code_cleared {
        "パスワードが変更され、セキュリティコードは解除されました。
セキュリティコードをご利用の方は、ユーザ情報変更メニューの「セキュリティコード設定」から再度設定してください。"
    } else {
        "パスワードが変更されました。"
    };
    Letter {
        subject: "ログイン情報再設定完了通知 (介護保険)".into(),
        body: format!(
            "介護電子請求受付システムからのお知らせです。
ユーザID {account} のログイン情報が再設定されました。

[再設定日時]
{when}

[操作元IPアドレス]
{client}

{changed}

この操作に心当たりがない場合は、24時間以内に次のURLを開き、アカウントをロックしてください。ロック後は、ログイン情報の再設定を行うまでログインできません。
{not_me_url}

あわせて、至急下記までお問い合わせください。

[問い合わせ先]
{helpdesk}

本メールはシステムが自動的に送信しております。
本メールへ返信にてお問い合わせいただいてもご回答できませんので、予めご了承くださいますようお願い申し上げます。
"
        ),
    }
}

/// What a "password changed" notice tells: which account, when, from
/// where, and the link that locks the account if it was not its owner.
pub struct Notice<'a> {
    pub account: &'a str,
    pub when: &'a str,
    pub client: &'a str,
    pub not_me_url: &'a str,
}

/// The seed's パスワード変更用URL mail, with the real link.
pub fn portal_reset_link(link: &str, lifetime: &str, portal_url: &str, contact: &str) -> Letter {
    Letter {
        subject: "【医療機関等向け総合ポータルサイト】パスワード変更用URL".into(),
        body: format!(
            "医療機関等向け総合ポータルサイトにおけるパスワード変更用のURLリンクを通知いたします。

以下URLに遷移すること、パスワードを変更できます。

=====

パスワード変更用は以下からお願いいたします。

{link}

=====

※本URLの有効期限は{lifetime}となります。

■医療機関等向け総合ポータルサイト

{portal_url}

※本メールは送信専用です。本メールへの返信にはご回答できません。

※本メールにお心当たりのない場合やご不明な点がある場合は以下よりお問い合わせください。

{contact}
"
        ),
    }
}

/// The notice that an operator changed an account's address, sent to the
/// old address and to the new one.
pub fn address_changed(
    site_name: &str,
    account: &str,
    when: &str,
    mails: &str,
    contact: &str,
) -> Letter {
    Letter {
        subject: format!("【{site_name}】メールアドレス変更のお知らせ"),
        body: format!(
            "{site_name}からのお知らせです。

アカウント {account} のメールアドレスが、運用担当者により変更されました。

[変更日時]
{when}

今後、{mails}は新しいメールアドレスに送信されます。
この変更に心当たりがない場合は、以下へお問い合わせください。

{contact}

本メールはシステムが自動的に送信しております。
本メールへ返信にてお問い合わせいただいてもご回答できませんので、予めご了承くださいますようお願い申し上げます。
"
        ),
    }
}

/// The mail of a portal registration's step 1: the link that confirms the
/// address.
pub fn portal_registration_link(
    link: &str,
    lifetime: &str,
    portal_url: &str,
    contact: &str,
) -> Letter {
    Letter {
        subject: "【医療機関等向け総合ポータルサイト】メールアドレス確認のお願い".into(),
        body: format!(
            "医療機関等向け総合ポータルサイトの新規ユーザー登録を受け付けました。

以下のURLにアクセスし、パスワードを設定して登録を完了してください。

{link}

※本URLの有効期限は{lifetime}となります。有効期限を過ぎた場合は、もう一度新規ユーザー登録を行ってください。

■医療機関等向け総合ポータルサイト

{portal_url}

※本メールは送信専用です。本メールへの返信にはご回答できません。

※本メールにお心当たりのない場合は、このメールを破棄してください。ご不明な点は以下よりお問い合わせください。

{contact}
"
        ),
    }
}

/// The mail of a registration whose address already has an account: no
/// link, the account's user name, and the way to reset its password.
pub fn portal_registration_exists(
    user: &str,
    reset_url: &str,
    portal_url: &str,
    contact: &str,
) -> Letter {
    Letter {
        subject: "【医療機関等向け総合ポータルサイト】メールアドレス確認のお願い".into(),
        body: format!(
            "医療機関等向け総合ポータルサイトの新規ユーザー登録を受け付けましたが、このメールアドレスはすでに登録されています。

[登録済みのユーザー名]
{user}

パスワードがわからない場合は、以下からパスワードの再設定を行ってください。

{reset_url}

■医療機関等向け総合ポータルサイト

{portal_url}

※本メールは送信専用です。本メールへの返信にはご回答できません。

※本メールにお心当たりのない場合は、このメールを破棄してください。ご不明な点は以下よりお問い合わせください。

{contact}
"
        ),
    }
}

/// ユーザー登録完了メール: the user name to log in with.
pub fn portal_registration_done(user: &str, portal_url: &str, contact: &str) -> Letter {
    Letter {
        subject: "【医療機関等向け総合ポータルサイト】ユーザー登録完了のお知らせ".into(),
        body: format!(
            "医療機関等向け総合ポータルサイトのユーザー登録が完了しました。

[ユーザー名]
{user}

ログインの際は、上記のユーザー名と設定したパスワードを入力してください。

■医療機関等向け総合ポータルサイト

{portal_url}

※本メールは送信専用です。本メールへの返信にはご回答できません。

※本メールにお心当たりのない場合は、以下よりお問い合わせください。

{contact}
"
        ),
    }
}

/// The notice after a portal password change.
pub fn portal_password_changed(notice: &Notice<'_>, portal_url: &str, contact: &str) -> Letter {
    let Notice {
        account,
        when,
        client,
        not_me_url,
    } = notice;
    Letter {
        subject: "【医療機関等向け総合ポータルサイト】パスワード変更完了のお知らせ".into(),
        body: format!(
            "医療機関等向け総合ポータルサイトにおけるパスワードの変更が完了しましたので、お知らせいたします。

ユーザー名: {account}
変更日時: {when}
操作元IPアドレス: {client}

本操作に心当たりがない場合は、24時間以内に以下のURLを開き、アカウントをロックしてください。ロック後は、パスワードの再設定を行うまでログインできません。

{not_me_url}

あわせて、至急以下よりお問い合わせください。

■医療機関等向け総合ポータルサイト

{portal_url}

※本メールは送信専用です。本メールへの返信にはご回答できません。

{contact}
"
        ),
    }
}

/// A lifetime as the mails say it: `1時間`, `30分`, `90秒`.
pub fn lifetime_ja(secs: u64) -> String {
    if secs.is_multiple_of(3600) {
        format!("{}時間", secs / 3600)
    } else if secs.is_multiple_of(60) {
        format!("{}分", secs / 60)
    } else {
        format!("{secs}秒")
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
    use mail_parser::MessageParser;

    #[test]
    fn otp_mail_is_the_seeds_text_with_the_code() {
        let l = kaigo_otp("042137", 30, "ヘルプデスク: 0570-059-402");
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
        let letter = kaigo_otp("999999", 30, "ヘルプデスク: 0570-059-402");
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
            link,
            &lifetime_ja(3600),
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
        assert_eq!(lifetime_ja(1800), "30分");
        assert_eq!(lifetime_ja(7200), "2時間");
        assert_eq!(lifetime_ja(90), "90秒");
    }
}
