//! PostgreSQL over TLS: a real cluster with `ssl=on` (`scripts/postgres`
//! with `PG_TLS_DIR`, listening on 127.0.0.1), its certificate from a test
//! CA of `tests/certs.py` (the maker the SMTP tests use). kagi verifies the
//! server's certificate and name against `store.postgres.ca_file`; the
//! server's own view (`pg_stat_ssl`, read over its Unix socket) shows
//! which of its connections are encrypted.

use crate::support::{admin_get, python, scratch_path, spawn_with};
use kagi::config::{PostgresConfig, StoreEngine};
use std::path::{Path, PathBuf};
use std::process::Command;

const CERTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/certs.py");

/// A new test CA and a certificate it signed for localhost and
/// 127.0.0.1, in `dir`: ca.pem, server.pem, server.key.
fn make_certs(dir: &Path) {
    let made = Command::new(python())
        .arg(CERTS)
        .arg(dir)
        .status()
        .expect("python tests/certs.py");
    assert!(made.success(), "cannot make the test certificates");
}

/// A private cluster with TLS on, its certificate signed by the test CA
/// `ca`; `other_ca` is a second test CA, which signed nothing of it. On
/// drop the cluster is stopped (by its postmaster's PID) and everything
/// removed.
struct Cluster {
    root: PathBuf,
    cluster: crate::support::Cluster,
    port: u16,
    ca: PathBuf,
    other_ca: PathBuf,
}

impl Cluster {
    fn start() -> Cluster {
        let root = scratch_path("pgtls");
        // The cluster runs as `nobody` when the tests run as root, and must
        // reach the certificates through this directory, whatever umask
        // another test left the process with (kagi's start sets 077).
        std::fs::create_dir_all(&root).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (certs, other) = (root.join("certs"), root.join("other-ca"));
        make_certs(&certs);
        make_certs(&other);
        let cluster = crate::support::Cluster::start_with_tls("pgtls-cluster", Some(&certs));
        Cluster {
            port: cluster.port(),
            cluster,
            root,
            ca: certs.join("ca.pem"),
            other_ca: other.join("ca.pem"),
        }
    }

    /// kagi's settings for `database` over TCP: the URL's host `host`
    /// (the name the certificate must carry), the connection to 127.0.0.1,
    /// and `query` on top.
    fn over_tcp(
        &self,
        database: &str,
        host: &str,
        query: &str,
        ca_file: Option<&Path>,
    ) -> PostgresConfig {
        PostgresConfig {
            url: Some(format!(
                "postgresql://kagi@{host}:{}/{database}?hostaddr=127.0.0.1&{query}",
                self.port
            )),
            ca_file: ca_file.map(Path::to_path_buf),
        }
    }

    /// One row of `sql`'s answer, as the cluster's administrator over its
    /// Unix socket.
    fn psql(&self, sql: &str) -> String {
        let out = Command::new("psql")
            .arg("-h")
            .arg(self.cluster.dir.join("socket"))
            .args(["-p", &self.port.to_string(), "-U", "kagi", "-d", "kagi"])
            .args(["-X", "-A", "-t", "-c", sql])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// The connections to `database` other than psql's own: how many
    /// are encrypted, and how many are not.
    fn connections(&self, database: &str) -> (u32, u32) {
        let counts = self.psql(&format!(
            "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl) \
             FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
             WHERE a.datname = '{database}' AND a.pid <> pg_backend_pid()"
        ));
        let (tls, clear) = counts.split_once('|').expect("two counts");
        (tls.parse().unwrap(), clear.parse().unwrap())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // The cluster itself is stopped by its own guard.
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Why a store on `db` did not open (None if it did): what an operator
/// reads in the log and in `/healthz`.
fn refusal(db: &PostgresConfig) -> Option<String> {
    let dir = scratch_path("pgtls-store");
    let key_file = kagi::store::default_key_file(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = kagi::store::Store::open_postgres_or_wait(db, &dir, &key_file)
        .expect("an unreachable database is waited for, not an error");
    let why = store.unavailable();
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    why
}

#[test]
fn kagi_serves_from_postgres_over_verified_tls_and_refuses_a_certificate_it_cannot_verify() {
    let cluster = Cluster::start();
    let ca = cluster.ca.clone();

    // The right CA and verify-full: kagi starts on the database and serves.
    let right = cluster.over_tcp("kagi", "localhost", "sslmode=verify-full", Some(&ca));
    let server = spawn_with(|c| {
        c.store.engine = StoreEngine::Postgres;
        c.store.postgres = right.clone();
    });
    let health = admin_get(server.addr, &server.dir, "/healthz");
    assert_eq!(health.status, 200, "{}", health.body);
    let login = server.client().get("/kaigo/login");
    assert_eq!(login.status, 200, "{}", login.body);
    assert!(login.body.contains("name=\"password\""), "{}", login.body);
    // Every connection kagi holds is encrypted, as the server sees it.
    let (tls, clear) = cluster.connections("kagi");
    assert!(tls >= 1, "kagi holds no encrypted connection");
    assert_eq!(clear, 0, "kagi holds a connection in the clear");
    drop(server);

    // A certificate of another CA: the store stays closed (every page is
    // 503) and says what is wrong with the certificate, and whom kagi
    // trusts.
    let wrong = cluster.over_tcp(
        "kagi",
        "localhost",
        "sslmode=verify-full",
        Some(&cluster.other_ca),
    );
    let server = spawn_with(|c| {
        c.store.engine = StoreEngine::Postgres;
        c.store.postgres = wrong.clone();
    });
    assert_eq!(server.client().get("/kaigo/login").status, 503);
    let health = admin_get(server.addr, &server.dir, "/healthz");
    assert_eq!(health.status, 503, "{}", health.body);
    let reason: serde_json::Value = serde_json::from_str(&health.body).unwrap();
    let reason = reason["reason"].as_str().unwrap_or_default().to_string();
    // (BadSignature: both test CAs have one name, so the other CA is
    // taken for the issuer and its signature does not match.)
    assert!(
        reason.contains("the server's certificate is refused: BadSignature"),
        "{reason}"
    );
    assert!(
        reason.contains(&cluster.other_ca.display().to_string()),
        "{reason}"
    );
    drop(server);

    // The right CA, but the URL names a host the certificate is not for.
    let why =
        refusal(&cluster.over_tcp("kagi", "kagi-db.invalid", "sslmode=verify-full", Some(&ca)))
            .expect("a certificate for another name is refused");
    assert!(
        why.contains("certificate not valid for name \"kagi-db.invalid\""),
        "{why}"
    );

    // No sslmode and no CA file (prefer, the public roots): a server that
    // offers TLS is verified all the same, and this one is refused.
    let why = refusal(&cluster.over_tcp("kagi", "localhost", "", None))
        .expect("a certificate no public root signed is refused");
    assert!(why.contains("UnknownIssuer"), "{why}");
    assert!(why.contains("public web roots"), "{why}");

    // sslmode=disable is the clear, and the server's view shows it: the
    // count above could have seen one. (A database of its own: the first
    // one's keys went with that server's data directory.)
    cluster.psql("CREATE DATABASE clear");
    let dir = scratch_path("pgtls-clear");
    std::fs::create_dir_all(&dir).unwrap();
    let store = kagi::store::Store::open_postgres_or_wait(
        &cluster.over_tcp("clear", "localhost", "sslmode=disable", None),
        &dir,
        &kagi::store::default_key_file(&dir),
    )
    .unwrap();
    let (_, clear) = cluster.connections("clear");
    assert!(
        clear >= 1,
        "sslmode=disable is not in the clear: {:?}",
        store.unavailable()
    );
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}
