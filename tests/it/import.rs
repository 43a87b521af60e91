//! `kagi import`: accounts from another system, passwords already hashed,
//! log in with their old passwords.

use crate::support::exchange;
use argon2::password_hash::{PasswordHasher, SaltString};

fn phc(password: &str) -> String {
    let salt = SaltString::encode_b64(b"kagi-import-test").unwrap();
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

#[test]
fn imported_accounts_log_in_with_their_old_passwords_and_a_bad_line_imports_nothing() {
    let dir = std::env::temp_dir().join(format!("kagi-it-import-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let file = dir.with_extension("jsonl");
    let kagi = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_kagi"))
            .args(args)
            .output()
            .unwrap()
    };
    let d = dir.to_str().unwrap();
    // A bad line anywhere: nothing is written, and the line is named.
    std::fs::write(
        &file,
        format!(
            "{{\"site\":\"portal\",\"user\":\"good\",\"password_phc\":\"{}\"}}\n{{\"site\":\"portal\",\"user\":\"bad\",\"password_phc\":\"plain-text\"}}\n",
            phc("Migrated2026x")
        ),
    )
    .unwrap();
    let refused = kagi(&["import", file.to_str().unwrap(), "--data-dir", d]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("line 2"));

    std::fs::write(
        &file,
        format!(
            "{{\"site\":\"kaigo\",\"office\":\"1322222222\",\"prefecture\":\"13\",\"email\":\"office@example.jp\",\"password_phc\":\"{}\"}}\n\n{{\"site\":\"portal\",\"user\":\"migrated\",\"email\":\"m@example.jp\",\"password_phc\":\"{}\"}}\n",
            phc("oldKaigo2020"),
            phc("OldPortal2020")
        ),
    )
    .unwrap();
    let ok = kagi(&["import", file.to_str().unwrap(), "--data-dir", d]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("imported 2 accounts"));

    // A lab serve on that database: both log in with their old passwords.
    let mut config = kagi::config::Config {
        listen: "127.0.0.1:0".into(),
        data_dir: Some(dir.clone()),
        public_url: Some("http://lab.example.jp".into()),
        ..Default::default()
    };
    config.mail.transport = Some(kagi::config::Transport::Capture);
    let running = kagi::start(kagi::Options {
        config,
        mode: kagi::Mode::Serve,
        clock: kagi::clock::Clock::system(),
    })
    .unwrap();
    let mut c = crate::support::Client::new(running.addr());
    c.get("/kaigo/login");
    let menu = c.submit(
        "/kaigo/login",
        &[("user_id", "KJ131322222222"), ("password", "oldKaigo2020")],
    );
    assert_eq!(menu.title(), "メニュー");
    let mut p = crate::support::Client::new(running.addr());
    p.get("/portal/login");
    let home = p.submit(
        "/portal/login",
        &[("user", "migrated"), ("password", "OldPortal2020")],
    );
    assert_eq!(home.status, 200);
    assert!(home.has("migrated"));
    let nobody = exchange(
        running.addr(),
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(nobody.status, 200);
    running.stop();
    let _ = std::fs::remove_file(file);
    let _ = std::fs::remove_dir_all(dir);
}
