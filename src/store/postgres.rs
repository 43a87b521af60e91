//! The PostgreSQL engine: every tree is the rows of one table with its
//! tree's number, so that several kagi instances share one database. Each
//! operation is one statement (a compare-and-swap is one `UPDATE … WHERE
//! value = old`), or one transaction for what must happen together; every
//! commit is durable before it returns, so `flush` has nothing to do.
//!
//! Connections come from a small pool; one that fails is dropped, and the
//! call fails as the database being closed does (503, tried again later),
//! so that kagi rides out PostgreSQL restarting without a restart of its own.
//!
//! Over TCP they use TLS as the URL's `sslmode` says (`PostgresTls`):
//! rustls through `crate::tls`, the server's certificate and name always
//! verified, against `store.postgres.ca_file` or the public web roots. A
//! certificate refused is a connection refused: the store stays closed
//! (503), saying why, and tries again each second, reading the CA file
//! anew.

use super::kv::{Batch, CompareAndSwapError, KeyRange, Tree};
use super::{Result, StoreError};
use crate::config::{PostgresConfig, PostgresTls};
use sled::IVec;
use std::collections::{HashMap, VecDeque};
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The schema, one step per format of the tables; applied in order at
/// start, each in its own transaction, under an advisory lock so that
/// instances starting together apply each step once.
const MIGRATIONS: [&str; 1] = ["
    CREATE TABLE kagi_kv (
        tree smallint NOT NULL,
        key bytea NOT NULL,
        value bytea NOT NULL,
        PRIMARY KEY (tree, key)
    );
    CREATE SEQUENCE kagi_ids;
"];

/// The advisory locks kagi takes: the schema's migration, and the work
/// that one instance at a time does (`Lock`).
const MIGRATION_LOCK: i64 = 0x6b61_6769_0001;

/// What one instance at a time does, across every instance on a database.
#[derive(Clone, Copy, Debug)]
pub enum Lock {
    /// Appending to (or trimming) the audit chain: one writer, so that it
    /// never forks.
    Audit,
    /// A sweep round: one instance sweeps, the others skip theirs.
    Sweep,
    /// Making the keys and the audit chain's anchor of a new database.
    Keys,
}

impl Lock {
    /// Its key among PostgreSQL's advisory locks.
    fn id(self) -> i64 {
        MIGRATION_LOCK
            + match self {
                Lock::Audit => 1,
                Lock::Sweep => 2,
                Lock::Keys => 3,
            }
    }
}

/// What one pool of connections reaches.
pub struct Pool {
    config: postgres::Config,
    /// None with `sslmode=disable`.
    tls: Option<Tls>,
    idle: Mutex<Vec<Conn>>,
}

/// A connection and the statements prepared on it.
struct Conn {
    client: postgres::Client,
    prepared: HashMap<&'static str, postgres::Statement>,
}

impl Conn {
    fn statement(
        &mut self,
        sql: &'static str,
    ) -> std::result::Result<postgres::Statement, postgres::Error> {
        if let Some(s) = self.prepared.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.prepared.insert(sql, s.clone());
        Ok(s)
    }
}

/// A PostgreSQL failure as the store reports it: the connection lost or
/// refused is the database being closed (waited out); anything else is
/// not.
fn failure(e: postgres::Error) -> StoreError {
    let message = match e.as_db_error() {
        Some(db) => format!("PostgreSQL: {}: {}", db.severity(), db.message()),
        None => {
            // The crate's own words say only what failed ("error performing
            // TLS handshake"); the why is in its sources.
            let mut message = format!("PostgreSQL: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            message
        }
    };
    match e.code() {
        // A statement's own error: the database is there.
        Some(code) if !code.code().starts_with("08") && !code.code().starts_with("57") => {
            StoreError::other(message)
        }
        _ => StoreError::waiting(message, None),
    }
}

impl Pool {
    /// Connects to the database `db` names and brings the schema up to
    /// date, or refuses a database whose schema is newer than this kagi's.
    pub fn open(db: &PostgresConfig) -> Result<Arc<Pool>> {
        let (mut config, tls) = db
            .connection()
            .map_err(|e| StoreError::refused(e.to_string()))?;
        // A database host that does not answer must not hold a request
        // (and the request thread) for the system's TCP timeout of minutes:
        // 5 s, unless the URL says otherwise (`connect_timeout`).
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(5));
        }
        let tls = match tls {
            PostgresTls::Off => None,
            PostgresTls::Preferred | PostgresTls::Required => Some(Tls::new(db)?),
        };
        let pool = Arc::new(Pool {
            config,
            tls,
            idle: Mutex::new(Vec::new()),
        });
        pool.with(|c| migrate(&mut c.client))?;
        let (found, known) = schema_versions(&pool)?;
        if found > known {
            return Err(StoreError::refused(format!(
                "the PostgreSQL schema is at version {found}, made by a newer kagi; this kagi ({}) knows versions up to {known}: run the newer kagi",
                env!("CARGO_PKG_VERSION")
            )));
        }
        Ok(pool)
    }

    fn connect(&self) -> Result<Conn> {
        let client = match &self.tls {
            Some(tls) => self.config.connect(tls.clone()),
            None => self.config.connect(postgres::NoTls),
        }
        .map_err(failure)?;
        Ok(Conn {
            client,
            prepared: HashMap::new(),
        })
    }

    /// Runs `f` on a connection of the pool (made when none is idle); a
    /// connection that failed is not put back.
    fn with<R>(
        &self,
        f: impl FnOnce(&mut Conn) -> std::result::Result<R, postgres::Error>,
    ) -> Result<R> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut conn = match idle {
            Some(c) if !c.client.is_closed() => c,
            _ => self.connect()?,
        };
        let done = f(&mut conn);
        if !conn.client.is_closed() {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(conn);
        }
        done.map_err(failure)
    }

    /// A fresh id from the shared sequence.
    pub fn generate_id(&self) -> Result<u64> {
        self.with(|c| {
            let s = c.statement("SELECT nextval('kagi_ids')")?;
            let id: i64 = c.client.query_one(&s, &[])?.get(0);
            Ok(id as u64)
        })
    }

    /// Runs `f` while holding the advisory lock `lock`: one holder across
    /// every instance at a time. With `wait`, waits for it; without, runs
    /// nothing (None) when another holds it. The lock is held on a
    /// connection of its own, let go after `f` (or with the connection,
    /// should this instance die).
    pub fn exclusively<R>(
        &self,
        lock: Lock,
        wait: bool,
        f: impl FnOnce() -> Result<R>,
    ) -> Result<Option<R>> {
        let lock = lock.id();
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut conn = match idle {
            Some(c) if !c.client.is_closed() => c,
            _ => self.connect()?,
        };
        let taken = if wait {
            conn.client
                .execute("SELECT pg_advisory_lock($1)", &[&lock])
                .map(|_| true)
        } else {
            conn.client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&lock])
                .map(|row| row.get::<_, bool>(0))
        };
        let taken = taken.map_err(failure)?;
        let done = if taken { f().map(Some) } else { Ok(None) };
        let unlocked = !taken
            || conn
                .client
                .execute("SELECT pg_advisory_unlock($1)", &[&lock])
                .is_ok();
        if unlocked && !conn.client.is_closed() {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(conn);
        }
        done
    }

    /// The tree numbered `number`.
    pub fn tree(self: &Arc<Pool>, number: i16) -> PgTree {
        PgTree {
            pool: self.clone(),
            number,
        }
    }
}

/// TLS for the pool's connections: a rustls client that verifies the
/// server's certificate and name, as tokio-postgres asks for one. Written
/// here rather than taken from tokio-postgres-rustls, which would add
/// x509-cert and its DER crates to the build for channel binding alone.
#[derive(Clone)]
struct Tls {
    connector: tokio_rustls::TlsConnector,
    /// For the message when the server's certificate is refused.
    ca_file: Option<PathBuf>,
}

impl Tls {
    /// Reads the CA file (at every open, so that a new one is taken up
    /// without a restart).
    fn new(db: &PostgresConfig) -> Result<Tls> {
        let mut config = crate::tls::client_config(db.ca_file.as_deref(), "store.postgres.ca_file")
            .map_err(|e| StoreError::waiting(e, None))?;
        // What PostgreSQL 17 checks of a client that starts TLS at once
        // (`sslnegotiation=direct`); older servers ignore it.
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(Tls {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            ca_file: db.ca_file.clone(),
        })
    }
}

impl postgres::tls::MakeTlsConnect<postgres::Socket> for Tls {
    type Stream = TlsStream;
    type TlsConnect = TlsConnect;
    type Error = std::convert::Infallible;

    fn make_tls_connect(&mut self, host: &str) -> std::result::Result<TlsConnect, Self::Error> {
        // Over a Unix socket there is no host, and the server answers the
        // request for TLS with no: the name is checked when it is needed.
        Ok(TlsConnect {
            tls: self.clone(),
            host: host.to_string(),
        })
    }
}

/// One handshake to come, with the host name the URL gave.
struct TlsConnect {
    tls: Tls,
    host: String,
}

type Handshake =
    std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<TlsStream>> + Send>>;

impl postgres::tls::TlsConnect<postgres::Socket> for TlsConnect {
    type Stream = TlsStream;
    type Error = std::io::Error;
    type Future = Handshake;

    fn connect(self, socket: postgres::Socket) -> Handshake {
        Box::pin(async move {
            let name = rustls::pki_types::ServerName::try_from(self.host.clone()).map_err(|e| {
                std::io::Error::other(format!("`{}` is no host name to verify: {e}", self.host))
            })?;
            match self.tls.connector.connect(name, socket).await {
                Ok(stream) => Ok(TlsStream(stream)),
                Err(e) => Err(
                    match crate::tls::certificate_problem(
                        &e,
                        self.tls.ca_file.as_deref(),
                        "store.postgres.ca_file",
                    ) {
                        Some(problem) => std::io::Error::other(problem),
                        None => e,
                    },
                ),
            }
        })
    }
}

/// A connection over TLS. It offers no channel binding (SCRAM's `-PLUS`):
/// the server's certificate is verified instead, and `channel_binding`
/// stays at its default, `prefer`.
struct TlsStream(tokio_rustls::client::TlsStream<postgres::Socket>);

impl postgres::tls::TlsStream for TlsStream {
    fn channel_binding(&self) -> postgres::tls::ChannelBinding {
        postgres::tls::ChannelBinding::none()
    }
}

impl tokio::io::AsyncRead for TlsStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for TlsStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Applies the migrations the database lacks, under the migration lock.
fn migrate(client: &mut postgres::Client) -> std::result::Result<(), postgres::Error> {
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])?;
    let done = (|| {
        client
            .batch_execute("CREATE TABLE IF NOT EXISTS kagi_schema (version integer NOT NULL)")?;
        let version: i32 = client
            .query_one("SELECT coalesce(max(version), 0) FROM kagi_schema", &[])?
            .get(0);
        for (step, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
            let mut tx = client.transaction()?;
            tx.batch_execute(sql)?;
            tx.execute("INSERT INTO kagi_schema VALUES ($1)", &[&(step as i32 + 1)])?;
            tx.commit()?;
        }
        Ok(version)
    })();
    client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])?;
    done.map(drop)
}

/// The schema version the database is at, and the newest this kagi knows.
pub fn schema_versions(pool: &Pool) -> Result<(i32, i32)> {
    let version = pool.with(|c| {
        Ok(c.client
            .query_one("SELECT coalesce(max(version), 0) FROM kagi_schema", &[])?
            .get::<_, i32>(0))
    })?;
    Ok((version, MIGRATIONS.len() as i32))
}

/// The database `url` names, as logs and errors show it: without its
/// password.
pub fn shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("…"));
            }
            format!("at {u}")
        }
        Err(_) => "at the configured PostgreSQL".into(),
    }
}

/// For the tests, run once on each engine: when `KAGI_TEST_ENGINE` is
/// `postgres`, the URL of the database named after `name` on the cluster
/// whose URL `KAGI_TEST_POSTGRES` gives (made anew when `fresh`); None
/// when the tests run on sled.
pub fn test_database(name: &str, fresh: bool) -> Option<String> {
    if std::env::var("KAGI_TEST_ENGINE").ok()? != "postgres" {
        return None;
    }
    let admin = std::env::var("KAGI_TEST_POSTGRES")
        .expect("KAGI_TEST_ENGINE=postgres needs KAGI_TEST_POSTGRES, the URL of a cluster (scripts/postgres start DIR)");
    let digest = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
    let database = format!("kagi_{}", crate::secret::hex(&digest.as_ref()[..10]));
    if fresh {
        let mut client = postgres::Client::connect(&admin, postgres::NoTls)
            .unwrap_or_else(|e| panic!("the test cluster at {admin}: {e}"));
        for sql in [
            format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
            format!("CREATE DATABASE {database}"),
        ] {
            client
                .batch_execute(&sql)
                .unwrap_or_else(|e| panic!("cannot make the test database {database}: {e:?}"));
        }
    }
    let mut url = url::Url::parse(&admin).expect("KAGI_TEST_POSTGRES is a URL");
    url.set_path(&format!("/{database}"));
    Some(url.to_string())
}

/// One tree: the rows of `kagi_kv` with its number.
#[derive(Clone)]
pub struct PgTree {
    pool: Arc<Pool>,
    number: i16,
}

const GET: &str = "SELECT value FROM kagi_kv WHERE tree = $1 AND key = $2";
/// The value replaced is read from the statement's snapshot, before it.
const INSERT: &str = "INSERT INTO kagi_kv (tree, key, value) VALUES ($1, $2, $3) \
     ON CONFLICT (tree, key) DO UPDATE SET value = EXCLUDED.value \
     RETURNING (SELECT value FROM kagi_kv WHERE tree = $1 AND key = $2)";
const REMOVE: &str = "DELETE FROM kagi_kv WHERE tree = $1 AND key = $2 RETURNING value";
const INSERT_NEW: &str = "INSERT INTO kagi_kv (tree, key, value) VALUES ($1, $2, $3) \
     ON CONFLICT (tree, key) DO NOTHING";
const REPLACE: &str = "UPDATE kagi_kv SET value = $4 WHERE tree = $1 AND key = $2 AND value = $3";
const REMOVE_IF: &str = "DELETE FROM kagi_kv WHERE tree = $1 AND key = $2 AND value = $3";
const PUT: &str = "INSERT INTO kagi_kv (tree, key, value) VALUES ($1, $2, $3) \
     ON CONFLICT (tree, key) DO UPDATE SET value = EXCLUDED.value";
const DELETE: &str = "DELETE FROM kagi_kv WHERE tree = $1 AND key = $2";

/// Rows an iterator reads at a time.
const PAGE: i64 = 256;

fn bytes(v: Option<Vec<u8>>) -> Option<IVec> {
    v.map(IVec::from)
}

impl PgTree {
    pub fn get(&self, key: &[u8]) -> Result<Option<IVec>> {
        self.pool.with(|c| {
            let s = c.statement(GET)?;
            let row = c.client.query_opt(&s, &[&self.number, &key])?;
            Ok(bytes(row.map(|r| r.get(0))))
        })
    }

    pub fn insert(&self, key: &[u8], value: &[u8]) -> Result<Option<IVec>> {
        self.pool.with(|c| {
            let s = c.statement(INSERT)?;
            let row = c.client.query_one(&s, &[&self.number, &key, &value])?;
            Ok(bytes(row.get(0)))
        })
    }

    pub fn remove(&self, key: &[u8]) -> Result<Option<IVec>> {
        self.pool.with(|c| {
            let s = c.statement(REMOVE)?;
            let row = c.client.query_opt(&s, &[&self.number, &key])?;
            Ok(bytes(row.map(|r| r.get(0))))
        })
    }

    pub fn compare_and_swap(
        &self,
        key: &[u8],
        old: Option<&[u8]>,
        new: Option<IVec>,
    ) -> Result<std::result::Result<(), CompareAndSwapError>> {
        let swapped = self.pool.with(|c| {
            let n = &self.number;
            Ok(match (old, new.as_deref()) {
                (None, Some(new)) => {
                    let s = c.statement(INSERT_NEW)?;
                    c.client.execute(&s, &[n, &key, &new])? == 1
                }
                (Some(old), Some(new)) => {
                    let s = c.statement(REPLACE)?;
                    c.client.execute(&s, &[n, &key, &old, &new])? == 1
                }
                (Some(old), None) => {
                    let s = c.statement(REMOVE_IF)?;
                    c.client.execute(&s, &[n, &key, &old])? == 1
                }
                (None, None) => {
                    let s = c.statement(GET)?;
                    c.client.query_opt(&s, &[n, &key])?.is_none()
                }
            })
        })?;
        if swapped {
            return Ok(Ok(()));
        }
        Ok(Err(CompareAndSwapError {
            current: self.get(key)?,
            proposed: new,
        }))
    }

    pub fn apply_batch(&self, batch: &Batch) -> Result<()> {
        let tree = Tree::Pg(self.clone());
        self.together(&[(&tree, batch)])
    }

    /// Applies a batch per tree in one transaction.
    pub fn together(&self, writes: &[(&Tree, &Batch)]) -> Result<()> {
        self.pool.with(|c| {
            let (put, delete) = (c.statement(PUT)?, c.statement(DELETE)?);
            let mut tx = c.client.transaction()?;
            for (tree, batch) in writes {
                let Tree::Pg(t) = tree else {
                    continue;
                };
                for (key, value) in &batch.writes {
                    let key: &[u8] = key;
                    match value {
                        Some(v) => tx.execute(&put, &[&t.number, &key, &&v[..]])?,
                        None => tx.execute(&delete, &[&t.number, &key])?,
                    };
                }
            }
            tx.commit()
        })
    }

    pub fn len(&self) -> Result<usize> {
        self.pool.with(|c| {
            let s = c.statement("SELECT count(*) FROM kagi_kv WHERE tree = $1")?;
            let n: i64 = c.client.query_one(&s, &[&self.number])?.get(0);
            Ok(n as usize)
        })
    }

    #[cfg(test)]
    pub fn clear(&self) -> Result<()> {
        self.pool.with(|c| {
            let s = c.statement("DELETE FROM kagi_kv WHERE tree = $1")?;
            c.client.execute(&s, &[&self.number])?;
            Ok(())
        })
    }

    pub fn range(&self, (low, high): KeyRange) -> PgIter {
        PgIter {
            tree: self.clone(),
            low,
            high,
            front: VecDeque::new(),
            back: VecDeque::new(),
            front_done: false,
            back_done: false,
        }
    }

    /// The entry with the smallest key (`ascending`) or the greatest: one
    /// row read, not a page.
    pub fn edge(&self, ascending: bool) -> Result<Option<(IVec, IVec)>> {
        let rows = self.rows(&Bound::Unbounded, &Bound::Unbounded, ascending, 1)?;
        Ok(rows.into_iter().next())
    }

    /// Up to `PAGE` rows between `low` and `high`, ascending or not.
    fn page(
        &self,
        low: &Bound<Vec<u8>>,
        high: &Bound<Vec<u8>>,
        ascending: bool,
    ) -> Result<Vec<(IVec, IVec)>> {
        self.rows(low, high, ascending, PAGE)
    }

    /// Up to `limit` rows between `low` and `high`, ascending or not.
    fn rows(
        &self,
        low: &Bound<Vec<u8>>,
        high: &Bound<Vec<u8>>,
        ascending: bool,
        limit: i64,
    ) -> Result<Vec<(IVec, IVec)>> {
        let mut sql = String::from("SELECT key, value FROM kagi_kv WHERE tree = $1");
        let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> = vec![&self.number];
        // Each bound as a condition on the key: (bound, its operator when
        // included, when excluded).
        let bounds = [(low, ">=", ">"), (high, "<=", "<")];
        let keys: Vec<(&[u8], &str)> = bounds
            .iter()
            .filter_map(|(bound, included, excluded)| match bound {
                Bound::Included(k) => Some((k.as_slice(), *included)),
                Bound::Excluded(k) => Some((k.as_slice(), *excluded)),
                Bound::Unbounded => None,
            })
            .collect();
        for (key, operator) in &keys {
            params.push(key);
            sql.push_str(&format!(" AND key {operator} ${}", params.len()));
        }
        sql.push_str(if ascending {
            " ORDER BY key LIMIT "
        } else {
            " ORDER BY key DESC LIMIT "
        });
        sql.push_str(&limit.to_string());
        self.pool.with(|c| {
            let rows = c.client.query(sql.as_str(), &params)?;
            Ok(rows
                .into_iter()
                .map(|r| {
                    (
                        IVec::from(r.get::<_, Vec<u8>>(0)),
                        IVec::from(r.get::<_, Vec<u8>>(1)),
                    )
                })
                .collect())
        })
    }
}

/// Entries of a range, read a page at a time from whichever end is asked.
/// `low` and `high` move past what either end has returned, so the two
/// ends never return an entry twice.
pub struct PgIter {
    tree: PgTree,
    low: Bound<Vec<u8>>,
    high: Bound<Vec<u8>>,
    front: VecDeque<(IVec, IVec)>,
    back: VecDeque<(IVec, IVec)>,
    front_done: bool,
    back_done: bool,
}

fn below(key: &[u8], high: &Bound<Vec<u8>>) -> bool {
    match high {
        Bound::Included(h) => key <= h.as_slice(),
        Bound::Excluded(h) => key < h.as_slice(),
        Bound::Unbounded => true,
    }
}

fn above(key: &[u8], low: &Bound<Vec<u8>>) -> bool {
    match low {
        Bound::Included(l) => key >= l.as_slice(),
        Bound::Excluded(l) => key > l.as_slice(),
        Bound::Unbounded => true,
    }
}

impl PgIter {
    /// The next entry from the front (`ascending`) or the back: from the
    /// page read last at that end, or a new page, and never one the other
    /// end has returned already.
    fn take(&mut self, ascending: bool) -> Option<Result<(IVec, IVec)>> {
        let (buffer, done) = if ascending {
            (&mut self.front, &mut self.front_done)
        } else {
            (&mut self.back, &mut self.back_done)
        };
        if buffer.is_empty() && !*done {
            match self.tree.page(&self.low, &self.high, ascending) {
                Ok(rows) => {
                    *done = (rows.len() as i64) < PAGE;
                    buffer.extend(rows);
                }
                Err(e) => {
                    *done = true;
                    return Some(Err(e));
                }
            }
        }
        let (key, value) = buffer.pop_front()?;
        let inside = if ascending {
            below(&key, &self.high)
        } else {
            above(&key, &self.low)
        };
        if !inside {
            buffer.clear();
            *done = true;
            return None;
        }
        let past = Bound::Excluded(key.to_vec());
        if ascending {
            self.low = past;
        } else {
            self.high = past;
        }
        Some(Ok((key, value)))
    }
}

impl Iterator for PgIter {
    type Item = Result<(IVec, IVec)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.take(true)
    }
}

impl DoubleEndedIterator for PgIter {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.take(false)
    }
}
