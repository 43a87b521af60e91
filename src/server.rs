//! Starting the server: checks the config, opens the database, and starts
//! the threads (the request thread, the mail thread, the sweeper); and
//! stopping them, at once or, on SIGTERM or SIGINT, once the requests
//! under way are answered.

use crate::clock::Clock;
use crate::config::{self, Config, Transport};
use crate::pool::Pool;
use crate::router::Task;
use crate::store::{self, Store, Sweeper};
use crate::{app, captcha, demo, files, http, limit, mail, os, pages, secret, Error};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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
    /// Dropped last: its private socket directory goes with it.
    listener: Option<Arc<http::Listener>>,
    /// How long a clean stop waits for the requests under way.
    shutdown_grace: Duration,
    request_thread: Option<JoinHandle<()>>,
    /// The hashing workers; dropped (and joined) after the request thread.
    hashing: Option<Arc<Pool<Task>>>,
    helpers: Vec<JoinHandle<()>>,
    sweeper: Option<Sweeper>,
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

    /// The address pages and mails give, without a trailing slash.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Whether the data directory was made up for this run.
    pub fn data_dir_is_temporary(&self) -> bool {
        self.data_dir_is_temporary
    }

    /// How long starting took.
    pub fn started(&self) -> Duration {
        self.started
    }

    /// The demo operator's TOTP secret in base32, for the welcome.
    pub fn demo_operator_secret(&self) -> Option<String> {
        let store = &self.last_words.as_ref()?.store;
        demo::operator_secret(store)
            .ok()
            .flatten()
            .map(|s| s.base32())
    }

    /// Serves until SIGTERM or SIGINT, then stops cleanly
    /// (`stop_gracefully`). The signals must have been held
    /// (`os::hold_stop_signals`) before `start`, so that none of the
    /// server's threads dies of one.
    pub fn serve_until_signalled(self) {
        let signal = os::wait_for_stop();
        // A second signal while stopping ends kagi at once, without waiting
        // for anything: it removes what it made in the temporary directory
        // and exits as if killed by that signal.
        let made = self.temporary_dirs();
        let _ = std::thread::Builder::new()
            .name("kagi-signal".into())
            .spawn(move || {
                let again = os::wait_for_stop();
                say!("kagi: {} while stopping: exiting at once", again.name());
                for dir in &made {
                    let _ = std::fs::remove_dir_all(dir);
                }
                std::process::exit(again.exit_code());
            });
        self.stop_gracefully(signal.name());
    }

    /// The directories this run made and a stop removes: the private
    /// socket's, and a demo's temporary database.
    fn temporary_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self
            .listener
            .iter()
            .map(|l| l.socket_dir().to_path_buf())
            .collect();
        if self.data_dir_is_temporary {
            dirs.push(self.data_dir.clone());
        }
        dirs
    }

    /// Stops cleanly: no new connections; the requests under way are
    /// answered, for up to `http.shutdown_secs`, and the connections still
    /// busy then are closed; the mail thread finishes the message it is
    /// sending and starts no other; the database is flushed and closed;
    /// the private socket directory, and a demo's temporary database, are
    /// removed. `why` names the cause in the log.
    pub fn stop_gracefully(mut self, why: &str) {
        if let Some(listener) = &self.listener {
            let busy = listener.drain();
            let grace = self.shutdown_grace.as_secs();
            say!(
                "kagi: stopping ({why}): no new connections; waiting up to {grace} s for {busy} {} under way",
                if busy == 1 { "request" } else { "requests" }
            );
            let left = listener.wait_drained(Instant::now() + self.shutdown_grace);
            if left > 0 {
                say!("kagi: {left} connections still busy after {grace} s: closed");
            }
        }
        self.shutdown();
        say!("kagi: stopped");
    }

    /// Stops every thread and closes the database.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(listener) = self.listener.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        listener.unblock();
        if let Some(t) = self.request_thread.take() {
            let _ = t.join();
        }
        // Queued hashing tasks run to their end; their answers go nowhere
        // once the connections are closed.
        drop(self.hashing.take());
        // The mail thread ends after the message it is sending: the outbox
        // wakes it as it goes, with the last handler.
        for t in self.helpers.drain(..) {
            let _ = t.join();
        }
        drop(self.sweeper.take());
        if let Some(last) = self.last_words.take() {
            write_refusals(&last.store, &last.limiter, last.clock.now(), true);
            let _ = last.store.flush();
        }
        // The last handle on tiny_http's server: the socket directory goes.
        drop(listener);
        if self.data_dir_is_temporary {
            if let Err(e) = store::remove_database(&self.data_dir, Duration::from_secs(5)) {
                say!("kagi: cannot remove {}: {e}", self.data_dir.display());
            }
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
    os::return_large_blocks_to_the_system();
    os::treat_a_file_size_limit_as_a_disk_error();
    os::use_every_descriptor_allowed();
    let Options {
        mut config,
        mode,
        clock,
    } = options;
    crate::log::use_json(config.log.format == config::LogFormat::Json);
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
    let key_file = store::key_file(&config.store, &data_dir);
    // A full disk does not stop kagi: it serves the 503 page until the
    // database opens.
    let (store, shown) = match (config.store.engine, &config.store.postgres.url) {
        (crate::config::StoreEngine::Postgres, Some(url)) => (
            Store::open_postgres_or_wait(&config.store.postgres, &data_dir, &key_file),
            store::shown_postgres(url),
        ),
        _ => (
            Store::open_or_wait(&data_dir, config.store.cache_bytes, &key_file),
            format!("in {}", data_dir.display()),
        ),
    };
    let store =
        store.map_err(|e| Error::Startup(format!("cannot open the database {shown}: {e}")))?;
    if let Some(why) = store.unavailable() {
        say!("kagi: the database {shown} cannot be opened yet ({why}); every page answers 503 until it can, tried again every second");
    }
    let store = Arc::new(store);
    // One set of counters for every thread that counts; the `step` label
    // takes the route tables' paths.
    let metrics = Arc::new(crate::metrics::Metrics::new(
        crate::router::steps(),
        crate::router::step,
    ));
    store.time_flushes_in(metrics.clone());
    os::give_back_free_memory();
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
        metrics: metrics.clone(),
    };
    let listener = Arc::new(http::Listener::bind(listen, limits).map_err(Error::Startup)?);
    let shutdown_grace = Duration::from_secs(config.http.shutdown_secs);
    let addr = listener.local_addr();

    // What needs the database is done now, or once it opens.
    let mut pending = Pending {
        indexes: true,
        ..Pending::default()
    };
    if mode == Mode::Demo {
        config.mail.transport = Some(Transport::Capture);
        // Each site its own sender, in the manuals' style, unless set.
        config
            .mail
            .from
            .get_or_insert_with(|| "介護電子請求受付システム <no-reply@kaigo.kagi.invalid>".into());
        config.portal.mail_from.get_or_insert_with(|| {
            "医療機関等向け総合ポータルサイト <no-reply@portal.kagi.invalid>".into()
        });
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
    // Every writer of a hash at another cost (an import, a start with
    // another setting) adds that cost to the database's list first, so the
    // stored hashes never have a cost the list lacks. A list of the one
    // configured cost is therefore exact, and the scan, which reads every
    // account (seconds of a core on a million), could only confirm it.
    let exact = store.unavailable().is_none()
        && match census_from_meta(&store, &hasher) {
            Ok(costs) => costs == 1,
            Err(e) => {
                say!("kagi: the census of password hash costs waits for its scan: {e}");
                false
            }
        };
    if !exact {
        pending.census = Some(hasher.clone());
    }
    pending.run(&store, false).map_err(Error::Startup)?;

    let stop = Arc::new(AtomicBool::new(false));
    let (outbox, mail_thread) =
        mail::start(&config.mail, store.clone(), clock.clone(), stop.clone());
    let limiter = Arc::new(limit::RateLimiter::new(config.rate_limit.clone()));
    let challenges = captcha::Challenges::default();
    if config.store.engine == crate::config::StoreEngine::Postgres {
        // Several instances may share the database: their limits and
        // CAPTCHA challenges live in it too.
        limiter.share_through(store.clone());
        challenges.share_through(store.clone());
    }
    let sweeper = {
        let (limiter, clock, metrics) = (limiter.clone(), clock.clone(), metrics.clone());
        let mut trouble = None;
        Sweeper::start(
            &store,
            config.store.clone(),
            clock.clone(),
            metrics,
            move |store| {
                keep_the_database_writable(store, &mut trouble);
                write_refusals(store, &limiter, clock.now(), false);
                if !pending.is_done() {
                    if let Err(e) = pending.run(store, true) {
                        say!("kagi: {e}");
                    }
                }
            },
        )
    };

    let public_url = config.public_base();
    // `serve` with the capture transport is a lab: mail is kept, not sent,
    // and /dev/ shows it, as in the demo; every page says so.
    let lab_capture = mode == Mode::Serve && config.mail.transport == Some(Transport::Capture);
    let banner = match mode {
        Mode::Demo => Some(pages::Banner::Demo),
        Mode::Serve if lab_capture => Some(pages::Banner::Lab),
        Mode::Serve => None,
    };
    let serve_options = http::ServeOptions {
        banner,
        ..serve_options
    };
    let app = app::App {
        admin_token,
        hasher,
        outbox,
        limiter: limiter.clone(),
        challenges,
        utc_offset,
        dev_pages: mode == Mode::Demo || lab_capture,
        demo: mode == Mode::Demo,
        dev_captchas: (mode == Mode::Demo || lab_capture)
            .then(|| std::sync::Mutex::new(std::collections::VecDeque::new())),
        registering: std::sync::Mutex::new(()),
        banner,
        store: store.clone(),
        metrics: metrics.clone(),
        config,
    };
    let last_words = LastWords {
        store: store.clone(),
        limiter,
        clock: clock.clone(),
    };
    let app = Arc::new(app);
    let hashing = {
        let (app, clock) = (app.clone(), clock.clone());
        let workers = app.config.argon2.worker_count();
        let queue = app.config.argon2.queue;
        Arc::new(
            Pool::start(
                "kagi-hash",
                (workers, queue),
                metrics,
                hashing_thread,
                move |task: Task| {
                    let response = app.handle(&task.req, clock.now());
                    task.reply.send(response);
                },
            )
            .map_err(|e| Error::Startup(format!("cannot start the hashing threads: {e}")))?,
        )
    };
    let (l, s, pool) = (listener.clone(), stop.clone(), hashing.clone());
    let serve_options = Arc::new(serve_options);
    let request_thread = std::thread::Builder::new()
        .name("kagi-http".into())
        .spawn(move || {
            http::serve(
                &l,
                &serve_options,
                || !s.load(Ordering::SeqCst),
                |req, reply| app.dispatch(&pool, req, reply, clock.now()),
            )
        })
        .map_err(|e| Error::Startup(format!("cannot start the request thread: {e}")))?;

    Ok(Running {
        addr,
        data_dir_is_temporary,
        data_dir,
        public_url,
        stop,
        listener: Some(listener),
        shutdown_grace,
        request_thread: Some(request_thread),
        hashing: Some(hashing),
        helpers: vec![mail_thread],
        sweeper: Some(sweeper),
        last_words: Some(last_words),
        started: began.elapsed(),
    })
}

/// How a hashing worker starts: it keeps its argon2id memory between
/// hashes, and yields the cores to the request thread and the front door,
/// so that pages are answered first and a flood of logins waits for what
/// is left (the hashes of every login are the ones that wait).
fn hashing_thread() {
    secret::keep_hash_memory_on_this_thread();
    os::yield_to_requests();
}

/// The costs the stored password hashes have, as the database keeps them,
/// with the configured one added for the next start (which may be
/// configured otherwise, while hashes of this cost remain).
/// Returns how many costs there are.
fn census_from_meta(store: &Store, hasher: &secret::Hasher) -> Result<usize, store::StoreError> {
    let mut costs = store.hash_costs()?;
    costs.insert(hasher.cost().to_string());
    store.put_hash_costs(&costs)?;
    let count = costs.len();
    hasher.set_census(costs);
    Ok(count)
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
    /// The console's search indexes of a database written before them.
    indexes: bool,
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
        // Before the demo accounts: a new database's indexes are then
        // made empty, and each account is indexed as it is written.
        if self.indexes && store.unavailable().is_none() {
            let built = store
                .index_emails_once()
                .and_then(|emails| store.index_audit_once().map(|entries| (emails, entries)));
            match built {
                Ok((0, 0)) => self.indexes = false,
                Ok((emails, entries)) => {
                    say!("kagi: indexed {emails} accounts' addresses and {entries} audit entries for the console's search");
                    self.indexes = false;
                }
                Err(e) if e.is_disk_trouble() => {}
                Err(e) => return Err(format!("the console's indexes: {e}")),
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
        self.admin_token.is_none()
            && self.demo_accounts.is_none()
            && self.census.is_none()
            && !self.indexes
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
            ..Default::default()
        };
        if let Err(e) = store.audit(&event) {
            say!("kagi: {} refused requests not audited: {e}", r.count);
        }
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
