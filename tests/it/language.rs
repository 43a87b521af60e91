//! The sites in English: chosen by the browser's `Accept-Language` or by
//! the language link on every page, which a cookie remembers. A flow's
//! mails speak the language the flow began in, whatever the browser that
//! finishes it speaks.

use crate::support::kaigo::{OSAKA_MAIL, OSAKA_OFFICE};
use crate::support::{captcha_answer_at, spawn, Client, Mail, Page, TestServer};

/// A browser that prefers English.
fn english(server: &TestServer) -> Client {
    let mut c = server.client();
    c.headers
        .push("Accept-Language: en-GB,en;q=0.9,ja;q=0.5".into());
    c
}

fn is_japanese(c: char) -> bool {
    ('\u{3040}'..='\u{30ff}').contains(&c) || ('\u{4e00}'..='\u{9fff}').contains(&c)
}

/// The page is in English: marked so, and no Japanese on it but the link
/// back to Japanese (itself marked `lang="ja"`).
fn assert_english(page: &Page) {
    assert!(page.has("<html lang=\"en\">"), "{}", page.body);
    let body = page.body.replace("hreflang=\"ja\">日本語</a>", "");
    let stray: String = body.chars().filter(|c| is_japanese(*c)).collect();
    assert!(
        stray.is_empty(),
        "Japanese on an English page: {stray}\n{}",
        page.body
    );
}

fn newest_mail(server: &TestServer, count: usize) -> Mail {
    server.wait_for_mails(count)[0].clone()
}

/// A mail is in English but for what the operator configured (the
/// helpdesk, the contact), which is theirs to word.
fn assert_english_mail(mail: &Mail) {
    let config = kagi::config::Config::default();
    let body = mail
        .body
        .replace(&config.kaigo.helpdesk, "")
        .replace(&config.portal.contact, "");
    assert!(!body.chars().any(is_japanese), "{}", mail.body);
    assert!(!mail.subject.chars().any(is_japanese), "{}", mail.subject);
}

/// The line after `label` in a mail.
fn line_after(mail: &Mail, label: &str) -> String {
    let mut lines = mail.body.lines();
    lines
        .find(|l| *l == label)
        .unwrap_or_else(|| panic!("{label} in {}", mail.body));
    lines.next().unwrap().trim().to_string()
}

#[test]
fn a_kaigo_recovery_in_english_mails_in_english_to_the_end() {
    let server = spawn();
    let mut c = english(&server);
    let login = c.get("/kaigo/login");
    assert_eq!(login.title(), "Log in");
    assert_english(&login);
    assert!(login.has("<a href=\"/kaigo/recovery\">Lost your password"));
    let choice = c.get("/kaigo/recovery");
    assert_eq!(choice.title(), "Lost login information");
    assert_english(&choice);
    let auth = c.submit("/kaigo/recovery", &[("method", "mail")]);
    assert_eq!(auth.title(), "Reset authentication");
    // A mistake is said in English, tied to its field.
    let wrong = c.submit(
        "/kaigo/recovery/auth",
        &[("office", "4811111111"), ("email", OSAKA_MAIL)],
    );
    assert_english(&wrong);
    assert!(wrong.has("The first 2 digits of an office number are a prefecture number"));
    assert!(wrong.has("aria-invalid=\"true\" aria-describedby=\"office-error width-note\""));
    let otp_page = c.submit(
        "/kaigo/recovery/auth",
        &[("office", OSAKA_OFFICE), ("email", OSAKA_MAIL)],
    );
    assert_eq!(otp_page.title(), "One-time password");
    assert_english(&otp_page);
    let mail = newest_mail(&server, 1);
    assert_eq!(mail.subject, "One-time password issued (long-term care)");
    assert_english_mail(&mail);
    let code = line_after(&mail, "[One-time password]");
    let reset = c.submit("/kaigo/recovery/otp", &[("otp", &code)]);
    assert_eq!(reset.title(), "New login information");
    assert_english(&reset);
    assert!(reset.has("A password that contains the office number"));
    // The person switches to Japanese before the last step: the pages
    // follow, the mail keeps the language the recovery began in.
    let link = "/lang?to=ja&back=%2Fkaigo%2Frecovery%2Freset";
    assert!(reset.has(&link.replace('&', "&amp;")), "the language link");
    let back = c.get(link);
    assert_eq!(back.status, 303);
    assert_eq!(back.location(), "/kaigo/recovery/reset");
    let japanese = c.follow(back);
    assert_eq!(japanese.title(), "ログイン情報再設定");
    assert!(japanese.has("<html lang=\"ja\">"));
    let done = c.submit(
        "/kaigo/recovery/reset",
        &[
            ("password", "osakaNew2026"),
            ("password_confirm", "osakaNew2026"),
        ],
    );
    assert_eq!(done.title(), "処理終了");
    let notice = newest_mail(&server, 2);
    assert_eq!(notice.subject, "Login information reset (long-term care)");
    assert!(notice
        .body
        .contains("If you did not do this, open the following URL"));
    assert_english_mail(&notice);
}

#[test]
fn a_portal_reset_chosen_in_english_by_the_link_stays_english_in_another_browser() {
    let server = spawn();
    let mut c = server.client();
    let top = c.get("/portal");
    assert!(top.has("<html lang=\"ja\">"));
    assert!(
        top.has("href=\"/lang?to=en&amp;back=%2Fportal\" lang=\"en\" hreflang=\"en\">English</a>")
    );
    let chosen = c.get("/lang?to=en&back=%2Fportal");
    assert_eq!(chosen.location(), "/portal");
    let cookie = chosen.header("Set-Cookie").unwrap();
    assert!(
        cookie.starts_with("kagi_lang=en; Path=/; Max-Age=31536000; SameSite=Lax"),
        "{cookie}"
    );
    let top = c.follow(chosen);
    assert_english(&top);
    let form = c.get("/portal/reset");
    assert_eq!(form.title(), "Reset your password");
    assert_english(&form);
    let id = form.hidden("captcha_id").unwrap();
    let answer = captcha_answer_at(c.addr(), &id).unwrap();
    let verify = c.submit(
        "/portal/reset",
        &[
            ("captcha_id", &id),
            ("user", "demo-user"),
            ("captcha", &answer),
            ("action", "next"),
        ],
    );
    assert_eq!(verify.title(), "Personal data check - e-mail address");
    assert_english(&verify);
    let sent = c.submit("/portal/reset/verify", &[("email", "demo-user@example.jp")]);
    assert_eq!(sent.title(), "Password change URL sent");
    assert_english(&sent);
    let mail = newest_mail(&server, 1);
    assert_eq!(
        mail.subject,
        "[Portal for Medical Institutions] URL to change your password"
    );
    assert!(
        mail.body.contains("* This URL is valid for 1 hour."),
        "{}",
        mail.body
    );
    // The link opened in a browser that speaks Japanese: its pages are
    // Japanese, the mail after it English.
    let (path, _) = mail.link();
    let mut other = server.client();
    let page = other.get(&path);
    assert_eq!(page.title(), "パスワードのリセット");
    let done = other.submit(
        "/portal/passwordreset",
        &[
            ("token", &page.hidden("token").unwrap()),
            ("password", "NewPortal2026"),
            ("password_confirm", "NewPortal2026"),
        ],
    );
    assert_eq!(done.title(), "Password Resetに成功");
    let notice = newest_mail(&server, 2);
    assert_eq!(
        notice.subject,
        "[Portal for Medical Institutions] Your password was changed"
    );
    assert_english_mail(&notice);
}

#[test]
fn a_registration_in_english_gets_english_mails() {
    let server = spawn();
    let mut c = english(&server);
    let form = c.get("/portal/register");
    assert_eq!(form.title(), "New user registration");
    assert_english(&form);
    let id = form.hidden("captcha_id").unwrap();
    let answer = captcha_answer_at(c.addr(), &id).unwrap();
    let mut fields = vec![
        ("captcha_id", id.as_str()),
        ("captcha", answer.as_str()),
        ("action", "next"),
        ("institution", "1311112222"),
        ("institution_name", "Demo Hospital"),
        ("contact", ""),
        ("email", "smith@example.jp"),
        ("email_confirm", "smith@example.jp"),
        ("user", "smith"),
    ];
    // A field left empty is named in English, and tied to its input.
    let again = c.submit("/portal/register", &fields);
    assert_english(&again);
    assert!(
        again.has(
            "<li id=\"contact-error\"><a href=\"#contact\">Enter the Person in charge.</a></li>"
        ),
        "{}",
        again.body
    );
    let id = again.hidden("captcha_id").unwrap();
    let answer = captcha_answer_at(c.addr(), &id).unwrap();
    fields[0].1 = &id;
    fields[1].1 = &answer;
    fields[5].1 = "John Smith";
    let sent = c.submit("/portal/register", &fields);
    assert_eq!(sent.title(), "Confirmation mail sent");
    let mail = newest_mail(&server, 1);
    assert_eq!(
        mail.subject,
        "[Portal for Medical Institutions] Please confirm your e-mail address"
    );
    let page = c.get(&mail.registration_link());
    assert_eq!(page.title(), "Set a password");
    assert_english(&page);
    let done = c.submit(
        "/portal/register/confirm",
        &[
            ("token", &page.hidden("token").unwrap()),
            ("user", "smith"),
            ("password", "SmithPortal2026"),
            ("password_confirm", "SmithPortal2026"),
        ],
    );
    assert_eq!(done.title(), "Registration complete");
    assert_english(&done);
    let welcome = newest_mail(&server, 2);
    assert_eq!(
        welcome.subject,
        "[Portal for Medical Institutions] Your user registration is complete"
    );
    assert_eq!(line_after(&welcome, "[User name]"), "smith");
    assert_english_mail(&welcome);
}

#[test]
fn the_language_link_goes_back_only_to_this_server_and_error_pages_speak_it() {
    let server = spawn();
    let mut c = server.client();
    for back in [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "",
    ] {
        let encoded: String = url::form_urlencoded::byte_serialize(back.as_bytes()).collect();
        let page = c.get(&format!("/lang?to=en&back={encoded}"));
        assert_eq!(page.status, 303, "{back}");
        assert_eq!(page.location(), "/", "{back}");
    }
    assert_eq!(c.get("/lang?to=xx&back=%2F").status, 404);
    // The cookie set above: the 404 page, and the front page, in English.
    let missing = c.get("/kaigo/nowhere");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.title(), "Page not found");
    assert_english(&missing);
    assert_english(&c.get("/"));
    // The operators' console speaks Japanese only, its error pages too.
    let console = c.get("/admin/nowhere");
    assert_eq!(console.status, 404);
    assert_eq!(console.title(), "ページが見つかりません");
    assert!(console.has("<html lang=\"ja\">"));
    // Japanese stays the default for a browser that asks for neither.
    let mut other = server.client();
    other.headers.push("Accept-Language: fr, de;q=0.8".into());
    assert_eq!(other.get("/kaigo/login").title(), "ログイン");
}
