//! What every response carries, and what bad input gets: never a panic,
//! never a half-write, always a readable page with the right status.

use crate::support::{exchange, spawn};
use std::io::Write;

const SECURITY_HEADERS: [(&str, &str); 5] = [
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'self'; img-src 'self' data:; media-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-store"),
];

#[test]
fn every_page_and_error_carries_the_security_headers() {
    let server = spawn();
    let mut c = server.client();
    let pages = [
        ("/", 200),
        ("/kaigo", 200),
        ("/kaigo/login", 200),
        ("/kaigo/recovery", 200),
        ("/kaigo/recovery/otp", 200),
        ("/kaigo/menu", 303),
        ("/nowhere", 404),
        ("/kaigo/nowhere", 404),
        ("/dev/mail", 200),
        ("/dev/captcha", 200),
        ("/healthz", 200),
        ("/portal", 200),
        ("/portal/login", 200),
        ("/portal/reset", 200),
        ("/portal/reset/verify", 200),
        ("/portal/passwordreset?token=00", 404),
        ("/portal/home", 303),
    ];
    for (path, status) in pages {
        let page = c.get(path);
        assert_eq!(page.status, status, "{path}");
        for (name, value) in SECURITY_HEADERS {
            assert_eq!(page.header(name), Some(value), "{name} on {path}");
        }
    }
    // Errors are drawn under the header of the site they happened on.
    assert!(c
        .get("/kaigo/nowhere")
        .has("<header class=\"system\">介護電子請求受付システム</header>"));
    assert!(c
        .get("/portal/nowhere")
        .has("<a class=\"site-name\" href=\"/portal\">医療機関等向け総合ポータルサイト</a>"));
    let css = c.get("/static/kagi.css");
    assert_eq!(css.header("Content-Type"), Some("text/css; charset=utf-8"));
    assert_eq!(css.header("X-Content-Type-Options"), Some("nosniff"));
    // No page carries inline script or style: the CSP would block it.
    for path in ["/kaigo/login", "/kaigo/recovery", "/dev/mail"] {
        let body = c.get(path).body;
        assert!(
            !body.contains("<script") && !body.contains("style="),
            "{path}"
        );
    }
}

#[test]
fn the_flow_cookie_is_http_only_strict_and_scoped_to_its_site() {
    let server = spawn();
    let page = server.client().get("/kaigo/login");
    let cookie = page.header("Set-Cookie").unwrap();
    assert!(cookie.starts_with("kagi_kaigo="));
    let value = cookie.split(';').next().unwrap().split('=').nth(1).unwrap();
    assert_eq!(value.len(), 64, "256 random bits as hex");
    for attribute in ["Path=/kaigo", "HttpOnly", "SameSite=Strict"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
}

#[test]
fn a_post_without_the_csrf_token_is_refused_and_changes_nothing() {
    let server = spawn();
    let mut c = server.client();
    c.get("/kaigo/recovery/auth");
    for fields in [
        vec![
            ("office", "2711111111"),
            ("email", "office-osaka@example.jp"),
        ],
        vec![
            ("office", "2711111111"),
            ("email", "office-osaka@example.jp"),
            ("csrf", "0"),
        ],
    ] {
        let page = c.post_raw("/kaigo/recovery/auth", &fields);
        assert_eq!(page.status, 403);
        assert!(page.body.contains("操作を続行できません"));
    }
    // A browser with no cookie at all (a cross-site form) is refused too.
    let mut stranger = server.client();
    let page = stranger.post_raw(
        "/kaigo/login",
        &[("user_id", "KJ131311111111"), ("password", "kaigoDemo13")],
    );
    assert_eq!(page.status, 403);
    assert!(page.header("Location").is_none());
    assert_eq!(server.stop_and_count_mail(), 0, "no code may be sent");
}

#[test]
fn bad_input_gets_a_readable_error_never_a_500() {
    let server = spawn();
    let addr = server.addr;
    let mut c = server.client();
    let login = c.get("/kaigo/login");
    let cookie = login
        .header("Set-Cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let csrf = login.csrf().unwrap();
    let post = |path: &str, content_type: &str, body: &[u8]| {
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: {cookie}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        exchange(addr, &req)
    };
    let form = "application/x-www-form-urlencoded";
    let big = format!("csrf={csrf}&user_id={}", "A".repeat(20_000));
    let cases: Vec<(&str, &str, Vec<u8>, u16)> = vec![
        ("/kaigo/login", form, big.into_bytes(), 413),
        (
            "/kaigo/login",
            form,
            format!("csrf={csrf}&user_id=%ZZ").into_bytes(),
            400,
        ),
        (
            "/kaigo/login",
            form,
            format!("csrf={csrf}&user_id=%FF%FE").into_bytes(),
            400,
        ),
        ("/kaigo/login", form, b"\xff\xfe\x00garbage".to_vec(), 400),
        (
            "/kaigo/login",
            "application/json",
            b"{\"user_id\":1}".to_vec(),
            400,
        ),
        (
            "/kaigo/menu",
            form,
            format!("csrf={csrf}").into_bytes(),
            405,
        ),
        (
            "/kaigo/logoutx",
            form,
            format!("csrf={csrf}").into_bytes(),
            404,
        ),
        (
            "/kaigo/recovery/auth",
            form,
            format!("csrf={csrf}&office=1311111111&email=a%0D%0ABcc:%20x@y").into_bytes(),
            200,
        ),
        (
            "/kaigo/recovery/otp",
            form,
            format!("csrf={csrf}&otp=%00%00%00").into_bytes(),
            200,
        ),
        (
            "/kaigo/recovery/prefecture",
            form,
            format!("csrf={csrf}&prefecture=99").into_bytes(),
            200,
        ),
        (
            "/kaigo/recovery/reset",
            form,
            format!("csrf={csrf}&password=x").into_bytes(),
            200,
        ),
        (
            "/kaigo/login/code",
            form,
            format!("csrf={csrf}&security_code=x").into_bytes(),
            303,
        ),
    ];
    for (path, content_type, body, status) in cases {
        let page = post(path, content_type, &body);
        assert_eq!(
            page.status,
            status,
            "{path} {:?}",
            String::from_utf8_lossy(&body[..body.len().min(60)])
        );
        assert_eq!(page.header("X-Frame-Options"), Some("DENY"));
        if status >= 400 {
            assert!(page.body.contains("<h1>"), "a readable page for {status}");
        }
    }
    // The address with a line break was refused as an address, not mailed.
    let page = post(
        "/kaigo/recovery/auth",
        form,
        format!("csrf={csrf}&office=2711111111&email=office-osaka@example.jp%0D%0ABcc:%20x@y")
            .as_bytes(),
    );
    assert!(page
        .body
        .contains("セキュリティ用メールアドレスを正しく入力してください。"));

    // Odd requests on the wire.
    for (raw, status) in [
        (&b"POST /kaigo/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 20000\r\n\r\n"[..], 413),
        (&b"POST /kaigo/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\nExpect: 100-continue\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 6\r\n\r\ncsrf=x"[..], 403),
        (&b"DELETE /kaigo/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"[..], 405),
        (&b"GET /kaigo/login?a=%ZZ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"[..], 400),
        (&b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"[..], 404),
        (&b"GET /kaigo/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: kagi_kaigo=../x; a\r\n\r\n"[..], 200),
        (&b"GET / HTTP/1.1\r\nHost: x\r\nCookie: \xff\xfe\r\n\r\n"[..], 400),
    ] {
        let page = exchange(addr, raw);
        assert_eq!(page.status, status, "{:?}", String::from_utf8_lossy(raw));
        assert!(page.body.contains("<h1>"), "a readable page for {status}");
    }
    // The server still works.
    assert_eq!(server.client().get("/kaigo/login").status, 200);
}

#[test]
fn serve_refuses_to_start_without_public_url_or_mail_settings() {
    let dir = crate::support::scratch_path("serve");
    let mut config = kagi::config::Config {
        listen: "127.0.0.1:0".into(),
        data_dir: Some(dir.clone()),
        ..Default::default()
    };
    let start = |config: kagi::config::Config| {
        kagi::start(kagi::Options {
            config,
            mode: kagi::Mode::Serve,
            clock: kagi::clock::Clock::system(),
        })
        .err()
        .map(|e| e.to_string())
    };
    let message = start(config.clone()).expect("refused");
    assert!(message.contains("public_url"), "{message}");
    config.public_url = Some("https://login.example.jp".into());
    let message = start(config.clone()).expect("refused");
    assert!(message.contains("mail.transport"), "{message}");
    config.mail.transport = Some(kagi::config::Transport::Smtp);
    config.mail.from = Some("no-reply@example.jp".into());
    let message = start(config.clone()).expect("refused");
    assert!(message.contains("mail.smtp.host"), "{message}");
    config.mail.smtp.host = Some("127.0.0.1".into());
    config.mail.smtp.security = kagi::config::Security::Plain;
    config.mail.smtp.port = Some(2525);
    let running = kagi::start(kagi::Options {
        config,
        mode: kagi::Mode::Serve,
        clock: kagi::clock::Clock::system(),
    })
    .expect("a complete config starts");
    // No /dev/ pages outside the demo.
    for path in [
        "/dev/mail",
        "/dev/mail.json",
        "/dev/captcha",
        "/dev/captcha.json",
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert_eq!(
            exchange(running.addr(), request.as_bytes()).status,
            404,
            "{path}"
        );
    }
    running.stop();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_client_that_stalls_mid_body_does_not_hold_up_anyone_else() {
    let server = spawn();
    let addr = server.addr;
    // Announces bodies and never sends them: a small one (tiny_http waits
    // for it in its own connection thread) and a large one (refused unread).
    let mut stalled = Vec::new();
    for length in [500, 5000] {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(
            s,
            "POST /kaigo/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {length}\r\n\r\ncsrf="
        )
        .unwrap();
        stalled.push(s);
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let started = std::time::Instant::now();
    for _ in 0..5 {
        assert_eq!(server.client().get("/kaigo/login").status, 200);
    }
    // Generous for a loaded machine; a stall would last until the stalled
    // connections close, i.e. forever.
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    drop(stalled);
}

#[test]
fn under_https_the_cookie_is_a_host_cookie_and_hsts_is_sent() {
    let server = crate::support::spawn_with(|c| {
        c.public_url = Some("https://login.example.jp".into());
    });
    let page = server.client().get("/kaigo/login");
    let cookie = page.header("Set-Cookie").unwrap();
    assert!(cookie.starts_with("__Host-kagi_kaigo="), "{cookie}");
    for attribute in ["Path=/;", "Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Domain"));
    assert_eq!(
        page.header("Strict-Transport-Security"),
        Some("max-age=31536000")
    );
    // The flow works on the prefixed cookie.
    let mut c = server.client();
    c.get("/kaigo/recovery/auth");
    let next = c.post(
        "/kaigo/recovery/auth",
        &[
            ("office", "2711111111"),
            ("email", "office-osaka@example.jp"),
        ],
    );
    assert_eq!(next.status, 303, "CSRF passes on the __Host- cookie");
    // Without https: no Secure, no HSTS.
    let plain = spawn().client().get("/kaigo/login");
    assert!(!plain.header("Set-Cookie").unwrap().contains("Secure"));
    assert_eq!(plain.header("Strict-Transport-Security"), None);
}

#[test]
fn an_overlong_field_or_too_many_fields_are_a_400() {
    let server = spawn();
    let mut c = server.client();
    c.get("/kaigo/recovery/auth");
    let long = "a".repeat(1025);
    let page = c.post(
        "/kaigo/recovery/auth",
        &[("office", "2711111111"), ("email", &long)],
    );
    assert_eq!(page.status, 400);
    let many: Vec<(String, String)> = (0..20).map(|i| (format!("f{i}"), "x".into())).collect();
    let fields: Vec<(&str, &str)> = many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(c.post("/kaigo/recovery/auth", &fields).status, 400);
}

#[test]
fn a_lab_serve_with_capture_shows_dev_pages_and_says_so_on_every_page() {
    let dir = crate::support::scratch_path("lab");
    let mut config = kagi::config::Config {
        listen: "127.0.0.1:0".into(),
        data_dir: Some(dir.clone()),
        public_url: Some("http://lab.example.jp".into()),
        ..Default::default()
    };
    config.mail.transport = Some(kagi::config::Transport::Capture);
    config.argon2.memory_kib = 256;
    config.argon2.iterations = 1;
    let running = kagi::start(kagi::Options {
        config,
        mode: kagi::Mode::Serve,
        clock: kagi::clock::Clock::system(),
    })
    .expect("a lab config starts");
    let get = |path: &str| {
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        exchange(running.addr(), request.as_bytes())
    };
    assert_eq!(get("/dev/mail").status, 200);
    assert_eq!(get("/dev/mail.json").status, 200);
    let banner = "検証環境: メールは送信されず、/dev/mail に保存されます。";
    for path in [
        "/kaigo/login",
        "/portal/reset",
        "/nowhere",
        "/kaigo/recovery/otp",
    ] {
        assert!(get(path).body.contains(banner), "{path}");
    }
    // Even a refusal of the front door carries it.
    let refused = exchange(
        running.addr(),
        b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    assert_eq!(refused.status, 400);
    assert!(refused.body.contains(banner));
    // Demo accounts exist only in the demo.
    let login = exchange(
        running.addr(),
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(login.status, 200);
    running.stop();
    let store = crate::support::open_store(&dir);
    assert!(store
        .account(kagi::site::Site::Kaigo, "KJ272711111111")
        .unwrap()
        .is_none());
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}
