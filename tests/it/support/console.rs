//! Drivers of the operators' console: a TOTP app written here from RFC
//! 6238 (not kagi's), enrolment from `kagi operator add`'s link, and the
//! login, as an operator does them.

use super::{kagi_cli, Client, Page, TestServer};
use std::net::SocketAddr;
use std::path::Path;

/// What an authenticator app shows for the base32 `secret` at Unix time
/// `now`: HMAC-SHA-1 of the 30-second step, dynamically truncated to six
/// digits (RFC 6238 over RFC 4226).
pub fn totp(secret: &str, now: u64) -> String {
    let key = base32(secret);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &key);
    let mac = ring::hmac::sign(&key, &(now / 30).to_be_bytes());
    let mac = mac.as_ref();
    let at = (mac[19] & 0x0f) as usize;
    let number = u32::from_be_bytes([mac[at] & 0x7f, mac[at + 1], mac[at + 2], mac[at + 3]]);
    format!("{:06}", number % 1_000_000)
}

fn base32(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut value, mut out) = (0u32, 0u64, Vec::new());
    for c in text.bytes().filter(|c| *c != b'=') {
        let index = ALPHABET.iter().position(|a| *a == c).expect("base32") as u64;
        value = (value << 5) | index;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((value >> bits) as u8);
        }
    }
    out
}

#[test]
fn the_test_app_reads_the_rfc_6238_vectors() {
    // "12345678901234567890" in base32; Appendix B, SHA-1, last 6 digits.
    let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    assert_eq!(totp(secret, 59), "287082");
    assert_eq!(totp(secret, 1_111_111_109), "081804");
    assert_eq!(totp(secret, 2_000_000_000), "279037");
}

/// The demo operator's name and password (the demo's welcome prints them).
pub const DEMO_OPERATOR: &str = "demo-operator";
pub const DEMO_PASSWORD: &str = "OperatorDemo2026";

/// Logs in at `/admin/login`; returns the page reached.
pub fn login(c: &mut Client, name: &str, password: &str, code: &str) -> Page {
    c.get("/admin/login");
    c.submit(
        "/admin/login",
        &[("name", name), ("password", password), ("code", code)],
    )
}

/// A browser logged in as the demo operator, at the console's search.
/// Each call uses the code of a new 30-second step (moving the server's
/// clock past the last one used): a code opens one login only.
pub fn demo_operator(server: &TestServer) -> Client {
    server.clock.advance(30);
    let secret = server.demo_operator_secret();
    let mut c = server.client();
    let page = login(
        &mut c,
        DEMO_OPERATOR,
        DEMO_PASSWORD,
        &totp(&secret, server.clock.now()),
    );
    assert_eq!(page.title(), "アカウント検索", "{}", page.body);
    c
}

/// `kagi operator ARGS…` against the server at `addr` on `dir`: the exit
/// code and what it printed.
pub fn operator_cli(addr: SocketAddr, dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let server = addr.to_string();
    let mut all = vec!["operator"];
    all.extend(args);
    all.extend(["--data-dir", dir.to_str().unwrap(), "--server", &server]);
    let out = kagi_cli(&all);
    let mut said = String::from_utf8_lossy(&out.stdout).into_owned();
    said += &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), said)
}

/// A new operator `name` on the server at `addr` (data directory `dir`),
/// enrolled from `kagi operator add`'s link, which logs them in: the
/// browser.
pub fn enrolled_operator(
    addr: SocketAddr,
    dir: &Path,
    clock: &kagi::clock::Clock,
    name: &str,
) -> Client {
    let (code, said) = operator_cli(addr, dir, &["add", name]);
    assert_eq!(code, Some(0), "{said}");
    let mut c = Client::new(addr);
    let (page, secret) = open_enrolment(&mut c, &link_path(&said));
    let password = "OperatorTest2026";
    let home = c.submit(
        "/admin/enrol",
        &[
            ("token", &page.hidden("token").unwrap()),
            ("password", password),
            ("password2", password),
            ("code", &totp(&secret, clock.now())),
        ],
    );
    assert_eq!(home.title(), "アカウント検索", "{}", home.body);
    c
}

/// The enrolment link `kagi operator add|reset` printed, as a path.
pub fn link_path(said: &str) -> String {
    let url = said
        .lines()
        .find(|l| l.contains("/admin/enrol?token="))
        .unwrap_or_else(|| panic!("no enrolment link in: {said}"));
    let at = url.find("/admin/enrol").unwrap();
    url[at..].trim().to_string()
}

/// Opens an enrolment link and reads the secret off the page, as a person
/// types it into an app when the QR code does not scan.
pub fn open_enrolment(c: &mut Client, path: &str) -> (Page, String) {
    let page = c.get(path);
    assert_eq!(page.status, 200, "{}", page.body);
    let secret = page
        .body
        .split("<code class=\"secret\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the secret on the page")
        .to_string();
    (page, secret)
}

/// Posts an action's confirm form for the account `site`/`id`, after
/// opening its confirm page; the page reached.
pub fn act(c: &mut Client, site: &str, id: &str, action: &str, extra: &[(&str, &str)]) -> Page {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("site", site), ("id", id), ("do", action)])
        .finish();
    let confirm = c.get(&format!("/admin/account/action?{query}"));
    assert_eq!(confirm.status, 200, "{action}: {}", confirm.body);
    let mut fields = vec![("site", site), ("id", id), ("do", action)];
    fields.extend_from_slice(extra);
    c.submit("/admin/account/action", &fields)
}
