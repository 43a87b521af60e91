//! One `Config` struct: the design's defaults, read from a TOML file, then
//! checked. Every lifetime, limit and cost kagi applies is a field here.

use serde::Deserialize;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// Everything an operator can set. Field names are the TOML keys.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server binds, e.g. `127.0.0.1:8080`.
    pub listen: String,
    /// The address users reach kagi at, e.g. `https://login.example.jp`.
    /// Mailed links are built from it, never from a request's Host header.
    pub public_url: Option<String>,
    /// Directory of the sled database. `kagi demo` uses a fresh temporary
    /// directory when this is unset.
    pub data_dir: Option<PathBuf>,
    /// Zone of the `時刻` clock on every screen: `JST`, `UTC` or `+HH:MM`.
    pub time_zone: String,
    pub kaigo: KaigoConfig,
    pub portal: PortalConfig,
    pub session: SessionConfig,
    pub argon2: Argon2Config,
    pub store: StoreConfig,
    pub mail: MailConfig,
    pub http: HttpConfig,
    pub guard: GuardConfig,
    pub rate_limit: RateLimitConfig,
    pub admin: AdminConfig,
    pub log: LogConfig,
}

/// What kagi writes to standard error.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (a line a person reads) or `json` (one object a line, for a
    /// log collector).
    pub format: LogFormat,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The admin endpoints (`/admin/…`) that `kagi mail list` and `kagi mail
/// retry` use.
#[derive(Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// The bearer token the endpoints demand. Unset: kagi makes one at every
    /// start and writes it to `<data_dir>/admin.token` (mode 0600), where
    /// the commands on the same machine read it.
    pub token: Option<String>,
}

impl fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminConfig")
            .field("token", &self.token.as_ref().map(|_| "…"))
            .finish()
    }
}

/// Limits per account (per claimed identity, so that a claim that matches
/// nothing is treated exactly like one that matches).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardConfig {
    /// One-time passwords of one account that can be live at once; a new
    /// one revokes the oldest.
    pub max_live_otps: usize,
    /// One-time passwords issued per account in 24 hours.
    pub otps_per_day: usize,
    /// Reset links issued per account in 24 hours.
    pub links_per_day: usize,
    /// The "day" of the two limits above: how far back issued codes and
    /// links count, and how long a claim's guard is kept after its last
    /// change. 86,400; shorter only for tests (the soak).
    pub window_secs: u64,
    /// A second code or link for the same account within this time is not
    /// sent; the one already mailed stays valid.
    pub send_cooldown_secs: u64,
    /// Failed logins after which the account waits.
    pub login_failures: u32,
    /// The first wait; it doubles with every further failure.
    pub lockout_initial_secs: u64,
    /// The longest wait.
    pub lockout_max_secs: u64,
}

impl Default for GuardConfig {
    fn default() -> GuardConfig {
        GuardConfig {
            max_live_otps: 3,
            otps_per_day: 10,
            links_per_day: 10,
            window_secs: 86_400,
            send_cooldown_secs: 60,
            login_failures: 5,
            lockout_initial_secs: 60,
            lockout_max_secs: 15 * 60,
        }
    }
}

/// Token buckets per client address: `burst` requests at once, then one
/// more every `refill_secs`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Bucket {
    pub burst: u32,
    pub refill_secs: u64,
}

/// The From of mail when none is configured.
pub const DEFAULT_FROM: &str = "kagi <no-reply@kagi.invalid>";

/// Rate limits per client address (IPv6 clients per /64).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Starting a recovery: kaigo's office and address, the portal's address.
    pub recovery: Bucket,
    /// Entering a one-time password.
    pub otp: Bucket,
    /// Drawing the portal's CAPTCHA (its ① page, "画像を変更") and answering it.
    pub captcha: Bucket,
    /// Logging in (password and security code), and the security-code
    /// form's current password.
    pub login: Bucket,
    /// Asking for the postal letter (書類郵送): 3 at once, then one per 20
    /// minutes. An office asks once and waits days for the letter; a
    /// second request for the same office replaces the first.
    pub postal: Bucket,
}

impl Default for RateLimitConfig {
    fn default() -> RateLimitConfig {
        RateLimitConfig {
            recovery: Bucket {
                burst: 10,
                refill_secs: 60,
            },
            otp: Bucket {
                burst: 10,
                refill_secs: 10,
            },
            captcha: Bucket {
                burst: 20,
                refill_secs: 6,
            },
            login: Bucket {
                burst: 20,
                refill_secs: 3,
            },
            postal: Bucket {
                burst: 3,
                refill_secs: 1200,
            },
        }
    }
}

/// The HTTP front door.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Open client connections at most; at the cap, the connection that has
    /// made the least progress (the longest since it last completed a
    /// request, whatever part of one it is in) is closed to make room.
    pub max_connections: usize,
    /// Open connections from one client address (IPv6: one /64) at most.
    /// 16: a browser opens at most 6 connections to a host, so two or three
    /// people behind one office NAT can load pages at once, while one
    /// address holds at most a sixteenth of the default `max_connections`.
    /// At this cap the client's own idle connections make room; a client
    /// whose connections all have a request under way is told to come back.
    /// Trusted proxies are not capped per client.
    pub max_connections_per_client: usize,
    /// A request, head and body together, must arrive within this time of
    /// its first byte.
    pub header_timeout_secs: u64,
    /// A keep-alive connection with no request under way is closed after this.
    pub idle_timeout_secs: u64,
    /// On SIGTERM or SIGINT, the requests under way are given this long to
    /// be answered before their connections are closed. 10: a login at the
    /// OWASP cost takes some 25 ms even behind a full queue of 16, and a
    /// service manager's own wait (systemd's `TimeoutStopSec`) is 90 s.
    pub shutdown_secs: u64,
    /// Reverse proxies in front of kagi, as addresses or CIDR blocks, e.g.
    /// `["127.0.0.1", "10.0.0.0/8"]`. For a request from one of them the
    /// client is the last address in `X-Forwarded-For` that is not one.
    pub trusted_proxies: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            max_connections: 256,
            max_connections_per_client: 16,
            header_timeout_secs: 10,
            idle_timeout_secs: 30,
            shutdown_secs: 10,
            trusted_proxies: Vec::new(),
        }
    }
}

/// The kaigo recovery flow.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KaigoConfig {
    /// How long a one-time password stays valid. The seed says 30 minutes.
    pub otp_lifetime_secs: u64,
    /// Wrong entries after which a one-time password dies and the flow must
    /// restart. DESIGN §3 rule 4 says 5.
    pub otp_attempts: u32,
    /// How long an unfinished recovery (before or after the code) is kept.
    pub flow_lifetime_secs: u64,
    /// The `[問い合わせ先]` line of kaigo mails.
    pub helpdesk: String,
    /// `seed` (8–16 characters, letters and digits) or `nist`.
    pub password_policy: PolicyStyle,
    /// How long the temporary password of a postal letter works, in days:
    /// the post takes days.
    pub temporary_password_days: u64,
}

/// Which password rules a site applies.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PolicyStyle {
    /// The seed system's own rules (composition, kaigo's 16-character maximum).
    #[default]
    Seed,
    /// NIST SP 800-63B: 15 to 64 characters, no composition rules.
    Nist,
}

/// The portal recovery flow.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PortalConfig {
    /// How long a mailed reset link works. The seed says 1 hour.
    pub link_lifetime_secs: u64,
    /// How long a CAPTCHA can be answered.
    pub captcha_lifetime_secs: u64,
    /// How long an unfinished recovery (between ① and ②) is kept.
    pub flow_lifetime_secs: u64,
    /// The From of portal mails; `mail.from` when unset. The seed's mails
    /// come from `from@mail.iryohokenjyohoportalsite.jp`.
    pub mail_from: Option<String>,
    /// The inquiry block at the end of portal mails (several lines).
    pub contact: String,
    /// `seed` (8–100 characters, upper, lower and digit) or `nist`.
    pub password_policy: PolicyStyle,
}

impl Default for PortalConfig {
    fn default() -> PortalConfig {
        PortalConfig {
            link_lifetime_secs: 3600,
            captcha_lifetime_secs: 300,
            flow_lifetime_secs: 30 * 60,
            mail_from: None,
            password_policy: PolicyStyle::Seed,
            contact: "社会保険診療報酬支払基金（情報化企画部・情報化支援部）

国民健康保険中央会（番号制度対策本部）

オンライン資格確認・医療情報化支援基金関係

オンライン資格確認に関するお問い合わせ先

オンライン資格確認等コールセンター：0800-080-4583（通話無料）

月曜日～金曜日8：00～18：00 土曜日8：00～16：00（いずれも祝日を除く）"
                .into(),
        }
    }
}

/// Logged-in sessions.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// A session unused this long ends.
    pub idle_secs: u64,
    /// A session ends this long after login, however busy.
    pub absolute_secs: u64,
    /// Wrong security codes after which a half-done login must start over.
    pub security_code_attempts: u32,
}

/// Cost of argon2id password and security-code hashes.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Argon2Config {
    /// Memory in KiB. OWASP's argon2id minimum: 19456 (19 MiB).
    pub memory_kib: u32,
    /// Passes over the memory. OWASP: 2.
    pub iterations: u32,
    /// Lanes. OWASP: 1.
    pub parallelism: u32,
    /// Threads that compute hashes (logins, security codes, new
    /// passwords), so that the request thread never does; 0: one per core.
    pub workers: usize,
    /// Requests that may wait for each hashing thread. A waiting login
    /// waits at most this many hashes (16 × some 25 ms at the OWASP cost:
    /// 0.4 s); past that it is answered 503 with `Retry-After` at once,
    /// which serves a person better than a page that takes seconds.
    pub queue: usize,
}

impl Argon2Config {
    /// The hashing threads to start: `workers`, or one per core.
    pub fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

/// Which engine keeps the records.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StoreEngine {
    /// sled, embedded, in `data_dir`: one kagi process owns it.
    #[default]
    Sled,
    /// PostgreSQL at `store.postgres.url`: several kagi instances share it.
    Postgres,
}

/// Where PostgreSQL is, when `store.engine = "postgres"`.
#[derive(Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresConfig {
    /// `postgresql://user:password@host:port/database` (or key=value
    /// pairs), as libpq takes it; its `sslmode` says whether the
    /// connections use TLS (`PostgresTls`).
    pub url: Option<String>,
    /// PEM file of the CA(s) that signed the server's certificate, for a
    /// server with a private CA; the public web roots are used when unset.
    /// Setting it asks for TLS: without `sslmode=disable`, a server that
    /// offers no TLS is refused. There is no switch to accept any
    /// certificate.
    pub ca_file: Option<PathBuf>,
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &self.url.as_ref().map(|_| "…"))
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// What kagi's connections to PostgreSQL do about TLS, from the URL's
/// `sslmode` and `ca_file`. Whenever TLS is used, the server's certificate
/// chain and its host name are verified (libpq's `verify-full`); what the
/// modes change is only whether a server without TLS is spoken to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostgresTls {
    /// `sslmode=disable`: no TLS.
    Off,
    /// `sslmode=prefer`, the default without a CA file: TLS, verified,
    /// when the server offers it; in the clear when it does not (and over
    /// a Unix socket, where PostgreSQL never offers it).
    Preferred,
    /// `require`, `verify-ca` or `verify-full`, or any mode but `disable`
    /// with a CA file: TLS, verified, or no connection.
    Required,
}

impl PostgresConfig {
    /// The settings for `url` alone, e.g. a test's database.
    pub fn at(url: &str) -> PostgresConfig {
        PostgresConfig {
            url: Some(url.to_string()),
            ca_file: None,
        }
    }

    /// The URL as the postgres crate takes it, and what its connections do
    /// about TLS. The crate knows `sslmode` only up to `require`, so libpq's
    /// `verify-ca` and `verify-full` are read here (kagi verifies whenever
    /// it uses TLS) and handed on as `require`.
    pub fn connection(&self) -> Result<(postgres::Config, PostgresTls), ConfigError> {
        let url = self.url.as_deref().unwrap_or("");
        let needed = || {
            bad(
                "store.postgres.url",
                "store.engine = \"postgres\" needs a connection URL: postgresql://user:password@host:port/database",
            )
        };
        if url.trim().is_empty() {
            return Err(needed());
        }
        let mut tls = None;
        let mut given = String::with_capacity(url.len());
        let mut rest = 0;
        for Parameter { key, value, span } in connection_parameters(url) {
            if key != "sslmode" {
                continue;
            }
            let (mode, word) = match value.as_str() {
                "disable" => (PostgresTls::Off, "disable"),
                "prefer" => (PostgresTls::Preferred, "prefer"),
                "require" | "verify-ca" | "verify-full" => (PostgresTls::Required, "require"),
                "allow" => {
                    return Err(bad(
                        "store.postgres.url",
                        "sslmode=allow (the clear first, TLS if refused) is not supported: use prefer, require or verify-full",
                    ))
                }
                other => {
                    return Err(bad(
                        "store.postgres.url",
                        format!("sslmode={other}: use disable, prefer, require or verify-full"),
                    ))
                }
            };
            tls = Some(mode);
            given.push_str(&url[rest..span.start]);
            given.push_str(word);
            rest = span.end;
        }
        given.push_str(&url[rest..]);
        let config: postgres::Config = given.parse().map_err(|e: postgres::Error| {
            let hint = if given.contains("sslrootcert") {
                "; the CA goes in store.postgres.ca_file"
            } else {
                ""
            };
            // The crate's message names the option (or the character) at
            // fault, never the URL with its password.
            let cause = std::error::Error::source(&e).map_or(String::new(), |c| format!(": {c}"));
            bad(
                "store.postgres.url",
                format!("{}{cause}{hint}", needed().problem),
            )
        })?;
        let tls = match (tls.unwrap_or(PostgresTls::Preferred), &self.ca_file) {
            (PostgresTls::Off, Some(_)) => {
                return Err(bad(
                    "store.postgres.ca_file",
                    "is set, but the URL's sslmode=disable turns TLS off: remove one of them",
                ))
            }
            // A CA to verify the server against means TLS is wanted: falling
            // back to the clear would make the file pointless.
            (PostgresTls::Preferred, Some(_)) => PostgresTls::Required,
            (mode, _) => mode,
        };
        Ok((config, tls))
    }
}

/// One parameter of a connection string: its key, its value as meant,
/// and where the value is written in the string.
struct Parameter {
    key: String,
    value: String,
    span: std::ops::Range<usize>,
}

/// The parameters of a libpq connection string, either form: a URL's
/// query (`?key=value&…`, percent-encoded), or `key=value …` pairs (a
/// value 'quoted' with \\ escapes, or running to the next space).
fn connection_parameters(url: &str) -> Vec<Parameter> {
    let decode = |s: &str| -> String {
        // form_urlencoded reads `+` as a space, as libpq does not; no key
        // or value kagi looks at has one.
        url::form_urlencoded::parse(s.as_bytes())
            .map(|(k, v)| {
                if v.is_empty() {
                    k.into_owned()
                } else {
                    format!("{k}={v}")
                }
            })
            .collect()
    };
    let mut found = Vec::new();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some(query) = url.find('?') else {
            return found;
        };
        let mut at = query + 1;
        for pair in url[query + 1..].split('&') {
            if let Some((key, value)) = pair.split_once('=') {
                let start = at + key.len() + 1;
                found.push(Parameter {
                    key: decode(key),
                    value: decode(value),
                    span: start..start + value.len(),
                });
            }
            at += pair.len() + 1;
        }
        return found;
    }
    let bytes = url.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let key_start = i;
        while i < bytes.len() && bytes[i] != b'=' && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = url[key_start..i].to_string();
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'=') {
            i += 1;
        }
        let start = i;
        let quoted = bytes.get(i) == Some(&b'\'');
        if quoted {
            i += 1;
        }
        let mut value = Vec::new();
        while i < bytes.len() {
            match bytes[i] {
                b'\\' if i + 1 < bytes.len() => {
                    value.push(bytes[i + 1]);
                    i += 1;
                }
                b'\'' if quoted => {
                    i += 1;
                    break;
                }
                c if !quoted && c.is_ascii_whitespace() => break,
                c => value.push(c),
            }
            i += 1;
        }
        if !key.is_empty() {
            found.push(Parameter {
                key,
                value: String::from_utf8_lossy(&value).into_owned(),
                span: start..i,
            });
        }
    }
    found
}

/// The database.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `sled` (the default) or `postgres`.
    pub engine: StoreEngine,
    pub postgres: PostgresConfig,
    /// sled's page cache in bytes; the main share of kagi's memory.
    pub cache_bytes: u64,
    /// How often the sweeper deletes expired flows and sessions. Reads treat
    /// expired records as absent whether or not the sweep has run.
    pub sweep_interval_secs: u64,
    /// Audit entries older than this are deleted by the sweeper (the chain
    /// stays verifiable from the newest deleted entry's hash). 400 days: a
    /// year of history and some.
    pub audit_retention_secs: u64,
    /// Captured mail (capture transport) beyond this many, oldest first,
    /// is deleted by the sweeper.
    pub mailbox_keep: usize,
    /// The key file: the keys of the digests, of the sealed mail text and
    /// of the audit chain. Default `<data_dir>/kagi.key`; put it elsewhere
    /// (and back it up apart) to keep it out of copies of the data
    /// directory.
    pub key_file: Option<PathBuf>,
    /// Below this much free space on the database's filesystem, kagi takes
    /// no new anonymous work that writes (a recovery's start, a postal
    /// request): those get the readable 503 page, while logins, codes and
    /// password changes under way go on. 64 MiB: room for sled to write its
    /// 512 KiB log segments several times over while the logins and
    /// recoveries under way finish (a few KB each), and for an
    /// administrator to act before the disk is full.
    pub min_free_bytes: u64,
}

/// Outgoing mail.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    /// `smtp` delivers through a mail server; `capture` keeps messages in the
    /// database and shows them at `/dev/mail` (demo and labs).
    pub transport: Option<Transport>,
    /// The From address of every mail, e.g. `kagi <no-reply@example.jp>`.
    pub from: Option<String>,
    /// First retry delay after a temporary delivery failure; it doubles per try.
    pub retry_initial_secs: u64,
    /// Longest delay between two delivery tries.
    pub retry_max_secs: u64,
    /// A message still not accepted this long after it was queued is
    /// marked failed (and an audit entry says so).
    pub give_up_after_secs: u64,
    pub smtp: SmtpConfig,
}

/// How mail leaves kagi.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Smtp,
    Capture,
}

/// The SMTP relay.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: Option<String>,
    /// Defaults to 25 (plain), 587 (STARTTLS) or 465 (TLS).
    pub port: Option<u16>,
    pub security: Security,
    /// AUTH user; AUTH is used only when both user and password are set.
    pub username: Option<String>,
    pub password: Option<String>,
    /// Connection and command timeout.
    pub timeout_secs: u64,
    /// PEM file of the CA(s) that signed the relay's certificate, for a relay
    /// with a private CA; the public web roots are used when unset. There is
    /// no switch to accept any certificate.
    pub ca_file: Option<PathBuf>,
}

impl fmt::Debug for SmtpConfig {
    // Hand-written so that the AUTH password never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "…"))
            .field("timeout_secs", &self.timeout_secs)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// Transport security of the SMTP connection.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// No TLS; for a relay on the same host or a trusted lab network.
    Plain,
    /// Plain connection upgraded with STARTTLS (usually port 587).
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            data_dir: None,
            time_zone: "JST".into(),
            kaigo: KaigoConfig::default(),
            portal: PortalConfig::default(),
            session: SessionConfig::default(),
            argon2: Argon2Config::default(),
            store: StoreConfig::default(),
            mail: MailConfig::default(),
            http: HttpConfig::default(),
            guard: GuardConfig::default(),
            rate_limit: RateLimitConfig::default(),
            admin: AdminConfig::default(),
            log: LogConfig::default(),
        }
    }
}

impl Default for KaigoConfig {
    fn default() -> KaigoConfig {
        KaigoConfig {
            otp_lifetime_secs: 30 * 60,
            otp_attempts: 5,
            flow_lifetime_secs: 30 * 60,
            helpdesk: "ヘルプデスク: 0570-059-402".into(),
            temporary_password_days: 30,
            password_policy: PolicyStyle::Seed,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> SessionConfig {
        SessionConfig {
            idle_secs: 30 * 60,
            absolute_secs: 12 * 3600,
            security_code_attempts: 5,
        }
    }
}

impl Default for Argon2Config {
    fn default() -> Argon2Config {
        Argon2Config {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
            workers: 0,
            queue: 16,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> StoreConfig {
        StoreConfig {
            engine: StoreEngine::Sled,
            postgres: PostgresConfig::default(),
            cache_bytes: 8 * 1024 * 1024,
            sweep_interval_secs: 60,
            audit_retention_secs: 400 * 86_400,
            mailbox_keep: 10_000,
            key_file: None,
            min_free_bytes: 64 * 1024 * 1024,
        }
    }
}

impl Default for MailConfig {
    fn default() -> MailConfig {
        MailConfig {
            transport: None,
            from: None,
            retry_initial_secs: 10,
            retry_max_secs: 600,
            give_up_after_secs: 86_400,
            smtp: SmtpConfig::default(),
        }
    }
}

impl Default for SmtpConfig {
    fn default() -> SmtpConfig {
        SmtpConfig {
            host: None,
            port: None,
            security: Security::Starttls,
            username: None,
            password: None,
            timeout_secs: 30,
            ca_file: None,
        }
    }
}

impl SmtpConfig {
    /// The configured port, or the usual one for the security mode.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            Security::Plain => 25,
            Security::Starttls => 587,
            Security::Tls => 465,
        })
    }
}

/// A configuration that cannot be used, naming the field at fault.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub field: &'static str,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config field `{}`: {}", self.field, self.problem)
    }
}

fn bad(field: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        field,
        problem: problem.into(),
    }
}

impl Config {
    /// Reads a TOML file; fields it leaves out keep their defaults.
    pub fn from_file(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))
    }

    /// Checks what every mode needs: parsable addresses, sane limits.
    pub fn validate_common(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        self.utc_offset_secs()?;
        if let Some(url) = &self.public_url {
            let parsed = url::Url::parse(url)
                .map_err(|e| bad("public_url", format!("`{url}` is not a URL: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
                return Err(bad(
                    "public_url",
                    "must be an http:// or https:// URL with a host",
                ));
            }
            if parsed.query().is_some() || parsed.fragment().is_some() {
                return Err(bad("public_url", "must not carry a query or fragment"));
            }
        }
        TrustedProxies::parse(&self.http.trusted_proxies)
            .map_err(|e| bad("http.trusted_proxies", e))?;
        if self.store.engine == StoreEngine::Postgres {
            self.store.postgres.connection()?;
            if let Some(ca) = &self.store.postgres.ca_file {
                check_ca_file("store.postgres.ca_file", ca)?;
            }
        }
        for (field, value) in [
            ("http.max_connections", self.http.max_connections as u64),
            (
                "http.max_connections_per_client",
                self.http.max_connections_per_client as u64,
            ),
            ("http.header_timeout_secs", self.http.header_timeout_secs),
            ("argon2.queue", self.argon2.queue as u64),
            ("http.idle_timeout_secs", self.http.idle_timeout_secs),
            ("http.shutdown_secs", self.http.shutdown_secs),
        ] {
            if value == 0 {
                return Err(bad(field, "must be above 0"));
            }
        }
        for (field, bucket) in [
            ("rate_limit.recovery", self.rate_limit.recovery),
            ("rate_limit.otp", self.rate_limit.otp),
            ("rate_limit.captcha", self.rate_limit.captcha),
            ("rate_limit.login", self.rate_limit.login),
            ("rate_limit.postal", self.rate_limit.postal),
        ] {
            if bucket.burst == 0 || bucket.refill_secs == 0 {
                return Err(bad(field, "burst and refill_secs must be above 0"));
            }
        }
        if self.admin.token.as_ref().is_some_and(|t| t.len() < 16) {
            return Err(bad("admin.token", "must be at least 16 characters"));
        }
        let g = &self.guard;
        if g.max_live_otps == 0 || g.otps_per_day == 0 || g.links_per_day == 0 {
            return Err(bad(
                "guard",
                "max_live_otps, otps_per_day and links_per_day must be above 0",
            ));
        }
        if g.window_secs == 0 {
            return Err(bad("guard.window_secs", "must be above 0"));
        }
        if g.login_failures == 0 || g.lockout_initial_secs > g.lockout_max_secs {
            return Err(bad(
                "guard",
                "login_failures must be above 0 and lockout_initial_secs at most lockout_max_secs",
            ));
        }
        if self.kaigo.otp_lifetime_secs == 0 {
            return Err(bad("kaigo.otp_lifetime_secs", "must be above 0"));
        }
        if self.kaigo.otp_attempts == 0 {
            return Err(bad("kaigo.otp_attempts", "must be above 0"));
        }
        if !(1..=365).contains(&self.kaigo.temporary_password_days) {
            return Err(bad("kaigo.temporary_password_days", "must be 1 to 365"));
        }
        for (field, value) in [
            ("portal.link_lifetime_secs", self.portal.link_lifetime_secs),
            (
                "portal.captcha_lifetime_secs",
                self.portal.captcha_lifetime_secs,
            ),
            ("portal.flow_lifetime_secs", self.portal.flow_lifetime_secs),
            ("kaigo.flow_lifetime_secs", self.kaigo.flow_lifetime_secs),
        ] {
            if value == 0 {
                return Err(bad(field, "must be above 0"));
            }
        }
        if let Some(from) = &self.portal.mail_from {
            if !crate::address::is_plausible_mailbox(from) {
                return Err(bad(
                    "portal.mail_from",
                    format!("`{from}` is not a mail address"),
                ));
            }
        }
        if contains_line_break(&self.kaigo.helpdesk) {
            return Err(bad("kaigo.helpdesk", "must be one line"));
        }
        argon2::Params::new(
            self.argon2.memory_kib,
            self.argon2.iterations,
            self.argon2.parallelism,
            None,
        )
        .map_err(|e| bad("argon2", format!("parameters rejected by argon2: {e}")))?;
        if let Some(from) = &self.mail.from {
            if !crate::address::is_plausible_mailbox(from) {
                return Err(bad("mail.from", format!("`{from}` is not a mail address")));
            }
        }
        Ok(())
    }

    /// Checks what `kagi serve` needs on top: where it lives, how mail leaves.
    pub fn validate_for_serve(&self) -> Result<(), ConfigError> {
        if self.public_url.is_none() {
            return Err(bad(
                "public_url",
                "missing; set it to the address users open, e.g. https://login.example.jp",
            ));
        }
        if self.data_dir.is_none() {
            return Err(bad("data_dir", "missing; set it to the database directory"));
        }
        self.validate_common()?;
        let transport = self
            .mail
            .transport
            .ok_or_else(|| bad("mail.transport", "missing; set it to \"smtp\""))?;
        // "capture" in serve is a lab: mail is kept and shown at /dev/mail,
        // and every page says so.
        if transport == Transport::Smtp && self.mail.from.is_none() {
            return Err(bad(
                "mail.from",
                "missing; set the sender address of kagi's mails",
            ));
        }
        if transport == Transport::Smtp {
            let smtp = &self.mail.smtp;
            match &smtp.host {
                None => {
                    return Err(bad(
                        "mail.smtp.host",
                        "missing; set the mail relay's host name",
                    ))
                }
                Some(h) if h.trim().is_empty() || h.contains(char::is_whitespace) => {
                    return Err(bad("mail.smtp.host", format!("`{h}` is not a host name")))
                }
                Some(_) => {}
            }
            if smtp.port == Some(0) {
                return Err(bad("mail.smtp.port", "must be 1–65535"));
            }
            if smtp.timeout_secs == 0 {
                return Err(bad("mail.smtp.timeout_secs", "must be above 0"));
            }
            if let Some(ca) = &smtp.ca_file {
                check_ca_file("mail.smtp.ca_file", ca)?;
            }
            if smtp.username.is_some() != smtp.password.is_some() {
                return Err(bad(
                    "mail.smtp.password",
                    "username and password must be set together",
                ));
            }
        }
        Ok(())
    }

    /// The listen address, parsed.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| {
            bad(
                "listen",
                format!("`{}` is not an IP:port address", self.listen),
            )
        })
    }

    /// The clock's zone as seconds east of UTC.
    pub fn utc_offset_secs(&self) -> Result<i32, ConfigError> {
        parse_zone(&self.time_zone).ok_or_else(|| {
            bad(
                "time_zone",
                format!("`{}`: use JST, UTC or +HH:MM", self.time_zone),
            )
        })
    }

    /// The From of every mail but the portal's: `mail.from`, or a
    /// placeholder that names kagi.
    pub fn sender(&self) -> String {
        self.mail
            .from
            .clone()
            .unwrap_or_else(|| DEFAULT_FROM.into())
    }

    /// The From of the portal's mails: `portal.mail_from`, or `sender`.
    pub fn portal_sender(&self) -> String {
        self.portal
            .mail_from
            .clone()
            .unwrap_or_else(|| self.sender())
    }

    /// The public URL without a trailing slash.
    pub fn public_base(&self) -> String {
        self.public_url
            .as_deref()
            .unwrap_or("")
            .trim_end_matches('/')
            .to_string()
    }

    /// Whether cookies must carry `Secure`.
    pub fn is_https(&self) -> bool {
        // Parsed, so that `HTTPS://…` counts too.
        self.public_url
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok())
            .is_some_and(|u| u.scheme() == "https")
    }
}

/// A CA file must be there, readable, and hold a PEM certificate: found
/// at start, not at the first connection.
fn check_ca_file(field: &'static str, ca: &Path) -> Result<(), ConfigError> {
    let pem = std::fs::read_to_string(ca)
        .map_err(|e| bad(field, format!("cannot read {}: {e}", ca.display())))?;
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(bad(
            field,
            format!("{} holds no PEM certificate", ca.display()),
        ));
    }
    Ok(())
}

fn parse_zone(zone: &str) -> Option<i32> {
    match zone {
        "JST" | "Asia/Tokyo" => return Some(9 * 3600),
        "UTC" | "Z" => return Some(0),
        _ => {}
    }
    let (sign, rest) = match zone.as_bytes().first()? {
        b'+' => (1, &zone[1..]),
        b'-' => (-1, &zone[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 14 && m < 60 && h >= 0 && m >= 0).then_some(sign * (h * 3600 + m * 60))
}

/// Proxies whose `X-Forwarded-For` is believed: addresses or CIDR blocks.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Parses `10.0.0.0/8`, `127.0.0.1`, `fd00::/8` and the like.
    pub fn parse(entries: &[String]) -> Result<TrustedProxies, String> {
        let mut blocks = Vec::new();
        for entry in entries {
            let (addr, bits) = entry.split_once('/').unwrap_or((entry, ""));
            let addr: IpAddr = addr
                .trim()
                .parse()
                .map_err(|_| format!("`{entry}` is not an address or CIDR block"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let bits = if bits.is_empty() {
                max
            } else {
                bits.parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| format!("`{entry}` has a bad prefix length"))?
            };
            blocks.push((addr, bits));
        }
        Ok(TrustedProxies(blocks))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical_ip(ip);
        self.0
            .iter()
            .any(|&(net, bits)| match (canonical_ip(net), ip) {
                (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), bits),
                (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), bits),
                _ => false,
            })
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let (whole, rest) = ((bits / 8) as usize, bits % 8);
    a[..whole] == b[..whole] && (rest == 0 || (a[whole] ^ b[whole]) >> (8 - rest) == 0)
}

/// Whether a string holds a CR or LF, which must never reach a mail header.
pub fn contains_line_break(s: &str) -> bool {
    s.contains(['\r', '\n'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve_config() -> Config {
        toml::from_str(
            r#"
            public_url = "https://login.example.jp"
            data_dir = "/var/lib/kagi"
            [mail]
            transport = "smtp"
            from = "no-reply@example.jp"
            [mail.smtp]
            host = "relay.example.jp"
            "#,
        )
        .unwrap()
    }

    #[test]
    fn defaults_are_the_designs() {
        let c = Config::default();
        assert_eq!(c.kaigo.otp_lifetime_secs, 1800);
        assert_eq!(c.kaigo.otp_attempts, 5);
        assert_eq!(
            (
                c.argon2.memory_kib,
                c.argon2.iterations,
                c.argon2.parallelism
            ),
            (19_456, 2, 1)
        );
        assert_eq!(c.utc_offset_secs(), Ok(9 * 3600));
    }

    #[test]
    fn serve_names_the_missing_field() {
        assert!(serve_config().validate_for_serve().is_ok());
        let mut c = serve_config();
        c.public_url = None;
        assert_eq!(c.validate_for_serve().unwrap_err().field, "public_url");
        let mut c = serve_config();
        c.public_url = Some("ftp://x".into());
        assert_eq!(c.validate_for_serve().unwrap_err().field, "public_url");
        let mut c = serve_config();
        c.mail.smtp.host = None;
        assert_eq!(c.validate_for_serve().unwrap_err().field, "mail.smtp.host");
        let mut c = serve_config();
        c.mail.transport = None;
        assert_eq!(c.validate_for_serve().unwrap_err().field, "mail.transport");
        c.mail.transport = Some(Transport::Capture);
        assert!(c.validate_for_serve().is_ok(), "a lab's capture mode");
        let mut c = serve_config();
        c.mail.from = Some("a@b\r\nBcc: x@y".into());
        assert_eq!(c.validate_for_serve().unwrap_err().field, "mail.from");
    }

    #[test]
    fn a_shutdown_without_time_for_the_requests_under_way_is_refused() {
        let c: Config = toml::from_str("[http]\nshutdown_secs = 30").unwrap();
        assert_eq!(c.http.shutdown_secs, 30);
        assert_eq!(Config::default().http.shutdown_secs, 10);
        let mut c = serve_config();
        c.http.shutdown_secs = 0;
        let refused = c.validate_for_serve().unwrap_err();
        assert_eq!(refused.field, "http.shutdown_secs");
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<Config>("lisen = \"x\"").is_err());
    }

    #[test]
    fn https_is_read_from_the_parsed_url() {
        let mut c = Config {
            public_url: Some("HTTPS://login.example.jp".into()),
            ..Default::default()
        };
        assert!(c.is_https());
        c.public_url = Some("http://login.example.jp".into());
        assert!(!c.is_https());
    }

    fn postgres(url: &str, ca_file: Option<&str>) -> PostgresConfig {
        PostgresConfig {
            url: Some(url.into()),
            ca_file: ca_file.map(PathBuf::from),
        }
    }

    #[test]
    fn sslmode_is_read_in_either_form_and_verify_full_reaches_the_crate_as_require() {
        use postgres::config::SslMode;
        for (url, tls, crate_mode) in [
            (
                "postgresql://k@db/kagi",
                PostgresTls::Preferred,
                SslMode::Prefer,
            ),
            (
                "postgresql://k@db/kagi?sslmode=disable",
                PostgresTls::Off,
                SslMode::Disable,
            ),
            (
                "postgresql://k@db/kagi?sslmode=require",
                PostgresTls::Required,
                SslMode::Require,
            ),
            (
                "postgresql://k@db/kagi?application_name=kagi&sslmode=verify-full",
                PostgresTls::Required,
                SslMode::Require,
            ),
            (
                "postgresql://k@db/kagi?sslmode=verify%2Dca",
                PostgresTls::Required,
                SslMode::Require,
            ),
            (
                "host=db user=k sslmode = verify-full",
                PostgresTls::Required,
                SslMode::Require,
            ),
            (
                "host=db sslmode='verify-full' dbname=kagi",
                PostgresTls::Required,
                SslMode::Require,
            ),
            (
                "host=db sslmode=disable",
                PostgresTls::Off,
                SslMode::Disable,
            ),
        ] {
            let (config, mode) = postgres(url, None).connection().expect(url);
            assert_eq!((mode, config.get_ssl_mode()), (tls, crate_mode), "{url}");
        }
        let (config, _) = postgres("host=db sslmode='verify-full' dbname=kagi", None)
            .connection()
            .unwrap();
        assert_eq!(config.get_dbname(), Some("kagi"), "the rest is kept");
    }

    #[test]
    fn a_ca_file_asks_for_tls_and_cannot_go_with_sslmode_disable() {
        let ca = Some("/etc/kagi/db-ca.pem");
        let (_, mode) = postgres("postgresql://k@db/kagi", ca).connection().unwrap();
        assert_eq!(mode, PostgresTls::Required);
        let refused = postgres("postgresql://k@db/kagi?sslmode=disable", ca)
            .connection()
            .unwrap_err();
        assert_eq!(refused.field, "store.postgres.ca_file");
        for url in [
            "postgresql://k@db/kagi?sslmode=allow",
            "postgresql://k@db/kagi?sslmode=sometimes",
            "postgresql://k@db/kagi?sslrootcert=/etc/ca.pem",
            "",
        ] {
            let refused = postgres(url, None).connection().unwrap_err();
            assert_eq!(refused.field, "store.postgres.url", "{url}");
        }
    }

    #[test]
    fn an_unreadable_postgres_ca_file_is_named() {
        let mut c = serve_config();
        c.store.engine = StoreEngine::Postgres;
        c.store.postgres = postgres(
            "postgresql://k@db/kagi?sslmode=verify-full",
            Some("/nonexistent/db-ca.pem"),
        );
        let refused = c.validate_for_serve().unwrap_err();
        assert_eq!(refused.field, "store.postgres.ca_file");
        assert!(
            refused.problem.contains("/nonexistent/db-ca.pem"),
            "{refused}"
        );
        c.store.postgres.ca_file = Some(PathBuf::from("Cargo.toml"));
        let refused = c.validate_for_serve().unwrap_err();
        assert!(refused.problem.contains("no PEM certificate"), "{refused}");
        c.store.postgres.ca_file = None;
        assert!(c.validate_for_serve().is_ok());
    }

    #[test]
    fn zones() {
        assert_eq!(parse_zone("+05:30"), Some(19_800));
        assert_eq!(parse_zone("-03:00"), Some(-10_800));
        assert_eq!(parse_zone("Tokyo"), None);
    }
}
