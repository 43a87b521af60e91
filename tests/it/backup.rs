//! `kagi backup` from a running server under load and `kagi restore` into a
//! new directory: every password change answered before the backup began
//! logs in on the restored database, its audit trail verifies, and a
//! backup restored without its key file keeps the accounts but no live
//! code. `kagi backup` is sled's: these servers are on sled whatever
//! engine the tests run on (PostgreSQL is backed up by its own tools).

use crate::support::{
    kagi_cli, kaigo, mails_at, scratch_dir, scratch_path, spawn_on_sled_with, Client,
};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The demo's kaigo offices with a security address, and their user IDs.
const OFFICES: [(&str, &str, &str); 2] = [
    (kaigo::OSAKA_OFFICE, kaigo::OSAKA_MAIL, "KJ272711111111"),
    (kaigo::TOKYO_OFFICE, kaigo::TOKYO_MAIL, "KJ131311111111"),
];

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The newest one-time password mail to `email` the server at `addr`
/// captured.
fn newest_code_to(addr: SocketAddr, email: &str) -> Option<crate::support::Mail> {
    mails_at(addr)
        .into_iter()
        .find(|m| m.to == email && m.body.contains("[ワンタイムパスワード]"))
}

/// One whole recovery of `office` to `password`, as office staff go
/// through it; true once the completion page has been answered.
fn recover(addr: SocketAddr, office: &str, email: &str, password: &str) -> bool {
    let before = newest_code_to(addr, email).map(|m| m.body);
    let mut c = Client::new(addr);
    let mut sent = kaigo::start_recovery(&mut c, office, email);
    if sent.title() != "ワンタイムパスワード入力" {
        // Tokyo's office bills two prefectures: the recovery asks which.
        sent = c.submit("/kaigo/recovery/prefecture", &[("prefecture", "13")]);
    }
    assert_eq!(sent.title(), "ワンタイムパスワード入力", "{}", sent.body);
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        let mail = newest_code_to(addr, email);
        if let Some(mail) = mail.filter(|m| Some(&m.body) != before.as_ref()) {
            break mail.otp();
        }
        assert!(Instant::now() < deadline, "no code came for {office}");
        std::thread::sleep(Duration::from_millis(10));
    };
    let reset = c.submit("/kaigo/recovery/otp", &[("otp", &code)]);
    assert_eq!(reset.status, 200, "{}", reset.body);
    kaigo::reset(&mut c, password).title() == "処理終了"
}

/// `kagi backup FILE` of the test server, as its administrator runs it.
fn backup(server: &crate::support::TestServer, file: &Path) -> std::process::Output {
    kagi_cli(&[
        "backup".as_ref(),
        file.as_os_str(),
        "--data-dir".as_ref(),
        server.dir.as_os_str(),
        "--server".as_ref(),
        server.addr.to_string().as_ref(),
    ])
}

/// A lab `serve` (cheap hashes, room for wrong passwords) on `dir`.
fn serve_on(dir: &Path) -> kagi::Running {
    crate::support::lab_serve_on(dir, |c| {
        c.argon2.memory_kib = 256;
        c.argon2.iterations = 1;
        c.guard.login_failures = 100;
    })
}

#[test]
fn a_backup_under_load_restores_every_password_change_answered_before_it_and_verifies() {
    let server = spawn_on_sled_with(|c| {
        c.guard.otps_per_day = 10_000;
        c.guard.send_cooldown_secs = 0;
        for bucket in [
            &mut c.rate_limit.recovery,
            &mut c.rate_limit.otp,
            &mut c.rate_limit.login,
        ] {
            bucket.burst = 100_000;
        }
    });
    let addr = server.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let changed = Arc::new(AtomicUsize::new(0));
    // Each office recovers again and again: (password, when answered).
    let workers: Vec<_> = OFFICES
        .iter()
        .map(|&(office, email, _)| {
            let (stop, changed) = (stop.clone(), changed.clone());
            std::thread::spawn(move || {
                let mut done: Vec<(String, Instant)> = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let password = format!("bk{}x{n}", &office[..4]);
                    if recover(addr, office, email, &password) {
                        done.push((password, Instant::now()));
                        changed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                done
            })
        })
        .collect();
    // Recoveries are under way before and while the backup is made.
    while changed.load(Ordering::Relaxed) < 6 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let file = scratch_path("backup").with_extension("kagi");
    let began = Instant::now();
    let made = backup(&server, &file);
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let changes: Vec<Vec<(String, Instant)>> =
        workers.into_iter().map(|w| w.join().unwrap()).collect();
    assert!(made.status.success(), "{}", text(&made));
    let said = text(&made);
    assert!(said.contains("THE KEY FILE IS NOT IN THE BACKUP"), "{said}");
    assert!(
        said.contains(&server.dir.join("kagi.key").display().to_string()),
        "it names the key file to keep: {said}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the backup is kagi's user's alone");
    assert!(
        !server.dir.join("backup.kagi").exists(),
        "the server's copy goes once fetched"
    );
    let key = server.dir.join("kagi.key");
    let kept_key = scratch_path("backup-key");
    std::fs::copy(&key, &kept_key).unwrap();
    drop(server);

    // Restored into a new directory with its key file.
    let restored = scratch_dir("restored").join("data");
    let out = kagi_cli(&[
        "restore".as_ref(),
        file.as_os_str(),
        "--data-dir".as_ref(),
        restored.as_os_str(),
        "--key-file".as_ref(),
        kept_key.as_os_str(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let verify = kagi_cli(&[
        "audit".as_ref(),
        "verify".as_ref(),
        "--data-dir".as_ref(),
        restored.as_os_str(),
    ]);
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(
        text(&verify).contains("audit trail intact"),
        "{}",
        text(&verify)
    );

    let running = serve_on(&restored);
    for ((_, _, user_id), changes) in OFFICES.iter().zip(&changes) {
        // The last change answered before the backup began, and those
        // after it (which the backup may or may not hold).
        let before = changes.iter().rposition(|(_, at)| *at < began);
        let before = before.unwrap_or_else(|| panic!("{user_id}: no change before the backup"));
        let candidates: Vec<&str> = changes[before..].iter().map(|(p, _)| p.as_str()).collect();
        let logs_in = candidates.iter().rev().find(|password| {
            kaigo::login(&mut Client::new(running.addr()), user_id, password).title() == "メニュー"
        });
        assert!(
            logs_in.is_some(),
            "{user_id}: none of {candidates:?} logs in: a change answered before the backup was lost"
        );
        // An older password does not.
        if before > 0 {
            let older = &changes[before - 1].0;
            let page = kaigo::login(&mut Client::new(running.addr()), user_id, older);
            assert_ne!(
                page.title(),
                "メニュー",
                "{user_id}: an older password logs in"
            );
        }
    }
    drop(running);
    let _ = std::fs::remove_file(&file);
}

#[test]
fn a_restore_checks_its_file_and_key_and_without_the_key_keeps_accounts_but_no_live_code() {
    let server = spawn_on_sled_with(|_| {});
    let addr = server.addr;
    // A code is live at the time of the backup.
    let mut browser = Client::new(addr);
    kaigo::start_recovery(&mut browser, kaigo::OSAKA_OFFICE, kaigo::OSAKA_MAIL);
    crate::support::wait_for_mails_at(addr, 1);
    let file = scratch_path("backup-nokey").with_extension("kagi");
    // Only the admin token makes or fetches one.
    for request in [
        "POST /admin/backup HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "POST /admin/backup HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "GET /admin/backup?offset=0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ] {
        assert_eq!(crate::support::exchange(addr, request.as_bytes()).status, 404);
    }
    assert!(!server.dir.join("backup.kagi").exists());
    let made = backup(&server, &file);
    assert!(made.status.success(), "{}", text(&made));
    // The key file, kept apart as the administrator is told to.
    let key = scratch_path("backup-nokey-key");
    std::fs::copy(server.dir.join("kagi.key"), &key).unwrap();
    // No key of the key file is in the backup.
    let bytes = std::fs::read(&file).unwrap();
    for line in std::fs::read_to_string(&key).unwrap().lines() {
        let Some((_, hex)) = line.split_once(" = ") else {
            continue;
        };
        let raw: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        assert!(
            !bytes.windows(32).any(|w| w == raw.as_slice()),
            "a key is in the backup"
        );
        assert!(
            !bytes.windows(64).any(|w| w == hex.as_bytes()),
            "a key is in the backup"
        );
    }
    let restore = |dir: &Path, backup: &Path, key: Option<&Path>| {
        let mut args = vec![
            "restore".as_ref(),
            backup.as_os_str(),
            "--data-dir".as_ref(),
            dir.as_os_str(),
        ];
        match key {
            Some(k) => args.extend(["--key-file".as_ref(), k.as_os_str()]),
            None => args.push("--without-key".as_ref()),
        }
        kagi_cli(&args)
    };
    let base = scratch_dir("restore-checks");

    // Neither key file nor --without-key: refused, saying what is needed.
    let out = kagi_cli(&[
        "restore".as_ref(),
        file.as_os_str(),
        "--data-dir".as_ref(),
        base.join("none").as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--key-file KEY"), "{}", text(&out));

    // Another key file: refused, nothing made.
    let other_key = base.join("other.key");
    let hex = |b: &str| b.repeat(64);
    std::fs::write(
        &other_key,
        format!(
            "digest = {}\nseal = {}\naudit = {}\n",
            hex("1"),
            hex("2"),
            hex("3")
        ),
    )
    .unwrap();
    let out = restore(&base.join("wrong-key"), &file, Some(&other_key));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("not the one this backup was made under"),
        "{}",
        text(&out)
    );
    assert!(!base.join("wrong-key").exists());

    // A file cut short, or with one byte changed: refused, nothing made.
    let cut = base.join("cut.kagi");
    std::fs::write(&cut, &bytes[..bytes.len() - 40]).unwrap();
    let out = restore(&base.join("cut"), &cut, Some(&key));
    assert!(text(&out).contains("cut short"), "{}", text(&out));
    assert!(!base.join("cut").exists());
    let mut changed = bytes.clone();
    let middle = changed.len() / 2;
    changed[middle] ^= 1;
    let changed_file = base.join("changed.kagi");
    std::fs::write(&changed_file, &changed).unwrap();
    let out = restore(&base.join("changed"), &changed_file, Some(&key));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!base.join("changed").exists(), "{}", text(&out));

    // Never over a database.
    let out = restore(&server.dir, &file, Some(&key));
    assert!(
        text(&out).contains("holds a database already"),
        "{}",
        text(&out)
    );
    drop(server);

    // Without the key: loud, the accounts log in, the trail verifies under
    // the new key, the live code is gone.
    let bare = base.join("bare");
    let out = restore(&bare, &file, None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("RESTORED WITHOUT THE KEY FILE"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("kagi operator reset"), "{}", text(&out));
    let verify = kagi_cli(&[
        "audit".as_ref(),
        "verify".as_ref(),
        "--data-dir".as_ref(),
        bare.as_os_str(),
    ]);
    assert!(verify.status.success(), "{}", text(&verify));
    let bare_records = crate::support::open_store(&bare)
        .expiring_record_count()
        .unwrap();
    assert_eq!(
        bare_records, 0,
        "no flow, session, code or link without the key"
    );
    // A backup an earlier run made and never gave away goes at the start.
    std::fs::write(bare.join("backup.kagi"), "left by a run before").unwrap();
    let running = serve_on(&bare);
    assert!(!bare.join("backup.kagi").exists());
    let menu = kaigo::login(
        &mut Client::new(running.addr()),
        "KJ131311111111",
        "kaigoDemo13",
    );
    assert_ne!(menu.status, 500);
    assert!(
        menu.title() == "メニュー" || menu.title().contains("セキュリティコード"),
        "the demo password still logs in: {}",
        menu.title()
    );
    drop(running);
    // The flow that held the live code is not in it; with the key file,
    // it is (and its code works: the first test's recoveries show it).
    let keyed = base.join("keyed");
    assert!(restore(&keyed, &file, Some(&key)).status.success());
    let keyed_records = crate::support::open_store(&keyed)
        .expiring_record_count()
        .unwrap();
    assert!(keyed_records > 0, "the live flow is in a keyed restore");
    let _ = std::fs::remove_file(&file);
}
