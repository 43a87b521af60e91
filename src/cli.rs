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
        reach: Reach,
    },
    /// `kagi operator add|list|remove|reset`, through the running server.
    Operator {
        action: OperatorAction,
        reach: Reach,
    },
    /// `kagi postal list|issue|reject`, through the running server.
    Postal {
        action: PostalAction,
        reach: Reach,
    },
    /// `kagi backup FILE`: a backup of the running server's database.
    Backup {
        file: PathBuf,
        reach: Reach,
    },
    /// `kagi restore FILE`: a new database from a backup, with the key
    /// file it was made under (`key_file`) or without (None).
    Restore {
        file: PathBuf,
        data_dir: Option<PathBuf>,
        config: Option<PathBuf>,
        key_file: Option<PathBuf>,
    },
    /// `kagi migrate`: a stopped server's sled database (`data_dir`, or
    /// the config's) moved into the empty PostgreSQL database at `to`.
    Migrate {
        data_dir: Option<PathBuf>,
        config: Option<PathBuf>,
        to: String,
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

/// How a command finds the running server and its admin token: the
/// config, or the data directory and the server's address.
#[derive(Debug, PartialEq, Eq)]
pub struct Reach {
    pub config: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub server: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum OperatorAction {
    Add(String),
    List,
    Remove(String),
    Reset(String),
}

#[derive(Debug, PartialEq, Eq)]
pub enum PostalAction {
    List,
    /// Issue the letter of request `id`, written to `letter`; a new
    /// office's name and postal address may be given.
    Issue {
        id: u64,
        letter: PathBuf,
        name: Option<String>,
        address: Option<String>,
    },
    Reject {
        id: u64,
        reason: String,
    },
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
        --config FILE     TOML file with further settings (see docs/configuration.md)

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

  kagi operator add NAME [--config FILE | --data-dir DIR] [--server ADDR]
  kagi operator reset NAME  (same options)
  kagi operator remove NAME (same options)
  kagi operator list        (same options)
      Manage the operators of the console at /admin, through the running
      server as `kagi mail` does. `add` and `reset` print a one-time
      enrolment link, valid for one hour, where the operator sets a
      password and a TOTP authenticator app; `reset` stops the old
      password and TOTP at once; `remove` ends the operator's sessions.

  kagi postal list [--config FILE | --data-dir DIR] [--server ADDR]
  kagi postal issue ID --letter FILE.html [--name TEXT] [--address TEXT] (same options)
  kagi postal reject ID --reason TEXT (same options)
      The kaigo postal requests (書類郵送) waiting on the running server:
      list them; issue one's letter (a new temporary password, or a new
      account for a new office, which needs --address), written to FILE
      for printing (it holds the password: kept to you alone, 0600); or
      reject one, with a reason. As at the console's 書類郵送 page.

  kagi backup FILE [--config FILE | --data-dir DIR] [--server ADDR]
      Ask the running server for a backup of its whole database, made
      between two requests while it goes on serving, and write it to FILE
      (0600). The key file is NOT in it: keep a copy of the key file
      (kagi.key beside the database, or store.key_file) apart from the
      backups; without it a backup restores accounts, operators' names and
      the audit trail, but no live code, link, session or queued mail.

  kagi restore FILE (--data-dir DIR | --config FILE) (--key-file KEY | --without-key)
      Build a new database in DIR (which must hold none) from a backup,
      with the key file the backup was made under (copied beside the new
      database, or to store.key_file), or without it under new keys. The
      backup is checked whole first; the audit trail is verified after.
      Then start kagi on DIR.

  kagi migrate (--from-data-dir DIR | --config FILE) --to URL
      Move a stopped server's embedded database (DIR, or the config's
      data_dir) into the PostgreSQL database at URL, which must hold no
      kagi records (it is never merged into). Everything in the database
      moves: accounts, operators, the audit trail (it still verifies),
      postal requests, and the flows, sessions, links and mail in flight;
      what the server kept only in memory (CAPTCHA challenges, rate-limit
      counts) does not. The key file stays as it is (DIR/kagi.key, or the
      config's store.key_file): every PostgreSQL instance must read it.
      Refused while a server has DIR open. See docs/operations.md,
      \"Moving to PostgreSQL\".

  kagi import FILE [--data-dir DIR | --config FILE]
      Load accounts from another system, one JSON object a line, with
      their passwords as argon2id PHC strings (see docs/operations.md). FILE - reads
      standard input. Run it on a stopped server's database.

  kagi help       this text
  kagi --version  the version

Pages: /kaigo and /portal (login and recovery), /admin (the operators'
console), /healthz; in demo mode (or a lab's serve with mail.transport =
\"capture\") /dev/mail, /dev/mail.json, /dev/captcha and /dev/captcha.json;
in demo mode also /dev/totp (the demo operator's current code).
";

/// Reads the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, String> {
    let (command, rest) = match args.split_first() {
        None => return Ok(Command::Help),
        Some((c, rest)) => (c.as_str(), rest),
    };
    // `kagi COMMAND --help` (or `-h`) anywhere in a command's options is
    // the help, whatever else is missing.
    if rest.iter().any(|a| a == "--help" || a == "-h") {
        return Ok(Command::Help);
    }
    match command {
        "help" | "--help" | "-h" => Ok(Command::Help),
        "--version" | "-V" | "version" => Ok(Command::Version),
        "demo" => {
            let f = Flags::read(rest, "demo", &["--listen", "--data-dir", "--config"], &[])?;
            if let Some(help) = f.help {
                return Ok(help);
            }
            Ok(Command::Demo {
                listen: f.text("--listen"),
                data_dir: f.path("--data-dir"),
                config: f.path("--config"),
            })
        }
        "serve" => {
            let f = Flags::read(rest, "serve", &["--config"], &[])?;
            if let Some(help) = f.help {
                return Ok(help);
            }
            Ok(Command::Serve {
                config: f
                    .path("--config")
                    .ok_or("`kagi serve` needs --config FILE")?,
            })
        }
        "audit" => parse_audit(rest),
        "mail" => parse_mail(rest),
        "operator" => parse_operator(rest),
        "postal" => parse_postal(rest),
        "import" => parse_import(rest),
        "backup" => parse_backup(rest),
        "restore" => parse_restore(rest),
        "migrate" => parse_migrate(rest),
        other => Err(format!("unknown command `{other}`; try `kagi help`")),
    }
}

/// The options after a command: `--name value` or `--name=value` for the
/// names in `valued`, bare `--name` for those in `switches`; anything else
/// is an error naming it. `--help` anywhere asks for help.
struct Flags {
    values: Vec<(String, String)>,
    help: Option<Command>,
}

impl Flags {
    fn read(
        args: &[String],
        command: &str,
        valued: &[&str],
        switches: &[&str],
    ) -> Result<Flags, String> {
        let mut flags = Flags {
            values: Vec::new(),
            help: None,
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (flag.as_str(), None),
            };
            if matches!(name, "--help" | "-h") {
                flags.help = Some(Command::Help);
            } else if switches.contains(&name) {
                flags.values.push((name.to_string(), String::new()));
            } else if valued.contains(&name) {
                let value = inline
                    .or_else(|| args.next().cloned())
                    .ok_or_else(|| format!("`{name}` needs a value"))?;
                flags.values.push((name.to_string(), value));
            } else {
                return Err(format!(
                    "`kagi {command}` has no option `{name}`; try `kagi help`"
                ));
            }
        }
        Ok(flags)
    }

    fn text(&self, name: &str) -> Option<String> {
        self.values
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    fn path(&self, name: &str) -> Option<PathBuf> {
        self.text(name).map(PathBuf::from)
    }

    fn has(&self, name: &str) -> bool {
        self.values.iter().any(|(n, _)| n == name)
    }
}

fn parse_import(args: &[String]) -> Result<Command, String> {
    let Some((file, rest)) = args.split_first().filter(|(f, _)| !f.starts_with("--")) else {
        return Err("`kagi import` needs a FILE (or - for standard input)".into());
    };
    let f = Flags::read(rest, "import", &["--data-dir", "--config"], &[])?;
    if f.path("--data-dir").is_none() && f.path("--config").is_none() {
        return Err("`kagi import` needs --data-dir DIR or --config FILE".into());
    }
    Ok(Command::Import {
        file: PathBuf::from(file),
        data_dir: f.path("--data-dir"),
        config: f.path("--config"),
    })
}

fn parse_backup(args: &[String]) -> Result<Command, String> {
    let Some((file, rest)) = args.split_first().filter(|(f, _)| !f.starts_with("--")) else {
        return Err("`kagi backup` needs the FILE to write the backup to".into());
    };
    Ok(Command::Backup {
        file: PathBuf::from(file),
        reach: parse_reach(rest, "backup")?,
    })
}

fn parse_restore(args: &[String]) -> Result<Command, String> {
    let Some((file, rest)) = args.split_first().filter(|(f, _)| !f.starts_with("--")) else {
        return Err("`kagi restore` needs the backup FILE".into());
    };
    let f = Flags::read(
        rest,
        "restore",
        &["--data-dir", "--config", "--key-file"],
        &["--without-key"],
    )?;
    if f.path("--data-dir").is_none() && f.path("--config").is_none() {
        return Err(
            "`kagi restore` needs --data-dir DIR (a new directory) or --config FILE".into(),
        );
    }
    let key_file = f.path("--key-file");
    if key_file.is_some() == f.has("--without-key") {
        return Err(
            "`kagi restore` needs --key-file KEY, the key file the backup was made under, or \
             --without-key to restore without it (no live code, link, session or mail; \
             operators need a new enrolment)"
                .into(),
        );
    }
    Ok(Command::Restore {
        file: PathBuf::from(file),
        data_dir: f.path("--data-dir"),
        config: f.path("--config"),
        key_file,
    })
}

fn parse_migrate(args: &[String]) -> Result<Command, String> {
    let f = Flags::read(
        args,
        "migrate",
        &["--from-data-dir", "--config", "--to"],
        &[],
    )?;
    let to = f
        .text("--to")
        .ok_or("`kagi migrate` needs --to URL, the PostgreSQL database to move into")?;
    if f.path("--from-data-dir").is_none() && f.path("--config").is_none() {
        return Err(
            "`kagi migrate` needs --from-data-dir DIR (the database to move) or --config FILE"
                .into(),
        );
    }
    Ok(Command::Migrate {
        data_dir: f.path("--from-data-dir"),
        config: f.path("--config"),
        to,
    })
}

fn parse_mail(args: &[String]) -> Result<Command, String> {
    let (retry, rest) = match args.split_first() {
        Some((list, rest)) if list == "list" => (None, rest),
        Some((retry, rest)) if retry == "retry" => {
            let (id, rest) = rest
                .split_first()
                .and_then(|(id, rest)| Some((id.parse::<u64>().ok()?, rest)))
                .ok_or("`kagi mail retry` needs the ID that `kagi mail list` shows")?;
            (Some(id), rest)
        }
        _ => return Err("`kagi mail` needs `list` or `retry ID`; try `kagi help`".into()),
    };
    let reach = parse_reach(rest, "mail")?;
    Ok(Command::Mail { retry, reach })
}

/// The options of a command that asks the running server.
fn parse_reach(args: &[String], command: &str) -> Result<Reach, String> {
    Ok(parse_reach_with(args, command, &[])?.0)
}

/// The same, with more valued options (`more`), read into the flags.
fn parse_reach_with(
    args: &[String],
    command: &str,
    more: &[&str],
) -> Result<(Reach, Flags), String> {
    let mut valued = vec!["--config", "--data-dir", "--server"];
    valued.extend_from_slice(more);
    let f = Flags::read(args, command, &valued, &[])?;
    let (config, data_dir, server) = (f.path("--config"), f.path("--data-dir"), f.text("--server"));
    if config.is_none() && (data_dir.is_none() || server.is_none()) {
        return Err(format!(
            "`kagi {command}` needs --config FILE, or --data-dir DIR and --server ADDR"
        ));
    }
    let reach = Reach {
        config,
        data_dir,
        server,
    };
    Ok((reach, f))
}

fn parse_postal(args: &[String]) -> Result<Command, String> {
    let usage = "`kagi postal` needs `list`, `issue ID --letter FILE` or `reject ID --reason TEXT`; try `kagi help`";
    let (verb, rest) = args.split_first().ok_or(usage)?;
    if verb == "list" {
        let reach = parse_reach(rest, "postal")?;
        return Ok(Command::Postal {
            action: PostalAction::List,
            reach,
        });
    }
    let (id, rest) = rest
        .split_first()
        .and_then(|(id, rest)| Some((id.parse::<u64>().ok()?, rest)))
        .ok_or_else(|| {
            format!("`kagi postal {verb}` needs the request's ID that `kagi postal list` shows")
        })?;
    let (reach, f) = parse_reach_with(
        rest,
        "postal",
        &["--letter", "--reason", "--name", "--address"],
    )?;
    let action = match verb.as_str() {
        "issue" => PostalAction::Issue {
            id,
            letter: f
                .path("--letter")
                .ok_or("`kagi postal issue` needs --letter FILE.html: the letter holds the temporary password")?,
            name: f.text("--name"),
            address: f.text("--address"),
        },
        "reject" => PostalAction::Reject {
            id,
            reason: f
                .text("--reason")
                .filter(|r| !r.trim().is_empty())
                .ok_or("`kagi postal reject` needs --reason TEXT")?,
        },
        _ => return Err(usage.into()),
    };
    Ok(Command::Postal { action, reach })
}

fn parse_operator(args: &[String]) -> Result<Command, String> {
    let usage =
        "`kagi operator` needs `add NAME`, `list`, `remove NAME` or `reset NAME`; try `kagi help`";
    let (action, rest) = match args.split_first() {
        Some((list, rest)) if list == "list" => (OperatorAction::List, rest),
        Some((verb, rest)) => {
            let (name, rest) = rest
                .split_first()
                .filter(|(name, _)| !name.starts_with("--"))
                .ok_or_else(|| format!("`kagi operator {verb}` needs the operator's NAME"))?;
            let name = name.clone();
            let action = match verb.as_str() {
                "add" => OperatorAction::Add(name),
                "remove" => OperatorAction::Remove(name),
                "reset" => OperatorAction::Reset(name),
                _ => return Err(usage.into()),
            };
            (action, rest)
        }
        None => return Err(usage.into()),
    };
    let reach = parse_reach(rest, "operator")?;
    Ok(Command::Operator { action, reach })
}

fn parse_audit(args: &[String]) -> Result<Command, String> {
    let (action, rest) = match args.split_first() {
        Some((a, rest)) if a == "verify" => (AuditAction::Verify, rest),
        Some((a, rest)) if a == "export" => (AuditAction::ExportCsv, rest),
        _ => return Err("`kagi audit` needs `verify` or `export --csv`; try `kagi help`".into()),
    };
    let f = Flags::read(rest, "audit", &["--data-dir", "--config"], &["--csv"])?;
    if action == AuditAction::ExportCsv && !f.has("--csv") {
        return Err("`kagi audit export` writes CSV only: add --csv".into());
    }
    if f.path("--data-dir").is_none() && f.path("--config").is_none() {
        return Err("`kagi audit` needs --data-dir DIR or --config FILE".into());
    }
    Ok(Command::Audit {
        action,
        data_dir: f.path("--data-dir"),
        config: f.path("--config"),
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
        for command in ["backup", "restore", "migrate", "import", "postal", "mail"] {
            assert_eq!(p(&[command, "--help"]), Ok(Command::Help), "{command}");
        }
        assert_eq!(
            p(&["backup", "b.kagi", "--config", "k.toml"]),
            Ok(Command::Backup {
                file: "b.kagi".into(),
                reach: Reach {
                    config: Some("k.toml".into()),
                    data_dir: None,
                    server: None
                }
            })
        );
        assert!(p(&["backup", "--config", "k.toml"])
            .unwrap_err()
            .contains("FILE"));
        assert_eq!(
            p(&[
                "restore",
                "b.kagi",
                "--data-dir",
                "/n",
                "--key-file",
                "k.key"
            ]),
            Ok(Command::Restore {
                file: "b.kagi".into(),
                data_dir: Some("/n".into()),
                config: None,
                key_file: Some("k.key".into())
            })
        );
        assert!(p(&["restore", "b.kagi", "--data-dir", "/n"])
            .unwrap_err()
            .contains("--without-key"));
        assert!(p(&[
            "restore",
            "b.kagi",
            "--data-dir",
            "/n",
            "--key-file",
            "k",
            "--without-key"
        ])
        .unwrap_err()
        .contains("--without-key"));
        assert_eq!(
            p(&[
                "migrate",
                "--from-data-dir",
                "/d",
                "--to",
                "postgresql://k@h/kagi"
            ]),
            Ok(Command::Migrate {
                data_dir: Some("/d".into()),
                config: None,
                to: "postgresql://k@h/kagi".into()
            })
        );
        assert!(p(&["migrate", "--from-data-dir", "/d"])
            .unwrap_err()
            .contains("--to URL"));
        assert!(p(&["migrate", "--to", "postgresql://k@h/kagi"])
            .unwrap_err()
            .contains("--from-data-dir"));
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
                reach: Reach {
                    config: None,
                    data_dir: Some("/d".into()),
                    server: Some("127.0.0.1:9".into())
                }
            })
        );
        assert_eq!(
            p(&["operator", "add", "alice", "--config", "k.toml"]),
            Ok(Command::Operator {
                action: OperatorAction::Add("alice".into()),
                reach: Reach {
                    config: Some("k.toml".into()),
                    data_dir: None,
                    server: None
                }
            })
        );
        assert!(p(&["operator", "add", "--config", "k.toml"])
            .unwrap_err()
            .contains("NAME"));
        assert!(p(&["operator", "rename", "a", "--config", "k"])
            .unwrap_err()
            .contains("add NAME"));
        assert!(p(&["mail", "retry", "x"]).unwrap_err().contains("ID"));
        assert!(p(&["mail", "list"]).unwrap_err().contains("--config"));
    }
}
