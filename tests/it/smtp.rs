//! Delivery over SMTP in `serve` mode: the OTP leaves through a mail server,
//! not the capture box. The server here is a minimal SMTP sink on
//! 127.0.0.1 that records what it receives.

use crate::support::Client;
use mail_parser::MessageParser;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One received message: envelope and data.
#[derive(Debug, Clone)]
struct Received {
    from: String,
    to: Vec<String>,
    data: String,
}

/// Accepts SMTP sessions on a free port until the test ends.
fn smtp_sink() -> (u16, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let inbox = Arc::new(Mutex::new(Vec::new()));
    let store = inbox.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let store = store.clone();
            std::thread::spawn(move || {
                let mut out = stream.try_clone().unwrap();
                let mut lines = BufReader::new(stream);
                let mut current = Received {
                    from: String::new(),
                    to: vec![],
                    data: String::new(),
                };
                out.write_all(b"220 sink ESMTP\r\n").unwrap();
                let mut line = String::new();
                while lines.read_line(&mut line).unwrap_or(0) > 0 {
                    let command = line.trim_end().to_string();
                    line.clear();
                    let upper = command.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") {
                        b"250-sink\r\n250 8BITMIME\r\n"
                    } else if let Some(from) = upper.strip_prefix("MAIL FROM:") {
                        current.from = from.trim_matches(['<', '>', ' ']).to_ascii_lowercase();
                        b"250 ok\r\n"
                    } else if let Some(to) = upper.strip_prefix("RCPT TO:") {
                        current
                            .to
                            .push(to.trim_matches(['<', '>', ' ']).to_ascii_lowercase());
                        b"250 ok\r\n"
                    } else if upper == "DATA" {
                        out.write_all(b"354 go ahead\r\n").unwrap();
                        loop {
                            lines.read_line(&mut line).unwrap();
                            if line == ".\r\n" {
                                line.clear();
                                break;
                            }
                            current
                                .data
                                .push_str(line.strip_prefix('.').unwrap_or(&line));
                            line.clear();
                        }
                        store.lock().unwrap().push(current.clone());
                        current = Received {
                            from: String::new(),
                            to: vec![],
                            data: String::new(),
                        };
                        b"250 queued\r\n"
                    } else if upper == "QUIT" {
                        out.write_all(b"221 bye\r\n").unwrap();
                        break;
                    } else {
                        b"250 ok\r\n"
                    };
                    out.write_all(reply).unwrap();
                }
            });
        }
    });
    (port, inbox)
}

/// A `serve` configuration that delivers through the sink on `port`.
fn serve_config(dir: &std::path::Path, port: u16) -> kagi::config::Config {
    let mut config = kagi::config::Config {
        listen: "127.0.0.1:0".into(),
        public_url: Some("http://login.example.jp".into()),
        data_dir: Some(dir.to_path_buf()),
        ..Default::default()
    };
    config.argon2.memory_kib = 256;
    config.argon2.iterations = 1;
    config.mail.transport = Some(kagi::config::Transport::Smtp);
    config.mail.from = Some("kagi <no-reply@example.jp>".into());
    config.mail.smtp.host = Some("127.0.0.1".into());
    config.mail.smtp.port = Some(port);
    config.mail.smtp.security = kagi::config::Security::Plain;
    config
}

/// `serve` loads no demo accounts and has no account admin yet: a demo run
/// on the same database puts them there.
fn seed_demo_accounts(dir: &std::path::Path) {
    let mut config = kagi::config::Config {
        listen: "127.0.0.1:0".into(),
        data_dir: Some(dir.to_path_buf()),
        ..Default::default()
    };
    config.argon2.memory_kib = 256;
    config.argon2.iterations = 1;
    let clock = kagi::clock::Clock::system();
    kagi::start(kagi::Options {
        config,
        mode: kagi::Mode::Demo,
        clock,
    })
    .unwrap()
    .stop();
}

fn recover(addr: std::net::SocketAddr, office: &str, email: &str) -> Client {
    let mut c = Client::new(addr);
    c.get("/kaigo/recovery");
    c.submit("/kaigo/recovery", &[("method", "mail")]);
    let page = c.submit(
        "/kaigo/recovery/auth",
        &[("office", office), ("email", email)],
    );
    assert!(page.has("宛に送信しました"));
    c
}

#[test]
fn serve_mode_delivers_the_otp_over_smtp() {
    let (port, inbox) = smtp_sink();
    let dir = std::env::temp_dir().join(format!("kagi-it-smtp-{}", std::process::id()));
    seed_demo_accounts(&dir);
    let clock = kagi::clock::Clock::system();
    let running = kagi::start(kagi::Options {
        config: serve_config(&dir, port),
        mode: kagi::Mode::Serve,
        clock,
    })
    .unwrap();

    // A wrong address: no mail leaves.
    recover(running.addr(), "2711111111", "someone@example.jp");
    // The right one: the code goes out over SMTP.
    let mut c = recover(running.addr(), "2711111111", "office-osaka@example.jp");
    let deadline = Instant::now() + Duration::from_secs(10);
    while inbox.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no mail reached the SMTP server");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let received = inbox.lock().unwrap().clone();
    assert_eq!(received.len(), 1, "only the matching pair is mailed");
    assert_eq!(received[0].from, "no-reply@example.jp");
    assert_eq!(received[0].to, ["office-osaka@example.jp"]);
    let parsed = MessageParser::default()
        .parse(received[0].data.as_bytes())
        .unwrap();
    assert_eq!(
        parsed.subject(),
        Some("ワンタイムパスワード発行通知 (介護保険)")
    );
    let body = parsed.body_text(0).unwrap().replace("\r\n", "\n");
    let code = body
        .lines()
        .skip_while(|l| *l != "[ワンタイムパスワード]")
        .nth(1)
        .unwrap();
    assert!(c
        .submit("/kaigo/recovery/otp", &[("otp", code)])
        .has("KJ272711111111"));

    // Accepted by the server, the mail has left the outbox.
    running.stop();
    let store = crate::support::open_store(&dir);
    assert!(store.outbox().unwrap().is_empty());
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}
