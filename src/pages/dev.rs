//! Pages that exist only in demo mode: the captured mailbox.

use super::{layout, Doc};
use maud::{html, Markup};

/// One captured mail as the page shows it.
pub struct MailView<'a> {
    pub id: u64,
    pub date: String,
    pub to: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
}

/// `/dev/mail`: every captured mail, newest first, each in full.
pub fn mailbox(mails: &[MailView<'_>], banner: super::Banner) -> Markup {
    layout(
        &Doc::japanese(Some(banner)),
        "送信メール (capture)",
        html! {
            main.dev {
                h1 { "送信メール (capture)" }
                p { "メールは配送されず、ここに保存されます。新しい順に表示しています。"
                    " JSON: " a href="/dev/mail.json" { "/dev/mail.json" } }
                @if mails.is_empty() {
                    p.empty { "まだメールはありません。" }
                }
                @for m in mails {
                    article.mail id={ "mail-" (m.id) } {
                        dl {
                            dt { "日時" } dd { (m.date) }
                            dt { "To" } dd.to { (m.to) }
                            dt { "Subject" } dd.subject { (m.subject) }
                        }
                        pre.body { (m.body) }
                    }
                }
            }
        },
    )
}

/// One live CAPTCHA as the page shows it.
pub struct CaptchaView<'a> {
    pub id: &'a str,
    pub answer: &'a str,
    pub seconds_left: u64,
}

/// `/dev/captcha`: the answers of live CAPTCHAs, newest first, so that lab
/// automation can pass ① 特定.
pub fn captchas(list: &[CaptchaView<'_>], banner: super::Banner) -> Markup {
    layout(
        &Doc::japanese(Some(banner)),
        "CAPTCHA の答え (demo)",
        html! {
            main.dev {
                h1 { "CAPTCHA の答え (demo)" }
                p { "有効な CAPTCHA を新しい順に表示しています。JSON: " a href="/dev/captcha.json" { "/dev/captcha.json" } }
                @if list.is_empty() { p.empty { "有効な CAPTCHA はありません。" } }
                table.fields {
                    tr { th { "id" } th { "答え" } th { "残り" } }
                    @for c in list {
                        tr { td { code { (c.id) } } td.answer { (c.answer) } td { (c.seconds_left) " 秒" } }
                    }
                }
            }
        },
    )
}

/// The demo operator's current TOTP code, as an authenticator app shows it.
pub fn totp(operator: &str, code: &str, seconds_left: u64, banner: super::Banner) -> Markup {
    layout(
        &Doc::japanese(Some(banner)),
        "管理コンソールの確認コード (demo)",
        html! {
            main.dev {
                h1 { "管理コンソールの確認コード (demo)" }
                p { "認証アプリの代わりに、デモ用オペレーターの現在の確認コードを表示しています。JSON: " a href="/dev/totp.json" { "/dev/totp.json" } }
                table.fields {
                    tr { th { "オペレーター" } th { "確認コード" } th { "残り" } }
                    tr { td { (operator) } td.answer { code { (code) } } td { (seconds_left) " 秒" } }
                }
                p { "ログインは " a href="/admin/login" { "/admin/login" } " から。1つのコードは1回しか使えません。次のコードまでお待ちください。" }
            }
        },
    )
}
