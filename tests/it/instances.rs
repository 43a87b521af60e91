//! Two `kagi serve` processes on one PostgreSQL database, as behind a load
//! balancer: a browser's steps go to either, and what one instance knows
//! the other knows too — flows, CAPTCHA challenges, rate limits, the
//! outbox, the audit chain. Each test has a private cluster of its own.

use crate::smtp::Smtpd;
use crate::support::kaigo::{self, OSAKA_MAIL, OSAKA_OFFICE};
use crate::support::{
    exchange, kagi_cli, mails_at, portal, run_kagi, scratch_dir, Client, Cluster, Kagi,
};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The Osaka office's user ID (demo).
const OSAKA_USER: &str = "KJ272711111111";

/// A shared database with the demo accounts in it, and the key file every
/// instance on it uses.
struct Shared {
    cluster: Cluster,
    url: String,
    key_file: PathBuf,
    dir: PathBuf,
}

impl Shared {
    fn new(name: &str) -> Shared {
        let cluster = Cluster::start(name);
        let url = cluster.url();
        let dir = scratch_dir(&format!("{name}-instances"));
        let key_file = dir.join("kagi.key");
        // `serve` loads no demo accounts: a demo run puts them there.
        let mut config = kagi::config::Config {
            listen: "127.0.0.1:0".into(),
            data_dir: Some(dir.join("seed")),
            ..Default::default()
        };
        config.argon2.memory_kib = 256;
        config.argon2.iterations = 1;
        config.store.engine = kagi::config::StoreEngine::Postgres;
        config.store.postgres.url = Some(url.clone());
        config.store.key_file = Some(key_file.clone());
        kagi::start(kagi::Options {
            config,
            mode: kagi::Mode::Demo,
            clock: kagi::clock::Clock::system(),
        })
        .expect("the demo seeds the database")
        .stop();
        Shared {
            cluster,
            url,
            key_file,
            dir,
        }
    }

    /// The config of instance `name`: its own data directory (admin token),
    /// the shared database and key file, and `more` TOML.
    fn config(&self, name: &str, more: &str) -> PathBuf {
        let path = self.dir.join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                "listen = \"127.0.0.1:0\"\npublic_url = \"http://127.0.0.1\"\n\
                 data_dir = \"{}\"\n{more}\n\
                 [argon2]\nmemory_kib = 256\niterations = 1\n\
                 [guard]\nsend_cooldown_secs = 0\notps_per_day = 1000\n\
                 [store]\nengine = \"postgres\"\nkey_file = \"{}\"\n\
                 [store.postgres]\nurl = \"{}\"\n",
                self.dir.join(name).display(),
                self.key_file.display(),
                self.url
            ),
        )
        .unwrap();
        path
    }

    /// `kagi serve` with the config of instance `name`.
    fn serve(&self, name: &str, more: &str) -> (Kagi, SocketAddr) {
        let config = self.config(name, more);
        let log = self.dir.join(format!("{name}.log"));
        run_kagi(
            &["serve".as_ref(), "--config".as_ref(), config.as_os_str()],
            None,
            Some(&log),
        )
    }

    /// `kagi audit verify` on the shared database; its output.
    fn verify(&self) -> std::process::Output {
        let config = self.config("verify", "[mail]\ntransport = \"capture\"");
        kagi_cli(&[
            "audit".as_ref(),
            "verify".as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
        ])
    }
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The newest one-time password mailed to `email`, once it differs from
/// `before` (the one before this step, if any).
fn next_code(addr: SocketAddr, email: &str, before: Option<&str>) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let code = mails_at(addr)
            .into_iter()
            .find(|m| m.to == email && m.body.contains("[ワンタイムパスワード]"))
            .map(|m| m.otp());
        if let Some(code) = code.filter(|c| Some(c.as_str()) != before) {
            return code;
        }
        assert!(Instant::now() < deadline, "no new code for {email}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn two_instances_share_a_recovery_a_captcha_a_rate_limit_and_go_on_when_one_is_killed() {
    let shared = Shared::new("two");
    // The login limit: 6 at once, then one an hour, per client address.
    let more = "[mail]\ntransport = \"capture\"\n[rate_limit.login]\nburst = 6\nrefill_secs = 3600";
    let (mut a, at_a) = shared.serve("a", more);
    let (_b, at_b) = shared.serve("b", more);

    // A kaigo recovery whose steps alternate between the instances.
    let mut c = Client::new(at_a);
    kaigo::open_auth(&mut c);
    c.switch_to(at_b);
    let sent = c.submit(
        "/kaigo/recovery/auth",
        &[("office", OSAKA_OFFICE), ("email", OSAKA_MAIL)],
    );
    assert_eq!(sent.title(), "ワンタイムパスワード入力", "{}", sent.body);
    let code = next_code(at_a, OSAKA_MAIL, None);
    c.switch_to(at_a);
    let reset = c.submit("/kaigo/recovery/otp", &[("otp", &code)]);
    assert_eq!(reset.title(), "ログイン情報再設定", "{}", reset.body);
    c.switch_to(at_b);
    assert_eq!(kaigo::reset(&mut c, "sharedPw2027").title(), "処理終了");
    let menu = kaigo::login(&mut Client::new(at_a), OSAKA_USER, "sharedPw2027");
    assert_eq!(menu.title(), "メニュー");

    // The portal's ① drawn by one instance and answered at the other.
    let mut p = Client::new(at_a);
    let (page, answer) = portal::open_identify(&mut p);
    p.switch_to(at_b);
    let verify = portal::submit_identify(&mut p, &page, "demo-user", &answer, "next");
    assert_eq!(
        verify.title(),
        "パーソナルデータ検証 - メールアドレス",
        "{}",
        verify.body
    );

    // One login limit for both: 6 logins from this address in all (one
    // went above), whichever instance takes them; 12 more tries, split
    // between the two, get 5 through.
    let mut refused = 0;
    for n in 0..12 {
        let at = if n % 2 == 0 { at_a } else { at_b };
        let page = kaigo::login(
            &mut Client::new(at),
            &format!("KJ99999999{n:04}"),
            "wrong-pw",
        );
        if page.status == 429 {
            refused += 1;
        }
    }
    assert_eq!(
        refused, 7,
        "the limit is one for both instances, not one each"
    );

    // One instance dies in the middle of a recovery; the other ends it.
    let mut c = Client::new(at_a);
    kaigo::open_auth(&mut c);
    let sent = c.submit(
        "/kaigo/recovery/auth",
        &[("office", OSAKA_OFFICE), ("email", OSAKA_MAIL)],
    );
    assert_eq!(sent.title(), "ワンタイムパスワード入力");
    let second = next_code(at_b, OSAKA_MAIL, Some(&code));
    a.kill();
    c.switch_to(at_b);
    let reset = c.submit("/kaigo/recovery/otp", &[("otp", &second)]);
    assert_eq!(reset.title(), "ログイン情報再設定", "{}", reset.body);
    // (Its login would be refused now: the address used up its logins.)
    assert_eq!(kaigo::reset(&mut c, "afterKill2027").title(), "処理終了");

    // One audit chain, written by both, intact.
    let verified = shared.verify();
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(
        text(&verified).contains("audit trail intact"),
        "{}",
        text(&verified)
    );
    drop(shared.cluster);
}

#[test]
fn with_both_mail_threads_running_every_code_is_sent_once() {
    let shared = Shared::new("mail-once");
    // A relay that takes 1.5 s per message: while one instance sends a
    // mail, the other's mail thread sees it still waiting.
    let relay = Smtpd::start("slow");
    let more = format!(
        "[mail]\ntransport = \"smtp\"\nfrom = \"kagi <no-reply@example.jp>\"\n\
         [mail.smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"plain\"\ntimeout_secs = 10",
        relay.port
    );
    let (_a, at_a) = shared.serve("a", &more);
    let (_b, at_b) = shared.serve("b", &more);
    let recoveries = 8;
    for n in 0..recoveries {
        let at = if n % 2 == 0 { at_a } else { at_b };
        let page = kaigo::start_recovery(&mut Client::new(at), OSAKA_OFFICE, OSAKA_MAIL);
        assert_eq!(page.title(), "ワンタイムパスワード入力", "{}", page.body);
    }
    let got = relay.wait_for(recoveries);
    // Once the outbox is empty no mail is left to send; a second copy of
    // one, sent by the other mail thread, would come within its next
    // round (a second) and the relay's 1.5 s.
    let deadline = Instant::now() + Duration::from_secs(60);
    while outbox_len(at_a, &shared.dir.join("a")) > 0 {
        assert!(Instant::now() < deadline, "the outbox never emptied");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(4));
    let got = relay.received().len().max(got.len());
    let ids: std::collections::BTreeSet<String> = relay
        .received()
        .iter()
        .map(|(raw, _)| crate::smtp::message_id(raw))
        .collect();
    assert_eq!(got, recoveries, "each code mailed once: {got} messages");
    assert_eq!(ids.len(), recoveries, "no Message-ID twice");
    let verified = shared.verify();
    assert!(verified.status.success(), "{}", text(&verified));
    drop(shared.cluster);
}

/// Mails in the shared outbox (queued or failed), from an instance's
/// `/healthz` with its admin token.
fn outbox_len(at: SocketAddr, data_dir: &Path) -> u64 {
    let token = std::fs::read_to_string(data_dir.join("admin.token")).unwrap();
    let page = exchange(
        at,
        format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            token.trim()
        )
        .as_bytes(),
    );
    let health: serde_json::Value = serde_json::from_str(&page.body).unwrap();
    health["outbox"].as_u64().unwrap() + health["failed"].as_u64().unwrap()
}

/// One step of a recovery under way when PostgreSQL may be away: the page
/// if it came with `status`, else None (the step is to be taken again).
fn step(page: crate::support::Page, status: u16) -> Option<crate::support::Page> {
    (page.status == status).then_some(page)
}

/// How far a recovery under way when PostgreSQL may be away came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Came {
    /// Refused before its new password was sent.
    NotToTheEnd,
    /// Its new password was sent and not answered: it may or may not
    /// have been written.
    Unanswered,
    /// Its end was answered: the new password is written.
    Answered,
}

/// One whole kaigo recovery of the Osaka office to `password`; `last_code`
/// is the code of the one before (the new one must differ).
fn recover_through_outages(at: SocketAddr, password: &str, last_code: &mut String) -> Came {
    let mut c = kaigo::at_step_2(at);
    let Some(_) = step(
        c.post(
            "/kaigo/recovery/auth",
            &[("office", OSAKA_OFFICE), ("email", OSAKA_MAIL)],
        ),
        303,
    ) else {
        return Came::NotToTheEnd;
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        let page = Client::new(at).get("/dev/mail.json");
        if page.status == 200 {
            let mails: Vec<serde_json::Value> = serde_json::from_str(&page.body).unwrap();
            let newest = mails.iter().find(|m| {
                m["to"] == OSAKA_MAIL
                    && m["body"]
                        .as_str()
                        .unwrap()
                        .contains("[ワンタイムパスワード]")
            });
            let code = newest.map(|m| {
                let body = m["body"].as_str().unwrap();
                let mut lines = body.lines();
                lines.find(|l| *l == "[ワンタイムパスワード]");
                lines.next().unwrap().to_string()
            });
            if let Some(code) = code.filter(|c| c != last_code) {
                break code;
            }
        }
        if Instant::now() > deadline {
            return Came::NotToTheEnd;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    last_code.clone_from(&code);
    c.get("/kaigo/recovery/otp");
    if step(c.post("/kaigo/recovery/otp", &[("otp", &code)]), 303).is_none() {
        return Came::NotToTheEnd;
    }
    c.get("/kaigo/recovery/reset");
    let done = c.post(
        "/kaigo/recovery/reset",
        &[("password", password), ("password_confirm", password)],
    );
    if done.status == 303 && done.location() == "/kaigo/recovery/done" {
        Came::Answered
    } else {
        Came::Unanswered
    }
}

#[test]
fn postgresql_restarted_under_load_gets_503_pages_then_kagi_goes_on_losing_nothing_answered() {
    let shared = Shared::new("restart");
    let (mut kagi, at) = shared.serve(
        "one",
        "[mail]\ntransport = \"capture\"\n\
         [rate_limit.recovery]\nburst = 100000\nrefill_secs = 1\n\
         [rate_limit.otp]\nburst = 100000\nrefill_secs = 1",
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The load: recovery after recovery, each new password noted when its
    // end is answered (or tried and not answered).
    let load = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut tried: Vec<(String, Came)> = Vec::new();
            let (mut n, mut last_code) = (0, String::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let password = format!("restart{n}x");
                let came = recover_through_outages(at, &password, &mut last_code);
                if came != Came::NotToTheEnd {
                    tried.push((password, came));
                }
            }
            tried
        })
    };
    let wait_for = |what: &str, mut done: Box<dyn FnMut() -> bool>| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // Recoveries answered before the restart: each mails a code and a
    // notice.
    wait_for(
        "recoveries before the restart",
        Box::new(|| mails_at(at).len() >= 6),
    );

    // PostgreSQL goes away: a login gets the readable 503 page.
    shared.cluster.run("stop");
    let mut login = Client::new(at);
    login.get("/kaigo/login");
    let refused = login.post(
        "/kaigo/login",
        &[("user_id", OSAKA_USER), ("password", "whatever1")],
    );
    crate::support::assert_readable_503(&refused);

    // It comes back; kagi goes on by itself, the same process.
    shared.cluster.run("start");
    let before = Instant::now();
    wait_for(
        "a recovery answered after PostgreSQL came back",
        Box::new(move || {
            let mut c = kaigo::at_step_2(at);
            c.post(
                "/kaigo/recovery/auth",
                &[("office", OSAKA_OFFICE), ("email", OSAKA_MAIL)],
            )
            .status
                == 303
        }),
    );
    let resumed = before.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let tried = load.join().unwrap();
    assert!(kagi.0.try_wait().unwrap().is_none(), "kagi kept running");
    let answered = tried.iter().filter(|(_, c)| *c == Came::Answered).count();
    assert!(answered >= 2, "{tried:?}");

    // Nothing answered is lost: the last password whose change was
    // answered logs in, or one sent after it whose answer was lost.
    let last = tried
        .iter()
        .rposition(|(_, c)| *c == Came::Answered)
        .unwrap();
    let logs_in = tried[last..].iter().rev().any(|(password, _)| {
        kaigo::login(&mut Client::new(at), OSAKA_USER, password).title() == "メニュー"
    });
    assert!(logs_in, "{tried:?}");
    let verified = shared.verify();
    assert!(verified.status.success(), "{}", text(&verified));
    kagi.kill();
    eprintln!(
        "kagi answered again {} ms after PostgreSQL was started again",
        resumed.as_millis()
    );
}

#[test]
fn a_database_whose_schema_is_newer_than_this_kagi_is_refused_with_what_to_do() {
    let cluster = Cluster::start("newer-schema");
    let url = cluster.url();
    let dir = scratch_dir("newer-schema");
    let config = crate::support::serve_config(
        &dir,
        &dir.join("data"),
        &format!("[store]\nengine = \"postgres\"\n[store.postgres]\nurl = \"{url}\""),
    );
    let serve = ["serve".as_ref(), "--config".as_ref(), config.as_os_str()];
    // This kagi makes its schema and serves.
    let (mut kagi, _) = run_kagi(&serve, None, None);
    kagi.kill();
    // A newer kagi moved the schema on; this one refuses it, untouched.
    let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    db.execute("INSERT INTO kagi_schema VALUES (99)", &[])
        .unwrap();
    // Not served: it stops (a kagi that served would be killed here, and
    // the test fail).
    let mut refused = std::process::Command::new(env!("CARGO_BIN_EXE_kagi"))
        .args(serve)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while refused.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = refused.kill();
            panic!("kagi served a database whose schema is newer than it");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = refused.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("version 99, made by a newer kagi") && said.contains("run the newer kagi"),
        "{said}"
    );
    let newest: i32 = db
        .query_one("SELECT max(version) FROM kagi_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(newest, 99, "the schema was left as it was");
    drop(cluster);
}

#[test]
fn two_instances_started_at_once_on_an_empty_database_make_one_schema_and_one_set_of_keys() {
    let cluster = Cluster::start("at-once");
    let url = cluster.url();
    let dir = scratch_dir("at-once");
    let key_file = dir.join("kagi.key");
    let config = |name: &str| {
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                "listen = \"127.0.0.1:0\"\npublic_url = \"http://127.0.0.1\"\n\
                 data_dir = \"{}\"\n[mail]\ntransport = \"capture\"\n\
                 [store]\nengine = \"postgres\"\nkey_file = \"{}\"\n\
                 [store.postgres]\nurl = \"{url}\"\n",
                dir.join(name).display(),
                key_file.display()
            ),
        )
        .unwrap();
        path
    };
    let (a, b) = (config("a"), config("b"));
    // Both at the same moment: each migrates the schema and makes keys
    // under an advisory lock, so one does and the other finds it done.
    let start = |config: PathBuf| {
        std::thread::spawn(move || {
            run_kagi(
                &["serve".as_ref(), "--config".as_ref(), config.as_os_str()],
                None,
                None,
            )
        })
    };
    let (first, second) = (start(a.clone()), start(b));
    let ((_a, at_a), (_b, at_b)) = (first.join().unwrap(), second.join().unwrap());
    // Each writes to the one audit chain (a login of no such user).
    for at in [at_a, at_b, at_a] {
        let page = kaigo::login(&mut Client::new(at), "KJ999999999999", "nobody99x");
        assert_eq!(page.status, 200, "{}", page.body);
    }
    let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let versions: Vec<i32> = db
        .query("SELECT version FROM kagi_schema ORDER BY version", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, vec![1], "each step of the schema applied once");
    let anchors: i64 = db
        .query_one(
            "SELECT count(*) FROM kagi_kv WHERE key = 'audit_anchor'::bytea",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(anchors, 1, "one audit chain");
    // One set of keys: what one instance seals and chains, the other and
    // `kagi audit verify` open.
    let verified = kagi_cli(&[
        "audit".as_ref(),
        "verify".as_ref(),
        "--config".as_ref(),
        a.as_os_str(),
    ]);
    assert!(verified.status.success(), "{}", text(&verified));
    drop(cluster);
}
