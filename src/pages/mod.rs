//! HTML, rendered with maud. Pure: data in, `Markup` out; no store, no clock
//! (the time shown on screens arrives as a string). Nothing a user typed is
//! ever wrapped in `PreEscaped`.

pub mod console;
pub mod dev;
pub mod kaigo;
pub mod portal;

use maud::{html, Markup, DOCTYPE};

/// The stylesheet, served at `/static/kagi.css`; the CSP allows no inline style.
pub const STYLESHEET: &str = include_str!("kagi.css");

/// The HTML document around every page. `banner` is a warning shown on
/// top of every page (the demo says it is a demo).
pub fn layout(title: &str, banner: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="ja" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                link rel="stylesheet" href="/static/kagi.css";
            }
            body {
                @if let Some(text) = banner {
                    div.banner role="status" { (text) }
                }
                (body)
            }
        }
    }
}

/// The problems with what was sent, as one alert a screen reader reads
/// out; nothing when there are none.
pub fn errors(list: &[String]) -> Markup {
    html! {
        @if !list.is_empty() {
            ul.errors role="alert" {
                @for e in list { li { (e) } }
            }
        }
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// The page for an error status, in plain Japanese, under the header of
/// the site it happened on.
pub fn error_page(status: u16, site: Option<crate::site::Site>) -> Markup {
    let (title, text) = match status {
        400 => ("不正なリクエスト", "送信された内容を読み取れませんでした。入力内容をご確認のうえ、もう一度お試しください。"),
        403 => ("操作を続行できません", "画面の有効期限が切れたか、正しくない操作が行われました。お手数ですが、最初からやり直してください。"),
        404 => ("ページが見つかりません", "指定されたページは存在しません。アドレスをご確認ください。"),
        405 => ("この操作は受け付けられません", "このページではその操作を行えません。画面のボタンからお進みください。"),
        413 => ("送信内容が大きすぎます", "送信された内容が上限を超えています。入力内容を短くして、もう一度お試しください。"),
        408 => ("タイムアウトしました", "送信に時間がかかりすぎたため、処理を中断しました。もう一度お試しください。"),
        429 => ("アクセスが集中しています", "短時間に多くの操作が行われたため、一時的に受け付けを停止しています。しばらくしてからもう一度お試しください。"),
        431 => ("送信内容が大きすぎます", "リクエストのヘッダーが上限を超えています。ブラウザのCookieを削除して、もう一度お試しください。"),
        503 => ("ただいま処理できません", "一時的に処理できない状態です。しばらくしてからもう一度お試しください。"),
        _ => ("システムエラー", "申し訳ありません。システムエラーが発生しました。しばらくしてからもう一度お試しください。"),
    };
    let home = site.map_or("/".to_string(), |s| format!("/{}", s.name()));
    layout(
        title,
        None,
        html! {
            (site_header(site))
            main.error {
                h1 { (title) }
                p { (text) }
                p.status { "(HTTP " (status) ")" }
                p { a href=(home) { "トップページへ戻る" } }
            }
        },
    )
}

/// 503 while the server's disk runs low: new requests wait, what is
/// under way goes on.
pub fn not_taking_new_work(site: crate::site::Site) -> Markup {
    let home = format!("/{}", site.name());
    layout(
        "ただいま新しい受付を停止しています",
        None,
        html! {
            main.error {
                h1 { "ただいま新しい受付を停止しています" }
                p { "サーバの記憶領域が残り少なくなったため、パスワード再設定や書類郵送の新しい受付を一時的に停止しています。" }
                p { "ログインと、すでにお進みの手続き(ワンタイムパスワードの入力、新しいパスワードの設定)はご利用いただけます。" }
                p { "しばらくしてからもう一度お試しください。" }
                p.status { "(HTTP 503)" }
                p { a href=(home) { "トップページへ戻る" } }
            }
        },
    )
}

/// 429: how long to wait, in words a user reads.
/// The bar a site's pages carry on top, for the pages every site shares.
fn site_header(site: Option<crate::site::Site>) -> Markup {
    html! {
        @match site {
            Some(crate::site::Site::Kaigo) => div.system { "介護電子請求受付システム" },
            Some(crate::site::Site::Portal) => header.portal {
                a.site-name href="/portal" { "医療機関等向け総合ポータルサイト" }
            },
            None => {},
        }
    }
}

/// 429 under the header of the area it happened in, leading back there.
pub fn rate_limited(retry_after_secs: u64, area: crate::site::Area) -> Markup {
    let wait = if retry_after_secs < 60 {
        format!("{retry_after_secs}秒")
    } else {
        format!("{}分", retry_after_secs.div_ceil(60))
    };
    let home = format!("/{}", area.name());
    layout(
        "アクセスが集中しています",
        None,
        html! {
            (site_header(area.site()))
            main.error {
                h1 { "アクセスが集中しています" }
                p { "短時間に多くの操作が行われたため、このネットワークからの受け付けを一時的に停止しています。" }
                p { "約" (wait) "後にもう一度お試しください。" }
                p.status { "(HTTP 429)" }
                p { a href=(home) { "トップページへ戻る" } }
            }
        },
    )
}

fn site_title(site: crate::site::Site) -> &'static str {
    match site {
        crate::site::Site::Kaigo => "介護電子請求受付システム",
        crate::site::Site::Portal => "医療機関等向け総合ポータルサイト",
    }
}

/// "This was not me": what the button will do.
pub fn not_me_confirm(
    site: crate::site::Site,
    token: &str,
    csrf: &str,
    banner: Option<&str>,
) -> Markup {
    layout(
        "アカウントのロック",
        banner,
        html! {
            main.error {
                p { (site_title(site)) }
                h1 { "アカウントのロック" }
                p { "パスワードの変更に心当たりがない場合は、【ロックする】ボタンを押してください。アカウントはロックされ、ログイン中の画面はすべて終了します。" }
                p { "ロック後は、パスワード（ログイン情報）の再設定を行うまでログインできません。" }
                form method="post" action={ "/" (site.name()) "/not-me" } {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="token" value=(token);
                    div.buttons { button type="submit" { "ロックする" } }
                }
            }
        },
    )
}

pub fn not_me_done(site: crate::site::Site, banner: Option<&str>) -> Markup {
    layout(
        "アカウントをロックしました",
        banner,
        html! {
            main.error {
                p { (site_title(site)) }
                h1 { "アカウントをロックしました" }
                p { "ログイン中の画面はすべて終了しました。パスワード（ログイン情報）の再設定を行うと、ロックは解除されます。" }
                p { a href={ "/" (site.name()) } { "トップページへ" } }
            }
        },
    )
}

pub fn not_me_invalid(site: crate::site::Site, banner: Option<&str>) -> Markup {
    layout(
        "このURLは無効です",
        banner,
        html! {
            main.error {
                p { (site_title(site)) }
                h1 { "このURLは無効です" }
                p { "有効期限（24時間）が過ぎたか、既に使用されたURLです。" }
                p { a href={ "/" (site.name()) } { "トップページへ" } }
            }
        },
    )
}

/// kagi's own front page: where the sites are.
pub fn index(demo: bool) -> Markup {
    layout(
        "kagi",
        None,
        html! {
            main.index {
                h1 { "kagi — ログイン情報再設定サーバ" }
                ul {
                    li { a href="/kaigo" { "介護電子請求受付システム" } }
                    li { a href="/portal" { "医療機関等向け総合ポータルサイト" } }
                }
                @if demo {
                    p { "デモモード: 送信されたメールは " a href="/dev/mail" { "/dev/mail" } "、CAPTCHA の答えは " a href="/dev/captcha" { "/dev/captcha" } " で確認できます。" }
                }
            }
        },
    )
}
