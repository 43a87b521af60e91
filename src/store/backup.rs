//! Backups: the whole database as one file, taken from a running server
//! between two store calls, and a new database built from one.
//!
//! The file: `KAGI-BACKUP\n`, a header (one line of JSON), the records, a
//! zero byte, and the SHA-256 of everything before it. A record is its
//! tree's number in the header's list of trees (one byte, from 1), then its
//! key and its value, each after its length (four bytes, big-endian).
//! Records rather than a copy of sled's files: the file is checked whole
//! before anything is written, it names its trees, and it does not depend
//! on sled's own format on disk.
//!
//! The keys are not in it. Restored with the key file it was made under, a
//! backup is the server as it was; restored without, it keeps what needs
//! no key (accounts, offices, postal requests, operators without their
//! second factor, the audit trail chained anew) and drops the rest (flows,
//! sessions, codes, links, queued and captured mail).

use super::kv::{Batch, Tree};
use super::{
    decode, encode, format_problem, Keys, Operator, Result, Store, StoreError, Trees, FORMAT,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

const MAGIC: &[u8] = b"KAGI-BACKUP\n";

/// The layout of the file described above.
const LAYOUT: u32 = 1;

/// A key or a value longer than this is not one kagi wrote.
const MAX_PART: u32 = 64 << 20;

/// How long a backup waits for the store calls in progress to end.
const PATIENCE: Duration = Duration::from_secs(30);

/// The trees whose records are of no use without the key file: keyed by
/// digests, or sealed, or an index of those.
const NEED_THE_KEY: [&str; 10] = [
    "flows",
    "sessions",
    "links",
    "captchas",
    "guards",
    "operator_sessions",
    "registrations",
    "outbox",
    "mailbox",
    "expiry",
];

/// What a backup says of itself, on its second line.
#[derive(Debug, Serialize, Deserialize)]
pub struct Header {
    /// The layout of the file (`LAYOUT`).
    pub backup: u32,
    /// The database format of the server that made it (`FORMAT`).
    pub format: u32,
    /// The version of kagi that made it.
    pub kagi: String,
    /// When, in Unix seconds.
    pub made: u64,
    /// The fingerprint of the key file it was made under.
    pub key: String,
    /// The next id the server would have given: a restored database goes
    /// on from it.
    pub next_id: u64,
    /// The trees, in the order of their numbers.
    pub trees: Vec<String>,
}

/// What a backup held: records per tree, and its size.
#[derive(Debug, Default)]
pub struct Counts {
    pub bytes: u64,
    pub records: BTreeMap<String, u64>,
}

impl Counts {
    pub fn of(&self, tree: &str) -> u64 {
        self.records.get(tree).copied().unwrap_or(0)
    }
}

/// A writer that hashes and counts what passes through it.
struct Hashing<W> {
    inner: W,
    sha: ring::digest::Context,
    bytes: u64,
}

impl<W: Write> Hashing<W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.sha.update(bytes);
        self.bytes += bytes.len() as u64;
        self.inner.write_all(bytes)
    }
}

fn io(what: &str) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |e| StoreError::from_io(what, &e)
}

impl Store {
    /// Writes the whole database to `out` as a backup made at `made`. No
    /// store call is in progress while it copies: it waits for those
    /// running to end, and holds new ones back until it is done (the time
    /// it held them is returned). What it copies is the database between
    /// two calls, with everything a page has reported done.
    pub fn backup(&self, out: impl Write, made: u64) -> Result<(Counts, Duration)> {
        if self.postgres.is_some() {
            // The gate holds back this instance's calls, not the others'.
            return Err(StoreError::refused(
                "kagi backup copies sled's database; PostgreSQL's is backed up with its own tools (pg_dump, or its base backups and WAL)",
            ));
        }
        let trees = self
            .open
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| StoreError::waiting("the database is not open", None))?;
        let keys = self.keys()?;
        if !self.gate.pause(PATIENCE) {
            return Err(StoreError::waiting(
                "a store call did not end within 30 s: try the backup again",
                None,
            ));
        }
        let began = Instant::now();
        let written = write_backup(&trees, &keys, out, made);
        self.gate.resume();
        Ok((written?, began.elapsed()))
    }
}

/// Where a running server keeps the backup it made for `kagi backup`,
/// until the command has fetched it: beside the database, as private.
const FILE_NAME: &str = "backup.kagi";

impl Store {
    /// Makes a backup in the data directory for `kagi backup` to fetch,
    /// replacing the one before; its counts and how long calls were held.
    pub fn backup_to_file(&self, made: u64) -> Result<(Counts, Duration)> {
        let path = self.dir.join(FILE_NAME);
        let partial = self.dir.join(format!("{FILE_NAME}.part"));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&partial)
            .map_err(io("cannot make the backup file"))?;
        let made = self.backup(&file, made).and_then(|done| {
            file.sync_all()
                .map_err(io("cannot write the backup file"))?;
            std::fs::rename(&partial, &path).map_err(io("cannot write the backup file"))?;
            Ok(done)
        });
        if made.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        made
    }

    /// Up to `max` bytes of the backup made for `kagi backup`, from
    /// `offset`; None when there is none.
    pub fn backup_chunk(&self, offset: u64, max: usize) -> Result<Option<Vec<u8>>> {
        use std::io::Seek;
        let mut file = match std::fs::File::open(self.dir.join(FILE_NAME)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::from_io("cannot read the backup file", &e)),
        };
        file.seek(std::io::SeekFrom::Start(offset))
            .map_err(io("cannot read the backup file"))?;
        let mut chunk = Vec::new();
        file.take(max as u64)
            .read_to_end(&mut chunk)
            .map_err(io("cannot read the backup file"))?;
        Ok(Some(chunk))
    }

    /// Removes the backup made for `kagi backup`, once fetched; false if
    /// there was none.
    pub fn remove_backup_file(&self) -> Result<bool> {
        match std::fs::remove_file(self.dir.join(FILE_NAME)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::from_io("cannot remove the backup file", &e)),
        }
    }
}

/// Removes what a backup of an earlier run left in `dir`: made and never
/// fetched (the command stopped), or cut short by a crash.
pub(super) fn remove_leftovers(dir: &Path) {
    for name in [FILE_NAME.to_string(), format!("{FILE_NAME}.part")] {
        let _ = std::fs::remove_file(dir.join(name));
    }
}

fn write_backup(t: &Trees, keys: &Keys, out: impl Write, made: u64) -> Result<Counts> {
    let what = "cannot write the backup";
    let named: Vec<(&str, &Tree)> = Trees::NAMES
        .iter()
        .filter_map(|name| Some((*name, t.tree_named(name)?)))
        .collect();
    let header = Header {
        backup: LAYOUT,
        format: FORMAT,
        kagi: env!("CARGO_PKG_VERSION").into(),
        made,
        key: keys.fingerprint(),
        next_id: t.id_base + t.db.generate_id()?,
        trees: named.iter().map(|(name, _)| name.to_string()).collect(),
    };
    let mut out = Hashing {
        inner: std::io::BufWriter::new(out),
        sha: ring::digest::Context::new(&ring::digest::SHA256),
        bytes: 0,
    };
    let mut counts = Counts::default();
    out.put(MAGIC).map_err(io(what))?;
    out.put(&encode(&header)?).map_err(io(what))?;
    out.put(b"\n").map_err(io(what))?;
    for (number, (name, tree)) in named.iter().enumerate() {
        let mut n = 0;
        for entry in tree.iter() {
            let (key, value) = entry?;
            out.put(&[number as u8 + 1]).map_err(io(what))?;
            for part in [&key[..], &value[..]] {
                out.put(&(part.len() as u32).to_be_bytes())
                    .map_err(io(what))?;
                out.put(part).map_err(io(what))?;
            }
            n += 1;
        }
        counts.records.insert(name.to_string(), n);
    }
    out.put(&[0]).map_err(io(what))?;
    let sum = out.sha.clone().finish();
    out.inner.write_all(sum.as_ref()).map_err(io(what))?;
    out.inner.flush().map_err(io(what))?;
    counts.bytes = out.bytes + sum.as_ref().len() as u64;
    Ok(counts)
}

/// What a walk through a backup does with each record: tree, key, value.
type Each<'a> = dyn FnMut(&str, &[u8], &[u8]) -> std::result::Result<(), String> + 'a;

/// Checks the backup `file` whole: its header and what it holds, or what
/// is wrong with it.
pub fn check(file: &Path) -> std::result::Result<(Header, Counts), String> {
    walk(file, &mut |_, _, _| Ok(()))
}

fn walk(file: &Path, each: &mut Each) -> std::result::Result<(Header, Counts), String> {
    let shown = file.display();
    let opened = std::fs::File::open(file).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let mut input = Hashed {
        input: BufReader::new(opened),
        sha: ring::digest::Context::new(&ring::digest::SHA256),
        bytes: 0,
        cut: format!("{shown} ends too soon: the backup was cut short"),
    };
    if input.take(MAGIC.len()).ok().as_deref() != Some(MAGIC) {
        return Err(format!("{shown} is not a kagi backup"));
    }
    let line = input.line()?;
    let header: Header = decode(&line).map_err(|e| format!("{shown}: its header: {e}"))?;
    if header.backup != LAYOUT {
        return Err(format!(
            "{shown} is laid out as backup version {}, which this kagi ({}) does not read: restore it with the kagi that made it ({})",
            header.backup,
            env!("CARGO_PKG_VERSION"),
            header.kagi
        ));
    }
    if let Some(problem) = format_problem(header.format.to_string().as_bytes()) {
        return Err(format!(
            "the backup {shown} cannot be restored by this kagi: {problem}"
        ));
    }
    let known: Vec<&str> = Trees::NAMES.to_vec();
    if let Some(unknown) = header.trees.iter().find(|t| !known.contains(&t.as_str())) {
        return Err(format!(
            "{shown} holds a tree `{unknown}` this kagi does not know: restore it with the kagi that made it ({})",
            header.kagi
        ));
    }
    let mut counts = Counts::default();
    loop {
        let number = input.take(1)?[0];
        if number == 0 {
            break;
        }
        let tree = header
            .trees
            .get(usize::from(number) - 1)
            .ok_or_else(|| format!("{shown}: a record of tree {number}, which it does not list"))?;
        let mut parts = [Vec::new(), Vec::new()];
        for part in &mut parts {
            let len = u32::from_be_bytes(input.take(4)?.try_into().unwrap_or_default());
            if len > MAX_PART {
                return Err(format!(
                    "{shown}: a record of {len} bytes: not a kagi backup"
                ));
            }
            *part = input.take(len as usize)?;
        }
        each(tree, &parts[0], &parts[1])?;
        *counts.records.entry(tree.clone()).or_default() += 1;
    }
    let (expected, bytes) = (input.sha.clone().finish(), input.bytes);
    let mut sum = [0u8; 32];
    let mut input = input.input;
    input
        .read_exact(&mut sum)
        .map_err(|_| format!("{shown} ends too soon: the backup was cut short"))?;
    if sum != expected.as_ref() {
        return Err(format!(
            "{shown} does not match its checksum: it was changed or damaged after it was made"
        ));
    }
    if input.read(&mut [0u8; 1]).map_err(|e| e.to_string())? != 0 {
        return Err(format!(
            "{shown} goes on after its checksum: not a kagi backup"
        ));
    }
    counts.bytes = bytes + 32;
    Ok((header, counts))
}

/// A reader that hashes and counts what it reads.
struct Hashed {
    input: BufReader<std::fs::File>,
    sha: ring::digest::Context,
    bytes: u64,
    /// What to say when the file ends too soon.
    cut: String,
}

impl Hashed {
    fn take(&mut self, n: usize) -> std::result::Result<Vec<u8>, String> {
        let mut buf = vec![0u8; n];
        self.input
            .read_exact(&mut buf)
            .map_err(|_| self.cut.clone())?;
        self.sha.update(&buf);
        self.bytes += n as u64;
        Ok(buf)
    }

    /// A line of at most 64 KiB, its end included.
    fn line(&mut self) -> std::result::Result<Vec<u8>, String> {
        let mut line = Vec::new();
        (&mut self.input)
            .take(64 * 1024)
            .read_until(b'\n', &mut line)
            .map_err(|_| self.cut.clone())?;
        self.sha.update(&line);
        self.bytes += line.len() as u64;
        Ok(line)
    }
}

/// Records written into a new database, a batch per tree at a time: the
/// one way a restore (from a backup's file) and a migration (from sled's
/// trees into PostgreSQL's) fill the database they make, so that both
/// keep and leave out the same records and go on from the same ids.
pub(super) struct Filling<'a> {
    target: &'a Trees,
    /// Whether the records come with the key file they were written under:
    /// without it, those that need it (`NEED_THE_KEY`) are left out.
    with_key: bool,
    batches: BTreeMap<String, Batch>,
    pending: usize,
    /// The records written, per tree.
    pub written: Counts,
}

/// Records a filling holds before it writes them.
const FILL_BATCH: usize = 10_000;

impl<'a> Filling<'a> {
    pub(super) fn new(target: &'a Trees, with_key: bool) -> Filling<'a> {
        Filling {
            target,
            with_key,
            batches: BTreeMap::new(),
            pending: 0,
            written: Counts::default(),
        }
    }

    /// Takes a record of the tree named `tree` (`Trees::NAMES`).
    pub(super) fn put(&mut self, tree: &str, key: &[u8], value: &[u8]) -> Result<()> {
        let keyed = NEED_THE_KEY.contains(&tree);
        // The source's id base is replaced by its next id (`finish`).
        if (keyed && !self.with_key) || (tree == "meta" && key == b"id_base") {
            return Ok(());
        }
        if self.target.tree_named(tree).is_none() {
            return Err(StoreError::corrupt(format!("no tree named {tree}")));
        }
        self.batches
            .entry(tree.to_string())
            .or_default()
            .insert(key, value);
        *self.written.records.entry(tree.to_string()).or_default() += 1;
        self.written.bytes += (key.len() + value.len()) as u64;
        self.pending += 1;
        if self.pending == FILL_BATCH {
            self.write()?;
        }
        Ok(())
    }

    fn write(&mut self) -> Result<()> {
        self.pending = 0;
        for (name, batch) in std::mem::take(&mut self.batches) {
            if let Some(tree) = self.target.tree_named(&name) {
                tree.apply_batch(batch)?;
            }
        }
        Ok(())
    }

    /// Writes what is left, and the id base: every id the new database
    /// gives is above `next_id`, the next one the source would have given,
    /// so that no new record takes the id of one copied.
    pub(super) fn finish(mut self, next_id: u64) -> Result<Counts> {
        self.write()?;
        self.target.meta.insert("id_base", &next_id.to_be_bytes())?;
        self.target.db.flush()?;
        Ok(self.written)
    }
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    pub header: Header,
    pub counts: Counts,
    /// The audit trail's check: Ok(entries) or where it broke.
    pub audit: std::result::Result<usize, String>,
    /// Without the key file: what was chained anew and what dropped.
    pub without_key: Option<String>,
}

/// Builds a new database in `dir` from the backup `file`. `key_text`: the
/// text of the key file the backup was made under (checked against the
/// backup's fingerprint and written to `key_file`), or None to restore
/// without it under new keys. `dir` must not hold a database, nor
/// `key_file` exist.
pub fn restore(
    file: &Path,
    dir: &Path,
    key_file: &Path,
    key_text: Option<&str>,
    now: u64,
) -> std::result::Result<Restored, String> {
    if dir.join("conf").exists() || dir.join("db").exists() {
        return Err(format!(
            "{} holds a database already: restore into a new directory (kagi never writes a backup over a database)",
            dir.display()
        ));
    }
    if key_file.exists() {
        return Err(format!(
            "{} exists already: restore into a new directory, or move that key file away",
            key_file.display()
        ));
    }
    // The whole file is checked before the database is made.
    let (header, _) = check(file)?;
    let keys = match key_text {
        Some(text) => {
            let keys =
                Keys::from_file(text).map_err(|e| format!("the key file given is not one: {e}"))?;
            if keys.fingerprint() != header.key {
                return Err(
                    "the key file given is not the one this backup was made under: with it, the \
                     backup's codes, links, mail and audit trail would not open. Give the key \
                     file the server had when the backup was made, or restore --without-key"
                        .into(),
                );
            }
            keys
        }
        None => Keys::generate(None),
    };
    crate::files::private_dir(dir)?;
    let t = Trees::open(dir, 16 << 20).map_err(|e| e.to_string())?;
    let fail = |e: StoreError| e.to_string();
    let mut filling = Filling::new(&t, key_text.is_some());
    // Read again to write: a file changed since fails its checksum at the
    // end, and the directory is then left to be removed.
    let (header, counts) = walk(file, &mut |tree, key, value| {
        filling.put(tree, key, value).map_err(fail)
    })?;
    filling.finish(header.next_id).map_err(fail)?;
    let without_key = match key_text {
        Some(_) => None,
        None => Some(restore_without_key(&t, &keys).map_err(fail)?),
    };
    t.db.flush().map_err(|e| e.to_string())?;
    drop(t);
    crate::files::write_private(
        key_file,
        &key_text.map_or_else(|| keys.to_file(), str::to_string),
    )
    .map_err(|e| format!("cannot write the key file {}: {e}", key_file.display()))?;
    let store = open_when_free(dir, key_file)?;
    let audit = store.verify_audit().map_err(fail)?;
    let outcome = format!(
        "restored from a backup made at {} by kagi {}{}",
        header.made,
        header.kagi,
        if key_text.is_none() {
            " without its key file: the trail is chained anew from here"
        } else {
            ""
        }
    );
    store
        .audit(&super::AuditEvent {
            time: now,
            event: "restored".into(),
            client: "local".into(),
            outcome,
            ..Default::default()
        })
        .and_then(|()| store.flush())
        .map_err(fail)?;
    Ok(Restored {
        header,
        counts,
        audit,
        without_key,
    })
}

/// Without the key file: operators keep their names and passwords but
/// lose their second factor (sealed under the old key) and must be reset;
/// the audit trail, whose links cannot be checked, is chained anew.
fn restore_without_key(t: &Trees, keys: &Keys) -> Result<String> {
    let mut operators = 0;
    for entry in t.operators.iter() {
        let (key, bytes) = entry?;
        let mut operator: Operator = decode(&bytes)?;
        operator.totp_sealed = None;
        operator.enrolment = None;
        operator.last_totp_step = None;
        operator.generation += 1;
        t.operators.insert(key, encode(&operator)?)?;
        operators += 1;
    }
    let chained = t.rechain_audit(keys, None)?;
    Ok(format!(
        "{chained}; {operators} operators must be given a new enrolment link (`kagi operator reset NAME`): their second factor was sealed under the old key; flows, sessions, codes, links and mail were not restored"
    ))
}

/// Opens the database just built, once sled has let go of it.
fn open_when_free(dir: &Path, key_file: &Path) -> std::result::Result<Store, String> {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        match Store::open(dir, 16 << 20, key_file) {
            Ok(store) => return Ok(store),
            Err(_) if Instant::now() < until => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{temp_sled_store, temp_store};
    use crate::store::AuditEvent;
    use std::sync::Arc;

    fn event(n: u64) -> AuditEvent {
        AuditEvent {
            time: n,
            event: "login".into(),
            client: "127.0.0.1".into(),
            outcome: "ok".into(),
            ..Default::default()
        }
    }

    fn backup_file(store: &Store) -> std::path::PathBuf {
        let file = std::env::temp_dir().join(format!(
            "kagi-backup-test-{}.kagi",
            crate::secret::hex(&crate::secret::random_bytes::<8>())
        ));
        let out = std::fs::File::create(&file).unwrap();
        store.backup(out, 1).unwrap();
        file
    }

    #[test]
    fn every_tree_of_the_database_is_in_a_backup() {
        let (store, dir) = temp_store();
        let t = store.trees().unwrap();
        let names = match &t.db {
            crate::store::Engine::Sled(db) => db.tree_names(),
            // In PostgreSQL a tree is a number in NAMES, nothing more.
            crate::store::Engine::Postgres(_) => Vec::new(),
        };
        for name in names {
            let name = String::from_utf8_lossy(&name).into_owned();
            assert!(
                name == "__sled__default" || Trees::NAMES.contains(&name.as_str()),
                "the tree {name} is left out of backups"
            );
        }
        for name in Trees::NAMES {
            assert!(t.tree_named(name).is_some(), "{name}");
        }
        drop(t);
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_backup_waits_for_a_call_in_progress_and_holds_new_ones_back() {
        let (store, dir) = temp_sled_store();
        let store = Arc::new(store);
        let (began, wrote_first) = (std::sync::mpsc::channel(), std::sync::mpsc::channel());
        // A call that writes twice, the backup asked for between the two.
        let call = {
            let store = store.clone();
            std::thread::spawn(move || {
                let t = store.trees().unwrap();
                t.accounts.insert("first", &b"1"[..]).unwrap();
                wrote_first.0.send(()).unwrap();
                began.1.recv().unwrap();
                std::thread::sleep(Duration::from_millis(200));
                t.accounts.insert("second", &b"2"[..]).unwrap();
            })
        };
        wrote_first.1.recv().unwrap();
        let copy = {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut out = Vec::new();
                began.0.send(()).unwrap();
                store.backup(&mut out, 1).unwrap();
                out
            })
        };
        let out = copy.join().unwrap();
        call.join().unwrap();
        let has = |key: &[u8]| out.windows(key.len()).any(|w| w == key);
        assert!(has(b"first") && has(b"second"), "the backup split a call");
        // New calls go on once it is done.
        store.audit(&event(2)).unwrap();
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_restored_database_has_every_record_and_goes_on_from_the_backups_ids() {
        let (store, dir) = temp_sled_store();
        for n in 0..3 {
            store.audit(&event(n)).unwrap();
        }
        let last_id = store.next_id().unwrap();
        let file = backup_file(&store);
        let key_text = std::fs::read_to_string(crate::store::default_key_file(&dir)).unwrap();
        drop(store);
        let into = dir.with_extension("restored");
        let key_file = crate::store::default_key_file(&into);
        let restored = restore(&file, &into, &key_file, Some(&key_text), 5).unwrap();
        assert_eq!(restored.audit, Ok(3));
        assert_eq!(restored.counts.of("audit"), 3);
        assert!(restored.without_key.is_none());
        let store = open_when_free(&into, &key_file).unwrap();
        assert!(store.next_id().unwrap() > last_id, "ids go on, never again");
        assert_eq!(
            store.verify_audit().unwrap(),
            Ok(4),
            "the restore is audited"
        );
        drop(store);
        for d in [dir, into] {
            let _ = std::fs::remove_dir_all(d);
        }
        let _ = std::fs::remove_file(file);
    }
}
