//! `kagi import`: accounts from another system, with their passwords
//! already hashed. One JSON object a line:
//!
//! ```text
//! {"site":"kaigo","office":"2711111111","prefecture":"27","email":"a@example.jp","password_phc":"$argon2id$v=19$…","office_name":"なにわ介護","postal_address":"大阪府…"}
//! {"site":"portal","user":"demo-user","email":"demo-user@example.jp","password_phc":"$argon2id$…","coordinator":false}
//! ```
//!
//! Every line is checked before anything is written (a first pass over the
//! file, a second to write); one bad line stops the import and names the
//! line. Only argon2id PHC strings are taken: kagi
//! verifies nothing else.

use crate::site::Site;
use crate::store::{Account, NewAccount, Store, StoreError};
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
    /// portal: the 医療機関等コード.
    institution: Option<String>,
    /// kaigo: the office's name and postal address, for the letter.
    office_name: Option<String>,
    postal_address: Option<String>,
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
    // The accounts already there get their e-mail index entries first (a
    // database from before the index); the new ones get theirs with them.
    store.index_emails_once().map_err(|e| e.to_string())?;
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
    let new = NewAccount {
        site: Some(line.site),
        office: line.office.unwrap_or_default(),
        prefecture: line.prefecture.unwrap_or_default(),
        office_name: line.office_name,
        postal_address: line.postal_address,
        user: line.user.unwrap_or_default(),
        institution: line.institution,
        email: line.email,
        coordinator: line.coordinator,
    };
    let mut account = new
        .build(line.site, line.password_phc)
        .map_err(|e| e.to_string())?;
    account.security_code_phc = line.security_code_phc;
    Ok(account)
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

    #[test]
    fn an_office_may_come_with_its_name_and_postal_address() {
        let with = format!(
            r#"{{"site":"kaigo","office":"2711111111","prefecture":"27","password_phc":"{PHC}","office_name":"なにわ介護","postal_address":"大阪府大阪市中央区1-1"}}"#
        );
        let office = parse(&with).unwrap().office.unwrap();
        assert_eq!(office.name.as_deref(), Some("なにわ介護"));
        assert_eq!(
            office.postal_address.as_deref(),
            Some("大阪府大阪市中央区1-1")
        );
        // A line of before, without them, still reads.
        let without = with.replace(
            r#","office_name":"なにわ介護","postal_address":"大阪府大阪市中央区1-1""#,
            "",
        );
        assert_eq!(parse(&without).unwrap().office.unwrap().name, None);
        let control = with.replace("なにわ介護", "なにわ\\u0007");
        assert!(parse(&control).unwrap_err().contains("office_name"));
    }
}
