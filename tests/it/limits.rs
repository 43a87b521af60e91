//! What bounds an attacker: the guess budget of a code, the send cooldown
//! and daily limits, the login lockout, the per-address rate limits, and
//! the one-use guarantee under simultaneous requests.

use crate::support::kaigo::{self, OSAKA_MAIL, OSAKA_OFFICE};
use crate::support::portal;
use crate::support::{spawn_with, Client, Page, TestServer};

const OSAKA_USER: &str = "KJ272711111111";

fn enter_code(c: &mut Client, code: &str) -> Page {
    c.submit("/kaigo/recovery/otp", &[("otp", code)])
}

/// A wrong code that is surely not `right`.
fn wrong(right: &str) -> &'static str {
    if right == "000000" {
        "111111"
    } else {
        "000000"
    }
}

#[test]
fn wrong_codes_count_against_the_code_in_every_flow_and_three_codes_live_at_most() {
    let server = spawn_with(|c| c.guard.send_cooldown_secs = 0);
    // Four recoveries: the fourth code revokes the first.
    let mut flows: Vec<Client> = (0..4).map(|_| server.client()).collect();
    let mut codes = Vec::new();
    for (i, c) in flows.iter_mut().enumerate() {
        kaigo::start_recovery(c, OSAKA_OFFICE, OSAKA_MAIL);
        codes.push(server.wait_for_mails(i + 1)[0].otp());
    }
    let revoked = enter_code(&mut flows[0], &codes[0]);
    assert!(
        revoked.has("ワンタイムパスワードが無効になりました"),
        "{}",
        revoked.body
    );
    let fine = enter_code(&mut flows[1], &codes[1]);
    assert_eq!(fine.title(), "ログイン情報再設定");
    drop(server);

    // Within the cooldown two recoveries wait for the same code, and the
    // wrong entries of both count against it: 3 in one, 2 in the other.
    let server = spawn_with(|_| {});
    let mut a = server.client();
    let mut b = server.client();
    kaigo::start_recovery(&mut a, OSAKA_OFFICE, OSAKA_MAIL);
    kaigo::start_recovery(&mut b, OSAKA_OFFICE, OSAKA_MAIL);
    let code = server.wait_for_mails(1)[0].otp();
    for left in [4, 3, 2] {
        let page = enter_code(&mut a, wrong(&code));
        assert!(page.has(&format!("(あと{left}回入力できます)")));
    }
    assert!(enter_code(&mut b, wrong(&code)).has("(あと1回入力できます)"));
    assert!(
        enter_code(&mut b, wrong(&code)).has("ワンタイムパスワードの入力誤りが上限に達したため")
    );
    // Dead everywhere, right or not.
    assert!(enter_code(&mut a, &code).has("ワンタイムパスワードが無効になりました"));
    assert_eq!(server.mails().len(), 1, "the second recovery sent nothing");
}

#[test]
fn a_claim_that_matches_nothing_follows_the_same_rules() {
    // The shared count above must not tell a real address from a wrong
    // one: the same steps with an address that matches nothing show the
    // same counts.
    let server = spawn_with(|_| {});
    let mut a = server.client();
    let mut b = server.client();
    let nobody = "nobody@example.jp";
    kaigo::start_recovery(&mut a, OSAKA_OFFICE, nobody);
    kaigo::start_recovery(&mut b, OSAKA_OFFICE, nobody);
    for left in [4, 3, 2] {
        assert!(enter_code(&mut a, "000000").has(&format!("(あと{left}回入力できます)")));
    }
    assert!(enter_code(&mut b, "000000").has("(あと1回入力できます)"));
    assert!(enter_code(&mut b, "000000").has("ワンタイムパスワードの入力誤りが上限に達したため"));
    assert!(enter_code(&mut a, "000000").has("ワンタイムパスワードが無効になりました"));
    assert_eq!(server.stop_and_count_mail(), 0);
}

#[test]
fn codes_wait_out_the_cooldown_and_stop_at_ten_a_day() {
    let server = spawn_with(|c| c.rate_limit.recovery.burst = 100);
    let mut first = server.client();
    kaigo::start_recovery(&mut first, OSAKA_OFFICE, OSAKA_MAIL);
    let code = server.wait_for_mails(1)[0].otp();
    // Again within the minute: the same page, no mail, and the code that
    // went out still works in the new flow.
    let mut again = server.client();
    let page = kaigo::start_recovery(&mut again, OSAKA_OFFICE, OSAKA_MAIL);
    assert_eq!(page.title(), "ワンタイムパスワード入力");
    assert_eq!(server.mails_once_sent().len(), 1);
    assert_eq!(enter_code(&mut again, &code).title(), "ログイン情報再設定");
    // A minute apart, nine more go out; the eleventh of the day does not.
    for sent in 2..=10 {
        server.clock.advance(61);
        kaigo::start_recovery(&mut server.client(), OSAKA_OFFICE, OSAKA_MAIL);
        server.wait_for_mails(sent);
    }
    server.clock.advance(61);
    kaigo::start_recovery(&mut server.client(), OSAKA_OFFICE, OSAKA_MAIL);
    assert_eq!(server.mails_once_sent().len(), 10);
    // A day later, codes go out again.
    server.clock.advance(86_400);
    kaigo::start_recovery(&mut server.client(), OSAKA_OFFICE, OSAKA_MAIL);
    server.wait_for_mails(11);
}

#[test]
fn links_wait_out_the_cooldown_and_stop_at_ten_a_day() {
    let server = spawn_with(|c| {
        c.rate_limit.recovery.burst = 100;
        c.rate_limit.captcha.burst = 100;
    });
    let request = |server: &TestServer| {
        let mut c = server.client();
        let page = portal::request_link(&mut c, "demo-user", "demo-user@example.jp");
        assert_eq!(page.title(), "パスワード変更用URLメール送信完了");
    };
    request(&server);
    let (link, _) = server.wait_for_mails(1)[0].link();
    request(&server);
    assert_eq!(
        server.mails_once_sent().len(),
        1,
        "none within the cooldown"
    );
    for sent in 2..=10 {
        server.clock.advance(61);
        request(&server);
        server.wait_for_mails(sent);
    }
    server.clock.advance(61);
    request(&server);
    assert_eq!(server.mails_once_sent().len(), 10);
    // The first link, mailed 10 minutes ago, still sets the password.
    let mut c = server.client();
    let done = portal::set_password(&mut c, &link, "NewPortal2026x");
    assert_eq!(done.title(), "Password Resetに成功");
}

fn kaigo_login(c: &mut Client, password: &str) -> Page {
    kaigo::login(c, OSAKA_USER, password)
}

#[test]
fn failed_logins_lock_the_account_with_doubling_waits_until_a_reset() {
    let server = spawn_with(|c| c.rate_limit.login.burst = 1000);
    let mut c = server.client();
    let failed = kaigo_login(&mut c, "wrong-password1");
    for _ in 0..4 {
        kaigo_login(&mut c, "wrong-password1");
    }
    // Locked: the right password gets the very page of a wrong one.
    let locked = kaigo_login(&mut c, "kaigoDemo27");
    assert_eq!(locked.status, failed.status);
    assert_eq!(locked.title(), failed.title());
    assert!(locked.has("ユーザIDまたはパスワードが正しくありません。"));
    // A minute later it works (and the count starts over).
    server.clock.advance(61);
    let ok = kaigo_login(&mut server.client(), "kaigoDemo27");
    assert_eq!(
        ok.title(),
        "セキュリティコード入力",
        "a right password passes"
    );
    // Five more failures: a minute; one more after it: two minutes.
    for _ in 0..5 {
        kaigo_login(&mut c, "wrong-password1");
    }
    server.clock.advance(61);
    kaigo_login(&mut c, "wrong-password1");
    server.clock.advance(61);
    assert!(kaigo_login(&mut c, "kaigoDemo27").has("ユーザIDまたはパスワードが正しくありません。"));
    server.clock.advance(60);
    assert_eq!(
        kaigo_login(&mut c, "kaigoDemo27").title(),
        "セキュリティコード入力"
    );
    // Locked again, then a recovery: the new password works at once.
    for _ in 0..5 {
        kaigo_login(&mut c, "wrong-password1");
    }
    let mut r = server.client();
    kaigo::start_recovery(&mut r, OSAKA_OFFICE, OSAKA_MAIL);
    let code = server.wait_for_mails(1)[0].otp();
    enter_code(&mut r, &code);
    kaigo::reset(&mut r, "newPass2027x");
    assert_eq!(kaigo_login(&mut c, "newPass2027x").title(), "メニュー");
    // The portal's login is guarded alike.
    let mut p = server.client();
    for _ in 0..5 {
        portal::login(&mut p, "demo-user", "Wrong-password1");
    }
    let page = portal::login(&mut p, "demo-user", "PortalDemo2026");
    assert!(page.has("ユーザー名またはパスワードが正しくありません。"));
}

#[test]
fn each_limited_action_answers_429_with_retry_after_per_client_address() {
    let one = kagi::config::Bucket {
        burst: 1,
        refill_secs: 600,
    };
    let server = spawn_with(|c| {
        c.rate_limit.recovery = one;
        c.rate_limit.otp = one;
        // Drawing the CAPTCHA (the form's GET) takes a token too.
        c.rate_limit.captcha = kagi::config::Bucket {
            burst: 2,
            refill_secs: 600,
        };
        c.rate_limit.login = one;
        c.http.trusted_proxies = vec!["127.0.0.1".into()];
    });
    let client = |hops: &str| {
        let mut c = server.client();
        c.forwarded_for = Some(hops.to_string());
        c
    };
    let twice = |c: &mut Client, path: &str, form: &str, fields: &[(&str, &str)]| {
        c.get(form);
        let first = c.post(path, fields);
        assert_ne!(first.status, 429, "{path}: the first is let through");
        c.get(form);
        c.post(path, fields)
    };
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);
    let cases: [Case; 4] = [
        (
            "/kaigo/login",
            "/kaigo/login",
            &[("user_id", OSAKA_USER), ("password", "x")],
        ),
        (
            "/kaigo/recovery/auth",
            "/kaigo/recovery/auth",
            &[("office", OSAKA_OFFICE), ("email", "a@example.jp")],
        ),
        (
            "/kaigo/recovery/otp",
            "/kaigo/recovery/auth",
            &[("otp", "123456")],
        ),
        (
            "/portal/reset",
            "/portal/reset",
            &[("user", "demo-user"), ("captcha", "xxxxx")],
        ),
    ];
    for (path, form, fields) in cases {
        let mut c = client("198.51.100.7");
        let limited = twice(&mut c, path, form, fields);
        assert_eq!(limited.status, 429, "{path}");
        // 600 s, less the second that may have ticked between the two posts.
        let wait: u64 = limited.header("Retry-After").unwrap().parse().unwrap();
        assert!((598..=600).contains(&wait), "{path}: Retry-After {wait}");
        assert!(limited.has("アクセスが集中しています"));
        assert!(limited.has("約10分後にもう一度お試しください。"));
        assert_eq!(limited.header("X-Frame-Options"), Some("DENY"));
        // The manuals' point 6: under the site's header, leading back to it.
        let site = path.split('/').nth(1).unwrap();
        assert!(
            limited.has(&format!("<a href=\"/{site}\">トップページへ戻る</a>")),
            "{path}"
        );
        let header = if site == "kaigo" {
            "<header class=\"system\">"
        } else {
            "<header class=\"portal\">"
        };
        assert!(limited.has(header), "{path}: {}", limited.body);
    }
    // Another client behind the same proxy is not held up; the hop a
    // client adds itself in front of the proxy's does not count.
    let mut other = client("203.0.113.9, 198.51.100.8");
    other.get("/kaigo/login");
    let page = other.post(
        "/kaigo/login",
        &[("user_id", OSAKA_USER), ("password", "x")],
    );
    assert_eq!(page.status, 200);
    let mut spoofed = client("198.51.100.8, 198.51.100.7");
    spoofed.get("/kaigo/login");
    let page = spoofed.post(
        "/kaigo/login",
        &[("user_id", OSAKA_USER), ("password", "x")],
    );
    assert_eq!(page.status, 429, "the last untrusted hop is the client");
    // Ten minutes later the bucket has a token again.
    server.clock.advance(600);
    let mut back = client("198.51.100.7");
    back.get("/kaigo/login");
    assert_eq!(
        back.post(
            "/kaigo/login",
            &[("user_id", OSAKA_USER), ("password", "x")]
        )
        .status,
        200
    );
}

#[test]
fn without_trusted_proxies_forwarded_for_is_ignored() {
    let server = spawn_with(|c| {
        c.rate_limit.login = kagi::config::Bucket {
            burst: 1,
            refill_secs: 600,
        }
    });
    let mut statuses = Vec::new();
    for hop in ["198.51.100.1", "198.51.100.2"] {
        let mut c = server.client();
        c.forwarded_for = Some(hop.into());
        c.get("/kaigo/login");
        statuses.push(
            c.post(
                "/kaigo/login",
                &[("user_id", OSAKA_USER), ("password", "x")],
            )
            .status,
        );
    }
    assert_eq!(statuses, [200, 429]);
}

#[test]
fn two_simultaneous_posts_with_one_link_or_code_succeed_once() {
    let server = spawn_with(|_| {});
    // The link: two browsers open it; a password the policy refuses uses
    // nothing up; then both post at once.
    let mut c = server.client();
    portal::request_link(&mut c, "demo-user", "demo-user@example.jp");
    let (link, _) = server.wait_for_mails(1)[0].link();
    let mut browsers: Vec<Client> = (0..2).map(|_| server.client()).collect();
    let token = browsers[0].get(&link).hidden("token").unwrap();
    browsers[1].get(&link);
    let refused = browsers[0].post(
        "/portal/passwordreset",
        &[
            ("token", &token),
            ("password", "short"),
            ("password_confirm", "short"),
        ],
    );
    assert!(refused.has("パスワードは8文字以上100文字以内で入力してください。"));
    let statuses = race(browsers, |mut b| {
        b.post(
            "/portal/passwordreset",
            &[
                ("token", &token),
                ("password", "Racing2026abc"),
                ("password_confirm", "Racing2026abc"),
            ],
        )
        .status
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 303).count(),
        1,
        "{statuses:?}"
    );

    // The code: the same flow in two tabs (one cookie), posted at once.
    let mut tab = server.client();
    kaigo::start_recovery(&mut tab, OSAKA_OFFICE, OSAKA_MAIL);
    // Mails so far: the link, the portal's change notice, the code. (Waiting
    // for two raced the notice under load: the code could come second.)
    let code = server.wait_for_mails(3)[0].otp();
    let cookie = tab.cookie("kagi_kaigo").unwrap().to_string();
    let mut tabs = vec![tab];
    let mut second = server.client();
    second.plant_cookie("kagi_kaigo", &cookie);
    second.get("/kaigo/recovery/otp");
    tabs.push(second);
    let results = race(tabs, |mut t| {
        let page = t.post("/kaigo/recovery/otp", &[("otp", &code)]);
        (page.status, page.header("Location").map(str::to_string))
    });
    let verified = results
        .iter()
        .filter(|(s, l)| *s == 303 && l.as_deref() == Some("/kaigo/recovery/reset"))
        .count();
    assert_eq!(verified, 1, "{results:?}");
}

/// Runs `act` on each client at the same moment, on threads of their own.
fn race<T: Send>(clients: Vec<Client>, act: impl Fn(Client) -> T + Sync) -> Vec<T> {
    let barrier = std::sync::Barrier::new(clients.len());
    std::thread::scope(|scope| {
        let threads: Vec<_> = clients
            .into_iter()
            .map(|c| {
                let (b, act) = (&barrier, &act);
                scope.spawn(move || {
                    b.wait();
                    act(c)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    })
}

#[test]
fn a_completed_reset_opens_no_session() {
    let server = spawn_with(|_| {});
    let mut r = server.client();
    kaigo::start_recovery(&mut r, OSAKA_OFFICE, OSAKA_MAIL);
    let code = server.wait_for_mails(1)[0].otp();
    enter_code(&mut r, &code);
    let done = kaigo::reset(&mut r, "newPass2027x");
    assert_eq!(done.title(), "処理終了");
    let menu = r.get("/kaigo/menu");
    assert_eq!(menu.status, 303);
    assert_eq!(menu.location(), "/kaigo/login");

    let mut p = server.client();
    portal::request_link(&mut p, "demo-user", "demo-user@example.jp");
    let (link, _) = server.wait_for_mails(3)[0].link();
    portal::set_password(&mut p, &link, "NewPortal2026x");
    let home = p.get("/portal/home");
    assert_eq!(home.status, 303);
    assert_eq!(home.location(), "/portal/login");
}

#[test]
fn a_repeated_field_is_a_400_and_never_a_second_recipient() {
    let server = spawn_with(|_| {});
    let mut c = server.client();
    c.get("/kaigo/recovery/auth");
    let page = c.post(
        "/kaigo/recovery/auth",
        &[
            ("office", OSAKA_OFFICE),
            ("email", OSAKA_MAIL),
            ("email", "attacker@example.com"),
        ],
    );
    assert_eq!(page.status, 400);
    assert!(page.has("<h1>"));
    let query = c.get("/portal/passwordreset?token=a&token=b");
    assert_eq!(query.status, 400);
    assert_eq!(server.stop_and_count_mail(), 0);
}

#[test]
fn full_width_office_address_and_code_are_accepted_and_the_pages_say_so() {
    let server = spawn_with(|_| {});
    let mut c = server.client();
    let sent = kaigo::start_recovery(
        &mut c,
        "２７１１１１１１１１",
        "ｏｆｆｉｃｅ－ｏｓａｋａ＠ｅｘａｍｐｌｅ．ｊｐ",
    );
    assert!(sent.has("全角で入力された英数字は、半角に変換して受け付けます。"));
    let code = server.wait_for_mails(1)[0].otp();
    let wide: String = code
        .chars()
        .map(|d| char::from_u32(d as u32 + 0xFEE0).unwrap())
        .collect();
    assert_eq!(enter_code(&mut c, &wide).title(), "ログイン情報再設定");
    assert!(c
        .get("/kaigo/recovery/auth")
        .has("全角で入力された英数字は、半角に変換して受け付けます。"));
}

#[test]
fn common_passwords_and_the_office_number_are_refused_and_nist_style_is_a_switch() {
    let server = spawn_with(|_| {});
    let mut r = server.client();
    kaigo::start_recovery(&mut r, OSAKA_OFFICE, OSAKA_MAIL);
    let code = server.wait_for_mails(1)[0].otp();
    enter_code(&mut r, &code);
    let common = kaigo::reset(&mut r, "password1");
    assert!(common.has("よく使われているパスワードのため使用できません。"));
    let office = kaigo::reset(&mut r, "x2711111111a");
    assert!(office.has("事業所番号を含むパスワードは使用できません。"));
    let mut p = server.client();
    portal::request_link(&mut p, "demo-user", "demo-user@example.jp");
    let (link, _) = server.wait_for_mails(2)[0].link();
    let refused = portal::set_password(&mut p, &link, "Password1");
    assert!(refused.has("よく使われているパスワードのため使用できません。"));
    drop(server);

    let server = spawn_with(|c| {
        c.kaigo.password_policy = kagi::config::PolicyStyle::Nist;
        c.portal.password_policy = kagi::config::PolicyStyle::Nist;
    });
    let mut r = server.client();
    kaigo::start_recovery(&mut r, OSAKA_OFFICE, OSAKA_MAIL);
    let code = server.wait_for_mails(1)[0].otp();
    enter_code(&mut r, &code);
    let short = kaigo::reset(&mut r, "kaigoNew2026");
    assert!(short.has("パスワードは15文字～64文字で入力してください。"));
    let phrase = kaigo::reset(&mut r, "a phrase no one else would pick");
    assert_eq!(phrase.title(), "処理終了");
    let mut p = server.client();
    portal::request_link(&mut p, "demo-user", "demo-user@example.jp");
    let (link, _) = server.wait_for_mails(3)[0].link();
    let done = portal::set_password(&mut p, &link, "all lower case and long enough");
    assert_eq!(done.title(), "Password Resetに成功");
}

#[test]
fn behind_a_proxy_the_client_is_the_nearest_untrusted_hop_whatever_it_writes_itself() {
    let server = spawn_with(|c| {
        c.http.trusted_proxies = vec!["127.0.0.1".into(), "10.0.0.0/8".into()];
        c.rate_limit.login = kagi::config::Bucket {
            burst: 20,
            refill_secs: 600,
        };
    });
    let fail_login = |lines: &[&str], user: &str| {
        let mut c = server.client();
        c.headers = lines
            .iter()
            .map(|l| format!("X-Forwarded-For: {l}"))
            .collect();
        c.get("/kaigo/login");
        c.post("/kaigo/login", &[("user_id", user), ("password", "x")])
            .status
    };
    // An invented address in front of junk, before the entry the proxy
    // appended: all 25 come from 203.0.113.7, whose limit is 20.
    let statuses: Vec<u16> = (0..25)
        .map(|i| fail_login(&[&format!("198.51.100.{i}, x, 203.0.113.7")], "attacker"))
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        5,
        "{statuses:?}"
    );
    // Each shape is one failed login, which the audit records with its client.
    let shapes: &[(&[&str], &str)] = &[
        (&["203.0.113.20"], "203.0.113.20"),
        (&["198.51.100.2, 203.0.113.21, 10.1.2.3"], "203.0.113.21"),
        (&["203.0.113.99, x, 10.1.2.4"], "10.1.2.4"),
        (&["203.0.113.99, "], "127.0.0.1"),
        (&["2001:db8::22"], "2001:db8::22"),
        (&["[2001:db8::23]:4711"], "2001:db8::23"),
        (&["203.0.113.24:5555"], "203.0.113.24"),
        (&["198.51.100.3", "203.0.113.25"], "203.0.113.25"),
        (&["203.0.113.26", "10.1.1.1, 10.2.2.2"], "203.0.113.26"),
        (&[], "127.0.0.1"),
    ];
    for (n, (lines, _)) in shapes.iter().enumerate() {
        assert_eq!(fail_login(lines, &format!("shape-{n}")), 200);
    }
    // The password-changed notice names the client, not what it invented.
    let mut r = server.client();
    r.forwarded_for = Some("198.51.100.77, junk, 203.0.113.50".into());
    kaigo::start_recovery(&mut r, OSAKA_OFFICE, OSAKA_MAIL);
    let code = server.wait_for_mails(1)[0].otp();
    r.submit("/kaigo/recovery/otp", &[("otp", &code)]);
    assert_eq!(kaigo::reset(&mut r, "proxied2027x").title(), "処理終了");
    let notice = server.wait_for_mails(2)[0].clone();
    assert!(
        notice.body.contains("[操作元IPアドレス]\n203.0.113.50"),
        "{}",
        notice.body
    );
    let dir = server.stop();
    let store = crate::support::open_store(&dir);
    let events = store.audit_events().unwrap();
    let failed: Vec<&str> = events
        .iter()
        .filter(|e| e.event == "login" && e.outcome == "failed")
        .map(|e| e.client.as_str())
        .collect();
    let expected: Vec<&str> = std::iter::repeat_n("203.0.113.7", 20)
        .chain(shapes.iter().map(|(_, client)| *client))
        .collect();
    assert_eq!(failed, expected);
    assert!(events
        .iter()
        .filter(|e| e.event == "password_changed")
        .all(|e| e.client == "203.0.113.50"));
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_security_code_form_is_no_password_oracle_for_a_stolen_session() {
    let server = spawn_with(|_| {});
    let mut stolen = server.client();
    assert_eq!(
        kaigo::login(&mut stolen, "KJ131311111111", "kaigoDemo13").title(),
        "メニュー"
    );
    stolen.get("/kaigo/security-code");
    let guess = |c: &mut Client, password: &str| {
        c.post(
            "/kaigo/security-code",
            &[
                ("password", password),
                ("code", "7777"),
                ("code_confirm", "7777"),
                ("action", "set"),
            ],
        )
    };
    // Five wrong current passwords are five failed logins of the account:
    // now even the right password does not log in.
    for n in 0..5 {
        let page = guess(&mut stolen, &format!("guess{n}x"));
        assert!(page.has("現在のパスワードが正しくありません。"));
    }
    let owner = kaigo::login(&mut server.client(), "KJ131311111111", "kaigoDemo13");
    assert!(
        owner.has("ユーザIDまたはパスワードが正しくありません。"),
        "the account waits"
    );
    // And the right password on the form is refused too during the wait.
    let right = guess(&mut stolen, "kaigoDemo13");
    assert!(right.has("現在のパスワードが正しくありません。"));
    // The form is rate limited as logins are (20 at once, then one per 3 s).
    let statuses: Vec<u16> = (0..20)
        .map(|n| guess(&mut stolen, &format!("more{n}x")).status)
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");
}

#[test]
fn wrong_security_codes_count_per_account_across_logins_and_lock_like_passwords() {
    let server = spawn_with(|_| {});
    let code_page = |c: &mut Client| {
        let page = kaigo::login(c, OSAKA_USER, "kaigoDemo27");
        assert_eq!(page.title(), "セキュリティコード入力");
    };
    let enter =
        |c: &mut Client, code: &str| c.submit("/kaigo/login/code", &[("security_code", code)]);
    // Three wrong codes in one login, two in another: a right password
    // forgives none of them, and the fifth locks the account's code.
    let mut first = server.client();
    code_page(&mut first);
    for _ in 0..3 {
        assert!(enter(&mut first, "1111").has("セキュリティコードが正しくありません。"));
    }
    let mut second = server.client();
    code_page(&mut second);
    assert!(enter(&mut second, "1111").has("セキュリティコードが正しくありません。"));
    let locked = enter(&mut second, "1111");
    assert!(
        locked.has("約1分後にもう一度ログインしてください。"),
        "{}",
        locked.body
    );
    // During the wait even the right code is refused.
    let mut third = server.client();
    code_page(&mut third);
    let refused = enter(&mut third, "2468");
    assert!(refused.has("しばらくの間ログインできません。"));
    assert_ne!(refused.title(), "メニュー");
    // After it, the right code logs in.
    server.clock.advance(61);
    let mut fourth = server.client();
    code_page(&mut fourth);
    assert_eq!(enter(&mut fourth, "2468").title(), "メニュー");
}

#[test]
fn refused_requests_are_counted_in_the_audit_trail_not_written_one_by_one() {
    let server = spawn_with(|c| {
        c.rate_limit.login = kagi::config::Bucket {
            burst: 1,
            refill_secs: 600,
        }
    });
    let mut c = server.client();
    c.get("/kaigo/login");
    let fields = [("user_id", "nobody"), ("password", "x")];
    assert_eq!(c.post("/kaigo/login", &fields).status, 200);
    for _ in 0..300 {
        assert_eq!(c.post("/kaigo/login", &fields).status, 429);
    }
    let dir = server.stop();
    let store = crate::support::open_store(&dir);
    let tallies: Vec<_> = store
        .audit_events()
        .unwrap()
        .into_iter()
        .filter(|e| e.event == "rate_limited")
        .collect();
    // One entry per minute (the run may straddle a minute's end), with
    // the count, the client and the action.
    assert!(
        (1..=2).contains(&tallies.len()),
        "{} entries for 300 refusals",
        tallies.len()
    );
    let counted: u64 = tallies
        .iter()
        .map(|e| {
            assert_eq!(e.client, "127.0.0.1");
            let (action, rest) = e.outcome.split_once(": ").unwrap();
            assert_eq!(action, "login");
            rest.split(' ').next().unwrap().parse::<u64>().unwrap()
        })
        .sum();
    assert_eq!(counted, 300);
    assert_eq!(
        store.verify_audit().unwrap(),
        Ok(store.audit_events().unwrap().len())
    );
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn postal_requests_are_limited_per_client_and_one_waits_per_office() {
    let server = spawn_with(|c| c.http.trusted_proxies = vec!["127.0.0.1".into()]);
    let ask = |client: &str, office: &str, name: &str| {
        let mut c = server.client();
        c.forwarded_for = Some(client.to_string());
        c.get("/kaigo/recovery/postal");
        c.post(
            "/kaigo/recovery/postal",
            &[
                ("office", office),
                ("prefecture", "13"),
                ("office_name", name),
                ("contact", "山田 花子"),
                ("phone", "011-123-4567"),
            ],
        )
        .status
    };
    // Three at once from one client, then it waits (one per 20 minutes).
    let statuses: Vec<u16> = (0..4)
        .map(|n| ask("203.0.113.1", "0111111111", &format!("第{n}事業所")))
        .collect();
    assert_eq!(statuses, [303, 303, 303, 429]);
    // Another client asks for the same office, and for another one.
    assert_eq!(ask("203.0.113.2", "0111111111", "さくら介護サービス"), 303);
    assert_eq!(ask("203.0.113.2", "1311111111", "つばき介護"), 303);
    let dir = server.stop();
    let store = crate::support::open_store(&dir);
    let mut waiting = store.postal_requests().unwrap();
    waiting.sort_by_key(|r| r.id);
    let offices: Vec<(&str, &str)> = waiting
        .iter()
        .map(|r| (r.office.as_str(), r.office_name.as_str()))
        .collect();
    assert_eq!(
        offices,
        [
            ("0111111111", "さくら介護サービス"),
            ("1311111111", "つばき介護")
        ],
        "one record per office, the latest request in it"
    );
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn below_min_free_bytes_nothing_new_starts_but_logins_go_on() {
    // Every disk is "low" against this threshold.
    // The free space of sled's disk: PostgreSQL's disk is its own.
    let server = crate::support::spawn_on_sled_with(|c| c.store.min_free_bytes = u64::MAX);
    let mut r = server.client();
    let refused = kaigo::start_recovery(&mut r, OSAKA_OFFICE, OSAKA_MAIL);
    assert_eq!(refused.status, 503);
    assert!(refused.has("ただいま新しい受付を停止しています"));
    assert!(refused.header("Retry-After").is_some());
    let mut p = server.client();
    p.get("/kaigo/recovery/postal");
    let postal = p.post(
        "/kaigo/recovery/postal",
        &[
            ("office", "0111111111"),
            ("office_name", "さくら介護サービス"),
            ("contact", "山田 花子"),
            ("phone", "011-123-4567"),
        ],
    );
    assert_eq!(postal.status, 503);
    let mut q = server.client();
    let (page, answer) = portal::open_identify(&mut q);
    let captcha = portal::post_identify(&mut q, &page, "demo-user", &answer, "next");
    assert_eq!(captcha.status, 503);
    assert_eq!(
        kaigo::login(&mut server.client(), OSAKA_USER, "kaigoDemo27").title(),
        "セキュリティコード入力",
        "logins go on"
    );
    assert_eq!(server.stop_and_count_mail(), 0);
}

#[test]
fn drawing_captchas_takes_from_the_same_bucket_as_answering_them() {
    let server = spawn_with(|c| {
        c.rate_limit.captcha = kagi::config::Bucket {
            burst: 2,
            refill_secs: 600,
        }
    });
    let mut c = server.client();
    assert_eq!(c.get("/portal/reset").status, 200);
    assert_eq!(c.get("/portal/reset").status, 200);
    let third = c.get("/portal/reset");
    assert_eq!(third.status, 429);
    assert!(third.has("アクセスが集中しています"));
    // The other pages are not held up.
    assert_eq!(c.get("/portal/login").status, 200);
}

#[test]
fn hearing_the_captcha_takes_from_the_same_bucket_as_drawing_it() {
    let server = spawn_with(|c| {
        c.rate_limit.captcha = kagi::config::Bucket {
            burst: 3,
            refill_secs: 600,
        }
    });
    let mut c = server.client();
    let page = c.get("/portal/reset");
    let heard = portal::post_identify(&mut c, &page, "demo-user", "", "audio");
    assert!(heard.has("<audio controls"));
    let again = portal::post_identify(&mut c, &heard, "demo-user", "", "audio");
    assert!(again.has("<audio controls"));
    // The fourth challenge, image or sound, waits like any.
    let fourth = portal::post_identify(&mut c, &again, "demo-user", "", "audio");
    assert_eq!(fourth.status, 429);
    assert!(fourth.has("アクセスが集中しています"));
    assert_eq!(c.get("/portal/reset").status, 429);
}
