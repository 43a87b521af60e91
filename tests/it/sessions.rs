//! Logged-in sessions: random, stored only as digests, ended by idleness,
//! by age and by logout on the server.

use crate::support::kaigo;
use crate::support::spawn_with;

const USER: &str = "KJ131311111111";
const PASSWORD: &str = "kaigoDemo13";

#[test]
fn a_session_ends_after_30_idle_minutes_and_after_12_hours_in_any_case() {
    let server = spawn_with(|_| {});
    let mut c = server.client();
    assert_eq!(kaigo::login(&mut c, USER, PASSWORD).title(), "メニュー");
    // (A few seconds' margin: the real clock ticks on under the test's.)
    server.clock.advance(1790);
    assert_eq!(c.get("/kaigo/menu").status, 200, "used within 30 minutes");
    server.clock.advance(1801);
    assert_eq!(c.get("/kaigo/menu").status, 303, "idle for over 30 minutes");

    // Busy all day: still over at 12 hours.
    assert_eq!(kaigo::login(&mut c, USER, PASSWORD).title(), "メニュー");
    let mut elapsed = 0;
    while elapsed + 1700 < 12 * 3600 {
        server.clock.advance(1700);
        elapsed += 1700;
        assert_eq!(c.get("/kaigo/menu").status, 200, "at {elapsed} s");
    }
    server.clock.advance(12 * 3600 - elapsed);
    assert_eq!(c.get("/kaigo/menu").status, 303, "12 hours after login");
}

#[test]
fn logout_deletes_the_session_on_the_server_and_the_store_never_holds_the_cookie() {
    let server = spawn_with(|_| {});
    let mut c = server.client();
    kaigo::login(&mut c, USER, PASSWORD);
    let cookie = c.cookie("kagi_kaigo").unwrap().to_string();
    assert_eq!(cookie.len(), 64, "256 random bits");
    // A copy of the cookie elsewhere works before the logout…
    let mut copy = server.client();
    copy.plant_cookie("kagi_kaigo", &cookie);
    assert_eq!(copy.get("/kaigo/menu").status, 200);
    c.get("/kaigo/menu");
    let out = c.post("/kaigo/logout", &[]);
    assert_eq!(out.status, 303);
    // …and not after: the session is gone from the server, not just the browser.
    assert_eq!(copy.get("/kaigo/menu").status, 303);
    let dir = server.stop();
    // The cookie value appears nowhere in the database files.
    for entry in walk(&dir) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(cookie.len()).any(|w| w == cookie.as_bytes()),
            "{}",
            entry.display()
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
