//! The kaigo site, driven as office staff would drive it.

use crate::support::kaigo::{
    login, reset, start_recovery, OSAKA_MAIL, OSAKA_OFFICE, TOKYO_MAIL, TOKYO_OFFICE,
};
use crate::support::{comparable, spawn, spawn_with, Page, TestServer};
use mail_parser::MessageParser;

fn current_step(page: &Page) -> &str {
    let at = page.body.find("<li class=\"current\"").expect("a step bar");
    let rest = &page.body[at..];
    let no = rest.find("<span class=\"no\">").unwrap() + "<span class=\"no\">".len();
    &rest[no..no + 1]
}

#[test]
fn single_prefecture_office_recovers_and_its_security_code_is_cleared() {
    let server = spawn();

    // Before: the password works and login asks for the security code.
    let mut before = server.client();
    let page = login(&mut before, "KJ272711111111", "kaigoDemo27");
    assert_eq!(page.title(), "セキュリティコード入力");

    let mut c = server.client();
    let otp_page = start_recovery(&mut c, OSAKA_OFFICE, OSAKA_MAIL);
    // One billing prefecture: step 3 (prefecture) is skipped.
    assert_eq!(otp_page.title(), "ワンタイムパスワード入力");
    assert_eq!(current_step(&otp_page), "3");
    assert!(otp_page.has("ユーザの本人確認を行うため、ワンタイムパスワードを <strong class=\"sent-to\">office-osaka@example.jp</strong> 宛に送信しました。"));
    assert!(otp_page.has("ワンタイムパスワードの有効期間は30分です。"));
    assert!(otp_page.has("時刻 "));

    let mails = server.wait_for_mails(1);
    let mail = &mails[0];
    assert_eq!(mail.to, OSAKA_MAIL);
    assert_eq!(mail.subject, "ワンタイムパスワード発行通知 (介護保険)");
    let code = mail.otp();
    assert_eq!(code.len(), 6);
    assert!(mail
        .body
        .contains("ワンタイムパスワードの有効期間は 30 分です。"));
    assert!(mail
        .body
        .contains("[問い合わせ先]\nヘルプデスク: 0570-059-402"));
    // The message as it would travel: a MIME parser decodes it back.
    let parsed = MessageParser::default()
        .parse(mail.mime.as_bytes())
        .unwrap();
    assert_eq!(
        parsed.subject(),
        Some("ワンタイムパスワード発行通知 (介護保険)")
    );
    assert!(parsed.body_text(0).unwrap().contains(&code));

    let reset_page = c.submit("/kaigo/recovery/otp", &[("otp", &code)]);
    assert_eq!(reset_page.title(), "ログイン情報再設定");
    assert_eq!(current_step(&reset_page), "4");
    assert!(reset_page.has("<td class=\"user-id\">KJ272711111111</td>"));
    assert!(reset_page.has("(解除されます)"));
    assert!(reset_page.has("ユーザIDと同じパスワードは入力できません。"));

    let done = reset(&mut c, "osakaNew2026");
    assert_eq!(done.title(), "処理終了");
    assert_eq!(current_step(&done), "5");
    assert!(done.has("ログイン情報の再設定が完了しました。"));
    assert!(done.has("「セキュリティコード設定」から再度設定してください。"));

    // The old password is refused; the new one logs in without a code.
    let refused = login(&mut server.client(), "KJ272711111111", "kaigoDemo27");
    assert_eq!(refused.title(), "ログイン");
    assert!(refused.has("ユーザIDまたはパスワードが正しくありません。"));
    let menu = login(&mut server.client(), "KJ272711111111", "osakaNew2026");
    assert_eq!(menu.title(), "メニュー");
    assert!(menu.has("セキュリティコード設定</a> (未設定)"));

    // The half-done login from before the change is dead.
    let stale = before.submit("/kaigo/login/code", &[("security_code", "2468")]);
    assert_eq!(stale.title(), "ログイン");

    // The owner is told of the change.
    let mails = server.wait_for_mails(2);
    assert_eq!(mails[0].subject, "ログイン情報再設定完了通知 (介護保険)");
    assert_eq!(mails[0].to, OSAKA_MAIL);
    assert!(!mails[0].body.contains("osakaNew2026"));
}

#[test]
fn two_prefecture_office_chooses_and_only_the_chosen_account_changes() {
    let server = spawn();
    let mut c = server.client();
    let pref = start_recovery(&mut c, TOKYO_OFFICE, TOKYO_MAIL);
    assert_eq!(pref.title(), "請求先都道府県選択");
    assert_eq!(current_step(&pref), "2");
    assert!(pref.has("請求先都道府県を選択し、【次へ】ボタンを押してください。"));
    assert!(pref.has("<option value=\"13\">東京都</option>"));
    assert!(pref.has("<option value=\"14\">神奈川県</option>"));
    // Nothing is sent before the prefecture is chosen.
    assert!(server.mails().is_empty());

    let otp = c.submit("/kaigo/recovery/prefecture", &[("prefecture", "14")]);
    assert_eq!(otp.title(), "ワンタイムパスワード入力");
    let code = server.wait_for_mails(1)[0].otp();
    let reset_page = c.submit("/kaigo/recovery/otp", &[("otp", &code)]);
    assert!(reset_page.has("<td class=\"user-id\">KJ141311111111</td>"));
    assert_eq!(reset(&mut c, "kanagawa2026X").title(), "処理終了");

    assert_eq!(
        login(&mut server.client(), "KJ141311111111", "kanagawa2026X").title(),
        "メニュー"
    );
    assert_eq!(
        login(&mut server.client(), "KJ141311111111", "kaigoDemo14").title(),
        "ログイン"
    );
    // The Tokyo account of the same office is untouched.
    assert_eq!(
        login(&mut server.client(), "KJ131311111111", "kaigoDemo13").title(),
        "メニュー"
    );
    assert_eq!(
        login(&mut server.client(), "KJ131311111111", "kanagawa2026X").title(),
        "ログイン"
    );
}

#[test]
fn a_non_matching_office_and_address_get_the_same_screen_and_no_mail() {
    let server = spawn();
    let answer = |office: &str, email: &str| {
        let mut c = server.client();
        c.get("/kaigo/recovery");
        c.submit("/kaigo/recovery", &[("method", "mail")]);
        let raw = c.post(
            "/kaigo/recovery/auth",
            &[("office", office), ("email", email)],
        );
        let shown = c.follow(raw.clone());
        (c, raw, shown)
    };
    let (mut matched, match_raw, match_page) = answer(OSAKA_OFFICE, OSAKA_MAIL);
    let wanted = server.wait_for_mails(1);
    let wrong = if wanted[0].otp() == "000000" {
        "111111"
    } else {
        "000000"
    };
    let match_wrong = matched.submit("/kaigo/recovery/otp", &[("otp", wrong)]);
    assert_eq!(wanted.len(), 1);

    let cases = [
        (OSAKA_OFFICE, "someone-else@example.jp"), // wrong address
        ("2811111111", OSAKA_MAIL),                // unknown office
        ("0111111111", OSAKA_MAIL),                // office without an address
    ];
    for (office, email) in cases {
        let (mut c, raw, page) = answer(office, email);
        assert_eq!(
            comparable(&raw, email),
            comparable(&match_raw, OSAKA_MAIL),
            "redirect for {office}/{email}"
        );
        assert_eq!(
            comparable(&page, email),
            comparable(&match_page, OSAKA_MAIL),
            "screen for {office}/{email}"
        );
        assert!(page.has("宛に送信しました"));
        // A wrong entry reads the same, down to the count left.
        let miss_wrong = c.submit("/kaigo/recovery/otp", &[("otp", wrong)]);
        assert_eq!(
            comparable(&miss_wrong, email),
            comparable(&match_wrong, OSAKA_MAIL),
            "wrong-code screen for {office}/{email}"
        );
        // Even the real code of another flow cannot succeed here.
        let tried = c.submit("/kaigo/recovery/otp", &[("otp", &wanted[0].otp())]);
        assert!(tried.has("ワンタイムパスワードが正しくありません。"));
    }
    // Only the matching pair produced a mail, delivered or queued.
    assert_eq!(server.stop_and_count_mail(), 1);
}

#[test]
fn five_wrong_codes_end_the_flow() {
    let server = spawn();
    let mut c = server.client();
    start_recovery(&mut c, OSAKA_OFFICE, OSAKA_MAIL);
    let code = server.wait_for_mails(1)[0].otp();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for left in (1..=4).rev() {
        let page = c.submit("/kaigo/recovery/otp", &[("otp", wrong)]);
        assert!(
            page.has(&format!(
                "ワンタイムパスワードが正しくありません。(あと{left}回入力できます)"
            )),
            "{}",
            page.body
        );
    }
    let fifth = c.submit("/kaigo/recovery/otp", &[("otp", wrong)]);
    assert!(fifth.has("ワンタイムパスワードの入力誤りが上限に達したため"));
    // The right code is now worthless too: the flow must restart.
    let late = c.submit("/kaigo/recovery/otp", &[("otp", &code)]);
    assert!(late.has("最初からやり直してください"));
    assert_ne!(late.title(), "ログイン情報再設定");
    assert!(c
        .get("/kaigo/recovery/reset")
        .has("最初からやり直してください"));
    // A malformed entry is not a guess and costs no attempt. (A minute
    // later: a new code within the send cooldown would not be sent.)
    server.clock.advance(61);
    let mut d = server.client();
    start_recovery(&mut d, OSAKA_OFFICE, OSAKA_MAIL);
    let page = d.submit("/kaigo/recovery/otp", &[("otp", "12a")]);
    assert!(page.has("ワンタイムパスワードは6桁の数字を半角で入力してください。"));
    let page = d.submit("/kaigo/recovery/otp", &[("otp", wrong)]);
    assert!(page.has("(あと4回入力できます)"));
}

#[test]
fn a_code_past_its_lifetime_fails() {
    // The unfinished recovery outlives its code here, so what ends the code
    // is the code's own lifetime, checked on use, with no sweep involved.
    let server = spawn_with(|c| c.kaigo.flow_lifetime_secs = 2 * 3600);
    let mut c = server.client();
    start_recovery(&mut c, OSAKA_OFFICE, OSAKA_MAIL);
    let code = server.wait_for_mails(1)[0].otp();
    server.clock.advance(30 * 60);
    let page = c.submit("/kaigo/recovery/otp", &[("otp", &code)]);
    assert!(
        page.has("ワンタイムパスワードの有効期間が過ぎています。"),
        "{}",
        page.body
    );
    assert_ne!(page.title(), "ログイン情報再設定");
    assert!(c
        .get("/kaigo/recovery/reset")
        .has("最初からやり直してください"));
    assert_eq!(
        login(&mut server.client(), "KJ272711111111", "kaigoDemo27").title(),
        "セキュリティコード入力"
    );

    // Just inside the lifetime the code still works.
    let mut d = server.client();
    start_recovery(&mut d, OSAKA_OFFICE, OSAKA_MAIL);
    let code = server.wait_for_mails(2)[0].otp();
    server.clock.advance(30 * 60 - 5);
    assert_eq!(
        d.submit("/kaigo/recovery/otp", &[("otp", &code)]).title(),
        "ログイン情報再設定"
    );
}

#[test]
fn a_used_code_cannot_be_used_again() {
    let server = spawn();
    let mut c = server.client();
    start_recovery(&mut c, OSAKA_OFFICE, OSAKA_MAIL);
    let code = server.wait_for_mails(1)[0].otp();
    assert_eq!(
        c.submit("/kaigo/recovery/otp", &[("otp", &code)]).title(),
        "ログイン情報再設定"
    );
    // Entering it a second time, before the reset …
    let again = c.submit("/kaigo/recovery/otp", &[("otp", &code)]);
    assert!(again.has("このワンタイムパスワードは既に使用されています。"));
    reset(&mut c, "osakaNew2026");
    // … after it …
    let after = c.submit("/kaigo/recovery/otp", &[("otp", &code)]);
    assert!(after.has("ログイン情報の再設定は完了しています。"));
    assert!(c
        .get("/kaigo/recovery/reset")
        .has("ログイン情報の再設定は完了しています。"));
    // … or in a new recovery: that one has its own code.
    let mut d = server.client();
    server.clock.advance(61);
    start_recovery(&mut d, OSAKA_OFFICE, OSAKA_MAIL);
    // Mails so far: the first code, the change notice, the new code.
    let fresh = server.wait_for_mails(3)[0].otp();
    assert_ne!(
        fresh, code,
        "a new draw equals the old one once in a million runs"
    );
    let page = d.submit("/kaigo/recovery/otp", &[("otp", &code)]);
    assert!(page.has("ワンタイムパスワードが正しくありません。"));
}

#[test]
fn each_policy_rule_is_refused_with_its_own_message() {
    let server = spawn();
    let mut c = server.client();
    start_recovery(&mut c, OSAKA_OFFICE, OSAKA_MAIL);
    let code = server.wait_for_mails(1)[0].otp();
    c.submit("/kaigo/recovery/otp", &[("otp", &code)]);

    let messages = [
        "パスワードは8文字～16文字で入力してください。",
        "パスワードに使用できない文字が含まれています。",
        "パスワードには英字を少なくとも1文字含めてください。",
        "パスワードには数字を少なくとも1文字含めてください。",
        "ユーザIDと同じパスワードは入力できません。</a></li>",
        "新しいパスワードと新しいパスワード(確認用)が一致しません。",
    ];
    let cases: [(&str, &str, usize); 7] = [
        ("abc123", "abc123", 0),                       // too short
        ("abcdefghij1234567", "abcdefghij1234567", 0), // too long
        ("osaka 2026x", "osaka 2026x", 1),             // space is not allowed
        ("12345678", "12345678", 2),                   // no letter
        ("osakaosaka", "osakaosaka", 3),               // no digit
        ("KJ272711111111", "KJ272711111111", 4),       // the user ID
        ("osakaNew2026", "osakaNew2027", 5),           // confirmation differs
    ];
    for (password, confirmation, expected) in cases {
        let page = c.submit(
            "/kaigo/recovery/reset",
            &[("password", password), ("password_confirm", confirmation)],
        );
        assert_eq!(page.title(), "ログイン情報再設定", "{password}");
        for (i, m) in messages.iter().enumerate() {
            assert_eq!(page.has(m), i == expected, "{password}: message {m}");
        }
    }
    // Nothing changed; then a good password goes through.
    assert_eq!(
        login(&mut server.client(), "KJ272711111111", "kaigoDemo27").title(),
        "セキュリティコード入力"
    );
    assert_eq!(reset(&mut c, "osakaNew2026").title(), "処理終了");
}

#[test]
fn a_postal_request_is_stored_for_the_operator() {
    let server = spawn();
    let mut c = server.client();
    c.get("/kaigo/recovery");
    let form = c.submit("/kaigo/recovery", &[("method", "postal")]);
    assert_eq!(form.title(), "書類郵送申請");
    for label in [
        "事業所番号",
        "請求先都道府県",
        "事業所名",
        "担当者名",
        "電話番号",
    ] {
        assert!(form.has(&format!(">{label}</label>")), "{label}");
    }
    // The step bar says where the user is.
    assert!(form.has(
        "<li class=\"current\" aria-current=\"step\"><span class=\"no\">2</span>書類郵送申請</li>"
    ));
    // Each field says what is wrong with it, and what was typed stays.
    let bad = c.submit(
        "/kaigo/recovery/postal",
        &[
            ("office", "12"),
            ("prefecture", ""),
            ("office_name", ""),
            ("contact", &"山".repeat(51)),
            ("phone", "abc"),
        ],
    );
    assert!(bad.has("事業所番号は半角数字10桁で入力してください。"));
    assert!(bad.has("請求先都道府県を選択してください。"));
    assert!(bad.has("事業所名を入力してください。"));
    assert!(bad.has("担当者名は50文字以内で入力してください。"));
    assert!(bad.has("電話番号は半角数字"));
    assert!(bad.has("value=\"abc\""));
    let done = c.submit(
        "/kaigo/recovery/postal",
        &[
            ("office", "０１１１１１１１１１"),
            ("prefecture", "01"),
            ("office_name", "さくら介護サービス"),
            ("contact", "山田 花子"),
            ("phone", "011-123-4567"),
        ],
    );
    assert_eq!(done.title(), "書類郵送申請受付");
    assert!(done.has(
        "<li class=\"current\" aria-current=\"step\"><span class=\"no\">3</span>申請受付</li>"
    ));
    assert!(done.has("※ 書類が届くまで、通常は数日から一週間程度かかります。"));
    assert!(done.has("※ 申請が集中した場合、数週間お待ちいただく場合があります。"));

    // On disk, after the server is gone.
    let dir = server.stop();
    let store = crate::support::open_store(&dir);
    let requests = store.postal_requests().unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].office, "0111111111");
    assert_eq!(requests[0].prefecture, "01");
    assert_eq!(requests[0].office_name, "さくら介護サービス");
    assert_eq!(requests[0].contact, "山田 花子");
    assert_eq!(requests[0].phone, "011-123-4567");
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_password_change_ends_every_session_of_the_account() {
    let server = spawn();
    let mut logged_in = server.client();
    assert_eq!(
        login(&mut logged_in, "KJ131311111111", "kaigoDemo13").title(),
        "メニュー"
    );
    assert_eq!(logged_in.get("/kaigo/menu").title(), "メニュー");

    let mut c = server.client();
    start_recovery(&mut c, TOKYO_OFFICE, TOKYO_MAIL);
    c.submit("/kaigo/recovery/prefecture", &[("prefecture", "13")]);
    let code = server.wait_for_mails(1)[0].otp();
    c.submit("/kaigo/recovery/otp", &[("otp", &code)]);
    assert_eq!(reset(&mut c, "tokyoNew2026").title(), "処理終了");

    let after = logged_in.get("/kaigo/menu");
    assert_eq!(after.status, 303);
    assert_eq!(after.location(), "/kaigo/login");
}

#[test]
fn the_security_code_can_be_set_asked_for_and_cleared() {
    let server = spawn();
    let mut c = server.client();
    login(&mut c, "KJ131311111111", "kaigoDemo13");
    let settings = c.get("/kaigo/security-code");
    assert_eq!(settings.title(), "セキュリティコード設定");
    let refused = c.submit(
        "/kaigo/security-code",
        &[
            ("password", "wrong"),
            ("code", "7777"),
            ("code_confirm", "7777"),
            ("action", "set"),
        ],
    );
    assert!(refused.has("現在のパスワードが正しくありません。"));
    let menu = c.submit(
        "/kaigo/security-code",
        &[
            ("password", "kaigoDemo13"),
            ("code", "7777"),
            ("code_confirm", "7777"),
            ("action", "set"),
        ],
    );
    assert!(menu.has("セキュリティコードを設定しました。"));
    c.submit("/kaigo/logout", &[]);
    assert_eq!(c.get("/kaigo/menu").status, 303);

    let mut d = server.client();
    assert_eq!(
        login(&mut d, "KJ131311111111", "kaigoDemo13").title(),
        "セキュリティコード入力"
    );
    let wrong = d.submit("/kaigo/login/code", &[("security_code", "1234")]);
    assert!(wrong.has("セキュリティコードが正しくありません。"));
    assert_eq!(
        d.submit("/kaigo/login/code", &[("security_code", "7777")])
            .title(),
        "メニュー"
    );
    let cleared = d.submit(
        "/kaigo/security-code",
        &[("password", "kaigoDemo13"), ("action", "clear")],
    );
    assert!(cleared.has("セキュリティコードを解除しました。"));
    assert_eq!(
        login(&mut server.client(), "KJ131311111111", "kaigoDemo13").title(),
        "メニュー"
    );
}

#[test]
fn every_kaigo_screen_shows_the_clock() {
    let server: TestServer = spawn();
    let mut c = server.client();
    for path in [
        "/kaigo",
        "/kaigo/login",
        "/kaigo/recovery",
        "/kaigo/recovery/auth",
        "/kaigo/recovery/postal",
    ] {
        let page = c.get(path);
        assert_eq!(page.status, 200, "{path}");
        let at = page
            .body
            .find("時刻 ")
            .unwrap_or_else(|| panic!("no clock on {path}"))
            + "時刻 ".len();
        let clock = &page.body[at..at + 8];
        assert!(
            clock.as_bytes()[2] == b':' && clock.as_bytes()[5] == b':',
            "{path}: {clock}"
        );
    }
}

#[test]
fn a_cookie_planted_before_the_code_cannot_set_the_password() {
    let server = spawn();
    // The attacker gets a cookie and its CSRF token, and plants the cookie
    // in the victim's browser.
    let mut attacker = server.client();
    attacker.get("/kaigo/recovery");
    let planted = attacker.cookie("kagi_kaigo").unwrap().to_string();
    let mut victim = server.client();
    victim.plant_cookie("kagi_kaigo", &planted);

    start_recovery(&mut victim, OSAKA_OFFICE, OSAKA_MAIL);
    let code = server.wait_for_mails(1)[0].otp();
    let page = victim.submit("/kaigo/recovery/otp", &[("otp", &code)]);
    assert_eq!(page.title(), "ログイン情報再設定");
    assert_ne!(
        victim.cookie("kagi_kaigo"),
        Some(planted.as_str()),
        "a new cookie at verification"
    );

    let hijack = attacker.submit(
        "/kaigo/recovery/reset",
        &[
            ("password", "stolen2026X"),
            ("password_confirm", "stolen2026X"),
        ],
    );
    assert_ne!(hijack.title(), "処理終了");
    assert_eq!(
        login(&mut server.client(), "KJ272711111111", "stolen2026X").title(),
        "ログイン"
    );
    assert_eq!(reset(&mut victim, "osakaNew2026").title(), "処理終了");
}

/// The manuals' point 3: a ten-digit number whose prefecture part is not
/// 01–47 is told what is wrong with it, not that it lacks digits.
#[test]
fn an_office_number_with_no_prefecture_says_so() {
    let server = spawn();
    let mut c = server.client();
    let page = start_recovery(&mut c, "9911111111", OSAKA_MAIL);
    assert!(
        page.has("事業所番号の先頭2桁は都道府県番号(01～47)です。"),
        "{}",
        page.body
    );
    assert!(!page.has("事業所番号は半角数字10桁で入力してください。"));
    let short = start_recovery(&mut server.client(), "27111", OSAKA_MAIL);
    assert!(short.has("事業所番号は半角数字10桁で入力してください。"));
}

/// The manuals' point 8: the completion mail says the security code was
/// cleared only when there was one.
#[test]
fn the_completion_mail_speaks_of_the_security_code_only_when_one_was_cleared() {
    let server = spawn();
    let mut osaka = server.client();
    start_recovery(&mut osaka, OSAKA_OFFICE, OSAKA_MAIL);
    let code = server.wait_for_mails(1)[0].otp();
    osaka.submit("/kaigo/recovery/otp", &[("otp", &code)]);
    assert_eq!(reset(&mut osaka, "osakaNew2026").title(), "処理終了");
    let notice = server.wait_for_mails(2)[0].clone();
    assert_eq!(notice.to, OSAKA_MAIL);
    assert!(
        notice.body.contains("セキュリティコードは解除されました"),
        "{}",
        notice.body
    );

    let mut tokyo = server.client();
    start_recovery(&mut tokyo, TOKYO_OFFICE, TOKYO_MAIL);
    tokyo.submit("/kaigo/recovery/prefecture", &[("prefecture", "13")]);
    let code = server.wait_for_mails(3)[0].otp();
    tokyo.submit("/kaigo/recovery/otp", &[("otp", &code)]);
    assert_eq!(reset(&mut tokyo, "tokyoNew2026").title(), "処理終了");
    let notice = server.wait_for_mails(4)[0].clone();
    assert_eq!(notice.to, TOKYO_MAIL);
    assert!(
        notice.body.contains("パスワードが変更されました。"),
        "{}",
        notice.body
    );
    assert!(
        !notice.body.contains("セキュリティコード"),
        "{}",
        notice.body
    );
}

/// The manuals' point 4: step 1's bar shows step 1 alone.
#[test]
fn step_one_shows_only_step_one_in_its_bar() {
    let server = spawn();
    let page = server.client().get("/kaigo/recovery");
    assert!(page.has("<li class=\"current\" aria-current=\"step\"><span class=\"no\">1</span>パスワード等を紛失した方</li>"));
    assert!(!page.has("<span class=\"no\">2</span>"), "{}", page.body);
}

/// The manuals' point 2: every rule the reset enforces is on its screen.
#[test]
fn the_reset_screens_show_every_rule_they_enforce() {
    let server = spawn();
    let mut c = server.client();
    start_recovery(&mut c, OSAKA_OFFICE, OSAKA_MAIL);
    let code = server.wait_for_mails(1)[0].otp();
    let form = c.submit("/kaigo/recovery/otp", &[("otp", &code)]);
    assert!(form.has("事業所番号を含むパスワードや、よく使われているパスワードは使用できません。"));
    let office = reset(&mut c, "ab2711111111");
    assert!(
        office.has("事業所番号を含むパスワードは使用できません。"),
        "{}",
        office.body
    );
    let mut p = server.client();
    crate::support::portal::request_link(&mut p, "demo-user", "demo-user@example.jp");
    let (link, _) = server.wait_for_mails(2)[0].link();
    assert!(p
        .get(&link)
        .has("※よく使われているパスワードは使用できません。"));
}

/// The manuals' point 5: a finished recovery opened again says so plainly
/// and leads to the login, with no error box and no step lit.
#[test]
fn a_finished_recovery_opened_again_is_a_plain_page_to_the_login() {
    let server = spawn();
    let mut c = server.client();
    start_recovery(&mut c, OSAKA_OFFICE, OSAKA_MAIL);
    let code = server.wait_for_mails(1)[0].otp();
    c.submit("/kaigo/recovery/otp", &[("otp", &code)]);
    assert_eq!(reset(&mut c, "osakaNew2026").title(), "処理終了");
    let again = c.get("/kaigo/recovery/reset");
    assert!(
        again.has("ログイン情報の再設定は完了しています。"),
        "{}",
        again.body
    );
    assert!(again.has("href=\"/kaigo/login\""));
    assert!(!again.has("class=\"errors\""), "{}", again.body);
    assert!(!again.has("class=\"steps\""), "{}", again.body);
}
