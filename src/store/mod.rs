//! Storage: the sled trees behind a narrow interface. Only this module knows
//! sled. Records with a lifetime are written together with an entry in the
//! expiry index, keyed (expiry time, tree, key), so that a sweep reads only
//! what has expired; reads treat an expired record as absent whether or not
//! the sweep has run.

mod accounts;
mod audit;
pub mod backup;
mod error;
mod flows;
mod kv;
mod mail;
pub mod migrate;
mod operators;
mod postal;
mod postgres;
mod records;
mod sweep;

pub use accounts::{Found, SEARCH_PAGE};
pub use audit::{audit_csv, AuditFilter, AuditPage, AUDIT_SCAN};
pub use error::{ErrorKind, StoreError};
pub use records::*;
pub use sweep::Sweeper;

use crate::secret::Keys;
use crate::site::{Area, Site};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

pub type Result<T> = std::result::Result<T, StoreError>;

pub use crate::clock::DAY;

/// The trees that hold expiring records; the byte is their tag in the
/// expiry index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expiring {
    Flows = 1,
    Sessions = 2,
    Links = 3,
    Captchas = 4,
    Guards = 5,
    OperatorSessions = 6,
    Registrations = 7,
}

impl Expiring {
    fn from_tag(tag: u8) -> Option<Expiring> {
        Some(match tag {
            1 => Expiring::Flows,
            2 => Expiring::Sessions,
            3 => Expiring::Links,
            4 => Expiring::Captchas,
            5 => Expiring::Guards,
            6 => Expiring::OperatorSessions,
            7 => Expiring::Registrations,
            _ => return None,
        })
    }
}

/// A record with its expiry time (Unix seconds).
#[derive(Serialize, Deserialize)]
struct Timed<T> {
    expires: u64,
    value: T,
}

/// The open database and its trees, on either engine.
struct Trees {
    db: Engine,
    /// `site:id` → `Account`.
    accounts: Tree,
    /// kaigo office number + billing prefecture → user ID.
    offices: Tree,
    /// Normalized e-mail, NUL, `site:id` → (): the console's search. An
    /// entry may be stale (the account's address changed since); a search
    /// checks the account it names.
    emails: Tree,
    /// Operators, by name.
    operators: Tree,
    /// Operators' console logins, by digest of their cookie.
    operator_sessions: Tree,
    /// Portal registrations waiting for their address, by token digest.
    registrations: Tree,
    /// portal 医療機関等コード, NUL, user name → (): the accounts of an
    /// institution (a registration retires its provisional ones).
    institutions: Tree,
    /// `site:id`, NUL, entry id (big-endian) → (): an account's entries in
    /// the audit trail, newest last.
    audit_accounts: Tree,
    flows: Tree,
    sessions: Tree,
    /// Mailed reset links, by digest of their token.
    links: Tree,
    /// CAPTCHA challenges on PostgreSQL, shared by the instances (on sled
    /// they are in memory, `captcha::Challenges`), by digest of their id.
    captchas: Tree,
    /// Claim and login guards: `claim:<digest>`, `login:<site>:<user>`.
    guards: Tree,
    /// Mail not yet accepted by a server, by id.
    outbox: Tree,
    /// Mail kept by the capture transport, by id.
    mailbox: Tree,
    postal: Tree,
    audit: Tree,
    /// (expires: u64 BE, tree tag: u8, key) → ().
    expiry: Tree,
    /// Server-wide values: the format, the audit chain's anchor and head.
    meta: Tree,
    /// Added to sled's ids (`meta.id_base`): a database restored from a
    /// backup goes on from the ids the backup's server had reached.
    id_base: u64,
}

/// The engine under the trees.
enum Engine {
    Sled(sled::Db),
    Postgres(Arc<postgres::Pool>),
}

impl Engine {
    /// Writes everything to disk (sled); PostgreSQL's commits already are.
    fn flush(&self) -> Result<()> {
        match self {
            Engine::Sled(db) => db.flush().map(drop).map_err(StoreError::from),
            Engine::Postgres(_) => Ok(()),
        }
    }

    /// A fresh id, increasing across restarts (and across instances).
    fn generate_id(&self) -> Result<u64> {
        match self {
            Engine::Sled(db) => Ok(db.generate_id()?),
            Engine::Postgres(pool) => pool.generate_id(),
        }
    }
}

/// The format of the database this kagi reads and writes, marked in
/// `meta.format`. A database of another format is refused at start, never
/// rewritten silently; a change of format comes with its own step and
/// raises this number.
pub const FORMAT: u32 = 1;

/// What is wrong with a database whose `meta.format` says `found`, or
/// None when this kagi can open it.
fn format_problem(found: &[u8]) -> Option<String> {
    let number = std::str::from_utf8(found)
        .ok()
        .and_then(|t| t.parse::<u32>().ok());
    match number {
        Some(FORMAT) => None,
        Some(n) if n > FORMAT => Some(format!(
            "it is in format {n}, written by a newer kagi; this kagi ({}) reads format {FORMAT}. \
             Run the newer kagi again, or restore a backup made by this version into a new directory",
            env!("CARGO_PKG_VERSION")
        )),
        _ => Some(format!(
            "its format mark ({:?}) is not one any kagi writes",
            String::from_utf8_lossy(found)
        )),
    }
}

/// The database. sled refuses every write after its first I/O error (a
/// full or read-only disk) until it is opened again, so the trees sit behind
/// a lock that `reopen` can swap; while closed, every call fails with a
/// storage error, which the sites answer with 503. The keys live in a key
/// file beside the database, never inside it.
pub struct Store {
    /// The data directory: sled's database, and beside it the key file
    /// and backups, whichever the engine.
    dir: PathBuf,
    /// Where PostgreSQL is (and how to trust it), when the records live
    /// there.
    postgres: Option<crate::config::PostgresConfig>,
    key_file: PathBuf,
    cache_bytes: u64,
    open: RwLock<Option<Arc<Trees>>>,
    /// Read (or made) at the first successful open; they never change.
    keys: OnceLock<Arc<Keys>>,
    /// Why the database is closed, while it is: in full, and in short.
    closed: Mutex<Option<(String, &'static str)>>,
    /// Why a flush failed since the database was opened, if one did.
    failed: Mutex<Option<(String, Option<i32>)>>,
    /// One audit writer at a time, so that the chain never forks.
    audit_lock: Mutex<()>,
    /// Mails that did not open, already said in the log.
    unreadable: Mutex<std::collections::HashSet<u64>>,
    /// Store calls in progress, and whether a backup holds new ones back.
    gate: Gate,
    /// Where `flush` notes its time, once the server gives it one.
    metrics: OnceLock<Arc<crate::metrics::Metrics>>,
}

/// The trees, held by one store call while it runs. A backup waits until
/// no call holds them and keeps new calls waiting while it copies, so that
/// it sees the database between calls, never in the middle of one.
struct Held<'a> {
    trees: Arc<Trees>,
    gate: &'a Gate,
    /// Counted per thread: it must be let go on the thread that took it.
    _not_send: std::marker::PhantomData<*const ()>,
}

impl std::ops::Deref for Held<'_> {
    type Target = Trees;
    fn deref(&self) -> &Trees {
        &self.trees
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.gate.leave();
    }
}

/// How many store calls are in progress, and whether a backup is copying.
#[derive(Default)]
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Default)]
struct GateState {
    calls: usize,
    paused: bool,
}

thread_local! {
    /// The store calls this thread is inside, per gate (by address): a
    /// call made within another passes the gate, or a method that calls
    /// another would wait for itself behind a backup.
    static DEPTH: std::cell::RefCell<Vec<(usize, usize)>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Gate {
    fn id(&self) -> usize {
        self as *const Gate as usize
    }

    /// This thread's depth of calls through this gate.
    fn depth(&self) -> usize {
        DEPTH.with(|d| {
            d.borrow()
                .iter()
                .find(|(g, _)| *g == self.id())
                .map_or(0, |(_, n)| *n)
        })
    }

    fn set_depth(&self, n: usize) {
        DEPTH.with(|d| {
            let mut d = d.borrow_mut();
            d.retain(|(g, _)| *g != self.id());
            if n > 0 {
                d.push((self.id(), n));
            }
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A call begins: outermost, it waits while a backup copies.
    fn enter(&self) {
        let depth = self.depth();
        if depth == 0 {
            let mut state = self.lock();
            while state.paused {
                state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            state.calls += 1;
        }
        self.set_depth(depth + 1);
    }

    fn leave(&self) {
        let depth = self.depth().saturating_sub(1);
        self.set_depth(depth);
        if depth == 0 {
            let mut state = self.lock();
            state.calls = state.calls.saturating_sub(1);
            if state.calls == 0 {
                self.changed.notify_all();
            }
        }
    }

    /// Holds new calls back and waits until none is in progress; false
    /// (and nothing held back) if one is still running after `patience`.
    fn pause(&self, patience: Duration) -> bool {
        if self.depth() > 0 {
            return false;
        }
        let until = Instant::now() + patience;
        let mut state = self.lock();
        while state.paused {
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.paused = true;
        while state.calls > 0 {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                state.paused = false;
                self.changed.notify_all();
                return false;
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    fn resume(&self) {
        self.lock().paused = false;
        self.changed.notify_all();
    }
}

pub use postgres::test_database;

/// A PostgreSQL URL as logs show it, without its password.
pub fn shown_postgres(url: &str) -> String {
    postgres::shown(url)
}

/// Where the key file is unless the configuration puts it elsewhere.
pub fn default_key_file(data_dir: &Path) -> PathBuf {
    data_dir.join("kagi.key")
}

/// Where the key file of the database in `data_dir` is: `store.key_file`,
/// or else beside the database.
pub fn key_file(config: &crate::config::StoreConfig, data_dir: &Path) -> PathBuf {
    config
        .key_file
        .clone()
        .unwrap_or_else(|| default_key_file(data_dir))
}

/// Removes the database directory `dir` that a run made for itself (the
/// demo's without `--data-dir`), once the store is closed. sled lets go of
/// its lock on `db` when its flusher thread has ended, a moment after the
/// last handle is dropped, and may write a file until then: the directory
/// is removed once the lock is free, or after `patience` regardless.
pub fn remove_database(dir: &Path, patience: Duration) -> std::io::Result<()> {
    let until = Instant::now() + patience;
    while Instant::now() < until && is_open_somewhere(dir) {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::remove_dir_all(dir)
}

/// Whether some sled holds the database in `dir` open (its lock on `db`).
fn is_open_somewhere(dir: &Path) -> bool {
    let Ok(db) = std::fs::File::open(dir.join("db")) else {
        return false;
    };
    // SAFETY: flock on a descriptor this function owns; the lock, if taken,
    // goes with the file at the end of the function.
    let locked = unsafe {
        libc::flock(
            std::os::fd::AsRawFd::as_raw_fd(&db),
            libc::LOCK_EX | libc::LOCK_NB,
        )
    };
    locked != 0
}

/// Deletes snapshots sled began and never finished. sled 0.34.7 writes a
/// snapshot to `snap.<lsn>.generating` and renames it when complete, but
/// its list of snapshots leaves out only `.in___motion` files: a snapshot
/// cut short by a full disk is then read as the newest one, fails its
/// checksum, and the database reports "corrupted data" at every open from
/// then on. An unfinished snapshot is never needed: without it sled starts
/// from the one before and replays its log.
fn remove_unfinished_snapshots(dir: &Path) -> Result<()> {
    // Only while no sled has the database open (it locks its `db` file):
    // a running server's snapshot in progress is not unfinished.
    let Ok(db) = std::fs::File::open(dir.join("db")) else {
        return Ok(());
    };
    // SAFETY: flock on a descriptor this function owns; the lock goes
    // with the file at the end of the function.
    let locked = unsafe {
        libc::flock(
            std::os::fd::AsRawFd::as_raw_fd(&db),
            libc::LOCK_EX | libc::LOCK_NB,
        )
    };
    if locked != 0 {
        return Ok(());
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            std::fs::remove_file(entry.path()).map_err(|e| {
                StoreError::from_io(&format!("cannot remove {}", entry.path().display()), &e)
            })?;
        }
    }
    Ok(())
}

impl Trees {
    /// Runs `f` as the one instance doing `lock`'s work: on PostgreSQL
    /// under its advisory lock (waiting for it, or with `wait` false giving
    /// up at once: None); on sled, where one process owns the database,
    /// at once.
    fn exclusively<R>(
        &self,
        lock: postgres::Lock,
        wait: bool,
        f: impl FnOnce() -> Result<R>,
    ) -> Result<Option<R>> {
        match &self.db {
            Engine::Sled(_) => f().map(Some),
            Engine::Postgres(pool) => pool.exclusively(lock, wait, f),
        }
    }

    fn open(dir: &Path, cache_bytes: u64) -> Result<Trees> {
        remove_unfinished_snapshots(dir)?;
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .open()?;
        let trees = Trees::build(
            |name| Ok(Tree::Sled(db.open_tree(name)?)),
            Engine::Sled(db.clone()),
        )?;
        trees.read_format(&format!("in {}", dir.display()))
    }

    /// The trees in the PostgreSQL database `db` names, its schema brought
    /// up to date (or refused, if newer than this kagi's).
    fn open_postgres(db: &crate::config::PostgresConfig, shown: &str) -> Result<Trees> {
        let pool = postgres::Pool::open(db)?;
        let trees = Trees::build(
            |name| {
                let number = Trees::NAMES.iter().position(|n| *n == name).unwrap_or(0);
                Ok(Tree::Pg(pool.tree(number as i16)))
            },
            Engine::Postgres(pool.clone()),
        )?;
        trees.read_format(shown)
    }

    /// Every tree from `tree(name)`. In PostgreSQL a tree is its place in
    /// `NAMES`: a new tree goes at the end, and none ever moves.
    fn build(tree: impl Fn(&'static str) -> Result<Tree>, db: Engine) -> Result<Trees> {
        Ok(Trees {
            accounts: tree("accounts")?,
            offices: tree("offices")?,
            emails: tree("emails")?,
            operators: tree("operators")?,
            operator_sessions: tree("operator_sessions")?,
            registrations: tree("registrations")?,
            institutions: tree("institutions")?,
            audit_accounts: tree("audit_accounts")?,
            flows: tree("flows")?,
            sessions: tree("sessions")?,
            links: tree("links")?,
            captchas: tree("captchas")?,
            guards: tree("guards")?,
            outbox: tree("outbox")?,
            mailbox: tree("mailbox")?,
            postal: tree("postal")?,
            audit: tree("audit")?,
            expiry: tree("expiry")?,
            meta: tree("meta")?,
            id_base: 0,
            db,
        })
    }

    /// Checks the format mark (a database without one, new or from before
    /// marks, is this format and gets the mark) and reads the id base.
    fn read_format(mut self, shown: &str) -> Result<Trees> {
        match self.meta.get("format")? {
            None => {
                self.meta.insert("format", FORMAT.to_string().as_bytes())?;
            }
            Some(found) => {
                if let Some(problem) = format_problem(&found) {
                    return Err(StoreError::refused(format!(
                        "kagi cannot open the database {shown}: {problem}"
                    )));
                }
            }
        }
        if self.meta.get(migrate::UNFINISHED)?.is_some() {
            return Err(StoreError::refused(format!(
                "kagi cannot open the database {shown}: a `kagi migrate` into it was cut short,                  and it holds part of the records. Drop it, create it again, and migrate again"
            )));
        }
        self.id_base = match self.meta.get("id_base")? {
            Some(b) => u64::from_be_bytes(
                b.as_ref()
                    .try_into()
                    .map_err(|_| StoreError::corrupt("meta.id_base is not 8 bytes"))?,
            ),
            None => 0,
        };
        Ok(self)
    }

    /// Every tree's name, as a backup lists them.
    const NAMES: [&'static str; 19] = [
        "accounts",
        "offices",
        "emails",
        "operators",
        "operator_sessions",
        "registrations",
        "institutions",
        "audit_accounts",
        "flows",
        "sessions",
        "links",
        "captchas",
        "guards",
        "outbox",
        "mailbox",
        "postal",
        "audit",
        "expiry",
        "meta",
    ];

    /// The tree of that name (`NAMES`).
    fn tree_named(&self, name: &str) -> Option<&Tree> {
        Some(match name {
            "accounts" => &self.accounts,
            "offices" => &self.offices,
            "emails" => &self.emails,
            "operators" => &self.operators,
            "operator_sessions" => &self.operator_sessions,
            "registrations" => &self.registrations,
            "institutions" => &self.institutions,
            "audit_accounts" => &self.audit_accounts,
            "flows" => &self.flows,
            "sessions" => &self.sessions,
            "links" => &self.links,
            "captchas" => &self.captchas,
            "guards" => &self.guards,
            "outbox" => &self.outbox,
            "mailbox" => &self.mailbox,
            "postal" => &self.postal,
            "audit" => &self.audit,
            "expiry" => &self.expiry,
            "meta" => &self.meta,
            _ => return None,
        })
    }

    /// Deletes the expiry index entry of a record's previous version,
    /// once it has been replaced by one expiring at `expires`: without
    /// this, a guard rewritten at every failed login would leave a stale
    /// entry per write for a day.
    fn forget_index_entry(
        &self,
        which: Expiring,
        key: &str,
        previous: Option<&[u8]>,
        expires: u64,
    ) -> Result<()> {
        let Some(previous) = previous else {
            return Ok(());
        };
        let Ok(previous) = decode::<Timed<serde::de::IgnoredAny>>(previous) else {
            return Ok(());
        };
        if previous.expires != expires {
            self.expiry
                .remove(Store::index_key(which, key, previous.expires))?;
        }
        Ok(())
    }

    fn tree(&self, which: Expiring) -> &Tree {
        match which {
            Expiring::Flows => &self.flows,
            Expiring::Sessions => &self.sessions,
            Expiring::Links => &self.links,
            Expiring::Captchas => &self.captchas,
            Expiring::Guards => &self.guards,
            Expiring::OperatorSessions => &self.operator_sessions,
            Expiring::Registrations => &self.registrations,
        }
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Store(…)")
    }
}

/// The keys of the key file beside the database, made (with the file) for
/// a new database. A database that has data but no key file is refused:
/// new keys would void its codes, links and sealed mail and leave its audit
/// trail unverifiable, so the file must be put back (or `store.key_file`
/// pointed at it). A database from before the key file kept its digest key
/// inside (`meta.digest_key`): that key moves into a new key file marked
/// `move = pending`, the audit trail is checked and chained anew, old mail
/// text is sealed, the key leaves the database, and the mark goes. Only
/// the mark in the key file, which the database cannot write, starts or
/// resumes that move.
fn open_keys(trees: &Trees, dir: &Path, key_file: &Path) -> Result<Keys> {
    let shown = key_file.display();
    let legacy: Option<[u8; 32]> = trees
        .meta
        .get("digest_key")?
        .and_then(|k| k.as_ref().try_into().ok());
    let mut keys = match crate::files::read_private(key_file) {
        Ok(Some(text)) => Keys::from_file(&text)
            .map_err(|e| StoreError::refused(format!("the key file {shown}: {e}")))?,
        Ok(None) => {
            // An anchor: keys were made for this database (by another
            // instance on the same PostgreSQL, say), even with no entry yet.
            let has_data = !(trees.accounts.is_empty()?
                && trees.audit.is_empty()?
                && trees.outbox.is_empty()?
                && trees.mailbox.is_empty()?
                && trees.meta.get("audit_anchor")?.is_none());
            if legacy.is_none() && has_data {
                return Err(StoreError::refused(format!(
                    "the database in {} holds data, but there is no key file at {shown}: put the \
                     key file back (or set store.key_file to where it is). kagi makes no new \
                     keys over it: they would void its codes, links and mail, and its audit \
                     trail could not be verified",
                    dir.display()
                )));
            }
            let mut keys = Keys::generate(legacy);
            keys.moving = legacy.is_some();
            if !keys.moving {
                trees.start_audit_chain(&keys)?;
                trees.db.flush()?;
            }
            write_keys(key_file, &keys)?;
            keys
        }
        Err(crate::files::ReadError::Unsafe(why)) => return Err(StoreError::refused(why)),
        Err(crate::files::ReadError::Io(e)) => {
            return Err(StoreError::from_io(
                &format!("cannot read the key file {shown}"),
                &e,
            ))
        }
    };
    if keys.moving {
        let sha = |bytes: &[u8]| {
            crate::secret::hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
        };
        let note = trees.rechain_audit(&keys, Some(&sha))?;
        let sealed = mail::seal_old_mail(trees, &keys)?;
        trees.meta.remove("digest_key")?;
        trees.db.flush()?;
        keys.moving = false;
        write_keys(key_file, &keys)?;
        say!(
            "kagi: the digest key moved out of the database into {shown}; {note}; {sealed} mails' text sealed"
        );
    } else if legacy.is_some() {
        trees.meta.remove("digest_key")?;
        trees.db.flush()?;
        say!(
            "kagi: the database held a digest key beside the key file {shown}: removed, never used"
        );
    }
    Ok(keys)
}

fn write_keys(key_file: &Path, keys: &Keys) -> Result<()> {
    crate::files::write_private(key_file, &keys.to_file()).map_err(|e| {
        StoreError::from_io(
            &format!("cannot write the key file {}", key_file.display()),
            &e,
        )
    })
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(value)?)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    Ok(serde_json::from_slice(bytes)?)
}

impl Store {
    fn closed(dir: &Path, cache_bytes: u64, key_file: &Path) -> Store {
        Store {
            dir: dir.to_path_buf(),
            postgres: None,
            key_file: key_file.to_path_buf(),
            cache_bytes,
            open: RwLock::new(None),
            keys: OnceLock::new(),
            closed: Mutex::new(Some((
                "not opened yet".into(),
                "the database is not open yet",
            ))),
            failed: Mutex::new(None),
            audit_lock: Mutex::new(()),
            unreadable: Mutex::default(),
            gate: Gate::default(),
            metrics: OnceLock::new(),
        }
    }

    /// Opens (or creates) the database in `dir` and its key file.
    pub fn open(dir: &Path, cache_bytes: u64, key_file: &Path) -> Result<Store> {
        let store = Store::closed(dir, cache_bytes, key_file);
        store.open_now()?;
        Ok(store)
    }

    /// Opens the database now if the disk lets it; if the disk refuses
    /// (full, read-only), the store starts closed, every call failing with
    /// the reason, until `reopen` succeeds: a server does not stop because
    /// a disk is full. Err for what waiting cannot mend (another process
    /// holds the database, an unreadable key file).
    pub fn open_or_wait(dir: &Path, cache_bytes: u64, key_file: &Path) -> Result<Store> {
        Store::closed(dir, cache_bytes, key_file).opened_or_waiting()
    }

    /// This closed store opened, or left closed (to be opened again by
    /// `reopen`) if what stops it is the disk's or the database's to mend.
    fn opened_or_waiting(self) -> Result<Store> {
        match self.open_now() {
            Ok(()) => Ok(self),
            Err(e) if e.is_disk_trouble() => {
                self.set_closed(&e);
                Ok(self)
            }
            Err(e) => Err(e),
        }
    }

    /// The same on the PostgreSQL `db` names, the key file and backups in
    /// `dir`: a database that cannot be reached yet (or whose certificate
    /// is refused) is waited for, one whose schema is newer than this
    /// kagi's is refused.
    pub fn open_postgres_or_wait(
        db: &crate::config::PostgresConfig,
        dir: &Path,
        key_file: &Path,
    ) -> Result<Store> {
        let mut store = Store::closed(dir, 0, key_file);
        store.postgres = Some(db.clone());
        store.opened_or_waiting()
    }

    fn set_closed(&self, why: &StoreError) {
        *self.closed.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((why.to_string(), why.in_short()));
    }

    /// Opens the trees, and the keys the first time.
    fn open_now(&self) -> Result<()> {
        let trees = match &self.postgres {
            Some(db) => {
                Trees::open_postgres(db, &postgres::shown(db.url.as_deref().unwrap_or_default()))?
            }
            None => Trees::open(&self.dir, self.cache_bytes)?,
        };
        if self.keys.get().is_none() {
            // Two instances starting together on a new PostgreSQL database
            // must not both make keys and an anchor.
            let keys = trees
                .exclusively(postgres::Lock::Keys, true, || {
                    open_keys(&trees, &self.dir, &self.key_file)
                })?
                .ok_or_else(|| StoreError::other("the keys' lock was not taken"))?;
            let _ = self.keys.set(Arc::new(keys));
            // A backup the last run made and `kagi backup` never fetched.
            backup::remove_leftovers(&self.dir);
        }
        *self.open.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(trees));
        *self.closed.lock().unwrap_or_else(|e| e.into_inner()) = None;
        *self.failed.lock().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(())
    }

    /// Free space on the database's filesystem, for anyone (not only
    /// root's reserve); None if the system cannot tell.
    pub fn free_bytes(&self) -> Option<u64> {
        use std::os::unix::ffi::OsStrExt;
        if self.postgres.is_some() {
            // PostgreSQL's disk is its own, watched where it runs.
            return None;
        }
        let path = std::ffi::CString::new(self.dir.as_os_str().as_bytes()).ok()?;
        // SAFETY: a NUL-terminated path and a zeroed struct statvfs fills.
        let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
        let done = unsafe { libc::statvfs(path.as_ptr(), &mut stat) };
        (done == 0).then(|| stat.f_bavail as u64 * stat.f_frsize as u64)
    }

    /// Why the database is not open, or None when it is.
    pub fn unavailable(&self) -> Option<String> {
        let closed = self.closed.lock().unwrap_or_else(|e| e.into_inner());
        closed.as_ref().map(|(full, _)| full.clone())
    }

    /// The same in a few words that name no path (for anyone who asks).
    pub fn unavailable_in_short(&self) -> String {
        let closed = self.closed.lock().unwrap_or_else(|e| e.into_inner());
        closed.as_ref().map_or("", |(_, short)| short).to_string()
    }

    fn trees(&self) -> Result<Held<'_>> {
        self.gate.enter();
        let open = self.open.read().unwrap_or_else(|e| e.into_inner()).clone();
        match open {
            Some(trees) => Ok(Held {
                trees,
                gate: &self.gate,
                _not_send: std::marker::PhantomData,
            }),
            None => {
                self.gate.leave();
                let why = self.unavailable().unwrap_or_default();
                Err(StoreError::waiting(
                    format!("the database is not open ({why})"),
                    None,
                ))
            }
        }
    }

    /// The keys of the key file; an error until the database has opened.
    pub(crate) fn keys(&self) -> Result<Arc<Keys>> {
        self.keys.get().cloned().ok_or_else(|| {
            StoreError::waiting(
                "the key file has not been read: the database never opened",
                None,
            )
        })
    }

    /// Whether the database still writes: a tiny write, flushed. Err after
    /// any failed flush (sled may go on refusing writes, or hold the data of
    /// the failed one, until it is opened again), or while it is closed.
    pub fn check(&self) -> Result<()> {
        let failed = self
            .failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some((why, errno)) = failed {
            return Err(StoreError::waiting(
                format!("a write to the disk failed: {why}"),
                errno,
            ));
        }
        let t = self.trees()?;
        t.meta.insert("checked", &[])?;
        self.flush()
    }

    /// Closes the database and opens it again, so that writes resume once
    /// the disk has room again (or opens it for the first time, when it
    /// could not be opened at start). Calls in flight finish first; calls
    /// made meanwhile fail. What sled had not written is gone, as after a
    /// crash: nothing of it was reported done, since every success page
    /// waits for a flush.
    pub fn reopen(&self, why: &StoreError) -> Result<()> {
        let old = self.open.write().unwrap_or_else(|e| e.into_inner()).take();
        if old.is_some() {
            self.set_closed(&StoreError::waiting(
                format!("being opened again after a disk error ({why})"),
                why.errno,
            ));
        }
        if let Some(mut old) = old {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match Arc::try_unwrap(old) {
                    Ok(trees) => break drop(trees),
                    Err(still_used) if Instant::now() < deadline => {
                        old = still_used;
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    // A call that never ends: give up its handle; sled's
                    // lock then keeps the new open failing, and the next
                    // attempt tries again.
                    Err(_) => break,
                }
            }
        }
        // sled lets go of its lock file when its flusher thread has ended,
        // shortly after the last handle is dropped.
        let mut attempts = 0;
        loop {
            match self.open_now() {
                Ok(()) => return Ok(()),
                Err(e) if attempts == 50 || e.is_disk_trouble() => {
                    self.set_closed(&e);
                    return Err(e);
                }
                Err(_) => {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    /// Writes everything to disk before returning.
    pub fn flush(&self) -> Result<()> {
        let t = self.trees()?;
        let began = Instant::now();
        let flushed = t.db.flush();
        if let Some(metrics) = self.metrics.get() {
            metrics.store_flushes.observe(began.elapsed());
        }
        flushed.inspect_err(|e| {
            *self.failed.lock().unwrap_or_else(|e| e.into_inner()) = Some((e.to_string(), e.errno));
        })
    }

    /// Times every `flush` from now on in `metrics` (`/metrics`' store
    /// flush histogram); the first call's metrics are kept.
    pub fn time_flushes_in(&self, metrics: Arc<crate::metrics::Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    /// Runs `f` as the one sweeper of the database: on PostgreSQL, unless
    /// another instance is sweeping it now (then None, and `f` is not run).
    pub fn as_the_sweeper<R>(&self, f: impl FnOnce() -> R) -> Result<Option<R>> {
        let t = self.trees()?;
        let db = match &t.db {
            Engine::Sled(_) => None,
            Engine::Postgres(pool) => Some(pool.clone()),
        };
        // Not inside the store's gate: the round's own calls take it.
        drop(t);
        match db {
            None => Ok(Some(f())),
            Some(pool) => pool.exclusively(postgres::Lock::Sweep, false, || Ok(f())),
        }
    }

    /// A fresh id, increasing across restarts (and restores).
    fn next_id(&self) -> Result<u64> {
        let t = self.trees()?;
        Ok(t.id_base + t.db.generate_id()?)
    }
}

use kv::{Batch, Tree};

/// What the unit tests of every record family start from.
#[cfg(test)]
mod testing {
    use super::*;
    use crate::config::PostgresConfig;

    /// A new sled store for one test of what only sled has (`kagi backup`).
    pub fn temp_sled_store() -> (Store, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "kagi-store-test-{}",
            crate::secret::hex(&crate::secret::random_bytes::<8>())
        ));
        let store = Store::open(&dir, 1 << 20, &default_key_file(&dir)).unwrap();
        (store, dir)
    }

    /// A new store for one test, on the engine the tests run on.
    pub fn temp_store() -> (Store, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "kagi-store-test-{}",
            crate::secret::hex(&crate::secret::random_bytes::<8>())
        ));
        let key_file = default_key_file(&dir);
        let store = match test_database(&dir.display().to_string(), true) {
            Some(url) => {
                crate::files::private_dir(&dir).unwrap();
                Store::open_postgres_or_wait(&PostgresConfig::at(&url), &dir, &key_file).unwrap()
            }
            None => Store::open(&dir, 1 << 20, &key_file).unwrap(),
        };
        assert!(store.unavailable().is_none(), "{:?}", store.unavailable());
        (store, dir)
    }

    /// The store of `dir` (made by `temp_store`) opened again, on its
    /// engine; Err while sled's threads still hold it, or if refused.
    pub fn open_again(dir: &Path) -> Result<Store> {
        let key_file = default_key_file(dir);
        match test_database(&dir.display().to_string(), false) {
            Some(url) => {
                let store =
                    Store::open_postgres_or_wait(&PostgresConfig::at(&url), dir, &key_file)?;
                match store.unavailable() {
                    Some(why) => Err(StoreError::waiting(why, None)),
                    None => Ok(store),
                }
            }
            None => Store::open(dir, 1 << 20, &key_file),
        }
    }

    pub fn flow() -> Flow {
        Flow::Kaigo(KaigoFlow::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use crate::secret::Purpose;

    /// Opens `dir` again once sled's background threads let go of it.
    fn reopen(dir: &Path) -> Store {
        for _ in 0..100 {
            if let Ok(store) = open_again(dir) {
                return store;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("cannot reopen {}", dir.display())
    }

    /// The sled database in `dir` (made if new), once sled's background
    /// threads let go of it: for what only sled's files show.
    fn reopen_sled(dir: &Path) -> Store {
        for _ in 0..100 {
            if let Ok(store) = Store::open(dir, 1 << 20, &default_key_file(dir)) {
                return store;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("cannot reopen {}", dir.display())
    }

    /// Why opening `dir` is refused, once sled's background threads have
    /// let go of it; empty if it opens.
    fn refusal_at_open(open: impl Fn() -> Result<Store>) -> String {
        for _ in 0..100 {
            match open() {
                Err(e) if e.to_string().contains("lock") => {
                    std::thread::sleep(std::time::Duration::from_millis(50))
                }
                Err(e) => return e.to_string(),
                Ok(_) => break,
            }
        }
        String::new()
    }

    #[test]
    fn a_database_of_a_newer_format_is_refused_with_what_to_do() {
        let (store, dir) = temp_store();
        let t = store.trees().unwrap();
        assert_eq!(&t.meta.get("format").unwrap().unwrap()[..], b"1");
        t.meta.insert("format", &b"2"[..]).unwrap();
        t.db.flush().unwrap();
        drop(t);
        drop(store);
        let refused = refusal_at_open(|| open_again(&dir));
        assert!(
            refused.contains("format 2, written by a newer kagi"),
            "{refused}"
        );
        assert_eq!(format_problem(b"1"), None);
        assert!(format_problem(b"x")
            .unwrap()
            .contains("not one any kagi writes"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_database_a_migration_left_unfinished_is_refused_at_open() {
        let (store, dir) = temp_store();
        let t = store.trees().unwrap();
        t.meta.insert(migrate::UNFINISHED, &b"1"[..]).unwrap();
        t.db.flush().unwrap();
        drop(t);
        drop(store);
        let refused = refusal_at_open(|| open_again(&dir));
        assert!(refused.contains("was cut short"), "{refused}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_keys_live_in_the_key_file_and_survive_reopen() {
        let (store, dir) = temp_store();
        let digest = store.keys().unwrap().digester.digest(Purpose::Otp, "1");
        let file = std::fs::read_to_string(default_key_file(&dir)).unwrap();
        drop(store);
        let store = reopen(&dir);
        assert_eq!(
            store.keys().unwrap().digester.digest(Purpose::Otp, "1"),
            digest
        );
        // No key is in the database's own files.
        let key_hex: Vec<String> = file
            .lines()
            .filter_map(|l| l.split_once(" = ").map(|(_, v)| v.to_string()))
            .collect();
        assert_eq!(key_hex.len(), 3);
        drop(store);
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            if entry.file_name() == "kagi.key" || !entry.path().is_file() {
                continue;
            }
            let bytes = std::fs::read(entry.path()).unwrap();
            for key in &key_hex {
                let raw: Vec<u8> = (0..32)
                    .map(|i| u8::from_str_radix(&key[2 * i..2 * i + 2], 16).unwrap())
                    .collect();
                assert!(!bytes.windows(32).any(|w| w == raw.as_slice()));
            }
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_database_from_before_the_key_file_moves_its_key_out_and_its_trail_over() {
        let dir = std::env::temp_dir().join(format!(
            "kagi-store-legacy-{}",
            crate::secret::hex(&crate::secret::random_bytes::<8>())
        ));
        // As kagi wrote it before: the digest key in meta, a SHA-256 chain.
        {
            let t = Trees::open(&dir, 1 << 20).unwrap();
            t.meta.insert("digest_key", &[7u8; 32]).unwrap();
            let sha = |b: &[u8]| {
                crate::secret::hex(ring::digest::digest(&ring::digest::SHA256, b).as_ref())
            };
            let mut prev = String::new();
            for n in 0..3u64 {
                let entry = encode(&AuditEvent {
                    prev: prev.clone(),
                    time: n,
                    site: Some(Site::Kaigo),
                    event: "login".into(),
                    account: None,
                    client: "127.0.0.1".into(),
                    outcome: "failed".into(),
                    ..Default::default()
                })
                .unwrap();
                prev = sha(&entry);
                t.audit.insert(n.to_be_bytes(), entry).unwrap();
            }
            t.meta.insert("audit_head", prev.as_bytes()).unwrap();
            t.db.flush().unwrap();
        }
        let store = reopen_sled(&dir);
        assert!(store.keys().unwrap().digest_key_is(&[7u8; 32]));
        assert_eq!(store.verify_audit().unwrap(), Ok(3));
        assert!(store
            .trees()
            .unwrap()
            .meta
            .get("digest_key")
            .unwrap()
            .is_none());
        let file = std::fs::read_to_string(default_key_file(&dir)).unwrap();
        assert!(!file.contains("move"), "the move is done");
        // Whoever can write the database puts the old key back and edits
        // the trail: the key file says the move is done, so nothing is
        // chained anew, and the edit shows.
        let t = store.trees().unwrap();
        t.meta.insert("digest_key", &[7u8; 32]).unwrap();
        let (key, first) = t.audit.iter().next().unwrap().unwrap();
        let edited = String::from_utf8(first.to_vec())
            .unwrap()
            .replace("failed", "ok");
        t.audit.insert(key, edited.as_bytes()).unwrap();
        t.db.flush().unwrap();
        drop(t);
        drop(store);
        let store = reopen_sled(&dir);
        assert!(store.verify_audit().unwrap().is_err());
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_database_with_data_and_no_key_file_is_refused_and_an_emptied_trail_shows() {
        // sled's files, whichever engine the other tests run on.
        let dir = std::env::temp_dir().join(format!(
            "kagi-store-nokey-{}",
            crate::secret::hex(&crate::secret::random_bytes::<8>())
        ));
        let store = reopen_sled(&dir);
        assert_eq!(store.verify_audit().unwrap(), Ok(0), "a new, empty trail");
        store
            .audit(&AuditEvent {
                prev: String::new(),
                time: 1,
                site: Some(Site::Kaigo),
                event: "login".into(),
                account: None,
                client: "127.0.0.1".into(),
                outcome: "failed".into(),
                ..Default::default()
            })
            .unwrap();
        // Every entry, the head and the anchor removed: no trail at all is
        // not a valid one.
        let t = store.trees().unwrap();
        t.audit.clear().unwrap();
        for key in ["audit_head", "audit_anchor", "audit_anchor_tag"] {
            t.meta.remove(key).unwrap();
        }
        drop(t);
        assert!(store
            .verify_audit()
            .unwrap()
            .unwrap_err()
            .contains("anchor"));
        store.flush().unwrap();
        drop(store);
        std::fs::remove_file(default_key_file(&dir)).unwrap();
        // Accounts, but no key file: kagi makes no new keys over them.
        let t = Trees::open(&dir, 1 << 20).unwrap();
        t.accounts.insert("kaigo:x", &b"{}"[..]).unwrap();
        t.db.flush().unwrap();
        drop(t);
        let refused = refusal_at_open(|| Store::open(&dir, 1 << 20, &default_key_file(&dir)));
        assert!(refused.contains("no key file"), "{refused}");
        assert!(!default_key_file(&dir).exists());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
