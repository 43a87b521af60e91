//! `kagi import`: accounts from another system, passwords already hashed,
//! log in with their old passwords.

use crate::support::{exchange, kagi_cli, scratch_path};
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
    let dir = scratch_path("import");
    let file = dir.with_extension("jsonl");
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
    let refused = kagi_cli(&["import", file.to_str().unwrap(), "--data-dir", d]);
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
    let ok = kagi_cli(&["import", file.to_str().unwrap(), "--data-dir", d]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("imported 2 accounts"));

    // A lab serve on that database: both log in with their old passwords.
    let running = crate::support::lab_serve_on(&dir, |_| {});
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

/// A PHC string made at `memory_kib` and `iterations`, as another system
/// (or an older setting) would have made it.
fn phc_at(memory_kib: u32, iterations: u32, password: &str) -> String {
    let salt = SaltString::encode_b64(b"kagi-import-test").unwrap();
    let params = argon2::Params::new(memory_kib, iterations, 1, None).unwrap();
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

#[test]
fn logins_cost_the_same_whatever_cost_the_imported_hash_has_and_a_right_one_is_made_anew() {
    let dir = scratch_path("import-cost");
    let file = dir.with_extension("jsonl");
    let config = dir.with_extension("toml");
    // The old system hashed at 16 MiB and t=3; kagi here is set to 256 KiB
    // and t=1, some hundred times cheaper.
    std::fs::write(&config, "[argon2]\nmemory_kib = 256\niterations = 1\n").unwrap();
    std::fs::write(
        &file,
        format!(
            "{{\"site\":\"portal\",\"user\":\"old-user\",\"email\":\"old@example.jp\",\"password_phc\":\"{}\"}}\n",
            phc_at(16_384, 3, "Imported2020x")
        ),
    )
    .unwrap();
    let out = kagi_cli(&[
        "import".as_ref(),
        file.as_os_str(),
        "--data-dir".as_ref(),
        dir.as_os_str(),
        "--config".as_ref(),
        config.as_os_str(),
    ]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("password hashes of another cost than the configured m=256,t=1,p=1: 1 (1 at m=16384,t=3,p=1)"),
        "{said}"
    );
    let d = dir.clone();
    // `kagi import` writes sled's data directory.
    let server = crate::support::spawn_on_sled_with(move |c| {
        c.data_dir = Some(d);
        c.rate_limit.login.burst = 1_000;
    });
    let login = |user: &str, password: &str| {
        let mut c = server.client();
        c.get("/portal/login");
        let began = std::time::Instant::now();
        let page = c.post("/portal/login", &[("user", user), ("password", password)]);
        (began.elapsed(), page)
    };
    // Interleaved: a wrong password for the imported account, any for a
    // name that does not exist. A busy machine can skew one round of 25;
    // a real difference (a hash on one side only) skews every round, so
    // the rule fails only when all three rounds show the gap.
    let median = |v: &mut Vec<std::time::Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1000.0
    };
    let mut rounds = Vec::new();
    for _ in 0..3 {
        let (mut known, mut unknown) = (Vec::new(), Vec::new());
        for _ in 0..25 {
            known.push(login("old-user", "Wrong2020x").0);
            unknown.push(login("no-such-user", "Wrong2020x").0);
        }
        let (known, unknown) = (median(&mut known), median(&mut unknown));
        eprintln!("imported account {known:.1} ms, unknown name {unknown:.1} ms (medians of 25)");
        assert!(known > 5.0, "the imported cost is paid: {known:.1} ms");
        rounds.push((known, unknown));
        if (known - unknown).abs() < known / 3.0 {
            break;
        }
    }
    assert!(
        rounds
            .iter()
            .any(|(known, unknown)| (known - unknown).abs() < known / 3.0),
        "imported account vs unknown name, ms, per round: {rounds:?}"
    );
    // Once the lockout those failures earned is over, the right password
    // logs in, and its hash is made anew at the configured cost.
    server.clock.advance(15 * 60 + 1);
    let (_, home) = login("old-user", "Imported2020x");
    assert_eq!(home.status, 303);
    server.stop();
    let store = crate::support::open_store(&dir);
    let account = store
        .account(kagi::site::Site::Portal, "old-user")
        .unwrap()
        .unwrap();
    assert!(
        account
            .password_phc
            .starts_with("$argon2id$v=19$m=256,t=1,p=1$"),
        "{}",
        account.password_phc
    );
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_file(file);
    let _ = std::fs::remove_file(config);
}
