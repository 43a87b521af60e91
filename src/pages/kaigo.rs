//! The kaigo site's screens (介護電子請求受付システム), worded as the seed
//! shows them. Each takes a `Frame` (clock, CSRF token, banner) and the data
//! of its screen.

use super::{errors, layout};
use crate::policy::KAIGO_SYMBOLS;
use maud::{html, Markup};

/// What every kaigo screen shows around its content.
pub struct Frame<'a> {
    /// `HH:MM:SS` in the configured zone.
    pub clock: String,
    /// The CSRF token every form carries.
    pub csrf: &'a str,
    pub banner: Option<&'a str>,
}

/// The recovery steps of the seed's step bar.
const STEPS: [&str; 5] = [
    "パスワード等を紛失した方",
    "ログイン情報再設定認証",
    "ワンタイムパスワード入力",
    "ログイン情報再設定",
    "終了",
];

/// On its last two screens the seed's bar calls step 2
/// "ログイン情報再設定確認"; kagi shows the bar as the seed does.
const STEP2_LATE: &str = "ログイン情報再設定確認";

fn step_bar(current: usize) -> Markup {
    let labels: Vec<&str> = STEPS
        .iter()
        .enumerate()
        .map(|(i, label)| {
            if i == 1 && current >= 4 {
                STEP2_LATE
            } else {
                label
            }
        })
        .collect();
    steps(&labels, current)
}

/// The postal request's steps: the same first screen, then its own two.
const POSTAL_STEPS: [&str; 3] = ["パスワード等を紛失した方", "書類郵送申請", "申請受付"];

/// A bar of numbered steps, `current` (from 1) marked for the eye and for
/// a screen reader.
fn steps(labels: &[&str], current: usize) -> Markup {
    html! {
        ol.steps aria-label="手順" {
            @for (i, label) in labels.iter().enumerate() {
                @let n = i + 1;
                li.current[n == current] aria-current=[(n == current).then_some("step")] {
                    span.no { (n) } (label)
                }
            }
        }
    }
}

/// A kaigo screen: system bar, title with the clock, optional step bar of
/// the recovery by mail.
fn screen(f: &Frame<'_>, title: &str, step: Option<usize>, content: Markup) -> Markup {
    screen_with(f, title, step.map(step_bar), content)
}

/// A kaigo screen with the step bar `bar`, if any.
fn screen_with(f: &Frame<'_>, title: &str, bar: Option<Markup>, content: Markup) -> Markup {
    layout(
        &format!("{title} | 介護電子請求受付システム"),
        f.banner,
        html! {
            div.system { "介護電子請求受付システム" }
            main {
                div.screen-title {
                    h1 { (title) }
                    span.clock { "時刻 " (f.clock) }
                }
                @if let Some(bar) = bar { (bar) }
                (content)
            }
        },
    )
}

fn csrf(f: &Frame<'_>) -> Markup {
    super::csrf_field(f.csrf)
}

/// 《トップメニュー》.
pub fn top_menu(f: &Frame<'_>) -> Markup {
    screen(
        f,
        "トップメニュー",
        None,
        html! {
            p.lead { "介護給付費等の電子請求を受け付けるシステムです。" }
            ul.menu {
                li { a.button href="/kaigo/login" { "ログイン" } }
            }
        },
    )
}

/// 【ログイン】.
pub fn login(f: &Frame<'_>, user_id: &str, error: Option<&str>) -> Markup {
    screen(
        f,
        "ログイン",
        None,
        html! {
            h2 { "電子請求受付システム" }
            p.lead { "ユーザIDとパスワードを入力して、" br; "【ログイン】ボタンを押してください。" }
            @if let Some(e) = error { (errors(&[e.to_string()])) }
            form method="post" action="/kaigo/login" {
                (csrf(f))
                table.fields {
                    tr { th { label for="user_id" { "ユーザID" } } td { input #user_id type="text" name="user_id" value=(user_id) autocomplete="username" maxlength="32"; } }
                    tr { th { label for="password" { "パスワード" } } td { input #password type="password" name="password" autocomplete="current-password" maxlength="64"; } }
                }
                div.buttons {
                    a.button.secondary href="/kaigo" { "戻る" }
                    button type="submit" { "ログイン" }
                }
            }
            p { a href="/kaigo/recovery" { "パスワード等を紛失した方はこちら" } }
        },
    )
}

/// The second login factor.
pub fn security_code_login(f: &Frame<'_>, error: Option<&str>) -> Markup {
    screen(
        f,
        "セキュリティコード入力",
        None,
        html! {
            p.lead { "セキュリティコードを入力して、【ログイン】ボタンを押してください。" }
            @if let Some(e) = error { (errors(&[e.to_string()])) }
            form method="post" action="/kaigo/login/code" {
                (csrf(f))
                table.fields {
                    tr { th { label for="code" { "セキュリティコード" } } td { input #code type="password" name="security_code" autocomplete="off" maxlength="32"; } }
                }
                div.buttons {
                    a.button.secondary href="/kaigo/login" { "戻る" }
                    button type="submit" { "ログイン" }
                }
            }
        },
    )
}

/// The logged-in menu.
pub fn menu(f: &Frame<'_>, user_id: &str, has_code: bool, notice: Option<&str>) -> Markup {
    screen(
        f,
        "メニュー",
        None,
        html! {
            p.lead { "ユーザID: " strong.user-id { (user_id) } }
            @if let Some(n) = notice { p.notice role="status" { (n) } }
            h2 { "ユーザ情報変更" }
            ul.menu {
                li { a href="/kaigo/security-code" { "セキュリティコード設定" }
                     " (" @if has_code { "設定済み" } @else { "未設定" } ")" }
            }
            form method="post" action="/kaigo/logout" {
                (csrf(f))
                div.buttons { button type="submit" { "ログアウト" } }
            }
        },
    )
}

/// セキュリティコード設定: set, change or clear, confirmed by the password.
pub fn security_code_settings(f: &Frame<'_>, has_code: bool, problems: &[String]) -> Markup {
    screen(
        f,
        "セキュリティコード設定",
        None,
        html! {
            p.lead {
                @if has_code { "セキュリティコードは設定済みです。変更または解除できます。" }
                @else { "セキュリティコードは設定されていません。設定するとログイン時に入力が必要になります。" }
            }
            (errors(problems))
            form method="post" action="/kaigo/security-code" {
                (csrf(f))
                table.fields {
                    tr { th { label for="password" { "現在のパスワード" } } td { input #password type="password" name="password" autocomplete="current-password" maxlength="64"; } }
                    tr { th { label for="code" { "新しいセキュリティコード" } } td { input #code type="password" name="code" autocomplete="off" maxlength="32"; } }
                    tr { th { label for="code2" { "新しいセキュリティコード(確認用)" } } td { input #code2 type="password" name="code_confirm" autocomplete="off" maxlength="32"; } }
                }
                p.policy { "セキュリティコードは半角英数字4文字～16文字で入力してください。" }
                div.buttons {
                    a.button.secondary href="/kaigo/menu" { "戻る" }
                    button type="submit" name="action" value="set" { "設定" }
                    @if has_code { button.secondary type="submit" name="action" value="clear" { "解除" } }
                }
            }
        },
    )
}

/// Step 1: パスワード等を紛失した方.
/// Step 1 of either path: its bar shows step 1 alone, as the manual's
/// screen does (the paths part after it).
pub fn recovery_choice(f: &Frame<'_>, error: Option<&str>) -> Markup {
    screen_with(
        f,
        "パスワード等を紛失した方",
        Some(steps(&STEPS[..1], 1)),
        html! {
            p.lead { "介護事業所が、ユーザIDやパスワード等のログイン情報を紛失した場合、こちらの画面からログイン情報の再設定を行うことができます。メニューを選択し、【次へ】ボタンを押してください。" }
            @if let Some(e) = error { (errors(&[e.to_string()])) }
            form method="post" action="/kaigo/recovery" {
                (csrf(f))
                div.choice {
                    input #by-mail type="radio" name="method" value="mail" checked;
                    " " label for="by-mail" { "セキュリティ用メールアドレスを登録済みの場合はこちら" }
                    ul {
                        li { "ユーザIDの確認、パスワードの再設定及びセキュリティコードの初期化を行います。" br; "※ 操作は数分で完了します。" }
                    }
                }
                div.choice {
                    input #by-post type="radio" name="method" value="postal";
                    " " label for="by-post" { "セキュリティ用メールアドレスが不明または未登録の場合はこちら" }
                    ul {
                        li {
                            "国保連合会から、ユーザIDや仮パスワードを記載した書類を郵送します。" br;
                            "※ 書類が届くまで、通常は数日から一週間程度かかります。" br;
                            "※ 申請が集中した場合、数週間お待ちいただく場合があります。" br;
                            "※ 紙請求または媒体請求を行っている事業所が、電子請求受付システムのユーザID及びパスワードを新たに取得する場合、こちらのメニューから申請してください。"
                        }
                    }
                }
                div.buttons {
                    a.button.secondary href="/kaigo/login" { "戻る" }
                    button type="submit" { "次へ" }
                }
            }
        },
    )
}

/// Step 2: ログイン情報再設定認証.
pub fn recovery_auth(f: &Frame<'_>, office: &str, email: &str, problems: &[String]) -> Markup {
    screen(
        f,
        "ログイン情報再設定認証",
        Some(2),
        html! {
            p.lead { "ログイン情報を再設定するため、事業所の認証を行います。" br;
                     "事業所番号と登録済みのセキュリティ用メールアドレスを入力し、【次へ】ボタンを押してください。" }
            (errors(problems))
            form method="post" action="/kaigo/recovery/auth" {
                (csrf(f))
                table.fields {
                    tr { th { label for="office" { "事業所番号" } } td { input #office type="text" name="office" value=(office) inputmode="numeric" maxlength="10" autocomplete="off"; } }
                    tr { th { label for="email" { "セキュリティ用メールアドレス" } } td { input #email type="text" inputmode="email" name="email" value=(email) maxlength="254" autocomplete="email"; } }
                }
                p.width-note { "※ 全角で入力された英数字は、半角に変換して受け付けます。" }
                div.buttons {
                    a.button.secondary href="/kaigo/recovery" { "戻る" }
                    button type="submit" { "次へ" }
                }
            }
        },
    )
}

/// Step 3: 請求先都道府県選択, only for offices billing several prefectures.
pub fn recovery_prefecture(f: &Frame<'_>, prefectures: &[String], error: Option<&str>) -> Markup {
    screen(
        f,
        "請求先都道府県選択",
        Some(2),
        html! {
            p.lead { "ログイン情報を再設定するため、事業所の認証を行います。" br;
                     "請求先都道府県を選択し、【次へ】ボタンを押してください。" }
            @if let Some(e) = error { (errors(&[e.to_string()])) }
            form method="post" action="/kaigo/recovery/prefecture" {
                (csrf(f))
                table.fields {
                    tr {
                        th { label for="prefecture" { "請求先都道府県" } }
                        td {
                            select #prefecture name="prefecture" {
                                @for code in prefectures {
                                    option value=(code) { (prefecture_name(code)) }
                                }
                            }
                        }
                    }
                }
                div.buttons {
                    a.button.secondary href="/kaigo/recovery/auth" { "戻る" }
                    button type="submit" { "次へ" }
                }
            }
        },
    )
}

/// Step 5: ワンタイムパスワード入力. Shown identically whether or not the
/// office number and address matched.
pub fn recovery_otp(
    f: &Frame<'_>,
    email: &str,
    lifetime_minutes: u64,
    error: Option<&str>,
) -> Markup {
    screen(
        f,
        "ワンタイムパスワード入力",
        Some(3),
        html! {
            p.lead { "ユーザの本人確認を行うため、ワンタイムパスワードを " strong.sent-to { (email) } " 宛に送信しました。メール本文に記載された6桁の数字を半角で入力し、【次へ】ボタンを押してください。" }
            @if let Some(e) = error { (errors(&[e.to_string()])) }
            form method="post" action="/kaigo/recovery/otp" {
                (csrf(f))
                table.fields {
                    tr { th { label for="otp" { "ワンタイムパスワード" } } td { input #otp type="text" name="otp" inputmode="numeric" maxlength="6" autocomplete="one-time-code"; } }
                }
                p.width-note { "※ 全角で入力された英数字は、半角に変換して受け付けます。" }
                div.note {
                    p { "※ メールが届くまで数分程度かかる場合があります。" }
                    p { "ワンタイムパスワードの有効期間は" (lifetime_minutes) "分です。" }
                    p { "しばらく待ってもメールが届かない場合、以下の原因が考えられます。" }
                    ul.plain {
                        li { "・受信制限の設定をしている。" }
                        li { "・迷惑メールフォルダ等に移動している。" }
                        li { "・メールの受信フォルダ・メールボックス等が容量オーバーになっている。" }
                        li { "・プロバイダの通信状況で受信が遅れている。" }
                    }
                    p { "※ 入力したメールアドレスが、実際に登録済みのセキュリティ用メールアドレスと異なる場合、ワンタイムパスワードは送信されません。" }
                    p { "※ 登録済みのセキュリティ用メールアドレスが不明な場合、パスワード等を紛失した方画面で、「セキュリティ用メールアドレスが不明または未登録の場合はこちら」を選択してください。" }
                }
                div.buttons {
                    a.button.secondary href="/kaigo/recovery/auth" { "戻る" }
                    button type="submit" { "次へ" }
                }
            }
        },
    )
}

/// The kaigo password policy as the seed words it.
fn policy_text() -> Markup {
    html! {
        div.policy {
            "パスワードには以下の英数字を8文字～16文字で入力してください。" br;
            "※英字、数字を少なくとも1文字ずつ含めてください。(記号は任意)" br;
            "英字 : abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" br;
            "数字 : 0123456789" br;
            "記号 : " (KAIGO_SYMBOLS) br;
            "ユーザIDと同じパスワードは入力できません。" br;
            // Rules kagi keeps beyond the manual's: shown, so that no one
            // following the screen is refused for one never seen.
            "事業所番号を含むパスワードや、よく使われているパスワードは使用できません。"
        }
    }
}

/// Step 7: ログイン情報再設定.
pub fn recovery_reset(f: &Frame<'_>, user_id: &str, problems: &[String]) -> Markup {
    screen(
        f,
        "ログイン情報再設定",
        Some(4),
        html! {
            p.lead { "新しいパスワードを入力し、【変更】ボタンを押してください。" }
            (errors(problems))
            form method="post" action="/kaigo/recovery/reset" {
                (csrf(f))
                table.fields {
                    tr { th { "ユーザID" } td.user-id { (user_id) } }
                    tr { th { label for="pw" { "新しいパスワード" } } td { input #pw type="password" name="password" autocomplete="new-password" maxlength="64"; } }
                    tr { th { label for="pw2" { "新しいパスワード(確認用)" } } td { input #pw2 type="password" name="password_confirm" autocomplete="new-password" maxlength="64"; } }
                    tr { th { "セキュリティコード" } td { "(解除されます)" } }
                }
                (policy_text())
                div.buttons {
                    a.button.secondary href="/kaigo/recovery" { "戻る" }
                    button type="submit" { "変更" }
                }
            }
        },
    )
}

/// Step 8: 処理終了.
pub fn recovery_done(f: &Frame<'_>) -> Markup {
    screen(
        f,
        "処理終了",
        Some(5),
        html! {
            p.lead { "ログイン情報の再設定が完了しました。" br;
                     "セキュリティコードをご利用の方は、ユーザ情報変更メニューの「セキュリティコード設定」から再度設定してください。" }
            div.buttons { a.button href="/kaigo/login" { "終了" } }
        },
    )
}

/// A recovery already done, opened again: said plainly, on to the login.
pub fn recovery_already_done(f: &Frame<'_>, title: &str, message: &str) -> Markup {
    screen(
        f,
        title,
        None,
        html! {
            p.notice role="status" { (message) }
            div.buttons { a.button href="/kaigo/login" { "ログイン画面へ" } }
        },
    )
}

/// A recovery that cannot go on (expired, spent, too many wrong codes).
pub fn recovery_stopped(f: &Frame<'_>, step: usize, title: &str, message: &str) -> Markup {
    screen(
        f,
        title,
        Some(step),
        html! {
            (errors(&[message.to_string()]))
            div.buttons { a.button href="/kaigo/recovery" { "最初からやり直す" } }
        },
    )
}

/// The postal request's fields as typed.
#[derive(Default)]
pub struct PostalForm<'a> {
    pub office: &'a str,
    pub prefecture: &'a str,
    pub office_name: &'a str,
    pub contact: &'a str,
    pub phone: &'a str,
}

/// 書類郵送の申請 (the other branch of step 1). `problems`: what is wrong
/// with each field, in the form's order.
pub fn postal_form(f: &Frame<'_>, form: &PostalForm<'_>, problems: &[String]) -> Markup {
    screen_with(
        f,
        "書類郵送申請",
        Some(steps(&POSTAL_STEPS, 2)),
        html! {
            p.lead { "国保連合会から、ユーザIDや仮パスワードを記載した書類を郵送します。" br;
                     "事業所の情報を入力し、【申請】ボタンを押してください。" }
            (errors(problems))
            form method="post" action="/kaigo/recovery/postal" {
                (csrf(f))
                table.fields {
                    tr { th { label for="office" { "事業所番号" } } td { input #office type="text" name="office" value=(form.office) inputmode="numeric" maxlength="10" autocomplete="off"; } }
                    tr {
                        th { label for="prefecture" { "請求先都道府県" } }
                        td {
                            select #prefecture name="prefecture" {
                                option value="" selected[form.prefecture.is_empty()] { "選択してください" }
                                @for n in 1..=47u8 {
                                    @let code = format!("{n:02}");
                                    option value=(code) selected[form.prefecture == code] { (prefecture_name(&code)) }
                                }
                            }
                        }
                    }
                    tr { th { label for="office_name" { "事業所名" } } td { input #office_name type="text" name="office_name" value=(form.office_name) maxlength="100" autocomplete="organization"; } }
                    tr { th { label for="contact" { "担当者名" } } td { input #contact type="text" name="contact" value=(form.contact) maxlength="50" autocomplete="name"; } }
                    tr { th { label for="phone" { "電話番号" } } td { input #phone type="tel" name="phone" value=(form.phone) maxlength="20" autocomplete="tel"; } }
                }
                div.buttons {
                    a.button.secondary href="/kaigo/recovery" { "戻る" }
                    button type="submit" { "申請" }
                }
            }
        },
    )
}

/// The answer to a postal request: what happens next, in the seed's words.
pub fn postal_done(f: &Frame<'_>) -> Markup {
    screen_with(
        f,
        "書類郵送申請受付",
        Some(steps(&POSTAL_STEPS, 3)),
        html! {
            p.notice role="status" { "書類郵送の申請を受け付けました。" }
            p { "国保連合会から、ユーザIDや仮パスワードを記載した書類を郵送します。" }
            p { "※ 書類が届くまで、通常は数日から一週間程度かかります。" br;
                "※ 申請が集中した場合、数週間お待ちいただく場合があります。" }
            p { "書類が届いたら、記載されたユーザIDと仮パスワードでログインし、新しいパスワードを設定してください。" }
            div.buttons { a.button href="/kaigo" { "終了" } }
        },
    )
}

/// The steps of a first login with a temporary password.
const FIRST_STEPS: [&str; 3] = [
    "新しいパスワードの設定",
    "セキュリティ用メールアドレスの登録",
    "ワンタイムパスワード入力",
];

/// The way out of a first login that is not finished.
fn first_logout(f: &Frame<'_>) -> Markup {
    html! {
        form.inline method="post" action="/kaigo/logout" {
            (csrf(f))
            button.link type="submit" { "ログアウト(あとで設定する)" }
        }
    }
}

/// First login, step 1: the temporary password is replaced.
pub fn first_password(f: &Frame<'_>, user_id: &str, problems: &[String]) -> Markup {
    screen_with(
        f,
        "パスワード変更",
        Some(steps(&FIRST_STEPS, 1)),
        html! {
            p.lead { "仮パスワードでログインしました。新しいパスワードを入力し、【変更】ボタンを押してください。" br;
                     "パスワードを変更するまで、ほかの画面は利用できません。" }
            (errors(problems))
            form method="post" action="/kaigo/first/password" {
                (csrf(f))
                table.fields {
                    tr { th { "ユーザID" } td.user-id { (user_id) } }
                    tr { th { label for="pw" { "新しいパスワード" } } td { input #pw type="password" name="password" autocomplete="new-password" maxlength="64"; } }
                    tr { th { label for="pw2" { "新しいパスワード(確認用)" } } td { input #pw2 type="password" name="password_confirm" autocomplete="new-password" maxlength="64"; } }
                }
                (policy_text())
                p { "※ 仮パスワードと同じパスワードは使用できません。" }
                div.buttons { button type="submit" { "変更" } }
            }
            (first_logout(f))
        },
    )
}

/// First login, step 2: the security address, typed twice.
pub fn first_email(f: &Frame<'_>, email: &str, problems: &[String]) -> Markup {
    screen_with(
        f,
        "セキュリティ用メールアドレス登録",
        Some(steps(&FIRST_STEPS, 2)),
        html! {
            p.lead { "パスワード等を紛失したときにログイン情報を再設定できるよう、セキュリティ用メールアドレスを登録します。" br;
                     "メールアドレスを2回入力し、【次へ】ボタンを押してください。入力したアドレスにワンタイムパスワードを送信します。" }
            (errors(problems))
            form method="post" action="/kaigo/first/email" {
                (csrf(f))
                table.fields {
                    tr { th { label for="email" { "セキュリティ用メールアドレス" } } td { input #email type="email" name="email" value=(email) autocomplete="email" maxlength="254"; } }
                    tr { th { label for="email2" { "セキュリティ用メールアドレス(確認用)" } } td { input #email2 type="email" name="email_confirm" autocomplete="off" maxlength="254"; } }
                }
                p.width-note { "※ 全角で入力された英数字は、半角に変換して受け付けます。" }
                div.buttons { button type="submit" { "次へ" } }
            }
            (first_logout(f))
        },
    )
}

/// First login, step 3: the code mailed to the new address.
pub fn first_code(
    f: &Frame<'_>,
    email: &str,
    lifetime_minutes: u64,
    error: Option<&str>,
) -> Markup {
    screen_with(
        f,
        "ワンタイムパスワード入力",
        Some(steps(&FIRST_STEPS, 3)),
        html! {
            p.lead { "ワンタイムパスワードを " strong.sent-to { (email) } " 宛に送信しました。メール本文に記載された6桁の数字を半角で入力し、【登録】ボタンを押してください。" }
            @if let Some(e) = error { (errors(&[e.to_string()])) }
            form method="post" action="/kaigo/first/code" {
                (csrf(f))
                table.fields {
                    tr { th { label for="otp" { "ワンタイムパスワード" } } td { input #otp type="text" name="otp" inputmode="numeric" maxlength="6" autocomplete="one-time-code"; } }
                }
                p { "ワンタイムパスワードの有効期間は" (lifetime_minutes) "分です。" }
                div.buttons {
                    a.button.secondary href="/kaigo/first/email" { "メールアドレスを入力し直す" }
                    button type="submit" { "登録" }
                }
            }
            (first_logout(f))
        },
    )
}

/// A right temporary password past its expiry.
pub fn temporary_expired(f: &Frame<'_>) -> Markup {
    screen(
        f,
        "仮パスワードの有効期限切れ",
        None,
        html! {
            (errors(&["仮パスワードの有効期限が切れています。".to_string()]))
            p { "郵送した書類の仮パスワードは、有効期限を過ぎると使用できません。" }
            p { "お手数ですが、書類郵送をもう一度申請してください。" }
            div.buttons {
                a.button.secondary href="/kaigo/login" { "ログインへ戻る" }
                a.button href="/kaigo/recovery/postal" { "書類郵送を申請する" }
            }
        },
    )
}

/// The JIS X 0401 name of a prefecture code ("13" → 東京都).
pub fn prefecture_name(code: &str) -> &'static str {
    const NAMES: [&str; 47] = [
        "北海道",
        "青森県",
        "岩手県",
        "宮城県",
        "秋田県",
        "山形県",
        "福島県",
        "茨城県",
        "栃木県",
        "群馬県",
        "埼玉県",
        "千葉県",
        "東京都",
        "神奈川県",
        "新潟県",
        "富山県",
        "石川県",
        "福井県",
        "山梨県",
        "長野県",
        "岐阜県",
        "静岡県",
        "愛知県",
        "三重県",
        "滋賀県",
        "京都府",
        "大阪府",
        "兵庫県",
        "奈良県",
        "和歌山県",
        "鳥取県",
        "島根県",
        "岡山県",
        "広島県",
        "山口県",
        "徳島県",
        "香川県",
        "愛媛県",
        "高知県",
        "福岡県",
        "佐賀県",
        "長崎県",
        "熊本県",
        "大分県",
        "宮崎県",
        "鹿児島県",
        "沖縄県",
    ];
    code.parse::<usize>()
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("(不明)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefecture_names() {
        assert_eq!(prefecture_name("01"), "北海道");
        assert_eq!(prefecture_name("13"), "東京都");
        assert_eq!(prefecture_name("47"), "沖縄県");
        assert_eq!(prefecture_name("00"), "(不明)");
        assert_eq!(prefecture_name("48"), "(不明)");
    }

    #[test]
    fn step_bar_marks_the_current_step() {
        let bar = step_bar(3).into_string();
        assert_eq!(bar.matches("class=\"current\"").count(), 1);
        assert!(bar.contains("<li class=\"current\" aria-current=\"step\"><span class=\"no\">3</span>ワンタイムパスワード入力"));
    }
}
