//! The postal path (書類郵送) end to end: an office asks for a letter, an
//! operator verifies and issues it at the console (or rejects it, or the
//! command line does), and the office's first login with the letter's
//! temporary password sets a new password and a security address.

use crate::support::console::{demo_operator, totp};
use crate::support::kaigo::login;
use crate::support::{comparable, kagi_cli, spawn, spawn_with, Client, Page, TestServer};

/// The demo's office without a security address, and its account.
const SAPPORO: &str = "0111111111";
const SAPPORO_ID: &str = "KJ010111111111";

/// An office's request for the letter, from step 1 as the seed's screens
/// go; the page reached.
fn request_letter(server: &TestServer, office: &str, prefecture: &str, name: &str) -> Page {
    let mut c = server.client();
    c.get("/kaigo/recovery");
    c.submit("/kaigo/recovery", &[("method", "postal")]);
    c.submit(
        "/kaigo/recovery/postal",
        &[
            ("office", office),
            ("prefecture", prefecture),
            ("office_name", name),
            ("contact", "山田 花子"),
            ("phone", "011-123-4567"),
        ],
    )
}

/// The id of the waiting request for `user_id`, from the console's queue.
fn waiting(op: &mut Client, user_id: &str) -> String {
    let queue = op.get("/admin/postal");
    assert_eq!(queue.title(), "書類郵送の申請", "{}", queue.body);
    let at = queue
        .body
        .find(&format!(">{user_id}</a>"))
        .unwrap_or_else(|| panic!("{user_id} waits: {}", queue.body));
    let link = &queue.body[..at];
    link[link.rfind("id=").unwrap() + 3..]
        .split('"')
        .next()
        .unwrap()
        .to_string()
}

/// Issues the letter of request `id` at the console; the letter's page.
fn issue(op: &mut Client, id: &str, fields: &[(&str, &str)]) -> Page {
    let request = op.get(&format!("/admin/postal/request?id={id}"));
    assert_eq!(request.status, 200, "{}", request.body);
    // The form carries what the request said when its page was drawn.
    let version = request.hidden("version").expect("the request's version");
    let mut all = vec![("id", id), ("version", version.as_str())];
    all.extend_from_slice(fields);
    op.submit("/admin/postal/issue", &all)
}

/// The temporary password printed on a letter.
fn temporary_password(letter: &Page) -> String {
    letter
        .body
        .split("<td class=\"password\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_else(|| panic!("a letter: {}", letter.body))
        .to_string()
}

/// The first login's two steps after the temporary password: the new
/// password, then the address confirmed with the mailed code; the menu.
fn first_login(
    server: &TestServer,
    c: &mut Client,
    temporary: &str,
    password: &str,
    email: &str,
) -> Page {
    let page = c.submit(
        "/kaigo/first/password",
        &[("password", password), ("password_confirm", password)],
    );
    assert_eq!(
        page.title(),
        "セキュリティ用メールアドレス登録",
        "{}",
        page.body
    );
    let before = server.mails().len();
    let sent = c.submit(
        "/kaigo/first/email",
        &[("email", email), ("email_confirm", email)],
    );
    assert_eq!(sent.title(), "ワンタイムパスワード入力", "{}", sent.body);
    let mail = &server.wait_for_mails(before + 1)[0];
    assert_eq!(mail.to, email);
    let menu = c.submit("/kaigo/first/code", &[("otp", &mail.otp())]);
    assert_ne!(password, temporary);
    menu
}

#[test]
fn an_office_without_an_address_gets_a_letter_and_its_first_login_sets_password_and_address() {
    let server = spawn();
    let done = request_letter(&server, SAPPORO, "01", "デモ居宅介護支援 さっぽろ");
    assert_eq!(done.title(), "書類郵送申請受付");

    // The operator sees the request beside what the account registered.
    let mut op = demo_operator(&server);
    let id = waiting(&mut op, SAPPORO_ID);
    let request = op.get(&format!("/admin/postal/request?id={id}"));
    assert!(request.has("山田 花子") && request.has("011-123-4567"));
    assert!(
        request.has("北海道札幌市中央区北三条西六丁目"),
        "the registered address"
    );
    let letter = issue(&mut op, &id, &[("reason", "電話で確認済み")]);
    assert_eq!(
        letter.title(),
        "介護電子請求受付システム ログイン情報のお知らせ"
    );
    assert!(letter.has("〒060-8588 北海道札幌市中央区北三条西六丁目"));
    assert!(letter.has("デモ居宅介護支援 さっぽろ 御中"));
    assert!(letter.has(SAPPORO_ID));
    let temporary = temporary_password(&letter);
    assert_eq!(temporary.len(), 12);
    assert!(
        !temporary.contains(['0', 'O', 'o', '1', 'l', 'I']),
        "{temporary}"
    );
    // Issued once: the queue is empty, the request's page gone.
    assert!(op.get("/admin/postal").has("処理を待つ申請はありません。"));
    assert_eq!(
        op.get(&format!("/admin/postal/request?id={id}")).status,
        404
    );
    // The old password is over.
    assert_eq!(
        login(&mut server.client(), SAPPORO_ID, "kaigoDemo01").title(),
        "ログイン"
    );

    // The first login: nothing but the new password is reachable.
    let mut c = server.client();
    let first = login(&mut c, SAPPORO_ID, &temporary);
    assert_eq!(first.title(), "パスワード変更");
    for path in [
        "/kaigo/menu",
        "/kaigo/security-code",
        "/kaigo/first/email",
        "/kaigo/first/code",
    ] {
        let page = c.get(path);
        assert_eq!(page.status, 303, "{path}");
        assert_eq!(page.location(), "/kaigo/first/password", "{path}");
    }
    let same = c.submit(
        "/kaigo/first/password",
        &[("password", &temporary), ("password_confirm", &temporary)],
    );
    assert!(
        same.has("仮パスワードと同じパスワードは使用できません。"),
        "{}",
        same.body
    );
    let weak = c.submit(
        "/kaigo/first/password",
        &[("password", "password"), ("password_confirm", "password")],
    );
    assert_eq!(weak.title(), "パスワード変更");
    // Then the address: typed twice, confirmed by the mailed code.
    c.submit(
        "/kaigo/first/password",
        &[
            ("password", "sapporoNew26"),
            ("password_confirm", "sapporoNew26"),
        ],
    );
    assert_eq!(c.get("/kaigo/menu").location(), "/kaigo/first/email");
    let differ = c.submit(
        "/kaigo/first/email",
        &[
            ("email", "sapporo@example.jp"),
            ("email_confirm", "sapporo@example.com"),
        ],
    );
    assert!(differ.has("一致しません"), "{}", differ.body);
    c.submit(
        "/kaigo/first/email",
        &[
            ("email", "sapporo@example.jp"),
            ("email_confirm", "ｓａｐｐｏｒｏ@example.jp"),
        ],
    );
    let code = server.wait_for_mails(1)[0].otp();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let miss = c.submit("/kaigo/first/code", &[("otp", wrong)]);
    assert!(
        miss.has("ワンタイムパスワードが正しくありません。(あと4回入力できます)"),
        "{}",
        miss.body
    );
    assert_eq!(c.get("/kaigo/menu").location(), "/kaigo/first/code");
    let menu = c.submit("/kaigo/first/code", &[("otp", &code)]);
    assert_eq!(menu.title(), "メニュー");
    assert!(menu.has("新しいパスワードとセキュリティ用メールアドレスを登録しました。"));
    // The registered address is told, and the account logs in as any.
    let notice = &server.wait_for_mails(2)[0];
    assert_eq!(notice.to, "sapporo@example.jp");
    assert_eq!(notice.subject, "ログイン情報再設定完了通知 (介護保険)");
    assert_eq!(
        login(&mut server.client(), SAPPORO_ID, "sapporoNew26").title(),
        "メニュー"
    );
    assert_eq!(
        login(&mut server.client(), SAPPORO_ID, &temporary).title(),
        "ログイン"
    );
    // And it can now recover by mail.
    let account = op.get(&format!("/admin/account?site=kaigo&id={SAPPORO_ID}"));
    assert!(account.has("s***@example.jp"), "{}", account.body);
    let csv = op.get("/admin/audit.csv?event=postal_letter_issued").body;
    assert!(csv.contains(&format!("{SAPPORO_ID},127.0.0.1,letter issued; temporary password set,demo-operator,電話で確認済み")), "{csv}");
}

#[test]
fn a_new_office_gets_its_first_account_by_post() {
    let server = spawn();
    request_letter(&server, "3311111111", "33", "デモ介護 岡山");
    let mut op = demo_operator(&server);
    let id = waiting(&mut op, "KJ333311111111");
    let request = op.get(&format!("/admin/postal/request?id={id}"));
    assert!(request.has("(アカウントなし: 新しい事業所)"));
    // A new office has no address to send the letter to: the operator's.
    let refused = issue(&mut op, &id, &[]);
    assert!(
        refused.has("郵送先の所在地を入力してください"),
        "{}",
        refused.body
    );
    let letter = issue(
        &mut op,
        &id,
        &[(
            "postal_address",
            "〒700-8570 岡山県岡山市北区内山下二丁目4番6号",
        )],
    );
    assert!(letter.has("〒700-8570 岡山県岡山市北区内山下二丁目4番6号"));
    assert!(letter.has("デモ介護 岡山 御中"));
    let temporary = temporary_password(&letter);
    let mut c = server.client();
    assert_eq!(
        login(&mut c, "KJ333311111111", &temporary).title(),
        "パスワード変更"
    );
    let menu = first_login(
        &server,
        &mut c,
        &temporary,
        "okayamaNew26",
        "okayama@example.jp",
    );
    assert_eq!(menu.title(), "メニュー");
    let account = op.get("/admin/account?site=kaigo&id=KJ333311111111");
    assert!(account.has("デモ介護 岡山"));
    let csv = op.get("/admin/audit.csv?event=postal_letter_issued").body;
    assert!(csv.contains("account made for a new office"), "{csv}");
}

#[test]
fn an_expired_temporary_password_says_so_only_to_the_right_one() {
    let server = spawn();
    request_letter(&server, SAPPORO, "01", "デモ居宅介護支援 さっぽろ");
    let mut op = demo_operator(&server);
    let id = waiting(&mut op, SAPPORO_ID);
    let letter = issue(&mut op, &id, &[]);
    let temporary = temporary_password(&letter);
    // The letter names the last day; the password works through all of it,
    // in the office's zone (the demo's is Japan's).
    let last = letter
        .body
        .split("仮パスワードの有効期限</th><td>")
        .nth(1)
        .and_then(|rest| rest.get(..10))
        .expect("the last day on the letter")
        .to_string();
    let end = kagi::clock::parse_date_time(&last, 9 * 3600, true).unwrap();
    assert!(end > server.clock.now() + 29 * 86_400, "{last}");
    // The last minute of the last day (the test's clock goes on with the
    // real one: a second may pass while the login runs), then just after.
    server.clock.advance((end - 60 - server.clock.now()) as i64);
    assert_eq!(
        login(&mut server.client(), SAPPORO_ID, &temporary).title(),
        "パスワード変更"
    );
    server.clock.advance((end + 1 - server.clock.now()) as i64);
    let expired = login(&mut server.client(), SAPPORO_ID, &temporary);
    assert_eq!(expired.title(), "仮パスワードの有効期限切れ");
    assert!(expired.has("href=\"/kaigo/recovery/postal\""));
    // A wrong password reads as any wrong password, expired or not.
    let wrong = login(&mut server.client(), SAPPORO_ID, "Wrong2026abc");
    let unknown = login(&mut server.client(), "KJ999999999999", "Wrong2026abc");
    assert_eq!(wrong.title(), "ログイン");
    assert_eq!(
        comparable(&wrong, SAPPORO_ID),
        comparable(&unknown, "KJ999999999999")
    );
}

#[test]
fn issuing_again_kills_the_first_letter_and_its_sessions() {
    let server = spawn();
    request_letter(&server, SAPPORO, "01", "デモ居宅介護支援 さっぽろ");
    let mut op = demo_operator(&server);
    let id = waiting(&mut op, SAPPORO_ID);
    let first = temporary_password(&issue(&mut op, &id, &[]));
    let mut early = server.client();
    assert_eq!(
        login(&mut early, SAPPORO_ID, &first).title(),
        "パスワード変更"
    );
    // The letter got lost: asked for again, issued again. Replacing a
    // password asks for a fresh code after five minutes.
    server.clock.advance(6 * 60);
    request_letter(&server, SAPPORO, "01", "デモ居宅介護支援 さっぽろ");
    let id = waiting(&mut op, SAPPORO_ID);
    let asked = issue(&mut op, &id, &[]);
    assert!(
        asked.has("確認コードが正しくありません。"),
        "{}",
        asked.body
    );
    let code = totp(&server.demo_operator_secret(), server.clock.now());
    let second = temporary_password(&issue(&mut op, &id, &[("code", &code)]));
    assert_ne!(first, second);
    assert_eq!(
        login(&mut server.client(), SAPPORO_ID, &first).title(),
        "ログイン"
    );
    let stale = early.submit(
        "/kaigo/first/password",
        &[
            ("password", "sapporoNew26"),
            ("password_confirm", "sapporoNew26"),
        ],
    );
    assert_eq!(
        stale.title(),
        "ログイン",
        "the first letter's session is over"
    );
    assert_eq!(
        login(&mut server.client(), SAPPORO_ID, &second).title(),
        "パスワード変更"
    );
}

#[test]
fn a_rejected_request_closes_with_its_reason_and_sends_nothing() {
    let server = spawn();
    request_letter(&server, "2811111111", "28", "確認できない事業所");
    let mut op = demo_operator(&server);
    let id = waiting(&mut op, "KJ282811111111");
    let page = op.get(&format!("/admin/postal/request?id={id}"));
    let version = page.hidden("version").unwrap();
    let no_reason = op.submit(
        "/admin/postal/reject",
        &[("id", &id), ("version", &version), ("reason", "")],
    );
    assert!(no_reason.has("却下の理由を500文字以内で入力してください。"));
    let done = op.submit(
        "/admin/postal/reject",
        &[
            ("id", &id),
            ("version", &version),
            ("reason", "事業所番号を確認できない"),
        ],
    );
    assert!(done.has("申請を却下しました。"));
    assert!(done.has("処理を待つ申請はありません。"));
    let csv = op.get("/admin/audit.csv?event=postal_rejected").body;
    assert!(
        csv.contains("KJ282811111111,127.0.0.1,rejected,demo-operator,事業所番号を確認できない"),
        "{csv}"
    );
    assert_eq!(server.stop_and_count_mail(), 0);
}

#[test]
fn the_request_page_reads_the_same_for_an_office_with_or_without_an_account() {
    // Four requests from one address: past the postal limit's burst of 3.
    let server = spawn_with(|c| c.rate_limit.postal.burst = 10);
    let known = request_letter(&server, SAPPORO, "01", "さくら");
    let unknown = request_letter(&server, "0122222222", "01", "さくら");
    assert_eq!(known.title(), "書類郵送申請受付");
    assert_eq!(comparable(&known, ""), comparable(&unknown, ""));
    // One request waits per office and prefecture, the latest in it.
    request_letter(&server, SAPPORO, "01", "さくら介護");
    request_letter(&server, SAPPORO, "02", "さくら介護");
    let mut op = demo_operator(&server);
    let queue = op.get("/admin/postal");
    assert_eq!(queue.body.matches("/admin/postal/request?id=").count(), 3);
    assert!(queue.has("さくら介護") && queue.has("KJ020111111111"));
    let hokkaido = op.get("/admin/postal?prefecture=01");
    assert_eq!(
        hokkaido.body.matches("/admin/postal/request?id=").count(),
        2
    );
}

#[test]
fn the_command_line_lists_issues_and_rejects() {
    let server = spawn();
    request_letter(&server, SAPPORO, "01", "デモ居宅介護支援 さっぽろ");
    request_letter(&server, "3311111111", "33", "デモ介護 岡山");
    let run = |args: &[&str]| {
        let mut all = vec!["postal"];
        all.extend_from_slice(args);
        let addr = server.addr.to_string();
        all.extend([
            "--data-dir",
            server.dir.to_str().unwrap(),
            "--server",
            &addr,
        ]);
        let out = kagi_cli(&all);
        let said = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), said)
    };
    let (code, listed) = run(&["list"]);
    assert_eq!(code, Some(0), "{listed}");
    let id_of = |user: &str| -> String {
        listed
            .lines()
            .find(|l| l.contains(user))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("{user} in {listed}"))
            .to_string()
    };
    let (sapporo, okayama) = (id_of(SAPPORO_ID), id_of("KJ333311111111"));
    let letter = crate::support::scratch_path("letter").with_extension("html");
    let file = letter.to_str().unwrap();
    let (code, said) = run(&["issue", &okayama, "--letter", file]);
    assert_eq!(code, Some(1), "a new office needs an address: {said}");
    assert!(said.contains("--address"), "{said}");
    let (code, said) = run(&["issue", &sapporo, "--letter", file]);
    assert_eq!(code, Some(0), "{said}");
    let html = std::fs::read_to_string(&letter).unwrap();
    // Opened from disk, it carries its stylesheet: the A4 page.
    assert!(html.contains("<style>") && html.contains("@page"), "{html}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&letter).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let page = crate::support::parse_response(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{html}",
            html.len()
        )
        .as_bytes(),
    );
    let temporary = temporary_password(&page);
    assert_eq!(
        login(&mut server.client(), SAPPORO_ID, &temporary).title(),
        "パスワード変更"
    );
    // A disabled account's letter would not open it: not issued.
    let mut op = demo_operator(&server);
    request_letter(&server, "1311111111", "14", "デモ介護サービス");
    crate::support::console::act(
        &mut op,
        "kaigo",
        "KJ141311111111",
        "disable",
        &[("reason", "x")],
    );
    let (_, listed) = run(&["list"]);
    let kanagawa = listed
        .lines()
        .find(|l| l.contains("KJ141311111111"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    let (code, said) = run(&["issue", &kanagawa, "--letter", file]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("disabled"), "{said}");
    run(&["reject", &kanagawa, "--reason", "無効化中"]);
    let (code, said) = run(&["reject", &okayama, "--reason", "確認できない"]);
    assert_eq!(code, Some(0), "{said}");
    let (_, listed) = run(&["list"]);
    assert!(listed.contains("kagi: 0 waiting"), "{listed}");
    let _ = std::fs::remove_file(letter);
}

#[test]
fn a_first_login_left_before_the_address_asks_for_it_at_the_next_login() {
    let server = spawn();
    request_letter(&server, SAPPORO, "01", "デモ居宅介護支援 さっぽろ");
    let mut op = demo_operator(&server);
    let id = waiting(&mut op, SAPPORO_ID);
    let temporary = temporary_password(&issue(&mut op, &id, &[]));
    let account = op.get(&format!("/admin/account?site=kaigo&id={SAPPORO_ID}"));
    assert!(account.has("仮パスワード(書類郵送、"), "{}", account.body);
    let mut left = server.client();
    login(&mut left, SAPPORO_ID, &temporary);
    left.submit(
        "/kaigo/first/password",
        &[
            ("password", "sapporoNew26"),
            ("password_confirm", "sapporoNew26"),
        ],
    );
    left.submit("/kaigo/logout", &[]);
    let mut c = server.client();
    let again = login(&mut c, SAPPORO_ID, "sapporoNew26");
    assert_eq!(again.title(), "セキュリティ用メールアドレス登録");
    assert_eq!(c.get("/kaigo/menu").location(), "/kaigo/first/email");
    c.submit(
        "/kaigo/first/email",
        &[
            ("email", "sapporo@example.jp"),
            ("email_confirm", "sapporo@example.jp"),
        ],
    );
    let code = server.wait_for_mails(1)[0].otp();
    assert_eq!(
        c.submit("/kaigo/first/code", &[("otp", &code)]).title(),
        "メニュー"
    );
    // Registered: the next login is an ordinary one.
    assert_eq!(
        login(&mut server.client(), SAPPORO_ID, "sapporoNew26").title(),
        "メニュー"
    );
}

#[test]
fn a_request_replaced_after_the_operator_read_it_is_not_acted_on_unread() {
    let server = spawn_with(|c| c.rate_limit.postal.burst = 10);
    request_letter(&server, SAPPORO, "01", "本物の事業所");
    let mut op = demo_operator(&server);
    let id = waiting(&mut op, SAPPORO_ID);
    let read = op.get(&format!("/admin/postal/request?id={id}"));
    let version = read.hidden("version").unwrap();
    // Someone asks again for the same office, with other details.
    request_letter(&server, SAPPORO, "01", "偽の事業所");
    let stale = op.submit("/admin/postal/issue", &[("id", &id), ("version", &version)]);
    assert!(stale.has("申請の内容が更新されました。"), "{}", stale.body);
    assert!(stale.has("偽の事業所"), "the page shows what it says now");
    assert!(op.get("/admin/postal").has("偽の事業所"), "still waiting");
}

#[test]
fn the_first_logins_address_step_mails_one_account_at_most_a_days_codes() {
    let server = spawn_with(|c| c.rate_limit.recovery.burst = 100);
    request_letter(&server, SAPPORO, "01", "デモ居宅介護支援 さっぽろ");
    let mut op = demo_operator(&server);
    let id = waiting(&mut op, SAPPORO_ID);
    let temporary = temporary_password(&issue(&mut op, &id, &[]));
    let mut c = server.client();
    login(&mut c, SAPPORO_ID, &temporary);
    c.submit(
        "/kaigo/first/password",
        &[
            ("password", "sapporoNew26"),
            ("password_confirm", "sapporoNew26"),
        ],
    );
    for n in 0..10 {
        let email = format!("someone{n}@example.org");
        let page = c.submit(
            "/kaigo/first/email",
            &[("email", &email), ("email_confirm", &email)],
        );
        assert_eq!(
            page.title(),
            "ワンタイムパスワード入力",
            "{n}: {}",
            page.body
        );
    }
    let eleventh = c.submit(
        "/kaigo/first/email",
        &[
            ("email", "someone10@example.org"),
            ("email_confirm", "someone10@example.org"),
        ],
    );
    assert!(
        eleventh.has("ワンタイムパスワードを送信できませんでした。"),
        "{}",
        eleventh.body
    );
    assert_eq!(server.wait_for_mails(10).len(), 10);
}
