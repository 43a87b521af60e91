//! The portal's new-user registration, as a person takes it: the form
//! with its CAPTCHA, the mailed link, the password, the login; and what
//! it must not tell or allow.

use crate::support::console::demo_operator;
use crate::support::portal::login;
use crate::support::{captcha_answer_at, comparable, spawn, spawn_with, Client, Page, TestServer};

/// The fields of a registration, as typed.
pub(crate) struct Typed<'a> {
    pub(crate) institution: &'a str,
    pub(crate) name: &'a str,
    pub(crate) contact: &'a str,
    pub(crate) email: &'a str,
    pub(crate) email_confirm: &'a str,
    pub(crate) user: &'a str,
}

pub(crate) const NEW: Typed<'static> = Typed {
    institution: "1311112222",
    name: "デモ病院",
    contact: "佐藤 一郎",
    email: "sato@example.jp",
    email_confirm: "sato@example.jp",
    user: "sato-ichiro",
};

/// ① from the top page's tile, as a person reaches it; the answer to the
/// form (not followed) and the page it leads to.
pub(crate) fn register(c: &mut Client, t: &Typed<'_>) -> (Page, Page) {
    let top = c.get("/portal");
    assert!(top.has("href=\"/portal/register\""), "the tile is live");
    let form = c.get("/portal/register");
    assert_eq!(form.title(), "新規ユーザー登録");
    let id = form.hidden("captcha_id").expect("a CAPTCHA");
    let answer = captcha_answer_at(c.addr(), &id).expect("the lab lists the answer");
    let raw = c.post(
        "/portal/register",
        &[
            ("captcha_id", &id),
            ("captcha", &answer),
            ("action", "next"),
            ("institution", t.institution),
            ("institution_name", t.name),
            ("contact", t.contact),
            ("email", t.email),
            ("email_confirm", t.email_confirm),
            ("user", t.user),
        ],
    );
    let shown = c.follow(raw.clone());
    (raw, shown)
}

/// The path of the confirmation link in the newest mail.
fn confirmation(server: &TestServer, count: usize) -> String {
    let mail = &server.wait_for_mails(count)[0];
    assert_eq!(
        mail.subject,
        "【医療機関等向け総合ポータルサイト】メールアドレス確認のお願い"
    );
    mail.registration_link()
}

fn set_password(c: &mut Client, link: &str, user: &str, password: &str) -> Page {
    let form = c.get(link);
    assert_eq!(form.status, 200, "{}", form.body);
    c.submit(
        "/portal/register/confirm",
        &[
            ("token", &form.hidden("token").unwrap()),
            ("user", user),
            ("password", password),
            ("password_confirm", password),
        ],
    )
}

#[test]
fn a_person_registers_confirms_from_the_mail_sets_a_password_and_logs_in() {
    let server = spawn();
    let mut c = server.client();
    let login_page = c.get("/portal/login");
    assert!(login_page.has("<a href=\"/portal/register\">新規登録はこちら</a>"));
    let (_, sent) = register(&mut c, &NEW);
    assert_eq!(sent.title(), "確認メール送信");
    assert!(sent.has("<li class=\"current\" aria-current=\"step\">② 確認メール送信</li>"));
    let link = confirmation(&server, 1);
    // A mail scanner opens the link: nothing is used.
    assert_eq!(server.client().get(&link).status, 200);
    let done = set_password(&mut c, &link, NEW.user, "SatoPortal2026");
    assert_eq!(done.title(), "登録完了", "{}", done.body);
    assert!(done.has("sato-ichiro"));
    let welcome = &server.wait_for_mails(2)[0];
    assert_eq!(welcome.to, "sato@example.jp");
    assert!(welcome.subject.contains("ユーザー登録完了"));
    assert!(welcome.body.contains("sato-ichiro"));
    let home = login(&mut server.client(), "sato-ichiro", "SatoPortal2026");
    assert!(home.has("ログアウト"), "logged in: {}", home.body);
    // Used once.
    let again = server.client().get(&link);
    assert_eq!(again.status, 404);
    assert!(again.has("このURLは無効です。"));
    // The operators see it.
    let mut op = demo_operator(&server);
    assert!(op
        .get("/admin?q=sato-ichiro")
        .has("portal&amp;id=sato-ichiro"));
    let csv = op.get("/admin/audit.csv?event=registration_completed").body;
    assert!(csv.contains("sato-ichiro"), "{csv}");
}

#[test]
fn the_registration_form_offers_the_captcha_by_ear_and_keeps_what_was_typed() {
    let server = spawn();
    let mut c = server.client();
    let form = c.get("/portal/register");
    assert!(form.has("name=\"action\" value=\"audio\""), "音声で聞く");
    let typed = |id: &str, captcha: &str, action: &str, mode: Option<&str>| {
        let mut fields = vec![
            ("captcha_id", id.to_string()),
            ("captcha", captcha.to_string()),
            ("action", action.to_string()),
            ("institution", NEW.institution.to_string()),
            ("institution_name", NEW.name.to_string()),
            ("contact", NEW.contact.to_string()),
            ("email", NEW.email.to_string()),
            ("email_confirm", NEW.email.to_string()),
            ("user", NEW.user.to_string()),
        ];
        fields.extend(mode.map(|m| ("captcha_mode", m.to_string())));
        fields
    };
    let post = |c: &mut Client, fields: Vec<(&str, String)>| {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        c.post("/portal/register", &fields)
    };
    let id = form.hidden("captcha_id").unwrap();
    let heard = post(&mut c, typed(&id, "", "audio", None));
    assert_eq!((heard.status, heard.title()), (200, "新規ユーザー登録"));
    assert!(heard.has("<audio controls"), "a player");
    assert!(heard.has("src=\"data:audio/wav;base64,UklGR"), "of a WAV");
    assert!(!heard.has("<img"), "no image");
    assert!(heard.has("音声で読み上げられる数字を入力してください。"));
    assert!(!heard.has("正しくありません"), "nothing was checked");
    for kept in [NEW.institution, NEW.name, NEW.contact, NEW.email, NEW.user] {
        assert!(heard.has(&format!("value=\"{kept}\"")), "{kept} stays");
    }
    assert_eq!(
        server.captcha_answer(&id),
        None,
        "the image's challenge is used"
    );

    // Wrong: said in the sound's words, a new sound, and no mail.
    let id = heard.hidden("captcha_id").unwrap();
    let answer = server
        .captcha_answer(&id)
        .expect("the lab lists the sound's answer");
    assert_eq!(answer.len(), 6);
    let wrong = if answer == "000000" {
        "111111"
    } else {
        "000000"
    };
    let again = post(&mut c, typed(&id, wrong, "next", Some("audio")));
    assert_eq!(again.status, 200);
    assert!(again.has("読み上げられた数字が正しくありません。"));
    assert!(again.has("<audio controls"));

    // Right: on to ②.
    let id = again.hidden("captcha_id").unwrap();
    let answer = server.captcha_answer(&id).unwrap();
    let sent = post(&mut c, typed(&id, &answer, "next", Some("audio")));
    assert_eq!(sent.location(), "/portal/register/sent");
    assert_eq!(
        confirmation(&server, 1).split('?').next(),
        Some("/portal/register/confirm")
    );
}

#[test]
fn a_registration_for_a_provisional_accounts_institution_retires_it() {
    let server = spawn();
    // The provisional account is told to register, with a link; another
    // is not.
    let page = login(&mut server.client(), "kari-user", "PortalKari2026");
    assert!(
        page.has("このアカウントは仮アカウントです"),
        "{}",
        page.body
    );
    assert!(page.has("<a href=\"/portal/register\">新規ユーザー登録</a>"));
    let other = login(&mut server.client(), "demo-user", "PortalDemo2026");
    assert!(!other.has("このアカウントは仮アカウントです"));
    let mut kari_session = server.client();
    login(&mut kari_session, "kari-user", "PortalKari2026");
    let mut c = server.client();
    let kari = Typed {
        institution: "1312345678",
        user: "kari-new",
        email: "kari@example.jp",
        email_confirm: "kari@example.jp",
        ..NEW
    };
    register(&mut c, &kari);
    let link = confirmation(&server, 1);
    assert_eq!(
        set_password(&mut c, &link, "kari-new", "KariPortal2026").title(),
        "登録完了"
    );
    // Its session ends with it.
    assert_eq!(kari_session.get("/portal/home").status, 303);
    let old = login(&mut server.client(), "kari-user", "PortalKari2026");
    assert!(
        old.has("ユーザー名またはパスワードが正しくありません。"),
        "retired: {}",
        old.body
    );
    let mut op = demo_operator(&server);
    let csv = op.get("/admin/audit.csv?event=account_retired").body;
    assert!(
        csv.contains("kari-user") && csv.contains("kari-new"),
        "{csv}"
    );
    // The operators find both by the institution's code, and see who
    // registered.
    let found = op.get("/admin?q=1312345678");
    assert!(
        found.has("id=kari-user") && found.has("id=kari-new"),
        "{}",
        found.body
    );
    assert!(op
        .get("/admin/account?site=portal&id=kari-new")
        .has("1312345678"));
    let csv = op.get("/admin/audit.csv?event=registration_completed").body;
    assert!(
        csv.contains("institution 1312345678 (デモ病院), contact 佐藤 一郎"),
        "{csv}"
    );
    // Another institution's accounts are left alone.
    assert!(login(&mut server.client(), "demo-user", "PortalDemo2026").has("ログアウト"));
}

#[test]
fn an_address_in_use_gets_the_same_page_and_a_mail_with_its_user_name_and_no_link() {
    let server = spawn_with(|c| c.rate_limit.recovery.burst = 10);
    let (fresh_raw, fresh_page) = register(&mut server.client(), &NEW);
    confirmation(&server, 1);
    let in_use = Typed {
        email: "demo-user@example.jp",
        email_confirm: "demo-user@example.jp",
        ..NEW
    };
    let (raw, page) = register(&mut server.client(), &in_use);
    assert_eq!(
        comparable(&raw, in_use.email),
        comparable(&fresh_raw, NEW.email)
    );
    assert_eq!(
        comparable(&page, in_use.email),
        comparable(&fresh_page, NEW.email)
    );
    let mail = &server.wait_for_mails(2)[0];
    assert_eq!(mail.to, "demo-user@example.jp");
    assert!(mail.body.contains("demo-user"), "{}", mail.body);
    assert!(mail.body.contains("/portal/reset"));
    assert!(!mail.body.contains("/portal/register/confirm"), "no link");
    // A user name in use reads the same at step ①.
    let (raw, page) = register(
        &mut server.client(),
        &Typed {
            user: "demo-user",
            email: "other@example.jp",
            email_confirm: "other@example.jp",
            ..NEW
        },
    );
    assert_eq!(
        comparable(&raw, "other@example.jp"),
        comparable(&fresh_raw, NEW.email)
    );
    assert_eq!(
        comparable(&page, "other@example.jp"),
        comparable(&fresh_page, NEW.email)
    );
}

#[test]
fn a_taken_user_name_is_said_at_step_three_to_the_confirmed_address() {
    let server = spawn();
    let mut c = server.client();
    register(
        &mut c,
        &Typed {
            user: "demo-user",
            ..NEW
        },
    );
    let link = confirmation(&server, 1);
    let taken = set_password(&mut c, &link, "demo-user", "SatoPortal2026");
    assert!(
        taken.has("このユーザー名はすでに使用されています。"),
        "{}",
        taken.body
    );
    // Another name, on the same link.
    let done = set_password(&mut c, &link, "sato-2", "SatoPortal2026");
    assert_eq!(done.title(), "登録完了");
    assert!(login(&mut server.client(), "demo-user", "PortalDemo2026").has("ログアウト"));
}

#[test]
fn an_expired_link_opens_nothing() {
    let server = spawn();
    let mut c = server.client();
    register(&mut c, &NEW);
    let link = confirmation(&server, 1);
    server.clock.advance(3601);
    let page = server.client().get(&link);
    assert_eq!(page.status, 404);
    assert!(page.has("このURLは無効です。"));
}

#[test]
fn each_field_says_what_is_wrong_with_it_and_keeps_what_was_typed() {
    let server = spawn();
    let mut c = server.client();
    let (_, page) = register(
        &mut c,
        &Typed {
            institution: "0012345678",
            name: "",
            contact: &"佐".repeat(101),
            email: "sato@example.jp",
            email_confirm: "sato@example.com",
            user: "",
        },
    );
    assert_eq!(page.title(), "新規ユーザー登録");
    for message in [
        "医療機関等コードは半角数字10桁(都道府県番号2桁と8桁)で入力してください。",
        "医療機関等名称を入力してください。",
        "担当者氏名は100文字以内で入力してください。",
        "メールアドレスとメールアドレス(確認用)が一致しません。",
        "ユーザー名を入力してください。",
    ] {
        assert!(page.has(message), "{message}");
    }
    assert!(page.has("value=\"0012345678\""));
    assert!(page.has("value=\"sato@example.jp\""));
    // A wrong CAPTCHA is said too, and nothing is mailed.
    let form = c.get("/portal/register");
    let wrong = c.submit(
        "/portal/register",
        &[
            ("captcha_id", &form.hidden("captcha_id").unwrap()),
            ("captcha", "wrong"),
            ("action", "next"),
            ("institution", NEW.institution),
            ("institution_name", NEW.name),
            ("contact", NEW.contact),
            ("email", NEW.email),
            ("email_confirm", NEW.email),
            ("user", NEW.user),
        ],
    );
    assert!(wrong.has("表示されている文字が正しくありません。"));
    assert_eq!(server.stop_and_count_mail(), 0);
}

#[test]
fn one_address_makes_one_account_even_with_two_links() {
    let server = spawn_with(|c| {
        c.rate_limit.recovery.burst = 10;
        c.guard.send_cooldown_secs = 0;
    });
    let mut first = server.client();
    register(&mut first, &NEW);
    let one = confirmation(&server, 1);
    let mut second = server.client();
    register(
        &mut second,
        &Typed {
            user: "sato-2",
            ..NEW
        },
    );
    let two = confirmation(&server, 2);
    assert_eq!(
        set_password(&mut first, &one, NEW.user, "SatoPortal2026").title(),
        "登録完了"
    );
    let refused = set_password(&mut second, &two, "sato-2", "SatoPortal2026");
    assert!(
        refused.has("このメールアドレスはすでにユーザー名「sato-ichiro」で登録されています。"),
        "{}",
        refused.body
    );
    assert!(login(&mut server.client(), "sato-2", "SatoPortal2026")
        .has("ユーザー名またはパスワードが正しくありません。"));
}

#[test]
fn a_provisional_address_cannot_be_registered() {
    let server = spawn();
    let (_, page) = register(
        &mut server.client(),
        &Typed {
            email: "1234567890@13",
            email_confirm: "1234567890@13",
            ..NEW
        },
    );
    assert_eq!(page.title(), "新規ユーザー登録");
    assert!(page.has("メールアドレスを正しく入力してください。"));
    assert_eq!(server.stop_and_count_mail(), 0);
}

#[test]
fn step_three_names_no_taken_user_without_a_valid_password_and_takes_plain_names_only() {
    let server = spawn();
    let mut c = server.client();
    register(&mut c, &NEW);
    let link = confirmation(&server, 1);
    let form = c.get(&link);
    let token = form.hidden("token").unwrap();
    let probe = c.submit(
        "/portal/register/confirm",
        &[
            ("token", &token),
            ("user", "demo-user"),
            ("password", "a"),
            ("password_confirm", "b"),
        ],
    );
    assert!(!probe.has("すでに使用されています"), "{}", probe.body);
    let lookalike = set_password(&mut c, &link, "dеmo-user", "SatoPortal2026");
    assert!(
        lookalike.has("ユーザー名は半角英数字と"),
        "{}",
        lookalike.body
    );
}

#[test]
fn one_sites_session_cookie_is_nothing_on_the_other_site() {
    let server = spawn();
    let mut kaigo = server.client();
    crate::support::kaigo::login(&mut kaigo, "KJ131311111111", "kaigoDemo13");
    let cookie = kaigo.cookie("kagi_kaigo").unwrap().to_string();
    let mut portal = server.client();
    portal.plant_cookie("kagi_portal", &cookie);
    assert_eq!(portal.get("/portal/home").status, 303);
}
