//! Durability: what the user was told is done survives a crash. The real
//! `kagi` executable runs as a child process and is killed with SIGKILL.
//! Without kagi's explicit flushes these tests fail in most runs, not all:
//! sled also flushes by itself every 500 ms, and sometimes in time.

use crate::support::Client;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running kagi process, killed and reaped when dropped, so that a failing
/// test leaves nothing running.
struct Kagi(Child);

impl Kagi {
    /// SIGKILL: no shutdown code runs.
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Kagi {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `kagi demo` on a free port over `dir`; returns the process and its address.
fn start_kagi(dir: &Path, config: &Path) -> (Kagi, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kagi"))
        .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .arg("--config")
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kagi starts");
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let child = Kagi(child);
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(at) = line.find(" on http://") {
            let addr = line[at + " on http://".len()..].parse().unwrap();
            return (child, addr);
        }
    }
    panic!("kagi exited before it was ready");
}

/// The demo office in Osaka and its security address (step 2's fields).
const OSAKA: &[(&str, &str)] = &[
    ("office", "2711111111"),
    ("email", "office-osaka@example.jp"),
];

/// A browser at step 2 of a kaigo recovery.
fn start_recovery(addr: SocketAddr) -> Client {
    let mut c = Client::new(addr);
    c.get("/kaigo/recovery");
    c.submit("/kaigo/recovery", &[("method", "mail")]);
    c
}

/// The code of the first captured mail, waiting for it to arrive.
fn first_otp(addr: SocketAddr) -> String {
    let mut mailbox = Client::new(addr);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the OTP mail never arrived"
        );
        let mails: Vec<serde_json::Value> =
            serde_json::from_str(&mailbox.get("/dev/mail.json").body).unwrap();
        if let Some(m) = mails.first() {
            let body = m["body"].as_str().unwrap();
            let mut lines = body.lines().skip_while(|l| *l != "[ワンタイムパスワード]");
            return lines.nth(1).unwrap().to_string();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A scratch directory with a cheap-argon2 config file; returns (dir, config, db).
fn scratch(name: &str) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("kagi-it-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("kagi.toml");
    std::fs::write(&config, "[argon2]\nmemory_kib = 256\niterations = 1\n").unwrap();
    let db = dir.join("db");
    (dir, config, db)
}

#[test]
fn a_queued_otp_mail_survives_sigkill_right_after_the_code_page() {
    let (dir, config, db) = scratch("crash-mail");
    let (mut kagi, addr) = start_kagi(&db, &config);
    let mut c = start_recovery(addr);
    let sent = c.post("/kaigo/recovery/auth", OSAKA);
    assert_eq!(sent.location(), "/kaigo/recovery/otp");
    kagi.kill();

    // After the restart the mail is delivered: it was on disk.
    let (_kagi, addr) = start_kagi(&db, &config);
    let code = first_otp(addr);
    assert_eq!(code.len(), 6);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_password_change_survives_sigkill_right_after_its_success_page() {
    let (dir, config, db) = scratch("crash-password");

    let (mut kagi, addr) = start_kagi(&db, &config);
    let mut c = start_recovery(addr);
    c.submit("/kaigo/recovery/auth", OSAKA);
    let code = first_otp(addr);
    c.submit("/kaigo/recovery/otp", &[("otp", &code)]);
    let done = c.post(
        "/kaigo/recovery/reset",
        &[
            ("password", "afterCrash1"),
            ("password_confirm", "afterCrash1"),
        ],
    );
    assert_eq!(done.location(), "/kaigo/recovery/done");
    // The user has been told; the process dies at once, with no chance to
    // write anything more.
    kagi.kill();

    let (mut kagi, addr) = start_kagi(&db, &config);
    let mut c = Client::new(addr);
    c.get("/kaigo/login");
    let menu = c.submit(
        "/kaigo/login",
        &[("user_id", "KJ272711111111"), ("password", "afterCrash1")],
    );
    kagi.kill();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        menu.title(),
        "メニュー",
        "the new password must log in after the crash"
    );
}
