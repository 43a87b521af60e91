//! kagi — a self-hosted login-recovery server in one binary.
//!
//! It reproduces the self-service recovery of two sites: the
//! 介護電子請求受付システム (kaigo: office number + security e-mail → a mailed
//! one-time password → new password, the security code cleared) and the
//! 医療機関等向け総合ポータルサイト (portal: user name + CAPTCHA → registered
//! e-mail → a mailed reset link → new password).
//!
//! # Code map
//!
//! A connection is accepted by the front door (`http::front`: limits, refusals,
//! a connection cap, threads per connection), which hands each checked
//! request to tiny_http over a private socket. The request comes out on the
//! one request thread (`http::serve`), goes through the top router (`app`)
//! to a site's flow (`sites::kaigo`, `sites::portal`), which checks the rate
//! limits (`limit`), reads and writes `store` and answers with a `pages`
//! screen. Beside the request thread run the mail thread (`mail`: outbox →
//! SMTP or capture, decoys dropped) and the sweeper (deletes expired records).
//!
//! - `cli`     the command line
//! - `config`  one `Config`, defaults, TOML, validation
//! - `clock`   the one clock; tests move it
//! - `http`    the front door; tiny_http → `Request`, `Response` → wire, security headers, panics → 500
//! - `limit`   rate limits per client address
//! - `app`     the top router, `/dev/` and `/healthz`
//! - `sites`   the flows: visit cookie, CSRF, login lockout, "not me", each site's state machine
//! - `pages`   maud screens, pure
//! - `policy`  password rules (seed and NIST style, common passwords) with one message each
//! - `secret`  random tokens, OTPs, keyed digests, argon2id
//! - `store`   sled trees, records, expiry index, sweep
//! - `mail`    outbox, templates, transports
//! - `demo`    the demo accounts of `data/demo.toml`
//!
//! # Invariants
//!
//! - Only `http` knows tiny_http; only `store` knows sled; only `mail` knows SMTP.
//! - tiny_http never reads from the network: only requests the front door
//!   checked and rebuilt reach it.
//! - A recovery step does the same work whether or not the account matched.
//! - `pages` is pure: no store, no clock.
//! - Nothing below the request loop reads the clock: `now` is a parameter.
//! - No handler talks to a mail server: it writes to the outbox.
//! - No secret (password, code, token, cookie) is stored or logged in clear;
//!   the outbox holds a mail's text only until the server accepts it.

/// Writes a line to standard error, as `eprintln!` does, but never panics:
/// a log that cannot be written (standard error going to a file on a full
/// disk, say) must not take the server down with it.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod address;
pub mod alloc;
pub mod cli;
pub mod clock;
pub mod config;
pub mod site;
pub mod store;

mod files;
/// The pure functions the fuzz targets in `fuzz/` drive; not an API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::http::form::{has_repeated_name, parse_cookies, parse_urlencoded};
    pub use crate::http::front::parse_head;
    pub use crate::policy::{check_kaigo, check_portal, Violation};
    pub use crate::sites::normalize_width;
}

mod app;
mod captcha;
mod demo;
mod http;
mod import;
mod limit;
mod mail;
mod pages;
mod policy;
mod router;
mod secret;
mod sites;

use clock::Clock;
use config::{Config, Transport};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use store::Store;

/// Why kagi could not run.
#[derive(Debug)]
pub enum Error {
    /// The command line was wrong.
    Usage(String),
    /// The configuration was wrong; the message names the field.
    Config(String),
    /// Something at startup failed (port taken, database locked, …).
    Startup(String),
    /// A check found a problem (the audit chain is broken).
    Check(String),
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Config(_) => 2,
            Error::Startup(_) | Error::Check(_) => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Config(m) | Error::Startup(m) | Error::Check(m) => {
                f.write_str(m)
            }
        }
    }
}

impl std::error::Error for Error {}

/// How kagi runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Demo accounts, captured mail, `/dev/` pages, a temporary database.
    Demo,
    /// Production: everything from the config file, nothing made up.
    Serve,
}

/// What `start` needs.
pub struct Options {
    pub config: Config,
    pub mode: Mode,
    /// The clock the server reads; tests pass one they can move.
    pub clock: Clock,
}

/// A running server.
pub struct Running {
    addr: SocketAddr,
    data_dir: PathBuf,
    /// The data directory was made up for this run (demo without --data-dir).
    data_dir_is_temporary: bool,
    public_url: String,
    stop: Arc<AtomicBool>,
    listener: Arc<http::Listener>,
    request_thread: Option<JoinHandle<()>>,
    helpers: Vec<JoinHandle<()>>,
    /// What is written once every thread has stopped.
    last_words: Option<LastWords>,
    started: Duration,
}

/// What the server writes once its threads have stopped: the refusals
/// tallied since the last minute ended.
struct LastWords {
    store: Arc<Store>,
    limiter: Arc<limit::RateLimiter>,
    clock: Clock,
}

impl Running {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The database directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Blocks until the server stops (it does not stop by itself).
    pub fn wait(mut self) {
        if let Some(t) = self.request_thread.take() {
            let _ = t.join();
        }
    }

    /// Stops every thread and closes the database.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.listener.unblock();
        if let Some(t) = self.request_thread.take() {
            let _ = t.join();
        }
        for t in self.helpers.drain(..) {
            let _ = t.join();
        }
        if let Some(last) = self.last_words.take() {
            write_refusals(&last.store, &last.limiter, last.clock.now(), true);
            let _ = last.store.flush();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts the server and returns once it accepts connections.
pub fn start(options: Options) -> Result<Running, Error> {
    let began = Instant::now();
    return_large_blocks_to_the_system();
    treat_a_file_size_limit_as_a_disk_error();
    use_every_descriptor_allowed();
    let Options {
        mut config,
        mode,
        clock,
    } = options;
    match mode {
        Mode::Demo => config.validate_common(),
        Mode::Serve => config.validate_for_serve(),
    }
    .map_err(|e| Error::Config(e.to_string()))?;
    let utc_offset = config
        .utc_offset_secs()
        .map_err(|e| Error::Config(e.to_string()))?;
    let listen = config
        .listen_addr()
        .map_err(|e| Error::Config(e.to_string()))?;

    let data_dir_is_temporary = config.data_dir.is_none();
    let data_dir = match &config.data_dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!(
            "kagi-demo-{}",
            secret::hex(&secret::random_bytes::<6>())
        )),
    };
    // Every file kagi makes is its user's alone, and the data directory
    // must be too: the database holds sessions, codes' digests and mail.
    files::keep_new_files_private();
    let mended = files::private_dir(&data_dir).map_err(Error::Startup)?;
    if mended > 0 {
        say!(
            "kagi: made {mended} files in {} private to kagi's user",
            data_dir.display()
        );
    }
    let key_file = config
        .store
        .key_file
        .clone()
        .unwrap_or_else(|| store::default_key_file(&data_dir));
    // A full disk does not stop kagi: it serves the 503 page until the
    // database opens.
    let store =
        Store::open_or_wait(&data_dir, config.store.cache_bytes, &key_file).map_err(|e| {
            Error::Startup(format!(
                "cannot open the database in {}: {e}",
                data_dir.display()
            ))
        })?;
    if let Some(why) = store.unavailable() {
        say!("kagi: the database in {} cannot be opened yet ({why}); every page answers 503 until it can, tried again every second", data_dir.display());
    }
    let store = Arc::new(store);
    give_back_free_memory();
    let hasher = Arc::new(secret::Hasher::new(&config.argon2).map_err(Error::Config)?);
    let trusted_proxies =
        config::TrustedProxies::parse(&config.http.trusted_proxies).map_err(Error::Config)?;
    let limits = http::front::Limits {
        max_connections: config.http.max_connections,
        max_connections_per_client: config.http.max_connections_per_client,
        header_timeout: Duration::from_secs(config.http.header_timeout_secs),
        idle_timeout: Duration::from_secs(config.http.idle_timeout_secs),
        write_timeout: Duration::from_secs(config.http.header_timeout_secs),
        trusted_proxies: trusted_proxies.clone(),
    };
    let serve_options = http::ServeOptions {
        https: config.is_https(),
        trusted_proxies,
        banner: None,
    };
    let listener = Arc::new(http::Listener::bind(listen, limits).map_err(Error::Startup)?);
    let addr = listener.local_addr();

    // What needs the database is done now, or once it opens.
    let mut pending = Pending::default();
    if mode == Mode::Demo {
        config.mail.transport = Some(Transport::Capture);
        if config.public_url.is_none() {
            config.public_url = Some(format!("http://{addr}"));
        }
        pending.demo_accounts = Some(config.argon2.clone());
    }
    let admin_token = match &config.admin.token {
        Some(t) => t.clone(),
        None => {
            let token = secret::hex(&secret::random_bytes::<32>());
            pending.admin_token = Some((data_dir.join("admin.token"), token.clone()));
            token
        }
    };
    // Logins cost one hash per cost the stored hashes have: what the
    // database knows of at once, what a scan of the accounts finds later.
    if store.unavailable().is_none() {
        if let Err(e) = census_from_meta(&store, &hasher) {
            say!("kagi: the census of password hash costs waits for its scan: {e}");
        }
    }
    pending.census = Some(hasher.clone());
    pending.run(&store, false).map_err(Error::Startup)?;

    let stop = Arc::new(AtomicBool::new(false));
    let (outbox, mail_thread) =
        mail::start(&config.mail, store.clone(), clock.clone(), stop.clone());
    let limiter = Arc::new(limit::RateLimiter::new(config.rate_limit.clone()));
    let sweeper = spawn_sweeper(
        Sweeper {
            store: store.clone(),
            limiter: limiter.clone(),
            clock: clock.clone(),
            limits: config.store.clone(),
        },
        pending,
        stop.clone(),
    );

    let public_url = config.public_base();
    // `serve` with the capture transport is a lab: mail is kept, not sent,
    // and /dev/ shows it, as in the demo; every page says so.
    let lab_capture = mode == Mode::Serve && config.mail.transport == Some(Transport::Capture);
    let banner = match mode {
        Mode::Demo => Some("デモモード: メールは送信されず、/dev/mail に保存されます。"),
        Mode::Serve if lab_capture => Some("検証環境: メールは送信されず、/dev/mail に保存されます。実際の利用者向けには使用しないでください。"),
        Mode::Serve => None,
    }
    .map(str::to_string);
    let serve_options = http::ServeOptions {
        banner: banner.clone(),
        ..serve_options
    };
    let app = app::App {
        admin_token,
        hasher,
        outbox,
        limiter: limiter.clone(),
        challenges: captcha::Challenges::default(),
        utc_offset,
        dev_pages: mode == Mode::Demo || lab_capture,
        dev_captchas: (mode == Mode::Demo || lab_capture)
            .then(|| std::sync::Mutex::new(std::collections::VecDeque::new())),
        banner,
        store: store.clone(),
        config,
    };
    let last_words = LastWords {
        store: store.clone(),
        limiter,
        clock: clock.clone(),
    };
    let (l, s) = (listener.clone(), stop.clone());
    let request_thread = std::thread::Builder::new()
        .name("kagi-http".into())
        .spawn(move || {
            http::serve(
                &l,
                &serve_options,
                || !s.load(Ordering::SeqCst),
                |req| app.handle(req, clock.now()),
            )
        })
        .map_err(|e| Error::Startup(format!("cannot start the request thread: {e}")))?;

    Ok(Running {
        addr,
        data_dir_is_temporary,
        data_dir,
        public_url,
        stop,
        listener,
        request_thread: Some(request_thread),
        helpers: vec![mail_thread, sweeper],
        last_words: Some(last_words),
        started: began.elapsed(),
    })
}

/// glibc serves a large allocation with mmap, but after the first one is
/// freed it raises that threshold and serves the next ones from the heap,
/// which it keeps: every argon2id hash (19 MiB) would stay resident. A
/// fixed threshold of 1 MiB keeps the heap for small things and hands big
/// blocks back when they are freed.
fn return_large_blocks_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a tunable of the allocator.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Opening a large database allocates and frees a lot (sled reads its
/// whole log); glibc keeps what was freed unless asked to give it back.
fn give_back_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap memory to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A write past the file-size limit (`ulimit -f`) raises SIGXFSZ, whose
/// default is to kill the process. Ignored, the write fails with EFBIG
/// instead, and kagi answers 503 as for a full disk.
fn treat_a_file_size_limit_as_a_disk_error() {
    // SAFETY: setting a signal to SIG_IGN installs no handler code.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// The costs the stored password hashes have, as the database keeps them,
/// with the configured one added for the next start (which may be
/// configured otherwise, while hashes of this cost remain).
fn census_from_meta(store: &Store, hasher: &secret::Hasher) -> Result<(), store::StoreError> {
    let mut costs = store.hash_costs()?;
    costs.insert(hasher.cost().to_string());
    store.put_hash_costs(&costs)?;
    hasher.set_census(costs);
    Ok(())
}

/// Counts the costs of every stored password hash and keeps just those
/// (and the configured one): once the last hash of an imported cost has
/// been made anew at a login, logins stop paying for it.
fn census_scan(store: &Store, hasher: &secret::Hasher) -> Result<(), store::StoreError> {
    let mut costs = std::collections::BTreeSet::new();
    costs.insert(hasher.cost().to_string());
    store.for_each_password_hash(|phc| {
        if let Some(cost) = secret::cost_of(phc) {
            costs.insert(cost);
        }
    })?;
    store.put_hash_costs(&costs)?;
    if costs.len() > 1 {
        say!(
            "kagi: stored password hashes have {} costs ({}): each login computes one hash at each",
            costs.len(),
            costs.iter().cloned().collect::<Vec<_>>().join("; ")
        );
    }
    hasher.set_census(costs);
    Ok(())
}

/// What needs the database at start, when it could not open then: done by
/// the sweeper once it does.
#[derive(Default)]
struct Pending {
    /// The admin token's file and the token, for `kagi mail` on this machine.
    admin_token: Option<(PathBuf, String)>,
    /// The demo accounts, hashed at this cost.
    demo_accounts: Option<config::Argon2Config>,
    /// The scan of the stored hashes' costs, for this hasher's census; in
    /// the background only (a million accounts take seconds).
    census: Option<Arc<secret::Hasher>>,
    /// The wait has been logged.
    said: bool,
}

impl Pending {
    /// Does what can be done now. Err only for a fault that waiting does
    /// not mend; a disk that refuses leaves the work for later.
    fn run(&mut self, store: &Store, background: bool) -> Result<(), String> {
        if let Some((path, token)) = &self.admin_token {
            match files::write_private(path, token) {
                Ok(()) => self.admin_token = None,
                Err(e)
                    if e.raw_os_error().is_some_and(|n| {
                        [libc::ENOSPC, libc::EDQUOT, libc::EROFS, libc::EIO].contains(&n)
                    }) =>
                {
                    if !self.said {
                        say!("kagi: cannot write {} yet ({e}); `kagi mail` cannot find the token until it is written, tried again every second", path.display());
                        self.said = true;
                    }
                }
                Err(e) => return Err(format!("cannot write {}: {e}", path.display())),
            }
        }
        if let Some(cost) = &self.demo_accounts {
            if store.unavailable().is_none() {
                let hasher = secret::Hasher::new(cost)?;
                match demo::load(store, &hasher) {
                    Ok(()) => self.demo_accounts = None,
                    Err(e) if e.is_disk_trouble() => {
                        if !self.said {
                            say!("kagi: the demo accounts wait for the disk: {e}");
                            self.said = true;
                        }
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
        }
        if let Some(hasher) = self.census.as_ref().filter(|_| background) {
            if store.unavailable().is_none() {
                match census_scan(store, hasher) {
                    Ok(()) => self.census = None,
                    Err(e) if e.is_disk_trouble() => {}
                    Err(e) => {
                        // Not tried again every second: logins go on with
                        // the census the database gave at start.
                        self.census = None;
                        return Err(format!("the census of password hashes: {e}"));
                    }
                }
            }
        }
        Ok(())
    }

    fn is_done(&self) -> bool {
        self.admin_token.is_none() && self.demo_accounts.is_none() && self.census.is_none()
    }
}

/// Each client connection holds several descriptors (its socket and the
/// way to tiny_http, both read and written from two threads): at the
/// default cap of 256 that is more than a soft limit of 1,024 allows, and
/// accept() would fail. The soft limit goes up to the hard one, as
/// servers' do.
fn use_every_descriptor_allowed() {
    // SAFETY: getrlimit and setrlimit read and set this process's limits
    // through a struct they own for the call.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Writes tallied refusals to the audit trail: one entry per client,
/// action and minute (those of minutes that have ended, or all).
fn write_refusals(store: &Store, limiter: &limit::RateLimiter, now: u64, all: bool) {
    for r in limiter.take_refusals(now, all) {
        let event = store::AuditEvent {
            prev: String::new(),
            time: r.minute,
            site: r.site,
            event: "rate_limited".into(),
            account: None,
            client: r.client.map_or("(other clients)".into(), |c| c.to_string()),
            outcome: format!("{}: {} refused in the minute", r.action.name(), r.count),
        };
        if let Err(e) = store.audit(&event) {
            say!("kagi: {} refused requests not audited: {e}", r.count);
        }
    }
}

/// What the sweeper looks after.
struct Sweeper {
    store: Arc<Store>,
    limiter: Arc<limit::RateLimiter>,
    clock: Clock,
    limits: config::StoreConfig,
}

/// Deletes expired flows and sessions in bounded batches, so that the
/// database does not grow with abandoned recoveries.
fn spawn_sweeper(sweeper: Sweeper, mut pending: Pending, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    let Sweeper {
        store,
        limiter,
        clock,
        limits,
    } = sweeper;
    let interval_secs = limits.sweep_interval_secs;
    const BATCH: usize = 1000;
    std::thread::Builder::new()
        .name("kagi-sweep".into())
        .spawn(move || {
            yield_to_requests();
            let mut next = Instant::now();
            let mut next_check = Instant::now();
            let mut trouble = None;
            while !stop.load(Ordering::SeqCst) {
                if Instant::now() >= next_check {
                    keep_the_database_writable(&store, &mut trouble);
                    write_refusals(&store, &limiter, clock.now(), false);
                    if !pending.is_done() {
                        if let Err(e) = pending.run(&store, true) {
                            say!("kagi: {e}");
                        }
                    }
                    next_check = Instant::now() + Duration::from_secs(1);
                }
                // A database that is not open has nothing to sweep yet.
                if Instant::now() >= next && store.unavailable().is_none() {
                    let now = clock.now();
                    let began = Instant::now();
                    let mut swept = 0;
                    loop {
                        match store.sweep(now, BATCH) {
                            Ok(n) if n == BATCH && !stop.load(Ordering::SeqCst) => {
                                swept += n;
                                // A breath between batches for the request
                                // thread; a million records take 1 s more.
                                std::thread::sleep(Duration::from_millis(1));
                            }
                            Ok(n) => {
                                swept += n;
                                break;
                            }
                            Err(e) => {
                                say!("kagi: sweep: {e}");
                                break;
                            }
                        }
                    }
                    // Append-only trees get a bound too: the audit trail
                    // by age, the capture mailbox by count.
                    let before = now.saturating_sub(limits.audit_retention_secs);
                    while let Ok(BATCH) = store.trim_audit(before, BATCH) {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                    }
                    while let Ok(BATCH) = store.trim_mailbox(limits.mailbox_keep, BATCH) {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                    }
                    if swept >= BATCH {
                        say!(
                            "kagi: sweep: {swept} expired records in {:.0} ms",
                            began.elapsed().as_secs_f64() * 1000.0
                        );
                    }
                    next = Instant::now() + Duration::from_secs(interval_secs.max(1));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
        .expect("spawning the sweeper")
}

/// Lowers the calling thread's priority (nice 10): on a busy machine the
/// request thread gets the core first, and a long sweep does not make
/// pages wait.
fn yield_to_requests() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority only read and set this thread's nice
    // value; a failure leaves it as it was.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

/// After a disk error sled refuses every write until it is opened again:
/// once a second, check, and if it fails, reopen. If the disk is still full
/// the next write fails again, and the next check reopens again. The same
/// opens a database that could not be opened at start. Only changes are
/// logged: a full disk does not fill the log too.
fn keep_the_database_writable(store: &Store, trouble: &mut Option<String>) {
    let Err(e) = store.check() else {
        if trouble.take().is_some() {
            say!("kagi: the database writes again");
        }
        return;
    };
    let began = Instant::now();
    match store.reopen(&e) {
        Ok(()) => {
            say!(
                "kagi: the database cannot be written ({e}); opened it again in {:.0} ms",
                began.elapsed().as_secs_f64() * 1000.0
            );
        }
        Err(again) => {
            let now = format!("{e}; opening it again: {again}");
            if trouble.as_deref() != Some(now.as_str()) {
                say!("kagi: the database cannot be written: {now}; trying again every second");
            }
            *trouble = Some(now);
        }
    }
}

/// `kagi mail list` and `kagi mail retry ID`: asks the running server
/// through its admin endpoints.
fn mail_command(
    retry: Option<u64>,
    config: Option<std::path::PathBuf>,
    data_dir: Option<std::path::PathBuf>,
    server: Option<String>,
) -> Result<(), Error> {
    let c = match &config {
        Some(path) => Config::from_file(path).map_err(Error::Config)?,
        None => Config::default(),
    };
    let server = match server {
        Some(s) => s,
        None => {
            // A server listening on every address is asked on loopback.
            let mut addr = c.listen_addr().map_err(|e| Error::Config(e.to_string()))?;
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            addr.to_string()
        }
    };
    let token = match &c.admin.token {
        Some(t) => t.clone(),
        None => {
            let dir = data_dir
                .or(c.data_dir.clone())
                .ok_or_else(|| Error::Config("data_dir: needed to find admin.token".into()))?;
            std::fs::read_to_string(dir.join("admin.token"))
                .map_err(|e| {
                    Error::Startup(format!(
                        "cannot read {} (is kagi running on that directory?): {e}",
                        dir.join("admin.token").display()
                    ))
                })?
                .trim()
                .to_string()
        }
    };
    if let Some(id) = retry {
        let path = format!("/admin/mail/retry?id={id}");
        return match admin_request(&server, "POST", &path, &token).map_err(Error::Startup)? {
            (200, _) => {
                println!("kagi: mail {id} will be tried again now");
                Ok(())
            }
            (404, _) => Err(Error::Check(format!("no undelivered mail with ID {id}"))),
            (status, _) => Err(Error::Startup(format!(
                "the server at {server} answered {status} (wrong admin token?)"
            ))),
        };
    }
    println!(
        "{:<8} {:<8} {:>5}  {:<32} LAST ERROR",
        "ID", "STATE", "TRIES", "TO"
    );
    // The server gives a page at a time, oldest first.
    let (mut after, mut total) = (0u64, 0usize);
    loop {
        let path = format!("/admin/mail?after={after}");
        let (status, body) =
            admin_request(&server, "GET", &path, &token).map_err(Error::Startup)?;
        if status != 200 {
            return Err(Error::Startup(format!(
                "the server at {server} answered {status} (wrong admin token?)"
            )));
        }
        let page: Vec<serde_json::Value> =
            serde_json::from_str(&body).map_err(|e| Error::Startup(e.to_string()))?;
        let Some(last) = page.last().and_then(|m| m["id"].as_u64()) else {
            break;
        };
        for m in &page {
            let state = if m["failed"].is_null() {
                "queued"
            } else {
                "failed"
            };
            println!(
                "{:<8} {:<8} {:>5}  {:<32} {}",
                m["id"],
                state,
                m["attempts"],
                m["to"].as_str().unwrap_or(""),
                m["last_error"].as_str().unwrap_or("")
            );
        }
        total += page.len();
        after = last;
    }
    println!("kagi: {total} undelivered");
    Ok(())
}

/// One HTTP/1.1 request to the running server; the status and the body.
fn admin_request(
    server: &str,
    method: &str,
    path: &str,
    token: &str,
) -> Result<(u16, String), String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(server)
        .map_err(|e| format!("cannot reach kagi at {server}: {e}"))?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {server}\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no answer from kagi")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status in kagi's answer")?;
    Ok((status, body.to_string()))
}

/// The configuration and the database of a stopped server, for the
/// commands that work on it directly (`audit`, `import`). `create`: an
/// import may start a new database; an audit needs an existing one.
fn open_stopped(
    data_dir: Option<std::path::PathBuf>,
    config: Option<std::path::PathBuf>,
    create: bool,
) -> Result<(Config, Store), Error> {
    let c = match &config {
        Some(path) => Config::from_file(path).map_err(Error::Config)?,
        None => Config::default(),
    };
    let dir = data_dir
        .or(c.data_dir.clone())
        .ok_or_else(|| Error::Config("data_dir: the config file sets no data_dir".into()))?;
    if !create && !dir.join("conf").exists() {
        return Err(Error::Startup(format!(
            "no kagi database in {}",
            dir.display()
        )));
    }
    let key_file = c
        .store
        .key_file
        .clone()
        .unwrap_or_else(|| store::default_key_file(&dir));
    if !create && !key_file.exists() {
        return Err(Error::Startup(format!(
            "no key file at {}: the audit trail verifies only with the key file it was written under (a database from before key files gets one at kagi's next start)",
            key_file.display()
        )));
    }
    files::keep_new_files_private();
    if create {
        files::private_dir(&dir).map_err(Error::Startup)?;
    }
    let store = Store::open(&dir, c.store.cache_bytes, &key_file).map_err(|e| {
        Error::Startup(format!(
            "cannot open the database in {} (stop kagi first): {e}",
            dir.display()
        ))
    })?;
    Ok((c, store))
}

/// `kagi audit verify` and `kagi audit export --csv`.
fn audit_command(
    action: cli::AuditAction,
    data_dir: Option<std::path::PathBuf>,
    config: Option<std::path::PathBuf>,
) -> Result<(), Error> {
    let (c, store) = open_stopped(data_dir, config, false)?;
    let offset = c
        .utc_offset_secs()
        .map_err(|e| Error::Config(e.to_string()))?;
    match action {
        cli::AuditAction::Verify => match store.verify_audit() {
            Ok(Ok(n)) => {
                println!("kagi: audit trail intact: {n} entries, each chained to the one before");
                Ok(())
            }
            Ok(Err(problem)) => Err(Error::Check(format!("audit trail BROKEN: {problem}"))),
            Err(e) => Err(Error::Startup(e.to_string())),
        },
        cli::AuditAction::ExportCsv => {
            let events = store
                .audit_events()
                .map_err(|e| Error::Startup(e.to_string()))?;
            let mut out = String::from("time,site,event,account,client,outcome,prev_mac\n");
            for e in events {
                let fields = [
                    clock::date_time(e.time, offset),
                    e.site.name().to_string(),
                    e.event,
                    e.account.unwrap_or_default(),
                    e.client,
                    e.outcome,
                    e.prev,
                ];
                let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
                out.push_str(&row.join(","));
                out.push('\n');
            }
            print!("{out}");
            Ok(())
        }
    }
}

/// A CSV field (RFC 4180): quoted when it holds a comma, quote or line
/// break, and with a leading `'` when a spreadsheet would read it as a formula.
fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// Runs the command line `args` (without the program name).
pub fn run(args: &[String]) -> Result<(), Error> {
    match cli::parse(args).map_err(Error::Usage)? {
        cli::Command::Help => {
            print!("{}", cli::HELP);
            Ok(())
        }
        cli::Command::Version => {
            println!("kagi {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        cli::Command::Demo {
            listen,
            data_dir,
            config,
        } => {
            let mut c = match config {
                Some(path) => Config::from_file(&path).map_err(Error::Config)?,
                None => Config::default(),
            };
            if let Some(l) = listen {
                c.listen = l;
            }
            if data_dir.is_some() {
                c.data_dir = data_dir;
            }
            let running = start(Options {
                config: c,
                mode: Mode::Demo,
                clock: Clock::system(),
            })?;
            print_demo_welcome(&running);
            running.wait();
            Ok(())
        }
        cli::Command::Audit {
            action,
            data_dir,
            config,
        } => audit_command(action, data_dir, config),
        cli::Command::Mail {
            retry,
            config,
            data_dir,
            server,
        } => mail_command(retry, config, data_dir, server),
        cli::Command::Import {
            file,
            data_dir,
            config,
        } => {
            let (c, store) = open_stopped(data_dir, config, true)?;
            let began = Instant::now();
            let imported = if file.as_os_str() == "-" {
                // Standard input cannot be read twice: it is kept in memory.
                let mut text = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut text)
                    .map_err(|e| Error::Startup(format!("cannot read standard input: {e}")))?;
                import::check(&text[..]).and_then(|_| import::write(&store, &text[..]))
            } else {
                let open = || {
                    std::fs::File::open(&file)
                        .map(std::io::BufReader::new)
                        .map_err(|e| Error::Startup(format!("cannot read {}: {e}", file.display())))
                };
                import::check(open()?).map_err(Error::Check)?;
                import::write(&store, open()?)
            }
            .map_err(Error::Check)?;
            println!(
                "kagi: imported {} accounts in {:.1} s",
                imported.accounts,
                began.elapsed().as_secs_f64()
            );
            let a = &c.argon2;
            let configured = format!("m={},t={},p={}", a.memory_kib, a.iterations, a.parallelism);
            let others: Vec<String> = imported
                .costs
                .iter()
                .filter(|(cost, _)| **cost != configured)
                .map(|(cost, n)| format!("{n} at {cost}"))
                .collect();
            if others.is_empty() {
                println!("kagi: every password hash has the configured cost ({configured})");
            } else {
                let n: u64 = imported
                    .costs
                    .iter()
                    .filter(|(cost, _)| **cost != configured)
                    .map(|(_, n)| n)
                    .sum();
                println!(
                    "kagi: password hashes of another cost than the configured {configured}: {n} ({}). \
                     Each is made anew at its account's next login; until the last is, every login \
                     computes one hash at each cost, so that its time tells nothing",
                    others.join(", ")
                );
            }
            Ok(())
        }
        cli::Command::Serve { config } => {
            let c = Config::from_file(&config).map_err(Error::Config)?;
            let running = start(Options {
                config: c,
                mode: Mode::Serve,
                clock: Clock::system(),
            })?;
            println!(
                "kagi: serving {} on http://{} (database {}), ready in {} ms",
                running.public_url,
                running.addr,
                running.data_dir.display(),
                running.started.as_millis()
            );
            running.wait();
            Ok(())
        }
    }
}

fn print_demo_welcome(running: &Running) {
    let base = &running.public_url;
    println!("kagi demo — ログイン情報再設定のデモ (Ctrl-C で終了)");
    println!();
    println!("  介護電子請求受付システム  {base}/kaigo");
    println!("  送信メール (capture)      {base}/dev/mail   JSON: {base}/dev/mail.json");
    println!(
        "  データベース              {}{}",
        running.data_dir.display(),
        if running.data_dir_is_temporary {
            " (一時ディレクトリ)"
        } else {
            ""
        }
    );
    println!();
    println!("  デモアカウント (kaigo):");
    // Japanese headings are two columns wide per character: laid out by hand.
    println!(
        "    ユーザID         パスワード    セキュリティ用メールアドレス     セキュリティコード"
    );
    for a in demo::kaigo_accounts() {
        println!(
            "    {:<16} {:<13} {:<32} {}",
            a.user_id(),
            a.password,
            a.security_email.as_deref().unwrap_or("-"),
            a.security_code.as_deref().unwrap_or("-")
        );
    }
    println!();
    println!(
        "  医療機関等向け総合ポータルサイト  {base}/portal   CAPTCHA の答え: {base}/dev/captcha"
    );
    println!("  デモアカウント (portal):");
    println!("    ユーザー名       パスワード        メールアドレス");
    for a in demo::portal_accounts() {
        let note = if a.coordinator {
            " (取りまとめ者)"
        } else if crate::store::is_provisional_address(&a.email) {
            " (仮アカウント)"
        } else {
            ""
        };
        println!("    {:<16} {:<17} {}{note}", a.user, a.password, a.email);
    }
    println!();
    println!(
        "kagi: ready in {} ms on http://{}",
        running.started.as_millis(),
        running.addr
    );
}
