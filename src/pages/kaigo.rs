//! The kaigo site's screens (介護電子請求受付システム), worded as the seed
//! shows them. Each takes a `Frame` (clock, CSRF token, banner, language)
//! and the data of its screen; every word comes from the language's
//! catalogue (`crate::text`).

use super::{described, errors, invalid, layout, Doc, Problem};
use crate::policy::KAIGO_SYMBOLS;
use crate::text::{around, fill, Lang, Texts};
use maud::{html, Markup};

/// What every kaigo screen shows around its content.
pub struct Frame<'a> {
    /// `HH:MM:SS` in the configured zone.
    pub clock: String,
    /// The CSRF token every form carries.
    pub csrf: &'a str,
    pub banner: Option<super::Banner>,
    pub lang: Lang,
    /// The page's path, where the language link comes back to.
    pub here: &'a str,
}

impl Frame<'_> {
    fn t(&self) -> &'static Texts {
        self.lang.texts()
    }
}

/// The recovery steps of the seed's step bar.
fn recovery_steps(t: &Texts) -> [&'static str; 5] {
    [
        t.k_step_lost,
        t.k_step_auth,
        t.k_step_otp,
        t.k_step_reset,
        t.k_step_end,
    ]
}

fn step_bar(t: &Texts, current: usize) -> Markup {
    let mut labels = recovery_steps(t);
    // On its last two screens the seed's bar calls step 2
    // "ログイン情報再設定確認"; kagi shows the bar as the seed does.
    if current >= 4 {
        labels[1] = t.k_step_auth_late;
    }
    steps(t, &labels, current)
}

/// The postal request's steps: the same first screen, then its own two.
fn postal_steps(t: &Texts) -> [&'static str; 3] {
    [t.k_step_lost, t.k_step_postal, t.k_step_postal_done]
}

/// A bar of numbered steps, `current` (from 1) marked for the eye and for
/// a screen reader.
fn steps(t: &Texts, labels: &[&str], current: usize) -> Markup {
    html! {
        ol.steps aria-label=(t.c_steps) {
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
    screen_with(f, title, step.map(|n| step_bar(f.t(), n)), content)
}

/// A kaigo screen with the step bar `bar`, if any.
fn screen_with(f: &Frame<'_>, title: &str, bar: Option<Markup>, content: Markup) -> Markup {
    let t = f.t();
    let doc = Doc {
        lang: f.lang,
        banner: f.banner,
        here: Some(f.here),
    };
    layout(
        &doc,
        &format!("{title} | {}", t.k_system),
        html! {
            header.system { (t.k_system) }
            main {
                div.screen-title {
                    h1 { (title) }
                    span.clock { (t.k_clock) " " (f.clock) }
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

/// A form's problems from one message about the form as a whole.
fn one(error: Option<&str>) -> Vec<Problem> {
    error.map(Problem::form).into_iter().collect()
}

/// A form's problems from one message about the field `id`.
fn one_of(id: &'static str, error: Option<&str>) -> Vec<Problem> {
    error.map(|e| Problem::of(id, e)).into_iter().collect()
}

/// 《トップメニュー》.
pub fn top_menu(f: &Frame<'_>) -> Markup {
    let t = f.t();
    screen(
        f,
        t.k_top_title,
        None,
        html! {
            p.lead { (t.k_top_lead) }
            ul.menu {
                li { a.button href="/kaigo/login" { (t.k_login) } }
            }
        },
    )
}

/// 【ログイン】.
pub fn login(f: &Frame<'_>, user_id: &str, error: Option<&str>) -> Markup {
    let t = f.t();
    let problems = one(error);
    screen(
        f,
        t.k_login,
        None,
        html! {
            h2 { (t.k_login_heading) }
            p.lead { (t.k_login_lead_1) br; (t.k_login_lead_2) }
            (errors(&problems))
            form method="post" action="/kaigo/login" {
                (csrf(f))
                table.fields {
                    tr { th { label for="user_id" { (t.k_user_id) } } td { input #user_id type="text" name="user_id" value=(user_id) autocomplete="username" maxlength="32" aria-required="true" aria-invalid=[error.map(|_| "true")]; } }
                    tr { th { label for="password" { (t.k_password) } } td { input #password type="password" name="password" autocomplete="current-password" maxlength="64" aria-required="true"; } }
                }
                div.buttons {
                    a.button.secondary href="/kaigo" { (t.k_back) }
                    button type="submit" { (t.k_login) }
                }
            }
            p { a href="/kaigo/recovery" { (t.k_lost_link) } }
        },
    )
}

/// The second login factor.
pub fn security_code_login(f: &Frame<'_>, error: Option<&str>) -> Markup {
    let t = f.t();
    let problems = one_of("code", error);
    screen(
        f,
        t.k_code_login_title,
        None,
        html! {
            p.lead { (t.k_code_login_lead) }
            (errors(&problems))
            form method="post" action="/kaigo/login/code" {
                (csrf(f))
                table.fields {
                    tr { th { label for="code" { (t.k_security_code) } } td { input #code type="password" name="security_code" autocomplete="off" maxlength="32" aria-required="true" aria-invalid=[invalid(&problems, "code")] aria-describedby=[described(&problems, "code", None)]; } }
                }
                div.buttons {
                    a.button.secondary href="/kaigo/login" { (t.k_back) }
                    button type="submit" { (t.k_login) }
                }
            }
        },
    )
}

/// The logged-in menu.
pub fn menu(f: &Frame<'_>, user_id: &str, has_code: bool, notice: Option<&str>) -> Markup {
    let t = f.t();
    screen(
        f,
        t.k_menu_title,
        None,
        html! {
            p.lead { (t.k_user_id) ": " strong.user-id { (user_id) } }
            @if let Some(n) = notice { p.notice role="status" { (n) } }
            h2 { (t.k_menu_user_info) }
            ul.menu {
                li { a href="/kaigo/security-code" { (t.k_code_settings_title) }
                     " (" @if has_code { (t.k_code_set) } @else { (t.k_code_unset) } ")" }
            }
            form method="post" action="/kaigo/logout" {
                (csrf(f))
                div.buttons { button type="submit" { (t.k_logout) } }
            }
        },
    )
}

/// セキュリティコード設定: set, change or clear, confirmed by the password.
pub fn security_code_settings(f: &Frame<'_>, has_code: bool, problems: &[Problem]) -> Markup {
    let t = f.t();
    let p = problems;
    screen(
        f,
        t.k_code_settings_title,
        None,
        html! {
            p.lead {
                @if has_code { (t.k_code_settings_lead_set) }
                @else { (t.k_code_settings_lead_unset) }
            }
            (errors(p))
            form method="post" action="/kaigo/security-code" {
                (csrf(f))
                table.fields {
                    tr { th { label for="password" { (t.k_current_password) } } td { input #password type="password" name="password" autocomplete="current-password" maxlength="64" aria-required="true" aria-invalid=[invalid(p, "password")] aria-describedby=[described(p, "password", None)]; } }
                    tr { th { label for="code" { (t.k_new_code) } } td { input #code type="password" name="code" autocomplete="off" maxlength="32" aria-invalid=[invalid(p, "code")] aria-describedby=[described(p, "code", Some("code-rule"))]; } }
                    tr { th { label for="code2" { (t.k_new_code_again) } } td { input #code2 type="password" name="code_confirm" autocomplete="off" maxlength="32" aria-invalid=[invalid(p, "code2")] aria-describedby=[described(p, "code2", None)]; } }
                }
                p.policy #code-rule { (t.k_code_rule) }
                div.buttons {
                    a.button.secondary href="/kaigo/menu" { (t.k_back) }
                    button type="submit" name="action" value="set" { (t.k_code_set_button) }
                    @if has_code { button.secondary type="submit" name="action" value="clear" { (t.k_code_clear_button) } }
                }
            }
        },
    )
}

/// Step 1: パスワード等を紛失した方. Its bar shows step 1 alone, as the
/// manual's screen does (the paths part after it).
pub fn recovery_choice(f: &Frame<'_>, error: Option<&str>) -> Markup {
    let t = f.t();
    let problems = one(error);
    screen_with(
        f,
        t.k_step_lost,
        Some(steps(t, &recovery_steps(t)[..1], 1)),
        html! {
            p.lead { (t.k_choice_lead) }
            (errors(&problems))
            form method="post" action="/kaigo/recovery" {
                (csrf(f))
                fieldset.choices {
                    legend.vh { (t.k_choice_legend) }
                    div.choice {
                        input #by-mail type="radio" name="method" value="mail" checked aria-describedby="by-mail-note";
                        " " label for="by-mail" { (t.k_choice_mail) }
                        ul #by-mail-note {
                            li { (t.k_choice_mail_note_1) br; (t.k_choice_mail_note_2) }
                        }
                    }
                    div.choice {
                        input #by-post type="radio" name="method" value="postal" aria-describedby="by-post-note";
                        " " label for="by-post" { (t.k_choice_post) }
                        ul #by-post-note {
                            li {
                                (t.k_postal_what) br;
                                (t.k_postal_days) br;
                                (t.k_postal_weeks) br;
                                (t.k_choice_post_note)
                            }
                        }
                    }
                }
                div.buttons {
                    a.button.secondary href="/kaigo/login" { (t.k_back) }
                    button type="submit" { (t.k_next) }
                }
            }
        },
    )
}

/// Step 2: ログイン情報再設定認証.
pub fn recovery_auth(f: &Frame<'_>, office: &str, email: &str, problems: &[Problem]) -> Markup {
    let t = f.t();
    let p = problems;
    screen(
        f,
        t.k_step_auth,
        Some(2),
        html! {
            p.lead { (t.k_auth_lead_1) br; (t.k_auth_lead_2) }
            (errors(p))
            form method="post" action="/kaigo/recovery/auth" {
                (csrf(f))
                table.fields {
                    tr { th { label for="office" { (t.k_office) } } td { input #office type="text" name="office" value=(office) inputmode="numeric" maxlength="10" autocomplete="off" aria-required="true" aria-invalid=[invalid(p, "office")] aria-describedby=[described(p, "office", Some("width-note"))]; } }
                    tr { th { label for="email" { (t.k_security_email) } } td { input #email type="text" inputmode="email" name="email" value=(email) maxlength="254" autocomplete="email" aria-required="true" aria-invalid=[invalid(p, "email")] aria-describedby=[described(p, "email", Some("width-note"))]; } }
                }
                p.width-note #width-note { (t.k_width_note) }
                div.buttons {
                    a.button.secondary href="/kaigo/recovery" { (t.k_back) }
                    button type="submit" { (t.k_next) }
                }
            }
        },
    )
}

/// Step 3: 請求先都道府県選択, only for offices billing several prefectures.
pub fn recovery_prefecture(f: &Frame<'_>, prefectures: &[String], error: Option<&str>) -> Markup {
    let t = f.t();
    let problems = one_of("prefecture", error);
    screen(
        f,
        t.k_prefecture_title,
        Some(2),
        html! {
            p.lead { (t.k_auth_lead_1) br; (t.k_prefecture_lead) }
            (errors(&problems))
            form method="post" action="/kaigo/recovery/prefecture" {
                (csrf(f))
                table.fields {
                    tr {
                        th { label for="prefecture" { (t.k_prefecture) } }
                        td {
                            select #prefecture name="prefecture" aria-required="true" aria-invalid=[invalid(&problems, "prefecture")] aria-describedby=[described(&problems, "prefecture", None)] {
                                @for code in prefectures {
                                    option value=(code) { (prefecture_name(t, code)) }
                                }
                            }
                        }
                    }
                }
                div.buttons {
                    a.button.secondary href="/kaigo/recovery/auth" { (t.k_back) }
                    button type="submit" { (t.k_next) }
                }
            }
        },
    )
}

/// The notes under a one-time password field: how long it lives, and
/// what to do when no mail arrives.
fn otp_notes(t: &Texts, lifetime_minutes: u64) -> Markup {
    html! {
        div.note #otp-note {
            p { (t.k_otp_delay) }
            p { (fill(t.k_otp_lifetime, &[("minutes", &lifetime_minutes.to_string())])) }
            p { (t.k_otp_causes) }
            ul.plain {
                li { (t.k_otp_cause_1) }
                li { (t.k_otp_cause_2) }
                li { (t.k_otp_cause_3) }
                li { (t.k_otp_cause_4) }
            }
            p { (t.k_otp_not_sent) }
            p { (t.k_otp_unknown_address) }
        }
    }
}

/// Step 5: ワンタイムパスワード入力. Shown identically whether or not the
/// office number and address matched.
pub fn recovery_otp(
    f: &Frame<'_>,
    email: &str,
    lifetime_minutes: u64,
    error: Option<&str>,
) -> Markup {
    let t = f.t();
    let problems = one_of("otp", error);
    let (before, after) = around(t.k_otp_lead, "email");
    screen(
        f,
        t.k_step_otp,
        Some(3),
        html! {
            p.lead { (before) strong.sent-to { (email) } (after) }
            (errors(&problems))
            form method="post" action="/kaigo/recovery/otp" {
                (csrf(f))
                table.fields {
                    tr { th { label for="otp" { (t.k_step_otp_field) } } td { input #otp type="text" name="otp" inputmode="numeric" maxlength="6" autocomplete="one-time-code" aria-required="true" aria-invalid=[invalid(&problems, "otp")] aria-describedby=[described(&problems, "otp", Some("width-note"))]; } }
                }
                p.width-note #width-note { (t.k_width_note) }
                (otp_notes(t, lifetime_minutes))
                div.buttons {
                    a.button.secondary href="/kaigo/recovery/auth" { (t.k_back) }
                    button type="submit" { (t.k_next) }
                }
            }
        },
    )
}

/// The kaigo password policy as the seed words it; the allowed symbols
/// may wrap anywhere on a narrow screen.
fn policy_text(t: &Texts) -> Markup {
    html! {
        div.policy #pw-rule {
            (t.k_rule_1) br;
            (t.k_rule_2) br;
            (t.k_rule_letters) " : " span.chars { "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" } br;
            (t.k_rule_digits) " : " span.chars { "0123456789" } br;
            (t.k_rule_symbols) " : " span.chars { (KAIGO_SYMBOLS) } br;
            (t.k_rule_user_id) br;
            // Rules kagi keeps beyond the manual's: shown, so that no one
            // following the screen is refused for one never seen.
            (t.k_rule_more)
        }
    }
}

/// The two new-password fields, described by the rules under them.
fn new_password_fields(t: &Texts, p: &[Problem]) -> Markup {
    html! {
        tr { th { label for="pw" { (t.k_new_password) } } td { input #pw type="password" name="password" autocomplete="new-password" maxlength="64" aria-required="true" aria-invalid=[invalid(p, "pw")] aria-describedby=[described(p, "pw", Some("pw-rule"))]; } }
        tr { th { label for="pw2" { (t.k_new_password_again) } } td { input #pw2 type="password" name="password_confirm" autocomplete="new-password" maxlength="64" aria-required="true" aria-invalid=[invalid(p, "pw2")] aria-describedby=[described(p, "pw2", None)]; } }
    }
}

/// Step 7: ログイン情報再設定.
pub fn recovery_reset(f: &Frame<'_>, user_id: &str, problems: &[Problem]) -> Markup {
    let t = f.t();
    screen(
        f,
        t.k_step_reset,
        Some(4),
        html! {
            p.lead { (t.k_reset_lead) }
            (errors(problems))
            form method="post" action="/kaigo/recovery/reset" {
                (csrf(f))
                table.fields {
                    tr { th { (t.k_user_id) } td.user-id { (user_id) } }
                    (new_password_fields(t, problems))
                    tr { th { (t.k_security_code) } td { (t.k_code_will_clear) } }
                }
                (policy_text(t))
                div.buttons {
                    a.button.secondary href="/kaigo/recovery" { (t.k_back) }
                    button type="submit" { (t.k_change) }
                }
            }
        },
    )
}

/// Step 8: 処理終了.
pub fn recovery_done(f: &Frame<'_>) -> Markup {
    let t = f.t();
    screen(
        f,
        t.k_done_title,
        Some(5),
        html! {
            p.lead { (t.k_done_1) br; (t.k_done_2) }
            div.buttons { a.button href="/kaigo/login" { (t.k_step_end) } }
        },
    )
}

/// A recovery already done, opened again: said plainly, on to the login.
pub fn recovery_already_done(f: &Frame<'_>, title: &str, message: &str) -> Markup {
    let t = f.t();
    screen(
        f,
        title,
        None,
        html! {
            p.notice role="status" { (message) }
            div.buttons { a.button href="/kaigo/login" { (t.k_to_login) } }
        },
    )
}

/// A recovery that cannot go on (expired, spent, too many wrong codes).
pub fn recovery_stopped(f: &Frame<'_>, step: usize, title: &str, message: &str) -> Markup {
    let t = f.t();
    screen(
        f,
        title,
        Some(step),
        html! {
            (errors(&[Problem::form(message)]))
            div.buttons { a.button href="/kaigo/recovery" { (t.k_start_over) } }
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
pub fn postal_form(f: &Frame<'_>, form: &PostalForm<'_>, problems: &[Problem]) -> Markup {
    let t = f.t();
    let p = problems;
    screen_with(
        f,
        t.k_step_postal,
        Some(steps(t, &postal_steps(t), 2)),
        html! {
            p.lead { (t.k_postal_what) br; (t.k_postal_lead) }
            (errors(p))
            form method="post" action="/kaigo/recovery/postal" {
                (csrf(f))
                table.fields {
                    tr { th { label for="office" { (t.k_office) } } td { input #office type="text" name="office" value=(form.office) inputmode="numeric" maxlength="10" autocomplete="off" aria-required="true" aria-invalid=[invalid(p, "office")] aria-describedby=[described(p, "office", None)]; } }
                    tr {
                        th { label for="prefecture" { (t.k_prefecture) } }
                        td {
                            select #prefecture name="prefecture" aria-required="true" aria-invalid=[invalid(p, "prefecture")] aria-describedby=[described(p, "prefecture", None)] {
                                option value="" selected[form.prefecture.is_empty()] { (t.k_choose) }
                                @for n in 1..=47u8 {
                                    @let code = format!("{n:02}");
                                    option value=(code) selected[form.prefecture == code] { (prefecture_name(t, &code)) }
                                }
                            }
                        }
                    }
                    tr { th { label for="office_name" { (t.k_office_name) } } td { input #office_name type="text" name="office_name" value=(form.office_name) maxlength="100" autocomplete="organization" aria-required="true" aria-invalid=[invalid(p, "office_name")] aria-describedby=[described(p, "office_name", None)]; } }
                    tr { th { label for="contact" { (t.k_contact) } } td { input #contact type="text" name="contact" value=(form.contact) maxlength="50" autocomplete="name" aria-required="true" aria-invalid=[invalid(p, "contact")] aria-describedby=[described(p, "contact", None)]; } }
                    tr { th { label for="phone" { (t.k_phone) } } td { input #phone type="tel" name="phone" value=(form.phone) maxlength="20" autocomplete="tel" aria-required="true" aria-invalid=[invalid(p, "phone")] aria-describedby=[described(p, "phone", None)]; } }
                }
                div.buttons {
                    a.button.secondary href="/kaigo/recovery" { (t.k_back) }
                    button type="submit" { (t.k_apply) }
                }
            }
        },
    )
}

/// The answer to a postal request: what happens next, in the seed's words.
pub fn postal_done(f: &Frame<'_>) -> Markup {
    let t = f.t();
    screen_with(
        f,
        t.k_postal_done_title,
        Some(steps(t, &postal_steps(t), 3)),
        html! {
            p.notice role="status" { (t.k_postal_received) }
            p { (t.k_postal_what) }
            p { (t.k_postal_days) br; (t.k_postal_weeks) }
            p { (t.k_postal_then) }
            div.buttons { a.button href="/kaigo" { (t.k_step_end) } }
        },
    )
}

/// The steps of a first login with a temporary password.
fn first_steps(t: &Texts) -> [&'static str; 3] {
    [t.k_first_step_1, t.k_first_step_2, t.k_step_otp]
}

/// The way out of a first login that is not finished.
fn first_logout(f: &Frame<'_>) -> Markup {
    html! {
        form.inline method="post" action="/kaigo/logout" {
            (csrf(f))
            button.link type="submit" { (f.t().k_first_later) }
        }
    }
}

/// First login, step 1: the temporary password is replaced.
pub fn first_password(f: &Frame<'_>, user_id: &str, problems: &[Problem]) -> Markup {
    let t = f.t();
    screen_with(
        f,
        t.k_first_password_title,
        Some(steps(t, &first_steps(t), 1)),
        html! {
            p.lead { (t.k_first_password_lead_1) br; (t.k_first_password_lead_2) }
            (errors(problems))
            form method="post" action="/kaigo/first/password" {
                (csrf(f))
                table.fields {
                    tr { th { (t.k_user_id) } td.user-id { (user_id) } }
                    (new_password_fields(t, problems))
                }
                (policy_text(t))
                p { (t.k_first_not_temporary) }
                div.buttons { button type="submit" { (t.k_change) } }
            }
            (first_logout(f))
        },
    )
}

/// First login, step 2: the security address, typed twice.
pub fn first_email(f: &Frame<'_>, email: &str, problems: &[Problem]) -> Markup {
    let t = f.t();
    let p = problems;
    screen_with(
        f,
        t.k_first_email_title,
        Some(steps(t, &first_steps(t), 2)),
        html! {
            p.lead { (t.k_first_email_lead_1) br; (t.k_first_email_lead_2) }
            (errors(p))
            form method="post" action="/kaigo/first/email" {
                (csrf(f))
                table.fields {
                    tr { th { label for="email" { (t.k_security_email) } } td { input #email type="email" name="email" value=(email) autocomplete="email" maxlength="254" aria-required="true" aria-invalid=[invalid(p, "email")] aria-describedby=[described(p, "email", Some("width-note"))]; } }
                    tr { th { label for="email2" { (t.k_security_email_again) } } td { input #email2 type="email" name="email_confirm" autocomplete="off" maxlength="254" aria-required="true" aria-invalid=[invalid(p, "email2")] aria-describedby=[described(p, "email2", None)]; } }
                }
                p.width-note #width-note { (t.k_width_note) }
                div.buttons { button type="submit" { (t.k_next) } }
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
    let t = f.t();
    let problems = one_of("otp", error);
    let (before, after) = around(t.k_first_code_lead, "email");
    screen_with(
        f,
        t.k_step_otp,
        Some(steps(t, &first_steps(t), 3)),
        html! {
            p.lead { (before) strong.sent-to { (email) } (after) }
            (errors(&problems))
            form method="post" action="/kaigo/first/code" {
                (csrf(f))
                table.fields {
                    tr { th { label for="otp" { (t.k_step_otp_field) } } td { input #otp type="text" name="otp" inputmode="numeric" maxlength="6" autocomplete="one-time-code" aria-required="true" aria-invalid=[invalid(&problems, "otp")] aria-describedby=[described(&problems, "otp", Some("otp-life"))]; } }
                }
                p #otp-life { (fill(t.k_otp_lifetime, &[("minutes", &lifetime_minutes.to_string())])) }
                div.buttons {
                    a.button.secondary href="/kaigo/first/email" { (t.k_first_email_again) }
                    button type="submit" { (t.k_register) }
                }
            }
            (first_logout(f))
        },
    )
}

/// A right temporary password past its expiry.
pub fn temporary_expired(f: &Frame<'_>) -> Markup {
    let t = f.t();
    screen(
        f,
        t.k_temporary_expired_title,
        None,
        html! {
            (errors(&[Problem::form(t.k_temporary_expired)]))
            p { (t.k_temporary_expired_1) }
            p { (t.k_temporary_expired_2) }
            div.buttons {
                a.button.secondary href="/kaigo/login" { (t.k_back_to_login) }
                a.button href="/kaigo/recovery/postal" { (t.k_postal_apply_again) }
            }
        },
    )
}

/// The JIS X 0401 name of a prefecture code ("13" → 東京都), in the
/// catalogue's language.
pub fn prefecture_name(t: &Texts, code: &str) -> &'static str {
    code.parse::<usize>()
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|i| t.k_prefectures.split(',').nth(i))
        .filter(|_| code.len() == 2)
        .unwrap_or(t.k_prefecture_unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefecture_names() {
        let t = Lang::Ja.texts();
        assert_eq!(prefecture_name(t, "01"), "北海道");
        assert_eq!(prefecture_name(t, "13"), "東京都");
        assert_eq!(prefecture_name(t, "47"), "沖縄県");
        assert_eq!(prefecture_name(t, "00"), "(不明)");
        assert_eq!(prefecture_name(t, "48"), "(不明)");
        for lang in Lang::ALL {
            assert_eq!(lang.texts().k_prefectures.split(',').count(), 47);
        }
        assert_eq!(prefecture_name(Lang::En.texts(), "13"), "Tokyo");
    }

    #[test]
    fn step_bar_marks_the_current_step() {
        let bar = step_bar(Lang::Ja.texts(), 3).into_string();
        assert_eq!(bar.matches("class=\"current\"").count(), 1);
        assert!(bar.contains("<li class=\"current\" aria-current=\"step\"><span class=\"no\">3</span>ワンタイムパスワード入力"));
    }
}
