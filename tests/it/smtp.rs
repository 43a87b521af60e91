//! Delivery through a real SMTP server that kagi's authors did not write:
//! Python's aiosmtpd, installed by the tests into a virtual environment of
//! their own under target/ (`support::python`), run
//! as a child process per test and killed when the test ends. Every
//! received message is parsed by mail-parser.

use crate::support::kaigo::{self, OSAKA_MAIL, OSAKA_OFFICE};
use crate::support::{
    kagi_cli, open_store, outbox_counts, python, run_kagi, scratch_path, undelivered, wait_until,
    Client,
};
use mail_parser::MessageParser;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SERVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp/server.py");
/// A running aiosmtpd (or silent) server; killed on drop.
pub struct Smtpd {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Smtpd {
    pub fn start(mode: &str) -> Smtpd {
        Smtpd::start_on(mode, free_port())
    }

    pub fn start_on(mode: &str, port: u16) -> Smtpd {
        let dir = scratch_path(&format!("smtpd-{mode}"));
        let mut child = Command::new(python())
            .arg(SERVER)
            .args([mode, &port.to_string()])
            .arg(&dir)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "READY", "the SMTP server did not start");
        Smtpd { child, port, dir }
    }

    /// The test CA that signed this server's certificate (TLS modes).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("certs/ca.pem")
    }

    /// The messages received so far: raw bytes and envelope facts.
    pub fn received(&self) -> Vec<(Vec<u8>, serde_json::Value)> {
        self.files("eml")
            .into_iter()
            .map(|path| {
                let meta = std::fs::read_to_string(path.with_extension("json")).unwrap();
                (
                    std::fs::read(&path).unwrap(),
                    serde_json::from_str(&meta).unwrap(),
                )
            })
            .collect()
    }

    /// The messages whose DATA was refused (reject_data mode), raw.
    pub fn refused(&self) -> Vec<Vec<u8>> {
        self.files("refused")
            .into_iter()
            .map(|path| std::fs::read(path).unwrap())
            .collect()
    }

    /// EHLO commands: one per plain session.
    pub fn sessions(&self) -> usize {
        self.files("ehlo").len()
    }

    /// Connections accepted (silent mode).
    pub fn accepted(&self) -> usize {
        self.files("accepted").len()
    }

    fn files(&self, extension: &str) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == extension))
            .collect()
    }

    pub fn wait_for(&self, count: usize) -> Vec<(Vec<u8>, serde_json::Value)> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.received();
            if got.len() >= count {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{count} mails expected, {} arrived",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Smtpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The Message-ID of a raw message: the same for every copy of one
/// outbox mail, another for every other mail.
pub(crate) fn message_id(raw: &[u8]) -> String {
    MessageParser::default()
        .parse(raw)
        .and_then(|m| m.message_id().map(str::to_string))
        .expect("a Message-ID")
}

/// A `serve` configuration that delivers through 127.0.0.1:`port`.
pub(crate) fn serve_config(dir: &Path, port: u16) -> kagi::config::Config {
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
    config.mail.smtp.timeout_secs = 5;
    config
}

/// `serve` loads no demo accounts: a demo run on the same database puts
/// them there.
fn seed_demo_accounts(dir: &Path) {
    let mut config = kagi::config::Config {
        listen: "127.0.0.1:0".into(),
        data_dir: Some(dir.to_path_buf()),
        ..Default::default()
    };
    config.argon2.memory_kib = 256;
    config.argon2.iterations = 1;
    kagi::start(kagi::Options {
        config,
        mode: kagi::Mode::Demo,
        clock: kagi::clock::Clock::system(),
    })
    .unwrap()
    .stop();
}

/// A fresh data directory with the demo accounts in it.
pub(crate) fn seeded_dir(name: &str) -> PathBuf {
    let dir = scratch_path(name);
    seed_demo_accounts(&dir);
    dir
}

pub(crate) fn serve(config: kagi::config::Config, clock: &kagi::clock::Clock) -> kagi::Running {
    kagi::start(kagi::Options {
        config,
        mode: kagi::Mode::Serve,
        clock: clock.clone(),
    })
    .unwrap()
}

/// Steps 1–2 of a kaigo recovery; the page must say the code was sent.
pub(crate) fn recover(addr: std::net::SocketAddr, office: &str, email: &str) -> Client {
    let mut c = Client::new(addr);
    let page = kaigo::start_recovery(&mut c, office, email);
    assert!(page.has("宛に送信しました"));
    c
}

/// Waits until kagi has tried every real mail of its outbox at least once
/// (or delivered it): the first try is over, whatever it came to.
pub(crate) fn wait_for_first_tries(addr: std::net::SocketAddr, dir: &Path) {
    wait_until(20, "a first try of every queued mail", || {
        undelivered(addr, dir)
            .iter()
            .all(|m| m["attempts"].as_u64().unwrap() >= 1 || !m["failed"].is_null())
    });
}

/// Waits until kagi's outbox holds no real mail: each was sent, dropped,
/// or (when `failed`) given up. A mail leaves the outbox only after the
/// relay accepted it, and the test relay saves a message before it says
/// so: what was sent has been received by then.
fn wait_for_empty_outbox(addr: std::net::SocketAddr, dir: &Path, failed: u64) {
    wait_until(20, "an outbox with nothing left to send", || {
        outbox_counts(addr, dir) == (0, failed)
    });
}

/// Parses a received OTP mail as a mail client would and checks every
/// header the issue names; returns the code.
fn check_otp_mail(raw: &[u8]) -> String {
    let parsed = MessageParser::default().parse(raw).expect("a MIME message");
    assert_eq!(
        parsed.subject(),
        Some("ワンタイムパスワード発行通知 (介護保険)")
    );
    assert_eq!(
        parsed
            .from()
            .and_then(|f| f.first())
            .and_then(|a| a.address()),
        Some("no-reply@example.jp")
    );
    assert_eq!(
        parsed
            .to()
            .and_then(|t| t.first())
            .and_then(|a| a.address()),
        Some("office-osaka@example.jp")
    );
    assert!(parsed.date().is_some(), "a Date header");
    let id = parsed.message_id().expect("a Message-ID");
    assert!(id.ends_with("@example.jp"), "{id}");
    let text = String::from_utf8_lossy(raw);
    assert!(
        text.contains("Content-Type: text/plain; charset=\"utf-8\"")
            || text.contains("Content-Type: text/plain; charset=utf-8"),
        "{text}"
    );
    let body = parsed.body_text(0).unwrap().replace("\r\n", "\n");
    assert!(body.contains("介護電子請求受付システムからのお知らせです。"));
    body.lines()
        .skip_while(|l| *l != "[ワンタイムパスワード]")
        .nth(1)
        .unwrap()
        .to_string()
}

#[test]
fn plain_delivery_reaches_a_real_server_once_and_parses() {
    let smtpd = Smtpd::start("plain");
    let dir = seeded_dir("smtp-plain");
    let clock = kagi::clock::Clock::system();
    let running = serve(serve_config(&dir, smtpd.port), &clock);
    // A wrong address sends nothing; the right one sends the code.
    recover(running.addr(), OSAKA_OFFICE, "someone@example.jp");
    let mut c = recover(running.addr(), OSAKA_OFFICE, OSAKA_MAIL);
    let got = smtpd.wait_for(1);
    // The wrong address's decoy was queued before the code, and the mail
    // thread takes the outbox in order: once nothing real is left in it,
    // a decoy that went out would be here too.
    wait_for_empty_outbox(running.addr(), &dir, 0);
    assert_eq!(
        smtpd.received().len(),
        1,
        "only the matching pair is mailed"
    );
    assert_eq!(got[0].1["mail_from"], "no-reply@example.jp");
    assert_eq!(got[0].1["rcpt_tos"][0], OSAKA_MAIL);
    let code = check_otp_mail(&got[0].0);
    assert!(c
        .submit("/kaigo/recovery/otp", &[("otp", &code)])
        .has("KJ272711111111"));
    running.stop();
    let store = open_store(&dir);
    assert!(
        store.outbox().unwrap().iter().all(|m| m.decoy),
        "sent mail left the outbox"
    );
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn starttls_verifies_the_relay_with_the_configured_ca_and_refuses_it_without() {
    let smtpd = Smtpd::start("starttls_auth");
    let dir = seeded_dir("smtp-tls");
    let clock = kagi::clock::Clock::system();
    let mut config = serve_config(&dir, smtpd.port);
    config.mail.smtp.security = kagi::config::Security::Starttls;
    config.mail.smtp.username = Some("kagi".into());
    config.mail.smtp.password = Some("relay-secret".into());
    // Without the CA file: the public roots do not know the test CA.
    let running = serve(config.clone(), &clock);
    recover(running.addr(), OSAKA_OFFICE, OSAKA_MAIL);
    // The first try is over (a mail that went out would have left the
    // outbox, and been saved by the relay before that).
    wait_for_first_tries(running.addr(), &dir);
    assert!(
        smtpd.received().is_empty(),
        "an unverified relay gets nothing"
    );
    running.stop();
    let store = open_store(&dir);
    let queued: Vec<_> = store
        .outbox()
        .unwrap()
        .into_iter()
        .filter(|m| !m.decoy)
        .collect();
    assert_eq!(queued.len(), 1);
    let error = queued[0].last_error.clone().unwrap_or_default();
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    drop(store);
    // With it: verified, authenticated, delivered, over TLS.
    config.mail.smtp.ca_file = Some(smtpd.ca_file());
    let running = serve(config, &clock);
    clock.advance(60);
    let got = smtpd.wait_for(1);
    assert_eq!(got[0].1["tls"], true);
    assert_eq!(got[0].1["authenticated"], true);
    check_otp_mail(&got[0].0);
    running.stop();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_wrong_password_is_not_accepted_and_implicit_tls_works() {
    let smtpd = Smtpd::start("smtps");
    let dir = seeded_dir("smtp-smtps");
    let clock = kagi::clock::Clock::system();
    let mut config = serve_config(&dir, smtpd.port);
    config.mail.smtp.security = kagi::config::Security::Tls;
    config.mail.smtp.ca_file = Some(smtpd.ca_file());
    config.mail.smtp.username = Some("kagi".into());
    config.mail.smtp.password = Some("wrong".into());
    let running = serve(config.clone(), &clock);
    recover(running.addr(), OSAKA_OFFICE, OSAKA_MAIL);
    wait_for_first_tries(running.addr(), &dir);
    assert!(smtpd.received().is_empty(), "refused login, nothing sent");
    let tried = undelivered(running.addr(), &dir);
    assert_eq!(tried.len(), 1, "kept for another try");
    let error = tried[0]["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("535"), "{error}");
    running.stop();
    config.mail.smtp.password = Some("relay-secret".into());
    let running = serve(config, &clock);
    clock.advance(60);
    let got = smtpd.wait_for(1);
    assert_eq!(got[0].1["authenticated"], true);
    check_otp_mail(&got[0].0);
    running.stop();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn mail_queued_while_the_server_is_down_arrives_once_when_it_is_up() {
    let port = free_port();
    let dir = seeded_dir("smtp-down");
    let clock = kagi::clock::Clock::system();
    let running = serve(serve_config(&dir, port), &clock);
    recover(running.addr(), OSAKA_OFFICE, OSAKA_MAIL);
    // Nobody listens: the first try fails and is put off.
    wait_for_first_tries(running.addr(), &dir);
    let smtpd = Smtpd::start_on("plain", port);
    // 30 s later (on kagi's clock) the retry finds the server.
    clock.advance(30);
    let first = smtpd.wait_for(1);
    wait_for_empty_outbox(running.addr(), &dir, 0);
    // And only once, however long we wait: five minutes on, a new code
    // goes out, behind any copy of the first that was still to come.
    clock.advance(5 * 60);
    recover(running.addr(), OSAKA_OFFICE, OSAKA_MAIL);
    let got = smtpd.wait_for(2);
    assert_eq!(got.len(), 2, "the first mail came again");
    let mut ids: Vec<String> = got.iter().map(|(raw, _)| message_id(raw)).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 2, "one mail came twice");
    assert!(ids.contains(&message_id(&first[0].0)));
    running.stop();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_mail_whose_code_expired_while_the_relay_was_down_is_dropped_not_sent() {
    let port = free_port();
    let dir = seeded_dir("smtp-expired");
    let clock = kagi::clock::Clock::system();
    let running = serve(serve_config(&dir, port), &clock);
    recover(running.addr(), OSAKA_OFFICE, OSAKA_MAIL);
    wait_for_first_tries(running.addr(), &dir);
    // The relay is back only after the 30-minute code has expired.
    let smtpd = Smtpd::start_on("plain", port);
    clock.advance(31 * 60);
    // Gone from the outbox, and not as a failure: dropped, or sent (and
    // then the relay has it).
    wait_for_empty_outbox(running.addr(), &dir, 0);
    assert!(smtpd.received().is_empty(), "an expired code is not mailed");
    running.stop();
    let store = open_store(&dir);
    assert!(
        store.outbox().unwrap().iter().all(|m| m.decoy),
        "and not kept"
    );
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn mails_due_together_share_one_connection() {
    let port = free_port();
    let dir = seeded_dir("smtp-burst");
    let clock = kagi::clock::Clock::system();
    let mut config = serve_config(&dir, port);
    config.guard.send_cooldown_secs = 0;
    let running = serve(config, &clock);
    // Three codes queue up while the relay is down…
    for _ in 0..3 {
        recover(running.addr(), OSAKA_OFFICE, OSAKA_MAIL);
    }
    wait_for_first_tries(running.addr(), &dir);
    assert_eq!(undelivered(running.addr(), &dir).len(), 3);
    // …and go out together, on one connection, when it is back.
    let smtpd = Smtpd::start_on("plain", port);
    clock.advance(30);
    smtpd.wait_for(3);
    assert_eq!(smtpd.sessions(), 1, "one connection for the burst");
    running.stop();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_5xx_marks_the_mail_failed_at_once_without_a_retry_storm() {
    let smtpd = Smtpd::start("reject_data");
    let dir = seeded_dir("smtp-5xx");
    let clock = kagi::clock::Clock::system();
    let running = serve(serve_config(&dir, smtpd.port), &clock);
    recover(running.addr(), OSAKA_OFFICE, OSAKA_MAIL);
    // Failed for good after the one refusal…
    wait_for_empty_outbox(running.addr(), &dir, 1);
    let refused = smtpd.refused();
    assert_eq!(refused.len(), 1, "failed after one try");
    let first = message_id(&refused[0]);
    // …and not tried again: five minutes on kagi's clock, in which a
    // temporary failure would have been tried again several times (10 s,
    // 20 s, 40 s, …), then a new code, which the mail thread takes after
    // any try of the first that was due.
    clock.advance(5 * 60);
    recover(running.addr(), OSAKA_OFFICE, OSAKA_MAIL);
    wait_for_empty_outbox(running.addr(), &dir, 2);
    let ids: Vec<String> = smtpd.refused().iter().map(|r| message_id(r)).collect();
    assert_eq!(ids.len(), 2, "tried once, not again: {ids:?}");
    assert_eq!(ids.iter().filter(|id| **id == first).count(), 1, "{ids:?}");
    // The operator sees them, on /healthz with the admin token and with
    // `kagi mail list`…
    assert_eq!(
        crate::support::admin_get(running.addr(), &dir, "/healthz").body,
        r#"{"failed":2,"outbox":0,"status":"ok"}"#
    );
    // …and nobody else does, not even a request from this machine (behind
    // a proxy on the same host that adds no header, every client is local).
    for request in [
        &b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"[..],
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.5\r\nConnection: close\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong-token-wrong-token\r\nConnection: close\r\n\r\n",
    ] {
        let stranger = crate::support::exchange(running.addr(), request);
        assert_eq!(
            stranger.body, r#"{"status":"ok"}"#,
            "no counts without the token"
        );
    }
    let server = running.addr().to_string();
    let kagi = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--data-dir", dir.to_str().unwrap(), "--server", &server]);
        let out = kagi_cli(&all);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, listed) = kagi(&["mail", "list"]);
    assert_eq!(code, Some(0), "{listed}");
    assert!(
        listed.contains("failed") && listed.contains(OSAKA_MAIL),
        "{listed}"
    );
    // The oldest first: the first mail.
    let id = listed
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    // …and `kagi mail retry` tries it once more, at once.
    let (code, said) = kagi(&["mail", "retry", &id]);
    assert_eq!(code, Some(0), "{said}");
    wait_until(10, "the retry to reach the server", || {
        smtpd.refused().len() >= 3
    });
    wait_for_empty_outbox(running.addr(), &dir, 2);
    let ids: Vec<String> = smtpd.refused().iter().map(|r| message_id(r)).collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert_eq!(ids.iter().filter(|id| **id == first).count(), 2, "{ids:?}");
    // The console shows both, given up, with the relay's answer; its
    // button tries one again, as `kagi mail retry` does.
    let mut op =
        crate::support::console::enrolled_operator(running.addr(), &dir, &clock, "mail-desk");
    let page = op.get("/admin/mail");
    assert_eq!(page.title(), "メール送信状況");
    assert_eq!(page.body.matches("送信失敗").count(), 2, "{}", page.body);
    assert!(page.has("554"), "{}", page.body);
    let retried = op.submit("/admin/mail/retry", &[("id", &id)]);
    assert!(retried.has("再送を開始しました。"), "{}", retried.body);
    wait_until(10, "the console's retry to reach the server", || {
        smtpd.refused().len() >= 4
    });
    wait_for_empty_outbox(running.addr(), &dir, 2);
    // Without the token the path is the console's, which sends a browser
    // with no operator session to its login: no mail is shown.
    let stranger = crate::support::exchange(
        running.addr(),
        b"GET /admin/mail HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(stranger.status, 303);
    assert_eq!(stranger.header("location"), Some("/admin/login"));
    assert!(!stranger.body.contains("example"), "{}", stranger.body);
    running.stop();
    let store = open_store(&dir);
    let failed: Vec<_> = store
        .outbox()
        .unwrap()
        .into_iter()
        .filter(|m| !m.decoy)
        .collect();
    assert_eq!(failed.len(), 2, "kept for the operator");
    assert!(
        failed.iter().all(|m| m.failed.is_some()),
        "failed again after the retry"
    );
    assert!(store
        .audit_events()
        .unwrap()
        .iter()
        .any(|e| e.event == "mail_failed" && e.outcome.contains("554")));
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[test]
fn a_server_that_never_answers_does_not_slow_the_pages() {
    let smtpd = Smtpd::start("silent");
    let clock = kagi::clock::Clock::system();
    // Two servers alike, both with the silent relay: on one a mail hangs
    // on it (for up to a minute, longer than the pages take), the other
    // sends nothing. Their pages, fetched in turn, meet the same load.
    let start = |name: &str| {
        let dir = seeded_dir(name);
        let mut config = serve_config(&dir, smtpd.port);
        config.mail.smtp.timeout_secs = 60;
        (serve(config, &clock), dir)
    };
    let (hung, hung_dir) = start("smtp-silent");
    let (calm, calm_dir) = start("smtp-calm");
    recover(hung.addr(), OSAKA_OFFICE, OSAKA_MAIL);
    wait_until(10, "kagi to connect to the silent relay", || {
        smtpd.accepted() >= 1
    });
    let (mut slowed, mut base) = (Vec::new(), Vec::new());
    let (mut h, mut c) = (Client::new(hung.addr()), Client::new(calm.addr()));
    for _ in 0..200 {
        for (client, times) in [(&mut h, &mut slowed), (&mut c, &mut base)] {
            let started = Instant::now();
            assert_eq!(client.get("/kaigo/login").status, 200);
            times.push(started.elapsed());
        }
    }
    // Every page was fetched while the mail hung: its first try is not over.
    let mail = undelivered(hung.addr(), &hung_dir);
    assert_eq!(mail[0]["attempts"], 0, "the mail stopped hanging: {mail:?}");
    let (slowed, base) = (median(&mut slowed), median(&mut base));
    eprintln!("page median while a mail hangs {slowed:?}, with no mail {base:?}");
    assert!(
        slowed < base * 3,
        "pages while a mail hangs: median {slowed:?}, with no mail {base:?}"
    );
    // The relay's end ends the hung try: the servers stop at once.
    drop(smtpd);
    hung.stop();
    calm.stop();
    let _ = std::fs::remove_dir_all(hung_dir);
    let _ = std::fs::remove_dir_all(calm_dir);
}

#[test]
fn mail_queued_when_kagi_is_killed_is_delivered_after_the_restart() {
    let port = free_port();
    let dir = seeded_dir("smtp-kill");
    let config = dir.with_extension("toml");
    std::fs::write(
        &config,
        format!(
            r#"listen = "127.0.0.1:0"
public_url = "http://login.example.jp"
data_dir = "{}"
[argon2]
memory_kib = 256
iterations = 1
[mail]
transport = "smtp"
from = "kagi <no-reply@example.jp>"
retry_initial_secs = 1
retry_max_secs = 1
[mail.smtp]
host = "127.0.0.1"
port = {port}
security = "plain"
timeout_secs = 5
"#,
            dir.display()
        ),
    )
    .unwrap();
    let serve_binary = || {
        run_kagi(
            &["serve".as_ref(), "--config".as_ref(), config.as_os_str()],
            None,
            None,
        )
    };
    // The relay is down; the code is queued and tried; kagi dies without
    // a word.
    let (mut first, addr) = serve_binary();
    recover(addr, OSAKA_OFFICE, OSAKA_MAIL);
    wait_for_first_tries(addr, &dir);
    first.kill();
    // The relay comes up, kagi comes back: the mail arrives, once.
    let smtpd = Smtpd::start_on("plain", port);
    let (second, addr) = serve_binary();
    let got = smtpd.wait_for(1);
    check_otp_mail(&got[0].0);
    wait_for_empty_outbox(addr, &dir, 0);
    assert_eq!(smtpd.received().len(), 1);
    drop(second);
    let _ = std::fs::remove_file(config);
    let _ = std::fs::remove_dir_all(dir);
}
