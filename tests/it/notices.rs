//! After a password change: the notice with its "this was not me" link,
//! and the audit trail's hash chain.

use crate::support::kaigo::{self, OSAKA_MAIL, OSAKA_OFFICE};
use crate::support::portal;
use crate::support::{kagi_cli_once_closed, spawn_with, Client, Mail};

/// The path of the "not me" link in a notice.
fn not_me_path(mail: &Mail, site: &str) -> String {
    let marker = format!("/{site}/not-me?token=");
    let at = mail.body.find(&marker).expect("a not-me link");
    mail.body[at..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn kaigo_recover(server: &crate::support::TestServer, mails_before: usize, password: &str) {
    let mut r = server.client();
    kaigo::start_recovery(&mut r, OSAKA_OFFICE, OSAKA_MAIL);
    let code = server.wait_for_mails(mails_before + 1)[0].otp();
    r.submit("/kaigo/recovery/otp", &[("otp", &code)]);
    assert_eq!(kaigo::reset(&mut r, password).title(), "処理終了");
}

#[test]
fn the_notice_tells_when_and_from_where_and_its_link_locks_the_account() {
    let server = spawn_with(|_| {});
    kaigo_recover(&server, 0, "newPass2027x");
    let notice = server.wait_for_mails(2)[0].clone();
    assert_eq!(notice.subject, "ログイン情報再設定完了通知 (介護保険)");
    assert!(notice.body.contains("[操作元IPアドレス]\n127.0.0.1"));
    assert!(notice.body.contains("[再設定日時]"));
    let path = not_me_path(&notice, "kaigo");

    let mut owner = server.client();
    assert_eq!(
        kaigo::login(&mut owner, "KJ272711111111", "newPass2027x").title(),
        "メニュー"
    );
    // Opening the link changes nothing; the button does.
    let mut c = server.client();
    let confirm = c.get(&path);
    assert_eq!(confirm.title(), "アカウントのロック");
    assert_eq!(owner.get("/kaigo/menu").status, 200);
    let locked = c.post(
        "/kaigo/not-me",
        &[("token", &confirm.hidden("token").unwrap())],
    );
    assert_eq!(locked.title(), "アカウントをロックしました");
    // Sessions end; the password no longer logs in; the link is spent.
    assert_eq!(owner.get("/kaigo/menu").status, 303);
    let refused = kaigo::login(&mut server.client(), "KJ272711111111", "newPass2027x");
    assert!(refused.has("ユーザIDまたはパスワードが正しくありません。"));
    assert_eq!(server.client().get(&path).status, 404);
    // A new recovery lifts the lock.
    server.clock.advance(61);
    kaigo_recover(&server, 2, "newPass2028y");
    let mut back = server.client();
    assert_eq!(
        kaigo::login(&mut back, "KJ272711111111", "newPass2028y").title(),
        "メニュー"
    );
}

#[test]
fn the_portal_notice_locks_too_and_a_not_me_link_is_no_reset_link() {
    let server = spawn_with(|_| {});
    let mut c = server.client();
    portal::request_link(&mut c, "demo-user", "demo-user@example.jp");
    let (link, _) = server.wait_for_mails(1)[0].link();
    portal::set_password(&mut c, &link, "NewPortal2026x");
    let notice = server.wait_for_mails(2)[0].clone();
    assert!(notice.body.contains("操作元IPアドレス: 127.0.0.1"));
    let path = not_me_path(&notice, "portal");
    let token = path.split("token=").nth(1).unwrap();
    // The token cannot set a password.
    let reset = Client::new(server.addr).get(&format!("/portal/passwordreset?token={token}"));
    assert_eq!(reset.status, 404);
    let mut l = server.client();
    let confirm = l.get(&path);
    let done = l.post(
        "/portal/not-me",
        &[("token", &confirm.hidden("token").unwrap())],
    );
    assert_eq!(done.title(), "アカウントをロックしました");
    let refused = portal::login(&mut server.client(), "demo-user", "NewPortal2026x");
    assert!(refused.has("ユーザー名またはパスワードが正しくありません。"));
}

#[test]
fn kagi_audit_verify_finds_an_edited_or_removed_entry_and_export_writes_csv() {
    // `kagi audit` reads sled's data directory.
    let server = crate::support::spawn_on_sled_with(|c| c.rate_limit.login.burst = 100);
    for _ in 0..6 {
        kaigo::login(&mut server.client(), "KJ272711111111", "wrong-password1");
    }
    let mut r = server.client();
    kaigo::start_recovery(&mut r, OSAKA_OFFICE, OSAKA_MAIL);
    let dir = server.stop();
    let d = dir.to_str().unwrap();

    let ok = kagi_cli_once_closed(&["audit", "verify", "--data-dir", d]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("audit trail intact"));
    let csv = String::from_utf8(
        kagi_cli_once_closed(&["audit", "export", "--csv", "--data-dir", d]).stdout,
    )
    .unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("time,site,event,account,client,outcome,operator,reason,prev_mac,request")
    );
    let rows: Vec<&str> = lines.collect();
    assert!(rows
        .iter()
        .any(|r| r.contains(",kaigo,lockout,KJ272711111111,127.0.0.1,")));
    assert!(rows
        .iter()
        .any(|r| r.contains(",kaigo,recovery_started,,127.0.0.1,office 2711111111,")));
    assert!(rows
        .iter()
        .any(|r| r.contains(",kaigo,otp_issued,KJ272711111111,127.0.0.1,sent,")));
    // Never a secret: no code, no password in the trail.
    assert!(!csv.contains("wrong-password1"));

    // Someone edits an entry in the database: verify says so and fails.
    let store = crate::support::open_store(&dir);
    let events = store.audit_events().unwrap();
    assert!(events.len() >= 8);
    drop(store);
    let db = sled::open(&dir).unwrap();
    let tree = db.open_tree("audit").unwrap();
    let (key, value) = tree.iter().nth(2).unwrap().unwrap();
    let edited = String::from_utf8(value.to_vec())
        .unwrap()
        .replace("failed", "ok");
    tree.insert(key, edited.as_bytes()).unwrap();
    db.flush().unwrap();
    drop(tree);
    drop(db);
    let broken = kagi_cli_once_closed(&["audit", "verify", "--data-dir", d]);
    assert_eq!(broken.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&broken.stderr).contains("audit trail BROKEN"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_edited_trail_chained_anew_without_the_key_file_fails_verify() {
    // `kagi audit` reads sled's data directory.
    let server = crate::support::spawn_on_sled_with(|c| c.rate_limit.login.burst = 100);
    for _ in 0..6 {
        kaigo::login(&mut server.client(), "KJ272711111111", "wrong-password1");
    }
    let dir = server.stop();
    let d = dir.to_str().unwrap();
    assert!(kagi_cli_once_closed(&["audit", "verify", "--data-dir", d])
        .status
        .success());
    // Whoever can write the database, but has not the key file: a failed
    // login becomes a good one, and every entry after it, and the head,
    // are chained anew with SHA-256 (what anyone can compute).
    let db = sled::open(&dir).unwrap();
    let audit = db.open_tree("audit").unwrap();
    let meta = db.open_tree("meta").unwrap();
    let sha = |b: &[u8]| {
        let digest = ring::digest::digest(&ring::digest::SHA256, b);
        digest
            .as_ref()
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
    };
    let entries: Vec<(sled::IVec, sled::IVec)> = audit.iter().map(|e| e.unwrap()).collect();
    let mut prev: Option<String> = None;
    let mut edited = false;
    for (key, value) in entries {
        let mut event: serde_json::Value = serde_json::from_slice(&value).unwrap();
        if let Some(p) = &prev {
            event["prev"] = p.clone().into();
        }
        if !edited && event["outcome"] == "failed" {
            event["outcome"] = "ok".into();
            edited = true;
        }
        let bytes = serde_json::to_vec(&event).unwrap();
        prev = Some(sha(&bytes));
        audit.insert(key, bytes).unwrap();
    }
    assert!(edited);
    meta.insert("audit_head", prev.unwrap().as_bytes()).unwrap();
    db.flush().unwrap();
    drop((audit, meta, db));
    let broken = kagi_cli_once_closed(&["audit", "verify", "--data-dir", d]);
    assert_eq!(broken.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&broken.stderr).contains("audit trail BROKEN"));
    let _ = std::fs::remove_dir_all(&dir);
}
