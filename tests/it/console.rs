//! The operators' console at /admin, driven as an operator drives it:
//! enrolment from `kagi operator add`'s link with a TOTP app, logins whose
//! codes work once, each action on an account and its audit entry, the
//! audit view and its CSV, and what a site's session cannot do there.

use crate::support::console::{
    act, demo_operator, link_path, login, open_enrolment, operator_cli, totp, DEMO_OPERATOR,
    DEMO_PASSWORD,
};
use crate::support::kaigo::{self, OSAKA_MAIL, OSAKA_OFFICE, TOKYO_MAIL};
use crate::support::{comparable, open_store, portal, spawn, spawn_with, Client, Page};

const TOKYO_13: &str = "KJ131311111111";
const OSAKA: &str = "KJ272711111111";

/// The rows of the console's audit view filtered by `query`, as
/// (event, account, operator, reason), newest first, read from its CSV.
fn audit_rows(c: &mut Client, query: &str) -> Vec<Vec<String>> {
    let csv = c.get(&format!("/admin/audit.csv?{query}"));
    assert_eq!(csv.status, 200, "{}", csv.body);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    // With a byte-order mark, for spreadsheets.
    let body = csv.body.strip_prefix('\u{feff}').expect("a BOM");
    let mut lines = body.lines();
    assert_eq!(
        lines.next(),
        Some("time,site,event,account,client,outcome,operator,reason,prev_mac,request")
    );
    lines
        .map(|l| l.split(',').map(str::to_string).collect::<Vec<_>>())
        .map(|f| vec![f[2].clone(), f[3].clone(), f[6].clone(), f[7].clone()])
        .collect()
}

/// The events of the audit view filtered by `query`, newest first.
fn audit_events(c: &mut Client, query: &str) -> Vec<String> {
    audit_rows(c, query)
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
}

/// A browser logged in to kaigo as KJ131311111111, at its menu.
fn tokyo_logged_in(server: &crate::support::TestServer) -> Client {
    let mut user = server.client();
    let menu = kaigo::login(&mut user, TOKYO_13, "kaigoDemo13");
    assert_eq!(menu.title(), "メニュー");
    user
}

fn account_page(c: &mut Client, site: &str, id: &str) -> Page {
    let page = c.get(&format!("/admin/account?site={site}&id={id}"));
    assert_eq!(page.status, 200, "{}", page.body);
    page
}

#[test]
fn an_operator_enrols_from_the_command_line_link_and_each_code_opens_one_login() {
    let server = spawn();
    let (code, said) = operator_cli(server.addr, &server.dir, &["add", "alice"]);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("one hour"), "{said}");
    let path = link_path(&said);
    // The same name twice is refused, and says what to do instead.
    let (code, again) = operator_cli(server.addr, &server.dir, &["add", "alice"]);
    assert_eq!(code, Some(1), "{again}");
    assert!(again.contains("kagi operator reset alice"), "{again}");

    let mut c = server.client();
    let (page, secret) = open_enrolment(&mut c, &path);
    assert_eq!(page.title(), "オペレーター登録");
    assert!(page.has("<svg role=\"img\" aria-label=\"認証アプリに読み取らせるQRコード\""));
    assert_eq!(secret.len(), 32, "160 bits in base32: {secret}");
    // Opening it again (a mail scanner, a reload) shows the same secret.
    assert_eq!(open_enrolment(&mut server.client(), &path).1, secret);
    let token = page.hidden("token").unwrap();
    let now = server.clock.now();
    // A short password and a wrong code are both said, and nothing is set.
    let refused = c.submit(
        "/admin/enrol",
        &[
            ("token", &token),
            ("password", "Short1pw"),
            ("password2", "Short1pw"),
            ("code", &totp(&secret, now + 300)),
        ],
    );
    assert!(refused.has("パスワードは12文字～100文字で入力してください。"));
    assert!(refused.has("確認コードが正しくありません。"));
    let done = c.submit(
        "/admin/enrol",
        &[
            ("token", &token),
            ("password", "AliceConsole2026"),
            ("password2", "AliceConsole2026"),
            ("code", &totp(&secret, now)),
        ],
    );
    // Enrolled, and in: the password and a code were just given.
    assert_eq!(done.title(), "アカウント検索");
    assert!(done.has("登録が完了しました。"));
    assert!(done.has("オペレーター: alice"));
    // The link is used up.
    let used = server.client().get(&path);
    assert_eq!(used.status, 404);
    assert!(used.has("登録用リンクが無効です"));

    // The code that enrolled cannot log in: it was used.
    let mut browser = server.client();
    let replayed = login(
        &mut browser,
        "alice",
        "AliceConsole2026",
        &totp(&secret, now),
    );
    assert!(replayed.has("オペレーター名、パスワード、または確認コードが正しくありません。"));
    // The next step's code logs in, once.
    server.clock.advance(30);
    let code = totp(&secret, server.clock.now());
    let home = login(&mut browser, "alice", "AliceConsole2026", &code);
    assert_eq!(home.title(), "アカウント検索");
    assert!(home.has("オペレーター: alice"));
    let cookie = browser.cookie("kagi_admin").unwrap().to_string();
    let replay = login(&mut server.client(), "alice", "AliceConsole2026", &code);
    assert!(replay.has("オペレーター名、パスワード、または確認コードが正しくありません。"));
    assert_eq!(replay.title(), "オペレーターログイン");

    let (code, listed) = operator_cli(server.addr, &server.dir, &["list"]);
    assert_eq!(code, Some(0), "{listed}");
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("alice") && l.ends_with("enrolled")),
        "{listed}"
    );

    // A reset: the session ends at once, the old password and TOTP stop
    // working, and a new link works.
    let (code, said) = operator_cli(server.addr, &server.dir, &["reset", "alice"]);
    assert_eq!(code, Some(0), "{said}");
    let after = browser.get("/admin");
    assert_eq!(after.status, 303);
    assert_eq!(after.location(), "/admin/login");
    server.clock.advance(30);
    let old = login(
        &mut server.client(),
        "alice",
        "AliceConsole2026",
        &totp(&secret, server.clock.now()),
    );
    assert!(old.has("確認コードが正しくありません。"));
    let (_, fresh_secret) = open_enrolment(&mut server.client(), &link_path(&said));
    assert_ne!(fresh_secret, secret);

    // Removed: gone from the list; a removed name cannot log in.
    let (code, said) = operator_cli(server.addr, &server.dir, &["remove", "alice"]);
    assert_eq!(code, Some(0), "{said}");
    let (_, listed) = operator_cli(server.addr, &server.dir, &["list"]);
    assert!(!listed.contains("alice"), "{listed}");
    let (code, said) = operator_cli(server.addr, &server.dir, &["remove", "alice"]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("no operator named alice"), "{said}");
    // A session cookie of before is worth nothing, even once the name is
    // an operator's again.
    let (_, said) = operator_cli(server.addr, &server.dir, &["add", "alice"]);
    let mut again = server.client();
    let (page, secret) = open_enrolment(&mut again, &link_path(&said));
    server.clock.advance(30);
    let back = again.submit(
        "/admin/enrol",
        &[
            ("token", &page.hidden("token").unwrap()),
            ("password", "AliceConsole2027"),
            ("password2", "AliceConsole2027"),
            ("code", &totp(&secret, server.clock.now())),
        ],
    );
    assert!(back.has("オペレーター: alice"));
    let mut stale = server.client();
    stale.plant_cookie("kagi_admin", &cookie);
    assert_eq!(stale.get("/admin").status, 303);
    // Each step is in the audit trail.
    let mut op = demo_operator(&server);
    let events = audit_events(&mut op, "");
    for event in [
        "operator_added",
        "operator_enrolled",
        "operator_login",
        "operator_reset",
        "operator_removed",
    ] {
        assert!(events.iter().any(|e| e == event), "{event} in {events:?}");
    }
}

#[test]
fn failed_operator_logins_wait_like_site_logins_and_a_name_cannot_be_guessed() {
    let server = spawn();
    let secret = server.demo_operator_secret();
    let mut c = server.client();
    for _ in 0..5 {
        let now = server.clock.now();
        let page = login(
            &mut c,
            DEMO_OPERATOR,
            "WrongPassword2026",
            &totp(&secret, now),
        );
        assert_eq!(page.status, 200);
    }
    // Waiting now: even everything right is refused, and it says so.
    server.clock.advance(30);
    let now = server.clock.now();
    let waiting = login(&mut c, DEMO_OPERATOR, DEMO_PASSWORD, &totp(&secret, now));
    assert!(
        waiting.has("ログインの失敗が続いたため"),
        "{}",
        waiting.body
    );
    // An unknown name reads like a wrong password.
    let unknown = login(&mut server.client(), "nobody", DEMO_PASSWORD, "123456");
    assert!(unknown.has("オペレーター名、パスワード、または確認コードが正しくありません。"));
    // After the wait, the right password and a fresh code log in.
    server.clock.advance(120);
    let now = server.clock.now();
    let home = login(&mut c, DEMO_OPERATOR, DEMO_PASSWORD, &totp(&secret, now));
    assert_eq!(home.title(), "アカウント検索");
}

#[test]
fn a_site_session_or_a_stranger_cannot_reach_the_console() {
    let server = spawn();
    let mut user = tokyo_logged_in(&server);
    for path in [
        "/admin",
        "/admin/account?site=kaigo&id=KJ131311111111",
        "/admin/audit.csv",
    ] {
        let page = user.get(path);
        assert_eq!(page.status, 303, "{path}");
        assert_eq!(page.location(), "/admin/login", "{path}");
    }
    // The site's session cookie under the console's name is nothing there.
    let site_cookie = user.cookie("kagi_kaigo").unwrap().to_string();
    user.plant_cookie("kagi_admin", &site_cookie);
    assert_eq!(user.get("/admin").status, 303);
    // An operator's POST without the form's CSRF token does nothing.
    let mut op = demo_operator(&server);
    let forged = op.post_raw(
        "/admin/account/action",
        &[
            ("site", "kaigo"),
            ("id", TOKYO_13),
            ("do", "unlock"),
            ("reason", "x"),
        ],
    );
    assert_eq!(forged.status, 403);
    // The console's cookie is its own, and strict.
    let mut fresh = server.client();
    let page = fresh.get("/admin/login");
    let set = page.header("set-cookie").unwrap();
    assert!(set.starts_with("kagi_admin="), "{set}");
    assert!(
        set.contains("Path=/admin") && set.contains("SameSite=Strict") && set.contains("HttpOnly"),
        "{set}"
    );
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert!(page.header("content-security-policy").is_some());
}

#[test]
fn console_sessions_end_after_fifteen_idle_minutes_and_eight_hours() {
    let server = spawn();
    let mut c = demo_operator(&server);
    server.clock.advance(14 * 60);
    assert_eq!(c.get("/admin").status, 200, "14 idle minutes");
    server.clock.advance(15 * 60 + 1);
    assert_eq!(c.get("/admin").status, 303, "15 idle minutes end it");
    let mut busy = demo_operator(&server);
    for _ in 0..34 {
        server.clock.advance(14 * 60);
        assert_eq!(busy.get("/admin").status, 200);
    }
    server.clock.advance(14 * 60);
    assert_eq!(
        busy.get("/admin").status,
        303,
        "8 hours end it however busy"
    );
}

#[test]
fn the_search_finds_accounts_by_id_office_user_name_and_address_prefix() {
    let server = spawn();
    let mut c = demo_operator(&server);
    let ids = |page: &Page| -> Vec<String> {
        page.body
            .split("/admin/account?site=")
            .skip(1)
            .map(|s| s.split('"').next().unwrap().replace("&amp;", "&"))
            .collect()
    };
    assert_eq!(
        ids(&c.get("/admin?q=kj13")),
        ["kaigo&id=KJ131311111111"],
        "a user ID in lower case"
    );
    assert_eq!(
        ids(&c.get("/admin?q=1311111111")),
        ["kaigo&id=KJ131311111111", "kaigo&id=KJ141311111111"],
        "an office billing two prefectures"
    );
    assert_eq!(ids(&c.get("/admin?q=demo-u")), ["portal&id=demo-user"]);
    assert_eq!(
        ids(&c.get("/admin?q=OFFICE-osaka")),
        ["kaigo&id=KJ272711111111"],
        "an address, in any case"
    );
    let none = c.get("/admin?q=zzz");
    assert!(none.has("該当するアカウントはありません。"));
    // Addresses are masked in the list.
    let listed = c.get("/admin?q=demo-user");
    assert!(listed.has("d***@example.jp"));
    assert!(!listed.has("demo-user@example.jp"));
    // Each search is audited, with what it found; a whole address searched
    // for is kept masked.
    assert!(c.get("/admin?q=office-osaka@example.jp").has(OSAKA));
    let csv = c.get("/admin/audit.csv?event=operator_search").body;
    assert!(
        csv.contains("o***@example.jp (page 1): KJ272711111111"),
        "{csv}"
    );
    assert!(!csv.contains(OSAKA_MAIL), "{csv}");
    assert!(csv.contains("kj13 (page 1): KJ131311111111"), "{csv}");
    assert_eq!(csv.matches("operator_search").count(), 7, "{csv}");
}

#[test]
fn an_account_page_masks_the_address_until_shown_and_showing_is_audited() {
    let server = spawn();
    let mut c = demo_operator(&server);
    let page = account_page(&mut c, "kaigo", OSAKA);
    assert!(page.has("o***@example.jp"));
    assert!(!page.has(OSAKA_MAIL));
    assert!(page.has("デモ訪問介護 なにわ"), "the office's name");
    assert!(
        page.has("大阪府大阪市中央区大手前二丁目1番22号"),
        "its address"
    );
    assert!(page.has("設定あり"), "a security code");
    let shown = c.submit("/admin/account/reveal", &[("site", "kaigo"), ("id", OSAKA)]);
    assert!(shown.has(OSAKA_MAIL));
    let rows = audit_rows(&mut c, "event=operator_reveal_email");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][1], OSAKA);
    assert_eq!(rows[0][2], DEMO_OPERATOR);
}

#[test]
fn unlock_lifts_a_lockout_and_is_audited_with_the_operator_and_the_reason() {
    let server = spawn();
    for _ in 0..5 {
        kaigo::login(&mut server.client(), TOKYO_13, "wrongPassword1");
    }
    let locked = kaigo::login(&mut server.client(), TOKYO_13, "kaigoDemo13");
    assert_eq!(locked.title(), "ログイン", "waiting out the failures");
    let mut c = demo_operator(&server);
    let page = account_page(&mut c, "kaigo", TOKYO_13);
    assert!(page.has("5 回失敗、あと"), "{}", page.body);
    // No reason, no unlock.
    let refused = act(&mut c, "kaigo", TOKYO_13, "unlock", &[("reason", "")]);
    assert!(refused.has("理由を500文字以内で入力してください。"));
    let done = act(
        &mut c,
        "kaigo",
        TOKYO_13,
        "unlock",
        &[("reason", "電話で本人確認済み")],
    );
    assert!(done.has("ロック解除を行いました。"));
    assert!(done.has("0 回失敗"));
    let menu = kaigo::login(&mut server.client(), TOKYO_13, "kaigoDemo13");
    assert_eq!(menu.title(), "メニュー");
    let rows = audit_rows(
        &mut c,
        "site=kaigo&account=KJ131311111111&event=operator_unlock",
    );
    assert_eq!(
        rows,
        [vec![
            "operator_unlock".to_string(),
            TOKYO_13.into(),
            DEMO_OPERATOR.into(),
            "電話で本人確認済み".into()
        ]]
    );
}

#[test]
fn a_disabled_account_logs_in_like_a_wrong_password_until_enabled() {
    let server = spawn();
    let mut user = tokyo_logged_in(&server);
    let mut c = demo_operator(&server);
    let done = act(
        &mut c,
        "kaigo",
        TOKYO_13,
        "disable",
        &[("reason", "退職者のアカウント")],
    );
    assert!(done.has("無効化を行いました。"), "{}", done.body);
    assert!(done.has("<td class=\"pre\">無効</td>"));
    // Its session ended; its right password reads like a wrong one.
    assert_eq!(user.get("/kaigo/menu").status, 303);
    let right = kaigo::login(&mut server.client(), TOKYO_13, "kaigoDemo13");
    let wrong = kaigo::login(&mut server.client(), TOKYO_13, "kaigoDemo99");
    assert_eq!(right.title(), "ログイン");
    assert_eq!(comparable(&right, ""), comparable(&wrong, ""));
    act(&mut c, "kaigo", TOKYO_13, "enable", &[("reason", "復職")]);
    let menu = kaigo::login(&mut server.client(), TOKYO_13, "kaigoDemo13");
    assert_eq!(menu.title(), "メニュー");
    let events = audit_events(&mut c, "site=kaigo&account=KJ131311111111");
    assert!(events.contains(&"operator_disable".into()), "{events:?}");
    assert!(events.contains(&"operator_enable".into()), "{events:?}");
}

#[test]
fn ending_sessions_and_clearing_the_security_code_take_effect_at_once() {
    let server = spawn();
    let mut user = tokyo_logged_in(&server);
    let mut c = demo_operator(&server);
    assert!(account_page(&mut c, "kaigo", TOKYO_13).has("<td class=\"pre\">1 件</td>"));
    let done = act(
        &mut c,
        "kaigo",
        TOKYO_13,
        "end-sessions",
        &[("reason", "端末の紛失")],
    );
    assert!(done.has("セッション終了を行いました。"));
    assert_eq!(user.get("/kaigo/menu").status, 303, "logged out");
    // Osaka's login asks for its security code; cleared, it does not.
    let asks = kaigo::login(&mut server.client(), OSAKA, "kaigoDemo27");
    assert!(asks.has("セキュリティコード"), "{}", asks.title());
    act(
        &mut c,
        "kaigo",
        OSAKA,
        "clear-code",
        &[("reason", "コードを忘れた")],
    );
    let menu = kaigo::login(&mut server.client(), OSAKA, "kaigoDemo27");
    assert_eq!(menu.title(), "メニュー");
    let events = audit_events(&mut c, "operator=demo-operator");
    assert!(
        events.contains(&"operator_end_sessions".into()),
        "{events:?}"
    );
    assert!(
        events.contains(&"operator_clear_security_code".into()),
        "{events:?}"
    );
}

#[test]
fn changing_an_address_tells_the_old_and_the_new_one_and_moves_the_recovery() {
    let server = spawn();
    // A code on its way to the old address, before the change.
    let mut before = server.client();
    kaigo::start_recovery(&mut before, OSAKA_OFFICE, OSAKA_MAIL);
    let old_code = server.wait_for_mails(1)[0].otp();
    let mut c = demo_operator(&server);
    let new = "osaka-new@example.jp";
    let bad = act(
        &mut c,
        "kaigo",
        OSAKA,
        "change-email",
        &[("reason", "届出"), ("email", "not an address")],
    );
    assert!(bad.has("新しいメールアドレスを正しく入力してください。"));
    let done = act(
        &mut c,
        "kaigo",
        OSAKA,
        "change-email",
        &[("reason", "届出"), ("email", new)],
    );
    assert!(
        done.has("メールアドレス変更を行いました。"),
        "{}",
        done.body
    );
    let mails = server.wait_for_mails(3);
    let mut to: Vec<&str> = mails[..2].iter().map(|m| m.to.as_str()).collect();
    to.sort();
    assert_eq!(to, [OSAKA_MAIL, new]);
    assert!(mails[..2]
        .iter()
        .all(|m| m.subject.contains("メールアドレス変更のお知らせ")));
    assert!(
        mails[0].body.contains("ワンタイムパスワード"),
        "kaigo's words"
    );
    // The code mailed to the old address no longer opens anything.
    let dead = before.submit("/kaigo/recovery/otp", &[("otp", &old_code)]);
    assert_ne!(dead.title(), "ログイン情報再設定", "{}", dead.body);
    // The search finds the new address, not the old one.
    assert!(c.get("/admin?q=osaka-new").has(OSAKA));
    assert!(!c.get("/admin?q=office-osaka").has(OSAKA));
    // A recovery with the old address now sends nothing; the new one works.
    server.clock.advance(3600);
    let mut old = server.client();
    kaigo::start_recovery(&mut old, OSAKA_OFFICE, OSAKA_MAIL);
    let mut fresh = server.client();
    kaigo::start_recovery(&mut fresh, OSAKA_OFFICE, new);
    let mails = server.wait_for_mails(4);
    assert_eq!(mails.len(), 4);
    assert_eq!(mails[0].to, new, "the newest: the code, to the new address");
    // An hour on, the console asks for a new login.
    let mut c = demo_operator(&server);
    let rows = audit_rows(&mut c, "event=operator_change_email");
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0][1..],
        [OSAKA.to_string(), DEMO_OPERATOR.into(), "届出".into()]
    );
}

#[test]
fn an_operator_sends_the_portal_reset_link_to_the_registered_address() {
    let server = spawn();
    let mut c = demo_operator(&server);
    let page = account_page(&mut c, "portal", "demo-user");
    assert!(page.has("do=send-reset"));
    // A provisional account has no reachable address: not offered.
    assert!(!account_page(&mut c, "portal", "kari-user").has("do=send-reset"));
    let done = act(
        &mut c,
        "portal",
        "demo-user",
        "send-reset",
        &[("reason", "電話で依頼")],
    );
    assert!(done.has("パスワード再設定リンク送信を行いました。"));
    let mail = &server.wait_for_mails(1)[0];
    assert_eq!(mail.to, "demo-user@example.jp");
    let (link, _) = mail.link();
    let mut user = server.client();
    let form = user.get(&link);
    assert_eq!(form.title(), "パスワードのリセット");
    let rows = audit_rows(
        &mut c,
        "site=portal&account=demo-user&event=operator_send_reset_link",
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0][2..],
        [DEMO_OPERATOR.to_string(), "電話で依頼".into()]
    );
    // The account's page counts the link sent.
    assert!(account_page(&mut c, "portal", "demo-user").has("<td class=\"pre\">1 件</td>"));
    let done = portal::set_password(&mut user, &link, "Operator2026Sent");
    assert_eq!(done.title(), "Password Resetに成功");
    assert_eq!(
        portal::login(&mut server.client(), "demo-user", "Operator2026Sent").status,
        200
    );
}

#[test]
fn an_account_made_at_the_console_has_no_password_until_one_is_set() {
    let server = spawn();
    let mut c = demo_operator(&server);
    c.get("/admin/accounts/new");
    let fields = [
        ("site", "kaigo"),
        ("office", "3311111111"),
        ("prefecture", "33"),
        ("office_name", "デモ介護 岡山"),
        ("postal_address", "岡山県岡山市北区内山下二丁目4番6号"),
        ("email", "okayama@example.jp"),
        ("reason", "新規開設の届出"),
    ];
    let wrong = c.submit(
        "/admin/accounts/new",
        &[
            ("site", "kaigo"),
            ("office", "33"),
            ("prefecture", "33"),
            ("reason", "x"),
        ],
    );
    assert!(wrong.has("事業所番号は半角数字10桁で入力してください。"));
    let made = c.submit("/admin/accounts/new", &fields);
    assert_eq!(made.title(), "アカウント KJ333311111111", "{}", made.body);
    assert!(made.has("未設定"));
    assert!(made.has("デモ介護 岡山"));
    let twice = c.submit("/admin/accounts/new", &fields);
    assert!(twice.has("KJ333311111111 はすでに存在します。"));
    // No password logs in, not even an empty one.
    for password in ["", "anything1"] {
        let page = kaigo::login(&mut server.client(), "KJ333311111111", password);
        assert_eq!(page.title(), "ログイン");
    }
    // The recovery by mail reaches it and sets the first password.
    let mut user = server.client();
    kaigo::start_recovery(&mut user, "3311111111", "okayama@example.jp");
    let code = server.wait_for_mails(1)[0].otp();
    user.submit("/kaigo/recovery/otp", &[("otp", &code)]);
    assert_eq!(
        kaigo::reset(&mut user, "okayamaNew2026").title(),
        "処理終了"
    );
    let menu = kaigo::login(&mut server.client(), "KJ333311111111", "okayamaNew2026");
    assert_eq!(menu.title(), "メニュー");
    let rows = audit_rows(&mut c, "event=operator_create_account");
    assert_eq!(rows[0][1], "KJ333311111111");
    assert_eq!(rows[0][3], "新規開設の届出");
    // A portal account, a coordinator.
    c.get("/admin/accounts/new");
    let portal = c.submit(
        "/admin/accounts/new",
        &[
            ("site", "portal"),
            ("user", "new-user"),
            ("email", "new-user@example.jp"),
            ("coordinator", "1"),
            ("reason", "申請"),
        ],
    );
    assert!(portal.has("取りまとめ者"), "{}", portal.body);
}

#[test]
fn deleting_asks_for_the_operators_password_and_a_fresh_code() {
    let server = spawn();
    let mut c = demo_operator(&server);
    // A reset link of the account that is about to go.
    act(
        &mut c,
        "portal",
        "demo-user",
        "send-reset",
        &[("reason", "依頼")],
    );
    let (link, _) = server.wait_for_mails(1)[0].link();
    let wrong = act(
        &mut c,
        "portal",
        "demo-user",
        "delete",
        &[("reason", "重複"), ("password", "NotMyPassword2026")],
    );
    assert!(wrong.has("パスワードまたは確認コードが正しくありません。"));
    // Six minutes on, the code is asked again.
    server.clock.advance(6 * 60);
    let confirm = c.get("/admin/account/action?site=portal&id=demo-user&do=delete");
    assert!(confirm.has("name=\"code\""), "a TOTP field");
    let stale = act(
        &mut c,
        "portal",
        "demo-user",
        "delete",
        &[
            ("reason", "重複"),
            ("password", DEMO_PASSWORD),
            ("code", "000000"),
        ],
    );
    assert!(stale.has("パスワードまたは確認コードが正しくありません。"));
    let code = totp(&server.demo_operator_secret(), server.clock.now());
    let done = act(
        &mut c,
        "portal",
        "demo-user",
        "delete",
        &[
            ("reason", "重複"),
            ("password", DEMO_PASSWORD),
            ("code", &code),
        ],
    );
    assert!(done.has("アカウントを削除しました。"), "{}", done.body);
    assert_eq!(c.get("/admin/account?site=portal&id=demo-user").status, 404);
    assert!(c
        .get("/admin?q=demo-user")
        .has("該当するアカウントはありません。"));
    // Made again under the same name, it is a new account: the link of
    // the old one sets nothing.
    c.get("/admin/accounts/new");
    c.submit(
        "/admin/accounts/new",
        &[
            ("site", "portal"),
            ("user", "demo-user"),
            ("email", "demo-user@example.jp"),
            ("reason", "再登録"),
        ],
    );
    let stale = server.client().get(&link);
    assert_eq!(stale.status, 404, "{}", stale.body);
    // Within five minutes of that code, nothing is asked again.
    let confirm = c.get("/admin/account/action?site=portal&id=T0000001&do=disable");
    assert!(!confirm.has("name=\"code\""));
    let rows = audit_rows(&mut c, "event=operator_delete");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][3], "重複");
}

#[test]
fn the_audit_view_filters_by_event_operator_and_time_and_downloads_that_view() {
    let server = spawn();
    kaigo::login(&mut server.client(), TOKYO_13, "wrongPassword1");
    let mut c = demo_operator(&server);
    act(&mut c, "kaigo", TOKYO_13, "unlock", &[("reason", "一回目")]);
    server.clock.advance(3 * 86_400);
    let mut c = demo_operator(&server);
    act(&mut c, "kaigo", TOKYO_13, "unlock", &[("reason", "二回目")]);
    let page = c.get("/admin/audit?event=operator_unlock");
    assert!(page.has("改ざん検査: 正常"), "the chain check on top");
    assert!(page.has("一回目") && page.has("二回目"));
    // A time range: only the later one.
    let offset = 9 * 3600; // the demo's zone, Japan
    let later = kagi::clock::date_time(server.clock.now() - 86_400 + offset as u64, 0);
    let since = &later[..10];
    let rows = audit_rows(&mut c, &format!("event=operator_unlock&from={since}"));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][3], "二回目");
    // By operator, and by account: the site's failed login has none.
    let by_operator = audit_rows(
        &mut c,
        "operator=demo-operator&site=kaigo&account=KJ131311111111",
    );
    assert!(
        by_operator.iter().all(|r| r[2] == DEMO_OPERATOR),
        "{by_operator:?}"
    );
    assert_eq!(by_operator.len(), 2);
    let all = audit_rows(&mut c, "site=kaigo&account=KJ131311111111");
    assert!(
        all.iter().any(|r| r[0] == "login" && r[2].is_empty()),
        "{all:?}"
    );
    // A date that is not one is said, not guessed.
    let bad = c.get("/admin/audit?from=yesterday");
    assert!(bad.has("を日時として読めません"));
    // Each download is itself audited (the three above; this one is
    // written after it is read).
    assert_eq!(audit_rows(&mut c, "event=operator_audit_export").len(), 3);
}

/// A disabled account's recoveries get exactly the pages of a
/// non-matching claim, and nothing is mailed (the enumeration tests of
/// both sites, with a disabled account among the misses).
#[test]
fn a_disabled_account_recovers_like_one_that_does_not_match() {
    let server = spawn();
    let mut c = demo_operator(&server);
    act(
        &mut c,
        "kaigo",
        TOKYO_13,
        "disable",
        &[("reason", "調査中"), ("code", "")],
    );
    act(
        &mut c,
        "portal",
        "demo-user",
        "disable",
        &[("reason", "調査中")],
    );
    let shown = |office: &str, email: &str| {
        let mut b = server.client();
        kaigo::start_recovery(&mut b, office, email);
        let page = b.submit("/kaigo/recovery/prefecture", &[("prefecture", "13")]);
        comparable(&page, email)
    };
    let disabled = shown("1311111111", TOKYO_MAIL);
    // A miss typed as long as the match: the page shows what was typed.
    let miss = shown("1311111111", "mailforsecurity-999@example.jp");
    assert_eq!(disabled, miss);
    assert!(disabled.2.contains("宛に送信しました"));
    let link = |email: &str| {
        let mut b = server.client();
        comparable(&portal::request_link(&mut b, "demo-user", email), email)
    };
    assert_eq!(link("demo-user@example.jp"), link("demo-usr0@example.jp"));
    // Enabled again, the same recovery mails its code.
    act(
        &mut c,
        "kaigo",
        TOKYO_13,
        "enable",
        &[("reason", "調査終了")],
    );
    server.clock.advance(3600);
    shown("1311111111", TOKYO_MAIL);
    assert_eq!(server.stop_and_count_mail(), 1, "only after enabling");
}

#[test]
fn console_logins_take_the_login_rate_limit_and_odd_names_write_nothing() {
    let server = spawn_with(|c| {
        c.rate_limit.login.burst = 3;
        c.rate_limit.login.refill_secs = 60;
    });
    let mut c = server.client();
    let long = "x".repeat(300);
    for name in ["名前", "a b", long.as_str()] {
        let page = login(&mut c, name, "WrongPassword2026", "123456");
        assert!(page.has("正しくありません"), "{name}: {}", page.title());
    }
    let refused = login(&mut c, "another", "WrongPassword2026", "123456");
    assert_eq!(refused.status, 429);
    assert!(refused.header("retry-after").is_some());
    // No guard record for a name no operator can have.
    let now = server.clock.now();
    let dir = server.stop();
    let store = open_store(&dir);
    for name in ["名前", "a b", long.as_str()] {
        let guard = store
            .login_guard(
                kagi::store::Secret::Password,
                kagi::site::Area::Console,
                name,
                now,
            )
            .unwrap();
        assert_eq!(guard.failures, 0, "{name}");
    }
}

#[test]
fn a_database_the_demo_made_keeps_its_operator_out_when_served() {
    let server = spawn();
    let secret = server.demo_operator_secret();
    let dir = server.stop();
    let mut config = kagi::config::Config {
        listen: "127.0.0.1:0".into(),
        public_url: Some("http://login.example.jp".into()),
        data_dir: Some(dir),
        ..Default::default()
    };
    config.argon2.memory_kib = 256;
    config.argon2.iterations = 1;
    // A lab's serve that captures mail: the /dev/ pages are there…
    config.mail.transport = Some(kagi::config::Transport::Capture);
    let clock = kagi::clock::Clock::system();
    let running = kagi::start(kagi::Options {
        config,
        mode: kagi::Mode::Serve,
        clock: clock.clone(),
    })
    .unwrap();
    let mut c = Client::new(running.addr());
    assert_eq!(c.get("/dev/mail").status, 200);
    // …but not the demo operator's code, and its printed password opens
    // nothing.
    assert_eq!(c.get("/dev/totp.json").status, 404);
    clock.advance(30);
    let page = login(
        &mut c,
        DEMO_OPERATOR,
        DEMO_PASSWORD,
        &totp(&secret, clock.now()),
    );
    assert!(page.has("オペレーター名、パスワード、または確認コードが正しくありません。"));
    running.stop();
}

/// What an action asks again (the password, a code) is one attempt on the
/// operator's confirmation guard: with the right password, wrong codes
/// still count, until the operator waits; a stranger's failed logins do
/// not block an operator at work.
#[test]
fn codes_cannot_be_guessed_behind_the_right_password_and_strangers_cannot_block_confirmations() {
    let server = spawn();
    let mut c = demo_operator(&server);
    let secret = server.demo_operator_secret();
    // A stranger fails five logins under the operator's name…
    for _ in 0..5 {
        login(
            &mut server.client(),
            DEMO_OPERATOR,
            "WrongPassword2026",
            "123456",
        );
    }
    // …and the operator at work still confirms what needs a fresh code.
    server.clock.advance(6 * 60);
    c.get("/admin");
    let code = totp(&secret, server.clock.now());
    let done = act(
        &mut c,
        "kaigo",
        TOKYO_13,
        "end-sessions",
        &[("reason", "点検"), ("code", &code)],
    );
    assert!(done.has("セッション終了を行いました。"), "{}", done.body);
    // Someone with the session and the password guesses codes: five
    // wrong ones and the operator waits, right password or not.
    server.clock.advance(6 * 60);
    c.get("/admin");
    let now = server.clock.now();
    let wrong = if totp(&secret, now) == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..5 {
        let page = act(
            &mut c,
            "portal",
            "kari-user",
            "delete",
            &[
                ("reason", "x"),
                ("password", DEMO_PASSWORD),
                ("code", wrong),
            ],
        );
        assert!(
            page.has("パスワードまたは確認コードが正しくありません。")
                || page.has("お待ちください"),
            "{}",
            page.body
        );
    }
    server.clock.advance(30);
    let right = totp(&secret, server.clock.now());
    let waiting = act(
        &mut c,
        "portal",
        "kari-user",
        "delete",
        &[
            ("reason", "x"),
            ("password", DEMO_PASSWORD),
            ("code", &right),
        ],
    );
    assert!(waiting.has("確認の失敗が続いたため"), "{}", waiting.body);
    assert_eq!(
        c.get("/admin/account?site=portal&id=kari-user").status,
        200,
        "not deleted"
    );
    let lockouts = audit_rows(&mut c, "event=lockout");
    assert!(!lockouts.is_empty());
}

#[test]
fn the_site_filter_reads_past_a_hundred_entries_of_other_sites() {
    let server = spawn();
    kaigo::login(&mut server.client(), TOKYO_13, "wrongPassword1");
    let mut c = demo_operator(&server);
    // 101 searches: 101 entries of the console, none of a site.
    for n in 0..101 {
        c.get(&format!("/admin?q=zz{n}"));
    }
    let page = c.get("/admin/audit?site=kaigo");
    assert!(page.has("KJ131311111111"), "{}", page.body);
}

#[test]
fn the_console_keeps_the_sites_rules_for_office_numbers_and_disabled_accounts() {
    let server = spawn();
    let mut c = demo_operator(&server);
    c.get("/admin/accounts/new");
    // No prefecture is 00: the site could never recover such an office.
    let made = c.submit(
        "/admin/accounts/new",
        &[
            ("site", "kaigo"),
            ("office", "0000000001"),
            ("prefecture", "13"),
            ("reason", "x"),
        ],
    );
    assert!(
        made.has("事業所番号は半角数字10桁で入力してください。"),
        "{}",
        made.body
    );
    // A disabled account is offered no reset link, and one sent before
    // opens nothing.
    act(
        &mut c,
        "portal",
        "demo-user",
        "send-reset",
        &[("reason", "依頼")],
    );
    let (link, _) = server.wait_for_mails(1)[0].link();
    act(
        &mut c,
        "portal",
        "demo-user",
        "disable",
        &[("reason", "調査中")],
    );
    assert!(!account_page(&mut c, "portal", "demo-user").has("do=send-reset"));
    assert_eq!(server.client().get(&link).status, 404);
    // An address searched by its beginning is masked in the trail.
    assert!(c.get("/admin?q=office-osak").has(OSAKA));
    let csv = c.get("/admin/audit.csv?event=operator_search").body;
    assert!(csv.contains("o*** (page 1): KJ272711111111"), "{csv}");
    assert!(!csv.contains("office-osak"), "{csv}");
}
