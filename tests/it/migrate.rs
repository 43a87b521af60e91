//! `kagi migrate` from a sled server's database into PostgreSQL, as an
//! administrator moves an installation: a password changed by a recovery
//! logs in there, the operator logs in with the same second factor, the
//! postal request waits in the queue, a recovery in flight goes on, and
//! the audit trail verifies under the same key file. The test runs on
//! every run of the suite, whichever engine the others use, on a private
//! PostgreSQL cluster of its own (`support::Cluster`).

use crate::support::console::{
    link_path, login as console_login, open_enrolment, operator_cli, totp,
};
use crate::support::{
    admin_get, kagi_cli, kagi_cli_once_closed, kaigo, mails_at, scratch_dir, spawn_on_sled_with,
    wait_until, Client,
};
use std::path::Path;
use std::process::Output;

/// The demo's office in Osaka and its account.
const OSAKA_ID: &str = "KJ272711111111";
/// The demo's office in Tokyo (it bills two prefectures) and its account.
const TOKYO_ID: &str = "KJ131311111111";
/// The demo's office without a security address, and its account.
const SAPPORO: &str = "0111111111";
const SAPPORO_ID: &str = "KJ010111111111";
const OPERATOR_PASSWORD: &str = "OperatorTest2026";

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `kagi migrate --from-data-dir FROM --to URL`, once the server on FROM
/// has let go of it.
fn migrate(from: &Path, url: &str) -> Output {
    kagi_cli_once_closed(&[
        "migrate".as_ref(),
        "--from-data-dir".as_ref(),
        from.as_os_str(),
        "--to".as_ref(),
        url.as_ref(),
    ])
}

/// The one-time password mailed to `email` by the server at `addr`, once
/// it has come (the mail thread delivers a moment after the page).
fn code_to(addr: std::net::SocketAddr, email: &str) -> String {
    let mut code = None;
    wait_until(10, "the code's mail", || {
        code = mails_at(addr)
            .into_iter()
            .find(|m| m.to == email && m.body.contains("[ワンタイムパスワード]"))
            .map(|m| m.otp());
        code.is_some()
    });
    code.unwrap()
}

#[test]
fn a_sled_installation_moves_into_postgresql_and_goes_on_there() {
    let cluster = crate::support::Cluster::start("migrate-postgres");
    let database_url = cluster.url();
    let server = spawn_on_sled_with(|_| {});
    let addr = server.addr;

    // An operator enrols: a password, and a TOTP secret sealed under the
    // key file's key.
    let (code, said) = operator_cli(addr, &server.dir, &["add", "kanri"]);
    assert_eq!(code, Some(0), "{said}");
    let mut op = Client::new(addr);
    let (enrol, secret) = open_enrolment(&mut op, &link_path(&said));
    let home = op.submit(
        "/admin/enrol",
        &[
            ("token", &enrol.hidden("token").unwrap()),
            ("password", OPERATOR_PASSWORD),
            ("password2", OPERATOR_PASSWORD),
            ("code", &totp(&secret, server.clock.now())),
        ],
    );
    assert_eq!(home.title(), "アカウント検索", "{}", home.body);

    // Osaka's office recovers its login: a new password.
    let mut osaka = Client::new(addr);
    let sent = kaigo::start_recovery(&mut osaka, kaigo::OSAKA_OFFICE, kaigo::OSAKA_MAIL);
    assert_eq!(sent.title(), "ワンタイムパスワード入力", "{}", sent.body);
    let code = code_to(addr, kaigo::OSAKA_MAIL);
    osaka.submit("/kaigo/recovery/otp", &[("otp", &code)]);
    let done = kaigo::reset(&mut osaka, "mv2711x1");
    assert_eq!(done.title(), "処理終了", "{}", done.body);

    // Sapporo's office, without an address, asks for a letter.
    let mut sapporo = Client::new(addr);
    sapporo.get("/kaigo/recovery");
    sapporo.submit("/kaigo/recovery", &[("method", "postal")]);
    let asked = sapporo.submit(
        "/kaigo/recovery/postal",
        &[
            ("office", SAPPORO),
            ("prefecture", "01"),
            ("office_name", "デモ居宅介護支援 さっぽろ"),
            ("contact", "山田 花子"),
            ("phone", "011-123-4567"),
        ],
    );
    assert_eq!(asked.title(), "書類郵送申請受付", "{}", asked.body);

    // Tokyo's office is half-way through a recovery: its code is mailed,
    // not yet entered.
    let mut tokyo = Client::new(addr);
    kaigo::start_recovery(&mut tokyo, kaigo::TOKYO_OFFICE, kaigo::TOKYO_MAIL);
    let sent = tokyo.submit("/kaigo/recovery/prefecture", &[("prefecture", "13")]);
    assert_eq!(sent.title(), "ワンタイムパスワード入力", "{}", sent.body);
    let tokyo_code = code_to(addr, kaigo::TOKYO_MAIL);
    let visit = tokyo
        .cookie("kagi_kaigo")
        .expect("the visit cookie")
        .to_string();

    // While the server runs, its database is not moved.
    let refused = kagi_cli(&[
        "migrate".as_ref(),
        "--from-data-dir".as_ref(),
        server.dir.as_os_str(),
        "--to".as_ref(),
        database_url.as_ref() as &std::ffi::OsStr,
    ]);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        text(&refused).contains("stop kagi first"),
        "{}",
        text(&refused)
    );

    let dir = server.stop();
    let key_file = dir.join("kagi.key");

    // Without the key file, nothing moves.
    let elsewhere = scratch_dir("migrate-config");
    let missing = elsewhere.join("no.key");
    let config = elsewhere.join("sled.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n[store]\nkey_file = \"{}\"\n",
            dir.display(),
            missing.display()
        ),
    )
    .unwrap();
    let out = kagi_cli(&[
        "migrate".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--to".as_ref(),
        database_url.as_ref() as &std::ffi::OsStr,
    ]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("no key file"), "{}", text(&out));

    let out = migrate(&dir, &database_url);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("2 operators, "), "{said}");
    assert!(said.contains("1 postal requests"), "{said}");
    assert!(
        said.contains("recovery flows"),
        "what was in flight: {said}"
    );
    assert!(said.contains("dropped: CAPTCHA challenges"), "{said}");
    assert!(said.contains("audit trail intact on PostgreSQL"), "{said}");

    // A server on PostgreSQL, with the same key file (a serve, not the
    // demo: it makes no demo account or operator of its own).
    let instance = scratch_dir("migrate-instance");
    let pg_dir = instance.join("data");
    let mut config = kagi::config::Config {
        listen: "127.0.0.1:0".into(),
        data_dir: Some(pg_dir.clone()),
        public_url: Some("http://lab.example.jp".into()),
        ..Default::default()
    };
    config.mail.transport = Some(kagi::config::Transport::Capture);
    config.argon2.memory_kib = 256;
    config.argon2.iterations = 1;
    config.store.engine = kagi::config::StoreEngine::Postgres;
    config.store.postgres.url = Some(database_url.clone());
    config.store.key_file = Some(key_file.clone());
    // Its clock a TOTP step ahead: the enrolment's code opened one login.
    let clock = kagi::clock::Clock::system();
    clock.advance(30);
    let running = kagi::start(kagi::Options {
        config,
        mode: kagi::Mode::Serve,
        clock: clock.clone(),
    })
    .expect("a serve on PostgreSQL starts");
    let at = running.addr();

    let menu = kaigo::login(&mut Client::new(at), OSAKA_ID, "mv2711x1");
    assert_eq!(
        menu.title(),
        "メニュー",
        "the recovered password: {}",
        menu.body
    );

    // The recovery in flight goes on: the mailed code (its digest under
    // the key file's key) is taken, and the new password set.
    let mut tokyo = Client::new(at);
    tokyo.plant_cookie("kagi_kaigo", &visit);
    let otp = tokyo.get("/kaigo/recovery/otp");
    assert_eq!(otp.title(), "ワンタイムパスワード入力", "{}", otp.body);
    let reset = tokyo.submit("/kaigo/recovery/otp", &[("otp", &tokyo_code)]);
    assert_eq!(reset.status, 200, "{}", reset.body);
    let done = kaigo::reset(&mut tokyo, "mv1313x1");
    assert_eq!(done.title(), "処理終了", "{}", done.body);
    let menu = kaigo::login(&mut Client::new(at), TOKYO_ID, "mv1313x1");
    assert_eq!(menu.title(), "メニュー", "{}", menu.body);

    // The postal request waits, for the command line and the console.
    let queue = admin_get(at, &pg_dir, "/admin/postal");
    assert_eq!(queue.status, 200, "{}", queue.body);
    let list: Vec<serde_json::Value> = serde_json::from_str(&queue.body).unwrap();
    assert_eq!(list.len(), 1, "{}", queue.body);
    assert_eq!(list[0]["user_id"], SAPPORO_ID);

    // The operators are there, and one logs in with the second factor
    // sealed on sled.
    let operators = admin_get(at, &pg_dir, "/admin/operators");
    assert!(
        operators.has("\"kanri\"") && operators.has("\"demo-operator\""),
        "{}",
        operators.body
    );
    let mut op = Client::new(at);
    let home = console_login(
        &mut op,
        "kanri",
        OPERATOR_PASSWORD,
        &totp(&secret, clock.now()),
    );
    assert_eq!(home.title(), "アカウント検索", "{}", home.body);
    let page = op.get("/admin/postal");
    assert!(page.has(&format!(">{SAPPORO_ID}</a>")), "{}", page.body);
    running.stop();

    // `kagi audit verify` on the PostgreSQL config.
    let pg_config = elsewhere.join("postgres.toml");
    std::fs::write(
        &pg_config,
        format!(
            "data_dir = \"{}\"\n[store]\nengine = \"postgres\"\nkey_file = \"{}\"\n[store.postgres]\nurl = \"{}\"\n",
            pg_dir.display(),
            key_file.display(),
            database_url
        ),
    )
    .unwrap();
    let verify = kagi_cli(&[
        "audit".as_ref(),
        "verify".as_ref(),
        "--config".as_ref(),
        pg_config.as_os_str(),
    ]);
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(
        text(&verify).contains("audit trail intact"),
        "{}",
        text(&verify)
    );

    // Never into a database that holds kagi's records.
    let again = migrate(&dir, &database_url);
    assert!(!again.status.success(), "{}", text(&again));
    assert!(
        text(&again).contains("holds kagi's records already"),
        "{}",
        text(&again)
    );

    for d in [dir, elsewhere, instance] {
        let _ = std::fs::remove_dir_all(d);
    }
}
