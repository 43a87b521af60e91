//! The command line: `kagi demo`, `kagi serve`, `kagi help`.

use std::path::PathBuf;

/// What the user asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Demo {
        listen: Option<String>,
        data_dir: Option<PathBuf>,
        config: Option<PathBuf>,
    },
    Serve {
        config: PathBuf,
    },
    /// `kagi audit verify|export --csv`, on a stopped server's database.
    Audit {
        action: AuditAction,
        data_dir: Option<PathBuf>,
        config: Option<PathBuf>,
    },
    /// `kagi mail list` / `kagi mail retry ID`, through the running server.
    Mail {
        retry: Option<u64>,
        config: Option<PathBuf>,
        data_dir: Option<PathBuf>,
        server: Option<String>,
    },
    /// `kagi import FILE`: accounts with pre-hashed passwords.
    Import {
        file: PathBuf,
        data_dir: Option<PathBuf>,
        config: Option<PathBuf>,
    },
    Help,
    Version,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditAction {
    Verify,
    ExportCsv,
}

pub const HELP: &str = "\
kagi — self-hosted login recovery: the 介護電子請求受付システム (/kaigo) and
医療機関等向け総合ポータルサイト (/portal) recovery flows

Usage:
  kagi demo [--listen ADDR] [--data-dir DIR] [--config FILE]
      Start the demo: demo accounts from data/demo.toml, mail kept in the
      database and shown at /dev/mail instead of being sent.
        --listen ADDR     address to listen on (default 127.0.0.1:8080)
        --data-dir DIR    database directory (default: a new temporary one)
        --config FILE     TOML file with further settings (see README)

  kagi serve --config FILE
      Run for real: the file must set public_url, data_dir and the mail
      settings; kagi names the field and stops if one is missing or wrong.

  kagi audit verify [--data-dir DIR | --config FILE]
      Check the audit trail's hash chain: exit 0 if every entry is as
      written, 1 naming the first entry changed or removed. Run it on a
      stopped server's database.

  kagi audit export --csv [--data-dir DIR | --config FILE]
      Write the audit trail as CSV to standard output.

  kagi mail list [--config FILE | --data-dir DIR] [--server ADDR]
  kagi mail retry ID [--config FILE | --data-dir DIR] [--server ADDR]
      Ask the running server for the mail it has not delivered yet
      (queued or failed), or to try one again now. The server's address
      comes from --server or the config's listen; the admin token from the
      config's admin.token or the data directory's admin.token file.

  kagi import FILE [--data-dir DIR | --config FILE]
      Load accounts from another system, one JSON object a line, with
      their passwords as argon2id PHC strings (see README). FILE - reads
      standard input. Run it on a stopped server's database.

  kagi help       this text
  kagi --version  the version

Pages: /kaigo and /portal (login and recovery), /healthz, and in demo mode
(or a lab's serve with mail.transport = \"capture\") /dev/mail, /dev/mail.json,
/dev/captcha and /dev/captcha.json.
";

/// Reads the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, String> {
    let mut args = args.iter();
    let command = match args.next().map(String::as_str) {
        None | Some("help" | "--help" | "-h") => return Ok(Command::Help),
        Some("--version" | "-V" | "version") => return Ok(Command::Version),
        Some(c @ ("demo" | "serve")) => c,
        Some("audit") => return parse_audit(args.as_slice()),
        Some("mail") => return parse_mail(args.as_slice()),
        Some("import") => return parse_import(args.as_slice()),
        Some(other) => return Err(format!("unknown command `{other}`; try `kagi help`")),
    };
    let (mut listen, mut data_dir, mut config) = (None, None, None);
    while let Some(flag) = args.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag.as_str(), None),
        };
        if matches!(name, "--help" | "-h") {
            return Ok(Command::Help);
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next().cloned())
                .ok_or_else(|| format!("`{name}` needs a value"))
        };
        match (command, name) {
            ("demo", "--listen") => listen = Some(value()?),
            ("demo", "--data-dir") => data_dir = Some(PathBuf::from(value()?)),
            (_, "--config") => config = Some(PathBuf::from(value()?)),
            _ => {
                return Err(format!(
                    "`kagi {command}` has no option `{name}`; try `kagi help`"
                ))
            }
        }
    }
    Ok(match command {
        "demo" => Command::Demo {
            listen,
            data_dir,
            config,
        },
        _ => Command::Serve {
            config: config.ok_or("`kagi serve` needs --config FILE")?,
        },
    })
}

fn parse_import(args: &[String]) -> Result<Command, String> {
    let mut args = args.iter();
    let file = args
        .next()
        .filter(|f| !f.starts_with("--"))
        .ok_or("`kagi import` needs a FILE (or - for standard input)")?;
    let (mut data_dir, mut config) = (None, None);
    while let Some(flag) = args.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag.as_str(), None),
        };
        let value = inline
            .or_else(|| args.next().cloned())
            .ok_or_else(|| format!("`{name}` needs a value"))?;
        match name {
            "--data-dir" => data_dir = Some(PathBuf::from(value)),
            "--config" => config = Some(PathBuf::from(value)),
            _ => {
                return Err(format!(
                    "`kagi import` has no option `{name}`; try `kagi help`"
                ))
            }
        }
    }
    if data_dir.is_none() && config.is_none() {
        return Err("`kagi import` needs --data-dir DIR or --config FILE".into());
    }
    Ok(Command::Import {
        file: PathBuf::from(file),
        data_dir,
        config,
    })
}

fn parse_mail(args: &[String]) -> Result<Command, String> {
    let mut args = args.iter();
    let retry = match args.next().map(String::as_str) {
        Some("list") => None,
        Some("retry") => Some(
            args.next()
                .and_then(|id| id.parse::<u64>().ok())
                .ok_or("`kagi mail retry` needs the ID that `kagi mail list` shows")?,
        ),
        _ => return Err("`kagi mail` needs `list` or `retry ID`; try `kagi help`".into()),
    };
    let (mut config, mut data_dir, mut server) = (None, None, None);
    while let Some(flag) = args.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next().cloned())
                .ok_or_else(|| format!("`{name}` needs a value"))
        };
        match name {
            "--config" => config = Some(PathBuf::from(value()?)),
            "--data-dir" => data_dir = Some(PathBuf::from(value()?)),
            "--server" => server = Some(value()?),
            _ => {
                return Err(format!(
                    "`kagi mail` has no option `{name}`; try `kagi help`"
                ))
            }
        }
    }
    if config.is_none() && (data_dir.is_none() || server.is_none()) {
        return Err("`kagi mail` needs --config FILE, or --data-dir DIR and --server ADDR".into());
    }
    Ok(Command::Mail {
        retry,
        config,
        data_dir,
        server,
    })
}

fn parse_audit(args: &[String]) -> Result<Command, String> {
    let mut args = args.iter();
    let action = match args.next().map(String::as_str) {
        Some("verify") => AuditAction::Verify,
        Some("export") => AuditAction::ExportCsv,
        _ => return Err("`kagi audit` needs `verify` or `export --csv`; try `kagi help`".into()),
    };
    let (mut data_dir, mut config, mut csv) = (None, None, false);
    while let Some(flag) = args.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next().cloned())
                .ok_or_else(|| format!("`{name}` needs a value"))
        };
        match name {
            "--data-dir" => data_dir = Some(PathBuf::from(value()?)),
            "--config" => config = Some(PathBuf::from(value()?)),
            "--csv" => csv = true,
            _ => {
                return Err(format!(
                    "`kagi audit` has no option `{name}`; try `kagi help`"
                ))
            }
        }
    }
    if action == AuditAction::ExportCsv && !csv {
        return Err("`kagi audit export` writes CSV only: add --csv".into());
    }
    if data_dir.is_none() && config.is_none() {
        return Err("`kagi audit` needs --data-dir DIR or --config FILE".into());
    }
    Ok(Command::Audit {
        action,
        data_dir,
        config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, String> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn parses_commands() {
        assert_eq!(p(&[]), Ok(Command::Help));
        assert_eq!(
            p(&["demo", "--listen", "0.0.0.0:9000", "--data-dir=/tmp/x"]),
            Ok(Command::Demo {
                listen: Some("0.0.0.0:9000".into()),
                data_dir: Some("/tmp/x".into()),
                config: None
            })
        );
        assert_eq!(
            p(&["serve", "--config", "k.toml"]),
            Ok(Command::Serve {
                config: "k.toml".into()
            })
        );
        assert!(p(&["serve"]).unwrap_err().contains("--config"));
        assert!(p(&["serve", "--listen", "x"])
            .unwrap_err()
            .contains("--listen"));
        assert!(p(&["demo", "--listen"])
            .unwrap_err()
            .contains("needs a value"));
        assert!(p(&["start"]).unwrap_err().contains("unknown command"));
        assert_eq!(
            p(&["audit", "verify", "--data-dir", "/d"]),
            Ok(Command::Audit {
                action: AuditAction::Verify,
                data_dir: Some("/d".into()),
                config: None
            })
        );
        assert!(p(&["audit", "export", "--data-dir", "/d"])
            .unwrap_err()
            .contains("--csv"));
        assert!(p(&["audit", "verify"]).unwrap_err().contains("--data-dir"));
        assert_eq!(
            p(&[
                "mail",
                "retry",
                "7",
                "--data-dir",
                "/d",
                "--server",
                "127.0.0.1:9"
            ]),
            Ok(Command::Mail {
                retry: Some(7),
                config: None,
                data_dir: Some("/d".into()),
                server: Some("127.0.0.1:9".into())
            })
        );
        assert!(p(&["mail", "retry", "x"]).unwrap_err().contains("ID"));
        assert!(p(&["mail", "list"]).unwrap_err().contains("--config"));
    }
}
