//! Drivers of the portal site, as its users take its steps: CAPTCHA
//! answers come from the lab's `/dev/captcha.json` (a demo, or `serve`
//! with the capture transport).

use super::{captcha_answer_at, Client, Page};

/// Opens ① and returns the page and the answer of its CAPTCHA.
pub fn open_identify(c: &mut Client) -> (Page, String) {
    let page = c.get("/portal/reset");
    assert_eq!(page.title(), "パスワードのリセット");
    let id = page.hidden("captcha_id").expect("a CAPTCHA id");
    let answer = captcha_answer_at(c.addr(), &id).expect("the lab lists the answer");
    (page, answer)
}

/// Posts ① as its form would (the hidden CAPTCHA id comes along); the
/// answer, not the page a redirect leads to.
pub fn post_identify(c: &mut Client, page: &Page, user: &str, captcha: &str, action: &str) -> Page {
    let id = page.hidden("captcha_id").unwrap();
    let fields = [
        ("captcha_id", id.as_str()),
        ("user", user),
        ("captcha", captcha),
        ("action", action),
    ];
    c.post("/portal/reset", &fields)
}

/// Submits ① as its form would, and follows where it leads.
pub fn submit_identify(
    c: &mut Client,
    page: &Page,
    user: &str,
    captcha: &str,
    action: &str,
) -> Page {
    let answer = post_identify(c, page, user, captcha, action);
    c.follow(answer)
}

/// ① 特定 and ② 検証; returns the page after ②.
pub fn request_link(c: &mut Client, user: &str, email: &str) -> Page {
    let (page, answer) = open_identify(c);
    let verify = submit_identify(c, &page, user, &answer, "next");
    assert_eq!(verify.title(), "パーソナルデータ検証 - メールアドレス");
    c.submit("/portal/reset/verify", &[("email", email)])
}

pub fn login(c: &mut Client, user: &str, password: &str) -> Page {
    c.get("/portal/login");
    c.submit("/portal/login", &[("user", user), ("password", password)])
}

/// Opens a mailed link and sets the password with its form.
pub fn set_password(c: &mut Client, link: &str, password: &str) -> Page {
    let form = c.get(link);
    assert_eq!(form.status, 200);
    c.submit(
        "/portal/passwordreset",
        &[
            ("token", &form.hidden("token").unwrap()),
            ("password", password),
            ("password_confirm", password),
        ],
    )
}
