//! Accounts: by site and ID, kaigo accounts by office, and the census of
//! the stored password hashes' costs.

use super::*;

/// The key of an account: `site:id`.
pub(super) fn account_key(site: Site, id: &str) -> Vec<u8> {
    format!("{}:{id}", site.name()).into_bytes()
}

/// The key of an account's entry in the e-mail index.
fn email_key(email: &str, site: Site, id: &str) -> Vec<u8> {
    let mut key = crate::address::normalize(email).into_bytes();
    key.push(0);
    key.extend(account_key(site, id));
    key
}

/// The institution index's key: 医療機関等コード, NUL, user name.
fn institution_key(code: &str, id: &str) -> Vec<u8> {
    let mut key = code.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(id.as_bytes());
    key
}

/// The office index's key: office number and billing prefecture.
fn office_key(office: &Office) -> Vec<u8> {
    format!("{}{}", office.number, office.prefecture).into_bytes()
}

/// The most accounts one search page shows.
pub const SEARCH_PAGE: usize = 50;

/// A page of the console's account search.
#[derive(Debug, Default)]
pub struct Found {
    pub accounts: Vec<Account>,
    /// There are more after this page.
    pub more: bool,
}

impl Store {
    pub fn account(&self, site: Site, id: &str) -> Result<Option<Account>> {
        let t = self.trees()?;
        t.accounts
            .get(account_key(site, id))?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Changes an account atomically: `change` sees the stored record and
    /// says whether to write it back (it may run more than once, on a fresh
    /// copy each time: keep it pure). Requests run side by side on the
    /// hashing workers, so every change of an existing account goes
    /// through here: a write never puts back what another one changed
    /// (a password set by a recovery, say). None when there is no account.
    pub fn update_account(
        &self,
        site: Site,
        id: &str,
        mut change: impl FnMut(&mut Account) -> bool,
    ) -> Result<Option<bool>> {
        let t = self.trees()?;
        let key = account_key(site, id);
        loop {
            let Some(old) = t.accounts.get(&key)? else {
                return Ok(None);
            };
            let mut account: Account = decode(&old)?;
            let email = account.email.clone();
            if !change(&mut account) {
                return Ok(Some(false));
            }
            let new = encode(&account)?;
            if t.accounts
                .compare_and_swap(&key, Some(old), Some(new))?
                .is_ok()
            {
                // A new address is found by the search at once; the old
                // entry goes (a crash in between leaves it stale, and a
                // search checks what it finds).
                if account.email != email {
                    if let Some(new) = &account.email {
                        t.emails.insert(email_key(new, site, id), &[])?;
                    }
                    if let Some(old) = &email {
                        t.emails.remove(email_key(old, site, id))?;
                    }
                }
                return Ok(Some(true));
            }
        }
    }

    /// Creates or replaces an account and its office index entry.
    pub fn put_account(&self, account: &Account) -> Result<()> {
        let t = self.trees()?;
        // Account first: an index entry never points at nothing.
        t.accounts
            .insert(account_key(account.site, &account.id), encode(account)?)?;
        if let Some(office) = &account.office {
            t.offices
                .insert(office_key(office), account.id.as_bytes())?;
        }
        if let Some(email) = &account.email {
            t.emails
                .insert(email_key(email, account.site, &account.id), &[])?;
        }
        if let Some(code) = &account.institution {
            t.institutions
                .insert(institution_key(code, &account.id), &[])?;
        }
        Ok(())
    }

    /// The portal accounts of an institution (its 医療機関等コード).
    pub fn accounts_of_institution(&self, code: &str) -> Result<Vec<Account>> {
        let t = self.trees()?;
        let mut prefix = code.as_bytes().to_vec();
        prefix.push(0);
        let mut found = Vec::new();
        for key in t.institutions.scan_prefix(&prefix).keys() {
            let key = key?;
            let id = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
            if let Some(account) = self.account(Site::Portal, &id)? {
                found.push(account);
            }
        }
        Ok(found)
    }

    /// An account of `site` with this address, if any.
    pub fn account_with_email(&self, site: Site, email: &str) -> Result<Option<Account>> {
        let t = self.trees()?;
        let mut prefix = crate::address::normalize(email).into_bytes();
        prefix.push(0);
        for key in t.emails.scan_prefix(&prefix).keys() {
            let key = key?;
            if let Some(v) = t.accounts.get(&key[prefix.len()..])? {
                let account: Account = decode(&v)?;
                let same = account
                    .email
                    .as_deref()
                    .is_some_and(|e| crate::address::same(e, email));
                if same && account.site == site {
                    return Ok(Some(account));
                }
            }
        }
        Ok(None)
    }

    /// Creates an account that does not exist yet (compare-and-swap: of
    /// two operators making the same ID, one does); false when it exists.
    pub fn create_account(&self, account: &Account) -> Result<bool> {
        let t = self.trees()?;
        let key = account_key(account.site, &account.id);
        let made = t
            .accounts
            .compare_and_swap(&key, None as Option<&[u8]>, Some(encode(account)?))?
            .is_ok();
        if made {
            // The indexes after the account: an entry never points at nothing.
            self.put_account(account)?;
        }
        Ok(made)
    }

    /// Deletes an account and its index entries; false when there was none.
    pub fn delete_account(&self, site: Site, id: &str) -> Result<bool> {
        let t = self.trees()?;
        let Some(old) = t.accounts.remove(account_key(site, id))? else {
            return Ok(false);
        };
        let account: Account = decode(&old)?;
        if let Some(office) = &account.office {
            t.offices.remove(office_key(office))?;
        }
        if let Some(email) = &account.email {
            t.emails.remove(email_key(email, site, id))?;
        }
        if let Some(code) = &account.institution {
            t.institutions.remove(institution_key(code, id))?;
        }
        Ok(true)
    }

    /// Accounts whose user ID, portal user name, kaigo office number,
    /// portal 医療機関等コード or e-mail starts with `query`, page `page` (from 0) of `SEARCH_PAGE`:
    /// prefix scans of the accounts, the office index and the e-mail index,
    /// each read only as far as the page needs. IDs and names first, then
    /// offices, then addresses; an account found twice is shown once.
    pub fn search_accounts(&self, query: &str, page: usize) -> Result<Found> {
        let t = self.trees()?;
        let query = query.trim();
        if query.is_empty() {
            return Ok(Found::default());
        }
        let wanted = (page + 1) * SEARCH_PAGE + 1;
        let mut keys: Vec<Vec<u8>> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut add = |key: Vec<u8>, keys: &mut Vec<Vec<u8>>| {
            if keys.len() < wanted && seen.insert(key.clone()) {
                keys.push(key);
            }
        };
        // A kaigo user ID is typed as `KJ…` or `kj…`.
        let upper = query.to_ascii_uppercase();
        let kaigo_id = if upper.starts_with("KJ") {
            &upper
        } else {
            query
        };
        for (site, prefix) in [(Site::Kaigo, kaigo_id), (Site::Portal, query)] {
            for entry in t.accounts.scan_prefix(account_key(site, prefix)).keys() {
                if keys.len() >= wanted {
                    break;
                }
                add(entry?.to_vec(), &mut keys);
            }
        }
        if query.bytes().all(|b| b.is_ascii_digit()) {
            for entry in t.offices.scan_prefix(query.as_bytes()).values() {
                if keys.len() >= wanted {
                    break;
                }
                let id = String::from_utf8_lossy(&entry?).into_owned();
                add(account_key(Site::Kaigo, &id), &mut keys);
            }
            // A portal account's 医療機関等コード, the same ten digits.
            for entry in t.institutions.scan_prefix(query.as_bytes()).keys() {
                if keys.len() >= wanted {
                    break;
                }
                let entry = entry?;
                let Some(nul) = entry.iter().position(|&b| b == 0) else {
                    continue;
                };
                let id = String::from_utf8_lossy(&entry[nul + 1..]).into_owned();
                add(account_key(Site::Portal, &id), &mut keys);
            }
        }
        let email_prefix = crate::address::normalize(query);
        let mut stale = Vec::new();
        for entry in t.emails.scan_prefix(email_prefix.as_bytes()).keys() {
            if keys.len() >= wanted {
                break;
            }
            let entry = entry?;
            let Some(nul) = entry.iter().position(|&b| b == 0) else {
                continue;
            };
            let (email, key) = (&entry[..nul], entry[nul + 1..].to_vec());
            // A stale entry (the address changed, the account went) is
            // not shown, and is deleted.
            let live = match t.accounts.get(&key)? {
                Some(v) => decode::<Account>(&v)?
                    .email
                    .is_some_and(|e| crate::address::normalize(&e).as_bytes() == email),
                None => false,
            };
            if live {
                add(key, &mut keys);
            } else {
                stale.push(entry.to_vec());
            }
        }
        for key in stale {
            t.emails.remove(key)?;
        }
        let more = keys.len() > (page + 1) * SEARCH_PAGE;
        let mut accounts = Vec::new();
        for key in keys.iter().skip(page * SEARCH_PAGE).take(SEARCH_PAGE) {
            if let Some(v) = t.accounts.get(key)? {
                accounts.push(decode(&v)?);
            }
        }
        Ok(Found { accounts, more })
    }

    /// Makes the e-mail index of a database written before it existed
    /// (once: the meta tree remembers it). Returns how many entries.
    pub fn index_emails_once(&self) -> Result<usize> {
        let t = self.trees()?;
        if t.meta.get("emails_indexed")?.is_some() {
            return Ok(0);
        }
        #[derive(Deserialize)]
        struct Row {
            site: Site,
            id: String,
            email: Option<String>,
        }
        let mut batch = Batch::default();
        let mut n = 0;
        for value in t.accounts.iter().values() {
            let row: Row = decode(&value?)?;
            if let Some(email) = &row.email {
                batch.insert(email_key(email, row.site, &row.id), &[]);
                n += 1;
            }
        }
        t.emails.apply_batch(batch)?;
        t.meta.insert("emails_indexed", &[])?;
        Ok(n)
    }

    /// Creates or replaces many accounts in two batches (accounts, then
    /// the office index): an import of a million stays fast.
    pub fn put_accounts(&self, accounts: &[Account]) -> Result<()> {
        let t = self.trees()?;
        let mut rows = Batch::default();
        let mut index = Batch::default();
        let mut emails = Batch::default();
        for account in accounts {
            rows.insert(account_key(account.site, &account.id), encode(account)?);
            if let Some(office) = &account.office {
                index.insert(office_key(office), account.id.as_bytes());
            }
            if let Some(email) = &account.email {
                emails.insert(email_key(email, account.site, &account.id), &[]);
            }
            if let Some(code) = &account.institution {
                t.institutions
                    .insert(institution_key(code, &account.id), &[])?;
            }
        }
        t.accounts.apply_batch(rows)?;
        t.offices.apply_batch(index)?;
        t.emails.apply_batch(emails)?;
        Ok(())
    }

    /// The kaigo accounts of an office, ordered by billing prefecture.
    pub fn kaigo_accounts_of_office(&self, office: &str) -> Result<Vec<Account>> {
        let t = self.trees()?;
        let mut found = Vec::new();
        for entry in t.offices.scan_prefix(office.as_bytes()) {
            let (_, id) = entry?;
            let id = String::from_utf8_lossy(&id).into_owned();
            if let Some(account) = self.account(Site::Kaigo, &id)? {
                found.push(account);
            }
        }
        Ok(found)
    }

    /// Calls `each` with every account's password hash (a scan of the
    /// accounts: the census of their costs, in the background).
    pub fn for_each_password_hash(&self, mut each: impl FnMut(&str)) -> Result<()> {
        #[derive(Deserialize)]
        struct Hash {
            password_phc: String,
        }
        let t = self.trees()?;
        for value in t.accounts.iter().values() {
            let hash: Hash = decode(&value?)?;
            each(&hash.password_phc);
        }
        Ok(())
    }

    /// The costs (`m=…,t=…,p=…`) the stored password hashes have, as far
    /// as kagi knows: what imports brought and what was configured.
    pub fn hash_costs(&self) -> Result<std::collections::BTreeSet<String>> {
        let t = self.trees()?;
        match t.meta.get("hash_costs")? {
            Some(bytes) => decode(&bytes),
            None => Ok(Default::default()),
        }
    }

    pub fn put_hash_costs(&self, costs: &std::collections::BTreeSet<String>) -> Result<()> {
        let t = self.trees()?;
        t.meta.insert("hash_costs", encode(costs)?)?;
        Ok(())
    }

    pub fn account_count(&self) -> Result<usize> {
        self.trees()?.accounts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::*;

    fn portal(id: &str, email: &str) -> Account {
        NewAccount {
            user: id.into(),
            email: Some(email.into()),
            ..NewAccount::default()
        }
        .build(Site::Portal, String::new())
        .unwrap()
    }

    fn ids(found: &Found) -> Vec<&str> {
        found.accounts.iter().map(|a| a.id.as_str()).collect()
    }

    #[test]
    fn the_search_pages_by_fifty_and_follows_changed_and_deleted_addresses() {
        let (store, dir) = temp_store();
        let many: Vec<Account> = (0..120)
            .map(|n| portal(&format!("user{n:03}"), &format!("box{n:03}@example.jp")))
            .collect();
        store.put_accounts(&many).unwrap();
        let first = store.search_accounts("user", 0).unwrap();
        assert_eq!(first.accounts.len(), SEARCH_PAGE);
        assert!(first.more);
        assert_eq!(ids(&first)[0], "user000");
        let last = store.search_accounts("user", 2).unwrap();
        assert_eq!(
            ids(&last),
            (100..120)
                .map(|n| format!("user{n:03}"))
                .collect::<Vec<_>>()
        );
        assert!(!last.more);
        assert_eq!(
            ids(&store.search_accounts("BOX007", 0).unwrap()),
            ["user007"]
        );
        // A new address is found, the old one no more.
        store
            .update_account(Site::Portal, "user007", |a| {
                a.email = Some("moved@example.jp".into());
                true
            })
            .unwrap();
        assert!(store
            .search_accounts("box007", 0)
            .unwrap()
            .accounts
            .is_empty());
        assert_eq!(
            ids(&store.search_accounts("moved", 0).unwrap()),
            ["user007"]
        );
        // A deleted account is gone from every index.
        assert!(store.delete_account(Site::Portal, "user008").unwrap());
        assert!(!store.delete_account(Site::Portal, "user008").unwrap());
        assert!(store
            .search_accounts("user008", 0)
            .unwrap()
            .accounts
            .is_empty());
        assert!(store
            .search_accounts("box008", 0)
            .unwrap()
            .accounts
            .is_empty());
        // A stale entry (written as an import replaces an account with a
        // new address) is not shown.
        store
            .put_accounts(&[portal("user009", "other@example.jp")])
            .unwrap();
        assert!(store
            .search_accounts("box009", 0)
            .unwrap()
            .accounts
            .is_empty());
        assert!(store.search_accounts("", 0).unwrap().accounts.is_empty());
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_database_from_before_the_index_is_indexed_once() {
        let (store, dir) = temp_store();
        let t = store.trees().unwrap();
        // An account written as an older kagi wrote it: no index entry.
        t.accounts
            .insert(
                account_key(Site::Portal, "old"),
                encode(&portal("old", "old@example.jp")).unwrap(),
            )
            .unwrap();
        assert!(store
            .search_accounts("old@", 0)
            .unwrap()
            .accounts
            .is_empty());
        assert_eq!(store.index_emails_once().unwrap(), 1);
        assert_eq!(ids(&store.search_accounts("old@", 0).unwrap()), ["old"]);
        assert_eq!(store.index_emails_once().unwrap(), 0, "once");
        drop(t);
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn office_index_lists_an_offices_accounts() {
        let (store, dir) = temp_store();
        for pref in ["14", "13"] {
            store
                .put_account(&Account {
                    site: Site::Kaigo,
                    id: format!("KJ{pref}1311111111"),
                    email: None,
                    password_phc: "x".into(),
                    security_code_phc: None,
                    generation: 0,
                    office: Some(Office {
                        number: "1311111111".into(),
                        prefecture: pref.into(),
                        name: None,
                        postal_address: None,
                    }),
                    coordinator: false,
                    institution: None,
                    locked: false,
                    disabled: false,
                    temporary_until: None,
                    must_register_email: false,
                })
                .unwrap();
        }
        let ids: Vec<String> = store
            .kaigo_accounts_of_office("1311111111")
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(ids, ["KJ131311111111", "KJ141311111111"]);
        assert!(store
            .kaigo_accounts_of_office("2711111111")
            .unwrap()
            .is_empty());
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
