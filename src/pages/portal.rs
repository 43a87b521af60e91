//! The portal's screens (医療機関等向け総合ポータルサイト), worded as the
//! seed shows them, every word from the language's catalogue. Tiles and
//! menu entries for services kagi does not provide are shown, plainly
//! marked, and lead nowhere.

use super::{described, errors, invalid, layout, Doc, Problem};
use crate::captcha::{Kind, Shown};
use crate::text::{around, fill, Lang, Texts};
use maud::{html, Markup};

/// What every portal screen shows around its content.
pub struct Frame<'a> {
    /// The CSRF token every form carries.
    pub csrf: &'a str,
    pub banner: Option<super::Banner>,
    /// The logged-in user, for the header's ログイン/ログアウト.
    pub user: Option<&'a str>,
    pub lang: Lang,
    /// The page's path, where the language link comes back to.
    pub here: &'a str,
}

impl Frame<'_> {
    fn t(&self) -> &'static Texts {
        self.lang.texts()
    }
}

fn unavailable(t: &Texts, label: &str) -> Markup {
    html! {
        span.unavailable title=(t.p_not_here) { (label) " " small.na { (t.p_unavailable) } }
    }
}

fn screen(f: &Frame<'_>, title: &str, content: Markup) -> Markup {
    let t = f.t();
    let doc = Doc {
        lang: f.lang,
        banner: f.banner,
        here: Some(f.here),
    };
    layout(
        &doc,
        &format!("{title} | {}", t.p_site),
        html! {
            header.portal {
                a.site-name href="/portal" { (t.p_site) }
                nav aria-label=(t.p_nav) {
                    (unavailable(t, t.p_nav_menus))
                    (unavailable(t, t.p_nav_news))
                    (unavailable(t, t.p_nav_faq))
                    @if f.user.is_some() {
                        form.inline method="post" action="/portal/logout" {
                            (csrf(f))
                            button.link type="submit" { (t.p_logout) }
                        }
                    } @else {
                        a.login href="/portal/login" { strong { (t.p_login) } }
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
fn step_bar(t: &Texts, current: usize) -> Markup {
    steps(t, &[t.p_step_1, t.p_step_2, t.p_step_3], current)
}

/// A registration's steps: ① 入力 ② 確認メール送信 ③ パスワード設定.
fn registration_bar(t: &Texts, current: usize) -> Markup {
    steps(
        t,
        &[t.p_reg_step_1, t.p_reg_step_2, t.p_reg_step_3],
        current,
    )
}

fn steps(t: &Texts, labels: &[&str], current: usize) -> Markup {
    html! {
        ol.steps.portal-steps aria-label=(t.c_steps) {
            @for (i, label) in labels.iter().enumerate() {
                li.current[i + 1 == current] aria-current=[(i + 1 == current).then_some("step")] { (label) }
            }
        }
    }
}

/// The top page's tiles; `logged_in`: no ログインはこちら, nor registration.
fn tiles(t: &Texts, logged_in: bool) -> Markup {
    let others = [
        t.p_tile_institutions,
        t.p_nav_news,
        t.p_nav_faq,
        t.p_tile_contact,
        t.p_tile_online,
        t.p_tile_prescriptions,
        t.p_tile_records,
    ];
    html! {
        div.tiles {
            @if !logged_in {
                a.tile href="/portal/register" { strong { (t.p_tile_register) } p { (t.p_tile_register_note) } }
                a.tile href="/portal/login" { strong { (t.p_tile_login) } p { (t.p_tile_login_note) } }
            }
            @for label in others {
                div.tile.na-tile { strong { (label) } " " small.na { (t.p_not_here) } }
            }
        }
    }
}

/// The top page.
pub fn top(f: &Frame<'_>) -> Markup {
    let t = f.t();
    screen(
        f,
        t.p_top_title,
        html! { h1 { (t.p_site) } (tiles(t, f.user.is_some())) },
    )
}

/// The logged-in top page.
/// `provisional`: the account is still on its provisional address, which
/// no mail reaches: a notice says to register anew.
pub fn home(f: &Frame<'_>, user: &str, coordinator: bool, provisional: bool) -> Markup {
    let t = f.t();
    let (before, after) = around(t.p_provisional_2, "register");
    screen(
        f,
        t.p_top_title,
        html! {
            h1 { (t.p_site) }
            p.notice role="status" {
                (t.p_logged_in_as) " " strong.user { (user) }
                @if coordinator { " " (t.p_coordinator) }
            }
            @if provisional {
                div.notice-box.provisional role="note" {
                    p { strong { (t.p_provisional_1) } }
                    p { (before) a href="/portal/register" { (t.p_register_title) } (after) }
                }
            }
            (tiles(t, true))
        },
    )
}

/// The login page with the seed's notice on provisional accounts.
pub fn login(f: &Frame<'_>, user: &str, error: Option<&str>) -> Markup {
    let t = f.t();
    let problems: Vec<Problem> = error.map(Problem::form).into_iter().collect();
    let (before, after) = around(t.p_login_case_1_do, "register");
    screen(
        f,
        t.p_login,
        html! {
            h1 { (t.p_login_heading) }
            div.notice-box {
                p { strong { (t.p_login_notice) } }
                ul.plain {
                    li { (t.p_login_case_1) }
                    li { (t.p_login_case_2) }
                }
                p { (before) a href="/portal/register" { (t.p_register_link_quoted) } (after) }
                p { (t.p_login_case_2_maybe) }
                p { (t.p_login_case_2_do_1) a href="/portal/register" { (t.p_register_link_quoted) } (t.p_login_case_2_do_2) }
                p { (t.p_login_call) }
            }
            section.login-box {
                h2 { (t.p_login) }
                (errors(&problems))
                form method="post" action="/portal/login" {
                    (csrf(f))
                    p { label for="user" { (t.p_user) } br; input #user type="text" name="user" value=(user) autocomplete="username" maxlength="100" aria-required="true" aria-invalid=[error.map(|_| "true")]; }
                    p { label for="password" { (t.p_password) } br; input #password type="password" name="password" autocomplete="current-password" maxlength="100" aria-required="true"; }
                    div.buttons {
                        button type="submit" { (t.p_login) }
                        a.reset-link href="/portal/reset" { (t.p_reset_link) }
                    }
                }
                p { (t.p_no_account) " " a href="/portal/register" { (t.p_register_here) } }
            }
        },
    )
}

/// The mark of a required field: a red star for the eye; assistive
/// technology hears `aria-required` on the field itself.
fn req() -> Markup {
    html! { span.req aria-hidden="true" { "*" } }
}

/// A new password twice, and the portal policy as the manual words it.
fn password_fields(t: &Texts, label: &str, p: &[Problem]) -> Markup {
    html! {
        p {
            label for="pw" { (label) (req()) } br;
            input #pw type="password" name="password" autocomplete="new-password" maxlength="100" aria-required="true" aria-invalid=[invalid(p, "pw")] aria-describedby=[described(p, "pw", Some("pw-rule"))];
        }
        p {
            label for="pw2" { (t.p_password_again) (req()) } br;
            input #pw2 type="password" name="password_confirm" autocomplete="new-password" maxlength="100" aria-required="true" aria-invalid=[invalid(p, "pw2")] aria-describedby=[described(p, "pw2", None)];
        }
        p.policy #pw-rule { (t.p_password_rule_1) br; (t.p_password_rule_2) }
    }
}

/// The CAPTCHA's image, its refresh button, the button to hear it instead,
/// and its answer field; or its sound (`audio_captcha_fields`).
fn captcha_fields(t: &Texts, captcha: &Shown, p: &[Problem]) -> Markup {
    if captcha.kind == Kind::Audio {
        return audio_captcha_fields(t, &captcha.data_uri, p);
    }
    let image = &captcha.data_uri;
    html! {
        div.captcha {
            img.captcha-image src=(image) alt=(t.p_captcha_alt) width=(crate::captcha::WIDTH) height=(crate::captcha::HEIGHT);
            button.secondary type="submit" name="action" value="refresh" title=(t.p_captcha_refresh_title) { (t.p_captcha_refresh) }
            button.secondary type="submit" name="action" value="audio" title=(t.p_captcha_audio_title) { (t.p_captcha_audio) }
        }
        p {
            label for="captcha" { (t.p_captcha_label) (req()) } br;
            input #captcha type="text" name="captcha" autocomplete="off" maxlength="10" autocapitalize="off" spellcheck="false" aria-required="true" aria-invalid=[invalid(p, "captcha")] aria-describedby=[described(p, "captcha", Some("captcha-note"))];
        }
        p.note #captcha-note { (t.p_captcha_note) }
    }
}

/// The CAPTCHA read aloud, for whoever cannot see the image: the player,
/// what to type, buttons for another sound and for the image, and the
/// answer field labelled with what to type. A hidden field keeps the
/// sound on the next page when the answer was wrong.
fn audio_captcha_fields(t: &Texts, sound: &str, p: &[Problem]) -> Markup {
    let digits = crate::captcha::audio::LENGTH.to_string();
    let count = [("digits", digits.as_str())];
    html! {
        input type="hidden" name="captcha_mode" value="audio";
        div.captcha.captcha-audio role="group" aria-labelledby="captcha-audio-help" {
            p #captcha-audio-help { (t.p_audio_help) }
            audio controls preload="auto" src=(sound) aria-label=(fill(t.p_audio_player, &count)) {
                (t.p_audio_unsupported)
            }
            button.secondary type="submit" name="action" value="audio" { (t.p_audio_another) }
            button.secondary type="submit" name="action" value="image" { (t.p_audio_back) }
        }
        p {
            label for="captcha" { (fill(t.p_audio_label, &count)) (req()) } br;
            input #captcha type="text" name="captcha" inputmode="numeric" autocomplete="off" maxlength="20" aria-required="true" aria-invalid=[invalid(p, "captcha")] aria-describedby=[described(p, "captcha", Some("captcha-audio-help"))];
        }
        p.note { (t.p_audio_note) }
    }
}

/// ① 特定: user name and CAPTCHA.
pub fn identify(
    f: &Frame<'_>,
    user: &str,
    captcha_id: &str,
    captcha: &Shown,
    error: Option<Problem>,
) -> Markup {
    let t = f.t();
    let problems: Vec<Problem> = error.into_iter().collect();
    screen(
        f,
        t.p_reset_title,
        html! {
            (step_bar(t, 1))
            h1 { (t.p_reset_title) }
            p.lead {
                @if captcha.kind == Kind::Audio { (t.p_identify_lead_audio) } @else { (t.p_identify_lead) }
            }
            (errors(&problems))
            form method="post" action="/portal/reset" {
                // The first submit button is the one Enter presses: 次へ,
                // not the image refresh.
                button.default-submit type="submit" name="action" value="next" tabindex="-1" aria-hidden="true" { (t.p_next) }
                (csrf(f))
                input type="hidden" name="captcha_id" value=(captcha_id);
                p {
                    label for="user" { (t.p_user) (req()) } br;
                    input #user type="text" name="user" value=(user) autocomplete="username" maxlength="100" aria-required="true" aria-invalid=[invalid(&problems, "user")] aria-describedby=[described(&problems, "user", Some("user-note"))];
                }
                p.note #user-note { (t.p_identify_user_note) }
                (captcha_fields(t, captcha, &problems))
                div.buttons { button type="submit" name="action" value="next" { (t.p_next) } }
            }
        },
    )
}

/// ② 検証: パーソナルデータ検証 - メールアドレス.
pub fn verify(f: &Frame<'_>, error: Option<&str>) -> Markup {
    let t = f.t();
    let problems: Vec<Problem> = error.map(|e| Problem::of("email", e)).into_iter().collect();
    let p = &problems;
    screen(
        f,
        t.p_verify_title,
        html! {
            (step_bar(t, 2))
            h1 { (t.p_verify_title) }
            p.lead { (t.p_verify_lead) }
            (errors(p))
            form method="post" action="/portal/reset/verify" {
                (csrf(f))
                p {
                    label for="email" { (t.p_mail) (req()) } br;
                    input #email type="text" inputmode="email" name="email" autocomplete="email" maxlength="254" aria-required="true" aria-invalid=[invalid(p, "email")] aria-describedby=[described(p, "email", Some("width-note"))];
                }
                p.width-note #width-note { (t.k_width_note) }
                div.buttons { button type="submit" { (t.p_next) } }
            }
        },
    )
}

/// パスワード変更用URLメール送信完了: the same page whatever was entered.
pub fn sent(f: &Frame<'_>, from: &str, lifetime: &str) -> Markup {
    let t = f.t();
    let (before, after) = around(t.p_sent_expiry, "lifetime");
    screen(
        f,
        t.p_sent_title,
        html! {
            (step_bar(t, 2))
            h1 { (t.p_sent_title) }
            p { (fill(t.p_sent_from, &[("from", from)])) }
            p { (t.p_sent_open) }
            p.note { (before) strong { (lifetime) } (after) }
            p.note { (t.p_sent_not_sent) }
            div.buttons { a.button href="/portal/login" { (t.p_to_login) } }
        },
    )
}

/// ③ リセット: the new password (opening the link shows this; only the
/// POST uses the link).
pub fn reset(f: &Frame<'_>, token: &str, problems: &[Problem]) -> Markup {
    let t = f.t();
    screen(
        f,
        t.p_reset_title,
        html! {
            (step_bar(t, 3))
            h1 { (t.p_reset_title) }
            (errors(problems))
            form method="post" action="/portal/passwordreset" {
                (csrf(f))
                input type="hidden" name="token" value=(token);
                (password_fields(t, t.p_new_password, problems))
                div.buttons { button type="submit" { (t.p_reset_title) } }
            }
        },
    )
}

/// Password Resetに成功.
pub fn reset_done(f: &Frame<'_>) -> Markup {
    let t = f.t();
    screen(
        f,
        t.p_reset_done_title,
        html! {
            (step_bar(t, 3))
            h1 { (t.p_reset_done_title) }
            p { (t.p_reset_done) }
            div.buttons { a.button href="/portal/login" { (t.p_finish) } }
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
    problems: &[Problem],
) -> Markup {
    let t = f.t();
    let p = problems;
    let field = |id: &'static str,
                 label: &str,
                 kind: &'static str,
                 value: &str,
                 note: Option<&str>| {
        let note_id = format!("{id}-note");
        html! {
            p {
                label for=(id) { (label) (req()) } br;
                input id=(id) type=(kind) name=(id) value=(value) maxlength="100" aria-required="true" aria-invalid=[invalid(p, id)] aria-describedby=[described(p, id, note.map(|_| note_id.as_str()))];
                @if let Some(note) = note { br; small.note id=(note_id) { (note) } }
            }
        }
    };
    screen(
        f,
        t.p_register_title,
        html! {
            (registration_bar(t, 1))
            h1 { (t.p_register_title) }
            p.lead { (t.p_register_lead) }
            (errors(p))
            form method="post" action="/portal/register" {
                button.default-submit type="submit" name="action" value="next" tabindex="-1" aria-hidden="true" { (t.p_next) }
                (csrf(f))
                input type="hidden" name="captcha_id" value=(captcha_id);
                (field("institution", t.p_institution_label, "text", form.institution, Some(t.p_institution_note)))
                (field("institution_name", t.p_institution_name, "text", form.institution_name, None))
                (field("contact", t.p_contact, "text", form.contact, None))
                (field("email", t.p_email, "email", form.email, None))
                (field("email_confirm", t.p_email_again, "email", form.email_confirm, None))
                (field("user", t.p_user, "text", form.user, Some(t.p_user_note)))
                (captcha_fields(t, captcha, p))
                div.buttons { button type="submit" name="action" value="next" { (t.p_next) } }
            }
        },
    )
}

/// ② 確認メール送信: the same page whatever the address or name.
pub fn register_sent(f: &Frame<'_>, lifetime: &str) -> Markup {
    let t = f.t();
    let (before, after) = around(t.p_register_sent_expiry, "lifetime");
    screen(
        f,
        t.p_register_sent_title,
        html! {
            (registration_bar(t, 2))
            h1 { (t.p_register_sent_title) }
            p { (t.p_register_sent_1) }
            p { (t.p_register_sent_2) }
            p.note { (before) strong { (lifetime) } (after) }
            p.note { (t.p_register_sent_spam) }
        },
    )
}

/// ③ パスワード設定 (opening the link shows this; only the POST uses it).
pub fn register_password(f: &Frame<'_>, token: &str, user: &str, problems: &[Problem]) -> Markup {
    let t = f.t();
    let p = problems;
    screen(
        f,
        t.p_register_password_title,
        html! {
            (registration_bar(t, 3))
            h1 { (t.p_register_password_title) }
            (errors(p))
            form method="post" action="/portal/register/confirm" {
                (csrf(f))
                input type="hidden" name="token" value=(token);
                p {
                    label for="user" { (t.p_user) (req()) } br;
                    input #user type="text" name="user" value=(user) autocomplete="username" maxlength="100" aria-required="true" aria-invalid=[invalid(p, "user")] aria-describedby=[described(p, "user", None)];
                }
                (password_fields(t, t.p_password, p))
                div.buttons { button type="submit" { (t.k_register) } }
            }
        },
    )
}

/// 登録完了.
pub fn register_done(f: &Frame<'_>, user: &str) -> Markup {
    let t = f.t();
    let (before, after) = around(t.p_register_done_1, "user");
    screen(
        f,
        t.p_register_done_title,
        html! {
            (registration_bar(t, 3))
            h1 { (t.p_register_done_title) }
            p { (before) strong { (user) } (after) }
            p { (t.p_register_done_2) }
            div.buttons { a.button href="/portal/login" { (t.p_to_login) } }
        },
    )
}

/// A registration link that cannot be used.
pub fn register_invalid(f: &Frame<'_>, lifetime: &str) -> Markup {
    let t = f.t();
    let message = fill(t.p_register_invalid, &[("lifetime", lifetime)]);
    screen(
        f,
        t.p_register_password_title,
        html! {
            (registration_bar(t, 3))
            h1 { (t.p_register_password_title) }
            (errors(&[Problem::form(message)]))
            div.buttons { a.button href="/portal/register" { (t.p_register_again) } }
        },
    )
}

/// A link that cannot be used, or a flow that ran out.
pub fn stopped(f: &Frame<'_>, step: usize, message: &str) -> Markup {
    let t = f.t();
    screen(
        f,
        t.p_reset_title,
        html! {
            (step_bar(t, step))
            h1 { (t.p_reset_title) }
            (errors(&[Problem::form(message)]))
            div.buttons { a.button href="/portal/reset" { (t.p_reset_again) } }
        },
    )
}
