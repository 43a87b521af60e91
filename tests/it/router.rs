//! A property test over the whole router: random methods, paths, headers
//! and bodies, sent on the wire to a running server, never make it panic
//! and always get one of the statuses kagi means to give.

use crate::support::{exchange, parse_response, spawn_with, Page};
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const STATUSES: [u16; 8] = [200, 303, 400, 403, 404, 405, 413, 429];

const PATHS: &[&str] = &[
    "/",
    "/kaigo",
    "/kaigo/login",
    "/kaigo/login/code",
    "/kaigo/menu",
    "/kaigo/security-code",
    "/kaigo/logout",
    "/kaigo/recovery",
    "/kaigo/recovery/auth",
    "/kaigo/recovery/prefecture",
    "/kaigo/recovery/otp",
    "/kaigo/recovery/reset",
    "/kaigo/recovery/done",
    "/kaigo/recovery/postal",
    "/kaigo/recovery/postal/done",
    "/kaigo/not-me",
    "/portal",
    "/portal/login",
    "/portal/home",
    "/portal/logout",
    "/portal/reset",
    "/portal/reset/verify",
    "/portal/reset/sent",
    "/portal/passwordreset",
    "/portal/passwordreset/done",
    "/portal/not-me",
    "/healthz",
    "/static/kagi.css",
    "/dev/mail",
    "/dev/mail.json",
    "/dev/captcha",
    "/dev/captcha.json",
    "/nowhere",
    "/kaigo/",
    "//",
    "/%FF",
    "/kaigo/../etc",
];

const FIELDS: &[&str] = &[
    "csrf",
    "user_id",
    "password",
    "password_confirm",
    "security_code",
    "code",
    "code_confirm",
    "action",
    "method",
    "office",
    "email",
    "prefecture",
    "otp",
    "office_name",
    "contact",
    "phone",
    "user",
    "captcha",
    "captcha_id",
    "captcha_mode",
    "token",
];

#[derive(Clone, Debug)]
struct Wild {
    method: String,
    path: String,
    query: Option<String>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    form_type: bool,
    use_visit: bool,
}

fn pick<T: Clone>(g: &mut Gen, items: &[T]) -> T {
    g.choose(items).unwrap().clone()
}

fn text(g: &mut Gen) -> String {
    let pieces = [
        "a",
        "1",
        "%",
        "%2",
        "%E4%BA%8B",
        "+",
        "=",
        "&",
        "ｱ",
        "\u{0}",
        "\r\n",
        "../",
        " ",
        "KJ27",
        "2711111111",
        "@",
        "x".repeat(300).leak(),
    ];
    (0..usize::arbitrary(g) % 6)
        .map(|_| pick(g, &pieces))
        .collect()
}

impl Arbitrary for Wild {
    fn arbitrary(g: &mut Gen) -> Wild {
        let method = pick(
            g,
            &[
                "GET", "HEAD", "POST", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "BREW",
            ],
        )
        .to_string();
        let mut path = pick(g, PATHS).to_string();
        if bool::arbitrary(g) && bool::arbitrary(g) {
            path.push_str(&format!("/{}", u8::arbitrary(g)));
        }
        let query = bool::arbitrary(g).then(|| {
            (0..usize::arbitrary(g) % 4)
                .map(|_| {
                    format!(
                        "{}={}",
                        pick(g, FIELDS),
                        text(g).replace(['\r', '\n', ' ', '\0'], "")
                    )
                })
                .collect::<Vec<_>>()
                .join("&")
        });
        let headers = (0..usize::arbitrary(g) % 5)
            .map(|_| {
                let name = pick(
                    g,
                    &[
                        "Cookie",
                        "Content-Type",
                        "X-Forwarded-For",
                        "Accept",
                        "X-Kagi-Peer",
                        "Connection",
                        "Expect",
                        "Upgrade",
                        "X-Random",
                    ],
                )
                .to_string();
                let value = pick(
                    g,
                    &[
                        "kagi_kaigo=00",
                        "kagi_portal=zz; a=b",
                        "application/json",
                        "text/plain",
                        "198.51.100.7",
                        "close",
                        "100-continue",
                        "websocket",
                        "\u{7f}",
                        "1.2.3.4, ::1",
                        "",
                        "x; y",
                    ],
                )
                .to_string();
                (name, value)
            })
            .collect();
        let body = if bool::arbitrary(g) {
            (0..usize::arbitrary(g) % 5)
                .map(|_| format!("{}={}", pick(g, FIELDS), text(g)))
                .collect::<Vec<_>>()
                .join("&")
                .into_bytes()
        } else if u8::arbitrary(g) < 16 {
            vec![b'a'; 16 * 1024 + 1 + usize::arbitrary(g) % 4096]
        } else {
            Vec::<u8>::arbitrary(g)
        };
        Wild {
            method,
            path,
            query,
            headers,
            body,
            form_type: bool::arbitrary(g) || bool::arbitrary(g),
            use_visit: bool::arbitrary(g),
        }
    }
}

/// Sends `raw` and reads the answer; a HEAD answer has no body to wait for.
fn send(addr: SocketAddr, raw: &[u8]) -> Page {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(raw);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    parse_response(&out)
}

#[test]
fn random_requests_never_panic_and_get_a_known_status() {
    let server = spawn_with(|_| {});
    let addr = server.addr;
    // A real visit (cookie and CSRF token) lets some posts reach the handlers.
    let first = exchange(
        addr,
        b"GET /kaigo/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let cookie = first
        .header("Set-Cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let csrf = first.csrf().unwrap();
    TARGET.set((addr, cookie, csrf)).unwrap();
    QuickCheck::new()
        .tests(400)
        .max_tests(1000)
        .quickcheck(property as fn(Wild) -> TestResult);
    // And the server is still there.
    let after = exchange(
        addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(after.status, 200);
}

/// The server the property runs against (quickcheck takes plain functions).
static TARGET: std::sync::OnceLock<(SocketAddr, String, String)> = std::sync::OnceLock::new();

fn property(w: Wild) -> TestResult {
    let (addr, cookie, csrf) = TARGET.get().unwrap();
    let addr = *addr;
    {
        let target = match &w.query {
            Some(q) => format!("{}?{q}", w.path),
            None => w.path.clone(),
        };
        let mut head = format!(
            "{} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n",
            w.method
        );
        let mut body = w.body.clone();
        if w.use_visit {
            head += &format!("Cookie: {cookie}\r\n");
            let mut with = format!("csrf={csrf}&").into_bytes();
            with.extend_from_slice(&body);
            body = with;
        }
        if w.form_type {
            head += "Content-Type: application/x-www-form-urlencoded\r\n";
        }
        for (name, value) in &w.headers {
            head += &format!("{name}: {value}\r\n");
        }
        head += &format!("Content-Length: {}\r\n\r\n", body.len());
        let mut raw = head.into_bytes();
        raw.extend_from_slice(&body);
        let page = send(addr, &raw);
        if STATUSES.contains(&page.status) {
            TestResult::passed()
        } else {
            TestResult::error(format!("status {} for {w:?}", page.status))
        }
    }
}
