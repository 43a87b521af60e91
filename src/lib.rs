//! kagi — a self-hosted login-recovery server in one binary.
//!
//! It reproduces the self-service recovery of two sites: the
//! 介護電子請求受付システム (kaigo: office number + security e-mail → a mailed
//! one-time password → new password, the security code cleared) and the
//! 医療機関等向け総合ポータルサイト (portal: user name + CAPTCHA → registered
//! e-mail → a mailed reset link → new password).
//!
//! The code map and the rules the layers keep are in `ARCHITECTURE.md`;
//! `tests/it/tidy.rs` fails when one of them breaks.

/// Writes a line to standard error, as `eprintln!` does, but never panics:
/// a log that cannot be written (standard error going to a file on a full
/// disk, say) must not take the server down with it. `eprintln!` itself
/// writes the line, so that a test harness captures it (a passing test's
/// server log stays out of the way; a failing one's is shown); the panic
/// it makes when standard error cannot be written is caught here.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            $crate::log::say(&format!($($arg)*))
        }));
    }};
}

mod address;
pub mod alloc;
pub mod cli;
pub mod clock;
pub mod config;
mod log;
pub mod site;
pub mod store;
pub mod totp;

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
mod commands;
mod console;
mod demo;
mod http;
mod import;
mod limit;
mod mail;
mod metrics;
mod os;
mod pages;
mod policy;
mod pool;
mod router;
mod secret;
mod server;
mod sites;
pub mod text;
mod tls;

use clock::Clock;
use config::Config;
use std::fmt;

pub use server::{start, Mode, Options, Running};

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
            // Before any thread starts, so that every thread holds them.
            os::hold_stop_signals();
            let running = start(Options {
                config: c,
                mode: Mode::Demo,
                clock: Clock::system(),
            })?;
            commands::print_demo_welcome(&running);
            running.serve_until_signalled();
            Ok(())
        }
        cli::Command::Audit {
            action,
            data_dir,
            config,
        } => commands::audit(action, data_dir, config),
        cli::Command::Mail { retry, reach } => commands::mail(retry, reach),
        cli::Command::Operator { action, reach } => commands::operator(action, reach),
        cli::Command::Postal { action, reach } => commands::postal(action, reach),
        cli::Command::Import {
            file,
            data_dir,
            config,
        } => commands::import(&file, data_dir, config),
        cli::Command::Backup { file, reach } => commands::backup(&file, reach),
        cli::Command::Restore {
            file,
            data_dir,
            config,
            key_file,
        } => commands::restore(&file, data_dir, config, key_file.as_deref()),
        cli::Command::Migrate {
            data_dir,
            config,
            to,
        } => commands::migrate(data_dir, config, &to),
        cli::Command::Serve { config } => {
            let c = Config::from_file(&config).map_err(Error::Config)?;
            os::hold_stop_signals();
            let running = start(Options {
                config: c,
                mode: Mode::Serve,
                clock: Clock::system(),
            })?;
            println!(
                "kagi: serving {} on http://{} (database {}), ready in {} ms",
                running.public_url(),
                running.addr(),
                running.data_dir().display(),
                running.started().as_millis()
            );
            running.serve_until_signalled();
            Ok(())
        }
    }
}
