//! `kagi import`: accounts from another system, with their passwords
//! already hashed. One JSON object a line:
//!
//! ```text
//! {"site":"kaigo","office":"2711111111","prefecture":"27","email":"a@example.jp","password_phc":"$argon2id$v=19$…"}
//! {"site":"portal","user":"demo-user","email":"demo-user@example.jp","password_phc":"$argon2id$…","coordinator":false}
//! ```
//!
//! Every line is checked before anything is written (a first pass over the
//! file, a second to write); one bad line stops the import and names the
//! line. Only argon2id PHC strings are taken: kagi
//! verifies nothing else.

use crate::site::Site;
use crate::store::{Account, Office, Store, StoreError};
use serde::Deserialize;
use std::io::BufRead;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    site: Site,
    /// kaigo: the 10-digit office number and the billing prefecture.
    office: Option<String>,
    prefecture: Option<String>,
    /// portal: the user name.
    user: Option<String>,
    email: Option<String>,
    password_phc: String,
    security_code_phc: Option<String>,
    #[serde(default)]
    coordinator: bool,
}

/// The accounts of `input`, one per non-blank line, each an error naming
/// its line if it does not read.
fn accounts(input: impl BufRead) -> impl Iterator<Item = Result<Account, String>> {
    input
        .lines()
        .enumerate()
        .filter(|(_, line)| line.as_ref().map_or(true, |l| !l.trim().is_empty()))
        .map(|(n, line)| {
            line.map_err(|e| e.to_string())
                .and_then(|l| parse(&l))
                .map_err(|e| format!("line {}: {e}", n + 1))
        })
}

/// Checks every line of `input` and writes nothing; returns how many
/// accounts it holds. Memory stays flat however long the file is.
pub fn check(input: impl BufRead) -> Result<u64, String> {
    accounts(input).try_fold(0, |n, account| account.map(|_| n + 1))
}

/// What an import wrote: how many accounts, and how many of their
/// password hashes have each cost (`m=…,t=…,p=…`).
#[derive(Debug, Default)]
pub struct Imported {
    pub accounts: u64,
    pub costs: std::collections::BTreeMap<String, u64>,
}

/// Writes the accounts of `input` (which `check` has passed) in batches
/// of 1,000 and flushes, and adds the costs of their password hashes to
/// the database's census (a login then spends a hash at each cost, so that
/// time tells nothing). (For a million accounts sled held 1.9 GiB at the
/// peak with batches of 10,000, 86 MiB with 1,000, and the import was
/// faster.)
pub fn write(store: &Store, input: impl BufRead) -> Result<Imported, String> {
    let mut imported = Imported::default();
    let mut batch = Vec::with_capacity(1_000);
    let mut accounts = accounts(input).peekable();
    while let Some(account) = accounts.next() {
        let account = account?;
        let cost = crate::secret::cost_of(&account.password_phc).unwrap_or_default();
        *imported.costs.entry(cost).or_default() += 1;
        batch.push(account);
        if batch.len() == 1_000 || accounts.peek().is_none() {
            store
                .put_accounts(&batch)
                .map_err(|e: StoreError| e.to_string())?;
            imported.accounts += batch.len() as u64;
            batch.clear();
        }
    }
    let mut census = store.hash_costs().map_err(|e| e.to_string())?;
    census.extend(imported.costs.keys().cloned());
    store.put_hash_costs(&census).map_err(|e| e.to_string())?;
    store.flush().map_err(|e| e.to_string())?;
    Ok(imported)
}

fn parse(text: &str) -> Result<Account, String> {
    let line: Line = serde_json::from_str(text).map_err(|e| e.to_string())?;
    for phc in std::iter::once(&line.password_phc).chain(line.security_code_phc.iter()) {
        let parsed =
            argon2::PasswordHash::new(phc).map_err(|e| format!("not a PHC string: {e}"))?;
        if parsed.algorithm.as_str() != "argon2id" {
            return Err(format!("{} is not argon2id", parsed.algorithm));
        }
    }
    if let Some(email) = &line.email {
        if !crate::address::is_plausible(email) {
            return Err(format!("`{email}` is not a mail address"));
        }
    }
    let (id, office) = match line.site {
        Site::Kaigo => {
            let (Some(number), Some(prefecture)) = (line.office, line.prefecture) else {
                return Err("a kaigo account needs office and prefecture".into());
            };
            let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
            if !digits(&number, 10) || !digits(&prefecture, 2) {
                return Err("office is 10 digits, prefecture 2".into());
            }
            (
                format!("KJ{prefecture}{number}"),
                Some(Office { number, prefecture }),
            )
        }
        Site::Portal => {
            let user = line.user.ok_or("a portal account needs user")?;
            if user.is_empty() || user.chars().count() > 100 || user.chars().any(char::is_control) {
                return Err(format!("`{user}` is not a user name"));
            }
            (user, None)
        }
    };
    Ok(Account {
        site: line.site,
        id,
        email: line.email,
        password_phc: line.password_phc,
        security_code_phc: line.security_code_phc,
        generation: 0,
        office,
        coordinator: line.coordinator,
        locked: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";

    #[test]
    fn reads_both_sites_and_names_a_bad_line() {
        let kaigo = format!(
            r#"{{"site":"kaigo","office":"2711111111","prefecture":"27","email":"a@example.jp","password_phc":"{PHC}"}}"#
        );
        let account = parse(&kaigo).unwrap();
        assert_eq!(account.id, "KJ272711111111");
        let portal = format!(r#"{{"site":"portal","user":"u1","password_phc":"{PHC}"}}"#);
        assert_eq!(parse(&portal).unwrap().id, "u1");
        assert!(
            parse(r#"{"site":"portal","user":"u1","password_phc":"secret"}"#)
                .unwrap_err()
                .contains("PHC")
        );
        let bcrypt =
            r#"{"site":"portal","user":"u1","password_phc":"$2b$12$abcdefghijklmnopqrstuu"}"#;
        assert!(parse(bcrypt).is_err());
        assert!(parse(&kaigo.replace("2711111111", "27111")).is_err());
        assert!(parse(&portal.replace("\"u1\"", "\"u1\",\"extra\":1")).is_err());
    }
}
