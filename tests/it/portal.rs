//! The portal site, driven as its users drive it: CAPTCHA answers come from
//! the demo's `/dev/captcha`, links from the captured mail.

use crate::support::portal::{
    hear_identify, login, open_identify, post_identify, request_link, set_password, sound,
    submit_identify,
};
use crate::support::{comparable, spawn, spawn_with, TestServer};
use mail_parser::MessageParser;

fn recover(server: &TestServer, user: &str, email: &str, new_password: &str, mails_before: usize) {
    let mut c = server.client();
    let login_page = c.get("/portal/login");
    assert!(login_page.has("<a class=\"reset-link\" href=\"/portal/reset\">パスワードの再設定</a>"));
    let sent = request_link(&mut c, user, email);
    assert_eq!(sent.title(), "パスワード変更用URLメール送信完了");
    let mail = server.wait_for_mails(mails_before + 1)[0].clone();
    assert_eq!(mail.to, email);
    assert_eq!(
        mail.subject,
        "【医療機関等向け総合ポータルサイト】パスワード変更用URL"
    );
    assert!(mail.body.contains("※本URLの有効期限は1時間となります。"));
    let parsed = MessageParser::default()
        .parse(mail.mime.as_bytes())
        .unwrap();
    assert_eq!(
        parsed.subject(),
        Some("【医療機関等向け総合ポータルサイト】パスワード変更用URL")
    );
    let (link, _) = mail.link();
    assert!(parsed.body_text(0).unwrap().contains(&link));

    let done = set_password(&mut c, &link, new_password);
    assert_eq!(done.title(), "Password Resetに成功");
    assert!(done.has("<a class=\"button\" href=\"/portal/login\">完了</a>"));
}

#[test]
fn demo_user_resets_with_the_mailed_link_and_logs_in() {
    let server = spawn();
    assert_eq!(
        login(&mut server.client(), "demo-user", "PortalDemo2026").title(),
        "医療機関等向け総合ポータルサイト"
    );
    recover(
        &server,
        "demo-user",
        "demo-user@example.jp",
        "NewPortal2026",
        0,
    );

    let home = login(&mut server.client(), "demo-user", "NewPortal2026");
    assert_eq!(home.title(), "医療機関等向け総合ポータルサイト");
    assert!(home.has("ログイン中: <strong class=\"user\">demo-user</strong>"));
    assert!(home.has("ログアウト"));
    let refused = login(&mut server.client(), "demo-user", "PortalDemo2026");
    assert_eq!(refused.title(), "●ログインはこちら");
    assert!(refused.has("ユーザー名またはパスワードが正しくありません。"));
}

#[test]
fn a_coordinator_resets_with_its_user_id() {
    let server = spawn();
    recover(
        &server,
        "T0000001",
        "coordinator@example.jp",
        "Coordinator2027",
        0,
    );
    let home = login(&mut server.client(), "T0000001", "Coordinator2027");
    assert!(home.has("ログイン中: <strong class=\"user\">T0000001</strong> (取りまとめ者)"));
    assert_eq!(
        login(&mut server.client(), "T0000001", "PortalCoord2026").title(),
        "●ログインはこちら"
    );
}

#[test]
fn a_password_change_ends_the_portal_session() {
    let server = spawn();
    let mut logged_in = server.client();
    login(&mut logged_in, "demo-user", "PortalDemo2026");
    assert_eq!(logged_in.get("/portal/home").status, 200);
    recover(
        &server,
        "demo-user",
        "demo-user@example.jp",
        "NewPortal2026",
        0,
    );
    let after = logged_in.get("/portal/home");
    assert_eq!((after.status, after.location()), (303, "/portal/login"));
}

#[test]
fn wrong_reused_and_expired_captchas_are_refused() {
    let server = spawn();
    let mut c = server.client();

    // Wrong: ① again, with a new image and the typed user name kept.
    let (first, answer) = open_identify(&mut c);
    let wrong = if answer == "aaaaa" { "ccccc" } else { "aaaaa" };
    let again = submit_identify(&mut c, &first, "demo-user", wrong, "next");
    assert_eq!(again.title(), "パスワードのリセット");
    assert!(again.has("表示されている文字が正しくありません。"));
    assert!(again.has("value=\"demo-user\""));
    assert_ne!(again.hidden("captcha_id"), first.hidden("captcha_id"));
    // The tried challenge is gone, right answer or not.
    let first_id = first.hidden("captcha_id").unwrap();
    assert_eq!(server.captcha_answer(&first_id), None);
    let retry = c.post(
        "/portal/reset",
        &[
            ("user", "demo-user"),
            ("captcha_id", &first_id),
            ("captcha", &answer),
            ("action", "next"),
        ],
    );
    assert!(
        retry.has("表示されている文字が正しくありません。"),
        "a tried CAPTCHA answers no more"
    );

    // Reused: a right answer works once.
    let id = again.hidden("captcha_id").unwrap();
    let answer = server.captcha_answer(&id).unwrap();
    let fields = [
        ("user", "demo-user"),
        ("captcha_id", id.as_str()),
        ("captcha", answer.as_str()),
        ("action", "next"),
    ];
    let ok = c.post("/portal/reset", &fields);
    assert_eq!(ok.location(), "/portal/reset/verify");
    c.get("/portal/reset");
    let reused = c.post("/portal/reset", &fields);
    assert_eq!(reused.status, 200);
    assert!(reused.has("表示されている文字が正しくありません。"));

    // Expired: five minutes is the limit.
    let (page, answer) = open_identify(&mut c);
    server.clock.advance(5 * 60);
    let late = c.post(
        "/portal/reset",
        &[
            ("user", "demo-user"),
            ("captcha_id", &page.hidden("captcha_id").unwrap()),
            ("captcha", &answer),
            ("action", "next"),
        ],
    );
    assert!(late.has("表示されている文字が正しくありません。"));

    // The refresh button draws a new image and keeps the user name.
    let (page, _) = open_identify(&mut c);
    let refreshed = submit_identify(&mut c, &page, "T0000001", "", "refresh");
    assert!(refreshed.has("value=\"T0000001\""));
    assert!(!refreshed.has("表示されている文字が正しくありません。"));
    assert_ne!(refreshed.hidden("captcha_id"), page.hidden("captcha_id"));
}

#[test]
fn the_captcha_image_is_pixels_only_inline_and_scales_to_a_phone() {
    use base64ct::{Base64, Encoding};
    let server = spawn();
    let mut c = server.client();
    let (page, answer) = open_identify(&mut c);
    assert!(
        !page.body.contains(&answer),
        "the answer must not be in the markup"
    );
    let start = page
        .body
        .find("src=\"data:image/png;base64,")
        .expect("an inline PNG")
        + "src=\"data:image/png;base64,".len();
    let end = start + page.body[start..].find('"').unwrap();
    let png = Base64::decode_vec(&page.body[start..end]).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    // Nothing but its size, its pixels and its end: no text, no palette,
    // no strokes a program could read one by one.
    let mut at = 8;
    let mut kinds = Vec::new();
    while at + 8 <= png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        kinds.push(String::from_utf8_lossy(&png[at + 4..at + 8]).into_owned());
        at += 12 + len;
    }
    kinds.dedup();
    assert_eq!(kinds, ["IHDR", "IDAT", "IEND"]);
    assert!(!png.windows(answer.len()).any(|w| w == answer.as_bytes()));
    // 300 × 110, scaled down to the width of a narrow screen.
    assert!(page.has("width=\"300\" height=\"110\""));
    let css = c.get("/static/kagi.css").body;
    assert!(css
        .contains(".captcha-image { border: 1px solid #c8d1dc; max-width: 100%; height: auto; }"));
    // The seed's refresh button and ※2 note stay.
    assert!(page.has("画像を変更"));
    assert!(page.has("※CAPTCHAエリアに表示された文字が判別しづらい場合は「画像を変更」を押下して、表示の文字を変更できます。"));
}

/// A WAV as a browser reads it: RIFF/WAVE, PCM, its sizes those of the
/// file; its length in seconds.
fn wav_seconds(wav: &[u8]) -> f64 {
    let u32le = |at: usize| u32::from_le_bytes(wav[at..at + 4].try_into().unwrap()) as usize;
    assert_eq!((&wav[..4], &wav[8..16]), (&b"RIFF"[..], &b"WAVEfmt "[..]));
    assert_eq!(u32le(4), wav.len() - 8, "the RIFF size");
    assert_eq!(&wav[36..40], b"data");
    assert_eq!(u32le(40), wav.len() - 44, "the data's size");
    let bytes_a_second = u32le(28);
    (wav.len() - 44) as f64 / bytes_a_second as f64
}

#[test]
fn a_user_who_cannot_see_the_image_resets_by_ear() {
    let server = spawn();
    let mut c = server.client();
    let (first, _) = open_identify(&mut c);
    // The image's block offers the sound, and the manual's words stay.
    assert!(
        first.has("<button class=\"secondary\" type=\"submit\" name=\"action\" value=\"audio\"")
    );
    assert!(first.has("※CAPTCHAエリアに表示された文字が判別しづらい場合は「画像を変更」を押下して、表示の文字を変更できます。"));

    let (heard, answer) = hear_identify(&mut c, &first, "demo-user");
    assert_eq!(heard.title(), "パスワードのリセット");
    assert!(
        !heard.has("表示されている文字が正しくありません。"),
        "nothing was checked"
    );
    assert!(heard.has("value=\"demo-user\""), "the user name stays");
    // The pressed image's challenge is used up.
    assert_eq!(
        server.captcha_answer(&first.hidden("captcha_id").unwrap()),
        None
    );
    // A sound, and no image.
    assert!(!heard.has("<img"), "no CAPTCHA image");
    let wav = sound(&heard).expect("an <audio> with an inline WAV");
    let seconds = wav_seconds(&wav);
    assert!((3.0..10.0).contains(&seconds), "{seconds} s");
    assert_eq!(answer.len(), 6);
    assert!(answer.bytes().all(|b| b.is_ascii_digit()), "{answer}");
    assert!(!heard.has(&answer), "the answer must not be in the markup");
    // What to type, said beside the player and in the field's label; the
    // player named; a way to another sound and back to the image.
    assert!(
        heard.has("<p id=\"captcha-audio-help\">音声で読み上げられる数字を入力してください。</p>")
    );
    assert!(heard.has("aria-label=\"CAPTCHA: 6桁の数字の読み上げ\""));
    assert!(heard.has("<label for=\"captcha\">読み上げられた6桁の数字"));
    assert!(heard.has("id=\"captcha\" type=\"text\" name=\"captcha\" inputmode=\"numeric\""));
    assert!(heard.has("aria-describedby=\"captcha-audio-help\""));
    assert!(heard.has("value=\"audio\""));
    assert!(heard.has("画像に戻る"));
    // The sound plays under the CSP, which allows inline media and no more.
    assert!(heard
        .header("Content-Security-Policy")
        .unwrap()
        .contains("; media-src data:;"));

    // Typed as a Japanese input method gives it: full-width, in groups.
    let typed: String = answer
        .chars()
        .enumerate()
        .flat_map(|(i, d)| {
            let wide = char::from_u32(d as u32 + 0xFEE0).unwrap();
            (i == 3).then_some('\u{3000}').into_iter().chain([wide])
        })
        .collect();
    let next = post_identify(&mut c, &heard, "demo-user", &typed, "next");
    assert_eq!(next.location(), "/portal/reset/verify");
    let verify = c.follow(next);
    assert_eq!(verify.title(), "パーソナルデータ検証 - メールアドレス");
    let sent = c.submit("/portal/reset/verify", &[("email", "demo-user@example.jp")]);
    assert_eq!(sent.title(), "パスワード変更用URLメール送信完了");
    assert_eq!(server.wait_for_mails(1)[0].to, "demo-user@example.jp");
}

#[test]
fn a_wrong_spoken_answer_fails_like_a_wrong_image_and_a_new_sound_follows() {
    let server = spawn();
    let mut c = server.client();
    let (first, _) = open_identify(&mut c);
    let (heard, answer) = hear_identify(&mut c, &first, "demo-user");
    let wrong = if answer == "000000" {
        "111111"
    } else {
        "000000"
    };
    let again = submit_identify(&mut c, &heard, "demo-user", wrong, "next");
    assert_eq!(again.status, 200);
    assert_eq!(again.title(), "パスワードのリセット");
    assert!(again.has("読み上げられた数字が正しくありません。"));
    assert!(again.has("value=\"demo-user\""));
    // Still by ear, with a new challenge; the tried one answers no more.
    assert!(sound(&again).is_some() && !again.has("<img"));
    let tried = heard.hidden("captcha_id").unwrap();
    assert_ne!(again.hidden("captcha_id").unwrap(), tried);
    assert_eq!(server.captcha_answer(&tried), None);
    let retry = post_identify(&mut c, &heard, "demo-user", &answer, "next");
    assert_eq!(retry.status, 200);
    assert!(retry.has("読み上げられた数字が正しくありません。"));

    // Another sound keeps the user name and checks nothing.
    let other = post_identify(&mut c, &retry, "T0000001", "", "audio");
    assert!(sound(&other).is_some());
    assert!(other.has("value=\"T0000001\""));
    assert!(!other.has("正しくありません"));
    // Expired like an image: five minutes is the limit.
    let id = other.hidden("captcha_id").unwrap();
    let late_answer = server.captcha_answer(&id).unwrap();
    server.clock.advance(5 * 60);
    let late = post_identify(&mut c, &other, "demo-user", &late_answer, "next");
    assert!(late.has("読み上げられた数字が正しくありません。"));

    // Back to the image: the seed's block as it was.
    let image = post_identify(&mut c, &late, "demo-user", "", "image");
    assert!(image.has("src=\"data:image/png;base64,"));
    assert!(sound(&image).is_none() && image.hidden("captcha_mode").is_none());
    assert!(image.has("※CAPTCHAエリアに表示された文字が判別しづらい場合は「画像を変更」を押下して、表示の文字を変更できます。"));
    let id = image.hidden("captcha_id").unwrap();
    let answer = server.captcha_answer(&id).unwrap();
    let ok = post_identify(&mut c, &image, "demo-user", &answer, "next");
    assert_eq!(ok.location(), "/portal/reset/verify");
}

#[test]
fn unknown_user_wrong_address_and_provisional_account_get_the_same_page_and_no_mail() {
    let server = spawn();
    let answer = |user: &str, email: &str| {
        let mut c = server.client();
        let (page, captcha) = open_identify(&mut c);
        submit_identify(&mut c, &page, user, &captcha, "next");
        let raw = c.post("/portal/reset/verify", &[("email", email)]);
        let shown = c.follow(raw.clone());
        (raw, shown)
    };
    let (match_raw, match_page) = answer("demo-user", "demo-user@example.jp");
    assert_eq!(match_page.title(), "パスワード変更用URLメール送信完了");
    server.wait_for_mails(1);
    for (user, email) in [
        ("nobody", "demo-user@example.jp"),  // unknown user
        ("demo-user", "someone@example.jp"), // wrong address
        ("kari-user", "1234567890@13"),      // provisional: its own address
    ] {
        let (raw, page) = answer(user, email);
        assert_eq!(
            comparable(&raw, ""),
            comparable(&match_raw, ""),
            "answer for {user}/{email}"
        );
        assert_eq!(
            comparable(&page, ""),
            comparable(&match_page, ""),
            "page for {user}/{email}"
        );
    }
    assert_eq!(server.stop_and_count_mail(), 1, "only the match is mailed");
}

#[test]
fn a_link_opens_any_number_of_times_and_sets_a_password_once() {
    let server = spawn();
    let mut c = server.client();
    request_link(&mut c, "demo-user", "demo-user@example.jp");
    let (link, _) = server.wait_for_mails(1)[0].link();
    // A mail scanner opens it, then the user does: both see the form.
    let scanner = server.client().get(&link);
    assert_eq!(scanner.status, 200);
    // A HEAD (link checkers use it) uses nothing up either.
    let head = format!("HEAD {link} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let answer = crate::support::exchange(server.addr, head.as_bytes());
    assert_eq!(answer.status, 200);
    assert!(answer.body.is_empty());
    let form = c.get(&link);
    assert_eq!(form.status, 200);
    assert_eq!(form.title(), "パスワードのリセット");
    let token = form.hidden("token").unwrap();
    let done = c.submit(
        "/portal/passwordreset",
        &[
            ("token", &token),
            ("password", "First2026x"),
            ("password_confirm", "First2026x"),
        ],
    );
    assert_eq!(done.title(), "Password Resetに成功");
    // The second use is refused with a readable page, and changes nothing.
    c.get("/portal/reset");
    let second = c.post(
        "/portal/passwordreset",
        &[
            ("token", &token),
            ("password", "Second2026x"),
            ("password_confirm", "Second2026x"),
        ],
    );
    assert_eq!(second.status, 404);
    assert!(second.has("このURLは無効です。"));
    assert_eq!(c.get(&link).status, 404);
    assert_eq!(
        login(&mut server.client(), "demo-user", "First2026x").title(),
        "医療機関等向け総合ポータルサイト"
    );
    assert_eq!(
        login(&mut server.client(), "demo-user", "Second2026x").title(),
        "●ログインはこちら"
    );
}

#[test]
fn a_link_past_its_lifetime_is_refused() {
    let server = spawn();
    let mut c = server.client();
    request_link(&mut c, "demo-user", "demo-user@example.jp");
    let (link, _) = server.wait_for_mails(1)[0].link();
    let form = c.get(&link);
    let token = form.hidden("token").unwrap();
    server.clock.advance(3600);
    assert_eq!(c.get(&link).status, 404);
    let late = c.post(
        "/portal/passwordreset",
        &[
            ("token", &token),
            ("password", "Late2026xx"),
            ("password_confirm", "Late2026xx"),
        ],
    );
    assert_eq!(late.status, 404);
    assert!(late.has("有効期限（1時間）が過ぎたか"));
    assert_eq!(
        login(&mut server.client(), "demo-user", "PortalDemo2026").title(),
        "医療機関等向け総合ポータルサイト"
    );
}

#[test]
fn a_link_dies_when_the_password_changes_by_other_means() {
    let server = spawn();
    let mut first = server.client();
    request_link(&mut first, "demo-user", "demo-user@example.jp");
    let (old_link, _) = server.wait_for_mails(1)[0].link();
    let old_form = first.get(&old_link);
    // Another reset, through a second link, changes the password first.
    let mut second = server.client();
    server.clock.advance(61);
    request_link(&mut second, "demo-user", "demo-user@example.jp");
    let (new_link, _) = server.wait_for_mails(2)[0].link();
    assert_ne!(old_link, new_link);
    assert_eq!(
        set_password(&mut second, &new_link, "Other2026xx").title(),
        "Password Resetに成功"
    );

    assert_eq!(first.get(&old_link).status, 404);
    let stale = first.post(
        "/portal/passwordreset",
        &[
            ("token", &old_form.hidden("token").unwrap()),
            ("password", "Stale2026xx"),
            ("password_confirm", "Stale2026xx"),
        ],
    );
    assert_eq!(stale.status, 404);
    assert_eq!(
        login(&mut server.client(), "demo-user", "Other2026xx").title(),
        "医療機関等向け総合ポータルサイト"
    );
}

#[test]
fn each_portal_policy_rule_is_refused_with_its_own_message() {
    let server = spawn();
    let mut c = server.client();
    request_link(&mut c, "demo-user", "demo-user@example.jp");
    let (link, _) = server.wait_for_mails(1)[0].link();
    let token = c.get(&link).hidden("token").unwrap();
    let messages = [
        "パスワードは8文字以上100文字以内で入力してください。",
        "パスワードには大文字を少なくとも1文字含めてください。",
        "パスワードには小文字を少なくとも1文字含めてください。",
        "パスワードには数字を少なくとも1文字含めてください。",
        "パスワードとパスワードの再入力が一致しません。",
    ];
    let long = format!("Aa1{}", "x".repeat(98));
    let cases: [(&str, &str, usize); 6] = [
        ("Ab1", "Ab1", 0),
        (&long, &long, 0),
        ("portaldemo2026", "portaldemo2026", 1),
        ("PORTALDEMO2026", "PORTALDEMO2026", 2),
        ("PortalDemoX", "PortalDemoX", 3),
        ("PortalDemo2027", "PortalDemo2028", 4),
    ];
    for (password, reentry, expected) in cases {
        let page = c.submit(
            "/portal/passwordreset",
            &[
                ("token", &token),
                ("password", password),
                ("password_confirm", reentry),
            ],
        );
        assert_eq!(page.status, 200);
        assert_eq!(page.title(), "パスワードのリセット");
        for (i, m) in messages.iter().enumerate() {
            assert_eq!(page.has(m), i == expected, "{password}: {m}");
        }
    }
    // The link survived the refusals and still works.
    assert_eq!(
        set_password(&mut c, &link, "PortalNew2026").title(),
        "Password Resetに成功"
    );
}

#[test]
fn the_mailed_link_uses_public_url_whatever_the_host_header_says() {
    let server = spawn_with(|c| c.public_url = Some("https://login.example.jp".into()));
    let mut c = server.client();
    c.host = Some("attacker.example".into());
    request_link(&mut c, "demo-user", "demo-user@example.jp");
    let mail = &server.wait_for_mails(1)[0];
    let (_, url) = mail.link();
    assert!(
        url.starts_with("https://login.example.jp/portal/passwordreset?token="),
        "{url}"
    );
    assert!(!mail.body.contains("attacker.example"));
    let token = &url[url.find("token=").unwrap() + 6..];
    assert_eq!(token.len(), 64, "256 bits, URL-safe");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
}

#[test]
fn top_and_login_pages_follow_the_seed_and_never_lead_to_errors() {
    let server = spawn();
    let mut c = server.client();
    let top = c.get("/portal");
    for label in [
        "事業別トップメニュー▼",
        "お知らせ",
        "よくある質問",
        "新規ユーザー登録はこちら",
        "ログインはこちら",
        "医療機関等を新設・廃止・コード変更される方はこちら",
        "お問い合わせ先",
        "オンライン資格確認 オンライン請求",
        "電子処方箋管理サービス",
        "電子カルテ情報共有サービス",
    ] {
        assert!(top.has(label), "{label}");
    }
    assert!(top.has("このサーバでは提供していません"));
    // Every link on the page leads somewhere that answers 200.
    let mut rest = top.body.as_str();
    while let Some(at) = rest.find("href=\"/") {
        let href = &rest[at + 6..];
        let href = &href[..href.find('"').unwrap()];
        let page = server.client().get(href);
        assert!(
            page.status == 200 || page.status == 303,
            "{href}: {}",
            page.status
        );
        rest = &rest[at + 6..];
    }
    let login = c.get("/portal/login");
    for text in [
        "以下に該当する場合、パスワード再設定を行っても通知メールが届きません。新規ユーザー登録が必要となります。",
        "①仮アカウントからメールアドレスを更新していない（末尾が「@01」～「@48」のいずれか）",
        "②旧ポータルで登録したメールアドレスに誤りがある",
        ">ユーザー名</label>",
        ">パスワード</label>",
        ">ログイン</button>",
        "パスワードの再設定",
        "アカウントがありませんか？",
        "新規登録はこちら",
    ] {
        assert!(login.has(text), "{text}");
    }
}

/// The manuals' point 7: once logged in, the top page offers no login.
#[test]
fn a_logged_in_top_page_offers_no_login() {
    let server = spawn();
    let mut c = server.client();
    assert!(c.get("/portal").has("ログインはこちら"));
    let home = login(&mut c, "demo-user", "PortalDemo2026");
    assert!(home.has("ログアウト"), "{}", home.body);
    assert!(!home.has("ログインはこちら"));
    assert!(!c.get("/portal").has("ログインはこちら"));
}

/// The manuals' point 1: the 送信完了 page names the sender the mail comes
/// from; in the demo each site has its own, in the manuals' style.
#[test]
fn the_sent_page_names_the_sender_the_mail_comes_from() {
    let server = spawn();
    let mut c = server.client();
    let page = request_link(&mut c, "demo-user", "demo-user@example.jp");
    assert!(
        page.has("入力したメールアドレス宛に、no-reply@portal.kagi.invalidより"),
        "{}",
        page.body
    );
    let mail = &server.wait_for_mails(1)[0];
    let parsed = MessageParser::default()
        .parse(mail.mime.as_bytes())
        .unwrap();
    let from = parsed.from().and_then(|f| f.first()).unwrap();
    assert_eq!(from.address(), Some("no-reply@portal.kagi.invalid"));
    assert_eq!(from.name(), Some("医療機関等向け総合ポータルサイト"));
}
