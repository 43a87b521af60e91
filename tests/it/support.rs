//! A kagi server on a free port with a fresh database, a clock the test
//! controls, its captured mailbox, and a cookie-keeping HTTP client that
//! fills in the CSRF token of the last page it saw, as a browser's form does.

use kagi::clock::Clock;
use kagi::config::Config;
use kagi::{Mode, Options, Running};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub mod console;
pub mod kaigo;
pub mod portal;

pub struct TestServer {
    running: Option<Running>,
    pub addr: SocketAddr,
    pub clock: Clock,
    pub dir: PathBuf,
}

/// A demo-mode server with cheap argon2 parameters.
pub fn spawn() -> TestServer {
    spawn_with(|_| {})
}

pub fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
    spawn_on(adjust, true)
}

/// A demo-mode server on sled whatever engine the tests run on: for what
/// only sled has (its data directory's disk, its files, `kagi backup`).
pub fn spawn_on_sled_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
    spawn_on(adjust, false)
}

fn spawn_on(adjust: impl FnOnce(&mut Config), any_engine: bool) -> TestServer {
    let mut config = Config {
        listen: "127.0.0.1:0".into(),
        data_dir: Some(scratch_path("server")),
        ..Default::default()
    };
    // Cheap hashes keep the tests fast; production uses the OWASP defaults.
    config.argon2.memory_kib = 256;
    config.argon2.iterations = 1;
    adjust(&mut config);
    let dir = config.data_dir.clone().expect("a data directory");
    if any_engine {
        on_the_tests_engine(&mut config, &dir);
    }
    let clock = Clock::system();
    let running = kagi::start(Options {
        config,
        mode: Mode::Demo,
        clock: clock.clone(),
    })
    .expect("server starts");
    TestServer {
        addr: running.addr(),
        running: Some(running),
        clock,
        dir,
    }
}

/// Puts the records of a test server whose config names no engine on the
/// engine the tests run on: PostgreSQL when `KAGI_TEST_ENGINE=postgres`,
/// in a new database of the test's own (named after its data directory).
fn on_the_tests_engine(config: &mut Config, dir: &Path) {
    if config.store.engine == kagi::config::StoreEngine::Sled {
        // A database a test made beforehand (`open_store`) is kept.
        let made = on_postgres().lock().unwrap().contains(dir);
        if let Some(url) = kagi::store::test_database(&dir.display().to_string(), !made) {
            config.store.engine = kagi::config::StoreEngine::Postgres;
            config.store.postgres.url = Some(url);
            on_postgres().lock().unwrap().insert(dir.to_path_buf());
        }
    }
}

/// A private PostgreSQL cluster for the tests that need one whatever
/// engine the others run on (two instances on one database, a restart):
/// its directory and a guard that stops it, by its postmaster's PID, when
/// dropped (`scripts/postgres`).
pub struct Cluster {
    pub dir: PathBuf,
}

const CLUSTER_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/postgres");

impl Cluster {
    /// Makes and starts a cluster of the test's own.
    pub fn start(name: &str) -> Cluster {
        Cluster::start_with_tls(name, None)
    }

    /// The same, with TLS on (and listening on 127.0.0.1) when `tls` names
    /// a directory with server.pem and server.key (`PG_TLS_DIR`).
    pub fn start_with_tls(name: &str, tls: Option<&Path>) -> Cluster {
        // The guard is made first: a start that fails half-way is stopped.
        let cluster = Cluster {
            dir: scratch_path(name),
        };
        cluster.run_with(&["start"], tls);
        cluster
    }

    /// `scripts/postgres ACTION DIR`'s output; panics when it fails.
    pub fn run(&self, action: &str) -> String {
        self.run_with(&[action], None)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        std::fs::read_to_string(self.dir.join("port")).map_or(0, |p| p.trim().parse().unwrap_or(0))
    }

    fn run_with(&self, args: &[&str], tls: Option<&Path>) -> String {
        let mut command = Command::new(CLUSTER_SCRIPT);
        command.args(args).arg(&self.dir);
        if let Some(tls) = tls {
            command.env("PG_TLS_DIR", tls);
        }
        let action = args.join(" ");
        let out = command.output().expect("scripts/postgres runs");
        assert!(
            out.status.success(),
            "scripts/postgres {action}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The URL of the cluster's `kagi` database.
    pub fn url(&self) -> String {
        self.run("url")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(CLUSTER_SCRIPT)
            .arg("stop")
            .arg(&self.dir)
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The data directories of test servers whose records are in PostgreSQL.
fn on_postgres() -> &'static std::sync::Mutex<std::collections::HashSet<PathBuf>> {
    static DIRS: OnceLock<std::sync::Mutex<std::collections::HashSet<PathBuf>>> = OnceLock::new();
    DIRS.get_or_init(Default::default)
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A fresh scratch path for one test, under the system's temporary
/// directory and named after `name`, this process and a counter, so that
/// no two tests share one; whatever a run before left there is removed.
/// Nothing is created there: kagi makes its data directory itself (its
/// mode is part of what the tests check). Siblings named after it
/// (`with_extension`) are the test's too.
pub fn scratch_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "kagi-it-{name}-{}-{}",
        std::process::id(),
        unique()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A fresh, empty scratch directory (see `scratch_path`).
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = scratch_path(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `kagi ARGS…` to its end (a command line tool: `import`, `audit`,
/// `mail`); its exit status and output.
pub fn kagi_cli<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_kagi"))
        .args(args)
        .output()
        .expect("kagi runs")
}

/// Runs kagi's command line on a database that was just closed: sled lets
/// go of its lock when its last thread has, a moment after the close, so
/// the command is run again while it says the database is in use (up to
/// 20 s).
pub fn kagi_cli_once_closed<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> std::process::Output {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let output = kagi_cli(args);
        let in_use = String::from_utf8_lossy(&output.stderr).contains("(stop kagi first)");
        if !in_use || std::time::Instant::now() > deadline {
            return output;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The answer of the CAPTCHA with this id at the lab at `addr`, from
/// `/dev/captcha.json`, as lab automation reads it.
pub fn captcha_answer_at(addr: SocketAddr, id: &str) -> Option<String> {
    let page = Client::new(addr).get("/dev/captcha.json");
    let list: Vec<serde_json::Value> = serde_json::from_str(&page.body).unwrap();
    list.iter()
        .find(|c| c["id"] == id)
        .map(|c| c["answer"].as_str().unwrap().to_string())
}

/// The captured mail of the server at `addr`, newest first, as
/// `/dev/mail.json` gives it.
pub fn mails_at(addr: SocketAddr) -> Vec<Mail> {
    let page = Client::new(addr).get("/dev/mail.json");
    assert_eq!(page.status, 200);
    let list: Vec<serde_json::Value> = serde_json::from_str(&page.body).unwrap();
    list.into_iter()
        .map(|m| Mail {
            to: m["to"].as_str().unwrap().into(),
            subject: m["subject"].as_str().unwrap().into(),
            body: m["body"].as_str().unwrap().into(),
            mime: m["mime"].as_str().unwrap().into(),
        })
        .collect()
}

/// Waits until the server at `addr` has captured `count` mails (the mail
/// thread delivers asynchronously) and returns them, newest first.
pub fn wait_for_mails_at(addr: SocketAddr, count: usize) -> Vec<Mail> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mails = mails_at(addr);
        if mails.len() >= count {
            return mails;
        }
        assert!(
            Instant::now() < deadline,
            "expected {count} mails, have {}",
            mails.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

const REQUIREMENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/requirements.txt");

/// The Python of a virtual environment with tests/requirements.txt
/// installed (the SMTP server, the metrics parser), made on first use and
/// made anew when that file changes.
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-venv");
        let python = venv.join("bin/python");
        let wanted = std::fs::read_to_string(REQUIREMENTS).expect("tests/requirements.txt");
        // The requirements it was made with, copied in once it was made.
        let made_with = venv.join("requirements.txt");
        if std::fs::read_to_string(&made_with).ok().as_deref() != Some(wanted.as_str()) {
            let made = Command::new("python3")
                .args(["-m", "venv", "--clear"])
                .arg(&venv)
                .status()
                .expect("python3 -m venv");
            assert!(made.success(), "cannot make a virtual environment");
            let installed = Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check"])
                .args(["--require-virtualenv", "-r", REQUIREMENTS])
                .status()
                .expect("pip install");
            assert!(installed.success(), "cannot install tests/requirements.txt");
            std::fs::write(&made_with, &wanted).unwrap();
        }
        python
    })
}

/// An operator's GET of `path` at the server at `addr`, with the admin
/// token kagi wrote to `data_dir` (`/healthz` with counts, `/admin/mail`).
pub fn admin_get(addr: SocketAddr, data_dir: &std::path::Path, path: &str) -> Page {
    let token = std::fs::read_to_string(data_dir.join("admin.token")).expect("admin.token");
    exchange(
        addr,
        format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            token.trim()
        )
        .as_bytes(),
    )
}

/// The operator's `/healthz` of the server at `addr`: how many real (not
/// decoy) mails wait in the outbox, and how many failed for good.
pub fn outbox_counts(addr: SocketAddr, data_dir: &std::path::Path) -> (u64, u64) {
    let page = admin_get(addr, data_dir, "/healthz");
    assert_eq!(page.status, 200, "{}", page.body);
    let health: serde_json::Value = serde_json::from_str(&page.body).unwrap();
    (
        health["outbox"].as_u64().expect("an outbox count"),
        health["failed"].as_u64().expect("a failed count"),
    )
}

/// The operator's `/admin/mail`: the real mails not delivered yet, oldest
/// first, with their attempts, last error and failure.
pub fn undelivered(addr: SocketAddr, data_dir: &std::path::Path) -> Vec<serde_json::Value> {
    let page = admin_get(addr, data_dir, "/admin/mail");
    assert_eq!(page.status, 200, "{}", page.body);
    serde_json::from_str(&page.body).unwrap()
}

/// Polls `done` every 20 ms until it holds; panics with `what` after
/// `secs` seconds. For waiting on an event the test can observe.
pub fn wait_until(secs: u64, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "waited {secs} s: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl TestServer {
    pub fn client(&self) -> Client {
        Client::new(self.addr)
    }

    /// The demo operator's TOTP secret, as the demo's welcome prints it.
    pub fn demo_operator_secret(&self) -> String {
        self.running
            .as_ref()
            .and_then(Running::demo_operator_secret)
            .expect("the demo operator")
    }

    /// The answer of the CAPTCHA with this id, from `/dev/captcha.json`, as
    /// lab automation reads it.
    pub fn captcha_answer(&self, id: &str) -> Option<String> {
        captcha_answer_at(self.addr, id)
    }

    /// The captured mail, newest first, as `/dev/mail.json` gives it.
    pub fn mails(&self) -> Vec<Mail> {
        mails_at(self.addr)
    }

    /// Waits until `count` mails have been captured (the mail thread
    /// delivers asynchronously) and returns them, newest first.
    pub fn wait_for_mails(&self, count: usize) -> Vec<Mail> {
        wait_for_mails_at(self.addr, count)
    }

    /// Every mail captured, once the mail thread has dealt with all that
    /// was queued so far: a step queues its mail before it answers, so
    /// after this a mail that a step sent is here and one it held back
    /// never will be. Waits until the outbox holds no real mail.
    pub fn mails_once_sent(&self) -> Vec<Mail> {
        wait_until(10, "the outbox to empty", || {
            outbox_counts(self.addr, &self.dir) == (0, 0)
        });
        self.mails()
    }

    /// Stops the server and counts every mail it ever queued, delivered
    /// (captured) or still in the outbox: for asserting that no mail was
    /// sent, with nothing left to chance or timing.
    pub fn stop_and_count_mail(self) -> usize {
        let dir = self.stop();
        let store = open_store(&dir);
        // Decoys (the work a non-matching step does instead) are not mail.
        let queued = store.outbox().unwrap().iter().filter(|m| !m.decoy).count();
        let count = queued + store.captured_mail(usize::MAX).unwrap().len();
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
        count
    }

    /// Stops the server and returns its database directory (still on disk).
    pub fn stop(mut self) -> PathBuf {
        self.running.take().unwrap().stop();
        std::mem::take(&mut self.dir)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop();
        }
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Opens the database of a stopped server, or a new one for a server to
/// start on, on the engine the tests run on (a sled database already in
/// `dir` stays sled's). sled's background threads may hold its lock for a
/// moment after the server's last handle is gone, so the open is retried
/// for a few seconds.
pub fn open_store(dir: &std::path::Path) -> kagi::store::Store {
    let new = !dir.join("db").exists() && !on_postgres().lock().unwrap().contains(dir);
    let url = match new {
        true => kagi::store::test_database(&dir.display().to_string(), true),
        false => on_postgres()
            .lock()
            .unwrap()
            .contains(dir)
            .then(|| kagi::store::test_database(&dir.display().to_string(), false))
            .flatten(),
    };
    if url.is_some() {
        on_postgres().lock().unwrap().insert(dir.to_path_buf());
        use std::os::unix::fs::DirBuilderExt;
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir);
    }
    // sled lets go of its lock a moment after the server closed it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let key_file = kagi::store::default_key_file(dir);
        let opened = match &url {
            Some(url) => kagi::store::Store::open_postgres_or_wait(
                &kagi::config::PostgresConfig::at(url),
                dir,
                &key_file,
            ),
            None => kagi::store::Store::open(dir, 1 << 20, &key_file),
        };
        match opened {
            Ok(store) => return store,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("cannot open {}: {e}", dir.display()),
        }
    }
}

/// A lab `serve` in this process (capture transport, any port) on the
/// database in `dir`, its config changed by `adjust` before it starts.
pub fn lab_serve_on(dir: &std::path::Path, adjust: impl FnOnce(&mut Config)) -> Running {
    let mut config = Config {
        listen: "127.0.0.1:0".into(),
        data_dir: Some(dir.to_path_buf()),
        public_url: Some("http://lab.example.jp".into()),
        ..Default::default()
    };
    config.mail.transport = Some(kagi::config::Transport::Capture);
    adjust(&mut config);
    kagi::start(Options {
        config,
        mode: Mode::Serve,
        clock: Clock::system(),
    })
    .expect("a lab serve starts")
}

/// A lab `serve` config in `dir` (capture transport, cheap argon2, any
/// port) over the database `data`, and `more` TOML after it.
pub fn lab_config(dir: &std::path::Path, data: &std::path::Path, more: &str) -> PathBuf {
    serve_config(
        dir,
        data,
        &format!("[argon2]\nmemory_kib = 256\niterations = 1\n{more}"),
    )
}

/// A `serve` config in `dir` (capture transport, any port) over the
/// database `data`, with `more` TOML after it (its own `[argon2]`, say).
pub fn serve_config(dir: &std::path::Path, data: &std::path::Path, more: &str) -> PathBuf {
    let config = dir.join("kagi.toml");
    std::fs::write(
        &config,
        format!(
            "public_url = \"http://127.0.0.1\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n\
             [mail]\ntransport = \"capture\"\n{more}",
            data.display()
        ),
    )
    .unwrap();
    config
}

/// Asserts that `page` is kagi's readable 503: the page that says to try
/// again, and `Retry-After`.
pub fn assert_readable_503(page: &Page) {
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(page.header("retry-after").is_some());
    assert!(
        page.body.contains("一時的に処理できない状態です"),
        "{}",
        page.body
    );
}

/// A captured mail.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
    pub mime: String,
}

impl Mail {
    /// The reset link's path and query (`/portal/passwordreset?token=…`),
    /// from the line that carries it, and the whole URL.
    pub fn link(&self) -> (String, String) {
        let url = self
            .body
            .lines()
            .find(|l| l.contains("/portal/passwordreset?token="))
            .expect("a reset link mail")
            .trim()
            .to_string();
        let path = url[url.find("/portal/").unwrap()..].to_string();
        (path, url)
    }

    /// The path of a registration's confirmation link
    /// (`/portal/register/confirm?token=…`).
    pub fn registration_link(&self) -> String {
        let url = self
            .body
            .lines()
            .find(|l| l.contains("/portal/register/confirm?token="))
            .unwrap_or_else(|| panic!("a link in: {}", self.body))
            .trim();
        url[url.find("/portal/").unwrap()..].to_string()
    }

    /// The code on the line after `[ワンタイムパスワード]`.
    pub fn otp(&self) -> String {
        let mut lines = self.body.lines();
        lines
            .find(|l| *l == "[ワンタイムパスワード]")
            .expect("an OTP mail");
        lines.next().unwrap().to_string()
    }
}

/// An answer as the browser got it.
#[derive(Debug, Clone)]
pub struct Page {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn location(&self) -> &str {
        self.header("Location").expect("a Location header")
    }

    pub fn has(&self, text: &str) -> bool {
        self.body.contains(text)
    }

    /// The value of the hidden `csrf` field, if the page has a form.
    pub fn csrf(&self) -> Option<String> {
        let at = self.body.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
        Some(self.body[at..].split('"').next()?.to_string())
    }

    /// The value of a hidden form field.
    pub fn hidden(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let at = self.body.find(&marker)? + marker.len();
        Some(self.body[at..].split('"').next()?.to_string())
    }

    /// The screen's title (`<h1>`).
    pub fn title(&self) -> &str {
        let start = self.body.find("<h1>").map(|i| i + 4).unwrap_or(0);
        let end = self.body[start..]
            .find("</h1>")
            .map(|i| start + i)
            .unwrap_or(start);
        &self.body[start..end]
    }
}

/// A browser: keeps cookies, fills the CSRF field from the last page.
pub struct Client {
    addr: SocketAddr,
    cookies: BTreeMap<String, String>,
    csrf: Option<String>,
    /// The Host header sent; the server's address unless a test lies.
    pub host: Option<String>,
    /// An `X-Forwarded-For` header to send, as a proxy would.
    pub forwarded_for: Option<String>,
    /// More header lines to send (`Name: value`), as they are.
    pub headers: Vec<String>,
}

impl Client {
    /// The address of the server this browser talks to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Goes on at another server (another instance on the same database),
    /// with the same cookies and form token, as a load balancer would send
    /// the browser's next request.
    pub fn switch_to(&mut self, addr: SocketAddr) {
        self.addr = addr;
    }

    /// The value of a cookie this browser holds.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    /// Puts a cookie in this browser, as another site on the same domain
    /// could.
    pub fn plant_cookie(&mut self, name: &str, value: &str) {
        self.cookies.insert(name.to_string(), value.to_string());
    }

    /// A browser with no cookies yet.
    pub fn new(addr: SocketAddr) -> Client {
        Client {
            addr,
            cookies: BTreeMap::new(),
            csrf: None,
            host: None,
            forwarded_for: None,
            headers: Vec::new(),
        }
    }

    pub fn get(&mut self, path: &str) -> Page {
        self.send("GET", path, None)
    }

    /// Submits a form as the last page's form would (CSRF included) and
    /// follows the redirect, as a browser does.
    pub fn submit(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let page = self.post(path, fields);
        self.follow(page)
    }

    /// Posts a form with the last page's CSRF token; no redirect is followed.
    pub fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut all: Vec<(String, String)> = Vec::new();
        if let Some(csrf) = &self.csrf {
            all.push(("csrf".into(), csrf.clone()));
        }
        all.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(all)
            .finish();
        self.send("POST", path, Some(body))
    }

    /// Posts exactly these fields, without adding a CSRF token.
    pub fn post_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.send("POST", path, Some(body))
    }

    pub fn follow(&mut self, mut page: Page) -> Page {
        for _ in 0..5 {
            if !matches!(page.status, 301..=303) {
                break;
            }
            let to = page.location().to_string();
            page = self.get(&to);
        }
        page
    }

    fn send(&mut self, method: &str, path: &str, body: Option<String>) -> Page {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.host.clone().unwrap_or_else(|| self.addr.to_string())
        );
        if !cookie.is_empty() {
            req += &format!("Cookie: {}\r\n", cookie.join("; "));
        }
        if let Some(hops) = &self.forwarded_for {
            req += &format!("X-Forwarded-For: {hops}\r\n");
        }
        for line in &self.headers {
            req += line;
            req += "\r\n";
        }
        if let Some(b) = &body {
            req += &format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                b.len()
            );
        }
        req += "\r\n";
        req += body.as_deref().unwrap_or("");
        let page = exchange(self.addr, req.as_bytes());
        for (name, value) in &page.headers {
            if name.eq_ignore_ascii_case("Set-Cookie") {
                let pair = value.split(';').next().unwrap();
                let (k, v) = pair.split_once('=').unwrap();
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        if let Some(c) = page.csrf() {
            self.csrf = Some(c);
        }
        page
    }
}

/// A page with what legitimately differs between two answers blanked out:
/// the clock, the CSRF token and the address the user typed.
pub fn comparable(page: &Page, typed_email: &str) -> (u16, Vec<(String, String)>, String) {
    let mut body = page.body.clone();
    if !typed_email.is_empty() {
        body = body.replace(typed_email, "<typed>");
    }
    if let Some(csrf) = page.csrf() {
        body = body.replace(&csrf, "<csrf>");
    }
    if let Some(at) = body.find("時刻 ") {
        let at = at + "時刻 ".len();
        body.replace_range(at..at + 8, "HH:MM:SS");
    }
    let headers = page
        .headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("Date"))
        .map(|(n, v)| {
            let v = if n.eq_ignore_ascii_case("Set-Cookie") {
                v.split_once('=').unwrap().0.to_string() + "=<cookie>" + &v[v.find(';').unwrap()..]
            } else {
                v.clone()
            };
            (n.clone(), v)
        })
        .collect();
    (page.status, headers, body)
}

/// Sends raw bytes and parses the HTTP/1.1 answer (Content-Length bodies).
pub fn exchange(addr: SocketAddr, request: &[u8]) -> Page {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    parse_response(&raw)
}

pub fn parse_response(raw: &[u8]) -> Page {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let body = String::from_utf8(raw[split + 4..].to_vec()).expect("UTF-8 body");
    Page {
        status,
        headers,
        body,
    }
}

/// A TCP connection to `addr` from the local address `from` (any of
/// 127.0.0.0/8 on Linux's loopback): a client at another address.
pub fn connect_from(from: std::net::Ipv4Addr, addr: SocketAddr) -> TcpStream {
    use std::os::fd::FromRawFd;
    let SocketAddr::V4(to) = addr else {
        panic!("an IPv4 server address")
    };
    let sockaddr = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a fresh socket, bound and connected with valid addresses; its
    // descriptor is handed to the TcpStream, which owns and closes it.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let local = sockaddr(from, 0);
        let bound = libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len);
        assert_eq!(bound, 0, "bind {from}: {}", std::io::Error::last_os_error());
        let remote = sockaddr(*to.ip(), to.port());
        let connected = libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), len);
        assert_eq!(connected, 0, "connect: {}", std::io::Error::last_os_error());
        TcpStream::from_raw_fd(fd)
    }
}

/// The real `kagi` executable as a child process, killed (SIGKILL: no
/// shutdown code runs) and reaped when dropped, so that a failing test
/// leaves nothing running.
pub struct Kagi(pub std::process::Child);

impl Kagi {
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Kagi {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `kagi ARGS…` (under `umask`, and with its standard error going to
/// the file `log`, if given) until it says it is ready; the process and the
/// address it listens on. Panics if it exits first.
pub fn run_kagi(
    args: &[&std::ffi::OsStr],
    umask: Option<u32>,
    log: Option<&std::path::Path>,
) -> (Kagi, SocketAddr) {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let mut command = Command::new(env!("CARGO_BIN_EXE_kagi"));
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(log) = log {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        command.stderr(file);
    }
    if let Some(mask) = umask {
        // SAFETY: umask is async-signal-safe and only sets the child's mask.
        unsafe {
            command.pre_exec(move || {
                libc::umask(mask as libc::mode_t);
                Ok(())
            });
        }
    }
    until_ready(command)
}

/// Spawns `command` (kagi's executable, its standard output piped) and
/// reads its standard output until it says it is ready; the process and
/// the address it listens on. Panics if it exits first.
pub fn until_ready(mut command: std::process::Command) -> (Kagi, SocketAddr) {
    use std::io::{BufRead, BufReader};
    let mut child = command.spawn().expect("kagi starts");
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let child = Kagi(child);
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(at) = line.find(" on http://") {
            let addr = line[at + " on http://".len()..]
                .split_whitespace()
                .next()
                .unwrap()
                .trim_end_matches(',')
                .parse()
                .unwrap();
            return (child, addr);
        }
    }
    panic!("kagi exited before it was ready");
}
