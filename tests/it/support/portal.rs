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

/// Posts ① as its form would (the hidden CAPTCHA id comes along, and the
/// sound's hidden mode when it shows one); the answer, not the page a
/// redirect leads to.
pub fn post_identify(c: &mut Client, page: &Page, user: &str, captcha: &str, action: &str) -> Page {
    let id = page.hidden("captcha_id").unwrap();
    let mode = page.hidden("captcha_mode");
    let mut fields = vec![
        ("captcha_id", id.as_str()),
        ("user", user),
        ("captcha", captcha),
        ("action", action),
    ];
    fields.extend(mode.as_deref().map(|m| ("captcha_mode", m)));
    c.post("/portal/reset", &fields)
}

/// Presses 音声で聞く on ① with `user` typed; the page with the sound
/// and the answer the lab lists for it.
pub fn hear_identify(c: &mut Client, page: &Page, user: &str) -> (Page, String) {
    let heard = post_identify(c, page, user, "", "audio");
    assert_eq!(heard.status, 200);
    let id = heard.hidden("captcha_id").expect("a CAPTCHA id");
    let answer = captcha_answer_at(c.addr(), &id).expect("the lab lists the answer");
    (heard, answer)
}

/// The WAV a page's `<audio>` plays: its inline `data:` URI, decoded.
pub fn sound(page: &Page) -> Option<Vec<u8>> {
    use base64ct::{Base64, Encoding};
    let marker = "<audio controls preload=\"auto\" src=\"data:audio/wav;base64,";
    let start = page.body.find(marker)? + marker.len();
    let end = start + page.body[start..].find('"')?;
    Base64::decode_vec(&page.body[start..end]).ok()
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
