//! Storage: the sled trees behind a narrow interface. Only this module knows
//! sled. Records with a lifetime are written together with an entry in the
//! expiry index, keyed (expiry time, tree, key), so that a sweep reads only
//! what has expired; reads treat an expired record as absent whether or not
//! the sweep has run.

mod audit;
mod records;
mod sweep;

pub use records::*;
pub use sweep::Sweeper;

use crate::secret::Keys;
use crate::site::Site;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

/// A storage failure: the disk, or a record that no longer decodes.
#[derive(Debug)]
pub struct StoreError {
    message: String,
    /// The disk refused (full, read-only, failing): time may mend it.
    disk: bool,
    /// The system's error number, when the disk gave one.
    errno: Option<i32>,
}

impl StoreError {
    fn new(message: impl Into<String>) -> StoreError {
        StoreError {
            message: message.into(),
            disk: false,
            errno: None,
        }
    }

    /// A failure that waiting may mend, with `errno` behind it if known.
    fn waiting(message: impl Into<String>, errno: Option<i32>) -> StoreError {
        StoreError {
            message: message.into(),
            disk: true,
            errno,
        }
    }

    fn from_io(what: &str, e: &std::io::Error) -> StoreError {
        StoreError {
            message: format!("{what}: {e}"),
            disk: is_disk_trouble(e),
            errno: errno_of(e),
        }
    }

    /// What is wrong, in a few words that name no path: for anyone who asks.
    pub fn in_short(&self) -> &'static str {
        match self.errno {
            Some(libc::ENOSPC) => "no space left on the database's disk",
            Some(libc::EDQUOT) => "the disk quota of the database is used up",
            Some(libc::EROFS) => "the database's disk is read-only",
            Some(libc::EIO) => "the database's disk fails",
            Some(libc::EFBIG) => "a file-size limit refuses the database's writes",
            _ => "the database cannot be opened",
        }
    }

    /// Whether the disk refused, rather than kagi's own files being wrong:
    /// a server waits this out instead of stopping.
    pub fn is_disk_trouble(&self) -> bool {
        self.disk
    }
}

/// The system's error number of `e`, or the one its kind stands for (sled
/// passes some errors on with their kind only).
fn errno_of(e: &std::io::Error) -> Option<i32> {
    use std::io::ErrorKind;
    e.raw_os_error().or(match e.kind() {
        ErrorKind::StorageFull => Some(libc::ENOSPC),
        ErrorKind::QuotaExceeded => Some(libc::EDQUOT),
        ErrorKind::ReadOnlyFilesystem => Some(libc::EROFS),
        ErrorKind::FileTooLarge => Some(libc::EFBIG),
        _ => None,
    })
}

/// Errors a full, read-only or failing disk gives.
fn is_disk_trouble(e: &std::io::Error) -> bool {
    matches!(
        errno_of(e),
        Some(libc::ENOSPC | libc::EDQUOT | libc::EIO | libc::EROFS | libc::EFBIG)
    )
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "storage: {}", self.message)
    }
}

impl std::error::Error for StoreError {}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> StoreError {
        let (disk, errno) = match &e {
            sled::Error::Io(io) => (is_disk_trouble(io), errno_of(io)),
            _ => (false, None),
        };
        StoreError {
            message: e.to_string(),
            disk,
            errno,
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> StoreError {
        StoreError::new(format!("record does not decode: {e}"))
    }
}

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
}

impl Expiring {
    fn from_tag(tag: u8) -> Option<Expiring> {
        Some(match tag {
            1 => Expiring::Flows,
            2 => Expiring::Sessions,
            3 => Expiring::Links,
            4 => Expiring::Captchas,
            5 => Expiring::Guards,
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

/// The open sled database and its trees.
struct Trees {
    db: sled::Db,
    /// `site:id` → `Account`.
    accounts: sled::Tree,
    /// kaigo office number + billing prefecture → user ID.
    offices: sled::Tree,
    flows: sled::Tree,
    sessions: sled::Tree,
    /// Mailed reset links, by digest of their token.
    links: sled::Tree,
    /// CAPTCHA challenges of databases written before they moved to memory
    /// (`captcha::Challenges`): nothing writes here now; the sweep empties it.
    captchas: sled::Tree,
    /// Claim and login guards: `claim:<digest>`, `login:<site>:<user>`.
    guards: sled::Tree,
    /// Mail not yet accepted by a server, by id.
    outbox: sled::Tree,
    /// Mail kept by the capture transport, by id.
    mailbox: sled::Tree,
    postal: sled::Tree,
    audit: sled::Tree,
    /// (expires: u64 BE, tree tag: u8, key) → ().
    expiry: sled::Tree,
    /// Server-wide values such as the digest key.
    meta: sled::Tree,
}

/// The database. sled refuses every write after its first I/O error (a
/// full or read-only disk) until it is opened again, so the trees sit behind
/// a lock that `reopen` can swap; while closed, every call fails with a
/// storage error, which the sites answer with 503. The keys live in a key
/// file beside the database, never inside it.
pub struct Store {
    dir: PathBuf,
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
}

/// Where the key file is unless the configuration puts it elsewhere.
pub fn default_key_file(data_dir: &Path) -> PathBuf {
    data_dir.join("kagi.key")
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
    fn open(dir: &Path, cache_bytes: u64) -> Result<Trees> {
        remove_unfinished_snapshots(dir)?;
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .open()?;
        Ok(Trees {
            accounts: db.open_tree("accounts")?,
            offices: db.open_tree("offices")?,
            flows: db.open_tree("flows")?,
            sessions: db.open_tree("sessions")?,
            links: db.open_tree("links")?,
            captchas: db.open_tree("captchas")?,
            guards: db.open_tree("guards")?,
            outbox: db.open_tree("outbox")?,
            mailbox: db.open_tree("mailbox")?,
            postal: db.open_tree("postal")?,
            audit: db.open_tree("audit")?,
            expiry: db.open_tree("expiry")?,
            meta: db.open_tree("meta")?,
            db,
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

    fn tree(&self, which: Expiring) -> &sled::Tree {
        match which {
            Expiring::Flows => &self.flows,
            Expiring::Sessions => &self.sessions,
            Expiring::Links => &self.links,
            Expiring::Captchas => &self.captchas,
            Expiring::Guards => &self.guards,
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
            .map_err(|e| StoreError::new(format!("the key file {shown}: {e}")))?,
        Ok(None) => {
            let has_data = !(trees.accounts.is_empty()
                && trees.audit.is_empty()
                && trees.outbox.is_empty()
                && trees.mailbox.is_empty());
            if legacy.is_none() && has_data {
                return Err(StoreError::new(format!(
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
        Err(crate::files::ReadError::Unsafe(why)) => return Err(StoreError::new(why)),
        Err(crate::files::ReadError::Io(e)) => {
            return Err(StoreError::from_io(
                &format!("cannot read the key file {shown}"),
                &e,
            ))
        }
    };
    if keys.moving {
        let note = trees.rechain_audit(&keys)?;
        let sealed = seal_old_mail(trees, &keys)?;
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

/// Seals the text of outbox and mailbox records written before mail text
/// was sealed; how many.
fn seal_old_mail(trees: &Trees, keys: &Keys) -> Result<usize> {
    let mut sealed = 0;
    for tree in [&trees.outbox, &trees.mailbox] {
        for entry in tree.iter() {
            let (key, bytes) = entry?;
            let value: serde_json::Value = decode(&bytes)?;
            if value.get("sealed").is_some() {
                continue;
            }
            let id = value.get("id").and_then(|v| v.as_u64()).unwrap_or(0);
            tree.insert(key, seal_record(keys, id, value)?)?;
            sealed += 1;
        }
    }
    Ok(sealed)
}

/// The fields of a mail record that hold its text, and so a code or a link.
const MAIL_TEXT: [&str; 2] = ["body", "mime"];

/// The associated data a mail's sealed text is bound to.
fn mail_record(id: u64) -> Vec<u8> {
    [&b"mail\0"[..], &id.to_be_bytes()].concat()
}

/// A mail record as stored: its text (`body`, `mime`: a code or a link)
/// sealed under the key file's key, with the mail's id as associated data;
/// the rest, which the mail thread and the listings read, plain.
fn seal_record(keys: &Keys, id: u64, mut value: serde_json::Value) -> Result<Vec<u8>> {
    use base64ct::{Base64, Encoding};
    let fields = value
        .as_object_mut()
        .ok_or_else(|| StoreError::new("a mail record is not an object"))?;
    let text: serde_json::Map<String, serde_json::Value> = MAIL_TEXT
        .iter()
        .filter_map(|f| Some((f.to_string(), fields.remove(*f)?)))
        .collect();
    let sealed = keys
        .sealer
        .seal(&mail_record(id), &serde_json::to_vec(&text)?);
    fields.insert("sealed".into(), Base64::encode_string(&sealed).into());
    encode(&value)
}

/// A stored mail record with its text opened (or as it was, from before
/// text was sealed).
fn open_record<T: DeserializeOwned>(keys: &Keys, bytes: &[u8]) -> Result<T> {
    use base64ct::{Base64, Encoding};
    let mut value: serde_json::Value = decode(bytes)?;
    let fields = value
        .as_object_mut()
        .ok_or_else(|| StoreError::new("a mail record is not an object"))?;
    if let Some(sealed) = fields.remove("sealed") {
        let id = fields.get("id").and_then(|v| v.as_u64()).unwrap_or(0);
        let sealed = Base64::decode_vec(sealed.as_str().unwrap_or(""))
            .map_err(|_| StoreError::new(format!("mail {id}: its sealed text is not base64")))?;
        let plain = keys.sealer.open(&mail_record(id), &sealed).ok_or_else(|| {
            StoreError::new(format!(
                "mail {id} does not open with the key file's key (another key file?)"
            ))
        })?;
        let text: serde_json::Map<String, serde_json::Value> = decode(&plain)?;
        fields.extend(text);
    }
    Ok(serde_json::from_value(value)?)
}

fn account_key(site: Site, id: &str) -> Vec<u8> {
    format!("{}:{id}", site.name()).into_bytes()
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
        let store = Store::closed(dir, cache_bytes, key_file);
        match store.open_now() {
            Ok(()) => Ok(store),
            Err(e) if e.is_disk_trouble() => {
                store.set_closed(&e);
                Ok(store)
            }
            Err(e) => Err(e),
        }
    }

    fn set_closed(&self, why: &StoreError) {
        *self.closed.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((why.to_string(), why.in_short()));
    }

    /// Opens the trees, and the keys the first time.
    fn open_now(&self) -> Result<()> {
        let trees = Trees::open(&self.dir, self.cache_bytes)?;
        if self.keys.get().is_none() {
            let keys = open_keys(&trees, &self.dir, &self.key_file)?;
            let _ = self.keys.set(Arc::new(keys));
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

    fn trees(&self) -> Result<Arc<Trees>> {
        self.open
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| {
                let why = self.unavailable().unwrap_or_default();
                StoreError::waiting(format!("the database is not open ({why})"), None)
            })
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
        t.db.flush().map_err(|e| {
            let errno = match &e {
                sled::Error::Io(io) => errno_of(io),
                _ => None,
            };
            *self.failed.lock().unwrap_or_else(|e| e.into_inner()) = Some((e.to_string(), errno));
            StoreError::from(e)
        })?;
        Ok(())
    }

    /// A fresh id, increasing across restarts.
    fn next_id(&self) -> Result<u64> {
        let t = self.trees()?;
        Ok(t.db.generate_id()?)
    }

    // ----- accounts -------------------------------------------------------

    pub fn account(&self, site: Site, id: &str) -> Result<Option<Account>> {
        let t = self.trees()?;
        t.accounts
            .get(account_key(site, id))?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Creates or replaces an account and its office index entry.
    pub fn put_account(&self, account: &Account) -> Result<()> {
        let t = self.trees()?;
        // Account first: an index entry never points at nothing.
        t.accounts
            .insert(account_key(account.site, &account.id), encode(account)?)?;
        if let Some(office) = &account.office {
            let index_key = format!("{}{}", office.number, office.prefecture);
            t.offices.insert(index_key, account.id.as_bytes())?;
        }
        Ok(())
    }

    /// Creates or replaces many accounts in two batches (accounts, then
    /// the office index): an import of a million stays fast.
    pub fn put_accounts(&self, accounts: &[Account]) -> Result<()> {
        let t = self.trees()?;
        let mut rows = sled::Batch::default();
        let mut index = sled::Batch::default();
        for account in accounts {
            rows.insert(account_key(account.site, &account.id), encode(account)?);
            if let Some(office) = &account.office {
                index.insert(
                    format!("{}{}", office.number, office.prefecture).into_bytes(),
                    account.id.as_bytes(),
                );
            }
        }
        t.accounts.apply_batch(rows)?;
        t.offices.apply_batch(index)?;
        Ok(())
    }

    /// The kaigo accounts of an office, ordered by billing prefecture.
    pub fn kaigo_accounts_of_office(&self, office: &str) -> Result<Vec<Account>> {
        let t = self.trees()?;
        let mut found = Vec::new();
        for entry in t.offices.scan_prefix(office.as_bytes()) {
            let (_, id) = entry?;
            let id = String::from_utf8_lossy(&id).into_owned();
            if let Some(account) = self.account(Site::Kaigo, &id)? {
                found.push(account);
            }
        }
        Ok(found)
    }

    /// Calls `each` with every account's password hash (a scan of the
    /// accounts: the census of their costs, in the background).
    pub fn for_each_password_hash(&self, mut each: impl FnMut(&str)) -> Result<()> {
        #[derive(Deserialize)]
        struct Hash {
            password_phc: String,
        }
        let t = self.trees()?;
        for value in t.accounts.iter().values() {
            let hash: Hash = decode(&value?)?;
            each(&hash.password_phc);
        }
        Ok(())
    }

    /// The costs (`m=…,t=…,p=…`) the stored password hashes have, as far
    /// as kagi knows: what imports brought and what was configured.
    pub fn hash_costs(&self) -> Result<std::collections::BTreeSet<String>> {
        let t = self.trees()?;
        match t.meta.get("hash_costs")? {
            Some(bytes) => decode(&bytes),
            None => Ok(Default::default()),
        }
    }

    pub fn put_hash_costs(&self, costs: &std::collections::BTreeSet<String>) -> Result<()> {
        let t = self.trees()?;
        t.meta.insert("hash_costs", encode(costs)?)?;
        Ok(())
    }

    pub fn account_count(&self) -> usize {
        self.trees().map_or(0, |t| t.accounts.len())
    }

    // ----- expiring records ----------------------------------------------

    fn get_live<T: DeserializeOwned>(
        &self,
        which: Expiring,
        key: &str,
        now: u64,
    ) -> Result<Option<T>> {
        let t = self.trees()?;
        let Some(bytes) = t.tree(which).get(key)? else {
            return Ok(None);
        };
        let timed: Timed<T> = decode(&bytes)?;
        Ok((timed.expires > now).then_some(timed.value))
    }

    fn index_key(which: Expiring, key: &str, expires: u64) -> Vec<u8> {
        let mut index_key = expires.to_be_bytes().to_vec();
        index_key.push(which as u8);
        index_key.extend_from_slice(key.as_bytes());
        index_key
    }

    fn put_live<T: Serialize>(
        &self,
        which: Expiring,
        key: &str,
        value: &T,
        expires: u64,
    ) -> Result<()> {
        let t = self.trees()?;
        let index_key = Store::index_key(which, key, expires);
        // Index first: a crash between the two writes leaves an index entry
        // that the sweep discards, never a record that is never swept.
        t.expiry.insert(index_key, &[])?;
        let old = t
            .tree(which)
            .insert(key, encode(&Timed { expires, value })?)?;
        t.forget_index_entry(which, key, old.as_deref(), expires)
    }

    /// The recovery flow of a visit, unless absent or expired.
    pub fn flow(&self, key: &str, now: u64) -> Result<Option<Flow>> {
        self.get_live(Expiring::Flows, key, now)
    }

    pub fn put_flow(&self, key: &str, flow: &Flow, expires: u64) -> Result<()> {
        self.put_live(Expiring::Flows, key, flow, expires)
    }

    pub fn remove_flow(&self, key: &str) -> Result<()> {
        let t = self.trees()?;
        t.flows.remove(key)?;
        Ok(())
    }

    /// The session of a visit, unless absent or expired.
    pub fn session(&self, key: &str, now: u64) -> Result<Option<Session>> {
        self.get_live(Expiring::Sessions, key, now)
    }

    pub fn put_session(&self, key: &str, session: &Session, expires: u64) -> Result<()> {
        self.put_live(Expiring::Sessions, key, session, expires)
    }

    pub fn remove_session(&self, key: &str) -> Result<()> {
        let t = self.trees()?;
        t.sessions.remove(key)?;
        Ok(())
    }

    /// A reset link by the digest of its token, unless absent or expired.
    pub fn link(&self, key: &str, now: u64) -> Result<Option<Link>> {
        self.get_live(Expiring::Links, key, now)
    }

    /// Stores a link; its expiry time is kept when it is marked used, so the
    /// record (a spent link) lives exactly as long as the link would have.
    pub fn put_link(&self, key: &str, link: &Link, expires: u64) -> Result<()> {
        self.put_live(Expiring::Links, key, link, expires)
    }

    /// The expiry time of a link record, if present.
    pub fn link_expiry(&self, key: &str) -> Result<Option<u64>> {
        let t = self.trees()?;
        let Some(bytes) = t.links.get(key)? else {
            return Ok(None);
        };
        Ok(Some(
            decode::<Timed<serde::de::IgnoredAny>>(&bytes)?.expires,
        ))
    }

    /// Changes a live record atomically: `change` sees the current value
    /// (the default when absent or expired) and may run more than once if
    /// another writer got in between; the first writer wins, the second
    /// sees its result (compare-and-swap).
    fn update_live<T, R>(
        &self,
        which: Expiring,
        key: &str,
        now: u64,
        expires: u64,
        mut change: impl FnMut(&mut T) -> R,
    ) -> Result<R>
    where
        T: Serialize + DeserializeOwned + Default,
    {
        let t = self.trees()?;
        let tree = t.tree(which);
        t.expiry
            .insert(Store::index_key(which, key, expires), &[])?;
        loop {
            let old = tree.get(key)?;
            let mut value = match &old {
                Some(bytes) => {
                    let timed: Timed<T> = decode(bytes)?;
                    if timed.expires > now {
                        timed.value
                    } else {
                        T::default()
                    }
                }
                None => T::default(),
            };
            let result = change(&mut value);
            let new = encode(&Timed { expires, value })?;
            if tree.compare_and_swap(key, old.clone(), Some(new))?.is_ok() {
                t.forget_index_entry(which, key, old.as_deref(), expires)?;
                return Ok(result);
            }
        }
    }

    /// Changes the guard of a claim (kept for `window` seconds, a day
    /// unless configured, after its last change).
    pub fn update_claim_guard<R>(
        &self,
        claim: &str,
        now: u64,
        window: u64,
        change: impl FnMut(&mut ClaimGuard) -> R,
    ) -> Result<R> {
        let key = format!("claim:{claim}");
        self.update_live(Expiring::Guards, &key, now, now + window, change)
    }

    /// The failed attempts at one secret of a user name (known or not).
    pub fn login_guard(
        &self,
        secret: Secret,
        site: Site,
        user: &str,
        now: u64,
    ) -> Result<LoginGuard> {
        Ok(self
            .get_live(Expiring::Guards, &secret.guard_key(site, user), now)?
            .unwrap_or_default())
    }

    pub fn put_login_guard(
        &self,
        secret: Secret,
        site: Site,
        user: &str,
        guard: &LoginGuard,
        now: u64,
    ) -> Result<()> {
        let expires = (now + DAY).max(guard.locked_until);
        self.put_live(
            Expiring::Guards,
            &secret.guard_key(site, user),
            guard,
            expires,
        )
    }

    /// Forgets failed attempts: after the secret was given right, or a
    /// password reset.
    pub fn remove_login_guard(&self, secret: Secret, site: Site, user: &str) -> Result<()> {
        let t = self.trees()?;
        let key = secret.guard_key(site, user);
        if t.guards.contains_key(&key)? {
            t.guards.remove(key)?;
        }
        Ok(())
    }

    /// Marks a live link used, atomically: true for the one caller that
    /// found it live, false for any other (compare-and-swap).
    pub fn use_link(&self, key: &str, now: u64) -> Result<bool> {
        let t = self.trees()?;
        let Some(old) = t.links.get(key)? else {
            return Ok(false);
        };
        let mut timed: Timed<Link> = decode(&old)?;
        if timed.expires <= now || timed.value.state != LinkState::Live {
            return Ok(false);
        }
        timed.value.state = LinkState::Used;
        let new = encode(&timed)?;
        Ok(t.links.compare_and_swap(key, Some(old), Some(new))?.is_ok())
    }

    /// Deletes up to `batch` records whose time has come, with their index
    /// entries, and returns how many index entries it processed. A record
    /// rewritten with a later expiry keeps living; only its stale index
    /// entry goes.
    pub fn sweep(&self, now: u64, batch: usize) -> Result<usize> {
        let t = self.trees()?;
        let mut done = 0;
        for entry in t.expiry.range(..(now + 1).to_be_bytes().to_vec()) {
            if done == batch {
                break;
            }
            let (index_key, _) = entry?;
            if index_key.len() < 9 {
                t.expiry.remove(&index_key)?;
                continue;
            }
            let Some(which) = Expiring::from_tag(index_key[8]) else {
                t.expiry.remove(&index_key)?;
                continue;
            };
            let key = &index_key[9..];
            let tree = t.tree(which);
            if let Some(bytes) = tree.get(key)? {
                let expires = decode::<Timed<serde::de::IgnoredAny>>(&bytes)
                    .map(|t| t.expires)
                    .unwrap_or(0);
                if expires <= now {
                    // Only if unchanged since read: a concurrent rewrite wins.
                    let _ = tree.compare_and_swap(key, Some(bytes), None as Option<&[u8]>)?;
                }
            }
            t.expiry.remove(&index_key)?;
            done += 1;
        }
        Ok(done)
    }

    /// Records (of any expiring kind) physically present, expired or not.
    pub fn expiring_record_count(&self) -> usize {
        self.trees().map_or(0, |t| {
            t.flows.len() + t.sessions.len() + t.links.len() + t.captchas.len() + t.guards.len()
        })
    }

    // ----- mail -----------------------------------------------------------

    fn seal_mail<T: Serialize>(&self, id: u64, mail: &T) -> Result<Vec<u8>> {
        seal_record(&*self.keys()?, id, serde_json::to_value(mail)?)
    }

    /// A stored mail, or None (said once in the log) for one that does
    /// not open: sealed under another key file, or damaged. One such
    /// record must not stop the delivery or the listing of the others.
    fn open_mail<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<Option<T>> {
        let keys = self.keys()?;
        match open_record(&keys, bytes) {
            Ok(mail) => Ok(Some(mail)),
            Err(e) => {
                #[derive(Deserialize)]
                struct Id {
                    id: u64,
                }
                let id = decode::<Id>(bytes).map_or(0, |r| r.id);
                let mut told = self.unreadable.lock().unwrap_or_else(|e| e.into_inner());
                if told.len() > 10_000 {
                    told.clear();
                }
                if told.insert(id) {
                    say!("kagi: mail {id} is left aside: {e}");
                }
                Ok(None)
            }
        }
    }

    /// Puts a mail in the outbox and returns its id. `prepare` receives the
    /// id so that the Message-ID can be derived from it.
    pub fn enqueue_mail(&self, prepare: impl FnOnce(u64) -> OutboxMail) -> Result<u64> {
        let t = self.trees()?;
        let id = self.next_id()?;
        let mail = prepare(id);
        t.outbox
            .insert(id.to_be_bytes(), self.seal_mail(id, &mail)?)?;
        Ok(id)
    }

    /// Every mail still in the outbox, oldest first.
    pub fn outbox(&self) -> Result<Vec<OutboxMail>> {
        let t = self.trees()?;
        let mut mails = Vec::new();
        for value in t.outbox.iter().values() {
            mails.extend(self.open_mail(&value?)?);
        }
        Ok(mails)
    }

    /// Up to `limit` real (not decoy) mails of the outbox with an id above
    /// `after`, oldest first.
    pub fn undelivered_after(&self, after: u64, limit: usize) -> Result<Vec<OutboxMail>> {
        let t = self.trees()?;
        let mut page = Vec::new();
        for value in t
            .outbox
            .range((after.saturating_add(1)).to_be_bytes()..)
            .values()
        {
            let Some(mail) = self.open_mail::<OutboxMail>(&value?)? else {
                continue;
            };
            if !mail.decoy {
                page.push(mail);
                if page.len() == limit {
                    break;
                }
            }
        }
        Ok(page)
    }

    pub fn update_mail(&self, mail: &OutboxMail) -> Result<()> {
        let t = self.trees()?;
        t.outbox
            .insert(mail.id.to_be_bytes(), self.seal_mail(mail.id, mail)?)?;
        Ok(())
    }

    pub fn remove_mail(&self, id: u64) -> Result<()> {
        let t = self.trees()?;
        t.outbox.remove(id.to_be_bytes())?;
        Ok(())
    }

    /// Moves a mail from the outbox into the capture mailbox in one step.
    pub fn capture_mail(&self, mail: &CapturedMail) -> Result<()> {
        let t = self.trees()?;
        let key = mail.id.to_be_bytes();
        let value = self.seal_mail(mail.id, mail)?;
        (&t.outbox, &t.mailbox)
            .transaction(|(outbox, mailbox)| {
                outbox.remove(&key)?;
                mailbox.insert(&key, value.as_slice())?;
                Ok(())
            })
            .map_err(|e: sled::transaction::TransactionError<()>| {
                StoreError::new(format!("{e:?}"))
            })?;
        Ok(())
    }

    /// Captured mail, newest first.
    pub fn captured_mail(&self, limit: usize) -> Result<Vec<CapturedMail>> {
        let t = self.trees()?;
        let mut mails = Vec::new();
        for value in t.mailbox.iter().values().rev().take(limit) {
            mails.extend(self.open_mail(&value?)?);
        }
        Ok(mails)
    }

    /// Captured mail with an id above `after`, oldest first: a reader that
    /// remembers the last id it saw gets each mail once, a page at a time.
    pub fn captured_mail_after(&self, after: u64, limit: usize) -> Result<Vec<CapturedMail>> {
        let t = self.trees()?;
        let mut mails = Vec::new();
        let after = (after.saturating_add(1)).to_be_bytes();
        for value in t.mailbox.range(after..).values().take(limit) {
            mails.extend(self.open_mail(&value?)?);
        }
        Ok(mails)
    }

    // ----- postal requests and audit ----------------------------------------

    /// Keeps a postal request for an operator. A second request for the
    /// same office while the first waits replaces it, keeping the first
    /// one's id and place in the queue: one office holds one record, however
    /// often it is asked for. True when it replaced one.
    pub fn put_postal_request(&self, request: PostalRequest) -> Result<bool> {
        let t = self.trees()?;
        let key = format!("office:{}", request.office);
        let waiting: Option<PostalRequest> = t.postal.get(&key)?.map(|v| decode(&v)).transpose()?;
        let (id, created) = match &waiting {
            Some(w) => (w.id, w.created),
            None => (self.next_id()?, request.created),
        };
        t.postal.insert(
            key,
            encode(&PostalRequest {
                id,
                created,
                ..request
            })?,
        )?;
        Ok(waiting.is_some())
    }

    /// Postal requests, oldest first.
    pub fn postal_requests(&self) -> Result<Vec<PostalRequest>> {
        let t = self.trees()?;
        let mut requests: Vec<PostalRequest> = t
            .postal
            .iter()
            .values()
            .map(|v| decode(&v?))
            .collect::<Result<_>>()?;
        requests.sort_by_key(|r| (r.created, r.id));
        Ok(requests)
    }

    /// Deletes captured mail beyond the newest `keep`.
    pub fn trim_mailbox(&self, keep: usize, batch: usize) -> Result<usize> {
        let t = self.trees()?;
        let excess = t.mailbox.len().saturating_sub(keep).min(batch);
        let mut done = 0;
        for key in t.mailbox.iter().keys().take(excess) {
            t.mailbox.remove(key?)?;
            done += 1;
        }
        Ok(done)
    }
}

use sled::Transactional;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Purpose;

    fn temp_store() -> (Store, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "kagi-store-test-{}",
            crate::secret::hex(&crate::secret::random_bytes::<8>())
        ));
        (
            Store::open(&dir, 1 << 20, &default_key_file(&dir)).unwrap(),
            dir,
        )
    }

    fn flow() -> Flow {
        Flow::Kaigo(KaigoFlow::Failed)
    }

    #[test]
    fn expired_records_are_absent_before_any_sweep() {
        let (store, dir) = temp_store();
        store.put_flow("a", &flow(), 100).unwrap();
        assert_eq!(store.flow("a", 99).unwrap(), Some(flow()));
        assert_eq!(store.flow("a", 100).unwrap(), None);
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn sweep_removes_exactly_what_expired() {
        let (store, dir) = temp_store();
        for (key, expires) in [("f1", 100), ("f2", 200), ("f3", 300)] {
            store.put_flow(key, &flow(), expires).unwrap();
        }
        let session = Session {
            site: Site::Kaigo,
            account: "KJ131311111111".into(),
            generation: 0,
            state: SessionState::Active,
            created: 0,
            last_seen: 0,
        };
        store.put_session("s1", &session, 150).unwrap();
        store.put_session("s2", &session, 250).unwrap();
        // f2 is rewritten to live longer: its old index entry goes at once,
        // and could not kill it anyway.
        store.put_flow("f2", &flow(), 400).unwrap();
        assert_eq!(store.trees().unwrap().expiry.len(), 5);

        assert_eq!(store.sweep(200, 1000).unwrap(), 2); // f1@100, s1@150
        assert!(store.trees().unwrap().flows.get("f1").unwrap().is_none());
        assert!(store.trees().unwrap().sessions.get("s1").unwrap().is_none());
        assert!(store.trees().unwrap().flows.get("f2").unwrap().is_some());
        assert!(store.trees().unwrap().flows.get("f3").unwrap().is_some());
        assert!(store.trees().unwrap().sessions.get("s2").unwrap().is_some());
        assert_eq!(store.expiring_record_count(), 3);

        // Bounded batches: one at a time.
        assert_eq!(store.sweep(1000, 1).unwrap(), 1);
        assert_eq!(store.sweep(1000, 10).unwrap(), 2);
        assert_eq!(store.expiring_record_count(), 0);
        assert_eq!(store.trees().unwrap().expiry.len(), 0);

        // Links ride the same index.
        let link = Link {
            kind: LinkKind::Reset,
            site: Site::Portal,
            account: "demo-user".into(),
            generation: 0,
            state: LinkState::Live,
        };
        store.put_link("l1", &link, 2000).unwrap();
        assert_eq!(store.sweep(1999, 10).unwrap(), 0);
        assert_eq!(store.link("l1", 1999).unwrap(), Some(link));
        assert_eq!(store.sweep(2000, 10).unwrap(), 1);
        assert_eq!(store.expiring_record_count(), 0);
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_guard_rewritten_at_every_attempt_keeps_one_index_entry() {
        let (store, dir) = temp_store();
        for now in 0..50 {
            store
                .update_claim_guard("c", now, 100, |g| g.issued.push(now))
                .unwrap();
            let guard = LoginGuard {
                failures: now as u32,
                locked_until: 0,
            };
            store
                .put_login_guard(Secret::Password, Site::Portal, "u", &guard, now)
                .unwrap();
        }
        assert_eq!(store.trees().unwrap().expiry.len(), 2);
        // Kept `window` after the last change.
        assert_eq!(store.sweep(148, 10).unwrap(), 0);
        assert_eq!(store.sweep(149, 10).unwrap(), 1);
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn office_index_lists_an_offices_accounts() {
        let (store, dir) = temp_store();
        for pref in ["14", "13"] {
            store
                .put_account(&Account {
                    site: Site::Kaigo,
                    id: format!("KJ{pref}1311111111"),
                    email: None,
                    password_phc: "x".into(),
                    security_code_phc: None,
                    generation: 0,
                    office: Some(Office {
                        number: "1311111111".into(),
                        prefecture: pref.into(),
                    }),
                    coordinator: false,
                    locked: false,
                })
                .unwrap();
        }
        let ids: Vec<String> = store
            .kaigo_accounts_of_office("1311111111")
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(ids, ["KJ131311111111", "KJ141311111111"]);
        assert!(store
            .kaigo_accounts_of_office("2711111111")
            .unwrap()
            .is_empty());
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_audit_chain_shows_any_edit_or_removal() {
        let (store, dir) = temp_store();
        let event = |n: u64| AuditEvent {
            prev: String::new(),
            time: n,
            site: Site::Kaigo,
            event: "login".into(),
            account: None,
            client: "127.0.0.1".into(),
            outcome: "failed".into(),
        };
        for n in 0..5 {
            store.audit(&event(n)).unwrap();
        }
        assert_eq!(store.verify_audit().unwrap(), Ok(5));
        let keys: Vec<_> = store
            .trees()
            .unwrap()
            .audit
            .iter()
            .keys()
            .map(|k| k.unwrap())
            .collect();
        // An edit in the middle.
        let original = store.trees().unwrap().audit.get(&keys[2]).unwrap().unwrap();
        let edited = String::from_utf8(original.to_vec())
            .unwrap()
            .replace("failed", "ok");
        store
            .trees()
            .unwrap()
            .audit
            .insert(&keys[2], edited.as_bytes())
            .unwrap();
        assert!(store.verify_audit().unwrap().is_err());
        store
            .trees()
            .unwrap()
            .audit
            .insert(&keys[2], original)
            .unwrap();
        assert_eq!(store.verify_audit().unwrap(), Ok(5));
        // A removal in the middle, and at the end.
        let middle = store
            .trees()
            .unwrap()
            .audit
            .remove(&keys[1])
            .unwrap()
            .unwrap();
        assert!(store.verify_audit().unwrap().is_err());
        store
            .trees()
            .unwrap()
            .audit
            .insert(&keys[1], middle)
            .unwrap();
        let last = store
            .trees()
            .unwrap()
            .audit
            .remove(&keys[4])
            .unwrap()
            .unwrap();
        assert!(store
            .verify_audit()
            .unwrap()
            .unwrap_err()
            .contains("at the end"));
        // Nor by making the head what the removed entry named: the head's
        // own HMAC needs the key file.
        let removed: AuditEvent = decode(&last).unwrap();
        store
            .trees()
            .unwrap()
            .meta
            .insert("audit_head", removed.prev.as_bytes())
            .unwrap();
        assert!(store.verify_audit().unwrap().is_err());
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_audit_trail_past_its_retention_is_trimmed_and_still_verifies() {
        let (store, dir) = temp_store();
        for n in 0..10 {
            store
                .audit(&AuditEvent {
                    prev: String::new(),
                    time: n * 100,
                    site: Site::Portal,
                    event: "login".into(),
                    account: None,
                    client: "127.0.0.1".into(),
                    outcome: "failed".into(),
                })
                .unwrap();
        }
        assert_eq!(store.trim_audit(450, 3).unwrap(), 3);
        assert_eq!(store.trim_audit(450, 100).unwrap(), 2);
        assert_eq!(store.audit_events().unwrap().len(), 5);
        assert_eq!(store.verify_audit().unwrap(), Ok(5));
        // Deleting one more by hand, without moving the anchor, shows.
        let first = store
            .trees()
            .unwrap()
            .audit
            .iter()
            .keys()
            .next()
            .unwrap()
            .unwrap();
        store.trees().unwrap().audit.remove(first).unwrap();
        assert!(store.verify_audit().unwrap().is_err());
        // Nor by moving the anchor to what the new first entry names:
        // the anchor's own HMAC needs the key file.
        let t = store.trees().unwrap();
        let next: AuditEvent = decode(&t.audit.iter().values().next().unwrap().unwrap()).unwrap();
        t.meta.insert("audit_anchor", next.prev.as_bytes()).unwrap();
        assert!(store
            .verify_audit()
            .unwrap()
            .unwrap_err()
            .contains("anchor"));
        drop(t);
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_mailbox_keeps_the_newest() {
        let (store, dir) = temp_store();
        for id in 0..5u64 {
            store
                .trees()
                .unwrap()
                .mailbox
                .insert(id.to_be_bytes(), format!("{id}").as_bytes())
                .unwrap();
        }
        assert_eq!(store.trim_mailbox(2, 100).unwrap(), 3);
        let left: Vec<_> = store
            .trees()
            .unwrap()
            .mailbox
            .iter()
            .keys()
            .map(|k| k.unwrap().to_vec())
            .collect();
        assert_eq!(
            left,
            [3u64.to_be_bytes().to_vec(), 4u64.to_be_bytes().to_vec()]
        );
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Opens `dir` again once sled's background threads let go of it.
    fn reopen(dir: &Path) -> Store {
        for _ in 0..100 {
            if let Ok(store) = Store::open(dir, 1 << 20, &default_key_file(dir)) {
                return store;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("cannot reopen {}", dir.display())
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
                    site: Site::Kaigo,
                    event: "login".into(),
                    account: None,
                    client: "127.0.0.1".into(),
                    outcome: "failed".into(),
                })
                .unwrap();
                prev = sha(&entry);
                t.audit.insert(n.to_be_bytes(), entry).unwrap();
            }
            t.meta.insert("audit_head", prev.as_bytes()).unwrap();
            t.db.flush().unwrap();
        }
        let store = reopen(&dir);
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
        let store = reopen(&dir);
        assert!(store.verify_audit().unwrap().is_err());
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_database_with_data_and_no_key_file_is_refused_and_an_emptied_trail_shows() {
        let (store, dir) = temp_store();
        assert_eq!(store.verify_audit().unwrap(), Ok(0), "a new, empty trail");
        store
            .audit(&AuditEvent {
                prev: String::new(),
                time: 1,
                site: Site::Kaigo,
                event: "login".into(),
                account: None,
                client: "127.0.0.1".into(),
                outcome: "failed".into(),
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
        let mut refused = String::new();
        for _ in 0..100 {
            match Store::open(&dir, 1 << 20, &default_key_file(&dir)) {
                Err(e) if e.to_string().contains("lock") => {
                    std::thread::sleep(std::time::Duration::from_millis(50))
                }
                Err(e) => {
                    refused = e.to_string();
                    break;
                }
                Ok(_) => break,
            }
        }
        assert!(refused.contains("no key file"), "{refused}");
        assert!(!default_key_file(&dir).exists());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
