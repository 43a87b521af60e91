//! The commands beside `serve`: `mail` asks the running server, `audit`,
//! `import` and `migrate` work on a stopped server's database, and the
//! demo's welcome.

use crate::config::Config;
use crate::server::Running;
use crate::store::{self, Store};
use crate::{cli, demo, files, import, Error};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `kagi mail list` and `kagi mail retry ID`: asks the running server
/// through its admin endpoints.
pub fn mail(retry: Option<u64>, reach: cli::Reach) -> Result<(), Error> {
    let (server, token) = server_and_token(reach)?;
    if let Some(id) = retry {
        let path = format!("/admin/mail/retry?id={id}");
        return match admin_request(&server, "POST", &path, &token).map_err(Error::Startup)? {
            (200, _) => {
                println!("kagi: mail {id} will be tried again now");
                Ok(())
            }
            (404, _) => Err(Error::Check(format!("no undelivered mail with ID {id}"))),
            (status, _) => Err(refused(&server, status)),
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
            return Err(refused(&server, status));
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
                m["id"].as_u64().unwrap_or_default(),
                state,
                m["attempts"].as_u64().unwrap_or_default(),
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

/// `kagi operator add|list|remove|reset`: asks the running server.
pub fn operator(action: cli::OperatorAction, reach: cli::Reach) -> Result<(), Error> {
    use cli::OperatorAction::*;
    let (server, token) = server_and_token(reach)?;
    let (path, name) = match &action {
        List => {
            let (status, body) = admin_request(&server, "GET", "/admin/operators", &token)
                .map_err(Error::Startup)?;
            if status != 200 {
                return Err(refused(&server, status));
            }
            let list: Vec<serde_json::Value> =
                serde_json::from_str(&body).map_err(|e| Error::Startup(e.to_string()))?;
            println!("{:<24} STATE", "NAME");
            for o in &list {
                let state = match (o["enrolled"].as_bool(), o["enrolment_live"].as_bool()) {
                    (Some(true), _) => "enrolled",
                    (_, Some(true)) => "enrolment link issued",
                    _ => "enrolment link expired (kagi operator reset gives a new one)",
                };
                println!("{:<24} {state}", o["name"].as_str().unwrap_or(""));
            }
            println!("kagi: {} operators", list.len());
            return Ok(());
        }
        Add(name) => ("add", name),
        Reset(name) => ("reset", name),
        Remove(name) => ("remove", name),
    };
    let query: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
    let request = format!("/admin/operators/{path}?name={query}");
    let (status, body) =
        admin_request(&server, "POST", &request, &token).map_err(Error::Startup)?;
    match status {
        200 if path == "remove" => {
            println!("kagi: operator {name} removed; their sessions have ended");
            Ok(())
        }
        200 => {
            let answer: serde_json::Value =
                serde_json::from_str(&body).map_err(|e| Error::Startup(e.to_string()))?;
            println!(
                "kagi: operator {name}: open this link within one hour to set a password and a TOTP app:"
            );
            println!("{}", answer["link"].as_str().unwrap_or(""));
            Ok(())
        }
        400 => Err(Error::Check(format!(
            "`{name}` cannot be an operator's name: 1 to 64 letters, digits, `-`, `_` or `.`"
        ))),
        404 => Err(Error::Check(format!("no operator named {name}"))),
        409 => Err(Error::Check(format!(
            "an operator named {name} exists already (`kagi operator reset {name}` gives a new link)"
        ))),
        status => Err(refused(&server, status)),
    }
}

/// `kagi postal list|issue|reject`: asks the running server.
pub fn postal(action: cli::PostalAction, reach: cli::Reach) -> Result<(), Error> {
    use cli::PostalAction::*;
    let (server, token) = server_and_token(reach)?;
    let encode = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    match action {
        List => {
            let (status, body) =
                admin_request(&server, "GET", "/admin/postal", &token).map_err(Error::Startup)?;
            if status != 200 {
                return Err(refused(&server, status));
            }
            let list: Vec<serde_json::Value> =
                serde_json::from_str(&body).map_err(|e| Error::Startup(e.to_string()))?;
            println!(
                "{:<8} {:<16} {:<20} CONTACT, PHONE",
                "ID", "USER ID", "OFFICE NAME"
            );
            for r in &list {
                println!(
                    "{:<8} {:<16} {:<20} {}, {}",
                    r["id"].as_u64().unwrap_or_default(),
                    r["user_id"].as_str().unwrap_or(""),
                    r["office_name"].as_str().unwrap_or(""),
                    r["contact"].as_str().unwrap_or(""),
                    r["phone"].as_str().unwrap_or("")
                );
            }
            println!("kagi: {} waiting", list.len());
            Ok(())
        }
        Issue {
            id,
            letter,
            name,
            address,
        } => {
            let mut path = format!("/admin/postal/issue?id={id}");
            if let Some(name) = name {
                path += &format!("&name={}", encode(&name));
            }
            if let Some(address) = address {
                path += &format!("&address={}", encode(&address));
            }
            let (status, body) =
                admin_request(&server, "POST", &path, &token).map_err(Error::Startup)?;
            match status {
                200 => {
                    // Opened from disk, the page cannot load the server's
                    // stylesheet: it carries it (the A4 page, what is not
                    // printed).
                    let link = r#"<link rel="stylesheet" href="/static/kagi.css">"#;
                    let style = format!("<style>{}</style>", crate::pages::STYLESHEET);
                    let body = body.replacen(link, &style, 1);
                    files::write_private(&letter, &body).map_err(|e| {
                        Error::Startup(format!("cannot write {}: {e}", letter.display()))
                    })?;
                    println!(
                        "kagi: request {id}: letter written to {} (it holds the temporary password; print it, then delete it)",
                        letter.display()
                    );
                    Ok(())
                }
                404 => Err(Error::Check(format!(
                    "no waiting postal request with ID {id}"
                ))),
                409 => Err(Error::Check(format!("request {id}: {body}"))),
                status => Err(refused(&server, status)),
            }
        }
        Reject { id, reason } => {
            let path = format!("/admin/postal/reject?id={id}&reason={}", encode(&reason));
            match admin_request(&server, "POST", &path, &token).map_err(Error::Startup)? {
                (200, _) => {
                    println!("kagi: request {id} rejected");
                    Ok(())
                }
                (404, _) => Err(Error::Check(format!(
                    "no waiting postal request with ID {id}"
                ))),
                (status, _) => Err(refused(&server, status)),
            }
        }
    }
}

/// The configuration `config` names, or the defaults.
fn load_config(config: Option<&Path>) -> Result<Config, Error> {
    match config {
        Some(path) => Config::from_file(path).map_err(Error::Config),
        None => Ok(Config::default()),
    }
}

/// The configuration and the data directory of a command that works on
/// a stopped server's database: `--data-dir`, else the config's.
fn config_and_dir(
    data_dir: Option<PathBuf>,
    config: Option<&Path>,
) -> Result<(Config, PathBuf), Error> {
    let c = load_config(config)?;
    let dir = data_dir
        .or(c.data_dir.clone())
        .ok_or_else(|| Error::Config("data_dir: the config file sets no data_dir".into()))?;
    Ok((c, dir))
}

/// The error of an answer that is not the one expected.
fn refused(server: &str, status: u16) -> Error {
    Error::Startup(format!(
        "the server at {server} answered {status} (wrong admin token?)"
    ))
}

/// The running server's address and the admin token, as `reach` says.
fn server_and_token(reach: cli::Reach) -> Result<(String, String), Error> {
    let cli::Reach {
        config,
        data_dir,
        server,
    } = reach;
    let c = load_config(config.as_deref())?;
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
    Ok((server, token))
}

/// One HTTP/1.1 request to the running server; the status and the body.
fn admin_request(
    server: &str,
    method: &str,
    path: &str,
    token: &str,
) -> Result<(u16, String), String> {
    let (status, body) = admin_exchange(server, method, path, token)?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// The same, with the body as bytes.
fn admin_exchange(
    server: &str,
    method: &str,
    path: &str,
    token: &str,
) -> Result<(u16, Vec<u8>), String> {
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
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no answer from kagi")?;
    let status = String::from_utf8_lossy(&raw[..end])
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status in kagi's answer")?;
    Ok((status, raw.split_off(end + 4)))
}

/// `kagi backup FILE`: the running server makes a backup in its data
/// directory; it is fetched a piece at a time into a private file beside
/// FILE, checked whole, renamed to FILE, and removed from the server.
pub fn backup(file: &Path, reach: cli::Reach) -> Result<(), Error> {
    let key_file = reach_key_file(&reach)?;
    let (server, token) = server_and_token(reach)?;
    let (status, body) =
        admin_request(&server, "POST", "/admin/backup", &token).map_err(Error::Startup)?;
    match status {
        200 => {}
        409 => return Err(Error::Check(body)),
        503 => {
            return Err(Error::Startup(format!(
                "the server at {server} could not make the backup (see its log): {body}"
            )))
        }
        status => return Err(refused(&server, status)),
    }
    let made: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| Error::Startup(e.to_string()))?;
    let total = made["bytes"].as_u64().unwrap_or(0);
    let partial = file.with_file_name(format!(
        ".{}.part",
        file.file_name().unwrap_or_default().to_string_lossy()
    ));
    let fetched = fetch_backup(&server, &token, &partial, total).and_then(|()| {
        store::backup::check(&partial).map_err(Error::Check)?;
        std::fs::rename(&partial, file)
            .map_err(|e| Error::Startup(format!("cannot write {}: {e}", file.display())))
    });
    if fetched.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    fetched?;
    let _ = admin_request(&server, "POST", "/admin/backup/remove", &token);
    let records = &made["records"];
    println!(
        "kagi: backup written to {}: {total} bytes; {} accounts, {} operators, {} audit entries, {} postal requests; the server held its store calls back {} ms",
        file.display(),
        records["accounts"],
        records["operators"],
        records["audit"],
        records["postal"],
        made["held_ms"]
    );
    println!(
        "kagi: THE KEY FILE IS NOT IN THE BACKUP. Keep a copy of {} apart from the backups (it never changes): \
         without it, this backup restores accounts and the audit trail, but no live code, link, session or mail, \
         and operators must enrol again.",
        key_file.map_or_else(|| "the key file (kagi.key beside the database, or store.key_file)".into(), |k| k.display().to_string())
    );
    Ok(())
}

/// Fetches the backup of `total` bytes into `partial` (0600).
fn fetch_backup(server: &str, token: &str, partial: &Path, total: u64) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let shown = partial.display();
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(partial)
        .map_err(|e| Error::Startup(format!("cannot write {shown}: {e}")))?;
    let mut offset = 0u64;
    while offset < total {
        let path = format!("/admin/backup?offset={offset}");
        let (status, chunk) =
            admin_exchange(server, "GET", &path, token).map_err(Error::Startup)?;
        if status != 200 || chunk.is_empty() {
            return Err(Error::Startup(format!(
                "the server at {server} stopped giving the backup at byte {offset} of {total} (answered {status}): was another backup started meanwhile?"
            )));
        }
        out.write_all(&chunk)
            .map_err(|e| Error::Startup(format!("cannot write {shown}: {e}")))?;
        offset += chunk.len() as u64;
    }
    out.sync_all()
        .map_err(|e| Error::Startup(format!("cannot write {shown}: {e}")))
}

/// Where the key file of the server `reach` names is, when the command
/// line can tell (to name it in what `kagi backup` says).
fn reach_key_file(reach: &cli::Reach) -> Result<Option<PathBuf>, Error> {
    let c = load_config(reach.config.as_deref())?;
    let dir = reach.data_dir.clone().or(c.data_dir.clone());
    Ok(c.store
        .key_file
        .clone()
        .or(dir.map(|d| store::default_key_file(&d))))
}

/// `kagi restore FILE`: a new database from a backup, on a stopped
/// server's directory that holds none.
pub fn restore(
    file: &Path,
    data_dir: Option<PathBuf>,
    config: Option<PathBuf>,
    key_file: Option<&Path>,
) -> Result<(), Error> {
    let (c, dir) = config_and_dir(data_dir, config.as_deref())?;
    let key_text = match key_file {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            Error::Startup(format!("cannot read the key file {}: {e}", path.display()))
        })?),
        None => None,
    };
    files::keep_new_files_private();
    let now = crate::clock::Clock::system().now();
    let offset = c
        .utc_offset_secs()
        .map_err(|e| Error::Config(e.to_string()))?;
    let restored = store::backup::restore(
        file,
        &dir,
        &store::key_file(&c.store, &dir),
        key_text.as_deref(),
        now,
    )
    .map_err(Error::Check)?;
    let r = &restored.counts;
    println!(
        "kagi: restored into {} from a backup made at {} ({}) by kagi {}: {} accounts, {} operators, {} audit entries, {} postal requests",
        dir.display(),
        crate::clock::date_time(restored.header.made, offset),
        c.time_zone,
        restored.header.kagi,
        r.of("accounts"),
        r.of("operators"),
        r.of("audit"),
        r.of("postal")
    );
    if let Some(note) = &restored.without_key {
        println!("kagi: RESTORED WITHOUT THE KEY FILE: {note}");
    }
    match restored.audit {
        Ok(n) => {
            println!("kagi: audit trail intact: {n} entries, each chained to the one before");
            Ok(())
        }
        Err(problem) => Err(Error::Check(format!("audit trail BROKEN: {problem}"))),
    }
}

/// `kagi migrate`: a stopped server's sled database moved into an empty
/// PostgreSQL database, and what to do next.
pub fn migrate(data_dir: Option<PathBuf>, config: Option<PathBuf>, to: &str) -> Result<(), Error> {
    let (c, dir) = config_and_dir(data_dir, config.as_deref())?;
    files::keep_new_files_private();
    let now = crate::clock::Clock::system().now();
    let key_file = store::key_file(&c.store, &dir);
    let shown = store::shown_postgres(to);
    // The target over TLS as the config says (its ca_file), at `to`.
    let target = crate::config::PostgresConfig {
        url: Some(to.to_string()),
        ..c.store.postgres.clone()
    };
    let migrated = store::migrate::migrate(&dir, c.store.cache_bytes, &key_file, &target, now)
        .map_err(Error::Check)?;
    let m = &migrated.counts;
    println!(
        "kagi: moved the database in {} into PostgreSQL {shown}: {} accounts, {} operators, {} audit entries, {} postal requests",
        dir.display(),
        m.of("accounts"),
        m.of("operators"),
        m.of("audit"),
        m.of("postal")
    );
    println!(
        "kagi: and what was in flight, which opens there under the same key file: {} recovery flows, {} sessions, {} operators' sessions, {} registrations, {} reset links, {} guards, {} mails queued, {} captured",
        m.of("flows"),
        m.of("sessions"),
        m.of("operator_sessions"),
        m.of("registrations"),
        m.of("links"),
        m.of("guards"),
        m.of("outbox"),
        m.of("mailbox")
    );
    println!("kagi: dropped: {}", store::migrate::LEFT_BEHIND);
    println!(
        "kagi: ids go on above {}: no new record takes the id of one moved",
        migrated.next_id
    );
    match migrated.audit {
        Ok(n) => println!(
            "kagi: audit trail intact on PostgreSQL: {n} entries, each chained to the one before"
        ),
        Err(problem) => {
            return Err(Error::Check(format!(
                "audit trail BROKEN on PostgreSQL: {problem}"
            )))
        }
    }
    println!(
        "kagi: next: in every instance's config set store.engine = \"postgres\", store.postgres.url, \
         and store.key_file = \"{}\" (a copy of that file on each machine), then start them. \
         The database in {} is left as it was: start no server on it again, or what it \
         writes is not in PostgreSQL",
        key_file.display(),
        dir.display()
    );
    Ok(())
}

/// The configuration and the database of a stopped server, for the
/// commands that work on it directly (`audit`, `import`). `create`: an
/// import may start a new database; an audit needs an existing one.
fn open_stopped(
    data_dir: Option<std::path::PathBuf>,
    config: Option<std::path::PathBuf>,
    create: bool,
) -> Result<(Config, Store), Error> {
    let (c, dir) = config_and_dir(data_dir, config.as_deref())?;
    if let (crate::config::StoreEngine::Postgres, Some(url)) =
        (c.store.engine, &c.store.postgres.url)
    {
        // PostgreSQL is shared: the servers may go on running meanwhile.
        let key_file = store::key_file(&c.store, &dir);
        files::keep_new_files_private();
        files::private_dir(&dir).map_err(Error::Startup)?;
        let shown = store::shown_postgres(url);
        let store = Store::open_postgres_or_wait(&c.store.postgres, &dir, &key_file)
            .map_err(|e| Error::Startup(format!("cannot open the database {shown}: {e}")))?;
        if let Some(why) = store.unavailable() {
            return Err(Error::Startup(format!(
                "cannot open the database {shown}: {why}"
            )));
        }
        return Ok((c, store));
    }
    if !create && !dir.join("conf").exists() {
        return Err(Error::Startup(format!(
            "no kagi database in {}",
            dir.display()
        )));
    }
    let key_file = store::key_file(&c.store, &dir);
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
pub fn audit(
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
            let out = store::audit_csv(&events, offset);
            print!("{out}");
            Ok(())
        }
    }
}

/// `kagi import FILE`: checks every line, then writes the accounts, and
/// says which hash costs they came with.
pub fn import(
    file: &Path,
    data_dir: Option<PathBuf>,
    config: Option<PathBuf>,
) -> Result<(), Error> {
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
            std::fs::File::open(file)
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

/// What `kagi demo` prints once it is ready: where to go, and the demo
/// accounts.
pub fn print_demo_welcome(running: &Running) {
    let base = &running.public_url();
    println!("kagi demo — ログイン情報再設定のデモ (Ctrl-C で終了)");
    println!();
    println!("  介護電子請求受付システム  {base}/kaigo");
    println!("  送信メール (capture)      {base}/dev/mail   JSON: {base}/dev/mail.json");
    println!(
        "  データベース              {}{}",
        running.data_dir().display(),
        if running.data_dir_is_temporary() {
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
    println!("  管理コンソール  {base}/admin   確認コード: {base}/dev/totp");
    println!(
        "    オペレーター {}  パスワード {}  TOTP 秘密鍵 {}",
        demo::OPERATOR,
        demo::OPERATOR_PASSWORD,
        running
            .demo_operator_secret()
            .unwrap_or_else(|| "(データベースが開けるまで未作成)".into())
    );
    println!();
    println!(
        "kagi: ready in {} ms on http://{}",
        running.started().as_millis(),
        running.addr()
    );
}
