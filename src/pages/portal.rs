//! The portal's screens (医療機関等向け総合ポータルサイト), worded as the
//! seed shows them. Tiles and menu entries for services kagi does not
//! provide are shown, plainly marked, and lead nowhere.

use super::{errors, layout};
use crate::captcha::{Kind, Shown};
use maud::{html, Markup};

/// What every portal screen shows around its content.
pub struct Frame<'a> {
    /// The CSRF token every form carries.
    pub csrf: &'a str,
    pub banner: Option<&'a str>,
    /// The logged-in user, for the header's ログイン/ログアウト.
    pub user: Option<&'a str>,
}

/// The mark on what this server does not provide.
const NOT_HERE: &str = "このサーバでは提供していません";

fn unavailable(label: &str) -> Markup {
    html! {
        span.unavailable title=(NOT_HERE) { (label) " " small.na { "(未提供)" } }
    }
}

fn screen(f: &Frame<'_>, title: &str, content: Markup) -> Markup {
    layout(
        &format!("{title} | 医療機関等向け総合ポータルサイト"),
        f.banner,
        html! {
            header.portal {
                a.site-name href="/portal" { "医療機関等向け総合ポータルサイト" }
                nav {
                    (unavailable("事業別トップメニュー▼"))
                    (unavailable("お知らせ"))
                    (unavailable("よくある質問"))
                    @if f.user.is_some() {
                        form.inline method="post" action="/portal/logout" {
                            (csrf(f))
                            button.link type="submit" { "ログアウト" }
                        }
                    } @else {
                        a.login href="/portal/login" { strong { "ログイン" } }
                    }
                }
            }
            main.portal { (content) }
        },
    )
}

fn csrf(f: &Frame<'_>) -> Markup {
    super::csrf_field(f.csrf)
}

/// ① 特定 ② 検証 ③ リセット.
fn step_bar(current: usize) -> Markup {
    steps(&["① 特定", "② 検証", "③ リセット"], current)
}

/// A registration's steps: ① 入力 ② 確認メール送信 ③ パスワード設定.
fn registration_bar(current: usize) -> Markup {
    steps(&["① 入力", "② 確認メール送信", "③ パスワード設定"], current)
}

fn steps(labels: &[&str], current: usize) -> Markup {
    html! {
        ol.steps.portal-steps aria-label="手順" {
            @for (i, label) in labels.iter().enumerate() {
                li.current[i + 1 == current] aria-current=[(i + 1 == current).then_some("step")] { (label) }
            }
        }
    }
}

/// The top page's tiles; `logged_in`: no ログインはこちら, nor registration.
fn tiles(logged_in: bool) -> Markup {
    let others = [
        "医療機関等を新設・廃止・コード変更される方はこちら",
        "お知らせ",
        "よくある質問",
        "お問い合わせ先",
        "オンライン資格確認 オンライン請求",
        "電子処方箋管理サービス",
        "電子カルテ情報共有サービス",
    ];
    html! {
        div.tiles {
            @if !logged_in {
                a.tile href="/portal/register" { strong { "新規ユーザー登録はこちら" } p { "初めてご利用になられる方はこちらから" } }
                a.tile href="/portal/login" { strong { "ログインはこちら" } p { "すでにアカウントをお持ちの方はこちらから" } }
            }
            @for label in others {
                div.tile.na-tile { strong { (label) } small.na { (NOT_HERE) } }
            }
        }
    }
}

/// The top page.
pub fn top(f: &Frame<'_>) -> Markup {
    screen(
        f,
        "トップページ",
        html! { h1 { "医療機関等向け総合ポータルサイト" } (tiles(f.user.is_some())) },
    )
}

/// The logged-in top page.
/// `provisional`: the account is still on its provisional address, which
/// no mail reaches: a notice says to register anew.
pub fn home(f: &Frame<'_>, user: &str, coordinator: bool, provisional: bool) -> Markup {
    screen(
        f,
        "トップページ",
        html! {
            h1 { "医療機関等向け総合ポータルサイト" }
            p.notice role="status" {
                "ログイン中: " strong.user { (user) }
                @if coordinator { " (取りまとめ者)" }
            }
            @if provisional {
                div.notice-box.provisional role="note" {
                    p { strong { "このアカウントは仮アカウントです(メールアドレスの末尾が「@01」～「@48」)。" } }
                    p { "仮アカウントにはメールが届かないため、パスワードを忘れた場合に再設定できません。"
                        a href="/portal/register" { "新規ユーザー登録" } "を行ってください。登録が完了すると、この仮アカウントは使用できなくなります。" }
                }
            }
            (tiles(true))
        },
    )
}

/// The login page with the seed's notice on provisional accounts.
pub fn login(f: &Frame<'_>, user: &str, error: Option<&str>) -> Markup {
    screen(
        f,
        "ログイン",
        html! {
            h1 { "●ログインはこちら" }
            div.notice-box {
                p { strong { "以下に該当する場合、パスワード再設定を行っても通知メールが届きません。新規ユーザー登録が必要となります。" } }
                ul.plain {
                    li { "①仮アカウントからメールアドレスを更新していない（末尾が「@01」～「@48」のいずれか）" }
                    li { "②旧ポータルで登録したメールアドレスに誤りがある" }
                }
                p { "①に該当される方は、トップページの「" a href="/portal/register" { "新規ユーザ登録はこちら" } "」をクリックし、ユーザ登録を行ってください。" }
                p { "仮アカウントからメールアドレスを更新しているにも関わらずパスワード再設定後に通知メールが届かない方は、②に該当している可能性があります。" }
                p { "その場合、トップページの「" a href="/portal/register" { "新規ユーザ登録はこちら" } "」をクリックし、ユーザ登録を行ってください。" }
                p { "ユーザ登録でもエラーとなる場合は、コールセンターまでお問い合わせください。" }
            }
            section.login-box {
                h2 { "ログイン" }
                @if let Some(e) = error { (errors(&[e.to_string()])) }
                form method="post" action="/portal/login" {
                    (csrf(f))
                    p { label for="user" { "ユーザー名" } br; input #user type="text" name="user" value=(user) autocomplete="username" maxlength="100"; }
                    p { label for="password" { "パスワード" } br; input #password type="password" name="password" autocomplete="current-password" maxlength="100"; }
                    div.buttons {
                        button type="submit" { "ログイン" }
                        a.reset-link href="/portal/reset" { "パスワードの再設定" }
                    }
                }
                p { "アカウントがありませんか？ " a href="/portal/register" { "新規登録はこちら" } }
            }
        },
    )
}

/// A new password twice, and the portal policy as the manual words it.
fn password_fields(label: &str) -> Markup {
    html! {
        p {
            label for="pw" { (label) span.req { "*" } } br;
            input #pw type="password" name="password" autocomplete="new-password" maxlength="100";
        }
        p {
            label for="pw2" { "パスワードの再入力" span.req { "*" } } br;
            input #pw2 type="password" name="password_confirm" autocomplete="new-password" maxlength="100";
        }
        p.policy { "※大文字/小文字/数字をそれぞれ1文字以上、かつ8文字以上100文字以内で入力してください。" br;
                   "※よく使われているパスワードは使用できません。" }
    }
}

/// The CAPTCHA's image, its refresh button, the button to hear it instead,
/// and its answer field; or its sound (`audio_captcha_fields`).
fn captcha_fields(captcha: &Shown) -> Markup {
    if captcha.kind == Kind::Audio {
        return audio_captcha_fields(&captcha.data_uri);
    }
    let image = &captcha.data_uri;
    html! {
        div.captcha {
            img.captcha-image src=(image) alt="CAPTCHA: 画像に表示されている文字" width=(crate::captcha::WIDTH) height=(crate::captcha::HEIGHT);
            button.secondary type="submit" name="action" value="refresh" title="表示の文字を変更" { "↻ 画像を変更" }
            button.secondary type="submit" name="action" value="audio" title="画像の代わりに、数字の読み上げを聞く" { "音声で聞く" }
        }
        p {
            label for="captcha" { "表示されている文字" span.req { "*" } } br;
            input #captcha type="text" name="captcha" autocomplete="off" maxlength="10" autocapitalize="off" spellcheck="false";
        }
        p.note { "※CAPTCHAエリアに表示された文字が判別しづらい場合は「画像を変更」を押下して、表示の文字を変更できます。" }
    }
}

/// The CAPTCHA read aloud, for whoever cannot see the image: the player,
/// what to type, buttons for another sound and for the image, and the
/// answer field labelled with what to type. A hidden field keeps the
/// sound on the next page when the answer was wrong.
fn audio_captcha_fields(sound: &str) -> Markup {
    let digits = crate::captcha::audio::LENGTH;
    html! {
        input type="hidden" name="captcha_mode" value="audio";
        div.captcha.captcha-audio role="group" aria-labelledby="captcha-audio-help" {
            p #captcha-audio-help { "音声で読み上げられる数字を入力してください。" }
            audio controls preload="auto" src=(sound) aria-label=(format!("CAPTCHA: {digits}桁の数字の読み上げ")) {
                "お使いのブラウザでは音声を再生できません。「画像に戻る」を押下してください。"
            }
            button.secondary type="submit" name="action" value="audio" { "別の音声を聞く" }
            button.secondary type="submit" name="action" value="image" { "画像に戻る" }
        }
        p {
            label for="captcha" { "読み上げられた" (digits) "桁の数字" span.req { "*" } } br;
            input #captcha type="text" name="captcha" inputmode="numeric" autocomplete="off" maxlength="20" aria-describedby="captcha-audio-help";
        }
        p.note { "※再生ボタンで何度でも聞き直せます。聞き取りにくい場合は「別の音声を聞く」を押下してください。" }
    }
}

/// ① 特定: user name and CAPTCHA.
pub fn identify(
    f: &Frame<'_>,
    user: &str,
    captcha_id: &str,
    captcha: &Shown,
    error: Option<&str>,
) -> Markup {
    screen(
        f,
        "パスワードのリセット",
        html! {
            (step_bar(1))
            h1 { "パスワードのリセット" }
            p.lead { "ユーザー名と、画像に表示されている文字を入力し、「次へ」を押下してください。" }
            @if let Some(e) = error { (errors(&[e.to_string()])) }
            form method="post" action="/portal/reset" {
                // The first submit button is the one Enter presses: 次へ,
                // not the image refresh.
                button.default-submit type="submit" name="action" value="next" tabindex="-1" aria-hidden="true" { "次へ" }
                (csrf(f))
                input type="hidden" name="captcha_id" value=(captcha_id);
                p {
                    label for="user" { "ユーザー名" span.req { "*" } } br;
                    input #user type="text" name="user" value=(user) autocomplete="username" maxlength="100";
                }
                p.note { "※ユーザー登録完了メールに記載されたユーザー名を入力してください。ただし、取りまとめ者の場合ユーザー登録完了メールに記載されたユーザーIDを入力してください。" }
                (captcha_fields(captcha))
                div.buttons { button type="submit" name="action" value="next" { "次へ" } }
            }
        },
    )
}

/// ② 検証: パーソナルデータ検証 - メールアドレス.
pub fn verify(f: &Frame<'_>, error: Option<&str>) -> Markup {
    screen(
        f,
        "パーソナルデータ検証 - メールアドレス",
        html! {
            (step_bar(2))
            h1 { "パーソナルデータ検証 - メールアドレス" }
            p.lead { "医療機関等向け総合ポータルサイトに登録したメールアドレスを入力し、「次へ」を押下してください。" }
            @if let Some(e) = error { (errors(&[e.to_string()])) }
            form method="post" action="/portal/reset/verify" {
                (csrf(f))
                p {
                    label for="email" { "メール" span.req { "*" } } br;
                    input #email type="text" inputmode="email" name="email" autocomplete="email" maxlength="254";
                }
                p.width-note { "※ 全角で入力された英数字は、半角に変換して受け付けます。" }
                div.buttons { button type="submit" { "次へ" } }
            }
        },
    )
}

/// パスワード変更用URLメール送信完了: the same page whatever was entered.
pub fn sent(f: &Frame<'_>, from: &str, lifetime: &str) -> Markup {
    screen(
        f,
        "パスワード変更用URLメール送信完了",
        html! {
            (step_bar(2))
            h1 { "パスワード変更用URLメール送信完了" }
            p { "入力したメールアドレス宛に、" (from) "よりパスワード変更用URLが記載されたメールを送信しました。" }
            p { "メールに記載されているURLを押下又はコピーしてアクセスし、パスワードを再設定してください。" }
            p.note { "※パスワード変更用のURLリンクはセキュリティ保護のため、送信されてから" strong { (lifetime) } "を経過しますと無効になります。" }
            p.note { "※ユーザー名とメールアドレスが登録内容と一致しない場合、また仮アカウント（末尾が「@01」～「@48」）の場合、メールは送信されません。" }
            div.buttons { a.button href="/portal/login" { "ログイン画面へ" } }
        },
    )
}

/// ③ リセット: the new password (opening the link shows this; only the
/// POST uses the link).
pub fn reset(f: &Frame<'_>, token: &str, problems: &[String]) -> Markup {
    screen(
        f,
        "パスワードのリセット",
        html! {
            (step_bar(3))
            h1 { "パスワードのリセット" }
            (errors(problems))
            form method="post" action="/portal/passwordreset" {
                (csrf(f))
                input type="hidden" name="token" value=(token);
                (password_fields("新しいパスワード"))
                div.buttons { button type="submit" { "パスワードのリセット" } }
            }
        },
    )
}

/// Password Resetに成功.
pub fn reset_done(f: &Frame<'_>) -> Markup {
    screen(
        f,
        "Password Resetに成功",
        html! {
            (step_bar(3))
            h1 { "Password Resetに成功" }
            p { "パスワードのリセットが完了しました。新しいパスワードでログインしてください。" }
            div.buttons { a.button href="/portal/login" { "完了" } }
        },
    )
}

/// A registration's fields as typed.
#[derive(Default)]
pub struct RegistrationForm<'a> {
    pub institution: &'a str,
    pub institution_name: &'a str,
    pub contact: &'a str,
    pub email: &'a str,
    pub email_confirm: &'a str,
    pub user: &'a str,
}

/// 新規ユーザー登録 ① 入力.
pub fn register(
    f: &Frame<'_>,
    form: &RegistrationForm<'_>,
    captcha_id: &str,
    captcha: &Shown,
    problems: &[String],
) -> Markup {
    let field =
        |id: &'static str, label: &'static str, kind: &'static str, value: &str, more: Markup| {
            html! {
                p {
                    label for=(id) { (label) span.req { "*" } } br;
                    input id=(id) type=(kind) name=(id) value=(value) maxlength="100";
                    (more)
                }
            }
        };
    screen(
        f,
        "新規ユーザー登録",
        html! {
            (registration_bar(1))
            h1 { "新規ユーザー登録" }
            p.lead { "医療機関等の情報と、ご担当者のメールアドレス、希望するユーザー名を入力し、「次へ」を押下してください。入力したメールアドレスに確認用のURLを送信します。" }
            (errors(problems))
            form method="post" action="/portal/register" {
                button.default-submit type="submit" name="action" value="next" tabindex="-1" aria-hidden="true" { "次へ" }
                (csrf(f))
                input type="hidden" name="captcha_id" value=(captcha_id);
                (field("institution", "医療機関等コード(10桁)", "text", form.institution, html! { br; small.note { "都道府県番号(2桁)に続く8桁の数字" } }))
                (field("institution_name", "医療機関等名称", "text", form.institution_name, html! {}))
                (field("contact", "担当者氏名", "text", form.contact, html! {}))
                (field("email", "メールアドレス", "email", form.email, html! {}))
                (field("email_confirm", "メールアドレス(確認用)", "email", form.email_confirm, html! {}))
                (field("user", "ユーザー名", "text", form.user, html! { br; small.note { "ログインに使う名前です(100文字以内)。" } }))
                (captcha_fields(captcha))
                div.buttons { button type="submit" name="action" value="next" { "次へ" } }
            }
        },
    )
}

/// ② 確認メール送信: the same page whatever the address or name.
pub fn register_sent(f: &Frame<'_>, lifetime: &str) -> Markup {
    screen(
        f,
        "確認メール送信",
        html! {
            (registration_bar(2))
            h1 { "確認メール送信" }
            p { "入力したメールアドレス宛に、確認用のURLを記載したメールを送信しました。" }
            p { "メールに記載されているURLにアクセスし、パスワードを設定して登録を完了してください。" }
            p.note { "※確認用のURLは、送信されてから" strong { (lifetime) } "を経過しますと無効になります。" }
            p.note { "※メールが届かない場合は、迷惑メールフォルダ等をご確認ください。" }
        },
    )
}

/// ③ パスワード設定 (opening the link shows this; only the POST uses it).
pub fn register_password(f: &Frame<'_>, token: &str, user: &str, problems: &[String]) -> Markup {
    screen(
        f,
        "パスワード設定",
        html! {
            (registration_bar(3))
            h1 { "パスワード設定" }
            (errors(problems))
            form method="post" action="/portal/register/confirm" {
                (csrf(f))
                input type="hidden" name="token" value=(token);
                p {
                    label for="user" { "ユーザー名" span.req { "*" } } br;
                    input #user type="text" name="user" value=(user) autocomplete="username" maxlength="100";
                }
                (password_fields("パスワード"))
                div.buttons { button type="submit" { "登録" } }
            }
        },
    )
}

/// 登録完了.
pub fn register_done(f: &Frame<'_>, user: &str) -> Markup {
    screen(
        f,
        "登録完了",
        html! {
            (registration_bar(3))
            h1 { "登録完了" }
            p { "ユーザー登録が完了しました。ユーザー名 " strong { (user) } " と設定したパスワードでログインしてください。" }
            p { "ユーザー名を記載したユーザー登録完了メールを送信しました。" }
            div.buttons { a.button href="/portal/login" { "ログイン画面へ" } }
        },
    )
}

/// A registration link that cannot be used.
pub fn register_invalid(f: &Frame<'_>, lifetime: &str) -> Markup {
    screen(
        f,
        "パスワード設定",
        html! {
            (registration_bar(3))
            h1 { "パスワード設定" }
            (errors(&[format!("このURLは無効です。有効期限（{lifetime}）が過ぎたか、既に使用されたURLです。お手数ですが、もう一度新規ユーザー登録を行ってください。")]))
            div.buttons { a.button href="/portal/register" { "新規ユーザー登録をやり直す" } }
        },
    )
}

/// A link that cannot be used, or a flow that ran out.
pub fn stopped(f: &Frame<'_>, step: usize, message: &str) -> Markup {
    screen(
        f,
        "パスワードのリセット",
        html! {
            (step_bar(step))
            h1 { "パスワードのリセット" }
            (errors(&[message.to_string()]))
            div.buttons { a.button href="/portal/reset" { "パスワードの再設定をやり直す" } }
        },
    )
}
