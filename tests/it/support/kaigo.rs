//! Drivers of the kaigo site: the demo's offices and the steps of a login
//! or a recovery, as office staff take them.

use super::{Client, Page};
use std::net::SocketAddr;

pub const OSAKA_OFFICE: &str = "2711111111";
pub const OSAKA_MAIL: &str = "office-osaka@example.jp";
pub const TOKYO_OFFICE: &str = "1311111111";
pub const TOKYO_MAIL: &str = "mailforsecurity-001@example.jp";

/// Login with user ID and password; returns the page reached.
pub fn login(client: &mut Client, user_id: &str, password: &str) -> Page {
    client.get("/kaigo/login");
    client.submit(
        "/kaigo/login",
        &[("user_id", user_id), ("password", password)],
    )
}

/// From the login screen to step 2 (office and address), as the seed's
/// screens go; returns step 2's page.
pub fn open_auth(client: &mut Client) -> Page {
    let login = client.get("/kaigo/login");
    assert!(login.has("<a href=\"/kaigo/recovery\">パスワード等を紛失した方はこちら</a>"));
    let choice = client.get("/kaigo/recovery");
    assert_eq!(choice.title(), "パスワード等を紛失した方");
    assert!(choice.has("セキュリティ用メールアドレスを登録済みの場合はこちら"));
    let auth = client.submit("/kaigo/recovery", &[("method", "mail")]);
    assert_eq!(auth.title(), "ログイン情報再設定認証");
    assert!(auth.has("事業所番号と登録済みのセキュリティ用メールアドレスを入力し、【次へ】ボタンを押してください。"));
    auth
}

/// A browser at step 2 of a recovery, the pages on the way not looked
/// at: a server whose disk refuses writes may answer them with 503.
pub fn at_step_2(addr: SocketAddr) -> Client {
    let mut c = Client::new(addr);
    c.get("/kaigo/recovery");
    c.submit("/kaigo/recovery", &[("method", "mail")]);
    c
}

/// From the login screen through steps 1 and 2, as the seed's screens go.
pub fn start_recovery(client: &mut Client, office: &str, email: &str) -> Page {
    open_auth(client);
    client.submit(
        "/kaigo/recovery/auth",
        &[("office", office), ("email", email)],
    )
}

/// Everything after the code was accepted: the reset screen and its answer.
pub fn reset(client: &mut Client, password: &str) -> Page {
    client.submit(
        "/kaigo/recovery/reset",
        &[("password", password), ("password_confirm", password)],
    )
}
